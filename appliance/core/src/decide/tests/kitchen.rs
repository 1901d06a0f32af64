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
