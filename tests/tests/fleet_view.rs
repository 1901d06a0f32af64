//! The fleet view against a real PostgreSQL: the cloud schema's fleet views (008_fleet) with a
//! few sites' orders, lines and events written directly, one site stalled. Every panel of the
//! Grafana dashboard (docs/grafana/docket-fleet.json) runs its SQL and gives the right numbers;
//! `docket fleet serve` answers /api/fleet with the same, says 503 (and why) while the database
//! is away, keeps running, and recovers; with Redis, each site's relay time from its status
//! hash, and Redis down said, not fatal.
//!
//! Needs the `docket` binary: `$DOCKET_BIN`, else next to docketd in the target directory
//! (`cargo build -p docket-provisioning`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use docket_tests::servers::{Postgres, Redis};
use docket_tests::{free_port, http_request, DEADLINE};
use serde_json::Value;
use tokio_postgres::SimpleQueryMessage;

type R = anyhow::Result<()>;

const DASHBOARD: &str = include_str!("../../docs/grafana/docket-fleet.json");

/// Sites a and b are live, c has not been heard from for 10 minutes. Site a: three orders
/// half an hour ago (grill ready after 120/180/240 s, bar after 300 s, and a later course to
/// the grill fired at +600 s, ready 60 s after) and two orders 3 h ago that make no ticket (the
/// grill line voided, the bar line not ready). b: one order 5 min ago, grill 90 s. c: four
/// orders 2 h ago, bar 200 s.
const SEED: &str = "
INSERT INTO docket.sites (site_id, last_seq, last_contact, docketd_version) VALUES
  ('a', 3, now() - interval '10 seconds', '0.1.0'),
  ('b', 1, now() - interval '40 seconds', '0.1.0'),
  ('c', 1, now() - interval '10 minutes', '0.0.9');
INSERT INTO docket.events (site_id, seq, type, order_id, version, device, at, body)
SELECT 'a', s, 'order_placed', 'a1', 1, 'tab', now() - interval '1 minute' * (34 - s), '{}'
FROM generate_series(1, 3) s;
INSERT INTO docket.events (site_id, seq, type, order_id, version, device, at, body) VALUES
  ('b', 1, 'order_placed', 'b1', 1, 'tab', now() - interval '5 minutes', '{}'),
  ('c', 1, 'order_placed', 'c1', 1, 'tab', now() - interval '2 hours', '{}');
INSERT INTO docket.orders (site_id, order_id, ticket, table_name, status, version,
                           fired_course, placed_at, updated_at)
SELECT site, site || n, n, 'T' || n, 'placed', 1, 1, now() - ago, now()
FROM (VALUES ('a', 1, interval '30 minutes'), ('a', 2, interval '30 minutes'),
             ('a', 3, interval '30 minutes'), ('a', 4, interval '3 hours'),
             ('a', 5, interval '3 hours'), ('b', 1, interval '5 minutes'),
             ('c', 1, interval '2 hours'), ('c', 2, interval '2 hours'),
             ('c', 3, interval '2 hours'), ('c', 4, interval '2 hours')) v(site, n, ago);
INSERT INTO docket.order_lines (site_id, order_id, n, item, name, qty, mods, course, station,
                                status, ready_at, fired_at, version)
SELECT o.site_id, o.order_id, l.n, 'x', 'X', 1, '[]', l.course, l.station, l.status,
       o.placed_at + l.ready, o.placed_at + l.fired, 1
FROM docket.orders o
JOIN (VALUES
  ('a1', 1, 1, 'grill', 'ready', interval '120 s', NULL::interval),
  ('a2', 1, 1, 'grill', 'ready', interval '180 s', NULL),
  ('a3', 1, 1, 'grill', 'ready', interval '240 s', NULL),
  ('a1', 2, 1, 'bar', 'ready', interval '300 s', NULL),
  ('a2', 2, 1, 'bar', 'ready', interval '300 s', NULL),
  ('a3', 2, 1, 'bar', 'ready', interval '300 s', NULL),
  ('a1', 3, 2, 'grill', 'ready', interval '660 s', interval '600 s'),
  ('a4', 1, 1, 'grill', 'voided', NULL, NULL),
  ('a5', 1, 1, 'bar', 'placed', NULL, NULL),
  ('b1', 1, 1, 'grill', 'ready', interval '90 s', NULL),
  ('c1', 1, 1, 'bar', 'ready', interval '200 s', NULL),
  ('c2', 1, 1, 'bar', 'ready', interval '200 s', NULL),
  ('c3', 1, 1, 'bar', 'ready', interval '200 s', NULL),
  ('c4', 1, 1, 'bar', 'ready', interval '200 s', NULL)
) l(order_id, n, course, station, status, ready, fired) USING (order_id);
";

