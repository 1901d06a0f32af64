//! The uplink: relays every committed event to head office, PostgreSQL (the record, with the
//! order projections) and Redis (a live stream per site), each from its own cursor, so that one
//! being down never holds up the other, and neither ever holds up the kitchen.
//!
//! Also the way down: menus and 86s from head office (`menus_down`), handed to the engine.
//!
//! Owns the relay tasks, their cursors (SQLite table `uplink_cursor`, written only here) and the
//! pruning of relayed events. Reads events through its own SQLite connection; never touches the
//! engine's writer or its in-memory state. Reports through `Metrics.uplink`, which the engine
//! puts in the appliance status and `/metrics` renders.

pub mod backlog;
pub mod inbound;
pub mod menus_down;
pub mod pg;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::status::Status;

/// Retry delay: exponential from `min` to `max` with full jitter over the upper half.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(min_ms: u64, max_ms: u64) -> Self {
        Backoff {
            min: Duration::from_millis(min_ms),
            max: Duration::from_millis(max_ms),
            failures: 0,
        }
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The delay before the next attempt after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self
            .min
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        let half = exp / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// Logs once per state change (not per retry) and keeps the target's `up` gauge.
pub struct Health {
    target: &'static str,
    up: Option<bool>,
}

impl Health {
    pub fn new(target: &'static str) -> Self {
        Health { target, up: None }
    }

    pub fn ok(&mut self, m: &crate::status::TargetStatus) {
        m.up.store(true, std::sync::atomic::Ordering::Relaxed);
        if self.up != Some(true) {
            tracing::info!(target_name = self.target, "uplink {} is up", self.target);
        }
        self.up = Some(true);
    }

    pub fn failed(
        &mut self,
        (m, c): (
            &crate::status::TargetStatus,
            &crate::metrics::TargetCounters,
        ),
        error: &dyn std::fmt::Display,
    ) {
        m.up.store(false, std::sync::atomic::Ordering::Relaxed);
        c.failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.up != Some(false) {
            tracing::warn!(
                target_name = self.target,
                error = %error,
                "uplink {} is down; retrying with backoff (logged again when it is back)",
                self.target
            );
        }
        self.up = Some(false);
    }
}

/// Starts the relays the config asks for (none without `[uplink]` URLs); with the PostgreSQL
/// one, head office's downlink of inbound orders (through `submitter`) and the task taking
/// menus from head office (with `menus_from_head_office`), which hands them to the engine
/// through `commands`.
pub fn spawn(
    cfg: &Config,
    (metrics, status): (Arc<Metrics>, Arc<Status>),
    submitter: &crate::integration::Submitter,
    commands: crate::engine::inbox::Commands,
    stop: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let u = &cfg.uplink;
    if let (Some(url), Some(device)) = (&u.postgres_url, &u.inbound_device) {
        match inbound::ensure_device(cfg, device) {
            Ok(()) => {
                tracing::info!(device = %device, "taking head office's inbound orders");
                // The registry sees the device at once, not at the watcher's next look.
                if let Err(e) = submitter.registry().refresh() {
                    tracing::warn!(error = %e, "cannot reload the device registry");
                }
                tasks.push(tokio::spawn(inbound::run(inbound::Downlink {
                    site_id: cfg.site_id.clone(),
                    url: url.clone(),
                    settings: u.clone(),
                    device: device.clone(),
                    submitter: submitter.clone(),
                    metrics: metrics.clone(),
                    stop: stop.clone(),
                })));
            }
            Err(e) => {
                tracing::error!(error = %e, "head office's inbound orders are not taken");
            }
        }
    }
    if let Some(url) = &u.postgres_url {
        tracing::info!(url = ?url, "relaying events to PostgreSQL");
        status
            .uplink
            .postgres
            .configured
            .store(true, std::sync::atomic::Ordering::Relaxed);
        tasks.push(tokio::spawn(pg::run(pg::Relay {
            db: cfg.db_path(),
            site_id: cfg.site_id.clone(),
            url: url.clone(),
            settings: u.clone(),
            metrics: metrics.clone(),
            status: status.clone(),
            stop: stop.clone(),
        })));
        if u.menus_from_head_office {
            tasks.push(tokio::spawn(menus_down::run(menus_down::MenusDown {
                db: cfg.db_path(),
                site_id: cfg.site_id.clone(),
                url: url.clone(),
                settings: u.clone(),
                commands,
                status: status.clone(),
                stop: stop.clone(),
            })));
        }
    }
    if let Some(url) = &u.redis_url {
        tracing::info!(url = ?url, "relaying events to Redis");
        status
            .uplink
            .redis
            .configured
            .store(true, std::sync::atomic::Ordering::Relaxed);
        tasks.push(tokio::spawn(redis::run(redis::Relay {
            db: cfg.db_path(),
            site_id: cfg.site_id.clone(),
            url: url.clone(),
            settings: u.clone(),
            metrics: metrics.clone(),
            status: status.clone(),
            stop: stop.clone(),
        })));
    }
    tasks
}

/// Sleeps, or returns false at once when asked to stop.
pub async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let mut b = Backoff::new(100, 1000);
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(100));
        assert!(d[7] >= Duration::from_millis(500) && d[7] <= Duration::from_millis(1000));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
