//! The `pi` scenario: "the box our users buy". docketd runs on roughly a Raspberry Pi 4's CPU
//! (cgroup v1 quotas calibrated from published 7-Zip scores, [`cpu`]) with its data dir on
//! docket-slowfs, whose every fsync takes as long as an SD card's ([`sd`]); the `x100` open loop
//! and the `flat-out` closed loop then run against it from outside the cgroup. First a commit
//! check shows the slow fsync in docketd's own `docket_commit_seconds`: one client, every
//! command its own commit, on this machine's disk, through docket-slowfs at 0 ms and at the SD
//! card's milliseconds. docs/benchmarks.md ("The `pi` profile") has the calibration and what it
//! leaves out.
//!
//! Owns the daemons, cgroups and mounts it makes (all gone when it returns). Where this machine
//! cannot host them (not root, no cgroup v1 cpu controller, no /dev/fuse, no docket-slowfs beside
//! docket-load) the result says "not available" and why, and the run goes on.

mod cpu;
mod sd;

use std::time::{Duration, Instant};

use anyhow::Context;
use docket_core::wire::CommandBody;
use docket_tests::{line, Daemon};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::{devices, open_loop, us, Args, NO_RATE_LIMIT};

/// A Raspberry Pi 4 B (BCM2711, 4 × Cortex-A72 at 1.5 GHz) in 7-Zip's LZMA benchmark, total
/// rating in MIPS, one thread and all four cores: sbc-bench's published run 3EgS (Raspberry Pi
/// OS Buster, kernel 5.10, p7zip 16.02; ThomasKaiser/sbc-bench, Results.md and results/3EgS.txt).
const PI4_7ZIP: (f64, f64) = (1661.0, 5755.0);

/// A host whose 7-Zip scores were measured (`7zz b -mmt1`, `7zz b -mmt<cores>`, 7-Zip 26.02).
struct Host {
    vendor: &'static str,
    family: u32,
    model: u32,
    name: &'static str,
    single: f64,
    multi: f64,
    cores: f64,
}

/// Hosts the pi profile is calibrated for (docs/benchmarks.md, "The `pi` profile").
const HOSTS: &[Host] = &[Host {
    vendor: "AuthenticAMD",
    family: 25,
    model: 17,
    name: "AMD EPYC, Zen 4 (family 25, model 17), 2 vCPUs",
    single: 4432.0,
    multi: 11101.0,
    cores: 2.0,
}];

/// The Pi's CPU in cores of this machine.
struct Calibration {
    core_share: f64,
    total_cores: f64,
    source: String,
}

fn cpuinfo(key: &str) -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_owned())
        })
        .unwrap_or_default()
}

fn calibration(a: &Args) -> Calibration {
    let (vendor, family, model) = (
        cpuinfo("vendor_id"),
        cpuinfo("cpu family"),
        cpuinfo("model"),
    );
    let host = HOSTS
        .iter()
        .find(|h| {
            h.vendor == vendor && family.parse() == Ok(h.family) && model.parse() == Ok(h.model)
        })
        .unwrap_or(&HOSTS[0]);
    let matched = host.vendor == vendor && family.parse() == Ok(host.family);
    let mut source = format!(
        "7-Zip total rating: Pi 4 {} / {} MIPS (1 / 4 cores, sbc-bench), {} {} / {} MIPS (1 / {} cores)",
        PI4_7ZIP.0, PI4_7ZIP.1, host.name, host.single, host.multi, host.cores
    );
    if !matched || model.parse() != Ok(host.model) {
        source += &format!(
            "; NOT this machine's CPU ({vendor} family {family} model {model}, {}): uncalibrated",
            cpuinfo("model name")
        );
    }
    let mut c = Calibration {
        core_share: PI4_7ZIP.0 / host.single,
        total_cores: PI4_7ZIP.1 / (host.multi / host.cores),
        source,
    };
    if let Some(s) = a.pi_core_share {
        c.core_share = s;
        c.source += &format!("; per-thread share set to {s} by --pi-core-share");
    }
    if let Some(t) = a.pi_total_cores {
        c.total_cores = t;
        c.source += &format!("; total set to {t} cores by --pi-total-cores");
    }
    c
}

/// A docketd in a temp dir of its own, optionally on docket-slowfs and under the Pi's CPU caps.
struct PiBox {
    daemon: Option<Daemon>,
    mount: Option<sd::SlowMount>,
    caps: Option<cpu::CpuCaps>,
}

