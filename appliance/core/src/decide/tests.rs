//! The state machine's unit tests: every command's rules and refusals, over a small menu.

use super::*;
use crate::menu::MenuItem;

fn menu() -> Menu {
    let item = |id: &str, name: &str, station: &str| MenuItem::plain(id, name, 900, station);
    Menu {
        version: 1,
        items: vec![
            item("burger", "Burger", "grill"),
            item("steak", "Steak", "grill"),
            item("fries", "Fries", "fry"),
            item("salad", "Salad", "cold"),
            item("cake", "Cake", "pastry"),
        ],
    }
}

fn site() -> OrderBook {
    OrderBook {
        menu: Some(menu()),
        orders: BTreeMap::new(),
        next_ticket: 1,
        limits: SiteLimits::default(),
        open_bytes: OpenBytes::default(),
    }
}

fn actor(role: Role, stations: &[&str]) -> Actor {
    Actor {
        device: format!("{}-1", role.as_str()),
        role,
        stations: stations.iter().map(|s| s.to_string()).collect(),
    }
}

fn tablet() -> Actor {
    actor(Role::Tablet, &[])
}

fn expo() -> Actor {
    actor(Role::Expo, &[])
}

fn manager() -> Actor {
    actor(Role::Manager, &[])
}

fn station(stations: &[&str]) -> Actor {
    actor(Role::Station, stations)
}

fn li(item: &str, qty: u32) -> LineInput {
    LineInput {
        item: item.into(),
        qty,
        mods: vec![],
        notes: None,
        course: None,
        allergy: None,
        seat: None,
    }
}

fn course(item: &str, course: u32) -> LineInput {
    LineInput {
        course: Some(course),
        ..li(item, 1)
    }
}

fn place_cmd(lines: Vec<LineInput>) -> CommandBody {
    CommandBody::place("7", lines)
}

fn bump(order_id: &str, station: &str) -> CommandBody {
    CommandBody::Bump {
        order_id: order_id.into(),
        station: station.into(),
    }
}

fn recall(order_id: &str, station: &str) -> CommandBody {
    CommandBody::Recall {
        order_id: order_id.into(),
        station: station.into(),
    }
}

fn fire(order_id: &str, course: u32) -> CommandBody {
    CommandBody::FireCourse {
        order_id: order_id.into(),
        course,
    }
}

fn void(order_id: &str, line: u32) -> CommandBody {
    CommandBody::VoidLine {
        order_id: order_id.into(),
        line,
    }
}

fn complete(order_id: &str) -> CommandBody {
    CommandBody::Complete {
        order_id: order_id.into(),
    }
}

fn add(order_id: &str, lines: Vec<LineInput>) -> CommandBody {
    CommandBody::AddLines {
        order_id: order_id.into(),
        lines,
    }
}

/// Decides and applies `cmd` as the engine does; returns the order after it.
fn run(site: &mut OrderBook, who: &Actor, cmd: &CommandBody) -> Result<Order, Rejection> {
    let changes = decide(site, who, cmd, 1_000)?;
    assert_eq!(changes.len(), 1, "one command, one event");
    for c in &changes {
        apply(site, c);
    }
    Ok(changes[0].order.clone())
}

#[track_caller]
fn ok(site: &mut OrderBook, who: &Actor, cmd: CommandBody) -> Order {
    match run(site, who, &cmd) {
        Ok(o) => o,
        Err(r) => panic!("{cmd:?} by {:?} was rejected: {r}", who.role),
    }
}

/// The code `cmd` is rejected with; checks that nothing changed.
#[track_caller]
fn rejected(site: &mut OrderBook, who: &Actor, cmd: CommandBody) -> Code {
    let before = site.clone();
    match run(site, who, &cmd) {
        Ok(o) => panic!("{cmd:?} by {:?} was accepted: {o:?}", who.role),
        Err(r) => {
            assert_eq!(*site, before, "a rejection changes nothing");
            r.code
        }
    }
}

fn place(site: &mut OrderBook, lines: Vec<LineInput>) -> Order {
    ok(site, &tablet(), place_cmd(lines))
}

fn statuses(o: &Order) -> Vec<LineStatus> {
    o.lines.iter().map(|l| l.status).collect()
}

