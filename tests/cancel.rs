//! `DELETE /syncs/{id}`: a queued sync is never run, a running one stops before it writes,
//! an ended one cannot be cancelled.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn cancel(app: &TestApp, sync_id: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .delete(app.url(&format!("/syncs/{sync_id}")))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_queued_sync_is_cancelled_and_never_runs() {
    let app = spawn_app().await;
    let mock = MockSource::spawn().await;
    let (_, queued) = app.post_sync(&synthetic_body("1x2x2")).await;
    let id = queued["sync_id"].as_str().unwrap().to_owned();

    let (status, sync) = cancel(&app, &id).await;
    assert_eq!(
        (status, sync["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{sync}"
    );
    assert!(sync["finished_at"].is_string());
    let (status, again) = cancel(&app, &id).await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    assert_eq!(
        cancel(&app, &uuid::Uuid::new_v4().to_string()).await.0,
        StatusCode::NOT_FOUND
    );

    // The source is free again: a new request makes a new sync, which runs; the cancelled
    // one's job is skipped.
    let (_, fresh) = app.post_sync(&synthetic_body("1x2x2")).await;
    assert_ne!(fresh["sync_id"].as_str(), Some(id.as_str()));
    let mut config = worker_config(&app);
    config.external_metadata_url = Some(mock.url.clone());
    let _worker = app.start_worker(config).await;
    let done = app
        .wait_for_sync(fresh["sync_id"].as_str().unwrap(), Duration::from_secs(30))
        .await;
    assert_eq!(done["status"], "succeeded");
    let (_, cancelled) = app.get(&format!("/syncs/{id}")).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["attempts"], 0, "never run");
}

#[tokio::test]
async fn a_running_sync_stops_before_writing() {
    let app = spawn_app().await;
    let mock = MockSource::spawn().await;
    let mut config = worker_config(&app);
    config.external_metadata_url = Some(mock.url.clone());
    let _worker = app.start_worker(config).await;
    let (_, accepted) = app
        .post_sync(&synthetic_body("1x3x3;latency_ms=1000"))
        .await;
    let id = accepted["sync_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.get(&format!("/syncs/{id}")).await.1["status"] != "running" {
        assert!(Instant::now() < deadline, "the sync did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, sync) = cancel(&app, &id).await;
    assert_eq!(
        (status, sync["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );

    // Long after the source answered, the sync is still cancelled and nothing was written.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let (_, after) = app.get(&format!("/syncs/{id}")).await;
    assert_eq!(after["status"], "cancelled", "{after}");
    let (_, tables) = app
        .get(&format!(
            "/catalogs/{}/tables",
            accepted["catalog_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(tables, Value::Array(vec![]));
}
