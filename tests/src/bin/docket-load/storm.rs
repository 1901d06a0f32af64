//! `reconnect-storm`: every screen drops at once and reconnects at once (an access point
//! rebooting); the time until every board is exact again, checked against reference screens
//! that never left.
//!
//! 600 screens (by default) spread over the demo menu's four stations and expo follow the
//! protocol's screen algorithm (events, then the retained board, then `replay` after its seq).
//! 200 orders are open; three times, the screens drop, 50 orders are placed and 50 others bumped
//! or completed while they are away, and they all return at once; the median of the three
//! recoveries is the number. A screen is exact when its orders
//! (every field, every version) equal its reference's, at the final seq.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use docket_core::wire::{self, CommandBody};
use docket_tests::{line, Client, Creds, Daemon, View};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::{devices, ms, rss_mb, us, Args, Proc};

const BOARDS: [&str; 5] = ["grill", "fry", "cold", "bar", wire::EXPO];
/// One item per station (in `BOARDS` order), from the demo menu.
const ITEMS: [&str; 4] = ["burger-classic", "fries", "salad-caesar", "ipa-pint"];

fn spec(board: &'static str) -> (&'static str, &'static [&'static str]) {
    match board {
        "grill" => ("station", &["grill"]),
        "fry" => ("station", &["fry"]),
        "cold" => ("station", &["cold"]),
        "bar" => ("station", &["bar"]),
        _ => ("expo", &[]),
    }
}

/// Protocol steps 1–4 for a (re)connecting screen: events, board, replay after its seq.
async fn follow(port: u16, creds: &Creds, board: &str) -> anyhow::Result<(Client, View)> {
    let mut c = Client::connect(port, creds).await?;
    c.subscribe(wire::EVENTS_TOPIC).await?;
    c.subscribe(&wire::board_topic(board)).await?;
    let b = c.board(board, 0).await?;
    let mut v = View::from_board(b);
    for e in c.replay_all(v.seq).await? {
        v.apply(&e).ok().context("replay has a gap")?;
    }
    Ok((c, v))
}

/// A reference screen that stays connected and applies the live event stream.
fn reference(port: u16, creds: Creds, board: &'static str) -> Arc<Mutex<Option<View>>> {
    let shared = Arc::new(Mutex::new(None));
    let out = shared.clone();
    tokio::spawn(async move {
        let (mut c, mut v) = follow(port, &creds, board).await?;
        *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(v.clone());
        while let Some(m) = c.recv().await {
            if m.topic != wire::EVENTS_TOPIC {
                continue;
            }
            let e: wire::Event = wire::decode(&m.payload)?;
            if v.apply(&e).is_err() {
                for e in c.replay_all(v.seq).await? {
                    let _ = v.apply(&e);
                }
            }
            *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(v.clone());
        }
        anyhow::Ok(())
    });
    shared
}

