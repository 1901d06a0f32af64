//! The site bundle on the box: `<data_dir>/site-bundle.json`, trusted only when signed by the
//! pinned key `<data_dir>/site-key.pub` (see docs/technician.md).
//!
//! At start, [`apply`] verifies the bundle and lays its site id, name and uplink URLs over the
//! config file; a bundle signed by another key, tampered, or without a pinned key is refused
//! (error log line, nothing of it applied) and the refusal is shown under `site` in `/healthz`.
//! A newer bundle pushed to `POST /site/bundle` ([`accept_push`]) is checked the same way and
//! must carry a higher serial; it is stored and applied when docketd next starts (the response
//! says `"applies": "at restart"`).
//!
//! A bundle's TLS material is checked beyond its shape ([`check_tls`], docket-trust's: the site
//! CA's key belongs to its certificate, a site's own key to its certificate), at start and at
//! push alike, so a bundle the listeners could not use is refused like any bad bundle. The CLI
//! runs the same check before it signs one. What `/healthz` says of the bundle is docket-core's
//! [`SiteStatus`].

pub mod menu;

use std::io::Write;
use std::path::{Path, PathBuf};

use docket_core::bundle::{self, Bundle, BundleError, BundleManager};

use crate::config::{Config, OwnCert, SecretUrl};
use crate::tls::ca::SiteCa;
pub use docket_core::health::SiteStatus;
/// The check of a bundle's TLS material is docket-trust's: the CLI runs the same one before it
/// signs a bundle.
pub use docket_trust::{check_tls, TlsError};

pub const BUNDLE_FILE: &str = "site-bundle.json";
pub const KEY_FILE: &str = "site-key.pub";
/// A copy of the last bundle that verified at start: what a box falls back to when the bundle
/// file is later replaced by one it refuses (the store is bound to the site id it was made with).
pub const APPLIED_FILE: &str = "site-bundle.applied.json";

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
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Verifies a bundle's signature and content ([`bundle::verify`]) and its TLS material.
fn verify(json: &[u8], key: &ed25519_dalek::VerifyingKey) -> Result<Bundle, SiteError> {
    let b = bundle::verify(json, key)?;
    if let Some(t) = &b.tls {
        check_tls(t)?;
    }
    Ok(b)
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
    verify(&json, &key).map(Some)
}

/// Lays a verified bundle over `cfg` (its TLS over `cfg.tls`'s bundle fields); returns its
/// manager devices.
fn set(cfg: &mut Config, b: Bundle) -> Vec<BundleManager> {
    cfg.site_id = b.site_id;
    cfg.site_name = b.name;
    cfg.uplink.postgres_url = b.postgres_url.map(SecretUrl::new);
    cfg.uplink.redis_url = b.redis_url.map(SecretUrl::new);
    if let Some(t) = b.tls {
        cfg.tls.bundle_ca = Some(SiteCa {
            cert_pem: t.ca_cert_pem,
            key_pem: t.ca_key_pem,
        });
        cfg.tls.bundle_own = match (t.cert_pem, t.key_pem) {
            (Some(chain_pem), Some(key_pem)) => Some(OwnCert { chain_pem, key_pem }),
            _ => None,
        };
    }
    b.managers
}

/// Applies the stored bundle over `cfg` when it verifies; says what happened, and hands back
/// the bundle's manager devices for [`add_managers`] once the store is open.
pub fn apply(cfg: &mut Config) -> (SiteStatus, Vec<BundleManager>) {
    match load(&cfg.data_dir) {
        Ok(None) => (
            SiteStatus {
                state: "none".into(),
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
                state: "applied".into(),
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
                state: "refused".into(),
                serial,
                reason: Some(e.to_string()),
                pending_serial: None,
            };
            (status, managers)
        }
    }
}

