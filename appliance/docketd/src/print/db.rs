//! The printing tasks' own SQLite connection, used on the blocking pool (never an async
//! worker): the desk's promotions and tidying, the printer tasks' due jobs and their marks.
//!
//! Owns the connection; the SQL is `crate::store::print`'s.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::store::{self, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("local store")]
    Store(#[from] StoreError),
    #[error("a blocking task failed")]
    Join(#[from] tokio::task::JoinError),
}

/// A connection shared by the printing tasks.
#[derive(Clone)]
pub struct JobsDb(Arc<Mutex<Connection>>);

impl JobsDb {
    /// The jobs themselves are written in the engine's commits (synchronous=FULL). This
    /// connection only marks them (sent, printed, due): its commits are not fsynced on their
    /// own (synchronous=NORMAL, in WAL mode), so they never hold the write lock across an fsync
    /// while the engine waits to commit an order; they become durable with the engine's next
    /// commit. kill -9 loses none of them; a power cut may lose the last second's marks, and
    /// those tickets print once more.
    pub fn open(db: &Path) -> Result<JobsDb, StoreError> {
        let conn = store::connect(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(JobsDb(Arc::new(Mutex::new(conn))))
    }

    /// Runs `f` on the blocking pool with the connection.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, JobsError> {
        let c = self.0.clone();
        Ok(tokio::task::spawn_blocking(move || {
            let guard = c.lock().unwrap_or_else(|p| p.into_inner());
            f(&guard)
        })
        .await??)
    }
}
