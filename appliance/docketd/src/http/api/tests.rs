//! The API's handlers against a real store, without sockets.

use super::*;
use crate::store::{DeviceRow, Store};
use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

struct Fixture {
    state: ApiState,
    manager: String,
    /// The manager's login key as hex.
    manager_key: String,
    tablet: String,
    db: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!(
        "docket-api-test-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let db = dir.join("db");
    let _s = Store::open(&db, "s").unwrap();
    let conn = store::connect(&db).unwrap();
    let mut creds = Vec::new();
    for (id, role) in [("mgr", Role::Manager), ("tab", Role::Tablet)] {
        let d = DeviceRow {
            id: id.into(),
            role,
            stations: vec![],
            secret: rand::random(),
            created_at: 1,
            revoked_at: None,
        };
        store::devices::add(&conn, &d).unwrap();
        creds.push(format!("{id}:{}", docket_core::keys::password(&d.secret)));
    }
    let metrics = Arc::new(Metrics::default());
    let registry = Arc::new(DeviceRegistry::open(&db, metrics.clone()).unwrap());
    let status = Arc::new(crate::status::Status::default());
    let state = ApiState::open(&db, registry, (metrics, status), "s", "t").unwrap();
    Fixture {
        state,
        manager_key: creds[0].split_once(':').unwrap().1.to_owned(),
        db,
        tablet: basic(&creds[1]),
        manager: basic(&creds[0]),
    }
}

fn basic(user_pass: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

async fn call(
    s: &ApiState,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "box");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = router(s.clone())
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let (parts, body) = r.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, parts.headers, v)
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[test]
fn base64_round_trip() {
    assert_eq!(base64_decode("bWdyOmFi").unwrap(), b"mgr:ab");
    assert_eq!(base64_decode("bWdyOmE=").unwrap(), b"mgr:a");
    assert_eq!(base64_decode("bWdyOg").unwrap(), b"mgr:");
    assert!(base64_decode("b").is_none());
    assert!(base64_decode("bW!y").is_none());
    assert_eq!(basic("mgr:a"), "Basic bWdyOmE=");
}

#[tokio::test]
async fn pair_approve_collect_once() {
    let f = fixture();
    let s = &f.state;
    let (st, h, v) = call(s, "POST", "/api/pair", None, r#"{"label":" bar "}"#).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    assert_eq!(v["expires_in_s"], 600);
    let (pcode, token) = (v["code"].as_str().unwrap(), v["token"].as_str().unwrap());
    assert_eq!(token.len(), 64);
    let poll = format!("/api/pair/{token}");
    let (_, _, v) = call(s, "GET", &poll, None, "").await;
    assert_eq!(v["status"], "pending");
    let (st, _, v) = call(s, "GET", "/api/admin/pairings", Some(&f.manager), "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["pairings"][0]["label"], "bar");
    let approve = format!("/api/admin/pairings/{pcode}/approve");
    let body = r#"{"id":"kds-1","role":"station","stations":["grill"]}"#;
    let (st, _, v) = call(s, "POST", &approve, Some(&f.manager), body).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["stations"][0], "grill");
    assert!(v.get("secret").is_none());
    let (_, _, v) = call(s, "GET", &poll, None, "").await;
    assert_eq!(
        (v["status"].as_str(), v["id"].as_str()),
        (Some("approved"), Some("kds-1"))
    );
    assert_eq!(v["secret"].as_str().unwrap().len(), 64);
    let (st, _, v) = call(s, "GET", &poll, None, "").await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "unknown_pairing"));
}

