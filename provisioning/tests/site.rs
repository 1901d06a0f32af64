//! End to end: the `docket` CLI against a real docketd (tests/src/lib.rs `Daemon`), over HTTPS
//! checked against the site CA.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{docket, ok, s, says, site_init};
use docket_tests::Daemon;

fn health(d: &Daemon) -> serde_json::Value {
    let (code, body) = d.get("/healthz").expect("healthz");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("healthz json")
}

/// The box's HTTPS address, as a technician gives it.
fn https(d: &Daemon) -> String {
    format!("{}:{}", d.host, d.https)
}

/// `docket doctor --json` on the box's HTTPS and MQTT-over-TLS ports, with `extra` flags.
fn doctor_with(d: &Daemon, extra: &[&str]) -> (bool, serde_json::Value) {
    let (host, mqtts) = (https(d), d.mqtts.to_string());
    let mut args = vec!["doctor", &host, "--mqtt-port", &mqtts, "--json"];
    args.extend_from_slice(extra);
    let o = docket(&args);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| {
        panic!(
            "doctor json: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert_eq!(
        o.status.success(),
        v["green"] == true,
        "exit code agrees with green"
    );
    (o.status.success(), v)
}

/// Doctor without a site: the box's certificate is read, not checked.
fn doctor(d: &Daemon) -> (bool, serde_json::Value) {
    doctor_with(d, &[])
}

/// Doctor without a site is red, and says `words` somewhere.
fn doctor_red(d: &Daemon, words: &str) {
    let (green, v) = doctor(d);
    assert!(!green);
    assert!(v.to_string().contains(words), "{v}");
}

#[test]
fn site_bundle_install_refuse_push_and_doctor() -> anyhow::Result<()> {
    let laptop = tempfile::tempdir()?;
    let site = laptop.path().join("site");
    let other = laptop.path().join("other");
    let mut d = Daemon::start()?;
    let data = d.dir.path().join("data");

    // No bundle yet: the config file rules and doctor is red saying so.
    assert_eq!(health(&d)["site"]["state"], "none");
    doctor_red(&d, "no site bundle");

    init_then_refused_before_the_bundle(&d, &site, &other)?;
    first_install(&mut d, &site, &data)?;
    let old = push_a_newer_bundle(&mut d, &site, &data)?;
    refuse_other_keys_and_tampering(&mut d, &site, &other, &data, &old)?;

    // The box down: doctor is red and says what to do.
    d.terminate()?;
    doctor_red(&d, "cannot reach the box");
    Ok(())
}

/// `site init`, and what is refused while the box has no bundle of this site.
fn init_then_refused_before_the_bundle(
    d: &Daemon,
    site: &Path,
    other: &Path,
) -> anyhow::Result<()> {
    // site init: key files, 0600 private key; a second init refuses to overwrite.
    ok(&site_init(site, "cafe-7", "Café Seven"));
    let mode = std::fs::metadata(site.join("site.key"))?
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let again = docket(&site_init(site, "cafe-7", "x"));
    assert!(!again.status.success());
    let bad = docket(&site_init(other, "Bad Id", "x"));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not valid"));

    // The box has no bundle yet, so its certificate is from a CA it made itself: doctor with the
    // site says so in words (and sends the manager's credentials nowhere), push is refused
    // before anything is sent, and an http:// address is refused for the bundle outright.
    let (green, v) = doctor_with(d, &["--dir", s(site)]);
    assert!(!green);
    let tls = says(&v, "tls");
    assert!(
        tls.starts_with("false") && tls.contains("not from this site's CA: fingerprint"),
        "{v}"
    );
    assert!(tls.contains("made its CA itself"), "{v}");
    assert!(says(&v, "devices").contains("not sent"), "{v}");
    assert!(says(&v, "broker").contains("login not tried"), "{v}");
    let o = docket(&["site", "push", "--dir", s(site), &https(d)]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("not from this site's CA: fingerprint"),
        "{err}"
    );
    let o = docket(&[
        "site",
        "push",
        "--dir",
        s(site),
        &format!("http://{}:{}", d.host, d.http),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("refusing to send the site bundle over plain HTTP") && err.contains("https"),
        "{err}"
    );
    Ok(())
}

/// The first bundle installed into a fresh data directory, and doctor on it.
fn first_install(d: &mut Daemon, site: &Path, data: &Path) -> anyhow::Result<()> {
    // First install into a fresh box's data dir (as `docket image configure` leaves it: no store
    // yet, since the store is bound to its site id); docketd applies it at start.
    d.terminate()?;
    std::fs::remove_dir_all(data)?;
    ok(&["site", "install", "--dir", s(site), "--data-dir", s(data)]);
    // Every file that holds a secret is its owner's only, on the laptop and on the box; the
    // site directory too.
    for f in [
        site.join("site.key"),
        site.join("site.toml"),
        site.join("site-bundle.json"),
        data.join("site-bundle.json"),
    ] {
        let mode = std::fs::metadata(&f)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", f.display());
    }
    assert_eq!(std::fs::metadata(site)?.permissions().mode() & 0o777, 0o700);
    d.restart()?;
    let h = health(d);
    assert_eq!(h["site"]["state"], "applied", "{h}");
    assert_eq!(h["site"]["serial"], 1);
    assert_eq!(h["site_id"], "cafe-7");
    let (green, v) = doctor(d);
    assert!(green, "{v}");
    assert!(says(&v, "tls").contains("not checked"), "{v}");
    // With the site: the box's certificate is checked against the site CA (the bundle's).
    let (green, v) = doctor_with(d, &["--dir", s(site)]);
    assert!(green, "{v}");
    let tls = says(&v, "tls");
    assert!(
        tls.starts_with("true") && tls.contains("HTTPS verified against this site's CA"),
        "{v}"
    );
    assert!(tls.contains("valid until"), "{v}");
    // The harness turns plain MQTT and HTTP on: warned, and doctor stays green.
    assert!(v["warnings"].to_string().contains("mqtt.plain"), "{v}");
    // Doctor given plain HTTP reads /healthz only to say it is the landing page.
    let o = docket(&["doctor", &format!("http://{}:{}", d.host, d.http)]);
    assert!(!o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("landing page"), "{text}");
    Ok(())
}

/// A newer bundle pushed and applied at restart; returns the stored bundle before it (serial 1).
fn push_a_newer_bundle(d: &mut Daemon, site: &Path, data: &Path) -> anyhow::Result<String> {
    // Push a newer bundle (with an uplink nobody answers on): stored, applied after restart.
    ok(&[
        "uplink",
        "set",
        "--dir",
        s(site),
        "--redis",
        "rediss://127.0.0.1:1",
    ]);
    let out = ok(&["site", "push", "--dir", s(site), &https(d)]);
    assert!(out.contains("serial 2"), "{out}");
    assert_eq!(health(d)["site"]["pending_serial"], 2);
    // Replaying an older (validly signed) bundle is refused with 409.
    let old = std::fs::read_to_string(data.join("site-bundle.json"))?;
    // docketd stored the pushed bundle for its owner only as well.
    let mode = std::fs::metadata(data.join("site-bundle.json"))?
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    ok(&["site", "bundle", "--dir", s(site)]); // serial 3 on the laptop only
    let (code, body) = d.request("POST", "/site/bundle", &[], &old)?;
    assert_eq!(code, 409, "{body}");
    d.restart()?;
    assert_eq!(health(d)["site"]["serial"], 2);
    // The uplink from the bundle is in use, and down: doctor says so in words.
    doctor_red(d, "uplink redis is DOWN");
    Ok(old)
}

/// Bundles the box must refuse: another site's key, a tampered one, a CA key not its CA's.
fn refuse_other_keys_and_tampering(
    d: &mut Daemon,
    site: &Path,
    other: &Path,
    data: &Path,
    old: &str,
) -> anyhow::Result<()> {
    // A bundle signed by another site's key is refused: the CLI does not send it to a box whose
    // certificate is not from that site's CA; told to trust the box's CA by its fingerprint, it
    // sends, and the box answers 403 (not its pinned key); and at start.
    ok(&site_init(other, "evil", "Evil"));
    let o = docket(&["site", "push", "--dir", s(other), &https(d)]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not from this site's CA"), "{err}");
    let site_ca = std::fs::read_to_string(site.join("site-ca.pem"))?;
    let fp = docket_trust::ca::fingerprint_text(&docket_trust::ca::fingerprint(
        &docket_trust::ca::der_of(&site_ca)?,
    ));
    let o = docket(&[
        "site",
        "push",
        "--dir",
        s(other),
        "--box-ca",
        &fp,
        &https(d),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("403") && err.contains("pinned"), "{err}");
    ok(&["site", "bundle", "--dir", s(other)]);
    std::fs::copy(
        other.join("site-bundle.json"),
        data.join("site-bundle.json"),
    )?;
    d.restart()?;
    let h = health(d);
    assert_eq!(h["site"]["state"], "refused", "{h}");
    assert_eq!(
        h["site_id"], "cafe-7",
        "the refused bundle is not applied; the last good one rules"
    );
    assert_eq!(h["site"]["serial"], 2);
    assert!(d.log_text().contains("site bundle REFUSED"));
    doctor_red(d, "REFUSED");

    // A tampered bundle (valid signature, content changed) is refused too.
    let mut t: serde_json::Value = serde_json::from_str(old)?;
    t["bundle"]["site_id"] = "cafe-8".into();
    t["bundle"]["serial"] = 99.into();
    let (code, body) = d.request("POST", "/site/bundle", &[], &t.to_string())?;
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("tampered"), "{body}");

    // A bundle signed by this site's key whose CA key is not its CA's (the CLI would not sign
    // one): refused at once, with the reason, not at the next start.
    let key =
        docket_core::bundle::parse_signing_key(&std::fs::read_to_string(site.join("site.key"))?)?;
    let mut b: docket_core::bundle::Bundle = serde_json::from_value(t["bundle"].clone())?;
    b.site_id = "cafe-7".into();
    let stranger = docket_trust::ca::new_site_ca("x", "x")?;
    if let Some(tls) = b.tls.as_mut() {
        tls.ca_key_pem = stranger.key_pem;
    }
    let bad = serde_json::to_string(&docket_core::bundle::sign(b, &key))?;
    let (code, body) = d.request("POST", "/site/bundle", &[], &bad)?;
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("site CA") && body.contains("does not belong"),
        "{body}"
    );
    Ok(())
}

/// With `restart_on_site_push` (the box's config), a pushed bundle is stored, answered, and
/// docketd stops cleanly (exit 0) for its service manager to start it again with the bundle;
/// on the box systemd does that (`tests/tests/image.rs` pushes to the booted image).
#[test]
fn a_push_restarts_docketd_when_it_is_configured_to() -> anyhow::Result<()> {
    let laptop = tempfile::tempdir()?;
    let site = laptop.path().join("site");
    let mut d = Daemon::start_with_env(&[("DOCKET_RESTART_ON_SITE_PUSH", "true")])?;
    let data = d.dir.path().join("data");
    ok(&site_init(&site, "cafe-9", "Nine"));
    d.terminate()?;
    std::fs::remove_dir_all(&data)?;
    ok(&["site", "install", "--dir", s(&site), "--data-dir", s(&data)]);
    d.restart()?;
    assert_eq!(health(&d)["site"]["serial"], 1);

    let out = ok(&["site", "push", "--dir", s(&site), &https(&d), "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim())?;
    assert_eq!(v["applies"], "now", "{out}");
    let status = d.wait_exit()?;
    assert!(status.success(), "docketd exited with {status}");
    assert!(d.log_text().contains("a pushed site bundle is stored"));
    // What the service manager does next: the new bundle is applied.
    d.restart()?;
    let h = health(&d);
    assert_eq!(h["site"]["serial"], 2, "{h}");
    assert!(h["site"].get("pending_serial").is_none(), "{h}");
    Ok(())
}
