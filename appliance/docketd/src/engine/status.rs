//! The appliance status on [`wire::STATUS_TOPIC`]: version, site, seq, the uplink's state and
//! lag, the disk; republished every 2 s, changed or not, as the screens' proof that their link
//! is alive. Published through the guard (it is a state topic).
//!
//! Owns what the status says about the box and when it was last sent. Must not touch the store
//! or read anything but the box's [`Status`] and the seq it is given.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use docket_core::wire;

use super::guard::StateGuard;
use super::link::Link;
use super::EngineError;
use crate::clock::now_ms;
use crate::status::Status;

const STATUS_EVERY: Duration = Duration::from_secs(2);
/// More events than this not yet relayed: the uplink is "catching_up" rather than "ok".
const UPLINK_BACKLOG: u64 = 1000;

pub struct StatusTopic {
    version: String,
    site_id: String,
    started_unix_ms: u64,
    last: Option<Instant>,
}

impl StatusTopic {
    pub fn new(version: String, site_id: String, started_unix_ms: u64) -> Self {
        StatusTopic {
            version,
            site_id,
            started_unix_ms,
            last: None,
        }
    }

    /// Every 2 s, changed or not.
    pub fn due(&self, now: Instant) -> bool {
        self.last.is_none_or(|t| now >= t + STATUS_EVERY)
    }

    pub fn publish<L: Link>(
        &mut self,
        guard: &mut StateGuard,
        link: &mut L,
        now: &Status,
        seq: u64,
    ) -> Result<(), EngineError> {
        // The uplink's state and lag (events) as the relays report them.
        let u = &now.uplink;
        let status = wire::ApplianceStatus {
            version: self.version.clone(),
            site_id: self.site_id.clone(),
            seq,
            uplink: u.state(seq, UPLINK_BACKLOG).into(),
            sync_lag: u.lag_events(seq),
            started_at: self.started_unix_ms,
            now_ms: now_ms(),
            storage_full: now.storage_full.load(Relaxed),
            printing: Some(now.printing.report()).filter(|r| !r.is_empty()),
        };
        let bytes = wire::encode(&status)?;
        guard.publish(link, wire::STATUS_TOPIC, bytes)?;
        self.last = Some(Instant::now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::FakeLink;
    use crate::metrics::Metrics;

    #[test]
    fn the_status_says_seq_site_and_disk_and_is_due_every_two_seconds() {
        let (mut g, mut link, m) = (
            StateGuard::default(),
            FakeLink::default(),
            Metrics::default(),
        );
        let mut s = StatusTopic::new("1.2.3".into(), "site-a".into(), 42);
        assert!(s.due(Instant::now()), "never sent: due");
        let now = Status::default();
        now.storage_full.store(true, Relaxed);
        s.publish(&mut g, &mut link, &now, 7).unwrap();
        let sent = link.take();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].topic, wire::STATUS_TOPIC);
        assert!(sent[0].retain);
        let got: wire::ApplianceStatus = wire::decode(&sent[0].payload).unwrap();
        assert_eq!(
            (got.version.as_str(), got.site_id.as_str()),
            ("1.2.3", "site-a")
        );
        assert_eq!((got.seq, got.started_at, got.storage_full), (7, 42, true));
        let now = Instant::now();
        assert!(!s.due(now));
        assert!(s.due(now + STATUS_EVERY));
        // It went through the guard: its echo is the engine's own.
        g.observe(&mut link, &m, wire::STATUS_TOPIC, &sent[0].payload)
            .unwrap();
        assert!(link.take().is_empty());
    }
}
