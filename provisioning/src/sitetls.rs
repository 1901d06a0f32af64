//! The site's TLS material in the site directory: the site CA (`site-ca.pem`, 0644, and
//! `site-ca.key`, 0600), made once and never replaced (tablets trust it), and a certificate of
//! the site's own (`own-cert.pem`, `own-cert.key`, 0600), e.g. from a public CA by DNS-01. Every
//! bundle carries them to the box. Reading certificates (fingerprint, names, expiry) for the
//! technician is here too; nothing here talks to a box.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use docket_core::bundle::BundleTls;
use docket_trust::ca::{self, SiteCa};

use crate::sitedir::{write_secret, write_with_mode, SiteFile};

pub const CA_CERT: &str = "site-ca.pem";
pub const CA_KEY: &str = "site-ca.key";
pub const OWN_CERT: &str = "own-cert.pem";
pub const OWN_KEY: &str = "own-cert.key";

/// The site CA in `dir`, when it has one. One file without the other is an error: the pair was
/// broken by hand, and making a new CA would orphan every tablet that trusts the old one.
pub fn read_ca(dir: &Path) -> anyhow::Result<Option<SiteCa>> {
    let (cp, kp) = (dir.join(CA_CERT), dir.join(CA_KEY));
    match (read_if_there(&cp)?, read_if_there(&kp)?) {
        (None, None) => Ok(None),
        (Some(cert_pem), Some(key_pem)) => Ok(Some(SiteCa { cert_pem, key_pem })),
        (Some(_), None) => bail!("{} is there but {} is not: restore it from your backup of the site directory (a new CA would not be trusted by the tablets that trust this one)", cp.display(), kp.display()),
        (None, Some(_)) => bail!("{} is there but {} is not: restore it from your backup of the site directory", kp.display(), cp.display()),
    }
}

fn read_if_there(p: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(p) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
    }
}

/// The site CA in `dir`; made (and `true`) when there is none. Never replaces one.
pub fn ensure_ca(dir: &Path, site: &SiteFile) -> anyhow::Result<(SiteCa, bool)> {
    if let Some(ca) = read_ca(dir)? {
        return Ok((ca, false));
    }
    let ca = ca::new_site_ca(&site.site_id, &site.name).context("cannot make the site CA")?;
    // The key first, create-new: two commands racing cannot both make one.
    let kp = dir.join(CA_KEY);
    create_new(&kp, &ca.key_pem, 0o600)?;
    if let Err(e) = create_new(&dir.join(CA_CERT), &ca.cert_pem, 0o644) {
        let _ = std::fs::remove_file(&kp);
        return Err(e);
    }
    Ok((ca, true))
}

fn create_new(p: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let w = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(p)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    };
    w().with_context(|| format!("cannot create {}", p.display()))
}

/// The site's own certificate chain and key, when it has recorded them.
pub fn read_own(dir: &Path) -> anyhow::Result<Option<(String, String)>> {
    match (
        read_if_there(&dir.join(OWN_CERT))?,
        read_if_there(&dir.join(OWN_KEY))?,
    ) {
        (Some(c), Some(k)) => Ok(Some((c, k))),
        (None, None) => Ok(None),
        _ => bail!(
            "{} and {} go together: run `docket site tls --cert FILE --key FILE` again, or --clear",
            dir.join(OWN_CERT).display(),
            dir.join(OWN_KEY).display()
        ),
    }
}

/// What a bundle carries: the CA and the own certificate, checked as the box will check them.
pub fn bundle_tls(ca: &SiteCa, own: Option<(String, String)>) -> anyhow::Result<BundleTls> {
    let (cert_pem, key_pem) = own.unzip();
    let t = BundleTls {
        ca_cert_pem: ca.cert_pem.clone(),
        ca_key_pem: ca.key_pem.clone(),
        cert_pem,
        key_pem,
    };
    docket_trust::check_tls(&t)?;
    Ok(t)
}

/// Records the site's own certificate (replacing the one before: they are renewed every few
/// months); `None` clears it. The chain is checked (PEM, the key belongs to its first
/// certificate, not expired) before anything is written.
pub fn record_own(dir: &Path, own: Option<(String, String)>) -> anyhow::Result<Option<CertInfo>> {
    let Some((chain, key)) = own else {
        for f in [OWN_CERT, OWN_KEY] {
            match std::fs::remove_file(dir.join(f)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e)
                        .with_context(|| format!("cannot remove {}", dir.join(f).display()))
                }
                _ => {}
            }
        }
        return Ok(None);
    };
    let t = BundleTls {
        cert_pem: Some(chain.clone()),
        key_pem: Some(key.clone()),
        ..scratch_ca()?
    };
    // The PEM rules the bundle will be held to, then what the box will check.
    docket_core::bundle::check_content(&docket_core::bundle::Bundle {
        site_id: "probe".into(),
        name: String::new(),
        postgres_url: None,
        redis_url: None,
        issued_at_ms: 0,
        serial: 0,
        managers: vec![],
        plaintext_uplink: false,
        tls: Some(t.clone()),
    })?;
    let leaf = cert_info(&chain)?;
    if leaf.days_left() < 0 {
        bail!(
            "this certificate expired on {}: renew it first",
            leaf.not_after
        );
    }
    docket_trust::check_tls(&t)?;
    write_secret(&dir.join(OWN_KEY), key.as_bytes())?;
    write_public(&dir.join(OWN_CERT), chain.as_bytes())?;
    Ok(Some(leaf))
}

