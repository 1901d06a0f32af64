//! The PostgreSQL relay: committed events after its cursor, in batches, each batch in one
//! transaction with the order projections; the local cursor advances only after the commit.
//! `(site_id, seq)` is the primary key and inserts are `ON CONFLICT DO NOTHING`, projections are
//! guarded by version: a batch written twice (a crash between the commit and the cursor) changes
//! nothing the second time. PostgreSQL is the de-duplication authority.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use docket_core::order::{LineStatus, Order};
use docket_core::wire::{Event, EventKind};
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;

use super::local::{LocalError, Shared};
use super::{pause, Backoff, Health};
use crate::clock::now_ms;
use crate::config::{SecretUrl, Uplink};
use crate::metrics::Metrics;

/// The cloud schema, in order. `docketd uplink migrate` applies the ones not yet applied.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("001_schema", include_str!("../../sql/cloud/001_schema.sql")),
    (
        "002_site_roles",
        include_str!("../../sql/cloud/002_site_roles.sql"),
    ),
];

const TARGET: &str = "postgres";
/// How often an idle relay tells head office it is alive (`docket.sites.last_contact`).
const CONTACT_EVERY: Duration = Duration::from_secs(60);
/// How often relayed events are pruned from SQLite.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("PostgreSQL: {}", describe(.0))]
    Db(#[from] tokio_postgres::Error),
    #[error("connecting to PostgreSQL timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error("encoding an event as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The server's own message when there is one ("db error" alone says nothing).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(e) {
            Some(src) => format!("{e}: {src}"),
            None => e.to_string(),
        },
    }
}

fn wants_tls(url: &str) -> bool {
    docket_core::bundle::postgres_wants_tls(url)
}

/// Connects (TLS with rustls and the webpki roots when the URL's sslmode asks for it), with
/// the connect and statement timeouts of `[uplink]`.
pub async fn connect(url: &SecretUrl, u: &Uplink) -> Result<Client, PgError> {
    // tokio-postgres knows sslmode disable/prefer/require; verify-* are require plus the
    // certificate checks rustls always does.
    let raw = url
        .expose()
        .replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require");
    let mut config: tokio_postgres::Config = raw.parse()?;
    let timeout = Duration::from_millis(u.connect_timeout_ms);
    config.connect_timeout(timeout);
    config.application_name("docketd");
    config.options(format!("-c statement_timeout={}", u.statement_timeout_ms));
    let connecting = async {
        if wants_tls(url.expose()) {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| PgError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
            let (client, conn) = config.connect(connector).await?;
            tokio::spawn(drive(conn));
            Ok(client)
        } else {
            let (client, conn) = config.connect(NoTls).await?;
            tokio::spawn(drive(conn));
            Ok(client)
        }
    };
    tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| PgError::ConnectTimeout(timeout))?
}

/// Logs in and runs `SELECT 1`: what `docket uplink set` tries from the technician's laptop.
pub async fn probe(url: &SecretUrl, u: &Uplink) -> Result<(), PgError> {
    let client = connect(url, u).await?;
    client.simple_query("SELECT 1").await?;
    Ok(())
}

impl PgError {
    /// The server answered and said no (bad password, no such database or role), as opposed to
    /// not being reachable at all.
    pub fn is_refusal(&self) -> bool {
        matches!(self, PgError::Db(e) if e.as_db_error().is_some())
    }
}

/// Runs a connection's I/O until it ends.
async fn drive<F: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(conn: F) {
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "PostgreSQL connection ended");
    }
}

/// Creates (or re-keys) the role a site's box relays as, `docket_site_<site>`, which may insert
/// only that site's rows; returns the role's name. Needs the schema (`migrate`) first.
pub async fn create_site_role(
    client: &Client,
    site: &str,
    password: &str,
) -> Result<String, PgError> {
    let row = client
        .query_one(
            "SELECT docket.create_site_role($1, $2)",
            &[&site, &password],
        )
        .await?;
    Ok(row.get(0))
}

/// Applies the cloud schema's pending migrations; returns the names it applied.
pub async fn migrate(client: &mut Client) -> Result<Vec<&'static str>, PgError> {
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

pub struct Relay {
    pub db: PathBuf,
    pub site_id: String,
    pub url: SecretUrl,
    pub settings: Uplink,
    /// Menu prices (cents) by item id, for `order_lines.unit_price_cents`.
    pub prices: Arc<HashMap<String, i64>>,
    pub metrics: Arc<Metrics>,
    pub stop: CancellationToken,
}

