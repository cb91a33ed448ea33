//! Conditional reads: every read answers an `ETag`; `If-None-Match` with it answers 304 until
//! what the read shows changes.

mod common;

use common::*;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH};

#[tokio::test]
async fn reads_answer_an_etag_and_304_until_the_catalog_changes() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", "CREATE TABLE t (id int)").await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();
    let sync = first["sync_id"].as_str().unwrap().to_owned();

    let get = async |path: &str, etag: Option<&str>| {
        let mut request = app.client.get(app.url(path));
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let etag = response
            .headers()
            .get(ETAG)
            .map(|v| v.to_str().unwrap().to_owned());
        let cache = response
            .headers()
            .get("x-cache")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, etag, cache, response.text().await.unwrap())
    };
    let tables = format!("/catalogs/{catalog}/tables");
    for path in [
        "/catalogs".to_owned(),
        format!("/catalogs/{catalog}"),
        tables.clone(),
        format!("/catalogs/{catalog}/tables/public/t"),
        format!("/syncs/{sync}"),
    ] {
        let (status, etag, _, _) = get(&path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let etag = etag.unwrap_or_else(|| panic!("{path} has no ETag"));
        let (status, again, _, body) = get(&path, Some(&etag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.as_deref(), Some(etag.as_str()), "{path}");
        assert!(body.is_empty(), "{path}: a 304 has no body");
        let (status, _, _, _) = get(&path, Some("\"something-else\"")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }

    // A cache hit carries the ETag the miss had.
    let (_, miss, _, _) = get(&tables, None).await;
    let (_, hit, cache, _) = get(&tables, None).await;
    assert_eq!(cache.as_deref(), Some("hit"));
    assert_eq!(hit, miss);

    // A change to the catalog changes the answer and its ETag.
    source.execute("CREATE TABLE u (id int)").await;
    let second = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    let (status, changed, _, body) = get(&tables, miss.as_deref()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(changed, miss);
    assert!(body.contains("\"u\""), "{body}");
}
