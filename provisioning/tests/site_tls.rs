//! The site's TLS material on the laptop, through the `docket` CLI (no box): the site CA made by
//! `site init` (or, for an older site, by the first bundle) and never replaced, its fingerprint
//! shown by `site ca`, a site's own certificate recorded by `site tls`, and all of it in the
//! signed bundle.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{docket, ok, s, site_init};
use docket_trust::ca;

fn json(args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(ok(&a).trim()).expect("json output")
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("file").permissions().mode() & 0o777
}

/// The bundle the site directory's last command signed.
fn signed_tls(site: &Path) -> serde_json::Value {
    let b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.join("site-bundle.json")).expect("ok"))
            .expect("ok");
    b["bundle"]["tls"].clone()
}

fn init(site: &Path) -> serde_json::Value {
    json(&site_init(site, "cafe-7", "Café Seven"))
}

/// A laptop's directory with a site made by `site init` in it: (the laptop, the site).
fn laptop_with_site() -> (tempfile::TempDir, PathBuf) {
    let laptop = tempfile::tempdir().expect("ok");
    let site = laptop.path().join("site");
    init(&site);
    (laptop, site)
}

/// The arguments of `docket site tls` recording `chain` and `key` for `site`.
fn site_tls<'a>(site: &'a Path, chain: &'a Path, key: &'a Path) -> [&'a str; 8] {
    let (site, chain, key) = (s(site), s(chain), s(key));
    ["site", "tls", "--dir", site, "--cert", chain, "--key", key]
}

/// The site CA's certificate in the site directory.
fn read_ca(site: &Path) -> String {
    std::fs::read_to_string(site.join("site-ca.pem")).expect("ok")
}

#[test]
fn site_init_makes_the_ca_once_and_every_bundle_carries_it() {
    let laptop = tempfile::tempdir().expect("ok");
    let site = laptop.path().join("site");
    let v = init(&site);
    let ca_pem = read_ca(&site);
    let fp = ca::fingerprint_text(&ca::fingerprint(&ca::der_of(&ca_pem).expect("ok")));
    assert_eq!(v["ca_fingerprint"], fp.as_str(), "{v}");
    assert_eq!(mode(&site.join("site-ca.key")), 0o600);
    assert_eq!(mode(&site.join("site-ca.pem")), 0o644);

    // `site ca` shows the same fingerprint, and keeps the CA.
    let v = json(&["site", "ca", "--dir", s(&site)]);
    assert_eq!(
        (v["fingerprint"].as_str(), v["made"].as_bool()),
        (Some(fp.as_str()), Some(false))
    );
    let human = ok(&["site", "ca", "--dir", s(&site)]);
    assert!(
        human.contains(&fp) && human.contains("Café Seven"),
        "{human}"
    );

    // Every bundle carries the CA (its key too), signed; the CA is still the one made at init.
    ok(&["site", "bundle", "--dir", s(&site)]);
    ok(&["site", "bundle", "--dir", s(&site)]);
    let tls = signed_tls(&site);
    assert_eq!(tls["ca_cert_pem"], ca_pem.as_str());
    assert_eq!(
        tls["ca_key_pem"],
        std::fs::read_to_string(site.join("site-ca.key"))
            .expect("ok")
            .as_str()
    );
    assert!(tls.get("cert_pem").is_none(), "{tls}");
    assert_eq!(mode(&site.join("site-bundle.json")), 0o600);

    // A second init refuses, and leaves the CA alone.
    assert!(!docket(&site_init(&site, "cafe-7", "x")).status.success());
    assert_eq!(read_ca(&site), ca_pem);
}

#[test]
fn a_site_made_before_site_cas_gets_one_with_its_next_bundle_and_keeps_it() {
    let (_laptop, site) = laptop_with_site();
    std::fs::remove_file(site.join("site-ca.pem")).expect("ok");
    std::fs::remove_file(site.join("site-ca.key")).expect("ok");

    let o = docket(&["site", "bundle", "--dir", s(&site)]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("made this site's CA"), "{err}");
    let ca_pem = read_ca(&site);
    assert_eq!(mode(&site.join("site-ca.key")), 0o600);
    assert_eq!(signed_tls(&site)["ca_cert_pem"], ca_pem.as_str());

    let o = docket(&["site", "bundle", "--dir", s(&site)]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("made"));
    assert_eq!(read_ca(&site), ca_pem);

    // Half a CA (the key lost): refused, never silently replaced.
    std::fs::remove_file(site.join("site-ca.key")).expect("ok");
    let o = docket(&["site", "bundle", "--dir", s(&site)]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("restore it from your backup"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(read_ca(&site), ca_pem);
}

#[test]
fn a_sites_own_certificate_is_checked_carried_and_cleared() {
    let (laptop, site) = laptop_with_site();
    let public = ca::new_site_ca("public", "A public CA").expect("ok");
    let one = ca::issue_server(&public, &["pos.cafe-7.example".into()], &[]).expect("ok");
    let two = ca::issue_server(&public, &["pos.cafe-7.example".into()], &[]).expect("ok");
    let write = |name: &str, text: &str| {
        let p = laptop.path().join(name);
        std::fs::write(&p, text).expect("ok");
        p
    };
    let (chain, key, other_key) = (
        write("chain.pem", &one.chain_pem),
        write("key.pem", &one.key_pem),
        write("other.pem", &two.key_pem),
    );

    let o = docket(&site_tls(&site, &chain, &other_key));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("own key does not belong"), "{err}");
    let o = docket(&["site", "tls", "--dir", s(&site), "--cert", s(&chain)]);
    assert!(!o.status.success(), "a certificate without its key");

    let v = json(&site_tls(&site, &chain, &key));
    assert_eq!(v["names"], serde_json::json!(["pos.cafe-7.example"]), "{v}");
    assert_eq!(mode(&site.join("own-cert.key")), 0o600);
    ok(&["site", "bundle", "--dir", s(&site)]);
    let tls = signed_tls(&site);
    assert_eq!(tls["cert_pem"], one.chain_pem.as_str());
    assert_eq!(tls["key_pem"], one.key_pem.as_str());
    let v = json(&["site", "ca", "--dir", s(&site)]);
    assert_eq!(v["own_cert"]["names"][0], "pos.cafe-7.example", "{v}");

    ok(&["site", "tls", "--dir", s(&site), "--clear"]);
    assert!(!site.join("own-cert.key").exists());
    ok(&["site", "bundle", "--dir", s(&site)]);
    assert!(signed_tls(&site).get("cert_pem").is_none());
}
