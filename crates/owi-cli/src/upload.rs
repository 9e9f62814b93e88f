//! `owi upload`: send an export to a user's import and follow it to the
//! end. The flow is `owi_client::Importer`'s; this asks and prints.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use owi_client::{Ending, FollowOptions, ImportReport, ImportRequest, Importer, Method, Step};
use owi_progress::CancelToken;
use owi_store::{Store, UploadRecord};

use crate::bar::Bar;
use crate::choice::{ShareArgs, left_out_lines, print_plan};
use crate::connect::{connect, runtime};
use crate::out::out;

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
    /// With --all, send it even if this export already went to this user.
    #[arg(long)]
    force: bool,
    /// Send the XML exactly as it is, DTD and all (by default the DTD and
    /// characters XML forbids are blanked, so strict servers accept it).
    #[arg(long)]
    no_clean: bool,
    /// Start afresh instead of going on with an interrupted upload.
    #[arg(long)]
    restart: bool,
    /// Stop waiting when the server has neither reported on the import
    /// nor stored any more of its data for this many seconds (exit code 4).
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    give_up_after: u64,
    /// The local database where the upload history is kept.
    #[arg(long, env = "OWI_DB")]
    db: Option<PathBuf>,
    /// Send nothing: print what would go (by type, workouts, bytes) and
    /// what the filters and earlier uploads leave out.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    share: ShareArgs,
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
    let share = args.share.share()?;
    // Opened (and migrated) before the runtime starts: no async thread waits on SQLite.
    let store = Store::open(&crate::paths::database(args.db.clone())?)?;
    runtime()?.block_on(async move {
        let client = connect().await?;
        let follow = FollowOptions {
            silence: std::time::Duration::from_secs(args.give_up_after),
            ..FollowOptions::default()
        };
        let importer = Importer::new(client, Arc::new(Mutex::new(store))).with_follow(follow);
        let request = ImportRequest {
            method,
            clean: !args.no_clean,
            wait: !args.no_wait,
            resume: !args.restart,
            delta: !args.share.all,
            share,
            ..ImportRequest::new(&args.path, &args.user)
        };
        let cancel = CancelToken::new();
        if args.dry_run {
            let mut plan = importer.plan(&request, &Bar::new(), &cancel).await?;
            if let Some(forgot) = &mut plan.server_forgot {
                forgot.push_str(": send everything again with --all");
            }
            if args.json {
                out!("{}", serde_json::to_string_pretty(&plan)?)?;
            } else {
                print_plan(&plan, &args.user)?;
            }
            return Ok(());
        }
        let resuming = request.resume
            && importer
                .interrupted(&args.path, &args.user)
                .await?
                .is_some();
        // Only what is new goes by default: with a ledger, the same export
        // again sends nothing, so there is nothing to ask.
        let everything = args.share.all || importer.ledger(&args.user).await?.is_none();
        if everything
            && !args.force
            && !resuming
            && let Some(previous) = importer.already_sent(&args.path, &args.user).await?
        {
            ask_again(&args.path, &previous)?;
        }

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
                report = &mut work => break report.map_err(|e| match e {
                    owi_client::Error::ServerForgot { .. } => {
                        anyhow::anyhow!("{e}: send everything again with --all")
                    }
                    e => e.into(),
                })?,
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
            out!("{}", serde_json::to_string_pretty(&report)?)?;
        } else {
            out!("{}", outcome(&report, &args.user))?;
        }
        if report.ending == Ending::Awaiting {
            return Err(Unconfirmed(awaiting(
                &report,
                importer.client().server().origin(),
                &args.user,
            ))
            .into());
        }
        Ok(())
    })
}

/// The upload reached the server, which has not imported it yet as far as
/// anyone can see (exit code 4).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unconfirmed(pub String);

