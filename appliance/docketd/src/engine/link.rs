//! The broker link, outbound: what the engine hands the router ([`Link`]), and the real one on
//! rumqttd's local link ([`RouterLink`]) with the filters the engine subscribes to.
//!
//! Owns the engine's `LinkTx` and nothing else: what to publish, and when, is the rooms'
//! (`commands`, `coalesce`, `guard`, `heartbeat`, `status`); what comes back on the link goes
//! through the engine's queue ([`crate::engine::inbox`]). Must not judge or decide anything.

use rumqttd::local::{LinkError, LinkRx, LinkTx};
use rumqttd::protocol::{Packet, Publish};

use super::heartbeat::HEARTBEAT_TOPIC;
use super::inbox::Inbox;
use super::EngineError;
use docket_core::wire;

/// What the engine publishes to the router. Every publish is QoS 0 (delivery QoS is the
/// subscriber's); `retain` only on the box's state topics and their clears. A failed link is
/// boxed: rumqttd's error is large, and the engine stops on it.
pub trait Link {
    /// One publish, the router woken for it.
    fn publish(&mut self, p: Publish) -> Result<(), Box<LinkError>>;
    /// Several publishes in one wake-up of the router's thread (a group commit's replies and
    /// events), in this order.
    fn publish_all(&mut self, batch: Vec<Publish>) -> Result<(), Box<LinkError>>;
}

/// A QoS 0, not retained publish (replies, events, the heartbeat), as `LinkTx::publish` makes it.
pub fn plain(topic: impl Into<bytes::Bytes>, payload: impl Into<bytes::Bytes>) -> Publish {
    Publish::new(topic.into(), payload.into(), false)
}

/// A retained publish: a state topic's payload, or its clear (empty).
pub fn retained(topic: impl Into<bytes::Bytes>, payload: impl Into<bytes::Bytes>) -> Publish {
    Publish::new(topic.into(), payload.into(), true)
}

/// Filters the engine subscribes to: commands, the state topics it owns (to restore foreign
/// writes) and its heartbeat (presence is the connection layer's). Replies and events are not among them: the broker is
/// started with filters for those ([`crate::mqtt::broker::ENGINE_OUTPUT_FILTERS`]), so the engine's
/// publishes always match one without coming back to it.
fn filters() -> [&'static str; 5] {
    [
        wire::CMD_FILTER,
        wire::BOARDS_FILTER,
        wire::MENU_TOPIC,
        wire::STATUS_TOPIC,
        HEARTBEAT_TOPIC,
    ]
}

/// The engine's rumqttd local link ("docketd-engine").
pub struct RouterLink {
    tx: LinkTx,
}

impl RouterLink {
    /// Subscribes the engine's filters and moves what the router forwards on `rx` into `inbox`
    /// (the `engine-link` thread).
    pub fn open((mut tx, rx): (LinkTx, LinkRx), inbox: &Inbox) -> Result<Self, EngineError> {
        for f in filters() {
            tx.subscribe(f)?;
        }
        inbox.attach(rx)?;
        Ok(RouterLink { tx })
    }

    /// `LinkTx::send` is async only in name; this is its synchronous use.
    fn push(&mut self, p: Packet) -> Result<(), Box<LinkError>> {
        crate::mqtt::broker::poll_once_ready(self.tx.send(p)).map_err(Box::new)?;
        Ok(())
    }
}

impl Link for RouterLink {
    fn publish(&mut self, p: Publish) -> Result<(), Box<LinkError>> {
        self.push(Packet::Publish(p, None))
    }

    /// All but the last straight into the link's queue, the last with the wake-up.
    fn publish_all(&mut self, mut batch: Vec<Publish>) -> Result<(), Box<LinkError>> {
        let Some(last) = batch.pop() else {
            return Ok(());
        };
        if !batch.is_empty() {
            self.tx
                .buffer()
                .extend(batch.into_iter().map(|p| Packet::Publish(p, None)));
        }
        self.push(Packet::Publish(last, None))
    }
}
