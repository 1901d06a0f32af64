//! Head office's schema: the migrations in `sql/` (applied in order, each once, under an
//! advisory lock) and the per-site roles they define.
//!
//! Owns the DDL and who may write what; never writes order data (that is `write`'s).

use tokio_postgres::Client;

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

/// Applies the cloud schema's pending migrations; returns the names it applied.
pub async fn migrate(client: &mut Client) -> Result<Vec<&'static str>, CloudError> {
    let tx = client.transaction().await?;
    // One migrator at a time, whoever runs it.
    tx.execute("SELECT pg_advisory_xact_lock(7340119)", &[])
        .await?;
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
