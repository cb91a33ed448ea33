//! The API's error type: one JSON shape, `{"error":{"code","message"}}`, one status per variant.

use axum::Json;
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::access::Scope;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request field is missing or invalid (400), naming the field.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// The body is not JSON at all (400).
    #[error("{0}")]
    MalformedJson(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("a valid bearer token is required (Authorization: Bearer <token>)")]
    Unauthorized,
    /// The token lacks the scope the request needs (403).
    #[error("this token lacks the `{0}` scope this request needs")]
    MissingScope(Scope),
    /// The token is limited to other catalogs (403).
    #[error("this token is not allowed to reach catalog {0}")]
    CatalogNotAllowed(uuid::Uuid),
    /// A token limited to catalogs asked for a whole-server sync, which reaches every
    /// catalog of a server (403).
    #[error(
        "this token is limited to some catalogs; a whole-server sync needs a token that is not"
    )]
    ServerNotAllowed,
    /// A dashboard form without a valid token of this dashboard's pages (403).
    #[error(
        "this form did not come from a page of this dashboard (or is too old): reload the page and try again"
    )]
    FormRefused,
    /// The caller sent too many requests (429); `Retry-After` says when to try again.
    #[error("too many requests; retry in {0} s")]
    RateLimited(u64),
    /// The request does not fit the resource's state (409).
    #[error("{0}")]
    Conflict(String),
    /// The resource existed but what the request needs of it is gone for good (410).
    #[error("{0}")]
    Gone(String),
    #[error("request body too large (limit {0} bytes)")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The store is unreachable (503); the client may retry.
    #[error("the store is unavailable, try again shortly")]
    Unavailable,
    #[error("request timed out")]
    Timeout,
    /// Anything else (500): details go to the log only.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Validation { .. } => (StatusCode::BAD_REQUEST, "validation_failed"),
            Self::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::MissingScope(_) => (StatusCode::FORBIDDEN, "missing_scope"),
            Self::CatalogNotAllowed(_) => (StatusCode::FORBIDDEN, "catalog_not_allowed"),
            Self::ServerNotAllowed => (StatusCode::FORBIDDEN, "server_not_allowed"),
            Self::FormRefused => (StatusCode::FORBIDDEN, "form_refused"),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Gone(_) => (StatusCode::GONE, "gone"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            Self::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&e) {
            tracing::warn!(error = %e, "store unavailable");
            Self::Unavailable
        } else {
            Self::Internal(e.into())
        }
    }
}

impl From<crate::queue::EnqueueError> for ApiError {
    fn from(e: crate::queue::EnqueueError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "store unavailable");
            Self::Unavailable
        } else {
            Self::Internal(e.into())
        }
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `validation_failed`, `malformed_json`, `not_found`,
    /// `conflict`, `gone`, `unauthorized`, `missing_scope`, `catalog_not_allowed`, `rate_limited`, `payload_too_large`, `unsupported_media_type`,
    /// `store_unavailable`, ...
    pub code: String,
    /// For people.
    pub message: String,
    /// The request field at fault (validation errors only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The scope the token lacks (`missing_scope` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}

impl ErrorDetail {
    /// An error with only a code and a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            field: None,
            scope: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let field = match &self {
            Self::Validation { field, .. } => Some(field.clone()),
            _ => None,
        };
        let scope = match &self {
            Self::MissingScope(scope) => Some(*scope),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: self.to_string(),
                field,
                scope,
            },
        };
        if let Self::Internal(e) = &self {
            tracing::error!(error = ?e, "internal error");
        }
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::RateLimited(seconds) => {
                headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
            }
            _ => {}
        }
        response
    }
}
