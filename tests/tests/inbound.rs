//! Head office's downlink end to end: orders inserted at head office (a real PostgreSQL the test
//! starts, kills -9 and restarts) reach the real docketd's kitchen once each, in order, whether
//! the box was offline or head office died mid-pull; a refused one is answered with its reason;
//! a site's role reads only its own rows and writes none.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use docket_core::wire::{self, Board};
use docket_tests::servers::Postgres;
use docket_tests::{Client, Daemon};

/// Shared with the uplink tests; this file uses a few of its helpers.
#[allow(dead_code)]
#[path = "support/uplink.rs"]
mod support;
use support::{create_site_role, migrate, CATCH_UP, R};

/// The box's `[uplink]`: head office's PostgreSQL as the site's role, looked at every 200 ms
/// when no NOTIFY comes. The per-device rate limit stays on: the downlink lives with it.
fn toml(url: &str) -> String {
    format!(
        "max_open_orders = 100000\n[uplink]\npostgres_url = \"{url}\"\npoll_interval_ms = 50\n\
         inbound_poll_ms = 200\nbackoff_min_ms = 20\nbackoff_max_ms = 300\n\
         connect_timeout_ms = 2000\nstatement_timeout_ms = 5000\n"
    )
}

/// The schema and `site`'s role at head office; the role's URL.
fn site_role(pg: &Postgres, site: &str) -> anyhow::Result<String> {
    let helper = Daemon::start()?;
    migrate(&helper, pg)?;
    create_site_role(&helper, pg, site)
}

/// Head office inserts one order for `site`; false when (source, id) was there already.
async fn insert(
    hq: &tokio_postgres::Client,
    site: &str,
    source: &str,
    id: &str,
    payload: &str,
) -> anyhow::Result<bool> {
    let n = hq
        .execute(
            "INSERT INTO docket.inbound_orders (site_id, source, source_id, payload)
             VALUES ($1, $2, $3, $4::text::jsonb) ON CONFLICT DO NOTHING",
            &[&site, &source, &id, &payload],
        )
        .await?;
    Ok(n == 1)
}

fn order_json(item: &str, qty: u32) -> String {
    format!(r#"{{"lines": [{{"item": "{item}", "qty": {qty}}}]}}"#)
}

/// Head office's results for `site`, by seq: (ok, order id, ticket, code).
type Results = BTreeMap<i64, (bool, Option<String>, Option<i64>, Option<String>)>;

async fn results(hq: &tokio_postgres::Client, site: &str) -> anyhow::Result<Results> {
    Ok(hq
        .query(
            "SELECT seq, ok, order_id, ticket, code FROM docket.inbound_results
             WHERE site_id = $1",
            &[&site],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4))))
        .collect())
}

