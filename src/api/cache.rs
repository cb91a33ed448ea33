//! A read-through cache of catalog object reads (schemas, relations, a relation's detail,
//! columns, types, sequences, functions).
//!
//! A catalog's snapshot only changes when one of its syncs ends or the catalog is deleted, and
//! the store then notifies `pgcs_catalog_changed` (see [`super::watch`]). Each catalog has a
//! version, bumped by that notification; cached responses are keyed by it, so a change makes
//! the catalog's old entries unreachable at once (they age out of the bounded cache). While the
//! notification listener is not connected the cache is bypassed, and it is emptied whenever the
//! listener (re)connects: a notification missed in between cannot leave a stale entry.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CONTENT_TYPE, LINK};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::AppState;
use crate::error::ApiError;
use crate::store::syncs::SyncRow;

/// The object reads whose answers depend only on the catalog's snapshot.
const CACHED_ROUTES: [&str; 7] = [
    "/catalogs/{id}/schemas",
    "/catalogs/{id}/tables",
    "/catalogs/{id}/tables/{schema}/{table}",
    "/catalogs/{id}/columns",
    "/catalogs/{id}/types",
    "/catalogs/{id}/sequences",
    "/catalogs/{id}/functions",
];
/// Memory the cached bodies may take.
const CAPACITY_BYTES: u64 = 64 * 1024 * 1024;
/// Larger answers are not cached (a 1,000-row page of a wide list stays well below).
const MAX_ENTRY_BYTES: usize = 4 * 1024 * 1024;
/// Whether an answer came from the cache (`hit`) or the store (`miss`).
const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

#[derive(Clone, Hash, PartialEq, Eq)]
struct Key {
    catalog: Uuid,
    version: u64,
    epoch: u64,
    /// Path and query, as sent.
    uri: String,
}

struct Cached {
    body: Bytes,
    content_type: Option<HeaderValue>,
    link: Option<HeaderValue>,
}

pub struct ReadCache {
    entries: moka::sync::Cache<Key, Arc<Cached>>,
    versions: std::sync::Mutex<HashMap<Uuid, u64>>,
    /// Bumped when the listener (re)connects: every older entry becomes unreachable.
    epoch: AtomicU64,
    /// Whether changes are being heard; without it, nothing is served from or put in the cache.
    listening: AtomicBool,
}

impl Default for ReadCache {
    fn default() -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(CAPACITY_BYTES)
                .weigher(|key: &Key, value: &Arc<Cached>| {
                    (key.uri.len() + value.body.len())
                        .try_into()
                        .unwrap_or(u32::MAX)
                })
                .build(),
            versions: Default::default(),
            epoch: AtomicU64::new(0),
            listening: AtomicBool::new(false),
        }
    }
}

impl ReadCache {
    /// The catalog's snapshot may have changed.
    pub fn catalog_changed(&self, catalog: Uuid) {
        *self
            .versions
            .lock()
            .expect("the versions lock")
            .entry(catalog)
            .or_default() += 1;
    }

    /// A request saw this sync in the state it is in. A client that saw a sync end through this
    /// API must not read its catalog as it was before, even if the store's notification of the
    /// end has not reached this process yet (it arrives within milliseconds, but on another
    /// connection): a sync that ended in the last minute retires the catalog's entries.
    pub fn saw_sync(&self, sync: &SyncRow) {
        let recent = chrono::Utc::now() - chrono::Duration::seconds(60);
        if sync.finished_at.is_some_and(|at| at > recent) {
            self.catalog_changed(sync.catalog_id);
        }
    }

    /// The listener connected (again): forget everything, then serve from the cache.
    pub fn listening(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate_all();
        self.listening.store(true, Ordering::SeqCst);
    }

    /// The listener lost its connection: changes may go unheard, so bypass the cache.
    pub fn deaf(&self) {
        self.listening.store(false, Ordering::SeqCst);
    }

    /// The key of a read, taken before the read: an answer read from an older snapshot is then
    /// stored under an older version, where no later request looks.
    fn key(&self, catalog: Uuid, uri: String) -> Option<Key> {
        if !self.listening.load(Ordering::SeqCst) {
            return None;
        }
        let version = self
            .versions
            .lock()
            .expect("the versions lock")
            .get(&catalog)
            .copied()
            .unwrap_or(0);
        Some(Key {
            catalog,
            version,
            epoch: self.epoch.load(Ordering::SeqCst),
            uri,
        })
    }
}

/// Serves cached object reads, and caches the successful ones.
pub async fn serve_cached(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let cacheable = request.method() == Method::GET
        && request
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|p| CACHED_ROUTES.contains(&p.as_str()));
    let catalog = request
        .uri()
        .path()
        .split('/')
        .nth(2)
        .and_then(|id| id.parse::<Uuid>().ok());
    let key = match (cacheable, catalog) {
        (true, Some(catalog)) => state.cache.key(catalog, request.uri().to_string()),
        _ => None,
    };
    let Some(key) = key else {
        return next.run(request).await;
    };
    if let Some(hit) = state.cache.entries.get(&key) {
        return respond(&hit, "hit");
    }
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Answers are built whole, so their size is known; a large one passes through uncached.
    let size = HttpBody::size_hint(&body).exact();
    if size.is_none_or(|n| n > MAX_ENTRY_BYTES as u64) {
        return Response::from_parts(parts, body);
    }
    let body = match axum::body::to_bytes(body, MAX_ENTRY_BYTES).await {
        Ok(body) => body,
        Err(e) => {
            return ApiError::Internal(anyhow::anyhow!("buffering a read: {e}")).into_response();
        }
    };
    let cached = Arc::new(Cached {
        body,
        content_type: parts.headers.get(CONTENT_TYPE).cloned(),
        link: parts.headers.get(LINK).cloned(),
    });
    state.cache.entries.insert(key, cached.clone());
    respond(&cached, "miss")
}

fn respond(cached: &Cached, outcome: &'static str) -> Response {
    let mut response = Response::new(Body::from(cached.body.clone()));
    let headers = response.headers_mut();
    if let Some(v) = &cached.content_type {
        headers.insert(CONTENT_TYPE, v.clone());
    }
    if let Some(v) = &cached.link {
        headers.insert(LINK, v.clone());
    }
    headers.insert(X_CACHE, HeaderValue::from_static(outcome));
    response
}
