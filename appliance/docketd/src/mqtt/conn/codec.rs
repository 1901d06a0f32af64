//! The one MQTT parser: rumqttd's own codecs (`protocol::v4::V4`, `protocol::v5::V5`), used as
//! published, with the MQTT 5 strictness check ([`super::strict`]) on every packet they parse.
//!
//! Owns the choice of codec per connection and nothing else; what a packet means is the
//! session's business.

use bytes::BytesMut;
use rumqttd::protocol::{
    self, v4::V4, v5::V5, ConnectReturnCode as C, Disconnect, DisconnectReasonCode, Packet,
    Protocol, QoS, SubscribeReasonCode as S,
};

use super::strict;

/// The protocol a connection speaks: fixed by the listener it came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// MQTT 3.1.1 (the 3.1.1 port and `/mqtt`).
    V4,
    /// MQTT 5.
    V5,
}

/// Why bytes could not become a packet.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not enough bytes yet: at least this many more.
    #[error("{0} more bytes needed")]
    Short(usize),
    #[error(transparent)]
    Codec(protocol::Error),
    #[error(transparent)]
    Strict(#[from] strict::Malformed),
    /// A packet type rumqttd's MQTT 5 reader has no branch for (it would panic).
    #[error("MQTT 5 packet type {0} is not read here")]
    Unreadable(u8),
}

impl From<protocol::Error> for ReadError {
    fn from(e: protocol::Error) -> Self {
        match e {
            protocol::Error::InsufficientBytes(n) => ReadError::Short(n),
            e => ReadError::Codec(e),
        }
    }
}

impl Proto {
    /// Takes the next whole packet off the front of `buf` (rumqttd's `read_mut`). For MQTT 5
    /// the frame's head is kept in `scratch` for the strictness check first.
    pub fn read(
        self,
        buf: &mut BytesMut,
        max: usize,
        scratch: &mut Vec<u8>,
    ) -> Result<Packet, ReadError> {
        // Frame first (MQTT's fixed header is the same in every version; rumqttd's 3.1.1
        // framing exposes its parts): only a frame that is incomplete means "read more". Once a
        // whole frame is there, a reader that still wants bytes has found the packet shorter
        // than its own fields (rumqttd's readers have already taken the frame off the buffer).
        let fixed = protocol::v4::check(buf.iter(), max)?;
        let whole = |e: protocol::Error| match e {
            protocol::Error::InsufficientBytes(_) => {
                ReadError::Codec(protocol::Error::MalformedPacket)
            }
            e => ReadError::Codec(e),
        };
        match self {
            Proto::V4 => V4.read_mut(buf, max).map_err(whole),
            Proto::V5 => {
                let kind = fixed.byte1 >> 4;
                // rumqttd's MQTT 5 reader hits `unreachable!` on CONNACK and UNSUBACK: packets
                // only a server sends, so a client sending one is refused before it is read.
                if matches!(kind, 2 | 11) {
                    return Err(ReadError::Unreadable(kind));
                }
                if kind == 14 && fixed.remaining_len == 1 {
                    // A DISCONNECT with only a reason code (its property length may be left
                    // out): rumqttd's reader insists on one.
                    let reason = buf[fixed.fixed_header_len];
                    let _ = buf.split_to(fixed.frame_length());
                    let reason_code = match reason {
                        0 => DisconnectReasonCode::NormalDisconnection,
                        _ => DisconnectReasonCode::DisconnectWithWillMessage,
                    };
                    return Ok(Packet::Disconnect(Disconnect { reason_code }, None));
                }
                scratch.clear();
                scratch.extend_from_slice(&buf[..fixed.frame_length().min(strict::HEAD)]);
                let p = V5.read_mut(buf, max).map_err(whole)?;
                strict::check(scratch, fixed.fixed_header_len, fixed.remaining_len, &p)?;
                Ok(p)
            }
        }
    }

    /// Encodes a packet for this protocol (rumqttd's `write`), converted to it first: a message
    /// that crosses versions loses what the other version cannot say (rumqttd's 3.1.1 encoder
    /// panics on a packet with MQTT 5 properties, and each version's CONNACK encoder on the
    /// other's codes). Writes nothing for a packet the version has no form of.
    pub fn write(self, p: Packet, out: &mut BytesMut) -> Result<usize, protocol::Error> {
        match self {
            Proto::V4 => match for_v4(p) {
                Some(p) => V4.write(p, out),
                None => Ok(0),
            },
            Proto::V5 => V5.write(for_v5(p), out),
        }
    }

