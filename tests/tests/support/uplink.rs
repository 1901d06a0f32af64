//! What the uplink tests share: the config's `[uplink]`, a small service on the box, and what
//! head office's PostgreSQL and Redis must hold after it.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use docket_core::wire::CommandBody;
use docket_tests::servers::{Postgres, Redis};
use docket_tests::{line, Client, Creds, Daemon};

pub type R = anyhow::Result<()>;

/// Long enough for a debug build to relay a few thousand events on a busy 2-core machine
/// (tests finish as soon as the condition holds).
pub const CATCH_UP: Duration = Duration::from_secs(180);

pub fn uplink_toml(pg: Option<&str>, redis: Option<&str>, batch: usize) -> String {
    // One tablet sends hundreds of commands back to back here, and the kitchen completes only
    // some: far beyond a real device, so the per-device rate limit is off and the open-order
    // cap raised (these lines land in the test config's [engine]).
    let mut s = String::from("commands_per_second = 0\nmax_open_orders = 100000\n[uplink]\n");
    if let Some(u) = pg {
        s += &format!("postgres_url = \"{u}\"\n");
    }
    if let Some(u) = redis {
        s += &format!("redis_url = \"{u}\"\n");
    }
    s += &format!(
        "batch_size = {batch}\npoll_interval_ms = 20\nbackoff_min_ms = 20\nbackoff_max_ms = 300\n\
         connect_timeout_ms = 2000\nstatement_timeout_ms = 5000\n"
    );
    s
}

/// A small service: `n` orders from a tablet (every seventh's fries for a guest with a sesame
/// allergy; every fifth a takeaway from server Ana, its burger for seat 2, and a rush), a third
/// of them bumped at the grill, a sixth completed at expo. Returns the box's
/// last seq.
pub async fn service(d: &Daemon, tag: &str, n: usize) -> anyhow::Result<u64> {
    let creds = |id: &str, role: &str, st: &[&str]| -> anyhow::Result<Creds> {
        d.add_device(&format!("{id}-{tag}"), role, st)
    };
    let mut tablet = Client::connect(d.mqtt, &creds("tablet", "tablet", &[])?).await?;
    let mut grill = Client::connect(d.mqtt, &creds("grill", "station", &["grill"])?).await?;
    let mut expo = Client::connect(d.mqtt, &creds("expo", "expo", &[])?).await?;
    let mut last = 0;
    for i in 0..n {
        let mut fries = line("fries", 1);
        fries.allergy = (i % 7 == 0).then(|| "sesame".into());
        let mut burger = line("burger-classic", 1 + (i % 3) as u32);
        let away = i % 5 == 0;
        burger.seat = away.then_some(2);
        let r = tablet
            .command(&CommandBody::PlaceOrder {
                table: format!("{}", i % 40 + 1),
                lines: vec![burger, fries],
                server: away.then(|| "Ana".into()),
                service: away.then_some(docket_core::order::Service::Takeaway),
                channel: None,
                reference: None,
            })
            .await?;
        anyhow::ensure!(r.ok, "place_order refused: {r:?}");
        last = r.seq.context("seq")?;
        let order_id = r.order_id.clone().context("order id")?;
        if away {
            let rush = CommandBody::SetRush {
                order_id: order_id.clone(),
                rush: true,
            };
            let r = tablet.command(&rush).await?;
            anyhow::ensure!(r.ok, "set_rush refused: {r:?}");
            last = r.seq.context("seq")?;
        }
        if i % 3 == 0 {
            let r = grill
                .command(&CommandBody::Bump {
                    order_id: order_id.clone(),
                    station: "grill".into(),
                })
                .await?;
            anyhow::ensure!(r.ok, "bump refused: {r:?}");
            last = r.seq.context("seq")?;
        }
        if i % 6 == 0 {
            let r = expo.command(&CommandBody::Complete { order_id }).await?;
            anyhow::ensure!(r.ok, "complete refused: {r:?}");
            last = r.seq.context("seq")?;
        }
    }
    Ok(last)
}

