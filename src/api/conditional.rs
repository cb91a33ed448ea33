//! Conditional reads: every successful read answers an `ETag`, a digest of its body, and a
//! request whose `If-None-Match` names it gets 304 without the body. Cached reads carry the
//! digest taken when they were cached, so a hit is not hashed again.

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::header::{ETAG, IF_NONE_MATCH};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Larger answers pass through without an ETag (no read answers this much).
const MAX_HASHED_BYTES: u64 = 64 * 1024 * 1024;

/// The strong validator of a body: its SHA-256, shortened.
pub fn etag_of(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex digits are a valid header value")
}

pub async fn conditional(request: Request, next: Next) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let wanted = request.headers().get(IF_NONE_MATCH).cloned();
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let (etag, body) = match parts.headers.get(ETAG) {
        Some(etag) => (etag.clone(), body),
        None => {
            if HttpBody::size_hint(&body)
                .exact()
                .is_none_or(|n| n > MAX_HASHED_BYTES)
            {
                return Response::from_parts(parts, body);
            }
            let bytes: Bytes = match axum::body::to_bytes(body, MAX_HASHED_BYTES as usize).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    let error = anyhow::anyhow!("buffering a read: {e}");
                    return ApiError::Internal(error).into_response();
                }
            };
            let etag = etag_of(&bytes);
            parts.headers.insert(ETAG, etag.clone());
            (etag, Body::from(bytes))
        }
    };
    if wanted.is_some_and(|w| matches(&w, &etag)) {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        not_modified.headers_mut().insert(ETAG, etag);
        return not_modified;
    }
    Response::from_parts(parts, body)
}

/// Whether `If-None-Match` (a list of validators, or `*`) names `etag`; weak comparison, as
/// RFC 9110 asks for `If-None-Match`.
fn matches(wanted: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(wanted) = wanted.to_str() else {
        return false;
    };
    let ours = etag.to_str().unwrap_or_default();
    wanted
        .split(',')
        .map(|v| v.trim().trim_start_matches("W/"))
        .any(|v| v == "*" || v == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_names_the_etag_in_a_list_weakly_or_as_a_star() {
        let etag = etag_of(b"[]");
        let ours = etag.to_str().unwrap().to_owned();
        let header = |v: &str| HeaderValue::from_str(v).unwrap();
        assert!(matches(&header(&ours), &etag));
        assert!(matches(&header(&format!("\"other\", W/{ours}")), &etag));
        assert!(matches(&header("*"), &etag));
        assert!(!matches(&header("\"other\""), &etag));
        assert_ne!(etag_of(b"[1]"), etag);
    }
}
