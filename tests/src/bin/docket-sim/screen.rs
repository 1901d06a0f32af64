//! What a simulated screen does with its boards: which tickets are its to bump (station) or
//! complete (expo) and when, and the lead tablet's pick-up of courses an earlier run left held.

use std::collections::HashSet;

use docket_core::wire::{self, Board};
use docket_core::{LineStatus, OrderStatus};
use tokio::time::Instant;

use crate::ctx::{prep_window, uniform};
use crate::device::{Device, Kind};
use crate::order::Timer;

/// Expo waits this long (seconds, uniform) before completing a ready order.
const EXPO_DELAY: (f64, f64) = (1.0, 4.0);

/// A ticket a screen will act on: shown for the printed line.
#[derive(Debug, Clone)]
pub struct Due {
    pub ticket: u64,
    pub table: String,
}

impl Device {
    fn in_flight(&self, order_id: &str, board: &str) -> bool {
        self.outbox
            .values()
            .any(|p| p.tag.target() == Some((order_id, board)))
    }

    pub fn on_board(&mut self, b: Board) {
        let name = b.station.clone();
        let expo = name == wire::EXPO;
        if self.seen_boards.insert(name.clone()) {
            // Open when we started: an earlier run's, which nobody else will finish.
            let mut ours = self.ctx.ours();
            ours.extend(b.orders.iter().map(|o| o.id.clone()));
        }
        // Which tickets on this board are ours to act on.
        let ours: fn(&docket_core::Order, &str) -> bool = match &self.kind {
            Kind::Station(list) if list.contains(&name) => |o, station| o.on_station(station),
            Kind::Expo if expo => |o, _| o.status == OrderStatus::Ready,
            Kind::Tablet { lead: true } if expo && !self.adopted => {
                self.adopt(&b);
                return;
            }
            _ => return,
        };
        let wanted: Vec<(String, Due)> = b
            .orders
            .iter()
            .filter(|o| ours(o, &name))
            .map(|o| {
                let due = Due {
                    ticket: o.ticket,
                    table: o.table.clone(),
                };
                (o.id.clone(), due)
            })
            .collect();
        let present: HashSet<&str> = wanted.iter().map(|(id, _)| id.as_str()).collect();
        self.due
            .retain(|(o, board), _| board != &name || present.contains(o.as_str()));
        for (order_id, due) in &wanted {
            let key = (order_id.clone(), name.clone());
            if self.due.contains_key(&key) || self.in_flight(order_id, &name) {
                continue;
            }
            if self.done.get(&key).is_some_and(|seq| b.seq < *seq) {
                continue; // a snapshot from before our bump/complete
            }
            self.done.remove(&key);
            let delay = if expo {
                uniform(&mut self.rng, EXPO_DELAY)
            } else {
                uniform(&mut self.rng, prep_window(self.ctx.prep, &name))
            };
            self.due.insert(key, due.clone());
            self.timers.push((
                Instant::now() + delay,
                Timer::Act {
                    order_id: order_id.clone(),
                    board: name.clone(),
                },
            ));
        }
        // Marks the snapshot has caught up with are settled.
        self.done
            .retain(|(_, board), seq| board != &name || b.seq < *seq);
    }

    /// Lead tablet, once: fire courses left held by an earlier run (nobody else would).
    fn adopt(&mut self, b: &Board) {
        self.adopted = true;
        for o in b.orders.iter().filter(|o| o.is_open()) {
            let Some(course) = o
                .lines
                .iter()
                .filter(|l| l.status == LineStatus::Held)
                .map(|l| l.course)
                .min()
            else {
                continue;
            };
            if !self.ctx.held().insert(o.id.clone()) {
                continue;
            }
            let after = uniform(&mut self.rng, (3.0, 12.0));
            self.ctx.say(format_args!(
                "{} picked up {} ticket {}: course {course} still held, fires in {:.0} s",
                self.id,
                o.id,
                o.ticket,
                after.as_secs_f64()
            ));
            self.timers.push((
                Instant::now() + after,
                Timer::Fire {
                    order_id: o.id.clone(),
                    ticket: o.ticket,
                    course,
                },
            ));
        }
    }
}
