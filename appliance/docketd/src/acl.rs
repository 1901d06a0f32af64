//! The device topic ACL: what a tablet or screen may publish and subscribe to.
//!
//! rumqttd has no per-topic authorisation: any logged-in device could publish fake replies on
//! another tablet's reply topic ("your order is in" for an order that is not), fake events that
//! screens would show, or retained junk on any topic (kept in memory until restart). The front
//! door (TCP and WebSocket) therefore reads the MQTT packets a client sends as they pass and cuts
//! the connection at the first one outside the rules below, before any of its bytes reach the
//! broker. It reads only what it checks (fixed headers, CONNECT, a PUBLISH's topic, SUBSCRIBE);
//! payloads stream through untouched.
//!
//! A device (client id = its device id) may:
//! - publish on `docket/v1/cmd/{itself}` and `docket/v1/devices/{itself}/presence` (also as its
//!   will);
//! - subscribe to `docket/v1/reply/{itself}`, `docket/v1/events`, `docket/v1/menu`,
//!   `docket/v1/appliance/status` and `docket/v1/board/{station}` (or `docket/v1/board/+`).
//!
//! Pure: bytes in, verdict out.

use docket_core::wire;

/// Largest CONNECT or SUBSCRIBE packet read whole (real ones are a few hundred bytes).
const MAX_INSPECTED: usize = 64 * 1024;

const CONNECT: u8 = 1;
const PUBLISH: u8 = 3;
const SUBSCRIBE: u8 = 8;

/// Why a connection was cut.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Violation(pub String);

fn violation(s: impl Into<String>) -> Violation {
    Violation(s.into())
}

#[derive(Debug)]
enum State {
    /// Reading a fixed header: the first byte, then the remaining-length varint.
    Header {
        first: Option<u8>,
        len: usize,
        shift: u32,
    },
    /// Collecting the first `need` body bytes of a packet of `total` bytes.
    Collect { kind: u8, need: usize, total: usize },
    /// Passing the rest of a packet through.
    Skip(usize),
}

/// One client connection's ACL state: feed it every byte the client sends, in order.
#[derive(Debug)]
pub struct Acl {
    state: State,
    buf: Vec<u8>,
    device: Option<String>,
    v5: bool,
}

impl Default for Acl {
    fn default() -> Self {
        Acl::new()
    }
}

impl Acl {
    pub fn new() -> Self {
        Acl {
            state: State::Header {
                first: None,
                len: 0,
                shift: 0,
            },
            buf: Vec::new(),
            device: None,
            v5: false,
        }
    }

    /// The device id from the CONNECT, once seen.
    pub fn device(&self) -> Option<&str> {
        self.device.as_deref()
    }

