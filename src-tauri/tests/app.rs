//! The app's commands through Tauri's IPC on the mock runtime, with the
//! JSON the UI sends, against generated exports; and the check that the
//! checked-in TypeScript bindings match the Rust types.

#![allow(clippy::expect_used, clippy::unwrap_used)] // in tests a failed expectation is the failure

mod util;

use owi_sample::SampleSpec;
use serde_json::{Value, json};
use util::{App, Recorded};

fn sample(dir: &std::path::Path, records: u64, workouts: u64) -> owi_sample::SampleManifest {
    let spec = SampleSpec {
        records,
        workouts,
        seed: 11,
        locale: "en_US".into(),
        zip: true,
        junk_values: 5,
        dtd: Default::default(),
    };
    owi_sample::generate(&spec, dir).expect("generate a sample export")
}

fn events(recorded: &[Recorded]) -> Vec<(String, String)> {
    recorded
        .iter()
        .map(|r| {
            let event = r.message["event"].as_str().unwrap_or_default().to_string();
            let phase = r.message["phase"].as_str().unwrap_or_default().to_string();
            (event, phase)
        })
        .collect()
}

#[test]
fn opening_an_export_streams_progress_then_the_preview_answers() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = sample(dir.path(), 30_000, 40);
    let zip = manifest.zip_path.clone().unwrap();
    let app = App::new(dir.path(), None);

    let (opened, progress, glimpses) = app.open_live(&zip, "op-1");
    let opened = opened.expect("the sample opens");
    assert_eq!(opened["reused"], json!(false), "a new export is read");
    let export_id = opened["export"]["id"].as_i64().unwrap();
    assert_eq!(opened["export"]["state"], json!("complete"));

    // The live preview reached the window while reading: the summary so
    // far (marked as still reading), and at last the finished numbers.
    let first = &glimpses.first().expect("a glimpse while reading").message;
    assert_eq!(first["summary"]["export"]["state"], json!("reading"));
    assert_eq!(first["summary"]["export"]["id"].as_i64(), Some(export_id));
    let last = &glimpses.last().expect("a last glimpse").message;
    let summary = app
        .invoke(
            "export_summary",
            json!({"request": {"export_id": export_id}}),
        )
        .unwrap();
    for field in [
        "records",
        "records_stored",
        "workouts",
        "record_types",
        "sources",
    ] {
        assert_eq!(last["summary"][field], summary[field], "{field}");
    }
    let workouts: usize = glimpses
        .iter()
        .map(|g| g.message["workouts"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(workouts, 40, "every workout appears once while reading");

    // The ingest phase starts, advances and finishes in order, with the
    // byte counts a progress bar needs; the index phase follows.
    let seen = events(&progress);
    assert_eq!(
        seen.first(),
        Some(&("started".into(), "ingest".into())),
        "{seen:?}"
    );
    let finished = seen
        .iter()
        .position(|e| *e == ("finished".into(), "ingest".into()))
        .expect("the ingest finishes");
    assert!(
        seen[1..finished].iter().all(|e| e.0 == "advanced"),
        "only advances between start and finish: {seen:?}"
    );
    assert_eq!(
        seen.last(),
        Some(&("finished".into(), "index".into())),
        "{seen:?}"
    );
    let indices: Vec<usize> = progress.iter().map(|r| r.index).collect();
    assert!(
        indices.windows(2).all(|w| w[0] < w[1]),
        "delivered in order: {indices:?}"
    );
    let last_advance = progress[..finished]
        .iter()
        .rev()
        .find(|r| r.message["event"] == "advanced")
        .expect("at least one advance");
    assert_eq!(
        last_advance.message["done"].as_u64(),
        Some(manifest.xml_bytes),
        "the last advance covers the whole XML"
    );
    assert!(last_advance.message["rate"].as_f64().unwrap_or(0.0) > 0.0);

    // Opening it again is instant: no reading, no progress, no glimpse.
    let (again, progress, glimpses) = app.open_live(&zip, "op-2");
    assert!(glimpses.is_empty(), "{glimpses:?}");
    let again = again.expect("opens again");
    assert_eq!(again["reused"], json!(true));
    assert_eq!(again["export"]["id"].as_i64(), Some(export_id));
    assert!(again["seconds"].as_f64().unwrap() < 1.0);
    assert!(
        progress.is_empty(),
        "nothing read, nothing reported: {progress:?}"
    );

    let list = app.invoke("list_exports", json!({})).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    let summary = app
        .invoke(
            "export_summary",
            json!({"request": {"export_id": export_id}}),
        )
        .unwrap();
    assert_eq!(summary["records"].as_u64(), Some(manifest.records));
    assert_eq!(summary["workouts"].as_u64(), Some(manifest.workouts));
    let types = summary["record_types"].as_array().unwrap();
    let heart = types
        .iter()
        .find(|t| t["kind"] == "HKQuantityTypeIdentifierHeartRate")
        .expect("heart rate is in the sample");
    assert_eq!(heart["name"], "Heart rate", "types carry human names");
    assert_eq!(heart["category"], "heart");
    let stored_and_skipped = heart["count"].as_u64().unwrap() + heart["skipped"].as_u64().unwrap();
    assert_eq!(
        Some(stored_and_skipped),
        manifest
            .record_types
            .get("HKQuantityTypeIdentifierHeartRate")
            .copied(),
        "every heart-rate record is stored or counted as left out"
    );
    let kinds = summary["workout_kinds"].as_array().unwrap();
    let kind_total: u64 = kinds.iter().map(|k| k["count"].as_u64().unwrap()).sum();
    assert_eq!(kind_total, manifest.workouts);

    let workouts = app
        .invoke(
            "list_workouts",
            json!({"request": {"export_id": export_id, "filter": {
                "activity_type": null, "from_day": null, "to_day": null,
                "sort": "duration", "descending": true}}}),
        )
        .unwrap();
    let rows = workouts.as_array().unwrap();
    assert_eq!(rows.len() as u64, manifest.workouts);
    let durations: Vec<f64> = rows
        .iter()
        .map(|r| r["duration_s"].as_f64().unwrap())
        .collect();
    assert!(
        durations.windows(2).all(|w| w[0] >= w[1]),
        "sorted by duration, longest first"
    );
    assert!(rows.iter().all(|r| {
        r["activity_name"]
            .as_str()
            .is_some_and(|n| !n.starts_with("HK"))
    }));

    let (busiest_kind, busiest_count) = manifest
        .workout_types
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(k, n)| (k.clone(), *n))
        .unwrap();
    let filtered = app
        .invoke(
            "list_workouts",
            json!({"request": {"export_id": export_id, "filter": {
                "activity_type": busiest_kind, "from_day": null, "to_day": null,
                "sort": "start", "descending": false}}}),
        )
        .unwrap();
    assert_eq!(filtered.as_array().unwrap().len() as u64, busiest_count);

    let routed = rows
        .iter()
        .find(|r| r["route_points"].as_u64().unwrap_or(0) > 0)
        .expect("the sample has a workout with a route");
    let detail = app
        .invoke(
            "workout_detail",
            json!({"request": {"workout_id": routed["id"]}}),
        )
        .unwrap();
    assert_eq!(
        detail["route"].as_array().unwrap().len() as u64,
        routed["route_points"].as_u64().unwrap(),
        "the detail carries every route point"
    );
    assert!(detail["route"][0]["lat"].is_number());

    let steps = app
        .invoke(
            "daily_series",
            json!({"request": {"export_id": export_id, "kind": "HKQuantityTypeIdentifierStepCount",
                   "from_day": null, "to_day": null}}),
        )
        .unwrap();
    assert_eq!(steps["name"], "Steps");
    assert_eq!(steps["aggregation"], "sum");
    assert!(!steps["days"].as_array().unwrap().is_empty());

    let server = app
        .invoke(
            "server_preview",
            json!({"request": {"export_id": export_id}}),
        )
        .unwrap();
    let imported = server["records_imported"].as_u64().unwrap();
    let passed = server["records_passed_over"].as_u64().unwrap();
    assert_eq!(
        imported + passed,
        summary["records_stored"].as_u64().unwrap(),
        "every stored record is either imported or passed over"
    );
    assert!(imported > 0 && server["workouts"].as_u64() == Some(manifest.workouts));
}

