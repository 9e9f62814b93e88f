//! Logs to `owi-app.log` in the app's log directory (`OWI_LOG` filters,
//! `info` by default). Logging is a help, never a reason not to start.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

pub fn init(dir: &Path) {
    let file = std::fs::create_dir_all(dir).and_then(|()| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("owi-app.log"))
    });
    let file = match file {
        Ok(file) => file,
        Err(e) => {
            eprintln!("owi-app: no log file in {}: {e}", dir.display());
            return;
        }
    };
    let filter = EnvFilter::try_from_env("OWI_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .try_init();
    if installed.is_err() {
        eprintln!("owi-app: a logger was already installed");
    }
}