    /// Checks the next bytes from the client. On `Err`, cut the connection and forward none
    /// of `data`.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), Violation> {
        while !data.is_empty() {
            match &mut self.state {
                State::Header { first, len, shift } => {
                    let b = data[0];
                    data = &data[1..];
                    let Some(f) = *first else {
                        *first = Some(b);
                        continue;
                    };
                    *len |= usize::from(b & 0x7f) << *shift;
                    if b & 0x80 != 0 {
                        *shift += 7;
                        if *shift >= 28 {
                            return Err(violation("malformed packet length"));
                        }
                        continue;
                    }
                    let (kind, total) = (f >> 4, *len);
                    self.start(kind, total)?;
                }
                State::Collect { kind, need, total } => {
                    let (kind, need, total) = (*kind, *need, *total);
                    let take = (need - self.buf.len()).min(data.len());
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.buf.len() == need {
                        self.collected(kind, need, total)?;
                    }
                }
                State::Skip(n) => {
                    let take = (*n).min(data.len());
                    *n -= take;
                    data = &data[take..];
                    if *n == 0 {
                        self.next_packet();
                    }
                }
            }
        }
        Ok(())
    }

    fn next_packet(&mut self) {
        self.buf.clear();
        self.state = State::Header {
            first: None,
            len: 0,
            shift: 0,
        };
    }

    fn start(&mut self, kind: u8, total: usize) -> Result<(), Violation> {
        if self.device.is_none() && kind != CONNECT {
            return Err(violation("a packet before CONNECT"));
        }
        self.buf.clear();
        match kind {
            CONNECT | SUBSCRIBE if total > MAX_INSPECTED => Err(violation(format!(
                "a {} of {total} bytes",
                if kind == CONNECT {
                    "CONNECT"
                } else {
                    "SUBSCRIBE"
                }
            ))),
            CONNECT if self.device.is_some() => Err(violation("a second CONNECT")),
            CONNECT | SUBSCRIBE => self.collect(kind, total, total),
            // The topic's length first; `collected` extends the need to the topic.
            PUBLISH => self.collect(kind, total.min(2), total),
            _ => self.skip(total),
        }
    }

    fn collect(&mut self, kind: u8, need: usize, total: usize) -> Result<(), Violation> {
        if need == 0 {
            return self.collected(kind, 0, total);
        }
        self.state = State::Collect { kind, need, total };
        Ok(())
    }

    fn skip(&mut self, n: usize) -> Result<(), Violation> {
        if n == 0 {
            self.next_packet();
        } else {
            self.state = State::Skip(n);
        }
        Ok(())
    }

    fn collected(&mut self, kind: u8, have: usize, total: usize) -> Result<(), Violation> {
        match kind {
            CONNECT => {
                self.connect()?;
                self.next_packet();
                Ok(())
            }
            SUBSCRIBE => {
                self.subscribe()?;
                self.next_packet();
                Ok(())
            }
            _ if have == 2 && total > 2 => {
                let topic_len = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
                if 2 + topic_len > total {
                    return Err(violation("malformed PUBLISH"));
                }
                if topic_len == 0 {
                    return Err(violation(
                        "a PUBLISH without a topic (topic aliases are not accepted)",
                    ));
                }
                self.collect(kind, 2 + topic_len, total)
            }
            _ if have < 2 => Err(violation("malformed PUBLISH")),
            _ => {
                let device = self.device.as_deref().unwrap_or_default();
                let topic = std::str::from_utf8(&self.buf[2..])
                    .map_err(|_| violation("a PUBLISH topic that is not UTF-8"))?;
                if topic != wire::cmd_topic(device) && topic != wire::presence_topic(device) {
                    return Err(violation(format!("publish on {topic:?}")));
                }
                self.skip(total - have)
            }
        }
    }

    fn connect(&mut self) -> Result<(), Violation> {
        let bad = || violation("malformed CONNECT");
        let mut r = Reader(&self.buf);
        let name = r.bytes().ok_or_else(bad)?;
        if name != b"MQTT" && name != b"MQIsdp" {
            return Err(bad());
        }
        let level = r.u8().ok_or_else(bad)?;
        let flags = r.u8().ok_or_else(bad)?;
        r.take(2).ok_or_else(bad)?; // keep-alive
        self.v5 = level == 5;
        if self.v5 {
            r.properties().ok_or_else(bad)?;
        }
        let id = String::from_utf8(r.bytes().ok_or_else(bad)?.to_vec()).map_err(|_| bad())?;
        if flags & 0x04 != 0 {
            if self.v5 {
                r.properties().ok_or_else(bad)?;
            }
            let topic = r.bytes().ok_or_else(bad)?;
            if topic != wire::presence_topic(&id).as_bytes() {
                return Err(violation(format!(
                    "a will on {:?}",
                    String::from_utf8_lossy(topic)
                )));
            }
        }
        self.device = Some(id);
        Ok(())
    }

    fn subscribe(&mut self) -> Result<(), Violation> {
        let bad = || violation("malformed SUBSCRIBE");
        let device = self.device.clone().unwrap_or_default();
        let mut r = Reader(&self.buf);
        r.take(2).ok_or_else(bad)?; // packet id
        if self.v5 {
            r.properties().ok_or_else(bad)?;
        }
        if r.0.is_empty() {
            return Err(bad());
        }
        while !r.0.is_empty() {
            let filter = std::str::from_utf8(r.bytes().ok_or_else(bad)?).map_err(|_| bad())?;
            r.u8().ok_or_else(bad)?; // options
            if !may_subscribe(&device, filter) {
                return Err(violation(format!("subscribe to {filter:?}")));
            }
        }
        Ok(())
    }
}

