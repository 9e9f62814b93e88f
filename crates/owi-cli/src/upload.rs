//! `owi upload`: send an export to a user's import and follow it to the
//! end. The flow is `owi_client::Importer`'s; this asks and prints.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use owi_client::{ImportRequest, Importer, Method, Step};
use owi_progress::CancelToken;
use owi_store::{Store, UploadRecord};

use crate::bar::Bar;
use crate::connect::{connect, runtime};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// export.zip or export.xml.
    path: PathBuf,
    /// The user to import for (see `owi users`).
    #[arg(long)]
    user: String,
    /// How to send: auto picks direct up to 10 MB, else multipart where the
    /// server offers it, else a presigned POST.
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    method: MethodArg,
    /// Return once the upload is sent, without following the import.
    #[arg(long)]
    no_wait: bool,
    /// Send it even if this export already went to this user.
    #[arg(long)]
    force: bool,
    /// Send the XML exactly as it is, DTD and all (by default the DTD and
    /// characters XML forbids are blanked, so strict servers accept it).
    #[arg(long)]
    no_clean: bool,
    /// Start afresh instead of going on with an interrupted upload.
    #[arg(long)]
    restart: bool,
    /// The local database where the upload history is kept.
    #[arg(long, env = "OWI_DB")]
    db: Option<PathBuf>,
    /// Print the report as JSON on stdout (steps go to stderr as JSON lines).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum MethodArg {
    Auto,
    Direct,
    S3,
    Multipart,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let method = match args.method {
        MethodArg::Auto => Method::Auto,
        MethodArg::Direct => Method::Direct,
        MethodArg::S3 => Method::S3,
        MethodArg::Multipart => Method::Multipart,
    };
    runtime()?.block_on(async move {
        let client = connect().await?;
        let store = Store::open(&crate::paths::database(args.db.clone())?)?;
        let importer = Importer::new(client, Arc::new(Mutex::new(store)));
        let request = ImportRequest {
            method,
            clean: !args.no_clean,
            wait: !args.no_wait,
            resume: !args.restart,
            ..ImportRequest::new(&args.path, &args.user)
        };
        let resuming = request.resume && importer.interrupted(&args.path, &args.user)?.is_some();
        if !args.force
            && !resuming
            && let Some(previous) = importer.already_sent(&args.path, &args.user)?
        {
            ask_again(&args.path, &previous)?;
        }

        let cancel = CancelToken::new();
        let all_sent = Arc::new(AtomicBool::new(false));
        let json = args.json;
        let sent_flag = all_sent.clone();
        let on_step = move |step: &Step| {
            if let Step::Sent { piece, pieces, .. } = step
                && piece == pieces
            {
                sent_flag.store(true, Ordering::Relaxed);
            }
            if json {
                if let Ok(line) = serde_json::to_string(step) {
                    eprintln!("{line}");
                }
            } else {
                say(step);
            }
        };
        let bar = Bar::new();
        let work = importer.run(&request, &bar, &on_step, &cancel);
        tokio::pin!(work);
        let report = loop {
            tokio::select! {
                report = &mut work => break report?,
                interrupted = tokio::signal::ctrl_c() => {
                    interrupted?;
                    if all_sent.load(Ordering::Relaxed) {
                        // The upload is done: Ctrl-C only stops watching.
                        anyhow::bail!(
                            "stopped following; the server goes on (owi status --user {} --follow)",
                            args.user
                        );
                    }
                    cancel.cancel();
                }
            }
        };
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else if args.no_wait {
            println!(
                "sent; follow the import with: owi status --user {} --follow",
                args.user
            );
        } else {
            let items = report.items().map_or("?".to_string(), |n| n.to_string());
            match report.compared {
                Some((found, expected)) => {
                    println!(
                        "imported: {items} items; {found} of {expected} workouts on the server"
                    )
                }
                None => println!("imported: {items} items"),
            }
        }
        Ok(())
    })
}

/// One line on stderr per step.
fn say(step: &Step) {
    match step {
        Step::Checked(c) => {
            eprintln!(
                "checked: {} records and {} workouts for the server; {} items it passes over",
                c.records_imported, c.workouts, c.items_ignored
            );
            let ignored: Vec<String> = c
                .ignored
                .iter()
                .take(5)
                .map(|(what, n)| format!("{what} ({n})"))
                .collect();
            if !ignored.is_empty() {
                eprintln!("  passed over: {}", ignored.join(", "));
            }
            if c.needs_cleaning {
                eprintln!("  its DTD or characters XML forbids are blanked before sending");
            }
        }
        Step::Plan {
            method,
            pieces,
            why,
        } => {
            let method = format!("{method:?}").to_lowercase();
            if *pieces > 1 {
                eprintln!(
                    "sending by {method} in {pieces} pieces (larger than one upload takes): {why}"
                );
            } else {
                eprintln!("sending by {method}: {why}");
            }
        }
        Step::Resuming {
            pieces_sent,
            parts_stored,
        } => eprintln!(
            "going on with the interrupted upload: {pieces_sent} pieces sent, {parts_stored} parts stored"
        ),
        Step::Sending { .. } => {}
        Step::Sent {
            piece,
            pieces,
            uploaded,
        } => {
            let of = if *pieces > 1 {
                format!(" piece {piece} of {pieces}")
            } else {
                String::new()
            };
            eprintln!("sent{of}: {} bytes as {}", uploaded.bytes, uploaded.name);
        }
        Step::Server { event, .. } => eprintln!(
            "server: {}{}",
            event.stage,
            event
                .items_processed
                .map(|n| format!(" ({n} items)"))
                .unwrap_or_default()
        ),
        Step::Compared { found, expected } => {
            eprintln!("{found} of {expected} workouts on the server")
        }
    }
}

/// This export already reached this user: ask on a terminal, refuse
/// otherwise (a script says `--force`).
fn ask_again(path: &std::path::Path, previous: &UploadRecord) -> anyhow::Result<()> {
    let when = jiff::Timestamp::from_second(previous.started_at)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let what = format!(
        "{} already went to this user on {when} ({:?})",
        path.display(),
        previous.outcome
    );
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("{what}; --force sends it again");
    }
    eprint!("{what}. Send it again? The server keeps no duplicates. [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    anyhow::ensure!(matches!(answer.trim(), "y" | "Y" | "yes"), "not sent again");
    Ok(())
}
