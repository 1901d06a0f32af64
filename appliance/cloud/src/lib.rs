//! docket-cloud: head office, as every Docket program sees it.
//!
//! Owns the PostgreSQL side of the uplink: connecting (TLS when the URL asks), the `docket`
//! schema and its migrations (`sql/`), the per-site roles, and the batch writer that turns
//! committed order events into head office's rows in one transaction. What those rows are is
//! decided by `project`, a pure function. Menus from head office (`central`): what a box reads
//! of them. Also the login check a technician runs against head
//! office's Redis. docketd's relay loop and the provisioning CLI both use it, so the schema is
//! applied and written by one piece of code.
//!
//! Must not know the appliance: no SQLite, no cursors, no config file, no metrics. What it needs
//! of the box (site id, version, prices, timeouts) comes in as parameters.

pub mod central;
mod connect;
pub mod inbound;
pub mod project;
pub mod redis;
mod schema;
mod url;
mod write;

use std::time::Duration;

pub use central::{central_stock_after, newest_central_menu, CentralMenu, CentralStock};
pub use connect::{connect, connect_as, connect_listening, probe, Timeouts};
pub use schema::{
    create_site_role, migrate, migrate_partitioned, partitions, MAX_PARTITIONS, MIGRATIONS,
    PARTITIONED,
};
pub use tokio_postgres::Client;
pub use url::SecretUrl;
pub use write::{record_contact, site_last_seq, write_menus, Writer};

/// One error for head office's PostgreSQL, whatever the step.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("PostgreSQL: {}", describe(.0))]
    Db(#[from] tokio_postgres::Error),
    #[error("connecting to PostgreSQL timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("TLS setup: {0}")]
    Tls(#[source] rustls::Error),
    /// A request the schema cannot take (partitions out of range, or unlike the schema's own).
    #[error("{0}")]
    Schema(String),
    #[error("encoding an event as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl CloudError {
    /// The server answered and said no (bad password, no such database or role), as opposed to
    /// not being reachable at all.
    pub fn is_refusal(&self) -> bool {
        matches!(self, CloudError::Db(e) if e.as_db_error().is_some())
    }
}

/// The server's own message when there is one ("db error" alone says nothing).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(e) {
            Some(src) => format!("{e}: {src}"),
            None => e.to_string(),
        },
    }
}
