//! Signed site bundles: what a box trusts about its site (id, name, uplink) and from whom.
//!
//! A bundle is JSON: `{"bundle": {...}, "signer": "<hex ed25519 public key>", "signature":
//! "<hex>"}`. The signature is ed25519 over `DOMAIN` followed by the canonical encoding of the
//! inner bundle (serde_json of [`Bundle`], whose field order is fixed by the struct; the inner
//! object is re-encoded from the parsed value, so whitespace or key order in the file does not
//! matter, but every field's value does). Keys are stored as one line of hex (64 characters).
//!
//! A bundle holds secrets (manager secrets, head office's passwords, the site CA's key): its
//! `Debug` shows none of them. The TLS material is checked here for shape only (PEM framing,
//! size); whether a key belongs to its certificate is checked by whoever parses X.509 (the box,
//! and the CLI before it signs).

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Prefix of every signed message, so a bundle signature cannot be replayed as anything else.
pub const DOMAIN: &[u8] = b"docket-site-bundle-v1\n";

/// What the site's key vouches for.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub site_id: String,
    pub name: String,
    pub postgres_url: Option<String>,
    pub redis_url: Option<String>,
    /// Unix ms when the technician's laptop made it.
    pub issued_at_ms: u64,
    /// Strictly increasing per site: a box takes a pushed bundle only with a higher serial.
    pub serial: u64,
    /// Manager devices the box adds when it applies the bundle and does not have them yet (the
    /// technician's first credentials on a blank box, for `docket pair`). Never changes or
    /// revives a device the box already knows. Left out of the JSON (and so of the signed
    /// message) when empty, so bundles signed before the field existed still verify.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managers: Vec<BundleManager>,
    /// The site says, on purpose, that its uplink may go in plain text (head office on a
    /// private link). Without it a bundle's PostgreSQL URL must ask for TLS
    /// (`sslmode=require`, `verify-ca` or `verify-full`) and its Redis URL must be `rediss://`.
    /// Absent from the signed JSON when false, so bundles signed before it still verify.
    #[serde(default, skip_serializing_if = "is_false")]
    pub plaintext_uplink: bool,
    /// The site CA (the box issues its HTTPS and MQTT-over-TLS certificate from it; tablets
    /// trust it) and optionally a certificate of the site's own. Absent from the signed JSON
    /// when `None`, so bundles signed before it still verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<BundleTls>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |u: &Option<String>| u.as_ref().map(|_| "<redacted>");
        f.debug_struct("Bundle")
            .field("site_id", &self.site_id)
            .field("name", &self.name)
            .field("postgres_url", &set(&self.postgres_url))
            .field("redis_url", &set(&self.redis_url))
            .field("issued_at_ms", &self.issued_at_ms)
            .field("serial", &self.serial)
            .field("managers", &self.managers)
            .field("plaintext_uplink", &self.plaintext_uplink)
            .field("tls", &self.tls)
            .finish()
    }
}

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
fn check_tls(t: &BundleTls) -> Result<(), BundleError> {
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

fn is_false(b: &bool) -> bool {
    !*b
}

/// Does this PostgreSQL URL make the connection use TLS (and fail without it)?
pub fn postgres_wants_tls(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, q)| {
        q.split('&').any(|kv| {
            matches!(
                kv,
                "sslmode=require" | "sslmode=verify-ca" | "sslmode=verify-full"
            )
        })
    })
}

/// A manager device carried by a bundle: its id and its 256-bit secret (64 hex characters).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleManager {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for BundleManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleManager")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl BundleManager {
    /// The secret's bytes, when it is 64 hex characters.
    pub fn secret_bytes(&self) -> Option<[u8; 32]> {
        hex::decode(&self.secret).ok()?.try_into().ok()
    }
}

/// Bounds a mistaken bundle (a site has a handful of managers).
pub const MAX_MANAGERS: usize = 16;

