//! The site bundle on the box: `<data_dir>/site-bundle.json`, trusted only when signed by the
//! pinned key `<data_dir>/site-key.pub` (see docs/technician.md).
//!
//! At start, [`apply`] verifies the bundle and lays its site id, name and uplink URLs over the
//! config file; a bundle signed by another key, tampered, or without a pinned key is refused
//! (error log line, nothing of it applied) and the refusal is shown under `site` in `/healthz`.
//! A newer bundle pushed to `POST /site/bundle` ([`accept_push`]) is checked the same way and
//! must carry a higher serial; it is stored and applied when docketd next starts (the response
//! says `"applies": "at restart"`).

use std::io::Write;
use std::path::{Path, PathBuf};

use docket_core::bundle::{self, Bundle, BundleError, BundleManager};
use serde::Serialize;

use crate::config::{Config, SecretUrl};

pub const BUNDLE_FILE: &str = "site-bundle.json";
pub const KEY_FILE: &str = "site-key.pub";
/// A copy of the last bundle that verified at start: what a box falls back to when the bundle
/// file is later replaced by one it refuses (the store is bound to the site id it was made with).
pub const APPLIED_FILE: &str = "site-bundle.applied.json";

/// What `/healthz` says about the site bundle.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SiteStatus {
    /// `none` (no bundle: the config file rules), `applied`, or `refused`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A pushed bundle is waiting for the next start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_serial: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("no pinned site key at {0}: install the first bundle with `docket image configure` or `docket site install`")]
    NoPinnedKey(PathBuf),
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("cannot write {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("the bundle's serial {got} is not higher than the box's {have}")]
    OldSerial { got: u64, have: u64 },
}

fn pinned(data_dir: &Path) -> Result<ed25519_dalek::VerifyingKey, SiteError> {
    let p = data_dir.join(KEY_FILE);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SiteError::NoPinnedKey(p))
        }
        Err(e) => return Err(SiteError::Read(p, e)),
    };
    Ok(bundle::parse_public_key(&text)?)
}

/// Reads and verifies the stored bundle: `Ok(None)` when there is none.
pub fn load(data_dir: &Path) -> Result<Option<Bundle>, SiteError> {
    load_file(data_dir, BUNDLE_FILE)
}

fn load_file(data_dir: &Path, name: &str) -> Result<Option<Bundle>, SiteError> {
    let p = data_dir.join(name);
    let json = match std::fs::read(&p) {
        Ok(j) => j,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SiteError::Read(p, e)),
    };
    let key = pinned(data_dir)?;
    Ok(Some(bundle::verify(&json, &key)?))
}

/// Lays a verified bundle over `cfg`; returns its manager devices.
fn set(cfg: &mut Config, b: Bundle) -> Vec<BundleManager> {
    cfg.site_id = b.site_id;
    cfg.site_name = b.name;
    cfg.uplink.postgres_url = b.postgres_url.map(SecretUrl::new);
    cfg.uplink.redis_url = b.redis_url.map(SecretUrl::new);
    b.managers
}

/// Applies the stored bundle over `cfg` when it verifies; says what happened, and hands back
/// the bundle's manager devices for [`add_managers`] once the store is open.
pub fn apply(cfg: &mut Config) -> (SiteStatus, Vec<BundleManager>) {
    match load(&cfg.data_dir) {
        Ok(None) => (
            SiteStatus {
                state: "none",
                serial: None,
                reason: None,
                pending_serial: None,
            },
            Vec::new(),
        ),
        Ok(Some(b)) => {
            tracing::info!(site_id = %b.site_id, serial = b.serial, "site bundle verified and applied");
            let serial = b.serial;
            let copy = std::fs::read(cfg.data_dir.join(BUNDLE_FILE))
                .map_err(|e| SiteError::Read(cfg.data_dir.join(BUNDLE_FILE), e))
                .and_then(|bytes| write_atomic(&cfg.data_dir, APPLIED_FILE, &bytes));
            if let Err(e) = copy {
                tracing::warn!(error = %e, "cannot keep a copy of the applied site bundle");
            }
            let managers = set(cfg, b);
            let status = SiteStatus {
                state: "applied",
                serial: Some(serial),
                reason: None,
                pending_serial: None,
            };
            (status, managers)
        }
        Err(e) => {
            // The last bundle that verified, if any, still rules (checked against the pin again).
            let fallback = load_file(&cfg.data_dir, APPLIED_FILE).ok().flatten();
            let serial = fallback.as_ref().map(|b| b.serial);
            tracing::error!(error = %e, fallback_serial = ?serial, "site bundle REFUSED: not applied; running on the last applied bundle, or the config file when none");
            let managers = fallback.map(|b| set(cfg, b)).unwrap_or_default();
            let status = SiteStatus {
                state: "refused",
                serial,
                reason: Some(e.to_string()),
                pending_serial: None,
            };
            (status, managers)
        }
    }
}

