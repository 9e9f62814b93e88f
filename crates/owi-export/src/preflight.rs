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

use crate::chooser::{Chooser, Tally};
use crate::error::Error;
use crate::identity::SentItems;
use crate::model::*;
use crate::read::{ReadOptions, Report, Stats, Visitor, read_export};
use crate::sample_keys::{KindIds, SampleKeys};
use crate::selection::{LeftOut, Selection};
use crate::share::Share;
use crate::source::ExportSource;

/// The value the server stores for a record, or `None` when it passes the
/// record over: quantities of the types it knows by their number, sleep by
/// its stage.
pub fn server_value(record: &Record<'_>) -> Option<f64> {
    value_for_server(record.kind, record.value)
}

/// [`server_value`] for a record nested in a correlation. Servers read
/// every `Record` at any depth, so these count too.
pub fn nested_server_value(record: &NestedRecord) -> Option<f64> {
    nested_value_for_server(&record.kind, record.value.as_deref())
}

/// [`nested_server_value`] from a nested record's type and value as
/// written.
pub fn nested_value_for_server(kind: &str, value: Option<&str>) -> Option<f64> {
    let value = match value {
        None => Value::None,
        Some(text) => match crate::units::parse_number(text) {
            Ok(number) => Value::Number(number),
            Err(_) => Value::Text(text),
        },
    };
    value_for_server(kind, value)
}

