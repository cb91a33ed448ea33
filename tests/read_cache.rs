//! The read cache: object reads are served from memory until the catalog changes, and a change
//! (a sync ending, the catalog deleted) is never hidden by it.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn get_cached(app: &TestApp, path: &str) -> (StatusCode, String, Value) {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    let status = response.status();
    let cache = response
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, cache, response.json().await.unwrap_or(Value::Null))
}

fn column_names(detail: &Value) -> Vec<String> {
    names(&detail["columns"], "name")
}

#[tokio::test]
async fn reads_are_cached_until_their_catalog_changes() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", "CREATE TABLE t (id int PRIMARY KEY)").await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();
    let detail = format!("/catalogs/{catalog}/tables/public/t");
    let list = format!("/catalogs/{catalog}/tables?limit=10");

    let (status, cache, body) = get_cached(&app, &detail).await;
    assert_eq!((status, cache.as_str()), (StatusCode::OK, "miss"));
    assert_eq!(column_names(&body), ["id"]);
    let (_, cache, again) = get_cached(&app, &detail).await;
    assert_eq!(cache, "hit");
    assert_eq!(again, body);
    assert_eq!(get_cached(&app, &list).await.1, "miss");
    assert_eq!(get_cached(&app, &list).await.1, "hit");
    // Another query is another entry; errors are never cached.
    assert_eq!(
        get_cached(&app, &format!("{detail}?fields=columns"))
            .await
            .1,
        "miss"
    );
    let missing = format!("/catalogs/{catalog}/tables/public/nope");
    assert_eq!(get_cached(&app, &missing).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get_cached(&app, &missing).await.1, "");

    // A client that saw the re-sync end reads the new snapshot at once.
    source.execute("ALTER TABLE t ADD COLUMN note text").await;
    let second = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(second["status"], "succeeded");
    let (_, cache, body) = get_cached(&app, &detail).await;
    assert_eq!(cache, "miss");
    assert_eq!(column_names(&body), ["id", "note"]);

    // A re-sync this client never asked about reaches the cache through the store's
    // notification: poll the store itself, not the API, for the sync's end.
    source.execute("ALTER TABLE t ADD COLUMN extra int").await;
    let (_, accepted) = app.post_sync(&sync_body(&source.name)).await;
    let sync_id: uuid::Uuid = accepted["sync_id"].as_str().unwrap().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status: String = sqlx::query_scalar("SELECT status FROM syncs WHERE id = $1")
            .bind(sync_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if status == "succeeded" {
            break;
        }
        assert!(Instant::now() < deadline, "the sync did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, _, body) = get_cached(&app, &detail).await;
        if column_names(&body) == ["id", "note", "extra"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cache kept the old snapshot: {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A deleted catalog's reads are 404s, not cached leftovers.
    let (status, _) = app.delete(&format!("/catalogs/{catalog}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let deadline = Instant::now() + Duration::from_secs(5);
    while get_cached(&app, &detail).await.0 != StatusCode::NOT_FOUND {
        assert!(
            Instant::now() < deadline,
            "a deleted catalog is still served"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(get_cached(&app, &list).await.0, StatusCode::NOT_FOUND);
}

/// Cache misses arriving together are read from the store in shared statements: every client
/// still gets its own relation, from its own catalog, and an unknown one is still a 404.
#[tokio::test]
async fn concurrent_cold_reads_each_get_their_own_relation() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let ddl: String = (0..40)
        .map(|i| format!("CREATE TABLE t{i} (id int PRIMARY KEY, c{i} text);"))
        .collect();
    let (one, two) = tokio::join!(
        TestDatabase::with_ddl("pgcs_src", &ddl),
        TestDatabase::with_ddl("pgcs_src", "CREATE TABLE t0 (other_id bigint)")
    );
    let first = app.sync_and_wait(&sync_body(&one.name)).await;
    let second = app.sync_and_wait(&sync_body(&two.name)).await;
    let (first, second) = (
        first["catalog_id"].as_str().unwrap().to_owned(),
        second["catalog_id"].as_str().unwrap().to_owned(),
    );

    let mut reads = Vec::new();
    for i in 0..40 {
        reads.push((format!("/catalogs/{first}/tables/public/t{i}"), Some(i)));
    }
    reads.push((format!("/catalogs/{second}/tables/public/t0"), None));
    reads.push((format!("/catalogs/{first}/tables/public/t40"), None));
    reads.push((format!("/catalogs/{second}/tables/public/t1"), None));
    let answers = futures::future::join_all(reads.iter().map(|(path, _)| get_cached(&app, path)));
    for ((path, table), (status, cache, body)) in reads.iter().zip(answers.await) {
        match table {
            Some(i) => {
                assert_eq!((status, cache.as_str()), (StatusCode::OK, "miss"), "{path}");
                assert_eq!(body["name"], format!("t{i}"), "{path}");
                assert_eq!(column_names(&body), ["id", &format!("c{i}")], "{path}");
                assert_eq!(body["href"], path.as_str());
            }
            None if path.ends_with("/t0") => {
                assert_eq!(status, StatusCode::OK, "{path}");
                assert_eq!(column_names(&body), ["other_id"], "{path}");
            }
            None => assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}"),
        }
    }
}
