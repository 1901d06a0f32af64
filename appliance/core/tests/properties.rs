//! Properties of the state machine and the exactly-once rule, over random command sequences.

use docket_core::ledger::Ledger;
use docket_core::wire::{self, CommandBody, LineInput};
use docket_core::{Actor, LineStatus, Menu, OrderBook, Role};
use proptest::prelude::*;

fn menu() -> Menu {
    Menu::sample(&[
        ("burger", "grill"),
        ("fries", "fry"),
        ("salad", "cold"),
        ("ipa", "bar"),
    ])
}

fn manager() -> Actor {
    Actor {
        device: "mgr".into(),
        role: Role::Manager,
        stations: vec![],
    }
}

const ITEMS: [&str; 5] = ["burger", "fries", "salad", "ipa", "unicorn"];
const STATIONS: [&str; 5] = ["grill", "fry", "cold", "bar", "moon"];

fn line() -> impl Strategy<Value = LineInput> {
    (0..ITEMS.len(), 0u32..4, prop::option::of(1u32..4)).prop_map(|(i, qty, course)| LineInput {
        course,
        ..LineInput::plain(ITEMS[i], qty)
    })
}

/// Commands over a handful of order ids so that they hit real orders often.
fn command() -> impl Strategy<Value = CommandBody> {
    let oid = (1u64..6).prop_map(docket_core::decide::order_id);
    let st = (0..STATIONS.len()).prop_map(|i| STATIONS[i].to_string());
    prop_oneof![
        3 => (prop::collection::vec(line(), 0..4)).prop_map(|lines| CommandBody::place("7", lines)),
        1 => (oid.clone(), prop::collection::vec(line(), 0..3)).prop_map(|(order_id, lines)| CommandBody::AddLines { order_id, lines }),
        1 => (oid.clone(), 0u32..5).prop_map(|(order_id, line)| CommandBody::VoidLine { order_id, line }),
        1 => (oid.clone(), 0u32..4).prop_map(|(order_id, course)| CommandBody::FireCourse { order_id, course }),
        2 => (oid.clone(), st.clone()).prop_map(|(order_id, station)| CommandBody::Bump { order_id, station }),
        1 => (oid.clone(), st).prop_map(|(order_id, station)| CommandBody::Recall { order_id, station }),
        1 => oid.clone().prop_map(|order_id| CommandBody::Complete { order_id }),
        1 => (oid.clone(), 0u32..5).prop_map(|(order_id, line)| CommandBody::BumpLine { order_id, line }),
        1 => (oid, any::<bool>()).prop_map(|(order_id, rush)| CommandBody::SetRush { order_id, rush }),
    ]
}

fn fresh() -> Ledger {
    Ledger::new(OrderBook {
        menu: Some(menu()),
        orders: Default::default(),
        next_ticket: 1,
        limits: Default::default(),
        open_bytes: Default::default(),
    })
}

fn managers() -> Vec<Actor> {
    (0..4)
        .map(|d| Actor {
            device: format!("mgr-{d}"),
            role: Role::Manager,
            stations: vec![],
        })
        .collect()
}

/// One delivery: which device sends which of its commands (ids collide across devices).
#[derive(Debug, Clone, Copy)]
struct Send {
    device: usize,
    command: usize,
}

/// Batches of deliveries (re-sends included), each committed or not (a full disk).
fn batches(per_device: usize) -> impl Strategy<Value = Vec<(Vec<Send>, bool)>> {
    let send = (0..4usize, 0..per_device).prop_map(|(device, command)| Send { device, command });
    prop::collection::vec(
        (
            prop::collection::vec(send, 1..8),
            prop::bool::weighted(0.75),
        ),
        1..25,
    )
}

