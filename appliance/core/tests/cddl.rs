//! The CDDL schema in docs/protocol.md against the messages this crate really produces.
//!
//! The schema is read from the document itself, so the public contract and the code cannot drift
//! apart: every message type is encoded with the crate's own types (orders made by the ledger, as
//! the engine makes them) and validated against its named rule, the byte-exact vectors of
//! `wire-vectors.json` are validated too, and a few wrong messages must be rejected.

use std::collections::BTreeSet;

use docket_core::decide::limits;
use docket_core::wire::{
    self, ApplianceStatus, CommandBody, Envelope, Event, Reply, MAX_ENVELOPE_BYTES,
};
use docket_core::{Code, Rejection};
use serde_json::{json, Value};

const PROTOCOL: &str = include_str!("../../../docs/protocol.md");
const SECRET: docket_core::keys::MacKey = docket_core::keys::MacKey([7; 32]);

/// The one ```cddl block of the document.
fn schema() -> &'static str {
    let mut blocks = PROTOCOL.split("```cddl\n").skip(1);
    let block = blocks.next().expect("docs/protocol.md has a ```cddl block");
    assert!(
        blocks.next().is_none(),
        "docs/protocol.md has one ```cddl block"
    );
    let end = block.find("\n```").expect("the ```cddl block is closed");
    &block[..=end]
}

/// Validates `bytes` against the rule `rule` of the schema (the validator checks the first rule,
/// so a root naming `rule` goes first).
fn check(rule: &str, bytes: &[u8]) -> Result<(), String> {
    // The validator's CBOR reader allocates whatever length a header claims (and panics on
    // `5bffffffffffffffff`): only well-formed CBOR goes to it.
    wire::decode::<serde::de::IgnoredAny>(bytes).map_err(|e| format!("not CBOR: {e}"))?;
    let doc = format!("docket-test-root = {rule}\n{}", schema());
    cddl::validate_cbor_from_slice(&doc, bytes, None).map_err(|e| e.to_string())
}

#[track_caller]
fn valid(rule: &str, bytes: &[u8]) {
    if let Err(e) = check(rule, bytes) {
        panic!(
            "a real message does not match `{rule}` of docs/protocol.md: {e}\nmessage: {}",
            diag(bytes)
        );
    }
}

/// A whole message: matches `rule` and the schema's first rule, `docket-message`.
#[track_caller]
fn message(rule: &str, bytes: &[u8]) {
    valid(rule, bytes);
    if let Err(e) = check("docket-message", bytes) {
        panic!("not a docket-message: {e}\nmessage: {}", diag(bytes));
    }
}

#[track_caller]
fn invalid(rule: &str, bytes: &[u8]) {
    assert!(
        check(rule, bytes).is_err(),
        "`{rule}` accepts a wrong message: {}",
        diag(bytes)
    );
}

/// A readable rendering of a CBOR message for failure output.
fn diag(bytes: &[u8]) -> String {
    match wire::decode::<Value>(bytes) {
        Ok(v) => v.to_string(),
        Err(_) => hex::encode(bytes),
    }
}

fn enc<T: serde::Serialize>(v: &T) -> Vec<u8> {
    wire::encode(v).expect("encodes")
}

#[path = "support/service.rs"]
mod service;
use service::*;

#[test]
fn schema_parses_and_names_every_message() {
    cddl::cddl_from_str(schema(), true).expect("the CDDL of docs/protocol.md parses");
    for rule in [
        "docket-message",
        "envelope",
        "command-body",
        "place-order",
        "add-lines",
        "void-line",
        "fire-course",
        "bump",
        "recall",
        "complete",
        "replay",
        "set-stock",
        "set-item",
        "remove-item",
        "line-input",
        "reply",
        "reply-accepted",
        "reply-menu",
        "reply-rejected",
        "reply-replay",
        "reply-error",
        "error-code",
        "event",
        "event-kind",
        "order",
        "order-status",
        "line",
        "line-status",
        "board",
        "menu",
        "menu-item",
        "appliance-status",
        "presence",
    ] {
        assert!(
            schema()
                .lines()
                .any(|l| l.starts_with(&format!("{rule} = "))),
            "the schema has no rule `{rule}`"
        );
    }
}