/// A throwaway CA, so that the own certificate can be checked alone.
fn scratch_ca() -> anyhow::Result<BundleTls> {
    let c = ca::new_site_ca("check", "check")?;
    Ok(BundleTls {
        ca_cert_pem: c.cert_pem,
        ca_key_pem: c.key_pem,
        cert_pem: None,
        key_pem: None,
    })
}

/// Writes a file anyone may read (a certificate): 0644.
fn write_public(p: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_with_mode(p, bytes, 0o644)
}

/// A certificate as the technician needs to see it.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// SHA-256 of its DER, as devices show it (`AB:CD:…`).
    pub fingerprint: String,
    pub subject: String,
    /// Its DNS names and IP addresses.
    pub names: Vec<String>,
    /// `2045-03-17`.
    pub not_after: String,
    pub not_after_unix: i64,
}

impl CertInfo {
    /// Whole days until it expires (negative once it has).
    pub fn days_left(&self) -> i64 {
        let now = crate::sitedir::now_ms() as i64 / 1000;
        (self.not_after_unix - now).div_euclid(86_400)
    }
}

/// The first certificate of `pem`, read.
pub fn cert_info(pem: &str) -> anyhow::Result<CertInfo> {
    let der = ca::der_of(pem).context("not a PEM certificate")?;
    der_info(&der)
}

/// A DER certificate, read.
pub fn der_info(der: &[u8]) -> anyhow::Result<CertInfo> {
    use x509_parser::extensions::GeneralName;
    let (_, c) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| anyhow::anyhow!("not an X.509 certificate: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push((*d).to_owned()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => names.push(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b)?).to_string()),
                    16 => {
                        names.push(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b)?).to_string())
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let not_after = c.validity().not_after;
    Ok(CertInfo {
        fingerprint: ca::fingerprint_text(&ca::fingerprint(der)),
        subject: c.subject().to_string(),
        names,
        not_after: not_after.to_datetime().date().to_string(),
        not_after_unix: not_after.timestamp(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn site() -> SiteFile {
        SiteFile {
            site_id: "cafe-1".into(),
            name: "Café One".into(),
            serial: 0,
            postgres_url: None,
            redis_url: None,
            managers: vec![],
            plaintext_uplink: false,
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_ca_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, made) = ensure_ca(dir.path(), &site()).unwrap();
        assert!(made);
        assert_eq!(mode(&dir.path().join(CA_KEY)), 0o600);
        assert_eq!(mode(&dir.path().join(CA_CERT)), 0o644);
        let (again, made) = ensure_ca(dir.path(), &site()).unwrap();
        assert!(!made);
        assert_eq!(
            (again.cert_pem, again.key_pem),
            (ca.cert_pem.clone(), ca.key_pem)
        );
        let info = cert_info(&ca.cert_pem).unwrap();
        assert!(info.subject.contains("cafe-1"), "{}", info.subject);
        assert!(info.days_left() > 19 * 365);

        // Half a CA is never completed with a new one.
        std::fs::remove_file(dir.path().join(CA_KEY)).unwrap();
        let e = ensure_ca(dir.path(), &site()).unwrap_err().to_string();
        assert!(e.contains("restore it from your backup"), "{e}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(CA_CERT)).unwrap(),
            ca.cert_pem
        );
    }

    #[test]
    fn an_own_certificate_is_checked_recorded_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = ca::new_site_ca("public", "A public CA").unwrap();
        let one = ca::issue_server(&issuer, &["pos.cafe-1.example".into()], &[]).unwrap();
        let two = ca::issue_server(&issuer, &["pos.cafe-1.example".into()], &[]).unwrap();

        let e = record_own(
            dir.path(),
            Some((one.chain_pem.clone(), two.key_pem.clone())),
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("own key does not belong"),
            "{e:#}"
        );
        let e =
            record_own(dir.path(), Some((one.key_pem.clone(), one.key_pem.clone()))).unwrap_err();
        assert!(format!("{e:#}").contains("cert_pem"), "{e:#}");
        assert!(read_own(dir.path()).unwrap().is_none(), "nothing written");

        let info = record_own(
            dir.path(),
            Some((one.chain_pem.clone(), one.key_pem.clone())),
        )
        .unwrap()
        .unwrap();
        assert_eq!(info.names, vec!["pos.cafe-1.example".to_owned()]);
        assert_eq!(mode(&dir.path().join(OWN_KEY)), 0o600);
        assert_eq!(
            read_own(dir.path()).unwrap(),
            Some((one.chain_pem, one.key_pem))
        );
        record_own(dir.path(), None).unwrap();
        assert!(read_own(dir.path()).unwrap().is_none());
        record_own(dir.path(), None).unwrap();
    }
}
