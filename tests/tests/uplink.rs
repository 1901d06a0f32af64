//! The uplink end to end: the real docketd relaying to real PostgreSQL and Redis servers that
//! the tests start, kill -9 and restart. Head office must see every event of every site once,
//! in order, whatever the network and the processes do.

use std::time::Duration;

use anyhow::Context;
use docket_core::wire::CommandBody;
use docket_tests::servers::{Postgres, Redis};
use docket_tests::{line, Client, Daemon};

#[path = "support/uplink.rs"]
mod support;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_built_while_the_uplink_was_down_arrives_once_and_in_order() -> R {
    let mut pg = Postgres::init()?;
    let mut redis = Redis::init()?;
    let d = Daemon::start_with(
        &[],
        "bistro-1",
        &uplink_toml(Some(&pg.admin_url()), Some(&redis.url()), 200),
    )?;
    let last = service(&d, "a", 1000).await?;
    assert!(last > 1000);

    // Both targets are down: the kitchen did not notice, the lag is reported.
    d.metric_at_least("docket_uplink_failures_total{target=\"postgres\"}", 1.0)
        .await?;
    assert_eq!(d.metric("docket_uplink_up{target=\"postgres\"}")?, 0.0);
    assert_eq!(d.metric("docket_uplink_up{target=\"redis\"}")?, 0.0);
    assert_eq!(
        d.metric("docket_uplink_lag_events{target=\"postgres\"}")?,
        last as f64
    );
    let (_, health) = d.get("/healthz")?;
    assert!(health.contains("\"status\":\"ok\""), "{health}");

