//! systemd integration: READY=1 once retained state is republished and every listener took a
//! login, WATCHDOG=1 only while the engine proves it is alive by a heartbeat round trip through
//! the broker and every listener by a recent probe login ([`crate::mqtt::conn::probe`]), STATUS= lines,
//! and STOPPING=1 after draining. Outside systemd (no NOTIFY_SOCKET) every call is a no-op.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::mqtt::conn::probe::Health;
use crate::status::Status;

/// How often every listener is probed: four times per watchdog period (between 250 ms and 2 s),
/// every 2 s without a watchdog.
pub fn probe_every() -> Duration {
    match watchdog_period() {
        Some(p) => (p / 4).clamp(Duration::from_millis(250), Duration::from_secs(2)),
        None => Duration::from_secs(2),
    }
}

/// A listener whose last probe login is older than this (ms) is down: three probes missed, or
/// half the watchdog period, whichever is shorter.
pub fn listener_fresh_ms() -> u64 {
    let three = probe_every().as_millis() as u64 * 3 + 500;
    match watchdog_period() {
        Some(p) => three
            .min(p.as_millis() as u64 / 2)
            .max(probe_every().as_millis() as u64 * 2),
        None => three,
    }
}

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
/// is recent and every listener took a probe login lately: a hung engine or a dead listener lets
/// systemd restart the box's service.
pub async fn watchdog(status: Arc<Status>, listeners: Arc<Health>) {
    let Some(period) = watchdog_period() else {
        return;
    };
    // Heartbeats come at least four times per period, so a fresh one is always at hand.
    let every = (period.as_millis() as u64 / 4).clamp(50, 1000);
    status.heartbeat_every_ms.store(every, Relaxed);
    let mut tick = tokio::time::interval(period / 2);
    loop {
        tick.tick().await;
        let now_ms = crate::metrics::uptime_ms();
        let last = status.heartbeat_ms.load(Relaxed);
        let listeners = listeners.alive_within(listener_fresh_ms());
        if now_ms.saturating_sub(last) >= (period.as_millis() as u64) / 2 {
            tracing::error!(
                last_heartbeat_ms_ago = now_ms - last,
                "engine heartbeat is late; not petting the watchdog"
            );
        } else if let Err(stale) = listeners {
            tracing::error!(listeners = %stale, "a listener does not take logins; not petting the watchdog");
        } else {
            notify(&[NotifyState::Watchdog]);
        }
    }
}
