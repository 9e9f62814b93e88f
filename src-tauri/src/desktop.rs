//! What people expect of a desktop app: one instance per data directory
//! (a second launch, "Open with…" or a file handed over by macOS reaches
//! the window already open), the native menu, and a notification when a
//! long read or import ends while the window is in the background.
//!
//! Everything reaches the UI as one typed [`ShellEvent`] on [`SHELL_EVENT`].

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use owi_store::ExportInfo;
use serde::Serialize;
use tauri::menu::{AboutMetadata, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use ts_rs::TS;

use crate::args::Args;
use crate::state::AppState;

/// The event name the UI listens on.
pub const SHELL_EVENT: &str = "shell";
/// Work shorter than this ends without a notification.
const NOTIFY_AFTER: Duration = Duration::from_secs(10);
/// How many exports File › Open Recent lists.
const RECENT: usize = 8;

/// Exports handed over and not yet taken by the window, oldest first.
/// Managed before the app is built: a second launch may arrive while the
/// first is still starting, before its `setup` has run.
#[derive(Debug, Default)]
pub struct Handovers(Mutex<VecDeque<PathBuf>>);

impl Handovers {
    fn push(&self, path: PathBuf) {
        self.lock().push_back(path);
    }

    /// The oldest export waiting, if any.
    pub fn pop(&self) -> Option<PathBuf> {
        self.lock().pop_front()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<PathBuf>> {
        // A panic while holding it leaves plain paths behind: go on.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where the app writes its log, for Help › About.
#[derive(Debug, Clone)]
pub struct LogDir(pub PathBuf);

/// What the shell asks of the UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShellEvent {
    /// An export was handed over: take it with `startup_export` (until it
    /// answers none) and open it.
    ExportWaiting,
    /// Show an export the store already holds (File › Open Recent).
    Show { export_id: i64 },
    /// Ask for a file (File › Open…).
    Pick,
}

/// The single-instance name for a data directory: the default one keeps
/// the app's identifier; another directory is another instance, so test
/// and demo runs never hand files to a person's own window.
pub fn instance_id(identifier: &str, data_dir: Option<&Path>) -> Option<String> {
    let dir = data_dir?;
    let hash = dir
        .to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    Some(format!("{identifier}.d{hash:016x}"))
}

/// The export a second launch names, made absolute against its own
/// working directory (a file manager may pass a relative path).
pub fn handed_export(argv: &[String], cwd: &str) -> Option<PathBuf> {
    let args = Args::parse(argv.iter().skip(1).map(Into::into));
    let export = args.export?;
    Some(if export.is_relative() {
        Path::new(cwd).join(export)
    } else {
        export
    })
}

/// The window's size and place, kept where the data is: a `--data-dir`
/// run (a test, a demo) never moves a person's own window.
pub fn window_state(data_dir: Option<&Path>) -> tauri_plugin_window_state::Builder {
    let builder = tauri_plugin_window_state::Builder::default();
    match data_dir {
        // The plugin joins the name to the config folder: an absolute path wins.
        Some(dir) => builder.with_filename(dir.join("window-state.json").to_string_lossy()),
        None => builder,
    }
}

/// A second launch (Linux, Windows) or an open-file event (macOS) brings
/// the window forward and, with a file, hands it over.
pub fn hand_over<R: Runtime>(app: &AppHandle<R>, export: Option<PathBuf>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
    let Some(export) = export else {
        return;
    };
    tracing::info!(export = %export.display(), "an export was handed over");
    match app.try_state::<Handovers>() {
        Some(waiting) => waiting.push(export),
        None => {
            tracing::warn!("no queue for handed-over exports: the app was built without one");
            return;
        }
    }
    emit(app, ShellEvent::ExportWaiting);
}

fn emit<R: Runtime>(app: &AppHandle<R>, event: ShellEvent) {
    if let Err(e) = app.emit(SHELL_EVENT, event) {
        tracing::warn!(error = %e, "could not tell the window");
    }
}

/// The menu item ids the menu answers to.
pub fn menu_action(id: &str) -> Option<ShellEvent> {
    match id {
        "open" => Some(ShellEvent::Pick),
        _ => id
            .strip_prefix("recent:")
            .and_then(|n| n.parse().ok())
            .map(|export_id| ShellEvent::Show { export_id }),
    }
}

pub fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    if id == "close" {
        // As the window's own close button: the window state is kept and
        // the app quits with its last window.
        if let Some(window) = app.get_webview_window("main")
            && let Err(e) = window.close()
        {
            tracing::warn!(error = %e, "could not close the window");
        }
    } else if let Some(event) = menu_action(id) {
        emit(app, event);
    }
}

/// File (Open…, Open Recent, Close) and Help (About, with the version
/// and where the logs are).
pub fn menu<R: Runtime>(
    app: &AppHandle<R>,
    recent: &[ExportInfo],
    log_dir: &Path,
) -> tauri::Result<Menu<R>> {
    let recent_menu = Submenu::with_id(app, "recent", "Open Recent", true)?;
    if recent.is_empty() {
        recent_menu.append(&MenuItem::with_id(
            app,
            "recent:none",
            "No exports yet",
            false,
            None::<&str>,
        )?)?;
    }
    for export in recent.iter().take(RECENT) {
        let name = Path::new(&export.source_path).file_name().map_or_else(
            || export.source_path.clone(),
            |n| n.to_string_lossy().into_owned(),
        );
        let label = match &export.export_date {
            Some(date) => format!("{name} (exported {})", date.get(..10).unwrap_or(date)),
            None => name,
        };
        recent_menu.append(&MenuItem::with_id(
            app,
            format!("recent:{}", export.id),
            label,
            true,
            None::<&str>,
        )?)?;
    }
    let file = Submenu::with_items(
        app,
        "File",
        true,
        &[
            &MenuItem::with_id(app, "open", "Open…", true, None::<&str>)?,
            &recent_menu,
            &PredefinedMenuItem::separator(app)?,
            // Not the predefined item: GTK has none.
            &MenuItem::with_id(app, "close", "Close", true, None::<&str>)?,
        ],
    )?;
    let info = app.package_info();
    let about = AboutMetadata {
        name: Some(info.name.clone()),
        version: Some(info.version.to_string()),
        comments: Some(format!("Logs: {}", log_dir.display())),
        license: Some("MIT OR Apache-2.0".into()),
        ..AboutMetadata::default()
    };
    let help = Submenu::with_items(
        app,
        "Help",
        true,
        &[&PredefinedMenuItem::about(
            app,
            Some("About Open Wearables Importer"),
            Some(about),
        )?],
    )?;
    Menu::with_items(app, &[&file, &help])
}

/// The last part of a path, as people call the file.
pub fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

/// Builds the menu again from the store's exports (after a read, Open
/// Recent has one more). Runs the store read on the calling thread: call
/// it off the async threads.
pub fn refresh_menu<R: Runtime>(app: &AppHandle<R>) {
    // Set up by `run` only: an app built for tests has no menu.
    let Some(log_dir) = app.try_state::<LogDir>().map(|d| d.0.clone()) else {
        return;
    };
    let recent = app
        .state::<AppState>()
        .read(|store| store.exports())
        .unwrap_or_default();
    match menu(app, &recent, &log_dir).and_then(|m| app.set_menu(m)) {
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not build the menu"),
    }
}

/// Whether finished work deserves a notification: it took long enough
/// for the person to look elsewhere, and the window is not in front.
pub fn worth_notifying(took: Duration, window_focused: bool) -> bool {
    took >= notify_after() && !window_focused
}

/// [`NOTIFY_AFTER`], or `OWI_NOTIFY_AFTER_SECS` (the end-to-end tests
/// read small exports).
fn notify_after() -> Duration {
    std::env::var("OWI_NOTIFY_AFTER_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(NOTIFY_AFTER, Duration::from_secs)
}

/// Tells the person, through the system's notifications, that long work
/// ended while the window was in the background.
pub fn notify_if_away<R: Runtime>(app: &AppHandle<R>, took: Duration, title: &str, body: &str) {
    let focused = app
        .get_webview_window("main")
        .and_then(|w| w.is_focused().ok())
        .unwrap_or(false);
    if !worth_notifying(took, focused) {
        return;
    }
    // Absent where the plugin is not installed (the app's tests).
    let Some(notifications) = app.try_state::<tauri_plugin_notification::Notification<R>>() else {
        return;
    };
    tracing::info!(title, "notifying");
    if let Err(e) = notifications.builder().title(title).body(body).show() {
        tracing::warn!(error = %e, "could not show a notification");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_launch_hands_over_its_export_made_absolute() {
        let argv = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            handed_export(&argv(&["owi-app", "export.zip"]), "/home/ada/Downloads"),
            Some(PathBuf::from("/home/ada/Downloads/export.zip"))
        );
        assert_eq!(
            handed_export(
                &argv(&["owi-app", "--data-dir", "/d", "file:///tmp/My%20Export.zip"]),
                "/"
            ),
            Some(PathBuf::from("/tmp/My Export.zip"))
        );
        assert_eq!(handed_export(&argv(&["owi-app"]), "/"), None);
    }

    #[test]
    fn each_data_directory_is_an_instance_of_its_own() {
        let id = "org.openwearables.importer";
        assert_eq!(instance_id(id, None), None);
        let a = instance_id(id, Some(Path::new("/tmp/a"))).unwrap();
        let b = instance_id(id, Some(Path::new("/tmp/b"))).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("org.openwearables.importer.d"), "{a}");
        // A D-Bus name element may not start with a digit.
        assert!(
            a.split('.')
                .all(|e| !e.starts_with(|c: char| c.is_ascii_digit()))
        );
    }

    #[test]
    fn the_menu_items_ask_the_ui_for_what_they_name() {
        assert_eq!(menu_action("open"), Some(ShellEvent::Pick));
        assert_eq!(
            menu_action("recent:42"),
            Some(ShellEvent::Show { export_id: 42 })
        );
        assert_eq!(menu_action("recent:none"), None);
        assert_eq!(menu_action("quit"), None);
    }

    #[test]
    fn only_long_work_ending_behind_other_windows_is_notified() {
        assert!(worth_notifying(Duration::from_secs(30), false));
        assert!(!worth_notifying(Duration::from_secs(30), true));
        assert!(!worth_notifying(Duration::from_secs(2), false));
    }
}
