//! `owi serve` killed (SIGKILL) while it imports an export, then started
//! again on the same data: the import is tried again and its data lands
//! exactly once.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use owi_export::{ExportSource, ReadOptions};
use serde_json::{Value, json};

use super::{Env, KEY, s};

/// An `owi serve` child process; killed if a test fails midway.
struct Serving {
    child: Child,
    /// `http://127.0.0.1:PORT/api/v1`.
    api: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(env: &Env, data: &Path) -> Serving {
    let mut cmd = env.owi_process();
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("OWI_ADMIN_EMAIL", "dev@example.com")
        .env("OWI_ADMIN_PASSWORD", "s3cret-pass")
        .env("OWI_API_KEY", KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The server says where it listens once it does.
    let api = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("serving the Open Wearables import API on ")
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string)
        })
        .expect("the server says where it listens");
    // Drained, so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Serving { child, api }
}

/// Follows the user's events (replayed and live) until one of `run` is at
/// one of `stages`; returns it.
async fn wait_for(
    http: &reqwest::Client,
    api: &str,
    user: &str,
    run: &str,
    stages: &[&str],
) -> Value {
    let mut res = http
        .get(format!("{api}/users/{user}/sync/stream?replay=1000"))
        .header("X-Open-Wearables-API-Key", KEY)
        .send()
        .await
        .unwrap();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        let chunk = tokio::time::timeout_at(deadline, res.chunk())
            .await
            .expect("the run reaches the stage within ten minutes")
            .unwrap()
            .expect("the stream stays open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let event: Value = serde_json::from_str(data).unwrap();
            if event["run_id"] == run && stages.contains(&s(&event["stage"])) {
                return event;
            }
        }
    }
}

/// The server's API with the developer's key.
struct Api<'a> {
    http: &'a reqwest::Client,
    base: String,
}

impl Api<'_> {
    async fn send(&self, request: reqwest::RequestBuilder) -> Value {
        let res = request
            .header("X-Open-Wearables-API-Key", KEY)
            .send()
            .await
            .unwrap();
        res.json().await.unwrap()
    }

    async fn get(&self, path: &str) -> Value {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base))
    }

    async fn create_user(&self) -> String {
        let body = json!({ "first_name": "Ada" });
        let user = self.send(self.post("/users").json(&body)).await;
        s(&user["id"]).to_string()
    }

    /// A direct upload of `xml`; its task id.
    async fn upload(&self, user: &str, xml: &str) -> String {
        let export = reqwest::multipart::Part::bytes(std::fs::read(xml).unwrap());
        let form = reqwest::multipart::Form::new().part("file", export.file_name("export.xml"));
        let direct = self.post(&format!("/users/{user}/import/apple/xml/direct"));
        let queued = self.send(direct.multipart(form)).await;
        s(&queued["task_id"]).to_string()
    }

    async fn total(&self, user: &str, path: &str) -> u64 {
        let body = self.get(&format!("/users/{user}{path}")).await;
        body["pagination"]["total_count"]
            .as_u64()
            .expect("total_count")
    }
}

#[test]
fn a_server_killed_mid_import_imports_it_exactly_once_after_a_restart() {
    let env = Env::new();
    let data = env.path("server");
    let manifest = env.sample(150_000, 40, &[]);
    let xml = s(&manifest["xml_path"]).to_string();
    let expected = owi_export::preflight(
        &ExportSource::open(Path::new(&xml)).unwrap(),
        ReadOptions::default(),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();

    let mut first = serve(&env, &data);
    let (user, task) = runtime.block_on(async {
        let api = Api {
            http: &http,
            base: first.api.clone(),
        };
        let user = api.create_user().await;
        let task = api.upload(&user, &xml).await;
        let stages = ["processing", "completed", "failed"];
        let event = wait_for(&http, &api.base, &user, &task, &stages).await;
        assert_eq!(event["stage"], "processing", "killed mid-import: {event}");
        (user, task)
    });
    first.child.kill().unwrap(); // SIGKILL: no chance to put the job back
    first.child.wait().unwrap();
    drop(first);

    let second = serve(&env, &data);
    runtime.block_on(async {
        let api = Api {
            http: &http,
            base: second.api.clone(),
        };
        let ended = ["completed", "failed"];
        let end = wait_for(&http, &api.base, &user, &task, &ended).await;
        assert_eq!(end["stage"], "completed", "{end}");
        // The same export for someone else, never interrupted: the measure.
        let clean = api.create_user().await;
        let clean_task = api.upload(&clean, &xml).await;
        let clean_end = wait_for(&http, &api.base, &clean, &clean_task, &ended).await;
        assert_eq!(clean_end["stage"], "completed", "{clean_end}");
        assert_eq!(
            end["items_processed"], clean_end["items_processed"],
            "the second try counted the export once"
        );
        let workouts = api.total(&user, "/events/workouts").await;
        assert_eq!(
            workouts,
            expected.workout_keys.len() as u64,
            "every workout, once"
        );
        assert_eq!(workouts, api.total(&clean, "/events/workouts").await);
        let samples = api.total(&user, "/timeseries").await;
        assert!(
            samples >= expected.samples,
            "{samples} of {}",
            expected.samples
        );
        assert_eq!(
            samples,
            api.total(&clean, "/timeseries").await,
            "every sample, once"
        );
        let runs = api.get(&format!("/users/{user}/sync/runs")).await;
        let runs = runs.as_array().unwrap();
        assert_eq!(runs.len(), 1, "one run for the user: {runs:?}");
        assert_eq!(runs[0]["status"], "success");
    });
    assert!(
        std::fs::read_dir(data.join("uploads"))
            .unwrap()
            .next()
            .is_none(),
        "the upload's file is gone once imported"
    );
}
