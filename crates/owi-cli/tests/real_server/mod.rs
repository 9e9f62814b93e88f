//! `owi` against a real Open Wearables server: ignored by default, run by
//! `scripts/real-server.sh SRC`, which brings one up on loopback (FastAPI,
//! Celery, Postgres, Redis, an S3 store and a stand-in for the bucket
//! notifications) and exports `OWI_REAL_*`. Each case runs `owi` as a
//! person would, then reads back through the server's own API what it
//! holds for that case's fresh user, and prints a row of the table:
//! case, exit code, workouts and samples expected vs stored, time.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Instant;

use owi_sample::{Dtd, SampleSpec};
use serde_json::Value;

use super::Env;

struct Real {
    url: String,
    key: String,
    email: String,
    password: String,
    /// While this file exists the server gets no bucket notifications.
    notifications_off: PathBuf,
}

fn real() -> Real {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run these tests through scripts/real-server.sh")
        })
    };
    Real {
        url: var("OWI_REAL_SERVER"),
        key: var("OWI_REAL_API_KEY"),
        email: var("OWI_REAL_EMAIL"),
        password: var("OWI_REAL_PASSWORD"),
        notifications_off: PathBuf::from(var("OWI_REAL_NOTIFICATIONS_OFF")),
    }
}

/// One case: its own home (database, logs) and its own user.
struct Case {
    env: Env,
    real: Real,
    user: String,
    name: &'static str,
    started: Instant,
}

impl Case {
    fn new(name: &'static str) -> Case {
        let real = real();
        let env = Env::new();
        let mut case = Case {
            env,
            real,
            user: String::new(),
            name,
            started: Instant::now(),
        };
        let made = case.owi(&["users", "create", "--first-name", name, "--json"]);
        assert!(made.status.success(), "{}", text(&made.stderr));
        let user: Value = serde_json::from_slice(&made.stdout).unwrap();
        case.user = user["id"].as_str().unwrap().to_string();
        case
    }

    fn owi(&self, args: &[&str]) -> Output {
        self.env
            .owi()
            .env("OWI_SERVER", &self.real.url)
            .env("OWI_API_KEY", &self.real.key)
            .env("OWI_DB", self.env.path("owi.sqlite"))
            .args(args)
            .output()
            .unwrap()
    }

