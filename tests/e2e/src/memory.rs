//! What the app and its WebKit processes hold in memory, from /proc.

use super::*;

/// The resident set (current, peak) in kB of the process running `binary`
/// with `marker` among its arguments, and of the WebKit processes it
/// started.
pub fn memory_of(binary: &Path, marker: &str) -> Option<Memory> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let mut app = None;
    let mut all: Vec<(u32, u32, String)> = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let ppid = field(&status, "PPid:").unwrap_or(0) as u32;
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| Path::new(a) == binary) && args.iter().any(|a| a == marker)
        {
            app = Some(pid);
        }
        all.push((pid, ppid, status));
    }
    let app = app?;
    let kb = |pid: u32, key: &str| {
        all.iter()
            .find(|(p, _, _)| *p == pid)
            .and_then(|(_, _, s)| field(s, key))
            .unwrap_or(0)
    };
    let web: u64 = all
        .iter()
        .filter(|(_, ppid, _)| *ppid == app)
        .map(|(pid, _, _)| kb(*pid, "VmRSS:"))
        .sum();
    Some(Memory {
        app_rss_kb: kb(app, "VmRSS:"),
        app_peak_kb: kb(app, "VmHWM:"),
        children_rss_kb: web,
    })
}

/// What [`memory_of`] found.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub app_rss_kb: u64,
    pub app_peak_kb: u64,
    /// WebKit's web and network processes, started by the app.
    pub children_rss_kb: u64,
}

fn field(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}
