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
}

impl Line {
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
