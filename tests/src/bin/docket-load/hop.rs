//! `broker-hop`: the floor. One client publishes, another receives, through (a) docketd's
//! embedded broker (through its connection layer, as devices connect) and (b) Mosquitto on a
//! free port;
//! the same payload size as a signed `place_order`, QoS 1 both ways, the same harness.
//!
//! Latency: an open loop at `HOP_RATE` messages/s, each stamped with its send instant on this
//! process's monotonic clock. Throughput: `hop_messages` published as fast as the client
//! allows, timed until the last one arrives. Lost and duplicated counted by sequence number.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use docket_core::wire::{CommandBody, Envelope};
use docket_tests::servers::Mosquitto;
use docket_tests::{line, Client, Daemon};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::{ms, us, Args};
use docket_tests::rss_mb;

const TOPIC: &str = "docket/v1/bench/hop";
const HOP_RATE: u64 = 1000;

/// The size of a signed three-line `place_order` envelope, as a tablet sends it.
fn payload_len() -> anyhow::Result<usize> {
    let body = CommandBody::place(
        "12",
        vec![
            line("burger-classic", 1),
            line("fries", 2),
            line("ipa-pint", 2),
        ],
    );
    let env = Envelope::sign(
        "01JBENCHHOPCOMMANDID00000",
        "tablet-1",
        &docket_core::keys::MacKey([7; 32]),
        &body,
    )?;
    Ok(docket_core::wire::encode(&env)?.len())
}

struct Rx {
    h: Histogram<u64>,
    seen: Vec<bool>,
    dup: u64,
    last_at: Option<Instant>,
}

/// Receives until `n` distinct messages arrived or `stop`: latency and counts.
async fn receive(mut sub: Client, base: Instant, n: usize, stop: Arc<AtomicBool>) -> Rx {
    let mut rx = Rx {
        h: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
        seen: vec![false; n],
        dup: 0,
        last_at: None,
    };
    let mut got = 0;
    while got < n && !stop.load(Relaxed) {
        let m = tokio::select! {
            m = sub.recv() => m,
            _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
        };
        let Some(m) = m else { break };
        let now = Instant::now();
        if m.topic != TOPIC || m.payload.len() < 16 {
            continue;
        }
        let seq = u64::from_be_bytes(m.payload[..8].try_into().expect("8 bytes")) as usize;
        let sent = u64::from_be_bytes(m.payload[8..16].try_into().expect("8 bytes"));
        if seq >= n {
            continue;
        }
        if rx.seen[seq] {
            rx.dup += 1;
            continue;
        }
        rx.seen[seq] = true;
        got += 1;
        rx.last_at = Some(now);
        let at = (now - base).as_micros() as u64;
        let _ = rx.h.record(at.saturating_sub(sent).max(1));
    }
    rx
}

/// Waits (up to `within`) for the receiver to see every message, then stops it; what it saw.
async fn finish(
    rx: tokio::task::JoinHandle<Rx>,
    stop: &AtomicBool,
    within: Duration,
) -> anyhow::Result<Rx> {
    let deadline = Instant::now() + within;
    while !rx.is_finished() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Relaxed);
    Ok(rx.await?)
}

