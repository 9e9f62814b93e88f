//! The desktop app end to end, in a real window: the built app under Xvfb,
//! driven through tauri-driver and WebKitWebDriver, with the bundled server
//! it starts itself. Screenshots of each main screen land in
//! `<target>/e2e/` (or `OWI_E2E_OUT`) for a reviewer.
//!
//! These need the release build with the UI embedded, which `scripts/test.sh`
//! makes (`tauri build`) before running them with `--ignored`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use owi_e2e::bus::SessionBus;
use owi_e2e::fantoccini::Locator;
use owi_e2e::{App, DragSource, Driver, PATIENCE, Result, Screen, drag_onto, output_dir};
use owi_sample::{SampleManifest, SampleSpec};

mod live;

fn sample(dir: &Path, records: u64, workouts: u64, locale: &str) -> SampleManifest {
    let spec = SampleSpec {
        records,
        workouts,
        seed: 11,
        locale: locale.into(),
        zip: true,
        ..SampleSpec::default()
    };
    match owi_sample::generate(&spec, dir) {
        Ok(manifest) => manifest,
        Err(e) => panic!("generating a sample export in {}: {e}", dir.display()),
    }
}

fn zip_of(manifest: &SampleManifest) -> PathBuf {
    match &manifest.zip_path {
        Some(zip) => zip.clone(),
        None => panic!("the sample was asked for as a zip"),
    }
}

/// What each test sets up: a sample export, a screen, and a driver that
/// starts the app with its own data folder.
struct Stage {
    manifest: SampleManifest,
    zip: PathBuf,
    // Stopped before the screen it draws on.
    driver: Driver,
    screen: Screen,
    dir: tempfile::TempDir,
}

impl Stage {
    fn new(records: u64, workouts: u64, locale: &str, env: &[(&str, &str)]) -> Result<Stage> {
        let dir = tempfile::tempdir().map_err(|e| owi_e2e::Error::Setup(e.to_string()))?;
        let manifest = sample(&dir.path().join("sample"), records, workouts, locale);
        let zip = zip_of(&manifest);
        let screen = Screen::start(1600, 900)?;
        let driver = Driver::start_with(&screen, env)?;
        Ok(Stage {
            manifest,
            zip,
            driver,
            screen,
            dir,
        })
    }

    /// The app, with the sample passed on its command line ("Open with…")
    /// or not.
    async fn launch(&self, open_sample: bool) -> Result<App> {
        let data = self.dir.path().join("app");
        let mut args = vec!["--data-dir", arg(&data)];
        if open_sample {
            args.push(arg(&self.zip));
        }
        App::launch(&self.driver, &args, &output_dir().join("screens")).await
    }
}

fn arg(path: &Path) -> &str {
    match path.to_str() {
        Some(s) => s,
        None => panic!("{} is not UTF-8", path.display()),
    }
}

