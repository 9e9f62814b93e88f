//! How errors cross IPC: `{kind, message}`. `kind` is a closed set that
//! grows only when the UI needs to act differently; `message` is the core
//! error's own sentence, which names the file and what to do.

use serde::Serialize;

/// What the UI does differently for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The file is not an Apple Health export: refuse it with the reason.
    NotAnExport,
    /// An export, but damaged (bad zip, cut short, unsafe).
    Damaged,
    /// The person cancelled: no message needed.
    Cancelled,
    /// An export or workout id the store no longer has: refresh.
    NotFound,
    /// A file or folder could not be read or written.
    Io,
    /// The local database failed.
    Database,
    /// No server connected (or it went away): show the connect panel.
    NotConnected,
    /// The server refused the login or no longer accepts it: ask again.
    Login,
    /// The server could not be reached or did not answer in time.
    Network,
    /// The server refused or failed the request, or its import failed.
    Server,
    /// Stopped part-way; sending again goes on where it stopped.
    Resumable,
    /// The chosen user or method cannot work with this server: choose
    /// again (nothing was sent).
    Choice,
    /// The server holds less than this computer sent it (reset, or
    /// another server): offer to send everything.
    ServerForgot,
    /// A bug: a task died.
    Internal,
}

/// The error every command returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CommandError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CommandError {
            kind,
            message: message.into(),
        }
    }
}

/// The kind of a reader error.
pub fn export_error_kind(e: &owi_export::Error) -> ErrorKind {
    use owi_export::Error as E;
    match e {
        E::UnknownFormat { .. }
        | E::NotHealthExport { .. }
        | E::NoExportInZip { .. }
        | E::TwoExports { .. } => ErrorKind::NotAnExport,
        E::Cancelled { .. } | E::Stopped { .. } => ErrorKind::Cancelled,
        E::Io { .. } => ErrorKind::Io,
        _ => ErrorKind::Damaged,
    }
}

impl From<owi_export::Error> for CommandError {
    fn from(e: owi_export::Error) -> Self {
        CommandError::new(export_error_kind(&e), e.to_string())
    }
}

impl From<owi_store::Error> for CommandError {
    fn from(e: owi_store::Error) -> Self {
        use owi_store::Error as E;
        let kind = match &e {
            E::Export(inner) => export_error_kind(inner),
            E::UnknownExport(_) | E::UnknownWorkout(_) | E::UnknownType(_) => ErrorKind::NotFound,
            E::Io { .. } => ErrorKind::Io,
            E::Db { .. } | E::TooNew { .. } => ErrorKind::Database,
            _ => ErrorKind::Internal,
        };
        CommandError::new(kind, e.to_string())
    }
}

impl From<owi_client::Error> for CommandError {
    fn from(e: owi_client::Error) -> Self {
        use owi_client::Error as E;
        let kind = match &e {
            E::BadServerUrl { .. } | E::Config(_) | E::InsecureHttp { .. } => {
                ErrorKind::NotConnected
            }
            E::BadLogin { .. } | E::LoginRequired { .. } | E::BadApiKey { .. } => ErrorKind::Login,
            E::Unreachable { .. } | E::Timeout { .. } | E::NotOpenWearables { .. } => {
                ErrorKind::Network
            }
            E::BadUserId { .. } | E::UnknownUser { .. } | E::MethodUnavailable(_) => {
                ErrorKind::Choice
            }
            E::Export(_) => ErrorKind::NotAnExport,
            E::Cancelled => ErrorKind::Cancelled,
            E::Local(_) => ErrorKind::Database,
            E::Resumable { .. } => ErrorKind::Resumable,
            E::ServerForgot { .. } => ErrorKind::ServerForgot,
            _ => ErrorKind::Server,
        };
        CommandError::new(kind, e.to_string())
    }
}

impl From<owi_server::Error> for CommandError {
    fn from(e: owi_server::Error) -> Self {
        CommandError::new(
            ErrorKind::Internal,
            format!("the local server did not start: {e}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_kind_and_message() {
        let e = CommandError::new(ErrorKind::NotAnExport, "notes.txt is not an export");
        let json = serde_json::to_string(&e).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"kind":"not_an_export","message":"notes.txt is not an export"}"#
        );
    }

    #[test]
    fn reader_errors_map_to_what_the_ui_does() {
        let path = std::path::PathBuf::from("x.zip");
        let refused =
            owi_store::Error::Export(owi_export::Error::UnknownFormat { path: path.clone() });
        assert_eq!(CommandError::from(refused).kind, ErrorKind::NotAnExport);
        let cancelled = owi_export::Error::Cancelled { path: path.clone() };
        assert_eq!(CommandError::from(cancelled).kind, ErrorKind::Cancelled);
        let cut = owi_export::Error::Truncated {
            path,
            offset: 1,
            expected: 2,
            inside: "Record".into(),
        };
        assert_eq!(CommandError::from(cut).kind, ErrorKind::Damaged);
        assert_eq!(
            CommandError::from(owi_store::Error::UnknownWorkout(7)).kind,
            ErrorKind::NotFound
        );
    }
}