/// (site, station) → (tickets, p50, p90) of the seed.
const SPEED: &[(&str, &str, i64, f64, f64)] = &[
    ("a", "bar", 3, 300.0, 300.0),
    ("a", "grill", 4, 150.0, 222.0),
    ("b", "grill", 1, 90.0, 90.0),
    ("c", "bar", 4, 200.0, 200.0),
];

/// A started PostgreSQL with the cloud schema and the seed.
fn seeded() -> anyhow::Result<(Postgres, tokio::runtime::Runtime, tokio_postgres::Client)> {
    let pg = Postgres::start()?;
    let rt = tokio::runtime::Runtime::new()?;
    let client = rt.block_on(async {
        let mut c = pg.client().await?;
        docket_cloud::migrate(&mut c).await?;
        c.batch_execute(SEED).await.context("seeding")?;
        anyhow::Ok(c)
    })?;
    Ok((pg, rt, client))
}

/// Grafana's macros as a real predicate / bound over the last 24 hours.
fn expand_macros(sql: &str) -> String {
    let mut out = sql
        .replace("$__timeFrom()", "(now() - interval '24 hours')")
        .replace("$__timeTo()", "now()");
    while let Some(start) = out.find("$__timeFilter(") {
        let args = start + "$__timeFilter(".len();
        let Some(len) = out[args..].find(')') else {
            break;
        };
        let col = out[args..args + len].to_owned();
        out.replace_range(
            start..args + len + 1,
            &format!("{col} BETWEEN now() - interval '25 hours' AND now()"),
        );
    }
    out
}

type Rows = Vec<HashMap<String, Option<String>>>;

/// Runs every panel's SQL; panel title → its rows (as text). Fails on a panel without SQL, a
/// macro left over, or any SQL error.
fn run_panels(
    rt: &tokio::runtime::Runtime,
    c: &tokio_postgres::Client,
) -> anyhow::Result<HashMap<String, Rows>> {
    let dash: Value = serde_json::from_str(DASHBOARD)?;
    let panels = dash["panels"].as_array().context("no panels")?;
    ensure!(panels.len() >= 5, "only {} panels", panels.len());
    let mut out = HashMap::new();
    for p in panels {
        let title = p["title"].as_str().context("a panel without a title")?;
        let targets = p["targets"].as_array().filter(|t| !t.is_empty());
        let targets = targets.with_context(|| format!("panel {title:?} has no query"))?;
        let mut rows = Vec::new();
        for t in targets {
            let sql = t["rawSql"].as_str().unwrap_or("").trim();
            ensure!(
                !sql.is_empty(),
                "panel {title:?} has a target without rawSql"
            );
            ensure!(
                t["datasource"]["uid"] == "${DS}",
                "panel {title:?}: datasource is not ${{DS}}"
            );
            let sql = expand_macros(sql);
            ensure!(
                !sql.contains("$__"),
                "panel {title:?}: a Grafana macro the test does not expand: {sql}"
            );
            let msgs = rt
                .block_on(c.simple_query(&sql))
                .with_context(|| format!("panel {title:?}: {sql}"))?;
            for m in msgs {
                if let SimpleQueryMessage::Row(r) = m {
                    let row = r
                        .columns()
                        .iter()
                        .enumerate()
                        .map(|(i, col)| (col.name().to_owned(), r.get(i).map(str::to_owned)))
                        .collect();
                    rows.push(row);
                }
            }
        }
        out.insert(title.to_owned(), rows);
    }
    Ok(out)
}

fn col<'a>(row: &'a HashMap<String, Option<String>>, name: &str) -> &'a str {
    row.get(name).and_then(|v| v.as_deref()).unwrap_or("")
}

fn num(row: &HashMap<String, Option<String>>, name: &str) -> f64 {
    col(row, name).parse().unwrap_or(f64::NAN)
}

