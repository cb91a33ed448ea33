//! Whole-server syncs (`POST /sync` with `dbname` `*` or `databases`): a worker lists the
//! server's databases and syncs each into its own catalog, under one parent sync whose status
//! lists them; one database failing fails none of the others.
//!
//! The test server is shared with tests that create databases concurrently: each test names
//! its own databases in `include`, and the one test of `*` checks only its own among the rest.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A login role without superuser rights, dropped with the test.
struct Role(String);

impl Role {
    async fn create(admin: &TestDatabase) -> Self {
        let role = Self(format!("pgcs_ws_{}", uuid::Uuid::new_v4().simple()));
        admin
            .execute(&format!("CREATE ROLE {} LOGIN", role.0))
            .await;
        role
    }
}

impl Drop for Role {
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

/// A database of its own with one table named after `prefix`.
async fn database_with_table(prefix: &str) -> TestDatabase {
    let db = TestDatabase::create(prefix).await;
    db.execute(&format!(
        "CREATE TABLE {prefix}_things (id int PRIMARY KEY, label text)"
    ))
    .await;
    db
}

/// The tables of the source's `public` schema, as its `pg_catalog` lists them.
async fn source_tables(db: &TestDatabase) -> Vec<String> {
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    names
}

/// The tables the catalog serves in `public`.
async fn served_tables(app: &TestApp, catalog: &str) -> Vec<String> {
    let (tables, _) = app
        .get_all_pages(&format!("/catalogs/{catalog}/tables?schema=public"))
        .await;
    let mut names: Vec<String> = tables
        .iter()
        .filter(|t| t["schema"] == "public")
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Queues a whole-server sync: 202 with the parent's id, and no catalog of its own.
async fn post_server_sync(app: &TestApp, body: &Value) -> String {
    let (status, accepted) = app.post_sync(body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["catalog_id"], Value::Null, "{accepted}");
    assert_eq!(accepted["status"], "queued");
    accepted["sync_id"].as_str().unwrap().to_owned()
}

/// The parent's status once it ended, with its databases by name.
async fn ended(app: &TestApp, sync_id: &str) -> (Value, HashMap<String, Value>) {
    app.wait_for_sync(sync_id, Duration::from_secs(120)).await;
    let (status, parent) = app.get(&format!("/syncs/{sync_id}")).await;
    assert_eq!(status, StatusCode::OK);
    let children = parent["children"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|c| (c["dbname"].as_str().unwrap().to_owned(), c.clone()))
        .collect();
    (parent, children)
}

#[tokio::test]
async fn included_databases_are_synced_each_into_its_own_catalog() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let dbs = [
        database_with_table("ws_alpha").await,
        database_with_table("ws_beta").await,
        database_with_table("ws_gamma").await,
    ];
    let names: Vec<&str> = dbs.iter().map(|d| d.name.as_str()).collect();
    let mut body = sync_body("*");
    body["databases"] = json!({ "include": names });
    let sync_id = post_server_sync(&app, &body).await;

    let (parent, children) = ended(&app, &sync_id).await;
    assert_eq!(parent["status"], "succeeded", "{parent}");
    assert_eq!(parent["catalog_id"], Value::Null);
    assert_eq!(parent["databases"], json!({ "include": names }));
    assert_eq!(
        parent["summary"],
        json!({"databases": 3, "active": 0, "succeeded": 3, "failed": 0, "cancelled": 0, "missing": 0}),
        "{parent}"
    );
    assert_eq!(parent["stats"]["succeeded"], 3, "{parent}");
    let listed: Vec<&str> = parent["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["dbname"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "children come in name order");

    for db in &dbs {
        let child = &children[&db.name];
        assert_eq!(child["status"], "succeeded", "{child}");
        let catalog = child["catalog_id"].as_str().unwrap();
        assert_eq!(served_tables(&app, catalog).await, source_tables(db).await);
        // The child is a sync of its own, and of the catalog a single sync would write.
        let (_, sync) = app
            .get(&format!("/syncs/{}", child["sync_id"].as_str().unwrap()))
            .await;
        assert_eq!(sync["status"], "succeeded");
        assert_eq!(sync["catalog_id"], child["catalog_id"]);
    }
    let single = app.sync_and_wait(&sync_body(&dbs[1].name)).await;
    assert_eq!(single["catalog_id"], children[&dbs[1].name]["catalog_id"]);
}

#[tokio::test]
async fn a_failing_or_missing_database_leaves_the_others_synced() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let fine = database_with_table("ws_fine").await;
    let also_fine = database_with_table("ws_also").await;
    // The sync user may connect, but the database takes no connections: its sync fails.
    let full = database_with_table("ws_full").await;
    full.execute(&format!(
        "ALTER DATABASE \"{}\" CONNECTION LIMIT 0",
        full.name
    ))
    .await;
    // The sync user lacks CONNECT: discovery does not offer it.
    let closed = database_with_table("ws_closed").await;
    closed
        .execute(&format!(
            "REVOKE CONNECT ON DATABASE \"{}\" FROM PUBLIC",
            closed.name
        ))
        .await;
    let role = Role::create(&fine).await;
    let absent = format!("ws_absent_{}", uuid::Uuid::new_v4().simple());

    let mut body = sync_body("*");
    body["user"] = json!(role.0);
    body["databases"] = json!({
        "include": [&fine.name, &also_fine.name, &full.name, &closed.name, &absent]
    });
    let sync_id = post_server_sync(&app, &body).await;
    let (parent, children) = ended(&app, &sync_id).await;

    assert_eq!(parent["status"], "succeeded", "{parent}");
    assert_eq!(
        parent["summary"],
        json!({"databases": 5, "active": 0, "succeeded": 2, "failed": 1, "cancelled": 0, "missing": 2}),
        "{parent}"
    );
    for db in [&fine, &also_fine] {
        let child = &children[&db.name];
        assert_eq!(child["status"], "succeeded", "{child}");
        let catalog = child["catalog_id"].as_str().unwrap();
        assert_eq!(served_tables(&app, catalog).await, source_tables(db).await);
    }
    let failed = &children[&full.name];
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["last_error"].as_str().unwrap();
    assert!(error.contains("too many connections"), "{error}");
    for name in [&closed.name, &absent] {
        let missing = &children[name];
        assert_eq!(missing["status"], "missing", "{missing}");
        assert_eq!(missing["sync_id"], Value::Null);
        assert_eq!(missing["catalog_id"], Value::Null);
    }
}

#[tokio::test]
async fn every_database_of_the_server_but_the_excluded_ones() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let mine = [
        database_with_table("ws_all_one").await,
        database_with_table("ws_all_two").await,
    ];
    let left_out = database_with_table("ws_all_out").await;
    let mut body = sync_body("*");
    body["databases"] = json!({ "exclude": ["postgres", &left_out.name] });
    // Other tests' databases come and go meanwhile: reading one schema keeps each read small.
    body["schemas"] = json!({ "include": ["public"] });
    let sync_id = post_server_sync(&app, &body).await;
    let (parent, children) = ended(&app, &sync_id).await;

