//! The bounds on what commands may carry: `place_order`'s input checked field by field, an
//! order's and the open orders' bytes, the open orders' count, lines per order, and which texts
//! may span lines.

use super::*;

#[test]
fn place_order_input_is_checked() {
    let mut s = site();
    let t = tablet();
    let mut place_with =
        |table: &str, lines: Vec<LineInput>| rejected(&mut s, &t, CommandBody::place(table, lines));
    let with = |f: &dyn Fn(&mut LineInput)| {
        let mut l = li("burger", 1);
        f(&mut l);
        vec![l]
    };
    assert_eq!(place_with("7", vec![li("unicorn", 1)]), Code::UnknownItem);
    assert_eq!(place_with("7", vec![li("burger", 0)]), Code::BadQty);
    assert_eq!(place_with("7", vec![li("burger", 100)]), Code::BadQty);
    assert_eq!(place_with("7", vec![li("burger", 10_000)]), Code::BadQty);
    assert_eq!(
        place_with("7", with(&|l| l.notes = Some("x".repeat(1 << 20)))),
        Code::TooLong
    );
    assert_eq!(
        place_with("7", with(&|l| l.notes = Some("é".repeat(201)))),
        Code::TooLong
    );
    assert_eq!(
        place_with("7", with(&|l| l.notes = Some("bell\u{7}".into()))),
        Code::BadField
    );
    assert_eq!(place_with("7", vec![]), Code::NoLines);
    assert_eq!(
        place_with("7", vec![li("burger", 1); 51]),
        Code::TooManyLines
    );
    assert_eq!(
        place_with("7\u{1b}[2J", vec![li("burger", 1)]),
        Code::BadField
    );
    assert_eq!(place_with("7\u{0}", vec![li("burger", 1)]), Code::BadField);
    assert_eq!(place_with("7\t", vec![li("burger", 1)]), Code::BadField);
    assert_eq!(place_with("", vec![li("burger", 1)]), Code::BadField);
    assert_eq!(place_with("   ", vec![li("burger", 1)]), Code::BadField);
    assert_eq!(
        place_with(&"9".repeat(17), vec![li("burger", 1)]),
        Code::TooLong
    );
    assert_eq!(
        place_with("7", with(&|l| l.mods = vec!["m".into(); 13])),
        Code::TooLong
    );
    assert_eq!(
        place_with("7", with(&|l| l.mods = vec!["m".repeat(41)])),
        Code::TooLong
    );
    assert_eq!(
        place_with("7", with(&|l| l.mods = vec![" ".into()])),
        Code::BadField
    );
    assert_eq!(
        place_with("7", with(&|l| l.course = Some(0))),
        Code::BadCourse
    );
    assert_eq!(
        place_with("7", with(&|l| l.course = Some(10))),
        Code::BadCourse
    );
    // One bad line rejects the whole order.
    assert_eq!(
        place_with("7", vec![li("burger", 1), li("fries", 0)]),
        Code::BadQty
    );

    // At the limits: accepted, nothing truncated; empty notes are dropped.
    let mut s = site();
    let mut full = li("burger", limits::MAX_QTY);
    full.mods = vec!["m".repeat(limits::MAX_MOD_CHARS); limits::MAX_MODS];
    full.notes = Some(format!("{}\n{}", "n".repeat(100), "n".repeat(99)));
    full.course = Some(limits::MAX_COURSE);
    let mut empty_notes = li("fries", 1);
    empty_notes.notes = Some(String::new());
    let o = ok(
        &mut s,
        &tablet(),
        CommandBody::place(
            &"ü".repeat(limits::MAX_TABLE_CHARS),
            vec![full.clone(), empty_notes],
        ),
    );
    assert_eq!(o.lines[0].mods, full.mods);
    assert_eq!(o.lines[0].notes, full.notes);
    assert_eq!(o.lines[0].status, LineStatus::Held);
    assert_eq!(o.lines[1].notes, None);
    let mut many = site();
    let o = place(
        &mut many,
        vec![li("burger", 1); limits::MAX_LINES_PER_COMMAND],
    );
    assert_eq!(o.lines.len(), 50);
}

#[test]
fn no_menu_no_orders() {
    let mut s = OrderBook {
        menu: None,
        ..site()
    };
    assert_eq!(
        rejected(&mut s, &tablet(), place_cmd(vec![li("burger", 1)])),
        Code::NoMenu
    );
}

