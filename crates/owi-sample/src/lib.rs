//! Synthetic Apple Health exports.
//!
//! [`generate`] writes what the iPhone Health app's "Export All Health Data"
//! produces, unzipped under `out_dir/apple_health_export/` and optionally
//! zipped as `out_dir/export.zip`:
//!
//! ```text
//! out_dir/
//!   apple_health_export/
//!     <localized name>.xml          e.g. export.xml, exportation.xml, экспорт.xml
//!     export_cda.xml                a small CDA document with two root elements
//!     workout-routes/route_2023-06-11_3.00pm.gpx ...
//!   export.zip                      (if `SampleSpec::zip`)
//! ```
//!
//! The same [`SampleSpec`] always produces byte-identical files (no wall clock,
//! one [`fastrand::Rng`] seeded from `SampleSpec::seed`). The returned
//! [`SampleManifest`] says what was written so tests can compare a parser's
//! counts with the truth.
//!
//! What a parser sees (all deterministic per seed):
//!
//! * Order: `ExportDate`, `Me`, all `Record`s grouped by type (each type in
//!   roughly chronological order; blood-pressure twins included), then the
//!   `Correlation`s, then `Workout`s (chronological), then one
//!   `ActivitySummary` per local day. Elements are one per line, nested with
//!   one space per level; there is a `<!DOCTYPE HealthData [...]>` internal
//!   subset (with a comment, no entities).
//! * Dates are `yyyy-MM-dd HH:mm:ss ±HHMM`. The data spans 3–5 years ending on
//!   a seed-derived day in 2023–2024. The home zone comes from the locale
//!   (en_US: America/Los_Angeles -0800/-0700; fr/de/es/it: +0100/+0200;
//!   en_GB: +0000/+0100; fi: +0200/+0300; ru: +0300; ja/ko: +0900; zh: +0800,
//!   other: Europe/Paris), with trips of 6–16 days about twice a year,
//!   alternating between New York (-0500/-0400; Paris +0100/+0200 when home
//!   is American) and Tokyo (+0900; London +0000/+0100 when home is in East
//!   Asia). About 5 % of the data is written in a travel offset. Compare
//!   instants, not strings.
//! * `junk_values` quantity records have `value="nan"`, `value=""` or
//!   `value="abc"`, spread evenly over all quantity types.
//! * Modern workouts carry `WorkoutActivity`/`WorkoutStatistics`; every 10th
//!   workout (index 9, 19, …) is old-style with `totalDistance` (km) and
//!   `totalEnergyBurned` (kcal) attributes. Swimming distance is in `m`,
//!   other distances in `km`. Outdoor weather humidity is written the way
//!   Apple does it, scaled by 100 (`"6700 %"`).
//!
//! Use a fresh `out_dir`: files are overwritten but never deleted, so stale
//! route files from an earlier run with another seed would stay on disk.

mod archive;
mod body;
mod clock;
mod dtd;
mod out;
mod snapshot;
mod workouts;

#[cfg(test)]
mod tests;

/// The largest `junk_values` accepted for a spec with `records` records (the
/// number of quantity records it produces).
pub fn max_junk_values(records: u64) -> u64 {
    body::max_junk(records)
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use clock::parse_export_date;
pub use dtd::Dtd;
pub use snapshot::{Snapshot, day_of};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSpec {
    /// Number of top-level `<Record>` elements to write (exact; includes the
    /// top-level twins of the records nested in correlations, and junk ones).
    pub records: u64,
    /// Number of top-level `<Workout>` elements.
    pub workouts: u64,
    /// Same spec => byte-identical output.
    pub seed: u64,
    /// e.g. "en_US", "fr_FR", "ru_RU"; sets `HealthData locale=`, the XML
    /// file name, source names, the home time zone and HRV time formats.
    pub locale: String,
    /// Also write `out_dir/export.zip`.
    pub zip: bool,
    /// How many of the quantity records carry an unparseable value
    /// (cycling "nan", "", "abc"). Must not exceed the number of quantity
    /// records the spec produces (roughly 90 % of `records`).
    pub junk_values: u64,
    /// The DTD the export starts with.
    pub dtd: Dtd,
}

impl Default for SampleSpec {
    fn default() -> Self {
        SampleSpec {
            records: 10_000,
            workouts: 20,
            seed: 1,
            locale: "en_US".to_owned(),
            zip: false,
            junk_values: 0,
            dtd: Dtd::Version14,
        }
    }
}

/// What was written, for tests to compare with a parser's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleManifest {
    /// `out_dir/apple_health_export/<localized name>.xml`
    pub xml_path: PathBuf,
    /// `out_dir/export.zip` when requested.
    pub zip_path: Option<PathBuf>,
    pub xml_bytes: u64,
    /// Top-level `Record` elements.
    pub records: u64,
    /// `type` attribute -> count (top-level Records only).
    pub record_types: BTreeMap<String, u64>,
    pub workouts: u64,
    /// `workoutActivityType` -> count.
    pub workout_types: BTreeMap<String, u64>,
    /// Top-level `Correlation` elements.
    pub correlations: u64,
    pub activity_summaries: u64,
    /// GPX files written.
    pub route_files: u64,
    /// `trkpt` elements across all GPX files.
    pub route_points: u64,
    /// "nan_value" / "empty_value" / "invalid_value" -> count.
    pub junk_values: BTreeMap<String, u64>,
    /// Min startDate over top-level Records, as written ("yyyy-MM-dd HH:mm:ss ±HHMM").
    pub first_record_start: String,
    /// Max startDate over top-level Records (compare as instants: offsets vary).
    pub last_record_start: String,
}

