//! Logs and traces.
//!
//! Logs are human-readable by default, JSON with `LOG_FORMAT=json`; `RUST_LOG` filters them.
//! Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, this crate's spans are exported over
//! OTLP/HTTP (protobuf) in batches, from a task on the process's tokio runtime. Without it no
//! layer, exporter or task exists, and every function here returns at its first check. A sync
//! job carries the W3C trace context of the request that queued it ([`TraceContext`]), so the
//! worker's spans continue the request's trace.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::SystemTime;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, global};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::runtime;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use serde::{Deserialize, Serialize};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::{EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt};

/// `service.name` of the API's spans (unless `OTEL_SERVICE_NAME` says otherwise).
pub const API: &str = "pg-catalog-sync-api";
/// `service.name` of a worker's spans (unless `OTEL_SERVICE_NAME` says otherwise).
pub const WORKER: &str = "pg-catalog-sync-worker";

/// The tracer provider, once traces are exported: flushed by [`shutdown`].
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Sets up logging, and trace export when an OTLP endpoint is configured; `service` names the
/// process in its traces. Must run inside the tokio runtime (the export task runs on it).
pub fn init(service: &str) {
    // A second init (tests spawning several components in one process) is harmless.
    if tracing::dispatcher::has_been_set() {
        return;
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,apalis=warn,apalis_core=warn,apalis_postgres=warn")
    });
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let logs = if json {
        fmt::layer().json().with_current_span(true).boxed()
    } else {
        fmt::layer().boxed()
    };
    let provider = exporting().then(|| tracer_provider(service)).transpose();
    let (provider, failure) = match provider {
        Ok(provider) => (provider, None),
        Err(e) => (None, Some(e)),
    };
    // Traces take this crate's spans whatever RUST_LOG says: the log level is not the trace's.
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("pg-catalog-sync"))
            .with_filter(Targets::new().with_target("pg_catalog_sync", tracing::Level::INFO))
    });
    let installed = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(traces)
        .try_init()
        .is_ok();
    if let Some(e) = failure {
        tracing::warn!(error = %e, "traces are not exported: the OTLP exporter failed to start");
    }
    if let (true, Some(provider)) = (installed, provider) {
        global::set_tracer_provider(provider.clone());
        let _ = PROVIDER.set(provider);
        if let Some(protocol) = unsupported_protocol() {
            tracing::warn!(%protocol, "OTLP traces are sent as http/protobuf: the only protocol supported");
        }
    }
}

/// Whether an OTLP endpoint for traces is configured.
fn exporting() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

fn unsupported_protocol() -> Option<String> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .iter()
    .find_map(|name| std::env::var(name).ok())
    .filter(|protocol| protocol != "http/protobuf")
}

/// The exporter reads the endpoint, headers and timeout from the standard `OTEL_EXPORTER_OTLP_*`
/// variables, the batches their `OTEL_BSP_*` ones, the sampler `OTEL_TRACES_SAMPLER`.
fn tracer_provider(service: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    let service = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| service.to_owned());
    Ok(SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter, runtime::Tokio).build())
        .with_resource(Resource::builder().with_service_name(service).build())
        .build())
}

/// Whether spans are exported.
fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// Exports the spans still buffered and stops exporting: the last step of a process, so the
/// spans of its last requests and syncs are not lost.
pub async fn shutdown() {
    let Some(provider) = PROVIDER.get().cloned() else {
        return;
    };
    // The provider waits for the export task, which runs on this runtime: wait off its threads.
    match tokio::task::spawn_blocking(move || provider.shutdown()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "exporting the last spans failed"),
        Err(e) => tracing::warn!(error = %e, "exporting the last spans failed"),
    }
}

/// A W3C trace context (`traceparent`, `tracestate`): how a sync job carries the trace of the
/// request that queued it to the worker that runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    pub traceparent: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tracestate: String,
}

impl TraceContext {
    /// The current span's context; `None` when spans are not exported.
    pub fn current() -> Option<Self> {
        if !enabled() {
            return None;
        }
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(&Span::current().context(), &mut carrier);
        Some(Self {
            traceparent: carrier.remove("traceparent")?,
            tracestate: carrier.remove("tracestate").unwrap_or_default(),
        })
    }

    fn context(&self) -> Context {
        let mut carrier = HashMap::from([("traceparent".to_owned(), self.traceparent.clone())]);
        if !self.tracestate.is_empty() {
            carrier.insert("tracestate".to_owned(), self.tracestate.clone());
        }
        TraceContextPropagator::new().extract(&carrier)
    }
}

/// Makes `span` a child of `parent` (a job's trace), before `span` is first entered.
pub fn continue_trace(span: &Span, parent: Option<&TraceContext>) {
    if let (true, Some(parent)) = (enabled(), parent) {
        let _ = span.set_parent(parent.context());
    }
}

/// Makes `span` a child of the trace a request's `traceparent` header names, if any, before
/// `span` is first entered.
pub fn continue_request_trace(span: &Span, headers: &axum::http::HeaderMap) {
    if !enabled() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderCarrier(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Records the `queue.wait` span of a job's first delivery: from its enqueueing, in another
/// process, to now. Its parent is the job's trace, or the current span when the job has none.
pub fn record_queue_wait(job_trace: Option<&TraceContext>, enqueued_at: SystemTime) {
    if !enabled() {
        return;
    }
    let parent = job_trace.map_or_else(|| Span::current().context(), TraceContext::context);
    let tracer = global::tracer("pg-catalog-sync");
    tracer
        .span_builder("queue.wait")
        .with_start_time(enqueued_at)
        .start_with_context(&tracer, &parent)
        .end();
}

struct HeaderCarrier<'a>(&'a axum::http::HeaderMap);

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
