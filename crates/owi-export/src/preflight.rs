//! What an Open Wearables server will make of an export, found by reading
//! it once before anything is sent: what it will import, what it will pass
//! over, whether the stream needs cleaning for the server's strict parser,
//! and which workouts to look for on the server afterwards.
//!
//! [`server_value`] is also what the bundled server imports by, so the
//! check and the import cannot disagree.

use std::collections::{BTreeMap, HashSet};
use std::ops::ControlFlow;

use owi_progress::{Phase, Progress, ProgressSink};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::*;
use crate::read::{ReadOptions, Stats, Visitor, read_export};
use crate::source::ExportSource;

/// The value the server stores for a record, or `None` when it passes the
/// record over: quantities by their number, sleep by its stage.
pub fn server_value(record: &Record<'_>) -> Option<f64> {
    value_for_server(record.kind, record.value)
}

/// [`server_value`] from a record's type and value alone, for callers that
/// hold them apart (the local store's preview of an import).
pub fn value_for_server(kind: &str, value: Value<'_>) -> Option<f64> {
    match value {
        Value::Number(v) => Some(v),
        Value::Text(t) if kind == SLEEP => sleep_stage(t),
        _ => None,
    }
}

const SLEEP: &str = "HKCategoryTypeIdentifierSleepAnalysis";

/// Sleep stages as numbers, so they fit a table of samples.
pub fn sleep_stage(value: &str) -> Option<f64> {
    Some(match value.strip_prefix("HKCategoryValueSleepAnalysis")? {
        "InBed" => 0.0,
        "AsleepUnspecified" | "Asleep" => 1.0,
        "Awake" => 2.0,
        "AsleepCore" => 3.0,
        "AsleepDeep" => 4.0,
        "AsleepREM" => 5.0,
        _ => return None,
    })
}

/// A workout as the server tells them apart: start and end, in UTC seconds.
pub type WorkoutKey = (i64, i64);

/// The outcome of the check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Preflight {
    /// xxh3-128 of the XML, as 32 hex digits (the reader's fingerprint).
    pub fingerprint: String,
    /// Records the server will store, by type.
    pub imported: BTreeMap<String, u64>,
    /// What it will pass over, by record type or element name.
    pub ignored: BTreeMap<String, u64>,
    /// Distinct workouts (the server keeps one per source, start and end).
    pub workouts: u64,
    /// The first and last workout start, UTC seconds.
    pub workout_span: Option<(i64, i64)>,
    /// Every distinct workout's start and end, sorted, for the read-back.
    #[serde(skip)]
    pub workout_keys: Vec<WorkoutKey>,
    pub stats: Stats,
}

impl Preflight {
    pub fn records_imported(&self) -> u64 {
        self.imported.values().sum()
    }

    pub fn items_ignored(&self) -> u64 {
        self.ignored.values().sum()
    }

    /// Whether a strict XML parser would refuse the export as it is: a DTD
    /// (iOS 16's is malformed) or characters XML forbids.
    pub fn needs_cleaning(&self) -> bool {
        self.stats.had_dtd || self.stats.repaired_chars > 0
    }
}

/// Reads the export once and says what the server will make of it.
pub fn preflight(source: &ExportSource, options: ReadOptions<'_>) -> Result<Preflight, Error> {
    let mut check = Check::default();
    let relabel = AsCheck(options.progress);
    let options = ReadOptions {
        read_routes: false,
        progress: &relabel,
        ..options
    };
    let report = read_export(source, &mut check, options).map_err(|failure| failure.error)?;
    let mut keys: Vec<WorkoutKey> = check.workouts.iter().map(|(_, s, e)| (*s, *e)).collect();
    keys.sort_unstable();
    let mut ignored = check.ignored;
    let stats = report.stats;
    for (what, count) in [
        ("Correlation", stats.correlations),
        ("ActivitySummary", stats.activity_summaries),
    ] {
        if count > 0 {
            ignored.insert(what.to_string(), count);
        }
    }
    for (element, count) in &stats.elements {
        *ignored.entry(element.clone()).or_default() += count;
    }
    for (reason, count) in &stats.skipped {
        *ignored
            .entry(format!("unreadable: {}", reason.as_str()))
            .or_default() += count;
    }
    Ok(Preflight {
        fingerprint: report.fingerprint,
        imported: check.imported,
        ignored,
        workouts: keys.len() as u64,
        workout_span: keys
            .first()
            .zip(keys.last())
            .map(|(first, last)| (first.0, last.0)),
        workout_keys: keys,
        stats,
    })
}

/// The reader reports an ingest; this read is a check.
struct AsCheck<'a>(&'a dyn ProgressSink);

impl ProgressSink for AsCheck<'_> {
    fn report(&self, event: Progress) {
        let phase = match event.phase() {
            Phase::Ingest => Phase::Check,
            other => other,
        };
        self.0.report(event.in_phase(phase));
    }
}

#[derive(Default)]
struct Check {
    imported: BTreeMap<String, u64>,
    ignored: BTreeMap<String, u64>,
    /// Source, start, end: the server's identity of a workout.
    workouts: HashSet<(String, i64, i64)>,
}

impl Visitor for Check {
    fn record(&mut self, record: &Record<'_>) -> ControlFlow<()> {
        let tally = if server_value(record).is_some() {
            &mut self.imported
        } else {
            &mut self.ignored
        };
        // Types repeat millions of times: allocate a key only once each.
        match tally.get_mut(record.kind) {
            Some(n) => *n += 1,
            None => {
                tally.insert(record.kind.to_string(), 1);
            }
        }
        ControlFlow::Continue(())
    }

    fn workout(&mut self, workout: &Workout) -> ControlFlow<()> {
        self.workouts.insert((
            workout.source_name.clone(),
            workout.start.utc,
            workout.end.utc,
        ));
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn record<'a>(kind: &'a str, value: Value<'a>) -> Record<'a> {
        let at = Timestamp {
            utc: 0,
            offset_min: 0,
        };
        Record {
            kind,
            source_name: "Watch",
            source_version: None,
            device: None,
            unit: None,
            created: None,
            start: at,
            end: at,
            value,
            metadata: &[],
            beats: &[],
            offset: 0,
        }
    }

    #[test]
    fn the_server_takes_numbers_and_sleep_stages_only() {
        let hr = record("HKQuantityTypeIdentifierHeartRate", Value::Number(61.0));
        assert_eq!(server_value(&hr), Some(61.0));
        let deep = record(SLEEP, Value::Text("HKCategoryValueSleepAnalysisAsleepDeep"));
        assert_eq!(server_value(&deep), Some(4.0));
        let odd = record(SLEEP, Value::Text("HKCategoryValueSleepAnalysisDreaming"));
        assert_eq!(server_value(&odd), None);
        let mindful = record(
            "HKCategoryTypeIdentifierMindfulSession",
            Value::Text("HKCategoryValueNotApplicable"),
        );
        assert_eq!(server_value(&mindful), None);
        let empty = record("HKQuantityTypeIdentifierStepCount", Value::None);
        assert_eq!(server_value(&empty), None);
    }
}
