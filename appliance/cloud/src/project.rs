//! What a batch of order events becomes at head office: one `docket.events` row per event, and
//! for each order it touched one `docket.orders` row and its `docket.order_lines` rows, as of
//! the order's highest version in the batch. Line ready times are kept across batches: a line
//! stays ready since the first event that showed it ready (or since what head office already
//! had), and loses its ready time when it stops being ready.
//!
//! Pure: plain data in, rows out, in head office's column types. Must not do I/O; `write` sends
//! the rows.

use std::collections::{BTreeMap, HashMap};

use docket_core::order::{LineStatus, Order, OrderStatus, Service};
use docket_core::wire::{Event, EventKind};

/// Line number → since when (ms) the line has been ready, for the ready lines of one order.
pub type ReadyAt = BTreeMap<u32, i64>;

/// A `docket.events` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow<'a> {
    pub seq: i64,
    pub kind: &'static str,
    pub order_id: &'a str,
    pub version: i64,
    pub device: &'a str,
    pub at: i64,
    /// The whole event as JSON (`json` there: kept as sent, checked to be JSON).
    pub body: String,
}

/// A `docket.orders` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow<'a> {
    pub order_id: &'a str,
    pub ticket: i64,
    pub table: &'a str,
    pub status: &'static str,
    pub version: i64,
    pub fired_course: i32,
    pub placed_at: i64,
    /// When this batch completed the order; `None` leaves what head office has.
    pub completed_at: Option<i64>,
    pub rush: bool,
    /// `dine_in`, `takeaway` or `delivery`.
    pub service: &'static str,
    pub server: Option<&'a str>,
}

/// A `docket.order_lines` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRow<'a> {
    pub order_id: &'a str,
    pub n: i32,
    pub item: &'a str,
    pub name: &'a str,
    pub qty: i32,
    /// The modifiers as a JSON array.
    pub mods: String,
    pub notes: Option<&'a str>,
    /// The guest's allergy, apart from the notes.
    pub allergy: Option<&'a str>,
    pub course: i32,
    pub station: &'a str,
    pub status: &'static str,
    /// From the box's menu; `None` for an item no longer on it.
    pub unit_price_cents: Option<i64>,
    pub ready_at: Option<i64>,
    /// The order's version (a line is only ever replaced by a newer one).
    pub version: i64,
    pub seat: Option<i32>,
    /// When it went to its station after the order's placement.
    pub fired_at: Option<i64>,
}

/// The orders a batch touched, as head office stores them: orders by id, each one's lines in
/// the order's own order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Orders<'a> {
    pub orders: Vec<OrderRow<'a>>,
    pub lines: Vec<LineRow<'a>>,
    /// Each order's ready lines (line → since when) once these rows are written: what head
    /// office's ready lines will say of it; `None` for a completed order, which no later event
    /// changes.
    pub ready: Vec<(&'a str, Option<ReadyAt>)>,
}

/// One row per event, in the batch's order.
pub fn event_rows(events: &[Event]) -> Result<Vec<EventRow<'_>>, serde_json::Error> {
    events
        .iter()
        .map(|e| {
            Ok(EventRow {
                seq: e.seq as i64,
                kind: e.kind.as_str(),
                order_id: &e.order_id,
                version: e.version as i64,
                device: &e.device,
                at: e.at as i64,
                body: serde_json::to_string(e)?,
            })
        })
        .collect()
}

