//! Liveness through the router: the engine's heartbeat round trip ([`Heartbeat`]: published on
//! [`HEARTBEAT_TOPIC`] every second, and when it comes back the engine is proven alive for the
//! watchdog and `/healthz`). (Devices' presence is the connection layer's: their sessions take
//! it, see `mqtt::conn::session`.)
//!
//! Owns the heartbeat's number and when it was sent. Must not touch the store or the state
//! topics.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rumqttd::local::LinkError;

use super::link::{plain, Link};
use crate::metrics::uptime_ms;
use crate::status::Status;

/// Where the engine proves it is alive: published and received back through the router.
pub const HEARTBEAT_TOPIC: &str = "docket/internal/heartbeat";
const HEARTBEAT_EVERY: Duration = Duration::from_millis(1000);

fn heartbeat_every(m: &Status) -> Duration {
    match m.heartbeat_every_ms.load(Relaxed) {
        0 => HEARTBEAT_EVERY,
        ms => Duration::from_millis(ms),
    }
}

#[derive(Default)]
pub struct Heartbeat {
    /// The heartbeat on its way through the router: its number and when it was sent.
    sent: Option<(u64, Instant)>,
    n: u64,
}

impl Heartbeat {
    pub fn send<L: Link>(&mut self, link: &mut L) -> Result<(), Box<LinkError>> {
        self.n += 1;
        self.sent = Some((self.n, Instant::now()));
        link.publish(plain(HEARTBEAT_TOPIC, self.n.to_le_bytes().to_vec()))
    }

    /// A heartbeat is on its way and has not come back yet.
    pub fn waiting(&self) -> bool {
        self.sent.is_some()
    }

    /// Time for the next one: a second after the last came back, or (one lost in the router)
    /// three after the last was sent.
    pub fn due(&self, now: Instant, status: &Status) -> bool {
        let every = heartbeat_every(status);
        match self.sent {
            Some((_, at)) => now >= at + every * 3,
            None => status.heartbeat_ms.load(Relaxed) + every.as_millis() as u64 <= uptime_ms(),
        }
    }

    /// What came back on [`HEARTBEAT_TOPIC`]: the one sent last proves the engine alive.
    pub fn echo(&mut self, payload: &[u8], status: &Status) {
        if let Some((n, _)) = self.sent {
            if payload == n.to_le_bytes() {
                self.sent = None;
                status.heartbeat_ms.store(uptime_ms(), Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::FakeLink;

    #[test]
    fn the_round_trip_sets_liveness_and_only_the_last_heartbeat_counts() {
        let (mut hb, mut link, m) = (Heartbeat::default(), FakeLink::default(), Status::default());
        // Uptime moves on, so that a recorded round trip is not 0.
        uptime_ms();
        std::thread::sleep(Duration::from_millis(2));
        hb.send(&mut link).unwrap();
        hb.send(&mut link).unwrap();
        let sent = link.take();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1].topic, HEARTBEAT_TOPIC);
        assert!(!sent[1].retain);
        assert!(hb.waiting());
        assert!(!hb.due(Instant::now(), &m), "on its way: not due yet");
        // An older heartbeat coming back late proves nothing about now.
        hb.echo(&sent[0].payload, &m);
        assert!(hb.waiting());
        assert_eq!(m.heartbeat_ms.load(Relaxed), 0);
        hb.echo(&sent[1].payload, &m);
        assert!(!hb.waiting());
        assert!(
            m.heartbeat_ms.load(Relaxed) > 0,
            "the round trip is recorded"
        );
        assert!(!hb.due(Instant::now(), &m), "the next one a second later");
    }

    #[test]
    fn a_heartbeat_lost_in_the_router_is_sent_again() {
        let (mut hb, mut link, m) = (Heartbeat::default(), FakeLink::default(), Status::default());
        m.heartbeat_every_ms.store(10, Relaxed);
        hb.send(&mut link).unwrap();
        let at = Instant::now();
        assert!(!hb.due(at, &m));
        assert!(hb.due(at + Duration::from_millis(30), &m));
    }
}
