//! Whom the CLI trusts for the box's certificate, and what the box presented.
//!
//! The root store holds only the site CA (`site-ca.pem`); a site with a certificate of its own
//! adds the public CAs (webpki-roots). `--box-ca FINGERPRINT` also accepts a chain that verifies
//! under the CA of that fingerprint the box itself presents (a box that has not had this site's
//! CA yet). With no CA at all the certificate is recorded and not checked: doctor then reads
//! what carries no secret, and everything that does is refused ([`super::Link::secret`]).
//! Every handshake's chain and verdict are kept, so a refusal is told in words. The rustls
//! verifier is docket-trust's (the box's probes use it too); this module gives it the judging
//! ([`ChainCheck`]). Sends nothing itself.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use docket_trust::ca;
use docket_trust::verify::{self, ChainCheck, Presented};
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{pem::PemObject, CertificateDer};
use rustls::{CertificateError, RootCertStore};

use crate::sitetls::{self, der_info};

/// What the box's certificate must chain to.
#[derive(Clone, Default)]
pub struct Trust {
    /// The site CA's certificate (PEM) and where it came from.
    site_ca: Option<(String, String)>,
    /// The public CAs too: the site serves a certificate of its own.
    public: bool,
    /// A CA the technician vouched for by its SHA-256 (`--box-ca`).
    box_ca: Option<[u8; 32]>,
}

impl Trust {
    /// Nothing: the certificate is recorded, not checked.
    pub fn unchecked() -> Trust {
        Trust::default()
    }

    /// The site directory's CA; with the public CAs when the site has its own certificate.
    pub fn of_site(dir: &Path) -> anyhow::Result<Trust> {
        let Some(site_ca) = sitetls::read_ca(dir)? else {
            bail!("{} has no site CA, so the box's certificate cannot be checked: make it with `docket site ca --dir {}`; the box gets it with the next bundle", dir.display(), dir.display());
        };
        Ok(Trust {
            site_ca: Some((
                site_ca.cert_pem,
                dir.join(sitetls::CA_CERT).display().to_string(),
            )),
            public: sitetls::read_own(dir)?.is_some(),
            box_ca: None,
        })
    }

    /// A CA certificate file (`--ca`).
    pub fn of_file(p: &Path) -> anyhow::Result<Trust> {
        let pem = std::fs::read_to_string(p)
            .with_context(|| format!("cannot read the CA certificate {}", p.display()))?;
        sitetls::cert_info(&pem)
            .with_context(|| format!("{} is not a PEM certificate", p.display()))?;
        Ok(Trust {
            site_ca: Some((pem, p.display().to_string())),
            ..Trust::default()
        })
    }

    /// Also accepts a chain under the presented CA whose SHA-256 is `fingerprint` (`AB:CD:…` or
    /// plain hex).
    pub fn and_box_ca(mut self, fingerprint: &str) -> anyhow::Result<Trust> {
        let hex: String = fingerprint.chars().filter(|c| *c != ':').collect();
        let fp = hex::decode(&hex)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .with_context(|| format!("--box-ca {fingerprint:?} is not a SHA-256 fingerprint (32 hex pairs, as AB:CD:…)"))?;
        self.box_ca = Some(fp);
        Ok(self)
    }

    /// Is the box's certificate checked at all?
    pub fn checks(&self) -> bool {
        self.site_ca.is_some() || self.public || self.box_ca.is_some()
    }

    /// The site CA's fingerprint, when there is one.
    pub fn site_fingerprint(&self) -> Option<String> {
        let (pem, _) = self.site_ca.as_ref()?;
        sitetls::cert_info(pem).ok().map(|i| i.fingerprint)
    }

    /// What the box's certificate was checked against, in words.
    pub fn describe(&self) -> String {
        let site = self
            .site_fingerprint()
            .map(|fp| format!("this site's CA (SHA-256 {fp})"));
        match (site, self.public) {
            (Some(s), true) => format!("the public CAs and {s}"),
            (Some(s), false) => s,
            (None, true) => "the public CAs".into(),
            (None, false) => "nothing".into(),
        }
    }