#[test]
fn every_command_body_and_its_envelope_match() {
    let bodies = bodies();
    let kinds: BTreeSet<&str> = bodies.iter().map(|b| b.kind()).collect();
    assert_eq!(kinds.len(), 14, "one body per command type");
    for (i, body) in bodies.iter().enumerate() {
        let bytes = enc(body);
        valid(&body.kind().replace('_', "-"), &bytes);
        message("command-body", &bytes);
        let env = Envelope::sign(
            &format!("01JDQ7ZK4P8X3V2M6N9R5T0W{i:02}"),
            "tablet-1",
            &SECRET,
            body,
        )
        .expect("signs");
        assert_eq!(env.body, bytes, "the envelope carries the body as encoded");
        message("envelope", &enc(&env));
    }
}

#[test]
fn replies_events_and_orders_of_a_real_service_match() {
    let Service { ledger, replies } = service();
    let mut accepted = 0;
    let mut menus = 0;
    let mut rejected = BTreeSet::new();
    for r in &replies {
        let bytes = enc(r);
        message("reply", &bytes);
        if r.ok && r.menu_version.is_some() {
            menus += 1;
            valid("reply-menu", &bytes);
            invalid("reply-accepted", &bytes);
        } else if r.ok {
            accepted += 1;
            valid("reply-accepted", &bytes);
            invalid("reply-rejected", &bytes);
        } else {
            let code = r
                .error
                .as_ref()
                .expect("rejections carry an error")
                .code
                .as_str()
                .to_owned();
            rejected.insert(code);
            valid("reply-rejected", &bytes);
            invalid("reply-accepted", &bytes);
        }
    }
    assert_eq!((accepted, menus), (14, 2), "replies: {replies:#?}");
    assert_eq!(
        rejected,
        ["forbidden", "order_closed", "sold_out", "unknown_item"]
            .map(String::from)
            .into()
    );

    let mut kinds = BTreeSet::new();
    let mut order_status = BTreeSet::new();
    let mut line_status = BTreeSet::new();
    for e in &ledger.log {
        message("event", &enc(e));
        valid("order", &enc(&e.order));
        for l in &e.order.lines {
            valid("line", &enc(l));
            line_status.insert(format!("{:?}", l.status));
        }
        kinds.insert(e.kind.as_str());
        order_status.insert(e.order.status.as_str());
    }
    assert_eq!(kinds.len(), 9, "every event kind was produced: {kinds:?}");
    assert_eq!(
        order_status.len(),
        4,
        "every order status: {order_status:?}"
    );
    assert_eq!(line_status.len(), 4, "every line status: {line_status:?}");

    // A replay answer, paged as the engine pages it, and an empty one.
    let page = |events: &[Event], more: bool, after: u64| Reply {
        command: "01JDQ8R2YB0000000000000000".into(),
        ok: true,
        order_id: None,
        ticket: None,
        seq: Some(events.last().map_or(after, |e| e.seq)),
        error: None,
        events: Some(events.to_vec()),
        more: Some(more),
        menu_version: None,
    };
    for r in [
        page(&ledger.log[..5], true, 0),
        page(&ledger.log[5..], false, 5),
        page(&[], false, ledger.last_seq),
    ] {
        let bytes = enc(&r);
        message("reply", &bytes);
        valid("reply-replay", &bytes);
        invalid("reply-accepted", &bytes);
    }
}

