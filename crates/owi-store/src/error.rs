use std::path::PathBuf;

/// Everything that can go wrong in the local store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the local database {path}: {source}")]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },

    #[error("cannot use {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "the local database {path} was written by a newer version (schema {version}, this one knows {known}); update the app or use another --db"
    )]
    TooNew {
        path: PathBuf,
        version: i64,
        known: i64,
    },

    /// The export could not be read; nothing was stored.
    #[error(transparent)]
    Export(#[from] owi_export::Error),

    #[error("no export with id {0} in the local database")]
    UnknownExport(i64),

    #[error("no workout with id {0} in the local database")]
    UnknownWorkout(i64),

    #[error("no record type named `{0}` in this export")]
    UnknownType(String),

    #[error("the ingest writer stopped unexpectedly")]
    WriterGone,
}

impl Error {
    pub(crate) fn db(path: impl Into<PathBuf>, source: rusqlite::Error) -> Self {
        Error::Db {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
