//! docket-chaos: the fault campaign, long version (scripts/chaos.sh). The short version of the
//! same scenarios runs in `scripts/test.sh` (tests/tests/faults.rs).
//!
//! Each scenario starts its own docketd (`DOCKETD_BIN`) with a restaurant of simulated devices,
//! each behind its own fault-injecting proxy (`docket_tests::faults`), and ends with the oracle
//! (`docket_tests::chaos::check`) over the box's SQLite:
//!
//! - `wifi`: every device's link goes through delays, stalls, blackholes (10–60 s), one-way
//!   cuts, resets, half-closes and flapping, one after another, for `--wifi-minutes`;
//! - `kill`: kill -9 of the box at random moments under load, `--kill-cycles` times, with
//!   SQLite's integrity check after every kill, relaying to a real PostgreSQL (partitioned by
//!   site with `DOCKET_TEST_POSTGRES=partitioned`, as the tests);
//! - `hang`: SIGSTOP for `--hang-seconds`, then SIGCONT.
//!
//! Prints a table and, with `--markdown PATH`, writes it as a Markdown block for
//! docs/reliability.md. Exits non-zero if anything was lost, doubled or left inconsistent.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use docket_tests::chaos::{self, Report, Restaurant};
use docket_tests::servers::Postgres;
use docket_tests::Daemon;

#[derive(Parser)]
#[command(about = "Docket fault campaign: bad Wi-Fi, kill -9, a hung box; nothing lost or doubled")]
struct Args {
    /// wifi, kill, hang; several comma-separated, or all
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Minutes of bad Wi-Fi.
    #[arg(long, default_value_t = 30.0)]
    wifi_minutes: f64,
    /// kill -9 cycles.
    #[arg(long, default_value_t = 100)]
    kill_cycles: usize,
    /// Seconds the box stays stopped (SIGSTOP).
    #[arg(long, default_value_t = 20)]
    hang_seconds: u64,
    /// Simulated tablets; with the default 20 orders/min each that is x10 the case study's
    /// 50 tablets × 2 orders/min.
    #[arg(long, default_value_t = 50)]
    tablets: usize,
    /// Orders per minute per tablet.
    #[arg(long, default_value_t = 20.0)]
    orders_per_min: f64,
    /// Shortest and longest blackhole, seconds.
    #[arg(long, default_value = "10,60", value_parser = pair)]
    blackhole: (u64, u64),
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the results as a Markdown block here.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

fn pair(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("{s:?}: want LO,HI"))?;
    let a: u64 = a.trim().parse().map_err(|e| format!("{a:?}: {e}"))?;
    let b: u64 = b.trim().parse().map_err(|e| format!("{b:?}: {e}"))?;
    if a == 0 || b < a {
        return Err(format!("{s:?}: want 0 < LO <= HI"));
    }
    Ok((a, b))
}

/// Devices notice a dead link within a few seconds, as a well-configured tablet would.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

struct Row {
    scenario: String,
    ran: Duration,
    report: Report,
    converge: Duration,
    notes: String,
}

fn interval(a: &Args) -> Duration {
    Duration::from_secs_f64(60.0 / a.orders_per_min.max(0.01))
}

