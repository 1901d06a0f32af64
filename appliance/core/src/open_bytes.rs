//! What a site's open orders weigh on the wire: each open order's CBOR size and their total, kept
//! change by change so that `decide` can hold the total under [`MAX_OPEN_BYTES`] without
//! encoding every open order for every command. A board carries at most all open orders, so this
//! is also the bound on a board (the broker's packets are at most 2 MiB).

use std::collections::{BTreeMap, HashMap};

use crate::order::Order;

/// The open orders' encodings together: every board (its orders are a subset) stays under the
/// broker's 2 MiB packet limit with room for its header.
pub const MAX_OPEN_BYTES: usize = 1536 * 1024;

/// Each open order's encoded size, and their sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenBytes {
    sizes: HashMap<String, usize>,
    total: usize,
}

impl OpenBytes {
    /// Counted from scratch (at start, after a reload).
    pub fn of(orders: &BTreeMap<String, Order>) -> Self {
        let mut b = OpenBytes::default();
        for o in orders.values() {
            b.note(o, size(o));
        }
        b
    }

    /// The sum over the open orders.
    pub fn total(&self) -> usize {
        self.total
    }

    /// How many orders are open (without scanning them).
    pub fn count(&self) -> usize {
        self.sizes.len()
    }

    /// What `id` counts now (0 when it is not open, or new).
    pub fn of_order(&self, id: &str) -> usize {
        self.sizes.get(id).copied().unwrap_or(0)
    }

    /// `order` is now `bytes` long: counted while open, dropped once closed.
    pub fn note(&mut self, order: &Order, bytes: usize) {
        let was = self.sizes.remove(&order.id).unwrap_or(0);
        self.total -= was;
        if order.is_open() {
            self.sizes.insert(order.id.clone(), bytes);
            self.total += bytes;
        }
    }
}

/// An order's CBOR size (what its events and its board entry carry).
pub fn size(order: &Order) -> usize {
    // Encoding plain data does not fail; were it to, the order counts as too large.
    crate::wire::encode(order).map_or(usize::MAX / 4, |b| b.len())
}
