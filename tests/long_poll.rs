//! Long-polling: `GET /syncs/{id}?wait=` and `POST /sync?wait=` answer as soon as the sync ends
//! (woken by LISTEN/NOTIFY), or when the wait is over.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn mock_app() -> (TestApp, MockSource, pg_catalog_sync::queue::WorkerHandle) {
    let app = spawn_app_with(AppOptions {
        max_attempts: 1,
        ..AppOptions::default()
    })
    .await;
    let mock = MockSource::spawn().await;
    let mut config = worker_config(&app);
    config.external_metadata_url = Some(mock.url.clone());
    let worker = app.start_worker(config).await;
    (app, mock, worker)
}

async fn post_waiting(app: &TestApp, body: &Value, wait: &str) -> (StatusCode, Value, Duration) {
    let started = Instant::now();
    let response = app
        .client
        .post(app.url(&format!("/sync?wait={wait}")))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap(), started.elapsed())
}

#[tokio::test]
async fn a_waiting_status_request_returns_when_the_sync_ends() {
    let (app, _mock, _worker) = mock_app().await;
    let (_, accepted) = app.post_sync(&synthetic_body("1x2x2;latency_ms=700")).await;
    let id = accepted["sync_id"].as_str().unwrap();
    let started = Instant::now();
    let (status, sync) = app.get(&format!("/syncs/{id}?wait=20s")).await;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sync["status"], "succeeded", "{sync}");
    assert!(
        waited >= Duration::from_millis(500),
        "it waited for the sync: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(4),
        "woken by the notification, not the wait: {waited:?}"
    );

    // Already ended: no wait at all.
    let started = Instant::now();
    let (_, again) = app.get(&format!("/syncs/{id}?wait=20s")).await;
    assert_eq!(again["status"], "succeeded");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_wait_ends_with_the_current_status_when_nothing_happens() {
    let app = spawn_app().await; // no worker: the sync stays queued
    let (_, accepted) = app.post_sync(&synthetic_body("1x1x1")).await;
    let started = Instant::now();
    let (status, sync) = app
        .get(&format!(
            "/syncs/{}?wait=800ms",
            accepted["sync_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (status, sync["status"].as_str()),
        (StatusCode::OK, Some("queued"))
    );
    assert!(started.elapsed() >= Duration::from_millis(750));

    let (status, body, waited) = post_waiting(&app, &synthetic_body("1x1x2"), "600ms").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["error"]["code"], "wait_timeout");
    assert_eq!(body["sync"]["status"], "queued");
    assert!(waited >= Duration::from_millis(550));

    for wait in ["forever", "61s", "-1s"] {
        let (status, body) = app
            .get(&format!(
                "/syncs/{}?wait={wait}",
                accepted["sync_id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("wait")),
            "{wait}"
        );
    }
}

#[tokio::test]
async fn a_waiting_sync_request_answers_with_the_outcome() {
    let (app, _mock, _worker) = mock_app().await;
    let (status, sync, _) =
        post_waiting(&app, &synthetic_body("2x2x2;latency_ms=200"), "20s").await;
    assert_eq!(status, StatusCode::OK, "{sync}");
    assert_eq!(sync["status"], "succeeded");
    assert_eq!(sync["stats"]["tables"], 4);

    let (status, body, _) = post_waiting(&app, &synthetic_body("1x1x1;status=401"), "20s").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], "source_failed");
    assert!(body["error"]["message"].as_str().unwrap().contains("401"));
    assert_eq!(body["sync"]["status"], "failed");
}
