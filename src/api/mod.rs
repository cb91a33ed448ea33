//! The HTTP API: routes, shared state, middleware, and serving with graceful shutdown.

mod catalogs;
mod extract;
mod health;
mod objects;
mod pagination;
mod syncs;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::crypto::CredentialsKey;
use crate::error::ApiError;
use crate::queue::Enqueuer;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// Writes sync requests, coalescing concurrent ones into shared transactions.
    pub enqueuer: Enqueuer,
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
            key,
            ENQUEUE_BATCHERS,
            ENQUEUE_MAX_BATCH,
        );
        Self {
            pool,
            enqueuer,
            max_attempts,
            max_body_bytes,
        }
    }
}

/// Transactions writing sync requests at once, and requests per transaction at most.
const ENQUEUE_BATCHERS: usize = 4;
const ENQUEUE_MAX_BATCH: usize = 128;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole API as one router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.max_body_bytes;
    Router::new()
        .merge(health::router())
        .merge(syncs::router())
        .merge(catalogs::router())
        .merge(objects::router())
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then drains open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
