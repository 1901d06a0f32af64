//! Menus from head office end to end: the real docketd taking menus and 86s from a real
//! PostgreSQL (`docket.central_menus`, `docket.central_stock`) as its site role, through the
//! same checks as its menu file and `/admin`'s editor; the rule when a local edit and a central
//! one meet (docs/operations.md, "Menus from head office"); and what a site role may read and
//! write of head office's menus.

use std::time::Duration;

use anyhow::Context;
use docket_core::menu::{Menu, MenuItem};
use docket_core::wire::{self, CommandBody};
use docket_tests::servers::Postgres;
use docket_tests::{Client, Daemon};

// Shared with uplink.rs; this file uses a part of it.
#[allow(dead_code)]
#[path = "support/uplink.rs"]
mod support;
use support::*;

/// The device the box records head office's changes as.
const HQ: &str = "docketd-head-office";
const WAIT: Duration = Duration::from_secs(60);

/// Head office with the schema, `sites` each with a role, and each site's brand; the sites'
/// URLs, in order.
async fn head_office(pg: &Postgres, sites: &[(&str, &str)]) -> anyhow::Result<Vec<String>> {
    let helper = Daemon::start()?;
    migrate(&helper, pg)?;
    let admin = pg.client().await?;
    let mut urls = Vec::new();
    for (site, brand) in sites {
        let url = create_site_role(&helper, pg, site)?;
        admin
            .execute(
                "INSERT INTO docket.site_brands (site_id, brand) VALUES ($1, $2)",
                &[site, brand],
            )
            .await?;
        urls.push(url);
    }
    Ok(urls)
}

/// A box of `site` relaying to (and taking menus from) head office as its role.
fn boxed(site: &str, url: &str) -> anyhow::Result<Daemon> {
    let toml = uplink_toml(Some(url), None, 50) + "menus_poll_ms = 100\n";
    Daemon::start_with(&[], site, &toml)
}

