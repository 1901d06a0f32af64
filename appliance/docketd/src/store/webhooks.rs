//! The integrations' webhooks (`webhooks`: one per integration device, its URL, secret and
//! cursor) and their delivery log (`webhook_deliveries`, the last [`LOG_KEEP`] per device).
//!
//! Owns these two tables and their SQL; must not send anything (`webhook/` does) or judge a URL.

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;

/// Migration 8.
pub(super) const SCHEMA: &str = r#"
CREATE TABLE webhooks (
    device     TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    secret     BLOB NOT NULL,
    enabled    INTEGER NOT NULL DEFAULT 1,
    cursor     INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE webhook_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    device      TEXT NOT NULL,
    seq         INTEGER,
    event_type  TEXT NOT NULL,
    order_id    TEXT,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    http_status INTEGER,
    error       TEXT,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_device ON webhook_deliveries(device, id);
"#;

/// How many deliveries the log keeps per device.
pub const LOG_KEEP: u32 = 1000;

/// A stored webhook.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub device: String,
    pub url: String,
    pub secret: [u8; 32],
    pub enabled: bool,
    /// Every event up to this seq is handled (delivered, or not this device's).
    pub cursor: u64,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("device", &self.device)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("enabled", &self.enabled)
            .field("cursor", &self.cursor)
            .finish()
    }
}

/// One attempt at a delivery, as logged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    pub id: u64,
    pub device: String,
    /// `None` for a test send.
    pub seq: Option<u64>,
    pub event_type: String,
    pub order_id: Option<String>,
    pub attempt: u32,
    pub at: u64,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<Webhook> {
    let secret: Vec<u8> = r.get(2)?;
    Ok(Webhook {
        device: r.get(0)?,
        url: r.get(1)?,
        secret: secret.try_into().unwrap_or([0; 32]),
        enabled: r.get(3)?,
        cursor: r.get(4)?,
    })
}

const COLUMNS: &str = "device, url, secret, enabled, cursor";

/// Every webhook, by device.
pub fn all(conn: &Connection) -> Result<Vec<Webhook>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM webhooks ORDER BY device"))?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The webhooks to run: enabled, of a device that is not revoked.
pub fn active(conn: &Connection) -> Result<Vec<Webhook>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT w.device, w.url, w.secret, w.enabled, w.cursor FROM webhooks w
         JOIN devices d ON d.id = w.device
         WHERE w.enabled = 1 AND d.revoked_at IS NULL ORDER BY w.device",
    )?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn get(conn: &Connection, device: &str) -> Result<Option<Webhook>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM webhooks WHERE device = ?1"),
            [device],
            row,
        )
        .optional()?)
}

/// Sets `device`'s URL. A new webhook gets `new_secret` and starts after the last event now
/// committed (it is not sent the past); returns true when it was created.
pub fn put(
    conn: &mut Connection,
    device: &str,
    url: &str,
    new_secret: &[u8; 32],
    now: u64,
) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let exists = tx
        .query_row("SELECT 1 FROM webhooks WHERE device = ?1", [device], |_| {
            Ok(())
        })
        .optional()?
        .is_some();
    if exists {
        tx.execute(
            "UPDATE webhooks SET url = ?2, updated_at = ?3 WHERE device = ?1",
            params![device, url, now],
        )?;
    } else {
        tx.execute(
            "INSERT INTO webhooks (device, url, secret, enabled, cursor, created_at, updated_at)
             VALUES (?1, ?2, ?3, 1, (SELECT COALESCE(MAX(seq), 0) FROM events), ?4, ?4)",
            params![device, url, new_secret.as_slice(), now],
        )?;
    }
    tx.commit()?;
    Ok(!exists)
}

/// Pauses (`enabled` false) or resumes `device`'s webhook, its cursor kept; false when it has
/// none. Setting it as it is changes nothing.
pub fn set_enabled(
    conn: &Connection,
    device: &str,
    enabled: bool,
    now: u64,
) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE webhooks SET enabled = ?2,
                updated_at = CASE WHEN enabled = ?2 THEN updated_at ELSE ?3 END
          WHERE device = ?1",
        params![device, enabled, now],
    )?;
    Ok(n > 0)
}

/// Removes `device`'s webhook and its log; false when it had none.
pub fn remove(conn: &mut Connection, device: &str) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let n = tx.execute("DELETE FROM webhooks WHERE device = ?1", [device])?;
    tx.execute("DELETE FROM webhook_deliveries WHERE device = ?1", [device])?;
    tx.commit()?;
    Ok(n > 0)
}

/// Moves `device`'s cursor forward to `seq` (never back).
pub fn advance(conn: &Connection, device: &str, seq: u64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE webhooks SET cursor = ?2 WHERE device = ?1 AND cursor < ?2",
        params![device, seq],
    )?;
    Ok(())
}

