//! Scheduled re-syncs: `PUT /catalogs/{id}/schedule` makes the workers re-sync a catalog on
//! their own; `DELETE` stops it and removes the credentials it kept.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn sync_count(app: &TestApp, catalog: &str) -> usize {
    let (items, _) = app
        .get_all_pages(&format!("/catalogs/{catalog}/syncs"))
        .await;
    items.len()
}

const PASSWORD: &str = "scheduled-secret-4711";

/// A source holding `ddl`, synced once: the source and its catalog id.
async fn synced_source(app: &TestApp, ddl: &str) -> (TestDatabase, String) {
    let source = TestDatabase::with_ddl("pgcs_src", ddl).await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();
    (source, catalog)
}

#[tokio::test]
async fn a_schedule_resyncs_the_catalog_until_it_is_deleted() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let (source, catalog) = synced_source(&app, "CREATE TABLE t (id int PRIMARY KEY)").await;
    let path = format!("/catalogs/{catalog}/schedule");

    let (status, schedule) = app
        .send(
            reqwest::Method::PUT,
            &path,
            Some(&json!({"every": "1s", "user": "postgres", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{schedule}");
    assert_eq!(schedule["catalog_id"], catalog.as_str());
    assert_eq!(schedule["every"], "1s");
    assert_eq!(schedule["last_run_at"], Value::Null);
    let (status, shown) = app.send(reqwest::Method::GET, &path, None).await;
    assert_eq!((status, &shown), (StatusCode::OK, &schedule));

    // The credentials are kept sealed, never in clear.
    let kept: String = sqlx::query_scalar("SELECT credentials::text FROM catalog_schedules")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!kept.contains(PASSWORD), "{kept}");

    // The workers re-sync the catalog without a client; a change in the source shows up.
    source.execute("CREATE TABLE added_later (id int)").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sync_count(&app, &catalog).await < 3 {
        assert!(
            Instant::now() < deadline,
            "the schedule started no re-syncs"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, shown) = app.send(reqwest::Method::GET, &path, None).await;
    let last = shown["last_sync_id"]
        .as_str()
        .expect("the schedule names its last sync");
    assert_ne!(shown["last_run_at"], Value::Null);
    let done = app.wait_for_sync(last, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let (_, tables) = app.get(&format!("/catalogs/{catalog}/tables")).await;
    assert_eq!(names(&tables, "name"), ["added_later", "t"]);

    // Deleted: no more re-syncs, and the credentials are gone.
    let (status, _) = app.delete(&path).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.send(reqwest::Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no schedule"),
        "{body}"
    );
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM catalog_schedules")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(kept, 0);
    tokio::time::sleep(Duration::from_secs(3)).await; // an in-flight re-sync may still end
    let settled = sync_count(&app, &catalog).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        sync_count(&app, &catalog).await,
        settled,
        "re-syncs went on after DELETE"
    );
    assert_eq!(app.delete(&path).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_schedule_request_names_the_field_that_is_wrong() {
    let app = spawn_app().await;
    let source = TestDatabase::create("pgcs_src").await;
    let (_, accepted) = app.post_sync(&sync_body(&source.name)).await;
    let path = format!(
        "/catalogs/{}/schedule",
        accepted["catalog_id"].as_str().unwrap()
    );
    for (body, field) in [
        (json!({"user": "postgres"}), "every"),
        (json!({"every": "soon", "user": "postgres"}), "every"),
        (json!({"every": "0s", "user": "postgres"}), "every"),
        (json!({"every": "500ms", "user": "postgres"}), "every"),
        (json!({"every": 60, "user": "postgres"}), "every"),
        (json!({"every": "400d", "user": "postgres"}), "every"),
        (json!({"cron": "61 * * * *", "user": "postgres"}), "cron"),
        (json!({"cron": "0 0 31 2 *", "user": "postgres"}), "cron"),
        (json!({"cron": 5, "user": "postgres"}), "cron"),
        (
            json!({"every": "1h", "cron": "0 * * * *", "user": "postgres"}),
            "cron",
        ),
        (json!({"every": "1h"}), "user"),
        (
            json!({"every": "1h", "user": "postgres", "sslmode": "sometimes"}),
            "sslmode",
        ),
        (
            json!({"every": "1h", "user": "postgres", "host": "elsewhere"}),
            "host",
        ),
        (
            json!({"every": "1h", "user": "postgres", "schemas": {"include": "public"}}),
            "schemas.include",
        ),
    ] {
        let (status, error) = app.send(reqwest::Method::PUT, &path, Some(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["error"]["field"], field, "{body}: {error}");
    }
    assert_eq!(
        app.send(reqwest::Method::GET, &path, None).await.0,
        StatusCode::NOT_FOUND
    );

    let unknown = format!("/catalogs/{}/schedule", uuid::Uuid::new_v4());
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            &unknown,
            Some(&json!({"every": "1h", "user": "postgres"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no catalog"),
        "{body}"
    );
}

/// A catalog held by a deletion in progress (its row locked) is skipped by the schedules; the
/// others go on being re-synced, and the deletion then goes through.
#[tokio::test]
async fn a_catalog_being_deleted_does_not_hold_up_other_schedules() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let mut catalogs = Vec::new();
    let mut sources = Vec::new();
    for _ in 0..2 {
        let (source, catalog) = synced_source(&app, "CREATE TABLE t (id int)").await;
        let (status, _) = app
            .send(
                reqwest::Method::PUT,
                &format!("/catalogs/{catalog}/schedule"),
                Some(&json!({"every": "1s", "user": "postgres"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        catalogs.push(catalog);
        sources.push(source);
    }
    let (held, other) = (&catalogs[0], &catalogs[1]);

    // What DELETE /catalogs/{id} does first: lock the catalog's row.
    let mut deletion = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM catalogs WHERE id = $1::uuid FOR UPDATE")
        .bind(held)
        .execute(&mut *deletion)
        .await
        .unwrap();
    let before = sync_count(&app, other).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sync_count(&app, other).await < before + 2 {
        assert!(Instant::now() < deadline, "the other schedule was held up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    deletion.rollback().await.unwrap();

    let response = app
        .client
        .delete(app.url(&format!("/catalogs/{held}")))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let schedules: i64 = sqlx::query_scalar("SELECT count(*) FROM catalog_schedules")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(schedules, 1, "the deleted catalog's schedule went with it");
}

/// A cron pattern (here with seconds, every 2 s) schedules the re-syncs just as well.
#[tokio::test]
async fn a_cron_schedule_resyncs_on_its_pattern() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let (_source, catalog) = synced_source(&app, "CREATE TABLE t (id int)").await;
    let path = format!("/catalogs/{catalog}/schedule");
    let (status, schedule) = app
        .send(
            reqwest::Method::PUT,
            &path,
            Some(&json!({"cron": "*/2 * * * * *", "user": "postgres"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{schedule}");
    assert_eq!(schedule["cron"], "*/2 * * * * *");
    assert_eq!(schedule["every"], Value::Null);
    let next: chrono::DateTime<chrono::Utc> =
        schedule["next_run_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        next.timestamp() % 2,
        0,
        "the next run is on the pattern: {next}"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    while sync_count(&app, &catalog).await < 3 {
        assert!(
            Instant::now() < deadline,
            "the cron schedule started no re-syncs"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Replaced by a period: the pattern is gone.
    let (_, schedule) = app
        .send(
            reqwest::Method::PUT,
            &path,
            Some(&json!({"every": "1h", "user": "postgres"})),
        )
        .await;
    assert_eq!(
        (&schedule["every"], &schedule["cron"]),
        (&json!("1h"), &Value::Null)
    );
}
