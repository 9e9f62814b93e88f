//! Integration tests of the local store: ingest counts against the truth
//! (generated exports and public samples), re-ingest and replacement,
//! cancellation and damaged files leaving the database as it was, the
//! preview queries, and the schema's versioning.

mod busy;
mod glimpse;
mod kept_check;
mod ledger;
mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use owi_export::Timestamp;
use owi_progress::{CancelToken, Progress, Recorder};
use owi_sample::{SampleManifest, SampleSpec, generate, max_junk_values};
use owi_store::{
    Aggregation, Error, ExportState, IngestOptions, Store, Summary, WorkoutFilter, WorkoutRow,
    WorkoutSort,
};
use proptest::prelude::*;

use util::*;

fn spec(records: u64, workouts: u64, seed: u64, locale: &str, zip: bool, junk: u64) -> SampleSpec {
    SampleSpec {
        records,
        workouts,
        seed,
        locale: locale.to_owned(),
        zip,
        junk_values: junk,
        dtd: Default::default(),
    }
}

fn read_scan(m: &SampleManifest) -> Res<ExportScan> {
    Ok(scan_export(&std::fs::read_to_string(&m.xml_path)?))
}

/// The parts of a summary that describe the export's content (not which
/// row holds it, nor when it was read).
fn content_of(s: &Summary) -> String {
    format!(
        "{:?}",
        (
            (
                s.records,
                s.records_stored,
                s.workouts,
                s.correlations,
                s.activity_summaries,
                &s.first_record_start,
                &s.last_record_start,
            ),
            (&s.record_types, &s.workout_types, &s.devices, &s.sources),
            (
                &s.skipped,
                &s.elements,
                &s.unknown_elements,
                s.repaired_chars,
                s.route_points,
            ),
        )
    )
}

fn instant(s: Option<&str>, what: &str) -> Timestamp {
    s.and_then(rfc3339)
        .unwrap_or_else(|| panic!("{what}: expected an RFC 3339 date, got {s:?}"))
}

// ---- 1. Counts equal the generator's manifest ---------------------------------------

const LOCALES: &[&str] = &[
    "en_US", "ru_RU", "ja_JP", "fr_FR", "de_DE", "zh_TW", "fi_FI", "en_GB", "ko_KR",
];

fn check_against_manifest(spec: &SampleSpec) -> Res<()> {
    let dir = tempfile::tempdir()?;
    let m = generate(spec, &dir.path().join("gen"))?;
    let input = if spec.zip {
        m.zip_path.clone().ok_or("the generator wrote no zip")?
    } else {
        m.xml_path.clone()
    };
    let db = dir.path().join("store.db");
    let mut store = Store::open(&db)?;
    let out = ingest(&mut store, &input)?;
    let ctx = format!("{spec:?}");
    assert!(
        !out.reused,
        "{ctx}: a fresh store cannot hold the export yet"
    );
    assert_eq!(
        out.state,
        ExportState::Complete,
        "{ctx}: a whole export must be stored complete (error: {:?})",
        out.error
    );
    assert_eq!(out.error, None, "{ctx}: a complete export has no error");

    let s = store.summary(out.export_id)?;
    let junk: u64 = m.junk_values.values().sum();
    assert_eq!(s.records, m.records, "{ctx}: top-level Records seen");
    assert_eq!(
        s.records_stored,
        m.records - junk,
        "{ctx}: every record but the junk ones is stored"
    );
    let per_type: BTreeMap<String, u64> = s
        .record_types
        .iter()
        .map(|t| (t.kind.clone(), t.count + t.skipped))
        .collect();
    assert_eq!(
        per_type, m.record_types,
        "{ctx}: stored + skipped per type must equal what was written"
    );
    assert_eq!(
        s.record_types.iter().map(|t| t.skipped).sum::<u64>(),
        junk,
        "{ctx}: the skipped records are attributed to their types"
    );
    assert_eq!(s.workouts, m.workouts, "{ctx}: workouts");
    assert_eq!(s.workout_types, m.workout_types, "{ctx}: workout types");
    assert_eq!(s.correlations, m.correlations, "{ctx}: correlations");
    assert_eq!(
        s.activity_summaries, m.activity_summaries,
        "{ctx}: activity summaries"
    );
    assert_eq!(s.route_points, m.route_points, "{ctx}: GPX track points");

    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for k in &s.skipped {
        assert_eq!(
            k.element, "Record",
            "{ctx}: only junk record values are skipped, got {k:?}"
        );
        *reasons.entry(k.reason.clone()).or_default() += k.count;
    }
    assert_eq!(
        reasons, m.junk_values,
        "{ctx}: skip reasons must match the junk values written"
    );

    // First and last start, as instants (offsets vary with travel). The
    // manifest's include junk records, which the store leaves out, so the
    // expected values come from this file's own scan, checked against the
    // manifest first.
    let scan = read_scan(&m)?;
    assert_eq!(
        scan.records.len() as u64,
        m.records,
        "{ctx}: the test's scanner must agree with the manifest"
    );
    let (all_first, all_last) =
        ExportScan::start_range(scan.records.iter()).ok_or("no records scanned")?;
    let manifest_first = Timestamp::parse(&m.first_record_start).ok_or("manifest first")?;
    let manifest_last = Timestamp::parse(&m.last_record_start).ok_or("manifest last")?;
    assert_eq!(
        (all_first.utc, all_last.utc),
        (manifest_first.utc, manifest_last.utc),
        "{ctx}: the test's scanner must find the manifest's first/last start"
    );
    let (first, last) = ExportScan::start_range(scan.stored()).ok_or("nothing stored")?;
    let got_first = instant(s.first_record_start.as_deref(), "first_record_start");
    let got_last = instant(s.last_record_start.as_deref(), "last_record_start");
    assert_eq!(
        got_first.utc, first.utc,
        "{ctx}: first record start (manifest: {})",
        m.first_record_start
    );
    assert_eq!(
        got_last.utc, last.utc,
        "{ctx}: last record start (manifest: {})",
        m.last_record_start
    );
    if junk == 0 {
        assert_eq!(
            (got_first.utc, got_last.utc),
            (manifest_first.utc, manifest_last.utc)
        );
    }

    // What is on disk, not only what the summary says.
    assert_eq!(
        stored_records(&db, out.export_id)?,
        s.records_stored as i64,
        "{ctx}: rows in `records`"
    );
    assert_eq!(
        count_where(&db, "workouts", out.export_id)?,
        m.workouts as i64,
        "{ctx}: rows in `workouts`"
    );
    assert_eq!(
        count_where(&db, "correlations", out.export_id)?,
        m.correlations as i64,
        "{ctx}: rows in `correlations`"
    );
    assert_eq!(
        count_where(&db, "activity_summaries", out.export_id)?,
        m.activity_summaries as i64,
        "{ctx}: rows in `activity_summaries`"
    );
    let route_points: i64 = raw(&db)?.query_row(
        "SELECT COALESCE(SUM(points), 0) FROM routes WHERE export_id = ?",
        [out.export_id],
        |r| r.get(0),
    )?;
    assert_eq!(
        route_points, m.route_points as i64,
        "{ctx}: points kept in `routes`"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 6,
        max_shrink_iters: 8,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn ingest_counts_equal_the_manifest(
        records in 200u64..3000,
        workouts in 0u64..=12,
        seed in any::<u64>(),
        locale in prop::sample::select(LOCALES),
        zip in any::<bool>(),
        junk in 0u64..=4,
    ) {
        let junk = junk.min(max_junk_values(records));
        let spec = spec(records, workouts, seed, locale, zip, junk);
        if let Err(e) = check_against_manifest(&spec) {
            panic!("{spec:?}: {e}");
        }
    }
}

// ---- 2. The public samples --------------------------------------------------------

/// The public samples kept in the repository (`tests/fixtures/public-samples`,
/// each with its license). Missing, they fail the test: never skipped.
fn samples_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/public-samples");
    assert!(
        dir.is_dir(),
        "the public samples are missing from {}",
        dir.display()
    );
    dir
}

