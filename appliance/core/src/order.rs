//! Orders, their lines, and the statuses screens show.
//!
//! Owns the order's shape and the derived status; the rules that change an order live in
//! `decide`.

use serde::{Deserialize, Serialize};

/// Status of one line in the kitchen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    /// Its course has not been fired yet: not on any station board.
    Held,
    /// On its station's board, being cooked.
    Fired,
    /// Bumped by its station.
    Ready,
    /// Voided by the front of house.
    Voided,
}

impl LineStatus {
    /// The name head office stores (`docket.order_lines.status`), the same as on the wire:
    /// reports query by it, so it never changes with a variant's Rust name.
    pub fn as_str(self) -> &'static str {
        match self {
            LineStatus::Held => "held",
            LineStatus::Fired => "fired",
            LineStatus::Ready => "ready",
            LineStatus::Voided => "voided",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Nothing bumped yet.
    Placed,
    /// Some stations bumped, not all.
    InProgress,
    /// Every active line is ready.
    Ready,
    /// Closed by expo: accepts no more changes.
    Completed,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "placed",
            OrderStatus::InProgress => "in_progress",
            OrderStatus::Ready => "ready",
            OrderStatus::Completed => "completed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Line number within the order, from 1, never reused.
    pub n: u32,
    pub item: String,
    pub name: String,
    pub qty: u32,
    #[serde(default)]
    pub mods: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The guest's allergy, apart from `notes` (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allergy: Option<String>,
    pub course: u32,
    pub station: String,
    pub status: LineStatus,
    /// Box clock (Unix ms) when the line went to its station after the order was placed (its
    /// course fired, or added to a fired course). Absent while held, and for a line that went out
    /// with the order: that is the order's `placed_at`. Screens time its start from it (prep
    /// times): [`Line::fired_since`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<u64>,
    /// The guest's seat at the table (1-99), absent when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat: Option<u32>,
}

impl Line {
    /// When the line went to its station: `None` unless it is cooking or done.
    pub fn fired_since(&self, placed_at: u64) -> Option<u64> {
        match self.status {
            LineStatus::Held | LineStatus::Voided => None,
            _ => Some(self.fired_at.unwrap_or(placed_at)),
        }
    }

    pub fn active(&self) -> bool {
        self.status != LineStatus::Voided
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub ticket: u64,
    pub table: String,
    pub status: OrderStatus,
    /// Starts at 1 with `order_placed`; +1 per event. Screens keep the highest they saw.
    pub version: u64,
    pub lines: Vec<Line>,
    /// Highest course fired so far (course 1 fires on placement).
    pub fired_course: u32,
    /// Wall-clock ms when placed; informational (the box may have no RTC).
    pub placed_at: u64,
    /// A rush: every screen shows it first and marked (`set_rush`). Absent on the wire when not.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rush: bool,
    /// Takeaway or delivery; absent for dine-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// The server who took it (as the tablet named them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Where it came from when not from the restaurant's own devices (an integration placed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// An order from outside: which channel, its number there, and the integration that placed it
/// (the only device besides the kitchen's and a manager's that may change it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// As staff see it on the ticket: "online", "kiosk", "till", a delivery platform's name.
    pub channel: String,
    /// The order's number on its channel (the courier asks for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The integration device that placed it.
    pub device: String,
}

/// How the order leaves the kitchen: at a table (the default), to take away, or delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    DineIn,
    Takeaway,
    Delivery,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::DineIn => "dine_in",
            Service::Takeaway => "takeaway",
            Service::Delivery => "delivery",
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Order {
    pub fn is_open(&self) -> bool {
        self.status != OrderStatus::Completed
    }

    /// Does this order belong on `station`'s board: open, with a line being cooked there.
    pub fn on_station(&self, station: &str) -> bool {
        self.is_open()
            && self
                .lines
                .iter()
                .any(|l| l.station == station && l.status == LineStatus::Fired)
    }

    /// Stations that have an active line in this order, in first-seen order.
    pub fn stations(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for l in self.lines.iter().filter(|l| l.active()) {
            if !out.contains(&l.station.as_str()) {
                out.push(&l.station);
            }
        }
        out
    }

    /// Recomputes `status` from the lines (completed stays completed).
    pub fn refresh_status(&mut self) {
        if self.status == OrderStatus::Completed {
            return;
        }
        let active: Vec<&Line> = self.lines.iter().filter(|l| l.active()).collect();
        let ready = active
            .iter()
            .filter(|l| l.status == LineStatus::Ready)
            .count();
        self.status = if !active.is_empty() && ready == active.len() {
            OrderStatus::Ready
        } else if ready > 0 {
            OrderStatus::InProgress
        } else {
            OrderStatus::Placed
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_are_the_wire_names() {
        for s in [
            LineStatus::Held,
            LineStatus::Fired,
            LineStatus::Ready,
            LineStatus::Voided,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in [
            OrderStatus::Placed,
            OrderStatus::InProgress,
            OrderStatus::Ready,
            OrderStatus::Completed,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
