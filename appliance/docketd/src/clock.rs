//! The box's clock for everything it stamps (`Event.at`, `Order.placed_at`, the status, the
//! uplink's lag): wall-clock milliseconds read once at start, then advanced by the monotonic
//! clock.
//!
//! Screens age tickets by `box now - placed_at`. If those stamps followed the wall clock, an NTP
//! step or a technician's `date` during service would make every open ticket an hour younger
//! (shown 0:00) or a day late (all red). With this clock a wall-clock step during service
//! changes nothing; the box picks it up at its next start, and never stamps earlier than what it
//! has already committed (`anchor`'s floor), so stamps never go backwards across restarts either.

use std::sync::OnceLock;
use std::time::Instant;

/// The wall clock, as the operating system has it right now (shared with the CLI).
pub use docket_trust::clock::wall_ms;

static ANCHOR: OnceLock<(u64, Instant)> = OnceLock::new();

/// Fixes the clock at max(wall clock, `floor_ms`) now. Called once, at start, with the latest
/// stamp already committed; later calls change nothing.
pub fn anchor(floor_ms: u64) -> u64 {
    let (at, _) = ANCHOR.get_or_init(|| (wall_ms().max(floor_ms), Instant::now()));
    *at
}

/// The box's time in Unix milliseconds: steady through wall-clock steps. The first call fixes
/// the clock: nothing may call it before the engine's `anchor` at start (use `wall_ms` there).
pub fn now_ms() -> u64 {
    let (at, since) = ANCHOR.get_or_init(|| (wall_ms(), Instant::now()));
    at + since.elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_and_never_below_the_floor() {
        let floor = wall_ms() + 3_600_000;
        let at = anchor(floor);
        assert!(at >= floor);
        let a = now_ms();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = now_ms();
        assert!(b >= a + 5 && b < a + 5_000, "{a} -> {b}");
        // A second anchor changes nothing.
        assert_eq!(anchor(floor + 10_000_000), at);
    }
}