#[tokio::test]
async fn refusals_have_stable_codes() {
    let f = fixture();
    let s = &f.state;
    let (mgr, tab) = (Some(f.manager.as_str()), Some(f.tablet.as_str()));
    let wrong = Some("Basic bWdyOmFi"); // mgr:ab
    let approve = "/api/admin/pairings/123456/approve";
    let devices = "/api/admin/devices";
    for (method, path, auth, body, status, want) in [
        ("POST", "/api/pair", None, "{", 400, "bad_json"),
        ("POST", "/api/pair", None, r#"{"label":7}"#, 400, "bad_json"),
        (
            "POST",
            "/api/pair",
            None,
            r#"{"label":"a\nb"}"#,
            400,
            "bad_label",
        ),
        ("GET", "/api/pair/zz", None, "", 404, "unknown_pairing"),
        ("GET", devices, None, "", 401, "unauthorized"),
        ("GET", devices, wrong, "", 401, "unauthorized"),
        ("GET", devices, tab, "", 403, "forbidden"),
        (
            "POST",
            approve,
            mgr,
            r#"{"id":"x","role":"tablet"}"#,
            404,
            "unknown_pairing",
        ),
        (
            "POST",
            approve,
            mgr,
            r#"{"id":"x","role":"chef"}"#,
            400,
            "bad_role",
        ),
        (
            "POST",
            approve,
            mgr,
            r#"{"id":"x","rol":"tablet"}"#,
            400,
            "bad_json",
        ),
        (
            "POST",
            "/api/admin/devices/nope/revoke",
            mgr,
            "",
            404,
            "unknown_device",
        ),
    ] {
        let (st, h, v) = call(s, method, path, auth, body).await;
        assert_eq!(
            (st.as_u16(), code(&v)),
            (status, want),
            "{method} {path} {body}: {v}"
        );
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        if st == StatusCode::UNAUTHORIZED {
            assert_eq!(h[header::WWW_AUTHENTICATE], "Basic realm=\"docket\"");
        }
    }
    let big = format!(r#"{{"label":"{}"}}"#, "x".repeat(BODY_LIMIT));
    let (st, _, v) = call(s, "POST", "/api/pair", None, &big).await;
    assert_eq!((st, code(&v)), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));
    // Nothing was written by any of them.
    let rows: i64 =
        s.db.lock()
            .unwrap()
            .query_row("SELECT COUNT(*) FROM pairings", [], |r| r.get(0))
            .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn a_device_can_ask_who_it_is_and_learns_when_it_is_revoked() {
    let f = fixture();
    let s = &f.state;
    let (st, _, v) = call(s, "GET", "/api/device", Some(&f.tablet), "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["id"].as_str(), v["role"].as_str()),
        (Some("tab"), Some("tablet"))
    );
    assert!(v.get("secret").is_none());
    let (st, _, v) = call(s, "GET", "/api/device", Some("Basic dGFiOmFi"), "").await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (st, _, v) = call(s, "GET", "/api/device", None, "").await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (st, _, _) = call(
        s,
        "POST",
        "/api/admin/devices/tab/revoke",
        Some(&f.manager),
        "",
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, v) = call(s, "GET", "/api/device", Some(&f.tablet), "").await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "revoked"));
    // Only the right secret learns that the device is revoked.
    let (st, _, v) = call(s, "GET", "/api/device", Some("Basic dGFiOmFi"), "").await;
    assert_eq!((st, code(&v)), (StatusCode::UNAUTHORIZED, "unauthorized"));
}