#[test]
fn every_grafana_panel_runs_its_sql_and_counts_right() -> R {
    let (_pg, rt, c) = seeded()?;
    let panels = run_panels(&rt, &c)?;
    let get = |t: &str| panels.get(t).with_context(|| format!("no panel {t:?}"));

    let stat = &get("Sites live and stalled")?[0];
    assert_eq!((num(stat, "live"), num(stat, "stalled")), (2.0, 1.0));

    let alerts = get("Stalled sites")?;
    assert_eq!(alerts.len(), 1);
    assert_eq!(col(&alerts[0], "site_id"), "c");
    let stalled_for = num(&alerts[0], "stalled_for_seconds");
    assert!((595.0..700.0).contains(&stalled_for), "{stalled_for}");

    let lag = get("Sync lag per site")?;
    let order: Vec<&str> = lag.iter().map(|r| col(r, "site_id")).collect();
    assert_eq!(
        order,
        ["c", "b", "a"],
        "stalled first, then the longest lag"
    );
    assert_eq!(col(&lag[0], "state"), "stalled");
    assert_eq!(col(&lag[2], "orders_last_hour"), "3");

    let total: f64 = get("Orders per hour, all sites")?
        .iter()
        .map(|r| num(r, "orders"))
        .sum();
    assert_eq!(total, 10.0);
    let by_site = get("Orders per hour by site")?;
    let a: f64 = by_site
        .iter()
        .filter(|r| col(r, "metric") == "a")
        .map(|r| num(r, "orders"))
        .sum();
    assert_eq!(a, 5.0);

    let stations: Vec<&str> = get("Speed of service p90 by station")?
        .iter()
        .map(|r| col(r, "metric"))
        .collect();
    assert!(
        stations.contains(&"grill") && stations.contains(&"bar"),
        "{stations:?}"
    );

    let speed = get("Speed of service per site and station")?;
    assert_eq!(speed.len(), SPEED.len(), "{speed:?}");
    for (row, (site, station, tickets, p50, p90)) in speed.iter().zip(SPEED) {
        assert_eq!(
            (col(row, "site_id"), col(row, "station")),
            (*site, *station)
        );
        assert_eq!(num(row, "tickets"), *tickets as f64, "{site}/{station}");
        assert!(
            (num(row, "p50_seconds") - p50).abs() < 0.01,
            "{site}/{station} {row:?}"
        );
        assert!(
            (num(row, "p90_seconds") - p90).abs() < 0.01,
            "{site}/{station} {row:?}"
        );
    }
    Ok(())
}

