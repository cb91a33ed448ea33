//! A read-through cache of catalog object reads (schemas, relations, a relation's detail,
//! columns, types, sequences, functions, dependents, diagrams, the DDL export).
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
use axum::http::header::{CONTENT_TYPE, ETAG, LINK};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::AppState;
use crate::error::ApiError;
use crate::store::syncs::SyncRow;

/// The object reads whose answers depend only on the catalog's snapshot.
const CACHED_ROUTES: [&str; 16] = [
    "/catalogs/{id}/schemas",
    "/catalogs/{id}/tables",
    "/catalogs/{id}/tables/{schema}/{table}",
    "/catalogs/{id}/columns",
    "/catalogs/{id}/types",
    "/catalogs/{id}/sequences",
    "/catalogs/{id}/functions",
    "/catalogs/{id}/privileges",
    "/catalogs/{id}/policies",
    "/catalogs/{id}/default_privileges",
    "/catalogs/{id}/roles",
    "/catalogs/{id}/tables/{schema}/{table}/access",
    "/catalogs/{id}/tables/{schema}/{table}/dependents",
    "/catalogs/{id}/tables/{schema}/{table}/columns/{column}/dependents",
    "/catalogs/{id}/erd",
    "/catalogs/{id}/ddl",
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
    etag: HeaderValue,
}

pub struct ReadCache {
    entries: moka::sync::Cache<Key, Arc<Cached>>,
    /// Each catalog's version, and when it was last bumped.
    versions: std::sync::Mutex<HashMap<Uuid, (u64, DateTime<Utc>)>>,
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
        let mut versions = self.versions.lock().expect("the versions lock");
        let entry = versions.entry(catalog).or_insert((0, Utc::now()));
        *entry = (entry.0 + 1, Utc::now());
    }

    /// A request saw this sync in the state it is in. A client that saw a sync end through this
    /// API must not read its catalog as it was before, even if the store's notification of the
    /// end has not reached this process yet (it arrives within milliseconds, but on another
    /// connection): a sync that ended after the catalog's entries were last retired retires
    /// them. (`finished_at` is the store's clock; a skew between the clocks only moves the
    /// window in which the notification alone does it.)
    pub fn saw_sync(&self, sync: &SyncRow) {
        let (Some(finished_at), Some(catalog_id)) = (sync.finished_at, sync.catalog_id) else {
            return;
        };
        let last_retired = self
            .versions
            .lock()
            .expect("the versions lock")
            .get(&catalog_id)
            .map(|(_, at)| *at);
        if last_retired.is_none_or(|at| at < finished_at) {
            self.catalog_changed(catalog_id);
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
            .map_or(0, |(version, _)| *version);
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
        etag: super::conditional::etag_of(&body),
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
    headers.insert(ETAG, cached.etag.clone());
    headers.insert(X_CACHE, HeaderValue::from_static(outcome));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::syncs::SyncStatus;

    fn sync(catalog_id: Uuid, finished_at: Option<DateTime<Utc>>) -> SyncRow {
        SyncRow {
            id: Uuid::now_v7(),
            catalog_id: Some(catalog_id),
            status: if finished_at.is_some() {
                SyncStatus::Succeeded
            } else {
                SyncStatus::Running
            },
            attempts: 1,
            max_attempts: 5,
            last_error: None,
            source_kind: None,
            enqueued_at: Utc::now(),
            started_at: None,
            finished_at,
            stats: None,
            schema_filter: None,
            progress: None,
            databases: None,
        }
    }

    fn version(cache: &ReadCache, catalog: Uuid) -> u64 {
        cache.key(catalog, String::new()).unwrap().version
    }

    #[test]
    fn a_sync_seen_ending_retires_entries_once() {
        let cache = ReadCache::default();
        cache.listening();
        let catalog = Uuid::now_v7();
        assert_eq!(version(&cache, catalog), 0);

        // Still running: nothing to retire.
        cache.saw_sync(&sync(catalog, None));
        assert_eq!(version(&cache, catalog), 0);

        // Ended, and nothing heard of it yet: retired.
        let ended = sync(catalog, Some(Utc::now()));
        cache.saw_sync(&ended);
        assert_eq!(version(&cache, catalog), 1);
        // Seen again (a client polling the ended sync): already retired since it ended.
        cache.saw_sync(&ended);
        assert_eq!(version(&cache, catalog), 1);

        // The store's notification of a later change retires them again.
        cache.catalog_changed(catalog);
        assert_eq!(version(&cache, catalog), 2);
        cache.saw_sync(&ended);
        assert_eq!(version(&cache, catalog), 2);
    }

    #[test]
    fn a_deaf_cache_serves_nothing() {
        let cache = ReadCache::default();
        assert!(
            cache.key(Uuid::now_v7(), "/x".into()).is_none(),
            "not listening yet"
        );
        cache.listening();
        assert!(cache.key(Uuid::now_v7(), "/x".into()).is_some());
        cache.deaf();
        assert!(cache.key(Uuid::now_v7(), "/x".into()).is_none());
    }
}
