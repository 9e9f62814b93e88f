#![allow(dead_code)] // each benchmark uses its own part

//! What the benchmarks share: the cached synthetic export, a child
//! `owi serve` to send it to ([`server`]), the naive loader `owi inspect`
//! is compared with ([`naive`]), and a process's peak RSS.

pub mod naive;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::Duration;

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A synthetic export of `OWI_BENCH_RECORDS` records (default 3,000,000 ≈
/// 1 GB of XML), generated once into `target/bench-data` (or
/// `OWI_BENCH_DIR`) and reused.
#[derive(Debug)]
pub struct BenchExport {
    pub dir: PathBuf,
    pub xml: PathBuf,
    pub zip: PathBuf,
    pub xml_bytes: u64,
    pub records: u64,
    pub workouts: u64,
}

pub fn bench_export() -> Result<BenchExport> {
    let manifest = owi_sample::bench_sample()?;
    Ok(BenchExport {
        dir: manifest
            .xml_path
            .ancestors()
            .nth(2)
            .ok_or("the sample's XML is not in its folder")?
            .to_path_buf(),
        xml: manifest.xml_path,
        zip: manifest.zip_path.ok_or("the sample has no zip")?,
        xml_bytes: manifest.xml_bytes,
        records: manifest.records,
        workouts: manifest.workouts,
    })
}

/// Peak resident set of a process, from /proc (Linux).
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Waits for `child` to end, reading its peak resident set every 10 ms
/// meanwhile (/proc forgets it once the process is reaped). A peak reached
/// in its last 10 ms may be missed.
pub fn wait_with_peak_rss(mut child: Child) -> std::io::Result<(ExitStatus, u64)> {
    let pid = child.id();
    let mut peak = 0;
    loop {
        // Read before `try_wait`: the pid is ours until it reaps the child.
        peak = peak.max(peak_rss_bytes(pid).unwrap_or(0));
        if let Some(status) = child.try_wait()? {
            return Ok((status, peak));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads a file to the end once, so that every timed pass finds it in the
/// page cache.
pub fn warm_cache(path: &Path) -> Result<()> {
    std::io::copy(&mut std::fs::File::open(path)?, &mut std::io::sink())?;
    Ok(())
}

/// Writes out what earlier rounds left in the page cache (each upload
/// leaves a gigabyte behind on its server's disk), so the kernel's
/// writeback does not fall on the next timed pass.
pub fn settle_disk() -> Result<()> {
    let status = std::process::Command::new("sync").status()?;
    if !status.success() {
        return Err(format!("sync failed ({status})").into());
    }
    Ok(())
}

/// The 1-minute load average (Linux), to tell a quiet machine from a busy one.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
