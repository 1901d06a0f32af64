use super::*;
use crate::order::{Line, OrderStatus};

const MIN: u64 = 60_000;

/// An order whose lines are at `stations` with `statuses`.
fn order(ticket: u64, lines: &[(&str, LineStatus)]) -> Order {
    Order {
        id: format!("o-{ticket:06}"),
        ticket,
        table: "4".into(),
        status: OrderStatus::Placed,
        version: 1,
        lines: lines
            .iter()
            .enumerate()
            .map(|(i, (station, status))| Line {
                n: i as u32 + 1,
                item: "x".into(),
                name: "X".into(),
                qty: 1,
                mods: vec![],
                notes: None,
                allergy: None,
                course: 1,
                station: (*station).into(),
                status: *status,
                fired_at: None,
                seat: None,
            })
            .collect(),
        fired_course: 1,
        placed_at: 0,
        rush: false,
        server: None,
        service: None,
        origin: None,
    }
}

fn ev(seq: u64, kind: EventKind, at: u64, o: Order) -> Event {
    Event {
        seq,
        kind,
        order_id: o.id.clone(),
        version: seq,
        command: format!("c{seq}"),
        device: "d".into(),
        at,
        order: o,
    }
}

use LineStatus::{Fired, Held, Ready, Voided};

#[test]
fn each_station_is_timed_from_its_fire_to_its_bump() {
    let mut f = SpeedFold::new(0, 60 * MIN, 10 * MIN);
    f.push(&ev(
        1,
        EventKind::OrderPlaced,
        MIN,
        order(1, &[("grill", Fired), ("bar", Fired)]),
    ));
    f.push(&ev(
        2,
        EventKind::TicketBumped,
        2 * MIN,
        order(1, &[("grill", Fired), ("bar", Ready)]),
    ));
    f.push(&ev(
        3,
        EventKind::TicketBumped,
        9 * MIN,
        order(1, &[("grill", Ready), ("bar", Ready)]),
    ));
    let s = f.finish();
    assert_eq!(s.orders, 1);
    let by: Vec<(&str, u64, u64)> = s
        .stations
        .iter()
        .map(|x| (x.station.as_str(), x.tickets, x.p50_ms))
        .collect();
    assert_eq!(by, vec![("bar", 1, MIN), ("grill", 1, 8 * MIN)]);
    assert!(s.late.is_empty());
    assert_eq!(s.buckets.len(), 4);
    assert_eq!((s.buckets[0].orders, s.buckets[0].tickets), (1, 2));
}

#[test]
fn a_held_course_starts_its_ticket_when_fired_and_a_recall_starts_a_new_one() {
    let mut f = SpeedFold::new(0, 60 * MIN, 10 * MIN);
    f.push(&ev(
        1,
        EventKind::OrderPlaced,
        0,
        order(1, &[("grill", Fired), ("cold", Held)]),
    ));
    f.push(&ev(
        2,
        EventKind::TicketBumped,
        5 * MIN,
        order(1, &[("grill", Ready), ("cold", Held)]),
    ));
    f.push(&ev(
        3,
        EventKind::CourseFired,
        20 * MIN,
        order(1, &[("grill", Ready), ("cold", Fired)]),
    ));
    f.push(&ev(
        4,
        EventKind::TicketBumped,
        23 * MIN,
        order(1, &[("grill", Ready), ("cold", Ready)]),
    ));
    f.push(&ev(
        5,
        EventKind::TicketRecalled,
        24 * MIN,
        order(1, &[("grill", Fired), ("cold", Ready)]),
    ));
    f.push(&ev(
        6,
        EventKind::TicketBumped,
        36 * MIN,
        order(1, &[("grill", Ready), ("cold", Ready)]),
    ));
    let s = f.finish();
    let grill = s.stations.iter().find(|x| x.station == "grill").unwrap();
    let cold = s.stations.iter().find(|x| x.station == "cold").unwrap();
    assert_eq!(
        (grill.tickets, grill.p50_ms, grill.p90_ms, grill.max_ms),
        (2, 5 * MIN, 12 * MIN, 12 * MIN)
    );
    assert_eq!((cold.tickets, cold.p50_ms), (1, 3 * MIN));
    assert_eq!(grill.late, 1);
    assert_eq!(s.late.len(), 1);
    assert_eq!(
        (s.late[0].station.as_str(), s.late[0].ms, s.late[0].ticket),
        ("grill", 12 * MIN, 1)
    );
}

