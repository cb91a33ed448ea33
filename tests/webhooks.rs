//! Webhooks with real receivers: a schema change on the source reaches a subscriber as one
//! signed `schema.changed` event, classified, with the views it breaks; failing receivers get
//! the event on a later attempt; a 410 disables the subscription; targets the allow-list
//! refuses are refused when subscribing and again when delivering. (Receivers that are not
//! this crate's: tests/webhook_receivers.rs.)

mod common;

use std::time::Duration;

use common::receiver::Receiver;
use common::*;
use pg_catalog_sync::crypto::CredentialsKey;
use pg_catalog_sync::events::SigningKey;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

async fn subscribe(app: &TestApp, body: Value) -> Value {
    let (status, created) = app.send(Method::POST, "/webhooks", Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    created
}

/// Waits until the delivery is no longer pending or retrying.
async fn ended_delivery(app: &TestApp, webhook: &str, delivery: &str) -> Value {
    delivery_when(app, webhook, delivery, |d| {
        d["status"] == "succeeded" || d["status"] == "failed"
    })
    .await
}

/// Waits until the delivery has made `n` attempts.
async fn attempted(app: &TestApp, webhook: &str, delivery: &str, n: i64) -> Value {
    delivery_when(app, webhook, delivery, |d| {
        d["attempts"].as_i64().unwrap() >= n
    })
    .await
}

/// The delivery as the API shows it, once `done` holds for it.
async fn delivery_when(
    app: &TestApp,
    webhook: &str,
    delivery: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (status, d) = app
            .get(&format!("/webhooks/{webhook}/deliveries/{delivery}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{d}");
        if done(&d) {
            return d;
        }
        assert!(std::time::Instant::now() < deadline, "delivery still {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const SOURCE: &str = "
CREATE TABLE customers (id int PRIMARY KEY, email text, name text);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers (id));
CREATE VIEW customer_emails AS SELECT id, email FROM customers;
CREATE VIEW newsletter AS SELECT email FROM customer_emails;
CREATE VIEW customer_names AS SELECT id, name FROM customers;
";

#[tokio::test]
async fn a_dropped_column_reaches_subscribers_as_one_signed_breaking_event() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_hook_src", SOURCE).await;
    let body = sync_body(&source.name);
    let first = app.sync_and_wait(&body).await;
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();

    let all = Receiver::spawn().await;
    let breaking = Receiver::spawn().await;
    let outcomes = Receiver::spawn().await;
    let hook = subscribe(
        &app,
        json!({"url": all.url, "catalogs": [catalog], "events": ["schema.changed"]}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap();
    subscribe(
        &app,
        json!({"url": breaking.url, "catalogs": "all", "events": ["schema.changed"], "breaking_only": true}),
    )
    .await;
    subscribe(
        &app,
        json!({"url": outcomes.url, "catalogs": "all", "events": ["sync.succeeded", "sync.failed"]}),
    )
    .await;

    // A non-breaking change: only the subscriber of every change hears of it.
    source
        .execute("CREATE INDEX customers_name ON customers (name)")
        .await;
    app.sync_and_wait(&body).await;
    let got = all.wait_for(1, WAIT).await;
    let event = got[0].json();
    assert_eq!(event["type"], "schema.changed", "{event}");
    assert_eq!(event["data"]["breaking"], false, "{event}");
    assert_eq!(event["data"]["sequence"], 1, "{event}");

    // The column is dropped with the views that read it.
    source
        .execute("ALTER TABLE customers DROP COLUMN email CASCADE")
        .await;
    let second = app.sync_and_wait(&body).await;
    let got = all.wait_for(2, WAIT).await;
    assert!(
        got[1].verify(secret),
        "the signature verifies with the secret"
    );
    let other = SigningKey::generate();
    assert!(!got[1].verify(other.expose_secret()), "nor with another");
    let event = got[1].json();
    assert_eq!(got[1].id, got[1].id.trim());
    assert_eq!(event["type"], "schema.changed");
    assert_eq!(event["data"]["catalog_id"], catalog.as_str());
    assert_eq!(event["data"]["sync_id"], second["sync_id"]);
    assert_eq!(event["data"]["sequence"], 2, "sequence numbers increase");
    assert_eq!(event["data"]["breaking"], true);
    let changes = event["data"]["changes"].as_array().unwrap();
    let column = changes
        .iter()
        .find(|c| c["object"] == "column" && c["relation"] == "customers" && c["name"] == "email")
        .unwrap_or_else(|| panic!("the dropped column is in {event}"));
    assert_eq!(column["action"], "removed");
    assert_eq!(column["classification"], "breaking");
    let radius: Vec<(String, String)> = column["blast_radius"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_owned(),
                d["relation"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // The lineage is column-exact: the views reading `email`, and those reading them, are
    // named; the view reading only other columns of `customers` is not.
    for view in ["customer_emails", "newsletter"] {
        assert!(
            radius.contains(&("view".into(), view.into())),
            "{view} in {radius:?}"
        );
    }
    assert!(
        !radius.contains(&("view".into(), "customer_names".into())),
        "{radius:?}"
    );
    let newsletter = column["blast_radius"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["relation"] == "newsletter")
        .unwrap();
    assert_eq!(
        newsletter["path"],
        json!([
            {"schema": "public", "name": "customers"},
            {"schema": "public", "name": "customer_emails"},
            {"schema": "public", "name": "newsletter"}
        ])
    );
    let relation = changes
        .iter()
        .find(|c| c["object"] == "relation" && c["relation"] == "customers" && c["name"].is_null());
    assert!(relation.is_none_or(|r| {
        r["blast_radius"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["kind"] == "foreign_key" && d["relation"] == "orders")
    }));
    let removed_views: Vec<&str> = changes
        .iter()
        .filter(|c| c["object"] == "relation" && c["action"] == "removed")
        .map(|c| c["relation"].as_str().unwrap())
        .collect();
    assert_eq!(removed_views, ["customer_emails", "newsletter"]);

    // The breaking-only subscriber heard of the drop alone, and only of its breaking changes.
    let got = breaking.wait_for(1, WAIT).await;
    let event = got[0].json();
    assert_eq!(event["data"]["sync_id"], second["sync_id"]);
    assert!(
        event["data"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["classification"] == "breaking"),
        "{event}"
    );

    // An unchanged re-sync sends no schema.changed, but a sync.succeeded.
    app.sync_and_wait(&body).await;
    let outcomes_got = outcomes.wait_for(3, WAIT).await;
    assert!(
        outcomes_got
            .iter()
            .all(|r| r.json()["type"] == "sync.succeeded")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(all.received().len(), 2);
    assert_eq!(breaking.received().len(), 1);
    let hook_id = hook["id"].as_str().unwrap();
    let (_, deliveries) = app.get(&format!("/webhooks/{hook_id}/deliveries")).await;
    let deliveries = deliveries.as_array().unwrap();
    assert_eq!(deliveries.len(), 2);
    assert!(deliveries.iter().all(|d| d["status"] == "succeeded"
        && d["attempts"] == 1
        && d["last_status_code"] == 200
        && d["event_type"] == "schema.changed"));
}

#[tokio::test]
async fn a_failing_receiver_gets_the_event_on_its_third_attempt() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let receiver = Receiver::spawn().await;
    receiver.answer(&[500, 500]);
    let hook = subscribe(
        &app,
        json!({"url": receiver.url, "catalogs": "all", "events": ["sync.failed"]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    let (status, queued) = app
        .send(Method::POST, &format!("/webhooks/{id}/test"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let delivery = ended_delivery(&app, id, queued["delivery_id"].as_str().unwrap()).await;
    assert_eq!(delivery["status"], "succeeded", "{delivery}");
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(delivery["last_status_code"], 200);
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.id == got[0].id), "one webhook-id");
    assert!(got[2].verify(hook["secret"].as_str().unwrap()));
    assert_eq!(got[2].json()["type"], "webhook.test");
    // The backoff separates the attempts (100 ms at least, with jitter, in the tests' config).
    assert!(got[1].at - got[0].at >= Duration::from_millis(50));
    let (_, hook) = app.get(&format!("/webhooks/{id}")).await;
    assert_eq!(hook["consecutive_failures"], 0, "a success ends the run");

    // The job of the first attempt, run again (as after its worker died before apalis heard
    // of its end) while the delivery waits for a later attempt, finds that attempt recorded
    // and sends nothing.
    sqlx::query("UPDATE webhook_deliveries SET status = 'retrying' WHERE id = $1::uuid")
        .bind(queued["delivery_id"].as_str().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let stale = json!({"delivery_id": queued["delivery_id"], "after_attempts": 0});
    sqlx::query(
        "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at,
                                  priority, metadata)
         VALUES ($1, $2, $3, 'Pending', 0, 25, now(), 0, ''::hstore)",
    )
    .bind(ulid::Ulid::generate().to_string())
    .bind(format!("{QUEUE}.webhooks"))
    .bind(serde_json::to_vec(&stale).unwrap())
    .execute(&app.pool)
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = $1 AND status <> 'Done'",
        )
        .bind(format!("{QUEUE}.webhooks"))
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if pending == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stale job never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(receiver.received().len(), 3, "nothing more was sent");
    let (_, again) = app
        .get(&format!(
            "/webhooks/{id}/deliveries/{}",
            queued["delivery_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(again["attempts"], 3);

    // A redelivery sends the same event again.
    let (status, again) = app
        .send(
            Method::POST,
            &format!(
                "/webhooks/{id}/deliveries/{}/redeliver",
                queued["delivery_id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["event_id"], queued["event_id"]);
    let redelivered = ended_delivery(&app, id, again["delivery_id"].as_str().unwrap()).await;
    assert_eq!(redelivered["status"], "succeeded");
    assert_eq!(receiver.received()[3].id, got[0].id);
}

#[tokio::test]
async fn a_receiver_down_at_first_gets_the_event_once_it_is_back() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let port = free_port();
    let hook = subscribe(
        &app,
        json!({"url": format!("http://127.0.0.1:{port}/hook"), "catalogs": "all", "events": ["sync.failed"]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    let (_, queued) = app
        .send(Method::POST, &format!("/webhooks/{id}/test"), None)
        .await;
    // Refused connections are retried: the delivery waits for its next attempt.
    let d = attempted(&app, id, queued["delivery_id"].as_str().unwrap(), 2).await;
    assert_eq!(d["status"], "retrying", "{d}");
    assert!(d["last_status_code"].is_null());
    assert!(d["next_attempt_at"].is_string());
    let error = d["last_error"].as_str().unwrap();
    assert!(!error.is_empty());
    assert!(
        !error.contains("/hook"),
        "the URL stays out of errors: {error}"
    );
    let receiver = Receiver::spawn_on(port).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].id, queued["event_id"].as_str().unwrap());
    let d = ended_delivery(&app, id, queued["delivery_id"].as_str().unwrap()).await;
    assert_eq!(d["status"], "succeeded", "{d}");
}

#[tokio::test]
async fn a_receiver_that_answers_gone_disables_its_subscription() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let receiver = Receiver::spawn().await;
    receiver.answer(&[410]);
    let hook = subscribe(
        &app,
        json!({"url": receiver.url, "catalogs": "all", "events": ["schema.changed"]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    let (_, queued) = app
        .send(Method::POST, &format!("/webhooks/{id}/test"), None)
        .await;
    let d = ended_delivery(&app, id, queued["delivery_id"].as_str().unwrap()).await;
    assert_eq!(d["status"], "failed");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["last_status_code"], 410);
    let (_, hook) = app.get(&format!("/webhooks/{id}")).await;
    assert_eq!(hook["enabled"], false);
    assert_eq!(hook["disabled_reason"], "the receiver answered 410 Gone");
    assert!(hook.get("secret").is_none(), "the secret is shown once");
    // The dashboard shows why deliveries stopped.
    let page = app
        .client
        .get(app.url("/ui/webhooks"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&receiver.url), "{page}");
    assert!(page.contains("the receiver answered 410 Gone"), "{page}");
    assert!(page.contains("webhook.test"), "{page}");
    let (status, refused) = app
        .send(Method::POST, &format!("/webhooks/{id}/test"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");

    // Enabled again, it delivers.
    let (status, hook) = app
        .send(
            Method::PATCH,
            &format!("/webhooks/{id}"),
            Some(&json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{hook}");
    assert_eq!(hook["enabled"], true);
    let (_, queued) = app
        .send(Method::POST, &format!("/webhooks/{id}/test"), None)
        .await;
    let d = ended_delivery(&app, id, queued["delivery_id"].as_str().unwrap()).await;
    assert_eq!(d["status"], "succeeded");
}

#[tokio::test]
async fn internal_targets_are_refused_when_subscribing_and_when_delivering() {
    // The default policy: no allow-list.
    let app = spawn_app_with(AppOptions {
        webhook_allowlist: None,
        ..AppOptions::default()
    })
    .await;
    let refused = [
        (
            json!({"url": "http://169.254.169.254/latest/meta-data", "catalogs": "all", "events": ["schema.changed"]}),
            "url",
        ),
        (
            json!({"url": "http://127.0.0.1:9/hook", "catalogs": "all", "events": ["schema.changed"]}),
            "url",
        ),
        (
            json!({"url": "http://localhost:9/hook", "catalogs": "all", "events": ["schema.changed"]}),
            "url",
        ),
        (
            json!({"url": "http://[::1]:9/hook", "catalogs": "all", "events": ["schema.changed"]}),
            "url",
        ),
        (
            json!({"url": "ftp://example.com/hook", "catalogs": "all", "events": ["schema.changed"]}),
            "url",
        ),
        (
            json!({"url": "https://user:pw@example.com/hook", "catalogs": "all", "events": ["schema.changed"]}),
            "url",
        ),
        (
            json!({"url": "https://example.com/hook", "catalogs": "all", "events": ["schema.dropped"]}),
            "events",
        ),
        (
            json!({"url": "https://example.com/hook", "catalogs": "all", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://example.com/hook", "catalogs": ["nope"], "events": ["sync.failed"]}),
            "catalogs",
        ),
        (
            json!({"url": "https://example.com/hook", "events": ["sync.failed"]}),
            "catalogs",
        ),
        (
            json!({"url": "https://example.com/hook", "catalogs": "all", "events": ["sync.failed"], "secret": "hunter2"}),
            "secret",
        ),
        (
            json!({"url": "https://example.com/hook", "catalogs": "all", "events": ["sync.failed"], "colour": "red"}),
            "colour",
        ),
    ];
    for (body, field) in refused {
        let (status, error) = app.send(Method::POST, "/webhooks", Some(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["error"]["field"], field, "{body}: {error}");
    }
    let (_, list) = app.get("/webhooks").await;
    assert_eq!(list, json!([]), "nothing was stored");

    // A subscription the API admitted (its allow-list then had loopback) is refused again by
    // a worker whose allow-list does not: nothing reaches the receiver.
    let receiver = Receiver::spawn().await;
    let id = "00000000-0000-7000-8000-000000000001";
    let key = CredentialsKey::from_base64(&app.key.clone().into()).unwrap();
    let sealed = key.seal(
        &SigningKey::generate(),
        uuid::Uuid::parse_str(id).unwrap().as_bytes(),
    );
    sqlx::query(
        "INSERT INTO webhooks (id, url, sealed_secret, events)
         VALUES ($1::uuid, $2, $3, '{sync.failed}')",
    )
    .bind(id)
    .bind(receiver.url.replace("127.0.0.1", "localhost"))
    .bind(sealed)
    .execute(&app.pool)
    .await
    .unwrap();
    let mut config = worker_config(&app);
    config.webhooks.webhook_allowlist = Some("10.0.0.0/8".into());
    let _worker = app.start_worker(config).await;
    let (_, queued) = app
        .send(Method::POST, &format!("/webhooks/{id}/test"), None)
        .await;
    let d = attempted(&app, id, queued["delivery_id"].as_str().unwrap(), 1).await;
    assert!(
        d["last_error"].as_str().unwrap().contains("is not allowed"),
        "{d}"
    );
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_failed_sync_raises_sync_failed_with_its_error() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let receiver = Receiver::spawn().await;
    let hook = subscribe(
        &app,
        json!({"url": receiver.url, "catalogs": "all", "events": ["sync.failed"]}),
    )
    .await;
    let failed = app.sync_and_wait(&sync_body("pgcs_no_such_database")).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let got = receiver.wait_for(1, WAIT).await;
    assert!(got[0].verify(hook["secret"].as_str().unwrap()));
    let event = got[0].json();
    assert_eq!(event["type"], "sync.failed", "{event}");
    assert_eq!(event["data"]["sync_id"], failed["sync_id"]);
    assert_eq!(event["data"]["error"], failed["last_error"]);
    assert_eq!(event["data"]["source"]["dbname"], "pgcs_no_such_database");
}
