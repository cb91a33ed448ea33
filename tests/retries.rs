//! Failure handling: transient failures are retried with backoff up to the sync's attempts,
//! permanent ones fail at once with a clear message, and every attempt is visible.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn attempt_errors(sync: &Value) -> Vec<Option<String>> {
    sync["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["error"].as_str().map(str::to_owned))
        .collect()
}

async fn app_with_mock(
    max_attempts: i32,
) -> (TestApp, MockSource, pg_catalog_sync::queue::WorkerHandle) {
    let app = spawn_app_with(AppOptions {
        max_attempts,
        ..AppOptions::default()
    })
    .await;
    let mock = MockSource::spawn().await;
    let mut config = worker_config(&app);
    config.external_metadata_url = Some(mock.url.clone());
    config.source_timeout_ms = 1500;
    let worker = app.start_worker(config).await;
    (app, mock, worker)
}

/// An app whose worker reads the databases of the test server themselves.
async fn app_reading_databases(
    max_attempts: i32,
) -> (TestApp, pg_catalog_sync::queue::WorkerHandle) {
    let app = spawn_app_with(AppOptions {
        max_attempts,
        ..AppOptions::default()
    })
    .await;
    let worker = app.start_worker(worker_config(&app)).await;
    (app, worker)
}

#[tokio::test]
async fn transient_failures_are_retried_until_the_sync_succeeds() {
    let (app, _mock, _worker) = app_with_mock(5).await;
    let sync = app
        .sync_and_wait(&synthetic_body("2x3x4;fail_first=2"))
        .await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    assert_eq!(sync["attempts"], 3);
    assert_eq!(sync["max_attempts"], 5);
    assert_eq!(sync["source_kind"], "http");
    let errors = attempt_errors(&sync);
    assert_eq!(errors.len(), 3);
    assert!(errors[0].as_deref().unwrap().contains("503"), "{errors:?}");
    assert!(errors[1].as_deref().unwrap().contains("503"));
    assert_eq!(errors[2], None);
    // The last error of a retried sync stays visible; the catalog holds the synthetic snapshot.
    assert!(sync["last_error"].as_str().unwrap().contains("503"));
    let stats = &sync["stats"];
    let counts: Vec<&Value> = ["schemas", "tables", "columns", "constraints", "indexes"]
        .iter()
        .map(|k| &stats[k])
        .collect();
    assert_eq!(
        counts,
        [&json!(2), &json!(6), &json!(24), &json!(6), &json!(6)]
    );
    let (_, tables) = app
        .get(&format!(
            "/catalogs/{}/tables?schema=s1",
            sync["catalog_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(tables.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn attempts_are_bounded() {
    let (app, _mock, _worker) = app_with_mock(3).await;
    let sync = app
        .sync_and_wait(&synthetic_body("1x1x1;fail_first=100"))
        .await;
    assert_eq!(sync["status"], "failed");
    assert_eq!(sync["attempts"], 3);
    let last_error = sync["last_error"].as_str().unwrap();
    assert!(
        last_error.starts_with("gave up after 3 attempts"),
        "{last_error}"
    );
    assert!(last_error.contains("503"), "{last_error}");
    assert!(sync["finished_at"].is_string());
}

#[tokio::test]
async fn permanent_failures_end_after_one_attempt() {
    let (app, _mock, _worker) = app_with_mock(5).await;
    for (dbname, expected) in [
        ("1x1x1;status=401", "401"),
        ("1x1x1;status=404", "404"),
        ("1x1x1;malformed", "malformed metadata"),
    ] {
        let sync = app.sync_and_wait(&synthetic_body(dbname)).await;
        assert_eq!(sync["status"], "failed", "{dbname}: {sync}");
        assert_eq!(sync["attempts"], 1, "{dbname}: {sync}");
        let error = sync["last_error"].as_str().unwrap();
        assert!(error.contains(expected), "{dbname}: {error}");
    }
}

#[tokio::test]
async fn a_source_that_hangs_is_cut_off_by_the_timeout() {
    let (app, _mock, _worker) = app_with_mock(2).await;
    let started = std::time::Instant::now();
    let sync = app.sync_and_wait(&synthetic_body("1x1x1;hang")).await;
    assert_eq!(sync["status"], "failed");
    assert_eq!(sync["attempts"], 2);
    assert!(
        sync["last_error"].as_str().unwrap().contains("timed out"),
        "{sync}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn direct_source_errors_are_classified() {
    let (app, _worker) = app_reading_databases(3).await;

    // Unknown database and a role that may not log in: permanent, one attempt.
    let missing = app.sync_and_wait(&sync_body("pgcs_no_such_database")).await;
    assert_eq!(
        (missing["status"].as_str(), missing["attempts"].as_i64()),
        (Some("failed"), Some(1))
    );
    assert!(
        missing["last_error"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{missing}"
    );
    assert!(missing["last_error"].as_str().unwrap().contains("3D000"));

    let mut no_such_role = sync_body("postgres");
    no_such_role["user"] = json!("pgcs_no_such_role");
    let denied = app.sync_and_wait(&no_such_role).await;
    assert_eq!(
        (denied["status"].as_str(), denied["attempts"].as_i64()),
        (Some("failed"), Some(1)),
        "{denied}"
    );
    assert!(
        denied["last_error"].as_str().unwrap().contains("28000"),
        "{denied}"
    );

    // Nothing listens on the port: transient, retried up to the attempts.
    let mut refused = sync_body("postgres");
    refused["port"] = json!(free_port());
    let refused = app.sync_and_wait(&refused).await;
    assert_eq!(
        (refused["status"].as_str(), refused["attempts"].as_i64()),
        (Some("failed"), Some(3)),
        "{refused}"
    );
    assert!(
        refused["last_error"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{refused}"
    );
    assert_eq!(attempt_errors(&refused).len(), 3);
}

#[tokio::test]
async fn a_broken_metadata_service_fails_cleanly_and_writes_nothing() {
    let app = spawn_app().await;
    let mock = MockSource::spawn().await;
    let mut config = worker_config(&app);
    config.external_metadata_url = Some(mock.url.clone());
    config.source_max_response_bytes = 1024 * 1024;
    let _worker = app.start_worker(config).await;
    for (dbname, expected) in [
        ("1x1x1;bloat_mb=4", "exceeds 1048576 bytes"),
        ("1x1x1;endless", "exceeds 1048576 bytes"),
        ("1x1x1;wrong_shape", "malformed metadata"),
        ("1x1x1;malformed", "malformed metadata"),
    ] {
        let sync = app.sync_and_wait(&synthetic_body(dbname)).await;
        assert_eq!(
            (sync["status"].as_str(), sync["attempts"].as_i64()),
            (Some("failed"), Some(1)),
            "{dbname}: {sync}"
        );
        assert!(
            sync["last_error"].as_str().unwrap().contains(expected),
            "{dbname}: {sync}"
        );
        let (_, tables) = app
            .get(&format!(
                "/catalogs/{}/tables",
                sync["catalog_id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(tables, json!([]), "{dbname}: nothing written");
    }
}

/// A source whose catalog cannot be read (a view's table is locked by another session, so
/// `pg_get_viewdef` waits): the statement timeout cuts every attempt off, the sync fails with
/// a clear message, and once the lock is gone a retry of the same sync reads the catalog.
#[tokio::test]
async fn the_statement_timeout_bounds_a_blocked_introspection() {
    let app = spawn_app_with(AppOptions {
        max_attempts: 2,
        ..AppOptions::default()
    })
    .await;
    let mut config = worker_config(&app);
    config.source_timeout_ms = 500;
    let _worker = app.start_worker(config).await;
    let source = TestDatabase::with_ddl(
        "pgcs_src",
        "CREATE TABLE t (id int); CREATE VIEW v AS SELECT id FROM t;",
    )
    .await;

    let locker = sqlx::PgPool::connect(&source.url).await.unwrap();
    let mut lock = locker.begin().await.unwrap();
    sqlx::query("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let sync = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(sync["status"], "failed", "{sync}");
    assert_eq!(sync["attempts"], 2);
    let error = sync["last_error"].as_str().unwrap();
    assert!(error.contains("statement timeout"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "each attempt was cut off by the timeout"
    );

    lock.rollback().await.unwrap();
    let response = app
        .client
        .post(app.url(&format!(
            "/syncs/{}/retry",
            sync["sync_id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    let retried: Value = response.json().await.unwrap();
    let done = app
        .wait_for_sync(
            retried["sync_id"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["stats"]["tables"], 2);
}

/// 30 % of the metadata service's answers are 503s and 10 % hang past the client timeout:
/// every sync still succeeds within its attempts (mock-source's fates are deterministic per
/// source and request, so this run is the same every time).
#[tokio::test]
async fn a_flaky_source_with_errors_and_hangs_still_syncs_everything() {
    let (app, _mock, _worker) = app_with_mock(10).await;
    let mut accepted = Vec::new();
    for i in 0..40 {
        let body = synthetic_body(&format!("1x2x3;fail_rate=0.3;hang_rate=0.1;tag=f{i}"));
        let (status, sync) = app.post_sync(&body).await;
        assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{sync}");
        accepted.push(sync["sync_id"].as_str().unwrap().to_owned());
    }
    let (mut attempts, mut unavailable, mut timeouts) = (0, 0, 0);
    for id in &accepted {
        let sync = app.wait_for_sync(id, Duration::from_secs(120)).await;
        assert_eq!(sync["status"], "succeeded", "{sync}");
        attempts += sync["attempts"].as_u64().unwrap();
        for error in attempt_errors(&sync).into_iter().flatten() {
            if error.contains("503") {
                unavailable += 1;
            } else if error.contains("timed out") {
                timeouts += 1;
            } else {
                panic!("unexpected error: {error}");
            }
        }
    }
    assert!(unavailable > 0 && timeouts > 0, "faults were injected");
    assert_eq!(attempts, 40 + unavailable + timeouts);
    println!(
        "flaky source: 40 syncs succeeded in {attempts} attempts ({unavailable} 503s, {timeouts} timeouts)"
    );
}

/// A snapshot the store refuses for a reason that will not pass (here a trigger of the store's
/// raises) fails the sync on its first attempt and says why; the catalog keeps serving the
/// snapshot it had. Retrying would re-read the source for nothing.
#[tokio::test]
async fn a_snapshot_the_store_refuses_fails_at_once_and_keeps_the_last_one() {
    let (app, _worker) = app_reading_databases(3).await;
    let source = TestDatabase::with_ddl("pgcs_src", "CREATE TABLE kept (id int);").await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let catalog_id = first["catalog_id"].as_str().unwrap().to_owned();

    app.store
        .execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'columns are read-only today'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON catalog_column_lists
             FOR EACH STATEMENT EXECUTE FUNCTION refuse();",
        )
        .await;
    source
        .execute("ALTER TABLE kept ADD COLUMN added text")
        .await;
    let refused = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(
        (refused["status"].as_str(), refused["attempts"].as_i64()),
        (Some("failed"), Some(1)),
        "{refused}"
    );
    let error = refused["last_error"].as_str().unwrap();
    assert!(
        error.contains("the store refused the snapshot")
            && error.contains("columns are read-only today"),
        "{error}"
    );

    let (_, table) = app
        .get(&format!("/catalogs/{catalog_id}/tables/public/kept"))
        .await;
    assert_eq!(names(&table["columns"], "name"), ["id"], "{table}");
}

/// A write the store may accept on another try (here a serialization failure, raised once by a
/// trigger of the store's) sends the job back to the queue: the next delivery writes the
/// snapshot, and the attempt log shows what happened to the first attempt.
#[tokio::test]
async fn a_transient_store_error_is_retried_and_shown_on_its_attempt() {
    let app = spawn_app().await;
    app.store
        .execute(
            "CREATE SEQUENCE store_faults;
             CREATE FUNCTION conflict_once() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF nextval('store_faults') = 1 THEN
                     RAISE EXCEPTION 'a conflict, once' USING ERRCODE = '40001';
                 END IF;
                 RETURN NULL;
             END $$;
             CREATE TRIGGER conflict_once BEFORE INSERT ON catalog_column_lists
             FOR EACH STATEMENT EXECUTE FUNCTION conflict_once();",
        )
        .await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", "CREATE TABLE t (id int, note text);").await;
    let sync = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(
        (sync["status"].as_str(), sync["attempts"].as_i64()),
        (Some("succeeded"), Some(2)),
        "{sync}"
    );
    let errors = attempt_errors(&sync);
    assert!(
        errors[0]
            .as_deref()
            .is_some_and(|e| e.contains("a conflict, once") && e.contains("back to the queue")),
        "{sync}"
    );
    assert_eq!(errors[1], None, "{sync}");
    let (_, table) = app
        .get(&format!(
            "/catalogs/{}/tables/public/t",
            sync["catalog_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(names(&table["columns"], "name"), ["id", "note"], "{table}");
}