/// The HealthData XML and the GPX files of a sample, read without the code
/// under test: the zip through the `zip` crate, the XML with the routes
/// folder next to it.
fn sample_contents(path: &Path) -> Res<(String, BTreeMap<String, String>)> {
    let mut gpx = BTreeMap::new();
    if path.extension().is_some_and(|e| e == "zip") {
        let mut archive = zip::ZipArchive::new(std::fs::File::open(path)?)?;
        let mut xml = None;
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i)?;
            let name = entry.name()?.to_string();
            if !entry.is_file() || name.starts_with("__MACOSX/") {
                continue;
            }
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes)?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if name.ends_with(".gpx") {
                let key = name
                    .split_once("workout-routes/")
                    .map(|(_, f)| format!("/workout-routes/{f}"))
                    .unwrap_or(name);
                gpx.insert(key, text);
            } else if name.ends_with(".xml") && text.contains("<HealthData") {
                assert!(xml.is_none(), "{}: two HealthData entries", path.display());
                xml = Some(text);
            }
        }
        return Ok((xml.ok_or("no HealthData entry in the zip")?, gpx));
    }
    let xml = std::fs::read_to_string(path)?;
    let routes = path
        .parent()
        .map(|p| p.join("workout-routes"))
        .unwrap_or_default();
    if routes.is_dir() {
        for entry in std::fs::read_dir(routes)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".gpx") {
                gpx.insert(
                    format!("/workout-routes/{name}"),
                    std::fs::read_to_string(entry.path())?,
                );
            }
        }
    }
    Ok((xml, gpx))
}

/// Stored records per stripped device description.
fn expected_devices(scan: &ExportScan) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in scan.stored() {
        if let Some(d) = r.device_name() {
            *out.entry(d).or_insert(0) += 1;
        }
    }
    out
}

fn devices_of(s: &Summary) -> BTreeMap<String, u64> {
    s.devices
        .iter()
        .map(|d| (d.device.clone(), d.records))
        .collect()
}

#[test]
fn public_samples_ingest_with_the_counts_their_xml_holds() -> Res<()> {
    let root = samples_dir();
    let mut inputs = Vec::new();
    for entry in std::fs::read_dir(&root)? {
        let dir = entry?.path();
        for name in ["export.xml", "export.zip"] {
            if dir.join(name).is_file() {
                inputs.push(dir.join(name));
            }
        }
    }
    inputs.sort();
    assert!(
        inputs.len() >= 4,
        "expected an export.xml and an export.zip in each sample folder, found {inputs:?}"
    );
    for input in inputs {
        let ctx = input.display().to_string();
        let (xml, gpx) = sample_contents(&input)?;
        let scan = scan_export(&xml);
        let tmp = tempfile::tempdir()?;
        let db = tmp.path().join("store.db");
        let mut store = Store::open(&db)?;
        let out = ingest(&mut store, &input)?;
        assert_eq!(
            out.state,
            ExportState::Complete,
            "{ctx}: state (error {:?})",
            out.error
        );
        let s = store.summary(out.export_id)?;
        assert_eq!(s.records, scan.records.len() as u64, "{ctx}: records");
        assert_eq!(
            s.records_stored,
            scan.stored().count() as u64,
            "{ctx}: records stored"
        );
        let per_type: BTreeMap<String, u64> = s
            .record_types
            .iter()
            .map(|t| (t.kind.clone(), t.count))
            .collect();
        assert_eq!(per_type, scan.record_types(), "{ctx}: records per type");
        assert!(
            s.skipped.is_empty(),
            "{ctx}: nothing to skip: {:?}",
            s.skipped
        );
        assert_eq!(s.workouts, scan.workouts.len() as u64, "{ctx}: workouts");
        assert_eq!(
            s.workout_types,
            scan.workout_types(),
            "{ctx}: workout types"
        );
        assert_eq!(s.correlations, scan.correlations, "{ctx}: correlations");
        assert_eq!(
            s.activity_summaries, scan.activity_summaries,
            "{ctx}: activity summaries"
        );
        let inline: u64 = scan.workouts.iter().map(|w| w.locations).sum();
        let tracked: u64 = gpx.values().map(|g| gpx_points(g).len() as u64).sum();
        assert_eq!(
            s.route_points,
            inline + tracked,
            "{ctx}: inline Location points + GPX track points"
        );
        assert_eq!(devices_of(&s), expected_devices(&scan), "{ctx}: devices");
        let (first, last) = ExportScan::start_range(scan.stored()).ok_or("no records")?;
        assert_eq!(
            instant(s.first_record_start.as_deref(), &ctx),
            first,
            "{ctx}: first record start, with its offset"
        );
        assert_eq!(
            instant(s.last_record_start.as_deref(), &ctx),
            last,
            "{ctx}: last record start, with its offset"
        );
        assert_eq!(
            count_where(&db, "activity_summaries", out.export_id)?,
            scan.activity_summaries as i64,
            "{ctx}: rows in activity_summaries"
        );
        // Each workout's route, inline or from its GPX file.
        let rows = store.workouts(out.export_id, &WorkoutFilter::default())?;
        assert_eq!(rows.len(), scan.workouts.len(), "{ctx}: workout rows");
        for w in &scan.workouts {
            let start = w.start.ok_or("workout without start")?;
            let row = rows
                .iter()
                .find(|r| rfc3339(&r.start) == Some(start))
                .ok_or("no row for a workout")?;
            let detail = store.workout_detail(row.id)?;
            let expected = w.locations
                + w.route_files
                    .iter()
                    .filter_map(|f| gpx.get(f))
                    .map(|g| gpx_points(g).len() as u64)
                    .sum::<u64>();
            assert_eq!(
                detail.route.len() as u64,
                expected,
                "{ctx}: route points of the {} workout",
                w.activity_type
            );
            assert_eq!(row.route_points, expected, "{ctx}: route_points column");
        }
    }
    Ok(())
}

// ---- 3. Re-ingest: recognised, forced, or the same XML from a zip ----------------------

#[test]
fn reingest_is_recognised_force_replaces_and_zip_of_the_same_xml_replaces() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let m = generate(
        &spec(3_000, 8, 11, "fr_FR", true, 2),
        &tmp.path().join("gen"),
    )?;
    let zip_path = m.zip_path.clone().ok_or("no zip")?;
    let db = tmp.path().join("store.db");
    let mut store = Store::open(&db)?;

    let first = ingest(&mut store, &m.xml_path)?;
    assert!(!first.reused);
    let rows_after_first = table_counts(&db)?;
    let content = content_of(&store.summary(first.export_id)?);

    // The same file again: recognised, nothing read.
    let recorder = Recorder::new();
    let again = store.ingest(
        &m.xml_path,
        IngestOptions {
            progress: &recorder,
            ..IngestOptions::default()
        },
    )?;
    assert!(again.reused, "the same file must be recognised");
    assert_eq!(again.export_id, first.export_id, "and answered with its id");
    assert_eq!(again.state, ExportState::Complete);
    assert_eq!(
        again.stats, first.stats,
        "the stored stats are returned as they were"
    );
    assert!(
        recorder.events().is_empty(),
        "a recognised export is not read again, yet progress was reported: {:?}",
        recorder.events()
    );
    assert_eq!(
        table_counts(&db)?,
        rows_after_first,
        "recognising an export writes nothing"
    );

    // Forced: read again, and the new copy replaces the old one.
    let forced = force_ingest(&mut store, &m.xml_path)?;
    assert!(!forced.reused, "force must read the file again");
    assert_eq!(forced.state, ExportState::Complete);
    assert_eq!(
        forced.stats, first.stats,
        "the same file gives the same counts"
    );
    let exports = store.exports()?;
    assert_eq!(
        exports.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![forced.export_id],
        "one copy of the export is kept, the new one"
    );
    if forced.export_id != first.export_id {
        assert!(
            matches!(store.summary(first.export_id), Err(Error::UnknownExport(_))),
            "the replaced copy must be gone"
        );
    }
    assert_eq!(
        table_counts(&db)?,
        rows_after_first,
        "a forced re-read must leave no duplicated rows in any table"
    );
    let s = store.summary(forced.export_id)?;
    assert_eq!(content_of(&s), content, "same export, same summary");
    assert_eq!(
        stored_records(&db, forced.export_id)?,
        s.records_stored as i64
    );
    assert_eq!(
        count_where(&db, "workouts", forced.export_id)?,
        m.workouts as i64
    );

    // The same XML through its zip: another file, the same fingerprint.
    let fingerprint = exports[0].fingerprint.clone();
    assert!(fingerprint.is_some(), "a complete export has a fingerprint");
    let zipped = ingest(&mut store, &zip_path)?;
    assert!(!zipped.reused, "the zip is another file: it is read");
    assert_eq!(zipped.state, ExportState::Complete);
    let exports = store.exports()?;
    assert_eq!(
        exports.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![zipped.export_id],
        "the zip's copy replaces the XML's: they hold the same export"
    );
    assert_eq!(
        exports[0].fingerprint, fingerprint,
        "same XML, same fingerprint"
    );
    assert_eq!(
        table_counts(&db)?,
        rows_after_first,
        "one export's rows, not two"
    );
    assert_eq!(content_of(&store.summary(zipped.export_id)?), content);

    // And the zip is now recognised in turn.
    let zip_again = ingest(&mut store, &zip_path)?;
    assert!(zip_again.reused);
    assert_eq!(zip_again.export_id, zipped.export_id);
    Ok(())
}

