//! The list convention: a bare JSON array, `limit` (default 100, max 1000), and the next page
//! in a `Link: <...>; rel="next"` header carrying an opaque cursor.

use axum::Json;
use axum::http::HeaderValue;
use axum::http::header::LINK;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::AppState;
use super::extract::{QueryParams, parse_id};
use super::past;
use crate::error::ApiError;
use crate::ids::SyncId;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

/// `limit` and the decoded `cursor` of a list request.
pub struct PageRequest<C> {
    pub limit: i64,
    pub after: Option<C>,
}

impl<C: DeserializeOwned> PageRequest<C> {
    pub fn from_query(query: &QueryParams) -> Result<Self, ApiError> {
        let limit = match query.get("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| {
                    ApiError::validation(
                        "limit",
                        format!("must be an integer from 1 to {MAX_LIMIT}"),
                    )
                })?,
        };
        let after = query.get("cursor").map(decode_cursor).transpose()?;
        Ok(Self { limit, after })
    }

    /// How many rows to fetch: one more than the page, to learn whether a next page exists.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }
}

fn decode_cursor<C: DeserializeOwned>(raw: &str) -> Result<C, ApiError> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        // Cursors come from names, which never hold NUL bytes; a forged one could.
        .filter(|bytes| !bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")))
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            ApiError::validation("cursor", "invalid cursor; use the one from the Link header")
        })
}

pub(crate) fn encode_cursor<C: Serialize>(cursor: &C) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).expect("cursor serializes"))
}

/// Builds the page response: trims the extra row and links to the next page.
///
/// `path` is the list's path; `params` are the query parameters to keep (filters).
pub fn page_response<T: Serialize, C: Serialize>(
    mut rows: Vec<T>,
    request: &PageRequest<impl Sized>,
    path: &str,
    params: &[(&str, &str)],
    cursor_of: impl Fn(&T) -> C,
) -> Response {
    let has_more = rows.len() as i64 > request.limit;
    rows.truncate(request.limit as usize);
    let next = match rows.last() {
        Some(last) if has_more => Some(encode_cursor(&cursor_of(last))),
        _ => None,
    };
    let mut response = Json(rows).into_response();
    if let Some(cursor) = next {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            query.append_pair(k, v);
        }
        query.append_pair("limit", &request.limit.to_string());
        query.append_pair("cursor", &cursor);
        let link = format!("<{path}?{}>; rel=\"next\"", query.finish());
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(LINK, value);
        }
    }
    response
}

/// Percent-encodes one path segment (for links to names with any characters).
pub fn encode_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// One page of `items` (kept in their order, each with a cursor that grows along it): those
/// after the request's cursor, one more than the page to tell whether another follows.
pub fn page_of<T, C: PartialOrd + serde::de::DeserializeOwned>(
    items: Vec<T>,
    page: &PageRequest<C>,
    cursor: impl Fn(&T) -> C,
) -> Vec<T> {
    items
        .into_iter()
        .filter(|item| {
            page.after
                .as_ref()
                .is_none_or(|after| cursor(item) > *after)
        })
        .take(page.fetch_limit() as usize)
        .collect()
}

/// A page of the list `kind` (its path under `/catalogs/{id}/`) taken whole from one document
/// of the catalog `id` (its access facts, its database objects), sorted by `cursor`, of the
/// latest state or a past one (`?sync=`, `?as_of=`): `load` reads the document as a past
/// sync left it (`None`: the latest), itself `None` when there is no such catalog.
pub async fn document_page<D, T, C, Loaded>(
    state: &AppState,
    id: &str,
    query: &QueryParams,
    kind: &str,
    load: impl FnOnce(uuid::Uuid, Option<SyncId>) -> Loaded,
    items: impl FnOnce(D) -> Vec<T>,
    cursor: impl Fn(&T) -> C,
) -> Result<Response, ApiError>
where
    Loaded: Future<Output = sqlx::Result<Option<D>>>,
    T: Serialize,
    C: Ord + Serialize + DeserializeOwned,
{
    query.only(&[&["limit", "cursor"][..], &past::PARAMS].concat())?;
    let c = parse_id("catalog_id", id)?;
    let page = PageRequest::<C>::from_query(query)?;
    let sync = past::sync(state, c, query).await?;
    let document = load(c, sync)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no catalog {c}")))?;
    let mut items = items(document);
    items.sort_by_key(|item| cursor(item));
    let rows = page_of(items, &page, &cursor);
    let path = format!("/catalogs/{c}/{kind}");
    let sync = sync.map(|s| s.uuid().to_string());
    let params: Vec<(&str, &str)> = sync.iter().map(|s| ("sync", s.as_str())).collect();
    Ok(page_response(rows, &page, &path, &params, cursor))
}