    pub fn is_v5(self) -> bool {
        self == Proto::V5
    }
}

/// A packet as MQTT 3.1.1 can carry it: no properties, 3.1.1 codes only, no server DISCONNECT.
pub fn for_v4(p: Packet) -> Option<Packet> {
    Some(match p {
        Packet::Connect(c, _, will, _, login) => Packet::Connect(c, None, will, None, login),
        Packet::ConnAck(mut a, _) => {
            a.code = v4_connack(a.code);
            Packet::ConnAck(a, None)
        }
        Packet::Publish(p, _) => Packet::Publish(p, None),
        Packet::PubAck(a, _) => Packet::PubAck(a, None),
        Packet::Subscribe(s, _) => Packet::Subscribe(s, None),
        Packet::SubAck(mut s, _) => {
            for c in &mut s.return_codes {
                *c = v4_suback(*c);
            }
            Packet::SubAck(s, None)
        }
        Packet::PubRec(a, _) => Packet::PubRec(a, None),
        Packet::PubRel(a, _) => Packet::PubRel(a, None),
        Packet::PubComp(a, _) => Packet::PubComp(a, None),
        Packet::Unsubscribe(u, _) => Packet::Unsubscribe(u, None),
        Packet::UnsubAck(u, _) => Packet::UnsubAck(u, None),
        // A 3.1.1 server never sends DISCONNECT: it closes the connection.
        Packet::Disconnect(..) => return None,
        Packet::PingReq(p) => Packet::PingReq(p),
        Packet::PingResp(p) => Packet::PingResp(p),
    })
}

/// A packet as MQTT 5 says it: 3.1.1-only CONNACK codes become their MQTT 5 reason codes.
fn for_v5(p: Packet) -> Packet {
    match p {
        Packet::ConnAck(mut a, props) => {
            a.code = match a.code {
                C::RefusedProtocolVersion => C::UnsupportedProtocolVersion,
                C::ServiceUnavailable => C::ServerUnavailable,
                c => c,
            };
            Packet::ConnAck(a, props)
        }
        p => p,
    }
}

/// A parsed PUBLISH's QoS and packet id. rumqttd keeps both to itself; its `serialize` (the
/// inverse of `deserialize`) writes them in the first three bytes, here of a copy without topic
/// or payload (two reference counts, no copy of the message).
pub fn delivery(p: &protocol::Publish) -> (QoS, u16) {
    let mut bare = p.clone();
    bare.topic = bytes::Bytes::new();
    bare.payload = bytes::Bytes::new();
    let b = bare.serialize();
    let qos = match (b[0] >> 1) & 0b11 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    (qos, u16::from_be_bytes([b[1], b[2]]))
}

fn v4_connack(c: C) -> C {
    match c {
        C::Success => C::Success,
        C::RefusedProtocolVersion | C::UnsupportedProtocolVersion => C::RefusedProtocolVersion,
        C::ClientIdentifierNotValid => C::ClientIdentifierNotValid,
        C::BadUserNamePassword | C::BadAuthenticationMethod => C::BadUserNamePassword,
        C::NotAuthorized | C::Banned => C::NotAuthorized,
        _ => C::ServiceUnavailable,
    }
}

