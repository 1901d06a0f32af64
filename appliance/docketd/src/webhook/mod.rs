//! Webhooks to the integrations (a POS, a delivery platform): each integration device with a
//! webhook is told of every status change of the orders it placed, in seq order, signed, and
//! retried until its receiver answers 2xx. `payload.rs` what is sent (pure), `client.rs` the
//! HTTP(S) POST, `task.rs` one webhook's delivery loop; this file the shared [`Webhooks`] handle
//! (settings, each webhook's state for `/admin`, the test send, stopping one at once when it is
//! paused or removed) and the supervisor that keeps one task per stored enabled webhook
//! (`store::webhooks`), started and stopped as the set changes.
//!
//! Reads committed events through its own SQLite connection; the engine never waits for it.
//! Must not decide anything about orders.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::store;
use crate::store::blocking::BlockingConn;
use crate::store::pairing::now_ms;
use crate::store::webhooks::{self, Delivery, Webhook};

pub mod client;
pub mod payload;
mod task;

pub use client::Client;

/// How often a webhook with nothing to send looks for new events.
pub const POLL: Duration = Duration::from_millis(250);

/// One webhook's state as `/admin` shows it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct State {
    /// When the receiver last answered 2xx (wall-clock ms).
    pub last_ok: Option<u64>,
    /// Since when every attempt failed (None while deliveries succeed).
    pub failing_since: Option<u64>,
    pub last_error: Option<String>,
}

/// What every webhook shares: the settings, the client, each one's state; the API's handle.
pub struct Webhooks {
    site: String,
    db: PathBuf,
    client: Client,
    backoff_max: Duration,
    allow_plain: bool,
    states: Mutex<BTreeMap<String, State>>,
    /// The delivery tasks running, by device: the webhook each runs and its stop.
    running: Mutex<BTreeMap<String, (Webhook, CancellationToken)>>,
    /// Counts [`Webhooks::stop_now`]s: a look at the store that began before one is stale.
    stops: AtomicU64,
    changed: tokio::sync::Notify,
}

impl Webhooks {
    pub fn new(
        site: &str,
        db: PathBuf,
        client: Client,
        cfg: &crate::config::Integration,
    ) -> Arc<Webhooks> {
        Arc::new(Webhooks {
            site: site.to_owned(),
            db,
            client,
            backoff_max: cfg.webhook_backoff_max,
            allow_plain: cfg.allow_plain_webhooks,
            states: Mutex::default(),
            running: Mutex::default(),
            stops: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
        })
    }

    /// The daemon's: the site's id and store, the client trusting the site CA (`ca`, DER).
    pub fn for_site(
        cfg: &crate::config::Config,
        ca: Option<&[u8]>,
    ) -> Result<Arc<Webhooks>, rustls::Error> {
        Ok(Webhooks::new(
            &cfg.site_id,
            cfg.db_path(),
            Client::new(ca)?,
            &cfg.integration,
        ))
    }

