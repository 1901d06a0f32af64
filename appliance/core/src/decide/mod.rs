//! The order state machine: `decide` turns one authorised command into events (or a rejection),
//! `apply` folds events into the site state. Both are pure; the engine supplies the clock and the
//! persistence.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::menu::Menu;
use crate::open_bytes::{self, OpenBytes, MAX_OPEN_BYTES};
use crate::order::{LineStatus, Order, OrderStatus, Origin, Service};
use crate::wire::{CommandBody, EventKind, LineInput};
use crate::{Code, Rejection};

mod kitchen;
mod lines;
pub mod menu;
mod origin;

use lines::{check_lines_count, check_text, make_line};
use origin::{origin, own_order};

/// Input limits: anything beyond is a rejection, never a truncation.
pub mod limits {
    pub const MAX_LINES_PER_COMMAND: usize = 50;
    pub const MAX_LINES_PER_ORDER: usize = 200;
    pub const MAX_QTY: u32 = 99;
    pub const MAX_MODS: usize = 12;
    pub const MAX_MOD_CHARS: usize = 40;
    pub const MAX_NOTES_CHARS: usize = 200;
    pub const MAX_ALLERGY_CHARS: usize = 100;
    pub const MAX_SERVER_CHARS: usize = 32;
    /// An order's channel (`origin.channel`): "online", "kiosk", a delivery platform's name.
    pub const MAX_CHANNEL_CHARS: usize = 16;
    /// An order's number on its channel (`origin.reference`).
    pub const MAX_REFERENCE_CHARS: usize = 32;
    pub const MAX_SEAT: u32 = 99;
    pub const MAX_TABLE_CHARS: usize = 16;
    pub const MAX_ID_CHARS: usize = 64;
    pub const MAX_COURSE: u32 = 9;
    /// An order's CBOR encoding (what every event about it and its board entry carry): a paired
    /// device cannot grow one order into a quarter of a megabyte with `add_lines`.
    pub const MAX_ORDER_BYTES: usize = 16 * 1024;
    /// Open orders of a site unless it says otherwise ([`super::SiteLimits::max_open_orders`],
    /// docketd's `engine.max_open_orders`): a paired device cannot grow the boards and the box's
    /// memory without end.
    pub const DEFAULT_MAX_OPEN_ORDERS: usize = 1000;
}

/// What a paired device is allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Tablet,
    Station,
    Expo,
    Manager,
    /// A system outside the restaurant's own devices: head office's downlink of online,
    /// delivery and kiosk orders, or the restaurant's till through the local API. It places
    /// orders (saying where they came from) and may amend, fire and void only the orders it
    /// placed.
    Integration,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Tablet => "tablet",
            Role::Station => "station",
            Role::Expo => "expo",
            Role::Manager => "manager",
            Role::Integration => "integration",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "tablet" => Some(Role::Tablet),
            "station" => Some(Role::Station),
            "expo" => Some(Role::Expo),
            "manager" => Some(Role::Manager),
            "integration" => Some(Role::Integration),
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
            | CommandBody::FireCourse { .. }
            | CommandBody::SetRush { .. },
        ) => true,
        // A station may bump only its own lines and 86 only its own items: `kitchen::bump_line`
        // and `menu::decide_menu` check the line's or the item's station.
        // Which orders: `decide` checks the order is the integration's own (`own_order`).
        (
            Role::Integration,
            CommandBody::PlaceOrder { .. }
            | CommandBody::AddLines { .. }
            | CommandBody::VoidLine { .. }
            | CommandBody::FireCourse { .. },
        ) => true,
        (Role::Station, CommandBody::BumpLine { .. } | CommandBody::SetStock { .. }) => {
            !actor.stations.is_empty()
        }
        (Role::Station, CommandBody::Reprint { station, .. }) => {
            actor.stations.iter().any(|s| s == station)
        }
        (
            Role::Station,
            CommandBody::Bump { station, .. } | CommandBody::Recall { station, .. },
        ) => actor.stations.iter().any(|s| s == station),
        (
            Role::Expo,
            CommandBody::Bump { .. }
            | CommandBody::Recall { .. }
            | CommandBody::Complete { .. }
            | CommandBody::BumpLine { .. }
            | CommandBody::SetRush { .. }
            | CommandBody::SetStock { .. }
            | CommandBody::Reprint { .. },
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

/// The bounds on what the site holds, each a docketd config key (`[engine]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteLimits {
    /// `place_order` is refused (`too_many_open_orders`) while this many orders are open.
    pub max_open_orders: usize,
    /// An order's CBOR encoding at most (`too_large` past it).
    pub max_order_bytes: usize,
    /// The open orders' encodings together at most (`too_many_open_orders` past it): what a
    /// board, which carries at most all of them, can hold under the broker's packet limit.
    pub max_open_bytes: usize,
}

