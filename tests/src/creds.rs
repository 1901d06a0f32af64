//! Device credentials as `docketd device add` prints them, and the keys derived from them.
//! Pure data: no I/O.

use serde::Deserialize;

/// Device credentials as `docketd device add` prints them.
#[derive(Debug, Clone, Deserialize)]
pub struct Creds {
    pub id: String,
    pub role: String,
    pub secret: String,
}

impl Creds {
    pub fn secret_bytes(&self) -> [u8; 32] {
        hex::decode(&self.secret)
            .expect("hex secret")
            .try_into()
            .expect("32 bytes")
    }

    /// The password this device logs in with (MQTT and the admin API): its login key as hex.
    pub fn login(&self) -> String {
        docket_core::keys::password(&self.secret_bytes())
    }

    /// The key this device's commands are MAC'd with.
    pub fn mac_key(&self) -> docket_core::keys::MacKey {
        docket_core::keys::DeviceKeys::derive(&self.secret_bytes()).mac
    }
}
