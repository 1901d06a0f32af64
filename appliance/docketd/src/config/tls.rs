//! `[tls]`: the HTTPS and MQTT-over-TLS listeners, and where the site CA (or a site's own
//! certificate) comes from. See [`crate::tls`].

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;
use crate::tls::ca::SiteCa;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub https_listen: Option<String>,
    pub mqtt_listen: Option<String>,
    pub mqtt_listen_v5: Option<String>,
    pub names: Option<Vec<String>>,
    pub ca_cert_file: Option<PathBuf>,
    pub ca_key_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// A certificate chain and its key that the site brings (PEM): served as they are.
#[derive(Clone)]
pub struct OwnCert {
    pub chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for OwnCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnCert").finish_non_exhaustive()
    }
}

/// Validated `[tls]`.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// HTTPS: the pages, `/api`, `/mqtt` over WSS.
    pub https_listen: SocketAddr,
    /// MQTT 3.1.1 over TLS; `None`: off.
    pub mqtt_listen: Option<SocketAddr>,
    /// MQTT 5 over TLS; `None`: off.
    pub mqtt_v5_listen: Option<SocketAddr>,
    /// Names the box's certificate carries besides `docket.local`, its hostname and addresses.
    pub names: Vec<String>,
    /// The site CA's files; `None`: `<data_dir>/tls/site-ca.{pem,key}` (made at first start
    /// when neither a bundle nor the files give one).
    pub ca_cert_file: Option<PathBuf>,
    pub ca_key_file: Option<PathBuf>,
    /// A site's own certificate chain and key files (both or neither).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The site CA from the site bundle (laid over by [`crate::site::apply`]); wins over files.
    pub bundle_ca: Option<SiteCa>,
    /// A site's own certificate from the site bundle; wins over `cert_file`.
    pub bundle_own: Option<OwnCert>,
}

fn optional_addr(
    what: &str,
    v: Option<String>,
    default: &str,
) -> Result<Option<SocketAddr>, ConfigError> {
    let s = v.unwrap_or_else(|| default.to_owned());
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| ConfigError::Invalid(format!("{what} = {s:?} is not an ip:port address")))
}

pub fn tls(raw: RawTls) -> Result<TlsConfig, ConfigError> {
    let https_listen = optional_addr("tls.https_listen", raw.https_listen, "0.0.0.0:8443")?
        .ok_or_else(|| {
            ConfigError::Invalid(
                "tls.https_listen cannot be off: the pages are served over HTTPS".into(),
            )
        })?;
    let mqtt_listen = optional_addr("tls.mqtt_listen", raw.mqtt_listen, "0.0.0.0:8883")?;
    let mqtt_v5_listen = optional_addr("tls.mqtt_listen_v5", raw.mqtt_listen_v5, "0.0.0.0:8884")?;
    if raw.cert_file.is_some() != raw.key_file.is_some() {
        return Err(ConfigError::Invalid(
            "tls.cert_file and tls.key_file go together: give both or neither".into(),
        ));
    }
    if raw.ca_cert_file.is_some() != raw.ca_key_file.is_some() {
        return Err(ConfigError::Invalid(
            "tls.ca_cert_file and tls.ca_key_file go together: give both or neither".into(),
        ));
    }
    let names = raw.names.unwrap_or_default();
    // The rule the certificate's names follow: none is silently left off it.
    if let Some(bad) = names.iter().find(|n| !crate::tls::names::dns_name(n)) {
        return Err(ConfigError::Invalid(format!(
            "tls.names: {bad:?} is not a DNS name"
        )));
    }
    Ok(TlsConfig {
        https_listen,
        mqtt_listen,
        mqtt_v5_listen,
        names,
        ca_cert_file: raw.ca_cert_file,
        ca_key_file: raw.ca_key_file,
        cert_file: raw.cert_file,
        key_file: raw.key_file,
        bundle_ca: None,
        bundle_own: None,
    })
}
