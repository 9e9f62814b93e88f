//! Shared helpers of the reader tests: a visitor that copies everything it
//! is lent into owned values, fixture writers and small assertions.

#![allow(dead_code)]

pub mod zipcraft;

use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use owi_export::{
    ActivitySummary, Beat, Correlation, Element, Error, ExportSource, Failure, Header, Meta,
    ReadOptions, Record, Report, Skip, Timestamp, Value, Visitor, Workout, read_export,
};
use owi_progress::CancelToken;

/// A record's value, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedValue {
    None,
    Number(f64),
    Text(String),
}

/// A top-level record, copied out of the reader's buffers.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedRecord {
    pub kind: String,
    pub source_name: String,
    pub source_version: Option<String>,
    pub device: Option<String>,
    pub unit: Option<String>,
    pub created: Option<Timestamp>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub value: OwnedValue,
    pub metadata: Vec<Meta>,
    pub beats: Vec<Beat>,
    pub offset: u64,
}

impl OwnedRecord {
    fn of(r: &Record<'_>) -> Self {
        OwnedRecord {
            kind: r.kind.to_string(),
            source_name: r.source_name.to_string(),
            source_version: r.source_version.map(str::to_string),
            device: r.device.map(str::to_string),
            unit: r.unit.map(str::to_string),
            created: r.created,
            start: r.start,
            end: r.end,
            value: match r.value {
                Value::None => OwnedValue::None,
                Value::Number(n) => OwnedValue::Number(n),
                Value::Text(t) => OwnedValue::Text(t.to_string()),
            },
            metadata: r.metadata.to_vec(),
            beats: r.beats.to_vec(),
            offset: r.offset,
        }
    }

    pub fn number(&self) -> f64 {
        match self.value {
            OwnedValue::Number(n) => n,
            ref other => panic!("record {} should hold a number, got {other:?}", self.kind),
        }
    }

    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|m| m.key == key)
            .map(|m| m.value.as_str())
    }
}

/// What the visitor saw, in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Header,
    Record(usize),
    Correlation(usize),
    Workout(usize),
    ActivitySummary(usize),
    Element(usize),
    Skip(usize),
}

/// Copies everything into owned vectors. Optionally cancels a token, or
/// asks the reader to stop, after a number of records.
#[derive(Debug, Default)]
pub struct Collector {
    pub headers: Vec<Header>,
    pub records: Vec<OwnedRecord>,
    pub correlations: Vec<Correlation>,
    pub workouts: Vec<Workout>,
    pub summaries: Vec<ActivitySummary>,
    pub elements: Vec<Element>,
    pub skips: Vec<Skip>,
    pub order: Vec<Seen>,
    pub cancel_after: Option<(usize, CancelToken)>,
    pub stop_after: Option<usize>,
}

impl Collector {
    pub fn header(&self) -> &Header {
        assert_eq!(
            self.headers.len(),
            1,
            "the header should be delivered exactly once"
        );
        &self.headers[0]
    }

    /// The one record whose `sourceName` is `source`.
    pub fn by_source(&self, source: &str) -> &OwnedRecord {
        let found: Vec<_> = self
            .records
            .iter()
            .filter(|r| r.source_name == source)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected exactly one record from source {source:?}, got {found:?}"
        );
        found[0]
    }

    pub fn element(&self, name: &str) -> &Element {
        self.elements
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no <{name}> was delivered to element()"))
    }
}

impl Visitor for Collector {
    fn header(&mut self, header: &Header) -> ControlFlow<()> {
        self.order.push(Seen::Header);
        self.headers.push(header.clone());
        ControlFlow::Continue(())
    }