/// The lowest cursor of any webhook (events after it must be kept), if there is a webhook.
pub fn min_cursor(conn: &Connection) -> Result<Option<u64>, StoreError> {
    Ok(conn.query_row("SELECT MIN(cursor) FROM webhooks", [], |r| r.get(0))?)
}

/// Logs one attempt and keeps only the last [`LOG_KEEP`] of the device's.
pub fn log(conn: &Connection, d: &Delivery) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO webhook_deliveries
           (device, seq, event_type, order_id, attempt, at, http_status, error, duration_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            d.device,
            d.seq,
            d.event_type,
            d.order_id,
            d.attempt,
            d.at,
            d.http_status,
            d.error,
            d.duration_ms
        ],
    )?;
    conn.execute(
        "DELETE FROM webhook_deliveries WHERE device = ?1 AND id <=
           (SELECT id FROM webhook_deliveries WHERE device = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        params![d.device, LOG_KEEP],
    )?;
    Ok(())
}

/// The device's last `limit` deliveries, newest first.
pub fn deliveries(
    conn: &Connection,
    device: &str,
    limit: u32,
) -> Result<Vec<Delivery>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, device, seq, event_type, order_id, attempt, at, http_status, error, duration_ms
         FROM webhook_deliveries WHERE device = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![device, limit], |r| {
        Ok(Delivery {
            id: r.get(0)?,
            device: r.get(1)?,
            seq: r.get(2)?,
            event_type: r.get(3)?,
            order_id: r.get(4)?,
            attempt: r.get(5)?,
            at: r.get(6)?,
            http_status: r.get(7)?,
            error: r.get(8)?,
            duration_ms: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many events are committed after `cursor` (not all of them need be this device's).
pub fn waiting(conn: &Connection, cursor: u64) -> Result<u64, StoreError> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM events WHERE seq > ?1",
        [cursor],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn open() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let _s = Store::open(&db, "s").unwrap();
        (dir, crate::store::connect(&db).unwrap())
    }

    fn attempt(device: &str, n: u32) -> Delivery {
        Delivery {
            id: 0,
            device: device.into(),
            seq: Some(n as u64),
            event_type: "order_placed".into(),
            order_id: Some("o-1".into()),
            attempt: 1,
            at: n as u64,
            http_status: Some(200),
            error: None,
            duration_ms: 3,
        }
    }

    #[test]
    fn put_keeps_the_secret_and_cursor_and_remove_drops_the_log() {
        let (_d, mut c) = open();
        assert!(put(&mut c, "pos", "https://a/x", &[7; 32], 1).unwrap());
        advance(&c, "pos", 5).unwrap();
        advance(&c, "pos", 3).unwrap();
        assert!(!put(&mut c, "pos", "https://b/y", &[9; 32], 2).unwrap());
        let w = get(&c, "pos").unwrap().unwrap();
        assert_eq!(
            (w.url.as_str(), w.secret, w.cursor),
            ("https://b/y", [7; 32], 5)
        );
        log(&c, &attempt("pos", 1)).unwrap();
        assert!(remove(&mut c, "pos").unwrap());
        assert!(!remove(&mut c, "pos").unwrap());
        assert!(deliveries(&c, "pos", 10).unwrap().is_empty());
        assert!(format!("{w:?}").contains("redacted"));
    }

    #[test]
    fn a_revoked_integrations_webhook_is_not_run() {
        let (_d, mut c) = open();
        for id in ["pos", "kiosk"] {
            crate::store::devices::add(
                &c,
                &crate::store::DeviceRow {
                    id: id.into(),
                    role: docket_core::Role::Integration,
                    stations: vec![],
                    secret: [1; 32],
                    created_at: 0,
                    revoked_at: None,
                },
            )
            .unwrap();
            put(&mut c, id, "https://a/", &[2; 32], 0).unwrap();
        }
        let ids = |c: &Connection| {
            active(c)
                .unwrap()
                .into_iter()
                .map(|w| w.device)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&c), ["kiosk", "pos"]);
        crate::store::devices::revoke(&c, "pos", 1).unwrap();
        assert_eq!(ids(&c), ["kiosk"]);
        assert_eq!(all(&c).unwrap().len(), 2, "still listed");
    }

    #[test]
    fn the_log_keeps_the_last_entries_per_device() {
        let (_d, c) = open();
        for n in 0..LOG_KEEP + 5 {
            log(&c, &attempt("pos", n)).unwrap();
        }
        log(&c, &attempt("other", 1)).unwrap();
        let all = deliveries(&c, "pos", LOG_KEEP + 100).unwrap();
        assert_eq!(all.len(), LOG_KEEP as usize);
        assert_eq!(all[0].seq, Some((LOG_KEEP + 4) as u64));
        assert_eq!(deliveries(&c, "other", 10).unwrap().len(), 1);
    }
}