/// The crate's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("zip error writing {path}: {source}")]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("invalid sample spec: {0}")]
    InvalidSpec(String),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Like [`generate`], but reuses what an earlier call with the same spec
/// left in `out_dir` (benchmarks share gigabyte samples this way). The
/// spec is kept next to the sample in `manifest.json`; for another spec, or
/// a sample whose files are missing or cut short, `out_dir` is replaced
/// whole by a new sample.
///
/// A new sample is made in a folder beside `out_dir` and moved into place
/// once complete, so concurrent callers never see half a sample nor write
/// into one folder together.
pub fn generate_once(spec: &SampleSpec, out_dir: &Path) -> Result<SampleManifest, Error> {
    let wanted = format!("{spec:?}");
    if let Some(manifest) = cached(out_dir, &wanted) {
        return Ok(manifest);
    }
    let name = out_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sample".into());
    let aside = out_dir.with_file_name(format!("{name}.making-{}", std::process::id()));
    remove_dir(&aside)?;
    let made = generate(spec, &aside)?;
    let moved = |path: &Path| match path.strip_prefix(&aside) {
        Ok(rest) => out_dir.join(rest),
        Err(_) => path.to_path_buf(),
    };
    let manifest = SampleManifest {
        xml_path: moved(&made.xml_path),
        zip_path: made.zip_path.as_deref().map(moved),
        ..made
    };
    let cached_form = Cached {
        spec: wanted.clone(),
        manifest,
    };
    let marker = aside.join(MARKER);
    let bytes =
        serde_json::to_vec_pretty(&cached_form).map_err(|e| Error::io(&marker, e.into()))?;
    std::fs::write(&marker, bytes).map_err(|e| Error::io(&marker, e))?;
    // Another caller may have finished first: its sample is as good.
    if let Some(manifest) = cached(out_dir, &wanted) {
        remove_dir(&aside)?;
        return Ok(manifest);
    }
    remove_dir(out_dir)?;
    std::fs::rename(&aside, out_dir).map_err(|e| Error::io(out_dir, e))?;
    Ok(cached_form.manifest)
}

const MARKER: &str = "manifest.json";

#[derive(Serialize, Deserialize)]
struct Cached {
    spec: String,
    manifest: SampleManifest,
}

/// The sample in `dir`, if it was made from `spec` and its files are whole.
fn cached(dir: &Path, spec: &str) -> Option<SampleManifest> {
    let bytes = std::fs::read(dir.join(MARKER)).ok()?;
    let cached: Cached = serde_json::from_slice(&bytes).ok()?;
    let m = cached.manifest;
    let whole = cached.spec == spec
        && std::fs::metadata(&m.xml_path).is_ok_and(|f| f.len() == m.xml_bytes)
        && m.zip_path.as_ref().is_none_or(|zip| zip.is_file());
    whole.then_some(m)
}

fn remove_dir(dir: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(dir, e)),
        _ => Ok(()),
    }
}

/// The benchmarks' shared sample: `OWI_BENCH_RECORDS` records (default
/// 3,000,000, about 1 GB of XML) with one workout per 1,500, zipped,
/// generated once into `target/bench-data/` (or `OWI_BENCH_DIR`) and reused
/// by every benchmark of the workspace.
pub fn bench_sample() -> Result<SampleManifest, Error> {
    let records: u64 = std::env::var("OWI_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000_000);
    let dir = std::env::var_os("OWI_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data"))
        .join(format!("sample-{records}"));
    let spec = SampleSpec {
        records,
        workouts: (records / 1500).max(10),
        seed: 7,
        locale: "en_US".into(),
        zip: true,
        junk_values: 0,
        dtd: Default::default(),
    };
    if !dir.join("manifest.json").exists() {
        eprintln!(
            "generating a sample of {records} records in {} …",
            dir.display()
        );
    }
    generate_once(&spec, &dir)
}

/// The file name Apple gives the main XML for `locale` (the language part
/// decides, Chinese also looks at the script/region).
pub fn localized_export_name(locale: &str) -> &'static str {
    let lower = locale.to_ascii_lowercase().replace('-', "_");
    let mut parts = lower.split(['_', '.', '@']);
    let lang = parts.next().unwrap_or("");
    match lang {
        "fr" => "exportation.xml",
        "es" => "exportación.xml",
        "it" => "esportazione.xml",
        "fi" => "vienti.xml",
        "ru" => "экспорт.xml",
        "ko" => "내보내기.xml",
        "ja" => "書き出したデータ.xml",
        "de" => "Export.xml",
        "zh" => {
            let traditional = parts.any(|p| matches!(p, "tw" | "hk" | "mo" | "hant"));
            if traditional {
                "輸出.xml"
            } else {
                "导出.xml"
            }
        }
        _ => "export.xml",
    }
}

/// Writes a synthetic export under `out_dir` (created if missing) and returns
/// what was written.
pub fn generate(spec: &SampleSpec, out_dir: &Path) -> Result<SampleManifest, Error> {
    let export_dir = out_dir.join("apple_health_export");
    let routes_dir = export_dir.join("workout-routes");
    std::fs::create_dir_all(&routes_dir).map_err(|e| Error::io(&routes_dir, e))?;
    let xml_path = export_dir.join(localized_export_name(&spec.locale));

    let (mut manifest, extras) = body::write_export(spec, &xml_path, &routes_dir)?;
    manifest.xml_path = xml_path;

    let cda_path = export_dir.join("export_cda.xml");
    archive::write_cda(&cda_path, &extras)?;

    if spec.zip {
        let zip_path = out_dir.join("export.zip");
        archive::write_zip(&zip_path, &manifest, &extras, &cda_path, &routes_dir)?;
        manifest.zip_path = Some(zip_path);
    }
    Ok(manifest)
}
