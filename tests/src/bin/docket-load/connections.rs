//! `connections`: many connected devices with the seed load on top (docketd's RSS and CPU from
//! /proc), then the same connection counts held by Mosquitto for its RSS beside ours.

use std::time::{Duration, Instant};

use anyhow::bail;
use docket_tests::device::connect_many;
use docket_tests::servers::Mosquitto;
use docket_tests::{Client, Daemon};
use serde_json::{json, Value};

use crate::loops::endpoint;
use crate::{open_loop, Args};
use docket_tests::rss_mb;

/// Devices the seed load brings itself: 50 tablets, 10 screens and the kitchen.
const SEED_DEVICES: usize = 61;

/// The soft open-file limit of this process (children inherit it).
pub fn open_file_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Descriptors docketd holds per MQTT connection (the device's socket) and keeps for itself;
/// see `daemon.rs`.
const FDS_PER_CONNECTION: u64 = 1;
const FDS_RESERVED: u64 = 256;

/// The connection counts measured: 600 devices, then the most asked (once, if that is 600 too).
fn steps(most: usize) -> Vec<usize> {
    if most > 600 {
        vec![600, most]
    } else {
        vec![600]
    }
}

pub async fn connections(a: &Args) -> anyhow::Result<Value> {
    // docketd inherits this process's open-file limit; it admits only the connections that fit
    // (1 descriptor each). Where the limit cannot be raised far enough (scripts/bench.sh tries
    // ulimit -n 65536), measure the most that fit and say so.
    let have = open_file_limit();
    let fit = (have.saturating_sub(FDS_RESERVED + 64) / FDS_PER_CONNECTION) as usize;
    let most = a.connections.min(fit / 100 * 100);
    if most < 600 {
        bail!("the open-file limit ({have}) admits fewer than 600 connections to docketd");
    }
    let limited = (most < a.connections).then(|| {
        format!(
            "{} connections asked, {most} measured: docketd holds {FDS_PER_CONNECTION} descriptors \
             per connection and this machine's open-file limit is {have} (raise it with ulimit -n \
             or LimitNOFILE=; the hard limit here cannot be raised)",
            a.connections
        )
    });
    if let Some(l) = &limited {
        eprintln!("connections: {l}");
    }
    // A box configured for this many devices (the default admits 10,000 in all); a little
    // headroom for a reconnecting seed device whose old connection is not yet gone.
    let max = (most + 100).to_string();
    let d = Daemon::start_with_env(&[("DOCKET_MQTT_MAX_CONNECTIONS", &max)])?;
    let pid = d.pid().unwrap_or(0);
    let idle_rss = rss_mb(pid);
    let idle_files = open_files(pid);
    let mut held: Vec<Client> = Vec::new();
    let mut phases = Vec::new();
    let mut failures = 0usize;
    for total in steps(most) {
        let add = total - SEED_DEVICES - held.len();
        let list: Vec<(String, &str, &[&str])> = (held.len()..held.len() + add)
            .map(|i| (format!("conn-{i}"), "tablet", &[][..]))
            .collect();
        let creds = d.import_devices(&list)?;
        eprintln!("connections: connecting {add} more devices");
        let t0 = Instant::now();
        let at = endpoint(&d, a.tls)?.keep_alive(Duration::from_secs(a.keep_alive));
        let (clients, failed) = connect_many(&at, &creds, 64).await;
        let connect_s = t0.elapsed().as_secs_f64();
        if let Some(e) = failed.first() {
            eprintln!("connections: {} failed, e.g. {e}", failed.len());
        }
        failures += failed.len();
        held.extend(clients);
        let rss_connected = rss_mb(pid);
        let files = open_files(pid);
        eprintln!(
            "connections: {} idle devices held; seed load on top",
            held.len()
        );
        let v = open_loop(&d, &format!("conn{total}"), 50, 2.0, 10, a.duration, None).await?;
        let dropped = held.iter().filter(|c| !c.is_connected()).count();
        failures += dropped;
        phases.push(json!({
            "devices": held.len() + SEED_DEVICES,
            "connect_seconds": connect_s,
            "connects_per_s": add as f64 / connect_s,
            "failed": failed.len(), "dropped": dropped,
            "rss_connected_mb": rss_connected,
            "open_files": files,
            "files_per_connection": (files.saturating_sub(idle_files)) as f64 / (held.len() + SEED_DEVICES) as f64,
            "rss_mb": v["rss_mb"], "cpu_pct": v["cpu_pct"],
            "p50_ms": v["p50_ms"], "p99_ms": v["p99_ms"], "p999_ms": v["p999_ms"],
            "max_ms": v["max_ms"], "orders_per_s": v["orders_per_s"],
            "lost": v["lost"], "duplicated": v["duplicated"],
        }));
    }
    let last = phases.last().cloned().unwrap_or_default();
    let rss_most = last["rss_mb"].as_f64().unwrap_or(0.0);
    drop(held);
    drop(d);

    // The reference: Mosquitto holding the same numbers of connections (no load).
    let mosquitto = if a.no_mosquitto {
        json!({"not_measured": "--no-mosquitto"})
    } else {
        mosquitto_holding(most).await?
    };
    Ok(json!({
        "load": format!(
            "{most} connected devices (idle tablets{}) + seed load",
            if a.tls { ", MQTT over TLS" } else { "" }
        ),
        "keep_alive_s": a.keep_alive,
        "devices": most,
        "asked": a.connections,
        "limited_by": limited,
        "phases": phases,
        "failures": failures,
        "idle_rss_mb": idle_rss,
        "rss_600_mb": phases[0]["rss_mb"],
        "kb_per_connection": (rss_most - idle_rss) * 1024.0 / most as f64,
        "files_per_connection": last["files_per_connection"],
        "mosquitto": mosquitto,
        "p50_ms": last["p50_ms"], "p99_ms": last["p99_ms"], "p999_ms": last["p999_ms"],
        "max_ms": last["max_ms"], "orders_per_s": last["orders_per_s"],
        "lost": last["lost"], "duplicated": last["duplicated"],
        "rss_mb": rss_most, "cpu_pct": last["cpu_pct"],
    }))
}

/// Mosquitto holding 600, then `most` connections (no load): its RSS beside docketd's.
async fn mosquitto_holding(most: usize) -> anyhow::Result<Value> {
    let m = Mosquitto::start()?;
    let m_idle = rss_mb(m.pid());
    let mut m_held = Vec::new();
    let mut m_rss = Vec::new();
    let mut m_failed = 0usize;
    for total in steps(most) {
        let mut set = tokio::task::JoinSet::new();
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(256));
        for i in m_held.len()..total {
            let (port, gate) = (m.port, gate.clone());
            set.spawn(async move {
                let _p = gate.acquire_owned().await;
                let id = format!("mq-{i}");
                Client::connect_raw(port, &id, &id, "x").await
            });
        }
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(c)) => m_held.push(c),
                _ => m_failed += 1,
            }
        }
        m_rss.push(json!({"devices": m_held.len(), "rss_mb": rss_mb(m.pid())}));
    }
    let m_most = m_rss
        .last()
        .and_then(|v| v["rss_mb"].as_f64())
        .unwrap_or(0.0);
    Ok(json!({
        "idle_rss_mb": m_idle, "held": m_rss, "failed": m_failed,
        "kb_per_connection": (m_most - m_idle) * 1024.0 / most as f64,
    }))
}

/// The open file descriptors of a process (0 if it is gone).
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}
