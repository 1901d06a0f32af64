//! The wall clock, as the operating system has it. Certificates' validity and a bundle's
//! `issued_at_ms` are judged by it; the box's own steady clock (docketd's `clock`) is anchored
//! on it at start. Owns nothing; must not be used for the box's event stamps directly (a
//! wall-clock step mid-service would move them).

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds now (0 for a clock set before 1970).
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
