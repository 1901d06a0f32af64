//! Signed site bundles: what a box trusts about its site (id, name, uplink) and from whom.
//!
//! A bundle is JSON: `{"bundle": {...}, "signer": "<hex ed25519 public key>", "signature":
//! "<hex>"}`. The signature is ed25519 over `DOMAIN` followed by the canonical encoding of the
//! inner bundle (serde_json of [`Bundle`], whose field order is fixed by the struct; the inner
//! object is re-encoded from the parsed value, so whitespace or key order in the file does not
//! matter, but every field's value does). Keys are stored as one line of hex (64 characters).
//!
//! A bundle holds secrets (manager secrets, head office's passwords, the site CA's key): its
//! `Debug` shows none of them. Its TLS material is checked for shape in [`tls`].

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

mod tls;
pub use tls::{BundleTls, MAX_PEM_BYTES};

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
    // `+cluster`: a Redis Cluster, its seed nodes comma-separated (docket_cloud::redis).
    if !ok(
        &b.redis_url,
        &["redis", "rediss", "redis+cluster", "rediss+cluster"],
    ) {
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
        if !ok(&b.redis_url, &["rediss", "rediss+cluster"]) {
            return Err(BundleError::Plaintext(
                "redis",
                "a rediss:// (or rediss+cluster://) URL",
            ));
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
    b.tls.as_ref().map_or(Ok(()), tls::check_tls)
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
    use super::tls::tests::{tls, CERT, KEY};
    use super::*;

    pub(super) fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }
    pub(super) fn bundle() -> Bundle {
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
            (None, Some("redis+cluster://h1:7000,h2:7001")),
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
        let cluster = Some("rediss+cluster://:pw@h1:7000,h2:7001");
        assert!(check(with(None, cluster, false)).is_ok());
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
