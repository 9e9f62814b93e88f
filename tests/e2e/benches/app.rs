//! `cargo bench -p owi-e2e --bench app`: the desktop app's figures, in a
//! real window under Xvfb, driven as the end-to-end tests drive it.
//!
//! - cold start: from asking WebDriver for a session (which starts the app)
//!   to the first screen drawn and answering, over several launches;
//! - a ~1 GB export (the CLI benches' cached sample, `OWI_BENCH_RECORDS`)
//!   dropped on the window for real: time to the first feedback, to the
//!   first summary with real counts on screen (the live preview, while it
//!   is read), and to the finished preview (the whole read);
//! - responsiveness while it reads and while it sends to the bundled server:
//!   how long a key press takes to be handled (WebDriver's round trip, idle
//!   for comparison) and the gaps between animation frames;
//! - re-opening the export read before;
//! - the app's resident memory (and WebKit's processes) after each part.
//!
//! Needs the built app, as the tests do (`OWI_APP` or the release build).
//! `OWI_BENCH_BASELINE_APP=/path/to/owi-app` also drops the export on that
//! build (an earlier commit's), turn about with this one, three times each:
//! before/after figures taken in the same run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use owi_e2e::preview::{COVERS_LABEL, RECORDS, figure};
use owi_e2e::{
    App, DragSource, Driver, Memory, Screen, app_binary, drag_onto, memory_of, output_dir,
};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let binary = app_binary()?;
    let (export, xml_bytes) = bench_export()?;
    let work = tempfile::tempdir()?;
    let shots = output_dir().join("bench");
    let screen = Screen::start(1600, 900)?;
    let driver = Driver::start(&screen)?;
    println!("app: {}", binary.display());
    println!(
        "export: {} ({:.0} MB of XML, {:.0} MB zipped)",
        export.display(),
        xml_bytes as f64 / 1e6,
        std::fs::metadata(&export)?.len() as f64 / 1e6
    );

    // Cold start, each into a new data folder.
    let mut starts = Vec::new();
    for i in 0..5 {
        let data = work.path().join(format!("start-{i}"));
        let started = Instant::now();
        let app = App::launch(&driver, &["--data-dir", text(&data)?], &shots).await?;
        app.wait_for("#drop-title").await?;
        app.press_shift().await?;
        starts.push(started.elapsed());
        app.close().await?;
    }
    println!("\ncold start to an answering window: {}", spread(&starts));

    let drag = PathBuf::from(env!("CARGO_BIN_EXE_owi-drag-source"));

    // The drop with nothing else asked of the app: the time a person waits.
    // With `OWI_BENCH_BASELINE_APP`, another build (an earlier commit's)
    // drops the same export in the same run, turn about, three times each.
    let baseline = std::env::var_os("OWI_BENCH_BASELINE_APP").map(PathBuf::from);
    let builds: Vec<(&str, &Path)> = match &baseline {
        Some(other) => vec![("this build", &binary), ("baseline", other)],
        None => vec![("this build", &binary)],
    };
    let rounds = if baseline.is_some() { 3 } else { 1 };
    let mut quiet: Vec<(Vec<Duration>, Vec<Duration>)> = vec![Default::default(); builds.len()];
    for round in 0..rounds {
        for (b, (_, build)) in builds.iter().enumerate() {
            let data = work.path().join(format!("quiet-{b}-{round}"));
            let (first, whole) =
                quiet_drop(&driver, build, &data, &screen, &drag, &export, &shots).await?;
            quiet[b].0.push(first);
            quiet[b].1.push(whole);
        }
    }
    for ((label, build), (first, whole)) in builds.iter().zip(&quiet) {
        if baseline.is_some() {
            println!("\n{label}: {}", build.display());
        }
        println!(
            "\ndrop → first summary with real counts (live), nothing else asked: {}",
            seconds(first)
        );
        println!(
            "drop → finished preview (the whole read), nothing else asked: {}",
            seconds(whole)
        );
    }

    let data = work.path().join("main");
    let marker = text(&data)?.to_owned();
    let app = App::launch(&driver, &["--data-dir", &marker], &shots).await?;
    app.wait_for("#drop-title").await?;
    report_memory("idle, nothing open", memory_of(&binary, &marker));
    app.record_frames().await?;
    let idle = key_latencies(&app, 40).await?;
    let idle_frames = app.take_frames().await?;
    println!("key press handled, idle: {}", spread(&idle));
    println!("frame gaps, idle: {}", frames(&idle_frames));

    // The drop again, into a new data folder, probed while it reads.
    app.take_frames().await?;
    let dropped = drop_file(&app, &screen, &drag, &export).await?;
    app.wait_for("#progress-title").await?;
    let feedback = dropped.elapsed();
    let mut reading = Vec::new();
    let mut live = None;
    // Until the read ends: the progress card, then the live preview with
    // the read's strip over it.
    loop {
        let (card, strip) = (
            shown(&app, "#progress-title").await,
            shown(&app, ".strip").await,
        );
        if strip && live.is_none() {
            live = Some(dropped.elapsed());
        }
        if !card && !strip {
            break;
        }
        reading.push(app.press_shift().await?);
    }
    app.wait_for_text(COVERS_LABEL, |t| t.eq_ignore_ascii_case("Covers"))
        .await?;
    let preview = dropped.elapsed();
    let reading_frames = app.take_frames().await?;
    app.screenshot("1-summary-after-drop").await?;
    println!("\ndrop → progress shown: {} ms", feedback.as_millis());
    if let Some(live) = live {
        println!("drop → live preview, probed: {:.2} s", live.as_secs_f64());
    }
    println!(
        "drop → finished preview, probed: {:.1} s",
        preview.as_secs_f64()
    );
    println!("key press handled, while reading: {}", spread(&reading));
    println!("frame gaps while reading: {}", frames(&reading_frames));
    report_memory("after reading", memory_of(&binary, &marker));

    // Send to the bundled server.
    app.click("#tab-send").await?;
    app.click_button("Connect").await?;
    app.wait_for(".connected").await?;
    app.click_button("New user…").await?;
    app.fill("First name", "Bench").await?;
    app.fill("Email", "bench@example.com").await?;
    app.click_button("Create").await?;
    app.wait_for("input[name='user']:checked").await?;
    // The button waits for what goes to this user to be counted; a click
    // before that is lost.
    app.wait_for_text(".choose .line", |t| t.contains("will be sent"))
        .await?;
    app.take_frames().await?;
    app.click_button("Send to Open Wearables").await?;
    let sending_started = Instant::now();
    app.wait_for(".watch").await?;
    let mut sending = Vec::new();
    let mut shots_taken = 0;
    let mut uploaded = None;
    loop {
        if uploaded.is_none() && !still_uploading(&app).await? {
            uploaded = Some(sending_started.elapsed());
        }
        let result = app
            .client()
            .find(owi_e2e::fantoccini::Locator::Css(".watch .result"))
            .await;
        if result.is_ok() {
            break;
        }
        if app
            .client()
            .find(owi_e2e::fantoccini::Locator::Css(".failure"))
            .await
            .is_ok()
        {
            app.screenshot("send-failed").await?;
            return Err("the upload failed: see the screenshot send-failed.png".into());
        }
        // A screenshot a minute, so a send that never ends shows where it stands.
        let minute = sending_started.elapsed().as_secs() / 60;
        if minute > shots_taken {
            shots_taken = minute;
            app.screenshot(&format!("sending-{minute}min")).await?;
        }
        if sending_started.elapsed() > Duration::from_secs(900) {
            return Err(
                "the upload took more than 15 minutes: see the sending-*min.png screenshots".into(),
            );
        }
        sending.push(app.press_shift().await?);
    }
    let sent = sending_started.elapsed();
    let sending_frames = app.take_frames().await?;
    let outcome = app
        .wait_for_text(".watch .result", |t| !t.is_empty())
        .await?;
    app.screenshot("2-imported").await?;
    let method = app
        .wait_for_text(".watch p.small", |t| !t.is_empty())
        .await?;
    println!("\n{method}");
    if let Some(uploaded) = uploaded {
        println!(
            "send → every byte on the server (the upload): {:.1} s",
            uploaded.as_secs_f64()
        );
    }
    println!(
        "send and server import: {:.1} s ({outcome})",
        sent.as_secs_f64()
    );
    println!(
        "key press handled, while sending and importing: {}",
        spread(&sending)
    );
    println!(
        "frame gaps while sending and importing: {}",
        frames(&sending_frames)
    );
    report_memory("after sending", memory_of(&binary, &marker));

    // Re-opening the export read before.
    app.click_button("All exports").await?;
    app.wait_for("#recent-title").await?;
    let again = Instant::now();
    app.click("section.recent li button").await?;
    app.wait_for("section[aria-label='At a glance']").await?;
    println!(
        "\nre-open the export read before → summary: {} ms",
        again.elapsed().as_millis()
    );
    app.close().await?;
    println!("screenshots: {}", shots.display());
    Ok(())
}

