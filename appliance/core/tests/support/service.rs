//! What the schema tests encode: a small menu, one body of every command, and a realistic
//! service (two orders through every kind of change, the menu commands, some rejections) run
//! through the ledger as the engine runs it.

use docket_core::ledger::Ledger;
use docket_core::wire::{CommandBody, LineInput, Reply};
use docket_core::{Actor, Menu, MenuItem, ModGroup, OrderBook, Role};

pub fn menu() -> Menu {
    let item = MenuItem::plain;
    let mut burger = item("burger-classic", "Classic burger", 1250, "grill");
    burger.category = Some("mains".into());
    burger.prep_min = Some(10);
    burger.mods = vec!["no-onion".into(), "extra-cheese".into()];
    burger.allergens = vec!["gluten".into(), "milk".into()];
    burger.groups = vec![ModGroup {
        name: "Doneness".into(),
        min: 0,
        max: 1,
        mods: vec!["medium-rare".into(), "medium".into(), "well-done".into()],
    }];
    Menu {
        version: 3,
        items: vec![
            burger,
            item("fries", "Fries", 400, "fry"),
            item("cheesecake", "Cheesecake", 650, "pastry"),
        ],
    }
}

pub fn actor(device: &str, role: Role, stations: &[&str]) -> Actor {
    Actor {
        device: device.into(),
        role,
        stations: stations.iter().map(|s| s.to_string()).collect(),
    }
}

pub fn line(item: &str, qty: u32, course: Option<u32>) -> LineInput {
    LineInput {
        item: item.into(),
        qty,
        mods: vec![],
        notes: None,
        course,
        allergy: None,
        seat: None,
    }
}

/// Every command variant, as a tablet, a screen or expo would send it.
pub fn bodies() -> Vec<CommandBody> {
    let oid = || "o-000001".to_string();
    vec![
        CommandBody::place(
            "12",
            vec![
                LineInput {
                    item: "burger-classic".into(),
                    qty: 2,
                    mods: vec!["no-onion".into(), "medium".into()],
                    notes: Some("birthday: candle please".into()),
                    course: None,
                    allergy: Some("sesame".into()),
                    seat: None,
                },
                line("fries", 1, None),
                line("cheesecake", 2, Some(2)),
            ],
        ),
        CommandBody::AddLines {
            order_id: oid(),
            lines: vec![line("fries", 1, Some(1))],
        },
        CommandBody::VoidLine {
            order_id: oid(),
            line: 4,
        },
        CommandBody::FireCourse {
            order_id: oid(),
            course: 2,
        },
        CommandBody::Bump {
            order_id: oid(),
            station: "grill".into(),
        },
        CommandBody::Recall {
            order_id: oid(),
            station: "grill".into(),
        },
        CommandBody::Complete { order_id: oid() },
        CommandBody::Replay { after_seq: 0 },
        CommandBody::BumpLine {
            order_id: oid(),
            line: 2,
        },
        CommandBody::SetRush {
            order_id: oid(),
            rush: true,
        },
        CommandBody::SetStock {
            item: "fries".into(),
            out: true,
        },
        CommandBody::SetItem {
            item: Box::new(menu().items[0].clone()),
        },
        CommandBody::RemoveItem {
            item: "cheesecake".into(),
        },
        CommandBody::Reprint {
            station: "grill".into(),
            order_id: Some(oid()),
            last: None,
        },
        CommandBody::Reprint {
            station: "grill".into(),
            order_id: None,
            last: Some(5),
        },
    ]
}

/// A realistic service: two orders through every kind of change, plus some rejections.
pub struct Service {
    pub ledger: Ledger,
    pub replies: Vec<Reply>,
}

