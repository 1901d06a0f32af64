//! The order state machine: `decide` turns one authorised command into events (or a rejection),
//! `apply` folds events into the site state. Both are pure; the engine supplies the clock and the
//! persistence.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::menu::Menu;
use crate::order::{Line, LineStatus, Order, OrderStatus};
use crate::wire::{CommandBody, EventKind, LineInput};
use crate::{Code, Rejection};

/// Input limits: anything beyond is a rejection, never a truncation.
pub mod limits {
    pub const MAX_LINES_PER_COMMAND: usize = 50;
    pub const MAX_LINES_PER_ORDER: usize = 200;
    pub const MAX_QTY: u32 = 99;
    pub const MAX_MODS: usize = 12;
    pub const MAX_MOD_CHARS: usize = 40;
    pub const MAX_NOTES_CHARS: usize = 200;
    pub const MAX_TABLE_CHARS: usize = 16;
    pub const MAX_ID_CHARS: usize = 64;
    pub const MAX_COURSE: u32 = 9;
}

/// What a paired device is allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Tablet,
    Station,
    Expo,
    Manager,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Tablet => "tablet",
            Role::Station => "station",
            Role::Expo => "expo",
            Role::Manager => "manager",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "tablet" => Some(Role::Tablet),
            "station" => Some(Role::Station),
            "expo" => Some(Role::Expo),
            "manager" => Some(Role::Manager),
            _ => None,
        }
    }
}

/// The authenticated sender of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub device: String,
    pub role: Role,
    /// For station screens: the stations it may bump and recall.
    pub stations: Vec<String>,
}

/// May `actor` send `cmd` at all (before looking at any order)?
pub fn authorise(actor: &Actor, cmd: &CommandBody) -> Result<(), Rejection> {
    let allowed = match (actor.role, cmd) {
        (_, CommandBody::Replay { .. }) => true,
        (Role::Manager, _) => true,
        (
            Role::Tablet,
            CommandBody::PlaceOrder { .. }
            | CommandBody::AddLines { .. }
            | CommandBody::VoidLine { .. }
            | CommandBody::FireCourse { .. },
        ) => true,
        (
            Role::Station,
            CommandBody::Bump { station, .. } | CommandBody::Recall { station, .. },
        ) => actor.stations.iter().any(|s| s == station),
        (
            Role::Expo,
            CommandBody::Bump { .. } | CommandBody::Recall { .. } | CommandBody::Complete { .. },
        ) => true,
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(Rejection::new(
            Code::Forbidden,
            format!(
                "a {} device may not send {}",
                actor.role.as_str(),
                cmd.kind()
            ),
        ))
    }
}

/// Everything `decide` reads: the menu, the orders commands may touch, the ticket counter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Site {
    pub menu: Option<Menu>,
    /// Open orders, plus any closed order the engine loaded for the command at hand.
    pub orders: BTreeMap<String, Order>,
    /// Ticket of the next order placed (tickets start at 1).
    pub next_ticket: u64,
}

/// One change `decide` wants: the kind and the whole order after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: EventKind,
    pub order: Order,
}

/// Order id for a ticket number.
pub fn order_id(ticket: u64) -> String {
    format!("o-{ticket:06}")
}

