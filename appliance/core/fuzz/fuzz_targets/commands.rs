//! Sequences of command bodies, from every kind of device, through the exactly-once ledger, with
//! the promises of docs/protocol.md checked after each one.
//!
//! The input is a run of chunks, each `[selector: u8][len: u16 LE][body: len bytes]` (a short
//! last body takes what is left). The selector picks the sender (its low two bits: manager,
//! tablet, station screen, expo) and the command id: with the high bit set, one of four ids that
//! repeat across the run (bits 2–3), so that re-sends hit the exactly-once path (a command is
//! its sender and its id: the same id from another device is another command); otherwise a
//! fresh id. Bodies that do not decode are skipped, as the engine answers them before the ledger.

#![no_main]

use std::collections::HashMap;

use docket_core::ledger::Ledger;
use docket_core::once::CommandKey;
use docket_core::wire::{self, CommandBody, Reply};
use docket_core::{Actor, Menu, OrderBook, Role};
use libfuzzer_sys::fuzz_target;

/// Chunks read per input: bounds the time one input takes (an order holds at most 200 lines).
const MAX_CHUNKS: usize = 128;

fuzz_target!(|data: &[u8]| run(data));

fn run(mut data: &[u8]) {
    let actors = actors();
    let mut ledger = Ledger::new(OrderBook {
        menu: Some(menu()),
        orders: Default::default(),
        next_ticket: 1,
        limits: Default::default(),
        open_bytes: Default::default(),
    });
    // The first reply the harness saw for each recorded command: who sent it and its id (the
    // same id from two devices is two commands).
    let mut first: HashMap<CommandKey, Reply> = HashMap::new();
    // Events per order in the log, counted as the log grows.
    let mut events: HashMap<String, u64> = HashMap::new();
    let mut counted = 0;

    for n in 0..MAX_CHUNKS {
        let Some((selector, bytes)) = next_chunk(&mut data) else {
            break;
        };
        let Ok(body) = wire::decode_body(bytes) else {
            continue;
        };
        let actor = &actors[usize::from(selector & 0b11)];
        let id = if selector & 0x80 != 0 {
            format!("r{}", (selector >> 2) & 0b11)
        } else {
            format!("c{n}")
        };
        let key = CommandKey::new(&actor.device, &id);
        let before = (ledger.last_seq, ledger.log.len(), ledger.site.clone());
        let reply = ledger.handle(&id, actor, &body, n as u64);

        if let Some(prev) = first.get(&key) {
            assert_eq!(&reply, prev, "re-sent {id} did not get its first reply");
            assert!(
                before == (ledger.last_seq, ledger.log.len(), ledger.site.clone()),
                "re-sent {id} changed the ledger"
            );
        } else if matches!(body, CommandBody::Replay { .. }) {
            // A query: never recorded, so the id stays free.
            assert!(reply.ok, "replay refused: {reply:?}");
            assert_eq!(reply.seq, Some(ledger.last_seq));
        } else {
            assert_eq!(
                ledger.replies.get(&key),
                Some(&reply),
                "{id}'s reply was not recorded"
            );
            if reply.ok {
                assert_eq!(
                    reply.seq,
                    Some(ledger.last_seq),
                    "ok reply's seq is not the last"
                );
                assert!(
                    ledger.log.len() > before.1,
                    "ok reply for {body:?} wrote no event"
                );
            } else {
                assert!(
                    reply.error.is_some(),
                    "rejection without an error: {reply:?}"
                );
                assert!(
                    before == (ledger.last_seq, ledger.log.len(), ledger.site.clone()),
                    "rejected {body:?} changed the ledger: {reply:?}"
                );
            }
            first.insert(key, reply);
        }

        // The log's seqs are exactly 1..=last_seq.
        assert_eq!(
            ledger.log.len() as u64,
            ledger.last_seq,
            "log length != last_seq"
        );
        for (k, e) in ledger.log.iter().enumerate() {
            assert_eq!(e.seq, k as u64 + 1, "gap or reorder in the log at {k}");
        }
        // Versions: +1 per event of the order, and every order's version is its event count.
        for e in &ledger.log[counted..] {
            let v = events.entry(e.order_id.clone()).or_insert(0);
            *v += 1;
            assert_eq!(
                e.version, *v,
                "event {} has version {}, expected {v}",
                e.seq, e.version
            );
            assert_eq!(
                e.order.version, e.version,
                "event {} carries another version",
                e.seq
            );
        }
        counted = ledger.log.len();
        for (oid, o) in &ledger.site.orders {
            assert_eq!(
                Some(&o.version),
                events.get(oid),
                "order {oid} has version {} but the log has another count of events",
                o.version
            );
        }
    }
}

/// The next `(selector, body)` chunk, or `None` when fewer than a header's 3 bytes remain.
fn next_chunk<'a>(data: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
    let (&[selector, lo, hi], rest) = data.split_first_chunk::<3>()?;
    let len = usize::from(u16::from_le_bytes([lo, hi])).min(rest.len());
    let (body, rest) = rest.split_at(len);
    *data = rest;
    Some((selector, body))
}

/// Indexed by the selector's low two bits.
fn actors() -> [Actor; 4] {
    let actor = |device: &str, role, stations: &[&str]| Actor {
        device: device.into(),
        role,
        stations: stations.iter().map(|s| s.to_string()).collect(),
    };
    [
        actor("mgr-1", Role::Manager, &[]),
        actor("tablet-1", Role::Tablet, &[]),
        actor("screen-1", Role::Station, &["grill", "fry"]),
        actor("expo-1", Role::Expo, &[]),
    ]
}

/// The menu of tests/properties.rs: four items on four stations.
fn menu() -> Menu {
    Menu::sample(&[
        ("burger", "grill"),
        ("fries", "fry"),
        ("salad", "cold"),
        ("ipa", "bar"),
    ])
}
