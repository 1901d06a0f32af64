//! What a webhook sends, as plain functions: which events are an integration's, the JSON body,
//! the `Docket-Signature` header and the wait before the next attempt.
//!
//! No I/O, no clock of its own: the caller passes times and randomness.

use std::time::Duration;

use docket_core::wire::Event;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// A webhook's events: those of orders its integration device placed.
pub fn is_for(event: &Event, device: &str) -> bool {
    event
        .order
        .origin
        .as_ref()
        .is_some_and(|o| o.device == device)
}

/// The stable id of an event's delivery: the same for every attempt and after a restart, so a
/// receiver drops duplicates by it.
pub fn event_id(site: &str, seq: u64) -> String {
    format!("{site}-{seq}")
}

/// The JSON body for `event`.
pub fn body(site: &str, event: &Event) -> Vec<u8> {
    let o = &event.order;
    let v = json!({
        "id": event_id(site, event.seq),
        "type": event.kind.as_str(),
        "seq": event.seq,
        "at": event.at,
        "order_id": event.order_id,
        "ticket": o.ticket,
        "status": o.status.as_str(),
        "version": event.version,
        "order": summary(o),
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

fn summary(o: &docket_core::order::Order) -> Value {
    json!({
        "id": o.id,
        "ticket": o.ticket,
        "table": o.table,
        "status": o.status.as_str(),
        "version": o.version,
        "placed_at": o.placed_at,
        "rush": o.rush,
        "service": o.service,
        "origin": o.origin,
        "lines": o.lines,
    })
}

/// The body of a test send (`type` "test"), its id "<site>-test-<at>".
pub fn test_body(site: &str, device: &str, at: u64) -> (String, Vec<u8>) {
    let id = format!("{site}-test-{at}");
    let v = json!({"id": id, "type": "test", "at": at, "device": device});
    (id, serde_json::to_vec(&v).unwrap_or_default())
}

/// `Docket-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &[u8; 32], unix_secs: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(unix_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={unix_secs},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The wait after the `failures`-th failed attempt in a row (1, 2, …): 1 s doubled each time,
/// capped at `max`, then jittered down by up to a quarter (`jitter` in 0.0..1.0) so that many
/// boxes do not hit a receiver that came back at the same instant.
pub fn backoff(failures: u32, max: Duration, jitter: f64) -> Duration {
    let exp = Duration::from_secs(1).saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let full = exp.min(max);
    full.mul_f64(1.0 - 0.25 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use docket_core::order::{Order, OrderStatus, Origin};
    use docket_core::wire::EventKind;

    fn event(seq: u64, origin: Option<&str>) -> Event {
        Event {
            seq,
            kind: EventKind::TicketBumped,
            order_id: "o-000001".into(),
            version: 2,
            command: "c".into(),
            device: "kds-1".into(),
            at: 1_700_000_000_000,
            order: Order {
                id: "o-000001".into(),
                ticket: 7,
                table: "T1".into(),
                status: OrderStatus::Ready,
                version: 2,
                lines: vec![],
                fired_course: 1,
                placed_at: 1,
                rush: false,
                service: None,
                server: None,
                origin: origin.map(|d| Origin {
                    channel: "online".into(),
                    reference: Some("A-1".into()),
                    device: d.into(),
                }),
            },
        }
    }

    #[test]
    fn only_the_integrations_own_orders_are_sent() {
        assert!(is_for(&event(1, Some("pos")), "pos"));
        assert!(!is_for(&event(1, Some("other")), "pos"));
        assert!(!is_for(&event(1, None), "pos"));
    }

    #[test]
    fn the_body_names_the_event_and_the_order() {
        let b: Value = serde_json::from_slice(&body("site1", &event(42, Some("pos")))).unwrap();
        assert_eq!(b["id"], "site1-42");
        assert_eq!(b["type"], "ticket_bumped");
        assert_eq!(b["seq"], 42);
        assert_eq!(b["order_id"], "o-000001");
        assert_eq!(b["ticket"], 7);
        assert_eq!(b["status"], "ready");
        assert_eq!(b["version"], 2);
        assert_eq!(b["order"]["origin"]["reference"], "A-1");
    }

    #[test]
    fn the_signature_is_hmac_of_time_dot_body() {
        // Computed independently: printf '1700000000.{}' | openssl dgst -sha256 -mac HMAC
        //   -macopt hexkey:0101…01 (32 bytes of 0x01).
        let s = signature(&[1; 32], 1_700_000_000, b"{}");
        assert_eq!(
            s,
            "t=1700000000,v1=a690115105a3eee9b47d6123cad394cb56f2fc0d77094ae48169ee63dfb120e2"
        );
        assert_ne!(s, signature(&[1; 32], 1_700_000_001, b"{}"));
        assert_ne!(s, signature(&[2; 32], 1_700_000_000, b"{}"));
        assert_ne!(s, signature(&[1; 32], 1_700_000_000, b"{ }"));
    }

    #[test]
    fn backoff_doubles_from_one_second_up_to_the_cap_with_jitter_below() {
        let max = Duration::from_secs(60);
        let secs = |n| backoff(n, max, 0.0).as_secs();
        assert_eq!(
            (1..=8).map(secs).collect::<Vec<_>>(),
            [1, 2, 4, 8, 16, 32, 60, 60]
        );
        assert_eq!(backoff(1000, max, 0.0), max);
        assert_eq!(backoff(3, max, 1.0), Duration::from_secs(3));
        assert_eq!(
            backoff(3, Duration::from_secs(2), 0.0),
            Duration::from_secs(2)
        );
    }
}