async fn wait_results(
    hq: &tokio_postgres::Client,
    site: &str,
    n: usize,
) -> anyhow::Result<Results> {
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    loop {
        let r = results(hq, site).await?;
        if r.len() >= n {
            ensure!(r.len() == n, "{} results for {n} inbound orders", r.len());
            return Ok(r);
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{} of {n} inbound orders answered within {CATCH_UP:?}",
                r.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The box's orders placed by head office's device: (ticket, channel, reference), by ticket.
fn box_inbound(d: &Daemon) -> anyhow::Result<Vec<(u64, String, Option<String>)>> {
    let conn = rusqlite::Connection::open_with_flags(
        d.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let mut stmt = conn.prepare("SELECT body FROM orders ORDER BY ticket")?;
    let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = Vec::new();
    for body in rows {
        let o: docket_core::Order = wire::decode(&body?)?;
        if let Some(origin) = o.origin.filter(|o| o.device == "head-office") {
            out.push((o.ticket, origin.channel, origin.reference));
        }
    }
    Ok(out)
}

/// Every accepted result is one order on the box, tickets rising with head office's seq, and
/// each (source, id) once.
fn check_once_in_order(r: &Results, on_box: &[(u64, String, Option<String>)]) -> R {
    let accepted: Vec<(i64, i64)> = r
        .iter()
        .filter(|(_, v)| v.0)
        .map(|(seq, v)| (*seq, v.2.expect("an accepted result has its ticket")))
        .collect();
    ensure!(
        accepted.windows(2).all(|w| w[0].1 < w[1].1),
        "tickets do not rise with head office's seq"
    );
    ensure!(
        on_box.len() == accepted.len(),
        "{} head-office orders on the box, {} accepted",
        on_box.len(),
        accepted.len()
    );
    let mut refs: Vec<&Option<String>> = on_box.iter().map(|o| &o.2).collect();
    refs.sort();
    refs.dedup();
    ensure!(
        refs.len() == on_box.len(),
        "an order from outside placed twice"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_orders_sent_while_the_box_was_off_reach_the_kitchen_once_in_order() -> R {
    let pg = Postgres::start()?;
    let url = site_role(&pg, "bistro-in")?;
    let hq = pg.client().await?;
    let mut d = Daemon::start_with(&[], "bistro-in", &toml(&url))?;
    // The box is off: head office takes a thousand orders (one of an item the box does not
    // sell, one that is not an order at all), and one of them twice.
    d.kill9();
    for i in 0..1000 {
        let payload = match i {
            500 => order_json("unicorn", 1),
            700 => r#"{"lines": "fries"}"#.to_owned(),
            _ => order_json(
                if i % 2 == 0 {
                    "burger-classic"
                } else {
                    "fries"
                },
                1,
            ),
        };
        assert!(
            insert(
                &hq,
                "bistro-in",
                "deliveroo",
                &format!("DR-{i:04}"),
                &payload
            )
            .await?
        );
    }
    assert!(
        !insert(
            &hq,
            "bistro-in",
            "deliveroo",
            "DR-0042",
            &order_json("fries", 9)
        )
        .await?,
        "(source, id) is an order's identity at head office"
    );
    d.restart()?;
    d.wait_ready()?;
    let r = wait_results(&hq, "bistro-in", 1000).await?;
    let refused: Vec<(i64, Option<String>)> = r
        .iter()
        .filter(|(_, v)| !v.0)
        .map(|(s, v)| (*s, v.3.clone()))
        .collect();
    assert_eq!(
        refused,
        vec![
            (501, Some("unknown_item".into())),
            (701, Some("malformed_body".into()))
        ]
    );
    let message: String = hq
        .query_one(
            "SELECT message FROM docket.inbound_results WHERE site_id = 'bistro-in' AND seq = 501",
            &[],
        )
        .await?
        .get(0);
    assert!(
        message.contains("unicorn"),
        "the reason says what: {message}"
    );
    let on_box = box_inbound(&d)?;
    check_once_in_order(&r, &on_box)?;
    assert_eq!(
        d.metric("docket_inbound_orders_total{result=\"placed\"}")?,
        998.0
    );
    assert_eq!(
        d.metric("docket_inbound_orders_total{result=\"refused\"}")?,
        2.0
    );
    assert_eq!(d.metric("docket_inbound_up")?, 1.0);
    assert_eq!(on_box[0].1, "deliveroo");
    assert_eq!(on_box[0].2.as_deref(), Some("DR-0000"));

    // On the kitchen's screens, marked as such: the grill's board holds every burger.
    let kds = d.add_device("kds-grill", "station", &["grill"])?;
    let mut k = Client::connect(d.mqtt, &kds).await?;
    k.subscribe(&wire::board_topic("grill")).await?;
    // The board is published after the commits it shows (coalesced): a retained one may
    // predate the last orders, so read boards until the burgers are all there or time is up.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let delivered = loop {
        let m = tokio::time::timeout_at(deadline, k.recv())
            .await
            .ok()
            .flatten()
            .context("the grill's board, with every burger, within 20 s")?;
        if m.topic != wire::board_topic("grill") {
            continue;
        }
        let board = wire::decode::<Board>(&m.payload)?;
        let delivered: Vec<_> = (board.orders.into_iter())
            .filter(|o| o.origin.as_ref().is_some_and(|g| g.channel == "deliveroo"))
            .collect();
        if delivered.len() >= 498 {
            break delivered;
        }
    };
    // Even rows are burgers; rows 500 and 700 were refused.
    assert_eq!(delivered.len(), 498, "every burger but the two refused");
    assert!(delivered
        .iter()
        .all(|o| o.service == Some(docket_core::order::Service::Delivery)));

    // A restart applies nothing twice.
    d.restart()?;
    d.wait_ready()?;
    assert!(insert(&hq, "bistro-in", "web", "W-1", &order_json("fries", 2)).await?);
    let r = wait_results(&hq, "bistro-in", 1001).await?;
    check_once_in_order(&r, &box_inbound(&d)?)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_mid_pull_leaves_no_gap_and_no_duplicate() -> R {
    let mut pg = Postgres::start()?;
    let url = site_role(&pg, "bistro-kill")?;
    let d = Daemon::start_with(&[], "bistro-kill", &toml(&url))?;
    let mut sent = 0;
    for round in 0..3 {
        let hq = pg.client().await?;
        for i in 0..150 {
            let id = format!("K-{round}-{i:03}");
            assert!(insert(&hq, "bistro-kill", "kiosk", &id, &order_json("fries", 1)).await?);
            sent += 1;
        }
        // Mid-pull: the box has begun this round when head office dies.
        let begun = sent - 150;
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        while results(&hq, "bistro-kill").await?.len() <= begun {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the box took nothing of round {round}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(hq);
        pg.kill9();
        // The killed postmaster's backends leave in their own time: start again until it works.
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        while let Err(e) = pg.up() {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "PostgreSQL does not start again: {e}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let hq = pg.client().await?;
    let r = wait_results(&hq, "bistro-kill", sent).await?;
    assert!(r.values().all(|v| v.0), "every kiosk order accepted");
    let keys: Vec<i64> = r.keys().copied().collect();
    assert_eq!(keys, (1..=sent as i64).collect::<Vec<_>>(), "no gap");
    check_once_in_order(&r, &box_inbound(&d)?)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sites_role_reads_only_its_own_inbound_orders_and_writes_none() -> R {
    let pg = Postgres::start()?;
    let url_a = site_role(&pg, "site-a")?;
    site_role(&pg, "site-b")?;
    let hq = pg.client().await?;
    insert(&hq, "site-a", "web", "A-1", &order_json("fries", 1)).await?;
    insert(&hq, "site-b", "web", "B-1", &order_json("fries", 1)).await?;
    let (a, conn) = tokio_postgres::connect(&url_a, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let seen: Vec<String> = a
        .query("SELECT source_id FROM docket.inbound_orders", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(seen, vec!["A-1".to_owned()]);
    for sql in [
        "INSERT INTO docket.inbound_orders (site_id, source, source_id, payload) VALUES ('site-a', 'web', 'A-2', '{}')",
        "UPDATE docket.inbound_orders SET payload = '{}'",
        "DELETE FROM docket.inbound_orders",
        "INSERT INTO docket.inbound_results (site_id, seq, ok, applied_at) VALUES ('site-b', 1, true, now())",
    ] {
        assert!(a.batch_execute(sql).await.is_err(), "a site may not: {sql}");
    }
    // Its own result it may write, once.
    a.batch_execute(
        "INSERT INTO docket.inbound_results (site_id, seq, ok, applied_at) VALUES ('site-a', 1, true, now())",
    )
    .await?;
    Ok(())
}

/// Head office's insert → the order on the kitchen's screens (its `order_placed` event, which the
/// KDS and expo pages apply at once; boards follow within the engine's coalescing window), with
/// the uplink up: printed, not asserted (docs/benchmarks.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_office_insert_to_kitchen_screen_latency() -> R {
    let pg = Postgres::start()?;
    let url = site_role(&pg, "bistro-lat")?;
    let hq = pg.client().await?;
    let d = Daemon::start_with(&[], "bistro-lat", &toml(&url))?;
    let kds = d.add_device("kds-fry", "station", &["fry"])?;
    let mut k = Client::connect(d.mqtt, &kds).await?;
    k.subscribe(wire::EVENTS_TOPIC).await?;
    let mut samples = Vec::new();
    for i in 0..200 {
        let reference = format!("L-{i:03}");
        let t = Instant::now();
        insert(
            &hq,
            "bistro-lat",
            "web",
            &reference,
            &order_json("fries", 1),
        )
        .await?;
        loop {
            let m = tokio::time::timeout(Duration::from_secs(30), k.recv())
                .await?
                .context("the events")?;
            if m.topic != wire::EVENTS_TOPIC {
                continue;
            }
            let e: wire::Event = wire::decode(&m.payload)?;
            if e.order
                .origin
                .as_ref()
                .is_some_and(|g| g.reference.as_deref() == Some(reference.as_str()))
            {
                break;
            }
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "head office insert -> order on the KDS (event): n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        samples.len(),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() * 99 / 100]),
        ms(samples[samples.len() - 1])
    );
    Ok(())
}
