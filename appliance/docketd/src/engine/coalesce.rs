//! Board coalescing: which boards are dirty, and when they are published. Events mark the
//! boards they touch (each line's station, and the expo board); dirty boards go out, retained,
//! at most once per board interval however many changes came in it; boards that events did not
//! touch are republished with the current seq every 5 s, so a returning screen replays little.
//! After a publish, completed orders leave memory (their boards no longer show them).
//!
//! Owns the stations, the dirty set, the cached encodings ([`Boards`]) and the seq each board
//! was last published at. Must not decide which orders a board shows (`docket_core::board`'s
//! rule, in `boards`), nor publish anything but through the guard.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use docket_core::wire::{self, Event};
use docket_core::Order;

use super::boards::Boards;
use super::guard::StateGuard;
use super::link::Link;
use super::EngineError;
use crate::metrics::Metrics;

/// Boards untouched by recent events are republished this often with the current seq, so that a
/// reconnecting screen replays only what it missed, not the day's history.
const BOARD_REFRESH_EVERY: Duration = Duration::from_secs(5);

pub struct Coalescer {
    interval: Duration,
    stations: Vec<String>,
    dirty: BTreeSet<String>,
    /// Boards encoded from each order's cached CBOR ([`crate::engine::boards`]).
    cache: Boards,
    last_publish: Option<Instant>,
    last_refresh: Instant,
    /// Seq of every board as last published.
    seq: HashMap<String, u64>,
}

impl Coalescer {
    /// The menu's `stations`, and those of open orders: boards of stations no longer on the
    /// menu are published too, so that no screen keeps a stale retained board.
    pub fn new(
        interval: Duration,
        stations: Vec<String>,
        orders: &BTreeMap<String, Order>,
    ) -> Self {
        let mut all: BTreeSet<String> = stations.into_iter().collect();
        for o in orders.values() {
            all.extend(o.lines.iter().map(|l| l.station.clone()));
        }
        Coalescer {
            interval,
            stations: all.into_iter().collect(),
            dirty: BTreeSet::new(),
            cache: Boards::default(),
            last_publish: None,
            last_refresh: Instant::now(),
            seq: HashMap::new(),
        }
    }

    /// A new menu's stations: each one new here gets its board (published empty at once), so a
    /// screen of a station added from `/admin` finds one.
    pub fn add_stations(&mut self, stations: Vec<String>) {
        for s in stations {
            if !self.stations.contains(&s) {
                self.dirty.insert(s.clone());
                self.stations.push(s);
            }
        }
    }

    /// Every board (at start, and after the orders were reloaded).
    pub fn mark_all(&mut self) {
        self.dirty.extend(self.stations.iter().cloned());
        self.dirty.insert(wire::EXPO.to_owned());
    }

    /// The orders were reloaded from the store: a cached version number may now stand for
    /// other contents (a batch whose commit failed was undone). Every board is dirty.
    pub fn reloaded(&mut self) {
        self.cache.clear();
        self.mark_all();
    }

    /// The boards a committed event changes.
    pub fn mark(&mut self, e: &Event) {
        self.dirty.insert(wire::EXPO.to_owned());
        for l in &e.order.lines {
            if !self.stations.contains(&l.station) {
                self.stations.push(l.station.clone());
            }
            self.dirty.insert(l.station.clone());
        }
    }

    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// When dirty boards may go out next: one interval after the last publish.
    pub fn due(&self) -> Instant {
        match self.last_publish {
            Some(t) => t + self.interval,
            None => Instant::now(),
        }
    }

    /// Every 5 s: boards published at a seq behind `last_seq` are dirty again.
    pub fn refresh(&mut self, now: Instant, last_seq: u64) {
        if now < self.last_refresh + BOARD_REFRESH_EVERY {
            return;
        }
        self.last_refresh = now;
        let behind: Vec<String> = self
            .seq
            .iter()
            .filter(|(_, s)| **s < last_seq)
            .map(|(b, _)| b.clone())
            .collect();
        self.dirty.extend(behind);
    }

    /// Publishes every dirty board at `seq`, then lets completed orders leave memory.
    pub fn publish<L: Link>(
        &mut self,
        guard: &mut StateGuard,
        link: &mut L,
        orders: &mut BTreeMap<String, Order>,
        seq: u64,
        metrics: &Metrics,
    ) -> Result<(), EngineError> {
        let t = Instant::now();
        let r = self.publish_dirty(guard, link, orders, seq, metrics);
        metrics
            .board_micros
            .fetch_add(t.elapsed().as_micros() as u64, Relaxed);
        r
    }

