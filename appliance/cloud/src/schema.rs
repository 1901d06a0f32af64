//! Head office's schema: the migrations in `sql/` (applied in order, each once, under an
//! advisory lock) and the per-site roles they define.
//!
//! Owns the DDL and who may write what; never writes order data (that is `write`'s).

use tokio_postgres::{Client, Transaction};

use crate::CloudError;

/// The cloud schema, in order. `docketd uplink migrate` and `docket cloud init` apply the ones
/// not yet applied.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("001_schema", include_str!("../sql/001_schema.sql")),
    ("002_site_roles", include_str!("../sql/002_site_roles.sql")),
    (
        "003_line_allergy",
        include_str!("../sql/003_line_allergy.sql"),
    ),
    ("004_service", include_str!("../sql/004_service.sql")),
    ("005_menus", include_str!("../sql/005_menus.sql")),
    ("006_inbound", include_str!("../sql/006_inbound.sql")),
    // Migrations are applied by name, each once, in this order: a number left free (006, for
    // another change) is no gap to the runner, and one added later below a higher one applies
    // after it on a database that already has the higher one.
    (
        "007_central_menus",
        include_str!("../sql/007_central_menus.sql"),
    ),
    ("008_fleet", include_str!("../sql/008_fleet.sql")),
    (
        "009_events_json",
        include_str!("../sql/009_events_json.sql"),
    ),
    (
        "010_central_notify",
        include_str!("../sql/010_central_notify.sql"),
    ),
];

/// Creates (or re-keys) the role a site's box relays as, `docket_site_<site>`, which may insert
/// only that site's rows; returns the role's name. Needs the schema (`migrate`) first.
pub async fn create_site_role(
    client: &Client,
    site: &str,
    password: &str,
) -> Result<String, CloudError> {
    let row = client
        .query_one(
            "SELECT docket.create_site_role($1, $2)",
            &[&site, &password],
        )
        .await?;
    Ok(row.get(0))
}

/// The per-site tables of a partitioned head office, by the migration that creates them: each
/// runs just before it (and only there), creating that migration's per-site tables partitioned
/// by hash of site_id; the migration's own `CREATE TABLE IF NOT EXISTS` then leaves them be and
/// the rest of it (indexes, grants, row-level security, triggers) applies unchanged. A
/// migration that adds a per-site table adds its entry here.
pub const PARTITIONED: &[(&str, &str)] = &[
    (
        "001_schema",
        include_str!("../sql/partitioned/001_schema.sql"),
    ),
    (
        "005_menus",
        include_str!("../sql/partitioned/005_menus.sql"),
    ),
    (
        "006_inbound",
        include_str!("../sql/partitioned/006_inbound.sql"),
    ),
    (
        "007_central_menus",
        include_str!("../sql/partitioned/007_central_menus.sql"),
    ),
];

/// The most hash partitions per table `migrate_partitioned` makes: far beyond what one server
/// wants (each is a table of its own), and a typo of an extra digit or two is refused.
pub const MAX_PARTITIONS: u32 = 1024;

/// Applies the cloud schema's pending migrations; returns the names it applied. On a head
/// office created partitioned (`migrate_partitioned`), tables that later migrations add are
/// partitioned the same way.
pub async fn migrate(client: &mut Client) -> Result<Vec<&'static str>, CloudError> {
    migrate_with(client, None).await
}

/// As `migrate`, on a head office whose per-site tables are partitioned by hash of site_id into
/// `partitions` each. Partitioning is chosen when the schema is created: a database whose
/// schema exists unpartitioned, or partitioned differently, is refused and left unchanged.
/// Needs PostgreSQL 13 or newer (a row trigger before insert on a partitioned table).
pub async fn migrate_partitioned(
    client: &mut Client,
    partitions: u32,
) -> Result<Vec<&'static str>, CloudError> {
    if !(1..=MAX_PARTITIONS).contains(&partitions) {
        return Err(CloudError::Schema(format!(
            "partitions must be 1 to {MAX_PARTITIONS}, not {partitions}"
        )));
    }
    migrate_with(client, Some(partitions)).await
}

