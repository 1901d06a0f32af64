//! A bundle's TLS material: the site CA and a site's own certificate, PEM. Checked here for
//! shape only (framing, kind, size), since docket-core parses no X.509; whether a key belongs
//! to its certificate is checked where certificates are parsed (docketd's `site::check_tls`,
//! which the CLI runs too before it signs).

use serde::{Deserialize, Serialize};

use super::BundleError;

/// A site's TLS material, all PEM. `cert_pem` (a chain: the site's certificate first, e.g. from
/// a public CA by DNS-01) and `key_pem` come together or not at all.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleTls {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_pem: Option<String>,
}

impl std::fmt::Debug for BundleTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleTls")
            .field(
                "ca_cert_pem",
                &format_args!("<{} bytes>", self.ca_cert_pem.len()),
            )
            .field("ca_key_pem", &"<redacted>")
            .field("own_cert", &self.cert_pem.is_some())
            .finish()
    }
}

/// Bounds each PEM field of [`BundleTls`] (a chain of a few certificates is a few KiB).
pub const MAX_PEM_BYTES: usize = 64 * 1024;

/// What a PEM field must hold.
#[derive(Clone, Copy)]
enum PemKind {
    /// Exactly one certificate.
    OneCertificate,
    /// One or more certificates (a chain).
    Certificates,
    /// Exactly one unencrypted private key (PKCS#8, SEC1 or PKCS#1).
    PrivateKey,
}

/// Checks `text`'s PEM framing against `kind`, without decoding: every `-----BEGIN L-----` has
/// its `-----END L-----`, bodies are base64 only, labels are what `kind` wants. Text outside the
/// blocks is ignored, as PEM readers do.
fn check_pem(text: &str, kind: PemKind) -> Result<(), &'static str> {
    if text.len() > MAX_PEM_BYTES {
        return Err("larger than 64 KiB");
    }
    let mut labels = Vec::new();
    let mut open: Option<&str> = None;
    for line in text.lines().map(str::trim) {
        match open {
            None => {
                if let Some(l) = line.strip_prefix("-----BEGIN ") {
                    open = Some(l.strip_suffix("-----").ok_or("a BEGIN line is cut short")?);
                } else if line.starts_with("-----END ") {
                    return Err("an END line without its BEGIN");
                }
            }
            Some(label) => {
                if let Some(l) = line.strip_prefix("-----END ") {
                    if l.strip_suffix("-----") != Some(label) {
                        return Err("a block's END line does not match its BEGIN");
                    }
                    labels.push(label);
                    open = None;
                } else if !line
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
                {
                    return Err("a block holds something other than base64 (an encrypted key?)");
                }
            }
        }
    }
    if open.is_some() {
        return Err("a block has no END line");
    }
    let certs = labels.iter().filter(|l| **l == "CERTIFICATE").count();
    let keys = labels
        .iter()
        .filter(|l| matches!(**l, "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY"))
        .count();
    match kind {
        PemKind::OneCertificate if certs == 1 && labels.len() == 1 => Ok(()),
        PemKind::OneCertificate => Err("not one PEM certificate"),
        PemKind::Certificates if certs >= 1 && certs == labels.len() => Ok(()),
        PemKind::Certificates => Err("not PEM certificates only"),
        PemKind::PrivateKey if keys == 1 && labels.len() == 1 => Ok(()),
        PemKind::PrivateKey if labels.contains(&"ENCRYPTED PRIVATE KEY") => {
            Err("an encrypted private key: give it without a passphrase")
        }
        PemKind::PrivateKey => Err("not one PEM private key"),
    }
}

