//! A site bundle's TLS material, checked beyond its PEM framing (which docket-core checks) as
//! the box will use it: the box runs [`check_tls`] at start and on every push, the CLI before it
//! signs a bundle, so a bundle the listeners could not use is refused before it reaches one.
//! Pure: no files; must not load or serve anything.

use docket_core::bundle::BundleTls;

use crate::ca::{self, CaError, SiteCa};

/// Why a bundle's TLS material cannot be used (its PEM framing is checked in docket-core).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the bundle's site CA cannot issue the box's certificate: {0}")]
    Ca(#[source] CaError),
    #[error("the bundle's own certificate or key is not PEM the box can read")]
    OwnNotPem,
    #[error("the bundle's own key does not belong to the first certificate of its chain")]
    OwnKeyMismatch,
    #[error("the bundle's own certificate and key cannot be served")]
    Own(#[source] rustls::Error),
}

/// Checks what PEM framing cannot: the site CA's key belongs to its certificate (the box issues
/// itself a certificate with it, as it will at start) and a site's own key belongs to the first
/// certificate of its chain (as the HTTPS listener loads them).
pub fn check_tls(t: &BundleTls) -> Result<(), TlsError> {
    let site_ca = SiteCa {
        cert_pem: t.ca_cert_pem.clone(),
        key_pem: t.ca_key_pem.clone(),
    };
    ca::issue_server(&site_ca, &["docket.local".into()], &[]).map_err(TlsError::Ca)?;
    if let (Some(chain), Some(key)) = (&t.cert_pem, &t.key_pem) {
        own_key_belongs(chain, key)?;
    }
    Ok(())
}

fn own_key_belongs(chain_pem: &str, key_pem: &str) -> Result<(), TlsError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::OwnNotPem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| TlsError::OwnNotPem)?;
    let provider = rustls::crypto::ring::default_provider();
    match rustls::sign::CertifiedKey::from_der(chain, key, &provider) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::OwnKeyMismatch),
        Err(e) => Err(TlsError::Own(e)),
    }
}