    // Head office comes up.
    pg.up()?;
    migrate(&d, &pg)?;
    redis.up()?;
    let client = pg.client().await?;
    pg_has_exactly(&client, "bistro-1", last).await?;
    assert_eq!(pg_orders(&client, "bistro-1").await?, box_orders(&d)?);
    let lines: i64 = client
        .query_one(
            "SELECT count(*) FROM docket.order_lines WHERE site_id = 'bistro-1'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(lines, 2000);
    // The guest's allergy reaches head office with its line, apart from the notes.
    let allergic: i64 = client
        .query_one(
            "SELECT count(*) FROM docket.order_lines
             WHERE site_id = 'bistro-1' AND item = 'fries' AND allergy = 'sesame'
               AND notes IS NULL",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(allergic, (0..1000).filter(|i| i % 7 == 0).count() as i64);
    // How each order left, who took it, a rush and the guest's seat reach head office too.
    let away: i64 = client
        .query_one(
            "SELECT count(*) FROM docket.orders o JOIN docket.order_lines l USING (site_id, order_id)
             WHERE o.site_id = 'bistro-1' AND o.service = 'takeaway' AND o.server = 'Ana'
               AND o.rush AND l.item = 'burger-classic' AND l.seat = 2",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(away, (0..1000).filter(|i| i % 5 == 0).count() as i64);
    let dine_in: i64 = client
        .query_one(
            "SELECT count(*) FROM docket.orders
             WHERE site_id = 'bistro-1' AND service = 'dine_in' AND server IS NULL AND NOT rush",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(dine_in, 800);
    // ready_at is set exactly for the bumped grill lines of orders still open or completed.
    let ready: i64 = client
        .query_one(
            "SELECT count(*) FROM docket.order_lines
             WHERE site_id = 'bistro-1' AND status = 'ready' AND ready_at IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(ready, 334);
    let site: i64 = client
        .query_one(
            "SELECT last_seq FROM docket.sites WHERE site_id = 'bistro-1'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(site as u64, last);
    redis_has_exactly(&redis, "bistro-1", last)?;
    d.metric_at_least("docket_uplink_up{target=\"postgres\"}", 1.0)
        .await?;
    docket_tests::eventually("lag back to 0", || {
        d.metric("docket_uplink_lag_events{target=\"postgres\"}")
            .is_ok_and(|v| v == 0.0)
            && d.metric("docket_uplink_lag_events{target=\"redis\"}")
                .is_ok_and(|v| v == 0.0)
    })
    .await?;
    // Head office's views answer.
    let sales: i64 = client
        .query_one(
            "SELECT sales_cents::bigint FROM docket.sales_per_site_day WHERE site_id = 'bistro-1'",
            &[],
        )
        .await?
        .get(0);
    assert!(sales > 0);
    let grill: i64 = client
        .query_one(
            "SELECT tickets FROM docket.ticket_times_per_station
             WHERE site_id = 'bistro-1' AND station = 'grill'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(grill, 334);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_mid_relay_leaves_no_gap_and_no_duplicate() -> R {
    let mut pg = Postgres::start()?;
    let d = Daemon::start_with(
        &[],
        "bistro-2",
        &uplink_toml(Some(&pg.admin_url()), None, 25),
    )?;
    migrate(&d, &pg)?;
    // Orders keep coming while PostgreSQL dies twice under the relay.
    let placing = {
        let d2 = (d.mqtt, d.add_device("tablet-k", "tablet", &[])?);
        tokio::spawn(async move {
            let mut t = Client::connect(d2.0, &d2.1).await?;
            let mut last = 0;
            for i in 0..600 {
                let r = t
                    .command(&CommandBody::place(&format!("{i}"), vec![line("fries", 1)]))
                    .await?;
                anyhow::ensure!(r.ok);
                last = r.seq.context("seq")?;
            }
            anyhow::Ok(last)
        })
    };
    for round in 0..2 {
        d.metric_at_least(
            "docket_uplink_events_total{target=\"postgres\"}",
            (100 + 200 * round) as f64,
        )
        .await?;
        pg.kill9();
        tokio::time::sleep(Duration::from_millis(300)).await;
        pg.up()?;
    }
    let last = placing.await??;
    let client = pg.client().await?;
    pg_has_exactly(&client, "bistro-2", last).await?;
    assert_eq!(pg_orders(&client, "bistro-2").await?, box_orders(&d)?);
    assert!(d.metric("docket_uplink_failures_total{target=\"postgres\"}")? >= 1.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_never_holds_up_postgres_and_the_reverse() -> R {
    let mut pg = Postgres::start()?;
    let mut redis = Redis::init()?;
    let d = Daemon::start_with(
        &[],
        "bistro-3",
        &uplink_toml(Some(&pg.admin_url()), Some(&redis.url()), 100),
    )?;
    migrate(&d, &pg)?;
    let client = pg.client().await?;

    // Redis down: PostgreSQL keeps up.
    let first = service(&d, "a", 60).await?;
    pg_has_exactly(&client, "bistro-3", first).await?;
    assert_eq!(d.metric("docket_uplink_up{target=\"redis\"}")?, 0.0);
    assert_eq!(d.metric("docket_uplink_up{target=\"postgres\"}")?, 1.0);
    redis.up()?;
    redis_has_exactly(&redis, "bistro-3", first)?;
    // The live feed has the menu the box serves, and its next version once fries are 86'd.
    assert_eq!(redis_menu(&redis, "bistro-3").await?, (1, false));
    let manager = d.add_device("admin-3", "manager", &[])?;
    let mut m = Client::connect(d.mqtt, &manager).await?;
    let stock = CommandBody::SetStock {
        item: "fries".into(),
        out: true,
    };
    assert_eq!(m.command(&stock).await?.menu_version, Some(2));
    assert_eq!(redis_menu(&redis, "bistro-3").await?, (2, true));
    let back = CommandBody::SetStock {
        item: "fries".into(),
        out: false,
    };
    assert_eq!(m.command(&back).await?.menu_version, Some(3));
    assert_eq!(redis_menu(&redis, "bistro-3").await?, (3, false));

    // PostgreSQL down: Redis keeps up.
    pg.kill9();
    let second = service(&d, "b", 60).await?;
    redis_has_exactly(&redis, "bistro-3", second)?;
    d.metric_at_least("docket_uplink_lag_events{target=\"postgres\"}", 1.0)
        .await?;
    pg.up()?;
    let client = pg.client().await?;
    pg_has_exactly(&client, "bistro-3", second).await?;
    assert_eq!(pg_orders(&client, "bistro-3").await?, box_orders(&d)?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_box_killed_during_a_relay_still_relays_exactly_once() -> R {
    let mut pg = Postgres::init()?;
    let mut redis = Redis::init()?;
    let mut d = Daemon::start_with(
        &[],
        "bistro-4",
        &uplink_toml(Some(&pg.admin_url()), Some(&redis.url()), 20),
    )?;
    let last = service(&d, "a", 600).await?;
    pg.up()?;
    migrate(&d, &pg)?;
    redis.up()?;
    // Mid-relay: some batches are in, most are not.
    d.metric_at_least("docket_uplink_events_total{target=\"postgres\"}", 100.0)
        .await?;
    d.kill9();
    d.restart()?;
    let client = pg.client().await?;
    pg_has_exactly(&client, "bistro-4", last).await?;
    redis_has_exactly(&redis, "bistro-4", last)?;
    assert_eq!(pg_orders(&client, "bistro-4").await?, box_orders(&d)?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sites_share_a_database_and_each_role_writes_only_its_own_rows() -> R {
    let pg = Postgres::start()?;
    let admin = pg.client().await?;
    // The schema and the two sites' roles, with the CLI head office would use.
    let helper = Daemon::start()?;
    migrate(&helper, &pg)?;
    let mut urls = Vec::new();
    for site in ["site-a", "site-b"] {
        urls.push(create_site_role(&helper, &pg, site)?);
    }
    drop(helper);
    let a = Daemon::start_with(&[], "site-a", &uplink_toml(Some(&urls[0]), None, 50))?;
    let b = Daemon::start_with(&[], "site-b", &uplink_toml(Some(&urls[1]), None, 50))?;
    let (la, lb) = tokio::try_join!(service(&a, "a", 80), service(&b, "b", 80))?;
    pg_has_exactly(&admin, "site-a", la).await?;
    pg_has_exactly(&admin, "site-b", lb).await?;
    assert_eq!(pg_orders(&admin, "site-a").await?, box_orders(&a)?);
    assert_eq!(pg_orders(&admin, "site-b").await?, box_orders(&b)?);

    // Site A 86s its fries: head office gets each menu version once, with who made it.
    let manager = a.add_device("admin-a", "manager", &[])?;
    let mut m = Client::connect(a.mqtt, &manager).await?;
    let stock = CommandBody::SetStock {
        item: "fries".into(),
        out: true,
    };
    assert_eq!(m.command(&stock).await?.menu_version, Some(2));
    let menus = |site: &'static str| {
        let admin = &admin;
        async move {
            let rows = admin
                .query(
                    "SELECT version, device, items @> '[{\"id\": \"fries\", \"out\": true}]'
                     FROM docket.menus WHERE site_id = $1 ORDER BY version",
                    &[&site],
                )
                .await?;
            let got: Vec<(i64, String, bool)> = rows
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            anyhow::Ok(got)
        }
    };
    let want = vec![
        (1, "docketd".to_owned(), false),
        (2, "admin-a".to_owned(), true),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while menus("site-a").await? != want {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{:?}",
            menus("site-a").await?
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        menus("site-b").await?,
        vec![(1, "docketd".to_owned(), false)]
    );

    // Site A's role sees only site A and cannot write site B's rows.
    let (as_a, conn) = tokio_postgres::connect(&urls[0], tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let seen: Vec<String> = as_a
        .query("SELECT DISTINCT site_id FROM docket.events", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(seen, vec!["site-a".to_owned()]);
    let forged = as_a
        .execute(
            "INSERT INTO docket.events (site_id, seq, type, order_id, version, device, at, body)
             VALUES ('site-b', 999999, 'order_placed', 'o-999999', 1, 'x', now(), '{}')",
            &[],
        )
        .await;
    let err = forged.expect_err("site A's role wrote a site B event");
    let msg = err
        .as_db_error()
        .map_or_else(|| err.to_string(), |e| e.message().to_owned());
    assert!(msg.contains("row-level security"), "{msg}");
    let forged = as_a
        .execute(
            "INSERT INTO docket.menus (site_id, version, items, changed_at, device, command)
             VALUES ('site-b', 99, '[]', now(), 'x', 'x')",
            &[],
        )
        .await;
    assert!(forged.is_err(), "site A's role wrote a site B menu");
    let updated = as_a
        .execute(
            "UPDATE docket.orders SET status = 'completed' WHERE site_id = 'site-b'",
            &[],
        )
        .await?;
    assert_eq!(updated, 0, "site B's orders are invisible to site A");
    let unchanged: i64 = admin
        .query_one(
            "SELECT count(*) FROM docket.events WHERE site_id = 'site-b'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(unchanged as u64, lb);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_is_idempotent_and_bad_urls_are_refused_clearly() -> R {
    let pg = Postgres::start()?;
    let d = Daemon::start()?;
    let args = pg.migrate_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = d.cli(&args)?;
    assert!(first.contains("001_schema"), "{first}");
    let again = d.cli(&args)?;
    assert!(again.contains("\"applied\":[]"), "{again}");
    let wrong = d.cli(&[
        "uplink",
        "migrate",
        "--url",
        &pg.url("postgres", "wrong-password"),
    ]);
    let err = wrong
        .expect_err("a wrong password was accepted")
        .to_string();
    // What docketd printed (after the harness's own "failed:"): the cause, the URL redacted.
    let printed = err.split_once("failed:").map_or("", |(_, e)| e);
    assert!(printed.contains("password"), "{err}");
    assert!(printed.contains("postgres:***@"), "{err}");
    assert!(
        !printed.contains("wrong-password"),
        "the password leaked: {err}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_office_without_the_menus_table_still_gets_every_event() -> R {
    // Head office not yet migrated to 005_menus (the box was updated first): the menu versions
    // are refused, said once in the log, and the events do not wait for them.
    let pg = Postgres::start()?;
    let helper = Daemon::start()?;
    migrate(&helper, &pg)?;
    drop(helper);
    let admin = pg.client().await?;
    admin.batch_execute("DROP TABLE docket.menus").await?;
    let d = Daemon::start_with(&[], "old-hq", &uplink_toml(Some(&pg.admin_url()), None, 50))?;
    let last = service(&d, "a", 40).await?;
    pg_has_exactly(&admin, "old-hq", last).await?;
    let log = d.log_text();
    assert_eq!(
        log.matches("head office refuses the menu's versions")
            .count(),
        1,
        "{log}"
    );
    Ok(())
}
