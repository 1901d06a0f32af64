//! One simulated device, shared by docket-sim, the fault campaign ([`crate::chaos`]) and
//! docket-load: where and how it connects ([`Endpoint`]), reconnection with a capped backoff
//! ([`connect_retrying`]), its commands in flight, kept under their ids until answered and sent
//! again with the same ids ([`Outbox`]), a screen following its board by seq ([`Follower`]), and
//! the credentials file the demo pairs ([`CredsLine`]).
//!
//! What a device *does* (which orders, when to bump, what it prints or counts) stays with each
//! tool; this module must not print, count or decide for them.

mod creds_file;
mod follow;
mod outbox;

pub use creds_file::{read_creds, CredsLine};
pub use follow::{Follower, Replayed};
pub use outbox::{InFlight, Outbox};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::{Client, Creds, KEEP_ALIVE};

/// Where a device connects and how: host, port, MQTT keep-alive, and TLS trusting only the
/// given roots (`None`: plain MQTT).
#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub keep_alive: Duration,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Endpoint {
    /// Plain MQTT at `host:port` with the harness's keep-alive.
    pub fn plain(host: &str, port: u16) -> Endpoint {
        Endpoint {
            host: host.to_owned(),
            port,
            keep_alive: KEEP_ALIVE,
            tls: None,
        }
    }

    /// The same endpoint with another keep-alive (how soon a silent link is given up).
    pub fn keep_alive(mut self, keep_alive: Duration) -> Endpoint {
        self.keep_alive = keep_alive;
        self
    }

    /// The same endpoint over MQTT over TLS with `tls` (`None`: plain).
    pub fn tls(mut self, tls: Option<Arc<rustls::ClientConfig>>) -> Endpoint {
        self.tls = tls;
        self
    }

    /// Logs in as the paired device `creds`.
    pub async fn connect(&self, creds: &Creds) -> anyhow::Result<Client> {
        let (host, port, keep_alive) = (self.host.as_str(), self.port, self.keep_alive);
        match &self.tls {
            Some(t) => Client::connect_tls_with(host, port, creds, t.clone(), keep_alive).await,
            None => Client::connect_with(host, port, creds, keep_alive).await,
        }
    }
}

/// Waits between reconnection attempts: `first`, then twice as long each time, at most `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// How long to wait now; the next wait doubles (up to the cap).
    pub fn wait(&mut self) -> Duration {
        let now = self.next;
        self.next = (now * 2).min(self.max);
        now
    }

    /// Back to the first wait (after a connection worked).
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// Logs `creds` in at `endpoint`, waiting `backoff` after each failed attempt (which `failed`
/// is told of), until it works; `None` once `stop` resolves. A good login resets `backoff`.
pub async fn connect_retrying(
    endpoint: &Endpoint,
    creds: &Creds,
    backoff: &mut Backoff,
    stop: impl Future<Output = ()>,
    mut failed: impl FnMut(anyhow::Error),
) -> Option<Client> {
    tokio::pin!(stop);
    loop {
        let attempt = tokio::select! {
            biased;
            _ = &mut stop => return None,
            r = endpoint.connect(creds) => r,
        };
        match attempt {
            Ok(c) => {
                backoff.reset();
                return Some(c);
            }
            Err(e) => {
                failed(e);
                tokio::select! {
                    _ = tokio::time::sleep(backoff.wait()) => {}
                    _ = &mut stop => return None,
                }
            }
        }
    }
}

/// Connects every device, at most `parallel` handshakes at a time: (connected, errors).
pub async fn connect_many(
    endpoint: &Endpoint,
    creds: &[Creds],
    parallel: usize,
) -> (Vec<Client>, Vec<String>) {
    let gate = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for c in creds.iter().cloned() {
        let gate = gate.clone();
        let endpoint = endpoint.clone();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let r = endpoint.connect(&c).await;
            r.map_err(|e| format!("{}: {e:#}", c.id))
        });
    }
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(c)) => ok.push(c),
            Ok(Err(e)) => failed.push(e),
            Err(e) => failed.push(e.to_string()),
        }
    }
    (ok, failed)
}