impl Default for SiteLimits {
    fn default() -> Self {
        SiteLimits {
            max_open_orders: limits::DEFAULT_MAX_OPEN_ORDERS,
            max_order_bytes: limits::MAX_ORDER_BYTES,
            max_open_bytes: MAX_OPEN_BYTES,
        }
    }
}

/// The order book: everything `decide` reads (the menu, the orders commands may touch, the ticket
/// counter, what the site may hold) and `apply` changes. (Not the site bundle: that is docketd's
/// `site`.)
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrderBook {
    pub menu: Option<Menu>,
    /// Open orders, plus any closed order the engine loaded for the command at hand.
    pub orders: BTreeMap<String, Order>,
    /// Ticket of the next order placed (tickets start at 1).
    pub next_ticket: u64,
    /// What a paired device can make the site hold (docketd's `engine.max_*` keys).
    pub limits: SiteLimits,
    /// The open orders' encoded sizes, kept by [`apply`]: `OpenBytes::of(&orders)` when the
    /// orders are set any other way.
    pub open_bytes: OpenBytes,
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

/// A new order: a ticket, its lines routed to their stations, course 1 fired.
/// How a new order is taken: dine-in, takeaway or delivery, and by which server.
#[derive(Debug, Clone)]
struct Taken<'a> {
    service: Option<Service>,
    server: Option<&'a str>,
    origin: Option<Origin>,
}

fn place_order(
    site: &OrderBook,
    table: &str,
    lines: &[LineInput],
    taken: Taken<'_>,
    now_ms: u64,
) -> Result<Vec<Change>, Rejection> {
    check_text("table", table, limits::MAX_TABLE_CHARS, false)?;
    if let Some(server) = taken.server.filter(|s| !s.is_empty()) {
        check_text("server", server, limits::MAX_SERVER_CHARS, false)?;
    }
    check_lines_count(lines.len(), 0)?;
    let open = site.open_bytes.count();
    if open >= site.limits.max_open_orders {
        return Err(Rejection::new(
            Code::TooManyOpenOrders,
            format!("{open} orders are open, the most the box keeps: complete some first"),
        ));
    }
    let menu = site
        .menu
        .as_ref()
        .ok_or_else(|| Rejection::new(Code::NoMenu, "the box has no menu loaded"))?;
    let ticket = site.next_ticket.max(1);
    let mut order = Order {
        id: order_id(ticket),
        ticket,
        table: table.to_owned(),
        status: OrderStatus::Placed,
        version: 1,
        lines: Vec::with_capacity(lines.len()),
        fired_course: 1,
        placed_at: now_ms,
        rush: false,
        // Dine-in is the default: not repeated on the wire.
        service: taken.service.filter(|s| *s != Service::DineIn),
        server: taken.server.map(str::to_owned).filter(|s| !s.is_empty()),
        origin: taken.origin,
    };
    for input in lines {
        let line = make_line(
            menu,
            input,
            order.lines.len() as u32 + 1,
            order.fired_course,
            None,
        )?;
        order.lines.push(line);
    }
    order.refresh_status();
    check_order_bytes(site, &order)?;
    Ok(vec![Change {
        kind: EventKind::OrderPlaced,
        order,
    }])
}