#[test]
fn voided_or_completed_early_is_no_ticket_time_and_added_lines_keep_the_clock() {
    let mut f = SpeedFold::new(0, 60 * MIN, 10 * MIN);
    f.push(&ev(
        1,
        EventKind::OrderPlaced,
        0,
        order(1, &[("grill", Fired)]),
    ));
    f.push(&ev(
        2,
        EventKind::LineVoided,
        MIN,
        order(1, &[("grill", Voided)]),
    ));
    f.push(&ev(
        3,
        EventKind::OrderPlaced,
        0,
        order(2, &[("fry", Fired)]),
    ));
    f.push(&ev(
        4,
        EventKind::LinesAdded,
        2 * MIN,
        order(2, &[("fry", Fired), ("fry", Fired)]),
    ));
    f.push(&ev(
        5,
        EventKind::TicketBumped,
        4 * MIN,
        order(2, &[("fry", Ready), ("fry", Ready)]),
    ));
    f.push(&ev(
        6,
        EventKind::OrderPlaced,
        0,
        order(3, &[("bar", Fired)]),
    ));
    f.push(&ev(
        7,
        EventKind::OrderCompleted,
        3 * MIN,
        order(3, &[("bar", Fired)]),
    ));
    let s = f.finish();
    let by: Vec<(&str, u64, u64)> = s
        .stations
        .iter()
        .map(|x| (x.station.as_str(), x.tickets, x.p50_ms))
        .collect();
    assert_eq!(by, vec![("fry", 1, 4 * MIN)]);
    assert_eq!(s.buckets.iter().map(|b| b.tickets).sum::<u64>(), 1);
}

#[test]
fn only_what_happens_in_the_window_counts_but_earlier_fires_start_the_clock() {
    let from = 60 * MIN;
    let mut f = SpeedFold::new(from, from + 30 * MIN, 10 * MIN);
    // Placed before the window, bumped in it: counted from its fire.
    f.push(&ev(
        1,
        EventKind::OrderPlaced,
        from - 2 * MIN,
        order(1, &[("grill", Fired)]),
    ));
    f.push(&ev(
        2,
        EventKind::TicketBumped,
        from + MIN,
        order(1, &[("grill", Ready)]),
    ));
    // Placed in the window, bumped after it: not counted, but the order is.
    f.push(&ev(
        3,
        EventKind::OrderPlaced,
        from + 29 * MIN,
        order(2, &[("grill", Fired)]),
    ));
    f.push(&ev(
        4,
        EventKind::TicketBumped,
        from + 31 * MIN,
        order(2, &[("grill", Ready)]),
    ));
    let s = f.finish();
    assert_eq!(s.orders, 1);
    assert_eq!(s.stations.len(), 1);
    assert_eq!((s.stations[0].tickets, s.stations[0].p50_ms), (1, 3 * MIN));
    assert_eq!(s.buckets.len(), 2);
    assert_eq!((s.buckets[0].tickets, s.buckets[1].orders), (1, 1));
}

#[test]
fn percentiles_are_nearest_rank() {
    let v: Vec<u64> = (1..=10).collect();
    assert_eq!((rank(&v, 50), rank(&v, 90)), (5, 9));
    assert_eq!(rank(&[7], 90), 7);
    assert_eq!(rank(&[], 50), 0);
}

#[test]
fn late_lists_the_newest_first_and_at_most_twenty() {
    let mut f = SpeedFold::new(0, 600 * MIN, MIN);
    for t in 1..=25u64 {
        f.push(&ev(
            2 * t,
            EventKind::OrderPlaced,
            t * 10 * MIN,
            order(t, &[("grill", Fired)]),
        ));
        f.push(&ev(
            2 * t + 1,
            EventKind::TicketBumped,
            t * 10 * MIN + 2 * MIN,
            order(t, &[("grill", Ready)]),
        ));
    }
    let s = f.finish();
    assert_eq!(s.stations[0].late, 25);
    assert_eq!(s.late.len(), MAX_LATE_LISTED);
    assert_eq!(s.late[0].ticket, 25);
}

#[test]
fn the_last_line_bumped_alone_ends_the_ticket_too() {
    let mut f = SpeedFold::new(0, 60 * MIN, 10 * MIN);
    f.push(&ev(
        1,
        EventKind::OrderPlaced,
        0,
        order(1, &[("fry", Fired), ("fry", Fired)]),
    ));
    f.push(&ev(
        2,
        EventKind::LineBumped,
        MIN,
        order(1, &[("fry", Ready), ("fry", Fired)]),
    ));
    f.push(&ev(
        3,
        EventKind::LineBumped,
        4 * MIN,
        order(1, &[("fry", Ready), ("fry", Ready)]),
    ));
    let s = f.finish();
    assert_eq!((s.stations[0].tickets, s.stations[0].p50_ms), (1, 4 * MIN));
}