// ---- 4. Cancellation ----------------------------------------------------------------

#[test]
fn cancelling_from_the_progress_sink_leaves_the_database_as_it_was() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let small = generate(
        &spec(800, 3, 5, "en_GB", false, 0),
        &tmp.path().join("small"),
    )?;
    let big = generate(
        &spec(50_000, 10, 6, "ja_JP", false, 0),
        &tmp.path().join("big"),
    )?;
    let db = tmp.path().join("store.db");
    let mut store = Store::open(&db)?;
    let kept = ingest(&mut store, &small.xml_path)?;
    let kept_summary = format!("{:?}", store.summary(kept.export_id)?);
    let rows_before = table_counts(&db)?;

    let token = CancelToken::new();
    let positions: Mutex<Vec<(u64, Option<u64>)>> = Mutex::new(Vec::new());
    let sink = |event: Progress| {
        if let Progress::Advanced { position, .. } = event {
            if let Ok(mut p) = positions.lock() {
                p.push((position.done, position.total));
            }
            token.cancel();
        }
    };
    let result = store.ingest(
        &big.xml_path,
        IngestOptions {
            force: false,
            progress: &sink,
            cancel: Some(&token),
            glimpses: None,
        },
    );
    match &result {
        Err(Error::Export(owi_export::Error::Cancelled { path })) => {
            assert_eq!(path, &big.xml_path, "the error names the file");
        }
        other => panic!("a cancelled ingest must fail as cancelled, got {other:?}"),
    }
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains(&big.xml_path.display().to_string()),
        "the message names the file: {message}"
    );
    let positions = positions.into_inner().unwrap_or_default();
    let (done, total) = positions.first().copied().ok_or("no Advanced event")?;
    assert!(
        total.is_some_and(|t| done < t),
        "the cancel must have come mid-read (done {done} of {total:?})"
    );

    assert_eq!(
        table_counts(&db)?,
        rows_before,
        "a cancelled ingest must leave no row behind in any table"
    );
    assert_eq!(store.exports()?.len(), 1, "no new export row");
    assert_eq!(
        format!("{:?}", store.summary(kept.export_id)?),
        kept_summary,
        "the earlier export is intact"
    );

    // The store is still usable: the same export goes in when not cancelled.
    let done = ingest(&mut store, &big.xml_path)?;
    assert_eq!(done.state, ExportState::Complete);
    assert_eq!(store.summary(done.export_id)?.records, big.records);
    assert_eq!(
        format!("{:?}", store.summary(kept.export_id)?),
        kept_summary
    );
    Ok(())
}

// ---- 5. Damaged files -----------------------------------------------------------------

#[test]
fn a_truncated_export_keeps_what_came_before_the_cut() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let other = generate(
        &spec(1_000, 2, 21, "en_US", false, 0),
        &tmp.path().join("other"),
    )?;
    let whole = generate(
        &spec(6_000, 4, 22, "de_DE", false, 0),
        &tmp.path().join("whole"),
    )?;
    let db = tmp.path().join("store.db");
    let mut store = Store::open(&db)?;
    let kept = ingest(&mut store, &other.xml_path)?;
    let kept_summary = format!("{:?}", store.summary(kept.export_id)?);
    let kept_steps = |store: &Store| -> Res<String> {
        let series = store.daily_series(
            kept.export_id,
            "HKQuantityTypeIdentifierStepCount",
            None,
            None,
        )?;
        Ok(format!("{series:?}"))
    };
    let kept_daily = kept_steps(&store)?;

    // Cut in the middle of the start tag of a top-level record halfway through.
    let xml = std::fs::read(&whole.xml_path)?;
    let record_lines: Vec<usize> = xml
        .split_inclusive(|b| *b == b'\n')
        .scan(0usize, |at, line| {
            let start = *at;
            *at += line.len();
            Some((start, line))
        })
        .filter(|(_, line)| line.starts_with(b" <Record "))
        .map(|(start, _)| start)
        .collect();
    assert_eq!(record_lines.len() as u64, whole.records);
    let complete_before = record_lines.len() / 2;
    let cut = record_lines[complete_before] + 30;
    let cut_dir = tmp.path().join("cut").join("apple_health_export");
    std::fs::create_dir_all(&cut_dir)?;
    let cut_path = cut_dir.join("Export.xml");
    std::fs::write(&cut_path, &xml[..cut])?;

    let out = ingest(&mut store, &cut_path)?;
    assert_eq!(
        out.state,
        ExportState::Partial,
        "a cut file is stored partial"
    );
    let error = out.error.clone().ok_or("a partial export says why")?;
    assert!(
        error.contains(&cut_path.display().to_string()),
        "the error names the file: {error}"
    );
    let offset: u64 = error
        .split("at byte ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("the error names no byte offset: {error}"))?;
    assert!(
        offset > 0 && offset <= cut as u64,
        "the offset {offset} lies within the {cut} bytes that exist: {error}"
    );

    let s = store.summary(out.export_id)?;
    assert!(s.records_stored > 0 && s.records_stored < whole.records);
    assert_eq!(
        s.records_stored, complete_before as u64,
        "every record completed before the cut is kept"
    );
    assert_eq!(stored_records(&db, out.export_id)?, complete_before as i64);
    assert_eq!(s.export.state, ExportState::Partial);
    assert_eq!(s.export.error.as_deref(), Some(error.as_str()));
    assert_eq!(s.workouts, 0, "the workouts came after the cut");
    assert_eq!(
        format!("{:?}", store.summary(kept.export_id)?),
        kept_summary,
        "the other export is untouched"
    );
    assert_eq!(store.exports()?.len(), 2);
    assert_eq!(
        kept_steps(&store)?,
        kept_daily,
        "another export's daily values do not leak into this one"
    );

    // A partial copy is not "already there": reading it again replaces it.
    let again = ingest(&mut store, &cut_path)?;
    assert!(!again.reused, "a partial export is read again, not reused");
    assert_eq!(again.state, ExportState::Partial);
    assert_eq!(store.exports()?.len(), 2, "the partial copy was replaced");
    assert_eq!(
        store.summary(again.export_id)?.records_stored,
        complete_before as u64
    );
    assert_eq!(
        format!("{:?}", store.summary(kept.export_id)?),
        kept_summary
    );
    Ok(())
}

