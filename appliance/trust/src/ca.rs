//! The site CA and the certificates it issues: made with rcgen, ECDSA P-256 (what Android,
//! iPadOS, Chromium and every MQTT client take).
//!
//! `docket site init` makes a site's CA ([`new_site_ca`]) and the site bundle carries it to the
//! box; the box issues itself a short-lived server certificate from it ([`issue_server`]) for
//! its names and addresses, and issues a new one before it expires or when its addresses
//! change. Pure functions of their inputs and the clock: no files; must not load or serve.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{pem::PemObject, CertificateDer};
use sha2::{Digest, Sha256};

/// How long a site CA is valid. Devices trust it once, by hand or by MDM: long-lived, like any
/// private root.
pub const CA_DAYS: i64 = 20 * 365;
/// How long a server certificate the box issues itself is valid (well under the 398 days
/// Apple's devices accept).
pub const SERVER_DAYS: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot make a certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("not a PEM certificate")]
    NotPem,
    #[error("the site CA's key does not belong to its certificate")]
    KeyMismatch,
}

/// A site CA: its certificate and private key, both PEM.
#[derive(Clone)]
pub struct SiteCa {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for SiteCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteCa").finish_non_exhaustive()
    }
}

/// A server certificate and its key, PEM; `chain_pem` is the leaf then the site CA.
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

fn days(n: i64) -> time::Duration {
    time::Duration::days(n)
}

/// Docket's subject (`O=Docket, CN=common_name`) and a validity from `back` ago to `ahead`:
/// every certificate a site issues says whose it is the same way, and is valid a little in the
/// past for a clock that is behind.
fn params(common_name: String, back: time::Duration, ahead: time::Duration) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Docket");
    dn.push(DnType::CommonName, common_name);
    p.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - back;
    p.not_after = now + ahead;
    p
}

/// A new site CA for `site_id` (its name says whose it is when a tablet lists trusted CAs).
pub fn new_site_ca(site_id: &str, site_name: &str) -> Result<SiteCa, CaError> {
    let key = KeyPair::generate()?;
    let mut p = params(
        format!("Docket site CA: {site_name} ({site_id})"),
        days(1),
        days(CA_DAYS),
    );
    // It signs the box's server certificates and nothing under them.
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(&key)?;
    Ok(SiteCa {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A server certificate from `ca` for `dns` names and `ips`, valid from an hour ago (a box whose
/// clock is a little behind) for [`SERVER_DAYS`].
pub fn issue_server(ca: &SiteCa, dns: &[String], ips: &[IpAddr]) -> Result<Issued, CaError> {
    let ca_key = KeyPair::from_pem(&ca.key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, &ca_key)?;
    if public_key_of(&ca.cert_pem)? != rcgen::PublicKeyData::subject_public_key_info(&ca_key) {
        return Err(CaError::KeyMismatch);
    }
    let key = KeyPair::generate()?;
    let common_name = dns
        .first()
        .cloned()
        .unwrap_or_else(|| "docket.local".into());
    let mut p = params(common_name, time::Duration::hours(1), days(SERVER_DAYS));
    p.subject_alt_names = dns
        .iter()
        .filter_map(|d| d.clone().try_into().ok().map(SanType::DnsName))
        .chain(ips.iter().map(|ip| SanType::IpAddress(*ip)))
        .collect();
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    let cert = p.signed_by(&key, &issuer)?;
    Ok(Issued {
        chain_pem: format!("{}{}", cert.pem(), ca.cert_pem),
        key_pem: key.serialize_pem(),
    })
}

/// The subject public key (DER) of a PEM certificate.
fn public_key_of(cert_pem: &str) -> Result<Vec<u8>, CaError> {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|_| CaError::NotPem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|_| CaError::NotPem)?;
    Ok(cert.public_key().raw.to_vec())
}

/// The DER of the first certificate in `pem`.
pub fn der_of(pem: &str) -> Result<Vec<u8>, CaError> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|d| d.to_vec())
        .map_err(|_| CaError::NotPem)
}

/// SHA-256 of a certificate's DER: what a person compares on the tablet's "install certificate"
/// screen.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// A fingerprint as the devices show it: upper-case hex pairs joined by colons.
pub fn fingerprint_text(fp: &[u8; 32]) -> String {
    fp.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use std::sync::Arc;

    fn verify(chain_pem: &str, ca: &SiteCa, name: &str) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(der_of(&ca.cert_pem).unwrap()))
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let v =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(chain_pem.as_bytes())
                .map(|c| c.unwrap())
                .collect();
        let server = rustls_pki_types::ServerName::try_from(name.to_owned()).unwrap();
        v.verify_server_cert(
            &certs[0],
            &certs[1..],
            &server,
            &[],
            rustls_pki_types::UnixTime::now(),
        )
        .map(|_| ())
    }

    #[test]
    fn a_server_certificate_verifies_against_its_site_ca_for_its_names_only() {
        let ca = new_site_ca("demo", "Demo Bistro").unwrap();
        let issued = issue_server(
            &ca,
            &["docket.local".into(), "box-1".into()],
            &["192.168.1.20".parse().unwrap()],
        )
        .unwrap();
        verify(&issued.chain_pem, &ca, "docket.local").unwrap();
        verify(&issued.chain_pem, &ca, "box-1").unwrap();
        verify(&issued.chain_pem, &ca, "192.168.1.20").unwrap();
        assert!(verify(&issued.chain_pem, &ca, "192.168.1.21").is_err());
        assert!(verify(&issued.chain_pem, &ca, "evil.example").is_err());
        // Another site's CA does not vouch for it.
        let other = new_site_ca("other", "Other").unwrap();
        assert!(verify(&issued.chain_pem, &other, "docket.local").is_err());
    }

    #[test]
    fn a_ca_key_that_is_not_the_certificates_is_refused() {
        let a = new_site_ca("a", "A").unwrap();
        let b = new_site_ca("b", "B").unwrap();
        let mixed = SiteCa {
            cert_pem: a.cert_pem,
            key_pem: b.key_pem,
        };
        assert!(matches!(
            issue_server(&mixed, &["docket.local".into()], &[]),
            Err(CaError::KeyMismatch)
        ));
    }

    #[test]
    fn fingerprints_read_as_devices_show_them() {
        let fp = fingerprint(b"x");
        let t = fingerprint_text(&fp);
        assert_eq!(t.len(), 32 * 3 - 1);
        assert!(t.starts_with("2D:71:16:42"), "{t}");
    }
}
