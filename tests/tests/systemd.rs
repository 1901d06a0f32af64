//! sd_notify: READY=1 only once ready, WATCHDOG=1 while the engine is alive, STOPPING=1 on SIGTERM.
//! A unix datagram socket stands in for systemd's NOTIFY_SOCKET.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use docket_tests::Daemon;

/// Reads notifications until one contains `want` (or the deadline passes); returns all seen.
fn wait_for(sock: &UnixDatagram, want: &str, seen: &mut Vec<String>) -> bool {
    wait_for_within(sock, want, seen, docket_tests::DEADLINE)
}

#[test]
fn notifies_ready_watchdog_and_stopping() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path)?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    let path_s = path.to_string_lossy().into_owned();
    // A 2 s watchdog: docketd must pet it every second while the engine's heartbeat is fresh.
    let mut d =
        Daemon::start_with_env(&[("NOTIFY_SOCKET", &path_s), ("WATCHDOG_USEC", "2000000")])?;
    let mut seen = Vec::new();
    assert!(
        wait_for(&sock, "READY=1", &mut seen),
        "no READY=1: {seen:?}"
    );
    let ready_msg = seen
        .iter()
        .find(|m| m.contains("READY=1"))
        .cloned()
        .unwrap_or_default();
    assert!(
        ready_msg.contains("STATUS=ready"),
        "READY comes with a status line: {ready_msg}"
    );
    // Before READY the status said what it was doing.
    assert!(
        seen.iter()
            .any(|m| m.contains("STATUS=republishing retained state")),
        "{seen:?}"
    );
    // /healthz agrees.
    assert_eq!(d.get("/healthz")?.0, 200);
    let mut pets = 0;
    for _ in 0..3 {
        if wait_for(&sock, "WATCHDOG=1", &mut seen) {
            pets += 1;
        }
    }
    assert_eq!(pets, 3, "watchdog not petted: {seen:?}");
    let status = d.terminate()?;
    assert!(status.success());
    assert!(
        wait_for(&sock, "STOPPING=1", &mut seen),
        "no STOPPING=1: {seen:?}"
    );
    Ok(())
}

/// Closes a listening socket of another process from outside, as a kernel fault would
/// (`ss -K`, the kernel's socket-destroy call): the port refuses connections from then on.
fn kill_listener(port: u16) -> anyhow::Result<()> {
    let out = std::process::Command::new("ss")
        .args([
            "-K",
            "state",
            "listening",
            "sport",
            "=",
            &format!(":{port}"),
        ])
        .output()?;
    anyhow::ensure!(out.status.success(), "ss -K: {out:?}");
    anyhow::ensure!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the listener on {port} still accepts (no socket-destroy support here?)"
    );
    Ok(())
}

/// A listener that dies is reported by `/healthz` (503, naming it) and the watchdog stops being
/// petted, so that systemd restarts docketd; the engine's heartbeat alone would not notice.
#[test]
fn a_dead_listener_fails_healthz_and_stops_the_watchdog() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path)?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    let path_s = path.to_string_lossy().into_owned();
    let d = Daemon::start_with_env(&[("NOTIFY_SOCKET", &path_s), ("WATCHDOG_USEC", "2000000")])?;
    let mut seen = Vec::new();
    assert!(wait_for(&sock, "WATCHDOG=1", &mut seen), "{seen:?}");
    let (code, body) = d.get("/healthz")?;
    assert_eq!(code, 200);
    let health: serde_json::Value = serde_json::from_str(&body)?;
    for name in ["mqtt", "mqtt_v5", "websocket"] {
        assert_eq!(health["listeners"][name]["ok"], true, "{name}: {body}");
    }

    kill_listener(d.mqtt)?;
    let deadline = Instant::now() + docket_tests::DEADLINE;
    let body = loop {
        let (code, body) = d.get("/healthz")?;
        if code == 503 {
            break body;
        }
        assert!(Instant::now() < deadline, "/healthz still 200: {body}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let health: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(health["status"], "listener_down", "{body}");
    assert_eq!(health["listeners"]["mqtt"]["ok"], false, "{body}");
    assert_eq!(health["listeners"]["mqtt_v5"]["ok"], true, "{body}");
    // No more pets: drain what was sent before the listener died, then watch a whole period.
    std::thread::sleep(Duration::from_millis(1100));
    while sock.recv(&mut [0u8; 4096]).is_ok() {}
    let mut after = Vec::new();
    assert!(
        !wait_for_within(&sock, "WATCHDOG=1", &mut after, Duration::from_secs(3)),
        "the watchdog was petted with a dead listener: {after:?}"
    );
    assert!(d.log_text().contains("MQTT listener died"));
    Ok(())
}

/// Like [`wait_for`], with its own deadline.
fn wait_for_within(
    sock: &UnixDatagram,
    want: &str,
    seen: &mut Vec<String>,
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = msg.lines().any(|l| l == want);
            seen.push(msg);
            if hit {
                return true;
            }
        }
    }
    false
}
