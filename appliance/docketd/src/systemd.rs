//! systemd integration: READY=1 once retained state is republished, WATCHDOG=1 only while the
//! engine proves it is alive by a heartbeat round trip through the broker, STATUS= lines, and
//! STOPPING=1 after draining. Outside systemd (no NOTIFY_SOCKET) every call is a no-op.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::metrics::Metrics;

/// The watchdog period systemd asks for: `WATCHDOG_USEC`, for this process (`WATCHDOG_PID`
/// unset or ours, as libsystemd's `sd_watchdog_enabled` reads it).
fn watchdog_period() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::debug!(error = ?e, "sd_notify failed");
    }
}

pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn status(status: &str) {
    notify(&[NotifyState::Status(status)]);
}

pub fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Pets the watchdog at half its period, but only while the engine's last heartbeat round trip
/// is recent: a hung engine lets systemd restart the box's service.
pub async fn watchdog(metrics: Arc<Metrics>) {
    let Some(period) = watchdog_period() else {
        return;
    };
    // Heartbeats come at least four times per period, so a fresh one is always at hand.
    let every = (period.as_millis() as u64 / 4).clamp(50, 1000);
    metrics.heartbeat_every_ms.store(every, Relaxed);
    let mut tick = tokio::time::interval(period / 2);
    loop {
        tick.tick().await;
        let now_ms = crate::metrics::uptime_ms();
        let last = metrics.heartbeat_ms.load(Relaxed);
        if now_ms.saturating_sub(last) < (period.as_millis() as u64) / 2 {
            notify(&[NotifyState::Watchdog]);
        } else {
            tracing::error!(
                last_heartbeat_ms_ago = now_ms - last,
                "engine heartbeat is late; not petting the watchdog"
            );
        }
    }
}