#[test]
fn files_that_are_not_exports_are_refused_and_nothing_is_stored() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let db = tmp.path().join("store.db");
    let mut store = Store::open(&db)?;
    let empty_db = table_counts(&db)?;

    let svg = tmp.path().join("drawing.svg.xml");
    std::fs::write(
        &svg,
        "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"1\" height=\"1\"/></svg>\n",
    )?;
    let garbage = tmp.path().join("export.xml");
    std::fs::write(
        &garbage,
        (0..4096u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )?;
    // Cut before any record: nothing to keep, so nothing is stored.
    let headless = tmp.path().join("headless.xml");
    std::fs::write(
        &headless,
        "<?xml version=\"1.0\"?>\n<HealthData locale=\"en_US\">\n <ExportDate value=\"2024-01-01 10:00:00 +0100\"/>\n <Record type=\"HKQuantityTypeIdentifierStepCount\" sourceName=\"x\" startDate=\"2024-01-01 1",
    )?;

    for (path, what) in [
        (&svg, "an SVG document"),
        (&garbage, "random bytes"),
        (&headless, "an export cut before its first record"),
    ] {
        let result = store.ingest(path, IngestOptions::default());
        let Err(error) = result else {
            panic!("{what} must be refused, got {result:?}");
        };
        let message = error.to_string();
        assert!(
            message.contains(&path.display().to_string()),
            "the error about {what} names the file: {message}"
        );
        assert_eq!(
            table_counts(&db)?,
            empty_db,
            "refusing {what} must store nothing"
        );
    }
    assert!(store.exports()?.is_empty());
    Ok(())
}

// ---- 6. Preview queries ---------------------------------------------------------------

const ALL_SORTS: [WorkoutSort; 10] = [
    WorkoutSort::Start,
    WorkoutSort::End,
    WorkoutSort::ActivityType,
    WorkoutSort::Duration,
    WorkoutSort::Distance,
    WorkoutSort::Energy,
    WorkoutSort::HeartRateAvg,
    WorkoutSort::HeartRateMax,
    WorkoutSort::Source,
    WorkoutSort::RoutePoints,
];

#[derive(Debug, PartialEq, PartialOrd)]
enum Key {
    N(f64),
    S(String),
}

fn sort_key(row: &WorkoutRow, sort: WorkoutSort) -> Option<Key> {
    let n = |v: f64| Some(Key::N(v));
    match sort {
        WorkoutSort::Start => rfc3339(&row.start).and_then(|t| n(t.utc as f64)),
        WorkoutSort::End => rfc3339(&row.end).and_then(|t| n(t.utc as f64)),
        WorkoutSort::ActivityType => Some(Key::S(row.activity_type.clone())),
        WorkoutSort::Duration => n(row.duration_s),
        WorkoutSort::Distance => row.distance_m.and_then(n),
        WorkoutSort::Energy => row.energy_kcal.and_then(n),
        WorkoutSort::HeartRateAvg => row.hr_avg.and_then(n),
        WorkoutSort::HeartRateMax => row.hr_max.and_then(n),
        WorkoutSort::Source => Some(Key::S(row.source.clone())),
        WorkoutSort::RoutePoints => n(row.route_points as f64),
    }
}

fn ids(rows: &[WorkoutRow]) -> Vec<i64> {
    rows.iter().map(|r| r.id).collect()
}

fn local_day_of(row: &WorkoutRow) -> i64 {
    day(&row.start[..10])
}

#[test]
fn workouts_list_filters_and_sorts() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let m = generate(
        &spec(4_000, 40, 7, "en_US", false, 0),
        &tmp.path().join("gen"),
    )?;
    let scan = read_scan(&m)?;
    let db = tmp.path().join("store.db");
    let mut store = Store::open(&db)?;
    let id = ingest(&mut store, &m.xml_path)?.export_id;

    let all = store.workouts(id, &WorkoutFilter::default())?;
    assert_eq!(all.len() as u64, m.workouts);
    let starts: Vec<Timestamp> = all
        .iter()
        .map(|r| instant(Some(&r.start), "start"))
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0].utc <= w[1].utc),
        "the default order is by start"
    );
    // Each row's start is the written start, with its offset.
    let mut written: Vec<Timestamp> = scan.workouts.iter().filter_map(|w| w.start).collect();
    written.sort_by_key(|t| t.utc);
    assert_eq!(starts, written, "workout starts, offsets included");

    // By type, in both spellings.
    let running = m
        .workout_types
        .get("HKWorkoutActivityTypeRunning")
        .copied()
        .unwrap_or(0);
    assert!(running > 0, "seed 7 must give some runs to filter on");
    for name in ["Running", "HKWorkoutActivityTypeRunning"] {
        let rows = store.workouts(
            id,
            &WorkoutFilter {
                activity_type: Some(name.into()),
                ..WorkoutFilter::default()
            },
        )?;
        assert_eq!(rows.len() as u64, running, "filter `{name}`");
        assert!(
            rows.iter()
                .all(|r| r.activity_type == "HKWorkoutActivityTypeRunning"),
            "filter `{name}` keeps only runs"
        );
        let expected: Vec<i64> = all
            .iter()
            .filter(|r| r.activity_type == "HKWorkoutActivityTypeRunning")
            .map(|r| r.id)
            .collect();
        assert_eq!(ids(&rows), expected);
    }
    let none = store.workouts(
        id,
        &WorkoutFilter {
            activity_type: Some("Curling".into()),
            ..WorkoutFilter::default()
        },
    )?;
    assert!(none.is_empty(), "an absent type matches nothing");

    // By local start date, both bounds inclusive.
    let (d1, d2) = (local_day_of(&all[5]), local_day_of(&all[15]));
    let between = |from: Option<i64>, to: Option<i64>| -> Vec<i64> {
        all.iter()
            .filter(|r| {
                let d = local_day_of(r);
                from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t)
            })
            .map(|r| r.id)
            .collect()
    };
    for (from, to) in [
        (Some(d1), Some(d2)),
        (Some(d1), None),
        (None, Some(d2)),
        (Some(d1), Some(d1)),
    ] {
        let rows = store.workouts(
            id,
            &WorkoutFilter {
                from_day: from,
                to_day: to,
                ..WorkoutFilter::default()
            },
        )?;
        assert_eq!(ids(&rows), between(from, to), "from {from:?} to {to:?}");
        assert!(
            ids(&rows).contains(&all[5].id),
            "from {from:?} to {to:?}: the workout on the first day is inside the inclusive range"
        );
    }
    let on_d2 = store.workouts(
        id,
        &WorkoutFilter {
            from_day: Some(d2),
            to_day: Some(d2),
            ..WorkoutFilter::default()
        },
    )?;
    assert!(
        ids(&on_d2).contains(&all[15].id),
        "the last day is included"
    );
    // Every workout is found on its own local start date (evening starts in
    // -0800 fall on the next UTC date).
    for (row, written) in all.iter().zip(&starts) {
        let local = written.local_day();
        let rows = store.workouts(
            id,
            &WorkoutFilter {
                from_day: Some(local),
                to_day: Some(local),
                ..WorkoutFilter::default()
            },
        )?;
        assert!(
            ids(&rows).contains(&row.id),
            "workout {} starting {} is listed on its local date",
            row.id,
            row.start
        );
        assert_eq!(ids(&rows), between(Some(local), Some(local)));
    }

    // Every column, both directions; NULLs last either way.
    let nulls = |f: fn(&WorkoutRow) -> Option<f64>| all.iter().filter(|r| f(r).is_none()).count();
    assert!(
        nulls(|r| r.hr_avg) > 0 && nulls(|r| r.hr_avg) < all.len(),
        "old-style workouts have no heart rate: the NULL ordering gets tested"
    );
    assert!(
        nulls(|r| r.distance_m) > 0,
        "some workouts have no distance"
    );
    let mut all_ids = ids(&all);
    all_ids.sort_unstable();
    for sort in ALL_SORTS {
        for descending in [false, true] {
            let rows = store.workouts(
                id,
                &WorkoutFilter {
                    sort,
                    descending,
                    ..WorkoutFilter::default()
                },
            )?;
            let mut got = ids(&rows);
            got.sort_unstable();
            assert_eq!(
                got, all_ids,
                "{sort:?}: sorting neither adds nor drops rows"
            );
            for pair in rows.windows(2) {
                let (a, b) = (sort_key(&pair[0], sort), sort_key(&pair[1], sort));
                let ok = match (&a, &b) {
                    (Some(a), Some(b)) => {
                        if descending {
                            a >= b
                        } else {
                            a <= b
                        }
                    }
                    (None, Some(_)) => false,
                    _ => true,
                };
                assert!(
                    ok,
                    "{sort:?} {}: {a:?} (workout {}) before {b:?} (workout {})",
                    if descending { "desc" } else { "asc" },
                    pair[0].id,
                    pair[1].id
                );
            }
        }
    }
    Ok(())
}

