//! The fleet scenario: N restaurants at the case study's load each, relaying into one head
//! office (one PostgreSQL, one Redis, on this machine), and a hundred of them coming back from
//! an hour offline at once.
//!
//! Every site runs docketd's real relays (`uplink::pg` and `uplink::redis`, the code a box runs)
//! on a real docketd SQLite store. The first `--fleet-procs` sites are whole docketd processes
//! under the seed load over MQTT (50 tablets, 10 screens, the kitchen completing); the rest
//! are in this process ([`site::SimSite`]: docket-core decides, docketd's store commits, on
//! tmpfs) because two cores do not hold a thousand daemons and their devices. The result says
//! how many were which.
//!
//! Sync lag is each event's head-office commit time (`track_commit_timestamp`) minus its time
//! on the box, for every event stamped in the measured window: no sampling. The service starts
//! once every in-process site's relays have logged in (`connected`), so the window measures
//! the rush, not a thousand logins at one instant.

mod head;
mod relays;
pub mod report;
pub mod site;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use docket_appliance::clock::now_ms;
use docket_appliance::status::Status;
use docket_tests::Daemon;
use serde_json::{json, Value};

use self::head::{pg_cpu_seconds, Head};
use self::relays::Relays;
use self::site::{SimSite, ORDERS_PER_MIN};
use crate::loops::{open_loop, NO_RATE_LIMIT};
use crate::Args;

/// Seconds of load before the measured window (relays connecting, stores warming).
const WARM_S: u64 = 5;
/// Threads committing the in-process sites' orders.
const WRITERS: usize = 2;
/// A site-day, for bytes: the case study's three-hour dinner rush at its load.
const SITE_DAY_S: f64 = 3.0 * 3600.0;

pub(crate) async fn fleet(a: &Args) -> anyhow::Result<Value> {
    let sizes: Vec<usize> = (a.fleet_sites.split(','))
        .map(|s| s.trim().parse().context("--fleet-sites: a list of numbers"))
        .collect::<anyhow::Result<_>>()?;
    let mut runs = Vec::new();
    for &n in &sizes {
        eprintln!("fleet: {n} sites for {} s", a.duration);
        runs.push(steady(a, n).await?);
    }
    eprintln!(
        "fleet: {} sites back from {} minutes offline",
        a.catchup_sites, a.catchup_minutes
    );
    let catch = catch_up(a).await?;
    let last = runs.last().cloned().unwrap_or(Value::Null);
    Ok(json!({
        "runs": runs,
        "catch_up": catch,
        "sites": last["sites"], "lag_p50_s": last["lag_p50_s"], "lag_p99_s": last["lag_p99_s"],
        "lost": last["lost"], "duplicated": last["duplicated"],
        "events_per_s": last["events_per_s"],
        "catch_up_s": catch["caught_up_s"], "catch_up_sites": catch["sites"],
        "partitions": a.fleet_partitions,
        "poll_interval_ms": a.fleet_poll_ms,
        "load": format!("per site: the case study's {ORDERS_PER_MIN} orders/min"),
    }))
}

fn site_ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:04}")).collect()
}

fn shm_dir() -> anyhow::Result<tempfile::TempDir> {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    Ok(tempfile::Builder::new()
        .prefix("docket-fleet-")
        .tempdir_in(base)?)
}

/// Orders in the next `dt_s` seconds of a site's Poisson arrivals.
fn arrivals(dt_s: f64) -> usize {
    let lambda = ORDERS_PER_MIN / 60.0 * dt_s;
    let (limit, mut p, mut k) = ((-lambda).exp(), 1.0, 0);
    loop {
        p *= rand::random::<f64>();
        if p <= limit {
            return k;
        }
        k += 1;
    }
}

