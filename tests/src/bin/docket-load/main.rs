//! docket-load: the benchmark instrument. Starts its own docketd (`DOCKETD_BIN`; scripts/bench.sh
//! uses the release build), pairs simulated devices, drives a scenario over real MQTT sockets and
//! measures with HDR histograms on one monotonic clock:
//!
//! - order-to-screen: the tablet's send instant → each screen receiving the event whose
//!   `command` is that id;
//! - reply: send → the tablet receiving its reply;
//! - lost / duplicated / out-of-order deliveries per screen, by `seq`;
//! - docketd's RSS and CPU from /proc.
//!
//! Scenarios: `seed` (50 tablets × 2 orders/min, 10 screens, as in the case study), `x10`,
//! `x100`, `flat-out` (closed loop, as fast as durable commits allow), `flat-out-10` (the same
//! with the case study's 10 screens), `pi` (x100 and flat-out against a docketd on a Raspberry
//! Pi 4's CPU with an SD card's fsync), `connections` (10,000
//! connected devices with the seed load on top; Mosquitto holding as many beside it),
//! `reconnect-storm` (600 screens drop and return at once), `broker-hop` (the bare publish →
//! receive floor through docketd's broker and through Mosquitto), `browser` (Chromium tablet
//! page → Chromium KDS page at seed load), `backlog` (uplink catch-up into PostgreSQL while a
//! seed load runs, against the same load with the uplink idle) and `restart`. Prints a table;
//! `--json PATH` writes the results.

mod browser;
mod connections;
mod flat;
mod hop;
mod pi;
mod storm;
mod vm;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use docket_core::wire::{self, CommandBody, Event};
use docket_tests::servers::Postgres;
use docket_tests::{line, rss_mb, Client, Creds, Daemon};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Docket benchmark load generator")]
struct Args {
    /// seed, x10, x100, flat-out, flat-out-10, pi, connections, connections-vm,
    /// reconnect-storm, broker-hop, browser, backlog, restart; several comma-separated, or all
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Seconds of measured load per scenario (or phase).
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Events in the backlog scenario's backlog.
    #[arg(long, default_value_t = 100_000)]
    backlog_events: u64,
    /// Events in the store for the restart scenario (1,000 of them open orders).
    #[arg(long, default_value_t = 1_000_000)]
    restart_events: u64,
    /// Connected devices in the connections scenario.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// connections: the idle devices' MQTT keep-alive in seconds (the box's pages use 15).
    #[arg(long, default_value_t = 15)]
    keep_alive: u64,
    /// connections: skip Mosquitto's part (inside the test image, which has no Mosquitto).
    #[arg(long)]
    no_mosquitto: bool,
    /// Devices log in over MQTT over TLS (the box's 8883, trusting only its site CA) instead of
    /// plain MQTT: every scenario's tablets and screens, and `connections`' idle devices.
    #[arg(long)]
    tls: bool,
    /// Connected devices in the connections-vm scenario (at least 600).
    #[arg(long, default_value_t = 10_000)]
    vm_connections: usize,
    /// connections-vm: the idle devices' keep-alive in seconds. Under emulation (TCG, tens of
    /// times slower than the box) 10,000 devices pinging every 10 s were more than the emulated
    /// CPUs could answer in time; 60 s is mqtt.js's default.
    #[arg(long, default_value_t = 60)]
    vm_keep_alive: u64,
    /// connections-vm: the test image built with `scripts/build-test-image.sh --load`.
    #[arg(long, default_value_os_t = vm::default_image_dir())]
    vm_image: std::path::PathBuf,
    /// Screens in the reconnect-storm scenario.
    #[arg(long, default_value_t = 600)]
    storm_screens: usize,
    /// Closed-loop clients in the flat-out scenario: enough that the box, not the round trip,
    /// is the limit (16 left the 2 cores 40 % idle; 32, 64 and 128 gave 5,380, 6,325 and 6,481
    /// orders/s, docs/benchmarks.md).
    #[arg(long, default_value_t = 64)]
    flat_clients: usize,
    /// pi: milliseconds each fsync of docketd's data dir takes (an SD card's, docs/benchmarks.md).
    #[arg(long, default_value_t = 5.0)]
    pi_fsync_ms: f64,
    /// pi: one Pi 4 core as a fraction of one core of this machine (default: the calibration
    /// for this CPU in pi.rs).
    #[arg(long)]
    pi_core_share: Option<f64>,
    /// pi: the Pi 4's four cores together, in cores of this machine (default: as above).
    #[arg(long)]
    pi_total_cores: Option<f64>,
    /// Messages in broker-hop's flat-out part.
    #[arg(long, default_value_t = 50_000)]
    hop_messages: usize,
    /// Write the results here as JSON.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Write the results here as a Markdown block (scripts/bench.sh --update-docs puts it in
    /// docs/benchmarks.md: numbers there come from a real run, never typed in).
    #[arg(long)]
    markdown: Option<std::path::PathBuf>,
}

