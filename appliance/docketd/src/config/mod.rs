//! Configuration in two stages: [`RawConfig`] (TOML file + `DOCKET_*` environment overrides, as
//! written by people) → validated [`Config`] (no I/O, every value checked).
//!
//! Owns defaults and validation; must not open files other than the config itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The commented default configuration printed by `docketd print-default-config`.
mod engine;
mod integration;
mod printing;
mod uplink;
pub use engine::{EngineKeys, RawEngine};
pub use integration::{Integration, RawIntegration};
pub use printing::{check_address, Mode, Printing, RawPrinting, StationPrinter};
pub use uplink::{RawUplink, SecretUrl, Uplink};
mod tls;
pub use tls::{OwnCert, RawTls, TlsConfig};

pub const DEFAULT_CONFIG: &str = include_str!("../default-config.toml");

/// Room a retained board needs besides its orders' encodings (station, seq, framing): what
/// `engine.max_open_bytes` leaves of `mqtt.max_payload_bytes`.
const BOARD_OVERHEAD: usize = 512 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("environment variable {name}={value:?} is not valid: {why}")]
    Env {
        name: String,
        value: String,
        why: String,
    },
    #[error("invalid config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub data_dir: Option<PathBuf>,
    pub site_id: Option<String>,
    pub site_name: Option<String>,
    pub restart_on_site_push: Option<bool>,
    #[serde(default)]
    pub mqtt: RawMqtt,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub menu: RawMenu,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub engine: RawEngine,
    #[serde(default)]
    pub uplink: RawUplink,
    #[serde(default)]
    pub tls: RawTls,
    #[serde(default)]
    pub printing: RawPrinting,
    #[serde(default)]
    pub integration: RawIntegration,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    pub plain: Option<bool>,
    pub listen: Option<String>,
    pub listen_v5: Option<String>,
    pub max_connections: Option<usize>,
    pub max_payload_bytes: Option<usize>,
    pub topic_acl: Option<bool>,
    pub segment_bytes: Option<usize>,
    pub segment_count: Option<usize>,
    pub device_segment_bytes: Option<usize>,
    pub command_segment_bytes: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub plain: Option<bool>,
    pub listen: Option<String>,
    pub header_timeout_ms: Option<usize>,
    pub request_timeout_ms: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
}

/// Bounds on HTTP connections ([`crate::http::conn`]; docs/operations.md, "Limits").
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// A request's head must arrive in full within this, and an idle keep-alive connection is
    /// closed after it.
    pub header_timeout: std::time::Duration,
    /// A request (its body read and its answer) must be done within this, or gets 408.
    pub request_timeout: std::time::Duration,
    /// HTTP connections at once (WebSockets count as MQTT connections once upgraded).
    pub max_connections: usize,
    /// HTTP connections at once from one address.
    pub per_address: usize,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMenu {
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Plain,
    Json,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub site_id: String,
    pub site_name: String,
    /// After storing a pushed site bundle, stop cleanly so that the service manager (systemd's
    /// `Restart=always` on the box) starts docketd again with it applied.
    pub restart_on_site_push: bool,
    /// Plain-text MQTT (`mqtt.plain`): the two listeners below are bound only when a site turns
    /// it on, and it is a warning in `/healthz`.
    pub plain_mqtt: bool,
    /// MQTT 3.1.1 listener (plain text).
    pub mqtt_listen: SocketAddr,
    /// MQTT 5 listener (plain text); `None` when not configured.
    pub mqtt_v5_listen: Option<SocketAddr>,
    pub max_connections: usize,
    pub max_payload_bytes: usize,
    /// Cut a device's connection at a publish or subscribe outside its topics ([`crate::acl`]).
    pub topic_acl: bool,
    /// The broker's in-memory log per subscription filter: `segment_bytes × segment_count`.
    pub segment_bytes: usize,
    pub segment_count: usize,
    /// The same for each device's reply topic (one filter per device), `× segment_count`
    /// (presence has a fixed log: `broker::PRESENCE_SEGMENT_BYTES`).
    pub device_segment_bytes: usize,
    /// The commands log (`docket/v1/cmd/+`), `× segment_count`: the engine reads it at once,
    /// and every command in it keeps its sender's read buffer alive, so it stays small even
    /// when `segment_bytes` is raised.
    pub command_segment_bytes: usize,
    /// Plain HTTP: the landing page (install the site CA) and redirects to HTTPS, or with
    /// `http.plain` the whole of HTTPS's app as well (development and tests; a warning).
    pub http_listen: SocketAddr,
    pub plain_http: bool,
    pub http_limits: HttpLimits,
    pub tls: TlsConfig,
    /// `None` = the demo menu built into the binary.
    pub menu_file: Option<PathBuf>,
    pub log_format: LogFormat,
    /// `[engine]`: batching, boards, replay pages, the site's bounds and the rate limit.
    pub engine: EngineKeys,
    pub uplink: Uplink,
    /// `[printing]`: the stations' kitchen printers.
    pub printing: Printing,
    /// `[integration]`: webhooks to the integrations (retries, plain `http://`).
    pub integration: Integration,
}