/// Creates the in-process sites' stores, split over the writer threads.
async fn create_sites(ids: &[String], dir: &std::path::Path) -> anyhow::Result<Vec<Vec<SimSite>>> {
    let mut groups = Vec::new();
    for chunk in ids.chunks(ids.len().div_ceil(WRITERS).max(1)) {
        let (chunk, dir) = (chunk.to_vec(), dir.to_owned());
        groups.push(tokio::task::spawn_blocking(move || {
            (chunk.iter())
                .map(|id| SimSite::create(&dir, id, now_ms()))
                .collect::<anyhow::Result<Vec<_>>>()
        }));
    }
    let mut out = Vec::new();
    for g in groups {
        out.push(g.await??);
    }
    Ok(out)
}

/// The in-process sites' service in real time, on threads, until `stop`.
fn serve(
    groups: Vec<Vec<SimSite>>,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<anyhow::Result<Vec<SimSite>>>> {
    (groups.into_iter())
        .map(|mut sites| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut last = Instant::now();
                while !stop.load(Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    let dt = last.elapsed().as_secs_f64();
                    last = Instant::now();
                    for s in &mut sites {
                        s.step(now_ms(), arrivals(dt))?;
                    }
                }
                // The orders still cooking finish, so every site ends with its service done.
                for s in &mut sites {
                    s.step(now_ms() + site::COOK_MS, 0)?;
                }
                Ok(sites)
            })
        })
        .collect()
}