async fn refs_at(
    refs: &BTreeMap<&str, Arc<Mutex<Option<View>>>>,
    seq: u64,
) -> anyhow::Result<BTreeMap<String, View>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now: BTreeMap<String, View> = refs
            .iter()
            .filter_map(|(b, r)| {
                let v = r.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
                (v.seq >= seq).then(|| (b.to_string(), v))
            })
            .collect();
        if now.len() == refs.len() {
            return Ok(now);
        }
        if Instant::now() > deadline {
            bail!("reference screens did not reach seq {seq}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Connects every screen at once; each reports (client, view, time to exact).
async fn all_at_once(
    port: u16,
    screens: &[(Creds, &'static str)],
) -> anyhow::Result<Vec<(Client, View, Duration, &'static str)>> {
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (creds, board) in screens.iter().cloned() {
        set.spawn(async move {
            let (c, v) = follow(port, &creds, board)
                .await
                .with_context(|| format!("screen {}", creds.id))?;
            anyhow::Ok((c, v, t0.elapsed(), board))
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r??);
    }
    Ok(out)
}

fn check(
    got: &[(Client, View, Duration, &'static str)],
    refs: &BTreeMap<String, View>,
    seq: u64,
) -> anyhow::Result<()> {
    for (c, v, _, board) in got {
        let r = &refs[*board];
        ensure!(
            v.seq >= seq && v.orders == r.orders,
            "screen {} ({board}) is not exact: seq {} (want {seq}), {} orders (reference {})",
            c.id,
            v.seq,
            v.orders.len(),
            r.orders.len()
        );
    }
    Ok(())
}

pub async fn storm(a: &Args) -> anyhow::Result<Value> {
    let d = Daemon::start()?;
    let n = a.storm_screens;
    let list: Vec<(String, &str, &[&str])> = (0..n)
        .map(|i| {
            let (role, st) = spec(BOARDS[i % BOARDS.len()]);
            (format!("storm-{i}"), role, st)
        })
        .collect();
    let creds = d.import_devices(&list)?;
    let screens: Vec<(Creds, &'static str)> = creds
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c, BOARDS[i % BOARDS.len()]))
        .collect();
    let ref_list: Vec<(String, &str, &[&str])> = BOARDS
        .iter()
        .map(|b| {
            let (role, st) = spec(b);
            (format!("ref-{b}"), role, st)
        })
        .collect();
    let refs: BTreeMap<&str, _> = BOARDS
        .iter()
        .zip(d.import_devices(&ref_list)?)
        .map(|(b, c)| (*b, reference(d.mqtt, c, b)))
        .collect();

    let mut mgr = devices(&d, "storm-mgr", "manager", &[], 1).await?.remove(0);
    let mut open = Vec::new();
    for i in 0..200 {
        let r = mgr
            .command(&CommandBody::place(
                &format!("{}", i % 40 + 1),
                vec![line(ITEMS[i % 4], 1), line(ITEMS[(i + 1) % 4], 2)],
            ))
            .await?;
        open.push(r.order_id.context("order id")?);
    }
    let seq = d.metric("docket_seq")? as u64;
    eprintln!("reconnect-storm: {n} screens connect (cold start)");
    let first = all_at_once(d.mqtt, &screens).await?;
    let cold = first.iter().map(|x| x.2).max().unwrap_or_default();
    check(&first, &refs_at(&refs, seq).await?, seq)?;

    // The storm, three times: every screen's connection drops at once; while they are away the
    // boards change; they all come back at once. The median recovery is the number.
    let mut screens_now = first;
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut recoveries = Vec::new();
    let mut cpus = Vec::new();
    let mut expected = BTreeMap::new();
    for round in 0..3 {
        drop(std::mem::take(&mut screens_now));
        for i in 0..50 {
            mgr.command(&CommandBody::place(
                &format!("{}", i % 40 + 1),
                vec![line(ITEMS[(i + round) % 4], 1)],
            ))
            .await?;
        }
        for (i, o) in open.drain(..50).enumerate() {
            let body = if i % 2 == 0 {
                CommandBody::Complete { order_id: o }
            } else {
                CommandBody::Bump {
                    order_id: o,
                    station: BOARDS[(i + 50 * round) % 4].into(),
                }
            };
            mgr.command(&body).await?;
        }
        let seq = d.metric("docket_seq")? as u64;
        expected = refs_at(&refs, seq).await?;
        let proc = Proc::start(&d);
        eprintln!(
            "reconnect-storm: {n} screens reconnect at once ({})",
            round + 1
        );
        let back = all_at_once(d.mqtt, &screens).await?;
        cpus.push(proc.cpu_pct());
        check(&back, &expected, seq)?;
        let worst = back.iter().map(|x| x.2).max().unwrap_or_default();
        recoveries.push(worst.as_secs_f64() * 1000.0);
        for (_, _, t, _) in &back {
            h.record(us(*t))?;
        }
        screens_now = back;
    }
    let pid = d.pid().unwrap_or(0);
    let mut sorted = recoveries.clone();
    sorted.sort_by(f64::total_cmp);
    let recover_ms = sorted[1];
    let cpu = cpus.iter().sum::<f64>() / cpus.len() as f64;
    let tickets: usize = expected.values().map(|v| v.orders.len()).sum();
    Ok(json!({
        "load": format!("{n} screens ({} boards, {tickets} tickets in all) reconnect at once", BOARDS.len()),
        "screens": n,
        "cold_start_ms": cold.as_secs_f64() * 1000.0,
        "recover_ms": recover_ms, "recoveries_ms": recoveries,
        "p50_ms": ms(&h, 0.5), "p99_ms": ms(&h, 0.99), "p999_ms": ms(&h, 0.999),
        "max_ms": h.max() as f64 / 1000.0,
        "rss_mb": rss_mb(pid), "cpu_pct": cpu,
    }))
}
