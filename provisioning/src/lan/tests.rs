//! The HTTPS link against a small TLS server in this process that serves a certificate from a
//! site CA, as the box does.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use docket_trust::ca::{self, SiteCa};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};

use super::*;

/// Serves `200 ok` over TLS with `chain_pem`/`key_pem` on 127.0.0.1; returns the port.
fn serve(chain_pem: &str, key_pem: &str) -> u16 {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let cfg = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for sock in l.incoming().flatten() {
            let conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
            let mut s = rustls::StreamOwned::new(conn, sock);
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match s.read(&mut b) {
                    Ok(1) => head.push(b[0]),
                    _ => break,
                }
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            let _ = s.flush();
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    });
    port
}

/// A box: its site CA, and a server with a certificate from it for `names` (and 127.0.0.1
/// when `with_ip`).
fn a_box(with_ip: bool) -> (SiteCa, u16) {
    let site_ca = ca::new_site_ca("cafe-1", "Café One").unwrap();
    let ips = if with_ip {
        vec!["127.0.0.1".parse().unwrap()]
    } else {
        vec![]
    };
    let issued = ca::issue_server(&site_ca, &["docket.local".into()], &ips).unwrap();
    let port = serve(&issued.chain_pem, &issued.key_pem);
    (site_ca, port)
}

fn trusting(dir: &tempfile::TempDir, pem: &str) -> Trust {
    let p = dir.path().join("ca.pem");
    std::fs::write(&p, pem).unwrap();
    Trust::of_file(&p).unwrap()
}

fn fp(pem: &str) -> String {
    ca::fingerprint_text(&ca::fingerprint(&ca::der_of(pem).unwrap()))
}

fn get(link: &Link) -> Result<String, String> {
    link.public()
        .get(&link.url("/healthz"))
        .call()
        .map(|r| r.into_string().unwrap())
        .map_err(|e| link.failure(&e))
}

#[test]
fn addresses_mean_https_unless_they_say_http() {
    let a = Addr::parse("192.168.1.20").unwrap();
    assert_eq!((a.https, a.base()), (true, "https://192.168.1.20".into()));
    let a = Addr::parse("docket.local:8443").unwrap();
    assert_eq!((a.host.as_str(), a.port), ("docket.local", Some(8443)));
    let a = Addr::parse("https://[fd00::2]:8443/").unwrap();
    assert_eq!(
        (a.host.as_str(), a.base()),
        ("fd00::2", "https://[fd00::2]:8443".into())
    );
    let a = Addr::parse("http://box:8080").unwrap();
    assert_eq!((a.https, a.plain().base()), (false, "http://box".into()));
    for bad in [
        "ftp://box",
        "box/api",
        "box:http",
        "https://",
        "https://u@box",
    ] {
        assert!(Addr::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_box_is_trusted_by_its_site_ca_only_and_told_apart_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let (site_ca, port) = a_box(true);
    let addr = Addr::parse(&format!("127.0.0.1:{port}")).unwrap();

    // Its own site CA: verified, and what it presented is kept (for doctor's expiry line).
    let link = Link::new(addr.clone(), trusting(&dir, &site_ca.cert_pem)).unwrap();
    assert_eq!(get(&link).unwrap(), "ok");
    let seen = link.seen().unwrap();
    assert!(seen.checked && seen.error.is_none());
    assert_eq!(seen.chain.len(), 2, "the box's certificate and its CA");
    assert!(link.secret("the bundle").is_ok());

    // Another site's CA: refused, in words, with the box's CA's fingerprint and ours.
    let other = ca::new_site_ca("other", "Other").unwrap();
    let link = Link::new(addr.clone(), trusting(&dir, &other.cert_pem)).unwrap();
    let words = get(&link).unwrap_err();
    assert!(
        words.contains(&format!(
            "the box's certificate is not from this site's CA: fingerprint {}",
            fp(&site_ca.cert_pem)
        )),
        "{words}"
    );
    assert!(words.contains(&fp(&other.cert_pem)), "{words}");
    assert!(words.contains("--box-ca"), "{words}");

    // --box-ca with the box's CA's fingerprint: accepted (for the push that brings our CA);
    // with another fingerprint: still refused.
    let vouched = trusting(&dir, &other.cert_pem)
        .and_box_ca(&fp(&site_ca.cert_pem))
        .unwrap();
    assert_eq!(
        get(&Link::new(addr.clone(), vouched).unwrap()).unwrap(),
        "ok"
    );
    let wrong = trusting(&dir, &other.cert_pem)
        .and_box_ca(&fp(&other.cert_pem).replace(':', ""))
        .unwrap();
    assert!(get(&Link::new(addr.clone(), wrong).unwrap()).is_err());
    assert!(Trust::unchecked().and_box_ca("AB:CD").is_err());
}

#[test]
fn a_name_the_certificate_lacks_is_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let (site_ca, port) = a_box(false);
    let addr = Addr::parse(&format!("127.0.0.1:{port}")).unwrap();
    let link = Link::new(addr, trusting(&dir, &site_ca.cert_pem)).unwrap();
    let words = get(&link).unwrap_err();
    assert!(
        words.contains("not for 127.0.0.1: it names docket.local"),
        "{words}"
    );
}

#[test]
fn secrets_go_only_over_checked_https() {
    let dir = tempfile::tempdir().unwrap();
    let (site_ca, port) = a_box(true);
    // Nothing to check against: what carries no secret is read, anything secret is refused.
    let addr = Addr::parse(&format!("127.0.0.1:{port}")).unwrap();
    let link = Link::new(addr, Trust::unchecked()).unwrap();
    assert_eq!(get(&link).unwrap(), "ok");
    assert!(!link.seen().unwrap().checked);
    let e = link.secret("the manager's credentials").unwrap_err();
    assert!(e.to_string().contains("--dir SITE"), "{e}");

    // An explicit http:// URL: refused for anything secret, and said to use https.
    let addr = Addr::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let link = Link::new(addr, trusting(&dir, &site_ca.cert_pem)).unwrap();
    let e = link.secret("the site bundle").unwrap_err().to_string();
    assert!(
        e.contains("refusing to send the site bundle over plain HTTP") && e.contains("https"),
        "{e}"
    );
}
