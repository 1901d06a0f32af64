//! What a slip says on paper: rows of text with their print style, wrapped to the paper's
//! columns at the sizes they are printed in. Large type for the ticket number and the table;
//! each line with its modifiers as words and its notes; an allergy as a boxed alarm; voided
//! lines marked VOID and underlined through (ESC/POS has no strike-through), added lines marked
//! ADDED, fired ones FIRE; a reprint marked REPRINT at the top and the bottom. No white on
//! black: large bold type reads on every printer and roll.
//!
//! Pure: docketd turns rows into ESC/POS. Must not know any printer's command bytes.

use crate::order::Service;
use crate::{Line, LineStatus, Order};

use super::{Slip, SlipKind};

/// The paper roll: how many characters of the standard font fit on a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paper {
    /// 58 mm rolls: 32 columns.
    Mm58,
    /// 80 mm rolls: 48 columns.
    Mm80,
}

impl Paper {
    pub fn columns(self) -> usize {
        match self {
            Paper::Mm58 => 32,
            Paper::Mm80 => 48,
        }
    }

    pub fn mm(self) -> u32 {
        match self {
            Paper::Mm58 => 58,
            Paper::Mm80 => 80,
        }
    }

    pub fn from_mm(mm: u32) -> Option<Paper> {
        match mm {
            58 => Some(Paper::Mm58),
            80 => Some(Paper::Mm80),
            _ => None,
        }
    }
}

/// One printed row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    pub text: String,
    /// Character width and height multipliers (1 or 2).
    pub width: u8,
    pub height: u8,
    pub bold: bool,
    pub underline: bool,
    pub center: bool,
}

impl Row {
    fn plain(text: impl Into<String>) -> Row {
        Row {
            text: text.into(),
            width: 1,
            height: 1,
            ..Row::default()
        }
    }

    fn big(text: impl Into<String>) -> Row {
        Row {
            width: 2,
            height: 2,
            bold: true,
            ..Row::plain(text)
        }
    }

    /// Double height: what a cook reads at arm's length (items, marks).
    fn tall(text: impl Into<String>) -> Row {
        Row {
            height: 2,
            ..Row::plain(text)
        }
    }

    fn centered(mut self) -> Row {
        self.center = true;
        self
    }
}

/// What to print: an order as one station sees it, why, and when.
#[derive(Debug, Clone, Copy)]
pub struct SlipText<'a> {
    pub order: &'a Order,
    pub slip: &'a Slip,
    /// When the slip was made (the box clock, Unix ms).
    pub at_ms: u64,
    /// The site's offset from UTC, for the printed time.
    pub utc_offset_minutes: i32,
    /// Sent again after the printer may have lost part of it: printed as a reprint.
    pub again: bool,
}

/// "HH:MM" of a box-clock stamp at the site's offset.
pub fn clock_time(ms: u64, utc_offset_minutes: i32) -> String {
    let minutes = (ms / 60_000) as i64 + i64::from(utc_offset_minutes);
    let day = minutes.rem_euclid(24 * 60);
    format!("{:02}:{:02}", day / 60, day % 60)
}

/// The rows of a slip, wrapped to `paper`.
pub fn layout(t: SlipText<'_>, paper: Paper) -> Vec<Row> {
    let cols = paper.columns();
    let reprint = t.again || t.slip.kind == SlipKind::Reprint;
    let mut rows = Vec::new();
    if reprint {
        rows.push(Row::big("** REPRINT **").centered());
    }
    rows.push(Row::big(t.slip.station.to_uppercase()).centered());
    rows.push(Row::big(format!("#{}", t.order.ticket)));
    rows.push(Row::big(where_to(t.order)));
    // An order from outside: its channel and number, which the courier asks for.
    if let Some(o) = &t.order.origin {
        let text = match &o.reference {
            Some(r) => format!("{} #{}", o.channel, r.trim_start_matches('#')),
            None => o.channel.clone(),
        };
        rows.push(Row::tall(text));
    }
    if t.order.rush {
        rows.push(Row::big("!! RUSH !!"));
    }
    let mut who = format!(
        "{}  placed {}",
        clock_time(t.at_ms, t.utc_offset_minutes),
        clock_time(t.order.placed_at, t.utc_offset_minutes)
    );
    if let Some(server) = &t.order.server {
        who = format!("Server: {server}   {who}");
    }
    rows.push(Row::plain(who));
    rows.push(Row::plain("-".repeat(cols)));
    let station = t.slip.station.as_str();
    let lines: Vec<&Line> = t
        .order
        .lines
        .iter()
        .filter(|l| l.station == station && on_slip(t.slip, l))
        .collect();
    let mut course = None;
    for l in &lines {
        if course != Some(l.course) {
            course = Some(l.course);
            rows.push(Row::plain(format!("Course {}", l.course)).tap(|r| r.underline = true));
        }
        line_rows(&mut rows, t.slip, l);
    }
    if t.slip.kind == SlipKind::Changed {
        let others = t
            .order
            .lines
            .iter()
            .filter(|l| l.station == station && !on_slip(t.slip, l))
            .filter(|l| matches!(l.status, LineStatus::Fired | LineStatus::Ready))
            .count();
        if others > 0 {
            rows.push(Row::plain(format!("(+{others} unchanged on this ticket)")));
        }
    }
    rows.push(Row::plain("-".repeat(cols)));
    if reprint {
        rows.push(Row::big("** REPRINT **").centered());
    }
    wrap(rows, cols)
}

