//! One simulated restaurant in this process: docket-core's `execute` decides its commands
//! (the engine's own rule) and docketd's SQLite store commits them (the engine's own writer),
//! so docketd's real relays, run here on its database, see exactly what a box's would. What it
//! does not run is the broker, the boards and the pages: a fleet's head office never sees them.
//!
//! The load is the case study's: 50 tablets × 2 orders a minute (100 orders a minute, 1 to 6
//! lines each), every station bumping its lines and the expo completing the order a few
//! seconds later, so head office gets the events a real service makes (place, bumps,
//! complete).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use anyhow::Context;
use docket_appliance::store::{Batch, Store};
use docket_core::decide::{Actor, OrderBook, Role};
use docket_core::ledger::execute;
use docket_core::wire::{self, CommandBody, Event, LineInput};

use crate::loops::ITEMS;

/// The case study's load per site: orders a minute.
pub const ORDERS_PER_MIN: f64 = 100.0;
/// How long an order stays on the kitchen's screens before its stations bump and the expo
/// completes it.
pub const COOK_MS: u64 = 3_000;

pub struct SimSite {
    pub id: String,
    pub db: PathBuf,
    store: Store,
    book: OrderBook,
    last_seq: u64,
    commands: u64,
    /// Open orders, oldest first, with when they were placed (ms).
    open: VecDeque<(String, u64)>,
    /// Events committed.
    pub events: u64,
    /// Orders placed.
    pub orders: u64,
    /// The menu version the store holds (the relays' `Status.menu_version`).
    pub menu_version: u64,
}

impl SimSite {
    /// A new site's store in `dir` (docketd's schema), with the demo menu seeded.
    pub fn create(dir: &Path, id: &str, now_ms: u64) -> anyhow::Result<SimSite> {
        let db = dir.join(format!("{id}.db"));
        let store = Store::open(&db, id).with_context(|| format!("opening {}", db.display()))?;
        let file = docket_appliance::site::menu::load(None)?;
        let (menu, _) = store.seed_menu(&file, now_ms)?;
        let menu_version = menu.version;
        Ok(SimSite {
            id: id.to_owned(),
            db,
            store,
            book: OrderBook {
                menu: Some(menu),
                next_ticket: 1,
                ..Default::default()
            },
            last_seq: 0,
            commands: 0,
            open: VecDeque::new(),
            events: 0,
            orders: 0,
            menu_version,
        })
    }

    /// Places `place` new orders and finishes every order cooked by `now_ms` (each station
    /// bumps, the expo completes), all in one commit: one group commit, as the engine makes.
    pub fn step(&mut self, now_ms: u64, place: usize) -> anyhow::Result<()> {
        let mut batch = Batch::default();
        for _ in 0..place {
            let body = CommandBody::place(&format!("{}", 1 + self.orders % 40), order_lines());
            let events = self.run(&tablet(), &body, now_ms, &mut batch)?;
            if let Some(e) = events.first() {
                self.open.push_back((e.order_id.clone(), now_ms));
                self.orders += 1;
            }
        }
        while let Some((id, at)) = self.open.front().cloned() {
            if at + COOK_MS > now_ms {
                break;
            }
            self.open.pop_front();
            let mut stations: Vec<String> = (self.book.orders.get(&id))
                .map(|o| o.lines.iter().map(|l| l.station.clone()).collect())
                .unwrap_or_default();
            stations.sort();
            stations.dedup();
            for s in stations {
                let actor = Actor {
                    device: format!("kds-{s}"),
                    role: Role::Station,
                    stations: vec![s.clone()],
                };
                let bump = CommandBody::Bump {
                    order_id: id.clone(),
                    station: s,
                };
                self.run(&actor, &bump, now_ms, &mut batch)?;
            }
            let expo = Actor {
                device: "expo-1".into(),
                role: Role::Expo,
                stations: vec![],
            };
            let complete = CommandBody::Complete {
                order_id: id.clone(),
            };
            self.run(&expo, &complete, now_ms, &mut batch)?;
            // A closed order leaves the book, as the engine's does after its commit.
            self.book.orders.remove(&id);
        }
        if !batch.events.is_empty() {
            self.store.commit(&batch)?;
        }
        Ok(())
    }

    /// Decides one command, adds its events and the orders they touched to `batch`.
    fn run(
        &mut self,
        actor: &Actor,
        body: &CommandBody,
        now_ms: u64,
        batch: &mut Batch,
    ) -> anyhow::Result<Vec<Event>> {
        self.commands += 1;
        let id = format!("c{}", self.commands);
        let (reply, events) = execute(&mut self.book, &mut self.last_seq, &id, actor, body, now_ms);
        anyhow::ensure!(
            reply.ok,
            "{}: {:?} refused: {reply:?}",
            self.id,
            body.kind()
        );
        for e in &events {
            batch.orders.insert(e.order_id.clone(), e.order.clone());
            batch.events.push((e.clone(), wire::encode(e)?));
        }
        self.events += events.len() as u64;
        Ok(events)
    }
}

fn tablet() -> Actor {
    Actor {
        device: "tablet-1".into(),
        role: Role::Tablet,
        stations: vec![],
    }
}

/// 1 to 6 lines of the demo menu, as the bench's tablets order.
fn order_lines() -> Vec<LineInput> {
    let n = 1 + rand::random::<usize>() % 6;
    (0..n)
        .map(|i| {
            let item = ITEMS[(i + rand::random::<usize>()) % ITEMS.len()];
            let mut l = LineInput::plain(item, 1 + (i % 2) as u32);
            if item == "steak-ribeye" {
                l.mods = vec!["medium".into()];
            }
            l
        })
        .collect()
}
