//! `cargo bench -p owi-cli --bench delta`: what sending only what is new
//! costs before a byte is sent, on the 1 GB benchmark export.
//!
//! Each phase runs in its own process (this binary again), so its peak RSS
//! is its own:
//! - the plain pre-flight check, as every upload ran it before the ledger;
//! - recording a ledger of 98 % of the export's items (every 50th left
//!   out, as if the phone had gained them since), stored and confirmed;
//! - the delta check: the ledger loaded from the store, then one read
//!   that chooses what goes (the 2 % left out) and builds the selection;
//! - the preview (`owi inspect`'s ingest), which keeps the check's log;
//! - the delta of the previewed export: the ledger and the kept check
//!   loaded, what goes chosen from the log and only its bytes read (here
//!   the worst case: the items that go are spread through the file);
//! - a check with filters (the heart data only, sent again whole), read,
//!   then chosen from the kept log;
//! - the ledger's confirmation of an upload of the whole previewed export
//!   to a user with nothing from us: its items pending as the kept check
//!   whose log holds them, then as their identities (each timed alone).
//!
//! The goals: the delta check within 130 % of the plain one's time, with a
//! peak RSS of at most 150 MB; the previewed delta far below either.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

mod common;

use common::{Result, bench_export, load_average, wait_with_peak_rss, warm_cache};
use owi_export::{Choice, ExportSource, ReadOptions, SentItems, Share};
use owi_store::{Carried, Store};

const PHASE: &str = "OWI_DELTA_PHASE";
const SERVER: &str = "http://127.0.0.1:8000";
const USER: &str = "00000000-0000-4000-8000-000000000000";

fn main() {
    let result = match std::env::var(PHASE) {
        Ok(phase) => child(&phase),
        Err(_) => run(),
    };
    if let Err(e) = result {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let export = bench_export()?;
    let mb = export.xml_bytes as f64 / 1e6;
    println!(
        "export: {mb:.0} MB of XML, {} records; load {:.1}",
        export.records,
        load_average().unwrap_or(f64::NAN)
    );
    warm_cache(&export.xml)?;
    let db = export.dir.join("bench-delta.sqlite");
    let _ = std::fs::remove_file(&db);
    println!(
        "{:<52} {:>8} {:>9} {:>10}  outcome",
        "", "seconds", "MB/s", "peak RSS"
    );
    let (plain, plain_rss, said) = phase("plain", &export.xml, &db)?;
    row("plain pre-flight check", plain, mb, plain_rss, &said);
    let (secs, rss, said) = phase("ledger", &export.xml, &db)?;
    row("recording the ledger (check + store)", secs, mb, rss, &said);
    let (delta, delta_rss, said) = phase("delta", &export.xml, &db)?;
    row(
        "delta check (ledger loaded + check)",
        delta,
        mb,
        delta_rss,
        &said,
    );
    let (secs, rss, said) = phase("preview", &export.xml, &db)?;
    row(
        "the preview (ingest, keeps the check)",
        secs,
        mb,
        rss,
        &said,
    );
    let (previewed, previewed_rss, said) = phase("previewed", &export.xml, &db)?;
    row(
        "delta of the previewed export (ledger + kept log)",
        previewed,
        mb,
        previewed_rss,
        &said,
    );
    let (filtered, rss, said) = phase("filtered", &export.xml, &db)?;
    row("heart data only, read", filtered, mb, rss, &said);
    let (kept_filtered, rss, said) = phase("previewed filtered", &export.xml, &db)?;
    row(
        "heart data only, of the previewed export",
        kept_filtered,
        mb,
        rss,
        &said,
    );
    let (secs, rss, said) = phase("confirm", &export.xml, &db)?;
    row("confirming a whole previewed upload", secs, mb, rss, &said);
    let added = (delta / plain - 1.0) * 100.0;
    println!(
        "the delta adds {added:.0} % to the check (goal ≤ 30 %), peak RSS {:.0} MB (goal ≤ 150 MB)",
        delta_rss as f64 / 1e6
    );
    println!(
        "previewed, the delta takes {:.2}× the delta check's time, peak RSS {:.0} MB",
        previewed / delta,
        previewed_rss as f64 / 1e6
    );
    println!(
        "previewed, the filtered check takes {:.2}× the read's time",
        kept_filtered / filtered
    );
    let _ = std::fs::remove_file(&db);
    Ok(())
}

fn row(label: &str, secs: f64, mb: f64, rss: u64, said: &str) {
    println!(
        "{label:<52} {secs:>8.2} {:>9.0} {:>7.0} MB  {said}",
        mb / secs,
        rss as f64 / 1e6
    );
}

/// Runs one phase in a child process: its wall time, peak RSS and the
/// line it printed.
fn phase(name: &str, xml: &Path, db: &Path) -> Result<(f64, u64, String)> {
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe()?)
        .env(PHASE, name)
        .arg(xml)
        .arg(db)
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take();
    let (status, rss) = wait_with_peak_rss(child)?;
    let secs = started.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("phase {name} failed ({status})").into());
    }
    // One short line: it fits the pipe, so reading it after the wait is safe.
    let mut said = String::new();
    if let Some(mut out) = stdout {
        std::io::Read::read_to_string(&mut out, &mut said)?;
    }
    Ok((secs, rss, said.trim().to_string()))
}

