//! The campaign's oracle: compares what the devices were told
//! ([`Observations`](super::Observations)) with the box's SQLite (read only) and head office's
//! PostgreSQL: nothing acknowledged lost or recorded differently, nothing doubled, seq gapless,
//! every screen exact. Must not write either store.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use docket_core::wire::{self, Reply};
use docket_core::Order;
use tokio::time::Instant;

use super::{lock, Shared};

/// The oracle's findings for one scenario.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub sent: u64,
    pub resent: u64,
    pub acked: u64,
    pub rejected: u64,
    /// Acknowledged (`ok: true`) but not in SQLite, or recorded differently.
    pub lost: u64,
    /// Commands that made more than one event, or orders placed twice.
    pub duplicated: u64,
    pub reconnects: u64,
    /// Problems found, in words (empty when everything holds).
    pub problems: Vec<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "commands sent {}, resent {}, acknowledged {}, rejected {}, lost {}, duplicated {}, reconnects {}",
            self.sent, self.resent, self.acked, self.rejected, self.lost, self.duplicated, self.reconnects
        )
    }
}

/// The box's last committed seq.
pub fn box_seq(db: &Path) -> anyhow::Result<u64> {
    let conn = open(db)?;
    let seq: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
    Ok(seq as u64)
}

fn open(db: &Path) -> anyhow::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("open {}", db.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// Devices still waiting for a reply, and screens behind the box's seq.
pub fn unsettled(observed: &Shared, seq: u64) -> Vec<String> {
    let l = lock(observed);
    let mut out: Vec<String> = l
        .pending
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(d, n)| format!("{d} has {n} unanswered"))
        .collect();
    out.extend(
        l.views
            .iter()
            .filter(|(_, v)| v.seq != seq)
            .map(|(d, v)| format!("{d} shows seq {} of {seq}", v.seq)),
    );
    out
}

