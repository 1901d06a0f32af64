//! Strict MQTT 5: a packet whose properties do not add up is refused.
//!
//! rumqttd's MQTT 5 reader reads a property whole even when it runs past the property length the
//! packet declared, keeps only the last of a repeated single-use property, and ignores bytes left
//! at the end of a packet. A peer (or a middlebox) that reads the same bytes the standard way then
//! sees a different packet: another client id, another will, other filters. So after rumqttd has
//! parsed a packet, this checks that what it parsed accounts for exactly the bytes the packet
//! declared: each property block's declared length equals the encoded length of the properties
//! parsed out of it, and the parsed fields fill the fixed header's remaining length.
//!
//! It never reinterprets a packet: offsets come from the parsed fields, and the only bytes read
//! here are the property lengths rumqttd itself read at those offsets. Pure.

use rumqttd::protocol::{
    ConnectProperties, DisconnectProperties, LastWillProperties, Packet, PublishProperties,
    SubscribeProperties, UnsubscribeProperties,
};

/// How much of a frame is kept for this check (a real CONNECT is a few hundred bytes; property
/// blocks past this are refused).
pub const HEAD: usize = 8 * 1024;

/// Why a packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed MQTT 5 {what}: {why}")]
pub struct Malformed {
    pub what: &'static str,
    pub why: String,
}

fn bad(what: &'static str, why: impl Into<String>) -> Malformed {
    Malformed {
        what,
        why: why.into(),
    }
}

/// The encoded size of a variable byte integer.
pub fn vlen(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

fn s(len: usize) -> usize {
    1 + 2 + len
}

fn users(u: &[(String, String)]) -> usize {
    u.iter().map(|(k, v)| 1 + 2 + k.len() + 2 + v.len()).sum()
}

fn opt<T>(o: &Option<T>, size: impl Fn(&T) -> usize) -> usize {
    o.as_ref().map_or(0, size)
}

pub fn connect_props(p: &ConnectProperties) -> usize {
    opt(&p.session_expiry_interval, |_| 5)
        + opt(&p.receive_maximum, |_| 3)
        + opt(&p.max_packet_size, |_| 5)
        + opt(&p.topic_alias_max, |_| 3)
        + opt(&p.request_response_info, |_| 2)
        + opt(&p.request_problem_info, |_| 2)
        + users(&p.user_properties)
        + opt(&p.authentication_method, |m| s(m.len()))
        + opt(&p.authentication_data, |d| s(d.len()))
}

pub fn will_props(p: &LastWillProperties) -> usize {
    opt(&p.delay_interval, |_| 5)
        + opt(&p.payload_format_indicator, |_| 2)
        + opt(&p.message_expiry_interval, |_| 5)
        + opt(&p.content_type, |c| s(c.len()))
        + opt(&p.response_topic, |t| s(t.len()))
        + opt(&p.correlation_data, |d| s(d.len()))
        + users(&p.user_properties)
}

pub fn publish_props(p: &PublishProperties) -> usize {
    opt(&p.payload_format_indicator, |_| 2)
        + opt(&p.message_expiry_interval, |_| 5)
        + opt(&p.topic_alias, |_| 3)
        + opt(&p.response_topic, |t| s(t.len()))
        + opt(&p.correlation_data, |d| s(d.len()))
        + users(&p.user_properties)
        + p.subscription_identifiers
            .iter()
            .map(|id| 1 + vlen(*id))
            .sum::<usize>()
        + opt(&p.content_type, |c| s(c.len()))
}

pub fn subscribe_props(p: &SubscribeProperties) -> usize {
    opt(&p.id, |id| 1 + vlen(*id)) + users(&p.user_properties)
}

pub fn unsubscribe_props(p: &UnsubscribeProperties) -> usize {
    users(&p.user_properties)
}

fn ack_props(reason: &Option<String>, u: &[(String, String)]) -> usize {
    opt(reason, |r| s(r.len())) + users(u)
}

pub fn disconnect_props(p: &DisconnectProperties) -> usize {
    opt(&p.session_expiry_interval, |_| 5)
        + opt(&p.reason_string, |r| s(r.len()))
        + users(&p.user_properties)
        + opt(&p.server_reference, |r| s(r.len()))
}

/// The property length declared at `at` in the frame: (value, bytes it took).
fn declared(head: &[u8], at: usize, what: &'static str) -> Result<(usize, usize), Malformed> {
    let (mut n, mut shift) = (0usize, 0);
    for i in 0..4 {
        let b = *head
            .get(at + i)
            .ok_or_else(|| bad(what, "property block beyond the checked head"))?;
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            if vlen(n) != i + 1 {
                return Err(bad(what, "property length not in its shortest form"));
            }
            return Ok((n, i + 1));
        }
        shift += 7;
    }
    Err(bad(what, "property length over 4 bytes"))
}

