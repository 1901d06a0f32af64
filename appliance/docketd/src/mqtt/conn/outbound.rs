//! What the router hands a connection, made into what the device should receive: retained state
//! in full, at the QoS the device asked for.
//!
//! rumqttd's router, on a QoS 1 subscription, forwards only as many retained messages as it has
//! free in-flight slots (100): an expo subscribing to `docket/v1/board/+` on a 150-station menu
//! got 100 boards. For QoS 0 it reads up to its configured packet count. So the session
//! subscribes the box's state filters (boards, menu, status) at QoS 0 in the router, delivers
//! what they carry at the device's QoS with packet ids of its own (above the router's 1..=100),
//! takes the device's PUBACKs for those itself, and tells the device in the SUBACK the QoS it
//! asked for.
//!
//! Pure bookkeeping over rumqttd's packet types: no I/O.

use std::collections::HashSet;

use bytes::{BufMut, Bytes, BytesMut};
use rumqttd::protocol::{Packet, Publish, QoS, Subscribe, SubscribeReasonCode, Unsubscribe};

use super::acl::is_state_filter;

/// Packet ids the session assigns itself; the router's are 1..=100.
const OWN_FIRST: u16 = 1000;
/// State messages delivered at QoS 1 and not yet acknowledged, at most: a device past this is
/// not reading, or not acknowledging, and is cut.
pub const OWN_IN_FLIGHT: usize = 4096;

/// The device has too many unacknowledged state messages.
#[derive(Debug, thiserror::Error)]
#[error("{OWN_IN_FLIGHT} state messages unacknowledged")]
pub struct Overflow;

#[derive(Default)]
pub struct Outbound {
    /// State filters subscribed at QoS 0 in the router, with the QoS the device asked for.
    state: Vec<(String, QoS)>,
    /// SUBACKs to put right: packet id → (filter index, QoS granted).
    subacks: Vec<(u16, Vec<(usize, QoS)>)>,
    in_flight: HashSet<u16>,
    next: u16,
    /// Deliver state above QoS 0 (off for an MQTT 5 device with a small Receive Maximum).
    upgrade: bool,
    /// SUBSCRIBEs sent to the router and not yet answered.
    awaiting: usize,
}

impl Outbound {
    pub fn new(upgrade: bool) -> Self {
        Outbound {
            upgrade,
            next: OWN_FIRST,
            ..Default::default()
        }
    }

    /// Rewrites a device's SUBSCRIBE before it goes to the router: state filters at QoS 0.
    pub fn subscribe(&mut self, sub: &mut Subscribe) {
        self.awaiting += 1;
        let mut fix = Vec::new();
        for (i, f) in sub.filters.iter_mut().enumerate() {
            if !is_state_filter(&f.path) || f.qos == QoS::AtMostOnce {
                continue;
            }
            // State is delivered at QoS 1 at most: exactly-once adds nothing to a snapshot.
            let granted = if self.upgrade {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            };
            self.state.retain(|(p, _)| *p != f.path);
            self.state.push((f.path.clone(), granted));
            f.qos = QoS::AtMostOnce;
            fix.push((i, granted));
        }
        if !fix.is_empty() {
            self.subacks.push((sub.pkid, fix));
        }
    }

    /// Is a SUBSCRIBE of this session still unanswered by the router? The session holds the
    /// device's commands meanwhile, so that no reply is published before the device's
    /// subscription to its reply topic is in place (a command skips the router, its SUBSCRIBE
    /// does not).
    pub fn subscribing(&self) -> bool {
        self.awaiting > 0
    }

    pub fn unsubscribe(&mut self, u: &Unsubscribe) {
        self.state.retain(|(p, _)| !u.filters.contains(p));
    }