/// The relay task: runs until `stop`.
pub async fn run(r: Relay) {
    let m = &r.metrics.uplink.postgres;
    let mut health = Health::new(TARGET);
    let mut backoff = Backoff::new(r.settings.backoff_min_ms, r.settings.backoff_max_ms);
    let local = match Shared::open(r.db.clone()).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "uplink postgres: cannot open the local store; relay stopped");
            return;
        }
    };
    let mut client: Option<Client> = None;
    let mut last_contact = Instant::now() - CONTACT_EVERY;
    let mut last_prune = Instant::now();
    loop {
        if r.stop.is_cancelled() {
            return;
        }
        let step = async {
            if client.as_ref().is_none_or(|c| c.is_closed()) {
                client = None;
                let c = connect(&r.url, &r.settings).await?;
                let from_pg = site_last_seq(&c, &r.site_id).await?;
                // A batch committed there before the box could record it here: skip it.
                local
                    .run(move |l| l.set_cursor(TARGET, from_pg, now_ms()))
                    .await?;
                client = Some(c);
            }
            let Some(c) = client.as_mut() else {
                unreachable!("connected above")
            };
            relay_once(&r, c, &local, &mut last_contact).await
        };
        match step.await {
            Ok(moved) => {
                health.ok(m);
                backoff.reset();
                if last_prune.elapsed() >= PRUNE_EVERY {
                    last_prune = Instant::now();
                    prune(&r, &local).await;
                }
                if moved == 0
                    && !pause(&r.stop, Duration::from_millis(r.settings.poll_interval_ms)).await
                {
                    return;
                }
            }
            Err(e) => {
                client = None;
                health.failed(m, &e);
                update_lag(&r, &local).await;
                if !pause(&r.stop, backoff.next_delay()).await {
                    return;
                }
            }
        }
    }
}

async fn site_last_seq(c: &Client, site: &str) -> Result<u64, PgError> {
    let row = c
        .query_opt(
            "SELECT last_seq FROM docket.sites WHERE site_id = $1",
            &[&site],
        )
        .await?;
    Ok(row.map(|r| r.get::<_, i64>(0)).unwrap_or(0).max(0) as u64)
}

async fn update_lag(r: &Relay, local: &Shared) {
    let m = &r.metrics.uplink.postgres;
    if let Ok(lag) = local.lag_seconds(m.cursor.load(Relaxed), now_ms()).await {
        m.lag_seconds.store(lag, Relaxed);
    }
}

async fn prune(r: &Relay, local: &Shared) {
    if r.settings.retention_hours == 0 {
        return;
    }
    let relayed = r.metrics.uplink.postgres.cursor.load(Relaxed);
    let before = now_ms().saturating_sub(r.settings.retention_hours * 3_600_000);
    match local.run(move |l| l.prune(relayed, before)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            events = n,
            up_to_seq = relayed,
            "pruned events already in PostgreSQL"
        ),
        Err(e) => tracing::warn!(error = %e, "pruning relayed events failed"),
    }
}

/// One batch (or a keep-alive when idle). Returns how many events it relayed.
async fn relay_once(
    r: &Relay,
    client: &mut Client,
    local: &Shared,
    last_contact: &mut Instant,
) -> Result<usize, PgError> {
    let m = &r.metrics.uplink.postgres;
    let (cursor, events) = local.next_batch(TARGET, r.settings.batch_size).await?;
    m.cursor.store(cursor, Relaxed);
    if events.is_empty() {
        m.lag_seconds.store(0, Relaxed);
        if last_contact.elapsed() >= CONTACT_EVERY {
            client
                .execute(
                    "INSERT INTO docket.sites (site_id, docketd_version) VALUES ($1, $2)
                     ON CONFLICT (site_id) DO UPDATE
                     SET last_contact = now(), docketd_version = EXCLUDED.docketd_version",
                    &[&r.site_id, &crate::VERSION],
                )
                .await?;
            *last_contact = Instant::now();
        }
        return Ok(0);
    }
    let last = events.last().map_or(cursor, |e| e.seq);
    write_batch(client, &r.site_id, &events, &r.prices).await?;
    *last_contact = Instant::now();
    local
        .run(move |l| l.set_cursor(TARGET, last, now_ms()))
        .await?;
    m.cursor.store(last, Relaxed);
    m.relayed.fetch_add(events.len() as u64, Relaxed);
    update_lag(r, local).await;
    Ok(events.len())
}