/// The ids of the orders a batch touched, sorted, each once: whose ready lines head office
/// must say it has before [`orders`] can run.
pub fn touched_orders(events: &[Event]) -> Vec<&str> {
    let mut v: Vec<&str> = events.iter().map(|e| e.order_id.as_str()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// One order after a batch: its last state and when each line got ready.
struct Folded<'a> {
    order: &'a Order,
    completed_at: Option<i64>,
    ready_at: ReadyAt,
}

/// The touched orders' rows. `prior` is what head office already has of their ready lines (by
/// order id); `prices` the menu's prices in cents by item id.
pub fn orders<'a>(
    events: &'a [Event],
    prior: HashMap<String, ReadyAt>,
    prices: &HashMap<String, i64>,
) -> Result<Orders<'a>, serde_json::Error> {
    let mut out = Orders::default();
    for (id, p) in fold(events, prior) {
        let o = p.order;
        out.orders.push(OrderRow {
            order_id: id,
            ticket: o.ticket as i64,
            table: &o.table,
            status: o.status.as_str(),
            version: o.version as i64,
            fired_course: o.fired_course as i32,
            placed_at: o.placed_at as i64,
            completed_at: p.completed_at,
            rush: o.rush,
            service: o.service.unwrap_or(Service::DineIn).as_str(),
            server: o.server.as_deref(),
        });
        for l in &o.lines {
            out.lines.push(LineRow {
                order_id: id,
                n: l.n as i32,
                item: &l.item,
                name: &l.name,
                qty: l.qty as i32,
                mods: serde_json::to_string(&l.mods)?,
                notes: l.notes.as_deref(),
                allergy: l.allergy.as_deref(),
                course: l.course as i32,
                station: &l.station,
                status: l.status.as_str(),
                unit_price_cents: prices.get(&l.item).copied(),
                ready_at: p.ready_at.get(&l.n).copied(),
                version: o.version as i64,
                seat: l.seat.map(|s| s as i32),
                fired_at: l.fired_at.map(|t| t as i64),
            });
        }
        let ready = (o.lines.iter())
            .filter(|l| l.status == LineStatus::Ready)
            .filter_map(|l| Some((l.n, *p.ready_at.get(&l.n)?)))
            .collect();
        (out.ready).push((id, (o.status != OrderStatus::Completed).then_some(ready)));
    }
    Ok(out)
}

/// Walks the batch in order, keeping each order's highest version, its completion and its
/// lines' ready times.
fn fold(events: &[Event], mut prior: HashMap<String, ReadyAt>) -> BTreeMap<&str, Folded<'_>> {
    let mut folded: BTreeMap<&str, Folded> = BTreeMap::new();
    for e in events {
        let p = folded.entry(e.order_id.as_str()).or_insert_with(|| {
            let ready_at = prior.remove(&e.order_id).unwrap_or_default();
            Folded {
                order: &e.order,
                completed_at: None,
                ready_at,
            }
        });
        for l in &e.order.lines {
            if l.status == LineStatus::Ready {
                p.ready_at.entry(l.n).or_insert(e.at as i64);
            } else {
                p.ready_at.remove(&l.n);
            }
        }
        if e.kind == EventKind::OrderCompleted {
            p.completed_at = Some(e.at as i64);
        }
        if e.order.version >= p.order.version {
            p.order = &e.order;
        }
    }
    folded
}

#[cfg(test)]
mod tests {
    use docket_core::order::{Line, OrderStatus};

    use super::*;

    fn line(n: u32, item: &str, status: LineStatus) -> Line {
        Line {
            n,
            item: item.into(),
            name: item.to_uppercase(),
            qty: 1,
            mods: vec!["no salt".into()],
            notes: None,
            allergy: None,
            course: 1,
            station: "grill".into(),
            status,
            fired_at: None,
            seat: None,
        }
    }

    fn event(seq: u64, kind: EventKind, at: u64, order: &Order) -> Event {
        Event {
            seq,
            kind,
            order_id: order.id.clone(),
            version: order.version,
            command: format!("c{seq}"),
            device: "tablet-1".into(),
            at,
            order: order.clone(),
        }
    }

    fn order(id: &str, version: u64, status: OrderStatus, lines: Vec<Line>) -> Order {
        Order {
            id: id.into(),
            ticket: 7,
            table: "T4".into(),
            status,
            version,
            lines,
            fired_course: 1,
            placed_at: 1_000,
            rush: false,
            server: None,
            service: None,
            origin: None,
        }
    }

