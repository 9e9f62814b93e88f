use std::net::SocketAddr;
use std::path::PathBuf;

use crate::out::out;
use anyhow::Context;
use owi_server::{Compat, Credentials, PostSignature, S3Settings, Server, ServerConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; loopback unless you say otherwise.
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Where the server keeps its database and uploads (default: in the
    /// platform's data directory).
    #[arg(long, env = "OWI_SERVER_DATA")]
    data: Option<PathBuf>,
    /// An external S3 endpoint (MinIO, AWS) for presigned uploads, with
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Without it the server
    /// runs its own store on a loopback port.
    #[arg(long, env = "OWI_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// The bucket presigned uploads go to.
    #[arg(long, env = "OWI_S3_BUCKET", default_value = "owi-uploads")]
    s3_bucket: String,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    s3_region: String,
    /// Where the embedded store listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    s3_addr: SocketAddr,
    /// How presigned POST policies are signed: v4, or v2 as the real server
    /// does in some regions.
    #[arg(long, value_enum, default_value_t = Signature::V4)]
    s3_post_signature: Signature,
    /// The largest presigned POST signed, in MiB (the embedded store holds a
    /// POST in memory; larger files go by multipart).
    #[arg(long, default_value_t = 256)]
    s3_post_max_mib: u64,
    /// Behave like another server wherever a client can tell:
    /// open-wearables-0.6 gives runs ids of their own, reports nothing
    /// about S3 imports, has no multipart routes and takes uploads for any
    /// user id, as that release does.
    #[arg(long, value_enum, default_value_t = CompatArg::Native)]
    compat: CompatArg,
    /// Keep S3 uploads without importing them, as a real server does whose
    /// bucket notifications are not set up.
    #[arg(long)]
    no_s3_imports: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CompatArg {
    Native,
    #[value(name = "open-wearables-0.6")]
    OpenWearables06,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Signature {
    V4,
    V2,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let data = match args.data {
        Some(dir) => dir,
        None => crate::paths::data_dir()?.join("server"),
    };
    let mut config = ServerConfig::new(&data);
    config.admin_email = std::env::var("OWI_ADMIN_EMAIL").ok();
    config.admin_password = std::env::var("OWI_ADMIN_PASSWORD").ok();
    config.api_key = std::env::var("OWI_API_KEY").ok();
    config.s3 = S3Settings {
        endpoint: args.s3_endpoint,
        bucket: args.s3_bucket,
        region: args.s3_region,
        credentials: match (
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Ok(access_key), Ok(secret_key)) => Some(Credentials {
                access_key,
                secret_key,
            }),
            _ => None,
        },
        embedded_addr: args.s3_addr,
        post_signature: match args.s3_post_signature {
            Signature::V4 => PostSignature::V4,
            Signature::V2 => PostSignature::V2,
        },
        post_max_bytes: args.s3_post_max_mib.saturating_mul(1 << 20),
        ..S3Settings::default()
    };
    let compat = match args.compat {
        CompatArg::Native => Compat::Native,
        CompatArg::OpenWearables06 => Compat::OpenWearables06,
    };
    config.compat = compat;
    config.s3_imports = !args.no_s3_imports;
    let server = Server::open(config).with_context(|| format!("preparing {}", data.display()))?;
    if let Some(first) = server.bootstrap() {
        // Shown once, on the first start; never logged.
        out!("created the developer account {}", first.email)?;
        if let Some(password) = &first.password {
            out!("  password: {password}")?;
        }
        if let Some(key) = &first.api_key {
            out!("  API key:  {key}")?;
        }
        out!("  (shown only now: keep them somewhere safe)")?;
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let addr = listener.local_addr()?;
        out!("serving the Open Wearables import API on http://{addr}/api/v1 (Ctrl-C stops)")?;
        if !addr.ip().is_loopback() {
            eprintln!(
                "warning: {addr} is reachable from other computers over plain HTTP: passwords, \
                 API keys and health data cross the network unencrypted. Put it behind TLS \
                 (a reverse proxy such as Caddy or nginx) before using it beyond this machine"
            );
            tracing::warn!(%addr, "serving plain HTTP beyond loopback");
        }
        if compat != Compat::Native {
            out!("behaving like {}", compat.name())?;
        }
        out!(
            "presigned uploads go to {}/{}",
            server.s3_endpoint(),
            server.s3_bucket()
        )?;
        server.run(listener, stop_signal()).await?;
        anyhow::Ok(())
    })
}

/// Ctrl-C, or SIGTERM (a service manager stopping us): either stops the
/// server gracefully, the import in hand staying queued.
pub(crate) async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
