//! The HTTP API: routes, shared state, middleware, and serving with graceful shutdown.

mod access;
mod audit;
pub(crate) mod authorize;
mod cache;
mod catalogs;
mod changes;
mod conditional;
mod ddl;
mod dependents;
pub(crate) mod diagrams;
mod diff;
pub(crate) mod extract;
mod health;
mod objects;
mod openapi;
mod other_objects;
pub(crate) mod pagination;
pub(crate) mod past;
pub mod rate_limit;
pub(crate) mod schedules;
pub(crate) mod search;
mod server_syncs;
pub(crate) mod sync_request;
pub(crate) mod syncs;
mod watch;
mod webhook_request;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request as AxumRequest};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use sqlx::PgPool;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::access::{ApiTokens, SourcePolicy, Subject};
use crate::coalesce::Coalescer;
use crate::crypto::CredentialsKey;
use crate::db::HeldConnections;
use crate::error::ApiError;
use crate::queue::Enqueuer;
use crate::store::reads::{self, DetailKey, StoredDetail};
use watch::SyncWatcher;

/// What every handler can reach: one shared [`Shared`], so that the copies axum makes for
/// every request (each middleware with state, each `State` extractor) cost one reference
/// count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The state itself.
pub struct Shared {
    pub pool: PgPool,
    /// Opens the sealed credentials of syncs retried by hand; seals those of schedules.
    pub key: CredentialsKey,
    /// Bearer tokens every endpoint but /health and /ready requires, when configured.
    pub tokens: Option<Arc<ApiTokens>>,
    /// Which source hosts a sync request may name.
    pub source_policy: Arc<SourcePolicy>,
    /// Where webhook subscriptions may point.
    pub webhook_policy: Arc<SourcePolicy>,
    /// The webhook queue (test events and redeliveries go there).
    pub webhook_queue: Arc<str>,
    /// Writes sync requests, coalescing concurrent ones into shared transactions.
    pub enqueuer: Enqueuer,
    /// Wakes requests waiting for syncs to end (`?wait=`).
    pub watcher: SyncWatcher,
    /// Object reads, kept until their catalog changes.
    pub cache: Arc<cache::ReadCache>,
    /// Relation details read from the store, concurrent ones (cache misses) in one statement.
    pub details: DetailReader,
    /// Records every mutating request.
    pub audit: audit::AuditLog,
    /// Limits each caller's mutating requests (`RATE_LIMIT`); `None` when off.
    pub rate_limit: Option<rate_limit::RateLimit>,
    /// The apalis queue the sync jobs go through (for the queue-depth metrics).
    pub queue: Arc<str>,
    pub max_attempts: i32,
    pub max_body_bytes: usize,
}

impl AppState {
    /// The state of an API over `pool`: starts the enqueuer's batchers.
    pub fn new(
        pool: PgPool,
        key: CredentialsKey,
        queue: &str,
        max_attempts: i32,
        max_body_bytes: usize,
    ) -> Self {
        let enqueuer = Enqueuer::start(
            pool.clone(),
            queue.into(),
            key.clone(),
            ENQUEUE_BATCHERS,
            ENQUEUE_MAX_BATCH,
        );
        let cache = Arc::new(cache::ReadCache::default());
        let details = detail_reader(pool.clone());
        let watcher = SyncWatcher::start(pool.clone(), cache.clone());
        let audit = audit::AuditLog::start(pool.clone());
        crate::monitoring::handle(); // record from the first request on
        Self(Arc::new(Shared {
            queue: queue.into(),
            pool,
            key,
            tokens: None,
            watcher,
            cache,
            details,
            audit,
            rate_limit: None,
            source_policy: Arc::new(SourcePolicy::default()),
            webhook_policy: Arc::new(SourcePolicy::default().guarding(Subject::Webhook)),
            webhook_queue: crate::store::deliveries::queue_name(queue).into(),
            enqueuer,
            max_attempts,
            max_body_bytes,
        }))
    }

    pub fn with_tokens(mut self, tokens: Option<ApiTokens>) -> Self {
        self.configure().tokens = tokens.map(Arc::new);
        self
    }

    pub fn with_rate_limit(mut self, setting: rate_limit::RateSetting) -> Self {
        self.configure().rate_limit = rate_limit::RateLimit::new(setting);
        self
    }

    pub fn with_source_policy(mut self, policy: SourcePolicy) -> Self {
        self.configure().source_policy = Arc::new(policy);
        self
    }