/// Checks a pushed bundle (pinned key, content, TLS material, serial above the stored one) and
/// stores it atomically for the next start.
pub fn accept_push(data_dir: &Path, json: &[u8]) -> Result<Bundle, SiteError> {
    let key = pinned(data_dir)?;
    let new = verify(json, &key)?;
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
    use crate::tls::ca::{self, CaError};
    use docket_core::bundle::BundleTls;
    use ed25519_dalek::SigningKey;

    /// A fresh data directory of its own with the site key `key(1)` pinned in it.
    fn data_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("docket-site-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pubkey = bundle::key_text(key().verifying_key().as_bytes());
        std::fs::write(dir.join(KEY_FILE), pubkey).unwrap();
        dir
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[1; 32])
    }

    fn signed(serial: u64, tls: Option<BundleTls>) -> Vec<u8> {
        let b = Bundle {
            site_id: "cafe-1".into(),
            name: "Café One".into(),
            postgres_url: None,
            redis_url: None,
            issued_at_ms: 1,
            serial,
            managers: vec![],
            plaintext_uplink: false,
            tls,
        };
        serde_json::to_vec(&bundle::sign(b, &key())).unwrap()
    }

    fn tls_of(site_ca: &SiteCa, own: Option<(String, String)>) -> BundleTls {
        let (cert_pem, key_pem) = own.unzip();
        BundleTls {
            ca_cert_pem: site_ca.cert_pem.clone(),
            ca_key_pem: site_ca.key_pem.clone(),
            cert_pem,
            key_pem,
        }
    }

    fn config(dir: &Path) -> Config {
        let mut cfg = crate::config::RawConfig::default().validate().unwrap();
        cfg.data_dir = dir.to_owned();
        cfg
    }

    #[test]
    fn a_bundles_tls_is_laid_over_the_config() {
        let dir = data_dir("tls-applied");
        let site_ca = ca::new_site_ca("cafe-1", "Café One").unwrap();
        let own = ca::issue_server(&site_ca, &["pos.cafe-1.example".into()], &[]).unwrap();
        let pair = Some((own.chain_pem.clone(), own.key_pem.clone()));
        std::fs::write(
            dir.join(BUNDLE_FILE),
            signed(1, Some(tls_of(&site_ca, pair))),
        )
        .unwrap();
        let mut cfg = config(&dir);
        let (status, _) = apply(&mut cfg);
        assert_eq!(status.state, "applied", "{status:?}");
        let got = cfg.tls.bundle_ca.as_ref().unwrap();
        assert_eq!(
            (&got.cert_pem, &got.key_pem),
            (&site_ca.cert_pem, &site_ca.key_pem)
        );
        let got = cfg.tls.bundle_own.as_ref().unwrap();
        assert_eq!(
            (&got.chain_pem, &got.key_pem),
            (&own.chain_pem, &own.key_pem)
        );

        // Without a certificate of its own, only the CA.
        std::fs::write(
            dir.join(BUNDLE_FILE),
            signed(2, Some(tls_of(&site_ca, None))),
        )
        .unwrap();
        let mut cfg = config(&dir);
        assert_eq!(apply(&mut cfg).0.state, "applied");
        assert!(cfg.tls.bundle_ca.is_some() && cfg.tls.bundle_own.is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_ca_key_that_is_not_the_cas_is_refused_at_start_and_at_push() {
        let dir = data_dir("tls-mismatch");
        let (a, b) = (
            ca::new_site_ca("cafe-1", "A").unwrap(),
            ca::new_site_ca("cafe-1", "B").unwrap(),
        );
        let mixed = SiteCa {
            cert_pem: a.cert_pem.clone(),
            key_pem: b.key_pem.clone(),
        };
        // At start: refused with the reason, nothing of it applied.
        std::fs::write(dir.join(BUNDLE_FILE), signed(1, Some(tls_of(&mixed, None)))).unwrap();
        let mut cfg = config(&dir);
        let (status, _) = apply(&mut cfg);
        assert_eq!(status.state, "refused");
        let reason = status.reason.unwrap_or_default();
        assert!(
            reason.contains("site CA") && reason.contains("does not belong"),
            "{reason}"
        );
        assert!(cfg.tls.bundle_ca.is_none());
        assert_eq!(cfg.site_id, config(&dir).site_id);

        // At push: refused at once, and not stored.
        std::fs::write(dir.join(BUNDLE_FILE), signed(1, Some(tls_of(&a, None)))).unwrap();
        let e = accept_push(&dir, &signed(2, Some(tls_of(&mixed, None)))).unwrap_err();
        assert!(
            matches!(e, SiteError::Tls(TlsError::Ca(CaError::KeyMismatch))),
            "{e:?}"
        );
        assert_eq!(load(&dir).unwrap().unwrap().serial, 1);
        assert_eq!(
            accept_push(&dir, &signed(2, Some(tls_of(&a, None))))
                .unwrap()
                .serial,
            2
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_own_key_that_is_not_its_certificates_is_refused() {
        let dir = data_dir("tls-own-mismatch");
        let site_ca = ca::new_site_ca("cafe-1", "A").unwrap();
        let one = ca::issue_server(&site_ca, &["a.example".into()], &[]).unwrap();
        let two = ca::issue_server(&site_ca, &["b.example".into()], &[]).unwrap();
        let e = accept_push(
            &dir,
            &signed(
                1,
                Some(tls_of(&site_ca, Some((one.chain_pem, two.key_pem)))),
            ),
        )
        .unwrap_err();
        assert!(
            matches!(e, SiteError::Tls(TlsError::OwnKeyMismatch)),
            "{e:?}"
        );
        assert!(e.to_string().contains("own key does not belong"), "{e}");
        assert!(!dir.join(BUNDLE_FILE).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

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
