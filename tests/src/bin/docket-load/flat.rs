//! The closed loop of `flat-out`, `flat-out-10` and `pi`: as many durable commands as docketd
//! commits, with screens counting every event. Owns nothing but its clients.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use docket_core::wire::{self, CommandBody};
use docket_tests::{line, rss_mb, Daemon};
use serde_json::{json, Value};

use crate::{devices, ms, screen, screen_counts, timed_place, Measure, Proc, Sent};

/// Flat out: `clients` closed-loop managers each place an order and complete it as fast as
/// replies come, for `secs`; `screens` expo screens count every event (lost, duplicated, out of
/// order) and time order-to-screen. An order is two durable commands (place, complete).
pub async fn flat_out(
    d: &Daemon,
    clients: usize,
    screens: usize,
    secs: u64,
) -> anyhow::Result<Value> {
    let sent: Sent = Default::default();
    let m = Measure::new();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_screens = Arc::new(AtomicBool::new(false));
    let mut screen_tasks = Vec::new();
    for mut c in devices(d, "flat-screen", "expo", &[], screens).await? {
        c.subscribe(wire::EVENTS_TOPIC).await?;
        screen_tasks.push(tokio::spawn(screen(
            c,
            sent.clone(),
            m.clone(),
            stop_screens.clone(),
        )));
    }
    let first_seq = d.metric("docket_seq")? as u64 + 1;
    let proc = Proc::start(d);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for mut c in devices(d, "flat-mgr", "manager", &[], clients).await? {
        let (stop, sent, m) = (stop.clone(), sent.clone(), m.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Relaxed) {
                let body = CommandBody::place("1", vec![line("burger-classic", 1)]);
                let r = timed_place(&mut c, &sent, &m, &body).await?;
                let o = r.order_id.context("order id")?;
                let r = c.command(&CommandBody::Complete { order_id: o }).await?;
                anyhow::ensure!(r.ok, "complete refused: {r:?}");
                m.orders.fetch_add(1, Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs.max(1))).await;
    stop.store(true, Relaxed);
    for t in tasks {
        t.await??;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = proc.cpu_pct();
    let expected = d.metric("docket_seq")? as u64;
    // Every placed order's event reaches every screen (lost ones are counted below).
    let want = screens as u64 * m.orders.load(Relaxed);
    let deadline = Instant::now() + Duration::from_secs(10);
    while m.to_screen.lock().unwrap_or_else(|p| p.into_inner()).len() < want
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_screens.store(true, Relaxed);
    let (lost, dup, ooo) = screen_counts(screen_tasks, first_seq, expected).await?;
    let (h, r) = m.histograms();
    let orders = m.orders.load(Relaxed);
    let events = expected + 1 - first_seq;
    Ok(json!({
        "load": format!("{clients} closed-loop clients: place, complete; {screens} screens"),
        "screens": screens,
        "p50_ms": ms(&h, 0.5), "p99_ms": ms(&h, 0.99), "p999_ms": ms(&h, 0.999),
        "max_ms": h.max() as f64 / 1000.0,
        "reply_p50_ms": ms(&r, 0.5), "reply_p99_ms": ms(&r, 0.99),
        "orders": orders, "events": events, "seconds": wall,
        "orders_per_s": orders as f64 / wall, "events_per_s": events as f64 / wall,
        "commands_per_s": 2.0 * orders as f64 / wall,
        "lost": lost, "duplicated": dup, "out_of_order": ooo,
        "cpu_pct": cpu, "rss_mb": rss_mb(proc.pid),
    }))
}

/// The `flat-out-10` paragraph: the case study's fan-out (every event to 10 screens).
pub fn markdown(v: &Value) -> String {
    let f = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    format!(
        "\nflat-out-10 ({}): {:.0} durable commands/s ({:.0} orders/s, each placed and completed); order-to-screen p99 {:.2} ms over {} screens, reply p99 {:.2} ms; lost {}, duplicated {}.\n",
        v["load"].as_str().unwrap_or(""),
        f("commands_per_s"),
        f("orders_per_s"),
        f("p99_ms"),
        v["screens"],
        f("reply_p99_ms"),
        v["lost"],
        v["duplicated"],
    )
}