fn v4_suback(c: S) -> S {
    match c {
        S::QoS0 | S::Success(QoS::AtMostOnce) => S::QoS0,
        S::QoS1 | S::Success(QoS::AtLeastOnce) => S::QoS1,
        S::QoS2 | S::Success(QoS::ExactlyOnce) => S::QoS2,
        _ => S::Failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_reads_the_qos_and_packet_id_a_publish_was_sent_with() {
        for (qos, pkid) in [
            (QoS::AtMostOnce, 0u16),
            (QoS::AtLeastOnce, 1),
            (QoS::AtLeastOnce, 0xBEEF),
            (QoS::ExactlyOnce, 7),
        ] {
            let mut b = BytesMut::new();
            b.extend_from_slice(&[0x30 | ((qos as u8) << 1), 0]);
            b.extend_from_slice(&[0, 3, b'a', b'/', b'b']);
            if qos != QoS::AtMostOnce {
                b.extend_from_slice(&pkid.to_be_bytes());
            }
            b.extend_from_slice(b"payload");
            b[1] = (b.len() - 2) as u8;
            let mut scratch = Vec::new();
            let Ok(Packet::Publish(p, _)) = Proto::V4.read(&mut b, 1024, &mut scratch) else {
                panic!("not read as a PUBLISH");
            };
            assert_eq!(delivery(&p), (qos, pkid));
            assert_eq!(&p.payload[..], b"payload");
        }
    }
    use bytes::Bytes;
    use rumqttd::protocol::{
        ConnAck, ConnAckProperties, PubAck, PubAckProperties, PubAckReason, Publish,
        PublishProperties, SubAck,
    };

    fn props() -> PublishProperties {
        PublishProperties {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(60),
            user_properties: vec![("origin".into(), "v5".into())],
            content_type: Some("application/cbor".into()),
            ..Default::default()
        }
    }

    /// Every packet the router can hand a connection, with MQTT 5 properties and codes, encodes
    /// for a 3.1.1 device without a panic (rumqttd's 3.1.1 encoder alone hits `unreachable!`).
    #[test]
    fn anything_the_router_sends_encodes_for_both_versions() {
        let packets = vec![
            Packet::Publish(
                Publish::new(Bytes::from("t"), Bytes::from("x"), false),
                Some(props()),
            ),
            Packet::PubAck(
                PubAck {
                    pkid: 1,
                    reason: PubAckReason::NotAuthorized,
                },
                Some(PubAckProperties {
                    reason_string: Some("no".into()),
                    user_properties: vec![],
                }),
            ),
            Packet::SubAck(
                SubAck {
                    pkid: 2,
                    return_codes: vec![S::Success(QoS::AtLeastOnce), S::NotAuthorized, S::QoS0],
                },
                None,
            ),
            Packet::ConnAck(
                ConnAck {
                    session_present: false,
                    code: C::Banned,
                },
                Some(ConnAckProperties::default()),
            ),
            Packet::ConnAck(
                ConnAck {
                    session_present: false,
                    code: C::ServiceUnavailable,
                },
                None,
            ),
            Packet::Disconnect(
                Disconnect {
                    reason_code: DisconnectReasonCode::SessionTakenOver,
                },
                None,
            ),
        ];
        for p in packets {
            for proto in [Proto::V4, Proto::V5] {
                if proto == Proto::V5 && matches!(p, Packet::Disconnect(..)) {
                    let mut out = BytesMut::new();
                    proto.write(p.clone(), &mut out).unwrap();
                    let back = proto.read(&mut out, 1 << 20, &mut Vec::new()).unwrap();
                    assert!(matches!(
                        back,
                        Packet::Disconnect(d, _)
                            if d.reason_code == DisconnectReasonCode::DisconnectWithWillMessage
                    ));
                    continue;
                }
                let mut out = BytesMut::new();
                proto.write(p.clone(), &mut out).unwrap();
                if proto == Proto::V4 && matches!(p, Packet::Disconnect(..)) {
                    assert!(out.is_empty());
                    continue;
                }
                if proto == Proto::V5 && matches!(p, Packet::ConnAck(..)) {
                    // A client's codec is refused a CONNACK (see below); the bytes are there.
                    assert!(matches!(
                        proto.read(&mut out, 1 << 20, &mut Vec::new()),
                        Err(ReadError::Unreadable(2))
                    ));
                    continue;
                }
                // What was written reads back with the same codec.
                let back = proto.read(&mut out, 1 << 20, &mut Vec::new()).unwrap();
                if proto == Proto::V4 {
                    match back {
                        Packet::Publish(p, props) => {
                            assert_eq!((&p.payload[..], props), (&b"x"[..], None));
                        }
                        Packet::SubAck(s, _) => {
                            let want = [
                                S::Success(QoS::AtLeastOnce),
                                S::Failure,
                                S::Success(QoS::AtMostOnce),
                            ];
                            assert_eq!(s.return_codes, want);
                        }
                        Packet::ConnAck(a, _) => {
                            assert!(matches!(a.code, C::NotAuthorized | C::ServiceUnavailable))
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}
