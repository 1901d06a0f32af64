//! Head office's Redis: a connection within a deadline, every request within one, and the
//! login check the technician's laptop makes. docketd's relay (the stream it writes) connects
//! through [`connect`] and is docketd's.
//!
//! Writes nothing itself.

use std::time::Duration;

use redis::aio::MultiplexedConnection;

use crate::{SecretUrl, Timeouts};

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
}

impl RedisError {
    /// The server answered and said no (bad password, no such user), as opposed to not being
    /// reachable at all.
    pub fn is_refusal(&self) -> bool {
        matches!(self, RedisError::Redis(e) if !e.is_io_error() && !e.is_timeout() && !e.is_connection_refusal() && !e.is_connection_dropped())
    }
}

/// Connects within `within`.
pub async fn connect(
    url: &SecretUrl,
    within: Duration,
) -> Result<MultiplexedConnection, RedisError> {
    let client = redis::Client::open(url.expose())?;
    timed(within, client.get_multiplexed_async_connection()).await
}

/// Connects and sends PING, each within `t.connect_ms`: what `docket uplink set` tries from the
/// technician's laptop.
pub async fn probe(url: &SecretUrl, t: Timeouts) -> Result<(), RedisError> {
    let t = Duration::from_millis(t.connect_ms);
    let mut conn = connect(url, t).await?;
    let _: String = timed(t, redis::cmd("PING").query_async(&mut conn)).await?;
    Ok(())
}

/// One request to Redis, given up after `d`.
pub async fn timed<T>(
    d: Duration,
    f: impl std::future::Future<Output = Result<T, redis::RedisError>>,
) -> Result<T, RedisError> {
    tokio::time::timeout(d, f)
        .await
        .map_err(|_| RedisError::Timeout(d))?
        .map_err(RedisError::from)
}
