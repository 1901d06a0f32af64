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
    pub fn open(db: &Path) -> Result<JobsDb, StoreError> {
        Ok(JobsDb(Arc::new(Mutex::new(store::connect(db)?))))
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