/// The budgets of the benchmark issue: (scenario, what, value key, limit, higher is better).
const BUDGETS: &[(&str, &str, &str, f64, bool)] = &[
    (
        "x100",
        "order-to-screen p50 <= 1.5 ms",
        "p50_ms",
        1.5,
        false,
    ),
    ("x100", "order-to-screen p99 <= 8 ms", "p99_ms", 8.0, false),
    (
        "flat-out",
        ">= 5,000 durable orders/s, 0 lost, 0 duplicated",
        "orders_per_s",
        5000.0,
        true,
    ),
    ("flat-out", "0 lost", "lost", 0.0, false),
    ("flat-out", "0 duplicated", "duplicated", 0.0, false),
    ("seed", "idle RSS <= 32 MB", "idle_rss_mb", 32.0, false),
    (
        "connections",
        "600 connected devices: RSS <= 64 MB",
        "rss_600_mb",
        64.0,
        false,
    ),
    (
        "connections",
        "every connection held: 0 failures",
        "failures",
        0.0,
        false,
    ),
    (
        "connections-vm",
        "10,000 connections held in the box's image: devices",
        "devices",
        10000.0,
        true,
    ),
    (
        "connections-vm",
        "10,000 connections held in the box's image: 0 failures",
        "failures",
        0.0,
        false,
    ),
    (
        "reconnect-storm",
        "600 screens exact again <= 2 s (median of 3 storms)",
        "recover_ms",
        2000.0,
        false,
    ),
    (
        "browser",
        "card on the KDS, mean <= 4.5 ms (case study 45 ms / 10)",
        "mean_ms",
        4.5,
        false,
    ),
    (
        "browser",
        "card on the KDS, p99 <= 8.8 ms (case study 88 ms / 10)",
        "p99_ms",
        8.8,
        false,
    ),
    (
        "restart",
        "start to READY <= 1 s (1,000 open orders)",
        "restart_ms",
        1000.0,
        false,
    ),
];

/// PASS/FAIL lines for the budgets whose scenario ran.
fn budget_lines(results: &serde_json::Map<String, Value>) -> Vec<(String, String, f64, bool)> {
    let mut out = Vec::new();
    for (scenario, what, key, limit, higher) in BUDGETS {
        let Some(v) = results
            .get(*scenario)
            .and_then(|r| r.get(*key))
            .and_then(Value::as_f64)
        else {
            continue;
        };
        let pass = if *higher { v >= *limit } else { v <= *limit };
        out.push((scenario.to_string(), what.to_string(), v, pass));
    }
    out
}

/// Send instants of commands in flight, by command id.
type Sent = Arc<Mutex<HashMap<String, Instant>>>;

struct Measure {
    to_screen: Mutex<Histogram<u64>>,
    reply: Mutex<Histogram<u64>>,
    orders: AtomicU64,
}

impl Measure {
    fn new() -> Arc<Self> {
        let h = || Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
        Arc::new(Measure {
            to_screen: Mutex::new(h()),
            reply: Mutex::new(h()),
            orders: AtomicU64::new(0),
        })
    }
}

impl Measure {
    /// Copies of (order-to-screen, reply).
    fn histograms(&self) -> (Histogram<u64>, Histogram<u64>) {
        let get = |h: &Mutex<Histogram<u64>>| h.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (get(&self.to_screen), get(&self.reply))
    }
}