#[test]
fn workout_detail_holds_statistics_events_route_and_heart_rate() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let m = generate(
        &spec(30_000, 30, 8, "en_US", false, 0),
        &tmp.path().join("gen"),
    )?;
    assert!(m.route_files > 0, "seed 8 must give routes");
    let scan = read_scan(&m)?;
    let export_dir = m.xml_path.parent().ok_or("no export dir")?;
    let db = tmp.path().join("store.db");
    let mut store = Store::open(&db)?;
    let id = ingest(&mut store, &m.xml_path)?.export_id;

    let hr: Vec<(i64, f64)> = scan
        .stored()
        .filter(|r| r.kind == "HKQuantityTypeIdentifierHeartRate")
        .filter_map(|r| Some((r.start?.utc, r.number()?)))
        .collect();
    let rows = store.workouts(id, &WorkoutFilter::default())?;
    let mut with_route = 0;
    let mut with_heart_rate = 0;
    for (i, w) in scan.workouts.iter().enumerate() {
        let (start, end) = (w.start.ok_or("start")?, w.end.ok_or("end")?);
        let row = rows
            .iter()
            .find(|r| rfc3339(&r.start) == Some(start) && r.activity_type == w.activity_type)
            .ok_or("no row for a written workout")?;
        let d = store.workout_detail(row.id)?;
        let ctx = format!("workout {i} ({}, {})", w.activity_type, row.start);

        // Modern workouts (all but every 10th) carry statistics.
        if i % 10 != 9 {
            assert!(
                d.statistics
                    .iter()
                    .any(|s| s.kind == "HKQuantityTypeIdentifierHeartRate" && s.average.is_some()),
                "{ctx}: heart-rate statistics"
            );
            assert!(
                d.statistics
                    .iter()
                    .any(|s| s.kind == "HKQuantityTypeIdentifierActiveEnergyBurned"
                        && s.sum.is_some()),
                "{ctx}: energy statistics"
            );
            assert!(!d.activities.is_empty(), "{ctx}: its WorkoutActivity");
        }
        if w.activity_type.ends_with("Running") || w.activity_type.ends_with("Cycling") {
            assert!(
                d.events
                    .iter()
                    .any(|e| e.kind == "HKWorkoutEventTypeSegment"),
                "{ctx}: segment events"
            );
        }
        let event_times: Vec<i64> = d
            .events
            .iter()
            .map(|e| instant(Some(&e.at), "event").utc)
            .collect();
        assert!(
            event_times.windows(2).all(|p| p[0] <= p[1]),
            "{ctx}: events in time order"
        );
        assert!(
            d.metadata.iter().any(|(k, _)| k == "HKTimeZone"),
            "{ctx}: metadata"
        );

        // The route: exactly the GPX file's track points.
        let mut expected_points = Vec::new();
        for file in &w.route_files {
            let gpx = std::fs::read_to_string(export_dir.join(file.trim_start_matches('/')))?;
            expected_points.extend(gpx_points(&gpx));
        }
        let got_points: Vec<(f64, f64)> = d.route.iter().map(|p| (p.lat, p.lon)).collect();
        assert_eq!(got_points, expected_points, "{ctx}: route points");
        assert_eq!(
            d.workout.route_points,
            expected_points.len() as u64,
            "{ctx}"
        );
        assert!(
            d.route.windows(2).all(|p| p[0].at_ms <= p[1].at_ms),
            "{ctx}: route in time order"
        );
        if !expected_points.is_empty() {
            with_route += 1;
        }

        // Heart rate: the records within [start, end], no others.
        let mut expected_hr: Vec<(i64, f64)> = hr
            .iter()
            .copied()
            .filter(|(at, _)| *at >= start.utc && *at <= end.utc)
            .collect();
        let mut got_hr: Vec<(i64, f64)> = d.heart_rate.iter().map(|s| (s.at, s.value)).collect();
        expected_hr.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        got_hr.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        assert_eq!(got_hr, expected_hr, "{ctx}: heart-rate samples");
        if !expected_hr.is_empty() {
            with_heart_rate += 1;
        }
    }
    assert!(with_route > 0, "some workout must have a route to compare");
    assert!(
        with_heart_rate > 0,
        "some workout must overlap heart-rate records for the check to mean anything"
    );
    assert!(
        matches!(
            store.workout_detail(i64::MAX),
            Err(Error::UnknownWorkout(_))
        ),
        "an unknown workout is an error"
    );
    Ok(())
}

#[test]
fn summary_of_a_generated_export_lists_units_sources_and_devices() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let m = generate(
        &spec(5_000, 5, 9, "ru_RU", false, 3),
        &tmp.path().join("gen"),
    )?;
    let scan = read_scan(&m)?;
    let db = tmp.path().join("store.db");
    let mut store = Store::open(&db)?;
    let id = ingest(&mut store, &m.xml_path)?.export_id;
    let s = store.summary(id)?;

    for t in &s.record_types {
        let of_type: Vec<&RecordScan> = scan.stored().filter(|r| r.kind == t.kind).collect();
        assert_eq!(t.count, of_type.len() as u64, "{}: count", t.kind);
        assert_eq!(
            t.units,
            set(of_type.iter().filter_map(|r| r.unit.clone())),
            "{}: units",
            t.kind
        );
        assert_eq!(
            t.sources,
            set(of_type.iter().map(|r| r.source.clone())),
            "{}: sources",
            t.kind
        );
        assert_eq!(t.aggregation, owi_store::aggregation_of(&t.kind));
        if let Some((first, last)) = ExportScan::start_range(of_type.iter().copied()) {
            assert_eq!(
                instant(t.first_start.as_deref(), &t.kind).utc,
                first.utc,
                "{}: first start",
                t.kind
            );
            assert_eq!(
                instant(t.last_start.as_deref(), &t.kind).utc,
                last.utc,
                "{}: last start",
                t.kind
            );
        }
    }
    assert_eq!(
        s.sources,
        set(scan.stored().map(|r| r.source.clone())),
        "sources, `&amp;` unescaped"
    );
    assert!(
        s.sources.iter().any(|x| x == "Health & Fitness"),
        "the third-party app's name is unescaped"
    );
    assert!(!s.devices.is_empty(), "the generator writes devices");
    for d in &s.devices {
        assert!(
            d.device.starts_with("name:") && !d.device.contains("HKDevice"),
            "a device is shown without its HKDevice pointer: {}",
            d.device
        );
    }
    assert_eq!(
        devices_of(&s),
        expected_devices(&scan),
        "records per device, pointers ignored"
    );
    // Lists come out in a fixed order, so the same export always reads the
    // same: by count, ties by name.
    assert!(
        s.devices
            .windows(2)
            .all(|p| (std::cmp::Reverse(p[0].records), &p[0].device)
                < (std::cmp::Reverse(p[1].records), &p[1].device)),
        "devices by record count, then name: {:?}",
        s.devices
    );
    assert_eq!(s.skipped.len(), 3, "one junk value of each kind");
    assert!(
        s.skipped.windows(2).all(
            |p| (std::cmp::Reverse(p[0].count), &p[0].reason, &p[0].element)
                < (std::cmp::Reverse(p[1].count), &p[1].reason, &p[1].element)
        ),
        "skips by count, then reason (equal counts here): {:?}",
        s.skipped
    );
    Ok(())
}

/// `"01-31 09:00"` (or with seconds) at home in 2024: `2024-01-31 09:00:00 +0100`.
fn home(s: &str) -> String {
    let seconds = if s.len() == "01-31 09:00".len() {
        ":00"
    } else {
        ""
    };
    format!("2024-{s}{seconds} +0100")
}

