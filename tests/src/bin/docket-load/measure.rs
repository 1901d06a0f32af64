//! docket-load's instruments: order-to-screen and reply histograms, screens that count every
//! event by seq (lost, duplicated, out of order), a timed order, docketd's CPU and engine
//! counters from /proc and /metrics. Measures; must not decide a scenario's load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use docket_core::wire::{self, CommandBody, Event};
use docket_tests::{Client, Daemon};
use hdrhistogram::Histogram;

/// Send instants of commands in flight, by command id.
pub(crate) type Sent = Arc<Mutex<HashMap<String, Instant>>>;

pub(crate) struct Measure {
    pub(crate) to_screen: Mutex<Histogram<u64>>,
    pub(crate) reply: Mutex<Histogram<u64>>,
    pub(crate) orders: AtomicU64,
}

impl Measure {
    pub(crate) fn new() -> Arc<Self> {
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
    pub(crate) fn histograms(&self) -> (Histogram<u64>, Histogram<u64>) {
        let get = |h: &Mutex<Histogram<u64>>| h.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (get(&self.to_screen), get(&self.reply))
    }
}

/// Joins the screens and counts (lost, duplicated, out of order): every screen subscribed before
/// the load started, so it must have every seq from `first_seq` to `last_seq`.
pub(crate) async fn screen_counts(
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

pub(crate) fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

pub(crate) fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// A screen: counts every event by seq and records order-to-screen latency.
pub(crate) struct ScreenStats {
    received: u64,
    duplicated: u64,
    out_of_order: u64,
    seen: std::collections::HashSet<u64>,
    last: u64,
}

pub(crate) async fn screen(
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
pub(crate) async fn timed_place(
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

pub(crate) struct Proc {
    pub(crate) pid: u32,
    ticks0: u64,
    t0: Instant,
}

fn proc_ticks(pid: u32) -> u64 {
    proc_stat(&pid.to_string()).map_or(0, |p| p.own)
}

/// CPU ticks (100 a second) of one process, from `/proc/PID/stat` ("self" for this one).
pub(crate) struct ProcStat {
    pub(crate) ppid: u32,
    /// utime + stime.
    pub(crate) own: u64,
    /// cutime + cstime: its children that were waited for.
    pub(crate) children: u64,
}

pub(crate) fn proc_stat(pid: &str) -> Option<ProcStat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // After the ")": state, ppid, ..., utime (11), stime (12), cutime (13), cstime (14).
    Some(ProcStat {
        ppid: n(1) as u32,
        own: n(11) + n(12),
        children: n(13) + n(14),
    })
}

impl Proc {
    pub(crate) fn start(d: &Daemon) -> Proc {
        let pid = d.pid().unwrap_or(0);
        Proc {
            pid,
            ticks0: proc_ticks(pid),
            t0: Instant::now(),
        }
    }
    pub(crate) fn cpu_pct(&self) -> f64 {
        let ticks = proc_ticks(self.pid).saturating_sub(self.ticks0) as f64;
        ticks / 100.0 / self.t0.elapsed().as_secs_f64() * 100.0
    }
}

/// docketd's engine counters: seconds on command batches, seconds on boards, board publishes.
pub(crate) fn engine_busy(d: &Daemon) -> anyhow::Result<(f64, f64, f64)> {
    Ok((
        d.metric("docket_command_seconds_total")?,
        d.metric("docket_board_seconds_total")?,
        d.metric("docket_board_publishes_total")?,
    ))
}