#[test]
fn a_file_that_is_not_an_export_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "shopping list\n").unwrap();
    let app = App::new(dir.path(), None);

    let check = app
        .invoke("check_export", json!({"request": {"path": notes}}))
        .unwrap();
    assert_eq!(check["ok"], json!(false));
    assert_eq!(check["kind"], json!("not_an_export"));
    assert!(
        check["reason"].as_str().unwrap().contains("notes.txt"),
        "{check}"
    );

    let (opened, progress) = app.open(&notes, "op-wrong");
    let error = opened.expect_err("not an export");
    assert_eq!(error["kind"], json!("not_an_export"), "{error}");
    assert!(error["message"].as_str().unwrap().contains("notes.txt"));
    assert!(progress.is_empty());

    let missing = app
        .invoke("export_summary", json!({"request": {"export_id": 99}}))
        .expect_err("no such export");
    assert_eq!(missing["kind"], json!("not_found"));
}

#[test]
fn an_ingest_stops_when_its_operation_is_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = sample(dir.path(), 400_000, 10);
    let app = App::new(dir.path(), None);

    let xml = manifest.xml_path.clone();
    let running = app.open_in_background(&xml, "op-cancel");
    running.wait_for_progress();
    let cancelled = app
        .invoke(
            "cancel_operation",
            json!({"request": {"operation": "op-cancel"}}),
        )
        .unwrap();
    assert_eq!(cancelled, json!(true), "the operation was running");
    let error = running.finish().expect_err("a cancelled ingest fails");
    assert_eq!(error["kind"], json!("cancelled"), "{error}");
    let list = app.invoke("list_exports", json!({})).unwrap();
    assert_eq!(list, json!([]), "a cancelled ingest stores nothing");
    let again = app
        .invoke(
            "cancel_operation",
            json!({"request": {"operation": "op-cancel"}}),
        )
        .unwrap();
    assert_eq!(again, json!(false), "nothing left to cancel");
}

