//! The SQLite store: the box's truth.
//!
//! Owns the schema and its migrations, the append-only event log (gapless site-wide `seq`), the
//! projection of orders, the idempotency table (device + command id → first reply, forever) and
//! the paired devices. One writer connection (the engine's) commits batches; other connections
//! (device registry, CLI, admin API) read or make small device edits, thanks to WAL.
//! Pairing requests live in [`pairing`].
//!
//! Must not know about MQTT, HTTP or decisions: it stores what it is given.

pub mod blocking;
pub mod menu;
pub mod print;
pub mod printers;
pub mod registry;

pub mod pairing;
pub mod speed;
pub mod webhooks;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use docket_core::wire::{self, Event};
use docket_core::{Order, Role};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("SQLite error")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored record is corrupt")]
    Corrupt(#[from] wire::WireError),
    #[error("this data directory belongs to site {stored:?}, not {configured:?}")]
    WrongSite { stored: String, configured: String },
    #[error("database schema version {0} is newer than this docketd understands")]
    TooNew(i64),
    #[error("device {0:?} already exists")]
    DeviceExists(String),
    #[error("no device {0:?}")]
    NoDevice(String),
    #[error("too many pairing requests are waiting (at most {max}); approve or reject some, or wait for them to expire")]
    TooManyPairings { max: usize },
    #[error("too many pairing requests from this address are waiting (at most {max}); approve or reject them, or wait for them to expire")]
    TooManyPairingsFrom { max: usize },
    #[error("no pairing request with code {0:?} (unknown or expired)")]
    UnknownPairing(String),
    #[error("pairing request {0:?} was already approved or rejected")]
    PairingDecided(String),
}

impl StoreError {
    /// SQLite could not write because the disk (or its quota) is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DiskFull
        )
    }
}

/// Schema migrations, applied in order; `PRAGMA user_version` is the count applied.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- The append-only event log. seq is site-wide and gapless; payload is the Event as published.
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY,
    type     TEXT NOT NULL,
    order_id TEXT NOT NULL,
    version  INTEGER NOT NULL,
    command  TEXT NOT NULL,
    device   TEXT NOT NULL,
    at       INTEGER NOT NULL,
    payload  BLOB NOT NULL
);

-- Projection: every order's latest state. open = 0 once completed.
CREATE TABLE orders (
    id      TEXT PRIMARY KEY,
    ticket  INTEGER NOT NULL,
    status  TEXT NOT NULL,
    version INTEGER NOT NULL,
    open    INTEGER NOT NULL,
    body    BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX orders_open ON orders(ticket) WHERE open = 1;
-- Tickets are unique; the index also makes MAX(ticket) at start O(log n).
CREATE UNIQUE INDEX orders_ticket ON orders(ticket);

-- Idempotency: the first reply to every decided command, kept forever.
CREATE TABLE commands (
    device TEXT NOT NULL,
    id     TEXT NOT NULL,
    ok     INTEGER NOT NULL,
    seq    INTEGER,
    reply  BLOB NOT NULL,
    PRIMARY KEY (device, id)
) WITHOUT ROWID;

CREATE TABLE devices (
    id         TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    stations   TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) WITHOUT ROWID;

-- Bumped on every device change so that readers reload the table only when it changed.
INSERT INTO meta (key, value) VALUES ('devices_gen', '0');
CREATE TRIGGER devices_gen_insert AFTER INSERT ON devices BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'devices_gen';
END;
CREATE TRIGGER devices_gen_update AFTER UPDATE ON devices BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'devices_gen';
END;
CREATE TRIGGER devices_gen_delete AFTER DELETE ON devices BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'devices_gen';
END;
"#,
    // 2: pairing requests (see `pairing`). Short-lived rows: purged once expired.
    r#"
CREATE TABLE pairings (
    code       TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    label      TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
    device_id  TEXT
) WITHOUT ROWID;
CREATE INDEX pairings_expiry ON pairings(expires_at);
"#,
    // 3: the uplink relays' cursors: every event up to `seq` is relayed to `target`.
    r#"
CREATE TABLE uplink_cursor (
    target TEXT PRIMARY KEY CHECK (target IN ('postgres', 'redis')),
    seq    INTEGER NOT NULL,
    at     INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    // 4: the address a pairing request came from (at most a few pending per address).
    r#"
ALTER TABLE pairings ADD COLUMN addr TEXT;
"#,
    // 5: every version of the menu (`store::menu`): the file's seeds and the menu commands'.
    r#"
CREATE TABLE menu_versions (
    version    INTEGER PRIMARY KEY,
    body       BLOB NOT NULL,
    at         INTEGER NOT NULL,
    device     TEXT NOT NULL,
    command    TEXT NOT NULL,
    seed       TEXT,
    relayed_at INTEGER
);
"#,
    // 6: the kitchen printers' jobs (`store::print`).
    print::SCHEMA,
    // 7: the stations' printers as /admin sets them (`store::printers`; the file is the seed).
    printers::SCHEMA,
    // 8: the integrations' webhooks and their delivery log (`store::webhooks`).
    webhooks::SCHEMA,
];

/// A paired device as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub id: String,
    pub role: Role,
    pub stations: Vec<String>,
    pub secret: [u8; 32],
    pub created_at: u64,
    pub revoked_at: Option<u64>,
}

