//! Reading an export: what `owi inspect` and `owi workouts` report, their
//! errors, and what an ingest leaves in the store's files.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Env, db_arg, fails_with, s};

#[test]
fn inspect_json_reports_what_the_sample_holds() {
    let env = Env::new();
    let manifest = env.sample(3000, 6, &["--zip", "--junk", "3", "--locale", "ru_RU"]);
    let zip = s(&manifest["zip_path"]).to_string();
    let db = db_arg(&env);
    // The app may have the store open meanwhile: the ingest's pages are
    // folded into its files all the same.
    let window = owi_store::Store::open(Path::new(&db)).expect("the store opens");
    let report = env.json(&["inspect", &zip, "--db", &db, "--json"]);
    let logged = |file: PathBuf| std::fs::metadata(file).map_or(0, |m| m.len());
    assert_eq!(logged(PathBuf::from(format!("{db}-wal"))), 0);
    let journal = owi_store::journal_path(Path::new(&db));
    assert_eq!(
        logged(PathBuf::from(format!("{}-wal", journal.display()))),
        0
    );
    drop(window);

    for key in [
        "records",
        "workouts",
        "correlations",
        "activity_summaries",
        "route_points",
    ] {
        assert_eq!(report[key], manifest[key], "`{key}` of owi inspect --json");
    }
    assert_eq!(
        report["record_types"], manifest["record_types"],
        "record types"
    );
    assert_eq!(
        report["workout_types"], manifest["workout_types"],
        "workout types"
    );
    assert_eq!(
        report["skipped"], manifest["junk_values"],
        "skipped values by reason"
    );
    assert_eq!(report["bytes"], manifest["xml_bytes"], "XML bytes read");
    assert_eq!(report["state"], "complete");
    assert_eq!(report["reused"], false);
    assert!(report["seconds"].as_f64().is_some_and(|s| s > 0.0));
    assert!(report["first_record_start"].is_string() && report["last_record_start"].is_string());

    let again = env.json(&["inspect", &zip, "--db", &db, "--json"]);
    assert_eq!(
        again["reused"], true,
        "a second inspect recognises the export"
    );
    assert_eq!(again["export_id"], report["export_id"]);
    assert_eq!(again["records"], report["records"]);
}

#[test]
fn workouts_lists_and_filters() {
    let env = Env::new();
    let manifest = env.sample(1500, 12, &[]);
    let xml = s(&manifest["xml_path"]).to_string();
    let db = db_arg(&env);
    env.json(&["inspect", &xml, "--db", &db, "--json"]);

    let all = env.json(&["workouts", "--db", &db, "--json"]);
    let rows = all.as_array().expect("an array of workouts");
    assert_eq!(
        rows.len() as u64,
        manifest["workouts"].as_u64().expect("count")
    );
    let starts: Vec<&str> = rows.iter().map(|w| s(&w["start"])).collect();
    for row in rows {
        for key in [
            "activity_type",
            "start",
            "end",
            "duration_s",
            "source",
            "route_points",
        ] {
            assert!(!row[key].is_null(), "workout row lacks `{key}`: {row}");
        }
    }
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]) || starts.len() < 2,
        "sorted by start"
    );

    let (kind, count) = manifest["workout_types"]
        .as_object()
        .and_then(|m| m.iter().next())
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .expect("at least one workout type");
    let short = kind.trim_start_matches("HKWorkoutActivityType");
    let filtered = env.json(&["workouts", "--db", &db, "--type", short, "--json"]);
    assert_eq!(
        filtered.as_array().map(Vec::len),
        Some(count as usize),
        "--type {short}"
    );

    let longest = env.json(&[
        "workouts", "--db", &db, "--sort", "duration", "--desc", "--json",
    ]);
    let durations: Vec<f64> = longest
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|w| w["duration_s"].as_f64())
        .collect();
    assert!(
        durations.windows(2).all(|w| w[0] >= w[1]),
        "--sort duration --desc"
    );

    let none = env.json(&[
        "workouts",
        "--db",
        &db,
        "--from",
        "1990-01-01",
        "--to",
        "1990-12-31",
        "--json",
    ]);
    assert_eq!(none.as_array().map(Vec::len), Some(0), "no workout in 1990");
}

#[test]
fn errors_are_one_sentence_naming_the_file() {
    let env = Env::new();
    let db = db_arg(&env);
    // A missing file and a folder: the system's reason said once.
    std::fs::create_dir(env.path("folder")).expect("mkdir");
    for name in ["nowhere/export.zip", "folder"] {
        let path = env.path(name);
        let said = fails_with(
            &env,
            &["inspect", path.to_str().expect("utf-8"), "--db", &db],
            name,
        );
        assert_eq!(
            said.matches("(os error").count(),
            1,
            "the reason once: {said}"
        );
    }

    let garbage = env.path("notes.zip");
    std::fs::write(&garbage, b"%PDF-1.7 not a zip at all").expect("write");
    fails_with(
        &env,
        &["inspect", garbage.to_str().expect("utf-8"), "--db", &db],
        "notes.zip",
    );

    let svg = env.path("drawing.xml");
    std::fs::write(
        &svg,
        "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    )
    .expect("write");
    fails_with(
        &env,
        &["inspect", svg.to_str().expect("utf-8"), "--db", &db],
        "<svg>",
    );

    fails_with(
        &env,
        &["workouts", "--db", &db, "--from", "2024-13-01"],
        "2024-13-01",
    );
}

#[test]
fn a_truncated_export_is_kept_as_partial_with_the_offset() {
    let env = Env::new();
    let manifest = env.sample(2000, 0, &[]);
    let xml = Path::new(s(&manifest["xml_path"])).to_path_buf();
    let bytes = std::fs::read(&xml).expect("read sample");
    let cut = env.path("cut.xml");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write cut");
    let db = db_arg(&env);
    let out = env
        .owi()
        .args([
            "inspect",
            cut.to_str().expect("utf-8"),
            "--db",
            &db,
            "--json",
        ])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(3),
        "a partial export fails with its own code"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("partial"), "and says so: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("the summary is still printed");
    assert_eq!(report["state"], "partial");
    let error = s(&report["error"]);
    assert!(
        error.contains("cut.xml") && error.contains("byte"),
        "error names file and offset: {error}"
    );
    let stored = report["records_stored"].as_u64().expect("count");
    assert!(
        stored > 0 && stored < 2000,
        "records before the cut are kept: {stored}"
    );
}
