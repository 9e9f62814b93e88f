//! What an import writes: every workout and sample of an export, upserted
//! in one transaction (a failed import leaves nothing half-counted), and
//! the names the API gives HealthKit's types.

use std::ops::ControlFlow;
use std::sync::Mutex;

use owi_export::{Correlation, ExportSource, ReadOptions, Record, Visitor, Workout, read_export};
use owi_progress::CancelToken;
use rusqlite::{Transaction, params};

use super::{ImportError, Job, Progressor};
use crate::AppState;
use crate::db::{Db, now_rfc3339};

pub(super) fn import(
    state: &AppState,
    db: &Db,
    job: &Job,
    path: &std::path::Path,
    stop: &CancelToken,
    items: &Mutex<u64>,
    started_at: &str,
) -> Result<(), ImportError> {
    let source = ExportSource::open(path)?;
    let progress = Progressor {
        hub: &state.hub,
        reports: state
            .config
            .compat
            .reports(job.origin, crate::sync::Stage::Processing),
        job,
        started_at,
        items,
        last: Mutex::new(None),
    };
    db.blocking(|c| {
        let tx = c.transaction()?;
        let result = {
            let mut visitor = ImportVisitor::new(&tx, &job.user_id, items)?;
            let read = read_export(
                &source,
                &mut visitor,
                ReadOptions {
                    progress: &progress,
                    cancel: Some(stop),
                    read_routes: false,
                },
            );
            visitor.error.take().map_or(Ok(read), Err)
        };
        match result {
            // Open Wearables 0.6 parses strictly: iOS 16's malformed DTD
            // (Export Version 12) or a character XML forbids fails the
            // whole import there, and so here when imitating it.
            Ok(Ok(report))
                if state.config.compat.parses_strictly()
                    && (report.stats.dtd_version == Some(12) || report.stats.repaired_chars > 0) =>
            {
                Ok(Err(ImportError::Strict(owi_export::Error::Io {
                    path: path.to_path_buf(),
                    source: std::io::Error::other(
                        "syntax error: not well-formed XML (a DTD or a character XML forbids; a strict parser refuses both)",
                    ),
                })))
            }
            Ok(Ok(_report)) => {
                tx.commit()?;
                // Fold the import's WAL back into the database now rather
                // than leave a file as large as the import behind.
                if let Err(e) = c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
                    tracing::warn!(error = %e, "could not checkpoint the data WAL");
                }
                Ok(Ok(()))
            }
            Ok(Err(failure)) => Ok(Err(match failure.error {
                owi_export::Error::Cancelled { .. } => ImportError::Stopped,
                other => ImportError::Export(other),
            })),
            Err(e) => Err(e),
        }
    })??;
    state.db.blocking(|c| {
        c.execute(
            "UPDATE users SET last_synced_at = ?, last_synced_provider = 'apple' WHERE id = ?",
            params![now_rfc3339(), job.user_id],
        )
    })?;
    Ok(())
}

/// Maps a HealthKit type to the series type name the API shows
/// (`HKQuantityTypeIdentifierHeartRate` → `heart_rate`).
pub fn series_type(kind: &str) -> String {
    let name = kind
        .strip_prefix("HKQuantityTypeIdentifier")
        .or_else(|| kind.strip_prefix("HKCategoryTypeIdentifier"))
        .or_else(|| kind.strip_prefix("HKDataType"))
        .unwrap_or(kind);
    snake(name)
}

/// `HKWorkoutActivityTypeTraditionalStrengthTraining` → `traditional_strength_training`.
pub fn workout_type(kind: &str) -> String {
    snake(kind.strip_prefix("HKWorkoutActivityType").unwrap_or(kind))
}

fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_uppercase())) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

struct ImportVisitor<'t> {
    samples: rusqlite::Statement<'t>,
    workouts: rusqlite::Statement<'t>,
    user_id: String,
    items: &'t Mutex<u64>,
    local: u64,
    error: Option<rusqlite::Error>,
}