    /// A URL a webhook may use: `https://`, or `http://` where `allow_plain_webhooks` is on.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        if url.len() > 2048 {
            return Err("the URL is longer than 2048 characters".into());
        }
        let t = client::parse_url(url)?;
        if !t.https && !self.allow_plain {
            return Err(format!(
                "{url:?} is plain http://: use https:// (or set [integration] allow_plain_webhooks for tests)"
            ));
        }
        Ok(())
    }

    /// The stored webhooks changed: the supervisor starts and stops tasks to match.
    pub fn reload(&self) {
        self.changed.notify_one();
    }

    /// Stops `device`'s delivery task now (paused, removed or its device revoked: the store
    /// says so first). A POST under way is abandoned, and sent again when the webhook runs again; no
    /// other starts after this returns.
    pub fn stop_now(&self, device: &str) {
        let stopped = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            self.stops.fetch_add(1, Relaxed);
            running.remove(device)
        };
        if let Some((_, stop)) = stopped {
            stop.cancel();
            self.lock().remove(device);
        }
        self.reload();
    }

    pub fn state(&self, device: &str) -> State {
        self.lock().get(device).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, State>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, device: &str, result: &Result<u16, String>, at: u64) {
        let mut states = self.lock();
        let s = states.entry(device.to_owned()).or_default();
        match result {
            Ok(status) if (200..300).contains(status) => {
                s.last_ok = Some(at);
                s.failing_since = None;
                s.last_error = None;
            }
            other => {
                s.failing_since.get_or_insert(at);
                s.last_error = Some(match other {
                    Ok(status) => format!("HTTP {status}"),
                    Err(e) => e.clone(),
                });
            }
        }
    }

    /// One signed POST of `body` (event `id`); the delivery as logged (not yet stored).
    async fn post(
        &self,
        hook: &Webhook,
        id: &str,
        body: Vec<u8>,
        what: (Option<u64>, &str, Option<&str>, u32),
    ) -> Delivery {
        let (seq, event_type, order_id, attempt) = what;
        let at = now_ms();
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("docket-event-id", id.to_owned()),
            (
                "docket-signature",
                payload::signature(&hook.secret, unix, &body),
            ),
            ("user-agent", format!("docketd/{}", crate::VERSION)),
        ];
        let t = Instant::now();
        let result = self
            .client
            .post(&hook.url, &headers, body)
            .await
            .map(|a| a.status)
            .map_err(|e| error_chain(&e));
        if seq.is_some() {
            // A test send says nothing about the queue: only events move the state.
            self.record(&hook.device, &result, at);
        }
        Delivery {
            id: 0,
            device: hook.device.clone(),
            seq,
            event_type: event_type.to_owned(),
            order_id: order_id.map(str::to_owned),
            attempt,
            at,
            http_status: result.as_ref().ok().copied(),
            error: result.err(),
            duration_ms: t.elapsed().as_millis() as u64,
        }
    }

    /// Sends a signed `test` event to `hook` now; the delivery (the caller logs it).
    pub async fn send_test(&self, hook: &Webhook) -> Delivery {
        let (id, body) = payload::test_body(&self.site, &hook.device, now_ms());
        self.post(hook, &id, body, (None, "test", None, 1)).await
    }
}

/// The `/healthz` warning when plain `http://` webhooks are allowed.
pub fn warning(cfg: &crate::config::Integration) -> Option<String> {
    cfg.allow_plain_webhooks.then(|| {
        "plain http:// webhooks are allowed (integration.allow_plain_webhooks): order updates to such a URL cross the network unencrypted".to_owned()
    })
}

/// An error with its causes, for the delivery log.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

type Db = BlockingConn<Connection>;

/// Starts the supervisor: one delivery task per stored webhook until `shutdown`.
pub fn spawn(hooks: Arc<Webhooks>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let path = hooks.db.clone();
        let db = match BlockingConn::open(move || store::connect(&path)).await {
            Ok(db) => db,
            Err(e) => {
                tracing::error!(error = ?e, "webhooks: cannot open the store; no webhooks are sent");
                return;
            }
        };
        supervise(hooks, db, shutdown).await;
    });
}

async fn supervise(hooks: Arc<Webhooks>, db: Db, shutdown: CancellationToken) {
    loop {
        let stops = hooks.stops.load(Relaxed);
        // A revoked integration's webhook: `watch_devices` stops it at once; this look too.
        match db.run(webhooks::active).await {
            Ok(all) => {
                let wanted: BTreeMap<String, Webhook> =
                    all.into_iter().map(|w| (w.device.clone(), w)).collect();
                let mut running = hooks.running.lock().unwrap_or_else(|p| p.into_inner());
                if hooks.stops.load(Relaxed) != stops {
                    // Paused or removed while this look was reading: it may still list it.
                    continue;
                }
                running.retain(|device, (hook, stop)| {
                    let keep = wanted
                        .get(device)
                        .is_some_and(|w| w.url == hook.url && w.secret == hook.secret);
                    if !keep {
                        stop.cancel();
                        hooks.lock().remove(device);
                    }
                    keep
                });
                for (device, hook) in wanted {
                    if running.contains_key(&device) {
                        continue;
                    }
                    let stop = shutdown.child_token();
                    tracing::info!(device = %device, url = %hook.url, "webhook started");
                    tokio::spawn(task::run(
                        hooks.clone(),
                        db.clone(),
                        hook.clone(),
                        stop.clone(),
                    ));
                    running.insert(device, (hook, stop));
                }
            }
            Err(e) => tracing::warn!(error = ?e, "webhooks: cannot read the stored webhooks"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = hooks.changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// Logs a delivery, keeping the log bounded; a failure to log is logged, not fatal.
async fn log(db: &Db, d: Delivery) {
    if let Err(e) = db.run(move |c| webhooks::log(c, &d)).await {
        tracing::warn!(error = ?e, "webhooks: cannot write the delivery log");
    }
}
