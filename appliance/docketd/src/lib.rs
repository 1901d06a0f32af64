//! docket-appliance: the `docketd` daemon's parts. See docs/ARCHITECTURE.md for the picture.

pub mod api;
pub mod boards;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conn;
pub mod daemon;
pub mod devices;
pub mod engine;
pub mod http;
pub mod http_conn;
pub mod inbox;
pub mod logging;
pub mod menu;
pub mod metrics;
pub mod ratelimit;
pub mod site;
pub mod store;
pub mod systemd;
pub mod tls;
pub mod uplink;
pub mod web;

/// docketd's version, as reported in status and health.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