/// Drops `export` on a fresh window of `build`: the time to the first
/// summary with real counts, and to the finished preview.
async fn quiet_drop(
    driver: &Driver,
    build: &Path,
    data: &Path,
    screen: &Screen,
    drag: &Path,
    export: &Path,
    shots: &Path,
) -> Result<(Duration, Duration)> {
    let app = App::launch_binary(driver, build, &["--data-dir", text(data)?], shots).await?;
    app.wait_for("#drop-title").await?;
    let dropped = drop_file(&app, screen, drag, export).await?;
    app.wait_for_text(RECORDS, |t| figure(t) > 0).await?;
    let first = dropped.elapsed();
    app.wait_for_text(COVERS_LABEL, |t| t.eq_ignore_ascii_case("Covers"))
        .await?;
    let whole = dropped.elapsed();
    app.close().await?;
    Ok((first, whole))
}

/// Every run's seconds, and the best.
fn seconds(runs: &[Duration]) -> String {
    let all: Vec<String> = runs
        .iter()
        .map(|d| format!("{:.2}", d.as_secs_f64()))
        .collect();
    let best = runs.iter().min().map_or(0.0, Duration::as_secs_f64);
    if runs.len() > 1 {
        format!("{best:.2} s best of {} ({} s)", runs.len(), all.join(", "))
    } else {
        format!("{best:.2} s")
    }
}