fn en_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "drives the built app in a real window; scripts/test.sh builds it and runs these"]
async fn open_preview_send_to_the_bundled_server_and_watch_the_import() -> Result<()> {
    // A French phone names the XML inside the zip in French.
    let stage = Stage::new(20_000, 40, "fr_FR", &[])?;
    let manifest = &stage.manifest;
    // "Open with…": the export comes as the command-line argument.
    let app = stage.launch(true).await?;

    // The summary of the export read from the command line.
    app.wait_for("section[aria-label='At a glance']").await?;
    let file = app
        .wait_for_text("header .current strong", |t| !t.is_empty())
        .await?;
    assert_eq!(file, "export.zip");
    app.screenshot("1-summary").await?;

    // The workouts table fills with every workout of the export.
    app.click("#tab-workouts").await?;
    let expected = format!("{} workouts", en_count(manifest.workouts));
    app.wait_for_text(".workouts .count", |t| t == expected)
        .await?;
    let grid = app.wait_for("[role='grid']").await?;
    let rows = grid.attr("aria-rowcount").await.ok().flatten();
    assert_eq!(
        rows,
        Some((manifest.workouts + 1).to_string()),
        "the grid's row count"
    );

    // Open the third workout: the pane shows that one.
    let row = app.wait_for("[role='row'][aria-rowindex='4']").await?;
    let kind = row
        .find(Locator::Css("[data-col='activity_type']"))
        .await
        .map_err(|e| owi_e2e::Error::Setup(format!("the row's type cell: {e}")))?
        .prop("innerText")
        .await
        .map_err(|e| owi_e2e::Error::Setup(format!("the row's type: {e}")))?
        .unwrap_or_default();
    assert!(!kind.is_empty(), "the third row has a type");
    row.click()
        .await
        .map_err(|e| owi_e2e::Error::Setup(format!("clicking the row: {e}")))?;
    app.wait_for("[role='row'][aria-rowindex='4'][aria-selected='true']")
        .await?;
    app.wait_for_text("aside[aria-label='Workout details'] h2", |t| t == kind)
        .await?;
    app.wait_for("aside[aria-label='Workout details'] dl")
        .await?;
    app.screenshot("2-workouts").await?;

    app.click("#tab-charts").await?;
    app.wait_for(".chart canvas").await?;
    app.screenshot("3-charts").await?;

    app.click("#tab-server").await?;
    app.wait_for("#imported-title").await?;
    let lead = app
        .wait_for_text(".server .lead", |t| t.contains("will import"))
        .await?;
    // "… will import 19,655 records and 40 workouts … It will report
    // 19,775 items processed (the 80 records inside correlations count
    // again)": the server's count, which the import must then report.
    let counted = app
        .wait_for_text(".server .lead .counted", |t| t.contains("items"))
        .await?;
    let numbers: Vec<u64> = lead
        .split_whitespace()
        .chain(counted.split_whitespace())
        .filter_map(|w| {
            w.trim_matches(|c: char| !c.is_ascii_digit())
                .replace(',', "")
                .parse()
                .ok()
        })
        .collect();
    let (records, workouts) = (numbers[0], numbers[1]);
    let promised: u64 = counted
        .split_whitespace()
        .find_map(|w| w.replace(',', "").parse::<u64>().ok())
        .unwrap_or_default();
    assert!(
        promised > records + workouts,
        "nested correlation records count again: {lead} / {counted}"
    );
    assert!(
        lead.contains(&format!("{} workouts", en_count(manifest.workouts))),
        "{lead}"
    );
    app.screenshot("4-what-gets-imported").await?;

    // Connect to the bundled server (the default choice) and make a user.
    app.click("#tab-send").await?;
    app.wait_for("input[name='where'][value='local']:checked")
        .await?;
    app.click_button("Connect").await?;
    app.wait_for(".connected").await?;
    app.click_button("New user…").await?;
    // The form takes the keyboard where typing starts.
    let focused = app
        .script("return document.activeElement?.closest('label')?.textContent.trim() ?? null")
        .await?;
    assert_eq!(focused, "First name", "focus after New user…");
    app.fill("First name", "Ada").await?;
    app.fill("Last name", "Lovelace").await?;
    app.fill("Email", "ada@example.com").await?;
    app.click_button("Create").await?;
    app.wait_for("input[name='user']:checked").await?;
    app.screenshot("5-connected").await?;

    // What to send: counted for this user; nothing reached them yet, so
    // everything goes but the profile.
    let line = app
        .wait_for_text(".choose .line", |t| t.contains("will be sent"))
        .await?;
    assert!(
        line.contains(&format!("{n} workouts", n = en_count(manifest.workouts))),
        "{line}"
    );
    let new_only = app
        .script("return document.querySelector('#new-only').disabled")
        .await?;
    assert_eq!(
        new_only,
        serde_json::json!(true),
        "no ledger yet: everything is new"
    );
    app.screenshot("5b-what-to-send").await?;

    // Send, and watch the server import it: its count matches the preview's.
    app.click_button("Send to Open Wearables").await?;
    let n = en_count(manifest.workouts);
    let done = format!("{n} of {n} workouts imported");
    app.wait_for_text(".watch .result", |t| t == done).await?;
    let stages = app.wait_for_text("ol.stages", |t| !t.is_empty()).await?;
    let last = stages.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Completed — ") && last.contains(&en_count(promised)),
        "the server's last stage, in words, with its count: {stages:?}"
    );
    app.screenshot("6-imported").await?;

    // Counted again: everything is on the server now, only what is new goes,
    // and that is nothing.
    let nothing = app
        .wait_for_text(".choose .line", |t| t.starts_with("Nothing to send"))
        .await?;
    assert!(nothing.contains("already on the server"), "{nothing}");
    app.wait_for("#new-only:checked").await?;
    app.wait_for_text(".go button.primary", |t| t == "Nothing to send")
        .await?;
    app.screenshot("6b-nothing-new").await?;
    // Everything again, without the heart data: the line follows the boxes.
    app.click("#new-only").await?;
    let all = app
        .wait_for_text(".choose .line", |t| t.contains("will be sent"))
        .await?;
    app.click("input[data-group='heart']").await?;
    let fewer = app
        .wait_for_text(".choose .line", |t| t != all && t.contains("will be sent"))
        .await?;
    let items = |t: &str| -> u64 {
        t.split_whitespace()
            .next()
            .and_then(|n| n.replace(',', "").parse().ok())
            .unwrap_or(0)
    };
    assert!(items(&fewer) < items(&all), "{fewer} after {all}");
    app.screenshot("6c-chosen").await?;

    // The history has the upload: every record and workout the preview
    // promised was imported.
    app.click_button("History").await?;
    let outcome = app
        .wait_for_text("section.history tbody tr td:last-child", |t| !t.is_empty())
        .await?;
    assert_eq!(outcome, format!("imported: {} items", en_count(promised)));
    app.screenshot("7-history").await?;

    // The smallest window the app allows: every screen fits, nothing spills
    // sideways.
    app.click_button("History").await?;
    app.client()
        .set_window_size(1024, 700)
        .await
        .map_err(|e| owi_e2e::Error::Setup(format!("resizing the window: {e}")))?;
    // The page sees the new size once the window manager has applied it.
    app.wait_for_script("return innerWidth", |w| {
        w.as_u64().is_some_and(|w| w <= 1024)
    })
    .await?;
    for (tab, ready) in [
        ("summary", "section[aria-label='At a glance']"),
        ("workouts", "[role='grid']"),
        ("charts", ".chart canvas"),
        ("server", "#imported-title"),
        ("send", ".connected"),
    ] {
        app.click(&format!("#tab-{tab}")).await?;
        app.wait_for(ready).await?;
        let spill = app
            .script(
                "const e = document.documentElement;\n\
                 return [...document.querySelectorAll('main *')]\n\
                   .filter((n) => n.getBoundingClientRect().right > e.clientWidth + 1)\n\
                   .map((n) => n.tagName + '.' + n.className).slice(0, 5);",
            )
            .await?;
        assert_eq!(spill, serde_json::json!([]), "{tab} spills past 1024 px");
        if tab == "workouts" || tab == "send" {
            app.screenshot(&format!("8-1024x700-{tab}")).await?;
        }
    }

    app.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "drives the built app in a real window; scripts/test.sh builds it and runs these"]