async fn wifi(a: &Args) -> anyhow::Result<Row> {
    let d = Daemon::start_isolated(&[], "chaos-wifi", "")?;
    let path = if d.over_interface() {
        "the box in its own network namespace, reached over veth"
    } else {
        "the box on loopback (no network namespaces here)"
    };
    let r = Restaurant::open(&d, a.tablets, interval(a), KEEP_ALIVE, a.seed).await?;
    let load = Duration::from_secs_f64(a.wifi_minutes * 60.0);
    eprintln!("wifi: {} devices for {load:?}", r.proxies.len());
    let start = Instant::now();
    // docketd's memory over the run: (minutes since start, RSS MB) every 10 s.
    let pid = d.pid().context("docketd has no pid")?;
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        loop {
            samples.push((
                start.elapsed().as_secs_f64() / 60.0,
                docket_tests::rss_mb(pid),
            ));
            if samples.len() % 30 == 0 {
                eprintln!("wifi: docketd RSS {:.1} MB", docket_tests::rss_mb(pid));
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
            if start.elapsed() >= load {
                samples.push((
                    start.elapsed().as_secs_f64() / 60.0,
                    docket_tests::rss_mb(pid),
                ));
                return samples;
            }
        }
    });
    let (report, converge, applied) = chaos::bad_wifi(
        &r,
        &d.db_path(),
        load,
        (
            Duration::from_secs(a.blackhole.0),
            Duration::from_secs(a.blackhole.1),
        ),
        a.seed,
    )
    .await?;
    let ran = start.elapsed();
    let rss = if sampler.is_finished() {
        sampler.await?
    } else {
        sampler.abort();
        Vec::new()
    };
    r.close().await;
    let notes = applied
        .iter()
        .map(|(k, v)| format!("{k} ×{v}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Row {
        scenario: format!("bad Wi-Fi, {} min", a.wifi_minutes),
        ran,
        report,
        converge,
        notes: format!(
            "{path}; faults: {notes}; blackholes {}–{} s; {}",
            a.blackhole.0,
            a.blackhole.1,
            rss_line(&rss)
        ),
    })
}

/// "docketd RSS 41 MB at 1 min, 52 MB at 15 min, 55 MB at the end (max 57 MB)".
fn rss_line(samples: &[(f64, f64)]) -> String {
    let Some(&(end_min, end)) = samples.last() else {
        return "docketd RSS not sampled".into();
    };
    let at = |min: f64| {
        samples
            .iter()
            .find(|(m, _)| *m >= min)
            .map(|(m, v)| format!("{v:.0} MB at {m:.0} min"))
    };
    let max = samples.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let mut parts: Vec<String> = [1.0, end_min / 2.0].into_iter().filter_map(at).collect();
    parts.dedup();
    parts.push(format!("{end:.0} MB at the end"));
    format!("docketd RSS {} (max {max:.0} MB)", parts.join(", "))
}

async fn kill(a: &Args) -> anyhow::Result<Row> {
    // Head office is a real PostgreSQL, relayed to while the box dies.
    let pg = Postgres::start()?;
    let toml = format!(
        "[uplink]\npostgres_url = \"{}\"\nbatch_size = 50\n",
        pg.admin_url()
    );
    let mut d = Daemon::start_with(&[], "chaos-kill", &toml)?;
    // Partitioned by site when the run asks (DOCKET_TEST_POSTGRES=partitioned), as the tests.
    let migrate = pg.migrate_args();
    d.cli(&migrate.iter().map(String::as_str).collect::<Vec<_>>())?;
    let r = Restaurant::open(&d, a.tablets, interval(a), KEEP_ALIVE, a.seed).await?;
    eprintln!("kill: {} cycles", a.kill_cycles);
    let start = Instant::now();
    let restarts = chaos::kill_cycles(&mut d, &r, a.kill_cycles, a.seed).await?;
    let converge = r
        .heal_and_settle(&d.db_path(), Duration::from_secs(120))
        .await?;
    let ran = start.elapsed();
    let mut report = chaos::check(&d.db_path(), &r.ledger)?;
    let client = pg.client().await?;
    report.problems.extend(
        chaos::check_pg(
            &client,
            "chaos-kill",
            &d.db_path(),
            Duration::from_secs(120),
        )
        .await?,
    );
    r.close().await;
    let mut ms: Vec<u128> = restarts.iter().map(Duration::as_millis).collect();
    ms.sort_unstable();
    let median = ms.get(ms.len() / 2).copied().unwrap_or(0);
    let max = ms.last().copied().unwrap_or(0);
    Ok(Row {
        scenario: format!("kill -9 × {}", a.kill_cycles),
        ran,
        report,
        converge,
        notes: format!(
            "integrity_check ok after every kill; PostgreSQL uplink holds exactly the box's events; restart to READY median {median} ms, max {max} ms"
        ),
    })
}