#[test]
fn boards_menu_status_and_presence_match() {
    let Service { ledger, .. } = service();
    let menu = menu();
    let mut boards = vec![wire::EXPO.to_string()];
    boards.extend(menu.stations());
    let mut non_empty = 0;
    for station in &boards {
        let board = docket_core::board(station, ledger.last_seq, ledger.site.orders.values());
        non_empty += usize::from(!board.orders.is_empty());
        message("board", &enc(&board));
    }
    assert!(non_empty >= 2, "boards with orders were checked");
    let empty = docket_core::board("grill", 0, std::iter::empty());
    message("board", &enc(&empty));

    message("menu", &enc(&menu));
    // The menu after the service's menu commands: an item 86'd, one added.
    let edited = ledger.site.menu.as_ref().expect("a menu");
    assert!(edited.item("fries").is_some_and(|i| i.out) && edited.version == 5);
    message("menu", &enc(edited));
    for item in &menu.items {
        valid("menu-item", &enc(item));
    }

    let status = ApplianceStatus {
        version: "0.1.0".into(),
        site_id: "demo".into(),
        seq: ledger.last_seq,
        uplink: "none".into(),
        sync_lag: 0,
        started_at: 1_735_732_000_000,
        now_ms: 1_735_732_060_000,
        storage_full: false,
        printing: None,
    };
    message("appliance-status", &enc(&status));
    let printing = docket_core::health::StationPrinting {
        station: "grill".into(),
        address: "192.168.1.50:9100".into(),
        mode: "fallback".into(),
        printing: true,
        why: "no screen live: printing".into(),
        screens_live: false,
        printer: "paper out".into(),
        can_print: false,
        waiting: 3,
        printed: 12,
        alarm: true,
        error: Some("paper out".into()),
    };
    let with_printers = ApplianceStatus {
        printing: Some(vec![printing]),
        ..status
    };
    message("appliance-status", &enc(&with_printers));

    message("presence", &enc(&"online"));
    message("presence", &enc(&"offline"));
    invalid("presence", &enc(&"away"));
}

#[test]
fn every_error_code_is_in_the_schema_and_the_table() {
    for code in Code::ALL {
        let reply = Reply::rejected("c1", &Rejection::new(code, "why"));
        let bytes = enc(&reply);
        if code == Code::Malformed {
            // Never sent: an undecodable envelope gets no reply.
            invalid("reply-rejected", &bytes);
        } else {
            valid("reply-rejected", &bytes);
        }
        let row = format!("| `{}` |", code.as_str());
        assert!(
            PROTOCOL.contains(&row),
            "docs/protocol.md has no error-table row for {}",
            code.as_str()
        );
    }
}

#[test]
fn the_limits_table_matches_the_code() {
    for (name, value) in [
        ("MAX_ENVELOPE_BYTES", MAX_ENVELOPE_BYTES),
        ("MAX_ID_CHARS", limits::MAX_ID_CHARS),
        ("MAX_LINES_PER_COMMAND", limits::MAX_LINES_PER_COMMAND),
        ("MAX_LINES_PER_ORDER", limits::MAX_LINES_PER_ORDER),
        ("MAX_QTY", limits::MAX_QTY as usize),
        ("MAX_MODS", limits::MAX_MODS),
        ("MAX_MOD_CHARS", limits::MAX_MOD_CHARS),
        ("MAX_NOTES_CHARS", limits::MAX_NOTES_CHARS),
        ("MAX_ALLERGY_CHARS", limits::MAX_ALLERGY_CHARS),
        ("MAX_GROUPS", docket_core::menu::MAX_GROUPS),
        (
            "MAX_GROUP_NAME_CHARS",
            docket_core::menu::MAX_GROUP_NAME_CHARS,
        ),
        ("MAX_TABLE_CHARS", limits::MAX_TABLE_CHARS),
        ("MAX_SERVER_CHARS", limits::MAX_SERVER_CHARS),
        ("MAX_SEAT", limits::MAX_SEAT as usize),
        ("MAX_PREP_MIN", docket_core::menu::MAX_PREP_MIN as usize),
        ("MAX_COURSE", limits::MAX_COURSE as usize),
    ] {
        let row = format!("| `{name}` | {value} |");
        assert!(
            PROTOCOL.contains(&row),
            "docs/protocol.md's limits table lacks `{row}`"
        );
    }
}

