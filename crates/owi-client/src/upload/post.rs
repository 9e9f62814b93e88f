//! The presigned POST path: ask the API for a policy, then send the form
//! fields in the server's order with the file last, to the store.

use std::sync::atomic::Ordering;

use reqwest::Method as HttpMethod;
use serde::Deserialize;

use super::{Method, POST_LIMIT, Sending, Uploaded, retryable, storage_error};
use crate::client::{Client, Idempotent};
use crate::error::Error;

#[derive(Debug, Deserialize)]
struct Presigned {
    upload_url: String,
    form_fields: OrderedFields,
    file_key: String,
    #[serde(default)]
    max_file_size: Option<u64>,
}

/// Form fields in the order the server gave them (they must be sent so;
/// a `serde_json::Value` would sort them).
#[derive(Debug)]
struct OrderedFields(Vec<(String, String)>);

/// The `form_fields` of a presign answer, in order.
pub fn presigned_fields(answer: &str) -> Result<Vec<(String, String)>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Answer {
        form_fields: OrderedFields,
    }
    Ok(serde_json::from_str::<Answer>(answer)?.form_fields.0)
}

impl<'de> Deserialize<'de> for OrderedFields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = OrderedFields;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of form fields")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OrderedFields, A::Error> {
                let mut fields = Vec::new();
                while let Some(field) = map.next_entry::<String, String>()? {
                    fields.push(field);
                }
                Ok(OrderedFields(fields))
            }
        }
        d.deserialize_map(Visit)
    }
}

impl Client {
    pub(super) async fn send_post(&self, job: &Sending<'_>) -> Result<Uploaded, Error> {
        let Sending {
            source,
            user_id,
            name,
            sent,
            cancel,
            ..
        } = job;
        let len = source.len();
        if len > POST_LIMIT {
            return Err(Error::TooLarge {
                server: self.server().origin().to_string(),
                bytes: len,
                limit: POST_LIMIT,
            });
        }
        let mut delays = self.retry_policy().delays();
        let mut refreshed_policy = false;
        let mut attempt = 0;
        loop {
            let presigned: Presigned = self
                .send_json(
                    HttpMethod::POST,
                    &format!("users/{user_id}/import/apple/xml/s3"),
                    &(),
                    Some(&serde_json::json!({
                        "filename": name,
                        "expiration_seconds": 3600,
                        // The API's floor is 1 KiB.
                        "max_file_size": len.max(1024),
                    })),
                    Idempotent::Yes,
                )
                .await?;
            if let Some(max) = presigned.max_file_size
                && max < len
            {
                return Err(Error::TooLarge {
                    server: self.server().origin().to_string(),
                    bytes: len,
                    limit: max,
                });
            }
            let mut form = reqwest::multipart::Form::new();
            for (k, v) in presigned.form_fields.0 {
                form = form.text(k, v);
            }
            sent.store(0, Ordering::Relaxed);
            let file = reqwest::multipart::Part::stream_with_length(
                source.body(0, len, sent.clone(), None, cancel.clone()),
                len,
            )
            .file_name(name.to_string());
            form = form.part("file", file);
            // The store is not the API: no credentials go with this.
            let posting = async {
                let request = self.upload_http().post(&presigned.upload_url);
                let response = request.multipart(form).send().await;
                response.map_err(|e| self.transport(&e))
            };
            let response = self.watched(sent, len, cancel, posting).await;
            let mut retry_after = None;
            let error = match response {
                Ok(r) if r.status().is_success() => {
                    return Ok(Uploaded {
                        method: Method::S3,
                        bytes: len,
                        name: name.to_string(),
                        task_id: None,
                        key: Some(presigned.file_key),
                        parts: None,
                        resumed_parts: 0,
                    });
                }
                Ok(r) => {
                    let transient = retryable(r.status());
                    retry_after = crate::client::retry_after(r.headers());
                    let error = storage_error(r).await;
                    let expired = matches!(&error, Error::Storage { message, .. } if message.contains("expired"));
                    if expired && !refreshed_policy {
                        tracing::info!(
                            "the upload policy expired on the way; asking for a fresh one"
                        );
                        refreshed_policy = true;
                        continue;
                    }
                    if !transient {
                        return Err(error);
                    }
                    error
                }
                Err(e) if e.is_transient() => e,
                Err(e) => return Err(e),
            };
            if let Some(run) = self.landed(job).await? {
                return Ok(Uploaded {
                    method: Method::S3,
                    bytes: len,
                    name: name.to_string(),
                    task_id: Some(run),
                    key: Some(presigned.file_key),
                    parts: None,
                    resumed_parts: 0,
                });
            }
            attempt += 1;
            let Some(delay) = delays.next() else {
                return Err(error);
            };
            self.pause(attempt, retry_after.unwrap_or(delay), &error)
                .await?;
        }
    }
}