fn tickets(board: &crate::wire::Board) -> Vec<u64> {
    board.orders.iter().map(|o| o.ticket).collect()
}

#[test]
fn lines_are_routed_to_the_station_of_their_menu_item() {
    let mut s = site();
    let o = place(
        &mut s,
        vec![
            li("burger", 2),
            li("fries", 1),
            li("salad", 1),
            li("steak", 1),
        ],
    );
    let routed: Vec<(u32, &str, &str, &str)> = o
        .lines
        .iter()
        .map(|l| (l.n, l.item.as_str(), l.name.as_str(), l.station.as_str()))
        .collect();
    assert_eq!(
        routed,
        [
            (1, "burger", "Burger", "grill"),
            (2, "fries", "Fries", "fry"),
            (3, "salad", "Salad", "cold"),
            (4, "steak", "Steak", "grill"),
        ]
    );
    assert!(o.lines.iter().all(|l| l.status == LineStatus::Fired));
    assert!(o.lines.iter().all(|l| l.course == 1));
    assert_eq!(o.lines[0].qty, 2);
    assert_eq!(o.stations(), ["grill", "fry", "cold"]);
    assert_eq!(o.status, OrderStatus::Placed);
    assert_eq!(o.version, 1);
    assert_eq!(o.fired_course, 1);
    assert_eq!(o.table, "7");
    assert_eq!(o.placed_at, 1_000);
}

#[test]
fn tickets_increase_and_rejections_use_none() {
    let mut s = OrderBook {
        next_ticket: 0,
        ..site()
    };
    let first = place(&mut s, vec![li("burger", 1)]);
    assert_eq!((first.ticket, first.id.as_str()), (1, "o-000001"));
    assert_eq!(
        rejected(&mut s, &tablet(), place_cmd(vec![li("unicorn", 1)])),
        Code::UnknownItem
    );
    let second = place(&mut s, vec![li("fries", 1)]);
    let third = place(&mut s, vec![li("salad", 1)]);
    assert_eq!(
        [second.ticket, third.ticket],
        [2, 3],
        "a rejected order takes no ticket"
    );
    assert_eq!(third.id, "o-000003");
    assert_eq!(s.next_ticket, 4);
    assert_eq!(s.orders.len(), 3);
    assert_eq!(order_id(1_234_567), "o-1234567");
}

#[test]
fn roles_decide_who_may_do_what() {
    let mut s = site();
    let o = place(&mut s, vec![li("burger", 1), li("fries", 1)]);
    let id = o.id.as_str();
    let grill = station(&["grill"]);

    // A tablet takes orders; it never bumps, recalls or completes.
    for cmd in [bump(id, "grill"), recall(id, "grill"), complete(id)] {
        assert_eq!(rejected(&mut s, &tablet(), cmd), Code::Forbidden);
    }
    // A station screen bumps and recalls its own stations only.
    assert_eq!(rejected(&mut s, &grill, bump(id, "fry")), Code::Forbidden);
    for cmd in [
        place_cmd(vec![li("burger", 1)]),
        add(id, vec![li("burger", 1)]),
        void(id, 1),
        fire(id, 2),
        complete(id),
    ] {
        assert_eq!(rejected(&mut s, &grill, cmd), Code::Forbidden);
    }
    ok(&mut s, &grill, bump(id, "grill"));
    ok(&mut s, &grill, recall(id, "grill"));
    let two = station(&["grill", "fry"]);
    ok(&mut s, &two, bump(id, "fry"));
    ok(&mut s, &two, recall(id, "fry"));
    // Forbidden comes before looking at the order.
    assert_eq!(
        rejected(&mut s, &grill, bump("o-999999", "fry")),
        Code::Forbidden
    );

    // Expo bumps and recalls any station and completes; it does not take orders.
    for cmd in [
        place_cmd(vec![li("burger", 1)]),
        add(id, vec![li("burger", 1)]),
        void(id, 1),
        fire(id, 2),
    ] {
        assert_eq!(rejected(&mut s, &expo(), cmd), Code::Forbidden);
    }
    ok(&mut s, &expo(), bump(id, "grill"));
    ok(&mut s, &expo(), bump(id, "fry"));
    ok(&mut s, &expo(), recall(id, "fry"));
    ok(&mut s, &expo(), complete(id));

    // A manager may do everything.
    let m = manager();
    let o = ok(
        &mut s,
        &m,
        place_cmd(vec![li("burger", 1), course("cake", 2)]),
    );
    let id = o.id.as_str();
    ok(&mut s, &m, add(id, vec![li("fries", 1)]));
    ok(&mut s, &m, void(id, 3));
    ok(&mut s, &m, fire(id, 2));
    ok(&mut s, &m, bump(id, "grill"));
    ok(&mut s, &m, recall(id, "grill"));
    ok(&mut s, &m, complete(id));

    // Everyone may replay; it is a query, never a change.
    for who in [tablet(), grill, expo(), manager()] {
        let replay = CommandBody::Replay { after_seq: 0 };
        assert_eq!(authorise(&who, &replay), Ok(()));
        assert_eq!(rejected(&mut s, &who, replay), Code::MalformedBody);
    }
}