fn vectors() -> Value {
    serde_json::from_str(include_str!("wire-vectors.json")).expect("vectors parse")
}

fn hex_at(v: &Value, path: &[&str]) -> Vec<u8> {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    hex::decode(cur.as_str().expect("a hex string")).expect("valid hex")
}

#[test]
fn the_byte_exact_vectors_match() {
    let v = vectors();
    message(
        "envelope",
        &hex_at(&v, &["command_place_order", "envelope_cbor_hex"]),
    );
    let body = hex_at(&v, &["command_place_order", "body_cbor_hex"]);
    valid("place-order", &body);
    message("command-body", &body);
    // Well-formed; only its MAC is wrong, which the schema cannot know.
    message(
        "envelope",
        &hex_at(&v, &["command_with_wrong_mac", "envelope_cbor_hex"]),
    );
    let ok = hex_at(&v, &["reply_ok_example", "cbor_hex"]);
    message("reply", &ok);
    valid("reply-accepted", &ok);
    let err = hex_at(&v, &["reply_error_example", "cbor_hex"]);
    message("reply", &err);
    valid("reply-rejected", &err);
    for g in v["garbage_payloads_hex"].as_array().expect("a list") {
        let bytes = hex::decode(g.as_str().expect("hex")).expect("valid hex");
        invalid("docket-message", &bytes);
    }
}

#[test]
fn wrong_messages_are_rejected() {
    // A reply without `ok`.
    invalid(
        "reply",
        &enc(&json!({"command": "c1", "order_id": "o-000001", "ticket": 1, "seq": 1})),
    );
    // A line whose qty is text.
    let text_qty = json!({"type": "place_order", "table": "12",
        "lines": [{"item": "fries", "qty": "2"}]});
    invalid("place-order", &enc(&text_qty));
    invalid("command-body", &enc(&text_qty));
    invalid("line-input", &enc(&json!({"item": "fries", "qty": "2"})));
    // A qty beyond 32 bits, a negative course.
    invalid(
        "line-input",
        &enc(&json!({"item": "fries", "qty": 1u64 << 32})),
    );
    invalid(
        "line-input",
        &enc(&json!({"item": "fries", "qty": 1, "course": -1})),
    );
    // An unknown command type, an unknown event kind, an unknown order status.
    invalid("command-body", &enc(&json!({"type": "launch_rockets"})));
    let Service { ledger, .. } = service();
    let mut event = serde_json::to_value(&ledger.log[0]).expect("to json");
    event["type"] = json!("order_eaten");
    invalid("event", &enc(&event));
    let mut order = serde_json::to_value(&ledger.log[0].order).expect("to json");
    order["status"] = json!("cooking");
    invalid("order", &enc(&order));
    // A key the contract does not have.
    invalid(
        "reply",
        &enc(&json!({"command": "c1", "ok": true, "bogus": 1})),
    );
    // A MAC that is not 32 bytes, a body that is not a byte string.
    let mut env = Envelope::sign(
        "c1",
        "tablet-1",
        &SECRET,
        &CommandBody::Replay { after_seq: 1 },
    )
    .expect("signs");
    env.mac.pop();
    invalid("envelope", &enc(&env));
    #[derive(serde::Serialize)]
    struct NestedBody {
        id: &'static str,
        device: &'static str,
        body: Value,
        #[serde(with = "serde_bytes")]
        mac: Vec<u8>,
    }
    invalid(
        "envelope",
        &enc(&NestedBody {
            id: "c1",
            device: "tablet-1",
            body: json!({"type": "replay", "after_seq": 1}),
            mac: vec![0; 32],
        }),
    );
}
