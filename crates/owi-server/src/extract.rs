//! Extractors that answer malformed requests as the real server does:
//! 400 with a `detail` string (it rewrites FastAPI's 422 lists).

use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ValidJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ValidJson(v)),
            Err(e) => Err(ApiError::BadRequest(json_detail(&e))),
        }
    }
}

fn json_detail(e: &JsonRejection) -> String {
    match e {
        JsonRejection::JsonDataError(e) => format!("Invalid request body - {}", e.body_text()),
        JsonRejection::JsonSyntaxError(_) => "JSON decode error - malformed JSON".into(),
        JsonRejection::MissingJsonContentType(_) => {
            "Invalid request body - expected Content-Type: application/json".into()
        }
        other => format!("Invalid request body - {}", other.body_text()),
    }
}

pub struct ValidQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ValidQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ValidQuery(v)),
            Err(e) => Err(ApiError::BadRequest(query_detail(&e))),
        }
    }
}

fn query_detail(e: &QueryRejection) -> String {
    format!("Invalid query parameter - {}", e.body_text())
}

pub struct ValidForm<T>(pub Option<T>);

impl<S, T> FromRequest<S> for ValidForm<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let parsed: Result<axum::Form<T>, FormRejection> =
            axum::Form::from_request(req, state).await;
        Ok(ValidForm(parsed.ok().map(|axum::Form(v)| v)))
    }
}
