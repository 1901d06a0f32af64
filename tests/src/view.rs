//! What a screen shows, built from the retained board and the event stream by seq. Pure data:
//! no I/O (the client that feeds it lives in `mqtt` and `device`).

use docket_core::wire;

/// What a screen shows, built the way the protocol tells screens to: retained board snapshot,
/// then events with seq above it, `replay` on a gap.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub station: String,
    pub seq: u64,
    pub orders: std::collections::BTreeMap<String, docket_core::Order>,
}

impl View {
    pub fn from_board(b: wire::Board) -> View {
        View {
            station: b.station,
            seq: b.seq,
            orders: b.orders.into_iter().map(|o| (o.id.clone(), o)).collect(),
        }
    }

    /// Applies the next event; `Err(())` on a gap (the caller replays).
    #[allow(clippy::result_unit_err)]
    pub fn apply(&mut self, e: &wire::Event) -> Result<(), ()> {
        if e.seq <= self.seq {
            return Ok(());
        }
        if e.seq != self.seq + 1 {
            return Err(());
        }
        self.seq = e.seq;
        if docket_core::shows(&self.station, &e.order) {
            self.orders.insert(e.order_id.clone(), e.order.clone());
        } else {
            self.orders.remove(&e.order_id);
        }
        Ok(())
    }

    pub fn tickets(&self) -> Vec<u64> {
        let mut t: Vec<u64> = self.orders.values().map(|o| o.ticket).collect();
        t.sort();
        t
    }
}
