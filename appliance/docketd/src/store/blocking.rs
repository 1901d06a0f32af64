//! A SQLite connection (or a type holding one) used from async code: every call runs on tokio's
//! blocking pool, never on an async worker, one call at a time. The print tasks' connection
//! (`print::db`) and the relays' backlog (`uplink::backlog`) are each one of these.
//!
//! Owns the handle and nothing else: the SQL is the callers'. Must not be the engine's writer
//! (it has its own thread).

use std::sync::{Arc, Mutex};

use super::StoreError;

/// What a call through a [`BlockingConn`] can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BlockingError {
    #[error("local store: {0}")]
    Store(#[from] StoreError),
    #[error("a blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// `C` (a `rusqlite::Connection`, or a type that holds one) shared by clones, each call on the
/// blocking pool under a lock. A lock poisoned by a panicking call is taken as it is: a call's
/// transaction either committed or rolled back when it unwound.
pub struct BlockingConn<C>(Arc<Mutex<C>>);

impl<C> Clone for BlockingConn<C> {
    fn clone(&self) -> Self {
        BlockingConn(self.0.clone())
    }
}

impl<C: Send + 'static> BlockingConn<C> {
    pub fn new(conn: C) -> Self {
        BlockingConn(Arc::new(Mutex::new(conn)))
    }

    /// Opens `C` on the blocking pool (opening SQLite reads the disk too).
    pub async fn open(
        open: impl FnOnce() -> Result<C, StoreError> + Send + 'static,
    ) -> Result<Self, BlockingError> {
        Ok(BlockingConn::new(tokio::task::spawn_blocking(open).await??))
    }

    /// Runs `f` on the blocking pool with the connection.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&C) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, BlockingError> {
        let c = self.0.clone();
        Ok(tokio::task::spawn_blocking(move || {
            let guard = c.lock().unwrap_or_else(|p| p.into_inner());
            f(&guard)
        })
        .await??)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clones_share_one_connection_and_an_error_keeps_its_cause() {
        let conn = BlockingConn::open(|| Ok(rusqlite::Connection::open_in_memory()?))
            .await
            .unwrap();
        let other = conn.clone();
        conn.run(|c| Ok(c.execute_batch("CREATE TABLE t (n INTEGER)")?))
            .await
            .unwrap();
        let adds = (0..8).map(|n| {
            let c = other.clone();
            tokio::spawn(async move {
                c.run(move |c| Ok(c.execute("INSERT INTO t VALUES (?1)", [n])?))
                    .await
            })
        });
        for a in adds {
            assert_eq!(a.await.unwrap().unwrap(), 1);
        }
        let sum: i64 = conn
            .run(|c| Ok(c.query_row("SELECT SUM(n) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(sum, 28);
        let err = conn
            .run(|c| Ok(c.execute_batch("SELECT * FROM missing")?))
            .await
            .unwrap_err();
        assert!(
            matches!(err, BlockingError::Store(StoreError::Sqlite(_))),
            "{err:?}"
        );
    }
}