#[tokio::test]
async fn cross_origin_state_changes_are_refused() {
    let f = fixture();
    let req = |origin: &str| {
        Request::post("/api/admin/devices/tab/revoke")
            .header("host", "box:8080")
            .header("origin", origin)
            .header("authorization", &f.manager)
            .body(Body::empty())
            .unwrap()
    };
    let r = router(f.state.clone())
        .oneshot(req("http://evil.example"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = router(f.state.clone())
        .oneshot(req("http://box:8080"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// A request with a cookie and an optional Origin: (status, headers, JSON).
async fn call_with_cookie(
    s: &ApiState,
    method: &str,
    path: &str,
    cookie: &str,
    origin: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "box")
        .header("cookie", cookie);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let r = router(s.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = r.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_manager_signs_in_once_and_the_page_holds_a_strict_cookie() {
    let f = fixture();
    let (st, h, v) = call(&f.state, "POST", "/api/session", Some(&f.manager), "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["device"], "mgr");
    let set = h[header::SET_COOKIE].to_str().unwrap().to_owned();
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(set.contains(attr), "{set}");
    }
    let cookie = set.split(';').next().unwrap().to_owned();
    let (st, _, v) = call_with_cookie(&f.state, "GET", "/api/admin/devices", &cookie, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, _, _) = call_with_cookie(&f.state, "GET", "/api/session", &cookie, None).await;
    assert_eq!(st, StatusCode::OK);
    // Another origin cannot use it for a change (SameSite aside).
    let (st, _, _) = call_with_cookie(
        &f.state,
        "POST",
        "/api/admin/devices/tab/revoke",
        &cookie,
        Some("http://evil.example"),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Signed out: the cookie is cleared and no longer opens anything.
    let (st, h, _) = call_with_cookie(&f.state, "DELETE", "/api/session", &cookie, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert!(h[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let (st, h, _) = call_with_cookie(&f.state, "GET", "/api/admin/devices", &cookie, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        h.get(header::WWW_AUTHENTICATE).is_none(),
        "an ended session is no Basic challenge (the browser would put up its own login box)"
    );
    // A made-up token opens nothing.
    let fake = format!("{}={}", SESSION_COOKIE, "ab".repeat(32));
    let (st, _, _) = call_with_cookie(&f.state, "GET", "/api/admin/devices", &fake, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn only_a_managers_key_opens_a_session_and_revoking_it_ends_it() {
    let f = fixture();
    let (st, h, _) = call(&f.state, "POST", "/api/session", Some(&f.tablet), "").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(h.get(header::SET_COOKIE).is_none());
    let (st, h, _) = call(
        &f.state,
        "POST",
        "/api/session",
        None,
        r#"{"id":"mgr","key":"00"}"#,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(h.get(header::SET_COOKIE).is_none());
    let (st, _, _) = call(&f.state, "POST", "/api/session", None, "not json").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // The login form's JSON works like Basic.
    let key = f.manager_key.clone();
    let body = json!({ "id": "mgr", "key": key }).to_string();
    let (st, h, _) = call(&f.state, "POST", "/api/session", None, &body).await;
    assert_eq!(st, StatusCode::OK);
    let cookie = h[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let conn = store::connect(&f.db).unwrap();
    store::devices::revoke(&conn, "mgr", 2).unwrap();
    f.state.registry.refresh().unwrap();
    let (st, _, _) = call_with_cookie(&f.state, "GET", "/api/admin/devices", &cookie, None).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "a revoked manager's session ends"
    );
}

/// An event as the engine stores it: `order` is a JSON order (as the wire shows it).
fn store_event(db: &std::path::Path, seq: u64, kind: &str, at: u64, order: Value) {
    let order: docket_core::Order = serde_json::from_value(order).unwrap();
    let event = docket_core::wire::Event {
        seq,
        kind: serde_json::from_value(json!(kind)).unwrap(),
        order_id: order.id.clone(),
        version: seq,
        command: format!("c{seq}"),
        device: "tab".into(),
        at,
        order,
    };
    let payload = docket_core::wire::encode(&event).unwrap();
    let conn = store::connect(db).unwrap();
    conn.execute(
        "INSERT INTO events (seq, type, order_id, version, command, device, at, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        rusqlite::params![
            seq as i64,
            kind,
            event.order_id,
            seq as i64,
            event.command,
            "tab",
            at as i64,
            payload
        ],
    )
    .unwrap();
}

fn one_line_order(status: &str) -> Value {
    json!({"id": "o-000001", "ticket": 1, "table": "4", "status": "placed", "version": 1,
           "lines": [{"n": 1, "item": "burger", "name": "Burger", "qty": 1, "mods": [], "course": 1,
                      "station": "grill", "status": status}],
           "fired_course": 1, "placed_at": 0})
}

#[tokio::test]
async fn speed_of_service_is_read_from_the_event_log_for_managers_only() {
    let f = fixture();
    let s = &f.state;
    let (mgr, tab) = (Some(f.manager.as_str()), Some(f.tablet.as_str()));
    let min = 60_000;
    store_event(&f.db, 1, "order_placed", 100 * min, one_line_order("fired"));
    store_event(
        &f.db,
        2,
        "ticket_bumped",
        109 * min,
        one_line_order("ready"),
    );
    let path = format!(
        "/api/admin/speed?from={}&to={}&late_min=8",
        90 * min,
        120 * min
    );
    let (st, _, v) = call(s, "GET", &path, mgr, "").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["orders"], 1);
    assert_eq!(v["stations"][0]["station"], "grill");
    assert_eq!(v["stations"][0]["p50_ms"], 9 * min);
    assert_eq!(v["stations"][0]["late"], 1);
    assert_eq!(v["late"][0]["ticket"], 1);
    assert_eq!(v["buckets"].as_array().unwrap().len(), 2);
    assert_eq!(v["truncated"], false);
    // A window before anything happened is empty, not an error.
    let (st, _, v) = call(s, "GET", "/api/admin/speed?from=0&to=1000", mgr, "").await;
    assert_eq!((st.as_u16(), v["orders"].as_u64()), (200, Some(0)));
    let (st, _, v) = call(s, "GET", &path, tab, "").await;
    assert_eq!((st.as_u16(), code(&v)), (403, "forbidden"));
    let (st, _, v) = call(s, "GET", &path, None, "").await;
    assert_eq!((st.as_u16(), code(&v)), (401, "unauthorized"));
    let (st, _, v) = call(s, "GET", "/api/admin/speed?from=9&to=1", mgr, "").await;
    assert_eq!((st.as_u16(), code(&v)), (400, "bad_query"));
}

#[tokio::test]
async fn managers_set_and_remove_a_stations_printer_and_bad_ones_change_nothing() {
    let f = fixture();
    let conn = store::connect(&f.db).unwrap();
    let sample = docket_core::Menu::sample(&[("burger", "grill"), ("fries", "fry")]);
    store::menu::seed(&conn, &sample, 1).unwrap();
    let (s, mgr) = (&f.state, Some(f.manager.as_str()));
    let put = |body: &'static str| async move {
        call(s, "PUT", "/api/admin/printers/grill", mgr, body).await
    };
    let (st, _, v) = call(s, "GET", "/api/admin/printers", mgr, "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["printers"], json!([]));
    assert_eq!(
        v["stations"],
        json!(["grill", "fry"]),
        "in the menu's order"
    );

    let (st, _, v) = put(r#"{"address":"10.0.0.5:9100","mode":"always","paper_mm":58}"#).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["printers"],
        json!([{"station":"grill","address":"10.0.0.5:9100","mode":"always","paper_mm":58}])
    );
    assert_eq!(v["status"][0]["station"], "grill");
    assert!(
        s.status.printing.prints_at("grill"),
        "the engine sees it at once"
    );

    for (body, code) in [
        (r#"{"address":"10.0.0.5","mode":"always"}"#, "bad_printer"),
        (
            r#"{"address":"10.0.0.5:9100","mode":"sometimes"}"#,
            "bad_printer",
        ),
        (
            r#"{"address":"10.0.0.5:9100","mode":"off","paper_mm":70}"#,
            "bad_printer",
        ),
        (r#"{"address":"10.0.0.5:9100"}"#, "bad_json"),
        (
            r#"{"address":"x:1","mode":"off","colour":"red"}"#,
            "bad_json",
        ),
    ] {
        let (_, _, v) = put(body).await;
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
    }
    let big = format!(
        r#"{{"address":"{}:1","mode":"off"}}"#,
        "a".repeat(BODY_LIMIT)
    );
    let (st, _, _) = call(s, "PUT", "/api/admin/printers/grill", mgr, &big).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    let (st, _, v) = call(
        s,
        "PUT",
        "/api/admin/printers/pastry",
        mgr,
        r#"{"address":"a:1","mode":"off"}"#,
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_station"))
    );
    let tab = Some(f.tablet.as_str());
    let (st, _, _) = call(
        s,
        "PUT",
        "/api/admin/printers/grill",
        tab,
        r#"{"address":"a:1","mode":"off"}"#,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, _) = call(s, "DELETE", "/api/admin/printers/grill", None, "").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // None of those changed it.
    let (_, _, v) = call(s, "GET", "/api/admin/printers", mgr, "").await;
    assert_eq!(v["printers"][0]["address"], "10.0.0.5:9100");
    assert_eq!(v["printers"][0]["mode"], "always");

    let (st, _, v) = call(s, "DELETE", "/api/admin/printers/grill", mgr, "").await;
    assert_eq!((st, v["printers"].clone()), (StatusCode::OK, json!([])));
    assert!(!s.status.printing.prints_at("grill"));
    let (st, _, v) = call(s, "DELETE", "/api/admin/printers/grill", mgr, "").await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_printer"))
    );
}