impl RawConfig {
    /// Reads `path` (if given) and applies `DOCKET_*` overrides from `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut raw = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                let mut raw: RawConfig =
                    toml::from_str(&text).map_err(|source| ConfigError::Parse {
                        path: p.to_owned(),
                        source: Box::new(source),
                    })?;
                // Relative paths in a config file are relative to that file.
                let base = p.parent().unwrap_or(Path::new("."));
                raw.data_dir = raw.data_dir.map(|d| base.join(d));
                raw.menu.file = raw.menu.file.map(|f| base.join(f));
                for f in [
                    &mut raw.tls.ca_cert_file,
                    &mut raw.tls.ca_key_file,
                    &mut raw.tls.cert_file,
                    &mut raw.tls.key_file,
                ] {
                    *f = f.take().map(|f| base.join(f));
                }
                raw
            }
            None => RawConfig::default(),
        };
        raw.apply_env(env)?;
        Ok(raw)
    }

    fn apply_env(
        &mut self,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
            value.parse().map_err(|_| ConfigError::Env {
                name: name.to_owned(),
                value: value.to_owned(),
                why: "not a number".into(),
            })
        }
        fn flag(name: String, value: String) -> Result<bool, ConfigError> {
            match value.as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(ConfigError::Env {
                    name,
                    value,
                    why: "use true or false".into(),
                }),
            }
        }
        for (name, value) in env {
            match name.as_str() {
                "DOCKET_DATA_DIR" => self.data_dir = Some(value.into()),
                "DOCKET_SITE_ID" => self.site_id = Some(value),
                "DOCKET_SITE_NAME" => self.site_name = Some(value),
                "DOCKET_MQTT_LISTEN" => self.mqtt.listen = Some(value),
                "DOCKET_MQTT_LISTEN_V5" => self.mqtt.listen_v5 = Some(value),
                "DOCKET_MQTT_MAX_CONNECTIONS" => {
                    self.mqtt.max_connections = Some(num(&name, &value)?)
                }
                "DOCKET_MQTT_TOPIC_ACL" => self.mqtt.topic_acl = Some(flag(name, value)?),
                "DOCKET_MQTT_PLAIN" => self.mqtt.plain = Some(flag(name, value)?),
                "DOCKET_HTTP_PLAIN" => self.http.plain = Some(flag(name, value)?),
                "DOCKET_HTTPS_LISTEN" => self.tls.https_listen = Some(value),
                "DOCKET_MQTTS_LISTEN" => self.tls.mqtt_listen = Some(value),
                "DOCKET_MQTTS_LISTEN_V5" => self.tls.mqtt_listen_v5 = Some(value),
                "DOCKET_HTTP_HEADER_TIMEOUT_MS" => {
                    self.http.header_timeout_ms = Some(num(&name, &value)?)
                }
                "DOCKET_HTTP_REQUEST_TIMEOUT_MS" => {
                    self.http.request_timeout_ms = Some(num(&name, &value)?)
                }
                "DOCKET_RESTART_ON_SITE_PUSH" => {
                    self.restart_on_site_push = Some(flag(name, value)?)
                }
                "DOCKET_MQTT_SEGMENT_BYTES" => self.mqtt.segment_bytes = Some(num(&name, &value)?),
                "DOCKET_MQTT_SEGMENT_COUNT" => self.mqtt.segment_count = Some(num(&name, &value)?),
                "DOCKET_MQTT_DEVICE_SEGMENT_BYTES" => {
                    self.mqtt.device_segment_bytes = Some(num(&name, &value)?)
                }
                "DOCKET_MQTT_COMMAND_SEGMENT_BYTES" => {
                    self.mqtt.command_segment_bytes = Some(num(&name, &value)?)
                }
                "DOCKET_HTTP_LISTEN" => self.http.listen = Some(value),
                "DOCKET_MENU_FILE" => self.menu.file = Some(value.into()),
                "DOCKET_LOG_FORMAT" => self.log.format = Some(value),
                "DOCKET_INTEGRATION_WEBHOOK_BACKOFF_MAX_SECS" => {
                    self.integration.webhook_backoff_max_secs = Some(num(&name, &value)?)
                }
                "DOCKET_INTEGRATION_ALLOW_PLAIN_WEBHOOKS" => {
                    self.integration.allow_plain_webhooks = Some(flag(name, value)?)
                }
                "DOCKET_UPLINK_POSTGRES_URL" => self.uplink.postgres_url = Some(value),
                "DOCKET_UPLINK_REDIS_URL" => self.uplink.redis_url = Some(value),
                _ => {}
            }
        }
        Ok(())
    }

    pub fn validate(self) -> Result<Config, ConfigError> {
        let addr =
            |what: &str, v: Option<String>, default: &str| -> Result<SocketAddr, ConfigError> {
                let s = v.unwrap_or_else(|| default.to_owned());
                s.parse().map_err(|_| {
                    ConfigError::Invalid(format!("{what} = {s:?} is not an ip:port address"))
                })
            };
        let site_id = self.site_id.unwrap_or_else(|| "demo".to_owned());
        if !docket_core::menu::valid_name(&site_id) {
            return Err(ConfigError::Invalid(format!(
                "site_id = {site_id:?}: use 1-32 of lowercase letters, digits, '-' and '_'"
            )));
        }
        let mqtt_listen = addr("mqtt.listen", self.mqtt.listen, "0.0.0.0:1884")?;
        let mqtt_v5_listen = match self.mqtt.listen_v5 {
            Some(s) if s.is_empty() => None,
            other => Some(addr("mqtt.listen_v5", other, "0.0.0.0:1885")?),
        };
        let http_listen = addr("http.listen", self.http.listen.clone(), "0.0.0.0:8080")?;
        if mqtt_v5_listen.is_some_and(|v5| v5 == mqtt_listen && v5.port() != 0) {
            return Err(ConfigError::Invalid(
                "mqtt.listen and mqtt.listen_v5 must differ".into(),
            ));
        }
        let log_format = match self.log.format.as_deref().unwrap_or("plain") {
            "plain" => LogFormat::Plain,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::Invalid(format!(
                    "log.format = {other:?}: use \"plain\" or \"json\""
                )))
            }
        };
        let bounded = |what: &str, v: Option<usize>, default: usize, lo: usize, hi: usize| {
            let v = v.unwrap_or(default);
            if (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                Err(ConfigError::Invalid(format!(
                    "{what} = {v} must be within {lo}..={hi}"
                )))
            }
        };
        let max_payload = bounded(
            "mqtt.max_payload_bytes",
            self.mqtt.max_payload_bytes,
            2 * 1024 * 1024,
            docket_core::wire::MAX_ENVELOPE_BYTES,
            16 * 1024 * 1024,
        )?;
        Ok(Config {
            data_dir: self
                .data_dir
                .unwrap_or_else(|| PathBuf::from("/var/lib/docket")),
            site_name: self.site_name.unwrap_or_else(|| "Demo Bistro".to_owned()),
            restart_on_site_push: self.restart_on_site_push.unwrap_or(false),
            site_id,
            plain_mqtt: self.mqtt.plain.unwrap_or(false),
            mqtt_listen,
            mqtt_v5_listen,
            max_connections: bounded(
                "mqtt.max_connections",
                self.mqtt.max_connections,
                10_000,
                1,
                200_000,
            )?,
            max_payload_bytes: max_payload,
            topic_acl: self.mqtt.topic_acl.unwrap_or(true),
            segment_bytes: bounded(
                "mqtt.segment_bytes",
                self.mqtt.segment_bytes,
                256 * 1024,
                64 * 1024,
                256 * 1024 * 1024,
            )?,
            segment_count: bounded("mqtt.segment_count", self.mqtt.segment_count, 2, 2, 64)?,
            command_segment_bytes: bounded(
                "mqtt.command_segment_bytes",
                self.mqtt.command_segment_bytes,
                256 * 1024,
                64 * 1024,
                256 * 1024 * 1024,
            )?,
            device_segment_bytes: bounded(
                "mqtt.device_segment_bytes",
                self.mqtt.device_segment_bytes,
                64 * 1024,
                16 * 1024,
                64 * 1024 * 1024,
            )?,
            http_listen,
            plain_http: self.http.plain.unwrap_or(false),
            http_limits: http_limits(&self.http, &bounded)?,
            tls: tls::tls(self.tls)?,
            menu_file: self.menu.file,
            log_format,
            engine: engine::engine(&self.engine, max_payload, &bounded)?,
            uplink: uplink::uplink(self.uplink, &bounded)?,
            printing: printing::printing(self.printing, &bounded)?,
            integration: integration::integration(self.integration, &bounded)?,
        })
    }
}

fn http_limits(h: &RawHttp, bounded: Bounded) -> Result<HttpLimits, ConfigError> {
    let ms = |v: usize| std::time::Duration::from_millis(v as u64);
    let header = bounded(
        "http.header_timeout_ms",
        h.header_timeout_ms,
        10_000,
        100,
        600_000,
    )?;
    let request = bounded(
        "http.request_timeout_ms",
        h.request_timeout_ms,
        30_000,
        100,
        600_000,
    )?;
    let max = bounded("http.max_connections", h.max_connections, 512, 1, 1_000_000)?;
    let per_address = bounded(
        "http.max_connections_per_address",
        h.max_connections_per_address,
        64,
        1,
        max,
    )?;
    Ok(HttpLimits {
        header_timeout: ms(header),
        request_timeout: ms(request),
        max_connections: max,
        per_address,
    })
}

/// `bounded(what, value, default, lo, hi)`: the value or default, checked to be in lo..=hi.
type Bounded<'a> =
    &'a dyn Fn(&str, Option<usize>, usize, usize, usize) -> Result<usize, ConfigError>;

impl Config {
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("docket.sqlite3")
    }
}

#[cfg(test)]
mod tests;