/// Table, takeaway or delivery, as the pass calls it.
fn where_to(o: &Order) -> String {
    match o.service {
        Some(Service::Takeaway) => format!("TAKEAWAY {}", o.table).trim_end().to_owned(),
        Some(Service::Delivery) => format!("DELIVERY {}", o.table).trim_end().to_owned(),
        _ => format!("Table {}", o.table),
    }
}

/// Does this line belong on the slip? A new ticket or a reprint: every line in front of the
/// cooks, and voided ones (struck) on a reprint; a change: only the changed lines.
fn on_slip(s: &Slip, l: &Line) -> bool {
    match s.kind {
        SlipKind::New => matches!(l.status, LineStatus::Fired | LineStatus::Ready),
        SlipKind::Reprint => l.status != LineStatus::Held,
        SlipKind::Changed => {
            s.added.contains(&l.n) || s.fired.contains(&l.n) || s.voided.contains(&l.n)
        }
    }
}

fn line_rows(rows: &mut Vec<Row>, s: &Slip, l: &Line) {
    let seat = l.seat.map(|n| format!("  (seat {n})")).unwrap_or_default();
    let item = format!("{} x {}{seat}", l.qty, l.name);
    if l.status == LineStatus::Voided {
        rows.push(Row::tall(format!("VOID  {item}")).tap(|r| r.underline = true));
        return;
    }
    let mark = if s.added.contains(&l.n) && s.kind == SlipKind::Changed {
        "ADDED  "
    } else if s.fired.contains(&l.n) {
        "FIRE  "
    } else {
        ""
    };
    rows.push(Row::tall(format!("{mark}{item}")));
    if !l.mods.is_empty() {
        // As words: `no-onion` is printed "no onion".
        let words: Vec<String> = l.mods.iter().map(|m| m.replace(['-', '_'], " ")).collect();
        rows.push(Row::plain(format!("    + {}", words.join(", "))));
    }
    if let Some(n) = &l.notes {
        rows.push(Row::plain(format!("    note: {n}")));
    }
    if let Some(a) = &l.allergy {
        // Boxed in '#', in the largest type: nobody reads past it.
        let alarm = format!("ALLERGY: {}", a.to_uppercase());
        let rule = "#".repeat(alarm.chars().count() * 2);
        rows.push(Row::plain(rule.clone()));
        rows.push(Row::big(alarm));
        rows.push(Row::plain(rule));
    }
}

/// Each row split into rows that fit at its width, at spaces where it can; continuation rows
/// are indented. A row of '#' or '-' is cut to the paper.
fn wrap(rows: Vec<Row>, cols: usize) -> Vec<Row> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let fit = (cols / usize::from(r.width.max(1))).max(8);
        let text: Vec<char> = r.text.chars().collect();
        if text.len() <= fit {
            out.push(r);
            continue;
        }
        if text.iter().all(|c| *c == '#' || *c == '-') {
            out.push(Row {
                text: text[..fit].iter().collect(),
                ..r
            });
            continue;
        }
        let mut rest: &[char] = &text;
        let mut first = true;
        while !rest.is_empty() {
            let room = if first { fit } else { fit - 4 };
            let cut = if rest.len() <= room {
                rest.len()
            } else {
                rest[..room]
                    .iter()
                    .rposition(|c| *c == ' ')
                    .filter(|p| *p > room / 3)
                    .unwrap_or(room)
            };
            let piece: String = rest[..cut].iter().collect();
            let piece = piece.trim_end();
            out.push(Row {
                text: if first {
                    piece.to_owned()
                } else {
                    format!("    {piece}")
                },
                ..r.clone()
            });
            rest = &rest[cut..];
            while rest.first() == Some(&' ') {
                rest = &rest[1..];
            }
            first = false;
        }
    }
    out
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl Tap for Row {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}
