//! Liveness and readiness.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
}

/// The process is up.
async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The store answers and its migrations are applied.
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if crate::db::is_ready(&state.pool).await {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "error": { "code": "not_ready", "message": "the store is unavailable or not migrated" } }),
            ),
        )
    }
}

/// Prometheus metrics of this API process, with the queue depth read from the store.
async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    let body = crate::monitoring::render(Some(&state.pool), &state.queue).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
}
