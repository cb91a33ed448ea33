//! The API against its own OpenAPI 3.1 document: schemathesis (a property-based API fuzzer,
//! installed by `scripts/test`) sends generated requests, valid and invalid, to every
//! documented operation of a running API holding a real catalog, and checks every response:
//! no 5xx, every status documented, every body and header as documented.

mod common;

use std::path::PathBuf;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

/// Generated test cases per operation and phase; the whole run makes well over 1,000 requests.
const EXAMPLES_PER_OPERATION: &str = "40";

fn schemathesis() -> PathBuf {
    let path = std::env::var_os("SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/schemathesis/bin/st")
        });
    assert!(
        path.exists(),
        "schemathesis not found at {}: run scripts/test (it installs it), or set SCHEMATHESIS",
        path.display()
    );
    path
}

#[tokio::test]
async fn the_document_describes_every_route_as_openapi_3_1() {
    let app = spawn_app().await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for path in [
        "/sync",
        "/syncs/{id}",
        "/syncs/{id}/retry",
        "/syncs/{id}/changes",
        "/catalogs",
        "/catalogs/{id}",
        "/catalogs/{id}/syncs",
        "/catalogs/{id}/changes",
        "/catalogs/{id}/schedule",
        "/catalogs/{id}/sync",
        "/catalogs/{id}/schemas",
        "/catalogs/{id}/tables",
        "/catalogs/{id}/tables/{schema}/{table}",
        "/catalogs/{id}/columns",
        "/catalogs/{id}/types",
        "/catalogs/{id}/sequences",
        "/catalogs/{id}/functions",
        "/catalogs/{id}/erd",
        "/catalogs/{id}/ddl",
        "/diff",
        "/health",
        "/ready",
        "/metrics",
        "/audit",
        "/search",
    ] {
        assert!(paths.contains(&path), "{path} is not documented: {paths:?}");
    }
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(
        operations, 54,
        "every documented operation is routed, and the other way round"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
        "the bearer token is documented"
    );
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_response_off_the_document() {
    // The default source policy (all but loopback and link-local): generated hosts are queued.
    let app = spawn_app_with(AppOptions {
        source_allowlist: None,
        ..AppOptions::default()
    })
    .await;
    // A real catalog to read, with a schedule and a change; then no worker, so generated syncs
    // stay queued instead of reaching random hosts.
    let source = TestDatabase::with_ddl(
        "pgcs_src",
        "CREATE TABLE t (id int PRIMARY KEY, v text); CREATE VIEW w AS SELECT id FROM t;",
    )
    .await;
    let worker = app.start_worker(worker_config(&app)).await;
    let report_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&report_dir).unwrap();
    let synced = sync_directly(&app, &source.name).await;
    assert_eq!(synced["status"], "succeeded", "{synced}");
    worker.shutdown.cancel();
    let _ = worker.join.await;

    let report = report_dir.join("schemathesis.json");
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml");
    let output = tokio::process::Command::new(schemathesis())
        .arg("--config-file")
        .arg(&config)
        .args([
            "run",
            &app.url("/openapi.json"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
            "--max-examples",
            EXAMPLES_PER_OPERATION,
            // One worker: hypothesis's caches are not safe across schemathesis's threads.
            "--workers",
            "1",
            "--no-color",
            "--report",
            "json",
            "--report-json-path",
        ])
        .arg(&report)
        .current_dir(&report_dir)
        .output()
        .await
        .expect("running schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let generated = report["test_cases"]["generated"].as_u64().unwrap();
    assert!(
        generated >= 1000,
        "only {generated} generated requests:\n{stdout}"
    );
    assert_eq!(report["test_cases"]["with_failures"], 0, "{stdout}");
    assert_eq!(report["operations"]["tested"], 54, "{stdout}");
    // Its seed reproduces the run: `st run <url>/openapi.json --seed <seed> ...`.
    let seed = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Seed: "))
        .unwrap_or("?");
    println!("schemathesis: {generated} test cases over 54 operations, 0 failures (seed {seed})");
}

/// Syncs a loopback source (which the API's default policy refuses) through the enqueue path
/// `POST /sync` takes after validation, and waits for it.
async fn sync_directly(app: &TestApp, dbname: &str) -> Value {
    use pg_catalog_sync::crypto::CredentialsKey;
    use pg_catalog_sync::queue::{EnqueueRequest, enqueue_all};
    use pg_catalog_sync::source::SourceTarget;
    let (host, port) = server_host_port();
    let key = CredentialsKey::from_base64(&app.key.clone().into()).unwrap();
    let request = EnqueueRequest {
        target: SourceTarget {
            host,
            port,
            user: "postgres".into(),
            dbname: dbname.into(),
            sslmode: None,
        },
        secrets: Default::default(),
        max_attempts: 3,
        schemas: Default::default(),
    };
    let enqueued = enqueue_all(&app.pool, QUEUE, &key, &[request])
        .await
        .unwrap();
    app.wait_for_sync(
        &enqueued[0].sync_id.to_string(),
        std::time::Duration::from_secs(30),
    )
    .await
}
