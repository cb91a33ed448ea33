//! `GET /metrics`: Prometheus text with HTTP, enqueue, sync outcome, pickup and queue-depth
//! figures that follow what the service did.

mod common;

use common::*;
use reqwest::StatusCode;

/// The value of the sample `name` (with its labels, exactly as rendered), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_follow_what_the_service_did() {
    let app = spawn_app().await;
    let mock = MockSource::spawn().await;
    let mut config = worker_config(&app);
    config.external_metadata_url = Some(mock.url.clone());
    let _worker = app.start_worker(config).await;

    let ok = app.sync_and_wait(&synthetic_body("2x3x4")).await;
    assert_eq!(ok["status"], "succeeded");
    let failed = app.sync_and_wait(&synthetic_body("1x1x1;status=401")).await;
    assert_eq!(failed["status"], "failed");
    let (_, queued) = app.post_sync(&synthetic_body("1x1x1;hang")).await;
    assert!(queued["sync_id"].is_string());

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();

    assert_eq!(
        sample(&text, "pgcs_syncs_enqueued_total"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"pgcs_syncs_finished_total{outcome="succeeded"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"pgcs_syncs_finished_total{outcome="failed"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"pgcs_objects_written_total{kind="tables"}"#),
        Some(6.0)
    );
    assert_eq!(
        sample(&text, r#"pgcs_objects_written_total{kind="columns"}"#),
        Some(24.0)
    );
    assert_eq!(
        sample(&text, r#"pgcs_syncs{status="succeeded"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&text, r#"pgcs_syncs{status="failed"}"#), Some(1.0));
    let active = ["queued", "running"]
        .iter()
        .filter_map(|s| sample(&text, &format!(r#"pgcs_syncs{{status="{s}"}}"#)))
        .sum::<f64>();
    assert_eq!(active, 1.0, "the hanging sync is queued or running");
    assert!(sample(&text, "pgcs_sync_pickup_seconds_count").unwrap() >= 2.0);
    assert!(
        sample(
            &text,
            r#"pgcs_http_requests_total{method="POST",route="/sync",status="202"}"#
        )
        .unwrap()
            >= 3.0
    );
    assert!(
        sample(
            &text,
            r#"pgcs_http_requests_total{method="GET",route="/syncs/{id}",status="200"}"#
        )
        .unwrap()
            >= 2.0
    );
    assert!(text.contains("pgcs_http_request_duration_seconds_bucket"));
    assert!(!text.contains("synthetic:"), "no source names in metrics");
}