/// Waits until PostgreSQL holds `n` events for `site`; then checks they are exactly 1..=n.
pub async fn pg_has_exactly(pg: &tokio_postgres::Client, site: &str, n: u64) -> R {
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    loop {
        let row = pg
            .query_one(
                "SELECT count(*), COALESCE(min(seq), 0), COALESCE(max(seq), 0)
                 FROM docket.events WHERE site_id = $1",
                &[&site],
            )
            .await;
        if let Ok(row) = row {
            let (count, min, max): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
            if count as u64 >= n {
                anyhow::ensure!(
                    (count, min, max) == (n as i64, 1, n as i64),
                    "site {site}: {count} events, seq {min}..={max}; want exactly 1..={n}"
                );
                return Ok(());
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("PostgreSQL did not get {n} events of {site} within {CATCH_UP:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the Redis stream holds `n` entries; checks ids 0-1..0-n in order, seq fields.
pub fn redis_has_exactly(redis: &Redis, site: &str, n: u64) -> R {
    let key = format!("docket:{{{site}}}:events");
    let deadline = std::time::Instant::now() + CATCH_UP;
    loop {
        let len: u64 = redis
            .connection()
            .and_then(|mut c| Ok(redis::cmd("XLEN").arg(&key).query(&mut c)?))
            .unwrap_or(0);
        if len >= n {
            let mut c = redis.connection()?;
            let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                .arg(&key)
                .arg("-")
                .arg("+")
                .query(&mut c)?;
            let ids: Vec<String> = reply.ids.iter().map(|e| e.id.clone()).collect();
            let want: Vec<String> = (1..=n).map(|s| format!("0-{s}")).collect();
            anyhow::ensure!(
                ids == want,
                "stream ids are not 0-1..0-{n}: {} entries",
                ids.len()
            );
            for e in &reply.ids {
                let seq: u64 = e.get("seq").context("seq field")?;
                anyhow::ensure!(e.id == format!("0-{seq}"));
            }
            let last: u64 = redis::cmd("HGET")
                .arg(format!("docket:{{{site}}}:status"))
                .arg("last_seq")
                .query(&mut c)?;
            anyhow::ensure!(last == n, "status last_seq {last}, want {n}");
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("Redis stream has {len} of {n} entries after {CATCH_UP:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for `docket:{<site>}:menu` and the status hash's `menu_version` to agree, then returns
/// the version and whether the fries are 86'd in it.
pub async fn redis_menu(redis: &Redis, site: &str) -> anyhow::Result<(u64, bool)> {
    let deadline = std::time::Instant::now() + CATCH_UP;
    let mut last = None;
    loop {
        let mut c = redis.connection()?;
        let json: Option<String> = redis::cmd("GET")
            .arg(format!("docket:{{{site}}}:menu"))
            .query(&mut c)?;
        let status: Option<u64> = redis::cmd("HGET")
            .arg(format!("docket:{{{site}}}:status"))
            .arg("menu_version")
            .query(&mut c)?;
        if let Some(json) = json {
            let menu: docket_core::Menu = serde_json::from_str(&json)?;
            let fries = menu.item("fries").is_some_and(|i| i.out);
            if status == Some(menu.version) && last == Some((menu.version, fries)) {
                return Ok((menu.version, fries));
            }
            last = Some((menu.version, fries));
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "no menu in Redis: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The box's orders (id → (status, version)) from its SQLite.
pub fn box_orders(d: &Daemon) -> anyhow::Result<BTreeMap<String, (String, i64)>> {
    let conn = rusqlite::Connection::open_with_flags(
        d.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let mut stmt = conn.prepare("SELECT id, status, version FROM orders")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub async fn pg_orders(
    pg: &tokio_postgres::Client,
    site: &str,
) -> anyhow::Result<BTreeMap<String, (String, i64)>> {
    Ok(pg
        .query(
            "SELECT order_id, status, version FROM docket.orders WHERE site_id = $1",
            &[&site],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect())
}

/// Creates `site`'s role at head office with the CLI head office would use (`helper` is any
/// docketd, for its CLI); the role's URL.
pub fn create_site_role(helper: &Daemon, pg: &Postgres, site: &str) -> anyhow::Result<String> {
    let password = format!("{site}-password-0123456789");
    let out = helper.cli_with_stdin(
        &[
            "uplink",
            "site-role",
            "--url",
            &pg.admin_url(),
            "--site",
            site,
        ],
        &format!("{password}\n"),
    )?;
    anyhow::ensure!(out.contains(&format!("docket_site_{site}")), "{out}");
    Ok(pg.url(&format!("docket_site_{site}"), &password))
}

pub fn migrate(d: &Daemon, pg: &Postgres) -> R {
    let args = pg.migrate_args();
    let out = d.cli(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
    anyhow::ensure!(out.contains("\"applied\""), "migrate printed {out}");
    // The schema is what the run asked for (DOCKET_TEST_POSTGRES).
    let parts = docket_tests::servers::test_partitions().map_or("null".into(), |n| n.to_string());
    anyhow::ensure!(
        out.contains(&format!("\"partitions\":{parts}")),
        "migrate printed {out}"
    );
    Ok(())
}
