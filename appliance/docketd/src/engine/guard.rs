//! The state-topic guard: the box's retained state topics (boards, the menu, the status) carry
//! what the engine last published on them, and nothing else. Every state publish goes through
//! [`StateGuard::publish`], which remembers it; what the router forwards back on those topics is the
//! engine's own echo (ignored), or a foreign write or clear (counted, logged, and overwritten at
//! once). A board on a station the box does not publish is cleared.
//!
//! Owns the last payload per state topic and the engine's recent own publishes. Must not decide
//! what a board, the menu or the status say (that is `coalesce` and `status`), nor touch the
//! store.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use rumqttd::local::LinkError;

use super::link::{retained, Link};
use crate::metrics::Metrics;

/// Own publishes remembered per state topic: echoes of older ones still on their way back count
/// as the engine's own. A topic is published at most once per board interval and its echo
/// comes back within a turn, so a few suffice; they are the very buffers the router's log holds
/// (a board is not copied), so keeping them costs little.
const OWN_KEPT: usize = 4;

/// Is `echo` one of the engine's own publishes `ours`? The router forwards the very bytes it
/// was handed (the same allocation: a pointer compare); equal contents count as well.
fn is_echo(ours: &Bytes, echo: &[u8]) -> bool {
    (ours.as_ptr() == echo.as_ptr() && ours.len() == echo.len()) || ours[..] == echo[..]
}

/// The box's retained state topics (boards, menu, status) as the engine last published them, so
/// that a write by anyone else is seen and undone.
#[derive(Default)]
pub struct StateGuard {
    /// Last payload the engine published per state topic (what it restores).
    current: HashMap<String, Bytes>,
    /// The engine's own recent publishes per state topic (the last [`OWN_KEPT`]), to tell its
    /// echo from others' writes. Shared with the router's log, not copies.
    own: HashMap<String, VecDeque<Bytes>>,
}

impl StateGuard {
    /// Publishes a retained state message and remembers it as ours.
    pub fn publish<L: Link>(
        &mut self,
        link: &mut L,
        topic: &str,
        bytes: impl Into<Bytes>,
    ) -> Result<(), Box<LinkError>> {
        let bytes: Bytes = bytes.into();
        let own = self.own.entry(topic.to_owned()).or_default();
        own.push_back(bytes.clone());
        while own.len() > OWN_KEPT {
            own.pop_front();
        }
        self.current.insert(topic.to_owned(), bytes.clone());
        link.publish(retained(Bytes::copy_from_slice(topic.as_bytes()), bytes))
    }