/// Waits until every in-process site's relays have connected and made a first step, and head
/// office holds both of each site's connections (the relay's and the downlink's): the service
/// and the measured window start in the steady state, not in a thousand boxes' logins at one
/// instant (each a SCRAM exchange on both sides). Returns how long that took.
async fn connected(head: &Head, statuses: &[Arc<Status>]) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    loop {
        let up = |t: &docket_appliance::status::TargetStatus| t.up.load(Relaxed);
        let relays = (statuses.iter()).all(|s| up(&s.uplink.postgres) && up(&s.uplink.redis));
        let logins: i64 = (head.client)
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE usename LIKE 'docket_site_%'",
                &[],
            )
            .await?
            .get(0);
        if relays && logins >= 2 * statuses.len() as i64 {
            let s = t0.elapsed().as_secs_f64();
            eprintln!("fleet: {} sites connected in {s:.1} s", statuses.len());
            return Ok(s);
        }
        if t0.elapsed() > Duration::from_secs(300) {
            bail!("the sites' relays did not all connect within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What each site committed: its last seq (and orders placed, for the in-process ones).
type Expected = HashMap<String, (u64, Option<u64>)>;

async fn steady(a: &Args, n: usize) -> anyhow::Result<Value> {
    let ids = site_ids("site", n);
    let procs = a.fleet_procs.min(n);
    let head = Head::start(&ids, a.fleet_partitions).await?;
    let dir = shm_dir()?;
    let groups = create_sites(&ids[procs..], dir.path()).await?;
    let relays = Relays::new(&head, a.fleet_poll_ms)?;
    let mut statuses = Vec::new();
    for s in groups.iter().flatten() {
        statuses.push(relays.spawn(&s.id, &s.db, s.menu_version));
    }
    let connect_s = connected(&head, &statuses).await?;
    let mut daemons = Vec::new();
    for id in &ids[..procs] {
        let toml = format!(
            "{NO_RATE_LIMIT}\n[uplink]\npostgres_url = \"{}\"\nredis_url = \"{}\"\n{}",
            head.site_url(id),
            head.redis.url(),
            (a.fleet_poll_ms).map_or(String::new(), |ms| format!("poll_interval_ms = {ms}\n")),
        );
        daemons.push(Daemon::start_with(&[], id, &toml)?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let t_start = now_ms();
    let writers = serve(groups, stop.clone());
    let tags: Vec<String> = (0..procs).map(|i| format!("fleet{i}")).collect();
    let loads = futures_util::future::join_all(
        (daemons.iter().zip(&tags))
            .map(|(d, tag)| open_loop(d, tag, 50, 2.0, 10, a.duration + WARM_S, None)),
    );
    let warm = async {
        tokio::time::sleep(Duration::from_secs(WARM_S)).await;
        (pg_cpu_seconds(&head.pg), now_ms())
    };
    let (procs_result, (cpu0, t0)) = tokio::join!(loads, warm);
    let procs_result = procs_result
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rest = (t_start + (a.duration + WARM_S) * 1000).saturating_sub(now_ms());
    tokio::time::sleep(Duration::from_millis(rest)).await;
    let (cpu1, t1) = (pg_cpu_seconds(&head.pg), now_ms());
    stop.store(true, Relaxed);
    let mut expected: Expected = HashMap::new();
    for w in writers {
        let sites = w
            .join()
            .map_err(|_| anyhow::anyhow!("a writer thread panicked"))??;
        for s in sites {
            expected.insert(s.id.clone(), (s.events, Some(s.orders)));
        }
    }
    for (id, d) in ids.iter().zip(&daemons) {
        expected.insert(id.clone(), (d.metric("docket_seq")? as u64, None));
    }
    let drained = drain(&head, &ids, &expected).await?;
    relays.stop().await;
    let window_s = (t1 - t0) as f64 / 1000.0;
    let lag = head.lag(t0, t1).await?;
    let checked = check(&head, &ids, &expected).await?;
    let bytes = head.bytes().await?;
    let events: u64 = expected.values().map(|e| e.0).sum();
    // Events a site makes per second under the load: the load ran from t_start to t1 (the
    // drain after it adds time, not events).
    let per_site_s = events as f64 / n as f64 / ((t1 - t_start) as f64 / 1000.0);
    let bytes_per_event = bytes as f64 / events.max(1) as f64;
    let mut v = json!({
        "sites": n, "docketd_processes": procs, "in_process_sites": n - procs,
        "events": events,
        "events_per_s": lag["lag_events"].as_f64().unwrap_or(0.0) / window_s,
        "pg_cpu_pct": (cpu1 - cpu0) / window_s * 100.0,
        "bytes_per_event": bytes_per_event,
        "bytes_per_site_day": bytes_per_event * per_site_s * SITE_DAY_S,
        "drain_s": drained,
        "connect_s": connect_s,
        "window_s": window_s,
        "docketd_loads": procs_result,
    });
    merge(&mut v, lag);
    merge(&mut v, checked);
    Ok(v)
}

fn merge(v: &mut Value, more: Value) {
    if let (Some(v), Value::Object(m)) = (v.as_object_mut(), more) {
        v.extend(m);
    }
}

/// CPU seconds (user + system) this process has used so far, all its threads.
fn own_cpu_seconds() -> f64 {
    crate::measure::proc_stat("self").map_or(0.0, |p| p.own as f64 / 100.0)
}

/// Waits until head office has every site's last event in PostgreSQL and Redis; seconds taken.
async fn drain(head: &Head, ids: &[String], expected: &Expected) -> anyhow::Result<f64> {
    let t = Instant::now();
    loop {
        let pg = head.last_seqs().await?;
        let redis = head.streams(ids)?;
        let behind = (expected.iter())
            .filter(|(id, (top, _))| {
                pg.get(*id).copied().unwrap_or(0) < *top || redis.get(*id).map_or(0, |r| r.0) < *top
            })
            .count();
        if behind == 0 {
            return Ok(t.elapsed().as_secs_f64());
        }
        if t.elapsed() > Duration::from_secs(600) {
            bail!("{behind} sites still behind 600 s after the load stopped");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Lost and duplicated, in PostgreSQL (events, gaps, orders) and in Redis (the stream's last
/// entry and length).
async fn check(head: &Head, ids: &[String], expected: &Expected) -> anyhow::Result<Value> {
    let counts = head.counts().await?;
    let streams = head.streams(ids)?;
    let (mut lost, mut dup, mut gaps, mut redis_lost) = (0u64, 0u64, 0u64, 0u64);
    for (id, (top, orders)) in expected {
        let (n, max, pg_orders) = counts.get(id).copied().unwrap_or((0, 0, 0));
        lost += top.saturating_sub(n);
        dup += n.saturating_sub(*top);
        gaps += max.saturating_sub(n);
        if let Some(o) = orders {
            dup += pg_orders.saturating_sub(*o);
            lost += o.saturating_sub(pg_orders);
        }
        let (rtop, rlen) = streams.get(id).copied().unwrap_or((0, 0));
        redis_lost += top.saturating_sub(rtop) + top.saturating_sub(rlen);
    }
    Ok(json!({"lost": lost, "duplicated": dup, "gaps": gaps, "redis_lost": redis_lost}))
}

/// `catchup_sites` sites with `catchup_minutes` of service each in their stores, head office
/// unreachable all that time; then every relay starts at once.
async fn catch_up(a: &Args) -> anyhow::Result<Value> {
    let ids = site_ids("back", a.catchup_sites);
    let head = Head::start(&ids, a.fleet_partitions).await?;
    let dir = shm_dir()?;
    let groups = create_sites(&ids, dir.path()).await?;
    let span_ms = a.catchup_minutes * 60_000;
    let t_build = Instant::now();
    let mut built = Vec::new();
    for mut sites in groups {
        built.push(tokio::task::spawn_blocking(move || {
            let start = now_ms() - span_ms;
            for s in &mut sites {
                let mut t = start;
                while t < start + span_ms {
                    t += 1000;
                    s.step(t, arrivals(1.0))?;
                }
                s.step(t + site::COOK_MS, 0)?;
            }
            anyhow::Ok(sites)
        }));
    }
    let mut sites = Vec::new();
    for b in built {
        sites.extend(b.await??);
    }
    let events: u64 = sites.iter().map(|s| s.events).sum();
    eprintln!(
        "fleet: {events} events built in {:.0} s; relays start",
        t_build.elapsed().as_secs_f64()
    );
    let expected: Expected = (sites.iter())
        .map(|s| (s.id.clone(), (s.events, Some(s.orders))))
        .collect();
    let relays = Relays::new(&head, a.fleet_poll_ms)?;
    let (cpu0, sim0) = (pg_cpu_seconds(&head.pg), own_cpu_seconds());
    let t0 = Instant::now();
    let watched: Vec<_> = (sites.iter())
        .map(|s| (relays.spawn(&s.id, &s.db, s.menu_version), s.events))
        .collect();
    let (mut pg_s, mut redis_s) = (None, None);
    while pg_s.is_none() || redis_s.is_none() {
        let done = |f: &dyn Fn(&docket_appliance::status::Status) -> u64| {
            watched.iter().all(|(st, top)| f(st) >= *top)
        };
        if pg_s.is_none() && done(&|s| s.uplink.postgres.cursor.load(Relaxed)) {
            pg_s = Some(t0.elapsed().as_secs_f64());
        }
        if redis_s.is_none() && done(&|s| s.uplink.redis.cursor.load(Relaxed)) {
            redis_s = Some(t0.elapsed().as_secs_f64());
        }
        if t0.elapsed() > Duration::from_secs(1800) {
            bail!("the {} sites did not catch up within 30 minutes", ids.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cpu = pg_cpu_seconds(&head.pg) - cpu0;
    let sim = own_cpu_seconds() - sim0;
    let all = pg_s.unwrap_or(0.0).max(redis_s.unwrap_or(0.0));
    relays.stop().await;
    let mut v = json!({
        "sites": ids.len(), "offline_minutes": a.catchup_minutes, "events": events,
        "postgres_caught_up_s": pg_s, "redis_caught_up_s": redis_s, "caught_up_s": all,
        "events_per_s": events as f64 / pg_s.unwrap_or(1.0).max(0.001),
        "pg_cpu_pct": cpu / pg_s.unwrap_or(1.0).max(0.001) * 100.0,
        // Core-seconds until both were caught up: PostgreSQL's, and the simulated boxes'
        // (this process: their stores and relays, whose CPU in the field is the boxes' own).
        "pg_cpu_s": cpu, "sim_cpu_s": sim,
    });
    merge(&mut v, check(&head, &ids, &expected).await?);
    Ok(v)
}
