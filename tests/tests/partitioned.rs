//! Head office partitioned by site: every key and index of a per-site table leads with
//! site_id; a schema created partitioned (`migrate_partitioned`) is the plain one exactly
//! (columns, defaults, keys, indexes, triggers, row-level security, policies, grants, views,
//! functions) except that its per-site tables are partitioned by hash of site_id, and sites'
//! rows land in different partitions; partitioning is chosen once, and a wrong request is
//! refused without changing anything; a plain head office moves to a partitioned one by the copy
//! operations.md gives.

use std::collections::BTreeSet;

use anyhow::Context;
use docket_tests::servers::Postgres;
use tokio_postgres::Client;

type R = anyhow::Result<()>;

/// Head office's reference data, the same for every site (Citus reference tables): keyed by
/// brand (or a serial id), never partitioned.
const REFERENCE: &[&str] = &["central_menus", "central_stock", "schema_migrations"];

const PARTITIONS: u32 = 4;

async fn database(pg: &Postgres, admin: &Client, name: &str) -> anyhow::Result<Client> {
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    let url = format!("postgres://postgres:postgres@127.0.0.1:{}/{name}", pg.port);
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// One line per fact of the docket schema that partitioning must not change. Partitions
/// themselves (and their cloned indexes and triggers) are left out, as are the constraints
/// PostgreSQL derives from a foreign key to a partitioned table (one per partition referenced,
/// each with the key as its parent); a partitioned table's index reads `ON ONLY`, which is how
/// PostgreSQL prints the same index on a parent.
const FACTS: &[(&str, &str)] = &[
    (
        "column",
        "SELECT c.relname || '.' || a.attname || ' #' || a.attnum || ' '
                || format_type(a.atttypid, a.atttypmod)
                || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
           FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE c.relnamespace = 'docket'::regnamespace AND NOT c.relispartition
            AND c.relkind IN ('r', 'p', 'v') AND a.attnum > 0 AND NOT a.attisdropped",
    ),
    (
        "constraint",
        "SELECT c.relname || '.' || k.conname || ' ' || pg_get_constraintdef(k.oid)
           FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
          WHERE c.relnamespace = 'docket'::regnamespace AND NOT c.relispartition
            AND k.conparentid = 0",
    ),
    (
        "index",
        "SELECT replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ')
           FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
          WHERE c.relnamespace = 'docket'::regnamespace AND NOT c.relispartition",
    ),
    (
        "security",
        "SELECT c.relname || ' rls ' || c.relrowsecurity || ' forced ' || c.relforcerowsecurity
                || ' acl ' || coalesce(c.relacl::text, 'default')
           FROM pg_class c
          WHERE c.relnamespace = 'docket'::regnamespace AND NOT c.relispartition
            AND c.relkind IN ('r', 'p', 'v', 'S')",
    ),
    (
        "policy",
        "SELECT tablename || '.' || policyname || ' ' || permissive || ' ' || roles::text
                || ' ' || cmd || ' using ' || coalesce(qual, '-')
                || ' check ' || coalesce(with_check, '-')
           FROM pg_policies WHERE schemaname = 'docket'",
    ),
    (
        "trigger",
        "SELECT pg_get_triggerdef(t.oid)
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          WHERE c.relnamespace = 'docket'::regnamespace AND NOT c.relispartition
            AND NOT t.tgisinternal",
    ),
    (
        "view",
        "SELECT viewname || ' ' || definition FROM pg_views WHERE schemaname = 'docket'",
    ),
    (
        "function",
        "SELECT pg_get_functiondef(p.oid) || ' acl ' || coalesce(p.proacl::text, 'default')
           FROM pg_proc p WHERE p.pronamespace = 'docket'::regnamespace",
    ),
    ("migration", "SELECT name FROM docket.schema_migrations"),
];

async fn facts(db: &Client) -> anyhow::Result<BTreeSet<String>> {
    let mut all = BTreeSet::new();
    for (kind, sql) in FACTS {
        for row in db.query(*sql, &[]).await.context(*kind)? {
            all.insert(format!("{kind}: {}", row.get::<_, String>(0)));
        }
    }
    Ok(all)
}

/// The docket tables with a site_id column: the per-site ones, and central_menus (reference
/// data whose site_id is optional).
async fn tables_with_site_id(db: &Client) -> anyhow::Result<Vec<String>> {
    let rows = db
        .query(
            "SELECT c.relname::text FROM pg_class c
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'site_id'
              WHERE c.relnamespace = 'docket'::regnamespace AND c.relkind IN ('r', 'p')
                AND NOT c.relispartition ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Each partitioned docket table, its strategy and key, and how many partitions it has.
async fn partitioning(db: &Client) -> anyhow::Result<Vec<(String, String)>> {
    let rows = db
        .query(
            "SELECT c.relname::text,
                    p.partstrat::text || ' ' || pg_get_partkeydef(c.oid) || ' x'
                    || (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = c.oid)
               FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
              WHERE c.relnamespace = 'docket'::regnamespace ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_and_index_of_a_per_site_table_leads_with_site_id() -> R {
    let pg = Postgres::start()?;
    let admin = pg.client().await?;
    let mut db = database(&pg, &admin, "plain").await?;
    docket_cloud::migrate(&mut db).await?;
    let per_site: Vec<String> = tables_with_site_id(&db)
        .await?
        .into_iter()
        .filter(|t| !REFERENCE.contains(&t.as_str()))
        .collect();
    assert_eq!(
        per_site,
        [
            "events",
            "inbound_orders",
            "inbound_results",
            "menus",
            "order_lines",
            "orders",
            "site_brands",
            "sites"
        ]
    );
    // Every index (primary keys and unique constraints are indexes too) by its first column.
    let rows = db
        .query(
            "SELECT c.relname::text, x.relname::text, a.attname::text
               FROM pg_index i
               JOIN pg_class c ON c.oid = i.indrelid
               JOIN pg_class x ON x.oid = i.indexrelid
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
              WHERE c.relnamespace = 'docket'::regnamespace",
            &[],
        )
        .await?;
    let mut checked = 0;
    for r in &rows {
        let (table, index, first): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        if per_site.contains(&table) {
            assert_eq!(
                first, "site_id",
                "{table}'s index {index} leads with {first}"
            );
            checked += 1;
        }
    }
    // One per table and events_order, orders_placed, inbound_orders' (source, source_id).
    assert_eq!(checked, per_site.len() + 3, "{rows:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_schema_is_the_plain_one_partitioned_by_site() -> R {
    let pg = Postgres::start()?;
    let admin = pg.client().await?;
    let mut plain = database(&pg, &admin, "plain").await?;
    let mut parted = database(&pg, &admin, "parted").await?;
    let all: Vec<&str> = docket_cloud::MIGRATIONS.iter().map(|(n, _)| *n).collect();
    assert_eq!(docket_cloud::migrate(&mut plain).await?, all);
    assert_eq!(
        docket_cloud::migrate_partitioned(&mut parted, PARTITIONS).await?,
        all
    );

    let (a, b) = (facts(&plain).await?, facts(&parted).await?);
    let only_plain: Vec<&String> = a.difference(&b).collect();
    let only_parted: Vec<&String> = b.difference(&a).collect();
    assert!(
        only_plain.is_empty() && only_parted.is_empty(),
        "the schemas differ:\nonly plain: {only_plain:#?}\nonly partitioned: {only_parted:#?}"
    );
    assert!(a.len() > 150, "too few facts compared: {}", a.len());

    // Every table with a site_id but the reference data is partitioned by it, into PARTITIONS.
    assert!(partitioning(&plain).await?.is_empty());
    let expected: Vec<(String, String)> = tables_with_site_id(&parted)
        .await?
        .into_iter()
        .filter(|t| !REFERENCE.contains(&t.as_str()))
        .map(|t| (t, format!("h HASH (site_id) x{PARTITIONS}")))
        .collect();
    assert_eq!(partitioning(&parted).await?, expected);

    // Sites land in different partitions, each site's rows (across tables) in one of them.
    parted
        .batch_execute(
            "INSERT INTO docket.sites (site_id) SELECT 'site-' || g FROM generate_series(1, 16) g;
             INSERT INTO docket.inbound_orders (site_id, source, source_id, payload)
             SELECT 'site-' || g, 'web', 'w' || g, '{}' FROM generate_series(1, 16) g;",
        )
        .await?;
    let rows = parted
        .query(
            "SELECT s.site_id, s.tableoid::regclass::text, o.tableoid::regclass::text, o.seq
               FROM docket.sites s JOIN docket.inbound_orders o USING (site_id)",
            &[],
        )
        .await?;
    let mut used = BTreeSet::new();
    for r in &rows {
        let (site, sites_part, inbound_part, seq): (String, String, String, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let n = sites_part.rsplit('p').next().context("partition number")?;
        assert_eq!(
            inbound_part,
            format!("docket.inbound_orders_p{n}"),
            "{site}"
        );
        // The seq trigger ran on the partitioned table: per site, from 1.
        assert_eq!(seq, 1, "{site}");
        used.insert(sites_part);
    }
    assert_eq!(rows.len(), 16);
    assert!(used.len() > 1, "16 sites in one partition: {used:?}");

    // A site role reaches its rows through the parent (its grants, its row-level security),
    // and no partition directly.
    let password = "0123456789abcdef0123";
    let role = docket_cloud::create_site_role(&parted, "site-3", password).await?;
    let url = format!("postgres://{role}:{password}@127.0.0.1:{}/parted", pg.port);
    let (site, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let seen: Vec<String> = site
        .query("SELECT site_id FROM docket.sites", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(seen, ["site-3"]);
    for i in 0..PARTITIONS {
        let e = site
            .query(&format!("SELECT * FROM docket.sites_p{i}"), &[])
            .await
            .expect_err("a site role read a partition");
        let msg = e.as_db_error().map(|d| d.message().to_owned());
        assert!(
            msg.as_deref()
                .is_some_and(|m| m.contains("permission denied")),
            "{e:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioning_is_chosen_once_and_a_wrong_request_changes_nothing() -> R {
    let pg = Postgres::start()?;
    let admin = pg.client().await?;
    let mut plain = database(&pg, &admin, "plain").await?;
    let mut parted = database(&pg, &admin, "parted").await?;
    let mut fresh = database(&pg, &admin, "fresh").await?;

    for bad in [0, docket_cloud::MAX_PARTITIONS + 1] {
        let e = docket_cloud::migrate_partitioned(&mut fresh, bad)
            .await
            .expect_err("accepted");
        assert!(e.to_string().contains("partitions must be 1 to"), "{e}");
    }
    let nothing = fresh
        .query_one("SELECT to_regnamespace('docket') IS NULL", &[])
        .await?;
    assert!(nothing.get::<_, bool>(0), "a refused migrate left a schema");

    docket_cloud::migrate(&mut plain).await?;
    let e = docket_cloud::migrate_partitioned(&mut plain, PARTITIONS)
        .await
        .expect_err("partitioned an existing plain schema");
    assert!(e.to_string().contains("exists unpartitioned"), "{e}");
    assert!(partitioning(&plain).await?.is_empty());
    assert_eq!(docket_cloud::partitions(&plain).await?, None);

    docket_cloud::migrate_partitioned(&mut parted, PARTITIONS).await?;
    let e = docket_cloud::migrate_partitioned(&mut parted, PARTITIONS * 2)
        .await
        .expect_err("re-partitioned");
    assert!(e.to_string().contains("partitioned 4 ways, not 8"), "{e}");
    // Asked the same again, or not asked: nothing to do, and it stays as it was.
    let before = partitioning(&parted).await?;
    assert!(docket_cloud::migrate_partitioned(&mut parted, PARTITIONS)
        .await?
        .is_empty());
    assert!(docket_cloud::migrate(&mut parted).await?.is_empty());
    assert_eq!(partitioning(&parted).await?, before);
    assert_eq!(docket_cloud::partitions(&parted).await?, Some(PARTITIONS));
    Ok(())
}

/// Every row of every docket table but the migrations', one digest per table.
async fn contents(db: &Client) -> anyhow::Result<Vec<(String, i64, String)>> {
    let mut out = Vec::new();
    let tables: BTreeSet<String> = (tables_with_site_id(db).await?.into_iter())
        .chain(REFERENCE.iter().map(|t| t.to_string()))
        .filter(|t| t != "schema_migrations")
        .collect();
    for t in tables {
        let row = db
            .query_one(
                &format!(
                    "SELECT count(*), coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '')
                       FROM docket.{t} r"
                ),
                &[],
            )
            .await?;
        out.push((t, row.get(0), row.get(1)));
    }
    Ok(out)
}

/// operations.md, "Growing head office": a plain head office changes its partitioning by a new
/// database created partitioned and the rows copied with `pg_dump --data-only
/// --disable-triggers`. Every row arrives, and what the triggers number goes on from where the
/// old database stopped: a site's next inbound order, the next 86.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_head_office_moves_to_a_partitioned_one_by_the_documented_copy() -> R {
    use docket_core::order::LineStatus;
    use docket_core::wire::EventKind;
    use docket_tests::cloud::{event, order, site_writer_in};

    const SITE: &str = "bistro-9";
    const PASSWORD: &str = "a-site-password-long-enough";
    let pg = Postgres::start()?;
    let admin = pg.client().await?;
    let mut old = database(&pg, &admin, "old").await?;
    let mut new = database(&pg, &admin, "new").await?;
    docket_cloud::migrate(&mut old).await?;
    docket_cloud::create_site_role(&old, SITE, PASSWORD).await?;
    let url = |db: &str| format!("postgres://postgres:postgres@127.0.0.1:{}/{db}", pg.port);

    // A site's history (written by its relay, as its role), two inbound orders, two 86s.
    let prices = std::collections::HashMap::from([("burger".to_owned(), 1250)]);
    let history = [
        event(1, EventKind::OrderPlaced, order("o1", 1, LineStatus::Fired)),
        event(2, EventKind::OrderPlaced, order("o2", 1, LineStatus::Fired)),
        event(
            3,
            EventKind::TicketBumped,
            order("o1", 2, LineStatus::Ready),
        ),
    ];
    let mut w = site_writer_in(&pg, "old", SITE, PASSWORD).await?;
    w.write_batch(SITE, "test", &history, &prices).await?;
    old.batch_execute(&format!(
        "INSERT INTO docket.inbound_orders (site_id, source, source_id, payload)
              VALUES ('{SITE}', 'web', 'w-1', '{{}}'), ('{SITE}', 'web', 'w-2', '{{}}');
         INSERT INTO docket.central_stock (brand, item, out) VALUES ('b', 'fries', true),
                                                                    ('b', 'fries', false);"
    ))
    .await?;

    docket_cloud::migrate_partitioned(&mut new, PARTITIONS).await?;
    let dump = std::process::Command::new(pg.tool("pg_dump"))
        .args(["--data-only", "--disable-triggers", "--schema", "docket"])
        .args(["--exclude-table", "docket.schema_migrations", &url("old")])
        .output()?;
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let mut psql = std::process::Command::new(pg.tool("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &url("new")])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    std::io::Write::write_all(&mut psql.stdin.take().context("stdin")?, &dump.stdout)?;
    let restored = psql.wait_with_output()?;
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );

    let before = contents(&old).await?;
    assert_eq!(contents(&new).await?, before);
    assert!(before.iter().any(|(t, n, _)| t == "order_lines" && *n == 2));
    assert!(!partitioning(&new).await?.is_empty());

    // The site's relay goes on in the new database, and the triggers number on.
    drop(w);
    let next = [event(
        4,
        EventKind::OrderPlaced,
        order("o3", 1, LineStatus::Fired),
    )];
    let mut w = site_writer_in(&pg, "new", SITE, PASSWORD).await?;
    w.write_batch(SITE, "test", &next, &prices).await?;
    new.batch_execute(&format!(
        "INSERT INTO docket.inbound_orders (site_id, source, source_id, payload)
              VALUES ('{SITE}', 'web', 'w-3', '{{}}');
         INSERT INTO docket.central_stock (brand, item, out) VALUES ('b', 'fries', true);"
    ))
    .await?;
    let row = new
        .query_one(
            "SELECT (SELECT max(seq) FROM docket.inbound_orders WHERE source_id = 'w-3'),
                    (SELECT max(id) FROM docket.central_stock),
                    (SELECT last_seq FROM docket.sites WHERE site_id = $1),
                    (SELECT count(*) FROM docket.orders WHERE site_id = $1)",
            &[&SITE],
        )
        .await?;
    assert_eq!(row.get::<_, i64>(0), 3, "the site's next inbound order");
    // An id takes two values of the sequence (the default's, replaced by the trigger's).
    let last_86: i64 = old
        .query_one("SELECT max(id) FROM docket.central_stock", &[])
        .await?
        .get(0);
    assert!(row.get::<_, i64>(1) > last_86, "the next 86 after the last");
    assert_eq!(row.get::<_, i64>(2), 4);
    assert_eq!(row.get::<_, i64>(3), 3);
    Ok(())
}