    /// A publish the router forwarded on `topic`: the engine's echo, a foreign write to a state
    /// topic (restored), a foreign board (cleared); anything else is not the guard's.
    pub fn observe<L: Link>(
        &mut self,
        link: &mut L,
        metrics: &Metrics,
        topic: &str,
        payload: &[u8],
    ) -> Result<(), Box<LinkError>> {
        if let Some(current) = self.current.get(topic) {
            let own = self.own.entry(topic.to_owned()).or_default();
            if let Some(i) = own.iter().position(|x| is_echo(x, payload)) {
                own.remove(i);
                return Ok(());
            }
            // Someone else wrote the box's state topic (or cleared it): restore at once.
            let restore = current.clone();
            metrics.foreign_write(topic);
            tracing::warn!(
                topic,
                bytes = payload.len(),
                "foreign write to a state topic; restoring"
            );
            self.publish(link, topic, restore)?;
        } else if topic.starts_with("docket/v1/board/") && !payload.is_empty() {
            // A board the box does not publish: clear it so no screen trusts it and the
            // broker does not keep it.
            metrics.foreign_write(topic);
            tracing::warn!(
                topic,
                bytes = payload.len(),
                "foreign board on an unknown station; clearing"
            );
            link.publish(retained(topic.as_bytes().to_vec(), Vec::new()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::FakeLink;

    const BOARD: &str = "docket/v1/board/grill";

    fn foreign_writes(m: &Metrics) -> usize {
        m.render(&crate::status::Status::default())
            .lines()
            .filter(|l| l.starts_with("docket_foreign_writes_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<usize>().unwrap())
            .sum()
    }

    #[test]
    fn the_engines_own_echo_is_not_a_foreign_write() {
        let (mut g, mut link, m) = (
            StateGuard::default(),
            FakeLink::default(),
            Metrics::default(),
        );
        g.publish(&mut link, BOARD, b"board-1".to_vec()).unwrap();
        let sent = link.take();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].retain && sent[0].topic == BOARD && sent[0].payload == b"board-1"[..]);
        // The router hands back the very buffer; then an equal copy of an older one.
        g.observe(&mut link, &m, BOARD, &sent[0].payload).unwrap();
        g.publish(&mut link, BOARD, b"board-2".to_vec()).unwrap();
        g.publish(&mut link, BOARD, b"board-3".to_vec()).unwrap();
        link.take();
        g.observe(&mut link, &m, BOARD, b"board-2").unwrap();
        g.observe(&mut link, &m, BOARD, b"board-3").unwrap();
        assert!(link.take().is_empty(), "echoes are not restored");
        assert_eq!(foreign_writes(&m), 0);
    }

    #[test]
    fn a_foreign_write_or_clear_of_a_state_topic_is_overwritten() {
        let (mut g, mut link, m) = (
            StateGuard::default(),
            FakeLink::default(),
            Metrics::default(),
        );
        g.publish(&mut link, BOARD, b"ours".to_vec()).unwrap();
        link.take();
        for foreign in [&b"forged"[..], b""] {
            g.observe(&mut link, &m, BOARD, foreign).unwrap();
            let sent = link.take();
            assert_eq!(sent.len(), 1, "{foreign:?}");
            assert_eq!(sent[0].topic, BOARD);
            assert!(sent[0].retain);
            assert_eq!(
                sent[0].payload,
                b"ours"[..],
                "the last own payload is restored"
            );
        }
        assert_eq!(foreign_writes(&m), 2);
        // The restore's own echo is ours again; a second forged copy is not.
        g.observe(&mut link, &m, BOARD, b"ours").unwrap();
        g.observe(&mut link, &m, BOARD, b"ours").unwrap();
        assert!(link.take().is_empty());
    }

    #[test]
    fn only_the_last_few_own_publishes_count_as_echoes() {
        let (mut g, mut link, m) = (
            StateGuard::default(),
            FakeLink::default(),
            Metrics::default(),
        );
        for i in 0..=OWN_KEPT {
            g.publish(&mut link, BOARD, format!("b{i}").into_bytes())
                .unwrap();
        }
        link.take();
        g.observe(&mut link, &m, BOARD, b"b0").unwrap();
        let sent = link.take();
        assert_eq!(sent.len(), 1, "an echo older than the kept ones is foreign");
        assert_eq!(sent[0].payload, format!("b{OWN_KEPT}").as_bytes());
    }

    #[test]
    fn a_board_the_box_does_not_publish_is_cleared_and_other_topics_left_alone() {
        let (mut g, mut link, m) = (
            StateGuard::default(),
            FakeLink::default(),
            Metrics::default(),
        );
        g.observe(&mut link, &m, "docket/v1/board/ghost", b"forged")
            .unwrap();
        let sent = link.take();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].topic, "docket/v1/board/ghost");
        assert!(sent[0].retain && sent[0].payload.is_empty());
        // Its clear coming back, and topics the guard does not own: nothing.
        g.observe(&mut link, &m, "docket/v1/board/ghost", b"")
            .unwrap();
        g.observe(&mut link, &m, "docket/v1/other", b"x").unwrap();
        assert!(link.take().is_empty());
        assert_eq!(foreign_writes(&m), 1);
    }
}