/// More lines on an open order, numbered after the last.
fn add_lines(
    site: &OrderBook,
    order_id: &str,
    lines: &[LineInput],
    now_ms: u64,
) -> Result<Vec<Change>, Rejection> {
    let order = open_order(site, order_id)?;
    check_lines_count(lines.len(), order.lines.len())?;
    let menu = site
        .menu
        .as_ref()
        .ok_or_else(|| Rejection::new(Code::NoMenu, "the box has no menu loaded"))?;
    let mut next = order.clone();
    for input in lines {
        let line = make_line(
            menu,
            input,
            next.lines.len() as u32 + 1,
            next.fired_course,
            Some(now_ms),
        )?;
        next.lines.push(line);
    }
    let change = changed(next, EventKind::LinesAdded);
    check_order_bytes(site, &change.order)?;
    Ok(vec![change])
}

/// One line of an open order voided (once).
fn void_line(site: &OrderBook, order_id: &str, line: u32) -> Result<Vec<Change>, Rejection> {
    let order = open_order(site, order_id)?;
    let mut next = order.clone();
    let l = next.lines.iter_mut().find(|l| l.n == line).ok_or_else(|| {
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

/// A later course fired: its held lines (and any earlier held ones) start cooking.
fn fire_course(
    site: &OrderBook,
    order_id: &str,
    course: u32,
    now_ms: u64,
) -> Result<Vec<Change>, Rejection> {
    let order = open_order(site, order_id)?;
    if course == 0 || course > limits::MAX_COURSE {
        return Err(Rejection::new(
            Code::BadCourse,
            format!("course must be 1..={}", limits::MAX_COURSE),
        ));
    }
    if course <= order.fired_course {
        return Err(Rejection::new(
            Code::CourseFired,
            format!("course {course} of {order_id} is already fired"),
        ));
    }
    let mut next = order.clone();
    next.fired_course = course;
    for l in next.lines.iter_mut() {
        if l.status == LineStatus::Held && l.course <= course {
            l.status = LineStatus::Fired;
            l.fired_at = Some(now_ms);
        }
    }
    Ok(vec![changed(next, EventKind::CourseFired)])
}

/// The open order with its lines at `station` moved from `from` to `to` (a bump or a recall):
/// `None` when no line there is `from`; an error when the order or the station is unknown.
fn move_lines(
    site: &OrderBook,
    order_id: &str,
    station: &str,
    from: LineStatus,
    to: LineStatus,
) -> Result<Option<Order>, Rejection> {
    let order = open_order(site, order_id)?;
    known_station(site, station)?;
    let mut next = order.clone();
    let mut n = 0;
    for l in next
        .lines
        .iter_mut()
        .filter(|l| l.station == station && l.status == from)
    {
        l.status = to;
        n += 1;
    }
    Ok((n > 0).then_some(next))
}

/// Decides what one authorised order command does. `now_ms` is informational wall time.
/// Never mutates; `apply` the returned changes to move on.
pub fn decide(
    site: &OrderBook,
    actor: &Actor,
    cmd: &CommandBody,
    now_ms: u64,
) -> Result<Vec<Change>, Rejection> {
    authorise(actor, cmd)?;
    if actor.role == Role::Integration {
        if let Some(order_id) = cmd.order_id() {
            own_order(site, actor, order_id)?;
        }
    }
    match cmd {
        CommandBody::PlaceOrder {
            table,
            lines,
            service,
            server,
            channel,
            reference,
        } => {
            let who = Taken {
                service: *service,
                server: server.as_deref(),
                origin: origin(actor, channel.as_deref(), reference.as_deref())?,
            };
            place_order(site, table, lines, who, now_ms)
        }
        CommandBody::AddLines { order_id, lines } => add_lines(site, order_id, lines, now_ms),
        CommandBody::VoidLine { order_id, line } => void_line(site, order_id, *line),
        CommandBody::FireCourse { order_id, course } => {
            fire_course(site, order_id, *course, now_ms)
        }
        CommandBody::Bump { order_id, station } => {
            let next = move_lines(
                site,
                order_id,
                station,
                LineStatus::Fired,
                LineStatus::Ready,
            )?
            .ok_or_else(|| {
                Rejection::new(
                    Code::NothingToBump,
                    format!("{order_id} has nothing cooking at {station}"),
                )
            })?;
            Ok(vec![changed(next, EventKind::TicketBumped)])
        }
        CommandBody::Recall { order_id, station } => {
            let next = move_lines(
                site,
                order_id,
                station,
                LineStatus::Ready,
                LineStatus::Fired,
            )?
            .ok_or_else(|| {
                Rejection::new(
                    Code::NothingToRecall,
                    format!("{order_id} has nothing bumped at {station}"),
                )
            })?;
            Ok(vec![changed(next, EventKind::TicketRecalled)])
        }
        CommandBody::Complete { order_id } => {
            let order = open_order(site, order_id)?;
            let mut next = order.clone();
            next.status = OrderStatus::Completed;
            Ok(vec![changed(next, EventKind::OrderCompleted)])
        }
        CommandBody::BumpLine { order_id, line } => {
            kitchen::bump_line(site, actor, order_id, *line)
        }
        CommandBody::SetRush { order_id, rush } => kitchen::set_rush(site, order_id, *rush),
        CommandBody::Replay { .. } => Err(Rejection::new(
            Code::MalformedBody,
            "replay is a query, not a change",
        )),
        CommandBody::SetStock { .. }
        | CommandBody::SetItem { .. }
        | CommandBody::RemoveItem { .. } => Err(Rejection::new(
            Code::MalformedBody,
            "a menu command changes the menu, not an order (menu::decide_menu)",
        )),
        CommandBody::Reprint { .. } => Err(Rejection::new(
            Code::MalformedBody,
            "a reprint changes no order (print::reprints)",
        )),
    }
}

/// Folds one committed change into the site.
pub fn apply(site: &mut OrderBook, change: &Change) {
    if change.kind == EventKind::OrderPlaced {
        site.next_ticket = site.next_ticket.max(change.order.ticket + 1);
    }
    site.open_bytes
        .note(&change.order, open_bytes::size(&change.order));
    site.orders
        .insert(change.order.id.clone(), change.order.clone());
}

pub(crate) fn changed(mut order: Order, kind: EventKind) -> Change {
    order.version += 1;
    order.refresh_status();
    Change { kind, order }
}

pub(crate) fn open_order<'a>(site: &'a OrderBook, id: &str) -> Result<&'a Order, Rejection> {
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

fn known_station(site: &OrderBook, station: &str) -> Result<(), Rejection> {
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

/// An order grown by a command stays under its own bound, and the open orders together under
/// theirs (what a board can carry).
fn check_order_bytes(site: &OrderBook, order: &Order) -> Result<(), Rejection> {
    let bytes = open_bytes::size(order);
    let max = site.limits.max_order_bytes;
    if bytes > max {
        return Err(Rejection::new(
            Code::TooLarge,
            format!(
                "the order would be {bytes} bytes; the limit is {max}: shorter notes, or a new order"
            ),
        ));
    }
    let open = site.open_bytes.total() - site.open_bytes.of_order(&order.id) + bytes;
    let max = site.limits.max_open_bytes;
    if open > max {
        return Err(Rejection::new(
            Code::TooManyOpenOrders,
            format!(
                "the open orders would hold {open} bytes, more than the {max} the box keeps: complete some first"
            ),
        ));
    }
    Ok(())
}

pub(crate) fn clip(s: &str) -> &str {
    match s.char_indices().nth(limits::MAX_ID_CHARS) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_choices;
