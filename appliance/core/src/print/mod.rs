//! Kitchen printers, the pure part: which paper slips a change to an order makes for each
//! station ([`plan`]), and what a slip says, line by line, for a paper width ([`layout`]).
//!
//! Owns no state and does no I/O: docketd stores the slips as print jobs in the same commit as
//! the event that made them, and turns a layout into ESC/POS for the printer. Must not know
//! which stations have printers, nor any printer's bytes.

mod layout;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{Code, LineStatus, Order, OrderBook, Rejection};

pub use layout::{clock_time, layout, Paper, Row, SlipText};

/// Why a slip is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlipKind {
    /// The station's first lines of this order: the whole ticket.
    New,
    /// Lines added, fired or voided on a ticket the station already has: only those lines.
    Changed,
    /// Asked for again (by expo or a manager), or sent again after the printer may have lost
    /// it: the station's whole ticket as it is now, marked REPRINT.
    Reprint,
}

impl SlipKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SlipKind::New => "new",
            SlipKind::Changed => "changed",
            SlipKind::Reprint => "reprint",
        }
    }

    pub fn parse(s: &str) -> Option<SlipKind> {
        match s {
            "new" => Some(SlipKind::New),
            "changed" => Some(SlipKind::Changed),
            "reprint" => Some(SlipKind::Reprint),
            _ => None,
        }
    }
}

/// One slip for one station: what to print of an order, and which of its lines changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slip {
    pub station: String,
    pub kind: SlipKind,
    /// Line numbers new to the order (ADDED).
    #[serde(default)]
    pub added: Vec<u32>,
    /// Line numbers already on the order whose course was fired now (FIRE).
    #[serde(default)]
    pub fired: Vec<u32>,
    /// Line numbers the station had and that were voided now (VOID).
    #[serde(default)]
    pub voided: Vec<u32>,
}

impl Slip {
    /// The whole ticket of a station, as it is, marked REPRINT.
    pub fn reprint(station: &str) -> Slip {
        Slip {
            station: station.to_owned(),
            kind: SlipKind::Reprint,
            added: vec![],
            fired: vec![],
            voided: vec![],
        }
    }
}

/// Is the line in front of a station's cooks (fired or ready; not held, not voided)?
fn showing(status: LineStatus) -> bool {
    matches!(status, LineStatus::Fired | LineStatus::Ready)
}

/// The slips one event makes: `prev` is the order before it (none for a new order), `next`
/// after. A station gets a `New` slip when the order first reaches it, a `Changed` slip when
/// lines were added to, fired at or voided from a ticket it already had; bumps, recalls,
/// completion and rush make none (they change nothing the cooks must make).
pub fn plan(prev: Option<&Order>, next: &Order) -> Vec<Slip> {
    let stations: BTreeSet<&str> = next.lines.iter().map(|l| l.station.as_str()).collect();
    let mut slips = Vec::new();
    for station in stations {
        let before = |n: u32| {
            prev.and_then(|p| p.lines.iter().find(|l| l.n == n))
                .map(|l| l.status)
        };
        let had_any = prev.is_some_and(|p| {
            p.lines
                .iter()
                .any(|l| l.station == station && showing(l.status))
        });
        let (mut added, mut fired, mut voided) = (vec![], vec![], vec![]);
        for l in next.lines.iter().filter(|l| l.station == station) {
            match (before(l.n), l.status) {
                (None, s) if showing(s) => added.push(l.n),
                (Some(LineStatus::Held), s) if showing(s) => fired.push(l.n),
                (Some(b), LineStatus::Voided) if showing(b) => voided.push(l.n),
                _ => {}
            }
        }
        let reached = !(added.is_empty() && fired.is_empty());
        if !had_any && reached {
            slips.push(Slip {
                station: station.to_owned(),
                kind: SlipKind::New,
                added: vec![],
                fired: vec![],
                voided: vec![],
            });
        } else if had_any && (reached || !voided.is_empty()) {
            slips.push(Slip {
                station: station.to_owned(),
                kind: SlipKind::Changed,
                added,
                fired,
                voided,
            });
        }
    }
    slips
}

/// Most tickets one reprint asks for.
pub const MAX_REPRINT: u32 = 20;

/// The tickets a reprint prints, oldest first: one order (open, or closed and loaded by the
/// engine), or the station's `last` open tickets. Each must have lines in front of the
/// station's cooks (or voided there).
pub fn reprints<'a>(
    book: &'a OrderBook,
    station: &str,
    order_id: Option<&str>,
    last: Option<u32>,
) -> Result<Vec<&'a Order>, Rejection> {
    let known = book
        .menu
        .as_ref()
        .is_some_and(|m| m.items.iter().any(|i| i.station == station));
    if !known {
        return Err(Rejection::new(
            Code::UnknownStation,
            format!("no item of the menu is made at {station:?}"),
        ));
    }
    let at_station = |o: &Order| {
        o.lines
            .iter()
            .any(|l| l.station == station && l.status != LineStatus::Held)
    };
    match (order_id, last) {
        (Some(id), None) => {
            let o = book
                .orders
                .get(id)
                .ok_or_else(|| Rejection::new(Code::UnknownOrder, format!("no order {id}")))?;
            if !at_station(o) {
                return Err(Rejection::new(
                    Code::NothingToPrint,
                    format!("ticket {} has nothing at {station}", o.ticket),
                ));
            }
            Ok(vec![o])
        }
        (None, Some(n)) if (1..=MAX_REPRINT).contains(&n) => {
            let mut open: Vec<&Order> = book
                .orders
                .values()
                .filter(|o| o.is_open() && at_station(o))
                .collect();
            open.sort_by_key(|o| o.ticket);
            let keep = open.len().saturating_sub(n as usize);
            let picked = open.split_off(keep);
            if picked.is_empty() {
                return Err(Rejection::new(
                    Code::NothingToPrint,
                    format!("{station} has no open tickets"),
                ));
            }
            Ok(picked)
        }
        (None, Some(n)) => Err(Rejection::new(
            Code::BadField,
            format!("last must be 1-{MAX_REPRINT}, not {n}"),
        )),
        _ => Err(Rejection::new(
            Code::MalformedBody,
            "a reprint names either order_id or last",
        )),
    }
}

#[cfg(test)]
mod tests;
