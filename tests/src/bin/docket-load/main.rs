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
//! seed load runs, against the same load with the uplink idle), `restart` and `fleet` (N sites
//! into one head office, and sites back from an hour offline: fleet/mod.rs). Prints a table;
//! `--json PATH` writes the results.

mod browser;
mod connections;
mod flat;
mod fleet;
mod history;
mod hop;
mod loops;
mod measure;
mod pi;
mod report;
mod storm;
mod vm;

use anyhow::{bail, Context};
use clap::Parser;
use docket_tests::{rss_mb, Daemon};
use serde_json::{json, Value};

use crate::loops::{devices, open_loop, NO_RATE_LIMIT, TLS};
use crate::measure::{
    engine_busy, ms, screen, screen_counts, timed_place, us, Measure, Proc, Sent,
};

#[derive(Parser)]
#[command(about = "Docket benchmark load generator")]
struct Args {
    /// seed, x10, x100, flat-out, flat-out-10, pi, connections, connections-vm,
    /// reconnect-storm, broker-hop, browser, backlog, restart, fleet; several comma-separated,
    /// or all
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
    /// fleet: the fleet sizes run one after another (sites at the case study's load each).
    #[arg(long, default_value = "10,100,1000")]
    fleet_sites: String,
    /// fleet: how many of each fleet's sites are whole docketd processes under MQTT load (the
    /// rest run docketd's store and relays in this process).
    #[arg(long, default_value_t = 2)]
    fleet_procs: usize,
    /// fleet: head office's schema partitioned by site into this many (0: plain).
    #[arg(long, default_value_t = 0)]
    fleet_partitions: u32,
    /// fleet: every site's `[uplink] poll_interval_ms` (default: the box's own default).
    #[arg(long)]
    fleet_poll_ms: Option<u64>,
    /// fleet: sites coming back from being offline at once.
    #[arg(long, default_value_t = 100)]
    catchup_sites: usize,
    /// fleet: minutes those sites were offline (of service in their backlog).
    #[arg(long, default_value_t = 60)]
    catchup_minutes: u64,
    /// Write the results here as JSON.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Write the results here as a Markdown block (scripts/bench.sh --update-docs puts it in
    /// docs/benchmarks.md: numbers there come from a real run, never typed in).
    #[arg(long)]
    markdown: Option<std::path::PathBuf>,
}

/// `[printing]` with every station of the demo menu printing every ticket at `address`.
fn print_everything(address: &str) -> String {
    let mut t = String::from("[printing]\n");
    for station in ["grill", "fry", "cold", "bar"] {
        t += &format!(
            "[[printing.printer]]\nstation = \"{station}\"\naddress = \"{address}\"\nmode = \"always\"\n"
        );
    }
    t
}

async fn scenario(name: &str, a: &Args) -> anyhow::Result<Value> {
    Ok(match name {
        "seed" | "x10" | "x100" | "x100-print" => {
            let mult = match name {
                "seed" => 1.0,
                "x10" => 10.0,
                _ => 100.0,
            };
            // x100-print: every station's tickets also go to a kitchen printer (`always`), a
            // virtual one in this process: the printers' cost to the kitchen's screens.
            let printer = match name {
                "x100-print" => {
                    Some(docket_tests::printer::VirtualPrinter::start(Default::default()).await?)
                }
                _ => None,
            };
            let toml = match &printer {
                Some(p) => format!("{NO_RATE_LIMIT}\n{}", print_everything(&p.addr())),
                None => NO_RATE_LIMIT.to_owned(),
            };
            // One kitchen device completes every order (a stand-in for all the expo screens):
            // at x100 that is ~170 commands/s from one device, far over its rate limit.
            let d = Daemon::start_with(&[], "demo", &toml)?;
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
            if let Some(p) = &printer {
                let printed = p.tickets().len();
                eprintln!("{name}: {printed} tickets printed on the virtual printer");
                v["tickets_printed"] = json!(printed);
            }
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
        "backlog" => history::backlog(a).await?,
        "restart" => history::restart(a).await?,
        "fleet" => fleet::fleet(a).await?,
        other => bail!("unknown scenario {other:?}"),
    })
}

fn main() -> anyhow::Result<()> {
    // A few blocking threads: the fleet scenario's thousand in-process sites read SQLite
    // through the blocking pool, and hundreds of threads (tokio's default cap is 512) spent
    // the machine's two cores switching between them and contending in malloc.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
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
            "fleet",
        ]
    } else {
        a.scenario.split(',').collect()
    };
    let mut results = serde_json::Map::new();
    for n in &names {
        eprintln!("== {n}");
        let t = std::time::Instant::now();
        let v = scenario(n, &a)
            .await
            .with_context(|| format!("scenario {n}"))?;
        // Not a result: where a run's minutes go (CI runs the smoke of every scenario).
        eprintln!("== {n} took {:.0} s", t.elapsed().as_secs_f64());
        results.insert((*n).to_owned(), v);
    }
    report::print(&results);
    let budgets = report::budget_lines(&results);
    for (sc, what, v, pass) in &budgets {
        println!(
            "{} {sc}: {what}: {v:.2}",
            if *pass { "PASS" } else { "FAIL" }
        );
    }
    if let Some(p) = &a.markdown {
        std::fs::write(p, report::markdown(&results, &budgets, &a))?;
    }
    let out = json!({"machine": report::machine(), "scenarios": results,
                     "budgets": budgets.iter().map(|(s, w, v, p)| json!({"scenario": s, "budget": w, "value": v, "pass": p})).collect::<Vec<_>>()});
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&out)?)?;
        eprintln!("results in {}", p.display());
    }
    Ok(())
}