#[test]
fn the_command_line_export_is_handed_to_the_ui_once() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(dir.path(), Some(dir.path().join("export.zip")));
    let first = app.invoke("startup_export", json!({})).unwrap();
    assert!(first.as_str().unwrap().ends_with("export.zip"));
    assert_eq!(
        app.invoke("startup_export", json!({})).unwrap(),
        Value::Null
    );
}

#[test]
fn the_window_may_call_only_what_its_capability_grants() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::with_context(dir.path(), None, tauri::generate_context!());
    assert_eq!(app.invoke("list_exports", json!({})), Ok(json!([])));
    assert_eq!(
        app.invoke("upload_history", json!({"request": {}})),
        Ok(json!([]))
    );
    let status = app.invoke("connection_status", json!({})).unwrap();
    assert_eq!(
        status["connection"],
        Value::Null,
        "the online commands are granted"
    );
    // The dialog plugin is there, but only its open dialog is granted.
    let save = app.invoke("plugin:dialog|save", json!({"options": {}}));
    let refusal = save.expect_err("the save dialog is not granted");
    assert!(
        refusal.to_string().contains("not allowed"),
        "refused by the capability: {refusal}"
    );
    // No file system from the web view: the ACL refuses the command
    // itself (no fs plugin, and no permission for one), before any file
    // is looked at.
    let fs = app.invoke("plugin:fs|read_file", json!({"path": "/etc/passwd"}));
    assert_eq!(
        fs,
        Err(json!("fs.read_file not allowed. Plugin not found")),
        "refused by the ACL, not by the file"
    );
    // The commands of "What to send" are granted: they answer for
    // themselves (nothing is connected), not with a refusal.
    let ledger = app.invoke("ledger_summary", json!({"request": {"user_id": "x"}}));
    let refusal = ledger.expect_err("not connected");
    assert_eq!(refusal["kind"], json!("not_connected"), "{refusal}");
}

