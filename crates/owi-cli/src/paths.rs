//! Where the CLI keeps its database and logs.

use std::path::PathBuf;

use anyhow::Context;
use directories::ProjectDirs;

fn dirs() -> Option<ProjectDirs> {
    ProjectDirs::from("org", "Open Wearables", "owi")
}

/// The platform's data directory for owi.
pub fn data_dir() -> anyhow::Result<PathBuf> {
    Ok(dirs()
        .context("no home directory to keep data in; pass a path explicitly")?
        .data_dir()
        .to_path_buf())
}

/// `--db` (or `OWI_DB`, read by clap), else the platform's data directory.
pub fn database(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path);
    }
    let dirs = dirs().context("no home directory to keep the local database in; pass --db FILE")?;
    Ok(dirs.data_dir().join("owi.sqlite"))
}

/// Logs go to a file in the data directory (`OWI_LOG` sets the filter);
/// `--verbose` also prints them to stderr.
pub fn init_logging(verbose: bool) -> Option<()> {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{EnvFilter, fmt};

    let filter = || EnvFilter::try_from_env("OWI_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let file = dirs()
        .map(|d| d.data_dir().join("logs"))
        .and_then(|dir| std::fs::create_dir_all(&dir).ok().map(|()| dir))
        .and_then(|dir| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("owi.log"))
                .ok()
        });
    let file_layer = file.map(|f| {
        fmt::layer()
            .with_writer(std::sync::Mutex::new(f))
            .with_ansi(false)
            .with_filter(filter())
    });
    let stderr_layer = verbose.then(|| {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter())
    });
    tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr_layer)
        .try_init()
        .ok()
}

/// Peak resident set size of this process, from `/proc` (0 where unknown).
pub fn peak_rss_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
