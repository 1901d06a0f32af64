//! `[uplink]` of the configuration: head office's URLs (kept as [`SecretUrl`], never shown in
//! full; the type is `docket_cloud`'s) and the relays' timing bounds, validated into [`Uplink`].
//! Reads no file and opens no connection.

use serde::Deserialize;

pub use docket_cloud::SecretUrl;
use docket_cloud::Timeouts;

use super::{Bounded, ConfigError};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawUplink {
    pub postgres_url: Option<String>,
    pub redis_url: Option<String>,
    pub batch_size: Option<usize>,
    pub poll_interval_ms: Option<u64>,
    pub backoff_min_ms: Option<u64>,
    pub backoff_max_ms: Option<u64>,
    pub connect_timeout_ms: Option<u64>,
    pub statement_timeout_ms: Option<u64>,
    pub redis_maxlen: Option<usize>,
    pub retention_hours: Option<u64>,
    pub inbound_device: Option<String>,
    pub inbound_poll_ms: Option<u64>,
    pub menus_from_head_office: Option<bool>,
    pub menus_poll_ms: Option<u64>,
}

/// `[uplink]`: relaying events to head office. Both URLs absent = no uplink.
#[derive(Debug, Clone)]
pub struct Uplink {
    pub postgres_url: Option<SecretUrl>,
    pub redis_url: Option<SecretUrl>,
    pub batch_size: usize,
    pub poll_interval_ms: u64,
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    pub connect_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    pub redis_maxlen: usize,
    /// Relayed events older than this are pruned from SQLite; 0 keeps them forever.
    pub retention_hours: u64,
    /// The integration device head office's inbound orders are placed as (registered at start);
    /// `None` (set to "") takes no orders from head office.
    pub inbound_device: Option<String>,
    /// How often head office's inbound orders are looked for when no NOTIFY came.
    pub inbound_poll_ms: u64,
    /// Take menus and 86s from head office's PostgreSQL (`uplink::menus_down`; with a
    /// `postgres_url` only).
    pub menus_from_head_office: bool,
    /// How often head office's menus and 86s are looked at.
    pub menus_poll_ms: u64,
}

impl Uplink {
    pub fn configured(&self) -> bool {
        self.postgres_url.is_some() || self.redis_url.is_some()
    }

    /// The bounds head office's client works within (`docket_cloud`).
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect_ms: self.connect_timeout_ms,
            statement_ms: self.statement_timeout_ms,
        }
    }
}

/// The integration device head office's orders are placed as unless the config names another.
pub const DEFAULT_INBOUND_DEVICE: &str = "head-office";

