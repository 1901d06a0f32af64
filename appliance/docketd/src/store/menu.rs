//! The menu's versions in SQLite (`menu_versions`): the seed from the menu file, and every
//! version a menu command made, each with who made it. The latest is the menu the box serves.
//!
//! The file is the seed: stored the first time, then left alone while its content (its CBOR
//! encoding's SHA-256) is unchanged; a changed file is seeded again, above every stored version.
//! Versions taken from head office are recorded as made by [`HEAD_OFFICE_DEVICE`], with the
//! central version's key as their command: the last one is which central version the box has.
//!
//! Owns the table and its SQL; must not decide a menu (`docket_core::decide::menu`).

use docket_core::{wire, Menu};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::StoreError;

/// Who a seeded version is recorded as made by.
pub const SEED_DEVICE: &str = "docketd";

pub use docket_core::menu::MenuChange;

/// What seeding did, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeded {
    /// The first start with this store: the file is version 1 (or the file's own version).
    First,
    /// The file is unchanged since it was seeded: the stored menu, with its edits, is served.
    Kept,
    /// The file changed: seeded again; `edits` versions made since the last seed are replaced.
    Again { edits: u64 },
}

fn seed_hash(menu: &Menu) -> Result<String, StoreError> {
    Ok(hex::encode(Sha256::digest(wire::encode(menu)?)))
}

pub(super) fn insert(
    conn: &Connection,
    c: &MenuChange,
    seed: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO menu_versions (version, body, at, device, command, seed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        c.menu.version,
        wire::encode(&c.menu)?,
        c.at,
        c.device,
        c.command,
        seed
    ])?;
    Ok(())
}

/// The menu the box serves: the latest stored version, if any.
pub fn latest(conn: &Connection) -> Result<Option<Menu>, StoreError> {
    let body: Option<Vec<u8>> = conn
        .prepare_cached("SELECT body FROM menu_versions ORDER BY version DESC LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(match body {
        Some(b) => Some(wire::decode(&b)?),
        None => None,
    })
}

/// Seeds the store from the menu file when it is new or changed; returns the menu to serve.
pub fn seed(conn: &Connection, file: &Menu, now: u64) -> Result<(Menu, Seeded), StoreError> {
    let hash = seed_hash(file)?;
    let last: Option<(u64, Option<String>)> = conn
        .query_row(
            "SELECT version, (SELECT seed FROM menu_versions WHERE seed IS NOT NULL
                              ORDER BY version DESC LIMIT 1)
             FROM menu_versions ORDER BY version DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (version, seeded) = match last {
        Some((_, Some(h))) if h == hash => {
            let menu = latest(conn)?.expect("a stored version exists");
            return Ok((menu, Seeded::Kept));
        }
        None => (file.version.max(1), Seeded::First),
        Some((top, _)) => {
            let since: u64 = conn.query_row(
                "SELECT COUNT(*) FROM menu_versions WHERE version >
                 COALESCE((SELECT MAX(version) FROM menu_versions WHERE seed IS NOT NULL), 0)",
                [],
                |r| r.get(0),
            )?;
            (file.version.max(top + 1), Seeded::Again { edits: since })
        }
    };
    let menu = Menu {
        version,
        items: file.items.clone(),
    };
    let change = MenuChange {
        menu: menu.clone(),
        at: now,
        device: SEED_DEVICE.into(),
        command: String::new(),
    };
    insert(conn, &change, Some(&hash))?;
    Ok((menu, seeded))
}

/// Who versions taken from head office are recorded as made by (`uplink::menus_down`); the
/// exactly-once record (`commands`) keys its changes by this device too. Device ids starting
/// with `docketd` are reserved: no paired device can collide with it.
pub const HEAD_OFFICE_DEVICE: &str = "docketd-head-office";

/// The last menu taken from head office: its key (`hq-menu:…`) and the box's version it became.
pub fn last_central(conn: &Connection) -> Result<Option<(String, u64)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT command, version FROM menu_versions
             WHERE device = ?1 AND command LIKE 'hq-menu:%' ORDER BY version DESC LIMIT 1",
        )?
        .query_row([HEAD_OFFICE_DEVICE], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Versions the box's own devices made since head office's last menu (or the file's last
/// seed, whichever is later): what the next menu from head office replaces.
pub fn edits_since_central(conn: &Connection) -> Result<u64, StoreError> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM menu_versions WHERE device NOT IN (?1, ?2) AND version >
         COALESCE((SELECT MAX(version) FROM menu_versions
                   WHERE seed IS NOT NULL OR (device = ?1 AND command LIKE 'hq-menu:%')), 0)",
        params![HEAD_OFFICE_DEVICE, SEED_DEVICE],
        |r| r.get(0),
    )?)
}

