//! `owi history`: what was sent where, from the local store.

use std::path::PathBuf;

use crate::out::out;
use owi_store::{Outcome, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, env = "OWI_DB")]
    db: Option<PathBuf>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let store = Store::open(&crate::paths::database(args.db)?)?;
    let uploads = store.uploads(args.limit)?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&uploads)?)?;
        return Ok(());
    }
    if uploads.is_empty() {
        out!("nothing sent yet")?;
        return Ok(());
    }
    for u in &uploads {
        let when = jiff::Timestamp::from_second(u.started_at)
            .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let piece = match (u.piece, u.pieces) {
            (Some(i), Some(n)) if n > 1 => format!(" (piece {i} of {n})"),
            _ => String::new(),
        };
        let what = match (u.delta, u.filters.as_deref()) {
            (None, _) => String::new(),
            (Some(delta), filters) => {
                let scope = if delta { "new only" } else { "everything" };
                match filters {
                    Some(f) => format!(" [{scope}; {f}]"),
                    None => format!(" [{scope}]"),
                }
            }
        };
        out!(
            "{when}  {:<29} {:<9} {}{piece}{what} → {} user {}{}",
            outcome_words(u.outcome),
            u.method.as_deref().unwrap_or("-"),
            u.source_path,
            u.server,
            u.user_id,
            u.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

/// How an upload ended, as a person reads it.
fn outcome_words(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Sending => "sending (interrupted?)",
        Outcome::Sent => "uploaded, awaiting the server",
        Outcome::Imported => "imported",
        Outcome::Failed => "failed",
        Outcome::Cancelled => "cancelled",
    }
}
