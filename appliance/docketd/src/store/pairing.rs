//! Pairing requests: a new device asks for a 6-digit code, a manager approves (creating the
//! device) or rejects it, and the device polls with its secret token until it collects its
//! credentials, exactly once.
//!
//! Owns the `pairings` table. Only a SHA-256 hash of each poll token is stored, so a copy of the
//! database cannot be used to collect a pending device's secret. Rows are short-lived: a request
//! expires [`TTL_MS`] after it was made (or after it was decided); expired rows are treated as
//! absent and purged whenever a request is created or decided.
//!
//! Must not validate device ids, roles or stations (callers pass a checked [`DeviceRow`]) and
//! must not know about HTTP.

use rand::Rng;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};

use super::{devices, DeviceRow, StoreError};

/// How long a code is valid, and how long an approved device has to collect its credentials.
pub const TTL_MS: u64 = 10 * 60 * 1000;
/// Most pending requests at once: anyone on the LAN may ask, and must not be able to fill the disk.
pub const MAX_PENDING: usize = 50;
/// Most pending requests from one network address: one device (or one attacker) cannot take the
/// whole queue, so pairing stays open to every other address on the LAN.
pub const MAX_PER_ADDRESS: usize = 3;

/// Wall-clock milliseconds since the Unix epoch, the clock pairing expiry is measured on.
///
/// A wall clock can jump (NTP sync after boot, a manual change). For a 10-minute window that is
/// harmless: a jump only shortens or extends the window of the requests in flight; it cannot
/// approve anything nor hand out credentials twice.
pub fn now_ms() -> u64 {
    crate::clock::wall_ms()
}

/// A fresh request: the code to show, and the token only the requesting device knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPairing {
    pub code: String,
    pub token: [u8; 32],
    pub expires_at: u64,
}

/// A request waiting for a manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub code: String,
    pub label: Option<String>,
    /// The network address the request came from, as the box saw it.
    pub addr: Option<String>,
    pub created_at: u64,
    pub expires_at: u64,
}

/// What a polling device learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    Pending {
        expires_at: u64,
    },
    /// The new device, with its secret. Returned once: the request is deleted with it.
    Approved(DeviceRow),
    Rejected,
}

fn token_hash(token: &[u8; 32]) -> Vec<u8> {
    Sha256::digest(token).to_vec()
}

/// Deletes expired requests; returns how many.
pub fn purge_expired(conn: &Connection, now: u64) -> Result<usize, StoreError> {
    Ok(conn.execute("DELETE FROM pairings WHERE expires_at <= ?1", [now])?)
}

/// Records a new pairing request with a random code (unique among live requests) and a random
/// 256-bit token, remembering the requester's address `addr`. Refused when [`MAX_PENDING`]
/// requests are already waiting, or [`MAX_PER_ADDRESS`] from `addr`.
pub fn create(
    conn: &mut Connection,
    label: Option<&str>,
    addr: &str,
    now: u64,
) -> Result<NewPairing, StoreError> {
    // Purged in its own statement: a refusal below rolls the transaction back, which would
    // bring them back.
    purge_expired(conn, now)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let pending: usize = tx.query_row(
        "SELECT COUNT(*) FROM pairings WHERE state = 'pending'",
        [],
        |r| r.get(0),
    )?;
    if pending >= MAX_PENDING {
        return Err(StoreError::TooManyPairings { max: MAX_PENDING });
    }
    let from_addr: usize = tx.query_row(
        "SELECT COUNT(*) FROM pairings WHERE state = 'pending' AND addr = ?1",
        [addr],
        |r| r.get(0),
    )?;
    if from_addr >= MAX_PER_ADDRESS {
        return Err(StoreError::TooManyPairingsFrom {
            max: MAX_PER_ADDRESS,
        });
    }
    let token: [u8; 32] = rand::random();
    let expires_at = now + TTL_MS;
    let mut rng = rand::thread_rng();
    // Live codes are few (at most MAX_PENDING pending plus recently decided ones) among a
    // million, so a collision is rare and a few tries always suffice.
    for _ in 0..32 {
        let code = format!("{:06}", rng.gen_range(0..1_000_000u32));
        let n = tx.execute(
            "INSERT INTO pairings (code, token_hash, label, created_at, expires_at, state, addr)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6) ON CONFLICT (code) DO NOTHING",
            params![code, token_hash(&token), label, now, expires_at, addr],
        )?;
        if n == 1 {
            tx.commit()?;
            return Ok(NewPairing {
                code,
                token,
                expires_at,
            });
        }
    }
    Err(StoreError::TooManyPairings { max: MAX_PENDING })
}