/// A hand-written export whose daily values are easy to compute by hand.
/// Home is +0100; 2024-01-31 and 2024-02-01.
fn daily_fixture(dir: &Path) -> Res<PathBuf> {
    const STEPS: &str = "HKQuantityTypeIdentifierStepCount";
    const HR: &str = "HKQuantityTypeIdentifierHeartRate";
    const SLEEP: &str = "HKCategoryTypeIdentifierSleepAnalysis";
    let watch = |p: u64| Some(device_attr(0x2_8000_0000 + p * 16, WATCH_DEVICE));
    let phone = |p: u64| Some(device_attr(0x2_9000_0000 + p * 16, PHONE_DEVICE));
    let mut x = XmlBuilder::new();
    // Steps. On the 31st the iPhone counts 100 + 200, the watch 120 + 130;
    // 00:30 local on the 1st is still the 31st in UTC, yet belongs to the 1st.
    let steps = [
        (PHONE, phone(1), "01-31 09:00", "01-31 09:10", "100"),
        (PHONE, phone(2), "01-31 18:00", "01-31 18:10", "200"),
        (WATCH, watch(1), "01-31 09:00", "01-31 09:10", "120"),
        (WATCH, watch(2), "01-31 12:00", "01-31 12:10", "130"),
        (PHONE, None, "02-01 00:30", "02-01 00:40", "7"),
        (WATCH, watch(3), "02-01 09:00", "02-01 09:10", "40"),
    ];
    for (source, device, start, end, value) in steps {
        let (start, end) = (home(start), home(end));
        x.record(
            STEPS,
            source,
            device.as_deref(),
            Some("count"),
            &start,
            &end,
            value,
        );
    }
    // Heart rate around a 10:00–10:30 run, some just outside it.
    let heart_rate = [
        (WATCH, watch(10), "01-31 08:00", "60"),
        (WATCH, watch(11), "01-31 09:59:59", "90"),
        (WATCH, watch(12), "01-31 10:00", "95"),
        (WATCH, watch(13), "01-31 10:15", "100"),
        (WATCH, watch(14), "01-31 10:30", "97"),
        (WATCH, watch(15), "01-31 10:30:01", "93"),
        (APP, None, "01-31 20:00", "80"),
        (WATCH, watch(16), "02-01 07:00", "70"),
    ];
    for (source, device, at, bpm) in heart_rate {
        let at = home(at);
        x.record(
            HR,
            source,
            device.as_deref(),
            Some("count/min"),
            &at,
            &at,
            bpm,
        );
    }
    // One night: in bed (not asleep) on the iPhone, stages on the watch.
    let sleep = [
        (PHONE, None, "01-31 23:00", "02-01 07:00", "InBed"),
        (WATCH, watch(20), "01-31 23:30", "02-01 02:00", "AsleepCore"),
        (WATCH, watch(21), "02-01 02:00", "02-01 03:00", "AsleepDeep"),
        (WATCH, watch(22), "02-01 03:00", "02-01 03:15", "Awake"),
        (WATCH, watch(23), "02-01 03:15", "02-01 06:45", "AsleepREM"),
    ];
    for (source, device, start, end, stage) in sleep {
        let value = format!("HKCategoryValueSleepAnalysis{stage}");
        let (start, end) = (home(start), home(end));
        x.record(SLEEP, source, device.as_deref(), None, &start, &end, &value);
    }
    // A type whose only record is unreadable.
    let at = home("01-31 07:00");
    let mass = "HKQuantityTypeIdentifierBodyMass";
    x.record(mass, APP, None, Some("kg"), &at, &at, "abc");
    let device = escape_attr(&watch(30).unwrap_or_default());
    x.raw(&format!(
        r#" <Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="30" durationUnit="min" sourceName="Ana’s Apple Watch" sourceVersion="10.2" device="{device}" creationDate="2024-01-31 10:31:00 +0100" startDate="2024-01-31 10:00:00 +0100" endDate="2024-01-31 10:30:00 +0100">
  <MetadataEntry key="HKIndoorWorkout" value="0"/>
  <MetadataEntry key="HKTimeZone" value="Europe/Paris"/>
  <WorkoutEvent type="HKWorkoutEventTypeSegment" date="2024-01-31 10:00:00 +0100" duration="15" durationUnit="min"/>
  <WorkoutEvent type="HKWorkoutEventTypeResume" date="2024-01-31 10:11:00 +0100"/>
  <WorkoutEvent type="HKWorkoutEventTypePause" date="2024-01-31 10:10:00 +0100"/>
  <WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" startDate="2024-01-31 10:00:00 +0100" endDate="2024-01-31 10:30:00 +0100" sum="310.5" unit="kcal"/>
  <WorkoutStatistics type="HKQuantityTypeIdentifierDistanceWalkingRunning" startDate="2024-01-31 10:00:00 +0100" endDate="2024-01-31 10:30:00 +0100" sum="5.2" unit="km"/>
  <WorkoutStatistics type="HKQuantityTypeIdentifierHeartRate" startDate="2024-01-31 10:00:00 +0100" endDate="2024-01-31 10:30:00 +0100" average="150" minimum="120" maximum="171" unit="count/min"/>
  <WorkoutRoute sourceName="Ana’s Apple Watch" creationDate="2024-01-31 10:31:00 +0100" startDate="2024-01-31 10:00:00 +0100" endDate="2024-01-31 10:30:00 +0100">
   <FileReference path="/workout-routes/route_2024-01-31_10.00am.gpx"/>
  </WorkoutRoute>
 </Workout>
 <Workout workoutActivityType="HKWorkoutActivityTypeYoga" duration="20" durationUnit="min" sourceName="Ana’s Apple Watch" creationDate="2024-02-01 18:21:00 +0100" startDate="2024-02-01 18:00:00 +0100" endDate="2024-02-01 18:20:00 +0100"/>"#
    ));
    let path = x.write(dir, "fr_FR", "2024-02-02 08:00:00 +0100")?;
    let routes = path.parent().ok_or("no dir")?.join("workout-routes");
    std::fs::create_dir_all(&routes)?;
    std::fs::write(routes.join("route_2024-01-31_10.00am.gpx"), gpx(&ROUTE))?;
    Ok(path)
}

const ROUTE: [(f64, f64, &str); 4] = [
    (48.856613, 2.352222, "2024-01-31T09:00:02Z"),
    (48.856701, 2.352390, "2024-01-31T09:00:05Z"),
    (48.856790, 2.352561, "2024-01-31T09:00:08Z"),
    (48.856902, 2.352700, "2024-01-31T09:00:11Z"),
];

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn daily_series_sum_discrete_and_sleep_on_a_hand_written_export() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let path = daily_fixture(tmp.path())?;
    let mut store = Store::open(&tmp.path().join("store.db"))?;
    let out = ingest(&mut store, &path)?;
    assert_eq!(out.state, ExportState::Complete, "{:?}", out.error);
    let id = out.export_id;

    // Steps: the busiest source's sum each day, not the sum of both.
    let steps = store.daily_series(id, "HKQuantityTypeIdentifierStepCount", None, None)?;
    assert_eq!(steps.aggregation, Aggregation::Sum);
    assert_eq!(steps.unit.as_deref(), Some("count"));
    let days: Vec<(&str, u64, Option<f64>)> = steps
        .days
        .iter()
        .map(|d| (d.date.as_str(), d.count, d.total))
        .collect();
    assert_eq!(
        days,
        vec![
            ("2024-01-31", 4, Some(300.0)),
            ("2024-02-01", 2, Some(40.0)),
        ],
        "iPhone 100+200 beats watch 120+130 on the 31st; 00:30 local belongs to the 1st"
    );
    assert!(
        steps
            .days
            .iter()
            .all(|d| d.min.is_none() && d.avg.is_none() && d.max.is_none()),
        "summed types show a total, not min/avg/max"
    );
    let only_first = store.daily_series(
        id,
        "HKQuantityTypeIdentifierStepCount",
        Some(day("2024-02-01")),
        Some(day("2024-02-01")),
    )?;
    assert_eq!(
        only_first
            .days
            .iter()
            .map(|d| d.date.as_str())
            .collect::<Vec<_>>(),
        vec!["2024-02-01"],
        "the day range is inclusive and local"
    );

    // Heart rate: min / mean / max over every source.
    let hr = store.daily_series(id, "HKQuantityTypeIdentifierHeartRate", None, None)?;
    assert_eq!(hr.aggregation, Aggregation::Discrete);
    assert_eq!(hr.unit.as_deref(), Some("count/min"));
    assert_eq!(hr.days.len(), 2, "{:?}", hr.days);
    let d = &hr.days[0];
    assert_eq!((d.date.as_str(), d.count), ("2024-01-31", 7));
    let mean = (60.0 + 90.0 + 95.0 + 100.0 + 97.0 + 93.0 + 80.0) / 7.0;
    assert!(
        close(d.min, 60.0) && close(d.avg, mean) && close(d.max, 100.0),
        "heart rate on the 31st: {d:?}, expected 60 / {mean} / 100"
    );
    assert_eq!(d.total, None, "a measurement has no daily total");
    let d = &hr.days[1];
    assert!(
        d.date == "2024-02-01" && close(d.min, 70.0) && close(d.avg, 70.0) && close(d.max, 70.0),
        "{d:?}"
    );

    // Sleep: seconds asleep, in bed not counted, on the morning it ends.
    let sleep = store.daily_series(id, "HKCategoryTypeIdentifierSleepAnalysis", None, None)?;
    assert_eq!(sleep.aggregation, Aggregation::Duration);
    let days: Vec<(&str, u64, Option<f64>)> = sleep
        .days
        .iter()
        .map(|d| (d.date.as_str(), d.count, d.total))
        .collect();
    assert_eq!(
        days,
        vec![("2024-02-01", 3, Some(9_000.0 + 3_600.0 + 12_600.0))],
        "core 2.5 h + deep 1 h + REM 3.5 h; awake and in-bed excluded; the night ends on the 1st"
    );

    assert!(
        matches!(
            store.daily_series(id, "HKQuantityTypeIdentifierNoSuchThing", None, None),
            Err(Error::UnknownType(_))
        ),
        "an unknown type is an error"
    );
    Ok(())
}