/// Everything one group commit writes.
#[derive(Debug, Default)]
pub struct Batch {
    /// Events with their encoded payloads, in seq order.
    pub events: Vec<(Event, Vec<u8>)>,
    /// Latest state of every order the batch touched.
    pub orders: BTreeMap<String, Order>,
    pub replies: Vec<Recorded>,
    /// Each menu version the batch's menu commands made, in order.
    pub menus: Vec<menu::MenuChange>,
    /// The print jobs the batch's events made (`store::print`), in order.
    pub prints: Vec<print::NewJob>,
}

/// One decided command's first reply, for the idempotency table.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub device: String,
    pub id: String,
    pub ok: bool,
    pub seq: Option<u64>,
    /// The encoded `Reply`, returned as-is to every re-send.
    pub reply: Vec<u8>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.replies.is_empty()
    }
}

/// What the engine needs at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub open_orders: BTreeMap<String, Order>,
    pub last_seq: u64,
    pub next_ticket: u64,
    /// The latest event's `at` (0 with none).
    pub last_at: u64,
    /// The latest menu version (none before the menu file was first seeded).
    pub menu: Option<docket_core::Menu>,
}

/// Opens a connection with the durability settings every connection must share.
pub fn connect(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Applies pending migrations and binds the database to `site_id`.
/// Any order, open or closed, as the `orders` projection has it (its latest committed state),
/// on any connection (the engine's, or a reader's such as the integration API's).
pub fn order_by_id(conn: &Connection, id: &str) -> Result<Option<Order>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT body FROM orders WHERE id = ?1")?;
    let body: Option<Vec<u8>> = stmt.query_row([id], |r| r.get(0)).optional()?;
    Ok(match body {
        Some(b) => Some(wire::decode(&b)?),
        None => None,
    })
}

