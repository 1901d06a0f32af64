//! `bump_line` (one line done at its station) and `set_rush` (an order shown first).

use super::*;

fn bump_line(order_id: &str, line: u32) -> CommandBody {
    CommandBody::BumpLine {
        order_id: order_id.into(),
        line,
    }
}

fn rush(order_id: &str, rush: bool) -> CommandBody {
    CommandBody::SetRush {
        order_id: order_id.into(),
        rush,
    }
}

#[test]
fn a_line_bumped_alone_leaves_the_ticket_on_its_board_until_the_last() {
    let mut s = site();
    let o = place(
        &mut s,
        vec![li("burger", 1), li("steak", 1), li("fries", 1)],
    );
    let after = ok(&mut s, &station(&["grill"]), bump_line(&o.id, 2));
    assert_eq!(
        statuses(&after),
        vec![LineStatus::Fired, LineStatus::Ready, LineStatus::Fired]
    );
    assert_eq!(after.version, 2);
    assert_eq!(after.status, OrderStatus::InProgress);
    assert!(after.on_station("grill"), "the burger is still cooking");
    let after = ok(&mut s, &station(&["grill"]), bump_line(&o.id, 1));
    assert!(!after.on_station("grill"), "the grill's last line is done");
    assert!(after.on_station("fry"));
    // A line done twice, held, voided or unknown: refused, nothing changes.
    assert_eq!(
        rejected(&mut s, &station(&["grill"]), bump_line(&o.id, 1)),
        Code::NothingToBump
    );
    assert_eq!(
        rejected(&mut s, &station(&["grill"]), bump_line(&o.id, 9)),
        Code::UnknownLine
    );
    ok(&mut s, &tablet(), void(&o.id, 3));
    assert_eq!(
        rejected(&mut s, &expo(), bump_line(&o.id, 3)),
        Code::LineVoided
    );
    // The whole-ticket recall brings the bumped lines back.
    let back = ok(&mut s, &expo(), recall(&o.id, "grill"));
    assert_eq!(statuses(&back)[..2], [LineStatus::Fired, LineStatus::Fired]);
}

#[test]
fn a_station_bumps_only_its_own_lines_and_a_held_line_is_not_cooking() {
    let mut s = site();
    let o = place(&mut s, vec![li("burger", 1), course("cake", 2)]);
    assert_eq!(
        rejected(&mut s, &station(&["fry"]), bump_line(&o.id, 1)),
        Code::Forbidden
    );
    assert_eq!(
        rejected(&mut s, &tablet(), bump_line(&o.id, 1)),
        Code::Forbidden
    );
    assert_eq!(
        rejected(&mut s, &station(&[]), bump_line(&o.id, 1)),
        Code::Forbidden
    );
    assert_eq!(
        rejected(&mut s, &expo(), bump_line(&o.id, 2)),
        Code::NothingToBump
    );
    ok(&mut s, &manager(), bump_line(&o.id, 1));
    ok(&mut s, &expo(), complete(&o.id));
    assert_eq!(
        rejected(&mut s, &expo(), bump_line(&o.id, 1)),
        Code::OrderClosed
    );
    assert_eq!(
        rejected(&mut s, &expo(), bump_line("o-999999", 1)),
        Code::UnknownOrder
    );
}

#[test]
fn a_rush_is_set_and_cleared_by_the_front_of_house_and_expo() {
    let mut s = site();
    let o = place(&mut s, vec![li("burger", 1)]);
    assert!(!o.rush);
    let r = ok(&mut s, &tablet(), rush(&o.id, true));
    assert!(r.rush);
    assert_eq!(r.version, 2);
    // Set again: still a change (a new version), the same mark.
    let again = ok(&mut s, &expo(), rush(&o.id, true));
    assert!(again.rush && again.version == 3);
    assert!(!ok(&mut s, &manager(), rush(&o.id, false)).rush);
    assert_eq!(
        rejected(&mut s, &station(&["grill"]), rush(&o.id, true)),
        Code::Forbidden
    );
    ok(&mut s, &expo(), complete(&o.id));
    assert_eq!(
        rejected(&mut s, &tablet(), rush(&o.id, true)),
        Code::OrderClosed
    );
}