pub(super) fn uplink(u: RawUplink, bounded: Bounded) -> Result<Uplink, ConfigError> {
    let url = |what: &str, v: Option<String>, schemes: &[&str]| -> Result<_, ConfigError> {
        match v {
            None => Ok(None),
            Some(s) if s.trim().is_empty() => Ok(None),
            Some(s) => {
                let u = SecretUrl::new(s.trim());
                if schemes
                    .iter()
                    .any(|sc| u.expose().starts_with(&format!("{sc}://")))
                {
                    Ok(Some(u))
                } else {
                    Err(ConfigError::Invalid(format!(
                        "uplink.{what} = {:?}: use a {} URL",
                        u.redacted(),
                        schemes.join(":// or ")
                    )))
                }
            }
        }
    };
    let ms = |what: &str, v: Option<u64>, default: u64, lo: u64, hi: u64| {
        bounded(
            what,
            v.map(|v| v.min(usize::MAX as u64) as usize),
            default as usize,
            lo as usize,
            hi as usize,
        )
        .map(|v| v as u64)
    };
    let backoff_min_ms = ms("uplink.backoff_min_ms", u.backoff_min_ms, 250, 10, 60_000)?;
    let backoff_max_ms = ms(
        "uplink.backoff_max_ms",
        u.backoff_max_ms,
        30_000,
        10,
        600_000,
    )?;
    if backoff_max_ms < backoff_min_ms {
        return Err(ConfigError::Invalid(
            "uplink.backoff_max_ms must be at least uplink.backoff_min_ms".into(),
        ));
    }
    let inbound_device = match u.inbound_device.as_deref().map(str::trim) {
        None => Some(DEFAULT_INBOUND_DEVICE.to_owned()),
        Some("") => None,
        Some(id) if docket_core::wire::valid_device_id(id) => Some(id.to_owned()),
        Some(id) => {
            return Err(ConfigError::Invalid(format!(
                "uplink.inbound_device = {id:?}: not a device id (1-64 of a-z A-Z 0-9 - _ .)"
            )))
        }
    };
    let inbound_poll_ms = ms(
        "uplink.inbound_poll_ms",
        u.inbound_poll_ms,
        5_000,
        100,
        600_000,
    )?;
    Ok(Uplink {
        inbound_device,
        inbound_poll_ms,
        postgres_url: url("postgres_url", u.postgres_url, &["postgres", "postgresql"])?,
        redis_url: redis_url(url(
            "redis_url",
            u.redis_url,
            &["redis", "rediss", "redis+cluster", "rediss+cluster"],
        )?)?,
        batch_size: bounded("uplink.batch_size", u.batch_size, 500, 1, 10_000)?,
        poll_interval_ms: ms(
            "uplink.poll_interval_ms",
            u.poll_interval_ms,
            200,
            10,
            60_000,
        )?,
        backoff_min_ms,
        backoff_max_ms,
        connect_timeout_ms: ms(
            "uplink.connect_timeout_ms",
            u.connect_timeout_ms,
            Timeouts::CONNECT_MS,
            100,
            120_000,
        )?,
        statement_timeout_ms: ms(
            "uplink.statement_timeout_ms",
            u.statement_timeout_ms,
            Timeouts::STATEMENT_MS,
            100,
            600_000,
        )?,
        redis_maxlen: bounded(
            "uplink.redis_maxlen",
            u.redis_maxlen,
            100_000,
            100,
            100_000_000,
        )?,
        retention_hours: ms(
            "uplink.retention_hours",
            u.retention_hours,
            24 * 30,
            0,
            24 * 3650,
        )?,
        menus_from_head_office: u.menus_from_head_office.unwrap_or(true),
        menus_poll_ms: ms("uplink.menus_poll_ms", u.menus_poll_ms, 3_000, 50, 600_000)?,
    })
}

/// A cluster URL's nodes are read now, so a typo stops the start with the reason rather than
/// failing every reconnect.
fn redis_url(u: Option<SecretUrl>) -> Result<Option<SecretUrl>, ConfigError> {
    if let Some(u) = &u {
        docket_cloud::redis::Target::parse(u)
            .map_err(|e| ConfigError::Invalid(format!("uplink.redis_url: {e}")))?;
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    #[test]
    fn urls_are_redacted_everywhere_they_are_shown() {
        let u = SecretUrl::new("postgres://site:s3cret@hq:5432/db?sslmode=require");
        assert_eq!(u.redacted(), "postgres://site:***@hq:5432/db");
        assert_eq!(format!("{u:?}"), "postgres://site:***@hq:5432/db");
        assert_eq!(
            SecretUrl::new("redis://:pw@hq:6379/0").redacted(),
            "redis://:***@hq:6379/0"
        );
        assert_eq!(
            SecretUrl::new("redis://hq:6379").redacted(),
            "redis://hq:6379"
        );
        let raw = RawConfig {
            uplink: RawUplink {
                postgres_url: Some("postgres://a:b@h/db".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let cfg = raw.validate().unwrap();
        assert!(!format!("{cfg:?}").contains(":b@"));
    }

    #[test]
    fn uplink_urls_and_bounds_are_checked() {
        let bad = |u: RawUplink| {
            RawConfig {
                uplink: u,
                ..Default::default()
            }
            .validate()
            .unwrap_err()
            .to_string()
        };
        assert!(bad(RawUplink {
            postgres_url: Some("mysql://x".into()),
            ..Default::default()
        })
        .contains("postgres"));
        assert!(bad(RawUplink {
            redis_url: Some("http://x".into()),
            ..Default::default()
        })
        .contains("redis"));
        let e = bad(RawUplink {
            redis_url: Some("redis+cluster://:pw@h1:7000,h2/".into()),
            ..Default::default()
        });
        assert!(e.contains("host:port") && !e.contains("pw@"), "{e}");
        let ok = RawConfig {
            uplink: RawUplink {
                redis_url: Some("rediss+cluster://:pw@h1:7000,h2:7001/".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(ok.validate().unwrap().uplink.redis_url.is_some());
        assert!(bad(RawUplink {
            batch_size: Some(0),
            ..Default::default()
        })
        .contains("batch_size"));
        let none = RawConfig::default().validate().unwrap();
        assert!(!none.uplink.configured());
    }
}
