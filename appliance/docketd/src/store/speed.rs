//! Reads the event log for `/admin`'s speed of service: the events from a little before the
//! window (tickets fired earlier and bumped in it count from their fire) through its end, fed
//! in `seq` order to `docket_core::speed`. Read-only, on the caller's connection.

use docket_core::speed::{Speed, SpeedFold};
use docket_core::wire::{self, Event};
use rusqlite::{Connection, OptionalExtension};

use super::StoreError;

/// How far before the window tickets are looked for: a ticket open longer is not timed.
pub const LOOKBACK_MS: u64 = 4 * 60 * 60 * 1000;
/// Events read at most for one report (a very busy day is ~20,000); beyond it the report says
/// `truncated`.
pub const MAX_EVENTS: usize = 300_000;

/// The report and whether the window held more events than are read.
pub fn report(
    c: &Connection,
    from: u64,
    to: u64,
    late_ms: u64,
) -> Result<(Speed, bool), StoreError> {
    let mut fold = SpeedFold::new(from, to, late_ms);
    let Some(first) = first_seq_at(c, from.saturating_sub(LOOKBACK_MS))? else {
        return Ok((fold.finish(), false));
    };
    let mut stmt = c.prepare("SELECT at, payload FROM events WHERE seq >= ?1 ORDER BY seq")?;
    let mut rows = stmt.query([first as i64])?;
    let mut read = 0usize;
    while let Some(row) = rows.next()? {
        let at: i64 = row.get(0)?;
        if at as u64 >= to {
            // `at` is the box's clock at commit: it rises with seq unless the clock was set
            // back, so the first event past the window ends the read.
            break;
        }
        if read == MAX_EVENTS {
            return Ok((fold.finish(), true));
        }
        read += 1;
        let payload: Vec<u8> = row.get(1)?;
        let e: Event = wire::decode(&payload)?;
        fold.push(&e);
    }
    Ok((fold.finish(), false))
}

/// The first seq whose event is at or after `at`, by binary search over seq (the log has no
/// index on `at`, and one on the hot path's table is not worth it for a report).
fn first_seq_at(c: &Connection, at: u64) -> Result<Option<u64>, StoreError> {
    let (lo, hi): (Option<i64>, Option<i64>) =
        c.query_row("SELECT MIN(seq), MAX(seq) FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(mut lo), Some(mut hi)) = (lo, hi) else {
        return Ok(None);
    };
    let mut stmt = c.prepare("SELECT at FROM events WHERE seq >= ?1 ORDER BY seq LIMIT 1")?;
    let mut at_of = |seq: i64| -> Result<Option<i64>, StoreError> {
        Ok(stmt.query_row([seq], |r| r.get(0)).optional()?)
    };
    if at_of(hi)?.is_some_and(|t| (t as u64) < at) {
        return Ok(None);
    }
    // Invariant: the answer is in [lo, hi].
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match at_of(mid)? {
            Some(t) if (t as u64) < at => lo = mid + 1,
            _ => hi = mid,
        }
    }
    Ok(Some(lo as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::migrate(&mut c, "test").unwrap();
        c
    }

    fn insert(c: &Connection, seq: i64, at: i64) {
        c.execute(
            "INSERT INTO events (seq, type, order_id, version, command, device, at, payload)
             VALUES (?1, 'order_placed', 'o', 1, 'c', 'd', ?2, x'00')",
            [seq, at],
        )
        .unwrap();
    }

    #[test]
    fn the_first_event_at_or_after_a_time_is_found_by_seq() {
        let c = db();
        assert_eq!(first_seq_at(&c, 0).unwrap(), None);
        for seq in 1..=100 {
            insert(&c, seq, seq * 10);
        }
        assert_eq!(first_seq_at(&c, 0).unwrap(), Some(1));
        assert_eq!(first_seq_at(&c, 10).unwrap(), Some(1));
        assert_eq!(first_seq_at(&c, 11).unwrap(), Some(2));
        assert_eq!(first_seq_at(&c, 505).unwrap(), Some(51));
        assert_eq!(first_seq_at(&c, 1000).unwrap(), Some(100));
        assert_eq!(first_seq_at(&c, 1001).unwrap(), None);
    }
}