    /// `owi upload PATH --user ID --json ARGS…`: its exit code, its report
    /// (when it printed one) and what it said on stderr.
    fn upload(&self, path: &Path, args: &[&str]) -> (i32, Value, String) {
        let path = path.to_str().unwrap();
        let mut all = vec!["upload", path, "--user", &self.user, "--json", "--force"];
        all.extend_from_slice(args);
        let out = self.owi(&all);
        let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code().unwrap_or(-1), report, text(&out.stderr))
    }

    /// Workouts and samples the server holds for this case's user.
    fn stored(&self) -> (u64, u64) {
        let url = format!(
            "{}/api/v1/users/{}/summaries/data",
            self.real.url, self.user
        );
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let summary: Value = runtime.block_on(async {
            reqwest::Client::new()
                .get(url)
                .header("X-Open-Wearables-API-Key", &self.real.key)
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        (
            summary["total_workouts"].as_u64().unwrap(),
            summary["total_data_points"].as_u64().unwrap(),
        )
    }

    /// Prints the case's row: `| case | exit | workouts | samples | time |`.
    fn row(&self, exit: i32, expected: Option<(u64, u64)>) {
        let (workouts, samples) = self.stored();
        let of = |stored: u64, expected: Option<u64>| match expected {
            Some(e) => format!("{e} / {stored}"),
            None => format!("— / {stored}"),
        };
        let line = format!(
            "| {} | {exit} | {} | {} | {:.1} s |",
            self.name,
            of(workouts, expected.map(|e| e.0)),
            of(samples, expected.map(|e| e.1)),
            self.started.elapsed().as_secs_f64()
        );
        println!("{line}");
        if let Ok(logs) = std::env::var("OWI_REAL_LOGS") {
            use std::io::Write;
            let table = Path::new(&logs).join("table.md");
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(table)
                .unwrap();
            writeln!(file, "{line}").unwrap();
        }
    }

    /// Asserts the server holds exactly what the report expected, and
    /// prints the row.
    fn holds_what_it_expected(&self, exit: i32, report: &Value) {
        let expected = expected(report);
        self.row(exit, Some(expected));
        assert_eq!(
            self.stored(),
            expected,
            "workouts and samples, expected vs stored"
        );
    }
}

/// The method of the plan step among `--json`'s step lines.
fn planned(steps: &str) -> String {
    steps
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|step| step["step"] == "plan")
        .map(|plan| plan["method"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The check's workouts and distinct samples, from the upload's report.
fn expected(report: &Value) -> (u64, u64) {
    let checked = &report["checked"];
    (
        checked["workouts"].as_u64().unwrap(),
        checked["samples"].as_u64().unwrap(),
    )
}

fn sample(dir: &Path, records: u64, locale: &str, dtd: Dtd) -> owi_sample::SampleManifest {
    owi_sample::generate(
        &SampleSpec {
            records,
            workouts: 8,
            seed: records,
            locale: locale.into(),
            zip: true,
            dtd,
            ..SampleSpec::default()
        },
        dir,
    )
    .unwrap()
}

fn small(dir: &Path) -> owi_sample::SampleManifest {
    sample(dir, 5_000, "en_US", Dtd::Version14)
}

#[test]
#[ignore = "needs a real server: scripts/real-server.sh"]
fn real_server_direct_xml() {
    let case = Case::new("direct, XML");
    let dir = tempfile::tempdir().unwrap();
    let m = small(dir.path());
    let (exit, report, said) = case.upload(&m.xml_path, &["--method", "direct"]);
    assert_eq!(exit, 0, "{said}");
    assert_eq!(report["ending"], "reported", "{said}");
    assert_eq!(
        report["pieces"][0]["import"]["items_processed"], report["checked"]["items_for_server"],
        "the server counts as the check said"
    );
    case.holds_what_it_expected(exit, &report);
}

#[test]
#[ignore = "needs a real server: scripts/real-server.sh"]
fn real_server_direct_zip() {
    let case = Case::new("direct, zip");
    let dir = tempfile::tempdir().unwrap();
    let m = small(dir.path());
    let (exit, report, said) = case.upload(m.zip_path.as_ref().unwrap(), &[]);
    assert_eq!(exit, 0, "{said}");
    assert_eq!(planned(&said), "direct", "auto → direct: {said}");
    case.holds_what_it_expected(exit, &report);
}

#[test]
#[ignore = "needs a real server: scripts/real-server.sh"]
fn real_server_localized_zip() {
    let case = Case::new("direct, Russian zip (экспорт.xml)");
    let dir = tempfile::tempdir().unwrap();
    let m = sample(dir.path(), 5_000, "ru_RU", Dtd::Version14);
    let (exit, report, said) = case.upload(m.zip_path.as_ref().unwrap(), &[]);
    assert_eq!(exit, 0, "{said}");
    case.holds_what_it_expected(exit, &report);
}

#[test]
#[ignore = "needs a real server: scripts/real-server.sh"]
fn real_server_ios16_cleaned() {
    let case = Case::new("direct, iOS 16 DTD, cleaned");
    let dir = tempfile::tempdir().unwrap();
    let m = sample(dir.path(), 5_000, "en_US", Dtd::Ios16);
    let (exit, report, said) = case.upload(&m.xml_path, &[]);
    assert_eq!(exit, 0, "{said}");
    case.holds_what_it_expected(exit, &report);
}

#[test]
#[ignore = "needs a real server: scripts/real-server.sh"]
fn real_server_ios16_uncleaned_fails_with_the_servers_reason() {
    let case = Case::new("direct, iOS 16 DTD, --no-clean: import fails");
    let dir = tempfile::tempdir().unwrap();
    let m = sample(dir.path(), 5_000, "en_US", Dtd::Ios16);
    let (exit, _, said) = case.upload(&m.xml_path, &["--no-clean"]);
    assert_eq!(exit, 1, "{said}");
    assert!(said.contains("could not import it: syntax error"), "{said}");
    assert!(
        said.contains(r#""needs_cleaning":true,"cleaned":false"#),
        "sent as it is: {said}"
    );
    case.row(exit, Some((0, 0)));
    assert_eq!(case.stored(), (0, 0));
}

#[test]
#[ignore = "needs a real server: scripts/real-server.sh"]
fn real_server_s3_post() {
    let case = Case::new("s3 (presigned POST), zip");
    let dir = tempfile::tempdir().unwrap();
    let m = small(dir.path());
    let (exit, report, said) = case.upload(m.zip_path.as_ref().unwrap(), &["--method", "s3"]);
    assert_eq!(exit, 0, "{said}");
    assert_eq!(report["ending"], "found", "confirmed by its data: {said}");
    case.holds_what_it_expected(exit, &report);
}

#[test]
#[ignore = "needs a real server: scripts/real-server.sh"]
fn real_server_auto_picks_s3_for_a_large_export() {
    let case = Case::new("auto → s3, 40,000 records");
    let dir = tempfile::tempdir().unwrap();
    let m = sample(dir.path(), 40_000, "en_US", Dtd::Version14);
    assert!(m.xml_bytes > 10_000_000, "{}", m.xml_bytes);
    let (exit, report, said) = case.upload(m.zip_path.as_ref().unwrap(), &[]);
    assert_eq!(exit, 0, "{said}");
    assert_eq!(planned(&said), "s3", "no multipart here: {said}");
    case.holds_what_it_expected(exit, &report);
}

#[test]
#[ignore = "needs a real server: scripts/real-server.sh"]
fn real_server_reupload_stores_no_duplicates() {
    let case = Case::new("re-upload of the same export");
    let dir = tempfile::tempdir().unwrap();
    let m = small(dir.path());
    let (exit, report, said) = case.upload(&m.xml_path, &[]);
    assert_eq!(exit, 0, "{said}");
    let before = case.stored();
    // Everything again (not only what is new): the server dedupes.
    let (exit, report_again, said) = case.upload(&m.xml_path, &["--all"]);
    assert_eq!(exit, 0, "{said}");
    assert_eq!(expected(&report), expected(&report_again));
    assert_eq!(case.stored(), before, "nothing stored twice");
    case.holds_what_it_expected(exit, &report_again);
}

#[test]
#[ignore = "needs a real server: scripts/real-server.sh"]
fn real_server_a_later_export_sends_only_what_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let b = small(dir.path());
    let later = std::fs::read_to_string(&b.xml_path).unwrap();
    let cut = owi_sample::Snapshot::of(&later).unwrap();
    let mut days: Vec<&str> = cut
        .elements()
        .iter()
        .filter_map(|e| owi_sample::day_of(e))
        .collect();
    days.sort_unstable();
    let cutoff = days[days.len() * 4 / 5];
    // Earlier: before the last days, and without samples a watch synced late.
    let earlier = dir.path().join("earlier.xml");
    std::fs::write(
        &earlier,
        cut.with(|i, e| owi_sample::day_of(e).is_some_and(|d| d < cutoff) && i % 7 != 3),
    )
    .unwrap();

    let whole = Case::new("the later export whole, to a fresh user");
    let (exit, report, said) = whole.upload(&b.xml_path, &[]);
    assert_eq!(exit, 0, "{said}");
    whole.holds_what_it_expected(exit, &report);
    let sent_whole = bytes_sent(&report);

    let case = Case::new("delta: the earlier export, then only what is new in the later");
    let (exit, _, said) = case.upload(&earlier, &[]);
    assert_eq!(exit, 0, "{said}");
    let (exit, delta, said) = case.upload(&b.xml_path, &[]);
    assert_eq!(exit, 0, "{said}");
    assert!(
        delta["checked"]["ledger_items"].as_u64().is_some(),
        "{delta}"
    );
    let sent_delta = bytes_sent(&delta);
    assert!(
        sent_delta * 2 < sent_whole,
        "the delta sends far less: {sent_delta} of {sent_whole} bytes"
    );
    case.row(exit, Some(whole.stored()));
    assert_eq!(
        case.stored(),
        whole.stored(),
        "earlier + delta = later whole"
    );

    let (exit, again, said) = case.upload(&b.xml_path, &[]);
    assert_eq!(exit, 0, "{said}");
    assert_eq!(again["ending"], "nothing_new", "{again}");
    assert_eq!(again["pieces"], serde_json::json!([]));

    // The later export previewed first: what goes is chosen from the
    // preview's log, and the server ends the same.
    let previewed = Case::new("delta of a previewed export: chosen from the preview's log");
    let (exit, _, said) = previewed.upload(&earlier, &[]);
    assert_eq!(exit, 0, "{said}");
    let inspected = previewed.owi(&["inspect", b.xml_path.to_str().unwrap(), "--json"]);
    assert!(inspected.status.success(), "{}", text(&inspected.stderr));
    let (exit, chosen, said) = previewed.upload(&b.xml_path, &["--verbose"]);
    assert_eq!(exit, 0, "{said}");
    assert!(
        said.contains("chosen from the earlier read"),
        "the preview's log was used: {said}"
    );
    assert_eq!(
        bytes_sent(&chosen),
        sent_delta,
        "the same bytes as the read delta"
    );
    assert_eq!(chosen["checked"], delta["checked"], "the same check");
    previewed.row(exit, Some(whole.stored()));
    assert_eq!(
        previewed.stored(),
        whole.stored(),
        "earlier + delta = later whole"
    );
    println!(
        "| (bytes sent: whole {sent_whole}, delta {sent_delta}, the same export again 0) | | | | |"
    );
}

/// Filters on a previewed export: what goes is chosen from the preview's
/// log, and the server ends as it does after the same filters read whole.
#[test]
#[ignore = "needs a real server: scripts/real-server.sh"]
fn real_server_filters_on_a_previewed_export() {
    let dir = tempfile::tempdir().unwrap();
    let b = small(dir.path());
    let mut days: Vec<String> =
        owi_sample::Snapshot::of(&std::fs::read_to_string(&b.xml_path).unwrap())
            .unwrap()
            .elements()
            .iter()
            .filter_map(|e| owi_sample::day_of(e).map(str::to_string))
            .collect();
    days.sort_unstable();
    let from = days[days.len() / 3].clone();
    let filters = ["--only", "heart,workouts", "--from", &from, "--include-me"];

    let read = Case::new("heart data and workouts from a day on, read");
    let (exit, report, said) = read.upload(&b.xml_path, &filters);
    assert_eq!(exit, 0, "{said}");
    assert!(!said.contains("chosen from the earlier read"), "{said}");
    read.holds_what_it_expected(exit, &report);

    let previewed = Case::new("the same filters on a previewed export: chosen from its log");
    let inspected = previewed.owi(&["inspect", b.xml_path.to_str().unwrap(), "--json"]);
    assert!(inspected.status.success(), "{}", text(&inspected.stderr));
    let mut verbose = filters.to_vec();
    verbose.push("--verbose");
    let (exit, chosen, said) = previewed.upload(&b.xml_path, &verbose);
    assert_eq!(exit, 0, "{said}");
    assert!(
        said.contains("chosen from the earlier read"),
        "the preview's log was used: {said}"
    );
    assert_eq!(bytes_sent(&chosen), bytes_sent(&report), "the same bytes");
    assert_eq!(chosen["checked"], report["checked"], "the same check");
    previewed.holds_what_it_expected(exit, &chosen);
    assert_eq!(previewed.stored(), read.stored());
}

fn bytes_sent(report: &Value) -> u64 {
    report["pieces"]
        .as_array()
        .map(|pieces| {
            pieces
                .iter()
                .filter_map(|p| p["uploaded"]["bytes"].as_u64())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "needs a real server: scripts/real-server.sh"]
fn real_server_without_notifications_the_upload_awaits_then_is_confirmed() {
    let case = Case::new("s3, no bucket notifications: exit 4, later confirmed");
    let dir = tempfile::tempdir().unwrap();
    let m = small(dir.path());
    std::fs::write(&case.real.notifications_off, b"").unwrap();
    let (exit, report, said) =
        case.upload(&m.xml_path, &["--method", "s3", "--give-up-after", "15"]);
    std::fs::remove_file(&case.real.notifications_off).unwrap();
    assert_eq!(exit, 4, "{said}");
    assert_eq!(report["ending"], "awaiting", "{said}");
    assert!(said.contains("bucket's notifications"), "{said}");
    let last = said.lines().last().unwrap_or_default();
    assert!(!last.starts_with("error:"), "news, not an error: {last}");
    let key = report["pieces"][0]["uploaded"]["key"].as_str().unwrap();
    assert!(said.contains(key), "names the upload: {said}");
    case.row(exit, Some(expected(&report)));

    let status = case.owi(&["status", "--user", &case.user]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    assert!(
        text(&status.stdout).contains("uploaded, awaiting the server"),
        "{}",
        text(&status.stdout)
    );
    let history = case.owi(&["history"]);
    assert!(text(&history.stdout).contains("uploaded, awaiting the server"));

    // The data arrives another way; the next look marks it imported.
    let (exit, _, said) = case.upload(&m.xml_path, &["--method", "direct"]);
    assert_eq!(exit, 0, "{said}");
    let status = case.owi(&["status", "--user", &case.user]);
    let shown = text(&status.stdout);
    assert!(shown.contains(": imported"), "{shown}");
    assert!(!text(&case.owi(&["history"]).stdout).contains("awaiting"));
}

#[test]
#[ignore = "needs a real server: scripts/real-server.sh"]
fn real_server_refusals_come_before_anything_is_sent() {
    let case = Case::new("bad key, password, user; multipart asked");
    let dir = tempfile::tempdir().unwrap();
    let m = small(dir.path());
    let path = m.xml_path.to_str().unwrap();

    let bad_key = case
        .env
        .owi()
        .env("OWI_SERVER", &case.real.url)
        .env("OWI_API_KEY", "sk-ffffffffffffffffffffffffffffffff")
        .args(["users"])
        .output()
        .unwrap();
    assert_eq!(bad_key.status.code(), Some(1));
    assert!(
        text(&bad_key.stderr).contains("refused this API key"),
        "{}",
        text(&bad_key.stderr)
    );

    let bad_password = case
        .env
        .owi()
        .env("OWI_SERVER", &case.real.url)
        .env("OWI_EMAIL", &case.real.email)
        .env("OWI_PASSWORD", format!("{}-not", case.real.password))
        .args(["users"])
        .output()
        .unwrap();
    assert_eq!(bad_password.status.code(), Some(1));
    let said = text(&bad_password.stderr);
    assert!(said.contains("wrong email or password"), "{said}");
    assert!(!said.contains(&case.real.password), "{said}");

    for (user, words) in [
        ("not-a-user", "is not a user id"),
        ("6f1c2a9e-0000-4000-8000-000000000000", "has no user"),
    ] {
        let out = case.owi(&["upload", path, "--user", user]);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains(words), "{}", text(&out.stderr));
    }
    let (exit, _, said) = case.upload(&m.xml_path, &["--method", "multipart"]);
    assert_eq!(exit, 1);
    assert!(
        said.contains("no multipart uploads") && said.contains("--method s3"),
        "{said}"
    );
    case.row(exit, Some((0, 0)));
    assert_eq!(case.stored(), (0, 0), "nothing sent");
}