#[test]
fn summary_and_workout_detail_on_a_hand_written_export() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let path = daily_fixture(tmp.path())?;
    let mut store = Store::open(&tmp.path().join("store.db"))?;
    let id = ingest(&mut store, &path)?.export_id;
    let s = store.summary(id)?;

    assert_eq!((s.records, s.records_stored), (20, 19));
    let by_kind = |kind: &str| {
        s.record_types
            .iter()
            .find(|t| t.kind == kind)
            .unwrap_or_else(|| panic!("{kind} missing from {:?}", s.record_types))
    };
    let steps = by_kind("HKQuantityTypeIdentifierStepCount");
    assert_eq!(steps.count, 6);
    assert_eq!(
        steps.first_start.as_deref(),
        Some("2024-01-31T09:00:00+01:00")
    );
    assert_eq!(
        steps.last_start.as_deref(),
        Some("2024-02-01T09:00:00+01:00")
    );
    assert_eq!(steps.units, vec!["count"]);
    assert_eq!(steps.sources, vec![WATCH, PHONE]);
    assert_eq!(steps.aggregation, Aggregation::Sum);
    let hr = by_kind("HKQuantityTypeIdentifierHeartRate");
    assert_eq!(hr.count, 8);
    assert_eq!(hr.first_start.as_deref(), Some("2024-01-31T08:00:00+01:00"));
    assert_eq!(hr.last_start.as_deref(), Some("2024-02-01T07:00:00+01:00"));
    assert_eq!(
        hr.sources,
        vec![WATCH, APP],
        "`Health &amp; Fitness` unescaped"
    );
    assert_eq!(hr.aggregation, Aggregation::Discrete);
    let sleep = by_kind("HKCategoryTypeIdentifierSleepAnalysis");
    assert_eq!(
        sleep.count, 5,
        "in-bed and awake samples are stored all the same"
    );
    assert!(sleep.units.is_empty());
    assert_eq!(
        sleep.first_start.as_deref(),
        Some("2024-01-31T23:00:00+01:00")
    );
    assert_eq!(sleep.aggregation, Aggregation::Duration);
    let mass = by_kind("HKQuantityTypeIdentifierBodyMass");
    assert_eq!(
        (mass.count, mass.skipped, mass.first_start.as_deref()),
        (0, 1, None),
        "a type whose only record was unreadable is listed, as skipped"
    );
    assert_eq!(s.sources, vec![WATCH, PHONE, APP]);
    let devices: Vec<(&str, u64)> = s
        .devices
        .iter()
        .map(|d| (d.device.as_str(), d.records))
        .collect();
    assert_eq!(
        devices,
        vec![(WATCH_DEVICE, 14), (PHONE_DEVICE, 2)],
        "one device per description, whatever the HKDevice pointer"
    );
    assert_eq!(s.skipped.len(), 1);
    assert_eq!(
        (s.skipped[0].reason.as_str(), s.skipped[0].count),
        ("invalid_value", 1)
    );
    assert_eq!(s.route_points, ROUTE.len() as u64);

    let runs = store.workouts(
        id,
        &WorkoutFilter {
            activity_type: Some("Running".into()),
            ..WorkoutFilter::default()
        },
    )?;
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.start, "2024-01-31T10:00:00+01:00");
    assert_eq!(
        run.device.as_deref(),
        Some(WATCH_DEVICE),
        "workout device without pointer"
    );
    assert!(
        close(run.distance_m, 5_200.0),
        "5.2 km: {:?}",
        run.distance_m
    );
    assert!(close(run.energy_kcal, 310.5));
    assert!(close(run.hr_avg, 150.0) && close(run.hr_min, 120.0) && close(run.hr_max, 171.0));
    assert_eq!(run.route_points, ROUTE.len() as u64);

    let d = store.workout_detail(run.id)?;
    let mut kinds: Vec<&str> = d.statistics.iter().map(|s| s.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        vec![
            "HKQuantityTypeIdentifierActiveEnergyBurned",
            "HKQuantityTypeIdentifierDistanceWalkingRunning",
            "HKQuantityTypeIdentifierHeartRate",
        ]
    );
    let events: Vec<(&str, &str)> = d
        .events
        .iter()
        .map(|e| (e.kind.as_str(), e.at.as_str()))
        .collect();
    assert_eq!(
        events,
        vec![
            ("HKWorkoutEventTypeSegment", "2024-01-31T10:00:00+01:00"),
            ("HKWorkoutEventTypePause", "2024-01-31T10:10:00+01:00"),
            ("HKWorkoutEventTypeResume", "2024-01-31T10:11:00+01:00"),
        ],
        "events in time order"
    );
    assert!(close(d.events[0].duration_s, 900.0), "15 min segment");
    assert!(
        d.metadata
            .contains(&("HKTimeZone".into(), "Europe/Paris".into()))
    );
    let route: Vec<(f64, f64)> = d.route.iter().map(|p| (p.lat, p.lon)).collect();
    let expected: Vec<(f64, f64)> = ROUTE
        .iter()
        .map(|(lat, lon, _)| {
            (
                format!("{lat:.6}").parse().unwrap_or(f64::NAN),
                format!("{lon:.6}").parse().unwrap_or(f64::NAN),
            )
        })
        .collect();
    assert_eq!(route, expected);
    assert_eq!(
        d.route.first().map(|p| p.at_ms),
        Timestamp::parse("2024-01-31 09:00:02 +0000").map(|t| t.utc * 1000)
    );
    let at = |s: &str| Timestamp::parse(s).map(|t| t.utc).unwrap_or_default();
    let samples: Vec<(i64, f64)> = d.heart_rate.iter().map(|h| (h.at, h.value)).collect();
    assert_eq!(
        samples,
        vec![
            (at("2024-01-31 10:00:00 +0100"), 95.0),
            (at("2024-01-31 10:15:00 +0100"), 100.0),
            (at("2024-01-31 10:30:00 +0100"), 97.0),
        ],
        "heart rate from start to end inclusive; 09:59:59 and 10:30:01 are outside"
    );

    let yoga = store.workouts(
        id,
        &WorkoutFilter {
            activity_type: Some("HKWorkoutActivityTypeYoga".into()),
            ..WorkoutFilter::default()
        },
    )?;
    assert_eq!(yoga.len(), 1);
    let d = store.workout_detail(yoga[0].id)?;
    assert!(
        d.statistics.is_empty() && d.route.is_empty() && d.heart_rate.is_empty(),
        "a bare workout has nothing attached: {d:?}"
    );
    Ok(())
}