/// Decides what one authorised order command does. `now_ms` is informational wall time.
/// Never mutates; `apply` the returned changes to move on.
pub fn decide(
    site: &Site,
    actor: &Actor,
    cmd: &CommandBody,
    now_ms: u64,
) -> Result<Vec<Change>, Rejection> {
    authorise(actor, cmd)?;
    match cmd {
        CommandBody::PlaceOrder { table, lines } => {
            check_text("table", table, limits::MAX_TABLE_CHARS, false)?;
            check_lines_count(lines.len(), 0)?;
            let menu = site
                .menu
                .as_ref()
                .ok_or_else(|| Rejection::new(Code::NoMenu, "the box has no menu loaded"))?;
            let ticket = site.next_ticket.max(1);
            let mut order = Order {
                id: order_id(ticket),
                ticket,
                table: table.clone(),
                status: OrderStatus::Placed,
                version: 1,
                lines: Vec::with_capacity(lines.len()),
                fired_course: 1,
                placed_at: now_ms,
            };
            for input in lines {
                let line = make_line(
                    menu,
                    input,
                    order.lines.len() as u32 + 1,
                    order.fired_course,
                )?;
                order.lines.push(line);
            }
            order.refresh_status();
            Ok(vec![Change {
                kind: EventKind::OrderPlaced,
                order,
            }])
        }
        CommandBody::AddLines { order_id, lines } => {
            let order = open_order(site, order_id)?;
            check_lines_count(lines.len(), order.lines.len())?;
            let menu = site
                .menu
                .as_ref()
                .ok_or_else(|| Rejection::new(Code::NoMenu, "the box has no menu loaded"))?;
            let mut next = order.clone();
            for input in lines {
                let line = make_line(menu, input, next.lines.len() as u32 + 1, next.fired_course)?;
                next.lines.push(line);
            }
            Ok(vec![changed(next, EventKind::LinesAdded)])
        }
        CommandBody::VoidLine { order_id, line } => {
            let order = open_order(site, order_id)?;
            let mut next = order.clone();
            let l = next
                .lines
                .iter_mut()
                .find(|l| l.n == *line)
                .ok_or_else(|| {
                    Rejection::new(
                        Code::UnknownLine,
                        format!("order {order_id} has no line {line}"),
                    )
                })?;
            if l.status == LineStatus::Voided {
                return Err(Rejection::new(
                    Code::LineVoided,
                    format!("line {line} of {order_id} is already voided"),
                ));
            }
            l.status = LineStatus::Voided;
            Ok(vec![changed(next, EventKind::LineVoided)])
        }
        CommandBody::FireCourse { order_id, course } => {
            let order = open_order(site, order_id)?;
            if *course == 0 || *course > limits::MAX_COURSE {
                return Err(Rejection::new(
                    Code::BadCourse,
                    format!("course must be 1..={}", limits::MAX_COURSE),
                ));
            }
            if *course <= order.fired_course {
                return Err(Rejection::new(
                    Code::CourseFired,
                    format!("course {course} of {order_id} is already fired"),
                ));
            }
            let mut next = order.clone();
            next.fired_course = *course;
            for l in next.lines.iter_mut() {
                if l.status == LineStatus::Held && l.course <= *course {
                    l.status = LineStatus::Fired;
                }
            }
            Ok(vec![changed(next, EventKind::CourseFired)])
        }
        CommandBody::Bump { order_id, station } => {
            let order = open_order(site, order_id)?;
            known_station(site, station)?;
            let mut next = order.clone();
            let mut n = 0;
            for l in next
                .lines
                .iter_mut()
                .filter(|l| &l.station == station && l.status == LineStatus::Fired)
            {
                l.status = LineStatus::Ready;
                n += 1;
            }
            if n == 0 {
                return Err(Rejection::new(
                    Code::NothingToBump,
                    format!("{order_id} has nothing cooking at {station}"),
                ));
            }
            Ok(vec![changed(next, EventKind::TicketBumped)])
        }
        CommandBody::Recall { order_id, station } => {
            let order = open_order(site, order_id)?;
            known_station(site, station)?;
            let mut next = order.clone();
            let mut n = 0;
            for l in next
                .lines
                .iter_mut()
                .filter(|l| &l.station == station && l.status == LineStatus::Ready)
            {
                l.status = LineStatus::Fired;
                n += 1;
            }
            if n == 0 {
                return Err(Rejection::new(
                    Code::NothingToRecall,
                    format!("{order_id} has nothing bumped at {station}"),
                ));
            }
            Ok(vec![changed(next, EventKind::TicketRecalled)])
        }
        CommandBody::Complete { order_id } => {
            let order = open_order(site, order_id)?;
            let mut next = order.clone();
            next.status = OrderStatus::Completed;
            Ok(vec![changed(next, EventKind::OrderCompleted)])
        }
        CommandBody::Replay { .. } => Err(Rejection::new(
            Code::MalformedBody,
            "replay is a query, not a change",
        )),
    }
}