    fn record(&mut self, record: &Record<'_>) -> ControlFlow<()> {
        self.order.push(Seen::Record(self.records.len()));
        self.records.push(OwnedRecord::of(record));
        if let Some((n, token)) = &self.cancel_after
            && self.records.len() == *n
        {
            token.cancel();
        }
        match self.stop_after {
            Some(n) if self.records.len() >= n => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    }

    fn correlation(&mut self, correlation: &Correlation) -> ControlFlow<()> {
        self.order.push(Seen::Correlation(self.correlations.len()));
        self.correlations.push(correlation.clone());
        ControlFlow::Continue(())
    }

    fn workout(&mut self, workout: &Workout) -> ControlFlow<()> {
        self.order.push(Seen::Workout(self.workouts.len()));
        self.workouts.push(workout.clone());
        ControlFlow::Continue(())
    }

    fn activity_summary(&mut self, summary: &ActivitySummary) -> ControlFlow<()> {
        self.order.push(Seen::ActivitySummary(self.summaries.len()));
        self.summaries.push(summary.clone());
        ControlFlow::Continue(())
    }

    fn element(&mut self, element: &Element) -> ControlFlow<()> {
        self.order.push(Seen::Element(self.elements.len()));
        self.elements.push(element.clone());
        ControlFlow::Continue(())
    }

    fn skip(&mut self, skip: &Skip) -> ControlFlow<()> {
        self.order.push(Seen::Skip(self.skips.len()));
        self.skips.push(skip.clone());
        ControlFlow::Continue(())
    }
}

/// One read: what the visitor collected and how the read ended.
#[derive(Debug)]
pub struct Outcome {
    pub seen: Collector,
    pub result: Result<Report, Box<Failure>>,
}

impl Outcome {
    /// The report of a read that must succeed.
    pub fn report(&self) -> &Report {
        match &self.result {
            Ok(report) => report,
            Err(failure) => panic!(
                "the read should succeed, but failed: {} (stats so far: {:?})",
                failure.error, failure.stats
            ),
        }
    }

    /// The failure of a read that must fail.
    pub fn failure(&self) -> &Failure {
        match &self.result {
            Ok(report) => panic!("the read should fail, but succeeded with {report:?}"),
            Err(failure) => failure,
        }
    }
}

/// Opens `path`, panicking with the error when it cannot be opened.
pub fn open(path: &Path) -> ExportSource {
    ExportSource::open(path)
        .unwrap_or_else(|e| panic!("{} should open as an export: {e}", path.display()))
}

/// The error `ExportSource::open` gives for `path`, which must not open.
pub fn open_err(path: &Path) -> Error {
    match ExportSource::open(path) {
        Ok(source) => panic!(
            "{} should not open as an export, but it did: {source:?}",
            path.display()
        ),
        Err(e) => e,
    }
}

/// Reads `source` with default options into a fresh collector.
pub fn read_source(source: &ExportSource) -> Outcome {
    read_with(source, Collector::default(), ReadOptions::default())
}

pub fn read_with(source: &ExportSource, mut seen: Collector, options: ReadOptions<'_>) -> Outcome {
    let result = read_export(source, &mut seen, options);
    Outcome { seen, result }
}

/// Opens and reads `path`, which must open.
pub fn read_path(path: &Path) -> Outcome {
    read_source(&open(path))
}

/// Writes `bytes` to `dir/name` (creating parent folders) and returns the path.
pub fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
    }
    fs::write(&path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temporary folder: {e}"))
}

/// A short DTD shaped like Apple's (version comment, ELEMENT/ATTLIST pairs).
pub const DTD: &str = r#"<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 14 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord|Audiogram|VisionPrescription)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ELEMENT ExportDate EMPTY>
<!ATTLIST ExportDate
  value CDATA #REQUIRED
>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record
  type          CDATA #REQUIRED
  unit          CDATA #IMPLIED
  value         CDATA #IMPLIED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
]>"#;

/// A complete export around `body`: declaration, DTD, `ExportDate`, `Me`.
pub fn export_doc(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{DTD}\n<HealthData locale=\"en_US\">\n \
         <ExportDate value=\"2024-06-01 08:10:05 +0200\"/>\n \
         <Me HKCharacteristicTypeIdentifierDateOfBirth=\"1990-05-20\" \
         HKCharacteristicTypeIdentifierBiologicalSex=\"HKBiologicalSexFemale\"/>\n\
         {body}\n</HealthData>\n"
    )
}

/// A plain quantity record, on one line, with a distinctive source name.
pub fn quantity(kind: &str, source: &str, unit: &str, value: &str, start: &str) -> String {
    format!(
        " <Record type=\"{kind}\" sourceName=\"{source}\" sourceVersion=\"10.2\" unit=\"{unit}\" \
         creationDate=\"{start}\" startDate=\"{start}\" endDate=\"{start}\" value=\"{value}\"/>\n"
    )
}

