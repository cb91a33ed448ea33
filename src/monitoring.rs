//! Prometheus metrics: one recorder per process, rendered by `GET /metrics` on the API and on
//! each worker's metrics port.
//!
//! Metrics (all prefixed `pgcs_`):
//! - `http_requests_total`, `http_request_duration_seconds` by method, route and status (API);
//! - `syncs_enqueued_total` (API); `syncs` and `queue_jobs` gauges by state, read from the
//!   store at each scrape (API);
//! - `syncs_finished_total` by outcome (`succeeded`, `unchanged`, `failed`), `sync_retries_total`,
//!   `sync_duration_seconds`, `sync_pickup_seconds` (enqueue to first start), and
//!   `objects_written_total` by kind (worker).

use std::sync::OnceLock;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;

const SECONDS_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The process's recorder, installed on first use (tests run several services in one process).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
            .expect("valid buckets")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

/// Renders every metric, after refreshing the gauges read from the store when `pool` is given.
pub async fn render(pool: Option<&PgPool>, queue: &str) -> String {
    if let Some(pool) = pool {
        refresh_store_gauges(pool, queue).await;
    }
    let handle = handle();
    handle.run_upkeep();
    handle.render()
}

/// Syncs by status and queue jobs by state; a store outage leaves the last values.
async fn refresh_store_gauges(pool: &PgPool, queue: &str) {
    let syncs = crate::store::syncs::status_counts(pool).await;
    if let Ok(rows) = syncs {
        for status in ["queued", "running", "retrying", "succeeded", "failed"] {
            let n = rows
                .iter()
                .find(|(s, _)| s.as_str() == status)
                .map_or(0, |(_, n)| *n);
            metrics::gauge!("pgcs_syncs", "status" => status).set(n as f64);
        }
    }
    let jobs = crate::store::jobs::counts_by_state(pool, queue).await;
    if let Ok(rows) = jobs {
        for state in ["Pending", "Queued", "Running", "Done", "Failed", "Killed"] {
            let n = rows.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n);
            metrics::gauge!("pgcs_queue_jobs", "state" => state).set(n as f64);
        }
    }
}

#[derive(Clone)]
struct MetricsState {
    pool: Option<PgPool>,
    queue: String,
}

/// `GET /metrics` in Prometheus's text format.
pub fn router(pool: Option<PgPool>, queue: &str) -> Router {
    handle();
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(MetricsState {
            pool,
            queue: queue.to_owned(),
        })
}

async fn metrics(State(state): State<MetricsState>) -> impl IntoResponse {
    let body = render(state.pool.as_ref(), &state.queue).await;
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