/// The state of the live request with this code.
fn live(conn: &Connection, code: &str, now: u64) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT state FROM pairings WHERE code = ?1 AND expires_at > ?2",
            params![code, now],
            |r| r.get(0),
        )
        .optional()?)
}

/// Approves a pending request: in one transaction, adds `device` (which the caller has
/// validated) and marks the request approved. The device then has [`TTL_MS`] to collect it.
pub fn approve(
    conn: &mut Connection,
    code: &str,
    device: &DeviceRow,
    now: u64,
) -> Result<(), StoreError> {
    purge_expired(conn, now)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    require_pending(&tx, code, now)?;
    devices::add(&tx, device)?;
    tx.execute(
        "UPDATE pairings SET state = 'approved', device_id = ?2, expires_at = ?3 WHERE code = ?1",
        params![code, device.id, now + TTL_MS],
    )?;
    tx.commit()?;
    Ok(())
}

/// Only a live, undecided request may be approved or rejected.
fn require_pending(conn: &Connection, code: &str, now: u64) -> Result<(), StoreError> {
    match live(conn, code, now)?.as_deref() {
        None => Err(StoreError::UnknownPairing(code.to_owned())),
        Some("pending") => Ok(()),
        Some(_) => Err(StoreError::PairingDecided(code.to_owned())),
    }
}

/// Rejects a pending request; the device learns it on its next poll (until the request expires).
pub fn reject(conn: &mut Connection, code: &str, now: u64) -> Result<(), StoreError> {
    purge_expired(conn, now)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    require_pending(&tx, code, now)?;
    tx.execute(
        "UPDATE pairings SET state = 'rejected', expires_at = ?2 WHERE code = ?1",
        params![code, now + TTL_MS],
    )?;
    tx.commit()?;
    Ok(())
}

