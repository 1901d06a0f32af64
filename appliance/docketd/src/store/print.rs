//! Print jobs in SQLite (`print_jobs`): each slip a kitchen printer owes, written in the same
//! commit as the event that made it (or by a reprint asked for), and its fate: `held` (a
//! fallback station whose screens may still show it), `due` (to print), `printed` (the printer
//! took it), `skipped` (a screen showed it). A job sent to a printer that then reported a
//! fault is sent again marked as a reprint (`again`): paper never shows one ticket twice
//! unmarked.
//!
//! Owns the table and its SQL. Must not decide which slips an event makes
//! (`docket_core::print::plan`) nor talk to a printer (`crate::print`).

use docket_core::print::Slip;
use docket_core::wire::{self, Event};
use docket_core::Order;
use rusqlite::{params, Connection};

use super::StoreError;

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Held,
    Due,
    Printed,
    Skipped,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Held => "held",
            JobState::Due => "due",
            JobState::Printed => "printed",
            JobState::Skipped => "skipped",
        }
    }
}

/// A job to write: the slip, the order as it was when the slip was made.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub slip: Slip,
    pub order: Order,
    /// The event that made it; none for a reprint asked for.
    pub seq: Option<u64>,
    pub at: u64,
    pub state: JobState,
    /// Who asked, for a reprint.
    pub device: Option<String>,
}

/// A stored job on its way to a printer.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub slip: Slip,
    pub order: Order,
    pub at: u64,
    pub attempts: u32,
    /// Sent before and maybe lost (the printer reported a fault after it): print as a reprint.
    pub again: bool,
}

pub(super) const SCHEMA: &str = r#"
CREATE TABLE print_jobs (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    station  TEXT NOT NULL,
    order_id TEXT NOT NULL,
    ticket   INTEGER NOT NULL,
    seq      INTEGER,
    kind     TEXT NOT NULL CHECK (kind IN ('new', 'changed', 'reprint')),
    slip     BLOB NOT NULL,
    body     BLOB,
    at       INTEGER NOT NULL,
    state    TEXT NOT NULL CHECK (state IN ('held', 'due', 'printed', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    again    INTEGER NOT NULL DEFAULT 0,
    done_at  INTEGER,
    device   TEXT
);
CREATE INDEX print_jobs_state ON print_jobs (state, station, id);
"#;

/// Writes jobs (inside the caller's transaction: the group commit, or a reprint's own).
pub fn insert(conn: &Connection, jobs: &[NewJob]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO print_jobs (station, order_id, ticket, seq, kind, slip, body, at, state, device)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for j in jobs {
        stmt.execute(params![
            j.slip.station,
            j.order.id,
            j.order.ticket,
            j.seq,
            j.slip.kind.as_str(),
            wire::encode(&j.slip)?,
            // The event's payload has the order: only a reprint stores it.
            match j.seq {
                Some(_) => None,
                None => Some(wire::encode(&j.order)?),
            },
            j.at,
            j.state.as_str(),
            j.device,
        ])?;
    }
    Ok(())
}

/// The next due jobs of these stations, oldest first, each with the order as its event (or
/// its reprint) left it. A job whose event is gone (pruned after weeks) is skipped.
pub fn due(conn: &Connection, stations: &[String], limit: usize) -> Result<Vec<Job>, StoreError> {
    let mut out = Vec::new();
    let mut gone = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT p.id, p.slip, p.body, e.payload, p.at, p.attempts, p.again FROM print_jobs p
         LEFT JOIN events e ON e.seq = p.seq
         WHERE p.station = ?1 AND p.state = 'due' ORDER BY p.id LIMIT ?2",
    )?;
    for s in stations {
        let rows = stmt.query_map(params![s, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Option<Vec<u8>>>(2)?,
                r.get::<_, Option<Vec<u8>>>(3)?,
                r.get::<_, u64>(4)?,
                r.get::<_, u32>(5)?,
                r.get::<_, bool>(6)?,
            ))
        })?;
        for row in rows {
            let (id, slip, body, event, at, attempts, again) = row?;
            let order = match (body, event) {
                (Some(b), _) => wire::decode(&b)?,
                (None, Some(e)) => wire::decode::<Event>(&e)?.order,
                (None, None) => {
                    gone.push(id);
                    continue;
                }
            };
            out.push(Job {
                id,
                slip: wire::decode(&slip)?,
                order,
                at,
                attempts,
                again,
            });
        }
    }
    for id in gone {
        conn.prepare_cached("UPDATE print_jobs SET state = 'skipped' WHERE id = ?1")?
            .execute([id])?;
    }
    out.sort_by_key(|j| j.id);
    out.truncate(limit);
    Ok(out)
}

