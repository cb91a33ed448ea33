//! Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the API and a worker, run as separate
//! processes, export their spans over OTLP/HTTP to a receiver in the test, and one sync's spans
//! from both processes form one trace: the request, the enqueue, the queue wait, the attempt,
//! the source read and the store write, with a retry as a second attempt. Without the variable
//! a job carries no trace context.

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use pg_catalog_sync::queue::SyncJob;
use prost::Message;
use serde_json::{Value, json};

const API: &str = "pg-catalog-sync-api";
const WORKER: &str = "pg-catalog-sync-worker";
/// The W3C status code of a span that failed.
const STATUS_ERROR: i32 = 2;

/// A span as the receiver decoded it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    trace_id: String,
    span_id: String,
    parent_id: String,
    name: String,
    start: u64,
    end: u64,
    status: i32,
    attributes: HashMap<String, String>,
}

/// An OTLP/HTTP receiver (protobuf) on a free port, keeping every span it is sent.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/v1/traces", post(receive))
            .with_state(spans.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, spans }
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }

    /// Every span received, once `done` finds the ones it waits for among them.
    async fn wait_for(
        &self,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
        timeout: Duration,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not arrive in {timeout:?}; received: {}",
                summary(&spans)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn receive(State(spans): State<Arc<Mutex<Vec<Received>>>>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf request");
    let mut spans = spans.lock().unwrap();
    for resource in request.resource_spans {
        let attributes = resource.resource.map(|r| r.attributes).unwrap_or_default();
        let service = strings(&attributes)
            .remove("service.name")
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                spans.push(Received {
                    service: service.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_id: hex(&span.parent_span_id),
                    name: span.name,
                    start: span.start_time_unix_nano,
                    end: span.end_time_unix_nano,
                    status: span.status.map_or(0, |s| s.code),
                    attributes: strings(&span.attributes),
                });
            }
        }
    }
    ""
}

fn strings(attributes: &[KeyValue]) -> HashMap<String, String> {
    attributes
        .iter()
        .filter_map(|kv| {
            let value = match kv.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(s) => s.clone(),
                AnyValue::IntValue(i) => i.to_string(),
                AnyValue::BoolValue(b) => b.to_string(),
                other => format!("{other:?}"),
            };
            Some((kv.key.clone(), value))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn summary(spans: &[Received]) -> String {
    let lines: Vec<String> = spans
        .iter()
        .map(|s| {
            format!(
                "{} {} trace={} span={} parent={}",
                s.service, s.name, s.trace_id, s.span_id, s.parent_id
            )
        })
        .collect();
    lines.join("\n")
}

/// The trace of the `POST /sync` request the API served.
fn post_sync_trace(spans: &[Received]) -> Option<String> {
    spans
        .iter()
        .find(|s| {
            s.service == API
                && s.name == "request"
                && s.attributes.get("path").map(String::as_str) == Some("/sync")
        })
        .map(|s| s.trace_id.clone())
}

/// The one span of `trace` named `name` from `service`.
fn one<'a>(spans: &'a [Received], trace: &str, service: &str, name: &str) -> &'a Received {
    let found: Vec<&Received> = spans
        .iter()
        .filter(|s| s.trace_id == trace && s.service == service && s.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {service} span {name} in trace {trace}; received: {}",
        summary(spans)
    );
    found[0]
}

