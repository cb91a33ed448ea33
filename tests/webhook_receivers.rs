//! Receivers written apart from the service verify its signatures: the CLI's `webhooks listen`
//! and the README's Python receiver (`examples/webhook_receiver.py`, standard library only).
//! Each prints the events whose signature verifies and refuses the others with 401.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use pg_catalog_sync::events::SigningKey;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

async fn subscribe(app: &TestApp, body: Value) -> Value {
    let (status, created) = app.send(Method::POST, "/webhooks", Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

/// Sends a test event to the subscription and waits for its first attempt to end.
async fn test_event(app: &TestApp, webhook: &str) -> Value {
    let (status, queued) = app
        .send(Method::POST, &format!("/webhooks/{webhook}/test"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let path = format!(
        "/webhooks/{webhook}/deliveries/{}",
        queued["delivery_id"].as_str().unwrap()
    );
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, d) = app.get(&path).await;
        if d["attempts"].as_i64().unwrap() >= 1 {
            return d;
        }
        assert!(std::time::Instant::now() < deadline, "{d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_port(port: u16) {
    let deadline = std::time::Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the receiver did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_readmes_python_receiver_verifies_the_signature() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let secret = SigningKey::generate().expose_secret().to_owned();
    let port = free_port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/webhook_receiver.py");
    let mut receiver = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .env("WEBHOOK_SECRET", &secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    wait_for_port(port).await;
    let url = format!("http://127.0.0.1:{port}/");
    let forged = subscribe(
        &app,
        json!({"url": url, "catalogs": "all", "events": ["sync.failed"]}),
    )
    .await;
    let refused = test_event(&app, forged["id"].as_str().unwrap()).await;
    assert_eq!(refused["last_status_code"], 401, "{refused}");
    app.delete(&format!("/webhooks/{}", forged["id"].as_str().unwrap()))
        .await;

    let hook = subscribe(
        &app,
        json!({"url": url, "catalogs": "all", "events": ["sync.failed"], "secret": secret}),
    )
    .await;
    let delivered = test_event(&app, hook["id"].as_str().unwrap()).await;
    assert_eq!(delivered["last_status_code"], 204, "{delivered}");
    assert_eq!(delivered["status"], "succeeded", "{delivered}");
    receiver.kill().unwrap();
    let output = receiver.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = stdout.lines().next().unwrap_or_default();
    let event_id = delivered["event_id"].as_str().unwrap();
    assert!(
        line.starts_with(&format!("webhook.test {event_id} ")),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "the forged request printed nothing"
    );
}

#[tokio::test]
async fn the_cli_listener_prints_verified_events_and_refuses_forged_ones() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let secret = SigningKey::generate().expose_secret().to_owned();
    let port = free_port();
    let listener = Command::new(binary("pg-catalog-sync"))
        .args(["webhooks", "listen", "--json", "--count", "1"])
        .args(["--port", &port.to_string()])
        .env("PGCS_WEBHOOK_SECRET", &secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/events");
    // A subscription with another secret: the listener refuses its signature.
    let forged = subscribe(
        &app,
        json!({"url": url, "catalogs": "all", "events": ["sync.failed"]}),
    )
    .await;
    let hook = subscribe(
        &app,
        json!({"url": url, "catalogs": "all", "events": ["sync.failed"], "secret": secret}),
    )
    .await;
    wait_for_port(port).await;
    let forged_id = forged["id"].as_str().unwrap();
    let refused = test_event(&app, forged_id).await;
    assert_eq!(refused["last_status_code"], 401, "{refused}");
    assert_eq!(refused["status"], "retrying", "{refused}");
    app.delete(&format!("/webhooks/{forged_id}")).await;

    let id = hook["id"].as_str().unwrap();
    let delivered = test_event(&app, id).await;
    let output = tokio::task::spawn_blocking(move || listener.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let event: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(event["type"], "webhook.test", "{stdout}");
    assert_eq!(event["data"]["webhook_id"], id);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("refused a request"), "{stderr}");
    assert_eq!(delivered["status"], "succeeded", "{delivered}");
    assert_eq!(delivered["last_status_code"], 204);
}
