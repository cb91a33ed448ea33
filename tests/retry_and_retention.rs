//! Manual retry (`POST /syncs/{id}/retry`) of failed and cancelled syncs with their sealed
//! credentials, and the retention that deletes old syncs and, after it, those credentials.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A login role that does not exist yet: syncs as it fail permanently until it is created.
struct LateRole(String);

impl LateRole {
    fn new() -> Self {
        Self(format!("pgcs_late_{}", uuid::Uuid::new_v4().simple()))
    }

    async fn create(&self, db: &TestDatabase) {
        db.execute(&format!("CREATE ROLE {} LOGIN", self.0)).await;
    }
}

impl Drop for LateRole {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(admin) = sqlx::PgPool::connect(&admin_url()).await {
                    let _ =
                        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {name}")))
                            .execute(&admin)
                            .await;
                }
            });
        })
        .join();
    }
}

fn body_as(role: &LateRole, dbname: &str) -> Value {
    let mut body = sync_body(dbname);
    body["user"] = json!(role.0);
    body["password"] = json!("retry-me-secret");
    body
}

#[tokio::test]
async fn a_failed_sync_is_retried_by_hand_once_the_source_is_fixed() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", "CREATE TABLE t (id int PRIMARY KEY)").await;
    let role = LateRole::new();

    let failed = app.sync_and_wait(&body_as(&role, &source.name)).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let failed_id = failed["sync_id"].as_str().unwrap().to_owned();

    role.create(&source).await;
    let (status, retried) = app
        .send(
            reqwest::Method::POST,
            &format!("/syncs/{failed_id}/retry"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{retried}");
    assert_eq!(retried["catalog_id"], failed["catalog_id"]);
    let retry_id = retried["sync_id"].as_str().unwrap();
    assert_ne!(retry_id, failed_id);
    let done = app.wait_for_sync(retry_id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["stats"]["tables"], 1);

    // The old sync keeps its history.
    let (_, old) = app.get(&format!("/syncs/{failed_id}")).await;
    assert_eq!(old["status"], "failed");
    assert_eq!(old["attempts"], 1);
    let catalog = failed["catalog_id"].as_str().unwrap();
    let (_, history) = app.get(&format!("/catalogs/{catalog}/syncs")).await;
    assert_eq!(names(&history, "sync_id"), [retry_id, failed_id.as_str()]);

    // Only failed and cancelled syncs can be retried; a succeeded one keeps no credentials.
    let (status, body) = app
        .send(
            reqwest::Method::POST,
            &format!("/syncs/{retry_id}/retry"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("succeeded"),
        "{body}"
    );
    let stored: Option<Value> =
        sqlx::query_scalar("SELECT credentials FROM syncs WHERE id = $1::uuid")
            .bind(retry_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, None, "a succeeded sync keeps no credentials");

    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        app.send(
            reqwest::Method::POST,
            &format!("/syncs/{unknown}/retry"),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = app
        .send(reqwest::Method::POST, "/syncs/nope/retry", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "sync_id");
}

#[tokio::test]
async fn a_cancelled_sync_is_retried_with_its_schema_filter() {
    let app = spawn_app().await; // no worker yet: the sync stays queued
    let source = TestDatabase::with_ddl(
        "pgcs_src",
        "CREATE SCHEMA a; CREATE TABLE a.t (id int); CREATE SCHEMA b; CREATE TABLE b.t (id int);",
    )
    .await;
    let mut body = sync_body(&source.name);
    body["schemas"] = json!({"include": ["a"]});
    let (_, queued) = app.post_sync(&body).await;
    let cancelled_id = queued["sync_id"].as_str().unwrap();
    let (status, _) = app.delete(&format!("/syncs/{cancelled_id}")).await;
    assert_eq!(status, StatusCode::OK);

    let (status, retried) = app
        .send(
            reqwest::Method::POST,
            &format!("/syncs/{cancelled_id}/retry?wait=0s"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{retried}");
    let retry_id = retried["sync"]["sync_id"].as_str().unwrap();
    assert_eq!(retried["sync"]["status"], "queued");
    let _worker = app.start_worker(worker_config(&app)).await;
    let done = app.wait_for_sync(retry_id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let catalog = done["catalog_id"].as_str().unwrap();
    let (_, schemas) = app.get(&format!("/catalogs/{catalog}/schemas")).await;
    assert_eq!(
        names(&schemas, "name"),
        ["a"],
        "the retry keeps the schema filter"
    );
}

#[tokio::test]
async fn retention_deletes_old_syncs_but_the_latest_and_then_its_credentials() {
    let app = spawn_app().await;
    let mut config = worker_config(&app);
    config.sync_retention = Duration::from_secs(1);
    let _worker = app.start_worker(config).await;
    let source = TestDatabase::create("pgcs_src").await;
    let role = LateRole::new(); // never created: every sync fails

    let first = app.sync_and_wait(&body_as(&role, &source.name)).await;
    let second = app.sync_and_wait(&body_as(&role, &source.name)).await;
    assert_eq!(
        (&first["status"], &second["status"]),
        (&json!("failed"), &json!("failed"))
    );
    let (first_id, second_id) = (
        first["sync_id"].as_str().unwrap(),
        second["sync_id"].as_str().unwrap(),
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    while app.get(&format!("/syncs/{first_id}")).await.0 != StatusCode::NOT_FOUND {
        assert!(
            Instant::now() < deadline,
            "retention never deleted the older sync"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, latest) = app.get(&format!("/syncs/{second_id}")).await;
    assert_eq!(status, StatusCode::OK, "the catalog's latest sync is kept");
    assert_eq!(latest["status"], "failed");
    let attempts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sync_attempts WHERE sync_id = $1::uuid")
            .bind(first_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(attempts, 0, "a deleted sync's attempts go with it");

    // Its credentials went with the retention age: it can no longer be retried.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let sealed: Option<Value> =
            sqlx::query_scalar("SELECT credentials FROM syncs WHERE id = $1::uuid")
                .bind(second_id)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if sealed.is_none() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention never removed the credentials"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = app
        .send(
            reqwest::Method::POST,
            &format!("/syncs/{second_id}/retry"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("retention"), "{body}");
    assert!(message.contains("POST /sync"), "{body}");
}