// ---- 7. Travel ---------------------------------------------------------------------------

#[test]
fn a_record_taken_while_travelling_lands_in_its_own_local_day() -> Res<()> {
    const STEPS: &str = "HKQuantityTypeIdentifierStepCount";
    let tmp = tempfile::tempdir()?;
    let mut x = XmlBuilder::new();
    // At home in Paris, then a trip to New York: 23:30 on the 10th in
    // New York is already 04:30 on the 11th in UTC (and 05:30 at home).
    let steps = [
        (
            "2024-03-09 12:00:00 +0100",
            "2024-03-09 12:10:00 +0100",
            "1000",
        ),
        (
            "2024-03-10 23:30:00 -0500",
            "2024-03-10 23:40:00 -0500",
            "500",
        ),
        (
            "2024-03-11 10:00:00 -0500",
            "2024-03-11 10:10:00 -0500",
            "40",
        ),
    ];
    for (start, end, value) in steps {
        x.record(STEPS, WATCH, None, Some("count"), start, end, value);
    }
    let at = "2024-03-10 22:45:00 -0500";
    let hr = "HKQuantityTypeIdentifierHeartRate";
    x.record(hr, WATCH, None, Some("count/min"), at, at, "88");
    x.raw(concat!(
        r#" <Workout workoutActivityType="HKWorkoutActivityTypeWalking" duration="40""#,
        r#" durationUnit="min" sourceName="Ana’s Apple Watch""#,
        r#" startDate="2024-03-10 22:00:00 -0500" endDate="2024-03-10 22:40:00 -0500"/>"#
    ));
    let path = x.write(tmp.path(), "fr_FR", "2024-03-12 08:00:00 -0500")?;
    let mut store = Store::open(&tmp.path().join("store.db"))?;
    let id = ingest(&mut store, &path)?.export_id;

    let steps = store.daily_series(id, STEPS, None, None)?;
    let days: Vec<(&str, Option<f64>)> = steps
        .days
        .iter()
        .map(|d| (d.date.as_str(), d.total))
        .collect();
    assert_eq!(
        days,
        vec![
            ("2024-03-09", Some(1000.0)),
            ("2024-03-10", Some(500.0)),
            ("2024-03-11", Some(40.0)),
        ],
        "the late-evening steps in New York belong to the 10th, not to the UTC date"
    );
    let tenth = store.daily_series(id, STEPS, Some(day("2024-03-10")), Some(day("2024-03-10")))?;
    assert_eq!(tenth.days.len(), 1);
    assert!(close(tenth.days[0].total, 500.0));
    let hr = store.daily_series(id, "HKQuantityTypeIdentifierHeartRate", None, None)?;
    assert_eq!(
        hr.days.iter().map(|d| d.date.as_str()).collect::<Vec<_>>(),
        vec!["2024-03-10"]
    );

    let s = store.summary(id)?;
    let hr_type = s
        .record_types
        .iter()
        .find(|t| t.kind == "HKQuantityTypeIdentifierHeartRate")
        .ok_or("no heart rate")?;
    assert_eq!(
        hr_type.first_start.as_deref(),
        Some("2024-03-10T22:45:00-05:00"),
        "dates keep the offset they were recorded in"
    );

    let on = |d: &str| -> Res<usize> {
        Ok(store
            .workouts(
                id,
                &WorkoutFilter {
                    from_day: Some(day(d)),
                    to_day: Some(day(d)),
                    ..WorkoutFilter::default()
                },
            )?
            .len())
    };
    assert_eq!(
        on("2024-03-10")?,
        1,
        "the evening walk is on the 10th, locally"
    );
    assert_eq!(on("2024-03-11")?, 0, "not on the 11th, its UTC date");
    Ok(())
}

// ---- 8. Schema and migrations --------------------------------------------------------------

#[test]
fn reopening_keeps_the_data_and_a_newer_schema_is_refused() -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let m = generate(
        &spec(1_500, 3, 31, "en_US", false, 1),
        &tmp.path().join("gen"),
    )?;
    let db = tmp.path().join("nested").join("dir").join("store.db");
    let (id, summary) = {
        let mut store = Store::open(&db)?;
        let id = ingest(&mut store, &m.xml_path)?.export_id;
        (id, format!("{:?}", store.summary(id)?))
    };
    let version: i64 = raw(&db)?.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert!(version >= 1, "a migrated store records its schema version");
    let rows = table_counts(&db)?;

    {
        let mut store = Store::open(&db)?;
        assert_eq!(
            format!("{:?}", store.summary(id)?),
            summary,
            "reopening keeps the data"
        );
        let again = ingest(&mut store, &m.xml_path)?;
        assert!(again.reused, "and still recognises the export");
    }
    assert_eq!(table_counts(&db)?, rows, "reopening migrates nothing twice");
    let after: i64 = raw(&db)?.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert_eq!(after, version);

    raw(&db)?.pragma_update(None, "user_version", version + 41)?;
    let error = match Store::open(&db) {
        Err(e) => e,
        Ok(store) => panic!("a newer schema must be refused, yet {store:?} opened"),
    };
    let message = error.to_string();
    assert!(
        message.contains(&db.display().to_string()),
        "the message names the file: {message}"
    );
    match error {
        Error::TooNew {
            path,
            version: found,
            known,
        } => {
            assert_eq!(path, db);
            assert_eq!((found, known), (version + 41, version));
        }
        other => panic!("a newer schema must be refused with TooNew, got {other:?}"),
    }
    assert_eq!(table_counts(&db)?, rows, "refusing touches nothing");
    Ok(())
}

#[test]
fn a_forced_read_that_ends_partial_never_replaces_a_complete_copy() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let spec = owi_sample::SampleSpec {
        records: 3000,
        workouts: 0,
        ..owi_sample::SampleSpec::default()
    };
    let manifest = owi_sample::generate(&spec, &dir.path().join("s"))?;
    let db = dir.path().join("owi.sqlite");
    let mut store = Store::open(&db)?;
    let complete = ingest(&mut store, &manifest.xml_path)?;
    let before = store.summary(complete.export_id)?.records_stored;

    // Damage the middle of the file: same size, same first and last MiB, so
    // the same quick key; the forced read now stops partway.
    let mut bytes = std::fs::read(&manifest.xml_path)?;
    let middle = bytes.len() / 2;
    let at = middle
        + bytes[middle..]
            .iter()
            .position(|&b| b == b'<')
            .ok_or("no tag")?;
    bytes[at + 1] = b'!';
    bytes[at + 2] = b'!';
    std::fs::write(&manifest.xml_path, &bytes)?;
    let partial = force_ingest(&mut store, &manifest.xml_path)?;
    assert_eq!(partial.state, ExportState::Partial, "{:?}", partial.error);

    let exports = store.exports()?;
    assert!(
        exports
            .iter()
            .any(|e| e.id == complete.export_id && e.state == ExportState::Complete),
        "the complete copy is still there: {exports:?}"
    );
    assert_eq!(store.summary(complete.export_id)?.records_stored, before);
    Ok(())
}

#[test]
fn two_ingests_into_one_database_at_once_both_succeed() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("owi.sqlite");
    let mut paths = Vec::new();
    for seed in [1, 2] {
        let spec = owi_sample::SampleSpec {
            records: 20_000,
            workouts: 3,
            seed,
            ..owi_sample::SampleSpec::default()
        };
        paths.push(owi_sample::generate(&spec, &dir.path().join(format!("s{seed}")))?.xml_path);
    }
    Store::open(&db)?;
    let results: Vec<Result<u64, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .iter()
            .map(|path| {
                let db = db.clone();
                scope.spawn(move || {
                    let mut store = Store::open(&db).map_err(|e| e.to_string())?;
                    let outcome = store
                        .ingest(path, IngestOptions::default())
                        .map_err(|e| e.to_string())?;
                    Ok(outcome.stats.records)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("panicked".into())))
            .collect()
    });
    for r in &results {
        assert_eq!(
            r.as_ref().ok(),
            Some(&20_000),
            "each ingest completes: {results:?}"
        );
    }
    assert_eq!(Store::open(&db)?.exports()?.len(), 2);
    Ok(())
}
