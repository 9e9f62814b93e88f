//! The server's SQLite database, used from async handlers through
//! `spawn_blocking`. Each component (API, worker) has its own connection;
//! WAL lets readers go on while an import writes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::error::Error;

/// Accounts, users, jobs, sync events.
pub const SERVER_SCHEMA: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema_002_uploads.sql"),
    include_str!("schema_003_declared.sql"),
    include_str!("schema_004_families.sql"),
];
/// Imported workouts and samples.
pub const DATA_SCHEMA: &[&str] = &[include_str!("data_schema.sql")];

#[derive(Clone, Debug)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl Db {
    pub fn open(path: &Path, migrations: &[&str]) -> Result<Db, Error> {
        let db_err = |e| Error::Db {
            path: path.to_path_buf(),
            source: e,
        };
        let conn = Connection::open(path).map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db_err)?;
        for (i, sql) in migrations.iter().enumerate().skip(version.max(0) as usize) {
            let batch = format!("BEGIN;\n{sql}\nPRAGMA user_version = {};\nCOMMIT;", i + 1);
            conn.execute_batch(&batch).map_err(db_err)?;
        }
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
        })
    }

    /// Runs `f` on the connection on a blocking thread.
    pub async fn call<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = match conn.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            f(&mut guard).map_err(|source| Error::Db { path, source })
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    }

    /// Runs `f` on the connection on the current (blocking) thread.
    pub fn blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, Error> {
        let mut guard = match self.conn.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard).map_err(|source| Error::Db {
            path: self.path.clone(),
            source,
        })
    }
}

/// Now, as Unix seconds.
pub fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Now, as the API writes times (RFC 3339, UTC, microseconds).
pub fn now_rfc3339() -> String {
    rfc3339(jiff::Timestamp::now())
}

pub fn rfc3339(t: jiff::Timestamp) -> String {
    format!("{t:.6}")
}