/// The CLI benches' sample (generated once for all of them).
fn bench_export() -> Result<(PathBuf, u64)> {
    let manifest = owi_sample::bench_sample()?;
    let zip = manifest.zip_path.ok_or("the sample has no zip")?;
    Ok((zip, manifest.xml_bytes))
}

/// Drags `file` onto the app's window for real and lets go; returns when.
/// Whether the send's title still speaks of its bytes (checked, sent or
/// retried) rather than of the server's import.
async fn still_uploading(app: &App) -> Result<bool> {
    let title = app
        .script("return document.getElementById('watch-title')?.textContent ?? ''")
        .await?;
    let title = title.as_str().unwrap_or_default();
    Ok(["Starting", "Checking", "Sending", "Retrying"]
        .iter()
        .any(|words| title.starts_with(words)))
}

async fn shown(app: &App, css: &str) -> bool {
    app.client()
        .find(owi_e2e::fantoccini::Locator::Css(css))
        .await
        .is_ok()
}

async fn drop_file(app: &App, screen: &Screen, drag: &Path, file: &Path) -> Result<Instant> {
    let (x, y, w, h) = app.window_rect().await?;
    let centre = ((x + w / 2) as i64, (y + h / 2) as i64);
    let mut source = DragSource::start(drag, screen, file, ((x + w) as i64 + 60, 80))?;
    drag_onto(screen, &mut source, app, centre).await?;
    app.wait_for(".overlay.ok").await?;
    screen.release()?;
    let released = Instant::now();
    // The app asks the source for the file's name after the release.
    source.expect("drag-end", owi_e2e::PATIENCE)?;
    Ok(released)
}

fn text(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()).into())
}

async fn key_latencies(app: &App, n: usize) -> Result<Vec<Duration>> {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        all.push(app.press_shift().await?);
    }
    Ok(all)
}

fn spread(samples: &[Duration]) -> String {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    summary(&mut ms)
}

fn frames(gaps: &[f64]) -> String {
    let mut ms = gaps.to_vec();
    let late = ms.iter().filter(|g| **g > 50.0).count();
    format!("{}; {late} frames later than 50 ms", summary(&mut ms))
}

fn summary(ms: &mut [f64]) -> String {
    if ms.is_empty() {
        return "no samples".into();
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    format!(
        "n={} median {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        ms.len(),
        at(0.5),
        at(0.95),
        at(1.0)
    )
}

fn report_memory(when: &str, memory: Option<Memory>) {
    match memory {
        Some(m) => println!(
            "memory {when}: app {} MB (peak {} MB), WebKit processes {} MB",
            m.app_rss_kb / 1024,
            m.app_peak_kb / 1024,
            m.children_rss_kb / 1024
        ),
        None => println!("memory {when}: the app's process was not found"),
    }
}
