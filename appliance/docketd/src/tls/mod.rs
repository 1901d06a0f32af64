//! TLS on the LAN: the site CA, the certificate the box serves, and the rustls configurations of
//! the HTTPS and MQTT-over-TLS listeners.
//!
//! The site CA comes from the site bundle, else from `tls.ca_cert_file`/`ca_key_file`, else from
//! `<data_dir>/tls/`, where the box makes one at its first start (so that a box without a bundle
//! still serves HTTPS, and the tablets that trusted it keep trusting it). From it the box issues
//! itself a certificate for `docket.local`, its hostname, `tls.names` and every address it has,
//! valid [`ca::SERVER_DAYS`] days, and a new one ([`Tls::renew`]) when a third of that is left or
//! its addresses change (DHCP). A site that brings its own certificate (bundle or
//! `tls.cert_file`) has it served as it is.
//!
//! Owns the served certificate. Must not know HTTP or MQTT.

/// The site CA and what it issues live in docket-trust (the CLI makes the CA with the same code).
pub use docket_trust::ca;
pub mod landing;
pub(crate) mod names;
pub mod pinned;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{bail, Context};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

use crate::config::{OwnCert, TlsConfig};
use ca::SiteCa;

/// How often the box looks at its addresses and its certificate's age.
const RENEW_CHECK: Duration = Duration::from_secs(60);

/// The site CA as the landing page offers it.
#[derive(Clone)]
pub struct CaPublic {
    pub pem: String,
    pub der: Vec<u8>,
    pub fingerprint: [u8; 32],
}

/// What the box serves, and where it came from.
pub struct Tls {
    /// For HTTPS (ALPN `http/1.1`).
    pub http: Arc<ServerConfig>,
    /// For MQTT over TLS.
    pub mqtt: Arc<ServerConfig>,
    /// The site CA's certificate (absent when the site brings a certificate and no CA).
    pub ca: Option<CaPublic>,
    /// Where the CA came from: `bundle`, `file` or `box` (made here).
    pub ca_source: &'static str,
    served: Arc<Served>,
    issuer: Option<SiteCa>,
    extra_names: Vec<String>,
}

/// The certificate handed to every handshake, swapped on renewal.
#[derive(Debug)]
struct Served {
    current: RwLock<Current>,
}

#[derive(Debug)]
struct Current {
    key: Arc<CertifiedKey>,
    names: names::Names,
    /// Unix seconds the leaf expires at.
    not_after: i64,
}

impl ResolvesServerCert for Served {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .key
                .clone(),
        )
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certified(chain_pem: &str, key_pem: &str) -> anyhow::Result<(CertifiedKey, i64)> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .context("the certificate chain is not PEM")?;
    let Some(leaf) = chain.first() else {
        bail!("the certificate chain is empty");
    };
    let (_, parsed) =
        x509_parser::parse_x509_certificate(leaf).context("the certificate is not X.509")?;
    let not_after = parsed.validity().not_after.timestamp();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("the key is not PEM")?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .context("the key is not one rustls can sign with")?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match()
        .context("the key does not belong to the certificate")?;
    Ok((ck, not_after))
}

fn server_config(served: Arc<Served>, alpn: &[&[u8]]) -> anyhow::Result<Arc<ServerConfig>> {
    let mut c = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("rustls protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(served);
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(c))
}

fn read(p: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
}

/// Writes `text` to `path` (mode `mode`) through a temporary file and a rename.
fn write_private(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The box's own CA directory.
pub fn box_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls")
}

