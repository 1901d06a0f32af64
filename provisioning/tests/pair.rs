//! `docket pair` end to end: a device asks for a code (POST /api/pair, as the tablet page
//! does), the technician approves it with `docket pair --code` over HTTPS checked against the
//! site CA, the device collects its credentials and they log in over MQTT.

mod common;

use std::path::Path;
use std::process::Command;

use common::{says, site_init};
use docket_tests::{Creds, Daemon};

/// A new device asks for a code, as the pages do: (6-digit code, poll token).
fn ask(d: &Daemon) -> anyhow::Result<(String, String)> {
    let (code, body) = d.request(
        "POST",
        "/api/pair",
        &[("Content-Type", "application/json")],
        "{}",
    )?;
    assert_eq!(code, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body)?;
    let pin = v["code"].as_str().unwrap_or_default().to_owned();
    let token = v["token"].as_str().unwrap_or_default().to_owned();
    Ok((pin, token))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_prints_qr_and_approves_a_code() -> anyhow::Result<()> {
    let d = Daemon::start()?;
    let mgr = d.add_device("mgr-1", "manager", &[])?;
    let host = format!("{}:{}", d.host, d.https);
    // No site bundle: the box's CA is the one it made itself, given to the CLI as a file.
    let ca = d.dir.path().join("data/tls/site-ca.pem");
    let ca = ca.to_str().unwrap_or_default();
    let docket = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_docket"))
            .args(["pair", "--box", &host, "--ca", ca, "--manager-id", &mgr.id])
            .args(["--manager-secret", &mgr.secret])
            .args(args)
            .output()
    };
    // The device asks for a code.
    let (pin, token) = ask(&d)?;

    // Listing: QR code + URL + the pending code.
    let o = docket(&[])?;
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        text.contains('█') || text.contains('▀'),
        "a QR code: {text}"
    );
    assert!(
        text.contains(&format!("https://{host}/tablet")) && text.contains(&pin),
        "{text}"
    );

    // Wrong manager secret: refused by the box, in words; one that is not a secret at all is
    // refused before anything is sent.
    let wrong = "ab".repeat(32);
    for (secret, says) in [
        (wrong.as_str(), "manager credentials"),
        ("00", "not 64 hex characters"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_docket"))
            .args(["pair", "--box", &host, "--ca", ca, "--manager-id", &mgr.id])
            .args(["--manager-secret", secret])
            .output()?;
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{secret}: {err}");
    }
    // The credentials go only to a box whose certificate is checked, and never over plain HTTP.
    let plain = format!("http://{}:{}", d.host, d.http);
    for (to, extra, says) in [
        (&host, &[][..], "not checked: pass --dir SITE"),
        (&plain, &["--ca", ca][..], "over plain HTTP"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_docket"))
            .args(["pair", "--box", to, "--manager-id", &mgr.id])
            .args(["--manager-secret", &mgr.secret])
            .args(extra)
            .output()?;
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{to}: {err}");
    }

    // Approve; the device collects its credentials and logs in over MQTT.
    let o = docket(&[
        "--code", &pin, "--id", "tablet-9", "--role", "tablet", "--json",
    ])?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, body) = d.request("GET", &format!("/api/pair/{token}"), &[], "")?;
    assert_eq!(code, 200, "{body}");
    let creds: Creds = serde_json::from_str(&body)?;
    assert_eq!(creds.id, "tablet-9");
    let c = docket_tests::Client::connect(d.mqtt, &creds).await?;
    c.disconnect().await;
    Ok(())
}