async fn a_file_dropped_on_the_window_is_refused_or_opened() -> Result<()> {
    let stage = Stage::new(3_000, 6, "en_US", &[])?;
    let (screen, zip) = (&stage.screen, &stage.zip);
    let notes = stage.dir.path().join("notes.txt");
    std::fs::write(&notes, "not an export").map_err(|e| owi_e2e::Error::Setup(e.to_string()))?;
    let drag_source = PathBuf::from(env!("CARGO_BIN_EXE_owi-drag-source"));
    let app = stage.launch(false).await?;
    app.wait_for("#drop-title").await?;
    let (x, y, w, h) = app.window_rect().await?;
    let centre = ((x + w / 2) as i64, (y + h / 2) as i64);
    // The drag sources sit right of the app's window, off it.
    let beside = ((x + w) as i64 + 60, y as i64 + 80);

    // A wrong file: refused while it hovers, with the reason, and again when dropped.
    let mut wrong = DragSource::start(&drag_source, screen, &notes, beside)?;
    drag_onto(screen, &mut wrong, &app, centre).await?;
    app.wait_for(".overlay.refused").await?;
    app.screenshot("drop-1-refused-while-hovering").await?;
    screen.release()?;
    let reason = app
        .wait_for_text(".banner.error span", |t| !t.is_empty())
        .await?;
    assert!(
        reason.contains("notes.txt") && reason.contains("neither a zip archive nor an XML file"),
        "the refusal names the file and why: {reason:?}"
    );
    drop(wrong);

    // The export: "release to open" while it hovers, then it opens.
    let mut good = DragSource::start(&drag_source, screen, zip, beside)?;
    drag_onto(screen, &mut good, &app, centre).await?;
    app.wait_for(".overlay.ok").await?;
    app.screenshot("drop-2-export-hovering").await?;
    screen.release()?;
    assert!(
        good.said("drag-end", Duration::from_secs(30)),
        "the drag ended"
    );
    app.wait_for("section[aria-label='At a glance']").await?;
    let file = app
        .wait_for_text("header .current strong", |t| !t.is_empty())
        .await?;
    assert_eq!(file, "export.zip");
    // The refusal of the wrong file is gone once a good one is dropped.
    assert!(
        app.client()
            .find(Locator::Css(".banner.error"))
            .await
            .is_err()
    );
    app.screenshot("drop-3-opened").await?;

    // Listed on the start screen, it opens again from there.
    app.click_button("All exports").await?;
    let listed = app
        .wait_for_text("section.recent li button .name", |t| !t.is_empty())
        .await?;
    assert_eq!(listed, "export.zip");
    app.click("section.recent li button").await?;
    app.wait_for("section[aria-label='At a glance']").await?;

    app.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "drives the built app in a real window; scripts/test.sh builds it and runs these"]
