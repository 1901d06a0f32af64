//! Per-device command rate limit: a token bucket per device.
//!
//! A tablet or screen sends a few commands a minute, a burst after a reconnect (its unanswered
//! commands again) or during a screen's catch-up (replay pages). A device that sends far more
//! is broken or hostile; it gets `rate_limited` replies (not recorded: the same id may be sent
//! again later) and the other devices keep their share of the engine.
//!
//! Pure: time comes in as an argument.

use std::collections::HashMap;
use std::time::Instant;

/// Commands per second per device (0 = no limit) and how many may come at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub per_second: u32,
    pub burst: u32,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// Refused since it was last allowed (to log once per episode, not per command).
    limited: bool,
}

/// What [`RateLimiter::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refused; `first` is true for the first refusal of an episode (log it).
    Refuse {
        first: bool,
    },
}

#[derive(Debug)]
pub struct RateLimiter {
    limit: Limit,
    buckets: HashMap<String, Bucket>,
}

impl RateLimiter {
    pub fn new(limit: Limit) -> Self {
        RateLimiter {
            limit,
            buckets: HashMap::new(),
        }
    }

    /// Takes one token from `device`'s bucket if it has one. Call only for authenticated
    /// devices, so that the map is bounded by the paired devices.
    pub fn check(&mut self, device: &str, now: Instant) -> Verdict {
        if self.limit.per_second == 0 {
            return Verdict::Allow;
        }
        let burst = f64::from(self.limit.burst.max(1));
        let rate = f64::from(self.limit.per_second);
        let b = match self.buckets.get_mut(device) {
            Some(b) => b,
            None => self.buckets.entry(device.to_owned()).or_insert(Bucket {
                tokens: burst,
                at: now,
                limited: false,
            }),
        };
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            b.limited = false;
            Verdict::Allow
        } else {
            let first = !b.limited;
            b.limited = true;
            Verdict::Refuse { first }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn allowed(l: &mut RateLimiter, dev: &str, now: Instant, n: usize) -> usize {
        (0..n)
            .filter(|_| l.check(dev, now) == Verdict::Allow)
            .count()
    }

    #[test]
    fn a_burst_then_the_rate_and_other_devices_keep_their_share() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(Limit {
            per_second: 10,
            burst: 30,
        });
        assert_eq!(allowed(&mut l, "flood", t0, 100), 30);
        assert_eq!(
            l.check("flood", t0),
            Verdict::Refuse { first: false },
            "one log line per episode"
        );
        // Another device is untouched by the flood.
        assert_eq!(allowed(&mut l, "tablet", t0, 5), 5);
        // One second later: 10 more, not 30.
        assert_eq!(
            allowed(&mut l, "flood", t0 + Duration::from_secs(1), 100),
            10
        );
        // A long silence refills to the burst, no further.
        assert_eq!(
            allowed(&mut l, "flood", t0 + Duration::from_secs(3600), 100),
            30
        );
    }

    #[test]
    fn the_first_refusal_of_an_episode_is_flagged() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(Limit {
            per_second: 1,
            burst: 1,
        });
        assert_eq!(l.check("d", t0), Verdict::Allow);
        assert_eq!(l.check("d", t0), Verdict::Refuse { first: true });
        assert_eq!(l.check("d", t0), Verdict::Refuse { first: false });
        assert_eq!(l.check("d", t0 + Duration::from_secs(1)), Verdict::Allow);
        assert_eq!(
            l.check("d", t0 + Duration::from_secs(1)),
            Verdict::Refuse { first: true }
        );
    }

    #[test]
    fn zero_means_no_limit() {
        let mut l = RateLimiter::new(Limit {
            per_second: 0,
            burst: 0,
        });
        assert_eq!(allowed(&mut l, "d", Instant::now(), 10_000), 10_000);
    }

    proptest! {
        /// Over any window, a device gets at most burst + rate x elapsed commands through.
        #[test]
        fn never_more_than_burst_plus_rate(
            rate in 1u32..100,
            burst in 1u32..200,
            gaps in proptest::collection::vec(0u64..200, 1..300),
        ) {
            let t0 = Instant::now();
            let mut l = RateLimiter::new(Limit { per_second: rate, burst });
            let mut now = t0;
            let mut n = 0u64;
            for g in gaps {
                now += Duration::from_millis(g);
                if l.check("d", now) == Verdict::Allow {
                    n += 1;
                }
            }
            let bound = f64::from(burst) + f64::from(rate) * now.duration_since(t0).as_secs_f64();
            prop_assert!(n as f64 <= bound + 1e-6, "{n} > {bound}");
        }
    }
}
