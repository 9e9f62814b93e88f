//! Helpers for the store's integration tests: an independent, deliberately
//! simple reading of export XML (so expected counts do not come from the
//! code under test), hand-written fixtures, and direct looks at the SQLite
//! file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use owi_export::Timestamp;
use owi_store::{IngestOptions, IngestOutcome, Store};

pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

// ---- A minimal reading of export XML -----------------------------------------

/// One top-level `<Record>` as written in the file.
#[derive(Debug, Clone)]
pub struct RecordScan {
    pub kind: String,
    pub source: String,
    pub unit: Option<String>,
    /// The `device` attribute, unescaped, with its `<<HKDevice: 0x…>, ` part.
    pub device: Option<String>,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub value: Option<String>,
}

impl RecordScan {
    /// Whether the store is expected to keep this record: valid dates, and
    /// for quantity types a finite number.
    pub fn stored(&self) -> bool {
        if self.start.is_none() || self.end.is_none() {
            return false;
        }
        if !self.kind.starts_with("HKQuantityTypeIdentifier") {
            return true;
        }
        match &self.value {
            None => true,
            Some(v) => v.trim().parse::<f64>().is_ok_and(f64::is_finite),
        }
    }

    pub fn number(&self) -> Option<f64> {
        self.value.as_deref()?.trim().parse::<f64>().ok()
    }

    /// The device as the store should show it: without the HKDevice pointer.
    pub fn device_name(&self) -> Option<String> {
        let d = self.device.as_deref()?;
        match d
            .strip_prefix("<<HKDevice: ")
            .and_then(|r| r.split_once(">, "))
        {
            Some((_, rest)) => Some(rest.strip_suffix('>').unwrap_or(rest).to_string()),
            None => Some(d.to_string()),
        }
    }
}

/// One top-level `<Workout>`.
#[derive(Debug, Clone)]
pub struct WorkoutScan {
    pub activity_type: String,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    /// `FileReference` paths of its routes.
    pub route_files: Vec<String>,
    /// Inline `<Location>` points (old exports).
    pub locations: u64,
}

/// What an export XML holds, counted by this file's own scanner.
#[derive(Debug, Clone, Default)]
pub struct ExportScan {
    pub records: Vec<RecordScan>,
    pub workouts: Vec<WorkoutScan>,
    pub correlations: u64,
    pub activity_summaries: u64,
}

impl ExportScan {
    /// `type` -> number of top-level records.
    pub fn record_types(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for r in &self.records {
            *out.entry(r.kind.clone()).or_insert(0) += 1;
        }
        out
    }

    pub fn workout_types(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for w in &self.workouts {
            *out.entry(w.activity_type.clone()).or_insert(0) += 1;
        }
        out
    }

    pub fn stored(&self) -> impl Iterator<Item = &RecordScan> {
        self.records.iter().filter(|r| r.stored())
    }

    /// Earliest and latest start (as instants) over `records`.
    pub fn start_range<'a>(
        records: impl Iterator<Item = &'a RecordScan>,
    ) -> Option<(Timestamp, Timestamp)> {
        let starts: Vec<Timestamp> = records.filter_map(|r| r.start).collect();
        let first = starts.iter().min_by_key(|t| t.utc)?;
        let last = starts.iter().max_by_key(|t| t.utc)?;
        Some((*first, *last))
    }
}

/// Replaces the five predefined entities (all an Apple export uses).
pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `name="value"` pairs of a start tag's inside (after the name).
fn attributes(mut s: &str) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        let Some(eq) = s.find('=') else { break };
        let name = s[..eq].trim();
        let after = s[eq + 1..].trim_start();
        let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            break;
        };
        let Some(close) = after[1..].find(quote) else {
            break;
        };
        out.push((name, unescape(&after[1..1 + close])));
        s = &after[close + 2..];
    }
    out
}