/// A binary of the workspace running with `env`, its output going to a log file.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(binary_name: &str, env: &[(&str, String)]) -> Self {
        let log = std::env::temp_dir().join(format!(
            "pgcs-traces-{binary_name}-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let out = File::create(&log).unwrap();
        let mut command = Command::new(binary(binary_name));
        command
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .envs(env.iter().map(|(k, v)| (k, v)));
        Self {
            child: command.spawn().unwrap(),
            log,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the process to end.
    async fn terminate(&mut self) -> ExitStatus {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) with the pid of our own child, which has not been waited for yet.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit: {}", self.output());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// An API and a worker process over a fresh store, exporting traces to `receiver`.
struct Service {
    api: Process,
    worker: Process,
    base: String,
    _store: TestDatabase,
}

impl Service {
    async fn start(receiver: &Receiver, extra: &[(&str, String)]) -> Self {
        let store = TestDatabase::create("pgcs_traces").await;
        let port = free_port();
        let mut env = vec![
            ("DATABASE_URL", store.url.clone()),
            (
                "CREDENTIALS_KEY",
                pg_catalog_sync::crypto::CredentialsKey::generate_base64(),
            ),
            ("SOURCE_ALLOWLIST", LOOPBACK.to_owned()),
            ("BIND_ADDR", "127.0.0.1".to_owned()),
            ("PORT", port.to_string()),
            ("RUST_LOG", "warn".to_owned()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.clone()),
        ];
        env.extend(extra.iter().cloned());
        let api = Process::spawn("pg-catalog-sync", &env);
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(client.get(format!("{base}/ready")).send().await, Ok(r) if r.status().is_success())
        {
            assert!(Instant::now() < deadline, "API not ready: {}", api.output());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let worker = Process::spawn("pg-catalog-sync-worker", &env);
        Self {
            api,
            worker,
            base,
            _store: store,
        }
    }

    /// `POST /sync?wait=60s` with `headers`: the sync, ended.
    async fn sync(&self, body: &Value, headers: &[(&str, &str)]) -> Value {
        let mut request = reqwest::Client::new()
            .post(format!("{}/sync?wait=60s", self.base))
            .json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let sync: Value = response.json().await.unwrap();
        assert_eq!(
            status,
            200,
            "{sync}\napi: {}\nworker: {}",
            self.api.output(),
            self.worker.output()
        );
        sync
    }
}

/// The spans of one database sync, from both processes, in the trace its client started. The
/// batches wait a minute: the spans arrive only because each process exports what it holds
/// when it shuts down.
#[tokio::test]
async fn one_syncs_spans_from_the_api_and_the_worker_share_a_trace() {
    let receiver = Receiver::start().await;
    let source = TestDatabase::with_ddl(
        "pgcs_traces_src",
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
         CREATE VIEW item_names AS SELECT name FROM items;",
    )
    .await;
    let mut service = Service::start(
        &receiver,
        &[("OTEL_BSP_SCHEDULE_DELAY", "60000".to_owned())],
    )
    .await;

    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{client_trace}-{client_span}-01");
    let sync = service
        .sync(&sync_body(&source.name), &[("traceparent", &traceparent)])
        .await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let sync_id = sync["sync_id"].as_str().unwrap().to_owned();
    assert!(
        receiver.spans().is_empty(),
        "nothing is exported before the batch delay or the shutdown"
    );

    assert!(service.worker.terminate().await.success());
    assert!(service.api.terminate().await.success());
    let spans = receiver
        .wait_for(
            "both processes' spans",
            |spans| spans.iter().any(|s| s.service == WORKER) && post_sync_trace(spans).is_some(),
            Duration::from_secs(10),
        )
        .await;

    // The API continues the client's trace, and the worker the API's.
    let trace = post_sync_trace(&spans).unwrap();
    assert_eq!(trace, client_trace);
    let request = one(&spans, &trace, API, "request");
    let enqueue = one(&spans, &trace, API, "enqueue");
    let wait = one(&spans, &trace, WORKER, "queue.wait");
    let run = one(&spans, &trace, WORKER, "run");
    let attempt = one(&spans, &trace, WORKER, "attempt");
    let read = one(&spans, &trace, WORKER, "source.read");
    let write = one(&spans, &trace, WORKER, "store.write");
    let parents = [
        (request, client_span),
        (enqueue, request.span_id.as_str()),
        (wait, enqueue.span_id.as_str()),
        (run, enqueue.span_id.as_str()),
        (attempt, run.span_id.as_str()),
        (read, attempt.span_id.as_str()),
        (write, attempt.span_id.as_str()),
    ];
    for (span, parent) in parents {
        assert_eq!(span.parent_id, parent, "{} {span:?}", span.name);
    }
    assert_eq!(enqueue.attributes["sync_id"], sync_id);
    assert_eq!(run.attributes["sync_id"], sync_id);
    assert_eq!(attempt.attributes["attempt"], "1");
    assert_eq!(read.attributes["kind"], "database");
    // The wait runs from the enqueueing (inside the request) to the attempt's start.
    assert!(
        request.start <= wait.start && wait.start <= wait.end,
        "{wait:?}"
    );
    assert!(wait.end <= attempt.start, "{wait:?} {attempt:?}");
    assert!(read.start <= write.start && write.end <= attempt.end);
    assert!(
        spans
            .iter()
            .filter(|s| s.service == WORKER && s.name == "attempt")
            .all(|s| s.trace_id == trace),
        "every attempt is in the request's trace: {}",
        summary(&spans)
    );
}

/// A sync that fails once and succeeds on its retry: both attempts, and the backoff between
/// them, in the trace the API started. Spans are exported as they end (a short batch delay).
#[tokio::test]
async fn a_retried_syncs_attempts_are_spans_of_the_requests_trace() {
    let receiver = Receiver::start().await;
    let mock = MockSource::spawn().await;
    let service = Service::start(
        &receiver,
        &[
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ("EXTERNAL_METADATA_URL", mock.url.clone()),
            ("RETRY_MIN_DELAY_MS", "50".to_owned()),
            ("RETRY_MAX_DELAY_MS", "100".to_owned()),
        ],
    )
    .await;

    let sync = service
        .sync(&synthetic_body("1x2x3;fail_first=1"), &[])
        .await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    assert_eq!(sync["attempts"], 2, "{sync}");

    let spans = receiver
        .wait_for(
            "both attempts",
            |spans| {
                post_sync_trace(spans).is_some_and(|trace| {
                    let ended = |name: &str| {
                        spans
                            .iter()
                            .filter(|s| s.trace_id == trace && s.name == name)
                            .count()
                    };
                    ended("attempt") == 2 && ended("run") == 1
                })
            },
            Duration::from_secs(20),
        )
        .await;
    let trace = post_sync_trace(&spans).unwrap();
    let request = one(&spans, &trace, API, "request");
    assert_eq!(request.parent_id, "", "the API starts the trace");
    let enqueue = one(&spans, &trace, API, "enqueue");
    let run = one(&spans, &trace, WORKER, "run");
    assert_eq!(run.parent_id, enqueue.span_id);
    let backoff = one(&spans, &trace, WORKER, "retry.backoff");
    let mut attempts: Vec<&Received> = spans
        .iter()
        .filter(|s| s.trace_id == trace && s.name == "attempt")
        .collect();
    attempts.sort_by_key(|s| s.start);
    let numbers: Vec<&str> = attempts
        .iter()
        .map(|s| s.attributes["attempt"].as_str())
        .collect();
    assert_eq!(numbers, ["1", "2"]);
    for attempt in &attempts {
        assert_eq!(attempt.service, WORKER);
        assert_eq!(attempt.parent_id, run.span_id);
        let reads = spans
            .iter()
            .filter(|s| s.parent_id == attempt.span_id && s.name == "source.read")
            .count();
        assert_eq!(reads, 1, "each attempt reads the source: {attempt:?}");
    }
    let (first, second) = (attempts[0], attempts[1]);
    assert_eq!(first.status, STATUS_ERROR, "{first:?}");
    assert!(first.attributes["error"].contains("injected"), "{first:?}");
    assert_ne!(second.status, STATUS_ERROR, "{second:?}");
    assert!(first.end <= backoff.start && backoff.end <= second.start);
    assert_eq!(backoff.parent_id, run.span_id);
}

/// Without the variable nothing is exported, so a job carries no trace context; and a job
/// queued without one (or before traces existed) still reads.
#[tokio::test]
async fn without_an_endpoint_jobs_carry_no_trace_context() {
    let app = spawn_app().await;
    let (status, accepted) = app.post_sync(&sync_body("pgcs_traces_absent")).await;
    assert_eq!(status, 202, "{accepted}");
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT job FROM apalis.jobs")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(payloads.len(), 1);
    let job: Value = serde_json::from_slice(&payloads[0]).unwrap();
    assert_eq!(job["sync_id"], accepted["sync_id"]);
    assert!(job.get("trace").is_none(), "{job}");

    let old = json!({
        "sync_id": accepted["sync_id"],
        "catalog_id": accepted["catalog_id"],
        "source": {"host": "db.example", "port": 5432, "user": "u", "dbname": "d"},
        "sealed_password": "x",
    });
    let job: SyncJob = serde_json::from_value(old).unwrap();
    assert!(job.trace.is_none());
}