pub fn service() -> Service {
    let mut ledger = Ledger::new(OrderBook {
        menu: Some(menu()),
        orders: Default::default(),
        next_ticket: 1,
        limits: Default::default(),
        open_bytes: Default::default(),
    });
    let tablet = actor("tablet-1", Role::Tablet, &[]);
    let grill = actor("kds-grill", Role::Station, &["grill"]);
    let expo = actor("expo-1", Role::Expo, &[]);
    let mut replies = Vec::new();
    let mut now = 1_735_732_800_000;
    let mut send = |id: &str, who: &Actor, body: CommandBody| {
        now += 1_234;
        replies.push(ledger.handle(id, who, &body, now));
    };
    let o1 = || "o-000001".to_string();
    let o2 = || "o-000002".to_string();
    let mut steps = bodies().into_iter();
    let place = steps.next().expect("place_order first");
    send("c01", &tablet, place);
    send(
        "c02",
        &tablet,
        CommandBody::AddLines {
            order_id: o1(),
            lines: vec![line("fries", 1, None)],
        },
    );
    send(
        "c03",
        &tablet,
        CommandBody::VoidLine {
            order_id: o1(),
            line: 4,
        },
    );
    send(
        "c04",
        &grill,
        CommandBody::Bump {
            order_id: o1(),
            station: "grill".into(),
        },
    );
    send(
        "c05",
        &grill,
        CommandBody::Recall {
            order_id: o1(),
            station: "grill".into(),
        },
    );
    send(
        "c06",
        &tablet,
        CommandBody::PlaceOrder {
            table: "Terrace 3".into(),
            lines: vec![
                line("burger-classic", 1, None),
                LineInput {
                    seat: Some(2),
                    ..line("fries", 3, None)
                },
            ],
            server: Some("Ana".into()),
            service: Some(docket_core::order::Service::Takeaway),
            channel: None,
            reference: None,
        },
    );
    send(
        "c07",
        &tablet,
        CommandBody::FireCourse {
            order_id: o1(),
            course: 2,
        },
    );
    for station in ["grill", "fry", "pastry"] {
        send(
            &format!("c08-{station}"),
            &expo,
            CommandBody::Bump {
                order_id: o1(),
                station: station.into(),
            },
        );
    }
    send("c09", &expo, CommandBody::Complete { order_id: o1() });
    send(
        "c10",
        &tablet,
        CommandBody::SetRush {
            order_id: o2(),
            rush: true,
        },
    );
    send(
        "c10-line",
        &grill,
        CommandBody::BumpLine {
            order_id: o2(),
            line: 1,
        },
    );
    // An order from outside: a delivery platform's, through head office.
    let hq = actor("head-office", Role::Integration, &[]);
    send(
        "c10-hq",
        &hq,
        CommandBody::PlaceOrder {
            table: "Deliveroo".into(),
            lines: vec![line("burger-classic", 1, None)],
            server: None,
            service: Some(docket_core::order::Service::Delivery),
            channel: Some("Deliveroo".into()),
            reference: Some("DR-4411".into()),
        },
    );
    // Rejections: a role that may not, a closed order, an unknown item.
    send(
        "c11",
        &tablet,
        CommandBody::Bump {
            order_id: o2(),
            station: "fry".into(),
        },
    );
    send("c12", &expo, CommandBody::Complete { order_id: o1() });
    send(
        "c13",
        &tablet,
        CommandBody::place("4", vec![line("unicorn", 1, None)]),
    );
    // The menu: fries 86'd by the expo, then refused; a manager adds an item.
    let manager = actor("admin-1", Role::Manager, &[]);
    let stock = CommandBody::SetStock {
        item: "fries".into(),
        out: true,
    };
    send("c14", &expo, stock);
    send(
        "c15",
        &tablet,
        CommandBody::AddLines {
            order_id: o2(),
            lines: vec![line("fries", 1, None)],
        },
    );
    let mut shake = MenuItem::plain("shake", "Vanilla shake", 550, "bar");
    shake.category = Some("drinks".into());
    send(
        "c16",
        &manager,
        CommandBody::SetItem {
            item: Box::new(shake),
        },
    );
    Service { ledger, replies }
}
