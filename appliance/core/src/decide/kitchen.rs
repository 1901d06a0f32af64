//! The kitchen's finer moves: a single line bumped (`bump_line`) and an order marked as a rush
//! (`set_rush`). Pure, like the rest of `decide`.

use super::{changed, open_order, Actor, Change, Role};
use crate::order::LineStatus;
use crate::wire::EventKind;
use crate::{Code, Rejection};

/// Line `n` of an open order, fired, becomes ready. A station device may bump only lines of its
/// own stations; expo and managers any.
pub fn bump_line(
    site: &super::OrderBook,
    actor: &Actor,
    order_id: &str,
    n: u32,
) -> Result<Vec<Change>, Rejection> {
    let order = open_order(site, order_id)?;
    let Some(i) = order.lines.iter().position(|l| l.n == n) else {
        return Err(Rejection::new(
            Code::UnknownLine,
            format!("{order_id} has no line {n}"),
        ));
    };
    let line = &order.lines[i];
    if actor.role == Role::Station && !actor.stations.contains(&line.station) {
        return Err(Rejection::new(
            Code::Forbidden,
            format!(
                "line {n} of {order_id} is cooked at {}, not at this screen's stations",
                line.station
            ),
        ));
    }
    match line.status {
        LineStatus::Fired => {}
        LineStatus::Voided => {
            return Err(Rejection::new(
                Code::LineVoided,
                format!("line {n} of {order_id} was voided"),
            ))
        }
        LineStatus::Held | LineStatus::Ready => {
            return Err(Rejection::new(
                Code::NothingToBump,
                format!("line {n} of {order_id} is not cooking"),
            ))
        }
    }
    let mut next = order.clone();
    next.lines[i].status = LineStatus::Ready;
    Ok(vec![changed(next, EventKind::LineBumped)])
}

/// The order's rush mark set or cleared. Setting what is already set is still a change (a new
/// version, an event): screens converge on it either way, and the tablet's retry stays simple.
pub fn set_rush(
    site: &super::OrderBook,
    order_id: &str,
    rush: bool,
) -> Result<Vec<Change>, Rejection> {
    let mut next = open_order(site, order_id)?.clone();
    next.rush = rush;
    Ok(vec![changed(next, EventKind::RushChanged)])
}