/// A bundle with its signer and signature, as stored in `site-bundle.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedBundle {
    pub bundle: Bundle,
    pub signer: String,
    pub signature: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("the bundle is not valid JSON of the expected shape: {0}")]
    Malformed(String),
    #[error("bad key: {0}")]
    BadKey(String),
    #[error("the bundle is signed by key {signer}, not by this site's pinned key {pinned}")]
    WrongKey { signer: String, pinned: String },
    #[error("the bundle's signature does not match its content (tampered or corrupted)")]
    BadSignature,
    #[error("the bundle's site_id {0:?} is not valid: use 1-32 of lowercase letters, digits, '-' and '_'")]
    BadSiteId(String),
    #[error("the bundle's {0} URL has the wrong scheme")]
    BadUrl(&'static str),
    #[error("the bundle's {0} URL is plain text: use {1}, or say plaintext_uplink = true for this site (docket uplink set --allow-plaintext) when head office's link is private")]
    Plaintext(&'static str, &'static str),
    #[error("the bundle's manager {0:?} is not valid: an id of 1-64 of a-z, A-Z, 0-9, '-', '_', '.' and a secret of 64 hex characters, at most {MAX_MANAGERS}, each id once")]
    BadManager(String),
    #[error("the bundle's TLS {field} is not valid: {why}")]
    BadTls {
        field: &'static str,
        why: &'static str,
    },
}

fn message(b: &Bundle) -> Vec<u8> {
    let mut m = DOMAIN.to_vec();
    // Serializing a plain struct of strings/ints/options cannot fail.
    m.extend(serde_json::to_vec(b).unwrap_or_default());
    m
}

/// Signs `bundle` with the site's key.
pub fn sign(bundle: Bundle, key: &SigningKey) -> SignedBundle {
    let sig = key.sign(&message(&bundle));
    SignedBundle {
        signer: hex::encode(key.verifying_key().as_bytes()),
        signature: hex::encode(sig.to_bytes()),
        bundle,
    }
}

/// Checks the bundle's content rules (site id shape, URL schemes, managers, TLS material's shape).
pub fn check_content(b: &Bundle) -> Result<(), BundleError> {
    if !crate::menu::valid_name(&b.site_id) {
        return Err(BundleError::BadSiteId(b.site_id.clone()));
    }
    let ok = |u: &Option<String>, schemes: &[&str]| {
        u.as_deref()
            .is_none_or(|u| schemes.iter().any(|s| u.starts_with(&format!("{s}://"))))
    };
    if !ok(&b.postgres_url, &["postgres", "postgresql"]) {
        return Err(BundleError::BadUrl("postgres"));
    }
    if !ok(&b.redis_url, &["redis", "rediss"]) {
        return Err(BundleError::BadUrl("redis"));
    }
    if !b.plaintext_uplink {
        if b.postgres_url
            .as_deref()
            .is_some_and(|u| !postgres_wants_tls(u))
        {
            return Err(BundleError::Plaintext(
                "postgres",
                "?sslmode=verify-full (or require, verify-ca) in the URL",
            ));
        }
        if !ok(&b.redis_url, &["rediss"]) {
            return Err(BundleError::Plaintext("redis", "a rediss:// URL"));
        }
    }
    if b.managers.len() > MAX_MANAGERS {
        return Err(BundleError::BadManager(format!(
            "{} managers",
            b.managers.len()
        )));
    }
    for (i, m) in b.managers.iter().enumerate() {
        let dup = b.managers[..i].iter().any(|o| o.id == m.id);
        if dup || !crate::wire::valid_device_id(&m.id) || m.secret_bytes().is_none() {
            return Err(BundleError::BadManager(m.id.clone()));
        }
    }
    b.tls.as_ref().map_or(Ok(()), check_tls)
}

/// Parses `site-bundle.json` and verifies it against the pinned key.
pub fn verify(json: &[u8], pinned: &VerifyingKey) -> Result<Bundle, BundleError> {
    let s: SignedBundle =
        serde_json::from_slice(json).map_err(|e| BundleError::Malformed(e.to_string()))?;
    let pinned_hex = hex::encode(pinned.as_bytes());
    if !s.signer.eq_ignore_ascii_case(&pinned_hex) {
        return Err(BundleError::WrongKey {
            signer: s.signer,
            pinned: pinned_hex,
        });
    }
    let sig: [u8; 64] = hex::decode(&s.signature)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(BundleError::BadSignature)?;
    pinned
        .verify(&message(&s.bundle), &Signature::from_bytes(&sig))
        .map_err(|_| BundleError::BadSignature)?;
    check_content(&s.bundle)?;
    Ok(s.bundle)
}