    fn publish_dirty<L: Link>(
        &mut self,
        guard: &mut StateGuard,
        link: &mut L,
        orders: &mut BTreeMap<String, Order>,
        seq: u64,
        metrics: &Metrics,
    ) -> Result<(), EngineError> {
        let dirty = std::mem::take(&mut self.dirty);
        for station in &dirty {
            let bytes = self.cache.encode(station, seq, orders)?;
            guard.publish(link, &wire::board_topic(station), bytes)?;
            self.seq.insert(station.clone(), seq);
            metrics.board_publishes.fetch_add(1, Relaxed);
        }
        orders.retain(|_, o| o.is_open());
        self.cache.prune(orders);
        metrics.open_orders.store(orders.len() as u64, Relaxed);
        self.last_publish = Some(Instant::now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::{order, FakeLink};
    use docket_core::wire::EventKind;
    use docket_core::OrderStatus;

    fn event(seq: u64, o: &Order) -> Event {
        Event {
            seq,
            kind: EventKind::OrderPlaced,
            order_id: o.id.clone(),
            version: o.version,
            command: format!("c{seq}"),
            device: "tab-1".into(),
            at: 0,
            order: o.clone(),
        }
    }

    struct Room {
        c: Coalescer,
        guard: StateGuard,
        link: FakeLink,
        orders: BTreeMap<String, Order>,
        m: Metrics,
    }

    fn room(interval: Duration) -> Room {
        Room {
            c: Coalescer::new(
                interval,
                vec!["fry".into(), "grill".into()],
                &BTreeMap::new(),
            ),
            guard: StateGuard::default(),
            link: FakeLink::default(),
            orders: BTreeMap::new(),
            m: Metrics::default(),
        }
    }

    impl Room {
        /// What the engine's timers do at `now`.
        fn publish_at(&mut self, now: Instant, seq: u64) -> bool {
            if !self.c.is_dirty() || now < self.c.due() {
                return false;
            }
            self.publish(seq)
        }

        /// What the command path does after a batch (`due` read before `now`).
        fn publish_if_due(&mut self, seq: u64) -> bool {
            let due = self.c.due();
            if !self.c.is_dirty() || Instant::now() < due {
                return false;
            }
            self.publish(seq)
        }

        fn publish(&mut self, seq: u64) -> bool {
            let (g, l, o) = (&mut self.guard, &mut self.link, &mut self.orders);
            self.c.publish(g, l, o, seq, &self.m).unwrap();
            true
        }

        fn boards_sent(&mut self) -> Vec<(String, wire::Board)> {
            let sent = self.link.take();
            sent.iter()
                .map(|p| (p.topic.clone(), wire::decode(&p.payload).unwrap()))
                .collect()
        }
    }

    #[test]
    fn many_changes_make_one_publish_per_board_within_the_interval() {
        let mut r = room(Duration::from_secs(3600));
        // The first publish goes out at once and opens the interval.
        r.c.mark_all();
        assert!(r.publish_if_due(0));
        let first = r.boards_sent();
        let topics: Vec<&str> = first.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            topics,
            [
                "docket/v1/board/expo",
                "docket/v1/board/fry",
                "docket/v1/board/grill"
            ]
        );
        // Fifty orders on the grill within the interval: nothing goes out yet.
        for n in 1..=50 {
            let o = order(n, &["grill"]);
            r.orders.insert(o.id.clone(), o.clone());
            r.c.mark(&event(n, &o));
            assert!(!r.publish_if_due(n));
        }
        assert!(r.link.take().is_empty());
        // When due: one grill board and one expo board with all fifty; fry was not touched.
        let later = Instant::now() + Duration::from_secs(3600);
        assert!(r.publish_at(later, 50));
        let boards = r.boards_sent();
        let topics: Vec<&str> = boards.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(topics, ["docket/v1/board/expo", "docket/v1/board/grill"]);
        for (_, b) in &boards {
            assert_eq!((b.seq, b.orders.len()), (50, 50));
        }
        assert!(!r.c.is_dirty());
        assert_eq!(r.m.board_publishes.load(Relaxed), 5);
    }

    #[test]
    fn a_new_station_gets_a_board_and_completed_orders_leave_memory() {
        let mut r = room(Duration::ZERO);
        let mut o = order(1, &["pastry"]);
        r.orders.insert(o.id.clone(), o.clone());
        r.c.mark(&event(1, &o));
        assert!(r.publish_if_due(1));
        let topics: Vec<String> = r.boards_sent().into_iter().map(|(t, _)| t).collect();
        assert_eq!(topics, ["docket/v1/board/expo", "docket/v1/board/pastry"]);
        assert_eq!(r.m.open_orders.load(Relaxed), 1);
        o.status = OrderStatus::Completed;
        o.version += 1;
        r.orders.insert(o.id.clone(), o.clone());
        r.c.mark(&event(2, &o));
        assert!(r.publish_if_due(2));
        for (_, b) in r.boards_sent() {
            assert!(b.orders.is_empty(), "a completed order leaves the boards");
        }
        assert!(r.orders.is_empty(), "and memory");
        assert_eq!(r.m.open_orders.load(Relaxed), 0);
        // The new station stays known: every board (after a reload) includes it.
        r.c.reloaded();
        assert!(r.publish_if_due(2));
        assert_eq!(r.boards_sent().len(), 4);
    }

    #[test]
    fn boards_behind_the_seq_are_refreshed_every_five_seconds() {
        let mut r = room(Duration::ZERO);
        r.c.mark_all();
        assert!(r.publish_if_due(3));
        r.link.take();
        let o = order(1, &["grill"]);
        r.orders.insert(o.id.clone(), o.clone());
        r.c.mark(&event(4, &o));
        assert!(r.publish_if_due(4));
        r.link.take();
        let now = Instant::now();
        r.c.refresh(now, 4);
        assert!(!r.c.is_dirty(), "not before five seconds");
        r.c.refresh(now + BOARD_REFRESH_EVERY, 4);
        assert!(r.publish_if_due(4));
        let topics: Vec<String> = r.boards_sent().into_iter().map(|(t, _)| t).collect();
        assert_eq!(
            topics,
            ["docket/v1/board/fry"],
            "only the board behind seq 4"
        );
    }
}