    assert_eq!(parent["status"], "succeeded", "{parent}");
    assert_eq!(
        parent["databases"],
        json!({ "exclude": ["postgres", &left_out.name] })
    );
    assert!(!children.contains_key(&left_out.name));
    assert!(!children.contains_key("postgres"));
    assert!(!children.contains_key("template0") && !children.contains_key("template1"));
    assert!(children.values().all(|c| c["status"] != "missing"));
    for db in &mine {
        let child = &children[&db.name];
        assert_eq!(child["status"], "succeeded", "{child}");
        let catalog = child["catalog_id"].as_str().unwrap();
        assert_eq!(served_tables(&app, catalog).await, source_tables(db).await);
    }
    let summary = &parent["summary"];
    assert_eq!(summary["databases"], children.len());
    assert_eq!(summary["active"], 0);
}

#[tokio::test]
async fn discovery_failures_fail_the_parent_with_the_reason() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;

    // No such role: refused for good, at the first attempt.
    let mut body = sync_body("*");
    body["user"] = json!(format!("pgcs_nobody_{}", uuid::Uuid::new_v4().simple()));
    let sync_id = post_server_sync(&app, &body).await;
    let (parent, children) = ended(&app, &sync_id).await;
    assert_eq!(parent["status"], "failed", "{parent}");
    assert_eq!(parent["attempts"], 1);
    let error = parent["last_error"].as_str().unwrap();
    assert!(
        error.contains("listing the server's databases failed"),
        "{error}"
    );
    assert!(error.contains("does not exist"), "{error}");
    assert!(children.is_empty());
    assert_eq!(parent["children"], json!([]), "{parent}");
    assert_eq!(parent["summary"]["databases"], 0);

    // Nothing listens: retried as a sync is, then failed.
    let mut body = sync_body("*");
    body["port"] = json!(free_port());
    let sync_id = post_server_sync(&app, &body).await;
    let (parent, _) = ended(&app, &sync_id).await;
    assert_eq!(parent["status"], "failed", "{parent}");
    assert_eq!(parent["attempts"], parent["max_attempts"]);
    let error = parent["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("gave up after 5 attempts to list the server's databases"),
        "{error}"
    );

    // A failed whole-server sync is retried by hand as a new one, with its credentials.
    let (status, retried) = app
        .send(
            reqwest::Method::POST,
            &format!("/syncs/{sync_id}/retry"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{retried}");
    assert_eq!(retried["catalog_id"], Value::Null);
    assert_ne!(retried["sync_id"], json!(sync_id));
    let (_, again) = app
        .get(&format!("/syncs/{}", retried["sync_id"].as_str().unwrap()))
        .await;
    assert_eq!(again["databases"], json!({}));
}

#[tokio::test]
async fn cancelling_the_parent_cancels_its_unfinished_databases() {
    let app = spawn_app().await;
    let db = database_with_table("ws_cancel").await;
    let mut body = sync_body("*");
    body["databases"] = json!({ "include": [&db.name] });
    app.hold_writes().await;
    let worker = app.start_worker(worker_config(&app)).await;
    let sync_id = post_server_sync(&app, &body).await;
    let child = loop {
        let (_, parent) = app.get(&format!("/syncs/{sync_id}")).await;
        if let Some(child) = parent["children"].get(0) {
            break child.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (status, cancelled) = app.delete(&format!("/syncs/{sync_id}")).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    app.release_writes().await;
    let (_, parent) = app.get(&format!("/syncs/{sync_id}")).await;
    assert_eq!(parent["status"], "cancelled");
    assert_eq!(parent["children"][0]["status"], "cancelled", "{parent}");
    let (_, sync) = app
        .get(&format!("/syncs/{}", child["sync_id"].as_str().unwrap()))
        .await;
    assert_eq!(sync["status"], "cancelled");
    // The child's write goes on until its next step: the worker ends it before the test drops
    // the source, whose DROP DATABASE waits for every backend, the store's COPY included.
    worker.shutdown.cancel();
    worker.join.await.unwrap().unwrap();
}

#[tokio::test]
async fn bad_whole_server_bodies_name_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"dbname": "app", "databases": {"include": ["a"]}}),
            "databases",
        ),
        (json!({"dbname": "*", "databases": ["a"]}), "databases"),
        (json!({"databases": {"include": []}}), "databases.include"),
        (json!({"databases": {"include": [7]}}), "databases.include"),
        (json!({"databases": {"exclude": "a"}}), "databases.exclude"),
        (json!({"databases": {"also": ["a"]}}), "databases.also"),
        (
            json!({"dbname": "*", "schemas": {"include": [""]}}),
            "schemas.include",
        ),
        (json!({"dbname": "*", "host": "bad host"}), "host"),
    ];
    for (patch, field) in cases {
        let mut body = sync_body("x");
        body.as_object_mut().unwrap().remove("dbname");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, error) = app.post_sync(&body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{patch}: {error}");
        assert_eq!(
            error["error"]["code"], "validation_failed",
            "{patch}: {error}"
        );
        assert_eq!(error["error"]["field"], field, "{patch}: {error}");
    }
    // Without a selection nor dbname, dbname is required as ever.
    let mut body = sync_body("x");
    body.as_object_mut().unwrap().remove("dbname");
    let (status, error) = app.post_sync(&body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["field"], "dbname");
}

