//! The relays' side of the box's SQLite: committed events after a cursor, the cursors
//! themselves (one row per target in `uplink_cursor`), and pruning relayed events.
//! A connection of its own; the engine's writer is never shared.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use docket_core::wire::{self, Event};
use rusqlite::{params, Connection, OptionalExtension};

use crate::store::blocking::{BlockingConn, BlockingError};
use crate::store::menu::MenuChange;
use crate::store::{self, StoreError};

/// The events not yet relayed to every target, read after each target's cursor, and the cursors.
pub struct Backlog {
    conn: Connection,
}

/// A relay task's `Backlog`: every call runs on the blocking pool, off the async workers.
pub type BacklogHandle = BlockingConn<Backlog>;

/// Opens a relay's `Backlog` (on the blocking pool).
pub async fn open(db: PathBuf) -> Result<BacklogHandle, BlockingError> {
    BlockingConn::open(move || Backlog::open(&db)).await
}

/// A relay's side of the box's store: its own connection and its cursor. `None`, said in the
/// log, when either cannot be had: the relay stops.
pub async fn open_relay(db: PathBuf, target: &'static str) -> Option<(BacklogHandle, Cursor)> {
    let opened = async {
        let local = open(db).await?;
        let cursor = Cursor::load(&local, target).await?;
        Ok::<_, BlockingError>((local, cursor))
    };
    match opened.await {
        Ok(relay) => Some(relay),
        Err(e) => {
            tracing::error!(error = %e, "uplink {target}: cannot open the local store or read the relay's cursor; relay stopped");
            None
        }
    }
}

impl BlockingConn<Backlog> {
    /// Up to `limit` committed events after `after`, in seq order.
    pub async fn events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, BlockingError> {
        self.run(move |l| l.events_after(after, limit)).await
    }

    /// Wall-clock age in seconds of the oldest event after `cursor` (0 when there is none).
    pub async fn lag_seconds(&self, cursor: u64, now_ms: u64) -> Result<u64, BlockingError> {
        let (_, oldest) = self.run(move |l| l.backlog(cursor)).await?;
        Ok(oldest.map_or(0, |at| now_ms.saturating_sub(at) / 1000))
    }
}

/// How often a moving relay writes its cursor to SQLite. The cursor in memory leads; a relay
/// started again (after a crash or a power cut) may send up to this much once more, and head
/// office drops it (PostgreSQL's `(site_id, seq)` key, the Redis stream's top entry), so the
/// box writes its flash once a second per relay instead of once a batch.
pub const CURSOR_SAVE_EVERY: Duration = Duration::from_secs(1);

/// A relay's cursor: the highest seq its target has, in memory, written to `uplink_cursor` at
/// most every [`CURSOR_SAVE_EVERY`] while it moves and whenever the relay is idle or stops.
pub struct Cursor {
    target: &'static str,
    seq: u64,
    saved: u64,
    saved_at: Instant,
}

impl Cursor {
    /// The cursor as last written.
    pub async fn load(
        local: &BacklogHandle,
        target: &'static str,
    ) -> Result<Cursor, BlockingError> {
        let seq = local.run(move |l| l.cursor(target)).await?;
        Ok(Cursor {
            target,
            seq,
            saved: seq,
            saved_at: Instant::now(),
        })
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The target has every event up to `seq` (a cursor never moves back).
    pub fn advance(&mut self, seq: u64) {
        self.seq = self.seq.max(seq);
    }

    /// Writes the cursor when it moved since the last write and `force` (idle, connected,
    /// stopping) or [`CURSOR_SAVE_EVERY`] has passed.
    pub async fn save(&mut self, local: &BacklogHandle, force: bool) -> Result<(), BlockingError> {
        if self.seq == self.saved || !(force || self.saved_at.elapsed() >= CURSOR_SAVE_EVERY) {
            return Ok(());
        }
        let (target, seq) = (self.target, self.seq);
        local
            .run(move |l| l.set_cursor(target, seq, crate::clock::now_ms()))
            .await?;
        self.saved = seq;
        self.saved_at = Instant::now();
        Ok(())
    }
}

/// Wall-clock age in seconds of the oldest of `events` (0 for none): the relay's lag as of the
/// read that found them.
pub fn lag_of(events: &[Event], now_ms: u64) -> u64 {
    events
        .first()
        .map_or(0, |e| now_ms.saturating_sub(e.at) / 1000)
}

impl Backlog {
    pub fn open(db: &Path) -> Result<Self, StoreError> {
        Ok(Backlog {
            conn: store::connect(db)?,
        })
    }

