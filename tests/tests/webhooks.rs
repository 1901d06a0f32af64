//! Webhooks against the real daemon and a real HTTP receiver on a socket: a receiver that is
//! down (connection refused, then 500s) while an integration's orders are placed, bumped and
//! completed gets, once back, every status change once, in seq order, signed; other devices'
//! orders are never sent; the test-send endpoint; a kill -9 mid-delivery loses nothing (the
//! event comes again with the same Docket-Event-Id).
//!
//! The backoff cap is 2 s here (`[integration] webhook_backoff_max_secs`, 60 s by default), so
//! an outage of a few seconds spans several retries at the cap. The real five minutes:
//! `WEBHOOK_OUTAGE_SECS=300 cargo test -p docket-tests --test webhooks` holds the receiver down
//! (connection refused) that long after the orders, with the cap at 10 s (`WEBHOOK_BACKOFF_CAP`
//! sets it), before the 500s and the recovery.

use std::sync::atomic::{AtomicU16, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use docket_core::wire::{self, CommandBody, Event};
use docket_tests::{basic_auth, eventually, line, Client, Daemon};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the receiver got: headers (lowercase names) and body, with the status it answered.
#[derive(Debug, Clone)]
struct Got {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    answered: u16,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A webhook receiver: answers `status` (0 = never answers), records every request.
#[derive(Clone)]
struct Receiver {
    port: u16,
    status: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<Got>>>,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Receiver> {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let r = Receiver {
            port: l.local_addr()?.port(),
            status: Arc::new(AtomicU16::new(200)),
            got: Arc::default(),
            task: Arc::default(),
        };
        r.serve(l);
        Ok(r)
    }

    fn serve(&self, l: TcpListener) {
        let me = self.clone();
        let t = tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(me.clone().one(s));
            }
        });
        *lock(&self.task) = Some(t);
    }

    /// Down: nothing listens (connection refused) once this returns.
    async fn down(&self) {
        let t = lock(&self.task).take();
        if let Some(t) = t {
            t.abort();
            // The listener is dropped with the task: wait for that.
            let _ = t.await;
        }
    }

    /// Up again on the same port.
    async fn up(&self) -> anyhow::Result<()> {
        let l = TcpListener::bind(("127.0.0.1", self.port)).await?;
        self.serve(l);
        Ok(())
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/docket", self.port)
    }

    fn got(&self) -> Vec<Got> {
        lock(&self.got).clone()
    }

    async fn one(self, mut s: TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head, body_start) = loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break (String::from_utf8_lossy(&buf[..i]).into_owned(), i + 4);
            }
        };
        let headers: Vec<(String, String)> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[body_start..].to_vec();
        while body.len() < len {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        let status = self.status.load(Relaxed);
        lock(&self.got).push(Got {
            headers,
            body,
            answered: status,
        });
        if status == 0 {
            // Hangs: holds the connection without answering.
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
        let reply =
            format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        let _ = s.write_all(reply.as_bytes()).await;
        let _ = s.shutdown().await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Checks `Docket-Signature: t=…,v1=…` against the body, independently of docketd's code.
fn signed(secret: &[u8], g: &Got) -> bool {
    let Some(sig) = g.header("docket-signature") else {
        return false;
    };
    let Some((t, v1)) = sig
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(format!("{t}.").as_bytes());
    mac.update(&g.body);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let fresh = t.parse::<u64>().is_ok_and(|t| now.abs_diff(t) <= 300);
    fresh && hex::decode(v1).is_ok_and(|v| mac.verify_slice(&v).is_ok())
}

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

/// The integration's events as committed (the box's own log): what must be delivered.
fn committed_for(d: &Daemon, device: &str) -> anyhow::Result<Vec<u64>> {
    let c = rusqlite::Connection::open(d.db_path())?;
    let mut stmt = c.prepare("SELECT payload FROM events ORDER BY seq")?;
    let payloads: Vec<Vec<u8>> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(payloads
        .iter()
        .map(|p| wire::decode::<Event>(p))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|e| e.order.origin.as_ref().is_some_and(|o| o.device == device))
        .map(|e| e.seq)
        .collect())
}

/// The seqs the receiver acknowledged (2xx), in the order it got them.
fn acknowledged(r: &Receiver) -> Vec<u64> {
    r.got()
        .iter()
        .filter(|g| (200..300).contains(&g.answered))
        .filter_map(|g| g.json()["seq"].as_u64())
        .collect()
}

fn place(channel: &str, reference: &str) -> CommandBody {
    CommandBody::PlaceOrder {
        table: "online".into(),
        lines: vec![line("burger-classic", 1)],
        service: Some(docket_core::order::Service::Takeaway),
        server: None,
        channel: Some(channel.into()),
        reference: Some(reference.into()),
    }
}

async fn failures_logged(
    d: &Daemon,
    auth: &str,
    min: usize,
    what: impl Fn(&Value) -> bool,
) -> anyhow::Result<()> {
    eventually(&format!("{min} failed deliveries logged"), || {
        admin(d, auth, "GET", "/api/admin/webhooks/pos/deliveries", "")
            .ok()
            .and_then(|(_, v)| v["deliveries"].as_array().cloned())
            .is_some_and(|l| l.iter().filter(|x| what(x)).count() >= min)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_gets_every_status_change_in_order_once_back() -> anyhow::Result<()> {
    let outage = std::env::var("WEBHOOK_OUTAGE_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    let cap = std::env::var("WEBHOOK_BACKOFF_CAP")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(if outage.is_some() { 10 } else { 2 });
    let r = Receiver::start().await?;
    let mut d = Daemon::start_with(
        &[],
        "test-site",
        &format!("[integration]\nallow_plain_webhooks = true\nwebhook_backoff_max_secs = {cap}\n"),
    )?;
    let (_, health) = d.get("/healthz")?;
    assert!(
        health.contains("allow_plain_webhooks"),
        "a /healthz warning: {health}"
    );
    let pos = d.add_device("pos", "integration", &[])?;
    let mgr = d.add_device("mgr-1", "manager", &[])?;
    let kds = d.add_device("kds-grill", "station", &["grill"])?;
    let expo = d.add_device("expo-1", "expo", &[])?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let auth = basic_auth(&mgr.id, &mgr.login());

    // Bad input changes nothing: not an integration, plain text refused elsewhere, bad URLs.
    let (s, v) = admin(
        &d,
        &auth,
        "PUT",
        "/api/admin/webhooks/tablet-1",
        &format!("{{\"url\":\"{}\"}}", r.url()),
    )?;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("bad_webhook")),
        "{v}"
    );
    let (s, v) = admin(
        &d,
        &auth,
        "PUT",
        "/api/admin/webhooks/pos",
        "{\"url\":\"ftp://x/\"}",
    )?;
    assert_eq!(s, 422, "{v}");
    let (s, v) = admin(&d, &auth, "GET", "/api/admin/webhooks", "")?;
    assert_eq!(
        (s, v["webhooks"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{v}"
    );

    let (s, v) = admin(
        &d,
        &auth,
        "PUT",
        "/api/admin/webhooks/pos",
        &format!("{{\"url\":\"{}\"}}", r.url()),
    )?;
    assert_eq!(s, 200, "{v}");
    let secret = hex::decode(v["secret"].as_str().context("the secret, once")?)?;
    assert_eq!(secret.len(), 32);
    let (_, again) = admin(
        &d,
        &auth,
        "PUT",
        "/api/admin/webhooks/pos",
        &format!("{{\"url\":\"{}\"}}", r.url()),
    )?;
    assert!(
        again.get("secret").is_none(),
        "the secret is shown only on create: {again}"
    );

    // The test button: a signed `test` event, logged.
    let (s, v) = admin(&d, &auth, "POST", "/api/admin/webhooks/pos/test", "")?;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(true)), "{v}");
    let test = r.got().pop().context("the test event")?;
    assert_eq!(test.json()["type"], "test");
    assert!(signed(&secret, &test), "test signature: {test:?}");
    assert_eq!(test.header("docket-event-id"), test.json()["id"].as_str());
    assert!(!signed(&[0; 32], &test), "a wrong secret must not verify");

    // Down: connection refused while the integration's orders move through the kitchen.
    r.down().await;
    let mut p = Client::connect(d.mqtt, &pos).await?;
    let mut k = Client::connect(d.mqtt, &kds).await?;
    let mut e = Client::connect(d.mqtt, &expo).await?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    let a = p.command(&place("online", "A-1")).await?;
    assert!(a.ok, "{a:?}");
    let a_id = a.order_id.clone().context("order id")?;
    let b = p.command(&place("online", "A-2")).await?;
    assert!(b.ok, "{b:?}");
    let other = t
        .command(&CommandBody::place("5", vec![line("burger-classic", 1)]))
        .await?;
    assert!(other.ok, "{other:?}");
    let bump = CommandBody::Bump {
        order_id: a_id.clone(),
        station: "grill".into(),
    };
    assert!(k.command(&bump).await?.ok);
    assert!(
        e.command(&CommandBody::Complete {
            order_id: a_id.clone()
        })
        .await?
        .ok
    );
    failures_logged(&d, &auth, 3, |x| x["error"].is_string()).await?;
    if let Some(secs) = outage {
        // The outage, as long as asked: the receiver stays down (refused) meanwhile.
        let until = std::time::Instant::now() + Duration::from_secs(secs);
        while std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let (_, v) = admin(&d, &auth, "GET", "/api/admin/webhooks/pos/deliveries", "")?;
        let tries = v["deliveries"].as_array().map_or(0, Vec::len);
        eprintln!("receiver down {secs} s (backoff cap {cap} s): {tries} attempts logged");
    }
    let (_, v) = admin(&d, &auth, "GET", "/api/admin/webhooks", "")?;
    assert_eq!(v["webhooks"][0]["state"], "failing", "{v}");

    // Up but failing (500): still held, still retried.
    r.status.store(500, Relaxed);
    r.up().await?;
    failures_logged(&d, &auth, 2, |x| x["http_status"] == 500).await?;
    assert!(acknowledged(&r).is_empty());

    // Back: everything, once, in seq order, signed.
    r.status.store(200, Relaxed);
    let want = committed_for(&d, "pos")?;
    assert_eq!(want.len(), 4, "placed, placed, bumped, completed: {want:?}");
    eventually("every status change delivered", || acknowledged(&r) == want).await?;
    for g in r.got().iter().filter(|g| g.json()["type"] != "test") {
        assert!(signed(&secret, g), "signature: {g:?}");
        let j = g.json();
        assert_eq!(g.header("docket-event-id"), j["id"].as_str());
        assert_eq!(j["id"], format!("test-site-{}", j["seq"]));
        assert_eq!(j["order"]["origin"]["device"], "pos", "{j}");
    }
    let kinds: Vec<String> = r
        .got()
        .iter()
        .filter(|g| g.answered == 200)
        .map(|g| g.json()["type"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "test",
            "order_placed",
            "order_placed",
            "ticket_bumped",
            "order_completed"
        ]
    );
    let (_, v) = admin(&d, &auth, "GET", "/api/admin/webhooks", "")?;
    assert_eq!(v["webhooks"][0]["state"], "ok", "{v}");

    // kill -9 while a delivery is in flight (the receiver holds it unanswered): after the
    // restart it comes again, same id; nothing lost.
    r.status.store(0, Relaxed);
    let seen = r.got().len();
    let c = p.command(&place("online", "A-3")).await?;
    assert!(c.ok, "{c:?}");
    eventually("the delivery is in flight", || r.got().len() > seen).await?;
    let in_flight = r.got()[seen].clone();
    d.kill9();
    r.status.store(200, Relaxed);
    d.restart()?;
    let want = committed_for(&d, "pos")?;
    assert_eq!(want.len(), 5);
    eventually("the in-flight event delivered after the restart", || {
        acknowledged(&r) == want
    })
    .await?;
    let last = r
        .got()
        .into_iter()
        .rev()
        .find(|g| g.answered == 200)
        .context("delivered")?;
    assert_eq!(
        last.header("docket-event-id"),
        in_flight.header("docket-event-id")
    );
    assert!(signed(&secret, &last));

    // Removed: nothing more is sent, and its log goes with it.
    let (s, _) = admin(&d, &auth, "DELETE", "/api/admin/webhooks/pos", "")?;
    assert_eq!(s, 200);
    let (s, v) = admin(&d, &auth, "GET", "/api/admin/webhooks/pos/deliveries", "")?;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("no_webhook")),
        "{v}"
    );
    Ok(())
}

/// A box whose integration `pos` has a webhook to `r` (plain http allowed, retries capped at
/// 1 s); with pos's credentials and a manager's Authorization header.
fn box_with_webhook(r: &Receiver) -> anyhow::Result<(Daemon, docket_tests::Creds, String)> {
    let d = Daemon::start_with(
        &[],
        "test-site",
        "[integration]\nallow_plain_webhooks = true\nwebhook_backoff_max_secs = 1\n",
    )?;
    let pos = d.add_device("pos", "integration", &[])?;
    let mgr = d.add_device("mgr-1", "manager", &[])?;
    let auth = basic_auth(&mgr.id, &mgr.login());
    let hook = format!("{{\"url\":\"{}\"}}", r.url());
    let (s, v) = admin(&d, &auth, "PUT", "/api/admin/webhooks/pos", &hook)?;
    anyhow::ensure!(s == 200, "the webhook was not set: {v}");
    Ok((d, pos, auth))
}

/// The webhook's state as `/api/admin/webhooks` lists it, and its events waiting.
fn listed(d: &Daemon, auth: &str) -> anyhow::Result<(String, u64)> {
    let (_, v) = admin(d, auth, "GET", "/api/admin/webhooks", "")?;
    let w = &v["webhooks"][0];
    Ok((
        w["state"].as_str().unwrap_or("").to_owned(),
        w["waiting_events"].as_u64().unwrap_or(0),
    ))
}

/// A receiver under maintenance: its webhook paused from `/admin` gets nothing more from the
/// answer on, through a restart of the box too; resumed, it gets what waited, in order, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_webhook_sends_nothing_and_once_resumed_sends_what_waited() -> anyhow::Result<()> {
    let r = Receiver::start().await?;
    let (mut d, pos, auth) = box_with_webhook(&r)?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let mut p = Client::connect(d.mqtt, &pos).await?;
    assert!(p.command(&place("online", "P-1")).await?.ok);
    eventually("the first order delivered", || {
        acknowledged(&r) == committed_for(&d, "pos").unwrap_or_default()
    })
    .await?;
    let before = acknowledged(&r);
    assert_eq!(before.len(), 1);

    // Refused, nothing changed: no such webhook, and not a manager.
    let (s, v) = admin(&d, &auth, "POST", "/api/admin/webhooks/nobody/pause", "")?;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("no_webhook")),
        "{v}"
    );
    let not_mgr = basic_auth(&tablet.id, &tablet.login());
    let (s, _) = d.request(
        "POST",
        "/api/admin/webhooks/pos/pause",
        &[("Authorization", &not_mgr)],
        "",
    )?;
    assert!(s == 401 || s == 403, "a tablet paused a webhook: {s}");
    assert_eq!(listed(&d, &auth)?.0, "ok");

    // Paused (twice: the same), then two more orders: nothing is sent.
    for _ in 0..2 {
        let (s, v) = admin(&d, &auth, "POST", "/api/admin/webhooks/pos/pause", "")?;
        assert_eq!(
            (s, v["webhooks"][0]["state"].as_str()),
            (200, Some("paused")),
            "{v}"
        );
    }
    assert!(p.command(&place("online", "P-2")).await?.ok);
    assert!(p.command(&place("online", "P-3")).await?.ok);
    // Unpaused, the webhook looks for new events every 250 ms: six looks' worth.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(acknowledged(&r), before, "sent while paused");
    assert_eq!(listed(&d, &auth)?, ("paused".to_owned(), 2));

    // Still paused after the box restarts.
    d.kill9();
    d.restart()?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        acknowledged(&r),
        before,
        "sent after a restart while paused"
    );
    assert_eq!(listed(&d, &auth)?.0, "paused");

    // Resumed: what waited, in order, once; then the state is ok again.
    let (s, v) = admin(&d, &auth, "POST", "/api/admin/webhooks/pos/resume", "")?;
    assert_eq!(s, 200, "{v}");
    let want = committed_for(&d, "pos")?;
    assert_eq!(want.len(), 3);
    eventually("what waited delivered", || acknowledged(&r) == want).await?;
    eventually("the state ok again", || {
        listed(&d, &auth).is_ok_and(|(s, n)| s == "ok" && n == 0)
    })
    .await?;
    Ok(())
}

