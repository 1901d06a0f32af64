//! docket-load's load: simulated tablets (Poisson arrivals), the kitchen that completes their
//! orders, closed-loop managers, and the devices they are, paired in one import and connected
//! through the shared [`docket_tests::device`] endpoint (plain or `--tls`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use docket_core::wire::{self, CommandBody};
use docket_tests::device::{connect_many, Endpoint};
use docket_tests::{line, rss_mb, Client, Daemon};
use serde_json::{json, Value};

use crate::measure::{ms, screen, screen_counts, timed_place, Measure, Proc, Sent};

/// What the bench's tablets order from the demo menu (the fleet's in-process sites too).
pub(crate) const ITEMS: [&str; 6] = [
    "burger-classic",
    "fries",
    "steak-ribeye",
    "salad-caesar",
    "ipa-pint",
    "wings",
];

/// A tablet placing orders with Poisson arrivals at `per_min`, until `stop`.
async fn tablet(
    mut c: Client,
    per_min: f64,
    sent: Sent,
    m: Arc<Measure>,
    stop: Arc<AtomicBool>,
    placed: Arc<Mutex<Vec<String>>>,
) -> anyhow::Result<()> {
    let items = ITEMS;
    while !stop.load(Relaxed) {
        let gap = -(1.0 - rand::random::<f64>()).ln() * 60.0 / per_min;
        let until = Instant::now() + Duration::from_secs_f64(gap.min(600.0));
        while Instant::now() < until && !stop.load(Relaxed) {
            tokio::time::sleep((until - Instant::now()).min(Duration::from_millis(100))).await;
        }
        if stop.load(Relaxed) {
            break;
        }
        let n = 1 + rand::random::<usize>() % 6;
        let lines = (0..n)
            .map(|i| {
                let mut l = line(
                    items[(i + rand::random::<usize>()) % items.len()],
                    1 + (i % 2) as u32,
                );
                if l.item == "steak-ribeye" {
                    // The demo menu's steak takes exactly one doneness.
                    l.mods = vec!["medium".into()];
                }
                if i == 0 {
                    l.mods.push("no-onion".into());
                    l.notes = Some("birthday: candle please".into());
                    l.allergy = Some("sesame".into());
                }
                l
            })
            .collect();
        let body = CommandBody::place(&format!("{}", n + 1), lines);
        let r = timed_place(&mut c, &sent, &m, &body).await?;
        if r.ok {
            m.orders.fetch_add(1, Relaxed);
            if let Some(o) = r.order_id {
                placed.lock().unwrap_or_else(|p| p.into_inner()).push(o);
            }
        }
    }
    Ok(())
}

