//! `cargo bench -p owi-cli --bench upload`: `owi upload` next to `curl -F`
//! sending the same ~1 GB export to the bundled server on loopback, in the
//! same run, and the client's peak RSS.
//!
//! Every upload goes to a fresh `owi serve` child: a server still
//! importing the previous upload would take a core from the next sender.
//! For each path:
//! - curl: `curl -F file=@export.xml` to the direct endpoint; for the
//!   presigned POST, the presign call, then curl sending every form field
//!   in the order given and the file last. Timed from the presign call (if
//!   any) to curl's exit.
//! - owi: `owi upload --method … --no-wait --json` in its own process,
//!   logged in through the environment, with a fresh local database. Its
//!   steps are read from stderr as they arrive. `upload` runs from its
//!   `sending` step to its last `sent` step (so it too includes the presign
//!   call, or multipart's create, sign and complete calls, and the cleaning
//!   of the XML, done on the way); `check` from its start to the `checked`
//!   step (start-up and the pre-flight read of the export); `plan` from
//!   `checked` to `sending` (choosing how, cutting the export to what one
//!   upload takes, which scans it only when it is larger, and the local
//!   history row); `wall` is the whole command, until it exits.
//! - owi again with export.zip: the same XML, inflated as it is sent.
//! - owi again, both ways, "previewed": `owi inspect` of the same file into
//!   the same database first (untimed), as a person who looked at the
//!   export before sending it; the check then comes from what that read
//!   kept instead of a read of its own.
//!
//! curl has no multipart upload: multipart rows are compared with curl's
//! presigned POST. MB/s are the XML's bytes (10^6) over the time: the
//! same bytes reach the server every time. Peak RSS is the sender's VmHWM,
//! polled every 10 ms.
//!
//! Before each timed pass the page cache's dirty pages are written out
//! (`sync`): each upload leaves a gigabyte on its server's disk, and the
//! kernel writing it back during the next pass would slow whichever
//! sender came next. Then the sender's input (and, previewed, the local
//! journal holding the kept check) is read once: a host that pages out
//! memory idle for a second or two (DAMON's `pageout`, running on the
//! machine these figures come from) had dropped the XML from the cache
//! during the `sync`, and the sender after it read a gigabyte from disk.
//!
//! The machine may be shared: every sender runs `OWI_BENCH_ROUNDS` times
//! (default 3), round by round, and each figure is its best (the shortest
//! time, the highest RSS), so a busy spell falls on every sender alike.
//! Each round's times go to stderr as they come. `OWI_BENCH_PATHS` (the
//! `--method` names, say `direct,s3`) runs only those paths.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::server::{ChildServer, KEY};
use common::{
    BenchExport, Result, bench_export, load_average, settle_disk, wait_with_peak_rss, warm_cache,
};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UploadPath {
    Direct,
    Post,
    Multipart,
}

impl UploadPath {
    fn label(self) -> &'static str {
        match self {
            UploadPath::Direct => "direct",
            UploadPath::Post => "s3 POST",
            UploadPath::Multipart => "s3 multipart",
        }
    }

    /// `owi upload --method`.
    fn method(self) -> &'static str {
        match self {
            UploadPath::Direct => "direct",
            UploadPath::Post => "s3",
            UploadPath::Multipart => "multipart",
        }
    }
}

/// Who sends.
#[derive(Debug, Clone, Copy)]
enum Sender {
    Curl,
    /// `owi upload` of export.xml, or of export.zip; after `owi inspect`
    /// of the same file, or not.
    Owi {
        zip: bool,
        previewed: bool,
    },
}

impl Sender {
    fn label(self) -> &'static str {
        match self {
            Sender::Curl => "curl -F",
            Sender::Owi {
                zip: false,
                previewed: false,
            } => "owi (xml)",
            Sender::Owi {
                zip: true,
                previewed: false,
            } => "owi (zip)",
            Sender::Owi {
                zip: false,
                previewed: true,
            } => "owi (xml, previewed)",
            Sender::Owi {
                zip: true,
                previewed: true,
            } => "owi (zip, previewed)",
        }
    }
}

/// One sender's figures for one upload, in seconds.
#[derive(Debug, Clone)]
struct Timing {
    upload: f64,
    wall: f64,
    /// owi only: start to `checked`, and `checked` to `sending`.
    before_upload: Option<(f64, f64)>,
    peak_rss: u64,
}