    /// A client configuration that checks as this trust says and records every handshake in
    /// `seen`.
    pub fn client_config(
        &self,
        seen: Arc<Mutex<Option<Seen>>>,
    ) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        if self.public {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if let Some((pem, from)) = &self.site_ca {
            for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots
                    .add(c.with_context(|| format!("{from} is not a PEM certificate"))?)
                    .with_context(|| format!("{from} is not a CA certificate"))?;
            }
        }
        let inner = if roots.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()?,
            )
        };
        let recording = Recording {
            inner,
            box_ca: self.box_ca,
            provider: provider.clone(),
            seen,
        };
        Ok(verify::client_config(provider, recording)?)
    }

    /// Why the box's certificate was refused, in words for a technician.
    pub fn explain(&self, seen: &Seen, addr: &super::Addr) -> String {
        let host = addr.host.as_str();
        use CertificateError as C;
        let leaf = seen.chain.first().and_then(|d| der_info(d).ok());
        let top = seen
            .chain
            .last()
            .map(|d| ca::fingerprint_text(&ca::fingerprint(d)))
            .unwrap_or_default();
        let date = |l: &Option<sitetls::CertInfo>| {
            l.as_ref()
                .map(|l| l.not_after.clone())
                .unwrap_or_else(|| "?".into())
        };
        match &seen.error {
            Some(rustls::Error::InvalidCertificate(c)) => match c {
                C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                    "the box's certificate is not for {host}: it names {}. Use one of those (the box's LAN address, docket.local or its host name)",
                    leaf.map(|l| l.names.join(", ")).unwrap_or_else(|| "?".into())
                ),
                C::Expired | C::ExpiredContext { .. } => format!(
                    "the box's certificate expired on {}: check the box's clock and this laptop's (docket doctor's clock line); docketd issues itself a new one when it starts",
                    date(&leaf)
                ),
                C::NotValidYet | C::NotValidYetContext { .. } => format!(
                    "the box's certificate is not valid yet (it runs until {}): the box's clock or this laptop's is wrong",
                    date(&leaf)
                ),
                _ => self.not_ours(&top, addr),
            },
            Some(other) => format!("the TLS handshake with the box failed: {other}"),
            None => "the box's certificate was accepted".into(),
        }
    }

    fn not_ours(&self, top: &str, addr: &super::Addr) -> String {
        let (host, given) = (&addr.host, &addr.given);
        let ours = match (&self.site_ca, self.public) {
            (Some(_), false) => "this site's CA",
            (Some(_), true) => "a public CA nor from this site's CA",
            (None, _) => "the CA given",
        };
        let neither = if self.public {
            "neither from"
        } else {
            "not from"
        };
        let mine = match (&self.site_ca, self.site_fingerprint()) {
            (Some((_, from)), Some(fp)) => format!(" (this site's CA, {from}, is {fp})"),
            _ => String::new(),
        };
        format!(
            "the box's certificate is {neither} {ours}: fingerprint {top}{mine}. Is {host} this site's box? A box that has not had this site's bundle yet serves a certificate from a CA it made itself: compare {top} with the fingerprint on the box's landing page (http://{host}/), and if they are the same give it this site's bundle: docket site push --dir SITE --box-ca {top} {given}"
        )
    }
}

/// What the box presented in the last handshake, and the verdict.
#[derive(Debug, Clone)]
pub struct Seen {
    /// DER, the box's certificate first.
    pub chain: Vec<Vec<u8>>,
    /// `None`: accepted.
    pub error: Option<rustls::Error>,
    /// Was it checked (or only recorded)? Only the tests read it today (doctor goes by
    /// [`Trust::checks`]); kept so a handshake's record says so itself.
    #[cfg_attr(not(test), allow(dead_code))]
    pub checked: bool,
}

#[derive(Debug)]
struct Recording {
    inner: Option<Arc<WebPkiServerVerifier>>,
    box_ca: Option<[u8; 32]>,
    provider: Arc<CryptoProvider>,
    seen: Arc<Mutex<Option<Seen>>>,
}

impl Recording {
    /// The verdict alone (recorded by [`ChainCheck::check`]).
    fn judge(&self, p: Presented<'_>) -> Result<ServerCertVerified, rustls::Error> {
        let first = match &self.inner {
            Some(v) => webpki(v, p),
            None if self.box_ca.is_none() => return Ok(ServerCertVerified::assertion()),
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        };
        let (Err(e), Some(fp)) = (&first, self.box_ca) else {
            return first;
        };
        // Only an unknown issuer may be cured by the vouched-for CA; a wrong name or an expired
        // certificate stays refused.
        if !matches!(
            e,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ) {
            return first;
        }
        let Some(vouched) = p
            .intermediates
            .iter()
            .find(|c| ca::fingerprint(c.as_ref()) == fp)
        else {
            return first;
        };
        let mut roots = RootCertStore::empty();
        roots.add(vouched.clone().into_owned())?;
        let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        webpki(&v, p)
    }
}

/// rustls' own chain check, under `v`'s roots.
fn webpki(v: &WebPkiServerVerifier, p: Presented<'_>) -> Result<ServerCertVerified, rustls::Error> {
    v.verify_server_cert(p.end_entity, p.intermediates, p.name, p.ocsp, p.now)
}

impl ChainCheck for Recording {
    fn check(&self, p: Presented<'_>) -> Result<ServerCertVerified, rustls::Error> {
        let r = self.judge(p);
        let chain = std::iter::once(p.end_entity)
            .chain(p.intermediates)
            .map(|c| c.as_ref().to_vec())
            .collect();
        let checked = self.inner.is_some() || self.box_ca.is_some();
        if let Ok(mut g) = self.seen.lock() {
            *g = Some(Seen {
                chain,
                error: r.as_ref().err().cloned(),
                checked,
            });
        }
        r
    }
}
