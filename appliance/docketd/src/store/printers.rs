//! The stations' kitchen printers as the box runs them (`printers`): seeded from the config
//! file's `[[printing.printer]]`, then edited from `/admin`. The file is the seed, as with the
//! menu: stored at the first start, left alone while its entries are unchanged (so `/admin`'s
//! edits survive restarts), and seeded again, replacing the edits, when the file's entries change.
//!
//! Owns the table and its SQL; must not talk to printers or validate an address (`config`).

use docket_core::print::Paper;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::StoreError;
use crate::config::{Mode, StationPrinter};

pub(super) const SCHEMA: &str = r#"
CREATE TABLE printers (
    station  TEXT PRIMARY KEY,
    address  TEXT NOT NULL,
    mode     TEXT NOT NULL CHECK (mode IN ('fallback', 'always', 'off')),
    paper_mm INTEGER NOT NULL CHECK (paper_mm IN (58, 80)),
    at       INTEGER NOT NULL,
    device   TEXT NOT NULL
) WITHOUT ROWID;
"#;

/// Who seeded entries are recorded as set by.
const SEED_DEVICE: &str = "config";

fn file_hash(file: &[StationPrinter]) -> String {
    let mut h = Sha256::new();
    for p in file {
        h.update(format!(
            "{}\n{}\n{}\n{}\n",
            p.station,
            p.address,
            p.mode.as_str(),
            p.paper.mm()
        ));
    }
    hex::encode(h.finalize())
}

/// Every station's printer, by station.
pub fn all(conn: &Connection) -> Result<Vec<StationPrinter>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT station, address, mode, paper_mm FROM printers ORDER BY station")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, u32>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (station, address, mode, paper) = row?;
        out.push(StationPrinter {
            station,
            address,
            mode: Mode::parse(&mode).unwrap_or(Mode::Off),
            paper: Paper::from_mm(paper).unwrap_or(Paper::Mm80),
        });
    }
    Ok(out)
}

/// Sets a station's printer (adds or replaces).
pub fn put(conn: &Connection, p: &StationPrinter, at: u64, device: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO printers (station, address, mode, paper_mm, at, device)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (station) DO UPDATE SET address = excluded.address, mode = excluded.mode,
         paper_mm = excluded.paper_mm, at = excluded.at, device = excluded.device",
        params![
            p.station,
            p.address,
            p.mode.as_str(),
            p.paper.mm(),
            at,
            device
        ],
    )?;
    Ok(())
}

/// Takes a station's printer away; false when it had none.
pub fn remove(conn: &Connection, station: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM printers WHERE station = ?1", [station])? > 0)
}

/// Seeds the table from the file's entries when they are new or changed; the printers to run
/// and whether the file replaced what was stored.
pub fn seed(
    conn: &mut Connection,
    file: &[StationPrinter],
    now: u64,
) -> Result<(Vec<StationPrinter>, bool), StoreError> {
    let hash = file_hash(file);
    let tx = conn.transaction()?;
    let stored: Option<String> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'printers_seed'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let seeded = stored.as_deref() != Some(hash.as_str());
    if seeded {
        tx.execute("DELETE FROM printers", [])?;
        for p in file {
            put(&tx, p, now, SEED_DEVICE)?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('printers_seed', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [&hash],
        )?;
    }
    let printers = all(&tx)?;
    tx.commit()?;
    Ok((printers, seeded && stored.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printer(station: &str, address: &str) -> StationPrinter {
        StationPrinter {
            station: station.into(),
            address: address.into(),
            mode: Mode::Fallback,
            paper: Paper::Mm80,
        }
    }

    #[test]
    fn the_file_seeds_edits_survive_and_a_changed_file_seeds_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::store::connect(&dir.path().join("db")).unwrap();
        crate::store::migrate(&mut conn, "s").unwrap();
        let file = vec![printer("grill", "10.0.0.5:9100")];
        assert_eq!(seed(&mut conn, &file, 1).unwrap(), (file.clone(), false));
        let mut edited = printer("fry", "10.0.0.6:9100");
        edited.mode = Mode::Always;
        put(&conn, &edited, 2, "mgr-1").unwrap();
        assert!(remove(&conn, "grill").unwrap());
        assert!(!remove(&conn, "grill").unwrap());
        // The same file: the edits stay.
        assert_eq!(
            seed(&mut conn, &file, 3).unwrap(),
            (vec![edited.clone()], false)
        );
        // A changed file replaces them.
        let file2 = vec![printer("grill", "10.0.0.9:9100")];
        assert_eq!(seed(&mut conn, &file2, 4).unwrap(), (file2, true));
    }
}
