//! The campaign's faults: bad Wi-Fi for every device (through their fault proxies), kill -9 of
//! the box under load, a hung box (SIGSTOP). Drives faults and the box's process; the verdict
//! is the oracle's.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::{check, integrity, Report, Restaurant};
use crate::faults::Fault;

/// The faults a device's Wi-Fi can have, by name (for the report).
fn wifi_fault(kind: usize, rng: &mut StdRng, blackhole: (Duration, Duration)) -> (Fault, Duration) {
    let secs = |rng: &mut StdRng, lo: f64, hi: f64| Duration::from_secs_f64(rng.gen_range(lo..hi));
    match kind % 7 {
        0 => (
            Fault::Delay {
                fraction: rng.gen_range(0.2..0.4),
                min: Duration::from_millis(200),
                max: Duration::from_millis(2000),
            },
            secs(rng, 3.0, 8.0),
        ),
        1 => (Fault::Stall, secs(rng, 1.0, 5.0)),
        2 => {
            let d = secs(rng, blackhole.0.as_secs_f64(), blackhole.1.as_secs_f64());
            (Fault::Blackhole, d)
        }
        3 => (
            Fault::OneWay {
                box_hears: rng.gen_bool(0.5),
            },
            secs(rng, 1.0, 5.0),
        ),
        4 => (Fault::Reset, secs(rng, 0.2, 1.0)),
        5 => (Fault::HalfClose, secs(rng, 0.2, 1.0)),
        _ => (
            Fault::Flap {
                up: secs(rng, 1.0, 3.0),
                down: secs(rng, 0.5, 2.0),
            },
            secs(rng, 4.0, 10.0),
        ),
    }
}

/// Names of the Wi-Fi faults in the order [`wifi_fault`] numbers them.
pub const WIFI_FAULTS: [&str; 7] = [
    "delayed writes",
    "stall",
    "blackhole",
    "one-way cut",
    "reset mid-packet",
    "half-close",
    "flapping",
];

/// Bad Wi-Fi for every device at once: each goes through faults one after another (device `i`
/// starts with fault `i`, so a short run still has every kind), with clean spells between, until
/// `load` has passed. Then everything heals and the oracle runs. Returns the report and the
/// time to converge after the heal.
pub async fn bad_wifi(
    r: &Restaurant,
    db: &Path,
    load: Duration,
    blackhole: (Duration, Duration),
    seed: u64,
) -> anyhow::Result<(Report, Duration, BTreeMap<&'static str, u64>)> {
    let end = Instant::now() + load;
    let applied: Arc<Mutex<BTreeMap<&'static str, u64>>> = Arc::default();
    let mut scripts = Vec::new();
    for (i, (_, proxy)) in r.proxies.iter().enumerate() {
        let proxy = proxy.clone();
        let applied = applied.clone();
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
        scripts.push(tokio::spawn(async move {
            let mut kind = i;
            while Instant::now() < end {
                let (fault, hold) = wifi_fault(kind, &mut rng, blackhole);
                *applied
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(WIFI_FAULTS[kind % 7])
                    .or_default() += 1;
                proxy.set(fault);
                tokio::time::sleep_until((Instant::now() + hold).min(end)).await;
                proxy.set(Fault::Clean);
                let calm = Duration::from_millis(rng.gen_range(300..2000));
                tokio::time::sleep_until((Instant::now() + calm).min(end)).await;
                kind = rng.gen_range(0..7);
            }
        }));
    }
    for s in scripts {
        s.await?;
    }
    let converge = r.heal_and_settle(db, Duration::from_secs(90)).await?;
    let report = check(db, &r.ledger)?;
    let applied = applied.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok((report, converge, applied))
}

/// kill -9 of the box at random moments under load, `cycles` times; after each kill the
/// database must pass its integrity check before the box starts again. Returns the time from
/// each restart to READY (the box's /healthz).
pub async fn kill_cycles(
    d: &mut crate::Daemon,
    r: &Restaurant,
    cycles: usize,
    seed: u64,
) -> anyhow::Result<Vec<Duration>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let db = d.db_path();
    let mut restarts = Vec::new();
    for cycle in 1..=cycles {
        let acked = r.acked();
        // Run under load for a while, and at least until something new was acknowledged.
        let until = Instant::now() + Duration::from_millis(rng.gen_range(200..1500));
        let deadline = Instant::now() + crate::DEADLINE;
        while Instant::now() < until || r.acked() == acked {
            anyhow::ensure!(
                Instant::now() < deadline,
                "cycle {cycle}: nothing acknowledged for {:?}",
                crate::DEADLINE
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        d.kill9();
        let ok = integrity(&db)?;
        anyhow::ensure!(ok == "ok", "cycle {cycle}: integrity_check says {ok}");
        let start = Instant::now();
        tokio::task::block_in_place(|| d.restart())?;
        restarts.push(start.elapsed());
    }
    Ok(restarts)
}

/// SIGSTOP (a hung box) for `hold`, then SIGCONT, under load.
pub async fn hang(d: &crate::Daemon, hold: Duration) -> anyhow::Result<()> {
    let pid = d.pid().context("docketd is not running")?.to_string();
    let status = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()?;
    anyhow::ensure!(status.success(), "kill -STOP failed");
    tokio::time::sleep(hold).await;
    let status = std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()?;
    anyhow::ensure!(status.success(), "kill -CONT failed");
    Ok(())
}
