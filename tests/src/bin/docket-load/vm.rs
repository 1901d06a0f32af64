//! `connections-vm`: the `connections` scenario run inside the box's own test image under QEMU,
//! for the connection count this machine's open-file limit cannot fit.
//!
//! docketd holds 1 descriptor per MQTT connection (3 before it owned its connections: the
//! device's socket, a pipe to rumqttd's loopback listener and rumqttd's end of it). The box's unit
//! gives it `LimitNOFILE=65536`; a container without `CAP_SYS_RESOURCE` may cap every process lower
//! (20,000 here, which fit 6,500 connections at 3 each). The
//! virtual box has its own kernel, where root raises the limit: the image (built with
//! `scripts/build-test-image.sh --load`) is booted with docketd's own unit masked and
//! `docket-test-bench.service` wanted; that unit runs this same binary's `connections` scenario
//! against the image's docketd and writes the JSON result on ttyS1 (`tests/image/docket-test-bench`).
//! Everything runs under TCG, emulated: connection counts, failures and RSS are the box's,
//! latencies are not (they are reported, not judged).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use docket_tests::vm::{write_boot_env, BootEnv, BootOptions, Image, Vm};
use serde_json::{json, Value};

use crate::Args;

/// The virtual box's RAM: docketd at ~65 KB per connection plus docket-load's 10,000 clients.
const MEMORY_MB: u32 = 4096;

pub async fn connections_vm(a: &Args) -> anyhow::Result<Value> {
    let dir = &a.vm_image;
    let image = Image::in_dir(dir);
    for p in [&image.disk, &image.kernel, &image.initrd] {
        if !p.exists() {
            return Ok(json!({
                "load": "connections inside the box's test image",
                "not_available": format!(
                    "no test image at {} (scripts/bench.sh builds it with \
                     scripts/build-test-image.sh --load, as root)",
                    dir.display()
                ),
            }));
        }
    }
    let (n, secs, ka) = (a.vm_connections, a.duration, a.vm_keep_alive);
    tokio::task::spawn_blocking(move || run(image, n, secs, ka))
        .await
        .context("the virtual box's task")?
}

fn run(image: Image, n: usize, secs: u64, keep_alive: u64) -> anyhow::Result<Value> {
    // A fresh boot order every run: each boot spends one of slot A's tries, and in bench mode
    // nothing marks the slot good.
    write_boot_env(&image.disk, &BootEnv::default())?;
    let logs = tempfile::Builder::new()
        .prefix("docket-bench-vm")
        .tempdir()?
        .keep();
    let opts = BootOptions {
        usb: None,
        memory_mb: MEMORY_MB,
        cmdline: format!(
            "systemd.mask=docketd.service systemd.mask=docket-test-report.service \
             systemd.mask=docket-mark-good.service \
             systemd.wants=docket-test-bench.service docket.bench=connections:{n}:{secs}:{keep_alive}"
        ),
    };
    let (http, mqtt) = (docket_tests::free_port(), docket_tests::free_port());
    eprintln!(
        "connections-vm: booting the test image ({MEMORY_MB} MiB, 2 vCPUs, TCG) for {n} \
         connections; console and report in {}",
        logs.display()
    );
    let t0 = Instant::now();
    let mut vm = Vm::boot_opts(&image, &logs, 0, http, mqtt, &opts)?;
    // Under TCG: boot ~15 s, then two phases of connecting and `secs` of seed load each.
    let within = Duration::from_secs(1800 + 4 * secs);
    let s = vm.section("DOCKET-BENCH", within)?;
    vm.wait_exit(Duration::from_secs(120)).ok();
    let wall = t0.elapsed().as_secs_f64();
    let text = s.get("text").cloned().unwrap_or_default();
    if s.get("rc").map(String::as_str) != Some("0") {
        bail!("docket-load inside the box failed:\n{text}");
    }
    let out: Value = serde_json::from_str(s.get("json").map(String::as_str).unwrap_or(""))
        .with_context(|| format!("the box's result is not JSON:\n{text}"))?;
    let mut v = out["scenarios"]["connections"].clone();
    if !v.is_object() {
        bail!("no connections result from the box:\n{text}");
    }
    v["load"] = json!(format!(
        "{} connected devices (idle tablets, keep-alive {keep_alive} s) + seed load, inside the \
         test image (QEMU TCG, {} vCPUs, {} MiB, open files {})",
        v["devices"],
        s.get("cpus").map(String::as_str).unwrap_or("?"),
        MEMORY_MB,
        s.get("nofile").map(String::as_str).unwrap_or("?"),
    ));
    v["emulated"] = json!(true);
    v["vm_seconds"] = json!(wall);
    v["vm"] = json!({
        "cpus": s.get("cpus"), "memory_kb": s.get("memory_kb"), "nofile": s.get("nofile"),
        "logs": logs,
    });
    // Latencies under TCG are the emulator's, not the box's: kept in the phases, not headlined.
    for k in ["p50_ms", "p99_ms", "p999_ms", "max_ms", "cpu_pct"] {
        if let Some(x) = v.get(k).cloned() {
            v[format!("emulated_{k}")] = x;
            v[k] = Value::Null;
        }
    }
    Ok(v)
}

/// Where `scripts/bench.sh` builds the image for this scenario.
pub fn default_image_dir() -> PathBuf {
    PathBuf::from("target/bench-image")
}
