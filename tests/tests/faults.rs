//! The fault campaign, short version (scripts/chaos.sh runs the long one): bad Wi-Fi, kill -9,
//! a hung box. After each, the oracle (`docket_tests::chaos::check`): every acknowledged
//! command is in SQLite exactly once with the reply the device got, nothing is doubled, seq has
//! no gap, the database passes its integrity check, and every screen shows exactly the box's
//! open orders for its station.

use std::time::Duration;

use docket_tests::chaos::{self, Restaurant};
use docket_tests::servers::Postgres;
use docket_tests::Daemon;

type R = anyhow::Result<()>;

/// Short keep-alive, so that devices notice a dead link within seconds, as tablets should.
const KEEP_ALIVE: Duration = Duration::from_secs(2);

fn assert_clean(name: &str, rep: &chaos::Report) {
    println!("{name}: {rep}");
    assert!(rep.problems.is_empty(), "{name}: {:#?}", rep.problems);
    assert_eq!(rep.lost, 0, "{name}: lost");
    assert_eq!(rep.duplicated, 0, "{name}: duplicated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_wifi_loses_and_doubles_nothing() -> R {
    // The box in its own network namespace where this machine allows: devices reach it over a
    // veth interface, through their fault proxies.
    let d = Daemon::start_isolated(&[], "chaos-wifi", "")?;
    println!(
        "the box is {}",
        if d.over_interface() {
            "in its own network namespace, reached over veth"
        } else {
            "on loopback (no network namespaces here)"
        }
    );
    let r = Restaurant::open(&d, 4, Duration::from_millis(400), KEEP_ALIVE, 1).await?;
    let (rep, converge, applied) = chaos::bad_wifi(
        &r,
        &d.db_path(),
        Duration::from_secs(15),
        (Duration::from_secs(3), Duration::from_secs(6)),
        7,
    )
    .await?;
    println!("faults applied: {applied:?}; converged {converge:?} after the heal");
    assert_clean("bad wifi", &rep);
    // The faults really bit: devices lost links and resent, and orders still went through.
    assert!(rep.reconnects > 0, "no device ever reconnected: {rep}");
    assert!(rep.resent > 0, "nothing was ever resent: {rep}");
    assert!(rep.acked >= 20, "too little went through: {rep}");
    assert_eq!(applied.len(), chaos::WIFI_FAULTS.len(), "{applied:?}");
    r.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_at_random_moments_loses_nothing_here_or_at_head_office() -> R {
    // With the uplink to a real PostgreSQL, relaying while the box dies.
    let pg = Postgres::start()?;
    let toml = format!(
        "[uplink]\npostgres_url = \"{}\"\nbatch_size = 20\npoll_interval_ms = 20\nbackoff_min_ms = 20\nbackoff_max_ms = 300\n",
        pg.admin_url()
    );
    let mut d = Daemon::start_with(&[], "chaos-kill", &toml)?;
    let args = pg.migrate_args();
    let out = d.cli(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    assert!(out.contains("\"applied\""), "{out}");
    let r = Restaurant::open(&d, 3, Duration::from_millis(150), KEEP_ALIVE, 2).await?;
    let restarts = chaos::kill_cycles(&mut d, &r, 8, 11).await?;
    println!("restarts to READY: {restarts:?}");
    r.heal_and_settle(&d.db_path(), Duration::from_secs(60))
        .await?;
    let rep = chaos::check(&d.db_path(), &r.ledger)?;
    assert_clean("kill -9", &rep);
    assert!(
        rep.reconnects >= 8,
        "devices did not notice the kills: {rep}"
    );
    let client = pg.client().await?;
    let pg_problems =
        chaos::check_pg(&client, "chaos-kill", &d.db_path(), Duration::from_secs(30)).await?;
    assert!(pg_problems.is_empty(), "{pg_problems:#?}");
    r.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_over_their_rate_limit_retry_and_nothing_is_lost_or_doubled() -> R {
    // A limit far below what the devices send (as an expo finds after a long outage, with
    // hundreds of orders to complete at once): rate_limited is retried with the same id.
    let d = Daemon::start_with(
        &[],
        "chaos-rate",
        "commands_per_second = 3\ncommand_burst = 5",
    )?;
    let r = Restaurant::open(&d, 3, Duration::from_millis(100), KEEP_ALIVE, 4).await?;
    docket_tests::eventually("the limit refuses some", || {
        d.metric("docket_rejects_total{code=\"rate_limited\"}")
            .unwrap_or(0.0)
            >= 20.0
    })
    .await?;
    let converge = r
        .heal_and_settle(&d.db_path(), Duration::from_secs(90))
        .await?;
    let rep = chaos::check(&d.db_path(), &r.ledger)?;
    println!("converged {converge:?}");
    assert_clean("rate limited", &rep);
    assert_eq!(
        rep.rejected, 0,
        "every refused command went through later: {rep}"
    );
    assert!(rep.acked >= 10, "{rep}");
    r.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_box_catches_up_when_it_resumes() -> R {
    let d = Daemon::start()?;
    let r = Restaurant::open(&d, 3, Duration::from_millis(300), KEEP_ALIVE, 3).await?;
    let ledger = r.ledger.clone();
    // Some service first, then the hang with devices still ordering.
    docket_tests::eventually("first orders acknowledged", || r.acked() >= 5).await?;
    chaos::hang(&d, Duration::from_secs(6)).await?;
    let converge = r
        .heal_and_settle(&d.db_path(), Duration::from_secs(60))
        .await?;
    println!("converged {converge:?} after SIGCONT");
    let rep = chaos::check(&d.db_path(), &r.ledger)?;
    assert_clean("SIGSTOP", &rep);
    assert!(rep.reconnects > 0, "devices did not notice the hang: {rep}");
    r.close().await;

    // The oracle can fail: a made-up acknowledgement is reported lost, and a screen one event
    // behind is reported.
    {
        let mut l = ledger.lock().unwrap_or_else(|p| p.into_inner());
        let reply = docket_core::wire::Reply {
            command: "made-up".into(),
            ok: true,
            order_id: Some("o-made-up".into()),
            ticket: Some(999),
            seq: Some(999),
            error: None,
            events: None,
            more: None,
            menu_version: None,
        };
        l.acked.insert(("tablet-1".into(), "made-up".into()), reply);
        let view = l.views.get_mut("kds-grill").expect("grill view");
        view.seq -= 1;
    }
    let bad = chaos::check(&d.db_path(), &ledger)?;
    assert_eq!(bad.lost, 1, "{bad}");
    assert!(
        bad.problems.iter().any(|p| p.contains("kds-grill")),
        "{:#?}",
        bad.problems
    );
    Ok(())
}

/// Unix seconds of a log line's RFC 3339 time ("2026-11-28T02:10:02.465134Z ...").
fn log_time(line: &str) -> Option<i64> {
    let t = line.split_whitespace().next()?;
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, mon, day) = (d.next()??, d.next()??, d.next()??);
    let mut h = time.trim_end_matches('Z').split(':');
    let (hh, mm) = (
        h.next()?.parse::<i64>().ok()?,
        h.next()?.parse::<i64>().ok()?,
    );
    let ss = h.next()?.split('.').next()?.parse::<i64>().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mon <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mon + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// libfaketime from Debian's `faketime` package (scripts/prereqs.sh installs it).
fn libfaketime() -> anyhow::Result<String> {
    for dir in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ] {
        for lib in ["libfaketimeMT.so.1", "libfaketime.so.1"] {
            let p = format!("{dir}/faketime/{lib}");
            if std::path::Path::new(&p).exists() {
                return Ok(p);
            }
        }
    }
    anyhow::bail!(
        "libfaketime not found: install Debian's faketime package (scripts/prereqs.sh does)"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_jumps_move_no_stamp_order_or_age() -> R {
    use docket_core::wire::CommandBody;
    use docket_tests::{line, Client};
    let dir = tempfile::tempdir()?;
    let offset = dir.path().join("faketime");
    std::fs::write(&offset, "+0")?;
    let lib = libfaketime()?;
    let offset_s = offset.display().to_string();
    // Only docketd's wall clock moves (never the machine's); its monotonic clock stays true.
    let env = [
        ("LD_PRELOAD", lib.as_str()),
        ("FAKETIME_TIMESTAMP_FILE", offset_s.as_str()),
        ("FAKETIME_NO_CACHE", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    let mut d = Daemon::start_with_env(&env)?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    // The box's wall clock, as its log stamps it: a refused login writes a line.
    async fn box_wall(d: &Daemon, probe: &str) -> anyhow::Result<i64> {
        assert!(docket_tests::login_refused(d.mqtt, probe, probe, "wrong").await);
        let log = d.log_text();
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("MQTT login refused") && l.contains(probe))
            .ok_or_else(|| anyhow::anyhow!("no log line for {probe}"))?;
        log_time(line).ok_or_else(|| anyhow::anyhow!("no time in {line:?}"))
    }
    let mut n = 0;
    let mut place = async |t: &mut Client| -> anyhow::Result<()> {
        n += 1;
        let r = t
            .command(&CommandBody::place(&format!("{n}"), vec![line("fries", 1)]))
            .await?;
        anyhow::ensure!(r.ok, "{r:?}");
        Ok(())
    };
    for _ in 0..3 {
        place(&mut t).await?;
    }
    // An hour back, then a day forward, mid-service: the box's wall clock really moves...
    let before = box_wall(&d, "probe-1").await?;
    std::fs::write(&offset, "-1h")?;
    let back = box_wall(&d, "probe-2").await?;
    assert!(
        (before - back - 3600).abs() < 30,
        "faketime is not in effect: {before} -> {back}"
    );
    for _ in 0..3 {
        place(&mut t).await?;
    }
    std::fs::write(&offset, "+1d")?;
    let fwd = box_wall(&d, "probe-3").await?;
    assert!((fwd - before - 86_400).abs() < 30, "{before} -> {fwd}");
    for _ in 0..3 {
        place(&mut t).await?;
    }
    // ...and a restart while the clock is an hour back stamps no earlier than before.
    std::fs::write(&offset, "-1h")?;
    d.kill9();
    tokio::task::block_in_place(|| d.restart())?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    place(&mut t).await?;

    // seq, tickets and versions are in order, and the stamps are steady: no jump of an hour or a
    // day between events placed seconds apart.
    let events = t.replay_all(0).await?;
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    let tickets: Vec<u64> = events.iter().map(|e| e.order.ticket).collect();
    assert_eq!(tickets, (1..=10).collect::<Vec<_>>());
    for w in events.windows(2) {
        let gap = w[1].at as i64 - w[0].at as i64;
        assert!(
            (0..60_000).contains(&gap),
            "event {} stamped {gap} ms after event {}",
            w[1].seq,
            w[0].seq
        );
        assert_eq!(w[1].order.placed_at, w[1].at);
    }
    // Screens age tickets by the box clock /healthz gives: it agrees with the stamps.
    let (_, body) = d.get("/healthz")?;
    let now: serde_json::Value = serde_json::from_str(&body)?;
    let now_ms = now["now_ms"].as_u64().unwrap_or(0);
    let last = events.last().map_or(0, |e| e.at);
    assert!(
        now_ms >= last && now_ms - last < 60_000,
        "box clock {now_ms}, last stamp {last}"
    );
    Ok(())
}