/// Checks the shape of a bundle's TLS material.
pub(super) fn check_tls(t: &BundleTls) -> Result<(), BundleError> {
    let bad = |field: &'static str| move |why: &'static str| BundleError::BadTls { field, why };
    check_pem(&t.ca_cert_pem, PemKind::OneCertificate).map_err(bad("ca_cert_pem"))?;
    check_pem(&t.ca_key_pem, PemKind::PrivateKey).map_err(bad("ca_key_pem"))?;
    match (&t.cert_pem, &t.key_pem) {
        (None, None) => Ok(()),
        (Some(c), Some(k)) => {
            check_pem(c, PemKind::Certificates).map_err(bad("cert_pem"))?;
            check_pem(k, PemKind::PrivateKey).map_err(bad("key_pem"))
        }
        (Some(_), None) => Err(bad("key_pem")("missing: a certificate needs its key")),
        (None, Some(_)) => Err(bad("cert_pem")("missing: a key needs its certificate")),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::tests::{bundle, key};
    use super::super::{sign, verify, Bundle};
    use super::*;

    pub(crate) const CERT: &str =
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\nAbC+/w==\n-----END CERTIFICATE-----\n";
    pub(crate) const KEY: &str =
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n";

    pub(crate) fn tls() -> BundleTls {
        BundleTls {
            ca_cert_pem: CERT.into(),
            ca_key_pem: KEY.into(),
            cert_pem: None,
            key_pem: None,
        }
    }

    fn check_tls_of(t: BundleTls) -> Result<Bundle, BundleError> {
        let mut b = bundle();
        b.tls = Some(t);
        verify(
            &serde_json::to_vec(&sign(b, &key(1))).unwrap(),
            &key(1).verifying_key(),
        )
    }

    #[test]
    fn tls_is_signed_and_round_trips() {
        let mut b = bundle();
        b.tls = Some(BundleTls {
            cert_pem: Some(format!("{CERT}{CERT}")),
            key_pem: Some(KEY.replace("PRIVATE KEY", "EC PRIVATE KEY")),
            ..tls()
        });
        let s = sign(b.clone(), &key(1));
        let j = serde_json::to_vec_pretty(&s).unwrap();
        assert_eq!(verify(&j, &key(1).verifying_key()).unwrap(), b);
        // Another CA key in a signed bundle breaks the signature.
        let mut s = s;
        if let Some(t) = s.bundle.tls.as_mut() {
            t.ca_key_pem = KEY.replace("MIGH", "MIGI");
        }
        assert_eq!(
            verify(&serde_json::to_vec(&s).unwrap(), &key(1).verifying_key()),
            Err(BundleError::BadSignature)
        );
        // Without TLS the JSON has no `tls` key: older boxes and signatures are unaffected.
        let j = serde_json::to_string(&sign(bundle(), &key(1))).unwrap();
        assert!(!j.contains("tls"), "{j}");
    }

    #[test]
    fn tls_material_of_the_wrong_shape_refused() {
        let big = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            "A".repeat(MAX_PEM_BYTES)
        );
        let encrypted = KEY.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY");
        let legacy = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nMIGH\n-----END EC PRIVATE KEY-----\n";
        let ca_cert = |pem: String| BundleTls {
            ca_cert_pem: pem,
            ..tls()
        };
        let ca_key = |pem: String| BundleTls {
            ca_key_pem: pem,
            ..tls()
        };
        let own = |cert_pem: Option<String>, key_pem: Option<String>| BundleTls {
            cert_pem,
            key_pem,
            ..tls()
        };
        let cases: Vec<(&str, BundleTls, &str)> = vec![
            ("ca cert not PEM", ca_cert("MIIB".into()), "ca_cert_pem"),
            ("ca cert is a key", ca_cert(KEY.into()), "ca_cert_pem"),
            (
                "two ca certs",
                ca_cert(format!("{CERT}{CERT}")),
                "ca_cert_pem",
            ),
            (
                "ca cert with its key",
                ca_cert(format!("{CERT}{KEY}")),
                "ca_cert_pem",
            ),
            ("ca cert over 64 KiB", ca_cert(big.clone()), "ca_cert_pem"),
            (
                "ca cert without END",
                ca_cert(CERT.replace("-----END CERTIFICATE-----", "")),
                "ca_cert_pem",
            ),
            (
                "END of another label",
                ca_cert(CERT.replace("END CERTIFICATE", "END X509 CRL")),
                "ca_cert_pem",
            ),
            (
                "END alone",
                ca_cert(format!("-----END CERTIFICATE-----\n{CERT}")),
                "ca_cert_pem",
            ),
            (
                "junk in the body",
                ca_cert(CERT.replace("AbC+/w==", "Ab C?")),
                "ca_cert_pem",
            ),
            ("ca key is a cert", ca_key(CERT.into()), "ca_key_pem"),
            ("ca key empty", ca_key(String::new()), "ca_key_pem"),
            ("ca key encrypted", ca_key(encrypted.clone()), "ca_key_pem"),
            (
                "ca key legacy-encrypted",
                ca_key(legacy.into()),
                "ca_key_pem",
            ),
            ("two ca keys", ca_key(format!("{KEY}{KEY}")), "ca_key_pem"),
            (
                "own cert without key",
                own(Some(CERT.into()), None),
                "key_pem",
            ),
            (
                "own key without cert",
                own(None, Some(KEY.into())),
                "cert_pem",
            ),
            (
                "own cert is a key",
                own(Some(KEY.into()), Some(KEY.into())),
                "cert_pem",
            ),
            (
                "own chain with a key in it",
                own(Some(format!("{CERT}{KEY}")), Some(KEY.into())),
                "cert_pem",
            ),
            (
                "own chain over 64 KiB",
                own(Some(big), Some(KEY.into())),
                "cert_pem",
            ),
            (
                "own key is a cert",
                own(Some(CERT.into()), Some(CERT.into())),
                "key_pem",
            ),
            (
                "own key encrypted",
                own(Some(CERT.into()), Some(encrypted)),
                "key_pem",
            ),
        ];
        for (what, t, field) in cases {
            match check_tls_of(t) {
                Err(BundleError::BadTls { field: f, .. }) if f == field => {}
                other => panic!("{what}: {other:?}"),
            }
        }
        for ok in [
            tls(),
            BundleTls {
                ca_key_pem: KEY.replace("PRIVATE KEY", "RSA PRIVATE KEY"),
                ..tls()
            },
            BundleTls {
                ca_cert_pem: format!("issuer: Docket\r\n{}", CERT.replace('\n', "\r\n")),
                ..tls()
            },
        ] {
            assert!(check_tls_of(ok).is_ok());
        }
    }
}
