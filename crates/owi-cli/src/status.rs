//! `owi status`: what the server says about a user's imports, once or
//! followed live.

use owi_client::{FollowOptions, SyncEvent};

use crate::connect::{connect, runtime};

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
}

pub fn run(args: Args) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let client = connect().await?;
        let runs = client.runs(&args.user, 20).await?;
        if !args.follow {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else if runs.is_empty() {
                println!("no imports for this user yet");
            } else {
                for run in &runs {
                    println!("{}", line(run));
                }
            }
            return anyhow::Ok(());
        }
        let Some(newest) = runs.first() else {
            anyhow::bail!("no imports for this user to follow");
        };
        if newest.is_final() {
            if args.json {
                println!("{}", serde_json::to_string(newest)?);
            } else {
                println!("{}", line(newest));
            }
            anyhow::ensure!(newest.succeeded(), "the newest import failed");
            return Ok(());
        }
        let last = client
            .follow_run(&args.user, &newest.run_id, FollowOptions::default(), |e| {
                if args.json {
                    println!("{}", serde_json::to_string(e).unwrap_or_default());
                } else {
                    println!("{}", line(e));
                }
            })
            .await?;
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
