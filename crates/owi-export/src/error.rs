use std::io;
use std::path::PathBuf;

/// Everything that can go wrong reading an export. Each message names the
/// file and, for content errors, the byte offset in the uncompressed XML.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },

    #[error(
        "{path} is neither a zip archive nor an XML file; choose the export.zip (or the export.xml inside it) that the Health app wrote"
    )]
    UnknownFormat { path: PathBuf },

    #[error(
        "{path} is damaged or incomplete as a zip archive ({detail}); export it again from the Health app"
    )]
    BadZip { path: PathBuf, detail: String },

    #[error(
        "{path} holds no Apple Health export (looked inside {looked_at} entries for a HealthData document)"
    )]
    NoExportInZip { path: PathBuf, looked_at: usize },

    #[error(
        "{path} holds two Apple Health exports, `{first}` and `{second}`; unzip it and open the one you want"
    )]
    TwoExports {
        path: PathBuf,
        first: String,
        second: String,
    },

    #[error(
        "{path}: entry `{entry}` claims {declared} bytes from {compressed} compressed (ratio {ratio}:1); refusing a likely zip bomb"
    )]
    ZipBomb {
        path: PathBuf,
        entry: String,
        declared: u64,
        compressed: u64,
        ratio: u64,
    },

    #[error("{path}: entry `{entry}` uses compression method {method}, which is not supported")]
    UnsupportedCompression {
        path: PathBuf,
        entry: String,
        method: String,
    },

    #[error("{path} is not an Apple Health export: {reason}")]
    NotHealthExport { path: PathBuf, reason: String },

    #[error(
        "{path} at byte {offset}: the DTD declares an entity (`<!ENTITY`); Apple exports never do, and entity declarations are refused for safety"
    )]
    EntityDeclared { path: PathBuf, offset: u64 },

    #[error("{path} at byte {offset}: {message}")]
    Malformed {
        path: PathBuf,
        offset: u64,
        message: String,
    },

    #[error(
        "{path} ends early at byte {offset} of {expected} (inside <{inside}>); the file was cut short: copy or export it again"
    )]
    Truncated {
        path: PathBuf,
        offset: u64,
        expected: u64,
        inside: String,
    },

    #[error(
        "{path} at byte {offset}: <{element}> needs {needed} bytes in one upload with the export's header and closing tag, more than the {limit}-byte limit; an element is never cut, so raise the limit"
    )]
    TooLargeToSplit {
        path: PathBuf,
        offset: u64,
        element: String,
        needed: u64,
        limit: u64,
    },

    #[error(
        "{path}: an upload body of {len} bytes has nothing at byte {offset} (a resumed upload pointing past the end?)"
    )]
    OffsetPastEnd {
        path: PathBuf,
        offset: u64,
        len: u64,
    },

    #[error("{name:?} is not a kind of data this knows{close}")]
    UnknownKind {
        name: String,
        /// ": did you mean …?" when something is close, else "".
        close: String,
    },

    #[error("reading {path} was cancelled")]
    Cancelled { path: PathBuf },

    #[error("reading {path} was stopped by its consumer")]
    Stopped { path: PathBuf },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