/// Joins the screens and counts (lost, duplicated, out of order): every screen subscribed before
/// the load started, so it must have every seq from `first_seq` to `last_seq`.
async fn screen_counts(
    screens: Vec<tokio::task::JoinHandle<anyhow::Result<ScreenStats>>>,
    first_seq: u64,
    last_seq: u64,
) -> anyhow::Result<(u64, u64, u64)> {
    let (mut lost, mut dup, mut ooo) = (0, 0, 0);
    for t in screens {
        let s = t.await??;
        dup += s.duplicated;
        ooo += s.out_of_order;
        lost += (first_seq..=last_seq)
            .filter(|q| !s.seen.contains(q))
            .count() as u64;
    }
    Ok((lost, dup, ooo))
}

fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// A screen: counts every event by seq and records order-to-screen latency.
struct ScreenStats {
    received: u64,
    duplicated: u64,
    out_of_order: u64,
    seen: std::collections::HashSet<u64>,
    last: u64,
}

async fn screen(
    mut c: Client,
    sent: Sent,
    m: Arc<Measure>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<ScreenStats> {
    let mut s = ScreenStats {
        received: 0,
        duplicated: 0,
        out_of_order: 0,
        seen: Default::default(),
        last: 0,
    };
    loop {
        let msg = tokio::select! {
            m = c.recv() => m,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if stop.load(Relaxed) { break; } else { continue; }
            }
        };
        let Some(msg) = msg else { break };
        let now = Instant::now();
        if msg.topic != wire::EVENTS_TOPIC {
            continue;
        }
        let Ok(e) = wire::decode::<Event>(&msg.payload) else {
            continue;
        };
        s.received += 1;
        if !s.seen.insert(e.seq) {
            s.duplicated += 1;
        } else if e.seq < s.last {
            s.out_of_order += 1;
        }
        s.last = s.last.max(e.seq);
        if e.kind == wire::EventKind::OrderPlaced {
            if let Some(t0) = sent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&e.command)
            {
                let _ = m
                    .to_screen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .record(us(now - *t0));
            }
        }
    }
    Ok(s)
}

/// Places an order, noting its send instant (the screens time order-to-screen from it) and
/// recording the reply latency.
async fn timed_place(
    c: &mut Client,
    sent: &Sent,
    m: &Measure,
    body: &CommandBody,
) -> anyhow::Result<wire::Reply> {
    let id = c.next_id();
    let t0 = Instant::now();
    sent.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone(), t0);
    c.send_as(&id, body).await?;
    let r = c.reply_to(&id).await?;
    let _ = m
        .reply
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record(us(t0.elapsed()));
    Ok(r)
}

/// A tablet placing orders with Poisson arrivals at `per_min`, until `stop`.
async fn tablet(
    mut c: Client,
    per_min: f64,
    sent: Sent,
    m: Arc<Measure>,
    stop: Arc<AtomicBool>,
    placed: Arc<Mutex<Vec<String>>>,
) -> anyhow::Result<()> {
    let items = [
        "burger-classic",
        "fries",
        "steak-ribeye",
        "salad-caesar",
        "ipa-pint",
        "wings",
    ];
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
                if i == 0 {
                    l.mods = vec!["no-onion".into()];
                    l.notes = Some("allergy: sesame".into());
                }
                l
            })
            .collect();
        let body = CommandBody::PlaceOrder {
            table: format!("{}", n + 1),
            lines,
        };
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

struct Proc {
    pid: u32,
    ticks0: u64,
    t0: Instant,
}

fn proc_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

impl Proc {
    fn start(d: &Daemon) -> Proc {
        let pid = d.pid().unwrap_or(0);
        Proc {
            pid,
            ticks0: proc_ticks(pid),
            t0: Instant::now(),
        }
    }
    fn cpu_pct(&self) -> f64 {
        let ticks = proc_ticks(self.pid).saturating_sub(self.ticks0) as f64;
        ticks / 100.0 / self.t0.elapsed().as_secs_f64() * 100.0
    }
}

/// `--tls`: the devices of every scenario log in over MQTT over TLS.
static TLS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Adds `n` devices in one import and connects them all (a few at a time); any failure is an error.
async fn devices(
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
    let (port, tls) = match TLS.get().copied().unwrap_or(false) {
        true => (d.mqtts, Some(d.trusting_site_ca()?)),
        false => (d.mqtt, None),
    };
    let (clients, failed) = connect_many(port, &creds, 64, docket_tests::KEEP_ALIVE, tls).await;
    if let Some(e) = failed.first() {
        bail!(
            "{} of {n} {prefix} devices failed to connect: {e}",
            failed.len()
        );
    }
    Ok(clients)
}

