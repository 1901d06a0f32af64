//! TLS on the LAN against the real daemon: HTTPS and MQTT over TLS with the box's site CA as a
//! tablet's only trust, plain HTTP as a landing page and redirects, plain MQTT off unless the
//! site turns it on (and then a warning).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::Context;
use docket_core::wire::CommandBody;
use docket_tests::secure::{https_request, trusting};
use docket_tests::{line, Client, Daemon};
use sha2::Digest;

type R = anyhow::Result<()>;

/// The box's defaults: no plain MQTT, plain HTTP only the landing page.
fn secure_daemon() -> anyhow::Result<Daemon> {
    Daemon::start_with_env(&[
        ("DOCKET_MQTT_PLAIN", "false"),
        ("DOCKET_HTTP_PLAIN", "false"),
    ])
}

fn fingerprint_of(ca_pem: &str) -> anyhow::Result<String> {
    let der = docket_appliance::tls::ca::der_of(ca_pem)?;
    Ok(docket_appliance::tls::ca::fingerprint_text(
        &sha2::Sha256::digest(&der).into(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_mqtts_are_served_under_the_site_ca_and_nothing_else_is_trusted() -> R {
    let d = secure_daemon()?;
    let ca = d.site_ca_pem()?;

    // HTTPS, checked against the site CA for the box's names.
    let h = d.https("GET", "/healthz", &[], "")?;
    assert_eq!(h.status, 200, "{}", h.body);
    let v = h.json()?;
    assert_eq!(v["tls"]["ca"], "box");
    assert_eq!(v["tls"]["ca_sha256"], fingerprint_of(&ca)?.as_str());
    assert_eq!(v["warnings"], serde_json::json!([]));
    for l in ["mqtts", "mqtts_v5", "websocket_tls"] {
        assert_eq!(v["listeners"][l]["ok"], true, "{l}: {v}");
    }
    assert!(
        v["listeners"].get("mqtt").is_none(),
        "plain MQTT is off: {v}"
    );
    let addr = (d.host, d.https).into();
    for name in ["127.0.0.1", "localhost", "docket.local"] {
        let r = https_request(trusting(&ca)?, name, addr, "GET", "/tablet", &[], "")?;
        assert_eq!(r.status, 200, "{name}");
    }
    // Not a name the box has; not this site's CA; not a CA at all.
    let err = https_request(trusting(&ca)?, "evil.example", addr, "GET", "/", &[], "")
        .expect_err("a name the certificate does not carry");
    assert!(format!("{err:#}").contains("certificate"), "{err:#}");
    let other = docket_appliance::tls::ca::new_site_ca("other", "Other")?;
    let err = https_request(
        trusting(&other.cert_pem)?,
        "docket.local",
        addr,
        "GET",
        "/",
        &[],
        "",
    )
    .expect_err("another site's CA");
    assert!(format!("{err:#}").contains("certificate"), "{err:#}");

    // MQTT over TLS: a tablet logs in and places an order.
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let mut c = Client::connect_tls("127.0.0.1", d.mqtts, &tablet, d.trusting_site_ca()?).await?;
    let r = c
        .command(&CommandBody::place("4", vec![line("burger-classic", 1)]))
        .await?;
    assert!(r.ok, "{r:?}");
    assert!(
        Client::connect_tls("127.0.0.1", d.mqtts, &tablet, trusting(&other.cert_pem)?)
            .await
            .is_err(),
        "a client that trusts another CA does not log in"
    );

    // Plain MQTT is not listening; plain MQTT bytes on the TLS port get no CONNACK.
    assert!(
        TcpStream::connect((d.host, d.mqtt)).is_err(),
        "plain MQTT port open"
    );
    let mut s = TcpStream::connect((d.host, d.mqtts))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(&docket_tests::raw::connect(
        4,
        &[],
        "tablet-1",
        None,
        "tablet-1",
        &tablet.login(),
    ))?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    assert!(
        n == 0 || buf[0] != 0x20,
        "a CONNACK to plain text on the TLS port"
    );
    Ok(())
}

#[test]
fn plain_http_is_a_landing_page_and_redirects() -> R {
    let d = secure_daemon()?;
    let ca = d.site_ca_pem()?;
    let fp = fingerprint_of(&ca)?;

    let landing = d.http("GET", "/", &[], "")?;
    assert_eq!(landing.status, 200);
    for pair in fp.split(':').take(8) {
        assert!(landing.body.contains(pair), "fingerprint {fp} on the page");
    }
    assert!(landing.body.contains("/site-ca.crt"));
    assert!(landing.body.contains("<svg"), "QR codes");
    assert!(
        landing.body.contains(&format!(":{}/", d.https)),
        "a link to HTTPS"
    );

    let der = d.http("HEAD", "/site-ca.crt", &[], "")?;
    assert_eq!(der.status, 200);
    assert_eq!(
        der.header("content-type"),
        Some("application/x-x509-ca-cert")
    );
    let len = docket_appliance::tls::ca::der_of(&ca)?.len().to_string();
    assert_eq!(der.header("content-length"), Some(len.as_str()));
    let pem = d.http("GET", "/site-ca.pem", &[], "")?;
    assert_eq!(pem.body, ca);

    // Everything else goes to HTTPS; nothing that may carry a secret is taken.
    let r = d.http("GET", "/admin?x=1", &[], "")?;
    assert_eq!(r.status, 308);
    let to = r.header("location").context("location")?;
    assert!(
        to.starts_with("https://") && to.ends_with(&format!(":{}/admin?x=1", d.https)),
        "{to}"
    );
    let r = d.http(
        "POST",
        "/api/pair",
        &[("Content-Type", "application/json")],
        "{}",
    )?;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("HTTPS"));
    let r = d.http("POST", "/site/bundle", &[], "{}")?;
    assert_eq!(r.status, 403);
    let pending = d.https("GET", "/api/pair/pending", &[], "")?;
    assert_ne!(pending.status, 200, "the admin API needs a manager");
    let db = rusqlite::Connection::open(d.db_path())?;
    let n: i64 = db.query_row("SELECT COUNT(*) FROM pairings", [], |r| r.get(0))?;
    assert_eq!(n, 0, "a plain-HTTP pairing request was stored");

    // A Host header cannot steer the redirect anywhere else.
    let r = d.http("GET", "/kds", &[("Host", "evil.example/x")], "")?;
    assert_eq!(r.status, 308);
    assert!(
        !r.header("location").unwrap_or("").contains("evil"),
        "{}",
        r.head
    );

    // Health stays readable on plain HTTP (monitoring), with nothing secret in it.
    let h = d.http("GET", "/healthz", &[], "")?;
    assert_eq!(h.status, 200);
    Ok(())
}

#[test]
fn plain_text_on_the_lan_is_on_only_when_the_site_says_so_and_then_warned() -> R {
    let d = Daemon::start()?; // the harness turns both on
    let v = d.https("GET", "/healthz", &[], "")?.json()?;
    let w = v["warnings"].as_array().context("warnings")?;
    assert_eq!(w.len(), 2, "{v}");
    assert!(w[0].as_str().unwrap_or("").contains("mqtt.plain"), "{v}");
    assert!(w[1].as_str().unwrap_or("").contains("http.plain"), "{v}");
    assert_eq!(v["listeners"]["mqtt"]["ok"], true);
    assert!(d.log_text().contains("plain MQTT is on"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_over_https_cuts_a_device_on_mqtt_over_tls_at_once() -> R {
    let d = secure_daemon()?;
    let manager = d.add_device("mgr-1", "manager", &[])?;
    let grill = d.add_device("kds-grill", "station", &["grill"])?;
    let mut kds = Client::connect_tls("127.0.0.1", d.mqtts, &grill, d.trusting_site_ca()?).await?;
    kds.subscribe(docket_core::wire::EVENTS_TOPIC).await?;
    let auth = docket_tests::basic_auth(&manager.id, &manager.login());
    let t = std::time::Instant::now();
    let r = d.https(
        "POST",
        "/api/admin/devices/kds-grill/revoke",
        &[("Authorization", &auth)],
        "",
    )?;
    assert_eq!(r.status, 200, "{}", r.body);
    docket_tests::eventually("the revoked screen's TLS connection is cut", || {
        !kds.is_connected()
    })
    .await?;
    println!("cut {:?} after the revoke", t.elapsed());
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "cut after {:?}",
        t.elapsed()
    );
    let again = Client::connect_tls("127.0.0.1", d.mqtts, &grill, d.trusting_site_ca()?).await;
    let err = again.err().context("a revoked device logged in again")?;
    assert!(format!("{err:#}").contains("refused"), "{err:#}");
    Ok(())
}

#[test]
fn a_manager_session_opens_only_over_https() -> R {
    let d = Daemon::start()?; // plain HTTP serves the app here
    let m = d.add_device("mgr-1", "manager", &[])?;
    let auth = docket_tests::basic_auth(&m.id, &m.login());
    let plain = d.http("POST", "/api/session", &[("Authorization", &auth)], "")?;
    assert_eq!(plain.status, 403, "{}", plain.body);
    assert!(plain.body.contains("https_required"), "{}", plain.body);
    assert!(plain.header("set-cookie").is_none());
    let secure = d.https("POST", "/api/session", &[("Authorization", &auth)], "")?;
    assert_eq!(secure.status, 200, "{}", secure.body);
    let cookie = secure.header("set-cookie").context("cookie")?;
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    Ok(())
}
