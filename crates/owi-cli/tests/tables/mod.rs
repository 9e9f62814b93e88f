//! The tables people read name things as the app does ("Heart rate",
//! "Traditional strength training"), in columns as wide as the names;
//! `--json` keeps the identifiers scripts match on.

use crate::{Env, s};

fn text(env: &Env, args: &[&str]) -> String {
    let out = env.owi().args(args).output().expect("runs");
    assert!(
        out.status.success(),
        "owi {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn tables_say_the_names_people_read_and_json_keeps_identifiers() {
    let env = Env::new();
    let manifest = env.sample(2000, 12, &[]);
    let xml = s(&manifest["xml_path"]);
    let db = env.path("owi.sqlite");
    let db = db.to_str().unwrap();
    let summary = text(&env, &["inspect", xml, "--db", db]);
    assert!(summary.contains("Heart rate"), "{summary}");
    assert!(!summary.contains("HKQuantityTypeIdentifier"), "{summary}");
    // Every count ends where the header's "count" does: the names fit.
    let rows: Vec<Vec<char>> = summary
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("record type"))
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.chars().collect())
        .collect();
    assert!(rows.len() > 3, "{summary}");
    let header: String = rows[0].iter().collect();
    let end = header.find("count").expect("a count column") + "count".len();
    for row in &rows[1..] {
        let line: String = row.iter().collect();
        assert!(
            row.get(end - 1).is_some_and(char::is_ascii_digit) && row.get(end) == Some(&' '),
            "the count column lines up: {line:?} under {header:?}"
        );
    }

    let workouts = text(&env, &["workouts", "--db", db]);
    assert!(!workouts.contains("HKWorkoutActivityType"), "{workouts}");
    let json = env.json(&["workouts", "--db", db, "--json"]);
    let kinds: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["activity_type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.iter().all(|k| k.starts_with("HKWorkoutActivityType")),
        "{kinds:?}"
    );
    let first = workouts.lines().nth(1).unwrap_or_default();
    let readable = owi_store::names::display_name(kinds[0]);
    assert!(first.starts_with(&readable), "{first:?} names {readable}");
}