/// Waits until every command is answered and every screen is at the box's seq.
pub async fn settle(
    observed: &Shared,
    db: &Path,
    screens: usize,
    within: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let seq = box_seq(db)?;
        let left = unsettled(observed, seq);
        let views = lock(observed).views.len();
        if left.is_empty() && views == screens {
            return Ok(start.elapsed());
        }
        if start.elapsed() > within {
            anyhow::bail!(
                "not settled after {within:?}: {} (screens with a view: {views} of {screens})",
                left.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The oracle: compares what devices were told with the box's SQLite.
pub fn check(db: &Path, observed: &Shared) -> anyhow::Result<Report> {
    let conn = open(db)?;
    let l = lock(observed);
    let mut rep = Report {
        sent: l.sent,
        resent: l.resent,
        acked: l.acked.len() as u64,
        rejected: l.rejected.len() as u64,
        reconnects: l.reconnects,
        problems: l.inconsistent.clone(),
        ..Report::default()
    };
    rep.problems.extend(l.stale.iter().cloned());

    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if integrity != "ok" {
        rep.problems.push(format!("integrity_check: {integrity}"));
    }

    // Every acknowledged command is recorded, with the reply the device got.
    let mut stmt = conn.prepare("SELECT ok, reply FROM commands WHERE device = ?1 AND id = ?2")?;
    for ((device, id), reply) in &l.acked {
        let row: Option<(i64, Vec<u8>)> = stmt
            .query_row([device, id], |r| Ok((r.get(0)?, r.get(1)?)))
            .ok();
        match row {
            None => {
                rep.lost += 1;
                rep.problems
                    .push(format!("{device} {id}: acknowledged, not in SQLite"));
            }
            Some((ok, stored)) => {
                let same = wire::decode::<Reply>(&stored).is_ok_and(|s| s == *reply);
                if ok != 1 || !same {
                    rep.lost += 1;
                    rep.problems
                        .push(format!("{device} {id}: SQLite recorded another outcome"));
                }
            }
        }
    }

    // One command, at most one event; one placement per order.
    let dup_commands: i64 = conn.query_row(
        "SELECT COUNT(*) FROM (SELECT device, command FROM events GROUP BY device, command HAVING COUNT(*) > 1)",
        [],
        |r| r.get(0),
    )?;
    let dup_orders: i64 = conn.query_row(
        "SELECT COUNT(*) FROM (SELECT order_id FROM events WHERE type = 'order_placed' GROUP BY order_id HAVING COUNT(*) > 1)",
        [],
        |r| r.get(0),
    )?;
    rep.duplicated = (dup_commands + dup_orders) as u64;
    if rep.duplicated > 0 {
        rep.problems.push(format!(
            "{dup_commands} commands made more than one event, {dup_orders} orders placed twice"
        ));
    }

    // seq is gapless from 1.
    let (n, lo, hi): (i64, i64, i64) = conn.query_row(
        "SELECT COUNT(*), COALESCE(MIN(seq), 1), COALESCE(MAX(seq), 0) FROM events",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if n > 0 && (lo != 1 || hi != n) {
        rep.problems
            .push(format!("seq has gaps: {n} events, seq {lo}..={hi}"));
    }

    // Every screen shows exactly the box's open orders for its station, at the box's seq.
    let mut open_orders = Vec::new();
    let mut q = conn.prepare("SELECT body FROM orders WHERE open = 1")?;
    for body in q.query_map([], |r| r.get::<_, Vec<u8>>(0))? {
        open_orders.push(wire::decode::<Order>(&body?)?);
    }
    for (device, view) in &l.views {
        let want: BTreeMap<&str, u64> = open_orders
            .iter()
            .filter(|o| docket_core::shows(&view.station, o))
            .map(|o| (o.id.as_str(), o.version))
            .collect();
        let got: BTreeMap<&str, u64> = view
            .orders
            .values()
            .map(|o| (o.id.as_str(), o.version))
            .collect();
        if want != got || view.seq != hi as u64 {
            rep.problems.push(format!(
                "{device} ({}) at seq {} shows {} orders; the box at seq {hi} has {} for it",
                view.station,
                view.seq,
                got.len(),
                want.len()
            ));
        }
    }
    Ok(rep)
}

/// `PRAGMA integrity_check` on the box's database.
pub fn integrity(db: &Path) -> anyhow::Result<String> {
    let conn = open(db)?;
    Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
}

/// Head office's copy: waits (up to `within`) until PostgreSQL holds as many of `site`'s events
/// as the box, then checks they are the box's events exactly, once each: seq 1..=N, and the
/// same type, order and version for every seq. Returns the problems found.
pub async fn check_pg(
    pg: &tokio_postgres::Client,
    site: &str,
    db: &Path,
    within: Duration,
) -> anyhow::Result<Vec<String>> {
    let conn = open(db)?;
    let mut stmt = conn.prepare("SELECT seq, type, order_id, version FROM events ORDER BY seq")?;
    let local: Vec<(i64, String, String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    loop {
        let n: i64 = pg
            .query_one(
                "SELECT count(*) FROM docket.events WHERE site_id = $1",
                &[&site],
            )
            .await?
            .get(0);
        if n as usize >= local.len() {
            break;
        }
        if start.elapsed() > within {
            return Ok(vec![format!(
                "PostgreSQL has {n} of the box's {} events after {within:?}",
                local.len()
            )]);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let remote: Vec<(i64, String, String, i64)> = pg
        .query(
            "SELECT seq, type, order_id, version FROM docket.events WHERE site_id = $1 ORDER BY seq",
            &[&site],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let mut problems = Vec::new();
    if remote.len() != local.len() {
        problems.push(format!(
            "PostgreSQL has {} events, the box {}",
            remote.len(),
            local.len()
        ));
    }
    if let Some((l, r)) = local.iter().zip(&remote).find(|(l, r)| l != r) {
        problems.push(format!("first difference: box {l:?}, PostgreSQL {r:?}"));
    }
    Ok(problems)
}
