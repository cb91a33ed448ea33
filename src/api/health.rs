//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::error::{ErrorBody, ErrorDetail};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Status {
    /// `ok` or `ready`.
    status: String,
}

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "health", security(()),
    responses((status = 200, description = "Up", body = Status)))]
async fn health() -> Json<Status> {
    Json(Status {
        status: "ok".into(),
    })
}

/// The store answers and its migrations are applied.
#[utoipa::path(get, path = "/ready", tag = "health", security(()),
    responses(
        (status = 200, description = "Ready", body = Status),
        (status = 503, description = "The store is unavailable or not migrated", body = ErrorBody),
    ))]
async fn ready(State(state): State<AppState>) -> Response {
    if crate::db::is_ready(&state.pool).await {
        Json(Status {
            status: "ready".into(),
        })
        .into_response()
    } else {
        let error = ErrorDetail::new("not_ready", "the store is unavailable or not migrated");
        (StatusCode::SERVICE_UNAVAILABLE, Json(ErrorBody { error })).into_response()
    }
}

/// Prometheus metrics of this API process, with the queue depth read from the store.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
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
