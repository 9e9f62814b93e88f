//! Request and response types that exist only at the IPC boundary. The
//! preview's answers are the core's own types (`owi_store::Summary`, …).

use owi_store::{ExportInfo, WorkoutFilter};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::ErrorKind;

/// Names a long operation so that it can be cancelled. The UI makes it up.
pub type OperationId = String;

#[derive(Debug, Clone, Deserialize, Serialize, TS)]
pub struct PathRequest {
    pub path: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, TS)]
pub struct OpenRequest {
    pub path: String,
    pub operation: OperationId,
    /// Read the file again even if the store already holds it.
    #[serde(default)]
    #[ts(optional)]
    pub force: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize, TS)]
pub struct CancelRequest {
    pub operation: OperationId,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, TS)]
pub struct ExportRequest {
    pub export_id: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize, TS)]
pub struct WorkoutsRequest {
    pub export_id: i64,
    pub filter: WorkoutFilter,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, TS)]
pub struct WorkoutRequest {
    pub workout_id: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize, TS)]
pub struct SeriesRequest {
    pub export_id: i64,
    /// A HealthKit type identifier (`HKQuantityTypeIdentifierStepCount`).
    pub kind: String,
    /// Days since 1970-01-01, inclusive.
    pub from_day: Option<i64>,
    pub to_day: Option<i64>,
}

/// What a quick look at a file says, before any reading: for the drop
/// target's hover state.
#[derive(Debug, Clone, Serialize, TS)]
pub struct FileCheck {
    pub path: String,
    /// Whether it holds an Apple Health export.
    pub ok: bool,
    /// Why not, for people.
    pub reason: Option<String>,
    pub kind: Option<ErrorKind>,
    /// The export's XML inside (`export.xml`, `экспорт.xml`).
    pub xml_name: Option<String>,
    pub file_size: Option<u64>,
}

/// An export opened: read now, or found already in the store.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Opened {
    pub export: ExportInfo,
    /// The store already held it; nothing was read.
    pub reused: bool,
    pub seconds: f64,
}