impl PiBox {
    fn start(fsync_ms: Option<f64>, cal: Option<&Calibration>) -> anyhow::Result<PiBox> {
        let dir = tempfile::tempdir()?;
        let mut b = PiBox {
            daemon: None,
            mount: None,
            caps: None,
        };
        if let Some(ms) = fsync_ms {
            let (backing, data) = (dir.path().join("sd"), dir.path().join("data"));
            std::fs::create_dir(&backing)?;
            std::fs::create_dir(&data)?;
            let log = dir.path().join("slowfs.log");
            b.mount = Some(sd::SlowMount::mount(&backing, &data, ms, &log)?);
        }
        if let Some(c) = cal {
            b.caps = Some(cpu::CpuCaps::create(c.core_share, c.total_cores)?);
        }
        let launcher = b.caps.as_ref().map(|c| c.launcher()).unwrap_or_default();
        let d = Daemon::start_in(dir, &launcher, &[], "demo", NO_RATE_LIMIT)?;
        if let (Some(c), Some(pid)) = (b.caps.as_mut(), d.pid()) {
            c.watch(pid);
        }
        b.daemon = Some(d);
        Ok(b)
    }

    fn d(&self) -> &Daemon {
        self.daemon.as_ref().expect("started")
    }

    /// Stops docketd and unmounts; returns the syncs docket-slowfs served (0 without it).
    fn finish(mut self) -> u64 {
        if let Some(d) = self.daemon.as_mut() {
            d.kill9();
        }
        let words = self.mount.as_mut().map(|m| m.unmount()).unwrap_or_default();
        // "docket-slowfs: N syncs, ..."
        words
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for PiBox {
    /// docketd first, then its filesystem, then its temp dir, then its cgroups.
    fn drop(&mut self) {
        if let Some(d) = self.daemon.as_mut() {
            d.kill9();
        }
        self.mount.take();
        self.daemon.take();
        self.caps.take();
    }
}

/// docketd's `docket_commit_seconds` histogram at one instant: (le in s, cumulative count).
pub struct Commits {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

pub fn commits(d: &Daemon) -> anyhow::Result<Commits> {
    let (_, body) = d.get("/metrics")?;
    let mut c = Commits {
        buckets: Vec::new(),
        sum: 0.0,
        count: 0.0,
    };
    for l in body.lines() {
        let Some((k, v)) = l.rsplit_once(' ') else {
            continue;
        };
        let v: f64 = match v.parse() {
            Ok(v) => v,
            Err(_) => continue,
        };
        if let Some(le) = k.strip_prefix("docket_commit_seconds_bucket{le=\"") {
            if let Ok(le) = le.trim_end_matches("\"}").parse::<f64>() {
                c.buckets.push((le, v));
            }
        } else if k == "docket_commit_seconds_sum" {
            c.sum = v;
        } else if k == "docket_commit_seconds_count" {
            c.count = v;
        }
    }
    anyhow::ensure!(
        !c.buckets.is_empty(),
        "no docket_commit_seconds in /metrics"
    );
    Ok(c)
}

impl Commits {
    /// The commits between `before` and now: count, mean, and the buckets holding p50 and p99
    /// (as "at most", in ms).
    pub fn since(&self, before: &Commits) -> Value {
        let n = self.count - before.count;
        let le = |q: f64| {
            self.buckets
                .iter()
                .zip(&before.buckets)
                .find(|((_, a), (_, b))| a - b >= q * n)
                .map(|((le, _), _)| le * 1000.0)
        };
        json!({
            "commits": n,
            "mean_ms": if n > 0.0 { (self.sum - before.sum) / n * 1000.0 } else { f64::NAN },
            "p50_le_ms": le(0.5), "p99_le_ms": le(0.99),
        })
    }
}

/// One client placing and completing orders back to back for `secs`: every command is a commit
/// of its own, so docketd's commit histogram shows the fsync.
async fn probe(d: &Daemon, secs: u64) -> anyhow::Result<Value> {
    let mut c = devices(d, "probe", "manager", &[], 1).await?.remove(0);
    let mut reply = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let before = commits(d)?;
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        let t0 = Instant::now();
        let r = c
            .command(&CommandBody::place("1", vec![line("fries", 1)]))
            .await?;
        reply.record(us(t0.elapsed()))?;
        let order_id = r.order_id.context("order id")?;
        let t0 = Instant::now();
        c.command(&CommandBody::Complete { order_id }).await?;
        reply.record(us(t0.elapsed()))?;
    }
    let mut v = commits(d)?.since(&before);
    v["reply_p50_ms"] = json!(crate::ms(&reply, 0.5));
    Ok(v)
}

/// The commit check: the same probe on this machine's disk, through docket-slowfs at 0 ms (its
/// own cost) and at `fsync_ms`; no CPU caps, so only the filesystem differs.
async fn commit_check(fsync_ms: f64, secs: u64) -> anyhow::Result<Value> {
    let mut out = serde_json::Map::new();
    for (key, fs) in [
        ("disk", None),
        ("slowfs_0ms", Some(0.0)),
        ("slowfs", Some(fsync_ms)),
    ] {
        let b = PiBox::start(fs, None)?;
        out.insert(key.into(), probe(b.d(), secs).await?);
    }
    Ok(Value::Object(out))
}

/// Why this machine cannot run the scenario, if it cannot.
fn unavailable() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")?
                .split_whitespace()
                .nth(1)
                .map(str::to_owned)
        });
    if uid.as_deref() != Some("0") {
        return Some("needs root (a cgroup and a FUSE mount)".into());
    }
    cpu::check().err().or_else(|| sd::check().err())
}

