//! Tracing setup: journald-friendly plain lines by default, JSON on request; `RUST_LOG` filters.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Without `RUST_LOG`: our info lines and rumqttd's warnings, but not rumqttd's per-connection
/// "errors", which it logs for every ordinary disconnect.
pub const DEFAULT_FILTER: &str = "info,rumqttd=warn,rumqttd::server=off";

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Plain => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