    /// A PUBACK from the device: true when it answers one of this session's own deliveries
    /// (and so must not go to the router).
    pub fn acked(&mut self, pkid: u16) -> bool {
        pkid >= OWN_FIRST && self.in_flight.remove(&pkid)
    }

    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Shapes one packet from the router for the device.
    pub fn shape(&mut self, p: Packet) -> Result<Packet, Overflow> {
        match p {
            Packet::Publish(publish, props) => Ok(Packet::Publish(self.publish(publish)?, props)),
            Packet::SubAck(mut ack, props) => {
                self.awaiting = self.awaiting.saturating_sub(1);
                if let Some(i) = self.subacks.iter().position(|(id, _)| *id == ack.pkid) {
                    let (_, fix) = self.subacks.swap_remove(i);
                    for (idx, qos) in fix {
                        if let Some(c) = ack.return_codes.get_mut(idx) {
                            if matches!(
                                c,
                                SubscribeReasonCode::QoS0 | SubscribeReasonCode::Success(_)
                            ) {
                                *c = granted(qos);
                            }
                        }
                    }
                }
                Ok(Packet::SubAck(ack, props))
            }
            p => Ok(p),
        }
    }

    fn publish(&mut self, p: Publish) -> Result<Publish, Overflow> {
        if !self.upgrade || self.state.is_empty() {
            return Ok(p);
        }
        // `len()` counts a packet id exactly when the router forwards at QoS 1 or 2.
        let qos0 = p.len() == 2 + p.topic.len() + p.payload.len();
        if !qos0 {
            return Ok(p);
        }
        let Ok(topic) = std::str::from_utf8(&p.topic) else {
            return Ok(p);
        };
        let wanted = self
            .state
            .iter()
            .filter(|(f, _)| rumqttd::protocol::matches(topic, f))
            .any(|(_, q)| *q != QoS::AtMostOnce);
        if !wanted {
            return Ok(p);
        }
        let pkid = self.allocate()?;
        Ok(with_qos1(&p, pkid))
    }

    fn allocate(&mut self) -> Result<u16, Overflow> {
        if self.in_flight.len() >= OWN_IN_FLIGHT {
            return Err(Overflow);
        }
        loop {
            let id = self.next;
            self.next = if self.next == u16::MAX {
                OWN_FIRST
            } else {
                self.next + 1
            };
            if self.in_flight.insert(id) {
                return Ok(id);
            }
        }
    }
}

fn granted(q: QoS) -> SubscribeReasonCode {
    match q {
        QoS::AtMostOnce => SubscribeReasonCode::QoS0,
        _ => SubscribeReasonCode::QoS1,
    }
}