/// Parses a public key file (one line of 64 hex characters).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, BundleError> {
    let b: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| BundleError::BadKey("expected 64 hex characters".into()))?;
    VerifyingKey::from_bytes(&b).map_err(|e| BundleError::BadKey(e.to_string()))
}

/// Parses a signing key file (one line of 64 hex characters: the ed25519 seed).
pub fn parse_signing_key(text: &str) -> Result<SigningKey, BundleError> {
    let b: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| BundleError::BadKey("expected 64 hex characters".into()))?;
    Ok(SigningKey::from_bytes(&b))
}

/// The text of a key file: hex and a newline.
pub fn key_text(bytes: &[u8; 32]) -> String {
    format!("{}\n", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }
    fn bundle() -> Bundle {
        Bundle {
            site_id: "cafe-1".into(),
            name: "Café One".into(),
            postgres_url: Some("postgres://u:p@h/db?sslmode=verify-full".into()),
            redis_url: None,
            issued_at_ms: 1,
            serial: 3,
            managers: vec![],
            plaintext_uplink: false,
            tls: None,
        }
    }

    fn manager(id: &str) -> BundleManager {
        BundleManager {
            id: id.into(),
            secret: "ab".repeat(32),
        }
    }

    #[test]
    fn managers_are_signed_and_an_empty_list_keeps_old_signatures() {
        // A bundle signed before `managers` existed: its JSON has no such key.
        let old = serde_json::json!({
            "bundle": {"site_id": "cafe-1", "name": "Café One",
                       "postgres_url": "postgres://u:p@h/db?sslmode=verify-full", "redis_url": null,
                       "issued_at_ms": 1, "serial": 3},
            "signer": hex::encode(key(1).verifying_key().as_bytes()),
            "signature": sign(bundle(), &key(1)).signature,
        });
        let j = serde_json::to_vec(&old).unwrap();
        assert_eq!(verify(&j, &key(1).verifying_key()).unwrap(), bundle());

        let mut b = bundle();
        b.managers = vec![manager("technician")];
        let mut s = sign(b.clone(), &key(1));
        let j = serde_json::to_vec(&s).unwrap();
        assert_eq!(verify(&j, &key(1).verifying_key()).unwrap(), b);
        // Swapping in another secret breaks the signature.
        s.bundle.managers[0].secret = "cd".repeat(32);
        let j = serde_json::to_vec(&s).unwrap();
        assert_eq!(
            verify(&j, &key(1).verifying_key()),
            Err(BundleError::BadSignature)
        );
    }

    #[test]
    fn a_plaintext_uplink_only_when_the_site_says_so() {
        let signed = |b: Bundle| serde_json::to_vec(&sign(b, &key(1))).unwrap();
        let check = |b: Bundle| verify(&signed(b), &key(1).verifying_key());
        let with = |pg: Option<&str>, redis: Option<&str>, plain: bool| Bundle {
            postgres_url: pg.map(Into::into),
            redis_url: redis.map(Into::into),
            plaintext_uplink: plain,
            ..bundle()
        };
        for (pg, redis) in [
            (Some("postgres://u:p@h/db"), None),
            (Some("postgres://u:p@h/db?sslmode=prefer"), None),
            (Some("postgres://u:p@h/db?sslmode=disable"), None),
            (None, Some("redis://h:6379")),
            (
                Some("postgres://u:p@h/db?sslmode=require"),
                Some("redis://h"),
            ),
        ] {
            assert!(
                matches!(
                    check(with(pg, redis, false)),
                    Err(BundleError::Plaintext(..))
                ),
                "{pg:?} {redis:?} accepted without plaintext_uplink"
            );
            assert!(check(with(pg, redis, true)).is_ok(), "{pg:?} {redis:?}");
        }
        for pg in ["require", "verify-ca", "verify-full"] {
            let url = format!("postgres://u:p@h/db?application_name=x&sslmode={pg}");
            assert!(check(with(Some(&url), Some("rediss://h:6380"), false)).is_ok());
        }
        // The flag is signed: setting it on a signed bundle breaks the signature.
        let mut s = sign(with(Some("postgres://u:p@h/db"), None, false), &key(1));
        s.bundle.plaintext_uplink = true;
        assert_eq!(
            verify(&serde_json::to_vec(&s).unwrap(), &key(1).verifying_key()),
            Err(BundleError::BadSignature)
        );
    }

    #[test]
    fn bad_managers_refused() {
        let bad = |managers: Vec<BundleManager>| {
            let mut b = bundle();
            b.managers = managers;
            let j = serde_json::to_vec(&sign(b, &key(1))).unwrap();
            verify(&j, &key(1).verifying_key())
        };
        let mut short = manager("m");
        short.secret.pop();
        let mut not_hex = manager("m");
        not_hex.secret = "zz".repeat(32);
        for (what, m) in [
            ("short secret", vec![short]),
            ("non-hex secret", vec![not_hex]),
            ("bad id", vec![manager("no spaces")]),
            ("reserved id", vec![manager("docketd-x")]),
            ("twice", vec![manager("m"), manager("m")]),
            (
                "too many",
                (0..=MAX_MANAGERS)
                    .map(|i| manager(&format!("m{i}")))
                    .collect(),
            ),
        ] {
            assert!(
                matches!(bad(m), Err(BundleError::BadManager(_))),
                "{what} accepted"
            );
        }
        assert!(bad(vec![manager("a"), manager("b")]).is_ok());
    }

    #[test]
    fn round_trip() {
        let s = serde_json::to_vec_pretty(&sign(bundle(), &key(1))).unwrap();
        assert_eq!(verify(&s, &key(1).verifying_key()).unwrap(), bundle());
    }

    #[test]
    fn other_key_refused() {
        let s = serde_json::to_vec(&sign(bundle(), &key(2))).unwrap();
        assert!(matches!(
            verify(&s, &key(1).verifying_key()),
            Err(BundleError::WrongKey { .. })
        ));
    }

    #[test]
    fn forged_signer_field_refused() {
        let mut s = sign(bundle(), &key(2));
        s.signer = hex::encode(key(1).verifying_key().as_bytes());
        let j = serde_json::to_vec(&s).unwrap();
        assert_eq!(
            verify(&j, &key(1).verifying_key()),
            Err(BundleError::BadSignature)
        );
    }

    #[test]
    fn tampered_refused() {
        let mut s = sign(bundle(), &key(1));
        s.bundle.serial += 1;
        let j = serde_json::to_vec(&s).unwrap();
        assert_eq!(
            verify(&j, &key(1).verifying_key()),
            Err(BundleError::BadSignature)
        );
    }

    #[test]
    fn bad_content_refused() {
        let mut b = bundle();
        b.redis_url = Some("http://x".into());
        let j = serde_json::to_vec(&sign(b, &key(1))).unwrap();
        assert_eq!(
            verify(&j, &key(1).verifying_key()),
            Err(BundleError::BadUrl("redis"))
        );
        assert!(matches!(
            verify(b"{}", &key(1).verifying_key()),
            Err(BundleError::Malformed(_))
        ));
    }

    const CERT: &str =
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\nAbC+/w==\n-----END CERTIFICATE-----\n";
    const KEY: &str =
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n";

    fn tls() -> BundleTls {
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
        let cases: Vec<(&str, BundleTls, &str)> = vec![
            (
                "ca cert not PEM",
                BundleTls {
                    ca_cert_pem: "MIIB".into(),
                    ..tls()
                },
                "ca_cert_pem",
            ),
            (
                "ca cert is a key",
                BundleTls {
                    ca_cert_pem: KEY.into(),
                    ..tls()
                },
                "ca_cert_pem",
            ),
            (
                "two ca certs",
                BundleTls {
                    ca_cert_pem: format!("{CERT}{CERT}"),
                    ..tls()
                },
                "ca_cert_pem",
            ),
            (
                "ca cert with its key",
                BundleTls {
                    ca_cert_pem: format!("{CERT}{KEY}"),
                    ..tls()
                },
                "ca_cert_pem",
            ),
            (
                "ca cert over 64 KiB",
                BundleTls {
                    ca_cert_pem: big.clone(),
                    ..tls()
                },
                "ca_cert_pem",
            ),
            (
                "ca cert without END",
                BundleTls {
                    ca_cert_pem: CERT.replace("-----END CERTIFICATE-----", ""),
                    ..tls()
                },
                "ca_cert_pem",
            ),
            (
                "END of another label",
                BundleTls {
                    ca_cert_pem: CERT.replace("END CERTIFICATE", "END X509 CRL"),
                    ..tls()
                },
                "ca_cert_pem",
            ),
            (
                "END alone",
                BundleTls {
                    ca_cert_pem: format!("-----END CERTIFICATE-----\n{CERT}"),
                    ..tls()
                },
                "ca_cert_pem",
            ),
            (
                "junk in the body",
                BundleTls {
                    ca_cert_pem: CERT.replace("AbC+/w==", "Ab C?"),
                    ..tls()
                },
                "ca_cert_pem",
            ),
            (
                "ca key is a cert",
                BundleTls {
                    ca_key_pem: CERT.into(),
                    ..tls()
                },
                "ca_key_pem",
            ),
            (
                "ca key empty",
                BundleTls {
                    ca_key_pem: String::new(),
                    ..tls()
                },
                "ca_key_pem",
            ),
            (
                "ca key encrypted",
                BundleTls {
                    ca_key_pem: encrypted.clone(),
                    ..tls()
                },
                "ca_key_pem",
            ),
            (
                "ca key legacy-encrypted",
                BundleTls {
                    ca_key_pem: legacy.into(),
                    ..tls()
                },
                "ca_key_pem",
            ),
            (
                "two ca keys",
                BundleTls {
                    ca_key_pem: format!("{KEY}{KEY}"),
                    ..tls()
                },
                "ca_key_pem",
            ),
            (
                "own cert without key",
                BundleTls {
                    cert_pem: Some(CERT.into()),
                    ..tls()
                },
                "key_pem",
            ),
            (
                "own key without cert",
                BundleTls {
                    key_pem: Some(KEY.into()),
                    ..tls()
                },
                "cert_pem",
            ),
            (
                "own cert is a key",
                BundleTls {
                    cert_pem: Some(KEY.into()),
                    key_pem: Some(KEY.into()),
                    ..tls()
                },
                "cert_pem",
            ),
            (
                "own chain with a key in it",
                BundleTls {
                    cert_pem: Some(format!("{CERT}{KEY}")),
                    key_pem: Some(KEY.into()),
                    ..tls()
                },
                "cert_pem",
            ),
            (
                "own chain over 64 KiB",
                BundleTls {
                    cert_pem: Some(big),
                    key_pem: Some(KEY.into()),
                    ..tls()
                },
                "cert_pem",
            ),
            (
                "own key is a cert",
                BundleTls {
                    cert_pem: Some(CERT.into()),
                    key_pem: Some(CERT.into()),
                    ..tls()
                },
                "key_pem",
            ),
            (
                "own key encrypted",
                BundleTls {
                    cert_pem: Some(CERT.into()),
                    key_pem: Some(encrypted),
                    ..tls()
                },
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

    #[test]
    fn debug_shows_no_secret() {
        let mut b = bundle();
        b.redis_url = Some("rediss://:hunter2@h".into());
        b.managers = vec![manager("tech")];
        b.tls = Some(BundleTls {
            cert_pem: Some(CERT.into()),
            key_pem: Some(KEY.replace("MIGH", "OWNKEY")),
            ..tls()
        });
        let text = format!("{:?}", sign(b, &key(1)));
        for secret in ["MIGH", "OWNKEY", "hunter2", "u:p@h", &"ab".repeat(32)] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("tech") && text.contains("cafe-1"), "{text}");
    }

    #[test]
    fn keys_round_trip() {
        let k = key(7);
        let t = key_text(k.verifying_key().as_bytes());
        assert_eq!(parse_public_key(&t).unwrap(), k.verifying_key());
        assert_eq!(
            parse_signing_key(&key_text(&k.to_bytes()))
                .unwrap()
                .to_bytes(),
            k.to_bytes()
        );
        assert!(parse_public_key("zz").is_err());
    }
}
