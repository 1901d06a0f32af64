//! Someone on the restaurant's Wi-Fi: a raw packet socket on the box's LAN interface (the host
//! side of its veth pair) records a whole service — pairing a tablet, a manager's admin session,
//! logins, an order, a bump, a site push — and finds no secret, no login key, no MAC key, no session, no order
//! text in it. A login recorded off the wire and sent again gets no session.
//!
//! Needs a network namespace for the box (root and `ip netns`, as CI has).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use docket_core::wire::{CommandBody, LineInput};
use docket_tests::secure::{https_request, trusting};
use docket_tests::{basic_auth, Client, Creds, Daemon};

type R = anyhow::Result<()>;

fn docket(args: &[&str]) -> anyhow::Result<String> {
    let bin = std::env::var_os("DOCKET_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| docket_tests::docketd_bin().with_file_name("docket"));
    let o = Command::new(&bin).args(args).output()?;
    if !o.status.success() {
        bail!(
            "docket {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// A capture of every frame on an interface, to a file, by a raw AF_PACKET socket.
struct Capture {
    child: Child,
    file: std::path::PathBuf,
}

const CAPTURE: &str = r#"
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
s.bind((sys.argv[1], 0))
out = open(sys.argv[2], "wb", buffering=0)
print("ready", flush=True)
while True:
    out.write(s.recv(65536))
"#;

impl Capture {
    fn start(iface: &str, file: std::path::PathBuf) -> anyhow::Result<Capture> {
        let mut child = Command::new("python3")
            .args(["-c", CAPTURE, iface])
            .arg(&file)
            .stdout(Stdio::piped())
            .spawn()
            .context("python3 for the packet capture")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
        if line.trim() != "ready" {
            bail!("the capture did not start: {line:?}");
        }
        Ok(Capture { child, file })
    }

    fn stop(mut self) -> anyhow::Result<Vec<u8>> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        Ok(std::fs::read(&self.file)?)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A TCP relay that keeps what the client sent: what an eavesdropper records of one login.
fn recording_relay(to: std::net::SocketAddr) -> anyhow::Result<(u16, Arc<Mutex<Vec<u8>>>)> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let port = l.local_addr()?.port();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let keep = sent.clone();
    std::thread::spawn(move || {
        let Ok((mut client, _)) = l.accept() else {
            return;
        };
        let Ok(mut server) = TcpStream::connect(to) else {
            return;
        };
        let (mut c2, mut s2) = (
            client.try_clone().expect("clone"),
            server.try_clone().expect("clone"),
        );
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut s2, &mut c2);
        });
        let mut buf = [0u8; 16384];
        while let Ok(n) = client.read(&mut buf) {
            if n == 0 || server.write_all(&buf[..n]).is_err() {
                break;
            }
            keep.lock().expect("lock").extend_from_slice(&buf[..n]);
        }
    });
    Ok((port, sent))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eavesdropper_on_the_lan_learns_no_secret_and_cannot_replay_a_login() -> R {
    let mut d = Daemon::start_isolated(
        &[
            ("DOCKET_MQTT_PLAIN", "false"),
            ("DOCKET_HTTP_PLAIN", "false"),
        ],
        "cafe",
        "",
    )?;
    let Some(iface) = d.lan_interface().map(str::to_owned) else {
        bail!("this test needs the box in a network namespace (root and `ip netns`)");
    };
    // The box is provisioned from a site directory on the technician's laptop (its CA, its
    // manager, head office's PostgreSQL password), as a real one is.
    let laptop = tempfile::tempdir()?;
    let site = laptop.path().join("site");
    let pg_password = format!("pg{:016x}", rand::random::<u64>());
    docket(&[
        "site",
        "init",
        "--dir",
        s(&site),
        "--site-id",
        "cafe",
        "--name",
        "Cafe",
    ])?;
    docket(&[
        "uplink",
        "set",
        "--dir",
        s(&site),
        "--postgres",
        &format!(
            "postgres://docket_site_cafe:{pg_password}@hq.invalid:5432/docket?sslmode=require"
        ),
    ])?;
    d.terminate()?;
    let data = d.dir.path().join("data");
    std::fs::remove_dir_all(&data)?;
    docket(&["site", "install", "--dir", s(&site), "--data-dir", s(&data)])?;
    d.restart()?;

    let cap = Capture::start(&iface, d.dir.path().join("lan.raw"))?;
    let manager = d.add_device("mgr-1", "manager", &[])?;
    let grill = d.add_device("kds-grill", "station", &["grill"])?;
    let tls = trusting(&std::fs::read_to_string(site.join("site-ca.pem"))?)?;
    let addr = (d.host, d.https).into();
    let https = |m: &str, p: &str, h: &[(&str, &str)], b: &str| {
        https_request(tls.clone(), "docket.local", addr, m, p, h, b)
    };

    // A new tablet asks to pair; the manager opens an admin session and approves it; the tablet
    // collects its secret.
    let json = [("Content-Type", "application/json")];
    let asked = https("POST", "/api/pair", &json, r#"{"label":"new tablet"}"#)?.json()?;
    let (code, token) = (
        asked["code"].as_str().context("code")?.to_owned(),
        asked["token"].as_str().context("token")?.to_owned(),
    );
    let auth = basic_auth(&manager.id, &manager.login());
    let opened = https("POST", "/api/session", &[("Authorization", &auth)], "")?;
    assert_eq!(opened.status, 200, "{}", opened.body);
    let cookie = opened
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .context("session cookie")?
        .to_owned();
    let approve = https(
        "POST",
        &format!("/api/admin/pairings/{code}/approve"),
        &[("Cookie", &cookie), ("Content-Type", "application/json")],
        r#"{"id":"tablet-9","role":"tablet"}"#,
    )?;
    assert_eq!(approve.status, 200, "{}", approve.body);
    let got = https("GET", &format!("/api/pair/{token}"), &[], "")?.json()?;
    let tablet = Creds {
        id: "tablet-9".into(),
        role: "tablet".into(),
        secret: got["secret"].as_str().context("secret")?.to_owned(),
    };

    // Logins, an order with a guest's note, a bump: all over MQTT over TLS.
    let host = d.host.to_string();
    let note = format!("EAVESDROP-{:016x} sesame allergy", rand::random::<u64>());
    let mut t = Client::connect_tls(&host, d.mqtts, &tablet, tls.clone()).await?;
    let placed = t
        .command(&CommandBody::place(
            "7",
            vec![LineInput {
                item: "burger-classic".into(),
                qty: 1,
                mods: vec![],
                notes: Some(note.clone()),
                course: None,
                allergy: None,
                seat: None,
            }],
        ))
        .await?;
    assert!(placed.ok, "{placed:?}");
    let mut g = Client::connect_tls(&host, d.mqtts, &grill, tls.clone()).await?;
    let bumped = g
        .command(&CommandBody::Bump {
            order_id: placed.order_id.clone().context("order id")?,
            station: "grill".into(),
        })
        .await?;
    assert!(bumped.ok, "{bumped:?}");

    // A login recorded on the wire, sent again as it was, gets no session: were it a login, it
    // would take over the device's live connection (one connection per device), as a real
    // second login does (the control at the end).
    let fry = d.add_device("kds-fry", "station", &["fry"])?;
    let (relay, recorded) = recording_relay((d.host, d.mqtts).into())?;
    let rec = Client::connect_tls("127.0.0.1", relay, &fry, tls.clone()).await?;
    rec.disconnect().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let bytes = recorded.lock().expect("lock").clone();
    assert!(
        bytes.len() > 200,
        "the relay recorded {} bytes",
        bytes.len()
    );
    let live = Client::connect_tls(&host, d.mqtts, &fry, tls.clone()).await?;
    let mut replay = TcpStream::connect((d.host, d.mqtts))?;
    replay.set_read_timeout(Some(Duration::from_secs(5)))?;
    replay.write_all(&bytes)?;
    let mut answer = Vec::new();
    let _ = replay.read_to_end(&mut answer); // the box ends it (a TLS alert), or the timeout
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        live.is_connected(),
        "the replayed login took over the device's connection"
    );
    let _second = Client::connect_tls(&host, d.mqtts, &fry, tls.clone()).await?;
    docket_tests::eventually("a real second login takes the connection over", || {
        !live.is_connected()
    })
    .await?;

    // A site push: the signed bundle (the manager's secret, head office's password) to the box.
    let pushed = docket(&[
        "site",
        "push",
        "--dir",
        s(&site),
        &format!("{}:{}", d.host, d.https),
        "--json",
    ])?;
    assert!(pushed.contains("\"pushed\":true"), "{pushed}");
    let bundle: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.join("site-bundle.json"))?)?;
    let site_manager_secret = bundle["bundle"]["managers"][0]["secret"]
        .as_str()
        .context("the bundle's manager")?
        .to_owned();

    // A control: plain HTTP on the same wire is readable, so the capture sees what crosses.
    let marker = format!("PLAIN-CONTROL-{:016x}", rand::random::<u64>());
    d.http("GET", &format!("/trust?{marker}"), &[], "")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.disconnect().await;
    g.disconnect().await;
    let wire = cap.stop()?;
    assert!(
        contains(&wire, marker.as_bytes()),
        "the capture saw the plain control request"
    );
    assert!(
        contains(&wire, b"docket.local"),
        "the capture saw the TLS handshakes (SNI)"
    );

    let session = cookie.split_once('=').map(|(_, v)| v).unwrap_or("");
    let secrets: Vec<(&str, String)> = vec![
        ("the tablet's secret", tablet.secret.clone()),
        ("the tablet's login key", tablet.login()),
        ("the tablet's MAC key", hex::encode(tablet.mac_key().0)),
        ("the manager's secret", manager.secret.clone()),
        ("the manager's login key", manager.login()),
        (
            "the manager's Basic header",
            auth.trim_start_matches("Basic ").to_owned(),
        ),
        ("the grill's login key", grill.login()),
        ("the admin session", session.to_owned()),
        ("the pairing token", token.clone()),
        ("the order's note", note.clone()),
        ("head office's password", pg_password.clone()),
        ("the bundle's manager secret", site_manager_secret.clone()),
    ];
    for (what, s) in &secrets {
        assert!(!s.is_empty(), "{what} is empty");
        assert!(
            !contains(&wire, s.as_bytes()),
            "{what} crossed the LAN in the clear"
        );
    }
    // Binary forms too: the secret's and the MAC key's raw bytes.
    assert!(!contains(&wire, &tablet.secret_bytes()));
    assert!(!contains(&wire, &tablet.mac_key().0));
    println!(
        "captured {} bytes on {iface}: none of {} secrets in them",
        wire.len(),
        secrets.len()
    );
    Ok(())
}
