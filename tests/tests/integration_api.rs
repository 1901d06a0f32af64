//! The local integration API (`/api/v1/…`) against the real daemon: a POS's order posted five
//! times with one Idempotency-Key is one order and one card on the kitchen's board; a revoked
//! key is refused at once; bad requests change nothing; amend, void, fire and status keep to the
//! integration's own orders; and every answer fits the OpenAPI document the box serves.

#[path = "support/openapi.rs"]
mod openapi;

use anyhow::Context;
use docket_core::wire::{self, CommandBody};
use docket_tests::{basic_auth, line, Client, Creds, Daemon, HttpReply};
use serde_json::{json, Value};

/// A POS talking to one box, every answer checked against the box's own OpenAPI document.
struct Pos<'a> {
    d: &'a Daemon,
    doc: Value,
    tls: bool,
}

fn bearer(c: &Creds) -> String {
    format!("Bearer {}.{}", c.id, c.login())
}

impl<'a> Pos<'a> {
    fn new(d: &'a Daemon) -> anyhow::Result<Pos<'a>> {
        let r = d.http("GET", "/api/v1/openapi.json", &[], "")?;
        anyhow::ensure!(r.status == 200, "{r:?}");
        Ok(Pos {
            d,
            doc: r.json()?,
            tls: false,
        })
    }

    /// `method template` (with `{order_id}` replaced) as `auth`, with `key` as the
    /// Idempotency-Key; the answer's status must be documented and its body fit the schema.
    fn send(
        &self,
        auth: Option<&str>,
        (method, template, order_id): (&str, &str, &str),
        key: Option<&str>,
        body: &str,
    ) -> anyhow::Result<HttpReply> {
        let path = template.replace("{order_id}", order_id);
        let mut h = vec![("Content-Type", "application/json")];
        if let Some(a) = auth {
            h.push(("Authorization", a));
        }
        if let Some(k) = key {
            h.push(("Idempotency-Key", k));
        }
        let r = if self.tls {
            self.d.https(method, &path, &h, body)?
        } else {
            self.d.http(method, &path, &h, body)?
        };
        openapi::check_response(&self.doc, method, template, r.status, &r.body)?;
        Ok(r)
    }

    fn place(&self, auth: &str, key: &str, body: &Value) -> anyhow::Result<HttpReply> {
        let op = ("POST", "/api/v1/orders", "");
        self.send(Some(auth), op, Some(key), &body.to_string())
    }

    fn get(&self, auth: &str, order_id: &str) -> anyhow::Result<HttpReply> {
        let op = ("GET", "/api/v1/orders/{order_id}", order_id);
        self.send(Some(auth), op, None, "")
    }

    fn amend(
        &self,
        auth: &str,
        (what, order_id): (&str, &str),
        key: &str,
        body: &Value,
    ) -> anyhow::Result<HttpReply> {
        let template = format!("/api/v1/orders/{{order_id}}/{what}");
        let op = ("POST", template.as_str(), order_id);
        self.send(Some(auth), op, Some(key), &body.to_string())
    }
}

fn code(r: &HttpReply) -> String {
    r.json()
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// (Authorization, Idempotency-Key, body, status, code) of a refused request.
type Case<'a> = (Option<String>, Option<&'a str>, String, u16, &'a str);

fn web_order() -> Value {
    json!({"channel": "web", "reference": "A-17", "service": "takeaway",
           "lines": [{"item": "fries", "qty": 2, "notes": "extra crispy"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_posted_five_times_with_one_key_is_one_card() -> anyhow::Result<()> {
    let d = Daemon::start()?;
    let till = d.add_device("till-1", "integration", &[])?;
    let fry = d.add_device("kds-fry", "station", &["fry"])?;
    let mut k = Client::connect(d.mqtt, &fry).await?;
    k.subscribe(&wire::board_topic("fry")).await?;
    k.board("fry", 0).await?;
    let mut pos = Pos::new(&d)?;
    pos.tls = true; // over HTTPS, trusting the site CA only, as a POS does

    let first = pos.place(&bearer(&till), "pos-order-1", &web_order())?;
    assert_eq!(first.status, 201, "{first:?}");
    for _ in 0..4 {
        let again = pos.place(&bearer(&till), "pos-order-1", &web_order())?;
        assert_eq!((again.status, &again.body), (201, &first.body));
    }
    let v = first.json()?;
    let order_id = v["order_id"].as_str().context("order_id")?;
    let seq = v["seq"].as_u64().context("seq")?;
    assert_eq!(d.store_counts()?, (1, 1), "one event, one order");

    // One card on the fry board, carrying where it came from; the table is the way it leaves.
    let board = k.board("fry", seq).await?;
    assert_eq!(board.orders.len(), 1, "{:?}", board.orders);
    let card = &board.orders[0];
    assert_eq!(card.id, order_id);
    assert_eq!(card.table, "takeaway");
    let origin = card.origin.as_ref().context("origin on the board")?;
    assert_eq!(
        (origin.channel.as_str(), origin.reference.as_deref()),
        ("web", Some("A-17"))
    );
    assert_eq!(origin.device, "till-1");

    // Its status, as the store has it.
    let got = pos.get(&bearer(&till), order_id)?;
    assert_eq!(got.status, 200, "{got:?}");
    let o = got.json()?;
    assert_eq!(o["origin"]["channel"], "web");
    assert_eq!(o["lines"][0]["status"], "fired");
    assert_eq!(o["service"], "takeaway");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_at_once() -> anyhow::Result<()> {
    let d = Daemon::start()?;
    let till = d.add_device("till-1", "integration", &[])?;
    let pos = Pos::new(&d)?;
    let r = pos.place(&bearer(&till), "k1", &web_order())?;
    assert_eq!(r.status, 201, "{r:?}");
    let order_id = r.json()?["order_id"].as_str().context("id")?.to_owned();

    d.cli(&["device", "revoke", "--id", "till-1"])?;
    // The very next request, with no wait: refused, and nothing is written.
    let r = pos.place(&bearer(&till), "k2", &web_order())?;
    assert_eq!((r.status, code(&r).as_str()), (401, "revoked"), "{r:?}");
    let r = pos.get(&bearer(&till), &order_id)?;
    assert_eq!((r.status, code(&r).as_str()), (401, "revoked"), "{r:?}");
    // Even its first key again: the key is what is refused, not the command.
    let r = pos.place(&bearer(&till), "k1", &web_order())?;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(d.store_counts()?, (1, 1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_clearly_and_change_nothing() -> anyhow::Result<()> {
    let d = Daemon::start()?;
    let till = d.add_device("till-1", "integration", &[])?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let pos = Pos::new(&d)?;
    let auth = bearer(&till);
    let orders = ("POST", "/api/v1/orders", "");
    let good = web_order().to_string();

    let cases: Vec<Case> = vec![
        (
            Some(auth.clone()),
            Some("a"),
            r#"{"channel":"web","#.into(),
            400,
            "bad_json",
        ),
        (
            Some(auth.clone()),
            Some("b"),
            r#"{"channel":"web","lines":[{"item":"fries","qty":1}],"tip":2}"#.into(),
            400,
            "bad_json",
        ),
        (
            Some(auth.clone()),
            Some("c"),
            r#"{"lines":[{"item":"fries","qty":1}]}"#.into(),
            400,
            "bad_json",
        ),
        (
            Some(auth.clone()),
            Some("d"),
            format!(
                r#"{{"channel":"web","lines":[{{"item":"fries","qty":1,"notes":"{}"}}]}}"#,
                "x".repeat(17 * 1024)
            ),
            413,
            "too_large",
        ),
        (
            Some(auth.clone()),
            None,
            good.clone(),
            400,
            "bad_idempotency_key",
        ),
        (
            Some(auth.clone()),
            Some("k"),
            r#"{"channel":"web","lines":[{"item":"caviar","qty":1}]}"#.into(),
            422,
            "unknown_item",
        ),
        (
            Some(auth.clone()),
            Some("e"),
            r#"{"channel":"web","lines":[]}"#.into(),
            400,
            "no_lines",
        ),
        (None, Some("f"), good.clone(), 401, "unauthorized"),
        (
            Some(format!("Bearer till-1.{}", "00".repeat(32))),
            Some("g"),
            good.clone(),
            401,
            "unauthorized",
        ),
        (
            Some(format!("Bearer nobody.{}", till.login())),
            Some("h"),
            good.clone(),
            401,
            "unauthorized",
        ),
        (
            Some(bearer(&tablet)),
            Some("i"),
            good.clone(),
            403,
            "forbidden",
        ),
    ];
    let mut unauthorised_bodies = Vec::new();
    for (auth, key, body, status, want) in cases {
        let r = pos.send(auth.as_deref(), orders, key, &body)?;
        assert_eq!((r.status, code(&r).as_str()), (status, want), "{r:?}");
        let message = r.json()?["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert!(!message.is_empty(), "a clear message: {r:?}");
        if status == 401 {
            unauthorised_bodies.push(r.body);
        }
    }
    // Unknown device, wrong key, no key: one answer (nothing says which ids exist).
    unauthorised_bodies.dedup();
    assert_eq!(unauthorised_bodies.len(), 1, "{unauthorised_bodies:?}");

    // Basic works as well as Bearer; a page of another origin may not post.
    let basic = basic_auth("till-1", &till.login());
    let h = [
        ("Authorization", basic.as_str()),
        ("Idempotency-Key", "x1"),
        ("Origin", "https://evil.example"),
    ];
    let r = d.http("POST", "/api/v1/orders", &h, &good)?;
    assert_eq!((r.status, code(&r).as_str()), (403, "cross_origin"));
    assert_eq!(d.store_counts()?, (0, 0), "nothing was written");
    let r = pos.send(Some(&basic), orders, Some("x1"), &good)?;
    assert_eq!(r.status, 201, "{r:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amend_void_fire_and_status_keep_to_its_own_orders() -> anyhow::Result<()> {
    let d = Daemon::start()?;
    let till = d.add_device("till-1", "integration", &[])?;
    let other = d.add_device("kiosk-1", "integration", &[])?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let pos = Pos::new(&d)?;
    let auth = bearer(&till);
    let placed = pos.place(
        &auth,
        "p1",
        &json!({"channel": "till", "table": "12", "lines": [
            {"item": "fries", "qty": 1, "seat": 2},
            {"item": "burger-classic", "qty": 1, "course": 2}
        ]}),
    )?;
    assert_eq!(placed.status, 201, "{placed:?}");
    let id = placed.json()?["order_id"]
        .as_str()
        .context("id")?
        .to_owned();

    let r = pos.amend(
        &auth,
        ("lines", &id),
        "a1",
        &json!({"lines": [{"item": "fries", "qty": 1}]}),
    )?;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()?["order_id"], id.as_str());
    let r = pos.amend(&auth, ("void", &id), "v1", &json!({"line": 3}))?;
    assert_eq!(r.status, 200, "{r:?}");
    let again = pos.amend(&auth, ("void", &id), "v1", &json!({"line": 3}))?;
    assert_eq!(
        (again.status, &again.body),
        (200, &r.body),
        "same key, same answer"
    );
    let r = pos.amend(&auth, ("void", &id), "v2", &json!({"line": 3}))?;
    assert_eq!((r.status, code(&r).as_str()), (409, "line_voided"), "{r:?}");
    let r = pos.amend(&auth, ("void", &id), "v3", &json!({"line": 9}))?;
    assert_eq!(
        (r.status, code(&r).as_str()),
        (422, "unknown_line"),
        "{r:?}"
    );
    let r = pos.amend(&auth, ("fire", &id), "f1", &json!({"course": 2}))?;
    assert_eq!(r.status, 200, "{r:?}");

    let o = pos.get(&auth, &id)?.json()?;
    let statuses: Vec<&str> = o["lines"]
        .as_array()
        .context("lines")?
        .iter()
        .filter_map(|l| l["status"].as_str())
        .collect();
    assert_eq!(statuses, ["fired", "fired", "voided"], "{o}");
    assert_eq!(
        (o["version"].as_u64(), o["table"].as_str()),
        (Some(4), Some("12"))
    );

    // Another integration sees nothing of it and may change nothing.
    let r = pos.get(&bearer(&other), &id)?;
    assert_eq!((r.status, code(&r).as_str()), (404, "unknown_order"));
    let r = pos.amend(&bearer(&other), ("void", &id), "o1", &json!({"line": 1}))?;
    assert_eq!((r.status, code(&r).as_str()), (403, "forbidden"), "{r:?}");
    // Nor a tablet's order; and an order that does not exist is 404 either way.
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    let tr = t
        .command(&CommandBody::place("3", vec![line("fries", 1)]))
        .await?;
    let tablet_order = tr.order_id.context("tablet order")?;
    let r = pos.get(&auth, &tablet_order)?;
    assert_eq!(r.status, 404, "{r:?}");
    let r = pos.amend(
        &auth,
        ("lines", &tablet_order),
        "t1",
        &json!({"lines": [{"item": "fries", "qty": 1}]}),
    )?;
    assert_eq!((r.status, code(&r).as_str()), (403, "forbidden"), "{r:?}");
    let r = pos.amend(&auth, ("fire", "o-999999"), "n1", &json!({"course": 2}))?;
    assert_eq!(
        (r.status, code(&r).as_str()),
        (404, "unknown_order"),
        "{r:?}"
    );
    assert_eq!(pos.get(&auth, "o-999999")?.status, 404);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed() -> anyhow::Result<()> {
    let d = Daemon::start()?;
    let pos = Pos::new(&d)?;
    assert!(pos.doc["openapi"].as_str().unwrap_or("").starts_with("3.1"));
    let ops = openapi::operations(&pos.doc);
    assert_eq!(ops.len(), 6, "{ops:?}");
    for (method, template) in ops {
        // Unauthenticated: routed (neither 404 nor 405), refused as documented, or the
        // document itself.
        let r = pos.send(None, (&method, &template, "o-000001"), Some("k"), "{}")?;
        let want = if template.ends_with("openapi.json") {
            200
        } else {
            401
        };
        assert_eq!(r.status, want, "{method} {template}: {r:?}");
    }
    // What the box does not document is not routed.
    let r = d.http("DELETE", "/api/v1/orders/o-000001", &[], "")?;
    assert_eq!(r.status, 405);
    Ok(())
}