#[test]
fn held_courses_reach_the_board_only_when_fired() {
    let mut s = site();
    let o = place(
        &mut s,
        vec![li("salad", 1), course("burger", 2), course("cake", 3)],
    );
    let id = o.id.clone();
    assert_eq!(
        statuses(&o),
        [LineStatus::Fired, LineStatus::Held, LineStatus::Held]
    );
    let on = |s: &OrderBook, st: &str| !crate::board(st, 0, s.orders.values()).orders.is_empty();
    assert!(on(&s, "cold"));
    assert!(!on(&s, "grill"), "a held course is on no board");
    assert!(!on(&s, "pastry"));
    assert!(on(&s, "expo"), "expo sees the whole order");

    let o = ok(&mut s, &tablet(), fire(&id, 2));
    assert_eq!(o.fired_course, 2);
    assert_eq!(
        statuses(&o),
        [LineStatus::Fired, LineStatus::Fired, LineStatus::Held]
    );
    assert!(on(&s, "grill"));
    assert!(!on(&s, "pastry"));

    assert_eq!(rejected(&mut s, &tablet(), fire(&id, 2)), Code::CourseFired);
    assert_eq!(rejected(&mut s, &tablet(), fire(&id, 1)), Code::CourseFired);
    assert_eq!(rejected(&mut s, &tablet(), fire(&id, 0)), Code::BadCourse);
    assert_eq!(rejected(&mut s, &tablet(), fire(&id, 10)), Code::BadCourse);

    // Lines added to a fired course go straight to their station; later ones are held.
    let o = ok(
        &mut s,
        &tablet(),
        add(&id, vec![course("fries", 2), course("steak", 5)]),
    );
    assert_eq!(statuses(&o)[3..], [LineStatus::Fired, LineStatus::Held]);
    assert!(on(&s, "fry"));
    // Firing a later course fires every held course up to it.
    let o = ok(&mut s, &tablet(), fire(&id, 9));
    assert!(o.lines.iter().all(|l| l.status == LineStatus::Fired));
    assert!(on(&s, "pastry"));
    assert_eq!(
        rejected(&mut s, &tablet(), fire("o-000404", 2)),
        Code::UnknownOrder
    );
}

