//! The commands the UI calls, `verb_noun`, each a few lines: take the
//! request, call the core on a blocking thread, hand back its answer.

pub mod export;
pub mod online;
pub mod preview;

use crate::error::{CommandError, ErrorKind};

/// Runs blocking core work off the async runtime, so the UI thread and the
/// IPC stay free whatever the export's size.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CommandError> + Send + 'static,
) -> Result<T, CommandError> {
    tauri::async_runtime::spawn_blocking(work)
        .await
        .map_err(|e| CommandError::new(ErrorKind::Internal, format!("a task failed: {e}")))?
}