fn line_status(s: LineStatus) -> &'static str {
    match s {
        LineStatus::Held => "held",
        LineStatus::Fired => "fired",
        LineStatus::Ready => "ready",
        LineStatus::Voided => "voided",
    }
}

/// The projection of one order after a batch: its last state and when each line got ready.
struct Projected<'a> {
    order: &'a Order,
    completed_at: Option<i64>,
    /// line n → ready_at (ms) for lines that are ready.
    ready_at: BTreeMap<u32, i64>,
}

/// Writes one batch: events, projections and the site row, in one transaction.
pub async fn write_batch(
    client: &mut Client,
    site: &str,
    events: &[Event],
    prices: &HashMap<String, i64>,
) -> Result<(), PgError> {
    let tx = client.transaction().await?;
    let mut seqs = Vec::with_capacity(events.len());
    let mut types = Vec::with_capacity(events.len());
    let mut order_ids = Vec::with_capacity(events.len());
    let mut versions = Vec::with_capacity(events.len());
    let mut devices = Vec::with_capacity(events.len());
    let mut ats = Vec::with_capacity(events.len());
    let mut bodies = Vec::with_capacity(events.len());
    for e in events {
        seqs.push(e.seq as i64);
        types.push(e.kind.as_str());
        order_ids.push(e.order_id.as_str());
        versions.push(e.version as i64);
        devices.push(e.device.as_str());
        ats.push(e.at as i64);
        bodies.push(serde_json::to_string(e)?);
    }
    tx.execute(
        "INSERT INTO docket.events (site_id, seq, type, order_id, version, device, at, body)
         SELECT $1, seq, type, order_id, version, device,
                to_timestamp(at / 1000.0), body::jsonb
         FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[],
                     $7::bigint[], $8::text[])
              AS t(seq, type, order_id, version, device, at, body)
         ON CONFLICT (site_id, seq) DO NOTHING",
        &[
            &site, &seqs, &types, &order_ids, &versions, &devices, &ats, &bodies,
        ],
    )
    .await?;

    // What head office knew of the touched lines before this batch (for ready_at).
    let touched: Vec<&str> = {
        let mut v: Vec<&str> = events.iter().map(|e| e.order_id.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    // Ready lines (and since when) head office already has, by order.
    let mut prior: HashMap<String, BTreeMap<u32, i64>> = HashMap::new();
    for row in tx
        .query(
            "SELECT order_id, n, (extract(epoch FROM ready_at) * 1000)::bigint
             FROM docket.order_lines
             WHERE site_id = $1 AND order_id = ANY($2)
               AND status = 'ready' AND ready_at IS NOT NULL",
            &[&site, &touched],
        )
        .await?
    {
        let n: i32 = row.get(1);
        prior
            .entry(row.get(0))
            .or_default()
            .insert(n as u32, row.get(2));
    }
    let mut projected: BTreeMap<&str, Projected> = BTreeMap::new();
    for e in events {
        let p = projected.entry(e.order_id.as_str()).or_insert_with(|| {
            let ready_at = prior.remove(&e.order_id).unwrap_or_default();
            Projected {
                order: &e.order,
                completed_at: None,
                ready_at,
            }
        });
        for l in &e.order.lines {
            if l.status == LineStatus::Ready {
                p.ready_at.entry(l.n).or_insert(e.at as i64);
            } else {
                p.ready_at.remove(&l.n);
            }
        }
        if e.kind == EventKind::OrderCompleted {
            p.completed_at = Some(e.at as i64);
        }
        if e.order.version >= p.order.version {
            p.order = &e.order;
        }
    }

    let mut o_ids = Vec::new();
    let mut o_tickets = Vec::new();
    let mut o_tables = Vec::new();
    let mut o_status = Vec::new();
    let mut o_versions = Vec::new();
    let mut o_fired = Vec::new();
    let mut o_placed = Vec::new();
    let mut o_completed: Vec<Option<i64>> = Vec::new();
    let mut l_order = Vec::new();
    let mut l_n = Vec::new();
    let mut l_item = Vec::new();
    let mut l_name = Vec::new();
    let mut l_qty = Vec::new();
    let mut l_mods = Vec::new();
    let mut l_notes: Vec<Option<&str>> = Vec::new();
    let mut l_course = Vec::new();
    let mut l_station = Vec::new();
    let mut l_status = Vec::new();
    let mut l_price: Vec<Option<i64>> = Vec::new();
    let mut l_ready: Vec<Option<i64>> = Vec::new();
    let mut l_version = Vec::new();
    for (id, p) in &projected {
        let o = p.order;
        o_ids.push(*id);
        o_tickets.push(o.ticket as i64);
        o_tables.push(o.table.as_str());
        o_status.push(o.status.as_str());
        o_versions.push(o.version as i64);
        o_fired.push(o.fired_course as i32);
        o_placed.push(o.placed_at as i64);
        o_completed.push(p.completed_at);
        for l in &o.lines {
            l_order.push(*id);
            l_n.push(l.n as i32);
            l_item.push(l.item.as_str());
            l_name.push(l.name.as_str());
            l_qty.push(l.qty as i32);
            l_mods.push(serde_json::to_string(&l.mods)?);
            l_notes.push(l.notes.as_deref());
            l_course.push(l.course as i32);
            l_station.push(l.station.as_str());
            l_status.push(line_status(l.status));
            l_price.push(prices.get(&l.item).copied());
            l_ready.push(p.ready_at.get(&l.n).copied());
            l_version.push(o.version as i64);
        }
    }
    tx.execute(
        "INSERT INTO docket.orders (site_id, order_id, ticket, table_name, status, version,
                                    fired_course, placed_at, completed_at, updated_at)
         SELECT $1, id, ticket, tbl, status, version, fired,
                to_timestamp(placed / 1000.0), to_timestamp(completed / 1000.0), now()
         FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[],
                     $7::int[], $8::bigint[], $9::bigint[])
              AS t(id, ticket, tbl, status, version, fired, placed, completed)
         ON CONFLICT (site_id, order_id) DO UPDATE SET
             status = EXCLUDED.status, version = EXCLUDED.version,
             fired_course = EXCLUDED.fired_course, table_name = EXCLUDED.table_name,
             completed_at = COALESCE(EXCLUDED.completed_at, docket.orders.completed_at),
             updated_at = now()
         WHERE docket.orders.version < EXCLUDED.version",
        &[
            &site,
            &o_ids,
            &o_tickets,
            &o_tables,
            &o_status,
            &o_versions,
            &o_fired,
            &o_placed,
            &o_completed,
        ],
    )
    .await?;
    tx.execute(
        "INSERT INTO docket.order_lines (site_id, order_id, n, item, name, qty, mods, notes,
                                         course, station, status, unit_price_cents, ready_at,
                                         version)
         SELECT $1, oid, n, item, name, qty, mods::jsonb, notes, course, station, status, price,
                to_timestamp(ready / 1000.0), version
         FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::text[],
                     $8::text[], $9::int[], $10::text[], $11::text[], $12::bigint[],
                     $13::bigint[], $14::bigint[])
              AS t(oid, n, item, name, qty, mods, notes, course, station, status, price, ready,
                   version)
         ON CONFLICT (site_id, order_id, n) DO UPDATE SET
             qty = EXCLUDED.qty, mods = EXCLUDED.mods, notes = EXCLUDED.notes,
             course = EXCLUDED.course, status = EXCLUDED.status,
             unit_price_cents = COALESCE(docket.order_lines.unit_price_cents,
                                         EXCLUDED.unit_price_cents),
             ready_at = EXCLUDED.ready_at, version = EXCLUDED.version
         WHERE docket.order_lines.version < EXCLUDED.version",
        &[
            &site, &l_order, &l_n, &l_item, &l_name, &l_qty, &l_mods, &l_notes, &l_course,
            &l_station, &l_status, &l_price, &l_ready, &l_version,
        ],
    )
    .await?;
    let last = events.last().map_or(0, |e| e.seq as i64);
    tx.execute(
        "INSERT INTO docket.sites (site_id, last_seq, docketd_version) VALUES ($1, $2, $3)
         ON CONFLICT (site_id) DO UPDATE SET
             last_seq = GREATEST(docket.sites.last_seq, EXCLUDED.last_seq),
             last_contact = now(), docketd_version = EXCLUDED.docketd_version",
        &[&site, &last, &crate::VERSION],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_only_when_the_url_asks() {
        assert!(wants_tls("postgres://u:p@h/db?sslmode=require"));
        assert!(wants_tls("postgres://u:p@h/db?x=1&sslmode=verify-full"));
        assert!(!wants_tls("postgres://u:p@h/db"));
        assert!(!wants_tls("postgres://u:p@h/db?sslmode=disable"));
    }
}
