//! `cargo bench -p owi-cli --bench inspect`: how fast `owi inspect` reads a
//! large export, next to the floor of quick-xml merely reading it and to a
//! naive loader (`common::naive`) storing six columns of every record.
//!
//! Generates (once, cached) a synthetic export of `OWI_BENCH_RECORDS`
//! records (default 3,000,000 ≈ 1 GB of XML) with `owi sample`'s generator,
//! then reports for the XML and for the zip:
//! - the floor: quick-xml reading and unescaping every attribute, storing nothing;
//! - the reader alone (parsing into typed items, no database);
//! - the naive loader: one thread, quick-xml + rusqlite, six text columns;
//! - `owi inspect` into a fresh database, as a separate process: MB/s,
//!   records/s, peak RSS, and its speed relative to the floor and to the
//!   naive loader (best of `OWI_BENCH_ROUNDS` rounds, default 3, the two
//!   loaders alternating so both see the same machine);
//! - a repeat `owi inspect` of the same export (recognised, not re-read).
//!
//! `OWI_BENCH_BASELINE=/path/to/owi` also times that build of `owi inspect`
//! in the same rounds (an earlier commit's, for before/after figures taken
//! on the same machine at the same time).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod common;

use common::{BenchExport, bench_export};
use owi_export::{ExportSource, ReadOptions, Record, Visitor, read_export};
use quick_xml::events::Event;

