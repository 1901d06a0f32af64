//! What every simulated device shares: the run's settings, the counters of the summary, the
//! held courses some tablet will fire, and the one place lines are printed. Owns no device.

use std::collections::HashSet;
use std::fmt::Display;
use std::io::Write;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use docket_tests::device::Endpoint;
use rand::rngs::StdRng;
use rand::Rng;
use tokio::time::Instant;

/// Counters for the summary (and `--check`).
#[derive(Default)]
pub struct Stats {
    pub placed: AtomicU64,
    pub fired: AtomicU64,
    pub bumped: AtomicU64,
    pub completed: AtomicU64,
    pub rejected: AtomicU64,
    pub unanswered: AtomicU64,
    pub drops: AtomicU64,
    pub rtt_us: Mutex<Vec<u64>>,
}

/// What every device shares.
pub struct Ctx {
    pub start: Instant,
    /// Where every device connects.
    pub endpoint: Endpoint,
    /// Mean seconds between two orders of one tablet; `None` = tablets place no orders.
    pub order_gap: Option<f64>,
    pub prep: (f64, f64),
    /// Per-run random tag: command ids are unique forever, across runs.
    pub run_tag: u64,
    pub stats: Stats,
    /// Orders whose held course some tablet will fire (so the lead tablet doesn't fire it too).
    pub held: Mutex<HashSet<String>>,
    /// Orders the simulated kitchen may bump and complete: those its own tablets placed, and the
    /// ones open when it started (an earlier run's). Anyone else's orders (a person trying the
    /// pages) are left to them.
    pub ours: Mutex<HashSet<String>>,
}

impl Ctx {
    /// One human line on stdout. A closed stdout is not worth dying for.
    pub fn say(&self, line: impl Display) {
        let t = self.start.elapsed().as_secs_f64();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "[{t:7.1}s] {line}");
    }

    pub fn held(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn ours(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.ours.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub fn uniform(rng: &mut StdRng, (lo, hi): (f64, f64)) -> Duration {
    let s = if hi > lo { rng.gen_range(lo..hi) } else { lo };
    Duration::from_secs_f64(s.max(0.0))
}

/// The part of the prep range a station works in: a drink is poured faster than a steak is
/// grilled (stations the demo menu does not know use the whole range).
pub fn prep_window((lo, hi): (f64, f64), station: &str) -> (f64, f64) {
    let (a, b) = match station {
        "bar" => (0.0, 0.2),
        "cold" => (0.0, 0.5),
        "fry" => (0.1, 0.7),
        "grill" => (0.2, 1.0),
        _ => (0.0, 1.0),
    };
    let span = hi - lo;
    (lo + a * span, lo + b * span)
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