async fn migrate_with(
    client: &mut Client,
    asked: Option<u32>,
) -> Result<Vec<&'static str>, CloudError> {
    let tx = client.transaction().await?;
    // One migrator at a time, whoever runs it.
    tx.execute("SELECT pg_advisory_xact_lock(7340119)", &[])
        .await?;
    let partitions = partitioning(&tx, asked).await?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS docket;
         CREATE TABLE IF NOT EXISTS docket.schema_migrations (
             name text PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now());",
    )
    .await?;
    let done: Vec<String> = tx
        .query("SELECT name FROM docket.schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = Vec::new();
    for (name, sql) in MIGRATIONS {
        if done.iter().any(|d| d == name) {
            continue;
        }
        if let Some(n) = partitions {
            if let Some((_, tables)) = PARTITIONED.iter().find(|(m, _)| m == name) {
                tx.batch_execute(tables).await?;
                add_partitions(&tx, n).await?;
            }
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO docket.schema_migrations (name) VALUES ($1)",
            &[name],
        )
        .await?;
        applied.push(*name);
    }
    tx.commit().await?;
    Ok(applied)
}

/// Into how many hash partitions each per-site table of head office is split (None: a plain
/// schema, or none yet).
pub async fn partitions(client: &Client) -> Result<Option<u32>, CloudError> {
    let row = client
        .query_opt(
            "SELECT (SELECT count(*) FROM pg_inherits
                      WHERE inhparent = to_regclass('docket.sites'))::int
               FROM pg_partitioned_table WHERE partrelid = to_regclass('docket.sites')",
            &[],
        )
        .await?;
    Ok(row.map(|r| r.get::<_, i32>(0).unsigned_abs()))
}

/// How many hash partitions new per-site tables get (None: not partitioned): what was asked on
/// a new schema, else what docket.sites already has, which what was asked must match.
async fn partitioning(tx: &Transaction<'_>, asked: Option<u32>) -> Result<Option<u32>, CloudError> {
    let row = tx
        .query_one(
            "SELECT to_regclass('docket.sites') IS NOT NULL,
                    EXISTS (SELECT 1 FROM pg_partitioned_table
                             WHERE partrelid = to_regclass('docket.sites')),
                    (SELECT count(*) FROM pg_inherits
                      WHERE inhparent = to_regclass('docket.sites'))::int,
                    current_setting('server_version_num')::int",
            &[],
        )
        .await?;
    let (exists, partitioned, count, version): (bool, bool, i32, i32) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let have = partitioned.then_some(count.unsigned_abs());
    match (asked, exists, have) {
        (None, _, have) => Ok(have),
        (Some(_), false, _) if version < 130_000 => Err(CloudError::Schema(format!(
            "a partitioned head office needs PostgreSQL 13 or newer (this server is {version})"
        ))),
        (Some(n), false, _) => Ok(Some(n)),
        (Some(n), true, Some(have)) if have == n => Ok(Some(n)),
        (Some(n), true, Some(have)) => Err(CloudError::Schema(format!(
            "head office's tables are partitioned {have} ways, not {n}: partitioning is chosen \
             when the schema is created (omit --partitions to migrate it as it is)"
        ))),
        (Some(_), true, None) => Err(CloudError::Schema(
            "head office's schema exists unpartitioned: partitioning is chosen when the schema \
             is created (omit --partitions to migrate it as it is)"
                .into(),
        )),
    }
}

/// Gives each partitioned docket table that has no partitions yet (the ones just created) `n`
/// hash partitions, `<table>_p<i>`. Their rows are reached through the parent, whose grants and
/// row-level security apply; the partitions themselves are granted to nobody.
async fn add_partitions(tx: &Transaction<'_>, n: u32) -> Result<(), CloudError> {
    let bare = tx
        .query(
            "SELECT c.relname::text FROM pg_partitioned_table p
               JOIN pg_class c ON c.oid = p.partrelid
               JOIN pg_namespace s ON s.oid = c.relnamespace
              WHERE s.nspname = 'docket'
                AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = c.oid)
              ORDER BY 1",
            &[],
        )
        .await?;
    for row in bare {
        let table: String = row.get(0);
        let mut ddl = String::new();
        for i in 0..n {
            ddl += &format!(
                "CREATE TABLE docket.{} PARTITION OF docket.{} \
                 FOR VALUES WITH (MODULUS {n}, REMAINDER {i});\n",
                ident(&format!("{table}_p{i}")),
                ident(&table)
            );
        }
        tx.batch_execute(&ddl).await?;
    }
    Ok(())
}

/// A quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
