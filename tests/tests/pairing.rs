//! Pairing end to end: a new device asks for a code, a manager approves it (CLI or admin API),
//! the device collects its id and secret exactly once and uses them over MQTT. Refusals change
//! nothing; the admin device list shows presence; revocation through the API cuts a device off.

use anyhow::Context;
use docket_core::wire::CommandBody;
use docket_tests::{basic_auth, eventually, line, login_refused, Client, Creds, Daemon};
use serde_json::{json, Value};

type R = anyhow::Result<()>;

/// A new device's side: its code and its secret poll token.
struct Asked {
    code: String,
    token: String,
}

fn ask(d: &Daemon, label: Option<&str>) -> anyhow::Result<Asked> {
    ask_from(d, label, [127, 0, 0, 1])
}

/// A pairing request from another address of the LAN (any 127.0.0.0/8 address is this host).
fn ask_from(d: &Daemon, label: Option<&str>, from: [u8; 4]) -> anyhow::Result<Asked> {
    let body = match label {
        Some(l) => json!({ "label": l }).to_string(),
        None => "{}".to_owned(),
    };
    let r = d.http_from(
        from.into(),
        "POST",
        "/api/pair",
        &[("Content-Type", "application/json")],
        &body,
    )?;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json()?;
    let code = v["code"].as_str().context("code")?.to_owned();
    let token = v["token"].as_str().context("token")?.to_owned();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    assert!(token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(v["expires_in_s"], 600);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    Ok(Asked { code, token })
}

/// The device's poll: (HTTP status, JSON body).
fn poll(d: &Daemon, token: &str) -> anyhow::Result<(u16, Value)> {
    let (status, body) = d.request("GET", &format!("/api/pair/{token}"), &[], "")?;
    Ok((status, serde_json::from_str(&body)?))
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// A manager's authorised request: (status, JSON body).
fn admin(
    d: &Daemon,
    auth: &str,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, Value)> {
    let (status, body) = d.request(method, path, &[("Authorization", auth)], body)?;
    Ok((
        status,
        serde_json::from_str(&body).with_context(|| body.clone())?,
    ))
}

fn device_count(d: &Daemon) -> anyhow::Result<usize> {
    Ok(d.cli(&["device", "list"])?.lines().count())
}

/// Collects the credentials of an approved request, checks they come only once, and places an
/// order with them over MQTT.
async fn collect_and_order(d: &Daemon, token: &str, id: &str) -> anyhow::Result<Creds> {
    let (status, v) = poll(d, token)?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "approved");
    assert_eq!(v["id"], id);
    assert_eq!(v["mqtt"]["ws_path"], "/mqtt");
    let creds: Creds = serde_json::from_value(v)?;
    assert_eq!(creds.secret.len(), 64);
    let (status, v) = poll(d, token)?;
    assert_eq!(
        (status, error_code(&v)),
        (404, "unknown_pairing"),
        "collected twice"
    );

    let mut c = Client::connect(d.mqtt, &creds).await?;
    let r = c
        .command(&CommandBody::place("12", vec![line("fries", 1)]))
        .await?;
    assert!(r.ok, "{r:?}");
    c.disconnect().await;
    Ok(creds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_with_the_cli() -> R {
    let d = Daemon::start()?;
    let a = ask(&d, Some("bar tablet"))?;
    let (status, v) = poll(&d, &a.token)?;
    assert_eq!((status, v["status"].as_str()), (200, Some("pending")));

    let listed = d.cli(&["device", "pairings"])?;
    let p: Value = serde_json::from_str(listed.trim())?;
    assert_eq!(
        (p["code"].as_str(), p["label"].as_str()),
        (Some(a.code.as_str()), Some("bar tablet"))
    );

    let out = d.cli(&[
        "device",
        "approve",
        &a.code,
        "--id",
        "tablet-new",
        "--role",
        "tablet",
    ])?;
    let dev: Value = serde_json::from_str(out.trim())?;
    assert_eq!(
        (dev["id"].as_str(), dev["role"].as_str()),
        (Some("tablet-new"), Some("tablet"))
    );
    assert!(
        dev.get("secret").is_none(),
        "the CLI must not print the secret: {out}"
    );
    assert!(d.cli(&["device", "pairings"])?.trim().is_empty());
    collect_and_order(&d, &a.token, "tablet-new").await?;

    // Refusals: an unknown code, a decided one, a bad role; nothing is added.
    let before = device_count(&d)?;
    assert!(d
        .cli(&["device", "approve", &a.code, "--id", "t2", "--role", "tablet"])
        .is_err());
    let b = ask(&d, None)?;
    assert!(d
        .cli(&["device", "approve", &b.code, "--id", "t2", "--role", "chef"])
        .is_err());
    assert!(d
        .cli(&[
            "device",
            "approve",
            &b.code,
            "--id",
            "tablet-new",
            "--role",
            "tablet"
        ])
        .is_err());
    assert_eq!(device_count(&d)?, before);
    assert_eq!(poll(&d, &b.token)?.1["status"], "pending");

    // Reject: the device is told so.
    let out = d.cli(&["device", "reject", &b.code])?;
    assert!(out.contains("rejected"), "{out}");
    assert_eq!(poll(&d, &b.token)?.1["status"], "rejected");
    assert!(
        d.cli(&["device", "reject", &b.code]).is_err(),
        "rejected twice"
    );
    assert_eq!(device_count(&d)?, before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_through_the_admin_api() -> R {
    let d = Daemon::start()?;
    let mgr = d.add_device("mgr-1", "manager", &[])?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let auth = basic_auth(&mgr.id, &mgr.login());
    let a = ask(&d, Some("window tablet"))?;

    let (status, v) = admin(&d, &auth, "GET", "/api/admin/pairings", "")?;
    assert_eq!(status, 200, "{v}");
    let p = &v["pairings"][0];
    assert_eq!(
        (p["code"].as_str(), p["label"].as_str()),
        (Some(a.code.as_str()), Some("window tablet"))
    );
    assert!(p["age_s"].is_u64());

    // Wrong, missing and non-manager credentials: refused, nothing changes.
    let approve = format!("/api/admin/pairings/{}/approve", a.code);
    let body = r#"{"id":"tablet-new","role":"tablet"}"#;
    let wrong_secret = basic_auth(&mgr.id, &tablet.login());
    let unknown = basic_auth("nobody", &mgr.login());
    let not_manager = basic_auth(&tablet.id, &tablet.login());
    let before = device_count(&d)?;
    for (headers, want) in [
        (vec![], 401),
        (vec![("Authorization", wrong_secret.as_str())], 401),
        (vec![("Authorization", unknown.as_str())], 401),
        (vec![("Authorization", "Bearer abc")], 401),
        (vec![("Authorization", not_manager.as_str())], 403),
    ] {
        let r = d.http("POST", &approve, &headers, body)?;
        assert_eq!(r.status, want, "{headers:?}: {}", r.body);
        let code = if want == 401 {
            "unauthorized"
        } else {
            "forbidden"
        };
        assert_eq!(error_code(&r.json()?), code);
        if want == 401 {
            assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"docket\""));
        }
    }
    assert_eq!(device_count(&d)?, before);
    assert_eq!(poll(&d, &a.token)?.1["status"], "pending");

    // Bad requests and an existing id: refused, still pending.
    for (body, status, code) in [
        (r#"{"id":"tablet-1","role":"tablet"}"#, 409, "device_exists"),
        (r#"{"id":"x","role":"chef"}"#, 400, "bad_role"),
        (r#"{"id":"a/b","role":"tablet"}"#, 400, "bad_id"),
        (r#"{"id":"kds","role":"station"}"#, 400, "bad_stations"),
        (r#"{"id":"kds","#, 400, "bad_json"),
    ] {
        let (s, v) = admin(&d, &auth, "POST", &approve, body)?;
        assert_eq!((s, error_code(&v)), (status, code), "{body}: {v}");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(device_count(&d)?, before);
    assert_eq!(poll(&d, &a.token)?.1["status"], "pending");

    let (status, v) = admin(&d, &auth, "POST", &approve, body)?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["id"].as_str(), v["role"].as_str()),
        (Some("tablet-new"), Some("tablet"))
    );
    assert!(v.get("secret").is_none());
    let (status, v) = admin(
        &d,
        &auth,
        "POST",
        &approve,
        r#"{"id":"t3","role":"tablet"}"#,
    )?;
    assert_eq!((status, error_code(&v)), (409, "pairing_decided"));
    collect_and_order(&d, &a.token, "tablet-new").await?;

    // Unknown and expired codes.
    let unknown_code = if a.code == "000000" {
        "000001"
    } else {
        "000000"
    };
    let (status, v) = admin(
        &d,
        &auth,
        "POST",
        &format!("/api/admin/pairings/{unknown_code}/approve"),
        body,
    )?;
    assert_eq!((status, error_code(&v)), (404, "unknown_pairing"));
    let e = ask(&d, None)?;
    rusqlite::Connection::open(d.db_path())?.execute(
        "UPDATE pairings SET expires_at = 1 WHERE code = ?1",
        [&e.code],
    )?;
    let expired = format!("/api/admin/pairings/{}/approve", e.code);
    let (status, v) = admin(
        &d,
        &auth,
        "POST",
        &expired,
        r#"{"id":"late","role":"tablet"}"#,
    )?;
    assert_eq!((status, error_code(&v)), (404, "unknown_pairing"));
    assert_eq!(poll(&d, &e.token)?.0, 404);
    assert!(!d.cli(&["device", "list"])?.contains("\"late\""));

    // Reject: the device is told so.
    let r = ask(&d, None)?;
    let reject = format!("/api/admin/pairings/{}/reject", r.code);
    let (status, _) = admin(&d, &auth, "POST", &reject, "")?;
    assert_eq!(status, 200);
    assert_eq!(poll(&d, &r.token)?.1["status"], "rejected");
    let (status, v) = admin(&d, &auth, "POST", &reject, "")?;
    assert_eq!((status, error_code(&v)), (409, "pairing_decided"));

    // One address may have 3 requests waiting: a 4th is refused and writes nothing, while
    // another address still gets a code; the admin list says where each came from.
    let attacker = [127, 0, 9, 9];
    for i in 0..3 {
        ask_from(&d, Some(&format!("Grill KDS {i}")), attacker)?;
    }
    let r = d.http_from(attacker.into(), "POST", "/api/pair", &[], "{}")?;
    assert_eq!(
        (r.status, error_code(&r.json()?)),
        (429, "too_many_pairings_from_address"),
        "{}",
        r.body
    );
    ask_from(&d, Some("bar tablet"), [127, 0, 9, 10])?;
    let (_, v) = admin(&d, &auth, "GET", "/api/admin/pairings", "")?;
    let list = v["pairings"].as_array().context("pairings")?;
    let from = |addr: &str| list.iter().filter(|p| p["addr"] == addr).count();
    assert_eq!(
        (list.len(), from("127.0.9.9"), from("127.0.9.10")),
        (4, 3, 1),
        "{v}"
    );

    // At most 50 waiting in all: the 51st is refused, and writes nothing.
    for i in 4..50u8 {
        ask_from(&d, Some(&format!("flood {i}")), [127, 0, 10, i])?;
    }
    let r = d.http_from([127, 0, 11, 1].into(), "POST", "/api/pair", &[], "{}")?;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(error_code(&r.json()?), "too_many_pairings");
    let (_, v) = admin(&d, &auth, "GET", "/api/admin/pairings", "")?;
    assert_eq!(v["pairings"].as_array().map(Vec::len), Some(50));

    // Box health.
    let (status, v) = admin(&d, &auth, "GET", "/api/admin/health", "")?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["uplink"], "none");
    assert_eq!(v["paired_devices"], 3);
    assert_eq!(v["seq"], 1);
    assert_eq!(v["open_orders"], 1);
    for k in ["version", "uptime_s", "connected_clients"] {
        assert!(!v[k].is_null(), "{k} missing: {v}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_device_list_shows_presence_and_revoke_cuts_off() -> R {
    // The watcher below reads other devices' presence from the broker, which the device topic
    // ACL forbids: it is off here to look at the broker's retained state.
    let d = Daemon::start_with_env(&[docket_tests::ACL_OFF])?;
    let mgr = d.add_device("mgr-1", "manager", &[])?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let auth = basic_auth(&mgr.id, &mgr.login());
    let device = |id: &str| -> Option<Value> {
        let (_, v) = admin(&d, &auth, "GET", "/api/admin/devices", "").ok()?;
        v["devices"]
            .as_array()?
            .iter()
            .find(|x| x["id"] == id)
            .cloned()
    };
    assert_eq!(device("tablet-1").context("listed")?["online"], false);
    assert!(device("tablet-1")
        .context("listed")?
        .get("secret")
        .is_none());

    let t = Client::connect(d.mqtt, &tablet).await?;
    eventually("the tablet shows online", || {
        device("tablet-1").is_some_and(|v| v["online"] == true)
    })
    .await?;
    assert_eq!(device("mgr-1").context("listed")?["online"], false);

    // The box has taken the presence and dropped the broker's retained copy (rumqttd scans
    // every retained message on every SUBSCRIBE). Retained messages of a first subscription
    // arrive before those of a second: the menu arriving with no presence before it shows none.
    // The watcher announces itself as it connects: wait until the box has taken that too, or
    // its own retained presence may still be in the broker when it subscribes.
    let mut watcher = Client::connect(d.mqtt, &mgr).await?;
    eventually("the watcher shows online", || {
        device("mgr-1").is_some_and(|v| v["online"] == true)
    })
    .await?;
    watcher.subscribe("docket/v1/devices/+/presence").await?;
    watcher.subscribe(docket_core::wire::MENU_TOPIC).await?;
    loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), watcher.recv())
            .await?
            .context("watcher connection closed")?;
        assert!(
            !(m.topic.ends_with("/presence") && m.retain && !m.payload.is_empty()),
            "retained presence still held: {}",
            m.topic
        );
        if m.topic == docket_core::wire::MENU_TOPIC {
            break;
        }
    }
    assert!(device("tablet-1").is_some_and(|v| v["online"] == true));

    // A state change from another origin is refused (a cached Basic login must not be usable
    // by other pages), and changes nothing.
    let revoke = "/api/admin/devices/tablet-1/revoke";
    let r = d.http(
        "POST",
        revoke,
        &[
            ("Authorization", auth.as_str()),
            ("Origin", "http://evil.example"),
        ],
        "",
    )?;
    assert_eq!((r.status, error_code(&r.json()?)), (403, "cross_origin"));
    let r = d.http(
        "POST",
        revoke,
        &[(
            "Authorization",
            basic_auth(&tablet.id, &tablet.login()).as_str(),
        )],
        "",
    )?;
    assert_eq!(r.status, 403);
    assert!(device("tablet-1").context("listed")?["revoked_at"].is_null());

    let (status, v) = admin(&d, &auth, "POST", revoke, "")?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["revoked"], true);
    eventually("the revoked tablet is disconnected", || !t.is_connected()).await?;
    assert!(login_refused(d.mqtt, &tablet.id, &tablet.id, &tablet.login()).await);
    let v = device("tablet-1").context("listed")?;
    assert!(v["revoked_at"].is_u64() && v["online"] == false, "{v}");
    let (status, v) = admin(&d, &auth, "POST", "/api/admin/devices/nope/revoke", "")?;
    assert_eq!((status, error_code(&v)), (404, "unknown_device"));

    // A revoked manager is locked out of the API at once.
    let (status, _) = admin(&d, &auth, "POST", "/api/admin/devices/mgr-1/revoke", "")?;
    assert_eq!(status, 200);
    let (status, _) = admin(&d, &auth, "GET", "/api/admin/devices", "")?;
    assert_eq!(status, 401);
    Ok(())
}

/// `device import`: many devices in one transaction, each usable at once; a malformed, invalid
/// or duplicate line (or an id already in the store) adds none of them and names the line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_adds_all_or_nothing() -> R {
    let d = Daemon::start()?;
    let before = device_count(&d)?;
    let bad = [
        ("{\"id\":\"t-1\",\"role\":\"tablet\"}\nnot json\n", "line 2"),
        (
            "{\"id\":\"t-1\",\"role\":\"tablet\"}\n{\"id\":\"t-2\",\"role\":\"chef\"}\n",
            "line 2",
        ),
        (
            "{\"id\":\"t-1\",\"role\":\"tablet\"}\n\n{\"id\":\"t-1\",\"role\":\"expo\"}\n",
            "line 3",
        ),
        ("{\"id\":\"s-1\",\"role\":\"station\"}\n", "line 1"),
        (
            "{\"id\":\"t-1\",\"role\":\"tablet\",\"secret\":\"00\"}\n",
            "line 1",
        ),
    ];
    for (input, want) in bad {
        let err = d
            .cli_with_stdin(&["device", "import"], input)
            .expect_err(input)
            .to_string();
        assert!(err.contains(want), "{input:?}: {err}");
        assert_eq!(device_count(&d)?, before, "{input:?} added devices");
    }
    let devices: Vec<(String, &str, &[&str])> = (0..300)
        .map(|i| {
            if i % 3 == 0 {
                (format!("imp-{i}"), "station", &["grill"][..])
            } else {
                (format!("imp-{i}"), "tablet", &[][..])
            }
        })
        .collect();
    let creds = d.import_devices(&devices)?;
    assert_eq!(creds.len(), 300);
    assert_eq!(device_count(&d)?, before + 300);
    let mut secrets: Vec<&str> = creds.iter().map(|c| c.secret.as_str()).collect();
    secrets.sort();
    secrets.dedup();
    assert_eq!(secrets.len(), 300, "every device gets its own secret");
    // An id that already exists: the whole import is refused.
    let again =
        "{\"id\":\"imp-new\",\"role\":\"tablet\"}\n{\"id\":\"imp-7\",\"role\":\"tablet\"}\n";
    let err = d
        .cli_with_stdin(&["device", "import"], again)
        .expect_err("duplicate of a stored id")
        .to_string();
    assert!(err.contains("imp-7"), "{err}");
    assert_eq!(device_count(&d)?, before + 300);
    // The imported credentials work at once.
    let last = creds.last().context("one device")?;
    let mut c = Client::connect(d.mqtt, last).await?;
    let r = c
        .command(&CommandBody::place("4", vec![line("fries", 1)]))
        .await?;
    assert!(r.ok, "{r:?}");
    Ok(())
}

/// `docketd device login-key` turns a secret (stdin) into the password the API and the broker
/// take; the secret itself is refused as a password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_key_from_the_cli_is_the_admin_password_and_the_secret_is_not() -> R {
    let d = Daemon::start()?;
    let mgr = d.add_device("mgr-1", "manager", &[])?;
    let key = |input: &str| -> anyhow::Result<(bool, String)> {
        let out = docket_tests::docketd_output(&["device", "login-key"], None, &[], Some(input))?;
        let text = String::from_utf8_lossy(if out.status.success() {
            &out.stdout
        } else {
            &out.stderr
        });
        Ok((out.status.success(), text.trim().to_owned()))
    };
    let (ok, printed) = key(&format!("{}\n", mgr.secret))?;
    assert!(ok, "{printed}");
    assert_eq!(printed, mgr.login());
    let (status, _) = admin(
        &d,
        &basic_auth(&mgr.id, &printed),
        "GET",
        "/api/admin/devices",
        "",
    )?;
    assert_eq!(status, 200);
    let (status, _) = admin(
        &d,
        &basic_auth(&mgr.id, &mgr.secret),
        "GET",
        "/api/admin/devices",
        "",
    )?;
    assert_eq!(status, 401, "the secret is not a password");
    let (ok, said) = key("not a secret")?;
    assert!(!ok && said.contains("64 hex"), "{said}");
    Ok(())
}
