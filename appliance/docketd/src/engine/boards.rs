//! Board snapshots, encoded fast: each open order's CBOR is kept from one board to the next
//! until the order's version changes, and a board is its header followed by those encodings.
//! The bytes are exactly what encoding the whole [`wire::Board`] gives (the tests check it
//! against `docket_core::board` and `wire::encode`); only the work is less. Before this, every
//! board cloned, sorted and encoded each of its orders again: 0.6 ms a board with a busy
//! kitchen's open orders, on the engine thread, while commands waited.
//!
//! Owns the cache and nothing else: which orders a board shows is `docket_core::board`'s rule
//! (the same predicate, applied here to references).

use std::collections::{BTreeMap, HashMap};

use docket_core::wire::{self, Board, WireError};
use docket_core::Order;

#[derive(Default)]
pub struct Boards {
    /// Order id → (the version encoded, its CBOR).
    encoded: HashMap<String, (u64, Vec<u8>)>,
}

impl Boards {
    /// `station`'s board at `seq` from the site's `orders`, encoded for the wire.
    pub fn encode(
        &mut self,
        station: &str,
        seq: u64,
        orders: &BTreeMap<String, Order>,
    ) -> Result<Vec<u8>, WireError> {
        let mut shown: Vec<&Order> = orders
            .values()
            .filter(|o| docket_core::shows(station, o))
            .collect();
        shown.sort_by_key(|o| o.ticket);
        let mut out = header(station, seq)?;
        array_header(&mut out, shown.len());
        for o in shown {
            let fresh = match self.encoded.get(&o.id) {
                Some((v, bytes)) if *v == o.version => {
                    out.extend_from_slice(bytes);
                    continue;
                }
                _ => wire::encode(o)?,
            };
            out.extend_from_slice(&fresh);
            self.encoded.insert(o.id.clone(), (o.version, fresh));
        }
        Ok(out)
    }

    /// Drops the encodings of orders no longer in `orders` (they left the boards).
    pub fn prune(&mut self, orders: &BTreeMap<String, Order>) {
        self.encoded.retain(|id, _| orders.contains_key(id));
    }

    /// Forgets every encoding: the orders were reloaded from the store, and a version number
    /// may now stand for other contents (a batch whose commit failed was undone).
    pub fn clear(&mut self) {
        self.encoded.clear();
    }
}

/// A board without orders, less its empty array (`orders` is the struct's last field, so its
/// CBOR ends with the one byte of an empty array).
fn header(station: &str, seq: u64) -> Result<Vec<u8>, WireError> {
    let mut b = wire::encode(&Board {
        station: station.to_owned(),
        seq,
        orders: Vec::new(),
    })?;
    match b.pop() {
        Some(0x80) => Ok(b),
        _ => Err(WireError::Encode(
            "a board's CBOR does not end with its orders array".into(),
        )),
    }
}

/// The CBOR head of a definite-length array of `n` items (major type 4).
fn array_header(out: &mut Vec<u8>, n: usize) {
    match n {
        0..=23 => out.push(0x80 | n as u8),
        24..=0xFF => out.extend_from_slice(&[0x98, n as u8]),
        0x100..=0xFFFF => {
            out.push(0x99);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(0x9A);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docket_core::{Line, LineStatus, OrderStatus};
    use proptest::prelude::*;

    fn order(n: u64, stations: &[&str], status: OrderStatus) -> Order {
        Order {
            id: format!("o-{n}"),
            ticket: 1000 - n,
            table: format!("T{n}"),
            status,
            version: 1,
            lines: stations
                .iter()
                .enumerate()
                .map(|(i, s)| Line {
                    n: i as u32 + 1,
                    item: "burger".into(),
                    name: "Burger ♥".into(),
                    qty: 2,
                    mods: vec!["no onion".into()],
                    notes: (i == 0).then(|| "allergy: sesame".into()),
                    allergy: None,
                    course: 1,
                    station: (*s).to_owned(),
                    status: if i % 3 == 2 {
                        LineStatus::Held
                    } else {
                        LineStatus::Fired
                    },
                    fired_at: None,
                    seat: None,
                })
                .collect(),
            fired_course: 1,
            placed_at: 1_700_000_000_000 + n,
            rush: false,
            server: None,
            service: None,
            origin: None,
        }
    }

    fn same_as_the_whole_encoding(b: &mut Boards, orders: &BTreeMap<String, Order>, seq: u64) {
        for station in ["grill", "fry", "pastry", wire::EXPO] {
            let whole = wire::encode(&docket_core::board(station, seq, orders.values())).unwrap();
            assert_eq!(b.encode(station, seq, orders).unwrap(), whole, "{station}");
        }
    }

    #[test]
    fn array_heads_match_cbor4ii() {
        for n in [0usize, 1, 23, 24, 255, 256, 65_535, 65_536] {
            let mut head = Vec::new();
            array_header(&mut head, n);
            let whole = wire::encode(&vec![0u8; n]).unwrap();
            assert_eq!(&whole[..head.len()], &head[..], "{n}");
            assert_eq!(whole.len(), head.len() + n, "{n}: one byte per zero");
        }
    }

    proptest! {
        /// Boards built from cached encodings are byte for byte the whole encoding, through
        /// orders placed, changed (a new version), completed and pruned.
        #[test]
        fn cached_boards_are_the_whole_encoding(
            steps in proptest::collection::vec((0u64..40, 0usize..6, any::<bool>()), 1..60),
        ) {
            let all = ["grill", "fry", "pastry"];
            let mut orders = BTreeMap::new();
            let mut b = Boards::default();
            for (i, (n, mask, done)) in steps.into_iter().enumerate() {
                let stations: Vec<&str> =
                    all.iter().enumerate().filter(|(k, _)| mask & (1 << k) != 0 || *k == mask % 3).map(|(_, s)| *s).collect();
                let status = if done { OrderStatus::Completed } else { OrderStatus::Placed };
                let version = orders.get(&format!("o-{n}")).map_or(1, |o: &Order| o.version + 1);
                let mut o = order(n, &stations, status);
                o.version = version;
                orders.insert(o.id.clone(), o);
                same_as_the_whole_encoding(&mut b, &orders, i as u64);
                orders.retain(|_, o| o.is_open());
                b.prune(&orders);
            }
        }
    }
}
