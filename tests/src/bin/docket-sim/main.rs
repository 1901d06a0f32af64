//! `docket-sim`: a restaurant's devices against a running docketd, so the demo's event stream
//! visibly moves.
//!
//! Every device in the credentials file (JSON lines as `docketd device add` prints them) connects
//! as itself and speaks the wire contract over MQTT:
//! - tablets read the retained menu and place orders at Poisson-ish random intervals (1–5 lines,
//!   sometimes a modifier or notes, sometimes a held second course that they fire later);
//! - station screens watch their retained boards and bump each ticket after a prep time;
//! - expo screens complete the orders whose status is `ready`;
//! - the kitchen acts only on the simulated tablets' orders and on those open when it started:
//!   an order someone places from a real page is left for them to bump and complete;
//! - manager devices are not simulated.
//!
//! One human line per action on stdout, with the reply's round-trip time. Commands are
//! answered asynchronously: a device never blocks on a reply, so no board or reply is dropped
//! while another is awaited. After a lost connection a device reconnects and resends its
//! unanswered commands with the same ids (the box answers a repeat with the first reply).
//!
//! `docket-sim demo ...` holds the small jobs of scripts/demo.sh (ports, device states, the
//! printed links): see `demo.rs`.

mod ctx;
mod demo;
mod device;
mod order;
mod reply;
mod screen;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use docket_tests::device::{read_creds, CredsLine, Endpoint};
use docket_tests::Client;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::ctx::{Ctx, Stats};
use crate::device::{Device, Kind};

#[derive(Parser, Debug)]
#[command(
    name = "docket-sim",
    version,
    about = "Simulates a restaurant's tablets, station screens and expo against a running docketd",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    sim: Args,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Helpers of scripts/demo.sh (free ports, device states, the printed credentials and links).
    #[command(subcommand)]
    Demo(demo::Demo),
}

#[derive(clap::Args, Debug)]
struct Args {
    /// The appliance's MQTT 3.1.1 listener.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:1884")]
    mqtt: String,
    /// Device credentials: JSON lines as `docketd device add` prints them
    /// ({"id","role","secret"[,"stations"]}).
    #[arg(long, value_name = "FILE", required = true)]
    creds: Option<PathBuf>,
    /// Orders per minute per tablet (mean of random, Poisson-like arrivals; 0 = none).
    #[arg(long, value_name = "N", default_value_t = 6.0)]
    rate_per_min: f64,
    /// Stop after this many seconds (0 = until Ctrl-C or SIGTERM).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    duration: u64,
    /// Shortest prep time at a station, in seconds (bar and cold work in the lower part of the
    /// range, grill in the upper).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    prep_min: f64,
    /// Longest prep time at a station, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    prep_max: f64,
    /// Seed of the random choices (default: from the clock); printed at start.
    #[arg(long)]
    seed: Option<u64>,
    /// Exit 1 if any command was rejected or went unanswered, a connection dropped, or tablets
    /// placed no order at all (for smoke tests).
    #[arg(long)]
    check: bool,
    /// Stations whose simulated cooks work from the kitchen printer's paper: their screen
    /// device still bumps, but says it is no screen (presence offline), so a `fallback` printer
    /// prints their tickets (scripts/demo.sh: the bar). Repeatable.
    #[arg(long, value_name = "STATION")]
    paper: Vec<String>,
}

fn parse_host_port(s: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .with_context(|| format!("--mqtt {s:?}: expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("--mqtt {s:?}: {port:?} is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        bail!("--mqtt {s:?}: expected HOST:PORT");
    }
    Ok((host.to_owned(), port))
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Resolves when the run should stop: Ctrl-C, SIGTERM or the duration. A second signal exits
/// at once.
async fn stop_signal(duration: u64, ctx: Arc<Ctx>, stop: watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => Some(s),
        Err(e) => {
            ctx.say(format_args!("docket-sim: cannot watch SIGTERM: {e}"));
            None
        }
    };
    let until = async {
        if duration == 0 {
            std::future::pending::<()>().await
        } else {
            tokio::time::sleep(Duration::from_secs(duration)).await
        }
    };
    let term_recv = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let why = tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = term_recv => "terminated",
        _ = until => "duration reached",
    };
    ctx.say(format_args!("docket-sim: {why}, disconnecting"));
    let _ = stop.send(true);
    let again = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = again => {}
    }
    std::process::exit(130);
}

async fn run(args: Args) -> anyhow::Result<bool> {
    if !args.rate_per_min.is_finite() || args.rate_per_min < 0.0 {
        bail!("--rate-per-min must be a number >= 0");
    }
    if !(args.prep_min >= 0.0 && args.prep_max >= args.prep_min && args.prep_max.is_finite()) {
        bail!("--prep-min and --prep-max must satisfy 0 <= min <= max");
    }
    let (host, port) = parse_host_port(&args.mqtt)?;
    let creds_path = args.creds.clone().context("--creds FILE is required")?;
    let lines = read_creds(&creds_path)?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let ctx = Arc::new(Ctx {
        start: Instant::now(),
        endpoint: Endpoint::plain(&host, port),
        order_gap: (args.rate_per_min > 0.0).then(|| 60.0 / args.rate_per_min),
        prep: (args.prep_min, args.prep_max),
        run_tag: rand::random(),
        stats: Stats::default(),
        held: Mutex::new(HashSet::new()),
        ours: Mutex::new(HashSet::new()),
    });

    let (mut devices, skipped) = devices(&lines, &ctx, seed)?;
    for d in &mut devices {
        if let Kind::Station(stations) = &d.kind {
            d.paper = stations.iter().all(|s| args.paper.contains(s));
        }
    }
    if devices.is_empty() {
        bail!(
            "no tablet, station or expo device in {}",
            creds_path.display()
        );
    }
    let tablets = devices
        .iter()
        .filter(|d| matches!(d.kind, Kind::Tablet { .. }))
        .count();
    let connected = connect_all(devices).await?;
    announce(&ctx, &args, &connected, &skipped, seed);

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(stop_signal(args.duration, ctx.clone(), stop_tx));
    let mut running = Vec::new();
    for (d, c) in connected {
        running.push(tokio::spawn(d.run(c, stop_rx.clone())));
    }
    for h in running {
        if let Err(e) = h.await {
            ctx.say(format_args!("docket-sim: a device task failed: {e}"));
        }
    }
    Ok(summary(&ctx, &args, tablets))
}

