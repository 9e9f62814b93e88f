//! What an export holds, as the reader hands it over.
//!
//! `Record`, by far the most frequent element, is borrowed from the reader's
//! buffers so the hot path allocates nothing; the rare elements (workouts,
//! correlations, summaries, clinical documents) are owned.

use serde::Serialize;

use crate::time::Timestamp;
use crate::units;

/// A `key`/`value` pair from a `MetadataEntry`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Meta {
    pub key: String,
    pub value: String,
}

/// What comes before the data: `HealthData`'s locale, `ExportDate`, `Me`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Header {
    pub locale: Option<String>,
    pub export_date: Option<Timestamp>,
    /// `Me`'s attributes (date of birth, biological sex, blood type, …).
    pub me: Vec<(String, String)>,
}

/// A record's value: a quantity, a category value, or nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    None,
    Number(f64),
    Text(&'a str),
}

/// One heartbeat of a `HeartRateVariabilityMetadataList`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Beat {
    pub bpm: f64,
    /// Milliseconds since the epoch.
    pub at_ms: i64,
}

/// A top-level `Record`, borrowed from the reader.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub kind: &'a str,
    pub source_name: &'a str,
    pub source_version: Option<&'a str>,
    /// The device description without HealthKit's per-object pointer
    /// (`name:Apple Watch, manufacturer:Apple Inc., model:Watch, …`).
    pub device: Option<&'a str>,
    pub unit: Option<&'a str>,
    pub created: Option<Timestamp>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub value: Value<'a>,
    pub metadata: &'a [Meta],
    pub beats: &'a [Beat],
    /// Byte offset of the element in the XML.
    pub offset: u64,
}

/// A record nested in a `Correlation` or a `Workout`, owned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NestedRecord {
    pub kind: String,
    pub unit: Option<String>,
    pub value: Option<String>,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub metadata: Vec<Meta>,
}

/// A `Correlation` (blood pressure, food). Its nested records repeat
/// top-level ones, so they are kept apart and never counted as records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Correlation {
    pub kind: String,
    pub source_name: String,
    pub source_version: Option<String>,
    pub device: Option<String>,
    pub created: Option<Timestamp>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub metadata: Vec<Meta>,
    pub records: Vec<NestedRecord>,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkoutEvent {
    /// Index into [`Workout::activities`] when the event belongs to one.
    pub activity: Option<usize>,
    pub kind: String,
    pub date: Timestamp,
    pub duration_s: Option<f64>,
    pub metadata: Vec<Meta>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkoutStatistic {
    pub activity: Option<usize>,
    pub kind: String,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub sum: Option<f64>,
    pub minimum: Option<f64>,
    pub average: Option<f64>,
    pub maximum: Option<f64>,
    pub unit: Option<String>,
}

/// An iOS 16+ `WorkoutActivity`: one leg of a (multi-sport) workout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkoutActivity {
    pub uuid: Option<String>,
    pub activity_type: Option<String>,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub duration_s: Option<f64>,
    pub metadata: Vec<Meta>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteInfo {
    pub source_name: Option<String>,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    /// The `FileReference` path, for routes kept in GPX files.
    pub file: Option<String>,
    /// Whether the reader loaded the referenced file's points into
    /// [`Workout::route_points`] (see [`crate::ReadOptions::read_routes`]).
    pub file_loaded: bool,
    pub metadata: Vec<Meta>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RoutePoint {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub elevation_m: Option<f64>,
    pub speed_mps: Option<f64>,
    pub course_deg: Option<f64>,
    pub h_acc_m: Option<f64>,
    pub v_acc_m: Option<f64>,
}

/// A `Workout` with everything nested in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workout {
    pub activity_type: String,
    pub source_name: String,
    pub source_version: Option<String>,
    pub device: Option<String>,
    pub created: Option<Timestamp>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub duration_s: Option<f64>,
    /// From the `totalDistance` attribute (older exports), in metres.
    pub total_distance_m: Option<f64>,
    /// From the `totalEnergyBurned` attribute (older exports), in kcal.
    pub total_energy_kcal: Option<f64>,
    pub metadata: Vec<Meta>,
    pub events: Vec<WorkoutEvent>,
    pub statistics: Vec<WorkoutStatistic>,
    pub activities: Vec<WorkoutActivity>,
    pub routes: Vec<RouteInfo>,
    pub route_points: Vec<RoutePoint>,
    pub records: Vec<NestedRecord>,
    /// `WorkoutZoneGroup` and any other nested element, kept verbatim.
    pub extra: Vec<Element>,
    pub offset: u64,
}

/// Minimum, average and maximum heart rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HeartRate {
    pub min: Option<f64>,
    pub avg: Option<f64>,
    pub max: Option<f64>,
}

impl Workout {
    /// Workout-level statistics, or the activities' when the workout has none
    /// of that type itself.
    fn stats_of<'a>(&'a self, wanted: impl Fn(&str) -> bool + 'a) -> Vec<&'a WorkoutStatistic> {
        let own: Vec<_> = self
            .statistics
            .iter()
            .filter(|s| s.activity.is_none() && wanted(&s.kind))
            .collect();
        if !own.is_empty() {
            return own;
        }
        self.statistics.iter().filter(|s| wanted(&s.kind)).collect()
    }