async fn the_dark_theme_is_followed_and_readable() -> Result<()> {
    // A person who chose a dark desktop theme.
    let stage = Stage::new(5_000, 12, "en_US", &[("GTK_THEME", "Adwaita:dark")])?;
    let app = stage.launch(true).await?;
    // The finished preview, not a glimpse of it while reading.
    app.wait_for_text(owi_e2e::preview::COVERS_LABEL, |t| {
        t.eq_ignore_ascii_case("Covers")
    })
    .await?;
    let colours = app
        .script(
            "const css = (el, p) => getComputedStyle(el)[p];\n\
             const root = document.documentElement;\n\
             const strong = document.querySelector('header .current strong');\n\
             return [css(root, 'backgroundColor'), css(strong, 'color')];",
        )
        .await?;
    let [background, text] = [0, 1].map(|i| luminance(colours[i].as_str().unwrap_or("")));
    assert!(background < 0.1, "a dark background: {colours}");
    assert!(
        (text + 0.05) / (background + 0.05) >= 7.0,
        "text readable on it (WCAG AAA contrast): {colours}"
    );
    app.screenshot("dark-1-summary").await?;
    app.click("#tab-workouts").await?;
    app.wait_for("[role='row'][aria-rowindex='2']").await?;
    app.screenshot("dark-2-workouts").await?;
    app.click("#tab-send").await?;
    app.wait_for("#connect-title").await?;
    app.screenshot("dark-3-send").await?;
    app.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "drives the built app in a real window; scripts/test.sh builds it and runs these"]
async fn a_second_launch_hands_its_export_over_and_a_read_behind_other_windows_notifies()
-> Result<()> {
    let setup = |e: std::io::Error| owi_e2e::Error::Setup(e.to_string());
    let bus = SessionBus::start()?;
    let env = [
        ("DBUS_SESSION_BUS_ADDRESS", bus.address()),
        // Every read counts as long: the samples are small.
        ("OWI_NOTIFY_AFTER_SECS", "0"),
    ];
    let stage = Stage::new(3_000, 6, "en_US", &env)?;
    let app = stage.launch(false).await?;
    app.wait_for("#drop-title").await?;

    // "Open with…" while the app runs: the second launch hands the file to
    // the window already open and leaves, rather than opening its own.
    let data = stage.dir.path().join("app");
    let mut second = tokio::process::Command::new(owi_e2e::app_binary()?)
        .args(["--data-dir", arg(&data), arg(&stage.zip)])
        .envs(env)
        .env("DISPLAY", stage.screen.display())
        .env("NO_AT_BRIDGE", "1")
        .kill_on_drop(true)
        .spawn()
        .map_err(setup)?;
    let left = tokio::time::timeout(PATIENCE, second.wait()).await;
    assert!(
        matches!(left, Ok(Ok(status)) if status.success()),
        "the second launch handed over and left: {left:?}"
    );
    app.wait_for("section[aria-label='At a glance']").await?;
    let file = app
        .wait_for_text("header .current strong", |t| !t.is_empty())
        .await?;
    assert_eq!(file, "export.zip");
    app.screenshot("open-with-1-handed-over").await?;

    // Another window in front, a new export dropped from it: when its read
    // ends the app says so through the system's notifications.
    let later = stage.dir.path().join("later.zip");
    let other = sample(&stage.dir.path().join("later"), 2_000, 4, "en_US");
    std::fs::copy(zip_of(&other), &later).map_err(setup)?;
    let mut notifications = bus.monitor("org.freedesktop.Notifications")?;
    app.click_button("All exports").await?;
    let (x, y, w, h) = app.window_rect().await?;
    let centre = ((x + w / 2) as i64, (y + h / 2) as i64);
    let beside = ((x + w) as i64 + 60, y as i64 + 80);
    let drag_source = PathBuf::from(env!("CARGO_BIN_EXE_owi-drag-source"));
    let mut source = DragSource::start(&drag_source, &stage.screen, &later, beside)?;
    stage
        .screen
        .xdotool(&["search", "--name", "Drag me", "windowfocus", "--sync"])?;
    drag_onto(&stage.screen, &mut source, &app, centre).await?;
    stage.screen.release()?;
    app.wait_for_text("header .current strong", |t| t == "later.zip")
        .await?;
    let said = notifications.wait_for("later.zip is ready to preview", PATIENCE)?;
    assert!(
        said.iter().any(|l| l.contains("member=Notify")),
        "a Notify call: {said:#?}"
    );
    assert!(
        said.iter().any(|l| l.contains("\"Export read\"")),
        "{said:#?}"
    );
    drop(source);

    // The native menu, by keyboard as GTK offers it: File › Open Recent ›
    // the newest export, from the start screen.
    app.click_button("All exports").await?;
    app.wait_for("#drop-title").await?;
    menu_keys(&stage.screen, &["F10", "Down", "Down", "Right", "Return"])?;
    app.wait_for("section[aria-label='At a glance']").await?;
    let file = app
        .wait_for_text("header .current strong", |t| !t.is_empty())
        .await?;
    assert_eq!(file, "later.zip", "the newest export, from Open Recent");
    app.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "drives the built app in a real window; scripts/test.sh builds it and runs these"]
