use super::*;
use crate::order::{OrderStatus, Service};
use crate::Line;

fn line(n: u32, name: &str, station: &str, course: u32, status: LineStatus) -> Line {
    Line {
        n,
        item: name.to_lowercase(),
        name: name.into(),
        qty: 1,
        mods: vec![],
        notes: None,
        allergy: None,
        course,
        station: station.into(),
        status,
        fired_at: None,
        seat: None,
    }
}

fn order(lines: Vec<Line>) -> Order {
    Order {
        id: "o-1".into(),
        ticket: 1042,
        table: "12".into(),
        status: OrderStatus::Placed,
        version: 1,
        lines,
        fired_course: 1,
        placed_at: 1_700_000_000_000,
        rush: false,
        service: None,
        server: Some("Ana".into()),
        origin: None,
    }
}

fn kinds(slips: &[Slip]) -> Vec<(&str, SlipKind)> {
    slips.iter().map(|s| (s.station.as_str(), s.kind)).collect()
}

#[test]
fn a_new_order_is_a_new_ticket_at_each_station_with_fired_lines() {
    let o = order(vec![
        line(1, "Burger", "grill", 1, LineStatus::Fired),
        line(2, "Fries", "fry", 1, LineStatus::Fired),
        line(3, "Cake", "pastry", 2, LineStatus::Held),
    ]);
    let slips = plan(None, &o);
    assert_eq!(
        kinds(&slips),
        vec![("fry", SlipKind::New), ("grill", SlipKind::New)]
    );
}

#[test]
fn added_fired_and_voided_lines_are_a_change_naming_them() {
    let before = order(vec![
        line(1, "Burger", "grill", 1, LineStatus::Fired),
        line(2, "Steak", "grill", 2, LineStatus::Held),
        line(3, "Salad", "grill", 1, LineStatus::Fired),
    ]);
    let mut after = before.clone();
    after.lines[1].status = LineStatus::Fired;
    after.lines[2].status = LineStatus::Voided;
    after
        .lines
        .push(line(4, "Wings", "grill", 1, LineStatus::Fired));
    let slips = plan(Some(&before), &after);
    assert_eq!(slips.len(), 1);
    let s = &slips[0];
    assert_eq!(s.kind, SlipKind::Changed);
    assert_eq!(
        (s.added.clone(), s.fired.clone(), s.voided.clone()),
        (vec![4], vec![2], vec![3])
    );
}

#[test]
fn a_course_reaching_a_station_for_the_first_time_is_a_new_ticket_there() {
    let before = order(vec![
        line(1, "Burger", "grill", 1, LineStatus::Fired),
        line(2, "Cake", "pastry", 2, LineStatus::Held),
    ]);
    let mut after = before.clone();
    after.lines[1].status = LineStatus::Fired;
    assert_eq!(
        kinds(&plan(Some(&before), &after)),
        vec![("pastry", SlipKind::New)]
    );
}

#[test]
fn bumps_recalls_and_rush_print_nothing() {
    let before = order(vec![line(1, "Burger", "grill", 1, LineStatus::Fired)]);
    let mut bumped = before.clone();
    bumped.lines[0].status = LineStatus::Ready;
    assert!(plan(Some(&before), &bumped).is_empty());
    assert!(plan(Some(&bumped), &before).is_empty());
    let mut rush = before.clone();
    rush.rush = true;
    assert!(plan(Some(&before), &rush).is_empty());
    let held = order(vec![line(1, "Cake", "pastry", 2, LineStatus::Held)]);
    assert!(plan(None, &held).is_empty());
}