    fn prices() -> HashMap<String, i64> {
        HashMap::from([("burger".to_owned(), 1250)])
    }

    #[test]
    fn one_event_row_per_event_with_its_json() {
        let o = order("o1", 1, OrderStatus::Placed, vec![]);
        let events = [
            event(4, EventKind::OrderPlaced, 10, &o),
            event(5, EventKind::TicketBumped, 20, &o),
        ];
        let rows = event_rows(&events).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[1].seq, rows[1].kind, rows[1].order_id, rows[1].at),
            (5, "ticket_bumped", "o1", 20)
        );
        let back: Event = serde_json::from_str(&rows[0].body).unwrap();
        assert_eq!(back, events[0]);
    }

    #[test]
    fn an_order_is_its_highest_version_in_the_batch_and_orders_come_by_id() {
        let b1 = order(
            "b",
            1,
            OrderStatus::Placed,
            vec![line(1, "burger", LineStatus::Fired)],
        );
        let b2 = order(
            "b",
            2,
            OrderStatus::Placed,
            vec![line(1, "burger", LineStatus::Voided)],
        );
        let a1 = order(
            "a",
            1,
            OrderStatus::Placed,
            vec![line(1, "fries", LineStatus::Held)],
        );
        let events = [
            event(1, EventKind::OrderPlaced, 10, &b1),
            event(2, EventKind::OrderPlaced, 11, &a1),
            event(3, EventKind::LineVoided, 12, &b2),
        ];
        assert_eq!(touched_orders(&events), ["a", "b"]);
        let p = orders(&events, HashMap::new(), &prices()).unwrap();
        let ids: Vec<(&str, i64)> = p.orders.iter().map(|o| (o.order_id, o.version)).collect();
        assert_eq!(ids, [("a", 1), ("b", 2)]);
        let lines: Vec<(&str, &str, Option<i64>, i64)> = p
            .lines
            .iter()
            .map(|l| (l.order_id, l.status, l.unit_price_cents, l.version))
            .collect();
        assert_eq!(
            lines,
            [("a", "held", None, 1), ("b", "voided", Some(1250), 2)]
        );
        assert_eq!(p.lines[0].mods, r#"["no salt"]"#);
        assert_eq!(p.orders[0].completed_at, None);
    }

    #[test]
    fn a_line_is_ready_since_the_first_event_that_showed_it_and_until_it_is_not() {
        let ready = |v, s| order("o", v, s, vec![line(1, "burger", LineStatus::Ready)]);
        let events = [
            event(
                1,
                EventKind::TicketBumped,
                100,
                &ready(2, OrderStatus::Ready),
            ),
            event(
                2,
                EventKind::OrderCompleted,
                200,
                &ready(3, OrderStatus::Completed),
            ),
        ];
        let p = orders(&events, HashMap::new(), &prices()).unwrap();
        assert_eq!(p.lines[0].ready_at, Some(100));
        assert_eq!(p.orders[0].completed_at, Some(200));
        assert_eq!(p.orders[0].status, "completed");

        // What head office already had wins over this batch's later sighting.
        let prior = HashMap::from([("o".to_owned(), ReadyAt::from([(1, 50)]))]);
        let p = orders(&events, prior, &prices()).unwrap();
        assert_eq!(p.lines[0].ready_at, Some(50));

        // Recalled: no longer ready, so no ready time, whatever head office had.
        let recalled = order(
            "o",
            4,
            OrderStatus::Placed,
            vec![line(1, "burger", LineStatus::Fired)],
        );
        let prior = HashMap::from([("o".to_owned(), ReadyAt::from([(1, 50)]))]);
        let events = [event(3, EventKind::TicketRecalled, 300, &recalled)];
        let p = orders(&events, prior, &prices()).unwrap();
        assert_eq!((p.lines[0].ready_at, p.lines[0].status), (None, "fired"));
    }
}
