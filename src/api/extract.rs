//! Extractors that turn every client mistake into an [`ApiError`] with a JSON body.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::AppState;
use crate::error::ApiError;

/// A JSON object body: `application/json` only, bounded, well-formed.
pub struct JsonObject(pub serde_json::Map<String, serde_json::Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "expected Content-Type: application/json, got {:?}",
                if content_type.is_empty() {
                    "nothing"
                } else {
                    content_type
                }
            )));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(inner)
                if inner.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                ApiError::PayloadTooLarge(state.max_body_bytes)
            }
            other => ApiError::MalformedJson(format!("could not read the body: {other}")),
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::MalformedJson(format!("the body is not valid JSON: {e}")))?;
        match value {
            serde_json::Value::Object(map) => Ok(Self(map)),
            _ => Err(ApiError::MalformedJson(
                "the body must be a JSON object".into(),
            )),
        }
    }
}

/// Path parameters, with undecodable segments answered as a 400 JSON error.
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e| ApiError::validation("path", e.body_text()))
    }
}

/// Query parameters as plain strings; each handler parses and names its own fields.
pub struct QueryParams(pub std::collections::HashMap<String, String>);

impl FromRequestParts<AppState> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let query =
            axum::extract::Query::<std::collections::HashMap<String, String>>::from_request_parts(
                parts, state,
            )
            .await
            .map_err(|e| ApiError::validation("query", e.body_text()))?;
        // No stored text holds a NUL byte (PostgreSQL's text cannot), and none reaches a query.
        let mut with_nul: Vec<&String> = (query.0.iter())
            .filter(|(_, v)| v.contains('\0'))
            .map(|(k, _)| k)
            .collect();
        with_nul.sort();
        if let Some(name) = with_nul.first() {
            return Err(ApiError::validation(
                name.as_str(),
                "must not contain NUL bytes",
            ));
        }
        Ok(Self(query.0))
    }
}

impl QueryParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A `true` or `false` parameter, false when absent; anything else is refused.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::validation(name, "must be true or false")),
        }
    }

    /// Refuses parameters the endpoint does not know, naming the first.
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        let mut unknown: Vec<&String> = self
            .0
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .collect();
        unknown.sort();
        match unknown.first() {
            Some(k) => Err(ApiError::validation(k.as_str(), "unknown query parameter")),
            None => Ok(()),
        }
    }
}

/// Refuses a body field outside `known`, naming the first (in name order); `hint` ends the
/// message.
pub fn only_fields(
    body: &serde_json::Map<String, serde_json::Value>,
    known: &[&str],
    hint: &str,
) -> Result<(), ApiError> {
    let mut keys: Vec<&String> = body.keys().collect();
    keys.sort();
    match keys.iter().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::validation(
            unknown.as_str(),
            format!("unknown field; expected one of {}{hint}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// Parses an id from a path segment: malformed ids are a 400 naming the field.
pub fn parse_id(field: &str, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::validation(field, "must be a UUID"))
}
