//! The printing tasks' own SQLite connection, used on the blocking pool (never an async
//! worker) through [`BlockingConn`]: the desk's promotions and tidying, the printer tasks' due
//! jobs and their marks.
//!
//! Owns the connection's settings; the SQL is `crate::store::print`'s.

use std::path::Path;

use rusqlite::Connection;

use crate::store::blocking::BlockingConn;
use crate::store::{self, StoreError};

/// A connection shared by the printing tasks.
pub type JobsDb = BlockingConn<Connection>;

/// The jobs themselves are written in the engine's commits (synchronous=FULL). This
/// connection only marks them (sent, printed, due): its commits are not fsynced on their own
/// (synchronous=NORMAL, in WAL mode), so they never hold the write lock across an fsync while
/// the engine waits to commit an order; they become durable with the engine's next commit.
/// kill -9 loses none of them; a power cut may lose the last second's marks, and those tickets
/// print once more.
pub fn open(db: &Path) -> Result<JobsDb, StoreError> {
    let conn = store::connect(db)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(BlockingConn::new(conn))
}