fn text(rows: &[Row]) -> String {
    rows.iter()
        .map(|r| r.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_new_ticket_carries_everything_the_cook_needs() {
    let mut o = order(vec![
        line(1, "Burger", "grill", 1, LineStatus::Fired),
        line(2, "Fries", "fry", 1, LineStatus::Fired),
    ]);
    o.lines[0].mods = vec!["no-onion".into(), "extra-cheese".into()];
    o.lines[0].notes = Some("well done".into());
    o.lines[0].allergy = Some("sesame".into());
    o.lines[0].qty = 2;
    let slip = &plan(None, &o)[1];
    let rows = layout(
        SlipText {
            order: &o,
            slip,
            at_ms: 1_700_000_000_000 + 60_000,
            utc_offset_minutes: 60,
            again: false,
        },
        Paper::Mm80,
    );
    let t = text(&rows);
    for want in [
        "GRILL",
        "#1042",
        "Table 12",
        "Server: Ana",
        "Course 1",
        "2 x Burger",
        "+ no onion, extra cheese",
        "note: well done",
        "ALLERGY: SESAME",
    ] {
        assert!(t.contains(want), "{want:?} missing from\n{t}");
    }
    assert!(!t.contains("Fries"), "another station's line printed:\n{t}");
    assert!(!t.contains("REPRINT"));
    // 1_700_000_060_000 ms is 22:14 UTC; the site is an hour ahead.
    assert!(t.contains("23:14"), "{t}");
    let big = |s: &str| {
        rows.iter()
            .any(|r| r.text == s && r.width == 2 && r.height == 2)
    };
    assert!(big("#1042") && big("Table 12"));
    let alarm = rows.iter().find(|r| r.text.contains("ALLERGY")).unwrap();
    assert!(
        alarm.bold && alarm.width == 2 && alarm.height == 2,
        "the allergy is an alarm"
    );
}

#[test]
fn a_change_prints_only_its_lines_marked_and_a_reprint_is_marked() {
    let before = order(vec![
        line(1, "Burger", "grill", 1, LineStatus::Fired),
        line(2, "Salad", "grill", 1, LineStatus::Fired),
    ]);
    let mut after = before.clone();
    after.lines[1].status = LineStatus::Voided;
    after
        .lines
        .push(line(3, "Wings", "grill", 1, LineStatus::Fired));
    after.service = Some(Service::Takeaway);
    after.origin = Some(crate::order::Origin {
        channel: "Deliveroo".into(),
        reference: Some("DR-4411".into()),
        device: "head-office".into(),
    });
    let slip = &plan(Some(&before), &after)[0];
    let t = |slip: &Slip, again| {
        text(&layout(
            SlipText {
                order: &after,
                slip,
                at_ms: 0,
                utc_offset_minutes: 0,
                again,
            },
            Paper::Mm58,
        ))
    };
    let changed = t(slip, false);
    assert!(changed.contains("Deliveroo #DR-4411"), "{changed}");
    assert!(changed.contains("ADDED  1 x Wings"), "{changed}");
    assert!(changed.contains("VOID  1 x Salad"), "{changed}");
    assert!(!changed.contains("Burger"), "{changed}");
    assert!(changed.contains("(+1 unchanged on this ticket)"));
    assert!(changed.contains("TAKEAWAY 12"));
    let again = t(slip, true);
    assert!(again.contains("** REPRINT **"));
    let reprint = t(&Slip::reprint("grill"), false);
    assert!(reprint.contains("1 x Burger") && reprint.contains("VOID  1 x Salad"));
    assert!(reprint.starts_with("** REPRINT **"));
}

#[test]
fn every_row_fits_the_paper_at_its_size() {
    let mut o = order(vec![line(1, "Burger", "grill", 1, LineStatus::Fired)]);
    o.lines[0].notes = Some(
        "the guest would like it cut in four pieces and served on a separate plate please".into(),
    );
    o.lines[0].allergy = Some("peanuts, tree nuts, sesame, shellfish and mustard".into());
    o.table = "Terrace by the big window".into();
    for paper in [Paper::Mm58, Paper::Mm80] {
        let slip = Slip::reprint("grill");
        let rows = layout(
            SlipText {
                order: &o,
                slip: &slip,
                at_ms: 0,
                utc_offset_minutes: 0,
                again: false,
            },
            paper,
        );
        for r in &rows {
            let room = paper.columns() / usize::from(r.width);
            assert!(
                r.text.chars().count() <= room,
                "{:?} over {room} columns",
                r.text
            );
        }
        let all = text(&rows);
        assert!(
            all.contains("separate") && all.contains("MUSTARD"),
            "wrapped text kept:\n{all}"
        );
    }
}

#[test]
fn times_wrap_around_midnight_at_any_offset() {
    assert_eq!(clock_time(0, 0), "00:00");
    assert_eq!(clock_time(0, -30), "23:30");
    assert_eq!(clock_time(23 * 3_600_000 + 59 * 60_000, 2), "00:01");
}

#[test]
fn a_reprint_picks_one_ticket_or_the_last_few_open_ones_of_the_station() {
    let mut book = crate::OrderBook {
        menu: Some(crate::Menu::sample(&[
            ("burger", "grill"),
            ("fries", "fry"),
        ])),
        ..Default::default()
    };
    for t in 1..=4u64 {
        let mut o = order(vec![line(1, "Burger", "grill", 1, LineStatus::Fired)]);
        o.id = format!("o-{t}");
        o.ticket = t;
        if t == 2 {
            o.lines[0].station = "fry".into();
        }
        book.orders.insert(o.id.clone(), o);
    }
    let tickets = |r: Result<Vec<&Order>, Rejection>| -> Vec<u64> {
        r.unwrap().iter().map(|o| o.ticket).collect()
    };
    assert_eq!(tickets(reprints(&book, "grill", None, Some(2))), vec![3, 4]);
    assert_eq!(
        tickets(reprints(&book, "grill", None, Some(20))),
        vec![1, 3, 4]
    );
    assert_eq!(
        tickets(reprints(&book, "grill", Some("o-3"), None)),
        vec![3]
    );
    let code = |r: Result<Vec<&Order>, Rejection>| r.unwrap_err().code;
    assert_eq!(
        code(reprints(&book, "grill", Some("o-2"), None)),
        Code::NothingToPrint
    );
    assert_eq!(
        code(reprints(&book, "grill", Some("o-9"), None)),
        Code::UnknownOrder
    );
    assert_eq!(
        code(reprints(&book, "pastry", None, Some(1))),
        Code::UnknownStation
    );
    assert_eq!(
        code(reprints(&book, "grill", None, Some(0))),
        Code::BadField
    );
    assert_eq!(
        code(reprints(&book, "grill", None, Some(21))),
        Code::BadField
    );
    assert_eq!(
        code(reprints(&book, "grill", None, None)),
        Code::MalformedBody
    );
    assert_eq!(
        code(reprints(&book, "grill", Some("o-1"), Some(1))),
        Code::MalformedBody
    );
}
