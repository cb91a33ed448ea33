//! `mock-source`: a real HTTP external metadata service, for tests, benchmarks and local runs.
//!
//! `POST /api/metadata` takes the original connection payload. A `dbname` of the form
//! `synthetic:<schemas>x<tables>x<columns>` gets a deterministic synthetic catalog of that size;
//! any other dbname is introspected for real with the library's introspection. Faults are
//! injected globally by env (`MOCK_FAIL_RATE`, `MOCK_HANG_RATE`, `MOCK_LATENCY_MS`) and per
//! source by options appended to a synthetic dbname:
//! `synthetic:3x40x10;latency_ms=300;fail_first=2;fail_rate=0.3;hang_rate=0.1;hang;malformed;status=401;tag=x`
//! (`tag` only makes otherwise equal dbnames distinct sources).

mod faults;
mod synthetic;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use pg_catalog_sync::access::SourcePolicy;
use pg_catalog_sync::source::{
    DatabaseSource, SourceLimits, SourceSecrets, SourceTarget, SourceTls,
};
use serde::Deserialize;
use serde_json::json;

use faults::Faults;

#[derive(Parser, Clone)]
#[command(
    version,
    about = "A real HTTP metadata service with synthetic catalogs and fault injection"
)]
struct Config {
    /// Address to listen on.
    #[arg(long, env = "MOCK_BIND", default_value = "127.0.0.1:9090")]
    bind: SocketAddr,
    /// Share of requests answered 503 (0.0-1.0), for every source.
    #[arg(long, env = "MOCK_FAIL_RATE", default_value_t = 0.0)]
    fail_rate: f64,
    /// Share of requests that never get an answer (0.0-1.0), for every source.
    #[arg(long, env = "MOCK_HANG_RATE", default_value_t = 0.0)]
    hang_rate: f64,
    /// Delay before every answer, in milliseconds.
    #[arg(long, env = "MOCK_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
}

#[derive(Clone)]
struct AppState {
    config: Config,
    /// Requests seen per dbname, for `fail_first` and the deterministic rates.
    seen: Arc<Mutex<HashMap<String, u64>>>,
    database: DatabaseSource,
}

#[derive(Deserialize)]
struct MetadataRequest {
    host: String,
    port: u16,
    user: String,
    #[serde(default)]
    password: String,
    dbname: String,
    #[serde(default)]
    sslmode: Option<String>,
    /// PEM text, as `POST /sync` takes it.
    #[serde(default)]
    sslrootcert: Option<String>,
    #[serde(default)]
    sslcert: Option<String>,
    #[serde(default)]
    sslkey: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pg_catalog_sync::telemetry::init("pg-catalog-sync-mock-source");
    let config = Config::parse();
    let state = AppState {
        config: config.clone(),
        seen: Arc::default(),
        // The mock reads whatever database it is asked to: it is a test double on loopback.
        database: DatabaseSource::new(
            SourceLimits {
                connect_timeout: Duration::from_secs(10),
                timeout: Duration::from_secs(60),
                max_response_bytes: usize::MAX,
                batch_relations: pg_catalog_sync::catalog::BATCH_RELATIONS,
            },
            std::sync::Arc::new(SourcePolicy::parse("0.0.0.0/0,::/0").expect("a valid list")),
        ),
    };
    let app = Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/api/metadata", post(metadata))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    tracing::info!(addr = %listener.local_addr()?, "mock-source listening");
    let shutdown = pg_catalog_sync::shutdown::on_signal();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

async fn metadata(State(state): State<AppState>, Json(req): Json<MetadataRequest>) -> Response {
    let (spec, options) = match req.dbname.split_once(';') {
        Some((spec, options)) => (spec, options),
        None => (req.dbname.as_str(), ""),
    };
    let faults = match Faults::parse(options, &state.config) {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response(),
    };
    let n = {
        let mut seen = state.seen.lock().expect("mock state lock");
        let count = seen.entry(req.dbname.clone()).or_default();
        *count += 1;
        *count
    };
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if let Some(response) = faults.inject(&req.dbname, n).await {
        return response;
    }

    if let Some(size) = spec.strip_prefix("synthetic:") {
        return match synthetic::parse_size(size) {
            Ok(size) => Json(synthetic::catalog(&req.dbname, size)).into_response(),
            Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response(),
        };
    }
    let secrets = SourceSecrets {
        password: req.password.into(),
        tls: SourceTls {
            root_cert: req.sslrootcert.map(Into::into),
            client_cert: req.sslcert.map(Into::into),
            client_key: req.sslkey.map(Into::into),
        },
    };
    let target = SourceTarget {
        host: req.host,
        port: req.port,
        user: req.user,
        dbname: req.dbname,
        sslmode: req.sslmode,
    };
    match state
        .database
        .snapshot(&target, &secrets, &Default::default())
        .await
    {
        Ok(snapshot) => Json(snapshot).into_response(),
        Err(e) => {
            let status = if e.is_transient() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            (status, Json(json!({"error": e.message}))).into_response()
        }
    }
}
