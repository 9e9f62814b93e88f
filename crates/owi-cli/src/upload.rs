//! `owi upload`: send an export to a user's import and follow it to the
//! end. The engine is `owi_client`'s; this prints.

use std::path::PathBuf;

use std::io::IsTerminal;

use anyhow::Context;
use owi_client::{FollowOptions, Method};
use owi_progress::CancelToken;
use owi_store::{NewUpload, Outcome, Store, Transfer, UploadRecord};

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
    /// The local database where the upload history is kept.
    #[arg(long, env = "OWI_DB")]
    db: Option<PathBuf>,
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
        let cancel = CancelToken::new();
        let (interrupted, mut on_interrupt) = tokio::sync::watch::channel(false);
        let on_ctrl_c = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_ctrl_c.cancel();
                let _ = interrupted.send(true);
            }
        });
        let store = Store::open(&crate::paths::database(args.db.clone())?)?;
        let export_key = owi_store::quick_key(&args.path)
            .with_context(|| format!("cannot read {}", args.path.display()))?;
        let server = client.server().origin().to_string();
        if !args.force
            && let Some(previous) = store.previous_upload(&export_key, &server, &args.user)?
        {
            ask_again(&args.path, &previous)?;
        }
        let source_path = args.path.display().to_string();
        let entry = store.upload_started(&NewUpload {
            export_key: &export_key,
            source_path: &source_path,
            server: &server,
            user_id: &args.user,
        })?;
        let uploaded = match client
            .upload(&args.path, &args.user, method, &Bar::new(), &cancel)
            .await
        {
            Ok(uploaded) => uploaded,
            Err(e) => {
                let outcome = if matches!(e, owi_client::Error::Cancelled) {
                    Outcome::Cancelled
                } else {
                    Outcome::Failed
                };
                store.upload_ended(entry, outcome, None, Some(&e.to_string()))?;
                return Err(e.into());
            }
        };
        store.upload_sent(
            entry,
            &Transfer {
                method: method_name(uploaded.method),
                name: &uploaded.name,
                file_key: uploaded.key.as_deref(),
                task_id: uploaded.task_id.as_deref(),
                parts: uploaded.parts,
                bytes: uploaded.bytes,
            },
        )?;
        if !args.json {
            eprintln!(
                "sent {} ({} bytes) by {:?} as {}",
                args.path.display(),
                uploaded.bytes,
                uploaded.method,
                uploaded.name
            );
        }
        if args.no_wait {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&uploaded)?);
            }
            return anyhow::Ok(());
        }
        // Said before waiting: if the server never reports, the upload's
        // key and name are still on record.
        if args.json {
            eprintln!("{}", serde_json::to_string(&uploaded)?);
        }
        let run = client
            .run_of(&args.user, &uploaded, std::time::Duration::from_secs(60))
            .await?;
        let follow = client.follow_run(&args.user, &run, FollowOptions::default(), |e| {
            if !args.json {
                eprintln!(
                    "server: {} {}",
                    e.stage,
                    e.items_processed
                        .map(|n| format!("({n} items)"))
                        .unwrap_or_default()
                );
            }
        });
        // The upload is done: Ctrl-C now only stops watching.
        let stopped = format!(
            "stopped following; the server goes on (owi status --user {} --follow)",
            args.user
        );
        let last = tokio::select! {
            last = follow => last?,
            _ = on_interrupt.wait_for(|stop| *stop) => anyhow::bail!(stopped),
        };
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "upload": uploaded, "import": last })
                )?
            );
        }
        let reason = last.error.as_deref().or(last.message.as_deref());
        let (outcome, error) = if last.succeeded() {
            (Outcome::Imported, None)
        } else {
            (Outcome::Failed, reason)
        };
        store.upload_ended(entry, outcome, last.items_processed, error)?;
        anyhow::ensure!(
            last.succeeded(),
            "the server could not import it: {}",
            last.error
                .as_deref()
                .or(last.message.as_deref())
                .unwrap_or("no reason given")
        );
        if !args.json {
            println!(
                "imported: {} items",
                last.items_processed
                    .map_or("?".to_string(), |n| n.to_string())
            );
        }
        Ok(())
    })
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Auto => "auto",
        Method::Direct => "direct",
        Method::S3 => "s3",
        Method::Multipart => "multipart",
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