fn main() {
    if let Err(e) = run() {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let BenchExport {
        dir,
        xml,
        zip,
        xml_bytes,
        records,
        workouts,
    } = bench_export()?;
    let mb = xml_bytes as f64 / 1e6;
    println!(
        "export: {mb:.0} MB of XML, {records} records, {workouts} workouts; zip {:.0} MB",
        std::fs::metadata(&zip)?.len() as f64 / 1e6
    );
    println!(
        "{:<44} {:>8} {:>9} {:>12} {:>10} {:>9}",
        "", "seconds", "MB/s", "records/s", "peak RSS", "of floor"
    );

    let owi = PathBuf::from(env!("CARGO_BIN_EXE_owi"));
    let rounds: usize = std::env::var("OWI_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let baseline = std::env::var_os("OWI_BENCH_BASELINE").map(PathBuf::from);
    let mut ratios = Vec::new();
    for (label, input) in [("xml", &xml), ("zip", &zip)] {
        common::warm_cache(input)?;
        let floor = time(|| floor_pass(input))?;
        row(
            &format!("floor: quick-xml, attributes only ({label})"),
            floor,
            mb,
            records,
            None,
            None,
        );
        let reader = time(|| reader_pass(input))?;
        row(
            &format!("reader, no database ({label})"),
            reader,
            mb,
            records,
            None,
            Some(floor / reader),
        );

        let db = dir.join(format!("bench-{label}.sqlite"));
        let naive_db = dir.join(format!("bench-naive-{label}.sqlite"));
        let (mut naive, mut owi_secs, mut owi_rss) = (f64::MAX, f64::MAX, 0u64);
        let (mut base_secs, mut base_rss) = (f64::MAX, 0u64);
        for round in 1..=rounds {
            let t = Instant::now();
            let stored = common::naive::load(input, &naive_db)?;
            let secs = t.elapsed().as_secs_f64();
            // It also stores the records nested in correlations.
            if stored < records {
                return Err(
                    format!("the naive loader stored {stored} of {records} records").into(),
                );
            }
            remove_db(&naive_db);
            // The baseline first: the database left for the runs after the
            // rounds is this build's.
            if let Some(base) = &baseline {
                remove_db(&db);
                let (secs_base, rss) = inspect(base, input, &db)?;
                println!(
                    "  round {round}: baseline owi inspect {secs_base:.2} s ({:.2}x the naive loader), {:.0} MB",
                    secs / secs_base,
                    rss as f64 / 1e6
                );
                base_secs = base_secs.min(secs_base);
                base_rss = base_rss.max(rss);
            }
            remove_db(&db);
            let (secs_owi, rss) = inspect(&owi, input, &db)?;
            println!(
                "  round {round}: naive {secs:.2} s, owi inspect {secs_owi:.2} s ({:.2}x), {:.0} MB, load {}",
                secs / secs_owi,
                rss as f64 / 1e6,
                common::load_average().map_or("?".into(), |l| format!("{l:.2}"))
            );
            naive = naive.min(secs);
            if secs_owi < owi_secs {
                owi_secs = secs_owi;
            }
            owi_rss = owi_rss.max(rss);
        }
        row(
            &format!("naive loader, six columns ({label})"),
            naive,
            mb,
            records,
            None,
            Some(floor / naive),
        );
        row(
            &format!("owi inspect, fresh database ({label})"),
            owi_secs,
            mb,
            records,
            Some(owi_rss),
            Some(floor / owi_secs),
        );
        if baseline.is_some() {
            row(
                &format!("baseline owi inspect ({label})"),
                base_secs,
                mb,
                records,
                Some(base_rss),
                Some(floor / base_secs),
            );
            ratios.push((format!("{label}, baseline"), naive / base_secs));
        }
        ratios.push((label.to_string(), naive / owi_secs));
        let (again, rss) = inspect(&owi, input, &db)?;
        row(
            &format!("owi inspect again, recognised ({label})"),
            again,
            mb,
            records,
            Some(rss),
            None,
        );
        if label == "xml" {
            preview_queries(&db)?;
        }
        remove_db(&db);
    }
    for (label, ratio) in ratios {
        println!("owi inspect vs the naive loader ({label}): {ratio:.2}x (best of {rounds})");
    }
    println!(
        "load average at the end: {}",
        common::load_average().map_or("?".into(), |l| format!("{l:.2}"))
    );
    Ok(())
}

/// A database and its WAL/journal files.
fn remove_db(db: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

/// Times each preview query on the database just built (best of 5, warm).
fn preview_queries(db: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use owi_store::{Store, WorkoutFilter, WorkoutSort};
    let store = Store::open(db)?;
    let export = store.exports()?.first().map(|e| e.id).ok_or("no export")?;
    let best = |f: &mut dyn FnMut() -> Result<usize, Box<dyn std::error::Error>>| -> Result<(f64, usize), Box<dyn std::error::Error>> {
        let mut best = f64::MAX;
        let mut n = 0;
        for _ in 0..5 {
            let t = Instant::now();
            n = f()?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        Ok((best * 1000.0, n))
    };
    let report = |label: &str, (ms, n): (f64, usize)| {
        println!("  preview: {label:<52} {ms:>7.1} ms  ({n} rows)");
    };
    report(
        "summary",
        best(&mut || Ok(store.summary(export)?.record_types.len()))?,
    );
    let filter = WorkoutFilter::default();
    report(
        "workouts, all, by start",
        best(&mut || Ok(store.workouts(export, &filter)?.len()))?,
    );
    let sorted = WorkoutFilter {
        activity_type: Some("Running".into()),
        sort: WorkoutSort::Distance,
        descending: true,
        ..WorkoutFilter::default()
    };
    report(
        "workouts, running, by distance desc",
        best(&mut || Ok(store.workouts(export, &sorted)?.len()))?,
    );
    let longest = store
        .workouts(
            export,
            &WorkoutFilter {
                sort: WorkoutSort::RoutePoints,
                descending: true,
                ..WorkoutFilter::default()
            },
        )?
        .first()
        .map(|w| w.id)
        .ok_or("no workout")?;
    report(
        "workout detail (largest route, heart rate)",
        best(&mut || {
            let d = store.workout_detail(longest)?;
            Ok(d.route.len() + d.heart_rate.len())
        })?,
    );
    for kind in [
        "HKQuantityTypeIdentifierStepCount",
        "HKQuantityTypeIdentifierHeartRate",
        "HKCategoryTypeIdentifierSleepAnalysis",
    ] {
        let label = format!(
            "daily series {}",
            kind.trim_start_matches("HKQuantityTypeIdentifier")
                .trim_start_matches("HKCategoryTypeIdentifier")
        );
        report(
            &label,
            best(&mut || Ok(store.daily_series(export, kind, None, None)?.days.len()))?,
        );
    }
    Ok(())
}

fn row(label: &str, secs: f64, mb: f64, records: u64, rss: Option<u64>, ratio: Option<f64>) {
    println!(
        "{label:<44} {secs:>8.2} {:>9.0} {:>12.0} {:>10} {:>9}",
        mb / secs,
        records as f64 / secs,
        rss.map(|r| format!("{:.0} MB", r as f64 / 1e6))
            .unwrap_or_default(),
        ratio
            .map(|r| format!("{:.0} %", r * 100.0))
            .unwrap_or_default(),
    );
}

fn time(
    f: impl FnOnce() -> Result<(), Box<dyn std::error::Error>>,
) -> Result<f64, Box<dyn std::error::Error>> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64())
}

/// quick-xml reading every attribute of every element and unescaping it.
fn floor_pass(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let source = ExportSource::open(path)?;
    let stream = std::io::BufReader::with_capacity(1 << 20, source.open_xml()?);
    let mut reader = quick_xml::Reader::from_reader(stream);
    let mut buf = Vec::new();
    let mut total = 0usize;
    loop {
        match reader.read_event_into(&mut buf)? {
            Event::Start(e) | Event::Empty(e) => {
                for attr in e.attributes().with_checks(false) {
                    total += attr?
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)?
                        .len();
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    std::hint::black_box(total);
    Ok(())
}

struct Count(u64);

impl Visitor for Count {
    fn record(&mut self, r: &Record<'_>) -> ControlFlow<()> {
        self.0 += r.kind.len() as u64;
        ControlFlow::Continue(())
    }
}

fn reader_pass(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let source = ExportSource::open(path)?;
    let mut count = Count(0);
    read_export(&source, &mut count, ReadOptions::default()).map_err(|f| f.error)?;
    std::hint::black_box(count.0);
    Ok(())
}

/// Runs `owi inspect --json` and returns its own timing and peak RSS.
fn inspect(owi: &Path, input: &Path, db: &Path) -> Result<(f64, u64), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let out = Command::new(owi)
        .arg("inspect")
        .arg(input)
        .arg("--db")
        .arg(db)
        .arg("--json")
        .output()?;
    let wall = t.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "owi inspect failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let rss = report["peak_rss_bytes"].as_u64().unwrap_or(0);
    Ok((wall, rss))
}