/// [`server_value`] from a record's type and value alone, for callers that
/// hold them apart (the local store's preview of an import).
pub fn value_for_server(kind: &str, value: Value<'_>) -> Option<f64> {
    match value {
        Value::Number(v) if crate::server_types::server_stores(kind) => Some(v),
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

/// The `model:` field of a HealthKit device description ("Watch",
/// "iPhone"), or "" when there is none: part of a sample's identity on the
/// server.
pub fn device_model(device: Option<&str>) -> &str {
    device
        .into_iter()
        .flat_map(|d| d.split(", "))
        .find_map(|field| field.trim().strip_prefix("model:"))
        .map_or("", str::trim)
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
    /// Records nested in correlations that the server imports too: it
    /// reads every `Record` at any depth, stores these once (they repeat
    /// top-level ones) but counts them again.
    pub nested_imported: u64,
    /// The samples the server keeps: distinct by device model, type and
    /// instant (its identity of a sample: the app that wrote it does not
    /// count), sleep excepted (servers turn sleep into sessions).
    pub samples: u64,
    /// The first and last of those samples' starts, UTC seconds.
    pub sample_span: Option<(i64, i64)>,
    /// Workout elements that go (the server counts each one it reads).
    pub workout_items: u64,
    /// The reader's counts, of the whole export.
    pub stats: Stats,
    /// What goes, when not all of it does ([`preflight_choosing`]); the
    /// figures above are of what goes.
    #[serde(skip)]
    pub selection: Option<Selection>,
    /// What the filters and the ledger kept home.
    #[serde(default)]
    pub left_out: LeftOut,
    /// How many items the ledger held, when a delta was asked for.
    #[serde(default)]
    pub ledger_items: Option<u64>,
    /// Every item by group and day, for a dry run ([`Choice::tally`]).
    #[serde(default)]
    pub tally: Option<Tally>,
}

/// What a choosing check chooses by.
#[derive(Debug)]
pub struct Choice<'a> {
    pub share: &'a Share,
    /// What the server has from us; `None` sends everything shared.
    pub sent: Option<&'a mut SentItems>,
    /// Count every item by group and day too (a dry run's breakdown).
    pub tally: bool,
}

impl Preflight {
    pub fn records_imported(&self) -> u64 {
        self.imported.values().sum()
    }

    pub fn items_ignored(&self) -> u64 {
        self.ignored.values().sum()
    }

    /// What an Open Wearables server counts as processed when it imports
    /// the export (`items_processed`): every record it takes, those nested
    /// in correlations again, and every workout.
    pub fn items_for_server(&self) -> u64 {
        self.records_imported() + self.nested_imported + self.workout_items
    }

    /// Items that go: every one for a plain check.
    pub fn items_sent(&self) -> u64 {
        match &self.selection {
            Some(selection) => selection.items(),
            None => {
                let s = &self.stats;
                s.records
                    + s.correlations
                    + s.workouts
                    + s.activity_summaries
                    + s.elements.values().sum::<u64>()
            }
        }
    }

    /// The bytes of XML that go (before any cut into pieces).
    pub fn bytes_sent(&self) -> u64 {
        self.selection
            .as_ref()
            .map_or(self.stats.bytes, Selection::len)
    }

    /// Whether a strict XML parser would refuse the export as it is: a DTD
    /// (iOS 16's is malformed) or characters XML forbids.
    pub fn needs_cleaning(&self) -> bool {
        self.stats.had_dtd || self.stats.repaired_chars > 0
    }
}

/// Reads the export once and says what the server will make of it, all of
/// it sent as it is.
pub fn preflight(source: &ExportSource, options: ReadOptions<'_>) -> Result<Preflight, Error> {
    run_check(source, options, None)
}

/// [`preflight`] of only what goes: what the share lets out and, with
/// `sent`, what the server does not have from us yet. The outcome's
/// [`selection`](Preflight::selection) says which bytes those are, and
/// `sent` comes back with what this export still holds marked.
pub fn preflight_choosing(
    source: &ExportSource,
    options: ReadOptions<'_>,
    choice: Choice<'_>,
) -> Result<Preflight, Error> {
    let ledger_items = choice.sent.as_deref().map(SentItems::len);
    let chooser = Chooser::new(choice.share, choice.sent, choice.tally);
    let mut outcome = run_check(source, options, Some(chooser))?;
    outcome.ledger_items = ledger_items;
    Ok(outcome)
}

fn run_check(
    source: &ExportSource,
    options: ReadOptions<'_>,
    chooser: Option<Chooser<'_>>,
) -> Result<Preflight, Error> {
    let mut check = Check::new(chooser);
    let relabel = AsCheck(options.progress);
    let options = ReadOptions {
        read_routes: false,
        progress: &relabel,
        ..options
    };
    let report = read_export(source, &mut check, options).map_err(|failure| failure.error)?;
    Ok(conclude(check, report))
}

pub(crate) fn conclude(mut check: Check<'_>, report: Report) -> Preflight {
    check.end_run();
    let choosing = check.chooser.is_some();
    let mut keys: Vec<WorkoutKey> = check.workouts.iter().map(|(_, s, e)| (*s, *e)).collect();
    keys.sort_unstable();
    let mut ignored = check.ignored;
    let stats = report.stats;
    for (what, count) in [
        ("Correlation", check.correlations),
        ("ActivitySummary", check.activity_summaries),
    ] {
        if count > 0 {
            ignored.insert(what.to_string(), count);
        }
    }
    for (element, count) in &check.elements {
        *ignored.entry(element.clone()).or_default() += count;
    }
    let (selection, left_out, tally) = match check.chooser {
        Some(chooser) => {
            let (selection, left_out, tally) = chooser.finish(stats.bytes);
            (Some(selection), left_out, tally)
        }
        None => (None, LeftOut::default(), None),
    };
    // Unreadable items go as they are in a plain check; chosen, they stay.
    if !choosing {
        for (reason, count) in &stats.skipped {
            *ignored
                .entry(format!("unreadable: {}", reason.as_str()))
                .or_default() += count;
        }
    }
    Preflight {
        fingerprint: report.fingerprint,
        imported: check.imported,
        ignored,
        workouts: keys.len() as u64,
        workout_span: keys
            .first()
            .zip(keys.last())
            .map(|(first, last)| (first.0, last.0)),
        workout_keys: keys,
        nested_imported: check.nested_imported,
        samples: check.samples.count(),
        sample_span: check.sample_span,
        workout_items: if choosing {
            check.workout_items
        } else {
            stats.workouts
        },
        stats,
        selection,
        left_out,
        ledger_items: None,
        tally,
    }
}

/// The reader reports an ingest; this read is a check.
pub(crate) struct AsCheck<'a>(pub(crate) &'a dyn ProgressSink);

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
pub(crate) struct Check<'a> {
    /// Present when only part of the export goes.
    pub(crate) chooser: Option<Chooser<'a>>,
    imported: BTreeMap<String, u64>,
    correlations: u64,
    activity_summaries: u64,
    elements: BTreeMap<String, u64>,
    workout_items: u64,
    ignored: BTreeMap<String, u64>,
    nested_imported: u64,
    /// Source, start, end: the server's identity of a workout.
    workouts: HashSet<(String, i64, i64)>,
    /// Each sample's identity, 4 bytes a sample.
    samples: SampleKeys,
    kind_ids: KindIds,
    sample_span: Option<(i64, i64)>,
    /// The type of the records being read and what is known of it.
    run: Option<KindRun>,
    /// The device description seen last and its model.
    last_device: Option<(Box<str>, Box<str>)>,
}

/// What the check needs of a record's type, found once for a run of
/// records of that type (exports come grouped by type), and the run's
/// counts until the type changes.
struct KindRun {
    kind: Box<str>,
    id: u32,
    /// [`server_stores`](crate::server_stores): its numbers are imported.
    stores: bool,
    sleep: bool,
    imported: u64,
    ignored: u64,
}