/// A batch is about to be sent: each job counts one more attempt (one transaction). A job
/// with attempts that is still due may be on paper: it is printed again as a reprint.
pub fn sending(conn: &Connection, ids: &[i64]) -> Result<(), StoreError> {
    let tx = conn.unchecked_transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE print_jobs SET attempts = attempts + 1 WHERE id = ?1 AND state = 'due'",
        )?;
        for id in ids {
            stmt.execute([id])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// How a batch went (one transaction): `printed` the printer took; `lost` went out and the
/// printer reported a fault at or before them (each may be lost: sent again, as a reprint).
pub fn sent(conn: &Connection, printed: &[i64], lost: &[i64], at: u64) -> Result<(), StoreError> {
    let tx = conn.unchecked_transaction()?;
    {
        let mut done = tx.prepare_cached(
            "UPDATE print_jobs SET state = 'printed', done_at = ?2 WHERE id = ?1 AND state = 'due'",
        )?;
        for id in printed {
            done.execute(params![id, at])?;
        }
        let mut again =
            tx.prepare_cached("UPDATE print_jobs SET again = 1 WHERE id = ?1 AND state = 'due'")?;
        for id in lost {
            again.execute([id])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A fallback station went dark: its held jobs made since `since` are due. Returns how many.
pub fn promote(conn: &Connection, station: &str, since: u64) -> Result<usize, StoreError> {
    // Looked for first: a read never waits for the engine's commits (WAL), a write would.
    let any: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM print_jobs
             WHERE station = ?1 AND state = 'held' AND at >= ?2)",
        )?
        .query_row(params![station, since], |r| r.get(0))?;
    if !any {
        return Ok(0);
    }
    Ok(conn
        .prepare_cached(
            "UPDATE print_jobs SET state = 'due'
             WHERE station = ?1 AND state = 'held' AND at >= ?2",
        )?
        .execute(params![station, since])?)
}

/// Held jobs made before `before` were shown by a screen (or are too old to matter): skipped.
/// Finished jobs older than `keep_before` are deleted. Returns (skipped, deleted).
pub fn tidy(
    conn: &Connection,
    before: u64,
    keep_before: u64,
) -> Result<(usize, usize), StoreError> {
    let skipped = conn
        .prepare_cached("UPDATE print_jobs SET state = 'skipped' WHERE state = 'held' AND at < ?1")?
        .execute([before])?;
    let deleted = conn
        .prepare_cached("DELETE FROM print_jobs WHERE state IN ('printed', 'skipped') AND at < ?1")?
        .execute([keep_before])?;
    Ok((skipped, deleted))
}

/// A station lost its printer: its waiting jobs are dropped (skipped). Returns how many.
pub fn drop_station(conn: &Connection, station: &str) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE print_jobs SET state = 'skipped' WHERE station = ?1 AND state IN ('held', 'due')",
        )?
        .execute([station])?)
}

/// Jobs waiting per station: (station, held, due).
pub fn waiting(conn: &Connection) -> Result<Vec<(String, u64, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT station, SUM(state = 'held'), SUM(state = 'due') FROM print_jobs
         WHERE state IN ('held', 'due') GROUP BY station ORDER BY station",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use docket_core::order::OrderStatus;
    use docket_core::print::SlipKind;

    fn job(station: &str, ticket: u64, at: u64, state: JobState) -> NewJob {
        NewJob {
            slip: Slip::reprint(station),
            order: Order {
                id: format!("o-{ticket}"),
                ticket,
                table: "1".into(),
                status: OrderStatus::Placed,
                version: 1,
                lines: vec![],
                fired_course: 1,
                placed_at: at,
                rush: false,
                service: None,
                server: None,
                origin: None,
            },
            // No event in this store: the job keeps its order (as a reprint does).
            seq: None,
            at,
            state,
            device: None,
        }
    }

    #[test]
    fn jobs_go_from_held_to_due_to_printed_in_order_and_a_lost_one_comes_back_marked() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::store::connect(&dir.path().join("db")).unwrap();
        crate::store::migrate(&mut conn, "s").unwrap();
        insert(
            &conn,
            &[
                job("grill", 1, 1_000, JobState::Held),
                job("grill", 2, 5_000, JobState::Held),
                job("fry", 3, 6_000, JobState::Due),
            ],
        )
        .unwrap();
        // A job whose event is gone (pruned) cannot print: skipped, not returned.
        let mut orphan = job("fry", 4, 6_100, JobState::Due);
        orphan.seq = Some(99);
        insert(&conn, &[orphan]).unwrap();
        let tickets = |jobs: Vec<Job>| jobs.iter().map(|j| j.order.ticket).collect::<Vec<_>>();
        let both = ["grill".to_owned(), "fry".to_owned()];
        assert_eq!(tickets(due(&conn, &both, 10).unwrap()), vec![3]);
        // The grill went dark at 4 s: what came since is due; the one before was shown.
        assert_eq!(promote(&conn, "grill", 4_000).unwrap(), 1);
        assert_eq!(tickets(due(&conn, &both, 10).unwrap()), vec![2, 3]);
        // A batch of both.
        let batch: Vec<i64> = due(&conn, &both, 10)
            .unwrap()
            .iter()
            .map(|j| j.id)
            .collect();
        sending(&conn, &batch).unwrap();
        assert!(due(&conn, &both, 10)
            .unwrap()
            .iter()
            .all(|j| j.attempts == 1));
        // The first taken; the second went out as the printer ran out: it may be on paper.
        sent(&conn, &batch[..1], &batch[1..], 6_500).unwrap();
        let again = due(&conn, &both, 10).unwrap();
        assert_eq!(again.len(), 1);
        assert!(again[0].again && again[0].attempts == 1, "a reprint");
        let ids: Vec<i64> = again.iter().map(|j| j.id).collect();
        sending(&conn, &ids).unwrap();
        sent(&conn, &ids, &[], 7_000).unwrap();
        assert!(due(&conn, &both, 10).unwrap().is_empty());
        assert_eq!(waiting(&conn).unwrap(), vec![("grill".to_owned(), 1, 0)]);
        assert_eq!(tidy(&conn, 2_000, 0).unwrap(), (1, 0));
        assert!(waiting(&conn).unwrap().is_empty());
        assert_eq!(
            tidy(&conn, 0, 10_000).unwrap(),
            (0, 4),
            "the skipped orphan too"
        );
        assert_eq!(again[0].slip.kind, SlipKind::Reprint);
    }
}