#[test]
fn bumping_makes_lines_ready_and_recall_reverses_it() {
    let mut s = site();
    let o = place(
        &mut s,
        vec![
            li("burger", 1),
            li("steak", 1),
            li("fries", 2),
            course("cake", 2),
        ],
    );
    let id = o.id.clone();

    let o = ok(&mut s, &expo(), bump(&id, "grill"));
    assert_eq!(
        statuses(&o),
        [
            LineStatus::Ready,
            LineStatus::Ready,
            LineStatus::Fired,
            LineStatus::Held
        ]
    );
    assert_eq!(o.status, OrderStatus::InProgress);
    assert!(!s.orders[&id].on_station("grill"), "bumped off the grill");
    assert!(s.orders[&id].on_station("fry"));
    assert_eq!(
        rejected(&mut s, &expo(), bump(&id, "grill")),
        Code::NothingToBump
    );
    assert_eq!(
        rejected(&mut s, &expo(), bump(&id, "cold")),
        Code::NothingToBump
    );
    assert_eq!(
        rejected(&mut s, &expo(), bump(&id, "pastry")),
        Code::NothingToBump,
        "a held line cannot be bumped"
    );
    assert_eq!(
        rejected(&mut s, &expo(), bump(&id, "moon")),
        Code::UnknownStation
    );
    assert_eq!(
        rejected(&mut s, &expo(), recall(&id, "moon")),
        Code::UnknownStation
    );

    let o = ok(&mut s, &expo(), bump(&id, "fry"));
    assert_eq!(
        o.status,
        OrderStatus::InProgress,
        "a held course is not ready"
    );
    ok(&mut s, &tablet(), fire(&id, 2));
    let o = ok(&mut s, &expo(), bump(&id, "pastry"));
    assert_eq!(o.status, OrderStatus::Ready, "every station bumped");

    let o = ok(&mut s, &expo(), recall(&id, "grill"));
    assert_eq!(statuses(&o)[..2], [LineStatus::Fired, LineStatus::Fired]);
    assert_eq!(o.status, OrderStatus::InProgress);
    assert!(s.orders[&id].on_station("grill"), "back on the grill");
    assert_eq!(
        rejected(&mut s, &expo(), recall(&id, "grill")),
        Code::NothingToRecall
    );
    ok(&mut s, &expo(), recall(&id, "fry"));
    let o = ok(&mut s, &expo(), recall(&id, "pastry"));
    assert_eq!(o.status, OrderStatus::Placed, "nothing ready again");
}