impl<'a> Check<'a> {
    pub(crate) fn new(chooser: Option<Chooser<'a>>) -> Check<'a> {
        Check {
            chooser,
            ..Check::default()
        }
    }

    fn sample(&mut self, device: Option<&str>, kind: u32, start: i64) {
        let model = match (device, &self.last_device) {
            (Some(device), Some((last, model))) if last.as_ref() == device => model.as_ref(),
            (Some(device), _) => {
                let model = device_model(Some(device));
                self.last_device = Some((device.into(), model.into()));
                model
            }
            (None, _) => "",
        };
        self.samples.insert(model, kind, start);
        self.sample_span = Some(match self.sample_span {
            Some((first, last)) => (first.min(start), last.max(start)),
            None => (start, start),
        });
    }

    /// The run of records of `kind`, starting one when the type changes.
    fn run_of(&mut self, kind: &str) -> &mut KindRun {
        if self
            .run
            .as_ref()
            .is_some_and(|run| run.kind.as_ref() != kind)
        {
            self.end_run();
        }
        let ids = &mut self.kind_ids;
        self.run.get_or_insert_with(|| KindRun {
            kind: kind.into(),
            id: ids.of(kind),
            stores: crate::server_types::server_stores(kind),
            sleep: kind == SLEEP,
            imported: 0,
            ignored: 0,
        })
    }

    /// Adds the current run's counts to the tallies.
    fn end_run(&mut self) {
        let Some(run) = self.run.take() else { return };
        for (tally, n) in [
            (&mut self.imported, run.imported),
            (&mut self.ignored, run.ignored),
        ] {
            if n > 0 {
                *tally.entry(run.kind.to_string()).or_default() += n;
            }
        }
    }
}

impl Visitor for Check<'_> {
    fn record(&mut self, record: &Record<'_>) -> ControlFlow<()> {
        if let Some(chooser) = &mut self.chooser
            && !chooser.record(record)
        {
            return ControlFlow::Continue(());
        }
        let run = self.run_of(record.kind);
        // `server_value`, with the type's part of the answer kept.
        let imported = match record.value {
            Value::Number(_) => run.stores,
            Value::Text(t) => run.sleep && sleep_stage(t).is_some(),
            Value::None => false,
        };
        if imported {
            run.imported += 1;
            // Servers turn sleep into sessions, not samples.
            if !run.sleep {
                let id = run.id;
                self.sample(record.device, id, record.start.utc);
            }
        } else {
            run.ignored += 1;
        }
        ControlFlow::Continue(())
    }

    fn correlation(&mut self, correlation: &Correlation) -> ControlFlow<()> {
        if let Some(chooser) = &mut self.chooser
            && !chooser.correlation(correlation)
        {
            return ControlFlow::Continue(());
        }
        self.correlations += 1;
        for nested in &correlation.records {
            if nested_server_value(nested).is_some() {
                self.nested_imported += 1;
                let start = nested.start.unwrap_or(correlation.start).utc;
                if nested.kind != SLEEP {
                    let kind = self.kind_ids.of(&nested.kind);
                    self.sample(correlation.device.as_deref(), kind, start);
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn workout(&mut self, workout: &Workout) -> ControlFlow<()> {
        if let Some(chooser) = &mut self.chooser
            && !chooser.workout(workout)
        {
            return ControlFlow::Continue(());
        }
        self.workout_items += 1;
        self.workouts.insert((
            workout.source_name.clone(),
            workout.start.utc,
            workout.end.utc,
        ));
        ControlFlow::Continue(())
    }

    fn activity_summary(&mut self, summary: &ActivitySummary) -> ControlFlow<()> {
        if let Some(chooser) = &mut self.chooser
            && !chooser.activity_summary(summary)
        {
            return ControlFlow::Continue(());
        }
        self.activity_summaries += 1;
        ControlFlow::Continue(())
    }

    fn element(&mut self, element: &Element) -> ControlFlow<()> {
        if let Some(chooser) = &mut self.chooser
            && !chooser.element(element)
        {
            return ControlFlow::Continue(());
        }
        *self.elements.entry(element.name.clone()).or_default() += 1;
        ControlFlow::Continue(())
    }

    fn extent(&mut self, name: &[u8], start: u64, end: u64) -> ControlFlow<()> {
        if let Some(chooser) = &mut self.chooser {
            chooser.extent(name, start, end);
        }
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
    fn a_device_model_is_its_model_field() {
        let watch = "name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,12, software:26.2";
        assert_eq!(device_model(Some(watch)), "Watch");
        assert_eq!(device_model(Some("name:iPhone, model:iPhone")), "iPhone");
        assert_eq!(device_model(Some("name:Scale")), "");
        assert_eq!(device_model(None), "");
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
        // A number of a type the server has no series for is passed over.
        let water = record("HKQuantityTypeIdentifierDietaryWater", Value::Number(250.0));
        assert_eq!(server_value(&water), None);
    }
}
