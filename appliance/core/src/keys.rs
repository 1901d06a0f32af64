//! The keys a device secret gives: one secret, two keys, each for one job.
//!
//! The 32-byte secret a device gets at pairing never crosses the wire again. From it, HKDF-SHA256
//! (RFC 5869, empty salt) with distinct `info` strings derives the **login key** (its hex is the
//! MQTT password and the admin API's Basic password) and the **MAC key** (HMAC-SHA256 over each
//! command). Someone who reads a login on the Wi-Fi learns the login key only: it cannot sign a
//! command, and the secret cannot be worked back from either key.

use hkdf::Hkdf;
use sha2::Sha256;

/// HKDF `info` of the login key.
pub const LOGIN_INFO: &[u8] = b"docket/v1 login key";
/// HKDF `info` of the command MAC key.
pub const MAC_INFO: &[u8] = b"docket/v1 command mac key";

/// The key whose lowercase hex is a device's MQTT and admin API password.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LoginKey(pub [u8; 32]);

/// The key a device's commands are MAC'd with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MacKey(pub [u8; 32]);

// Keys are never printed, not even in a debug log.
impl std::fmt::Debug for LoginKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginKey(..)")
    }
}
impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(..)")
    }
}

/// Both keys of one device secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceKeys {
    pub login: LoginKey,
    pub mac: MacKey,
}

impl DeviceKeys {
    pub fn derive(secret: &[u8; 32]) -> Self {
        DeviceKeys {
            login: LoginKey(expand(secret, LOGIN_INFO)),
            mac: MacKey(expand(secret, MAC_INFO)),
        }
    }
}

impl LoginKey {
    /// The password a device logs in with: 64 lowercase hex characters.
    pub fn password(&self) -> String {
        hex::encode(self.0)
    }
}

/// The login password of a device secret (what clients send; see [`LoginKey::password`]).
pub fn password(secret: &[u8; 32]) -> String {
    DeviceKeys::derive(secret).login.password()
}

fn expand(secret: &[u8; 32], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(None, secret)
        .expand(info, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_differ_from_each_other_and_from_the_secret() {
        let secret = [7u8; 32];
        let k = DeviceKeys::derive(&secret);
        assert_ne!(k.login.0, k.mac.0);
        assert_ne!(k.login.0, secret);
        assert_ne!(k.mac.0, secret);
        assert_ne!(DeviceKeys::derive(&[8u8; 32]), k);
        assert_eq!(DeviceKeys::derive(&secret), k);
    }

    #[test]
    fn rfc5869_case_3_empty_salt_and_info() {
        // RFC 5869 appendix A.3 (SHA-256, empty salt and info): the first 32 bytes of its OKM.
        let ikm = [0x0bu8; 22];
        let mut okm = [0u8; 32];
        Hkdf::<Sha256>::new(None, &ikm)
            .expand(&[], &mut okm)
            .unwrap();
        assert_eq!(
            hex::encode(okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        );
    }

    #[test]
    fn debug_never_shows_a_key() {
        let k = DeviceKeys::derive(&[1u8; 32]);
        let shown = format!("{k:?}");
        assert!(!shown.contains(&hex::encode(k.login.0)[..8]), "{shown}");
        assert_eq!(shown, "DeviceKeys { login: LoginKey(..), mac: MacKey(..) }");
    }
}