/// The kitchen: completes orders a few seconds after they were placed, so boards stay steady.
async fn kitchen(
    mut c: Client,
    placed: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    while !stop.load(Relaxed) {
        for _ in 0..30 {
            if stop.load(Relaxed) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let batch: Vec<String> =
            std::mem::take(&mut *placed.lock().unwrap_or_else(|p| p.into_inner()));
        for o in batch {
            c.command(&CommandBody::Complete { order_id: o }).await?;
        }
    }
    Ok(())
}

/// `--tls`: the devices of every scenario log in over MQTT over TLS.
pub(crate) static TLS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Adds `n` devices in one import and connects them all (a few at a time); any failure is an error.
pub(crate) async fn devices(
    d: &Daemon,
    prefix: &str,
    role: &str,
    stations: &[&str],
    n: usize,
) -> anyhow::Result<Vec<Client>> {
    let list: Vec<(String, &str, &[&str])> = (0..n)
        .map(|i| (format!("{prefix}-{i}"), role, stations))
        .collect();
    let creds = d.import_devices(&list)?;
    let at = endpoint(d, TLS.get().copied().unwrap_or(false))?;
    let (clients, failed) = connect_many(&at, &creds, 64).await;
    if let Some(e) = failed.first() {
        bail!(
            "{} of {n} {prefix} devices failed to connect: {e}",
            failed.len()
        );
    }
    Ok(clients)
}

/// Where this run's devices log in: the box's MQTT port, or (`--tls`) its MQTT over TLS port
/// trusting only the site CA.
pub(crate) fn endpoint(d: &Daemon, tls: bool) -> anyhow::Result<Endpoint> {
    Ok(match tls {
        true => Endpoint::plain("127.0.0.1", d.mqtts).tls(Some(d.trusting_site_ca()?)),
        false => Endpoint::plain("127.0.0.1", d.mqtt),
    })
}

/// Runs an open-loop seed-like load: `tablets` × `per_min`, `screens` screens, for `secs`
/// (or until `until` says done, if given). Returns the scenario's result.
pub(crate) async fn open_loop(
    d: &Daemon,
    tag: &str,
    tablets: usize,
    per_min: f64,
    screens: usize,
    secs: u64,
    until: Option<&(dyn Fn() -> bool + Sync)>,
) -> anyhow::Result<Value> {
    let sent: Sent = Default::default();
    let m = Measure::new();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_screens = Arc::new(AtomicBool::new(false));
    let placed = Arc::new(Mutex::new(Vec::new()));
    let mut screen_tasks = Vec::new();
    for mut c in devices(d, &format!("{tag}-screen"), "expo", &[], screens).await? {
        c.subscribe(wire::EVENTS_TOPIC).await?;
        screen_tasks.push(tokio::spawn(screen(
            c,
            sent.clone(),
            m.clone(),
            stop_screens.clone(),
        )));
    }
    let mut kitchen_client = devices(d, &format!("{tag}-kitchen"), "manager", &[], 1).await?;
    let k = tokio::spawn(kitchen(
        kitchen_client.remove(0),
        placed.clone(),
        stop.clone(),
    ));
    let mut tablet_tasks = Vec::new();
    for c in devices(d, &format!("{tag}-tablet"), "tablet", &[], tablets).await? {
        tablet_tasks.push(tokio::spawn(tablet(
            c,
            per_min,
            sent.clone(),
            m.clone(),
            stop.clone(),
            placed.clone(),
        )));
    }
    let proc = Proc::start(d);
    let first_seq = d.metric("docket_seq")? as u64 + 1;
    let t0 = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let elapsed = t0.elapsed().as_secs();
        let done = match until {
            Some(f) => f() && elapsed >= secs.min(5),
            None => elapsed >= secs,
        };
        if done || elapsed > secs.max(1) * 20 {
            break;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = proc.cpu_pct();
    let rss = rss_mb(proc.pid);
    stop.store(true, Relaxed);
    for t in tablet_tasks {
        t.await??;
    }
    let _ = k.await;
    // Every event up to here must reach every screen.
    let expected = d.metric("docket_seq")? as u64;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_screens.store(true, Relaxed);
    let (lost, dup, ooo) = screen_counts(screen_tasks, first_seq, expected).await?;
    let (h, r) = m.histograms();
    let orders = m.orders.load(Relaxed);
    Ok(json!({
        "p50_ms": ms(&h, 0.5), "p99_ms": ms(&h, 0.99), "p999_ms": ms(&h, 0.999),
        "max_ms": h.max() as f64 / 1000.0,
        "reply_p50_ms": ms(&r, 0.5), "reply_p99_ms": ms(&r, 0.99),
        "samples": h.len(),
        "orders_per_s": orders as f64 / wall,
        "lost": lost, "duplicated": dup, "out_of_order": ooo,
        "rss_mb": rss, "cpu_pct": cpu, "seconds": wall,
    }))
}

/// Closed loop: `clients` managers each place → bump → complete as fast as replies come.
pub(crate) async fn closed_loop(
    d: &Daemon,
    tag: &str,
    clients: usize,
    events: u64,
) -> anyhow::Result<Value> {
    let done = Arc::new(AtomicU64::new(0));
    let proc = Proc::start(d);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for mut c in devices(d, &format!("{tag}-mgr"), "manager", &[], clients).await? {
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            while done.load(Relaxed) < events {
                let r = c
                    .command(&CommandBody::place("1", vec![line("burger-classic", 1)]))
                    .await?;
                let o = r.order_id.context("order id")?;
                c.command(&CommandBody::Bump {
                    order_id: o.clone(),
                    station: "grill".into(),
                })
                .await?;
                c.command(&CommandBody::Complete { order_id: o }).await?;
                done.fetch_add(3, Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let wall = t0.elapsed().as_secs_f64();
    let n = done.load(Relaxed);
    Ok(
        json!({"events": n, "seconds": wall, "events_per_s": n as f64 / wall,
              "orders_per_s": n as f64 / 3.0 / wall, "cpu_pct": proc.cpu_pct(),
              "rss_mb": rss_mb(proc.pid)}),
    )
}

/// Config for scenarios whose few clients each send far more than a real device (the
/// closed-loop clients, the one kitchen device of the open-loop scenarios): the
/// per-device command rate limit (50/s by default) is off there. It lands in the test
/// config's open `[engine]` section.
pub(crate) const NO_RATE_LIMIT: &str = "commands_per_second = 0\nmax_open_orders = 100000";