impl<'t> ImportVisitor<'t> {
    fn new(
        tx: &'t Transaction<'_>,
        user_id: &str,
        items: &'t Mutex<u64>,
    ) -> rusqlite::Result<Self> {
        Ok(ImportVisitor {
            samples: tx.prepare(
                "INSERT INTO samples (user_id, source, series_type, recorded_at, zone_offset, value, unit)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (user_id, source, series_type, recorded_at)
                 DO UPDATE SET value = excluded.value, unit = excluded.unit, zone_offset = excluded.zone_offset",
            )?,
            workouts: tx.prepare(
                "INSERT INTO workouts (id, user_id, source, type, start, end, zone_offset, duration_s, device,
                    calories_kcal, distance_m, hr_min, hr_avg, hr_max)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (user_id, source, start, end) DO NOTHING",
            )?,
            user_id: user_id.to_string(),
            items,
            local: 0,
            error: None,
        })
    }

    fn counted(&mut self, result: rusqlite::Result<usize>) -> ControlFlow<()> {
        match result {
            Ok(_) => {
                self.local += 1;
                if self.local.is_multiple_of(1024)
                    && let Ok(mut n) = self.items.lock()
                {
                    *n = self.local;
                }
                ControlFlow::Continue(())
            }
            Err(e) => {
                self.error = Some(e);
                ControlFlow::Break(())
            }
        }
    }
}

impl Drop for ImportVisitor<'_> {
    fn drop(&mut self) {
        if let Ok(mut n) = self.items.lock() {
            *n = self.local;
        }
    }
}

impl Visitor for ImportVisitor<'_> {
    fn record(&mut self, r: &Record<'_>) -> ControlFlow<()> {
        // The pre-flight check counts by the same rule.
        let Some(value) = owi_export::server_value(r) else {
            return ControlFlow::Continue(());
        };
        let result = self.samples.execute(params![
            self.user_id,
            r.source_name,
            series_type(r.kind),
            r.start.utc,
            r.start.offset_min,
            value,
            r.unit
        ]);
        self.counted(result)
    }

    // Open Wearables servers read every `Record`, at any depth: those in a
    // correlation are upserted again (stored once) and counted again.
    fn correlation(&mut self, c: &Correlation) -> ControlFlow<()> {
        for nested in &c.records {
            let Some(value) = owi_export::nested_server_value(nested) else {
                continue;
            };
            let start = nested.start.unwrap_or(c.start);
            let result = self.samples.execute(params![
                self.user_id,
                c.source_name,
                series_type(&nested.kind),
                start.utc,
                start.offset_min,
                value,
                nested.unit
            ]);
            self.counted(result)?;
        }
        ControlFlow::Continue(())
    }

    fn workout(&mut self, w: &Workout) -> ControlFlow<()> {
        let hr = w.heart_rate();
        let result = self.workouts.execute(params![
            uuid::Uuid::new_v4().to_string(),
            self.user_id,
            w.source_name,
            workout_type(&w.activity_type),
            w.start.utc,
            w.end.utc,
            w.start.offset_min,
            w.duration_secs(),
            w.device,
            w.energy_kcal(),
            w.distance_m(),
            hr.min,
            hr.avg,
            hr.max
        ]);
        self.counted(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_snake_case() {
        assert_eq!(
            series_type("HKQuantityTypeIdentifierHeartRate"),
            "heart_rate"
        );
        assert_eq!(series_type("HKQuantityTypeIdentifierVO2Max"), "vo2_max");
        assert_eq!(
            series_type("HKCategoryTypeIdentifierSleepAnalysis"),
            "sleep_analysis"
        );
        assert_eq!(
            workout_type("HKWorkoutActivityTypeTraditionalStrengthTraining"),
            "traditional_strength_training"
        );
        assert_eq!(
            workout_type("HKWorkoutActivityTypeHighIntensityIntervalTraining"),
            "high_intensity_interval_training"
        );
    }
}