    pub fn with_webhook_policy(mut self, policy: SourcePolicy) -> Self {
        self.configure().webhook_policy = Arc::new(policy.guarding(Subject::Webhook));
        self
    }

    /// The state, while it is configured: before the router (or anything else) shares it.
    fn configure(&mut self) -> &mut Shared {
        Arc::get_mut(&mut self.0).expect("the API state is configured before it is shared")
    }

    /// For a source the service already knew (a retry, a schedule): the policy may have
    /// changed since, and then the request conflicts with it.
    pub fn recheck_source(&self, host: &str) -> Result<(), ApiError> {
        self.source_policy.check_host(host).map_err(|message| {
            ApiError::Conflict(format!("the source is no longer allowed: {message}"))
        })
    }
}

/// Batches written at once, and requests per batch at most. One batch at a time gathers the
/// most requests per commit: with 32 clients, 1 batcher gave 7,900-9,500 requests/s, 2 gave
/// 7,600-7,800 and 4 gave 7,300-7,400 (`BENCH_SCENARIOS=enqueue scripts/bench`, batches of four
/// statements); concurrent batches mostly wait for each other's commits, which apalis's NOTIFY
/// trigger serializes. With one statement per batch, 2 batchers still did worse than 1 (0.47x
/// against 0.48-0.55x of pgbench's rate in the same runs), and again once each batcher kept its
/// connection (0.48x and 0.50x against 0.55x and 0.61x).
const ENQUEUE_BATCHERS: usize = 1;
const ENQUEUE_MAX_BATCH: usize = 128;
/// Detail reads: a few statements at once (the store has cores to spare for them), each
/// serving up to this many requests.
const DETAIL_BATCHERS: usize = 4;
const DETAIL_MAX_BATCH: usize = 32;

pub type DetailReader = Coalescer<DetailKey, Result<Option<StoredDetail>, ApiError>>;

/// Reads relation details in batches: a cold cache under many clients costs one statement per
/// batch instead of one per request.
fn detail_reader(pool: PgPool) -> DetailReader {
    let connections = Arc::new(HeldConnections::new(pool));
    Coalescer::start(
        DETAIL_BATCHERS,
        DETAIL_MAX_BATCH,
        move |keys: Vec<DetailKey>| {
            let connections = connections.clone();
            async move {
                let read = connections
                    .run(async |conn| reads::relation_details(conn, &keys).await)
                    .await;
                match read {
                    Ok(found) => found.into_iter().map(Ok).collect(),
                    Err(e) => {
                        let unavailable = crate::db::is_unavailable(&e);
                        if !unavailable {
                            tracing::error!(error = ?e, keys = keys.len(), "reading relation details failed");
                        }
                        let error = |_| match unavailable {
                            true => ApiError::Unavailable,
                            false => {
                                ApiError::Internal(anyhow::anyhow!("reading relation details: {e}"))
                            }
                        };
                        keys.iter().map(|k| Err(error(k))).collect()
                    }
                }
            }
        },
    )
}

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole API as one router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.max_body_bytes;
    let (documented, openapi) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::router())
        .merge(syncs::router())
        .merge(catalogs::router())
        .merge(changes::router())
        .merge(diff::router())
        .merge(diagrams::router())
        .merge(ddl::router())
        .merge(schedules::router())
        .merge(objects::router())
        .merge(dependents::router())
        .merge(access::router())
        .merge(other_objects::router())
        .merge(audit::router())
        .merge(search::router())
        .merge(webhooks::router())
        .split_for_parts();
    let document = openapi::document(openapi);
    let mut operations = authorize::Operations::from_document(&document);
    crate::ui::describe(&mut operations);
    let guard = authorize::Guard {
        state: state.clone(),
        operations: Arc::new(operations),
    };
    Router::new()
        .merge(documented)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            cache::serve_cached,
        ))
        .route_layer(middleware::from_fn(conditional::conditional))
        .merge(crate::ui::router())
        .route_layer(middleware::from_fn_with_state(guard, authorize::authorize))
        .route(
            "/openapi.json",
            get(move || async move { ([(CONTENT_TYPE, "application/json")], document) }),
        )
        .route_layer(middleware::from_fn(record_http))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authorize::authenticate,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id);
                    crate::telemetry::continue_request_trace(&span, req.headers());
                    span
                }))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
        .with_state(state)
}

/// Counts every routed request and its latency by method, route (the pattern, not the path:
/// names stay out of the metrics) and status.
async fn record_http(request: AxumRequest, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("pgcs_http_requests_total", &labels).increment(1);
    metrics::histogram!("pgcs_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