/// A blank box knows no manager: `site init` makes one in the site directory, the bundle carries
/// it to the box, and `docket pair --dir` approves with it. Only the site's key can add one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_bundle_gives_a_blank_box_its_first_manager() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let laptop = tempfile::tempdir()?;
    let site = laptop.path().join("site");
    let site_s = site.to_str().unwrap_or_default();
    let mut d = Daemon::start()?;
    let host = format!("{}:{}", d.host, d.https);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_docket"))
            .args(args)
            .output()
    };
    let o = run(&site_init(&site, "cafe-3", "Café 3"))?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mode = std::fs::metadata(site.join("site.toml"))?
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "site.toml holds a secret");

    // Before the bundle: the box's certificate is from a CA it made itself, not this site's,
    // so the technician's credentials are not sent.
    let o = run(&["pair", "--box", &host, "--dir", site_s])?;
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not from this site's CA"), "{err}");

    let data = d.dir.path().join("data");
    d.terminate()?;
    std::fs::remove_dir_all(&data)?;
    let data_s = data.to_str().unwrap_or_default();
    let o = run(&["site", "install", "--dir", site_s, "--data-dir", data_s])?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d.restart()?;
    assert!(d
        .log_text()
        .contains("manager devices from the site bundle added"));

    let (pin, token) = ask(&d)?;
    let o = run(&["pair", "--box", &host, "--dir", site_s])?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&pin));
    let o = run(&[
        "pair",
        "--box",
        &host,
        "--dir",
        site_s,
        "--code",
        &pin,
        "--id",
        "kds-1",
        "--role",
        "station",
        "--station",
        "grill",
    ])?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, body) = d.request("GET", &format!("/api/pair/{token}"), &[], "")?;
    assert_eq!(code, 200, "{body}");
    let creds: Creds = serde_json::from_str(&body)?;
    let c = docket_tests::Client::connect(d.mqtt, &creds).await?;

    doctor_sees_the_site(&d, &site, c).await?;

    // Neither flag pair nor the directory: told what to pass.
    let o = run(&["pair", "--box", &host])?;
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--dir"));
    Ok(())
}

/// Doctor with the site directory once `c` (a screen, kds-1) is paired: an MQTT login as the
/// technician and device presence; managers the box does not know or revoked, in words; the
/// screen going away.
async fn doctor_sees_the_site(
    d: &Daemon,
    site: &Path,
    c: docket_tests::Client,
) -> anyhow::Result<()> {
    let site_s = site.to_str().unwrap_or_default();
    let host = format!("{}:{}", d.host, d.https);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_docket"))
            .args(args)
            .output()
    };
    let mqtt = d.mqtts.to_string();
    let site_ca = site.join("site-ca.pem");
    let site_ca = site_ca.to_str().unwrap_or_default();
    let doctor = |extra: &[&str]| -> anyhow::Result<(bool, serde_json::Value)> {
        let mut args = vec!["doctor", &host, "--mqtt-port", &mqtt, "--json"];
        args.extend_from_slice(extra);
        let o = run(&args)?;
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
        Ok((o.status.success(), v))
    };
    let (green, v) = doctor(&["--dir", site_s])?;
    assert!(green, "{v}");
    assert!(
        says(&v, "broker").contains("MQTT login as technician accepted"),
        "{v}"
    );
    assert!(says(&v, "tls").contains("HTTPS verified"), "{v}");
    assert!(
        says(&v, "devices").contains("all 1 tablets and screens online"),
        "{v}"
    );
    assert!(says(&v, "version").starts_with("true"), "{v}");
    // Without credentials: the port only, presence not checked (and said so).
    let (green, v) = doctor(&[])?;
    assert!(green, "{v}");
    assert!(says(&v, "devices").contains("not checked"), "{v}");
    // A manager the box does not know: red, in words.
    let (green, v) = doctor(&[
        "--ca",
        site_ca,
        "--manager-id",
        "nobody",
        "--manager-secret",
        &"00".repeat(32),
    ])?;
    assert!(!green);
    assert!(says(&v, "broker").contains("refused the login"), "{v}");
    assert!(
        says(&v, "broker").contains("does not know this manager"),
        "{v}"
    );
    // A revoked manager: red, and said so (the box's CONNACK tells the two apart).
    // (The bundle made this data directory cafe-3's: the CLI is told so.)
    let cli = |args: &[&str]| -> anyhow::Result<String> {
        let o = std::process::Command::new(docket_tests::docketd_bin())
            .args(args)
            .arg("--config")
            .arg(&d.config)
            .env("DOCKET_SITE_ID", "cafe-3")
            .output()?;
        anyhow::ensure!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        Ok(String::from_utf8(o.stdout)?)
    };
    let gone: docket_tests::Creds = serde_json::from_str(
        cli(&["device", "add", "--id", "mgr-gone", "--role", "manager"])?.trim(),
    )?;
    cli(&["device", "revoke", "--id", "mgr-gone"])?;
    let (green, v) = doctor(&[
        "--ca",
        site_ca,
        "--manager-id",
        "mgr-gone",
        "--manager-secret",
        &gone.secret,
    ])?;
    assert!(!green);
    assert!(says(&v, "broker").contains("was revoked"), "{v}");
    // The screen goes away: red, naming it.
    c.disconnect().await;
    let deadline = std::time::Instant::now() + docket_tests::DEADLINE;
    loop {
        let (green, v) = doctor(&["--dir", site_s])?;
        if !green && says(&v, "devices").contains("offline: kds-1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kds-1 never shown offline: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(())
}