/// Connects every device, at most `parallel` handshakes at a time: (connected, errors).
async fn connect_many(
    port: u16,
    creds: &[Creds],
    parallel: usize,
    keep_alive: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> (Vec<Client>, Vec<String>) {
    let gate = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for c in creds.iter().cloned() {
        let gate = gate.clone();
        let tls = tls.clone();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let r = match tls {
                Some(t) => Client::connect_tls_with("127.0.0.1", port, &c, t, keep_alive).await,
                None => Client::connect_with("127.0.0.1", port, &c, keep_alive).await,
            };
            r.map_err(|e| format!("{}: {e:#}", c.id))
        });
    }
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(c)) => ok.push(c),
            Ok(Err(e)) => failed.push(e),
            Err(e) => failed.push(e.to_string()),
        }
    }
    (ok, failed)
}

/// Runs an open-loop seed-like load: `tablets` × `per_min`, `screens` screens, for `secs`
/// (or until `until` says done, if given). Returns the scenario's result.
async fn open_loop(
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
async fn closed_loop(d: &Daemon, tag: &str, clients: usize, events: u64) -> anyhow::Result<Value> {
    let done = Arc::new(AtomicU64::new(0));
    let proc = Proc::start(d);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for mut c in devices(d, &format!("{tag}-mgr"), "manager", &[], clients).await? {
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            while done.load(Relaxed) < events {
                let r = c
                    .command(&CommandBody::PlaceOrder {
                        table: "1".into(),
                        lines: vec![line("burger-classic", 1)],
                    })
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
const NO_RATE_LIMIT: &str = "commands_per_second = 0\nmax_open_orders = 100000";

async fn scenario(name: &str, a: &Args) -> anyhow::Result<Value> {
    Ok(match name {
        "seed" | "x10" | "x100" => {
            let mult = match name {
                "seed" => 1.0,
                "x10" => 10.0,
                _ => 100.0,
            };
            // One kitchen device completes every order (a stand-in for all the expo screens):
            // at x100 that is ~170 commands/s from one device, far over its rate limit.
            let d = Daemon::start_with(&[], "demo", NO_RATE_LIMIT)?;
            let idle = rss_mb(d.pid().unwrap_or(0));
            let before = pi::commits(&d)?;
            let busy = engine_busy(&d)?;
            let t = std::time::Instant::now();
            let mut v = open_loop(&d, name, 50, 2.0 * mult, 10, a.duration, None).await?;
            // docketd's own commit histogram over the run: the durable part of the time.
            v["commit"] = pi::commits(&d)?.since(&before);
            let (c, b, n) = engine_busy(&d)?;
            let secs = t.elapsed().as_secs_f64();
            v["engine"] = json!({
                "commands_busy": (c - busy.0) / secs,
                "boards_busy": (b - busy.1) / secs,
                "board_publishes": n - busy.2,
                "board_ms_each": if n > busy.2 { (b - busy.1) / (n - busy.2) * 1000.0 } else { 0.0 },
            });
            v["idle_rss_mb"] = json!(idle);
            v["load"] = json!(format!(
                "50 tablets × {} orders/min, 10 screens",
                2.0 * mult
            ));
            v
        }
        "flat-out" | "flat-out-10" => {
            let d = Daemon::start_with(&[], "demo", NO_RATE_LIMIT)?;
            let screens = if name == "flat-out" { 2 } else { 10 };
            flat::flat_out(&d, a.flat_clients, screens, a.duration).await?
        }
        "pi" => pi::pi(a).await?,
        "connections" => connections::connections(a).await?,
        "connections-vm" => vm::connections_vm(a).await?,
        "reconnect-storm" => storm::storm(a).await?,
        "broker-hop" => hop::hop(a).await?,
        "browser" => browser::browser(a).await?,
        "backlog" => backlog(a).await?,
        "restart" => restart(a).await?,
        other => bail!("unknown scenario {other:?}"),
    })
}

/// Time from start to READY (`/healthz` 200, after the retained menu, boards and status are
/// republished from SQLite) with 1,000 open orders and `restart_events` events in the store.
async fn restart(a: &Args) -> anyhow::Result<Value> {
    let mut d = Daemon::start_with(&[], "demo", NO_RATE_LIMIT)?;
    let history = a.restart_events.saturating_sub(1000);
    eprintln!("restart: building {history} historical events and 1,000 open orders");
    closed_loop(&d, "hist", 8, history).await?;
    let mut c = devices(&d, "open", "tablet", &[], 1).await?.remove(0);
    for i in 0..1000 {
        let r = c
            .command(&CommandBody::PlaceOrder {
                table: format!("{}", i % 50 + 1),
                lines: vec![line("burger-classic", 1), line("fries", 1)],
            })
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
async fn backlog(a: &Args) -> anyhow::Result<Value> {
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

fn markdown(
    results: &serde_json::Map<String, Value>,
    budgets: &[(String, String, f64, bool)],
    a: &Args,
) -> String {
    let m = machine();
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let num = |x: Option<f64>, p: usize| x.map_or("—".to_owned(), |x| format!("{x:.p$}"));
    let mut o = format!(
        "Run: `scripts/bench.sh --scenario {} --duration {}` on {} cores ({}), kernel {}, {} (UTC), \
         docketd {}.\n\n| scenario | load | order-to-screen p50 / p99 / p999 / max (ms) | reply p50 / p99 (ms) | orders/s | lost | dup | RSS MB | CPU % |\n|---|---|---|---|---|---|---|---|---|\n",
        a.scenario,
        a.duration,
        m["cores"],
        m["cpu"].as_str().unwrap_or(""),
        m["kernel"].as_str().unwrap_or(""),
        std::process::Command::new("date").args(["-u", "+%Y-%m-%d %H:%M"]).output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default(),
        env!("CARGO_PKG_VERSION"),
    );
    for (n, v) in results.iter().flat_map(|(n, v)| rows(n, v)) {
        let load = v
            .get("load")
            .and_then(Value::as_str)
            .unwrap_or(if n == "backlog" {
                "seed load while the uplink backlog drains"
            } else {
                ""
            });
        o += &format!(
            "| {n} | {load} | {} / {} / {} / {} | {} / {} | {} | {} | {} | {} | {} |\n",
            num(f(v, "p50_ms"), 2),
            num(f(v, "p99_ms"), 2),
            num(f(v, "p999_ms"), 2),
            num(f(v, "max_ms"), 2),
            num(f(v, "reply_p50_ms"), 2),
            num(f(v, "reply_p99_ms"), 2),
            num(f(v, "orders_per_s"), 1),
            num(f(v, "lost"), 0),
            num(f(v, "duplicated"), 0),
            num(f(v, "rss_mb"), 1),
            num(f(v, "cpu_pct"), 1),
        );
    }
    if let Some(v) = results.get("flat-out") {
        o += &format!(
            "\nflat-out: {} durable events/s ({} orders/s, each placed and completed: two durable commands).\n",
            num(f(v, "events_per_s"), 0),
            num(f(v, "orders_per_s"), 0)
        );
    }
    if let Some(v) = results.get("flat-out-10") {
        o += &flat::markdown(v);
    }
    if let Some(v) = results.get("pi") {
        o += &pi::markdown(v);
    }
    if let Some(v) = results.get("backlog") {
        o += &format!(
            "\nbacklog: {} events caught up in {} s = **{} events/s into PostgreSQL**; the seed load's order-to-screen p50 / p99 was {} / {} ms with the uplink idle and {} / {} ms while the backlog drained ({} and {} samples).\n",
            v["backlog_events"], num(f(v, "catch_up_seconds"), 1), num(f(v, "catch_up_events_per_s"), 0),
            num(f(&v["baseline"], "p50_ms"), 2), num(f(&v["baseline"], "p99_ms"), 2),
            num(f(&v["during_drain"], "p50_ms"), 2), num(f(&v["during_drain"], "p99_ms"), 2),
            v["baseline"]["samples"], v["during_drain"]["samples"],
        );
    }
    if let Some(v) = results.get("restart") {
        o += &format!(
            "\nrestart: {} events and {} open orders in the store: start → READY in {} ms (median of 3: {}).\n",
            v["events"], v["open_orders"], num(f(v, "restart_ms"), 0), v["ready_ms"]
        );
    }
    if let Some(v) = results.get("broker-hop") {
        let (dk, mq) = (&v["docketd"], &v["mosquitto"]);
        o += &format!(
            "\nbroker-hop ({}): p50 / p99 / p999 {} / {} / {} ms through docketd's broker (its connection layer included), {} / {} / {} ms through Mosquitto {}; flat out {} vs {} messages/s.\n",
            v["load"].as_str().unwrap_or(""),
            num(f(dk, "p50_ms"), 3), num(f(dk, "p99_ms"), 3), num(f(dk, "p999_ms"), 3),
            num(f(mq, "p50_ms"), 3), num(f(mq, "p99_ms"), 3), num(f(mq, "p999_ms"), 3),
            mosquitto_version(),
            num(f(dk, "msgs_per_s"), 0), num(f(mq, "msgs_per_s"), 0),
        );
        for full in ["seed", "x100"] {
            if let Some(p) = results.get(full).and_then(|r| f(r, "p50_ms")) {
                if let Some(h) = f(dk, "p50_ms").filter(|h| *h > 0.0) {
                    o += &format!(
                        "The full order path at `{full}` (MAC check, decision, durable commit, reply, event: two broker hops and the engine) is {:.1}× docketd's bare hop at p50.\n",
                        p / h
                    );
                    o += &where_the_time_goes(full, &results[full], h);
                }
            }
        }
    }
    if let Some(v) = results.get("connections") {
        o += &format!(
            "\nconnections: {} devices, {} failures; docketd RSS {} MB at 600 devices and {} MB at {} ({} KB and {} open files per connection: rumqttd's router queues plus the connection layer's); Mosquitto holding as many: {} KB per connection.\n",
            v["devices"], v["failures"], num(f(v, "rss_600_mb"), 1), num(f(v, "rss_mb"), 1), v["devices"],
            num(f(v, "kb_per_connection"), 1), num(f(v, "files_per_connection"), 2), num(f(&v["mosquitto"], "kb_per_connection"), 1),
        );
    }
    if let Some(v) = results.get("connections-vm") {
        if let Some(why) = v.get("not_available").and_then(Value::as_str) {
            o += &format!("\nconnections-vm: not available: {why}.\n");
        } else {
            o += &format!(
                "\nconnections-vm: {}: {} devices, {} failures (connecting took {} s at 600 and {} s for the rest, emulated); docketd RSS {} MB at 600 devices and {} MB at {} ({} KB per connection); lost {}, duplicated {} under the seed load on top.\n",
                v["load"].as_str().unwrap_or(""), v["devices"], v["failures"],
                num(f(&v["phases"][0], "connect_seconds"), 0), num(f(&v["phases"][1], "connect_seconds"), 0),
                num(f(v, "rss_600_mb"), 1), num(f(v, "rss_mb"), 1), v["devices"],
                num(f(v, "kb_per_connection"), 1), v["lost"], v["duplicated"],
            );
        }
    }
    if let Some(v) = results.get("reconnect-storm") {
        o += &format!(
            "\nreconnect-storm: {}; every board exact again after {} ms (median of 3 storms: {:?} ms; a screen's p50 {} ms); first connection of all of them at once: {} ms.\n",
            v["load"].as_str().unwrap_or(""), num(f(v, "recover_ms"), 0),
            v["recoveries_ms"].as_array().map(|a| a.iter().filter_map(Value::as_f64).map(|x| x.round() as u64).collect::<Vec<_>>()).unwrap_or_default(),
            num(f(v, "p50_ms"), 0), num(f(v, "cold_start_ms"), 0),
        );
    }
    if let Some(v) = results.get("browser") {
        o += &format!(
            "\nbrowser: {}: card in the KDS page's DOM {} ms mean, {} / {} ms p50 / p99 over {} orders (the case study: 45 ms mean, 88 ms p99).\n",
            v["load"].as_str().unwrap_or(""), num(f(v, "mean_ms"), 2), num(f(v, "p50_ms"), 2), num(f(v, "p99_ms"), 2), v["samples"],
        );
    }
    if let Some(v) = results.get("seed").and_then(|v| f(v, "idle_rss_mb")) {
        o += &format!("\nidle RSS (seed, before the load): {v:.1} MB.\n");
    }
    if !budgets.is_empty() {
        o += "\n| budget | value | |\n|---|---|---|\n";
        for (sc, what, v, pass) in budgets {
            o += &format!(
                "| {sc}: {what} | {v:.2} | {} |\n",
                if *pass { "PASS" } else { "FAIL" }
            );
        }
    }
    o
}

/// A result's table rows: `pi` has one per run, the others one.
fn rows<'a>(name: &str, v: &'a Value) -> Vec<(String, &'a Value)> {
    if name == "pi" {
        pi::rows(v)
    } else {
        vec![(name.to_owned(), v)]
    }
}

fn mosquitto_version() -> String {
    std::process::Command::new("/usr/sbin/mosquitto")
        .arg("-h")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| format!("({})", l.trim()))
        })
        .unwrap_or_default()
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
           "cpu": cpu, "kernel": kernel.trim()})
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let _ = TLS.set(a.tls);
    let names: Vec<&str> = if a.scenario == "all" {
        vec![
            "seed",
            "x10",
            "x100",
            "flat-out",
            "flat-out-10",
            "pi",
            "broker-hop",
            "browser",
            "connections",
            "connections-vm",
            "reconnect-storm",
            "backlog",
            "restart",
        ]
    } else {
        a.scenario.split(',').collect()
    };
    let mut results = serde_json::Map::new();
    for n in &names {
        eprintln!("== {n}");
        let v = scenario(n, &a)
            .await
            .with_context(|| format!("scenario {n}"))?;
        results.insert((*n).to_owned(), v);
    }
    println!(
        "\n{:<15} {:>9} {:>9} {:>9} {:>9} {:>10} {:>5} {:>5} {:>8} {:>6}",
        "scenario",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "max ms",
        "orders/s",
        "lost",
        "dup",
        "rss MB",
        "cpu %"
    );
    for (n, v) in results.iter().flat_map(|(n, v)| rows(n, v)) {
        let f = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
        println!(
            "{:<15} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>10.1} {:>5} {:>5} {:>8.1} {:>6.1}",
            n,
            f("p50_ms"),
            f("p99_ms"),
            f("p999_ms"),
            f("max_ms"),
            f("orders_per_s"),
            f("lost"),
            f("duplicated"),
            f("rss_mb"),
            f("cpu_pct")
        );
        if let Some(r) = v.get("catch_up_events_per_s") {
            println!("           uplink catch-up: {} events in {:.1} s = {:.0} events/s into PostgreSQL; seed load p50/p99 {:.3}/{:.3} ms before, {:.3}/{:.3} ms while draining",
                v["backlog_events"], v["catch_up_seconds"].as_f64().unwrap_or(0.0), r.as_f64().unwrap_or(0.0),
                v["baseline"]["p50_ms"].as_f64().unwrap_or(0.0), v["baseline"]["p99_ms"].as_f64().unwrap_or(0.0),
                v["during_drain"]["p50_ms"].as_f64().unwrap_or(0.0), v["during_drain"]["p99_ms"].as_f64().unwrap_or(0.0));
        }
        if let Some(r) = v.get("restart_ms") {
            println!(
                "                restart: {} events, {} open orders: start to READY {:.0} ms (median of 3)",
                v["events"], v["open_orders"], r.as_f64().unwrap_or(0.0)
            );
        }
        if let (Some(dk), Some(mq)) = (v.get("docketd"), v.get("mosquitto")) {
            let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "                hop p50/p99/p999 ms: docketd {:.3}/{:.3}/{:.3}, mosquitto {:.3}/{:.3}/{:.3}; flat out msgs/s: docketd {:.0}, mosquitto {:.0}",
                f(dk, "p50_ms"), f(dk, "p99_ms"), f(dk, "p999_ms"),
                f(mq, "p50_ms"), f(mq, "p99_ms"), f(mq, "p999_ms"),
                f(dk, "msgs_per_s"), f(mq, "msgs_per_s")
            );
        }
        if let Some(m) = v.get("kb_per_connection") {
            println!(
                "                {} devices: {} failures; RSS {:.1} MB at 600, {:.1} MB at {}: {:.1} KB per connection (mosquitto {:.1} KB)",
                v["devices"], v["failures"], v["rss_600_mb"].as_f64().unwrap_or(0.0),
                v["rss_mb"].as_f64().unwrap_or(0.0), v["devices"], m.as_f64().unwrap_or(0.0),
                v["mosquitto"]["kb_per_connection"].as_f64().unwrap_or(0.0)
            );
        }
        if let Some(r) = v.get("recover_ms") {
            println!(
                "                {} screens exact again {:.0} ms after reconnecting at once (median of 3 storms; cold start {:.0} ms)",
                v["screens"], r.as_f64().unwrap_or(0.0), v["cold_start_ms"].as_f64().unwrap_or(0.0)
            );
        }
        if let Some(r) = v.get("mean_ms") {
            println!(
                "                Chromium tablet → Chromium KDS card: mean {:.2} ms over {} orders (case study: 45 ms mean, 88 ms p99)",
                r.as_f64().unwrap_or(0.0), v["samples"]
            );
        }
        if let Some(r) = v.get("events_per_s") {
            println!(
                "                flat out: {:.0} durable events/s",
                r.as_f64().unwrap_or(0.0)
            );
        }
    }
    if let Some(v) = results.get("flat-out-10") {
        print!("{}", flat::markdown(v));
    }
    if let Some(v) = results.get("pi") {
        print!("{}", pi::markdown(v));
    }
    let budgets = budget_lines(&results);
    for (sc, what, v, pass) in &budgets {
        println!(
            "{} {sc}: {what}: {v:.2}",
            if *pass { "PASS" } else { "FAIL" }
        );
    }
    if let Some(p) = &a.markdown {
        std::fs::write(p, markdown(&results, &budgets, &a))?;
    }
    let out = json!({"machine": machine(), "scenarios": results,
                     "budgets": budgets.iter().map(|(s, w, v, p)| json!({"scenario": s, "budget": w, "value": v, "pass": p})).collect::<Vec<_>>()});
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&out)?)?;
        eprintln!("results in {}", p.display());
    }
    Ok(())
}