fn docket_cli() -> PathBuf {
    std::env::var_os("DOCKET_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| docket_tests::docketd_bin().with_file_name("docket"))
}

/// `docket fleet serve` on a free port, killed when dropped.
struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Serve {
    fn start(postgres: &str) -> anyhow::Result<Serve> {
        Serve::start_with(&["--postgres", postgres])
    }

    fn start_with(args: &[&str]) -> anyhow::Result<Serve> {
        let mut child = Command::new(docket_cli())
            .args(["fleet", "serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot run {} (cargo build -p docket-provisioning)",
                    docket_cli().display()
                )
            })?;
        let mut line = String::new();
        let out = child.stdout.take().context("no stdout")?;
        BufReader::new(out).read_line(&mut line)?;
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("no address in {line:?}"))?;
        Ok(Serve { child, addr })
    }

    fn get(&self, path: &str) -> anyhow::Result<(u16, String, String)> {
        let r = http_request(self.addr, "GET", path, &[], "")?;
        Ok((r.status, r.head, r.body))
    }

    /// Waits until GET `path` answers `status`; returns the body.
    fn wait_for(&self, path: &str, status: u16) -> anyhow::Result<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (s, _, body) = self.get(path)?;
            if s == status {
                return Ok(body);
            }
            if Instant::now() > deadline {
                bail!("{path} still answers {s} after {DEADLINE:?}: {body}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn still_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn check_fleet(body: &str) -> R {
    let f: Value = serde_json::from_str(body)?;
    assert_eq!(
        (f["live"].as_u64(), f["stalled"].as_u64()),
        (Some(2), Some(1)),
        "{f}"
    );
    assert_eq!(f["alerts"][0]["site_id"], "c");
    assert_eq!(f["sites"][0]["site_id"], "c", "stalled first");
    assert_eq!(f["sites"][0]["state"], "stalled");
    let hours = f["orders_per_hour"].as_array().context("orders_per_hour")?;
    assert_eq!(hours.len(), 24);
    assert_eq!(hours.iter().filter_map(Value::as_i64).sum::<i64>(), 10);
    let grill = f["stations"]
        .as_array()
        .context("stations")?
        .iter()
        .find(|s| s["station"] == "grill");
    assert_eq!(grill.context("no grill")?["tickets"], 5);
    let a_grill = f["speed"]
        .as_array()
        .context("speed")?
        .iter()
        .find(|s| s["site_id"] == "a" && s["station"] == "grill");
    assert_eq!(
        a_grill.context("no a/grill")?["p90_seconds"].as_f64(),
        Some(222.0)
    );
    let a = f["sites"]
        .as_array()
        .context("sites")?
        .iter()
        .find(|s| s["site_id"] == "a")
        .context("no a")?;
    let newest_age =
        (f["read_at_ms"].as_i64().unwrap_or(0) - a["newest_event_ms"].as_i64().unwrap_or(0)) / 1000;
    assert!(
        (1860..1900).contains(&newest_age),
        "the event at last_seq is 31 min old: {newest_age}"
    );
    Ok(())
}

#[test]
fn fleet_serve_answers_the_api_says_503_while_the_database_is_away_and_recovers() -> R {
    let (mut pg, rt, c) = seeded()?;
    let mut serve = Serve::start(&pg.admin_url())?;
    let body = serve.wait_for("/api/fleet", 200)?;
    check_fleet(&body)?;
    // Head office's DBA tells the fleet view's session from the relays' ("docketd").
    let apps: Vec<String> = rt
        .block_on(c.query(
            "SELECT application_name FROM pg_stat_activity
              WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
            &[],
        ))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(apps, ["docket-fleet"]);
    let (status, head, page) = serve.get("/")?;
    assert_eq!(status, 200);
    assert!(
        page.contains("Docket fleet") && page.contains("/fleet.js"),
        "{page}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );

    drop(c);
    drop(rt);
    pg.kill9();
    let body = serve.wait_for("/api/fleet", 503)?;
    let v: Value = serde_json::from_str(&body)?;
    let error = v["error"].as_str().unwrap_or("");
    assert!(
        error.starts_with("head office database unreachable: "),
        "{body}"
    );
    assert!(
        serve.still_running(),
        "the server must keep running without its database"
    );
    assert_eq!(serve.get("/")?.0, 200, "the page is still served");

    pg.up()?;
    check_fleet(&serve.wait_for("/api/fleet", 200)?)?;
    Ok(())
}

#[test]
fn an_unreachable_database_is_a_503_with_the_reason_and_the_server_stays_up() -> R {
    let url = format!(
        "postgres://postgres:postgres@127.0.0.1:{}/postgres",
        free_port()
    );
    let mut serve = Serve::start(&url)?;
    for _ in 0..2 {
        let (status, _, body) = serve.get("/api/fleet")?;
        assert_eq!(status, 503, "{body}");
        let v: Value = serde_json::from_str(&body)?;
        let error = v["error"].as_str().unwrap_or("");
        assert!(
            error.contains("unreachable")
                && error.contains("cannot connect to postgres://postgres:***@127.0.0.1"),
            "{body}"
        );
        assert!(
            !body.contains(":postgres@"),
            "the password is never shown: {body}"
        );
    }
    assert!(serve.still_running());
    Ok(())
}

#[test]
fn bad_arguments_are_refused_with_a_clear_error() -> R {
    let run = |args: &[&str]| -> anyhow::Result<(bool, String)> {
        let o = Command::new(docket_cli())
            .arg("fleet")
            .arg("serve")
            .args(args)
            .output()?;
        Ok((
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ))
    };
    let pg = "postgres://postgres@127.0.0.1:1/postgres";
    for (args, says) in [
        (
            vec!["--postgres", pg, "--listen", "localhost"],
            "--listen \"localhost\" is not an address and port",
        ),
        (
            vec!["--postgres", pg, "--listen", "203.0.113.9:80"],
            "cannot listen on 203.0.113.9:80",
        ),
        (
            vec![
                "--postgres",
                "postgres://u@h:notaport/db",
                "--listen",
                "127.0.0.1:0",
            ],
            "--postgres is not a PostgreSQL URL",
        ),
        (
            vec![
                "--postgres",
                pg,
                "--redis",
                "http://example",
                "--listen",
                "127.0.0.1:0",
            ],
            "--redis is not a Redis URL",
        ),
    ] {
        let (ok, stderr) = run(&args)?;
        assert!(!ok, "{args:?} must fail");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    Ok(())
}

#[test]
fn with_redis_each_site_gets_its_relay_time_and_a_redis_down_is_said_not_fatal() -> R {
    let (pg, _rt, _client) = seeded()?;
    let mut redis = Redis::start()?;
    let mut conn = redis.connection()?;
    // As docketd's relay keeps it (appliance/docketd/src/uplink/redis.rs).
    redis::cmd("HSET")
        .arg("docket:{a}:status")
        .arg("relayed_at_ms")
        .arg(1_700_000_000_123i64)
        .exec(&mut conn)?;
    let serve = Serve::start_with(&["--postgres", &pg.admin_url(), "--redis", &redis.url()])?;
    let f: Value = serde_json::from_str(&serve.wait_for("/api/fleet", 200)?)?;
    assert_eq!(f["redis"], "ok", "{f}");
    let site = |f: &Value, id: &str| {
        f["sites"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["site_id"] == id).cloned())
    };
    assert_eq!(
        site(&f, "a").context("a")?["relayed_at_ms"],
        1_700_000_000_123i64
    );
    assert_eq!(site(&f, "b").context("b")?["relayed_at_ms"], Value::Null);

    redis.kill9();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, _, body) = serve.get("/api/fleet")?;
        assert_eq!(status, 200, "Redis down is not the fleet down: {}", body);
        let f: Value = serde_json::from_str(&body)?;
        if f["redis"] != "ok" {
            assert!(f["redis"].as_str().unwrap_or("").contains("Redis"), "{f}");
            break;
        }
        ensure!(Instant::now() < deadline, "Redis down never shown");
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
