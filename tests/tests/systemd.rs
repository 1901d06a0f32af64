//! sd_notify: READY=1 only once ready, WATCHDOG=1 while the engine is alive, STOPPING=1 on SIGTERM.
//! A unix datagram socket stands in for systemd's NOTIFY_SOCKET.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use docket_tests::Daemon;

/// Reads notifications until one contains `want` (or the deadline passes); returns all seen.
fn wait_for(sock: &UnixDatagram, want: &str, seen: &mut Vec<String>) -> bool {
    let deadline = Instant::now() + docket_tests::DEADLINE;
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
