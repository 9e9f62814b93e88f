//! `owi status`: what the server says about a user's imports, once or
//! followed live; and a look at uploads nobody saw imported yet, which are
//! marked imported in the history once the server has their data.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use owi_client::{FollowOptions, Importer, Rechecked, SyncEvent};
use owi_store::{Outcome, Store};

use crate::connect::{connect, runtime};
use crate::out::out;
use crate::upload::count;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The user whose imports to show.
    #[arg(long)]
    user: String,
    /// Follow the newest import until it ends.
    #[arg(long)]
    follow: bool,
    #[arg(long)]
    json: bool,
    /// The local database where the upload history is kept.
    #[arg(long, env = "OWI_DB")]
    db: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // Opened (and migrated) before the runtime starts: no async thread waits on SQLite.
    let store = Store::open(&crate::paths::database(args.db.clone())?)?;
    runtime()?.block_on(async move {
        let client = connect().await?;
        let rechecked = Importer::new(client.clone(), Arc::new(Mutex::new(store)))
            .recheck(&args.user)
            .await?;
        let runs = client.runs(&args.user, 20).await?;
        if !args.follow {
            if args.json {
                let all = serde_json::json!({"runs": runs, "uploads": rechecked});
                out!("{}", serde_json::to_string_pretty(&all)?)?;
                return Ok(());
            }
            for upload in &rechecked {
                out!("{}", upload_line(upload))?;
            }
            if runs.is_empty() {
                out!("no imports for this user yet")?;
            } else {
                for run in &runs {
                    out!("{}", line(run))?;
                }
            }
            return anyhow::Ok(());
        }
        let Some(newest) = runs.first() else {
            anyhow::bail!("no imports for this user to follow");
        };
        if newest.is_final() {
            if args.json {
                out!("{}", serde_json::to_string(newest)?)?;
            } else {
                out!("{}", line(newest))?;
            }
            anyhow::ensure!(newest.succeeded(), "the newest import failed");
            return Ok(());
        }
        // The first failed write (a closed pipe) is kept and ends the command.
        let mut unwritten: Option<anyhow::Error> = None;
        let last = client
            .follow_run(&args.user, &newest.run_id, FollowOptions::default(), |e| {
                let written = if args.json {
                    out!("{}", serde_json::to_string(e).unwrap_or_default())
                } else {
                    out!("{}", line(e))
                };
                if let Err(e) = written {
                    unwritten.get_or_insert(e);
                }
            })
            .await?;
        if let Some(e) = unwritten {
            return Err(e);
        }
        if !last.succeeded() {
            anyhow::bail!(
                "the import failed: {}",
                last.error
                    .as_deref()
                    .or(last.message.as_deref())
                    .unwrap_or("no reason given")
            );
        }
        Ok(())
    })
}

/// An upload sent earlier whose import nobody had seen end.
fn upload_line(r: &Rechecked) -> String {
    let name = r.upload.name.as_deref().unwrap_or("?");
    let held = r
        .on_server
        .map(|on| {
            let samples = on
                .samples
                .map(|n| format!(", {} samples", count(n)))
                .unwrap_or_default();
            format!(
                " ({} workouts{samples} in its span on the server)",
                count(on.workouts)
            )
        })
        .unwrap_or_default();
    match r.outcome {
        Outcome::Imported => format!("{name}: imported{held}"),
        Outcome::Failed => format!(
            "{name}: the server could not import it: {}",
            r.error.as_deref().unwrap_or("no reason given")
        ),
        _ => format!("{name}: uploaded, awaiting the server{held}"),
    }
}

fn line(e: &SyncEvent) -> String {
    let progress = e
        .progress
        .map(|p| format!("{:>3.0} %", p * 100.0))
        .unwrap_or_else(|| "    ".into());
    let items = e
        .items_processed
        .map(|n| format!("{n} items"))
        .unwrap_or_default();
    let said = e.error.as_deref().or(e.message.as_deref()).unwrap_or("");
    format!(
        "{}  {:<10} {:<11} {progress}  {items:<14} {said}",
        e.run_id, e.stage, e.status
    )
}
