//! The store's own tests: a batch committed and loaded, idempotency, a failed batch, devices.

use super::*;
use docket_core::wire::EventKind;
use docket_core::OrderStatus;

fn order(id: &str, ticket: u64, status: OrderStatus) -> Order {
    Order {
        id: id.into(),
        ticket,
        table: "1".into(),
        status,
        version: 1,
        lines: vec![],
        fired_course: 1,
        placed_at: 0,
        rush: false,
        server: None,
        service: None,
        origin: None,
    }
}

fn event(seq: u64, o: &Order) -> (Event, Vec<u8>) {
    let e = Event {
        seq,
        kind: EventKind::OrderPlaced,
        order_id: o.id.clone(),
        version: o.version,
        command: format!("c{seq}"),
        device: "t".into(),
        at: 0,
        order: o.clone(),
    };
    let p = wire::encode(&e).unwrap();
    (e, p)
}

#[test]
fn commit_load_and_idempotency() {
    let dir = tempdir();
    let path = dir.join("db");
    let mut s = Store::open(&path, "site-a").unwrap();
    let o1 = order("o-000001", 1, OrderStatus::Placed);
    let o2 = order("o-000002", 2, OrderStatus::Completed);
    let mut b = Batch::default();
    b.events.push(event(1, &o1));
    b.events.push(event(2, &o2));
    b.orders.insert(o1.id.clone(), o1.clone());
    b.orders.insert(o2.id.clone(), o2.clone());
    b.replies.push(Recorded {
        device: "t".into(),
        id: "c1".into(),
        ok: true,
        seq: Some(1),
        reply: vec![1, 2, 3],
    });
    s.commit(&b).unwrap();
    drop(s);

    let s = Store::open(&path, "site-a").unwrap();
    let l = s.load().unwrap();
    assert_eq!(l.last_seq, 2);
    assert_eq!(l.next_ticket, 3);
    assert_eq!(l.open_orders.keys().collect::<Vec<_>>(), vec!["o-000001"]);
    assert_eq!(s.recorded_reply("t", "c1").unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(s.recorded_reply("other", "c1").unwrap(), None);
    assert_eq!(
        s.order("o-000002").unwrap().unwrap().status,
        OrderStatus::Completed
    );
    assert_eq!(s.events_after(1, 10).unwrap().len(), 1);
    assert_eq!(s.integrity_check().unwrap(), "ok");
    assert!(matches!(
        Store::open(&path, "site-b"),
        Err(StoreError::WrongSite { .. })
    ));
}

#[test]
fn a_failed_batch_writes_nothing() {
    let dir = tempdir();
    let mut s = Store::open(&dir.join("db"), "s").unwrap();
    let o = order("o-000001", 1, OrderStatus::Placed);
    let mut b = Batch::default();
    b.events.push(event(1, &o));
    b.events.push(event(1, &o)); // duplicate seq: the whole batch must fail
    b.orders.insert(o.id.clone(), o);
    assert!(s.commit(&b).is_err());
    let l = s.load().unwrap();
    assert_eq!(l.last_seq, 0);
    assert!(l.open_orders.is_empty());
}

#[test]
fn devices_add_revoke_list() {
    let dir = tempdir();
    let _s = Store::open(&dir.join("db"), "s").unwrap();
    let c = connect(&dir.join("db")).unwrap();
    let d = DeviceRow {
        id: "kds-1".into(),
        role: Role::Station,
        stations: vec!["grill".into(), "fry".into()],
        secret: [7; 32],
        created_at: 5,
        revoked_at: None,
    };
    devices::add(&c, &d).unwrap();
    assert!(matches!(
        devices::add(&c, &d),
        Err(StoreError::DeviceExists(_))
    ));
    assert_eq!(devices::all(&c).unwrap(), vec![d.clone()]);
    assert_eq!(devices::get(&c, "kds-1").unwrap(), Some(d.clone()));
    assert_eq!(devices::get(&c, "nope").unwrap(), None);
    devices::revoke(&c, "kds-1", 9).unwrap();
    assert_eq!(devices::all(&c).unwrap()[0].revoked_at, Some(9));
    assert!(matches!(
        devices::revoke(&c, "nope", 9),
        Err(StoreError::NoDevice(_))
    ));
}

pub(super) fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "docket-store-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