async fn hang(a: &Args) -> anyhow::Result<Row> {
    let d = Daemon::start()?;
    let r = Restaurant::open(&d, a.tablets, interval(a), KEEP_ALIVE, a.seed).await?;
    eprintln!("hang: SIGSTOP for {} s", a.hang_seconds);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    chaos::hang(&d, Duration::from_secs(a.hang_seconds)).await?;
    let converge = r
        .heal_and_settle(&d.db_path(), Duration::from_secs(120))
        .await?;
    let ran = start.elapsed();
    let report = chaos::check(&d.db_path(), &r.ledger)?;
    r.close().await;
    Ok(Row {
        scenario: format!("SIGSTOP {} s", a.hang_seconds),
        ran,
        report,
        converge,
        notes: "devices keep ordering into the hung box; converge counted from SIGCONT".into(),
    })
}

fn markdown(a: &Args, rows: &[Row]) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut s = format!(
        "Run: `scripts/chaos.sh` ({} tablets × {} orders/min, a screen per station and an expo, \
         each device behind its own fault proxy) on {cores} cores, kernel {}.\n\n\
         | scenario | ran | commands | acknowledged | rejected | lost | duplicated | reconnects | converged after heal | notes |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        a.tablets,
        a.orders_per_min,
        kernel.trim()
    );
    for r in rows {
        s += &format!(
            "| {} | {:.0} s | {} (+{} resends) | {} | {} | **{}** | **{}** | {} | {:.2} s | {} |\n",
            r.scenario,
            r.ran.as_secs_f64(),
            r.report.sent,
            r.report.resent,
            r.report.acked,
            r.report.rejected,
            r.report.lost,
            r.report.duplicated,
            r.report.reconnects,
            r.converge.as_secs_f64(),
            r.notes
        );
    }
    let problems: Vec<&String> = rows.iter().flat_map(|r| &r.report.problems).collect();
    if problems.is_empty() {
        s += "\nThe oracle found nothing: every acknowledged command is in SQLite once, with the reply \
              the device got; no seq gap; integrity_check ok; every screen equals the box's open \
              orders for its station.\n";
    } else {
        s += "\nThe oracle found problems:\n\n";
        for p in problems {
            s += &format!("- {p}\n");
        }
    }
    s
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let a = Args::parse();
    let all = ["wifi", "kill", "hang"];
    let wanted: Vec<&str> = if a.scenario == "all" {
        all.to_vec()
    } else {
        a.scenario.split(',').map(str::trim).collect()
    };
    let mut rows = Vec::new();
    let mut failed = false;
    for name in wanted {
        let r = match name {
            "wifi" => wifi(&a).await,
            "kill" => kill(&a).await,
            "hang" => hang(&a).await,
            other => {
                eprintln!("docket-chaos: unknown scenario {other:?} (wifi, kill, hang)");
                return ExitCode::from(2);
            }
        };
        match r {
            Ok(row) => {
                println!(
                    "{}: {} in {:.0} s; converged {:.2} s after the heal",
                    row.scenario,
                    row.report,
                    row.ran.as_secs_f64(),
                    row.converge.as_secs_f64()
                );
                for p in &row.report.problems {
                    println!("  PROBLEM: {p}");
                }
                failed |= !row.report.problems.is_empty()
                    || row.report.lost > 0
                    || row.report.duplicated > 0;
                rows.push(row);
            }
            Err(e) => {
                println!("{name}: FAILED: {e:#}");
                failed = true;
            }
        }
    }
    let md = markdown(&a, &rows);
    println!("\n{md}");
    if let Some(p) = &a.markdown {
        if let Err(e) = std::fs::write(p, &md) {
            eprintln!("docket-chaos: cannot write {}: {e}", p.display());
            return ExitCode::FAILURE;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
