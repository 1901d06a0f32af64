//! `[integration]`: how the box talks to the integrations (a POS, a delivery platform) it
//! calls itself: webhook retries and whether a webhook may use plain `http://`.

use std::time::Duration;

use serde::Deserialize;

use super::{Bounded, ConfigError};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawIntegration {
    pub webhook_backoff_max_secs: Option<usize>,
    pub allow_plain_webhooks: Option<bool>,
}

/// The validated `[integration]`.
#[derive(Debug, Clone)]
pub struct Integration {
    /// The longest wait between two attempts at a webhook delivery (backoff starts at 1 s).
    pub webhook_backoff_max: Duration,
    /// `http://` webhook URLs are accepted (tests, demos; a warning in `/healthz`).
    pub allow_plain_webhooks: bool,
}

impl Default for Integration {
    fn default() -> Self {
        Integration {
            webhook_backoff_max: Duration::from_secs(60),
            allow_plain_webhooks: false,
        }
    }
}

pub(super) fn integration(r: RawIntegration, bounded: Bounded) -> Result<Integration, ConfigError> {
    let secs = bounded(
        "integration.webhook_backoff_max_secs",
        r.webhook_backoff_max_secs,
        60,
        1,
        3600,
    )?;
    Ok(Integration {
        webhook_backoff_max: Duration::from_secs(secs as u64),
        allow_plain_webhooks: r.allow_plain_webhooks.unwrap_or(false),
    })
}