#[test]
fn the_events_name_what_happened() {
    let mut s2 = site();
    let o = place(&mut s2, vec![li("burger", 1)]);
    let c = decide(&s2, &expo(), &bump_line(&o.id, 1), 5).unwrap();
    assert_eq!(c[0].kind, EventKind::LineBumped);
    let c = decide(&s2, &expo(), &rush(&o.id, true), 5).unwrap();
    assert_eq!(c[0].kind, EventKind::RushChanged);
    assert_eq!(EventKind::LineBumped.as_str(), "line_bumped");
    assert_eq!(EventKind::RushChanged.as_str(), "rush_changed");
    // A rush is absent on the wire when not set, so orders before it encode as they did.
    let plain = crate::wire::encode(&o).unwrap();
    let back: Order = crate::wire::decode(&plain).unwrap();
    assert!(!back.rush);
    assert_eq!(plain, crate::wire::encode(&back).unwrap());
}

#[test]
fn a_line_knows_when_it_went_to_its_station() {
    let mut s = site();
    let placed = decide(
        &s,
        &tablet(),
        &place_cmd(vec![li("burger", 1), course("cake", 2)]),
        1_000,
    )
    .unwrap();
    apply(&mut s, &placed[0]);
    let o = placed[0].order.clone();
    // With the order: its placed_at (not repeated on the line); held: not yet.
    assert_eq!(o.lines[0].fired_at, None);
    assert_eq!(o.lines[0].fired_since(o.placed_at), Some(1_000));
    assert_eq!(o.lines[1].fired_since(o.placed_at), None);
    let fired = decide(&s, &tablet(), &fire(&o.id, 2), 5_000).unwrap();
    apply(&mut s, &fired[0]);
    assert_eq!(fired[0].order.lines[1].fired_at, Some(5_000));
    let added = decide(&s, &tablet(), &add(&o.id, vec![li("fries", 1)]), 9_000).unwrap();
    assert_eq!(added[0].order.lines[2].fired_at, Some(9_000));
    assert_eq!(
        added[0].order.lines[0].fired_at, None,
        "earlier lines keep theirs"
    );
}

#[test]
fn an_order_says_how_it_leaves_who_took_it_and_each_guests_seat() {
    let mut s = site();
    let mut seat2 = li("burger", 1);
    seat2.seat = Some(2);
    let body = CommandBody::PlaceOrder {
        table: "7".into(),
        lines: vec![seat2, li("fries", 1)],
        service: Some(crate::order::Service::Takeaway),
        server: Some("Ana".into()),
        channel: None,
        reference: None,
    };
    let o = ok(&mut s, &tablet(), body);
    assert_eq!(o.service, Some(crate::order::Service::Takeaway));
    assert_eq!(o.server.as_deref(), Some("Ana"));
    assert_eq!((o.lines[0].seat, o.lines[1].seat), (Some(2), None));
    // Dine-in and an empty server name are the defaults: not carried.
    let body = CommandBody::PlaceOrder {
        table: "8".into(),
        lines: vec![li("fries", 1)],
        service: Some(crate::order::Service::DineIn),
        server: Some(String::new()),
        channel: None,
        reference: None,
    };
    let o = ok(&mut s, &tablet(), body);
    assert_eq!((o.service, o.server), (None, None));
    // Refused, nothing changes: a seat of 0 or 100, a long or multi-line server name.
    for seat in [0, 100] {
        let mut l = li("fries", 1);
        l.seat = Some(seat);
        assert_eq!(
            rejected(&mut s, &tablet(), place_cmd(vec![l])),
            Code::BadField,
            "{seat}"
        );
    }
    for (server, code) in [
        ("x".repeat(33), Code::TooLong),
        ("A\nB".into(), Code::BadField),
    ] {
        let body = CommandBody::PlaceOrder {
            table: "9".into(),
            lines: vec![li("fries", 1)],
            service: None,
            server: Some(server),
            channel: None,
            reference: None,
        };
        assert_eq!(rejected(&mut s, &tablet(), body), code);
    }
}