#[test]
fn voided_lines_leave_the_board_and_the_status() {
    let mut s = site();
    let o = place(&mut s, vec![li("burger", 1), li("fries", 1)]);
    let id = o.id.clone();
    let o = ok(&mut s, &tablet(), void(&id, 2));
    assert_eq!(o.lines[1].status, LineStatus::Voided);
    assert!(!s.orders[&id].on_station("fry"));
    assert_eq!(s.orders[&id].stations(), ["grill"]);
    assert_eq!(rejected(&mut s, &tablet(), void(&id, 2)), Code::LineVoided);
    assert_eq!(rejected(&mut s, &tablet(), void(&id, 3)), Code::UnknownLine);
    assert_eq!(rejected(&mut s, &tablet(), void(&id, 0)), Code::UnknownLine);
    assert_eq!(
        rejected(&mut s, &expo(), bump(&id, "fry")),
        Code::NothingToBump
    );
    let o = ok(&mut s, &expo(), bump(&id, "grill"));
    assert_eq!(o.status, OrderStatus::Ready, "voided lines do not count");
    // Line numbers are never reused.
    let o = ok(&mut s, &tablet(), add(&id, vec![li("salad", 1)]));
    assert_eq!(o.lines.iter().map(|l| l.n).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(o.status, OrderStatus::InProgress);
}

#[test]
fn a_completed_order_takes_no_changes() {
    let mut s = site();
    let o = place(&mut s, vec![li("burger", 1), course("cake", 2)]);
    let id = o.id.clone();
    let done = ok(&mut s, &expo(), complete(&id));
    assert_eq!(done.status, OrderStatus::Completed);
    assert!(!done.is_open());
    for (who, cmd) in [
        (tablet(), add(&id, vec![li("fries", 1)])),
        (tablet(), void(&id, 1)),
        (tablet(), fire(&id, 2)),
        (expo(), bump(&id, "grill")),
        (expo(), recall(&id, "grill")),
        (expo(), complete(&id)),
        (manager(), bump(&id, "grill")),
    ] {
        assert_eq!(rejected(&mut s, &who, cmd), Code::OrderClosed);
    }
    for (who, cmd) in [
        (tablet(), add("o-000404", vec![li("fries", 1)])),
        (tablet(), void("o-000404", 1)),
        (expo(), bump("o-000404", "grill")),
        (expo(), complete("o-000404")),
    ] {
        assert_eq!(rejected(&mut s, &who, cmd), Code::UnknownOrder);
    }
}

#[test]
fn every_change_adds_one_to_the_version() {
    let mut s = site();
    let o = place(&mut s, vec![li("burger", 1), course("cake", 2)]);
    assert_eq!(o.version, 1);
    let id = o.id.clone();
    let steps = [
        (tablet(), add(&id, vec![li("fries", 1)])),
        (tablet(), void(&id, 3)),
        (tablet(), fire(&id, 2)),
        (expo(), bump(&id, "grill")),
        (expo(), recall(&id, "grill")),
        (expo(), bump(&id, "grill")),
        (expo(), complete(&id)),
    ];
    for (i, (who, cmd)) in steps.into_iter().enumerate() {
        let o = ok(&mut s, &who, cmd);
        assert_eq!(o.version, i as u64 + 2);
        assert_eq!(s.orders[&id].version, o.version);
    }
    // Rejections do not count; other orders have their own versions.
    rejected(&mut s, &expo(), complete(&id));
    assert_eq!(s.orders[&id].version, 8);
    assert_eq!(place(&mut s, vec![li("salad", 1)]).version, 1);
}

#[test]
fn the_changes_name_their_event_kind() {
    let mut s = site();
    let kind = |s: &OrderBook, who: &Actor, cmd: CommandBody| match decide(s, who, &cmd, 0) {
        Ok(c) => c[0].kind,
        Err(r) => panic!("{cmd:?}: {r}"),
    };
    let c = decide(&s, &tablet(), &place_cmd(vec![li("burger", 1)]), 0);
    let c = c.expect("placed");
    assert_eq!(c[0].kind, EventKind::OrderPlaced);
    apply(&mut s, &c[0]);
    let id = c[0].order.id.clone();
    assert_eq!(
        kind(&s, &tablet(), add(&id, vec![course("cake", 2)])),
        EventKind::LinesAdded
    );
    assert_eq!(kind(&s, &tablet(), void(&id, 1)), EventKind::LineVoided);
    assert_eq!(kind(&s, &tablet(), fire(&id, 2)), EventKind::CourseFired);
    assert_eq!(
        kind(&s, &expo(), bump(&id, "grill")),
        EventKind::TicketBumped
    );
    assert_eq!(kind(&s, &expo(), complete(&id)), EventKind::OrderCompleted);
    ok(&mut s, &expo(), bump(&id, "grill"));
    assert_eq!(
        kind(&s, &expo(), recall(&id, "grill")),
        EventKind::TicketRecalled
    );
}

#[test]
fn boards_show_the_right_open_orders_by_ticket() {
    let mut s = site();
    let grill_only = place(&mut s, vec![li("burger", 1)]).id;
    let both = place(&mut s, vec![li("fries", 1), li("steak", 1)]).id;
    let held = place(&mut s, vec![course("steak", 2)]).id;
    let fry_only = place(&mut s, vec![li("fries", 1)]).id;
    let done = place(&mut s, vec![li("burger", 1)]).id;
    ok(&mut s, &expo(), complete(&done));
    let bumped = place(&mut s, vec![li("burger", 1), li("fries", 1)]).id;
    ok(&mut s, &expo(), bump(&bumped, "grill"));

    // Fed in reverse: boards sort by ticket themselves.
    let board = |st: &str| crate::board(st, 42, s.orders.values().rev());
    let grill = board("grill");
    assert_eq!(grill.station, "grill");
    assert_eq!(grill.seq, 42);
    assert_eq!(tickets(&grill), [1, 2], "{grill:?}");
    assert_eq!(tickets(&board("fry")), [2, 4, 6]);
    assert_eq!(tickets(&board("pastry")), [0u64; 0]);
    let expo_board = board(crate::wire::EXPO);
    assert_eq!(expo_board.station, "expo");
    assert_eq!(tickets(&expo_board), [1, 2, 3, 4, 6], "every open order");
    let ids: Vec<&str> = expo_board.orders.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, [&grill_only, &both, &held, &fry_only, &bumped]);
    for b in [grill, board("fry"), expo_board] {
        assert!(b.orders.iter().all(|o| o.is_open()));
    }
}

/// What a new order's input may be: its texts, sizes and counts.
mod bounds;
/// Orders from outside: an integration's channel, reference and its own orders.
mod integration;
/// `bump_line` and `set_rush`.
mod kitchen;
