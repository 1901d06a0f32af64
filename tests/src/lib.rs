//! Test harness: the real `docketd` process on free ports with its own data directory, and real
//! MQTT clients speaking the wire contract. Every wait has a deadline; every process is killed on
//! drop.

pub mod chaos;
pub mod cloud;
pub mod device;
pub mod faults;
pub mod printer;
pub mod raw;
pub mod redis_cluster;
pub mod secure;
pub mod servers;
pub mod vm;

mod creds;
mod daemon;
mod http;
mod mqtt;
mod net;
mod netns;
mod tmpfs;
mod view;

pub use creds::Creds;
pub use daemon::{docketd_bin, docketd_output, rss_mb, Daemon, ACL_OFF};
pub use http::{
    basic_auth, exchange, http_request, http_request_from, parse_reply, HttpReply, Request,
};
pub use mqtt::{line, login_refused, reply_code, Client, Msg, KEEP_ALIVE};
pub use net::{connect_from, free_port};
pub use tmpfs::Tmpfs;
pub use view::View;

use std::time::Duration;

use anyhow::bail;

/// How long any single wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Waits until `cond` holds, polling every 20 ms; fails with `what` at the deadline.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
