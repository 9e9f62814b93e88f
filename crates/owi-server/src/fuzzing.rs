//! For the fuzz targets only (`crates/owi-fuzz-cases`): the API and the
//! embedded store as in-process services, so fuzzed requests reach their
//! parsers without a socket of their own.

use axum::Router;
use axum::http::StatusCode;

use crate::{Error, Server, ServerConfig, router};

/// A server opened on a data directory, its two request handlers ready.
#[derive(Debug)]
pub struct Services {
    /// `/api/v1/...`, as `run` serves it.
    pub api: Router,
    /// The embedded object store (POST uploads, multipart), as it serves.
    pub store: Router,
    /// The store's bucket.
    pub bucket: String,
    /// Keeps the databases and the store's directory open.
    _server: Server,
}

/// Opens `config` like [`Server::open`]; call inside a Tokio runtime.
/// The store also serves its loopback port on that runtime, since the
/// API's multipart endpoints reach it over HTTP as the real server does.
pub fn services(config: ServerConfig) -> Result<Services, Error> {
    let mut server = Server::open(config)?;
    let api = router(server.state.clone());
    let store = match server.store.take() {
        Some(store) => {
            let service = store.service();
            tokio::spawn(store.run(std::future::pending()));
            Router::new().fallback_service(axum::error_handling::HandleError::new(
                service,
                |_: s3s::HttpError| async { (StatusCode::INTERNAL_SERVER_ERROR, "InternalError") },
            ))
        }
        None => Router::new(),
    };
    Ok(Services {
        api,
        store,
        bucket: server.state.objects.bucket.clone(),
        _server: server,
    })
}