    /// Menu versions head office does not have yet, oldest first.
    pub fn unrelayed_menus(&self, limit: usize) -> Result<Vec<MenuChange>, StoreError> {
        store::menu::unrelayed(&self.conn, limit)
    }

    /// Head office has every menu version up to `version`.
    pub fn menus_relayed(&self, version: u64, now_ms: u64) -> Result<(), StoreError> {
        store::menu::mark_relayed(&self.conn, version, now_ms)
    }

    /// The last menu taken from head office: its key and the box's version it became.
    pub fn last_central_menu(&self) -> Result<Option<(String, u64)>, StoreError> {
        store::menu::last_central(&self.conn)
    }

    /// Menu versions the box's devices made since head office's last menu.
    pub fn menu_edits_since_central(&self) -> Result<u64, StoreError> {
        store::menu::edits_since_central(&self.conn)
    }

    /// The id of the last 86 from head office the box took (0: none).
    pub fn central_stock_cursor(&self) -> Result<i64, StoreError> {
        store::menu::central_stock_cursor(&self.conn)
    }

    /// The menu the box serves now, if it has one stored.
    pub fn menu(&self) -> Result<Option<docket_core::Menu>, StoreError> {
        store::menu::latest(&self.conn)
    }

    pub fn cursor(&self, target: &str) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT seq FROM uplink_cursor WHERE target = ?1",
                [target],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    pub fn set_cursor(&self, target: &str, seq: u64, now_ms: u64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO uplink_cursor (target, seq, at) VALUES (?1, ?2, ?3)
             ON CONFLICT (target) DO UPDATE SET seq = excluded.seq, at = excluded.at
             WHERE excluded.seq > uplink_cursor.seq",
            params![target, seq, now_ms],
        )?;
        Ok(())
    }