/// The filters a device may subscribe to.
pub fn may_subscribe(device: &str, filter: &str) -> bool {
    if filter == wire::reply_topic(device)
        || filter == wire::EVENTS_TOPIC
        || filter == wire::MENU_TOPIC
        || filter == wire::STATUS_TOPIC
    {
        return true;
    }
    filter
        .strip_prefix("docket/v1/board/")
        .is_some_and(|s| !s.is_empty() && !s.contains(['/', '#']) && (s == "+" || !s.contains('+')))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// A 2-byte length, then that many bytes.
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.take(2)?;
        self.take(usize::from(u16::from_be_bytes([n[0], n[1]])))
    }

    /// MQTT 5 properties: a varint length, then that many bytes (skipped).
    fn properties(&mut self) -> Option<()> {
        let mut len = 0usize;
        for shift in [0, 7, 14, 21] {
            let b = self.u8()?;
            len |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return self.take(len).map(|_| ());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn remaining(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let mut b = (n % 128) as u8;
            n /= 128;
            if n > 0 {
                b |= 0x80;
            }
            out.push(b);
            if n == 0 {
                return;
            }
        }
    }

    fn s(x: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(&(x.len() as u16).to_be_bytes());
        out.extend_from_slice(x.as_bytes());
    }

    fn packet(first: u8, body: Vec<u8>) -> Vec<u8> {
        let mut p = vec![first];
        remaining(body.len(), &mut p);
        p.extend(body);
        p
    }

    fn connect(id: &str, level: u8, will: Option<&str>) -> Vec<u8> {
        let mut b = Vec::new();
        s("MQTT", &mut b);
        b.push(level);
        b.push(0xC2 | if will.is_some() { 0x2C } else { 0 });
        b.extend_from_slice(&[0, 30]);
        if level == 5 {
            b.extend_from_slice(&[3, 0x21, 0, 10]); // properties: receive maximum
        }
        s(id, &mut b);
        if let Some(t) = will {
            if level == 5 {
                b.push(0);
            }
            s(t, &mut b);
            s("offline", &mut b);
        }
        s(id, &mut b);
        s("secret", &mut b);
        packet(0x10, b)
    }

    fn publish(topic: &str, payload: &[u8], level: u8) -> Vec<u8> {
        let mut b = Vec::new();
        s(topic, &mut b);
        b.extend_from_slice(&[0, 7]); // packet id (QoS 1)
        if level == 5 {
            b.push(0);
        }
        b.extend_from_slice(payload);
        packet(0x32, b)
    }

    fn subscribe(filters: &[&str], level: u8) -> Vec<u8> {
        let mut b = vec![0, 9];
        if level == 5 {
            b.push(0);
        }
        for f in filters {
            s(f, &mut b);
            b.push(1);
        }
        packet(0x82, b)
    }

    fn check(bytes: &[u8]) -> Result<(), Violation> {
        Acl::new().feed(bytes)
    }

    fn session(level: u8, rest: &[Vec<u8>]) -> Vec<u8> {
        let mut all = connect("tab-1", level, Some("docket/v1/devices/tab-1/presence"));
        for p in rest {
            all.extend_from_slice(p);
        }
        all
    }

    #[test]
    fn a_well_behaved_device_passes() {
        for level in [4, 5] {
            let bytes = session(
                level,
                &[
                    subscribe(&["docket/v1/reply/tab-1", "docket/v1/events"], level),
                    subscribe(&["docket/v1/board/grill", "docket/v1/board/+"], level),
                    subscribe(&["docket/v1/menu", "docket/v1/appliance/status"], level),
                    publish("docket/v1/devices/tab-1/presence", b"online", level),
                    publish("docket/v1/cmd/tab-1", &[0xAB; 100_000], level),
                    vec![0xC0, 0],       // PINGREQ
                    vec![0xA2, 2, 0, 3], // UNSUBSCRIBE-ish: passed through
                    vec![0xE0, 0],       // DISCONNECT
                ],
            );
            let mut acl = Acl::new();
            assert_eq!(acl.feed(&bytes), Ok(()), "level {level}");
            assert_eq!(acl.device(), Some("tab-1"));
        }
    }

    #[test]
    fn everything_else_is_cut_with_a_reason() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                session(4, &[publish("docket/v1/reply/tab-2", b"x", 4)]),
                "reply/tab-2",
            ),
            (
                session(4, &[publish("docket/v1/events", b"x", 4)]),
                "events",
            ),
            (
                session(4, &[publish("docket/v1/board/grill", b"x", 4)]),
                "board",
            ),
            (
                session(4, &[publish("docket/v1/cmd/tab-2", b"x", 4)]),
                "cmd/tab-2",
            ),
            (session(4, &[publish("junk/1", b"x", 4)]), "junk"),
            (session(5, &[publish("", b"x", 5)]), "alias"),
            (session(4, &[subscribe(&["#"], 4)]), "#"),
            (
                session(4, &[subscribe(&["docket/v1/reply/+"], 4)]),
                "reply/+",
            ),
            (
                session(4, &[subscribe(&["docket/v1/reply/tab-2"], 4)]),
                "reply/tab-2",
            ),
            (
                session(4, &[subscribe(&["docket/v1/board/#"], 4)]),
                "board/#",
            ),
            (
                session(
                    4,
                    &[subscribe(
                        &["docket/v1/events", "$share/g/docket/v1/events"],
                        4,
                    )],
                ),
                "$share",
            ),
            (session(4, &[connect("tab-1", 4, None)]), "CONNECT"),
            (connect("tab-1", 4, Some("docket/v1/events")), "will"),
            (publish("docket/v1/cmd/tab-1", b"x", 4), "before CONNECT"),
            (vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], "length"),
        ];
        for (bytes, what) in cases {
            let r = check(&bytes);
            assert!(r.is_err(), "{what}: passed");
        }
    }

    #[test]
    fn the_reason_names_the_topic() {
        let e = check(&session(4, &[publish("docket/v1/reply/tab-2", b"x", 4)])).unwrap_err();
        assert_eq!(e.0, "publish on \"docket/v1/reply/tab-2\"");
    }

    proptest! {
        /// However the bytes are split into reads, the verdict is the same.
        #[test]
        fn chunking_does_not_change_the_verdict(
            good in any::<bool>(),
            level in prop_oneof![Just(4u8), Just(5u8)],
            cuts in proptest::collection::vec(1usize..64, 1..100),
        ) {
            let topic = if good { "docket/v1/cmd/tab-1" } else { "docket/v1/events" };
            let bytes = session(level, &[
                subscribe(&["docket/v1/events"], level),
                publish(topic, &[1; 300], level),
                publish("docket/v1/cmd/tab-1", &[2; 10], level),
            ]);
            let whole = check(&bytes);
            let mut acl = Acl::new();
            let mut rest = &bytes[..];
            let mut chunked = Ok(());
            for c in cuts.iter().cycle() {
                if rest.is_empty() || chunked.is_err() {
                    break;
                }
                let n = (*c).min(rest.len());
                chunked = acl.feed(&rest[..n]);
                rest = &rest[n..];
            }
            prop_assert_eq!(whole.is_ok(), good);
            prop_assert_eq!(chunked, whole);
        }

        /// Arbitrary bytes never panic.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = check(&bytes);
            let mut after_login = session(4, &[]);
            after_login.extend(bytes);
            let _ = check(&after_login);
        }
    }
}