proptest! {
    /// Many devices whose command ids collide, re-sends within a batch and across batches, and
    /// commits that fail: a command (device, id) is applied at most once, in its first committed
    /// batch; a copy of a committed command gets its first reply, whatever batch it comes in; a
    /// command a failed commit took is answered "send it again" and, sent again, decided anew.
    /// The end state and log are those of applying each command once, in order of its first
    /// committed arrival.
    #[test]
    fn exactly_once_by_device_and_id_through_failed_commits(
        bodies in prop::collection::vec(prop::collection::vec(command(), 6), 4),
        batches in batches(6),
    ) {
        let actors = managers();
        let ids: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
        let mut noisy = fresh();
        let mut first: std::collections::HashMap<(usize, usize), wire::Reply> = Default::default();
        let mut order: Vec<(usize, usize)> = Vec::new();
        for (sends, committed) in &batches {
            let cmds: Vec<(&str, &Actor, &CommandBody)> = sends
                .iter()
                .map(|s| (ids[s.command].as_str(), &actors[s.device], &bodies[s.device][s.command]))
                .collect();
            let replies = noisy.handle_batch(&cmds, 0, *committed);
            prop_assert_eq!(replies.len(), sends.len());
            let mut in_batch: Vec<(usize, usize)> = Vec::new();
            for (s, r) in sends.iter().zip(&replies) {
                let key = (s.device, s.command);
                prop_assert_eq!(&r.command, &ids[s.command]);
                match first.get(&key) {
                    // Committed before: its first reply, even in a batch that fails.
                    Some(f) => prop_assert_eq!(f, r, "a copy of a committed command"),
                    None if !committed => {
                        let retry = docket_core::ledger::retry_reply(&ids[s.command]);
                        prop_assert_eq!(&retry, r, "a command a failed commit took");
                    }
                    None => {
                        if !in_batch.contains(&key) {
                            in_batch.push(key);
                        }
                    }
                }
            }
            if *committed {
                for (s, r) in sends.iter().zip(&replies) {
                    first.entry((s.device, s.command)).or_insert_with(|| r.clone());
                }
                order.extend(in_batch);
            }
        }
        let mut clean = fresh();
        for &(d, c) in &order {
            let r = clean.handle(&ids[c], &actors[d], &bodies[d][c], 0);
            prop_assert_eq!(&r, &first[&(d, c)], "the reply of its one decision");
        }
        prop_assert_eq!(&noisy.site, &clean.site);
        prop_assert_eq!(&noisy.log, &clean.log);
        prop_assert_eq!(noisy.replies.len(), order.len());
    }

    /// Any delivery of the commands, with duplicates and re-sends in any order, yields the same
    /// state, log and replies as applying each distinct command once, in order of first arrival.
    #[test]
    fn duplicates_and_reorders_converge(
        cmds in prop::collection::vec(command(), 1..40),
        deliveries in prop::collection::vec(any::<prop::sample::Index>(), 0..80),
        shuffle_seed in any::<u64>(),
    ) {
        let ids: Vec<String> = (0..cmds.len()).map(|i| format!("c{i}")).collect();
        // Transport: each command once, plus extra copies at random places.
        let mut stream: Vec<usize> = (0..cmds.len()).collect();
        for (k, d) in deliveries.iter().enumerate() {
            let which = d.index(cmds.len());
            let at = ((shuffle_seed as usize).wrapping_add(k * 7919)) % (stream.len() + 1);
            stream.insert(at, which);
        }
        let mut first_arrival: Vec<usize> = Vec::new();
        for &i in &stream {
            if !first_arrival.contains(&i) {
                first_arrival.push(i);
            }
        }

        let mut noisy = fresh();
        let mut replies = std::collections::HashMap::new();
        for &i in &stream {
            let r = noisy.handle(&ids[i], &manager(), &cmds[i], 0);
            if let Some(prev) = replies.get(&i) {
                let prev: &wire::Reply = prev;
                prop_assert_eq!(prev, &r, "a re-sent command must get its first reply");
            }
            replies.entry(i).or_insert(r);
        }
        let mut clean = fresh();
        for &i in &first_arrival {
            clean.handle(&ids[i], &manager(), &cmds[i], 0);
        }
        prop_assert_eq!(&noisy.site, &clean.site);
        prop_assert_eq!(&noisy.log, &clean.log);
    }

    /// Seq is gapless from 1; each order's versions grow by one per event; completed orders take
    /// no line changes; a line's station always comes from the menu.
    #[test]
    fn invariants_hold(cmds in prop::collection::vec(command(), 1..60)) {
        let mut l = fresh();
        for (i, c) in cmds.iter().enumerate() {
            let before = l.site.clone();
            let r = l.handle(&format!("c{i}"), &manager(), c, 0);
            if !r.ok {
                prop_assert_eq!(&before, &l.site, "a rejection changed state");
            }
            // The open orders' byte count kept change by change is what counting them gives.
            prop_assert_eq!(
                &l.site.open_bytes,
                &docket_core::open_bytes::OpenBytes::of(&l.site.orders)
            );
            if let Some(oid) = c.order_id() {
                if let Some(o) = before.orders.get(oid) {
                    if !o.is_open() {
                        prop_assert!(!r.ok, "completed order accepted {:?}", c);
                        prop_assert_eq!(r.error.as_ref().unwrap().code.as_str(), "order_closed");
                    }
                }
            }
        }
        let mut versions = std::collections::HashMap::new();
        for (k, e) in l.log.iter().enumerate() {
            prop_assert_eq!(e.seq, k as u64 + 1);
            let v = versions.entry(e.order_id.clone()).or_insert(0u64);
            prop_assert_eq!(e.version, *v + 1);
            *v = e.version;
            prop_assert_eq!(e.order.version, e.version);
        }
        let m = menu();
        for o in l.site.orders.values() {
            for line in &o.lines {
                prop_assert_eq!(&m.item(&line.item).unwrap().station, &line.station);
                prop_assert!(line.status != LineStatus::Held || line.course > o.fired_course);
            }
        }
    }

    /// CBOR round trip of every command body.
    #[test]
    fn command_bodies_round_trip(c in command()) {
        let bytes = wire::encode(&c).unwrap();
        prop_assert_eq!(wire::decode_body(&bytes).unwrap(), c);
    }

    /// Decoding arbitrary bytes never panics.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = wire::decode::<wire::Envelope>(&bytes);
        let _ = wire::decode_body(&bytes);
    }
}