/// The menu the box serves, from its SQLite.
fn box_menu(d: &Daemon) -> anyhow::Result<Menu> {
    let db = rusqlite::Connection::open_with_flags(
        d.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let body: Vec<u8> = db.query_row(
        "SELECT body FROM menu_versions ORDER BY version DESC LIMIT 1",
        [],
        |r| r.get(0),
    )?;
    Ok(wire::decode(&body)?)
}

/// Waits (with a deadline) until the box's menu satisfies `ok`; returns it.
async fn menu_until(d: &Daemon, what: &str, ok: impl Fn(&Menu) -> bool) -> anyhow::Result<Menu> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let m = box_menu(d)?;
        if ok(&m) {
            return Ok(m);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the box's menu never got {what}: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Rows of the box's SQLite matching `sql` (one count).
fn count(d: &Daemon, sql: &str) -> anyhow::Result<i64> {
    let db = rusqlite::Connection::open_with_flags(
        d.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    Ok(db.query_row(sql, [], |r| r.get(0))?)
}

fn item<'a>(m: &'a Menu, id: &str) -> anyhow::Result<&'a MenuItem> {
    m.item(id).with_context(|| format!("no {id} in {m:?}"))
}

/// Head office publishes a menu version (`site`: that site's own; else the brand's).
async fn publish(
    admin: &tokio_postgres::Client,
    brand: &str,
    site: Option<&str>,
    version: i64,
    items: &[MenuItem],
) -> anyhow::Result<()> {
    let json = serde_json::to_string(items)?;
    admin
        .execute(
            "INSERT INTO docket.central_menus (brand, site_id, version, items)
             VALUES ($1, $2, $3, $4::text::jsonb)",
            &[&brand, &site, &version, &json],
        )
        .await?;
    Ok(())
}

/// Head office 86s an item (or puts it back) for a brand.
async fn stock(admin: &tokio_postgres::Client, brand: &str, item: &str, out: bool) -> R {
    admin
        .execute(
            "INSERT INTO docket.central_stock (brand, item, out) VALUES ($1, $2, $3)",
            &[&brand, &item, &out],
        )
        .await?;
    Ok(())
}

/// The box's `/healthz` warnings.
fn warnings(d: &Daemon) -> anyhow::Result<Vec<String>> {
    let (_, body) = d.get("/healthz")?;
    let v: serde_json::Value = serde_json::from_str(&body)?;
    Ok(serde_json::from_value(v["warnings"].clone())?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_central_menu_becomes_the_box_menu_and_a_bad_one_is_refused_with_its_reason() -> R {
    let pg = Postgres::start()?;
    let urls = head_office(&pg, &[("site-a", "bistro")]).await?;
    let admin = pg.client().await?;
    let d = boxed("site-a", &urls[0])?;
    let seeded = box_menu(&d)?;

    // Head office's version 1 of the brand: fries cost more, a soup is new, the salads go.
    let mut items: Vec<MenuItem> = seeded.items.clone();
    items.retain(|i| !i.id.contains("salad"));
    let removed = seeded.items.len() - items.len();
    anyhow::ensure!(removed > 0, "the demo menu has salads");
    items
        .iter_mut()
        .find(|i| i.id == "fries")
        .context("fries")?
        .price = 555;
    items.push(MenuItem::plain("soup", "Soup of the day", 700, "cold"));
    publish(&admin, "bistro", None, 1, &items).await?;
    let m = menu_until(&d, "head office's version 1", |m| m.item("soup").is_some()).await?;
    assert_eq!(m.version, seeded.version + 1);
    assert_eq!(item(&m, "fries")?.price, 555);
    assert_eq!(m.items.len(), items.len());
    assert_eq!(
        count(
            &d,
            "SELECT COUNT(*) FROM menu_versions
             WHERE device = 'docketd-head-office' AND command = 'hq-menu:bistro:1'"
        )?,
        1
    );
    // Every tablet has it: the retained menu (at most a second after the last one went).
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    t.subscribe(wire::MENU_TOPIC).await?;
    let retained = t
        .wait_for(|msg| {
            msg.topic == wire::MENU_TOPIC
                && wire::decode::<Menu>(&msg.payload).is_ok_and(|r| r.version >= m.version)
        })
        .await?;
    assert_eq!(wire::decode::<Menu>(&retained.payload)?, m);
    // And head office has it back, as the box's own version (docket.menus).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let row = admin
            .query_opt(
                "SELECT device, command FROM docket.menus WHERE site_id = 'site-a' AND version = $1",
                &[&(m.version as i64)],
            )
            .await?;
        if let Some(r) = row {
            assert_eq!(
                (r.get::<_, String>(0), r.get::<_, String>(1)),
                (HQ.to_owned(), "hq-menu:bistro:1".to_owned())
            );
            break;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "not relayed back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Version 2 puts a station the box cannot serve: refused with its reason, the menu as it was.
    let mut bad = items.clone();
    bad[0].station = "Bad Station".into();
    publish(&admin, "bistro", None, 2, &bad).await?;
    let deadline = std::time::Instant::now() + WAIT;
    let warning = loop {
        let w = warnings(&d)?;
        if let Some(w) = w.iter().find(|w| w.contains("hq-menu:bistro:2")) {
            break w.clone();
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "no warning: {w:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        warning.contains("refused") && warning.contains("Bad Station"),
        "{warning}"
    );
    assert_eq!(box_menu(&d)?, m, "a refused menu changes nothing");

    // A central 86 after it applies (and proves the box polled again since the refusal).
    stock(&admin, "bistro", "fries", true).await?;
    let m = menu_until(&d, "fries 86'd", |m| m.item("fries").is_some_and(|i| i.out)).await?;
    assert_eq!(m.version, seeded.version + 2);
    let log = d.log_text();
    assert_eq!(
        log.matches("refused head office's menu hq-menu:bistro:2")
            .count(),
        1,
        "a refused menu is not tried again: {log}"
    );
    // An 86 of an item the box does not have is refused and changes nothing.
    stock(&admin, "bistro", "no-such-item", true).await?;
    stock(&admin, "bistro", "soup", true).await?;
    let m = menu_until(&d, "soup 86'd", |m| m.item("soup").is_some_and(|i| i.out)).await?;
    assert_eq!(m.version, seeded.version + 3);
    assert!(d.log_text().contains("86'd of no-such-item refused"));

    // The site's own menu beats the brand's, whatever their versions; the warning goes.
    let mut own = items.clone();
    own.push(MenuItem::plain("pie", "Site pie", 650, "cold"));
    publish(&admin, "bistro", Some("site-a"), 1, &own).await?;
    let m = menu_until(&d, "the site's own menu", |m| m.item("pie").is_some()).await?;
    // The box's 86s stay over a new central version.
    assert!(item(&m, "fries")?.out && item(&m, "soup")?.out, "{m:?}");
    assert!(warnings(&d)?.iter().all(|w| !w.contains("hq-menu")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_and_central_edits_meet_by_the_written_rule() -> R {
    let pg = Postgres::start()?;
    let urls = head_office(&pg, &[("site-a", "bistro")]).await?;
    let admin = pg.client().await?;
    let mut d = boxed("site-a", &urls[0])?;
    let seeded = box_menu(&d)?;
    let items = seeded.items.clone();
    publish(&admin, "bistro", None, 1, &items).await?;
    let v1 = menu_until(&d, "head office's version 1", |_| {
        count(
            &d,
            "SELECT COUNT(*) FROM commands WHERE device = 'docketd-head-office'",
        )
        .is_ok_and(|n| n == 1)
    })
    .await?;
    assert_eq!(v1, seeded, "the same items: nothing to change");

    // On the box: a manager edits the steak's price, the grill 86s the burger.
    let manager = d.add_device("admin-1", "manager", &[])?;
    let grill = d.add_device("kds-grill", "station", &["grill"])?;
    let mut a = Client::connect(d.mqtt, &manager).await?;
    let mut g = Client::connect(d.mqtt, &grill).await?;
    let mut steak = item(&seeded, "steak-ribeye")?.clone();
    steak.price = 1;
    let r = a
        .command(&CommandBody::SetItem {
            item: Box::new(steak),
        })
        .await?;
    assert!(r.ok, "{r:?}");
    let burger = CommandBody::SetStock {
        item: "burger-classic".into(),
        out: true,
    };
    assert!(g.command(&burger).await?.ok);

    // Head office's version 2: a new steak price; its copy has the burger on.
    let mut v2 = items.clone();
    v2.iter_mut()
        .find(|i| i.id == "steak-ribeye")
        .context("steak")?
        .price = 3100;
    publish(&admin, "bistro", None, 2, &v2).await?;
    let m = menu_until(&d, "version 2's steak", |m| {
        m.item("steak-ribeye").is_some_and(|i| i.price == 3100)
    })
    .await?;
    // Head office owns the content (the local price is gone); the box its stock (the burger
    // stays 86'd until the box, or head office, puts it back).
    assert!(item(&m, "burger-classic")?.out, "{m:?}");
    assert!(
        d.log_text()
            .contains("the 2 versions made on the box since head office's last menu are replaced"),
        "{}",
        d.log_text()
    );

    // A central back-on applies like a local one; then the latest to arrive wins.
    stock(&admin, "bistro", "burger-classic", false).await?;
    menu_until(&d, "the burger back", |m| {
        m.item("burger-classic").is_some_and(|i| !i.out)
    })
    .await?;
    stock(&admin, "bistro", "fries", true).await?;
    menu_until(&d, "fries 86'd", |m| m.item("fries").is_some_and(|i| i.out)).await?;
    let back = CommandBody::SetStock {
        item: "fries".into(),
        out: false,
    };
    assert!(a.command(&back).await?.ok);
    assert!(!item(&box_menu(&d)?, "fries")?.out);

    // kill -9 and back: nothing from head office is taken twice.
    let versions = count(&d, "SELECT COUNT(*) FROM menu_versions")?;
    d.kill9();
    d.restart()?;
    stock(&admin, "bistro", "soup-none", true).await?; // a marker: refused, but recorded
    let deadline = std::time::Instant::now() + WAIT;
    while count(
        &d,
        "SELECT COUNT(*) FROM commands WHERE device = 'docketd-head-office' AND ok = 0",
    )? < 1
    {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the marker never came"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&d, "SELECT COUNT(*) FROM menu_versions")?, versions);
    assert!(
        !item(&box_menu(&d)?, "fries")?.out,
        "the older central 86 came back"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_role_reads_only_its_own_and_its_brands_menus_and_writes_none() -> R {
    let pg = Postgres::start()?;
    let urls = head_office(&pg, &[("site-a", "bistro"), ("site-b", "diner")]).await?;
    let admin = pg.client().await?;
    let one = [MenuItem::plain("fries", "Fries", 450, "fry")];
    publish(&admin, "bistro", None, 1, &one).await?;
    publish(&admin, "bistro", Some("site-a"), 1, &one).await?;
    publish(&admin, "diner", None, 1, &one).await?;
    publish(&admin, "diner", Some("site-b"), 1, &one).await?;
    stock(&admin, "bistro", "fries", true).await?;
    stock(&admin, "diner", "fries", true).await?;
    admin
        .execute(
            "INSERT INTO docket.central_stock (brand, site_id, item, out)
             VALUES ('diner', 'site-b', 'fries', true)",
            &[],
        )
        .await?;

    let (as_a, conn) = tokio_postgres::connect(&urls[0], tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let rows = |sql: &'static str| {
        let as_a = &as_a;
        async move {
            let got: Vec<(String, Option<String>)> = as_a
                .query(sql, &[])
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            anyhow::Ok(got)
        }
    };
    let bistro = |site: Option<&str>| ("bistro".to_owned(), site.map(str::to_owned));
    assert_eq!(
        rows("SELECT brand, site_id FROM docket.central_menus ORDER BY site_id NULLS FIRST")
            .await?,
        vec![bistro(None), bistro(Some("site-a"))]
    );
    assert_eq!(
        rows("SELECT brand, site_id FROM docket.central_stock").await?,
        vec![bistro(None)]
    );
    assert_eq!(
        rows("SELECT brand, site_id FROM docket.site_brands").await?,
        vec![bistro(Some("site-a"))]
    );
    // Writes of any kind are refused, its own rows included.
    for sql in [
        "INSERT INTO docket.central_menus (brand, site_id, version, items)
         VALUES ('bistro', 'site-a', 9, '[]')",
        "INSERT INTO docket.central_stock (brand, item, out) VALUES ('bistro', 'fries', false)",
        "UPDATE docket.site_brands SET brand = 'diner' WHERE site_id = 'site-a'",
        "INSERT INTO docket.site_brands (site_id, brand) VALUES ('site-z', 'diner')",
        "DELETE FROM docket.central_stock",
        "UPDATE docket.central_menus SET items = '[]'",
    ] {
        let err = as_a.execute(sql, &[]).await.expect_err(sql);
        let msg = err
            .as_db_error()
            .map_or_else(|| err.to_string(), |e| e.message().to_owned());
        assert!(msg.contains("permission denied"), "{sql}: {msg}");
    }
    let untouched: i64 = admin
        .query_one(
            "SELECT (SELECT count(*) FROM docket.central_menus)
                  + (SELECT count(*) FROM docket.central_stock)
                  + (SELECT count(*) FROM docket.site_brands)",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(untouched, 4 + 3 + 2);
    Ok(())
}

/// Two head-office writers overlap: the one that took its id first commits last. The box reads
/// 86s after the highest id it took, so ids must rise in commit order or the late row is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_86_that_commits_late_is_not_skipped() -> R {
    let pg = Postgres::start()?;
    let helper = Daemon::start()?;
    migrate(&helper, &pg)?;
    let first = pg.client().await?;
    let second = pg.client().await?;
    first.batch_execute("BEGIN; INSERT INTO docket.central_stock (brand, item, out) VALUES ('b', 'fries', true)").await?;
    // The second writer waits for the first to commit, then takes a higher id.
    let late = tokio::spawn(async move {
        second
            .batch_execute(
                "INSERT INTO docket.central_stock (brand, item, out) VALUES ('b', 'wings', true)",
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !late.is_finished(),
        "the second insert waits for the first's commit"
    );
    first.batch_execute("COMMIT").await?;
    late.await??;
    let rows = first
        .query("SELECT item FROM docket.central_stock ORDER BY id", &[])
        .await?;
    let items: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(items, vec!["fries".to_owned(), "wings".to_owned()]);
    Ok(())
}

/// Head office's menus and 86s reach a box as they are made (NOTIFY docket_central), not at its
/// next look: here the look is every 10 minutes, and each change must arrive well before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_menu_and_an_86_reach_the_box_when_made_not_at_its_next_look() -> R {
    let pg = Postgres::start()?;
    let urls = head_office(&pg, &[("site-a", "bistro")]).await?;
    let admin = pg.client().await?;
    let toml = uplink_toml(Some(&urls[0]), None, 50) + "menus_poll_ms = 600000\n";
    let d = Daemon::start_with(&[], "site-a", &toml)?;
    let mut items = box_menu(&d)?.items;
    items.push(MenuItem::plain("soup", "Soup of the day", 700, "cold"));
    // Version 1 may be taken by the box's first look, at start; version 2 only by a wake-up.
    publish(&admin, "bistro", None, 1, &items).await?;
    menu_until(&d, "version 1", |m| m.item("soup").is_some()).await?;
    let t = std::time::Instant::now();
    items
        .iter_mut()
        .find(|i| i.id == "soup")
        .context("soup")?
        .price = 750;
    publish(&admin, "bistro", None, 2, &items).await?;
    menu_until(&d, "version 2", |m| {
        m.item("soup").is_some_and(|i| i.price == 750)
    })
    .await?;
    stock(&admin, "bistro", "soup", true).await?;
    menu_until(&d, "soup 86'd", |m| m.item("soup").is_some_and(|i| i.out)).await?;
    // For the record, not a bound: a look every 10 minutes would have taken them minutes.
    println!(
        "version 2 and the 86 on the box {:?} after they were made",
        t.elapsed()
    );
    Ok(())
}

/// What a site's role hears on head office's channels: that something changed, never whose.
/// Every role may LISTEN, and row-level security does not filter a notification's payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_hears_that_something_changed_but_not_whose() -> R {
    use futures_util::StreamExt;
    let pg = Postgres::start()?;
    let urls = head_office(&pg, &[("site-a", "bistro"), ("site-b", "grill-house")]).await?;
    let admin = pg.client().await?;
    let (spy, mut conn) = tokio_postgres::connect(&urls[0], tokio_postgres::NoTls).await?;
    let (tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx.send((n.channel().to_owned(), n.payload().to_owned()));
            }
        }
    });
    spy.batch_execute("LISTEN docket_inbound; LISTEN docket_central")
        .await?;

    // Site b's online order, its brand's 86 and its brand moving: site a hears only that.
    admin
        .batch_execute(
            "INSERT INTO docket.inbound_orders (site_id, source, source_id, payload)
                  VALUES ('site-b', 'web', 'w-1', '{}');
             INSERT INTO docket.central_stock (brand, site_id, item, out)
                  VALUES ('grill-house', 'site-b', 'fries', true);
             UPDATE docket.site_brands SET brand = 'grill-house-2' WHERE site_id = 'site-b';",
        )
        .await?;
    let mut got = Vec::new();
    while got.len() < 2 {
        let n = tokio::time::timeout(WAIT, heard.recv())
            .await?
            .context("the listening connection ended")?;
        got.push(n);
    }
    got.sort();
    // One transaction: the same (channel, payload) is delivered once.
    assert_eq!(
        got,
        [
            ("docket_central".to_owned(), String::new()),
            ("docket_inbound".to_owned(), String::new())
        ]
    );
    Ok(())
}