fn child(phase: &str) -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(xml), Some(db)) = (args.next(), args.next()) else {
        return Err("usage: delta XML DB".into());
    };
    let source = ExportSource::open(Path::new(&xml))?;
    match phase {
        "plain" => {
            let check = owi_export::preflight(&source, ReadOptions::default())?;
            println!("{} items", check.items_sent());
        }
        "ledger" => {
            let everything = Share {
                include_me: true,
                ..Share::default()
            };
            let choice = Choice {
                share: &everything,
                sent: None,
                tally: false,
            };
            let check = owi_export::preflight_choosing(&source, ReadOptions::default(), choice)?;
            let ids = check
                .selection
                .as_ref()
                .and_then(|s| s.identities())
                .unwrap_or_default();
            let kept: Vec<u64> = ids
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 50 != 0)
                .map(|(_, id)| *id)
                .collect();
            let store = Store::open(Path::new(&db))?;
            store.ledger_pend(
                "bench",
                SERVER,
                USER,
                Carried::Listed(&kept),
                &check.workout_keys,
            )?;
            store.ledger_confirm("bench")?;
            println!("{} items in the ledger", kept.len());
        }
        "delta" => {
            let store = Store::open(Path::new(&db))?;
            let ledger = store.ledger(SERVER, USER)?.ok_or("no ledger")?;
            let mut sent: SentItems = ledger.items.into_iter().collect();
            let choice = Choice {
                share: &Share::default(),
                sent: Some(&mut sent),
                tally: false,
            };
            let check = owi_export::preflight_choosing(&source, ReadOptions::default(), choice)?;
            println!(
                "{} items go, {} sent before",
                check.items_sent(),
                check.left_out.sent_before
            );
        }
        "preview" => {
            let mut store = Store::open(Path::new(&db))?;
            let ingest = store.ingest(Path::new(&xml), owi_store::IngestOptions::default())?;
            println!("{} records", ingest.stats.records);
        }
        "previewed" => {
            let store = Store::open(Path::new(&db))?;
            let ledger = store.ledger(SERVER, USER)?.ok_or("no ledger")?;
            let mut sent: SentItems = ledger.items.into_iter().collect();
            let kept = store.kept_check(Path::new(&xml))?.ok_or("no check kept")?;
            let choice = Choice {
                share: &Share::default(),
                sent: Some(&mut sent),
                tally: false,
            };
            let check = kept
                .choose(std::sync::Arc::new(source), choice, ReadOptions::default())?
                .ok_or("no log kept")?;
            println!(
                "{} items go, {} sent before",
                check.items_sent(),
                check.left_out.sent_before
            );
        }
        "filtered" | "previewed filtered" => {
            let heart = Share {
                only: Some(owi_export::resolve_kinds(["heart"])?),
                ..Share::default()
            };
            let choice = Choice {
                share: &heart,
                sent: None,
                tally: false,
            };
            let check = match phase {
                "filtered" => {
                    owi_export::preflight_choosing(&source, ReadOptions::default(), choice)?
                }
                _ => {
                    let store = Store::open(Path::new(&db))?;
                    let kept = store.kept_check(Path::new(&xml))?.ok_or("no check kept")?;
                    kept.choose(std::sync::Arc::new(source), choice, ReadOptions::default())?
                        .ok_or("no log kept")?
                }
            };
            println!(
                "{} items go, {} left out",
                check.items_sent(),
                check.left_out.by_kind()
            );
        }
        "confirm" => {
            let store = Store::open(Path::new(&db))?;
            let (row, kept) = store
                .kept_check_row(Path::new(&xml))?
                .ok_or("no check kept")?;
            let identities = kept.into_went().ok_or("a damaged log")?;
            let timed = |user: &str, items: Carried<'_>| -> Result<f64> {
                store.ledger_pend(user, SERVER, user, items, &[])?;
                let started = Instant::now();
                store.ledger_confirm(user)?;
                Ok(started.elapsed().as_secs_f64())
            };
            let from_log = timed("from-log", Carried::KeptLog(row))?;
            let listed = timed("listed", Carried::Listed(&identities))?;
            println!(
                "{} items confirmed: from the kept log {from_log:.2} s, listed {listed:.2} s",
                identities.len()
            );
        }
        other => return Err(format!("no phase {other}").into()),
    }
    Ok(())
}