/// Where the request behind `token` stands; `None` for an unknown, expired or collected one.
///
/// Approved credentials are returned exactly once: the request is deleted in the same
/// transaction. An approved device revoked before it collected is reported as rejected.
pub fn poll(conn: &mut Connection, token: &[u8; 32], now: u64) -> Result<Option<Poll>, StoreError> {
    let hash = token_hash(token);
    let find = "SELECT state, expires_at, device_id FROM pairings
                WHERE token_hash = ?1 AND expires_at > ?2";
    type Found = (String, u64, Option<String>);
    let get = |conn: &Connection| -> Result<Option<Found>, StoreError> {
        Ok(conn
            .query_row(find, params![hash, now], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?)
    };
    // Polling is frequent and mostly "pending": a plain read, taking the write lock only to
    // hand out credentials.
    match get(conn)? {
        None => return Ok(None),
        Some((state, expires_at, _)) if state == "pending" => {
            return Ok(Some(Poll::Pending { expires_at }))
        }
        Some((state, _, _)) if state == "rejected" => return Ok(Some(Poll::Rejected)),
        Some(_) => {}
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Re-read under the write lock: of two concurrent polls, only one collects.
    let Some((state, _, device_id)) = get(&tx)? else {
        return Ok(None);
    };
    if state != "approved" {
        return Ok(None);
    }
    tx.execute("DELETE FROM pairings WHERE token_hash = ?1", [&hash])?;
    let device = match device_id {
        Some(id) => devices::get(&tx, &id)?,
        None => None,
    };
    tx.commit()?;
    Ok(Some(match device {
        Some(d) if d.revoked_at.is_none() => Poll::Approved(d),
        _ => Poll::Rejected,
    }))
}

/// Live pending requests, oldest first.
pub fn pending(conn: &Connection, now: u64) -> Result<Vec<Pending>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT code, label, created_at, expires_at, addr FROM pairings
         WHERE state = 'pending' AND expires_at > ?1 ORDER BY created_at, code",
    )?;
    let rows = stmt.query_map([now], |r| {
        Ok(Pending {
            code: r.get(0)?,
            label: r.get(1)?,
            created_at: r.get(2)?,
            expires_at: r.get(3)?,
            addr: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::tempdir;
    use crate::store::{connect, Store};
    use docket_core::Role;

    fn db() -> Connection {
        let dir = tempdir();
        let _s = Store::open(&dir.join("db"), "s").unwrap();
        connect(&dir.join("db")).unwrap()
    }

    fn device(id: &str) -> DeviceRow {
        DeviceRow {
            id: id.into(),
            role: Role::Tablet,
            stations: vec![],
            secret: [9; 32],
            created_at: 100,
            revoked_at: None,
        }
    }

    fn count(c: &Connection) -> i64 {
        c.query_row("SELECT COUNT(*) FROM pairings", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn create_approve_collect_once() {
        let mut c = db();
        let p = create(&mut c, Some("bar tablet"), "10.0.0.9", 1_000).unwrap();
        assert_eq!(p.code.len(), 6);
        assert!(p.code.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(p.expires_at, 1_000 + TTL_MS);
        assert_eq!(
            pending(&c, 2_000).unwrap(),
            vec![Pending {
                code: p.code.clone(),
                label: Some("bar tablet".into()),
                addr: Some("10.0.0.9".into()),
                created_at: 1_000,
                expires_at: 1_000 + TTL_MS
            }]
        );
        assert_eq!(
            poll(&mut c, &p.token, 2_000).unwrap(),
            Some(Poll::Pending {
                expires_at: 1_000 + TTL_MS
            })
        );
        assert_eq!(poll(&mut c, &[0; 32], 2_000).unwrap(), None);

        approve(&mut c, &p.code, &device("tablet-7"), 3_000).unwrap();
        assert!(pending(&c, 3_000).unwrap().is_empty());
        assert_eq!(
            devices::get(&c, "tablet-7").unwrap(),
            Some(device("tablet-7"))
        );
        assert!(matches!(
            approve(&mut c, &p.code, &device("tablet-8"), 3_000),
            Err(StoreError::PairingDecided(_))
        ));
        assert!(matches!(
            reject(&mut c, &p.code, 3_000),
            Err(StoreError::PairingDecided(_))
        ));
        // Collectable after the original expiry: approval restarts the clock.
        let later = 1_000 + TTL_MS + 1;
        assert_eq!(
            poll(&mut c, &p.token, later).unwrap(),
            Some(Poll::Approved(device("tablet-7")))
        );
        assert_eq!(poll(&mut c, &p.token, later).unwrap(), None);
        assert_eq!(count(&c), 0);
    }

    #[test]
    fn approve_is_all_or_nothing() {
        let mut c = db();
        devices::add(&c, &device("taken")).unwrap();
        let p = create(&mut c, None, "10.0.0.9", 1_000).unwrap();
        assert!(matches!(
            approve(&mut c, &p.code, &device("taken"), 2_000),
            Err(StoreError::DeviceExists(_))
        ));
        // Still pending, nothing added.
        assert_eq!(pending(&c, 2_000).unwrap().len(), 1);
        assert_eq!(devices::all(&c).unwrap().len(), 1);
        assert!(matches!(
            approve(&mut c, "000000x", &device("new"), 2_000),
            Err(StoreError::UnknownPairing(_))
        ));
        assert!(devices::get(&c, "new").unwrap().is_none());
    }

    #[test]
    fn reject_then_poll_says_rejected_until_expiry() {
        let mut c = db();
        let p = create(&mut c, None, "10.0.0.9", 1_000).unwrap();
        reject(&mut c, &p.code, 2_000).unwrap();
        assert_eq!(poll(&mut c, &p.token, 3_000).unwrap(), Some(Poll::Rejected));
        assert_eq!(poll(&mut c, &p.token, 3_000).unwrap(), Some(Poll::Rejected));
        assert!(pending(&c, 3_000).unwrap().is_empty());
        assert_eq!(poll(&mut c, &p.token, 2_000 + TTL_MS).unwrap(), None);
    }

    #[test]
    fn expired_requests_are_absent_and_purged() {
        let mut c = db();
        let p = create(&mut c, None, "10.0.0.9", 1_000).unwrap();
        let expired = 1_000 + TTL_MS;
        assert!(pending(&c, expired).unwrap().is_empty());
        assert_eq!(poll(&mut c, &p.token, expired).unwrap(), None);
        assert!(matches!(
            approve(&mut c, &p.code, &device("late"), expired),
            Err(StoreError::UnknownPairing(_))
        ));
        assert!(devices::get(&c, "late").unwrap().is_none());
        assert_eq!(count(&c), 0, "purged by the approve attempt");
        assert!(matches!(
            reject(&mut c, &p.code, expired),
            Err(StoreError::UnknownPairing(_))
        ));
    }

    #[test]
    fn at_most_max_pending() {
        let mut c = db();
        let addr = |i: usize| format!("10.0.{}.{}", i / 200, i % 200);
        for i in 0..MAX_PENDING {
            create(&mut c, None, &addr(i), 1_000).unwrap();
        }
        assert!(matches!(
            create(&mut c, None, "10.9.9.9", 1_000),
            Err(StoreError::TooManyPairings { .. })
        ));
        assert_eq!(count(&c), MAX_PENDING as i64);
        // Deciding one frees a slot; so does expiry.
        let code = pending(&c, 1_000).unwrap()[0].code.clone();
        reject(&mut c, &code, 1_000).unwrap();
        create(&mut c, None, "10.9.9.9", 1_000).unwrap();
        assert!(create(&mut c, None, "10.9.9.8", 1_000).is_err());
        create(&mut c, None, "10.9.9.9", 1_000 + TTL_MS).unwrap();
        let codes: std::collections::HashSet<String> = pending(&c, 1_000 + TTL_MS)
            .unwrap()
            .into_iter()
            .map(|p| p.code)
            .collect();
        assert_eq!(codes.len(), 1);
    }

    #[test]
    fn one_address_cannot_take_the_queue() {
        let mut c = db();
        for _ in 0..MAX_PER_ADDRESS {
            create(&mut c, Some("Grill KDS"), "10.0.0.66", 1_000).unwrap();
        }
        assert!(matches!(
            create(&mut c, Some("Grill KDS"), "10.0.0.66", 1_000),
            Err(StoreError::TooManyPairingsFrom { .. })
        ));
        assert_eq!(count(&c), MAX_PER_ADDRESS as i64);
        // Another address still gets a code, and the list says where each came from.
        create(&mut c, Some("bar"), "10.0.0.7", 1_000).unwrap();
        let list = pending(&c, 1_000).unwrap();
        assert_eq!(list.len(), MAX_PER_ADDRESS + 1);
        let from_66 = list
            .iter()
            .filter(|p| p.addr.as_deref() == Some("10.0.0.66"));
        assert_eq!(from_66.count(), MAX_PER_ADDRESS);
        // A decided request no longer counts against its address.
        let code = list
            .iter()
            .find(|p| p.addr.as_deref() == Some("10.0.0.66"))
            .map(|p| p.code.clone())
            .unwrap();
        reject(&mut c, &code, 1_000).unwrap();
        create(&mut c, None, "10.0.0.66", 1_000).unwrap();
    }

    #[test]
    fn revoked_before_collection_is_rejected() {
        let mut c = db();
        let p = create(&mut c, None, "10.0.0.9", 1_000).unwrap();
        approve(&mut c, &p.code, &device("tablet-1"), 2_000).unwrap();
        devices::revoke(&c, "tablet-1", 2_500).unwrap();
        assert_eq!(poll(&mut c, &p.token, 3_000).unwrap(), Some(Poll::Rejected));
        assert_eq!(poll(&mut c, &p.token, 3_000).unwrap(), None);
    }

    #[test]
    fn only_a_hash_of_the_token_is_stored() {
        let mut c = db();
        let p = create(&mut c, None, "10.0.0.9", 1_000).unwrap();
        let stored: Vec<u8> = c
            .query_row("SELECT token_hash FROM pairings", [], |r| r.get(0))
            .unwrap();
        assert_ne!(stored, p.token.to_vec());
        assert_eq!(stored, token_hash(&p.token));
    }
}
