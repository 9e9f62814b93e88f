//! Telling an Open Wearables API from any other HTTP service before
//! credentials are tried on it.

use reqwest::StatusCode;

use crate::api::{ErrorBody, Page, User};
use crate::client::Client;
use crate::error::Error;

impl Client {
    /// Asks, without credentials, whether an Open Wearables API answers
    /// here: it refuses in JSON (`{"detail": …}`), where another service
    /// answers in its own way (an S3 store's XML, a web page, a 404).
    pub(crate) async fn identify(&self) -> Result<(), Error> {
        let url = self.server().join("users")?;
        let response = self
            .api_http()
            .get(url)
            .query(&[("limit", 1)])
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        let status = response.status();
        let json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let body = response.text().await.unwrap_or_default();
        let speaks_api = json
            && match status.as_u16() {
                200 => serde_json::from_str::<Page<User>>(&body).is_ok(),
                401 | 403 => serde_json::from_str::<ErrorBody>(&body).is_ok(),
                _ => false,
            };
        if speaks_api
            || status.is_server_error()
            || status.is_redirection()
            || status == StatusCode::TOO_MANY_REQUESTS
        {
            // Trouble and redirects are told as such by the next request.
            return Ok(());
        }
        let said: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
        let said: String = said.chars().take(80).collect();
        Err(Error::NotOpenWearables {
            server: self.server().origin().to_string(),
            reason: if said.is_empty() {
                format!("it answered {status}")
            } else {
                format!("it answered {status}: {said}")
            },
        })
    }
}