/// Folds one committed change into the site.
pub fn apply(site: &mut Site, change: &Change) {
    if change.kind == EventKind::OrderPlaced {
        site.next_ticket = site.next_ticket.max(change.order.ticket + 1);
    }
    site.orders
        .insert(change.order.id.clone(), change.order.clone());
}

fn changed(mut order: Order, kind: EventKind) -> Change {
    order.version += 1;
    order.refresh_status();
    Change { kind, order }
}

fn open_order<'a>(site: &'a Site, id: &str) -> Result<&'a Order, Rejection> {
    let order = site
        .orders
        .get(id)
        .ok_or_else(|| Rejection::new(Code::UnknownOrder, format!("no order {:?}", clip(id))))?;
    if !order.is_open() {
        return Err(Rejection::new(
            Code::OrderClosed,
            format!("order {id} is completed and takes no changes"),
        ));
    }
    Ok(order)
}

fn known_station(site: &Site, station: &str) -> Result<(), Rejection> {
    let known = site
        .menu
        .as_ref()
        .is_some_and(|m| m.items.iter().any(|i| i.station == station));
    if known {
        Ok(())
    } else {
        Err(Rejection::new(
            Code::UnknownStation,
            format!("no station {:?}", clip(station)),
        ))
    }
}

fn check_lines_count(adding: usize, existing: usize) -> Result<(), Rejection> {
    if adding == 0 {
        return Err(Rejection::new(
            Code::NoLines,
            "an order needs at least one line",
        ));
    }
    if adding > limits::MAX_LINES_PER_COMMAND || existing + adding > limits::MAX_LINES_PER_ORDER {
        return Err(Rejection::new(
            Code::TooManyLines,
            format!(
                "at most {} lines per command and {} per order",
                limits::MAX_LINES_PER_COMMAND,
                limits::MAX_LINES_PER_ORDER
            ),
        ));
    }
    Ok(())
}

fn check_text(
    field: &str,
    value: &str,
    max_chars: usize,
    allow_empty: bool,
) -> Result<(), Rejection> {
    if !allow_empty && value.trim().is_empty() {
        return Err(Rejection::new(
            Code::BadField,
            format!("{field} must not be empty"),
        ));
    }
    if value.chars().count() > max_chars {
        return Err(Rejection::new(
            Code::TooLong,
            format!("{field} is longer than {max_chars} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Rejection::new(
            Code::BadField,
            format!("{field} contains control characters"),
        ));
    }
    Ok(())
}

fn make_line(menu: &Menu, input: &LineInput, n: u32, fired_course: u32) -> Result<Line, Rejection> {
    let item = menu.item(&input.item).ok_or_else(|| {
        Rejection::new(
            Code::UnknownItem,
            format!("no menu item {:?}", clip(&input.item)),
        )
    })?;
    if input.qty == 0 || input.qty > limits::MAX_QTY {
        return Err(Rejection::new(
            Code::BadQty,
            format!("qty must be 1..={}, got {}", limits::MAX_QTY, input.qty),
        ));
    }
    if input.mods.len() > limits::MAX_MODS {
        return Err(Rejection::new(
            Code::TooLong,
            format!("at most {} modifiers per line", limits::MAX_MODS),
        ));
    }
    for m in &input.mods {
        check_text("modifier", m, limits::MAX_MOD_CHARS, false)?;
    }
    if let Some(notes) = &input.notes {
        check_text("notes", notes, limits::MAX_NOTES_CHARS, true)?;
    }
    let course = input.course.unwrap_or(1);
    if course == 0 || course > limits::MAX_COURSE {
        return Err(Rejection::new(
            Code::BadCourse,
            format!("course must be 1..={}", limits::MAX_COURSE),
        ));
    }
    Ok(Line {
        n,
        item: item.id.clone(),
        name: item.name.clone(),
        qty: input.qty,
        mods: input.mods.clone(),
        notes: input.notes.clone().filter(|n| !n.is_empty()),
        course,
        station: item.station.clone(),
        status: if course <= fired_course {
            LineStatus::Fired
        } else {
            LineStatus::Held
        },
    })
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(limits::MAX_ID_CHARS) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