/// The site CA: the bundle's, the configured files', or the box's own (made now if missing).
fn site_ca(
    cfg: &TlsConfig,
    data_dir: &Path,
    site: (&str, &str),
) -> anyhow::Result<(SiteCa, &'static str)> {
    if let Some(ca) = &cfg.bundle_ca {
        return Ok((ca.clone(), "bundle"));
    }
    if let (Some(c), Some(k)) = (&cfg.ca_cert_file, &cfg.ca_key_file) {
        return Ok((
            SiteCa {
                cert_pem: read(c)?,
                key_pem: read(k)?,
            },
            "file",
        ));
    }
    let dir = box_dir(data_dir);
    let (cert, key) = (dir.join("site-ca.pem"), dir.join("site-ca.key"));
    if cert.exists() && key.exists() {
        return Ok((
            SiteCa {
                cert_pem: read(&cert)?,
                key_pem: read(&key)?,
            },
            "box",
        ));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let ca = ca::new_site_ca(site.0, site.1)?;
    write_private(&key, &ca.key_pem, 0o600)?;
    write_private(&cert, &ca.cert_pem, 0o644)?;
    tracing::warn!(dir = %dir.display(), "no site CA from a site bundle or tls.ca_cert_file: this box made its own; tablets must trust it (the landing page on plain HTTP)");
    Ok((ca, "box"))
}

impl Tls {
    /// Loads or makes what the box serves (blocking: file reads, key generation).
    pub fn start(
        cfg: &TlsConfig,
        data_dir: &Path,
        site_id: &str,
        site_name: &str,
    ) -> anyhow::Result<Tls> {
        let own = match (&cfg.bundle_own, &cfg.cert_file, &cfg.key_file) {
            (Some(o), _, _) => Some(o.clone()),
            (None, Some(c), Some(k)) => Some(OwnCert {
                chain_pem: read(c)?,
                key_pem: read(k)?,
            }),
            _ => None,
        };
        let has_ca = cfg.bundle_ca.is_some() || cfg.ca_cert_file.is_some() || own.is_none();
        let (issuer, ca_source) = if has_ca {
            let (ca, src) = site_ca(cfg, data_dir, (site_id, site_name))?;
            (Some(ca), src)
        } else {
            (None, "none")
        };
        let ca_public = match &issuer {
            Some(ca) => {
                let der = ca::der_of(&ca.cert_pem).context("the site CA certificate is not PEM")?;
                Some(CaPublic {
                    pem: ca.cert_pem.clone(),
                    fingerprint: ca::fingerprint(&der),
                    der,
                })
            }
            None => None,
        };
        let names = names::Names::now(&cfg.names);
        let (key, not_after) = match &own {
            Some(o) => certified(&o.chain_pem, &o.key_pem).context("the site's own certificate")?,
            None => issue(issuer.as_ref().context("no site CA")?, &names)?,
        };
        let served = Arc::new(Served {
            current: RwLock::new(Current {
                key: Arc::new(key),
                names,
                not_after,
            }),
        });
        Ok(Tls {
            http: server_config(served.clone(), &[b"http/1.1"])?,
            mqtt: server_config(served.clone(), &[])?,
            ca: ca_public,
            ca_source,
            // The site's own certificate is renewed by the site (a new bundle), not here.
            issuer: if own.is_some() { None } else { issuer },
            extra_names: cfg.names.clone(),
            served,
        })
    }

    /// The served leaf's expiry (Unix seconds).
    pub fn not_after(&self) -> i64 {
        self.served
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .not_after
    }

    /// The served chain's leaf (DER): what the box's own probes expect to see.
    pub fn leaf(&self) -> Vec<u8> {
        let c = self
            .served
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner());
        c.key.cert.first().map(|d| d.to_vec()).unwrap_or_default()
    }

    /// Issues a new certificate when a third of its life is left or the box's names changed;
    /// true if it did.
    pub fn renew_if_due(&self) -> anyhow::Result<bool> {
        let Some(issuer) = &self.issuer else {
            return Ok(false);
        };
        let names = names::Names::now(&self.extra_names);
        let (same, left) = {
            let c = self
                .served
                .current
                .read()
                .unwrap_or_else(|p| p.into_inner());
            (
                c.names == names,
                c.not_after - time::OffsetDateTime::now_utc().unix_timestamp(),
            )
        };
        if same && left > ca::SERVER_DAYS * 86_400 / 3 {
            return Ok(false);
        }
        let (key, not_after) = issue(issuer, &names)?;
        tracing::info!(names = ?names, "the box's certificate is issued anew");
        *self
            .served
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Current {
            key: Arc::new(key),
            names,
            not_after,
        };
        Ok(true)
    }

    /// Renews the certificate as needed until `stop`.
    pub async fn renew(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(RENEW_CHECK);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.renew_if_due()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot issue the box's certificate anew")
                }
                Err(e) => tracing::error!(error = %e, "the certificate renewal task failed"),
            }
        }
    }
}

fn issue(ca: &SiteCa, names: &names::Names) -> anyhow::Result<(CertifiedKey, i64)> {
    let issued = ca::issue_server(ca, &names.dns, &names.ips)?;
    certified(&issued.chain_pem, &issued.key_pem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn config() -> TlsConfig {
        crate::config::RawConfig::default()
            .validate()
            .expect("defaults")
            .tls
    }

    #[test]
    fn the_box_makes_its_ca_once_and_keeps_its_key_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = Tls::start(&config(), dir.path(), "s", "S").unwrap();
        let b = Tls::start(&config(), dir.path(), "s", "S").unwrap();
        assert_eq!(a.ca_source, "box");
        assert_eq!(
            a.ca.as_ref().unwrap().fingerprint,
            b.ca.as_ref().unwrap().fingerprint,
            "a restart keeps the CA the tablets trust"
        );
        let mode = |f: &str| {
            std::fs::metadata(box_dir(dir.path()).join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("site-ca.key"), 0o600);
        assert_eq!(mode("site-ca.pem"), 0o644);
    }

    #[test]
    fn a_certificate_is_issued_anew_when_it_ages_or_the_names_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut tls = Tls::start(&config(), dir.path(), "s", "S").unwrap();
        let first = tls.leaf();
        assert!(!tls.renew_if_due().unwrap(), "fresh, same names");
        assert_eq!(tls.leaf(), first);

        let soon = time::OffsetDateTime::now_utc().unix_timestamp() + 86_400;
        tls.served.current.write().unwrap().not_after = soon;
        assert!(tls.renew_if_due().unwrap(), "a day left");
        let second = tls.leaf();
        assert_ne!(second, first);
        assert!(tls.not_after() > soon + 20 * 86_400);

        tls.extra_names.push("kitchen.example.com".into());
        assert!(tls.renew_if_due().unwrap(), "a new name");
        assert_ne!(tls.leaf(), second);
    }

    #[test]
    fn a_sites_own_certificate_is_served_as_it_is_and_not_renewed_here() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca::new_site_ca("pub", "Public").unwrap();
        let own = ca::issue_server(&ca, &["box.example.com".into()], &[]).unwrap();
        let mut cfg = config();
        cfg.bundle_own = Some(OwnCert {
            chain_pem: own.chain_pem.clone(),
            key_pem: own.key_pem.clone(),
        });
        let tls = Tls::start(&cfg, dir.path(), "s", "S").unwrap();
        assert_eq!(tls.ca_source, "none");
        assert!(tls.ca.is_none());
        assert_eq!(tls.leaf(), ca::der_of(&own.chain_pem).unwrap());
        assert!(!tls.renew_if_due().unwrap());
        assert!(!box_dir(dir.path()).exists(), "no CA made");
        // A key that is not the certificate's is refused at start.
        let other = ca::issue_server(&ca, &["x.example.com".into()], &[]).unwrap();
        cfg.bundle_own = Some(OwnCert {
            chain_pem: own.chain_pem,
            key_pem: other.key_pem,
        });
        assert!(Tls::start(&cfg, dir.path(), "s", "S").is_err());
    }
}