/// docketd's engine counters: seconds on command batches, seconds on boards, board publishes.
fn engine_busy(d: &Daemon) -> anyhow::Result<(f64, f64, f64)> {
    Ok((
        d.metric("docket_command_seconds_total")?,
        d.metric("docket_board_seconds_total")?,
        d.metric("docket_board_publishes_total")?,
    ))
}

/// Where an open-loop scenario's order-to-screen time goes at p50, from what this run measured
/// itself: docketd's commit histogram (the SQLite transaction and its fsync), the bare broker hop
/// (a device → the router → a device: the command's way in and the event's way out make one
/// such trip between them), and the rest (the engine: decode, MAC, decision, encoding; and the
/// fan-out of the event to every screen).
fn where_the_time_goes(name: &str, v: &Value, hop_p50: f64) -> String {
    let (Some(screen), Some(reply), Some(commit)) = (
        v["p50_ms"].as_f64(),
        v["reply_p50_ms"].as_f64(),
        v["commit"]["mean_ms"].as_f64(),
    ) else {
        return String::new();
    };
    let engine = (reply - hop_p50 - commit).max(0.0);
    let e = &v["engine"];
    format!(
        "Where `{name}`'s p50 goes ({screen:.3} ms to the screens, {reply:.3} ms to the reply): the commit {commit:.3} ms (mean of {} commits; p50 bucket ≤ {} ms), one broker hop {hop_p50:.3} ms, the engine and its publishing {engine:.3} ms (the reply less the two), and the fan-out to the screens {:.3} ms (screens less reply). The engine thread was busy {:.1} % of the run with command batches and {:.1} % with boards ({} board publishes, {:.3} ms each): a command that arrives while a board is encoded waits for it.\n",
        v["commit"]["commits"],
        v["commit"]["p50_le_ms"],
        screen - reply,
        e["commands_busy"].as_f64().unwrap_or(0.0) * 100.0,
        e["boards_busy"].as_f64().unwrap_or(0.0) * 100.0,
        e["board_publishes"],
        e["board_ms_each"].as_f64().unwrap_or(0.0),
    )
}