/// The id of the last 86 from head office the box took (0: none), from the exactly-once
/// record, where each is kept with its outcome (`hq-86:<id>`).
pub fn central_stock_cursor(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(CAST(substr(id, 7) AS INTEGER)), 0) FROM commands
         WHERE device = ?1 AND id LIKE 'hq-86:%'",
        [HEAD_OFFICE_DEVICE],
        |r| r.get(0),
    )?)
}

/// Versions not yet relayed to head office, oldest first, at most `limit`.
pub fn unrelayed(conn: &Connection, limit: usize) -> Result<Vec<MenuChange>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, body, at, device, command FROM menu_versions
         WHERE relayed_at IS NULL ORDER BY version LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok((
            r.get::<_, u64>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, u64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (_, body, at, device, command) = row?;
        out.push(MenuChange {
            menu: wire::decode(&body)?,
            at,
            device,
            command,
        });
    }
    Ok(out)
}

/// Head office has every version up to `version`.
pub fn mark_relayed(conn: &Connection, version: u64, now: u64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE menu_versions SET relayed_at = ?2 WHERE version <= ?1 AND relayed_at IS NULL",
        params![version, now],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        super::super::migrate(&mut c, "site-a").unwrap();
        c
    }

    #[test]
    fn the_file_seeds_once_and_edits_survive_until_it_changes() {
        let c = store();
        let file = Menu::sample(&[("fries", "fry"), ("steak", "grill")]);
        let (m, how) = seed(&c, &file, 1).unwrap();
        assert_eq!((m.version, how), (1, Seeded::First));
        // An edit: version 2, fries 86'd.
        let mut edited = m.clone();
        edited.version = 2;
        edited.items[0].out = true;
        let change = MenuChange {
            menu: edited.clone(),
            at: 2,
            device: "admin-1".into(),
            command: "c1".into(),
        };
        insert(&c, &change, None).unwrap();
        let (m, how) = seed(&c, &file, 3).unwrap();
        assert_eq!(
            (m, how),
            (edited, Seeded::Kept),
            "the same file keeps the edits"
        );
        // The file changes: seeded again above every version, the edit replaced.
        let mut file2 = file.clone();
        file2.items[1].price = 2900;
        let (m, how) = seed(&c, &file2, 4).unwrap();
        assert_eq!(how, Seeded::Again { edits: 1 });
        assert_eq!(m.version, 3);
        assert!(!m.items[0].out);
        assert_eq!(latest(&c).unwrap(), Some(m));
        let all = unrelayed(&c, 10).unwrap();
        assert_eq!(
            all.iter().map(|v| v.menu.version).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(all[1].device, "admin-1");
        mark_relayed(&c, 2, 5).unwrap();
        assert_eq!(unrelayed(&c, 10).unwrap().len(), 1);
    }

    #[test]
    fn which_central_version_the_box_has_and_what_was_edited_since() {
        let c = store();
        let file = Menu::sample(&[("fries", "fry"), ("steak", "grill")]);
        let (m, _) = seed(&c, &file, 1).unwrap();
        assert_eq!(last_central(&c).unwrap(), None);
        let version = |v: u64, device: &str, command: &str| {
            let mut menu = m.clone();
            menu.version = v;
            let change = MenuChange {
                menu,
                at: v,
                device: device.into(),
                command: command.into(),
            };
            insert(&c, &change, None).unwrap();
        };
        version(2, "admin-1", "c1");
        assert_eq!(edits_since_central(&c).unwrap(), 1);
        version(3, HEAD_OFFICE_DEVICE, "hq-menu:bistro:4");
        version(4, HEAD_OFFICE_DEVICE, "hq-86:9");
        version(5, "admin-1", "c2");
        version(6, "kds-1", "c3");
        assert_eq!(
            last_central(&c).unwrap(),
            Some(("hq-menu:bistro:4".into(), 3))
        );
        assert_eq!(edits_since_central(&c).unwrap(), 2);
        assert_eq!(central_stock_cursor(&c).unwrap(), 0);
        for id in ["hq-86:9", "hq-86:12", "hq-menu:bistro:4"] {
            c.execute(
                "INSERT INTO commands (device, id, ok, seq, reply) VALUES (?1, ?2, 1, NULL, x'')",
                [HEAD_OFFICE_DEVICE, id],
            )
            .unwrap();
        }
        c.execute(
            "INSERT INTO commands (device, id, ok, seq, reply) VALUES ('kds-1', 'hq-86:99', 1, NULL, x'')",
            [],
        )
        .unwrap();
        assert_eq!(central_stock_cursor(&c).unwrap(), 12);
    }
}