pub fn migrate(conn: &mut Connection, site_id: &str) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version as usize > MIGRATIONS.len() {
        return Err(StoreError::TooNew(version));
    }
    for m in &MIGRATIONS[version as usize..] {
        tx.execute_batch(m)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
    let stored: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = 'site_id'", [], |r| {
            r.get(0)
        })
        .optional()?;
    match stored {
        Some(s) if s != site_id => {
            return Err(StoreError::WrongSite {
                stored: s,
                configured: site_id.to_owned(),
            })
        }
        Some(_) => {}
        None => {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('site_id', ?1)",
                [site_id],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The engine's writer: the only connection that appends events.
pub struct Store {
    conn: Connection,
}

impl Store {
    pub fn open(path: &Path, site_id: &str) -> Result<Self, StoreError> {
        let mut conn = connect(path)?;
        migrate(&mut conn, site_id)?;
        Ok(Store { conn })
    }

    pub fn load(&self) -> Result<Loaded, StoreError> {
        let last_seq: u64 =
            self.conn
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
        let max_ticket: u64 =
            self.conn
                .query_row("SELECT COALESCE(MAX(ticket), 0) FROM orders", [], |r| {
                    r.get(0)
                })?;
        let mut stmt = self
            .conn
            .prepare("SELECT body FROM orders WHERE open = 1 ORDER BY ticket")?;
        let mut open_orders = BTreeMap::new();
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let body: Vec<u8> = row.get(0)?;
            let order: Order = wire::decode(&body)?;
            open_orders.insert(order.id.clone(), order);
        }
        let last_at: u64 =
            self.conn
                .query_row("SELECT COALESCE(MAX(at), 0) FROM events", [], |r| r.get(0))?;
        Ok(Loaded {
            open_orders,
            last_seq,
            next_ticket: max_ticket + 1,
            last_at,
            menu: menu::latest(&self.conn)?,
        })
    }

    /// The first reply recorded for this device's command id.
    pub fn recorded_reply(&self, device: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT reply FROM commands WHERE device = ?1 AND id = ?2")?;
        Ok(stmt
            .query_row(params![device, id], |r| r.get(0))
            .optional()?)
    }

    /// Any order, open or closed.
    pub fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        order_by_id(&self.conn, id)
    }

    /// Up to `limit` encoded events after `after_seq`, in order.
    pub fn events_after(&self, after_seq: u64, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT payload FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
        let rows = stmt.query_map(params![after_seq, limit as i64], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Writes one batch in one transaction: one fsync for every command in it.
    pub fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut ev = tx.prepare_cached(
                "INSERT INTO events (seq, type, order_id, version, command, device, at, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for (e, payload) in &batch.events {
                ev.execute(params![
                    e.seq,
                    e.kind.as_str(),
                    e.order_id,
                    e.version,
                    e.command,
                    e.device,
                    e.at,
                    payload
                ])?;
            }
            let mut ord = tx.prepare_cached(
                "INSERT INTO orders (id, ticket, status, version, open, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, version = excluded.version,
                 open = excluded.open, body = excluded.body",
            )?;
            for o in batch.orders.values() {
                ord.execute(params![
                    o.id,
                    o.ticket,
                    o.status.as_str(),
                    o.version,
                    o.is_open(),
                    wire::encode(o)?
                ])?;
            }
            let mut cmd = tx.prepare_cached(
                "INSERT INTO commands (device, id, ok, seq, reply) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for r in &batch.replies {
                cmd.execute(params![r.device, r.id, r.ok, r.seq, r.reply])?;
            }
            for m in &batch.menus {
                menu::insert(&tx, m, None)?;
            }
            print::insert(&tx, &batch.prints)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Seeds the menu from the file when it is new or changed; the menu to serve.
    pub fn seed_menu(
        &self,
        file: &docket_core::Menu,
        now: u64,
    ) -> Result<(docket_core::Menu, menu::Seeded), StoreError> {
        menu::seed(&self.conn, file, now)
    }

    pub fn integrity_check(&self) -> Result<String, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

/// Device table operations, on any connection (CLI or daemon).
pub mod devices {
    use super::*;

    fn row(
        r: &rusqlite::Row<'_>,
    ) -> rusqlite::Result<(String, String, String, String, u64, Option<u64>)> {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    }

    fn parse(t: (String, String, String, String, u64, Option<u64>)) -> Option<DeviceRow> {
        let (id, role, stations, secret, created_at, revoked_at) = t;
        let secret: [u8; 32] = hex::decode(secret).ok()?.try_into().ok()?;
        Some(DeviceRow {
            id,
            role: Role::parse(&role)?,
            stations: stations
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            secret,
            created_at,
            revoked_at,
        })
    }

    const SELECT: &str = "SELECT id, role, stations, secret, created_at, revoked_at FROM devices";

    /// Changes whenever any device row changes.
    pub fn generation(conn: &Connection) -> Result<i64, StoreError> {
        let mut stmt = conn
            .prepare_cached("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'devices_gen'")?;
        Ok(stmt.query_row([], |r| r.get(0))?)
    }

    pub fn get(conn: &Connection, id: &str) -> Result<Option<DeviceRow>, StoreError> {
        let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE id = ?1"))?;
        Ok(stmt.query_row([id], row).optional()?.and_then(parse))
    }

    pub fn all(conn: &Connection) -> Result<Vec<DeviceRow>, StoreError> {
        let mut stmt = conn.prepare_cached(&format!("{SELECT} ORDER BY id"))?;
        let rows = stmt.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows.into_iter().filter_map(parse).collect())
    }

    pub fn add(conn: &Connection, d: &DeviceRow) -> Result<(), StoreError> {
        let n = conn.execute(
            "INSERT INTO devices (id, role, stations, secret, created_at, revoked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, NULL) ON CONFLICT (id) DO NOTHING",
            params![
                d.id,
                d.role.as_str(),
                d.stations.join(","),
                hex::encode(d.secret),
                d.created_at
            ],
        )?;
        if n == 0 {
            return Err(StoreError::DeviceExists(d.id.clone()));
        }
        Ok(())
    }

    /// Marks a device revoked (kept for the audit trail; its id is never reused).
    pub fn revoke(conn: &Connection, id: &str, at: u64) -> Result<(), StoreError> {
        let n = conn.execute(
            "UPDATE devices SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
            params![id, at],
        )?;
        if n == 0 {
            return Err(StoreError::NoDevice(id.to_owned()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
