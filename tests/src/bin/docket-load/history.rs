//! The scenarios about a store with history: `restart` (start to READY with a million events)
//! and `backlog` (the uplink catching up into PostgreSQL under a seed load).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use docket_core::wire::CommandBody;
use docket_tests::servers::Postgres;
use docket_tests::{line, rss_mb, Daemon};
use serde_json::{json, Value};

use crate::loops::{closed_loop, devices, open_loop, NO_RATE_LIMIT};
use crate::Args;

/// Time from start to READY (`/healthz` 200, after the retained menu, boards and status are
/// republished from SQLite) with 1,000 open orders and `restart_events` events in the store.
pub(crate) async fn restart(a: &Args) -> anyhow::Result<Value> {
    let mut d = Daemon::start_with(&[], "demo", NO_RATE_LIMIT)?;
    let history = a.restart_events.saturating_sub(1000);
    eprintln!("restart: building {history} historical events and 1,000 open orders");
    closed_loop(&d, "hist", 8, history).await?;
    let mut c = devices(&d, "open", "tablet", &[], 1).await?.remove(0);
    for i in 0..1000 {
        let r = c
            .command(&CommandBody::place(
                &format!("{}", i % 50 + 1),
                vec![line("burger-classic", 1), line("fries", 1)],
            ))
            .await?;
        anyhow::ensure!(r.ok, "place_order refused: {r:?}");
    }
    drop(c);
    let events = d.metric("docket_seq")? as u64;
    let open = d.metric("docket_open_orders")? as u64;
    let mut times = Vec::new();
    for _ in 0..3 {
        d.terminate()?;
        let t0 = Instant::now();
        d.restart()?;
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(json!({
        "events": events, "open_orders": open,
        "ready_ms": times, "restart_ms": times[times.len() / 2],
        "rss_mb": rss_mb(d.pid().unwrap_or(0)),
        "load": format!("{events} events, {open} open orders; start → /healthz 200, median of 3"),
    }))
}

/// The uplink catching up: a backlog built with PostgreSQL down, then PostgreSQL up while a
/// seed load runs; the same seed load measured before, with the uplink idle, for comparison.
pub(crate) async fn backlog(a: &Args) -> anyhow::Result<Value> {
    let mut pg = Postgres::init()?;
    let toml = format!(
        "{NO_RATE_LIMIT}\n[uplink]\npostgres_url = \"{}\"\nbackoff_max_ms = 1000\n",
        pg.admin_url()
    );
    let d = Daemon::start_with(&[], "bench-site", &toml)?;
    eprintln!(
        "backlog: building {} events with the uplink down",
        a.backlog_events
    );
    let built = closed_loop(&d, "build", 8, a.backlog_events).await?;
    let backlog = d.metric("docket_seq")? as u64;
    eprintln!("backlog: {backlog} events; seed load with the uplink idle (baseline)");
    let baseline = open_loop(&d, "base", 50, 2.0, 10, a.duration, None).await?;
    pg.up()?;
    d.cli(&["uplink", "migrate", "--url", &pg.admin_url()])?;
    eprintln!("backlog: PostgreSQL up; seed load while it drains");
    let t0 = Instant::now();
    let caught = Arc::new(AtomicU64::new(0));
    let watch = {
        let caught = caught.clone();
        let http = d.http;
        std::thread::spawn(move || loop {
            let m = |n: &str| -> f64 {
                let body = std::process::Command::new("curl")
                    .args(["-fsS", &format!("http://127.0.0.1:{http}/metrics")])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                body.lines()
                    .find_map(|l| l.strip_prefix(n).and_then(|v| v.trim().parse().ok()))
                    .unwrap_or(0.0)
            };
            if m("docket_uplink_cursor{target=\"postgres\"} ") >= backlog as f64 {
                caught.store(t0.elapsed().as_millis() as u64, Relaxed);
                return;
            }
            if t0.elapsed() > Duration::from_secs(1800) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        })
    };
    let c2 = caught.clone();
    let done = move || c2.load(Relaxed) > 0;
    let during = open_loop(&d, "drain", 50, 2.0, 10, a.duration, Some(&done)).await?;
    let _ = watch.join();
    let catch_ms = caught.load(Relaxed);
    if catch_ms == 0 {
        bail!("the uplink did not catch up with {backlog} events");
    }
    let rate = backlog as f64 / (catch_ms as f64 / 1000.0);
    Ok(json!({
        "backlog_events": backlog,
        "build": built,
        "catch_up_seconds": catch_ms as f64 / 1000.0,
        "catch_up_events_per_s": rate,
        "baseline": baseline,
        "during_drain": during,
        "p50_ms": during["p50_ms"], "p99_ms": during["p99_ms"], "p999_ms": during["p999_ms"],
        "max_ms": during["max_ms"], "orders_per_s": during["orders_per_s"],
        "lost": during["lost"], "duplicated": during["duplicated"],
        "rss_mb": during["rss_mb"], "cpu_pct": during["cpu_pct"],
    }))
}