/// The last line, for people.
fn outcome(report: &ImportReport, user: &str) -> String {
    let c = &report.checked;
    let held = report.on_server.map(|on| {
        let samples = on
            .samples
            .map(|n| format!(" and {} samples", count(n)))
            .unwrap_or_default();
        format!(
            "{} of {} workouts{samples} on the server",
            count(on.workouts.min(c.workouts)),
            count(c.workouts)
        )
    });
    match report.ending {
        Ending::Sent => format!("sent; follow the import with: owi status --user {user} --follow"),
        Ending::Reported => {
            let items = report.items().map_or("?".into(), count);
            let held = held.map(|h| format!("; {h}")).unwrap_or_default();
            format!(
                "imported: {items} items of {} expected{held}",
                count(c.items_for_server)
            )
        }
        Ending::Found => format!(
            "imported: the server said nothing, but the export's data is there ({})",
            held.unwrap_or_default()
        ),
        Ending::Awaiting => "uploaded; not imported yet as far as the server shows".into(),
        Ending::NothingNew if c.items_sent > 0 => format!(
            "nothing sent: the {} new items are of kinds the server passes over",
            count(c.items_sent)
        ),
        Ending::NothingNew if c.ledger_items.is_some() && c.left_out.sent_before > 0 => format!(
            "nothing new for this user: the {} items of this export you share{} are on the server from earlier uploads",
            count(c.left_out.sent_before),
            if c.filters.is_empty() {
                String::new()
            } else {
                format!(" ({})", c.filters)
            }
        ),
        Ending::NothingNew => "nothing to send: the filters let nothing of this export out".into(),
    }
}

/// What to tell a person whose upload the server keeps silent about.
fn awaiting(report: &ImportReport, server: &str, user: &str) -> String {
    let keys: Vec<&str> = report
        .pieces
        .iter()
        .filter_map(|p| p.uploaded.as_ref())
        .map(|u| u.key.as_deref().unwrap_or(&u.name))
        .collect();
    format!(
        "{server} holds the upload ({}) but has neither reported on its import nor stored any of its data. \
         A server that takes uploads into its S3 bucket imports them only when the bucket's notifications \
         reach it (Open Wearables uses AWS SNS): ask its operator whether they are set up. \
         `owi status --user {user}` looks again and marks the upload imported once its data is there",
        keys.join(", ")
    )
}

/// 12,345
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One line on stderr per step.
fn say(step: &Step) {
    match step {
        Step::Checked(c) => {
            let scope = match (c.delta(), c.filters.is_empty()) {
                (true, true) => " (new for this user)".to_string(),
                (true, false) => format!(" (new for this user; {})", c.filters),
                (false, true) => String::new(),
                (false, false) => format!(" ({})", c.filters),
            };
            eprintln!(
                "checked: {} records and {} workouts for the server ({} items as it counts them); {} items it passes over{scope}",
                count(c.records_imported),
                count(c.workouts),
                count(c.items_for_server),
                count(c.items_ignored)
            );
            for line in left_out_lines(c) {
                eprintln!("  left out: {line}");
            }
            let ignored: Vec<String> = c
                .ignored
                .iter()
                .take(5)
                .map(|(what, n)| format!("{what} ({n})"))
                .collect();
            if !ignored.is_empty() {
                eprintln!("  passed over: {}", ignored.join(", "));
            }
            if c.cleaned {
                eprintln!("  its DTD or characters XML forbids are blanked before sending");
            } else if c.needs_cleaning {
                eprintln!(
                    "  sent as it is (--no-clean): a strict server such as Open Wearables 0.6 refuses its DTD or the characters XML forbids"
                );
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
        Step::Waiting {
            names,
            silence_secs,
        } => eprintln!(
            "waiting for the server to import {}: its reports and the data arriving (giving up after {silence_secs} s with neither)",
            names.join(", ")
        ),
        Step::Server { piece, event } => {
            let items = event
                .items_processed
                .map(|n| format!(" ({} items)", count(n)))
                .unwrap_or_default();
            let said = event
                .error
                .as_deref()
                .or(event.message.as_deref())
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            eprintln!("server, piece {piece}: {}{items}{said}", event.stage)
        }
        Step::Arriving {
            on_server,
            workouts,
            samples,
        } => {
            let held = on_server
                .samples
                .map(|n| {
                    format!(
                        ", {} of {} samples",
                        count(n.min(*samples)),
                        count(*samples)
                    )
                })
                .unwrap_or_default();
            eprintln!(
                "on the server: {} of {} workouts{held}",
                count(on_server.workouts.min(*workouts)),
                count(*workouts)
            )
        }
        Step::Awaiting { waited_secs, .. } => {
            eprintln!("no word and no new data from the server for {waited_secs} s")
        }
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