/// The simulated devices of the credentials file (managers and other roles are not simulated:
/// they are returned as "id (role)").
fn devices(
    lines: &[CredsLine],
    ctx: &Arc<Ctx>,
    seed: u64,
) -> anyhow::Result<(Vec<Device>, Vec<String>)> {
    let mut devices = Vec::new();
    let mut skipped = Vec::new();
    let mut lead = true;
    for (i, l) in lines.iter().enumerate() {
        let kind = match l.role.as_str() {
            "tablet" => {
                let k = Kind::Tablet { lead };
                lead = false;
                k
            }
            "station" => {
                if l.stations.is_empty() {
                    bail!(
                        "{} is a station device but its line has no \"stations\"",
                        l.id
                    );
                }
                Kind::Station(l.stations.clone())
            }
            "expo" => Kind::Expo,
            other => {
                skipped.push(format!("{} ({other})", l.id));
                continue;
            }
        };
        devices.push(Device::new(i, l, kind, ctx.clone(), seed));
    }
    Ok((devices, skipped))
}

/// Every device must log in once; after that, lost connections are retried.
async fn connect_all(devices: Vec<Device>) -> anyhow::Result<Vec<(Device, Client)>> {
    let mut connecting = Vec::new();
    for d in devices {
        connecting.push(tokio::spawn(async move {
            let r = d.connect().await;
            (d, r)
        }));
    }
    let mut connected = Vec::new();
    for h in connecting {
        let (d, r) = h.await.context("a connecting task failed")?;
        connected.push((d, r?));
    }
    Ok(connected)
}

/// The first two lines: who connected, and the run's settings.
fn announce(ctx: &Ctx, args: &Args, connected: &[(Device, Client)], skipped: &[String], seed: u64) {
    let names: Vec<String> = connected
        .iter()
        .map(|(d, _)| match &d.kind {
            Kind::Tablet { .. } => format!("{} (tablet)", d.id),
            Kind::Station(s) => format!("{} ({})", d.id, s.join(",")),
            Kind::Expo => format!("{} (expo)", d.id),
        })
        .collect();
    ctx.say(format_args!(
        "docket-sim: {} devices connected to {}:{}: {}{}",
        names.len(),
        ctx.endpoint.host,
        ctx.endpoint.port,
        names.join(", "),
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; not simulated: {}", skipped.join(", "))
        }
    ));
    ctx.say(format_args!(
        "docket-sim: {} orders/min per tablet, prep {}-{} s, seed {seed}{}",
        args.rate_per_min,
        args.prep_min,
        args.prep_max,
        if args.duration > 0 {
            format!(", for {} s", args.duration)
        } else {
            ", until Ctrl-C".to_owned()
        }
    ));
}

/// The closing lines, and `--check`'s verdict (false: it failed).
fn summary(ctx: &Ctx, args: &Args, tablets: usize) -> bool {
    let s = &ctx.stats;
    let mut rtt = s
        .rtt_us
        .lock()
        .map(|v| v.clone())
        .unwrap_or_else(|e| e.into_inner().clone());
    rtt.sort_unstable();
    let (placed, rejected, unanswered, drops) = (
        s.placed.load(Relaxed),
        s.rejected.load(Relaxed),
        s.unanswered.load(Relaxed),
        s.drops.load(Relaxed),
    );
    ctx.say(format_args!(
        "docket-sim: {placed} orders placed, {} courses fired, {} tickets bumped, {} orders completed; \
         {rejected} rejected, {unanswered} unanswered, {drops} dropped connections",
        s.fired.load(Relaxed),
        s.bumped.load(Relaxed),
        s.completed.load(Relaxed),
    ));
    if !rtt.is_empty() {
        ctx.say(format_args!(
            "docket-sim: reply round trip over {} commands: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            rtt.len(),
            percentile(&rtt, 0.5),
            percentile(&rtt, 0.99),
            percentile(&rtt, 1.0)
        ));
    }
    if !args.check {
        return true;
    }
    let mut problems = Vec::new();
    if rejected + unanswered + drops > 0 {
        problems.push(format!(
            "{rejected} rejected, {unanswered} unanswered, {drops} dropped connections"
        ));
    }
    if tablets > 0 && ctx.order_gap.is_some() && placed == 0 {
        problems.push("no order was placed".to_owned());
    }
    if !problems.is_empty() {
        ctx.say(format_args!(
            "docket-sim: CHECK FAILED: {}",
            problems.join("; ")
        ));
        return false;
    }
    ctx.say("docket-sim: check passed");
    true
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Demo(job)) = cli.command {
        return match demo::run(job) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("docket-sim demo: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("docket-sim: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.sim)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("docket-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}