pub async fn pi(a: &Args) -> anyhow::Result<Value> {
    let ms = a.pi_fsync_ms;
    let load = format!(
        "x100 and flat-out ({} clients) on a Raspberry Pi 4's CPU with {ms} ms fsyncs",
        a.flat_clients
    );
    if let Some(why) = unavailable() {
        eprintln!("pi: not available: {why}");
        return Ok(json!({"load": load, "not_available": why}));
    }
    let cal = calibration(a);
    eprintln!(
        "pi: each thread <= {:.1} % of a core, all <= {:.1} %; fsync {ms} ms ({})",
        cal.core_share * 100.0,
        cal.total_cores * 100.0,
        cal.source
    );
    let commit = commit_check(ms, (a.duration / 4).clamp(2, 10)).await?;
    let mut runs = serde_json::Map::new();
    for name in ["x100", "flat-out"] {
        eprintln!("pi: {name}");
        let b = PiBox::start(Some(ms), Some(&cal))?;
        let before = commits(b.d())?;
        let mut v = match name {
            "x100" => {
                let mut v = open_loop(b.d(), "pi", 50, 200.0, 10, a.duration, None).await?;
                v["load"] = json!("50 tablets × 200 orders/min, 10 screens");
                v
            }
            _ => crate::flat::flat_out(b.d(), a.flat_clients, 2, a.duration).await?,
        };
        v["commit"] = commits(b.d())?.since(&before);
        v["cpu_caps"] = b.caps.as_ref().map_or(Value::Null, |c| c.stats());
        // Every sync of the run, the startup's and the checkpoints' included.
        v["slowfs_syncs"] = json!(b.finish());
        runs.insert(name.into(), v);
    }
    Ok(json!({
        "load": load,
        "fsync_ms": ms,
        "core_share": cal.core_share,
        "total_cores": cal.total_cores,
        "calibration": cal.source,
        "commit_check": commit,
        "runs": runs,
    }))
}

/// The table rows of a `pi` result: one per run ("pi x100", "pi flat-out"), or the result itself.
pub fn rows(v: &Value) -> Vec<(String, &Value)> {
    match v.get("runs") {
        Some(runs) => ["x100", "flat-out"]
            .iter()
            .filter_map(|k| Some((format!("pi {k}"), runs.get(*k)?)))
            .collect(),
        None => vec![("pi".to_owned(), v)],
    }
}

/// The `pi` paragraph under the table.
pub fn markdown(v: &Value) -> String {
    if let Some(why) = v.get("not_available").and_then(Value::as_str) {
        return format!("\npi: not available: {why}.\n");
    }
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let c = &v["commit_check"];
    let mut o = format!(
        "\npi: docketd on a Raspberry Pi 4's CPU (each thread at most {:.1} % of one core here, all together at most {:.1} %; {}) with every fsync of its data dir taking {} ms (docket-slowfs).\n",
        f(v, "core_share") * 100.0,
        f(v, "total_cores") * 100.0,
        v["calibration"].as_str().unwrap_or(""),
        v["fsync_ms"],
    );
    o += &format!(
        "pi commit check (1 client, each command its own commit; docket_commit_seconds mean, p99 bucket): this disk {:.2} ms (≤ {} ms), docket-slowfs at 0 ms {:.2} ms (≤ {} ms), at {} ms {:.2} ms (≤ {} ms).\n",
        f(&c["disk"], "mean_ms"), c["disk"]["p99_le_ms"],
        f(&c["slowfs_0ms"], "mean_ms"), c["slowfs_0ms"]["p99_le_ms"],
        v["fsync_ms"], f(&c["slowfs"], "mean_ms"), c["slowfs"]["p99_le_ms"],
    );
    if let Some(r) = v["runs"].get("flat-out") {
        o += &format!(
            "pi flat-out: {:.0} durable commands/s ({:.0} orders/s), {:.1} commands a commit.\n",
            f(r, "commands_per_s"),
            f(r, "orders_per_s"),
            f(r, "events") / f(&r["commit"], "commits"),
        );
    }
    for (k, r) in rows(v) {
        let caps = &r["cpu_caps"];
        o += &format!(
            "{k}: {:.0} commits ({:.2} ms mean), {} syncs; docketd's cgroup throttled in {:.0} of {:.0} periods, its {} threads' caps {:.0} times.\n",
            f(&r["commit"], "commits"),
            f(&r["commit"], "mean_ms"),
            r["slowfs_syncs"],
            f(caps, "throttled_periods"),
            f(caps, "periods"),
            caps["threads"],
            f(caps, "threads_throttled_periods"),
        );
    }
    o
}
