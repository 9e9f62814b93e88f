//! `owi store`: the bundled server's S3-compatible object store on its own,
//! for a self-hosted Open Wearables server (or its tests) that needs one.
//! Each completed upload is printed as a JSON line on stdout, the way S3
//! announces new objects to a bucket's notification target.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::out::out;
use anyhow::Context;
use owi_server::Credentials;
use owi_server::s3::store::{EmbeddedStore, StoreOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder that holds the buckets (one subfolder each).
    #[arg(long)]
    dir: PathBuf,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:9000")]
    addr: SocketAddr,
    /// The bucket to create if it is missing.
    #[arg(long, default_value = "owi-uploads")]
    bucket: String,
    /// The largest presigned POST accepted, in MiB (held in memory).
    #[arg(long, default_value_t = 1024)]
    post_max_mib: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let credentials = match (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Ok(access_key), Ok(secret_key)) => Credentials {
            access_key,
            secret_key,
        },
        _ => anyhow::bail!("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: the store's keys"),
    };
    let options = StoreOptions {
        root: args.dir.clone(),
        bucket: args.bucket,
        addr: args.addr,
        credentials,
        post_max_bytes: args.post_max_mib.saturating_mul(1 << 20),
        // Covers the longest POST policy a server signs (an hour) and more.
        max_skew_secs: 2 * 86_400,
    };
    let (created, mut notices) = tokio::sync::mpsc::unbounded_channel();
    let store = EmbeddedStore::bind(&options, created)
        .with_context(|| format!("preparing the store in {}", args.dir.display()))?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        out!("serving an S3-compatible store on {}", store.endpoint())?;
        std::io::stdout().flush()?;
        tokio::spawn(async move {
            let mut out = std::io::stdout();
            while let Some(notice) = notices.recv().await {
                let line = serde_json::json!({"bucket": notice.bucket, "key": notice.key});
                // A reader that went away is no reason to stop storing.
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            }
        });
        store.run(crate::serve::stop_signal()).await?;
        anyhow::Ok(())
    })
}
