//! `owi upload`: send an export to a user's import and follow it to the
//! end. The engine is `owi_client`'s; this prints.

use std::path::PathBuf;

use owi_client::{FollowOptions, Method};
use owi_progress::CancelToken;

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
        let uploaded = client
            .upload(&args.path, &args.user, method, &Bar::new(), &cancel)
            .await?;
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
