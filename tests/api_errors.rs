//! Bad input always gets a clear JSON error with the right status, and loses nothing.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn send(
    app: &TestApp,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let mut request = app.client.post(app.url("/sync")).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (
        status,
        response.json().await.expect("every error has a JSON body"),
    )
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let app = spawn_app().await;
    let json_ct = Some("application/json");

    let (status, body) = send(&app, json_ct, r#"{"host":"#).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );

    let (status, body) = send(&app, json_ct, "[1,2]").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );

    let (status, body) = send(&app, json_ct, vec![0xff, 0xfe, b'{']).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );

    let (status, body) = send(&app, Some("text/plain"), sync_body("x").to_string()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );

    let (status, body) = send(&app, None, sync_body("x").to_string()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");

    let huge = json!({"host": "h", "port": 5432, "user": "u", "dbname": "d", "password": "x".repeat(100_000)});
    let (status, body) = send(&app, json_ct, huge.to_string()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, _) = send(&app, json_ct, deep).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Field rules, each naming its field.
    for (patch, field) in [
        (json!({"host": " "}), "host"),
        (json!({"port": 0}), "port"),
        (json!({"port": 70000}), "port"),
        (json!({"port": "5432"}), "port"),
        (json!({"user": ""}), "user"),
        (json!({"dbname": null}), "dbname"),
        (json!({"sslmode": "maybe"}), "sslmode"),
        (json!({"color": "blue"}), "color"),
    ] {
        let mut body = sync_body("d");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, error) = send(&app, json_ct, body.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{patch}: {error}");
        assert_eq!(code(&error), "validation_failed");
        assert_eq!(error["error"]["field"], field, "{patch}: {error}");
    }

    // Nothing was enqueued by any of it.
    let (jobs, syncs): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM apalis.jobs), (SELECT count(*) FROM syncs)")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((jobs, syncs), (0, 0));
}

#[tokio::test]
async fn unknown_ids_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/syncs/{unknown}"),
        format!("/catalogs/{unknown}"),
        format!("/catalogs/{unknown}/tables"),
        format!("/catalogs/{unknown}/syncs"),
        format!("/catalogs/{unknown}/tables/public/t"),
        "/no/such/route".to_owned(),
    ] {
        let (status, body) = app.get(&path).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::NOT_FOUND, "not_found"),
            "{path}"
        );
    }
    for path in ["/syncs/not-a-uuid", "/catalogs/42"] {
        let (status, body) = app.get(path).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "validation_failed"),
            "{path}"
        );
    }
    let response = app
        .client
        .delete(app.url("/catalogs"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "method_not_allowed");

    // Pagination parameters.
    for query in [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "cursor=garbage",
        "cursor=eyJ4IjoxfQ",
        "colour=red",
    ] {
        let (status, body) = app.get(&format!("/catalogs?{query}")).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "validation_failed"),
            "{query}: {body}"
        );
    }

    // A known catalog, an unknown schema or table.
    let (_, accepted) = app.post_sync(&synthetic_body("1x1x1")).await;
    let catalog = accepted["catalog_id"].as_str().unwrap();
    let (status, _) = app
        .get(&format!("/catalogs/{catalog}/tables?schema=nope"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .get(&format!("/catalogs/{catalog}/tables/s0/nope"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/health").await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let (status, _) = app.get("/ready").await;
    assert_eq!(status, StatusCode::OK);
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn a_store_that_is_down_gets_503_json_errors() {
    let dead = format!("postgres://postgres@127.0.0.1:{}/gone", free_port());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy(&dead)
        .unwrap();
    let key = pg_catalog_sync::crypto::CredentialsKey::generate_base64();
    let state = pg_catalog_sync::api::AppState::new(
        pool,
        pg_catalog_sync::crypto::CredentialsKey::from_base64(&key.into()).unwrap(),
        QUEUE,
        3,
        64 * 1024,
    )
    .with_source_policy(pg_catalog_sync::access::SourcePolicy::parse(LOOPBACK).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(pg_catalog_sync::shutdown::serve(
        listener,
        pg_catalog_sync::api::router(state),
        tokio_util::sync::CancellationToken::new(),
    ));
    let client = reqwest::Client::new();

    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "liveness does not depend on the store"
    );
    let ready = client.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    for response in [
        client.get(format!("{base}/catalogs")).send().await.unwrap(),
        client
            .post(format!("{base}/sync"))
            .json(&sync_body("d"))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = response.json().await.unwrap();
        assert_eq!(code(&body), "store_unavailable");
        assert!(
            !body.to_string().contains("gone"),
            "no internal detail: {body}"
        );
    }
}

#[tokio::test]
async fn hostile_paths_and_cursors_get_4xx_json() {
    let app = spawn_app().await;
    let (_, accepted) = app.post_sync(&synthetic_body("1x1x1")).await;
    let c = accepted["catalog_id"].as_str().unwrap();
    let long = "x".repeat(10_000);
    let nul_cursor = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"["a\u0000","b"]"#)
    };
    for (path, expected) in [
        (
            format!("/catalogs/{c}/tables/%00/t"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/catalogs/{c}/tables/s/a%00b"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/catalogs/{c}/tables/{long}/t"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/catalogs/{c}/tables/%2E%2E/%2E%2E"),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/catalogs/{c}/tables/%FF/t"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/catalogs/{c}/tables?q=%00"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/catalogs/{c}/tables?schema={long}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/catalogs/{c}/tables?cursor={nul_cursor}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/catalogs/{c}/columns?cursor={nul_cursor}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/catalogs/{c}/tables?limit=99999999999999999999"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/catalogs/{c}/tables?limit=%FF"),
            StatusCode::BAD_REQUEST,
        ),
        ("/syncs/%00".to_owned(), StatusCode::BAD_REQUEST),
        // No parameter takes a NUL byte, whatever it filters.
        ("/audit?action=a%00b".to_owned(), StatusCode::BAD_REQUEST),
        (
            format!("/catalogs/{c}/privileges?grantee=%00"),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let response = app.client.get(app.url(&path)).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, expected, "{}: {body}", &path[..path.len().min(120)]);
        assert!(
            body["error"]["code"].is_string(),
            "{}: {body}",
            &path[..path.len().min(120)]
        );
    }
}
