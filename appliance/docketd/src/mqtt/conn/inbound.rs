//! What a logged-in device sends, judged packet by packet: forwarded to the router as parsed,
//! answered here, or the end of the connection. The device topic ACL ([`super::acl`]) judges the
//! very packet that is forwarded: there is no second reading of the bytes.
//!
//! Pure: a packet in, a step out. The session does the I/O.

use rumqttd::protocol::{DisconnectReasonCode as Reason, Packet, PingResp, Publish, QoS};

use super::acl::{self, Violation};
use super::outbound::Outbound;

/// What to do with one packet.
#[derive(Debug)]
pub enum Step {
    /// Hand it to the router, as parsed (state subscriptions at QoS 0, see `outbound`).
    Forward(Packet),
    /// A command on the device's own command topic (QoS 0 or 1, not retained): straight to the
    /// engine ([`crate::engine::inbox`]), acknowledged here once the engine's queue took it: the packet
    /// id to PUBACK (QoS 1) or none (QoS 0).
    Command(Publish, Option<u16>),
    /// The device's own presence ("online" or not), taken here: the box is its only reader, so
    /// it never goes through the router. The packet id to PUBACK (QoS 1) or none (QoS 0).
    Presence(bool, Option<u16>),
    /// Answer the device with this, here.
    Reply(Packet),
    /// Taken care of here (a PUBACK for one of the session's own deliveries).
    Done,
    /// End the connection.
    Stop(Stop),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// DISCONNECT: the will only when an MQTT 5 device gave another reason than a normal one.
    Disconnect { will: bool },
    /// Outside the device topic ACL.
    Acl(Violation),
    /// A packet a client does not send.
    Protocol(&'static str),
}

/// Judges one packet of `device` (`acl`: the topic ACL is on).
pub fn judge(device: &str, acl: bool, out: &mut Outbound, p: Packet) -> Step {
    match p {
        Packet::Publish(publish, props) => {
            if acl {
                let topic = String::from_utf8_lossy(&publish.topic);
                if let Err(v) = acl::may_publish(device, &topic) {
                    return Step::Stop(Stop::Acl(v));
                }
                if let Some(ack) = own_command(device, &publish) {
                    return Step::Command(publish, ack);
                }
            }
            // Recording presence is not authorisation: taken here with the ACL off as well.
            if let Some(ack) = own_presence(device, &publish) {
                return Step::Presence(docket_core::wire::presence_online(&publish.payload), ack);
            }
            Step::Forward(Packet::Publish(publish, props))
        }
        Packet::Subscribe(mut sub, props) => {
            if sub.filters.is_empty() {
                return Step::Stop(Stop::Protocol("a SUBSCRIBE without filters"));
            }
            if acl {
                if let Some(f) = sub
                    .filters
                    .iter()
                    .find(|f| !acl::may_subscribe(device, &f.path))
                {
                    return Step::Stop(Stop::Acl(Violation(format!("subscribe to {:?}", f.path))));
                }
            }
            out.subscribe(&mut sub);
            Step::Forward(Packet::Subscribe(sub, props))
        }
        Packet::Unsubscribe(u, props) => {
            out.unsubscribe(&u);
            Step::Forward(Packet::Unsubscribe(u, props))
        }
        Packet::PubAck(ack, props) => {
            if out.acked(ack.pkid) {
                Step::Done
            } else {
                Step::Forward(Packet::PubAck(ack, props))
            }
        }
        p @ (Packet::PubRec(..) | Packet::PubRel(..) | Packet::PubComp(..)) => Step::Forward(p),
        // Answered here: a keep-alive needs no trip through the router.
        Packet::PingReq(_) => Step::Reply(Packet::PingResp(PingResp)),
        // Only a normal disconnection withdraws the will (MQTT 5 3.14.2.1).
        Packet::Disconnect(d, _) => Step::Stop(Stop::Disconnect {
            will: d.reason_code != Reason::NormalDisconnection,
        }),
        Packet::Connect(..) => Step::Stop(Stop::Protocol("a second CONNECT")),
        Packet::ConnAck(..) => Step::Stop(Stop::Protocol("a CONNACK")),
        Packet::SubAck(..) => Step::Stop(Stop::Protocol("a SUBACK")),
        Packet::UnsubAck(..) => Step::Stop(Stop::Protocol("an UNSUBACK")),
        Packet::PingResp(..) => Step::Stop(Stop::Protocol("a PINGRESP")),
    }
}

/// A command the engine takes from the session itself: on the device's own command topic, at
/// QoS 0 or 1, not retained (anything else the ACL allowed goes through the router). Only with
/// the ACL on, so that the bare-broker benchmark measures the router alone. `Some(ack)`: the
/// packet id to acknowledge, if any.
fn own_command(device: &str, p: &Publish) -> Option<Option<u16>> {
    let topic = std::str::from_utf8(&p.topic).ok()?;
    if p.retain || docket_core::wire::device_of_cmd_topic(topic) != Some(device) {
        return None;
    }
    match super::codec::delivery(p) {
        (QoS::AtMostOnce, _) => Some(None),
        (QoS::AtLeastOnce, pkid) => Some(Some(pkid)),
        (QoS::ExactlyOnce, _) => None,
    }
}

/// The device's presence on its own presence topic, at QoS 0 or 1 (retained or not: nothing is
/// kept). `Some(ack)`: the packet id to acknowledge, if any.
fn own_presence(device: &str, p: &Publish) -> Option<Option<u16>> {
    let topic = std::str::from_utf8(&p.topic).ok()?;
    if docket_core::topic::Topic::parse(topic) != Some(docket_core::topic::Topic::Presence(device))
    {
        return None;
    }
    match super::codec::delivery(p) {
        (QoS::AtMostOnce, _) => Some(None),
        (QoS::AtLeastOnce, pkid) => Some(Some(pkid)),
        (QoS::ExactlyOnce, _) => None,
    }
}

/// What a stream of bytes from one logged-in device comes to: the packets forwarded to the
/// router or handed to the engine (in the order the device sent them), and why it stopped (`None`: it did not, the bytes ran out). The bytes arrive in
/// pieces of the given sizes (cycled), as a socket may deliver them.
///
/// For the fuzz target and the property tests: it runs the same codec and judge as a session,
/// and panics if anything forwarded is outside the ACL the judge applied.
pub fn replay(
    proto: super::Proto,
    device: &str,
    acl_on: bool,
    bytes: &[u8],
    pieces: &[usize],
) -> (Vec<Packet>, Option<String>) {
    let mut out = Outbound::new(true);
    let mut buf = bytes::BytesMut::new();
    let mut scratch = Vec::new();
    let mut forwarded = Vec::new();
    let mut rest = bytes;
    let mut sizes = pieces.iter().copied().filter(|n| *n > 0).cycle();
    loop {
        match proto.read(&mut buf, 64 * 1024, &mut scratch) {
            Ok(p) => match judge(device, acl_on, &mut out, p) {
                Step::Forward(p) => {
                    assert_allowed(device, acl_on, &p);
                    forwarded.push(p);
                }
                Step::Command(p, _) => {
                    assert!(own_command(device, &p).is_some(), "handed the engine {p:?}");
                    let p = Packet::Publish(p, None);
                    assert_allowed(device, acl_on, &p);
                    forwarded.push(p);
                }
                Step::Presence(..) | Step::Reply(_) | Step::Done => {}
                Step::Stop(s) => return (forwarded, Some(format!("{s:?}"))),
            },
            Err(super::codec::ReadError::Short(_)) => {
                if rest.is_empty() {
                    return (forwarded, None);
                }
                let n = sizes.next().unwrap_or(rest.len()).min(rest.len());
                buf.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
            }
            Err(e) => return (forwarded, Some(format!("malformed: {e}"))),
        }
    }
}

/// Panics unless a forwarded packet is one the ACL allows and a client may send.
fn assert_allowed(device: &str, acl_on: bool, p: &Packet) {
    match p {
        Packet::Publish(publish, _) => {
            let topic = String::from_utf8_lossy(&publish.topic);
            assert!(
                !acl_on || acl::may_publish(device, &topic).is_ok(),
                "forwarded a publish on {topic:?}"
            );
        }
        Packet::Subscribe(sub, _) => {
            for f in &sub.filters {
                assert!(
                    !acl_on || acl::may_subscribe(device, &f.path),
                    "forwarded a subscription to {:?}",
                    f.path
                );
            }
        }
        Packet::Unsubscribe(..)
        | Packet::PubAck(..)
        | Packet::PubRec(..)
        | Packet::PubRel(..)
        | Packet::PubComp(..) => {}
        other => panic!("forwarded a packet a client does not send: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::conn::Proto;
    use proptest::prelude::*;

    /// Well-formed packets are written with rumqttd's own encoder.
    fn encode(p: Packet, v5: bool) -> Vec<u8> {
        let mut b = bytes::BytesMut::new();
        let proto = if v5 { Proto::V5 } else { Proto::V4 };
        proto.write(p, &mut b).expect("rumqttd encodes it");
        b.to_vec()
    }

    fn publish(topic: &str, payload: &[u8], v5: bool) -> Vec<u8> {
        let p = rumqttd::protocol::Publish::new(
            bytes::Bytes::copy_from_slice(topic.as_bytes()),
            bytes::Bytes::copy_from_slice(payload),
            false,
        );
        encode(Packet::Publish(p, None), v5)
    }

    fn subscribe(filters: &[&str], v5: bool) -> Vec<u8> {
        use rumqttd::protocol::{Filter, QoS, RetainForwardRule, Subscribe};
        let filters = filters
            .iter()
            .map(|f| Filter {
                path: (*f).to_owned(),
                qos: QoS::AtLeastOnce,
                nolocal: false,
                preserve_retain: false,
                retain_forward_rule: RetainForwardRule::OnEverySubscribe,
            })
            .collect();
        encode(Packet::Subscribe(Subscribe { pkid: 9, filters }, None), v5)
    }

    /// An MQTT 5 subscription whose property block declares 1 byte but holds a 5-byte
    /// subscription identifier whose value bytes, read the standard way, start a filter `#`
    /// (written by hand: no encoder writes this).
    fn overrunning_subscribe() -> Vec<u8> {
        let mut body = vec![0, 9, 0x01, 0x0B, 0x01, 0x00, 0x01, b'#', 0x01];
        body.extend_from_slice(&16u16.to_be_bytes());
        body.extend_from_slice(b"docket/v1/events");
        body.push(1);
        let mut p = vec![0x82, body.len() as u8];
        p.extend(body);
        p
    }

    const DEVICE: &str = "tab-1";

    fn allowed() -> Vec<String> {
        vec![
            "docket/v1/cmd/tab-1".into(),
            "docket/v1/devices/tab-1/presence".into(),
        ]
    }

    fn any_topic() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("docket/v1/cmd/tab-1".to_owned()),
            Just("docket/v1/devices/tab-1/presence".to_owned()),
            Just("docket/v1/cmd/tab-2".to_owned()),
            Just("docket/v1/events".to_owned()),
            Just("docket/v1/reply/tab-2".to_owned()),
            Just("docket/v1/board/grill".to_owned()),
            "[a-z/#+]{0,20}",
        ]
    }

    fn any_filter() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("docket/v1/reply/tab-1".to_owned()),
            Just("docket/v1/events".to_owned()),
            Just("docket/v1/board/+".to_owned()),
            Just("docket/v1/menu".to_owned()),
            Just("docket/v1/reply/#".to_owned()),
            Just("docket/v1/cmd/+".to_owned()),
            Just("#".to_owned()),
            "[a-z/#+]{0,20}",
        ]
    }

    /// A stream of packets a device might send: well formed, forbidden, or with bytes changed.
    fn stream(v5: bool) -> impl Strategy<Value = Vec<u8>> {
        let one = prop_oneof![
            (any_topic(), proptest::collection::vec(any::<u8>(), 0..64))
                .prop_map(move |(t, p)| publish(&t, &p, v5)),
            proptest::collection::vec(any_filter(), 1..4).prop_map(move |f| {
                let f: Vec<&str> = f.iter().map(String::as_str).collect();
                subscribe(&f, v5)
            }),
            Just(vec![0xC0, 0]),
            Just(overrunning_subscribe()),
            proptest::collection::vec(any::<u8>(), 0..16),
        ];
        (
            proptest::collection::vec(one, 1..8),
            proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        )
            .prop_map(|(packets, flips)| {
                let mut all: Vec<u8> = packets.concat();
                for (at, x) in flips {
                    if !all.is_empty() {
                        let i = at % all.len();
                        all[i] ^= x;
                    }
                }
                all
            })
    }

    proptest! {
        /// Random and mutated packet streams: nothing panics, nothing outside the ACL is
        /// forwarded (`replay` asserts it), and how the bytes are split never changes what is.
        #[test]
        fn whatever_is_forwarded_is_what_the_acl_approved(
            v5 in any::<bool>(),
            bytes in (any::<bool>()).prop_flat_map(stream),
            pieces in proptest::collection::vec(1usize..40, 1..20),
        ) {
            let proto = if v5 { Proto::V5 } else { Proto::V4 };
            let whole = replay(proto, DEVICE, true, &bytes, &[bytes.len().max(1)]);
            let split = replay(proto, DEVICE, true, &bytes, &pieces);
            prop_assert_eq!(format!("{whole:?}"), format!("{split:?}"));
        }
    }

    #[test]
    fn only_the_devices_own_plain_commands_skip_the_router() {
        let mut out = Outbound::new(true);
        let cmd = |topic: &str, qos: QoS, retain: bool| {
            // Publish::deserialize is rumqttd's public way to a publish with a QoS and an id.
            let mut b = vec![0x30 | u8::from(retain) | ((qos as u8) << 1), 0, 1];
            b.extend_from_slice(&(topic.len() as u16).to_be_bytes());
            b.extend_from_slice(topic.as_bytes());
            b.push(b'x');
            Packet::Publish(Publish::deserialize(bytes::Bytes::from(b)), None)
        };
        let own = "docket/v1/cmd/tab-1";
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            let step = judge(DEVICE, true, &mut out, cmd(own, qos, false));
            assert!(matches!(step, Step::Command(..)), "{qos:?}: {step:?}");
        }
        // Exactly-once and retained commands, and the bare broker, keep the router's path.
        for (p, acl) in [
            (cmd(own, QoS::ExactlyOnce, false), true),
            (cmd(own, QoS::AtLeastOnce, true), true),
            (cmd(own, QoS::AtLeastOnce, false), false),
        ] {
            let step = judge(DEVICE, acl, &mut out, p);
            assert!(matches!(step, Step::Forward(_)), "{step:?}");
        }
        // The device's own presence is taken by the session (ACL on or off), never forwarded.
        let presence = "docket/v1/devices/tab-1/presence";
        for (qos, acl, ack) in [
            (QoS::AtMostOnce, true, None),
            (QoS::AtLeastOnce, true, Some(1)),
            (QoS::AtLeastOnce, false, Some(1)),
        ] {
            let step = judge(DEVICE, acl, &mut out, cmd(presence, qos, false));
            assert!(
                matches!(step, Step::Presence(false, a) if a == ack),
                "{qos:?} acl {acl}: {step:?}"
            );
        }
        // Another device's command topic is outside the ACL, whatever its QoS.
        let step = judge(
            DEVICE,
            true,
            &mut out,
            cmd("docket/v1/cmd/tab-2", QoS::AtMostOnce, false),
        );
        assert!(matches!(step, Step::Stop(Stop::Acl(_))), "{step:?}");
    }

    #[test]
    fn an_overrunning_subscription_is_refused_not_read_as_events() {
        let (fwd, stop) = replay(Proto::V5, DEVICE, true, &overrunning_subscribe(), &[1000]);
        assert!(fwd.is_empty(), "{fwd:?}");
        assert!(stop.is_some_and(|s| s.contains("malformed")));
    }

    #[test]
    fn allowed_traffic_is_forwarded_as_parsed() {
        for v5 in [false, true] {
            let proto = if v5 { Proto::V5 } else { Proto::V4 };
            let mut bytes = subscribe(&["docket/v1/reply/tab-1", "docket/v1/board/+"], v5);
            for t in allowed() {
                bytes.extend(publish(&t, b"x", v5));
            }
            bytes.extend([0xC0, 0]);
            let (fwd, stop) = replay(proto, DEVICE, true, &bytes, &[7]);
            // The subscription and the command; the presence is the session's own.
            assert_eq!((fwd.len(), stop), (2, None), "v5 {v5}");
            let (fwd, stop) = replay(
                proto,
                DEVICE,
                true,
                &publish("docket/v1/events", b"x", v5),
                &[3],
            );
            assert!(fwd.is_empty());
            assert_eq!(
                stop.as_deref(),
                Some("Acl(Violation(\"publish on \\\"docket/v1/events\\\"\"))")
            );
        }
    }
}
