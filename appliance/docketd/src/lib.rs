//! docket-appliance: the `docketd` daemon's parts. See docs/ARCHITECTURE.md for the picture.

pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod http;
pub mod integration;
pub mod metrics;
pub mod mqtt;
pub mod print;
pub mod site;
pub mod status;
pub mod store;
pub mod tls;
pub mod uplink;
pub mod webhook;

/// docketd's version, as reported in status and health.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
