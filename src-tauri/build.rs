//! Resolves the app's permissions and capabilities for `generate_context!`.

/// Every command the UI may call; each gets `allow-…`/`deny-…` permissions
/// that `capabilities/main.json` grants one by one.
const COMMANDS: &[&str] = &[
    "startup_export",
    "check_export",
    "open_export",
    "cancel_operation",
    "list_exports",
    "export_summary",
    "server_preview",
    "list_workouts",
    "workout_detail",
    "daily_series",
    "connection_status",
    "connect_local",
    "connect_remote",
    "disconnect",
    "list_users",
    "create_user",
    "start_import",
    "plan_import",
    "ledger_summary",
    "upload_history",
    "interrupted_uploads",
];

fn main() {
    // The default looks next to Cargo.toml; the app's files are in src-tauri/.
    println!("cargo:rerun-if-changed=src-tauri/capabilities");
    let attributes = tauri_build::Attributes::new()
        .capabilities_path_pattern("./src-tauri/capabilities/**/*")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        println!("cargo:warning=tauri-build failed: {e:#}");
        std::process::exit(1);
    }
}