/// Revoking an integration cuts its webhook as it cuts its connection: an order of its bumped by
/// the kitchen once its connection is seen cut is never sent (the supervisor's own look, every
/// 5 s, would have let it through).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_integration_s_webhook_stops_with_its_connection() -> anyhow::Result<()> {
    let r = Receiver::start().await?;
    let (d, pos, auth) = box_with_webhook(&r)?;
    let kds = d.add_device("kds-grill", "station", &["grill"])?;
    let mut p = Client::connect(d.mqtt, &pos).await?;
    let mut k = Client::connect(d.mqtt, &kds).await?;
    let placed = p.command(&place("online", "R-1")).await?;
    let order_id = placed.order_id.clone().context("order id")?;
    eventually("the order delivered", || acknowledged(&r).len() == 1).await?;

    let (s, v) = admin(&d, &auth, "POST", "/api/admin/devices/pos/revoke", "")?;
    assert_eq!(s, 200, "{v}");
    eventually("the revoked integration cut off", || !p.is_connected()).await?;
    let bump = CommandBody::Bump {
        order_id,
        station: "grill".into(),
    };
    assert!(k.command(&bump).await?.ok);
    // Running, the webhook looks for new events every 250 ms: six looks' worth.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(acknowledged(&r).len(), 1, "sent for a revoked integration");
    Ok(())
}
