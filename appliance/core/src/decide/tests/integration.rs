//! An integration (head office's downlink, the till's local API): it says where its orders came
//! from, changes only its own, and nothing but an integration may say where an order came from.

use super::*;

fn integration(device: &str) -> Actor {
    Actor {
        device: device.into(),
        role: Role::Integration,
        stations: vec![],
    }
}

fn outside(channel: Option<&str>, reference: Option<&str>) -> CommandBody {
    CommandBody::PlaceOrder {
        table: "D-17".into(),
        lines: vec![li("burger", 1), li("fries", 2)],
        service: Some(Service::Delivery),
        server: None,
        channel: channel.map(Into::into),
        reference: reference.map(Into::into),
    }
}

#[test]
fn an_integration_order_carries_its_channel_reference_and_device() {
    let mut s = site();
    let o = ok(
        &mut s,
        &integration("head-office"),
        outside(Some("Deliveroo"), Some("DR-4411")),
    );
    assert_eq!(
        o.origin,
        Some(Origin {
            channel: "Deliveroo".into(),
            reference: Some("DR-4411".into()),
            device: "head-office".into(),
        })
    );
    assert_eq!(o.service, Some(Service::Delivery));
    // It is on the kitchen's boards like any other.
    assert!(o.on_station("grill") && o.on_station("fry"));
}

#[test]
fn an_integration_must_name_its_channel_within_bounds() {
    let mut s = site();
    let pos = integration("till");
    assert_eq!(
        rejected(&mut s, &pos, outside(None, Some("1"))),
        Code::MalformedBody
    );
    let long = "x".repeat(limits::MAX_CHANNEL_CHARS + 1);
    assert_eq!(
        rejected(&mut s, &pos, outside(Some(&long), None)),
        Code::TooLong
    );
    let long = "x".repeat(limits::MAX_REFERENCE_CHARS + 1);
    assert_eq!(
        rejected(&mut s, &pos, outside(Some("till"), Some(&long))),
        Code::TooLong
    );
    assert_eq!(
        rejected(&mut s, &pos, outside(Some(""), None)),
        Code::BadField
    );
}

#[test]
fn only_an_integration_says_where_an_order_came_from() {
    let mut s = site();
    for who in [tablet(), manager()] {
        assert_eq!(
            rejected(&mut s, &who, outside(Some("online"), None)),
            Code::Forbidden
        );
        assert_eq!(
            rejected(&mut s, &who, outside(None, Some("A1"))),
            Code::Forbidden
        );
    }
    // A tablet's order has no origin.
    let o = place(&mut s, vec![li("burger", 1)]);
    assert_eq!(o.origin, None);
}

#[test]
fn an_integration_amends_fires_and_voids_only_its_own_orders() {
    let mut s = site();
    let till = integration("till");
    let other = integration("head-office");
    let mine = ok(&mut s, &till, outside(Some("till"), Some("T-1")));
    let tablets = place(&mut s, vec![li("burger", 1)]);
    let hq = ok(&mut s, &other, outside(Some("online"), None));

    let o = ok(&mut s, &till, add(&mine.id, vec![li("salad", 1)]));
    assert_eq!(o.lines.len(), 3);
    let o = ok(&mut s, &till, void(&mine.id, 3));
    assert_eq!(o.lines[2].status, LineStatus::Voided);
    for id in [&tablets.id, &hq.id] {
        assert_eq!(
            rejected(&mut s, &till, add(id, vec![li("salad", 1)])),
            Code::Forbidden
        );
        assert_eq!(rejected(&mut s, &till, void(id, 1)), Code::Forbidden);
        assert_eq!(rejected(&mut s, &till, fire(id, 2)), Code::Forbidden);
    }
    // Unknown orders say so.
    assert_eq!(
        rejected(&mut s, &till, void("o-999999", 1)),
        Code::UnknownOrder
    );
}

#[test]
fn an_integration_does_not_run_the_kitchen_or_the_menu() {
    let mut s = site();
    let till = integration("till");
    let o = ok(&mut s, &till, outside(Some("till"), None));
    for cmd in [
        bump(&o.id, "grill"),
        recall(&o.id, "grill"),
        complete(&o.id),
        CommandBody::SetRush {
            order_id: o.id.clone(),
            rush: true,
        },
        CommandBody::SetStock {
            item: "burger".into(),
            out: true,
        },
    ] {
        assert!(
            authorise(&till, &cmd).is_err(),
            "an integration may not send {cmd:?}"
        );
    }
    // The kitchen works its ticket as any other.
    let o = ok(&mut s, &station(&["grill"]), bump(&o.id, "grill"));
    assert!(o.lines.iter().any(|l| l.status == LineStatus::Ready));
}