/// The same message at QoS 1 with packet id `pkid`. rumqttd keeps a publish's QoS and packet id
/// to itself; its `Publish::deserialize` (the inverse of `serialize`) is the public way to set
/// them.
fn with_qos1(p: &Publish, pkid: u16) -> Publish {
    let mut b = BytesMut::with_capacity(5 + p.topic.len() + p.payload.len());
    b.put_u8(0b0011_0000 | u8::from(p.retain) | (1 << 1));
    b.put_u16(pkid);
    b.put_u16(p.topic.len() as u16);
    b.extend_from_slice(&p.topic);
    b.extend_from_slice(&p.payload);
    Publish::deserialize(Bytes::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttd::protocol::{Filter, RetainForwardRule, SubAck};

    fn filter(path: &str, qos: QoS) -> Filter {
        Filter {
            path: path.into(),
            qos,
            nolocal: false,
            preserve_retain: false,
            retain_forward_rule: RetainForwardRule::OnEverySubscribe,
        }
    }

    fn board(station: &str, retain: bool) -> Publish {
        Publish::new(
            Bytes::from(format!("docket/v1/board/{station}")),
            Bytes::from_static(b"board"),
            retain,
        )
    }

    #[test]
    fn state_is_subscribed_at_qos0_and_delivered_at_the_qos_asked() {
        let mut o = Outbound::new(true);
        let mut sub = Subscribe {
            pkid: 7,
            filters: vec![
                filter("docket/v1/events", QoS::AtLeastOnce),
                filter("docket/v1/board/+", QoS::AtLeastOnce),
                filter("docket/v1/menu", QoS::AtMostOnce),
            ],
        };
        assert!(!o.subscribing());
        o.subscribe(&mut sub);
        assert!(o.subscribing(), "sent, not yet answered");
        let qos: Vec<QoS> = sub.filters.iter().map(|f| f.qos).collect();
        assert_eq!(qos, [QoS::AtLeastOnce, QoS::AtMostOnce, QoS::AtMostOnce]);
        // The router grants what it was asked; the device is told what it asked.
        let ack = SubAck {
            pkid: 7,
            return_codes: vec![
                SubscribeReasonCode::QoS1,
                SubscribeReasonCode::QoS0,
                SubscribeReasonCode::QoS0,
            ],
        };
        let Ok(Packet::SubAck(ack, _)) = o.shape(Packet::SubAck(ack, None)) else {
            panic!("not a SUBACK")
        };
        assert!(!o.subscribing(), "answered");
        assert_eq!(
            ack.return_codes,
            [
                SubscribeReasonCode::QoS1,
                SubscribeReasonCode::QoS1,
                SubscribeReasonCode::QoS0
            ]
        );
        // 300 boards arrive at QoS 1, each with a packet id of the session's own.
        let mut ids = HashSet::new();
        for i in 0..300 {
            let Ok(Packet::Publish(p, None)) =
                o.shape(Packet::Publish(board(&format!("s{i}"), true), None))
            else {
                panic!("not a publish")
            };
            assert_eq!(p.len(), 2 + p.topic.len() + p.payload.len() + 2, "QoS 1");
            assert!(p.retain);
            let bytes = p.serialize();
            let pkid = u16::from_be_bytes([bytes[1], bytes[2]]);
            assert!(pkid >= OWN_FIRST && ids.insert(pkid));
        }
        assert_eq!(o.in_flight(), 300);
        for id in &ids {
            assert!(o.acked(*id), "{id}");
        }
        assert!(!o.acked(5), "a router packet id is the router's");
        assert_eq!(o.in_flight(), 0);
        // Events are not state: left as the router sent them.
        let e = Publish::new(Bytes::from("docket/v1/events"), Bytes::from("e"), false);
        let Ok(Packet::Publish(p, _)) = o.shape(Packet::Publish(e.clone(), None)) else {
            panic!()
        };
        assert_eq!(p, e);
    }

    #[test]
    fn a_device_that_never_acknowledges_overflows() {
        let mut o = Outbound::new(true);
        let mut sub = Subscribe {
            pkid: 1,
            filters: vec![filter("docket/v1/board/grill", QoS::AtLeastOnce)],
        };
        o.subscribe(&mut sub);
        for _ in 0..OWN_IN_FLIGHT {
            assert!(o
                .shape(Packet::Publish(board("grill", false), None))
                .is_ok());
        }
        assert!(o
            .shape(Packet::Publish(board("grill", false), None))
            .is_err());
    }

    #[test]
    fn without_upgrade_state_stays_at_qos0_and_says_so() {
        let mut o = Outbound::new(false);
        let mut sub = Subscribe {
            pkid: 3,
            filters: vec![filter("docket/v1/board/+", QoS::AtLeastOnce)],
        };
        o.subscribe(&mut sub);
        let ack = SubAck {
            pkid: 3,
            return_codes: vec![SubscribeReasonCode::QoS0],
        };
        let Ok(Packet::SubAck(ack, _)) = o.shape(Packet::SubAck(ack, None)) else {
            panic!()
        };
        assert_eq!(ack.return_codes, [SubscribeReasonCode::QoS0]);
        let b = board("grill", true);
        let Ok(Packet::Publish(p, _)) = o.shape(Packet::Publish(b.clone(), None)) else {
            panic!()
        };
        assert_eq!(p, b);
    }
}