impl Timing {
    /// The best of two rounds: each time its shortest, the RSS its highest.
    fn best(self, other: Timing) -> Timing {
        Timing {
            upload: self.upload.min(other.upload),
            wall: self.wall.min(other.wall),
            before_upload: match (self.before_upload, other.before_upload) {
                (Some((check, plan)), Some((check2, plan2))) => {
                    Some((check.min(check2), plan.min(plan2)))
                }
                (one, other) => one.or(other),
            },
            peak_rss: self.peak_rss.max(other.peak_rss),
        }
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let export = bench_export()?;
    warm_cache(&export.xml)?;
    warm_cache(&export.zip)?;
    let rounds: usize = std::env::var("OWI_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load =
        |when: &str| load_average().map_or(String::new(), |l| format!(", load {l:.2} {when}"));
    println!(
        "export: {:.0} MB of XML, {} records, {} workouts; warm page cache; \
         best of {rounds} rounds; {cores} cores{}",
        export.xml_bytes as f64 / 1e6,
        export.records,
        export.workouts,
        load("before")
    );
    println!(
        "{:<13} {:<20} {:>8} {:>6} {:>6}  {:>7} {:>6} {:>6}  {:>7} {:>6}  {:>8}",
        "path",
        "sender",
        "upload s",
        "MB/s",
        "÷curl",
        "wall s",
        "MB/s",
        "÷curl",
        "check s",
        "plan s",
        "peak RSS"
    );
    let owi = [(false, false), (true, false), (false, true), (true, true)]
        .map(|(zip, previewed)| Sender::Owi { zip, previewed });
    let mut curl_post = None;
    let (mut curl_post_median, mut medians) = (None, Vec::new());
    let wanted = std::env::var("OWI_BENCH_PATHS").unwrap_or_default();
    let known = ["direct", "s3", "multipart"];
    if let Some(unknown) = wanted
        .split(',')
        .find(|w| !w.is_empty() && !known.contains(w))
    {
        return Err(format!("OWI_BENCH_PATHS: no path {unknown} (direct, s3, multipart)").into());
    }
    let paths = [UploadPath::Direct, UploadPath::Post, UploadPath::Multipart]
        .into_iter()
        .filter(|path| wanted.is_empty() || wanted.split(',').any(|w| w == path.method()));
    for path in paths {
        let senders: Vec<Sender> = match path {
            UploadPath::Multipart => owi.to_vec(),
            _ => [Sender::Curl].into_iter().chain(owi).collect(),
        };
        let mut best: Vec<Option<Timing>> = vec![None; senders.len()];
        let mut times: Vec<Vec<(f64, f64)>> = vec![Vec::new(); senders.len()];
        for round in 1..=rounds {
            for ((sender, slot), times) in senders.iter().zip(&mut best).zip(&mut times) {
                let timing = match *sender {
                    Sender::Curl => time_curl(&runtime, &export, path)?,
                    Sender::Owi { zip, previewed } => {
                        let input = if zip { &export.zip } else { &export.xml };
                        time_owi(&runtime, &export, path, input, previewed)?
                    }
                };
                eprintln!(
                    "round {round}: {} {}: upload {:.2} s, whole {:.2} s",
                    path.label(),
                    sender.label(),
                    timing.upload,
                    timing.wall
                );
                times.push((timing.upload, timing.wall));
                *slot = Some(match slot.take() {
                    Some(earlier) => earlier.best(timing),
                    None => timing,
                });
            }
        }
        let mut curl_secs = curl_post;
        for (sender, timing) in senders.iter().zip(best) {
            let timing = timing.ok_or("no round ran")?;
            match sender {
                Sender::Curl => {
                    print_row(path, *sender, &timing, &export, None);
                    curl_secs = Some(timing.upload);
                }
                Sender::Owi { .. } => print_row(path, *sender, &timing, &export, curl_secs),
            }
        }
        if path == UploadPath::Post {
            curl_post = curl_secs;
        }
        let mut curl_median = curl_post_median;
        for (sender, times) in senders.iter().zip(times) {
            let (upload, wall) = (
                median(times.iter().map(|t| t.0)),
                median(times.iter().map(|t| t.1)),
            );
            if matches!(sender, Sender::Curl) {
                curl_median = Some(upload);
            }
            medians.push((path, *sender, upload, wall, curl_median));
        }
        if path == UploadPath::Post {
            curl_post_median = curl_median;
        }
    }
    println!(
        "÷curl: owi's MB/s over curl's for the same path (multipart: over curl's \
         presigned POST; curl has no multipart upload){}",
        load("after")
    );
    // One fast round of curl's, or one slow of owi's, moves these less.
    println!("medians of the {rounds} rounds:");
    for (path, sender, upload, wall, curl) in medians {
        let ratio = |secs: f64| match (sender, curl) {
            (Sender::Owi { .. }, Some(curl)) => format!("{:.2}", curl / secs),
            _ => String::new(),
        };
        println!(
            "{:<13} {:<20} {upload:>8.2} {:>6} {:>6}  {wall:>7.2} {:>6} {:>6}",
            path.label(),
            sender.label(),
            "",
            ratio(upload),
            "",
            ratio(wall),
        );
    }
    Ok(())
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn print_row(
    path: UploadPath,
    sender: Sender,
    timing: &Timing,
    export: &BenchExport,
    curl_secs: Option<f64>,
) {
    let mb = export.xml_bytes as f64 / 1e6;
    let ratio = |secs: f64| curl_secs.map_or(String::new(), |c| format!("{:.2}", c / secs));
    let (check, plan) = match timing.before_upload {
        Some((check, plan)) => (format!("{check:.2}"), format!("{plan:.2}")),
        None => Default::default(),
    };
    println!(
        "{:<13} {:<20} {:>8.2} {:>6.0} {:>6}  {:>7.2} {:>6.0} {:>6}  {check:>7} {plan:>6}  {:>5.0} MB",
        path.label(),
        sender.label(),
        timing.upload,
        mb / timing.upload,
        ratio(timing.upload),
        timing.wall,
        mb / timing.wall,
        ratio(timing.wall),
        timing.peak_rss as f64 / 1e6,
    );
}

/// curl sending the XML by `path` (direct or presigned POST) to a fresh server.
fn time_curl(
    runtime: &tokio::runtime::Runtime,
    export: &BenchExport,
    path: UploadPath,
) -> Result<Timing> {
    let server = ChildServer::start(&export.dir)?;
    let user = runtime.block_on(server.create_user())?;
    settle_disk()?;
    warm_cache(&export.xml)?;
    let started = Instant::now();
    let peak_rss = match path {
        UploadPath::Direct => server.curl_direct(&user, &export.xml)?,
        UploadPath::Post => runtime.block_on(server.curl_post(&user, export))?,
        UploadPath::Multipart => return Err("curl has no multipart upload".into()),
    };
    let secs = started.elapsed().as_secs_f64();
    Ok(Timing {
        upload: secs,
        wall: secs,
        before_upload: None,
        peak_rss,
    })
}

/// `owi upload` sending `input` by `path` to a fresh server, as a user
/// would run it, without following the import; `previewed`: after `owi
/// inspect` of it into the same database (untimed).
fn time_owi(
    runtime: &tokio::runtime::Runtime,
    export: &BenchExport,
    path: UploadPath,
    input: &Path,
    previewed: bool,
) -> Result<Timing> {
    let server = ChildServer::start(&export.dir)?;
    let user = runtime.block_on(server.create_user())?;
    // Its database, profile and log, away from the person's own.
    let home = tempfile::tempdir_in(&export.dir)?;
    if previewed {
        let status = Command::new(env!("CARGO_BIN_EXE_owi"))
            .args(["inspect", "--json"])
            .arg(input)
            .env("OWI_DB", home.path().join("owi.sqlite"))
            .env("XDG_DATA_HOME", home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(format!("owi inspect failed ({status})").into());
        }
    }
    settle_disk()?;
    warm_cache(input)?;
    if previewed {
        warm_cache(&owi_store::journal_path(&home.path().join("owi.sqlite")))?;
    }
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_owi"))
        .args(["upload", "--user", &user, "--method", path.method()])
        .args(["--no-wait", "--json"])
        .arg(input)
        .env("OWI_SERVER", &server.origin)
        .env("OWI_API_KEY", KEY)
        .env("OWI_NO_KEYCHAIN", "1")
        .env("OWI_DB", home.path().join("owi.sqlite"))
        .env("XDG_DATA_HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("owi without stderr")?;
    let waiting = std::thread::spawn(move || wait_with_peak_rss(child));
    let steps = read_steps(stderr)?;
    // Its stderr closes as it exits.
    let ended = Instant::now();
    let (status, peak_rss) = waiting
        .join()
        .map_err(|_| "the waiting thread panicked")??;
    if !status.success() {
        return Err(format!("owi upload failed ({status}): {}", steps.said.join(" / ")).into());
    }
    let (Some(checked), Some(sending), Some(sent)) = (steps.checked, steps.sending, steps.sent)
    else {
        return Err("owi upload said no checked, sending or sent step".into());
    };
    if steps.bytes != export.xml_bytes {
        println!(
            "  note: owi sent {} bytes, the XML is {}",
            steps.bytes, export.xml_bytes
        );
    }
    let secs = |from: Instant, to: Instant| to.duration_since(from).as_secs_f64();
    Ok(Timing {
        upload: secs(sending, sent),
        wall: secs(started, ended),
        before_upload: Some((secs(started, checked), secs(checked, sending))),
        peak_rss,
    })
}

/// When `owi upload --json` reached its steps, from its stderr, read to
/// the end.
#[derive(Debug, Default)]
struct Steps {
    checked: Option<Instant>,
    /// The first piece started.
    sending: Option<Instant>,
    /// The last piece sent.
    sent: Option<Instant>,
    /// Bytes sent over every piece.
    bytes: u64,
    /// Whatever else it wrote (an error).
    said: Vec<String>,
}

fn read_steps(stderr: impl Read) -> Result<Steps> {
    let mut steps = Steps::default();
    for line in BufReader::new(stderr).lines() {
        let line = line?;
        let at = Instant::now();
        let Ok(step) = serde_json::from_str::<Value>(&line) else {
            steps.said.push(line);
            continue;
        };
        match step["step"].as_str() {
            Some("checked") => steps.checked = Some(at),
            Some("sending") => {
                steps.sending.get_or_insert(at);
            }
            Some("sent") => {
                steps.bytes += step["uploaded"]["bytes"].as_u64().unwrap_or(0);
                if step["piece"] == step["pieces"] {
                    steps.sent = Some(at);
                }
            }
            _ => {}
        }
    }
    Ok(steps)
}