    /// Up to `limit` committed events with seq > `after`, in seq order.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT payload FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
        let mut rows = stmt.query(params![after, limit as i64])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let payload: Vec<u8> = r.get(0)?;
            out.push(wire::decode::<Event>(&payload)?);
        }
        Ok(out)
    }

    /// The last committed seq and, if any event after `cursor` exists, its wall-clock `at`.
    pub fn backlog(&self, cursor: u64) -> Result<(u64, Option<u64>), StoreError> {
        let last: u64 =
            self.conn
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
        let oldest: Option<u64> = self
            .conn
            .query_row(
                "SELECT at FROM events WHERE seq > ?1 ORDER BY seq LIMIT 1",
                [cursor],
                |r| r.get(0),
            )
            .optional()?;
        Ok((last, oldest))
    }

    /// Deletes events relayed to PostgreSQL (seq <= `relayed`) committed before `before_ms`,
    /// always keeping the newest event (the next seq is counted from it) and every event a
    /// webhook has not handled yet (`store::webhooks`). Returns how many.
    pub fn prune(&self, relayed: u64, before_ms: u64) -> Result<usize, StoreError> {
        let upto = match store::webhooks::min_cursor(&self.conn)? {
            Some(hooks) => relayed.min(hooks),
            None => relayed,
        };
        Ok(self.conn.execute(
            "DELETE FROM events WHERE seq <= ?1 AND at < ?2
               AND seq < (SELECT MAX(seq) FROM events)",
            params![upto, before_ms],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn db_with_events(ats: &[u64]) -> (tempfile_dir::Dir, Backlog) {
        let dir = tempfile_dir::Dir::new();
        let db = dir.0.join("db");
        let _s = Store::open(&db, "s").unwrap();
        let conn = store::connect(&db).unwrap();
        for (i, at) in ats.iter().enumerate() {
            conn.execute(
                "INSERT INTO events (seq, type, order_id, version, command, device, at, payload)
                 VALUES (?1, 'order_placed', 'o-000001', 1, 'c', 'd', ?2, x'00')",
                params![i as u64 + 1, at],
            )
            .unwrap();
        }
        (dir, Backlog::open(&db).unwrap())
    }

    fn seqs(l: &Backlog) -> Vec<u64> {
        let mut stmt = l
            .conn
            .prepare("SELECT seq FROM events ORDER BY seq")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn prune_removes_only_old_relayed_events_and_keeps_the_newest() {
        // seq 1..=6 committed at t = 10, 20, ..., 60.
        let (_d, l) = db_with_events(&[10, 20, 30, 40, 50, 60]);
        // Relayed up to 4, older than 35: only 1..=3 go.
        assert_eq!(l.prune(4, 35).unwrap(), 3);
        assert_eq!(seqs(&l), vec![4, 5, 6]);
        // Nothing unrelayed goes, however old.
        assert_eq!(l.prune(4, 1000).unwrap(), 1);
        assert_eq!(seqs(&l), vec![5, 6]);
        // Everything relayed and old: the newest stays (the next seq counts from it).
        assert_eq!(l.prune(6, 1000).unwrap(), 1);
        assert_eq!(seqs(&l), vec![6]);
    }

    #[test]
    fn prune_keeps_what_a_webhook_has_not_handled() {
        let (_d, l) = db_with_events(&[10, 20, 30, 40, 50, 60]);
        l.conn
            .execute(
                "INSERT INTO webhooks (device, url, secret, enabled, cursor, created_at, updated_at)
                 VALUES ('pos', 'https://x/', x'00', 1, 2, 0, 0)",
                [],
            )
            .unwrap();
        assert_eq!(l.prune(6, 1000).unwrap(), 2);
        assert_eq!(seqs(&l), vec![3, 4, 5, 6]);
    }

    #[test]
    fn cursors_only_move_forward() {
        let (_d, l) = db_with_events(&[1, 2, 3]);
        assert_eq!(l.cursor("postgres").unwrap(), 0);
        l.set_cursor("postgres", 2, 5).unwrap();
        l.set_cursor("postgres", 1, 6).unwrap();
        assert_eq!(l.cursor("postgres").unwrap(), 2);
        assert_eq!(l.cursor("redis").unwrap(), 0);
        assert_eq!(l.backlog(2).unwrap(), (3, Some(3)));
        assert_eq!(l.backlog(3).unwrap(), (3, None));
    }

    #[tokio::test]
    async fn a_moving_cursor_is_written_at_most_once_a_second_and_always_when_forced() {
        let (d, _l) = db_with_events(&[1, 2, 3]);
        let local = open(d.0.join("db")).await.unwrap();
        let saved = |local: &BacklogHandle| {
            let local = local.clone();
            async move { local.run(|l| l.cursor("postgres")).await.unwrap() }
        };
        let mut c = Cursor::load(&local, "postgres").await.unwrap();
        c.advance(1);
        c.save(&local, false).await.unwrap();
        assert_eq!((c.seq(), saved(&local).await), (1, 0), "within the second");
        c.advance(0);
        assert_eq!(c.seq(), 1, "never back");
        c.save(&local, true).await.unwrap();
        assert_eq!(saved(&local).await, 1, "forced");
        c.advance(2);
        c.saved_at -= CURSOR_SAVE_EVERY;
        c.save(&local, false).await.unwrap();
        assert_eq!(saved(&local).await, 2, "a second later");
        let again = Cursor::load(&local, "postgres").await.unwrap();
        assert_eq!(again.seq(), 2);
        assert_eq!(lag_of(&[], 5_000), 0);
    }

    /// A temp directory removed on drop (no dev-dependency needed for one directory).
    mod tempfile_dir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                let p = std::env::temp_dir().join(format!(
                    "docket-local-test-{}-{}",
                    std::process::id(),
                    rand::random::<u64>()
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
