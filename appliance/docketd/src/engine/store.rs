//! What the engine needs of the store ([`Store`]): the open orders at start (and again after a
//! failed commit), recorded replies, closed orders, a replay page, and one group commit. The
//! real one is the SQLite writer, [`crate::store::Store`], implemented here; the engine's tests
//! use an in-memory one.
//!
//! Owns nothing: the schema, the SQL and what is durable are `crate::store`'s. Must not decide
//! or publish anything.

use docket_core::Order;

use crate::store::{Batch, Loaded, StoreError};

/// The engine's store: the only writer of events, orders and recorded replies.
pub trait Store {
    /// Open orders, the last seq, the next ticket and the latest stamp.
    fn load(&self) -> Result<Loaded, StoreError>;
    /// The first reply recorded for this device's command id.
    fn recorded_reply(&self, device: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Any order, open or closed.
    fn order(&self, id: &str) -> Result<Option<Order>, StoreError>;
    /// Up to `limit` encoded events after `after_seq`, in order.
    fn events_after(&self, after_seq: u64, limit: usize) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Writes the whole batch or nothing.
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError>;
}

impl Store for crate::store::Store {
    fn load(&self) -> Result<Loaded, StoreError> {
        crate::store::Store::load(self)
    }

    fn recorded_reply(&self, device: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        crate::store::Store::recorded_reply(self, device, id)
    }

    fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        crate::store::Store::order(self, id)
    }

    fn events_after(&self, after_seq: u64, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        crate::store::Store::events_after(self, after_seq, limit)
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        crate::store::Store::commit(self, batch)
    }
}
