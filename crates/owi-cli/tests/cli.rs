//! The `owi` binary as scripts use it: JSON output, exit codes, one-sentence
//! errors. Every test runs with its own HOME so nothing touches a real
//! data directory.

#![allow(clippy::expect_used, clippy::unwrap_used)] // in tests a failed expectation is the failure

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

struct Env {
    home: TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            home: tempfile::tempdir().expect("temp home"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    fn owi(&self) -> Command {
        Command::from(self.owi_process())
    }

    /// `owi` as a process to start and perhaps kill.
    fn owi_process(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_owi"));
        cmd.env("HOME", self.home.path())
            .env("XDG_DATA_HOME", self.home.path().join("data"))
            .env("OWI_NO_KEYCHAIN", "1")
            .env_remove("OWI_DB")
            .env_remove("OWI_LOG");
        for var in ["OWI_SERVER", "OWI_API_KEY", "OWI_EMAIL", "OWI_PASSWORD"] {
            cmd.env_remove(var);
        }
        cmd
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.owi().args(args).output().expect("runs");
        assert!(
            out.status.success(),
            "owi {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "owi {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    fn sample(&self, records: u64, workouts: u64, extra: &[&str]) -> Value {
        let out = self.path("sample");
        let (records, workouts) = (records.to_string(), workouts.to_string());
        let mut args = vec![
            "sample",
            "--out",
            out.to_str().expect("utf-8 temp path"),
            "--records",
            &records,
            "--workouts",
            &workouts,
            "--json",
        ];
        args.extend_from_slice(extra);
        self.json(&args)
    }
}

fn s(v: &Value) -> &str {
    v.as_str().expect("a string")
}

fn db_arg(env: &Env) -> String {
    env.path("owi.sqlite").display().to_string()
}

fn fails_with(env: &Env, args: &[&str], needle: &str) -> String {
    let out = env.owi().args(args).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "owi {args:?} should fail");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    assert!(
        stderr.contains(needle),
        "stderr should mention {needle:?}: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one sentence: {stderr}");
    stderr
}

/// The bundled server, in-process on its own runtime thread, for the
/// commands that talk to one.
struct LocalServer {
    url: String,
    _dir: TempDir,
    runtime: tokio::runtime::Runtime,
}

const KEY: &str = "sk-0123456789abcdef0123456789abcdef";

impl LocalServer {
    /// `owi` pointed at this server with its API key, as a script would.
    fn owi(&self, env: &Env) -> Command {
        let mut cmd = env.owi();
        cmd.env("OWI_SERVER", &self.url).env("OWI_API_KEY", KEY);
        cmd
    }

    /// `owi login` as the developer account, the password on stdin.
    fn login(&self, env: &Env, password: &str) -> std::process::Output {
        env.owi()
            .args([
                "login",
                "--server",
                &self.url,
                "--email",
                "dev@example.com",
                "--password-stdin",
            ])
            .write_stdin(format!("{password}\n"))
            .output()
            .unwrap()
    }

    fn create_user(&self, env: &Env) -> String {
        let out = self
            .owi(env)
            .args(["users", "create", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let user: Value = serde_json::from_slice(&out.stdout).unwrap();
        s(&user["id"]).to_string()
    }
}

fn local_server() -> LocalServer {
    local_server_with(|_| {})
}

fn local_server_with(configure: impl FnOnce(&mut owi_server::ServerConfig)) -> LocalServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = owi_server::ServerConfig::new(dir.path());
    configure(&mut config);
    config.admin_email = Some("dev@example.com".into());
    config.admin_password = Some("s3cret-pass".into());
    config.api_key = Some(KEY.into());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = owi_server::Server::open(config).unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(server.run(listener, std::future::pending()));
    LocalServer {
        url,
        _dir: dir,
        runtime,
    }
}

#[test]
fn login_then_users_create_and_list() {
    let env = Env::new();
    let server = local_server();
    let out = server.login(&env, "s3cret-pass");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("logged in to {} as dev@example.com", server.url)),
        "{stdout}"
    );
    // Without a keychain the next command is told how to authenticate.
    assert!(stdout.contains("no keychain"), "{stdout}");
    let saved = std::fs::read_to_string(env.path("data/owi/server.json")).unwrap();
    assert!(
        !saved.contains("s3cret-pass"),
        "no secret in the profile: {saved}"
    );

    let created = env
        .owi()
        .env("OWI_SERVER", &server.url)
        .env("OWI_API_KEY", KEY)
        .args([
            "users",
            "create",
            "--email",
            "ada@example.com",
            "--first-name",
            "Ada",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let user: Value = serde_json::from_slice(&created.stdout).unwrap();
    let listed = env
        .owi()
        .env("OWI_SERVER", &server.url)
        .env("OWI_EMAIL", "dev@example.com")
        .env("OWI_PASSWORD", "s3cret-pass")
        .args(["users", "--search", "ada", "--json"])
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let page: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["id"], user["id"]);
}

#[test]
fn login_failures_are_one_sentence() {
    let env = Env::new();
    let server = local_server();
    let err = fails_with(
        &env,
        &[
            "login",
            "--server",
            &server.url,
            "--api-key",
            "sk-ffffffffffffffffffffffffffffffff",
        ],
        "refused this API key",
    );
    assert!(!err.contains("ffffffff"), "the key is not echoed: {err}");
    let out = server.login(&env, "wrong");
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!("error: wrong email or password for {}", server.url)
    );
    fails_with(&env, &["users"], "log in first");
}

#[test]
fn status_follows_an_import_to_its_end() {
    let env = Env::new();
    let server = local_server();
    let owi = || server.owi(&env);
    let user = server.create_user(&env);
    let out = owi().args(["status", "--user", &user]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "no imports for this user yet"
    );

    let manifest = env.sample(500, 2, &[]);
    let xml = std::fs::read(s(&manifest["xml_path"])).unwrap();
    let url = format!("{}/api/v1/users/{user}/import/apple/xml/direct", server.url);
    let task: Value = server.runtime.block_on(async {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(xml).file_name("export.xml"),
        );
        reqwest::Client::new()
            .post(url)
            .header("X-Open-Wearables-API-Key", KEY)
            .multipart(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });

    let out = owi()
        .args(["status", "--user", &user, "--follow", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = events.last().unwrap();
    assert_eq!(last["run_id"], task["task_id"]);
    assert_eq!(last["stage"], "completed");
    assert!(events.iter().all(|e| e["run_id"] == task["task_id"]));
}

#[test]
fn upload_sends_and_follows_the_import_to_its_end() {
    let env = Env::new();
    let server = local_server();
    let owi = || server.owi(&env);
    let user = server.create_user(&env);
    let manifest = env.sample(800, 3, &["--zip"]);
    for (input, method) in [
        (s(&manifest["zip_path"]), "s3"),
        (s(&manifest["xml_path"]), "auto"),
    ] {
        // Everything, profile included: the export byte for byte.
        let out = owi()
            .args([
                "upload",
                input,
                "--user",
                &user,
                "--method",
                method,
                "--all",
                "--include-me",
                "--json",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{method}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let piece = &report["pieces"][0];
        assert_eq!(piece["import"]["stage"], "completed", "{report}");
        assert_eq!(piece["uploaded"]["bytes"], manifest["xml_bytes"]);
        assert_eq!(
            report["compared"],
            serde_json::json!([3, 3]),
            "every workout read back: {report}"
        );
        let steps = String::from_utf8_lossy(&out.stderr);
        assert!(steps.contains(r#""step":"checked""#), "{steps}");
    }
    // The same export again: nothing is new, nothing goes.
    let out = owi()
        .args(["upload", s(&manifest["xml_path"]), "--user", &user])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("nothing new for this user"), "{said}");
    // What would go of the heart data alone: nothing sent.
    let out = owi()
        .args([
            "upload",
            s(&manifest["xml_path"]),
            "--user",
            &user,
            "--all",
            "--only",
            "heart",
            "--dry-run",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let checked = &plan["checked"];
    assert!(checked["items_sent"].as_u64().unwrap() > 0, "{plan}");
    assert!(
        checked["imported"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t[0].as_str().unwrap().contains("Heart")),
        "{plan}"
    );
    assert!(
        checked["left_out"]["kinds"].as_object().unwrap().len() > 1,
        "{plan}"
    );
    let err = fails_with(
        &env,
        &[
            "upload",
            s(&manifest["xml_path"]),
            "--user",
            &user,
            "--only",
            "HeartRat",
            "--dry-run",
        ],
        "not a kind of data",
    );
    assert!(err.contains("HeartRate"), "close names listed: {err}");
    // Everything again: refused without a terminal to ask on…
    let out = owi()
        .args(["upload", s(&manifest["xml_path"]), "--user", &user, "--all"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already went to this user") && err.contains("--force"),
        "{err}"
    );
    // …sent with --force.
    let out = owi()
        .args([
            "upload",
            s(&manifest["xml_path"]),
            "--user",
            &user,
            "--all",
            "--force",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let history = env.json(&["history", "--json"]);
    let rows = history.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{history}");
    assert!(
        rows.iter()
            .all(|r| r["outcome"] == "imported" && r["user_id"] == user.as_str()),
        "{history}"
    );
    assert!(rows.iter().all(|r| r["delta"] == false), "{history}");
    assert_eq!(rows[2]["method"], "s3", "oldest last");
    assert_eq!(rows[1]["method"], "direct");
    assert!(
        rows[2]["file_key"]
            .as_str()
            .unwrap()
            .ends_with(rows[2]["name"].as_str().unwrap())
    );

    let err = fails_with(
        &env,
        &["upload", s(&manifest["xml_path"]), "--user", &user],
        "log in first",
    );
    assert!(err.starts_with("error: "), "{err}");
}

mod crash;
mod live;
mod pipes;
mod plain_http;
mod reading;
mod tables;

/// The fault-injection proxy of owi-client's tests, shared rather than
/// written twice.
#[path = "../../owi-client/tests/faults/proxy.rs"]
#[allow(dead_code)]
mod proxy;
mod real_server;

/// `owi upload` killed (SIGKILL) with two of three parts stored and the
/// third stuck in the network; the same command run again goes on with the
/// stored parts and the export is imported once.
#[test]
fn a_killed_upload_resumes_when_the_same_command_runs_again() {
    let env = Env::new();
    let server = local_server_with(|config| config.s3.part_size = 5 << 20);
    let user = server.create_user(&env);
    let manifest = env.sample(40_000, 6, &[]);
    let xml = s(&manifest["xml_path"]).to_string();
    let parts = manifest["xml_bytes"].as_u64().unwrap().div_ceil(5 << 20);
    assert_eq!(parts, 3, "{manifest}");
    let db = env.path("owi.sqlite");
    let proxy = server.runtime.block_on(proxy::Proxy::start());
    let stuck = proxy::Gate::new();
    proxy.inject("PUT", "partNumber=3&", 1, proxy::Fault::Hold(stuck.clone()));

    let mut upload = env.owi_process();
    upload
        .args([
            "upload",
            &xml,
            "--user",
            &user,
            "--method",
            "multipart",
            "--json",
        ])
        .arg("--db")
        .arg(&db)
        .env("OWI_SERVER", &server.url)
        .env("OWI_API_KEY", KEY)
        .env("HTTP_PROXY", proxy.url())
        .env_remove("NO_PROXY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = upload.spawn().unwrap();
    server.runtime.block_on(stuck.arrived());
    let stored = || {
        let store = owi_store::Store::open(&db).ok()?;
        let key = owi_store::quick_key(Path::new(&xml)).ok()?;
        let found = store.interrupted(&key, &server.url, &user).ok()??;
        Some(found.multipart?.1.parts.len())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while stored() != Some(2) {
        assert!(
            std::time::Instant::now() < deadline,
            "parts 1 and 2 never stored"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let out = server
        .owi(&env)
        .args(["upload", &xml, "--user", &user, "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let steps = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{steps}");
    assert!(
        steps.contains(r#"{"step":"resuming","pieces_sent":0,"parts_stored":2}"#),
        "{steps}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["pieces"][0]["uploaded"]["resumed_parts"], 2,
        "{report}"
    );
    assert_eq!(report["compared"], serde_json::json!([6, 6]), "{report}");
    assert_eq!(proxy.count("PUT", "partNumber=1&"), 1, "not sent again");
    assert_eq!(proxy.count("PUT", "partNumber=2&"), 1, "not sent again");

    let history = env.json(&["history", "--json", "--db", db.to_str().unwrap()]);
    let rows = history.as_array().unwrap();
    assert_eq!(rows.len(), 1, "the interrupted row went on: {history}");
    assert_eq!(rows[0]["outcome"], "imported");
}