fn stamp(len: usize, seq: u64, base: Instant) -> Vec<u8> {
    let mut p = vec![0x5a; len.max(16)];
    p[..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(&us(base.elapsed()).to_be_bytes());
    p
}

/// One broker: `connect(name)` gives a connected client.
async fn run<F, Fut>(connect: F, secs: u64, burst: usize, pid: u32) -> anyhow::Result<Value>
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Client>>,
{
    let len = payload_len()?;
    let base = Instant::now();

    // Latency: open loop at HOP_RATE/s.
    let n = (HOP_RATE * secs.max(1)) as usize;
    let mut sub = connect("hop-sub").await?;
    sub.subscribe(TOPIC).await?;
    let publ = connect("hop-pub").await?;
    let stop = Arc::new(AtomicBool::new(false));
    let rx = tokio::spawn(receive(sub, base, n, stop.clone()));
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / HOP_RATE));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for seq in 0..n as u64 {
        tick.tick().await;
        publ.publish(TOPIC, stamp(len, seq, base), false).await?;
    }
    let lat = finish(rx, &stop, Duration::from_secs(10)).await?;
    let lost = lat.seen.iter().filter(|s| !**s).count();
    drop(publ);

    // Throughput: `burst` messages as fast as they go.
    let mut sub = connect("hop-sub2").await?;
    sub.subscribe(TOPIC).await?;
    let publ = connect("hop-pub2").await?;
    let stop = Arc::new(AtomicBool::new(false));
    let base2 = Instant::now();
    let rx = tokio::spawn(receive(sub, base2, burst, stop.clone()));
    let t0 = Instant::now();
    for seq in 0..burst as u64 {
        publ.publish(TOPIC, stamp(len, seq, base2), false).await?;
    }
    let thr = finish(rx, &stop, Duration::from_secs(60)).await?;
    let got = thr.seen.iter().filter(|s| **s).count();
    let wall = thr
        .last_at
        .map_or(0.0, |t| (t - t0).as_secs_f64())
        .max(1e-6);
    Ok(json!({
        "payload_bytes": len,
        "rate_per_s": HOP_RATE, "samples": lat.h.len(),
        "p50_ms": ms(&lat.h, 0.5), "p99_ms": ms(&lat.h, 0.99), "p999_ms": ms(&lat.h, 0.999),
        "max_ms": lat.h.max() as f64 / 1000.0,
        "lost": lost + (burst - got), "duplicated": lat.dup + thr.dup,
        "msgs_per_s": got as f64 / wall,
        "burst": burst,
        "burst_p50_ms": ms(&thr.h, 0.5), "burst_p99_ms": ms(&thr.h, 0.99),
        "rss_mb": rss_mb(pid),
    }))
}

pub async fn hop(a: &Args) -> anyhow::Result<Value> {
    let burst = a.hop_messages;
    // The bare broker: the hop's topic is no device's, so the device topic ACL is off here.
    let d = Daemon::start_with_env(&[docket_tests::ACL_OFF])?;
    let list: Vec<(String, &str, &[&str])> = ["hop-sub", "hop-pub", "hop-sub2", "hop-pub2"]
        .iter()
        .map(|id| (id.to_string(), "tablet", &[][..]))
        .collect();
    let creds = d.import_devices(&list)?;
    eprintln!("broker-hop: docketd");
    let port = d.mqtt;
    let dk = run(
        |name| {
            let c = creds.iter().find(|c| c.id == name).cloned();
            async move { Client::connect(port, &c.context("hop creds")?).await }
        },
        a.duration,
        burst,
        d.pid().unwrap_or(0),
    )
    .await?;
    drop(d);
    eprintln!("broker-hop: mosquitto");
    let m = Mosquitto::start()?;
    let port = m.port;
    let mq = run(
        |name| async move { Client::connect_raw(port, name, name, "x").await },
        a.duration,
        burst,
        m.pid(),
    )
    .await?;
    let ratio = |k: &str| match (dk[k].as_f64(), mq[k].as_f64()) {
        (Some(x), Some(y)) if y > 0.0 => json!(x / y),
        _ => Value::Null,
    };
    if dk["lost"].as_u64() != Some(0) || mq["lost"].as_u64() != Some(0) {
        bail!("broker-hop lost messages: docketd {dk}, mosquitto {mq}");
    }
    Ok(json!({
        "load": format!("1 publisher → 1 subscriber, QoS 1, {} B, {HOP_RATE}/s; then {burst} flat out", dk["payload_bytes"]),
        "docketd": dk.clone(), "mosquitto": mq.clone(),
        "ratio_p50": ratio("p50_ms"), "ratio_p99": ratio("p99_ms"),
        "ratio_msgs_per_s": ratio("msgs_per_s"),
        "p50_ms": dk["p50_ms"], "p99_ms": dk["p99_ms"], "p999_ms": dk["p999_ms"],
        "max_ms": dk["max_ms"], "lost": dk["lost"], "duplicated": dk["duplicated"],
        "msgs_per_s": dk["msgs_per_s"], "rss_mb": dk["rss_mb"],
    }))
}
