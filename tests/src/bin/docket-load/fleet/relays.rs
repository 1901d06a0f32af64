//! docketd's own relays (`uplink::pg::run`, `uplink::redis::run`) for in-process sites: one
//! pair per site, each with its site's role, its own status and metrics, with the settings a
//! box has by default; and, beside them, the idle downlink of inbound orders every box holds
//! (a LISTENing connection polled every `inbound_poll_ms`), so head office carries each site's
//! two connections.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use docket_appliance::config::{RawConfig, SecretUrl, Uplink};
use docket_appliance::metrics::Metrics;
use docket_appliance::status::Status;
use docket_appliance::uplink::{pg, redis};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::head::Head;

pub struct Relays {
    settings: Uplink,
    /// The site's PostgreSQL URL, with `{site}` for its id.
    pg_url: String,
    redis_url: String,
    stop: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Relays {
    /// `poll_ms`: the relays' `poll_interval_ms` (the box's default when `None`).
    pub fn new(head: &Head, poll_ms: Option<u64>) -> anyhow::Result<Relays> {
        let mut settings = default_uplink()?;
        if let Some(ms) = poll_ms {
            settings.poll_interval_ms = ms;
        }
        Ok(Relays {
            settings,
            pg_url: head.site_url("{site}"),
            redis_url: head.redis.url(),
            stop: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Starts the site's two relays on its store; its status (where each cursor is).
    pub fn spawn(&self, site: &str, db: &Path, menu_version: u64) -> Arc<Status> {
        let status = Arc::new(Status::default());
        status.menu_version.store(menu_version, Relaxed);
        let metrics = Arc::new(Metrics::default());
        let settings = self.settings.clone();
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.push(tokio::spawn(pg::run(pg::Relay {
            db: db.to_owned(),
            site_id: site.to_owned(),
            url: SecretUrl::new(self.pg_url.replace("{site}", site)),
            settings: settings.clone(),
            metrics: metrics.clone(),
            status: status.clone(),
            stop: self.stop.clone(),
        })));
        tasks.push(tokio::spawn(inbound_watch(
            site.to_owned(),
            SecretUrl::new(self.pg_url.replace("{site}", site)),
            settings.clone(),
            self.stop.clone(),
        )));
        tasks.push(tokio::spawn(redis::run(redis::Relay {
            db: db.to_owned(),
            site_id: site.to_owned(),
            url: SecretUrl::new(self.redis_url.clone()),
            settings,
            metrics,
            status: status.clone(),
            stop: self.stop.clone(),
        })));
        status
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), t).await;
        }
    }
}

/// What a box's downlink of inbound orders asks of head office while none come (it is on by
/// default): a connection of its own LISTENing for NOTIFY, and a look after its cursor every
/// `inbound_poll_ms`. (Applying orders needs the engine: no inbound orders in this scenario.)
async fn inbound_watch(site: String, url: SecretUrl, u: Uplink, stop: CancellationToken) {
    let notify = Arc::new(tokio::sync::Notify::new());
    let mut client = None;
    while !stop.is_cancelled() {
        if client
            .as_ref()
            .is_none_or(|c: &tokio_postgres::Client| c.is_closed())
        {
            client = docket_cloud::connect_listening(
                &url,
                u.timeouts(),
                notify.clone(),
                docket_cloud::inbound::CHANNEL,
            )
            .await
            .ok();
        }
        if let Some(c) = &client {
            if let Ok(after) = docket_cloud::inbound::last_result(c, &site).await {
                let _ = docket_cloud::inbound::inbound_after(c, &site, after, 100).await;
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = notify.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(u.inbound_poll_ms)) => {}
        }
    }
}

/// `[uplink]` as a box has it by default (batch size, poll interval, timeouts, maxlen).
fn default_uplink() -> anyhow::Result<Uplink> {
    let raw: RawConfig = toml::from_str("site_id = \"fleet\"\n")?;
    Ok(raw.validate()?.uplink)
}
