//! The Open Wearables Importer desktop app: a thin Tauri v2 shell over the
//! core crates.
//!
//! Commands (`commands/`) only translate: a request type in, one call into
//! `owi-store` on a blocking thread (or `owi-client`, which is async), the core's answer or an
//! [`CommandError`] `{kind, message}` out. Long work streams the core's
//! [`owi_progress::Progress`] events over a `tauri::ipc::Channel`. The types
//! crossing IPC are listed in [`bindings`], which writes their TypeScript
//! twins into `ui/src/bindings/`.

mod args;
pub mod bindings;
mod commands;
pub mod desktop;
pub mod dto;
mod error;
mod logging;
mod online;
mod state;

use tauri::{Manager, Runtime};

pub use args::Args;
pub use error::{CommandError, ErrorKind};
pub use state::AppState;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "owi.sqlite";

/// The app's plugins and commands on any runtime: [`run`] uses the real
/// one, tests `tauri::test::mock_builder()` (and provide [`AppState`] with
/// `.manage()`, as a built-but-not-run app never runs `setup`).
pub fn app<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder
        .manage(desktop::Handovers::default())
        .plugin(tauri_plugin_dialog::init())
        .invoke_handler(tauri::generate_handler![
            commands::export::startup_export,
            commands::export::check_export,
            commands::export::open_export,
            commands::export::cancel_operation,
            commands::export::list_exports,
            commands::preview::export_summary,
            commands::preview::server_preview,
            commands::preview::list_workouts,
            commands::preview::workout_detail,
            commands::preview::daily_series,
            commands::online::connection_status,
            commands::online::connect_local,
            commands::online::connect_remote,
            commands::online::disconnect,
            commands::online::list_users,
            commands::online::create_user,
            commands::online::start_import,
            commands::online::plan_import,
            commands::online::ledger_summary,
            commands::online::upload_history,
            commands::online::interrupted_uploads,
        ])
}

/// Starts the desktop app: `owi-app [--data-dir DIR] [EXPORT]`.
pub fn run() {
    let args = Args::parse(std::env::args_os().skip(1));
    let context = tauri::generate_context!();
    // First: a second launch must hand over before anything else starts.
    let mut single = tauri_plugin_single_instance::Builder::new().callback(|app, argv, cwd| {
        desktop::hand_over(app, desktop::handed_export(&argv, &cwd));
    });
    if let Some(id) = desktop::instance_id(&context.config().identifier, args.data_dir.as_deref()) {
        single = single.dbus_id(id);
    }
    let builder = app(tauri::Builder::default().plugin(single.build()))
        .plugin(desktop::window_state(args.data_dir.as_deref()).build())
        .plugin(tauri_plugin_notification::init())
        .on_menu_event(|app, event| desktop::on_menu(app, event.id().as_ref()))
        .setup(move |app| {
            let (data_dir, log_dir) = match &args.data_dir {
                Some(dir) => (dir.clone(), dir.join("logs")),
                None => (app.path().app_data_dir()?, app.path().app_log_dir()?),
            };
            logging::init(&log_dir);
            tracing::info!(data = %data_dir.display(), "starting");
            app.manage(AppState::new(
                data_dir.join(DATABASE_FILE),
                args.export.clone(),
            ));
            app.manage(desktop::LogDir(log_dir));
            desktop::refresh_menu(app.handle());
            Ok(())
        });
    let app = match builder.build(context) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("owi-app: {e}");
            std::process::exit(1);
        }
    };
    app.run(|_app, _event| {
        // macOS hands files over as an event, not on the command line.
        #[cfg(target_os = "macos")]
        if let tauri::RunEvent::Opened { urls } = _event {
            for url in urls {
                if let Ok(path) = url.to_file_path() {
                    desktop::hand_over(_app, Some(path));
                }
            }
        }
    });
}