/// Checks a pushed bundle (pinned key, content, serial above the stored one) and stores it
/// atomically for the next start.
pub fn accept_push(data_dir: &Path, json: &[u8]) -> Result<Bundle, SiteError> {
    let key = pinned(data_dir)?;
    let new = bundle::verify(json, &key)?;
    // The stored bundle's serial, when it still verifies; a refused one does not block a fix.
    let have = load(data_dir).ok().flatten().map(|b| b.serial);
    if let Some(have) = have {
        if new.serial <= have {
            return Err(SiteError::OldSerial {
                got: new.serial,
                have,
            });
        }
    }
    write_atomic(data_dir, BUNDLE_FILE, json)?;
    tracing::info!(site_id = %new.site_id, serial = new.serial, "pushed site bundle stored; applies at the next start");
    Ok(new)
}

/// Adds the bundle's manager devices that the store does not know yet, in one transaction;
/// returns the ids added. A device the box already has (same id, even revoked) is left as it
/// is: a bundle never rotates a secret nor revives a revoked device (ids are never reused).
pub fn add_managers(
    conn: &mut rusqlite::Connection,
    managers: &[BundleManager],
    now_ms: u64,
) -> Result<Vec<String>, crate::store::StoreError> {
    use crate::store::{devices, DeviceRow};
    use docket_core::Role;
    let tx = conn.transaction()?;
    let mut added = Vec::new();
    for m in managers {
        // check_content already refused a malformed secret; skip rather than trust it twice.
        let Some(secret) = m.secret_bytes() else {
            continue;
        };
        if devices::get(&tx, &m.id)?.is_some() {
            continue;
        }
        let row = DeviceRow {
            id: m.id.clone(),
            role: Role::Manager,
            stations: vec![],
            secret,
            created_at: now_ms,
            revoked_at: None,
        };
        devices::add(&tx, &row)?;
        added.push(m.id.clone());
    }
    tx.commit()?;
    Ok(added)
}

/// Writes `data_dir/name` so that a power cut leaves the old file or the new one, never a part.
fn write_atomic(data_dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SiteError> {
    let p = data_dir.join(name);
    let tmp = data_dir.join(format!("{name}.tmp"));
    let w = |e| SiteError::Write(p.clone(), e);
    {
        // Owner only: a bundle holds the manager secrets and head office's passwords.
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(w)?;
        f.write_all(bytes).map_err(w)?;
        f.sync_all().map_err(w)?;
    }
    std::fs::rename(&tmp, &p).map_err(w)?;
    if let Ok(d) = std::fs::File::open(data_dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{self, devices};

    fn manager(id: &str, byte: &str) -> BundleManager {
        BundleManager {
            id: id.into(),
            secret: byte.repeat(32),
        }
    }

    #[test]
    fn managers_are_added_once_and_never_rotate_or_revive() {
        let dir = std::env::temp_dir().join(format!("docket-site-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut conn = store::connect(&dir.join("docket.db")).unwrap();
        store::migrate(&mut conn, "cafe-1").unwrap();

        let added = add_managers(&mut conn, &[manager("tech", "ab")], 5).unwrap();
        assert_eq!(added, vec!["tech".to_owned()]);
        let row = devices::get(&conn, "tech").unwrap().unwrap();
        assert_eq!(row.role, docket_core::Role::Manager);
        assert_eq!(row.secret, [0xab; 32]);

        // Again, with another secret: nothing changes.
        assert!(add_managers(&mut conn, &[manager("tech", "cd")], 6)
            .unwrap()
            .is_empty());
        assert_eq!(
            devices::get(&conn, "tech").unwrap().unwrap().secret,
            [0xab; 32]
        );

        // Revoked stays revoked; a new id is added beside it.
        devices::revoke(&conn, "tech", 7).unwrap();
        let added = add_managers(
            &mut conn,
            &[manager("tech", "ab"), manager("tech-2", "ef")],
            8,
        )
        .unwrap();
        assert_eq!(added, vec!["tech-2".to_owned()]);
        assert_eq!(
            devices::get(&conn, "tech").unwrap().unwrap().revoked_at,
            Some(7)
        );
        drop(conn);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