/// The steps of an import, as `step` names, and the progress phases seen.
fn import_steps(recorded: &[Recorded]) -> Vec<String> {
    recorded
        .iter()
        .filter(|r| r.message["type"] == "step")
        .map(|r| {
            r.message["data"]["step"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

#[test]
fn an_export_goes_to_the_bundled_server_and_is_compared() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = sample(dir.path(), 3_000, 6);
    let zip = manifest.zip_path.clone().unwrap();
    let app = App::new(dir.path(), None);

    let refused = app
        .invoke("list_users", json!({"request": {}}))
        .expect_err("no server yet");
    assert_eq!(refused["kind"], json!("not_connected"), "{refused}");

    let connection = app.invoke("connect_local", json!({})).unwrap();
    assert_eq!(connection["local"], json!(true));
    assert!(
        connection["server"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{connection}"
    );
    let text = connection.to_string();
    assert!(!text.contains("key") || connection["kept"].is_null());
    let status = app.invoke("connection_status", json!({})).unwrap();
    assert_eq!(status["connection"], connection);

    let user = app
        .invoke(
            "create_user",
            json!({"request": {"first_name": "Ada", "last_name": "Lovelace", "email": null}}),
        )
        .unwrap();
    let user_id = user["id"].as_str().unwrap().to_string();
    let found = app
        .invoke(
            "list_users",
            json!({"request": {"search": "Ada", "page": 1}}),
        )
        .unwrap();
    assert!(
        found["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == json!(user_id)),
        "the new user is found by name: {found}"
    );

    let share = json!({"only": null, "except": {"kinds": [], "categories": []}, "from": null, "to": null, "include_me": false});
    let (report, events) = app.invoke_streaming(
        "start_import",
        json!({"request": {"operation": "send-1", "path": zip, "user_id": user_id,
               "method": "auto", "clean": true, "delta": true, "share": share}}),
        "onEvent",
    );
    let report = report.expect("the import succeeds");
    let steps = import_steps(&events);
    let first = |name: &str| {
        steps
            .iter()
            .position(|s| s == name)
            .unwrap_or_else(|| panic!("no {name} step in {steps:?}"))
    };
    assert_eq!(
        steps.first().map(String::as_str),
        Some("checked"),
        "{steps:?}"
    );
    assert!(
        first("checked") < first("plan")
            && first("plan") < first("sending")
            && first("sending") < first("sent")
            && first("sent") < first("server")
            && first("server") < first("compared"),
        "check, plan, send, sent, the server, compared: {steps:?}"
    );
    assert_eq!(steps.last().map(String::as_str), Some("compared"));
    let data = |name: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|r| r.message["type"] == "step" && r.message["data"]["step"] == name)
            .map(|r| &r.message["data"])
            .collect()
    };
    let plan = data("plan")[0];
    assert_eq!(
        plan["method"],
        json!("direct"),
        "a small export goes directly"
    );
    assert!(!plan["why"].as_str().unwrap().is_empty());
    let last_server = *data("server").last().unwrap();
    assert_eq!(
        last_server["event"]["stage"],
        json!("completed"),
        "{last_server}"
    );
    let compared = data("compared")[0];
    assert_eq!(compared["expected"].as_u64(), Some(manifest.workouts));
    assert_eq!(
        compared["found"], compared["expected"],
        "every workout is on the server"
    );
    assert_eq!(
        report["compared"],
        json!([manifest.workouts, manifest.workouts])
    );
    let phases: Vec<&str> = events
        .iter()
        .filter(|r| r.message["type"] == "progress")
        .filter_map(|r| r.message["data"]["phase"].as_str())
        .collect();
    assert!(
        phases.contains(&"check") && phases.contains(&"upload"),
        "bytes are reported while checking and sending: {phases:?}"
    );

    let history = app
        .invoke("upload_history", json!({"request": {}}))
        .unwrap();
    let rows = history.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{history}");
    assert_eq!(rows[0]["outcome"], json!("imported"));
    assert_eq!(rows[0]["user_id"], json!(user_id));
    assert_eq!(rows[0]["method"], json!("direct"));
    // Nothing had reached this user: everything went.
    assert_eq!(rows[0]["delta"], json!(false));
    assert_eq!(
        app.invoke("interrupted_uploads", json!({})).unwrap(),
        json!([])
    );

    // What to send next time: the ledger holds the export, and a dry run
    // finds nothing new while counting everything by group and day.
    let ledger = app
        .invoke("ledger_summary", json!({"request": {"user_id": user_id}}))
        .unwrap();
    assert!(ledger["items"].as_u64().is_some_and(|n| n > 0), "{ledger}");
    assert_eq!(ledger["workouts"].as_u64(), Some(manifest.workouts));
    let (plan, _) = app.invoke_streaming(
        "plan_import",
        json!({"request": {"operation": "plan-1", "path": zip, "user_id": user_id,
               "method": "auto", "clean": true, "delta": true, "share": share}}),
        "onProgress",
    );
    let plan = plan.expect("the dry run succeeds");
    let checked = &plan["checked"];
    assert_eq!(checked["items_sent"], json!(0), "nothing new: {checked}");
    let rows = checked["tally"]["rows"].as_array().unwrap();
    let workouts: u64 = rows
        .iter()
        .filter(|r| r["group"] == "workouts")
        .map(|r| r["items"].as_u64().unwrap())
        .sum();
    assert_eq!(workouts, manifest.workouts);
    assert!(rows.iter().all(|r| r["new_items"] == json!(0)));

    app.invoke("disconnect", json!({})).unwrap();
    let status = app.invoke("connection_status", json!({})).unwrap();
    assert_eq!(status["connection"], Value::Null);
    let gone = app
        .invoke("list_users", json!({"request": {}}))
        .expect_err("disconnected");
    assert_eq!(gone["kind"], json!("not_connected"));
}

#[test]
fn a_remote_login_is_refused_in_plain_words_and_never_echoes_the_password() {
    // A real server that knows one account.
    let server_dir = tempfile::tempdir().unwrap();
    let mut config = owi_server::ServerConfig::new(server_dir.path());
    config.admin_email = Some("ada@example.com".into());
    config.admin_password = Some("the-right-one".into());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = owi_server::Server::open(config).unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(server.run(listener, std::future::pending()));

    let dir = tempfile::tempdir().unwrap();
    let app = App::new(dir.path(), None);
    let error = app
        .invoke(
            "connect_remote",
            json!({"request": {"server": url, "email": "ada@example.com",
                   "password": "hunter2-secret"}}),
        )
        .expect_err("a wrong password");
    assert_eq!(error["kind"], json!("login"), "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("wrong email or password"),
        "in plain words: {message}"
    );
    assert!(!error.to_string().contains("hunter2"), "{error}");
    let status = app.invoke("connection_status", json!({})).unwrap();
    assert_eq!(status["connection"], Value::Null);
    assert!(
        !status.to_string().contains("hunter2"),
        "nothing kept: {status}"
    );

    // The right one is let in: the refusal was about the password.
    let connection = app
        .invoke(
            "connect_remote",
            json!({"request": {"server": url, "email": "ada@example.com",
                   "password": "the-right-one"}}),
        )
        .unwrap();
    assert_eq!(connection["email"], json!("ada@example.com"));
    assert!(!connection.to_string().contains("the-right-one"));

    // And an address where nothing listens is a network error, not a login one.
    let error = app
        .invoke(
            "connect_remote",
            json!({"request": {"server": "http://127.0.0.1:9", "email": "a@b.c",
                   "password": "hunter2-secret"}}),
        )
        .expect_err("no server there");
    assert_eq!(error["kind"], json!("network"), "{error}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[test]
fn bindings_are_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join(owi_app::bindings::DIR);
    let generated = owi_app::bindings::generate().expect("generate the bindings");
    if std::env::var_os("OWI_WRITE_BINDINGS").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &generated {
            std::fs::write(dir.join(name), text).unwrap();
        }
        return;
    }
    let regenerate =
        "regenerate them: OWI_WRITE_BINDINGS=1 cargo test -p owi-app --test app bindings";
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    on_disk.sort();
    let expected: Vec<String> = generated.keys().map(|p| p.display().to_string()).collect();
    assert_eq!(
        on_disk,
        expected,
        "the files in {} differ from the Rust types; {regenerate}",
        dir.display()
    );
    for (name, text) in &generated {
        let current = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(
            current == *text,
            "{} differs from the Rust types; {regenerate}",
            name.display()
        );
    }
}