/// A realistic export of `n` records of a few shapes (empty elements,
/// metadata, heart-beat lists, a correlation and a workout now and then).
pub fn many_records(n: usize) -> String {
    let mut body = String::new();
    for i in 0..n {
        let minute = i % 60;
        let hour = (i / 60) % 24;
        let start = format!("2024-02-03 {hour:02}:{minute:02}:00 +0100");
        match i % 5 {
            0 => body.push_str(&quantity(
                "HKQuantityTypeIdentifierHeartRate",
                "Ana’s Apple Watch",
                "count/min",
                &format!("{}", 60 + i % 40),
                &start,
            )),
            1 => body.push_str(&format!(
                " <Record type=\"HKQuantityTypeIdentifierStepCount\" sourceName=\"iPhone\" unit=\"count\" \
                 startDate=\"{start}\" endDate=\"{start}\" value=\"{i}\">\n  \
                 <MetadataEntry key=\"HKMetadataKeySyncVersion\" value=\"{i}\"/>\n </Record>\n"
            )),
            2 => body.push_str(&format!(
                " <Record type=\"HKQuantityTypeIdentifierHeartRateVariabilitySDNN\" sourceName=\"Watch\" \
                 unit=\"ms\" startDate=\"{start}\" endDate=\"{start}\" value=\"4{i}.5\">\n  \
                 <HeartRateVariabilityMetadataList>\n   \
                 <InstantaneousBeatsPerMinute bpm=\"61\" time=\"{h12}:{minute:02}:01.25 {ampm}\"/>\n   \
                 <InstantaneousBeatsPerMinute bpm=\"63\" time=\"{h12}:{minute:02}:02.50 {ampm}\"/>\n  \
                 </HeartRateVariabilityMetadataList>\n </Record>\n",
                h12 = if hour % 12 == 0 { 12 } else { hour % 12 },
                ampm = if hour < 12 { "AM" } else { "PM" },
            )),
            3 => body.push_str(&format!(
                " <Record type=\"HKCategoryTypeIdentifierSleepAnalysis\" sourceName=\"iPhone\" \
                 startDate=\"{start}\" endDate=\"{start}\" value=\"HKCategoryValueSleepAnalysisAsleepCore\"/>\n"
            )),
            _ if i % 50 == 4 => body.push_str(&format!(
                " <Workout workoutActivityType=\"HKWorkoutActivityTypeWalking\" duration=\"1\" durationUnit=\"min\" \
                 sourceName=\"Watch\" startDate=\"{start}\" endDate=\"{start}\">\n  \
                 <MetadataEntry key=\"n\" value=\"{i}\"/>\n  \
                 <WorkoutStatistics type=\"HKQuantityTypeIdentifierDistanceWalkingRunning\" sum=\"0.{i}\" unit=\"km\"/>\n \
                 </Workout>\n"
            )),
            _ => body.push_str(&format!(
                " <Correlation type=\"HKCorrelationTypeIdentifierBloodPressure\" sourceName=\"Health\" \
                 startDate=\"{start}\" endDate=\"{start}\">\n  \
                 <Record type=\"HKQuantityTypeIdentifierBloodPressureSystolic\" sourceName=\"Health\" unit=\"mmHg\" \
                 startDate=\"{start}\" endDate=\"{start}\" value=\"12{}\"/>\n </Correlation>\n",
                i % 10
            )),
        }
    }
    export_doc(&body)
}

/// Byte offset of the `<tag` that precedes the unique `marker` in `doc`.
pub fn offset_of(doc: &str, tag: &str, marker: &str) -> u64 {
    let at = doc
        .find(marker)
        .unwrap_or_else(|| panic!("marker {marker:?} is not in the fixture"));
    assert_eq!(
        doc.matches(marker).count(),
        1,
        "marker {marker:?} must be unique in the fixture"
    );
    let open = format!("<{tag}");
    doc[..at]
        .rfind(&open)
        .unwrap_or_else(|| panic!("no {open} before {marker:?}")) as u64
}

/// Asserts that an error message names the file it is about.
pub fn assert_names_file(message: &str, path: &Path) {
    let shown = path.display().to_string();
    assert!(
        message.contains(&shown),
        "the message should name the file {shown}, but says: {message}"
    );
}

/// Asserts `a` and `b` are within `eps`.
#[track_caller]
pub fn assert_close(a: f64, b: f64, eps: f64, what: &str) {
    assert!(
        (a - b).abs() <= eps,
        "{what}: {a} is not within {eps} of {b}"
    );
}