#[tokio::test]
async fn a_token_limited_to_catalogs_cannot_sync_a_whole_server() {
    let app = spawn_app_with(AppOptions {
        api_tokens: Some(format!(
            "all:read+sync:all-token,one:read+sync:one-token:{}",
            uuid::Uuid::new_v4()
        )),
        ..AppOptions::default()
    })
    .await;
    let body = sync_body("*");
    let post = |token: &'static str| {
        app.client
            .post(app.url("/sync"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let limited = post("one-token").await.unwrap();
    assert_eq!(limited.status(), StatusCode::FORBIDDEN);
    let error: Value = limited.json().await.unwrap();
    assert_eq!(error["error"]["code"], "server_not_allowed", "{error}");
    let allowed = post("all-token").await.unwrap();
    assert_eq!(allowed.status(), StatusCode::ACCEPTED);
    let accepted: Value = allowed.json().await.unwrap();
    let path = format!("/syncs/{}", accepted["sync_id"].as_str().unwrap());
    let seen = app
        .client
        .get(app.url(&path))
        .bearer_auth("one-token")
        .send();
    assert_eq!(seen.await.unwrap().status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_cli_queues_a_whole_server_sync_with_dbname_star() {
    let app = spawn_app().await;
    let (host, port) = server_host_port();
    let out = tokio::process::Command::new(binary("pg-catalog-sync"))
        .args(["sync", "--host", &host, "--port", &port.to_string()])
        .args(["--user", "postgres", "--dbname", "*", "--schema", "public"])
        .env("PGCS_API_URL", &app.base)
        .env_remove("PGPASSWORD")
        .output()
        .await
        .expect("running pg-catalog-sync");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("catalog - (whole server)"), "{stdout}");
    let sync_id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("sync    "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    let (_, parent) = app.get(&format!("/syncs/{sync_id}")).await;
    assert_eq!(parent["status"], "queued", "{parent}");
    assert_eq!(parent["databases"], json!({}));
    assert_eq!(parent["schemas"], json!({"include": ["public"]}));
}

#[tokio::test]
async fn retention_deletes_an_ended_parent_and_keeps_each_catalogs_latest_sync() {
    let app = spawn_app().await;
    let mut config = worker_config(&app);
    config.sync_retention = Duration::from_secs(1);
    let _worker = app.start_worker(config).await;
    let db = database_with_table("ws_kept").await;
    let mut body = sync_body("*");
    body["databases"] = json!({ "include": [&db.name] });
    let sync_id = post_server_sync(&app, &body).await;
    let (parent, children) = ended(&app, &sync_id).await;
    assert_eq!(parent["status"], "succeeded", "{parent}");
    let child = children[&db.name]["sync_id"].as_str().unwrap().to_owned();

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app.get(&format!("/syncs/{sync_id}")).await.0 != StatusCode::NOT_FOUND {
        assert!(
            std::time::Instant::now() < deadline,
            "retention never deleted the parent"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, kept) = app.get(&format!("/syncs/{child}")).await;
    assert_eq!(status, StatusCode::OK, "the catalog's latest sync is kept");
    assert_eq!(kept["status"], "succeeded");
}
