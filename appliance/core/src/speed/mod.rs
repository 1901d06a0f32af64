//! Speed of service: how long each station's tickets took, how many orders came in each quarter
//! hour, and which tickets ran late, folded from the event log in `seq` order.
//!
//! A station's ticket starts when the order first has a fired line at that station (placement,
//! a course fired, lines added to an order with nothing there yet, or a recall that reopens it)
//! and ends when a `ticket_bumped` (or a `line_bumped` of its last line) leaves none fired
//! there. A ticket that ends otherwise (its lines voided, the order completed early) is not a
//! ticket time. Pure: the daemon reads the events and the clock; `/admin` draws the result.

use std::collections::HashMap;

use serde::Serialize;

use crate::order::{LineStatus, Order};
use crate::wire::{Event, EventKind};

/// Quarter hours: the buckets of `orders per 15 minutes`.
pub const BUCKET_MS: u64 = 15 * 60 * 1000;
/// Late tickets listed at most (the newest).
pub const MAX_LATE_LISTED: usize = 20;

/// What the fold reports for the window `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Speed {
    pub from: u64,
    pub to: u64,
    pub late_ms: u64,
    /// Stations in the order their first ticket ended in the window.
    pub stations: Vec<StationSpeed>,
    /// One per quarter hour from `from` (aligned to `from`), up to `to`.
    pub buckets: Vec<Bucket>,
    /// The newest late tickets first, at most `MAX_LATE_LISTED`.
    pub late: Vec<LateTicket>,
    /// Orders placed in the window.
    pub orders: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StationSpeed {
    pub station: String,
    pub tickets: u64,
    pub p50_ms: u64,
    pub p90_ms: u64,
    pub max_ms: u64,
    /// Tickets that took longer than `late_ms`.
    pub late: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    pub start: u64,
    pub orders: u64,
    /// Station tickets bumped in this quarter hour.
    pub tickets: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LateTicket {
    pub ticket: u64,
    pub table: String,
    pub station: String,
    pub ms: u64,
    pub bumped_at: u64,
}

/// Feed it every event from a little before `from` (so tickets fired earlier and bumped in the
/// window count), in `seq` order; then `finish`.
#[derive(Debug)]
pub struct SpeedFold {
    from: u64,
    to: u64,
    late_ms: u64,
    /// Open tickets: order id → (station → when its ticket started).
    open: HashMap<String, HashMap<String, u64>>,
    /// Ticket times per station, in first-seen order.
    times: Vec<(String, Vec<u64>)>,
    buckets: Vec<Bucket>,
    late: Vec<LateTicket>,
    orders: u64,
}

impl SpeedFold {
    pub fn new(from: u64, to: u64, late_ms: u64) -> Self {
        let to = to.max(from);
        let n = (to - from).div_ceil(BUCKET_MS).max(1);
        let buckets = (0..n)
            .map(|i| Bucket {
                start: from + i * BUCKET_MS,
                orders: 0,
                tickets: 0,
            })
            .collect();
        SpeedFold {
            from,
            to,
            late_ms,
            open: HashMap::new(),
            times: Vec::new(),
            buckets,
            late: Vec::new(),
            orders: 0,
        }
    }

    fn bucket(&mut self, at: u64) -> Option<&mut Bucket> {
        if at < self.from || at >= self.to {
            return None;
        }
        let i = ((at - self.from) / BUCKET_MS) as usize;
        self.buckets.get_mut(i)
    }

    pub fn push(&mut self, e: &Event) {
        if e.kind == EventKind::OrderPlaced {
            if let Some(b) = self.bucket(e.at) {
                b.orders += 1;
                self.orders += 1;
            }
        }
        let now = fired_stations(&e.order);
        let open = self.open.entry(e.order_id.clone()).or_default();
        let ended: Vec<(String, u64)> = open
            .iter()
            .filter(|(s, _)| !now.contains(&s.as_str()))
            .map(|(s, t)| (s.clone(), *t))
            .collect();
        for s in now {
            open.entry(s.to_owned()).or_insert(e.at);
        }
        for (s, _) in &ended {
            open.remove(s);
        }
        if open.is_empty() {
            self.open.remove(&e.order_id);
        }
        if !matches!(e.kind, EventKind::TicketBumped | EventKind::LineBumped) {
            return; // voided away or completed early: not a ticket time
        }
        for (station, started) in ended {
            self.ticket(e, station, e.at.saturating_sub(started));
        }
    }

    fn ticket(&mut self, e: &Event, station: String, ms: u64) {
        let Some(b) = self.bucket(e.at) else {
            return; // bumped outside the window
        };
        b.tickets += 1;
        if ms > self.late_ms {
            self.late.push(LateTicket {
                ticket: e.order.ticket,
                table: e.order.table.clone(),
                station: station.clone(),
                ms,
                bumped_at: e.at,
            });
        }
        match self.times.iter_mut().find(|(s, _)| *s == station) {
            Some((_, v)) => v.push(ms),
            None => self.times.push((station, vec![ms])),
        }
    }

    pub fn finish(self) -> Speed {
        let late_ms = self.late_ms;
        let stations = self
            .times
            .into_iter()
            .map(|(station, mut v)| {
                v.sort_unstable();
                StationSpeed {
                    station,
                    tickets: v.len() as u64,
                    p50_ms: rank(&v, 50),
                    p90_ms: rank(&v, 90),
                    max_ms: v.last().copied().unwrap_or(0),
                    late: v.iter().filter(|&&ms| ms > late_ms).count() as u64,
                }
            })
            .collect();
        let mut late = self.late;
        late.reverse();
        late.truncate(MAX_LATE_LISTED);
        Speed {
            from: self.from,
            to: self.to,
            late_ms,
            stations,
            buckets: self.buckets,
            late,
            orders: self.orders,
        }
    }
}

/// Stations with a fired line in this order, in line order, each once.
fn fired_stations(o: &Order) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for l in &o.lines {
        if l.status == LineStatus::Fired && !out.contains(&l.station.as_str()) {
            out.push(&l.station);
        }
    }
    out
}

/// Nearest-rank percentile of sorted values (0 for none).
fn rank(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = (sorted.len() * p).div_ceil(100).max(1) - 1;
    sorted[i.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests;