fn attr<'a>(attrs: &'a [(&str, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

/// Walks the tags of `xml`, tracking the open elements. Good enough for
/// the exports in these tests (no raw `<` or `>` in attribute values).
pub fn scan_export(xml: &str) -> ExportScan {
    let mut scan = ExportScan::default();
    let mut stack: Vec<&str> = Vec::new();
    let mut i = 0;
    while let Some(lt) = xml[i..].find('<') {
        let at = i + lt + 1;
        let rest = &xml[at..];
        if rest.starts_with("!--") {
            i = at + rest.find("-->").map_or(rest.len(), |e| e + 3);
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        let tag = &rest[..gt];
        i = at + gt + 1;
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if tag.starts_with('/') {
            stack.pop();
            continue;
        }
        let empty = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name_end = tag
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(tag.len());
        let name = &tag[..name_end];
        let attrs = attributes(&tag[name_end..]);
        let top_level = stack.len() == 1;
        let date = |key: &str| attr(&attrs, key).and_then(Timestamp::parse);
        match name {
            "Record" if top_level => scan.records.push(RecordScan {
                kind: attr(&attrs, "type").unwrap_or_default().to_string(),
                source: attr(&attrs, "sourceName").unwrap_or_default().to_string(),
                unit: attr(&attrs, "unit").map(str::to_string),
                device: attr(&attrs, "device").map(str::to_string),
                start: date("startDate"),
                end: date("endDate"),
                value: attr(&attrs, "value").map(str::to_string),
            }),
            "Workout" if top_level => scan.workouts.push(WorkoutScan {
                activity_type: attr(&attrs, "workoutActivityType")
                    .unwrap_or_default()
                    .to_string(),
                start: date("startDate"),
                end: date("endDate"),
                route_files: Vec::new(),
                locations: 0,
            }),
            "Correlation" if top_level => scan.correlations += 1,
            "ActivitySummary" if top_level => scan.activity_summaries += 1,
            "FileReference" if stack.contains(&"Workout") => {
                if let (Some(w), Some(path)) = (scan.workouts.last_mut(), attr(&attrs, "path")) {
                    w.route_files.push(path.to_string());
                }
            }
            "Location" if stack.contains(&"Workout") => {
                if let Some(w) = scan.workouts.last_mut() {
                    w.locations += 1;
                }
            }
            _ => {}
        }
        if !empty {
            stack.push(name);
        }
    }
    scan
}

/// `<trkpt …>` elements of a GPX document, with their lat/lon.
pub fn gpx_points(gpx: &str) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for piece in gpx.split("<trkpt").skip(1) {
        let tag = piece.split('>').next().unwrap_or_default();
        let attrs = attributes(tag.trim_end_matches('/'));
        let lat = attr(&attrs, "lat").and_then(|v| v.parse().ok());
        let lon = attr(&attrs, "lon").and_then(|v| v.parse().ok());
        if let (Some(lat), Some(lon)) = (lat, lon) {
            out.push((lat, lon));
        }
    }
    out
}

/// Parses the store's RFC 3339 output (`2024-01-01T01:01:36+02:00`, `…Z`).
pub fn rfc3339(s: &str) -> Option<Timestamp> {
    let (date_time, offset) = if let Some(dt) = s.strip_suffix('Z') {
        (dt, "+0000".to_string())
    } else {
        let (dt, off) = s.split_at(s.len().checked_sub(6)?);
        (dt, off.replace(':', ""))
    };
    Timestamp::parse(&format!("{} {offset}", date_time.replacen('T', " ", 1)))
}

/// Days since 1970-01-01 of `yyyy-MM-dd`.
pub fn day(s: &str) -> i64 {
    owi_export::time::parse_date(s).unwrap_or_else(|| panic!("bad test date {s}"))
}

// ---- The store ----------------------------------------------------------------

pub fn ingest(store: &mut Store, path: &Path) -> Res<IngestOutcome> {
    Ok(store.ingest(path, IngestOptions::default())?)
}

pub fn force_ingest(store: &mut Store, path: &Path) -> Res<IngestOutcome> {
    Ok(store.ingest(
        path,
        IngestOptions {
            force: true,
            ..IngestOptions::default()
        },
    )?)
}

/// Every table of the schema.
pub const TABLES: &[&str] = &[
    "exports",
    "strings",
    "series",
    "record_blocks",
    "correlations",
    "workouts",
    "workout_activities",
    "workout_statistics",
    "workout_events",
    "workout_metadata",
    "routes",
    "activity_summaries",
    "elements",
    "type_sources",
    "skipped_types",
    "devices",
    "daily",
    "skips",
];

/// A second connection on the store's file, to look at it independently.
pub fn raw(db: &Path) -> Res<rusqlite::Connection> {
    Ok(rusqlite::Connection::open(db)?)
}

/// A second connection on the store's journal file (history, ledger, kept
/// checks).
pub fn raw_journal(db: &Path) -> Res<rusqlite::Connection> {
    Ok(rusqlite::Connection::open(owi_store::journal_path(db))?)
}

/// Row counts of every table.
pub fn table_counts(db: &Path) -> Res<BTreeMap<&'static str, i64>> {
    let conn = raw(db)?;
    let mut out = BTreeMap::new();
    for table in TABLES {
        let n: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
        out.insert(*table, n);
    }
    Ok(out)
}

/// Records stored for `export_id` (packed in `record_blocks`).
pub fn stored_records(db: &Path, export_id: i64) -> Res<i64> {
    Ok(raw(db)?.query_row(
        "SELECT COALESCE(SUM(b.count), 0) FROM record_blocks b JOIN series s ON s.id = b.series_id WHERE s.export_id = ?",
        [export_id],
        |r| r.get(0),
    )?)
}

pub fn count_where(db: &Path, table: &str, export_id: i64) -> Res<i64> {
    Ok(raw(db)?.query_row(
        &format!("SELECT COUNT(*) FROM {table} WHERE export_id = ?"),
        [export_id],
        |r| r.get(0),
    )?)
}

// ---- Hand-written fixtures ---------------------------------------------------------

/// Builds an export XML line by line, with Apple's escaping of attributes.
#[derive(Debug, Default)]
pub struct XmlBuilder {
    body: String,
}

pub const WATCH: &str = "Ana’s Apple Watch";
pub const PHONE: &str = "Ana’s iPhone";
pub const APP: &str = "Health & Fitness";
pub const WATCH_DEVICE: &str =
    "name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,2, software:10.2";
pub const PHONE_DEVICE: &str =
    "name:iPhone, manufacturer:Apple Inc., model:iPhone, hardware:iPhone14,2, software:17.2.1";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A `device` attribute the way the Health app writes it: a memory address
/// that changes from sample to sample, then the description.
pub fn device_attr(pointer: u64, device: &str) -> String {
    format!("<<HKDevice: 0x{pointer:09x}>, {device}>")
}

impl XmlBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A `<Record>`; `device` is the full attribute (see [`device_attr`]).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        kind: &str,
        source: &str,
        device: Option<&str>,
        unit: Option<&str>,
        start: &str,
        end: &str,
        value: &str,
    ) -> &mut Self {
        let mut line = format!(" <Record type=\"{kind}\" sourceName=\"{}\"", escape(source));
        if let Some(d) = device {
            line += &format!(" device=\"{}\"", escape(d));
        }
        if let Some(u) = unit {
            line += &format!(" unit=\"{u}\"");
        }
        line += &format!(
            " creationDate=\"{end}\" startDate=\"{start}\" endDate=\"{end}\" value=\"{}\"/>\n",
            escape(value)
        );
        self.body += &line;
        self
    }

    pub fn raw(&mut self, xml: &str) -> &mut Self {
        self.body += xml;
        self.body.push('\n');
        self
    }

    /// Writes `dir/apple_health_export/export.xml` and returns its path.
    pub fn write(&self, dir: &Path, locale: &str, export_date: &str) -> Res<PathBuf> {
        let export_dir = dir.join("apple_health_export");
        std::fs::create_dir_all(&export_dir)?;
        let path = export_dir.join("export.xml");
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<HealthData locale=\"{locale}\">\n <ExportDate value=\"{export_date}\"/>\n <Me HKCharacteristicTypeIdentifierDateOfBirth=\"1990-05-20\" HKCharacteristicTypeIdentifierBiologicalSex=\"HKBiologicalSexFemale\"/>\n{}</HealthData>\n",
            self.body
        );
        std::fs::write(&path, xml)?;
        Ok(path)
    }
}

/// A small GPX 1.1 file with one point per `(lat, lon, utc time)`.
pub fn gpx(points: &[(f64, f64, &str)]) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx version=\"1.1\" creator=\"Apple Health Export\" xmlns=\"http://www.topografix.com/GPX/1/1\">\n  <trk>\n    <trkseg>\n",
    );
    for (lat, lon, time) in points {
        out += &format!(
            "      <trkpt lon=\"{lon:.6}\" lat=\"{lat:.6}\"><ele>12.5</ele><time>{time}</time><extensions><speed>2.5</speed><course>90</course><hAcc>3</hAcc><vAcc>2</vAcc></extensions></trkpt>\n"
        );
    }
    out += "    </trkseg>\n  </trk>\n</gpx>\n";
    out
}

/// Sorted, deduplicated.
pub fn set<T: Ord + Clone>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    items
        .into_iter()
        .collect::<BTreeSet<T>>()
        .into_iter()
        .collect()
}
