//! Access control: bearer tokens on the API, and the allow-list of hosts a sync may reach,
//! checked at enqueue and again by the worker after DNS resolution.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn with_api_tokens_every_endpoint_but_health_needs_one() {
    let app = spawn_app_with(AppOptions {
        api_tokens: Some("first-token, second-token".into()),
        ..AppOptions::default()
    })
    .await;
    let get = async |path: &str, token: Option<&str>| {
        let mut request = app.client.get(app.url(path));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.send().await.unwrap()
    };
    for path in ["/health", "/ready"] {
        assert_eq!(get(path, None).await.status(), StatusCode::OK, "{path}");
    }
    for token in [None, Some("wrong"), Some("first-token-and-more"), Some("")] {
        let response = get("/catalogs", token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    assert_eq!(
        get("/catalogs", Some("second-token")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get("/no/such/route", Some("first-token")).await.status(),
        StatusCode::NOT_FOUND
    );

    let response = app
        .client
        .post(app.url("/sync"))
        .json(&synthetic_body("1x1x1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app
        .client
        .post(app.url("/sync"))
        .bearer_auth("first-token")
        .json(&synthetic_body("1x1x1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let syncs: i64 = sqlx::query_scalar("SELECT count(*) FROM syncs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(syncs, 1, "only the authorized request was queued");
}

#[tokio::test]
async fn by_default_internal_hosts_are_refused_at_enqueue() {
    let app = spawn_app_with(AppOptions {
        source_allowlist: None,
        ..AppOptions::default()
    })
    .await;
    for host in [
        "127.0.0.1",
        "localhost",
        "169.254.169.254",
        "::1",
        "0.0.0.0",
        // A cloud's IPv6 metadata service, cloud metadata through NAT64, "this network", and
        // loopback written as the C resolver also reads it.
        "fd00:ec2::254",
        "64:ff9b::a9fe:a9fe",
        "0.1.2.3",
        "2130706433",
        "0x7f.1",
        "017700000001",
    ] {
        let mut body = sync_body("postgres");
        body["host"] = json!(host);
        let (status, error) = app.post_sync(&body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{host}: {error}");
        assert_eq!(error["error"]["field"], "host");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not allowed"),
            "{error}"
        );
    }
    let (status, _) = app.post_sync(&synthetic_body("1x1x1")).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "other hosts are left to the worker's check"
    );
}

#[tokio::test]
async fn the_worker_checks_where_a_host_resolves() {
    // The API lets "localhost" through by name; the worker's list has no loopback network.
    let app = spawn_app().await;
    let mut config = worker_config(&app);
    config.source_allowlist = Some("10.0.0.0/8".into());
    let strict = app.start_worker(config).await;
    let mut body = sync_body("postgres");
    body["host"] = json!("localhost");
    let (_, accepted) = app.post_sync(&body).await;
    let sync = app
        .wait_for_sync(
            accepted["sync_id"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(sync["status"], "failed");
    assert_eq!(sync["attempts"], 1, "a refused host is a permanent failure");
    let error = sync["last_error"].as_str().unwrap();
    assert!(
        error.contains("not allowed") && error.contains("resolved to"),
        "{error}"
    );

    // Listed by name, the same host is reached.
    strict.shutdown.cancel();
    strict.join.await.unwrap().unwrap();
    let mut config = worker_config(&app);
    config.source_allowlist = Some("localhost".into());
    let _allowed = app.start_worker(config).await;
    let mut body = sync_body("postgres");
    body["host"] = json!("LOCALHOST");
    let sync = app.sync_and_wait(&body).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
}

/// `API_TOKENS_FILE`: the API binary reads named, scoped tokens from a file (comments and blank
/// lines allowed), and refuses to start on a malformed one without quoting any token.
#[tokio::test]
async fn the_api_reads_scoped_tokens_from_a_file() {
    let store = TestDatabase::create("pgcs_tokens").await;
    let dir = std::env::temp_dir().join(format!("pgcs-tokens-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tokens");
    std::fs::write(
        &file,
        "# who may do what\nreader:read:file-reader-token\n\nci:read+sync:file-ci-token\n",
    )
    .unwrap();
    let port = free_port();
    let spawn = |tokens_file: &std::path::Path| {
        std::process::Command::new(binary("pg-catalog-sync"))
            .env("DATABASE_URL", &store.url)
            .env(
                "CREDENTIALS_KEY",
                pg_catalog_sync::crypto::CredentialsKey::generate_base64(),
            )
            .env("SOURCE_ALLOWLIST", LOOPBACK)
            .env("BIND_ADDR", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("API_TOKENS_FILE", tokens_file)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut api = spawn(&file);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !matches!(client.get(format!("{base}/ready")).send().await, Ok(r) if r.status().is_success())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the API did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let post = async |token: &str| {
        client
            .post(format!("{base}/sync"))
            .bearer_auth(token)
            .json(&synthetic_body("1x1x1"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(post("file-reader-token").await, StatusCode::FORBIDDEN);
    assert_eq!(post("file-ci-token").await, StatusCode::ACCEPTED);
    assert_eq!(post("unknown").await, StatusCode::UNAUTHORIZED);
    api.kill().unwrap();
    api.wait().unwrap();

    std::fs::write(
        &file,
        "ok:read:fine-token\nbroken:read+write:secret-in-file\n",
    )
    .unwrap();
    let refused = spawn(&file).wait_with_output().unwrap();
    assert!(
        !refused.status.success(),
        "a malformed token file stops the API"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("unknown scope \"write\""), "{stderr}");
    assert!(!stderr.contains("secret-in-file"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