#[test]
fn an_order_grows_to_at_most_16_kib() {
    // Lines with the longest notes fill an order's bytes long before its 200 lines.
    let mut s = site();
    let mut long = li("fries", 1);
    long.notes = Some("n".repeat(limits::MAX_NOTES_CHARS));
    let o = place(&mut s, vec![long.clone(); 40]);
    let mut grown = 40;
    let code = loop {
        match decide(&s, &tablet(), &add(&o.id, vec![long.clone(); 10]), 0) {
            Ok(changes) => {
                for c in &changes {
                    apply(&mut s, c);
                }
                grown += 10;
            }
            Err(r) => break r.code,
        }
    };
    assert_eq!(code, Code::TooLarge);
    assert!(grown < limits::MAX_LINES_PER_ORDER, "{grown} lines");
    let bytes = crate::wire::encode(&s.orders[&o.id]).unwrap().len();
    assert!(bytes <= limits::MAX_ORDER_BYTES, "{bytes}");
    // Nothing of the refused command was applied; a short line still fits.
    assert_eq!(s.orders[&o.id].lines.len(), grown);
    ok(&mut s, &tablet(), add(&o.id, vec![li("fries", 1)]));
}

#[test]
fn the_open_orders_hold_at_most_a_boards_worth_of_bytes() {
    let mut s = site();
    let mut long = li("fries", 1);
    long.notes = Some("n".repeat(limits::MAX_NOTES_CHARS));
    let mut placed = Vec::new();
    let code = loop {
        match decide(&s, &tablet(), &place_cmd(vec![long.clone(); 50]), 0) {
            Ok(changes) => {
                for c in &changes {
                    apply(&mut s, c);
                }
                placed.push(changes[0].order.id.clone());
            }
            Err(r) => break r.code,
        }
        assert!(placed.len() < 1000, "no byte bound on the open orders");
    };
    assert_eq!(code, Code::TooManyOpenOrders);
    assert!(s.open_bytes.total() <= MAX_OPEN_BYTES);
    assert!(s.open_bytes.total() > MAX_OPEN_BYTES - limits::MAX_ORDER_BYTES);
    assert_eq!(s.open_bytes, OpenBytes::of(&s.orders));
    // Completing one makes room for another.
    let first = placed[0].clone();
    ok(
        &mut s,
        &manager(),
        CommandBody::Complete { order_id: first },
    );
    place(&mut s, vec![long; 50]);
    assert_eq!(s.open_bytes, OpenBytes::of(&s.orders));
}

#[test]
fn a_site_holds_at_most_its_open_orders() {
    let mut s = OrderBook {
        limits: SiteLimits {
            max_open_orders: 30,
            ..SiteLimits::default()
        },
        ..site()
    };
    let mut first = None;
    for _ in 0..30 {
        let o = place(&mut s, vec![li("fries", 1)]);
        first.get_or_insert(o.id);
    }
    assert_eq!(
        rejected(&mut s, &tablet(), place_cmd(vec![li("fries", 1)])),
        Code::TooManyOpenOrders
    );
    // Completing one makes room.
    let first = first.unwrap();
    ok(
        &mut s,
        &manager(),
        CommandBody::Complete { order_id: first },
    );
    place(&mut s, vec![li("fries", 1)]);
}

#[test]
fn an_order_holds_at_most_200_lines() {
    let mut s = site();
    let o = place(&mut s, vec![li("fries", 1); 50]);
    for _ in 0..3 {
        ok(&mut s, &tablet(), add(&o.id, vec![li("fries", 1); 50]));
    }
    assert_eq!(s.orders[&o.id].lines.len(), limits::MAX_LINES_PER_ORDER);
    assert_eq!(
        rejected(&mut s, &tablet(), add(&o.id, vec![li("fries", 1)])),
        Code::TooManyLines
    );
    assert_eq!(
        rejected(&mut s, &tablet(), add(&o.id, vec![])),
        Code::NoLines
    );
}

#[test]
fn only_notes_may_span_lines() {
    let mut s = site();
    let mut bad_table = place_cmd(vec![li("burger", 1)]);
    if let CommandBody::PlaceOrder { table, .. } = &mut bad_table {
        *table = "7\n8".into();
    }
    assert_eq!(rejected(&mut s, &tablet(), bad_table), Code::BadField);
    let mut m = li("burger", 1);
    m.mods = vec!["no\nonion".into()];
    assert_eq!(
        rejected(&mut s, &tablet(), place_cmd(vec![m])),
        Code::BadField
    );
    let mut n = li("burger", 1);
    n.notes = Some("allergy:\nnuts".into());
    assert!(run(&mut s, &tablet(), &place_cmd(vec![n])).is_ok());
}