/// One property block: declared at `at`, `parsed` bytes' worth parsed out of it.
fn block(head: &[u8], at: usize, parsed: usize, what: &'static str) -> Result<usize, Malformed> {
    let (declared, took) = declared(head, at, what)?;
    if declared != parsed {
        return Err(bad(
            what,
            format!("properties declared {declared} bytes but hold {parsed}"),
        ));
    }
    Ok(took + declared)
}

fn fill(what: &'static str, remaining: usize, parsed: usize) -> Result<(), Malformed> {
    if parsed != remaining {
        return Err(bad(
            what,
            format!("its fields take {parsed} of the {remaining} bytes it declared"),
        ));
    }
    Ok(())
}

/// Checks a packet rumqttd's MQTT 5 codec parsed. `head`: the frame's first bytes (up to
/// [`HEAD`]); `fixed`: its fixed header's length; `remaining`: its remaining length.
pub fn check(head: &[u8], fixed: usize, remaining: usize, p: &Packet) -> Result<(), Malformed> {
    match p {
        Packet::Connect(c, props, will, will_props_, login) => {
            const WHAT: &str = "CONNECT";
            // Protocol name (2 + 4), level, flags, keep-alive.
            let at = fixed + 10;
            let mut used = 10 + block(head, at, opt(props, connect_props), WHAT)?;
            used += 2 + c.client_id.len();
            if let Some(w) = will {
                used += block(head, fixed + used, opt(will_props_, will_props), "will")?;
                used += 2 + w.topic.len() + 2 + w.message.len();
            } else if will_props_.is_some() {
                return Err(bad(WHAT, "will properties without a will"));
            }
            let flags = head.get(fixed + 7).copied().unwrap_or(0);
            if let Some(l) = login {
                if flags & 0x80 != 0 {
                    used += 2 + l.username.len();
                }
                if flags & 0x40 != 0 {
                    used += 2 + l.password.len();
                }
            }
            fill(WHAT, remaining, used)
        }
        Packet::Publish(publish, props) => {
            const WHAT: &str = "PUBLISH";
            let topic = publish.topic.len();
            // `len()` counts a packet id exactly when the QoS has one.
            let pkid = publish.len() - (2 + topic + publish.payload.len());
            let at = fixed + 2 + topic + pkid;
            let used = 2 + topic + pkid + block(head, at, opt(props, publish_props), WHAT)?;
            fill(WHAT, remaining, used + publish.payload.len())
        }
        Packet::Subscribe(sub, props) => {
            const WHAT: &str = "SUBSCRIBE";
            let mut used = 2 + block(head, fixed + 2, opt(props, subscribe_props), WHAT)?;
            used += sub
                .filters
                .iter()
                .map(|f| 2 + f.path.len() + 1)
                .sum::<usize>();
            fill(WHAT, remaining, used)
        }
        Packet::Unsubscribe(unsub, props) => {
            const WHAT: &str = "UNSUBSCRIBE";
            let mut used = 2 + block(head, fixed + 2, opt(props, unsubscribe_props), WHAT)?;
            used += unsub.filters.iter().map(|f| 2 + f.len()).sum::<usize>();
            fill(WHAT, remaining, used)
        }
        Packet::PubAck(_, props) => ack(
            head,
            fixed,
            remaining,
            "PUBACK",
            props
                .as_ref()
                .map(|p| ack_props(&p.reason_string, &p.user_properties)),
        ),
        Packet::PubRec(_, props) => ack(
            head,
            fixed,
            remaining,
            "PUBREC",
            props
                .as_ref()
                .map(|p| ack_props(&p.reason_string, &p.user_properties)),
        ),
        Packet::PubRel(_, props) => ack(
            head,
            fixed,
            remaining,
            "PUBREL",
            props
                .as_ref()
                .map(|p| ack_props(&p.reason_string, &p.user_properties)),
        ),
        Packet::PubComp(_, props) => ack(
            head,
            fixed,
            remaining,
            "PUBCOMP",
            props
                .as_ref()
                .map(|p| ack_props(&p.reason_string, &p.user_properties)),
        ),
        Packet::Disconnect(_, props) => {
            const WHAT: &str = "DISCONNECT";
            if remaining < 2 {
                return Ok(());
            }
            let used = 1 + block(head, fixed + 1, opt(props, disconnect_props), WHAT)?;
            fill(WHAT, remaining, used)
        }
        _ => Ok(()),
    }
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP: packet id, then (from 4 bytes on) reason and properties.
fn ack(
    head: &[u8],
    fixed: usize,
    remaining: usize,
    what: &'static str,
    parsed: Option<usize>,
) -> Result<(), Malformed> {
    if remaining < 4 {
        return Ok(());
    }
    let used = 3 + block(head, fixed + 3, parsed.unwrap_or(0), what)?;
    fill(what, remaining, used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::conn::codec::{Proto, ReadError};
    use bytes::{Bytes, BytesMut};
    use rumqttd::protocol::{
        Connect, Filter, LastWill, Login, Publish, QoS, RetainForwardRule, Subscribe, Unsubscribe,
    };

    fn users() -> Vec<(String, String)> {
        vec![("a".into(), "1".into()), ("bb".into(), "22".into())]
    }

    fn full_connect() -> Packet {
        Packet::Connect(
            Connect {
                keep_alive: 30,
                client_id: "tab-1".into(),
                clean_session: true,
            },
            Some(ConnectProperties {
                session_expiry_interval: Some(10),
                receive_maximum: Some(20),
                max_packet_size: Some(1 << 20),
                topic_alias_max: Some(0),
                request_response_info: Some(1),
                request_problem_info: Some(1),
                user_properties: users(),
                authentication_method: Some("m".into()),
                authentication_data: Some(Bytes::from_static(b"data")),
            }),
            Some(LastWill {
                topic: Bytes::from_static(b"docket/v1/devices/tab-1/presence"),
                message: Bytes::from_static(b"offline"),
                qos: QoS::AtLeastOnce,
                retain: true,
            }),
            Some(LastWillProperties {
                delay_interval: Some(5),
                payload_format_indicator: Some(1),
                message_expiry_interval: Some(60),
                content_type: Some("text/plain".into()),
                response_topic: Some("r".into()),
                correlation_data: Some(Bytes::from_static(b"c")),
                user_properties: users(),
            }),
            Some(Login {
                username: "tab-1".into(),
                password: "secret".into(),
            }),
        )
    }

    fn full_publish() -> Packet {
        Packet::Publish(
            Publish::new(
                Bytes::from_static(b"docket/v1/cmd/tab-1"),
                Bytes::from_static(b"payload"),
                false,
            ),
            Some(PublishProperties {
                payload_format_indicator: Some(1),
                message_expiry_interval: Some(9),
                topic_alias: None,
                response_topic: Some("r".into()),
                correlation_data: Some(Bytes::from_static(b"cd")),
                user_properties: users(),
                subscription_identifiers: vec![],
                content_type: Some("application/cbor".into()),
            }),
        )
    }

    fn full_subscribe() -> Packet {
        Packet::Subscribe(
            Subscribe {
                pkid: 3,
                filters: vec![Filter {
                    path: "docket/v1/events".into(),
                    qos: QoS::AtLeastOnce,
                    nolocal: false,
                    preserve_retain: false,
                    retain_forward_rule: RetainForwardRule::OnEverySubscribe,
                }],
            },
            Some(SubscribeProperties {
                id: Some(300),
                user_properties: users(),
            }),
        )
    }

    fn encode(p: Packet) -> BytesMut {
        let mut b = BytesMut::new();
        Proto::V5.write(p, &mut b).unwrap();
        b
    }

    /// What rumqttd's own MQTT 5 encoder writes passes: the sizes here are its sizes.
    #[test]
    fn what_rumqttd_encodes_adds_up() {
        let unsub = Packet::Unsubscribe(
            Unsubscribe {
                pkid: 4,
                filters: vec!["a".into(), "b/c".into()],
            },
            Some(UnsubscribeProperties {
                user_properties: users(),
            }),
        );
        for p in [full_connect(), full_publish(), full_subscribe(), unsub] {
            let mut b = encode(p.clone());
            let back = Proto::V5.read(&mut b, 1 << 20, &mut Vec::new());
            assert_eq!(back.ok(), Some(p));
        }
    }

    /// Bytes of a packet with its property block replaced by `props` (whole block, length
    /// included) and the remaining length fixed up.
    fn with_props(packet: &[u8], at: usize, old_len: usize, props: &[u8]) -> Vec<u8> {
        let body_start = 2; // the test packets are under 128 bytes
        let mut body = packet[body_start..at].to_vec();
        body.extend_from_slice(props);
        body.extend_from_slice(&packet[at + old_len..]);
        let mut out = vec![packet[0], body.len() as u8];
        out.extend(body);
        out
    }

    fn refused(bytes: &[u8]) -> Option<String> {
        let mut b = BytesMut::from(bytes);
        match Proto::V5.read(&mut b, 1 << 20, &mut Vec::new()) {
            Ok(p) => {
                assert!(b.is_empty(), "bytes left over");
                let _ = p;
                None
            }
            Err(ReadError::Short(_)) => panic!("a whole packet read as short"),
            Err(e) => Some(e.to_string()),
        }
    }

    #[test]
    fn overruns_duplicates_unknown_ids_and_leftovers_are_refused() {
        // A plain MQTT 5 CONNECT: props at offset 2 + 10, an empty block (one 0 byte).
        let base = {
            let mut b = Vec::new();
            b.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 5, 0xC2, 0, 30, 0]);
            for f in ["tab-1", "tab-1", "secret"] {
                b.extend_from_slice(&(f.len() as u16).to_be_bytes());
                b.extend_from_slice(f.as_bytes());
            }
            let mut p = vec![0x10, b.len() as u8];
            p.extend(b);
            p
        };
        assert_eq!(refused(&base), None);
        let at = 12;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            // Declares 1 byte, holds a 5-byte session expiry.
            ("overrun", with_props(&base, at, 1, &[1, 0x11, 0, 0, 0, 10])),
            // Two session expiries: rumqttd keeps the last.
            (
                "duplicate",
                with_props(&base, at, 1, &[10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2]),
            ),
            // Property id 0x7F does not exist; 0x23 (topic alias) is not a CONNECT property.
            ("unknown id", with_props(&base, at, 1, &[2, 0x7F, 0])),
            ("foreign id", with_props(&base, at, 1, &[3, 0x23, 0, 1])),
            // A length in a longer form than needed.
            ("long form", with_props(&base, at, 1, &[0x80, 0x00])),
            // Bytes after the password.
            ("leftover", {
                let mut p = base.clone();
                p[1] += 2;
                p.extend_from_slice(&[0xAB, 0xCD]);
                p
            }),
        ];
        for (what, bytes) in cases {
            assert!(refused(&bytes).is_some(), "{what} passed");
        }
        // The same overrun in a PUBLISH: props right after the topic.
        let p = encode(Packet::Publish(
            Publish::new(
                Bytes::from_static(b"t"),
                Bytes::from_static(b"abcdef"),
                false,
            ),
            None,
        ));
        assert_eq!(refused(&p), None);
        let overrun = with_props(&p, 2 + 3, 1, &[1, 0x02, 0, 0, 0]);
        assert!(refused(&overrun).is_some_and(|e| e.contains("PUBLISH")));
    }
}