    /// Total distance in metres: the attribute when present, otherwise the
    /// sum of the distance statistics.
    pub fn distance_m(&self) -> Option<f64> {
        self.total_distance_m.or_else(|| {
            sum_converted(
                &self.stats_of(|k| k.starts_with("HKQuantityTypeIdentifierDistance")),
                units::metres_per,
            )
        })
    }

    /// Active energy in kcal: the attribute when present, otherwise the
    /// `ActiveEnergyBurned` statistics.
    pub fn energy_kcal(&self) -> Option<f64> {
        self.total_energy_kcal.or_else(|| {
            sum_converted(
                &self.stats_of(|k| k == "HKQuantityTypeIdentifierActiveEnergyBurned"),
                units::kcal_per,
            )
        })
    }

    /// Duration in seconds: the attribute when present, otherwise end − start.
    pub fn duration_secs(&self) -> f64 {
        self.duration_s
            .unwrap_or((self.end.utc - self.start.utc) as f64)
    }

    /// Heart rate from the `HeartRate` statistics (count/min).
    pub fn heart_rate(&self) -> HeartRate {
        let stats = self.stats_of(|k| k == "HKQuantityTypeIdentifierHeartRate");
        let min = stats.iter().filter_map(|s| s.minimum).reduce(f64::min);
        let max = stats.iter().filter_map(|s| s.maximum).reduce(f64::max);
        let avgs: Vec<f64> = stats.iter().filter_map(|s| s.average).collect();
        let avg = (!avgs.is_empty()).then(|| avgs.iter().sum::<f64>() / avgs.len() as f64);
        HeartRate { min, avg, max }
    }

    /// `HKTimeZone` metadata, when the watch recorded it.
    pub fn time_zone(&self) -> Option<&str> {
        self.metadata
            .iter()
            .find(|m| m.key == "HKTimeZone")
            .map(|m| m.value.as_str())
    }
}

fn sum_converted(stats: &[&WorkoutStatistic], factor: fn(&str) -> Option<f64>) -> Option<f64> {
    let mut total = None;
    for s in stats {
        let (Some(sum), Some(f)) = (s.sum, s.unit.as_deref().and_then(factor)) else {
            continue;
        };
        *total.get_or_insert(0.0) += sum * f;
    }
    total
}

/// One `ActivitySummary` (a day of Move/Exercise/Stand rings), either
/// generation: energy-based Move or, for some watches, time-based Move.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivitySummary {
    /// Days since the epoch of `dateComponents`.
    pub day: i64,
    pub active_energy: Option<f64>,
    pub active_energy_goal: Option<f64>,
    pub active_energy_unit: Option<String>,
    pub move_minutes: Option<f64>,
    pub move_minutes_goal: Option<f64>,
    pub exercise_minutes: Option<f64>,
    pub exercise_minutes_goal: Option<f64>,
    pub stand_hours: Option<f64>,
    pub stand_hours_goal: Option<f64>,
    pub offset: u64,
}

/// An element kept as it was: `ClinicalRecord`, `Audiogram`,
/// `VisionPrescription`, `WorkoutZoneGroup`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Element>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(skip)]
    pub offset: u64,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The element's start date, if it has one, for ordering and ranges.
    pub fn date(&self) -> Option<Timestamp> {
        ["startDate", "receivedDate", "dateIssued", "creationDate"]
            .iter()
            .find_map(|k| self.attr(k).and_then(Timestamp::parse))
    }
}

/// Why something was left out. Serialized in snake_case as the key of the
/// `skipped` counts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A quantity record whose value is empty.
    EmptyValue,
    /// A value of `nan` or an infinity.
    NanValue,
    /// A value that is not a number at all.
    InvalidValue,
    /// A missing or unparseable `startDate`/`endDate`.
    InvalidDate,
    /// A required attribute (`type`, `workoutActivityType`, …) is missing.
    MissingAttribute,
    /// An `InstantaneousBeatsPerMinute` whose bpm or time does not parse.
    InvalidBeat,
    /// A route point (GPX `trkpt` or `Location`) without usable coordinates.
    InvalidRoutePoint,
    /// A `FileReference` to a route that is not in the export.
    RouteFileMissing,
    /// A route file that is not readable GPX.
    InvalidRouteFile,
    /// An element too large to keep (more nested nodes than allowed).
    ElementTooLarge,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::EmptyValue => "empty_value",
            SkipReason::NanValue => "nan_value",
            SkipReason::InvalidValue => "invalid_value",
            SkipReason::InvalidDate => "invalid_date",
            SkipReason::MissingAttribute => "missing_attribute",
            SkipReason::InvalidBeat => "invalid_beat",
            SkipReason::InvalidRoutePoint => "invalid_route_point",
            SkipReason::RouteFileMissing => "route_file_missing",
            SkipReason::InvalidRouteFile => "invalid_route_file",
            SkipReason::ElementTooLarge => "element_too_large",
        }
    }
}

/// Something left out, with where it was.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skip {
    pub reason: SkipReason,
    /// The element it happened in (`Record`, `Workout`, `trkpt`, …).
    pub element: &'static str,
    /// Byte offset in the XML (for route files: of the referencing element).
    pub offset: u64,
    /// The offending text, shortened.
    pub detail: String,
    /// For a skipped `Record`, its type.
    pub record_type: Option<String>,
}
