use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use owi_server::{Server, ServerConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; loopback unless you say otherwise.
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Where the server keeps its database and uploads (default: in the
    /// platform's data directory).
    #[arg(long, env = "OWI_SERVER_DATA")]
    data: Option<PathBuf>,
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
    let server = Server::open(config).with_context(|| format!("preparing {}", data.display()))?;
    if let Some(first) = server.bootstrap() {
        // Shown once, on the first start; never logged.
        println!("created the developer account {}", first.email);
        if let Some(password) = &first.password {
            println!("  password: {password}");
        }
        if let Some(key) = &first.api_key {
            println!("  API key:  {key}");
        }
        println!("  (shown only now: keep them somewhere safe)");
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let addr = listener.local_addr()?;
        println!("serving the Open Wearables import API on http://{addr}/api/v1 (Ctrl-C stops)");
        server.run(listener, stop_signal()).await?;
        anyhow::Ok(())
    })
}

/// Ctrl-C, or SIGTERM (a service manager stopping us): either stops the
/// server gracefully, the import in hand staying queued.
async fn stop_signal() {
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
