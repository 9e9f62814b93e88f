//! The TypeScript twin of every type that crosses IPC, generated with ts-rs
//! from the Rust types themselves (the core's behind their `ts` features).
//!
//! `ui/src/bindings/` holds the generated files, checked in; the app's test
//! `bindings_are_current` fails when they differ from what the Rust types
//! give, and `OWI_WRITE_BINDINGS=1 cargo test -p owi-app --test app
//! bindings` rewrites them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ts_rs::{Config, TS, TypeVisitor};

use crate::dto;
use crate::error::CommandError;

/// Where the files go, relative to the workspace root.
pub const DIR: &str = "ui/src/bindings";

/// Every generated file: its name under [`DIR`] and its text.
pub fn generate() -> Result<BTreeMap<PathBuf, String>, String> {
    // Every 64-bit value we send (ids, counts, bytes, Unix seconds) is far
    // below 2^53, and serde_json writes them as plain JSON numbers.
    let cfg = Config::new().with_large_int("number");
    let mut collect = Collect {
        cfg: &cfg,
        files: BTreeMap::new(),
    };
    // The roots: each command's request and answer, the progress event and
    // the error. Their dependencies follow.
    collect.visit::<dto::PathRequest>();
    collect.visit::<dto::OpenRequest>();
    collect.visit::<dto::CancelRequest>();
    collect.visit::<dto::ExportRequest>();
    collect.visit::<dto::WorkoutsRequest>();
    collect.visit::<dto::WorkoutRequest>();
    collect.visit::<dto::SeriesRequest>();
    collect.visit::<dto::FileCheck>();
    collect.visit::<dto::Opened>();
    collect.visit::<owi_progress::Progress>();
    collect.visit::<owi_store::ExportInfo>();
    collect.visit::<owi_store::Summary>();
    collect.visit::<owi_store::ServerPreview>();
    collect.visit::<owi_store::WorkoutRow>();
    collect.visit::<owi_store::Glimpse>();
    collect.visit::<owi_store::WorkoutDetail>();
    collect.visit::<owi_store::DailySeries>();
    collect.visit::<dto::ConnectRequest>();
    collect.visit::<dto::ConnectionStatus>();
    collect.visit::<dto::Connection>();
    collect.visit::<dto::UsersRequest>();
    collect.visit::<dto::UserPage>();
    collect.visit::<dto::NewUserRequest>();
    collect.visit::<dto::ImportStartRequest>();
    collect.visit::<dto::ImportEvent>();
    collect.visit::<dto::HistoryRequest>();
    collect.visit::<dto::LedgerRequest>();
    collect.visit::<owi_client::Plan>();
    collect.visit::<owi_store::LedgerSummary>();
    collect.visit::<owi_client::ImportReport>();
    collect.visit::<owi_client::User>();
    collect.visit::<crate::desktop::ShellEvent>();
    collect.visit::<owi_store::UploadRecord>();
    collect.visit::<owi_store::Interrupted>();
    collect.visit::<CommandError>();
    collect
        .files
        .into_iter()
        .map(|(path, text)| text.map(|t| (path, t)))
        .collect()
}

struct Collect<'a> {
    cfg: &'a Config,
    files: BTreeMap<PathBuf, Result<String, String>>,
}

impl TypeVisitor for Collect<'_> {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        let Some(path) = T::output_path() else {
            return;
        };
        if self.files.contains_key(&path) {
            return;
        }
        let text = T::export_to_string(self.cfg).map_err(|e| format!("{}: {e}", path.display()));
        self.files.insert(path, text);
        T::visit_dependencies(self);
    }
}
