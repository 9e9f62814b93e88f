use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use owi_store::names::display_name;
use owi_store::{IngestOptions, Store, Summary};
use serde::Serialize;

use crate::bar::Bar;
use crate::out::{column_width, out};
use crate::paths;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// export.zip, or the export's XML file.
    path: PathBuf,
    /// The local database (default: in the platform's data directory).
    #[arg(long, env = "OWI_DB")]
    db: Option<PathBuf>,
    /// Read the export again even if the database already holds it.
    #[arg(long)]
    force: bool,
    /// Print one JSON object instead of a summary for people.
    #[arg(long)]
    json: bool,
}

/// The `--json` output; field names are relied on by scripts and tests.
#[derive(Debug, Serialize)]
struct Report<'a> {
    export_id: i64,
    state: &'static str,
    error: Option<&'a str>,
    reused: bool,
    fingerprint: Option<&'a str>,
    records: u64,
    records_stored: u64,
    workouts: u64,
    correlations: u64,
    activity_summaries: u64,
    record_types: BTreeMap<&'a str, u64>,
    workout_types: &'a BTreeMap<String, u64>,
    first_record_start: Option<&'a str>,
    last_record_start: Option<&'a str>,
    skipped: BTreeMap<&'a str, u64>,
    unknown_elements: &'a BTreeMap<String, u64>,
    elements: &'a BTreeMap<String, u64>,
    repaired_chars: u64,
    route_points: u64,
    devices: usize,
    sources: &'a [String],
    bytes: u64,
    seconds: f64,
    /// This process's peak resident memory (Linux; 0 elsewhere).
    peak_rss_bytes: u64,
}

/// The export was read only partly: what came before the damage is stored
/// and summarised, and the command still fails (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0} (what came before it was kept; the export is stored as partial)")]
pub struct Partial(pub String);

pub fn run(args: Args) -> anyhow::Result<()> {
    let db = paths::database(args.db)?;
    let mut store = Store::open(&db)?;
    let bar = Bar::new();
    let outcome = store.ingest(
        &args.path,
        IngestOptions {
            force: args.force,
            progress: &bar,
            cancel: None,
            glimpses: Some(&bar),
        },
    )?;
    let summary = store
        .summary(outcome.export_id)
        .with_context(|| format!("reading back the summary from {}", db.display()))?;
    if args.json {
        let mut skipped = BTreeMap::new();
        for s in &summary.skipped {
            *skipped.entry(s.reason.as_str()).or_default() += s.count;
        }
        let report = Report {
            export_id: outcome.export_id,
            state: outcome.state.as_str(),
            error: outcome.error.as_deref(),
            reused: outcome.reused,
            fingerprint: summary.export.fingerprint.as_deref(),
            records: summary.records,
            records_stored: summary.records_stored,
            workouts: summary.workouts,
            correlations: summary.correlations,
            activity_summaries: summary.activity_summaries,
            record_types: summary
                .record_types
                .iter()
                .map(|t| (t.kind.as_str(), t.count + t.skipped))
                .collect(),
            workout_types: &summary.workout_types,
            first_record_start: summary.first_record_start.as_deref(),
            last_record_start: summary.last_record_start.as_deref(),
            skipped,
            unknown_elements: &summary.unknown_elements,
            elements: &summary.elements,
            repaired_chars: summary.repaired_chars,
            route_points: summary.route_points,
            devices: summary.devices.len(),
            sources: &summary.sources,
            bytes: summary.export.xml_bytes,
            seconds: outcome.seconds,
            peak_rss_bytes: paths::peak_rss_bytes(),
        };
        out!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        print_summary(&summary, outcome.reused, outcome.seconds)?;
    }
    // Once the summary is out. Closing the store would fold the ingest's
    // pages in too, but not while another connection (the app's) is open.
    store.fold_wal_logged();
    if let Some(error) = outcome.error {
        return Err(Partial(error).into());
    }
    Ok(())
}

fn print_summary(s: &Summary, reused: bool, seconds: f64) -> anyhow::Result<()> {
    let e = &s.export;
    out!("{} ({})", e.source_path, e.xml_name)?;
    if reused {
        out!(
            "  already in the local database (export #{}); --force reads it again",
            e.id
        )?;
    } else {
        let mb = e.xml_bytes as f64 / 1e6;
        out!(
            "  read {mb:.1} MB of XML in {seconds:.2} s ({:.0} MB/s)",
            mb / seconds.max(1e-9)
        )?;
    }
    if let Some(err) = &e.error {
        out!("  PARTIAL: {err}")?;
    }
    out!(
        "  exported {} ({}), {} sources, {} devices",
        e.export_date
            .as_deref()
            .map_or("at an unknown date", |d| &d[..10.min(d.len())]),
        e.locale.as_deref().unwrap_or("no locale"),
        s.sources.len(),
        s.devices.len()
    )?;
    out!(
        "  {} records ({} stored), {} workouts, {} correlations, {} activity summaries",
        s.records,
        s.records_stored,
        s.workouts,
        s.correlations,
        s.activity_summaries
    )?;
    if let (Some(first), Some(last)) = (&s.first_record_start, &s.last_record_start) {
        out!("  from {first} to {last}")?;
    }
    // Names people read ("Heart rate"), in a column as wide as the longest.
    let names: Vec<String> = s
        .record_types
        .iter()
        .map(|t| display_name(&t.kind))
        .collect();
    let width = column_width("record type", names.iter().map(String::as_str));
    out!(
        "\n  {:<width$} {:>10}  {:<12} first → last",
        "record type",
        "count",
        "unit"
    )?;
    for (t, name) in s.record_types.iter().zip(&names) {
        out!(
            "  {name:<width$} {:>10}  {:<12} {} → {}",
            t.count,
            t.units.join(","),
            t.first_start
                .as_deref()
                .map(|d| &d[..10.min(d.len())])
                .unwrap_or("-"),
            t.last_start
                .as_deref()
                .map(|d| &d[..10.min(d.len())])
                .unwrap_or("-"),
        )?;
    }
    if !s.workout_types.is_empty() {
        let names: Vec<String> = s.workout_types.keys().map(|k| display_name(k)).collect();
        let width = column_width("workout type", names.iter().map(String::as_str));
        out!("\n  {:<width$} {:>10}", "workout type", "count")?;
        for ((_, count), name) in s.workout_types.iter().zip(&names) {
            out!("  {name:<width$} {count:>10}")?;
        }
    }
    if !s.skipped.is_empty() {
        out!("\n  left out:")?;
        for k in &s.skipped {
            out!(
                "  {:>8} × {} in <{}> (first at byte {}: {})",
                k.count,
                k.reason,
                k.element,
                k.first_offset,
                k.example
            )?;
        }
    }
    if s.repaired_chars > 0 {
        out!(
            "  {} characters XML forbids were removed from values",
            s.repaired_chars
        )?;
    }
    Ok(())
}
