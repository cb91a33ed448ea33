//! End to end: POST /sync, a worker syncs a real source database, the read endpoints return
//! exactly what the source holds; re-syncs replace the snapshot; duplicates are answered with
//! the active sync.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, PgPool};

const DDL: &str = r#"
CREATE SCHEMA sales;
COMMENT ON SCHEMA sales IS 'Where the money is';
CREATE TABLE sales.customers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    "Display Name" varchar(80),
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE sales.customers IS 'People who buy';
COMMENT ON COLUMN sales.customers.email IS 'login';
CREATE TABLE sales.orders (
    id          integer PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES sales.customers (id) ON DELETE CASCADE,
    total       numeric(12,2) CHECK (total >= 0),
    tags        text[]
);
CREATE INDEX orders_customer_idx ON sales.orders (customer_id) WHERE total > 0;
CREATE VIEW sales.big_orders AS SELECT id, total FROM sales.orders WHERE total > 100;
CREATE TABLE public."Weird ""Name""" ("col;drop" int);
"#;

fn columns(table: &Value) -> Vec<(String, String, bool)> {
    table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["type"].as_str().unwrap().to_owned(),
                c["nullable"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_sync_serves_exactly_the_source_catalog_and_a_resync_replaces_it() {
    let app = spawn_app().await;
    let worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", DDL).await;

    let (status, accepted) = app.post_sync(&sync_body(&source.name)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(accepted["status"], "queued");
    let catalog_id = accepted["catalog_id"].as_str().unwrap().to_owned();
    let sync = app
        .wait_for_sync(
            accepted["sync_id"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    assert_eq!(sync["attempts"], 1);
    assert_eq!(sync["stats"]["tables"], 4);
    assert_eq!(sync["stats"]["schemas"], 2);
    assert_eq!(sync["attempt_log"].as_array().unwrap().len(), 1);

    let (_, catalog) = app.get(&format!("/catalogs/{catalog_id}")).await;
    assert_eq!(names(&catalog["schemas"], "name"), ["public", "sales"]);
    assert_eq!(catalog["schemas"][1]["comment"], "Where the money is");
    assert_eq!(catalog["schemas"][1]["catalog_id"], catalog_id.as_str());
    assert_eq!(catalog["sync"]["status"], "succeeded");
    assert_eq!(catalog["catalog"]["database"]["name"], source.name.as_str());
    // Read beside the bulk queries on the helper connection; nothing has written since.
    let on_disk: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&PgPool::connect(&source.url).await.unwrap())
        .await
        .unwrap();
    let reported = catalog["catalog"]["database"]["size_bytes"]
        .as_i64()
        .unwrap();
    assert!(
        (reported - on_disk).abs() <= on_disk / 10,
        "size {reported}, on disk {on_disk}"
    );

    let (_, tables) = app.get(&format!("/catalogs/{catalog_id}/tables")).await;
    let listed = relation_kinds(&tables);
    let expected: Vec<(String, String, String)> = [
        ("public", "Weird \"Name\"", "table"),
        ("sales", "big_orders", "view"),
        ("sales", "customers", "table"),
        ("sales", "orders", "table"),
    ]
    .iter()
    .map(|(s, n, k)| (s.to_string(), n.to_string(), k.to_string()))
    .collect();
    assert_eq!(listed, expected);

    let (status, customers) = app
        .get(&format!("/catalogs/{catalog_id}/tables/sales/customers"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        columns(&customers),
        [
            ("id".into(), "bigint".into(), false),
            ("email".into(), "text".into(), false),
            ("Display Name".into(), "character varying(80)".into(), true),
            (
                "created_at".into(),
                "timestamp with time zone".into(),
                false
            ),
        ]
    );
    assert_eq!(customers["primary_key"], json!(["id"]));
    assert_eq!(customers["comment"], "People who buy");
    assert_eq!(customers["columns"][1]["comment"], "login");
    assert_eq!(customers["columns"][3]["default"], "now()");
    let ordinals: Vec<i64> = customers["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ordinal"].as_i64().unwrap())
        .collect();
    assert_eq!(ordinals, [1, 2, 3, 4]);

    let (_, orders) = app
        .get(&format!("/catalogs/{catalog_id}/tables/sales/orders"))
        .await;
    let fk = orders["constraints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "foreign_key")
        .unwrap();
    assert_eq!(fk["columns"], json!(["customer_id"]));
    assert_eq!(fk["ref_schema"], "sales");
    assert_eq!(fk["ref_table"], "customers");
    assert_eq!(fk["ref_columns"], json!(["id"]));
    assert!(
        fk["definition"]
            .as_str()
            .unwrap()
            .contains("ON DELETE CASCADE")
    );
    assert!(
        orders["constraints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "check")
    );
    let index = orders["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "orders_customer_idx")
        .unwrap();
    assert_eq!(index["columns"], json!(["customer_id"]));
    assert_eq!(index["predicate"], "(total > (0)::numeric)");
    assert_eq!(columns(&orders)[3], ("tags".into(), "text[]".into(), true));

    let (_, view) = app
        .get(&format!("/catalogs/{catalog_id}/tables/sales/big_orders"))
        .await;
    assert_eq!(view["kind"], "view");
    assert!(
        view["definition"]
            .as_str()
            .unwrap()
            .contains("total > (100)::numeric")
    );

    // Names with quotes and spaces work in paths, percent-encoded.
    let (status, weird) = app
        .get(&format!(
            "/catalogs/{catalog_id}/tables/public/Weird%20%22Name%22"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{weird}");
    assert_eq!(
        columns(&weird),
        [("col;drop".into(), "integer".into(), true)]
    );

    // DDL changes, then a re-sync replaces the snapshot exactly.
    source
        .execute(r#"ALTER TABLE sales.customers ADD COLUMN phone text NOT NULL DEFAULT ''; DROP TABLE public."Weird ""Name""";"#)
        .await;
    let resync = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(resync["status"], "succeeded");
    assert_eq!(resync["catalog_id"], catalog_id.as_str());
    assert_ne!(resync["sync_id"], sync["sync_id"]);

    let (_, tables) = app.get(&format!("/catalogs/{catalog_id}/tables")).await;
    assert_eq!(
        names(&tables, "name"),
        ["big_orders", "customers", "orders"]
    );
    let (_, customers) = app
        .get(&format!("/catalogs/{catalog_id}/tables/sales/customers"))
        .await;
    assert_eq!(
        columns(&customers).last().unwrap(),
        &("phone".into(), "text".into(), false)
    );
    assert_eq!(customers["columns"].as_array().unwrap().len(), 5);
    let (status, _) = app
        .get(&format!(
            "/catalogs/{catalog_id}/tables/public/Weird%20%22Name%22"
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // No duplicate rows anywhere in the store.
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM catalog_relations), (SELECT count(*) FROM catalog_columns), (SELECT count(*) FROM catalog_schemas)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(counts, (3, 5 + 4 + 2, 2));

    let (_, history) = app.get(&format!("/catalogs/{catalog_id}/syncs")).await;
    assert_eq!(
        names(&history, "sync_id"),
        [
            resync["sync_id"].as_str().unwrap(),
            sync["sync_id"].as_str().unwrap()
        ]
    );

    let (_, list) = app.get("/catalogs").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (host, port) = server_host_port();
    assert_eq!(list[0]["source"], format!("{host}:{port}/{}", source.name));
    assert_eq!(list[0]["status"], "succeeded");
    assert!(list[0]["synced_at"].is_string());

    worker.shutdown.cancel();
    worker.join.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_second_request_for_a_busy_source_gets_the_active_sync() {
    let app = spawn_app().await; // no worker: the sync stays queued
    let (s1, first) = app.post_sync(&synthetic_body("1x1x1")).await;
    let (s2, second) = app.post_sync(&synthetic_body("1x1x1")).await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(first["sync_id"], second["sync_id"]);
    assert_eq!(first["catalog_id"], second["catalog_id"]);
    let (_, other) = app.post_sync(&synthetic_body("1x1x2")).await;
    assert_ne!(other["catalog_id"], first["catalog_id"]);

    // Concurrent requests for one source: one sync, one job.
    let busy = synthetic_body("2x2x2");
    let requests = (0..100).map(|_| app.post_sync(&busy));
    let answers = futures::future::join_all(requests).await;
    let ids: std::collections::HashSet<String> = answers
        .iter()
        .map(|(_, b)| b["sync_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1);
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM apalis.jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(jobs, 3);
}

#[tokio::test]
async fn the_catalog_list_pages_with_a_link_header() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.post_sync(&synthetic_body(&format!("1x1x{}", i + 1)))
            .await;
    }
    let mut seen = Vec::new();
    let mut next = Some(app.url("/catalogs?limit=2"));
    while let Some(url) = next {
        let response = app.client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        next = response
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_owned())
            .map(|l| app.url(l.trim_start_matches('<').split('>').next().unwrap()));
        let page: Value = response.json().await.unwrap();
        assert!(page.as_array().unwrap().len() <= 2);
        seen.extend(names(&page, "id"));
    }
    assert_eq!(seen.len(), 5);
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 5);
    let (_, all) = app.get("/catalogs").await;
    assert_eq!(
        names(&all, "id"),
        seen,
        "pages follow the order of the full list"
    );
    assert_eq!(all[0]["status"], "queued");
}

#[tokio::test]
async fn an_unchanged_source_is_not_read_again_but_any_change_is_seen() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", DDL).await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["stats"]["unchanged"], false);
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();
    let synced_at = |c: &Value| c["catalog"]["synced_at"].as_str().unwrap().to_owned();
    let before = synced_at(&app.get(&format!("/catalogs/{catalog}")).await.1);

    // Nothing changed: the sync succeeds, says so, keeps the stats, and stamps the catalog.
    let again = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(again["status"], "succeeded");
    assert_eq!(again["stats"]["unchanged"], true);
    assert_eq!(again["stats"]["tables"], first["stats"]["tables"]);
    assert_ne!(
        synced_at(&app.get(&format!("/catalogs/{catalog}")).await.1),
        before
    );

    // A comment is a change: it is read and served.
    source
        .execute("COMMENT ON COLUMN sales.orders.total IS 'in cents'")
        .await;
    let commented = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(commented["stats"]["unchanged"], false);
    let (_, orders) = app
        .get(&format!("/catalogs/{catalog}/tables/sales/orders"))
        .await;
    assert_eq!(orders["columns"][2]["comment"], "in cents");

    // New statistics alone are refreshed without rewriting the structure.
    source.execute("INSERT INTO sales.customers (email) SELECT 'c' || g FROM generate_series(1, 500) g; ANALYZE sales.customers;").await;
    let analyzed = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(analyzed["status"], "succeeded");
    let (_, customers) = app
        .get(&format!("/catalogs/{catalog}/tables/sales/customers"))
        .await;
    assert_eq!(customers["row_estimate"], 500);
    assert_eq!(
        analyzed["stats"]["unchanged"], true,
        "structure unchanged: {analyzed}"
    );
}

/// A sync stores the source's probe taken in the transaction it read the catalog in: a table
/// created on the source after the read (here, while the write waits for the catalog's lock)
/// is not in the snapshot, so it must move the probe, and the next sync must read it.
#[tokio::test]
async fn the_stored_probe_is_of_the_state_the_sync_read() {
    let app = spawn_app().await;
    let source = TestDatabase::with_ddl("pgcs_late_probe", DDL).await;
    let (status, accepted) = app.post_sync(&sync_body(&source.name)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let catalog = accepted["catalog_id"].as_str().unwrap().to_owned();
    let sync_id = accepted["sync_id"].as_str().unwrap().to_owned();

    // The catalog's row is held, so the worker's write waits once the read is done.
    let mut holder = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM catalogs WHERE id = $1 FOR NO KEY UPDATE")
        .bind(catalog.parse::<uuid::Uuid>().unwrap())
        .execute(&mut *holder)
        .await
        .unwrap();
    let _worker = app.start_worker(worker_config(&app)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the write never waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    source
        .execute("SET lock_timeout = '10s'; CREATE TABLE sales.added (id int)")
        .await;
    holder.rollback().await.unwrap();

    let first = app.wait_for_sync(&sync_id, Duration::from_secs(60)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let (status, _) = app
        .get(&format!("/catalogs/{catalog}/tables/sales/added"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "created after the read");
    let stored = app.stored_probe(&catalog).await.unwrap();
    // The probe covers the roles the catalog shows.
    let (_, roles) = app.get(&format!("/catalogs/{catalog}/roles")).await;
    let roles: Vec<String> = summaries::names(&roles, "name");
    assert!(!roles.is_empty(), "the tables' owner is shown");
    let mut conn = sqlx::PgConnection::connect(&source.url).await.unwrap();
    let current = pg_catalog_sync::introspect::probe(&mut conn, &roles)
        .await
        .unwrap();
    assert_ne!(
        stored, current,
        "the stored probe must predate the new table"
    );

    let again = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["stats"]["unchanged"], false, "{again}");
    let (status, added) = app
        .get(&format!("/catalogs/{catalog}/tables/sales/added"))
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    // Other tests' roles come and go meanwhile; the probe does not cover them.
    let after = pg_catalog_sync::introspect::probe(&mut conn, &roles)
        .await
        .unwrap();
    assert_eq!(after, current);
    assert_eq!(app.stored_probe(&catalog).await, Some(after));
}

#[tokio::test]
async fn concurrent_requests_are_coalesced_without_losing_or_duplicating_any() {
    let app = spawn_app().await;
    // 200 requests at once over 50 sources, 4 requests each, in shuffled order.
    let bodies: Vec<Value> = (0..200)
        .map(|i| synthetic_body(&format!("1x1x1;tag={}", (i * 37) % 50)))
        .collect();
    let answers = futures::future::join_all(bodies.iter().map(|b| app.post_sync(b))).await;
    let mut by_source: std::collections::HashMap<String, std::collections::HashSet<String>> =
        Default::default();
    for (body, (status, answer)) in bodies.iter().zip(&answers) {
        assert_eq!(*status, StatusCode::ACCEPTED, "{answer}");
        by_source
            .entry(body["dbname"].as_str().unwrap().to_owned())
            .or_default()
            .insert(answer["sync_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(by_source.len(), 50);
    assert!(
        by_source.values().all(|ids| ids.len() == 1),
        "one sync per source"
    );
    let (syncs, jobs): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM syncs), (SELECT count(*) FROM apalis.jobs)")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((syncs, jobs), (50, 50));
    // Every answered sync exists and is queued.
    for ids in by_source.values() {
        let id = ids.iter().next().unwrap();
        let (status, sync) = app.get(&format!("/syncs/{id}")).await;
        assert_eq!(
            (status, sync["status"].as_str()),
            (StatusCode::OK, Some("queued"))
        );
    }
}

#[tokio::test]
async fn deleting_a_catalog_removes_everything_it_owns() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", DDL).await;
    let sync = app.sync_and_wait(&sync_body(&source.name)).await;
    let catalog = sync["catalog_id"].as_str().unwrap().to_owned();
    let other = app.sync_and_wait(&sync_body("postgres")).await;
    assert_eq!(other["status"], "succeeded");

    let (status, _) = app.delete(&format!("/catalogs/{catalog}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for path in [
        format!("/catalogs/{catalog}"),
        format!("/catalogs/{catalog}/tables"),
        format!("/syncs/{}", sync["sync_id"].as_str().unwrap()),
    ] {
        assert_eq!(app.get(&path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = app.delete(&format!("/catalogs/{catalog}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // No row of it is left in any table of the store; the other catalog is untouched.
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'catalog_id'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(tables.len() >= 11, "{tables:?}");
    for (table,) in tables {
        let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE catalog_id = $1::uuid"
        )))
        .bind(&catalog)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(left, 0, "{table}");
    }
    let other_id = other["catalog_id"].as_str().unwrap();
    let (status, schemas) = app.get(&format!("/catalogs/{other_id}/schemas")).await;
    assert_eq!(
        (status, names(&schemas, "name")),
        (StatusCode::OK, vec!["public".to_owned()])
    );

    // The same source can be synced again from scratch.
    let again = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(
        (again["status"].as_str(), again["catalog_id"].as_str()),
        (Some("succeeded"), Some(catalog.as_str()))
    );
    assert_eq!(again["stats"]["unchanged"], false);
}

/// A sync request for a catalog whose snapshot is being written (its row lock held, as the
/// worker holds it while writing) is answered at once, not after the write.
#[tokio::test]
async fn a_request_during_a_snapshot_write_is_answered_at_once() {
    let app = spawn_app().await;
    let worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", "CREATE TABLE t (id int)").await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    worker.shutdown.cancel();
    let _ = worker.join.await;
    let catalog = first["catalog_id"].as_str().unwrap();

    // The lock a worker takes to write the catalog's snapshot.
    let mut writing = app.pool.begin().await.unwrap();
    pg_catalog_sync::store::snapshot::lock_catalog(&mut writing, catalog.parse().unwrap())
        .await
        .unwrap();
    let response = app
        .client
        .post(app.url("/sync"))
        .json(&sync_body(&source.name))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("answered while the snapshot is being written");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["catalog_id"], catalog);
    assert_ne!(accepted["sync_id"], first["sync_id"]);
    writing.rollback().await.unwrap();
}
