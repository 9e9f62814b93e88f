//! The bundled server started inside another program (the desktop app): on
//! a free loopback port, with an API key only that process knows, so a
//! person can try the whole flow with no account anywhere and nothing
//! secret is written down.

use std::path::Path;

use tokio::net::TcpListener;

use crate::{Error, Server, ServerConfig, auth};

/// A running in-process server. Dropping it stops it; [`Local::stop`]
/// also waits for the import in hand to be put back in the queue.
pub struct Local {
    url: String,
    key: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), Error>>>,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("url", &self.url)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Local {
    /// Opens (or creates) the server's data in `data_dir` and serves it on
    /// `127.0.0.1`, at the port it had last time when that is free, else at
    /// one the system picks (then remembered).
    ///
    /// The same address each launch is what lets an upload interrupted by
    /// quitting the app go on at the next launch: uploads are matched to
    /// their server by its address.
    pub async fn start(data_dir: &Path) -> Result<Local, Error> {
        let key = auth::new_api_key();
        let mut config = ServerConfig::new(data_dir);
        config.session_key = Some(key.clone());
        // Opening migrates and may hash a password: not on the runtime.
        let server = tokio::task::spawn_blocking(move || Server::open(config))
            .await
            .map_err(|e| Error::Config(format!("starting the local server failed: {e}")))??;
        let listener = bind_remembered(&data_dir.join(PORT_FILE)).await?;
        let url = format!("http://{}", listener.local_addr().map_err(Error::Listen)?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(listener, async {
            let _ = stopped.await;
        }));
        tracing::info!(%url, "the local server is up");
        Ok(Local {
            url,
            key,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key this process talks to it with (valid until it stops).
    pub fn api_key(&self) -> &str {
        &self.key
    }

    /// Stops serving and waits for the server to wind down.
    pub async fn stop(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| Error::Config(format!("the local server failed: {e}")))?,
            None => Ok(()),
        }
    }
}

/// Where the port of the last launch is kept, in the server's data folder.
const PORT_FILE: &str = "local-port";

async fn bind_remembered(file: &Path) -> Result<TcpListener, Error> {
    let last = std::fs::read_to_string(file)
        .ok()
        .and_then(|text| text.trim().parse::<u16>().ok())
        .filter(|port| *port != 0);
    if let Some(port) = last {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => return Ok(listener),
            Err(e) => tracing::info!(
                port,
                "the local server's last port is taken ({e}): using another"
            ),
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(Error::Listen)?;
    let port = listener.local_addr().map_err(Error::Listen)?.port();
    // Not fatal: without it the next launch picks another port, and only
    // resuming an interrupted upload suffers.
    if let Err(e) = std::fs::write(file, port.to_string()) {
        tracing::warn!(file = %file.display(), "could not remember the local server's port: {e}");
    }
    Ok(listener)
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