async fn file_close_quits_and_the_next_start_has_the_same_window() -> Result<()> {
    // A bus of its own: the next start must not find this one's name.
    let bus = SessionBus::start()?;
    let stage = Stage::new(
        1_000,
        2,
        "en_US",
        &[("DBUS_SESSION_BUS_ADDRESS", bus.address())],
    )?;
    let app = stage.launch(false).await?;
    app.wait_for("#drop-title").await?;
    let (width, height) = (1111, 777);
    app.client()
        .set_window_size(width, height)
        .await
        .map_err(|e| owi_e2e::Error::Setup(format!("resizing the window: {e}")))?;
    app.wait_for_window_size(width, height).await?;
    // File › Close (after Open… and Open Recent), by keyboard: the app
    // quits as a person quits it, and keeps the window's state.
    let pid = stage.screen.xdotool(&[
        "search",
        "--name",
        "Open Wearables Importer",
        "getwindowpid",
    ])?;
    let running = PathBuf::from(format!(
        "/proc/{}/stat",
        pid.lines().next().unwrap_or("").trim()
    ));
    assert!(alive(&running), "the app's process: {pid:?}");
    menu_keys(&stage.screen, &["F10", "Down", "Down", "Down"])?;
    // The key's release reaches a window already gone, which xdotool
    // reports as an error: what counts is what the app did.
    let _ = stage.screen.xdotool(&["key", "Return"]);
    let deadline = std::time::Instant::now() + PATIENCE;
    while alive(&running) {
        assert!(std::time::Instant::now() < deadline, "the app did not quit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        stage
            .dir
            .path()
            .join("app")
            .join("window-state.json")
            .exists(),
        "the window's state kept in the data folder"
    );
    // The app is gone; its session goes too.
    let _ = app.close().await;

    let again = stage.launch(false).await?;
    again.wait_for("#drop-title").await?;
    // The size kept from the last run.
    again.wait_for_window_size(width, height).await?;
    again.close().await?;
    Ok(())
}

/// Whether the process whose `/proc/PID/stat` this is still runs (a
/// zombie waiting for its parent has ended).
fn alive(stat: &Path) -> bool {
    std::fs::read_to_string(stat).is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Types `keys` into the app's window, as a person walks GTK's menu bar
/// from the keyboard (F10 opens File).
fn menu_keys(screen: &Screen, keys: &[&str]) -> Result<()> {
    let mut xdotool = vec![
        "search",
        "--name",
        "Open Wearables Importer",
        "windowfocus",
        "--sync",
        "key",
        "--delay",
        "150",
    ];
    xdotool.extend(keys);
    screen.xdotool(&xdotool).map(|_| ())
}

/// The relative luminance (WCAG) of a CSS `rgb(r, g, b)` colour.
fn luminance(css: &str) -> f64 {
    let channels: Vec<f64> = css
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .take(3)
        .filter_map(|c| c.trim().parse::<f64>().ok())
        .map(|c| {
            let c = c / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        })
        .collect();
    match channels[..] {
        [r, g, b] => 0.2126 * r + 0.7152 * g + 0.0722 * b,
        _ => panic!("not an rgb() colour: {css:?}"),
    }
}
