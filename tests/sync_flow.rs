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

/// The probe as versions before 2026-11-26 computed it, converting every row's transaction id
/// on its own.
const EARLIER_PROBE: &str = r#"
SELECT md5(concat_ws('|',
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_class),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_attribute),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_attrdef),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_constraint),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_index),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_description),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_namespace),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_type),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_enum),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_proc),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_trigger),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_sequence),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_inherits),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_rewrite),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_depend),
    (SELECT sum(reltuples)::text || ':' || sum(relpages)::text FROM pg_class),
    (SELECT string_agg(oid::text || '=' || rolname, ',' ORDER BY oid) FROM pg_roles),
    current_setting('server_version_num')
))
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
    let mut conn = sqlx::PgConnection::connect(&source.url).await.unwrap();
    let current = pg_catalog_sync::introspect::probe(&mut conn).await.unwrap();
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
    assert_eq!(app.stored_probe(&catalog).await, Some(current));
}

/// The probe now converts each distinct transaction id once instead of every row's, and must
/// still give the digest earlier versions stored: a catalog they synced is then found unchanged
/// after an upgrade, not read again.
#[tokio::test]
async fn the_probe_is_the_digest_earlier_versions_stored() {
    let source = TestDatabase::with_ddl("pgcs_probe", DDL).await;
    // More transactions, so that the catalogs' rows come from several.
    source
        .execute("COMMENT ON COLUMN sales.orders.total IS 'in cents'")
        .await;
    source
        .execute("ALTER TABLE sales.orders ADD COLUMN note text")
        .await;
    let mut conn = sqlx::PgConnection::connect(&source.url).await.unwrap();
    let earlier: String = sqlx::query_scalar(EARLIER_PROBE)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let now = pg_catalog_sync::introspect::probe(&mut conn).await.unwrap();
    assert_eq!(now, earlier);
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

/// DDL of `tables` tables `public.w0`, `public.w1`, ... of 1,000 integer columns each
/// (`c1`..`c1000`), after an `id` primary key when `keyed`: wide enough that a write's column
/// lists span several parts of a `COPY`.
fn wide_tables(tables: usize, keyed: bool) -> String {
    let columns: Vec<String> = (1..=1000).map(|i| format!("c{i} int")).collect();
    let key = if keyed { "id int PRIMARY KEY, " } else { "" };
    (0..tables)
        .map(|t| format!("CREATE TABLE public.w{t} ({key}{});", columns.join(", ")))
        .collect()
}

/// A snapshot's write is one transaction with the sync's success: a write refused as it copies
/// the column lists, as it copies the detail documents (the last table), or as the sync is
/// marked succeeded leaves no part of it behind, and the next sync writes all of it.
#[tokio::test]
async fn a_refused_write_leaves_nothing_behind() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let ddl = wide_tables(6, true);
    let source = TestDatabase::with_ddl("pgcs_early", &ddl).await;
    let stored = || {
        let pool = &app.pool;
        async move {
            sqlx::query_as::<_, (i64, i64, i64)>(
                "SELECT (SELECT count(*) FROM catalog_relations),
                        (SELECT count(*) FROM catalog_columns),
                        (SELECT count(*) FROM catalog_constraints)",
            )
            .fetch_one(pool)
            .await
            .unwrap()
        }
    };
    // A sync whose write the store refuses as it inserts into `table`: it fails with the
    // refusal's message, and nothing of it stays. The refusal is lifted afterwards.
    let refused_by = |table: &'static str, message: &'static str| {
        let (app, source, stored) = (&app, &source, &stored);
        async move {
            app.store
                .execute(&format!(
                    "CREATE TABLE refuse_{table} ();
                     CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
                     BEGIN
                         IF EXISTS (SELECT FROM refuse_{table}) THEN
                             RAISE EXCEPTION '{message}';
                         END IF;
                         RETURN NULL;
                     END $$;
                     CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table}
                     FOR EACH STATEMENT EXECUTE FUNCTION refuse_{table}();
                     INSERT INTO refuse_{table} DEFAULT VALUES;"
                ))
                .await;
            let refused = app.sync_and_wait(&sync_body(&source.name)).await;
            assert_eq!(refused["status"], "failed", "{refused}");
            let error = refused["last_error"].as_str().unwrap();
            assert!(error.contains(message), "{refused}");
            assert_eq!(
                stored().await,
                (0, 0, 0),
                "nothing of the refused write stays"
            );
            app.store
                .execute(&format!("DELETE FROM refuse_{table}"))
                .await;
            refused
        }
    };

    // Refused as the columns are copied in.
    refused_by("catalog_column_lists", "no columns today").await;
    // Refused at the end, after the relations and columns went in.
    let refused = refused_by("catalog_relation_details", "no documents today").await;
    let catalog_id = refused["catalog_id"].as_str().unwrap().to_owned();
    let (status, tables) = app.get(&format!("/catalogs/{catalog_id}/tables")).await;
    assert_eq!(status, StatusCode::OK, "{tables}");
    assert_eq!(tables, json!([]));
    // Refused at the very end, as the sync is marked succeeded.
    app.store
        .execute(
            "CREATE FUNCTION refuse_success() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 RAISE EXCEPTION 'no success today';
             END $$;
             CREATE TRIGGER refuse_success BEFORE UPDATE ON syncs FOR EACH ROW
             WHEN (NEW.status = 'succeeded') EXECUTE FUNCTION refuse_success();",
        )
        .await;
    let refused = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    let error = refused["last_error"].as_str().unwrap();
    assert!(error.contains("no success today"), "{refused}");
    assert_eq!(
        stored().await,
        (0, 0, 0),
        "nothing of the refused write stays"
    );
    let documents: i64 = sqlx::query_scalar("SELECT count(*) FROM catalog_relation_details")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(documents, 0, "no document of the refused write stays");
    let (status, detail) = app
        .get(&format!("/catalogs/{catalog_id}/tables/public/w5"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{detail}");
    app.store
        .execute("DROP TRIGGER refuse_success ON syncs")
        .await;

    let written = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(written["status"], "succeeded", "{written}");
    assert_eq!(stored().await, (6, 6006, 6));
    let (status, detail) = app
        .get(&format!("/catalogs/{catalog_id}/tables/public/w5"))
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["columns"].as_array().unwrap().len(), 1001);
    assert_eq!(detail["primary_key"], json!(["id"]));
    assert_eq!(detail["column_count"], 1001);
}

/// A re-sync that finds only new statistics (ANALYZE moves the probe, not the structure)
/// refreshes them in place and writes nothing else.
#[tokio::test]
async fn a_resync_with_new_statistics_only_refreshes_them() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let ddl = wide_tables(6, false);
    let source = TestDatabase::with_ddl("pgcs_statistics", &ddl).await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["stats"]["relations_written"], 6, "{first}");
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();

    source
        .execute("INSERT INTO w0 (c1) VALUES (1), (2); ANALYZE;")
        .await;
    let analyzed = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(analyzed["status"], "succeeded", "{analyzed}");
    assert_eq!(analyzed["stats"]["unchanged"], true, "{analyzed}");
    assert_eq!(analyzed["stats"]["relations_written"], 0, "{analyzed}");
    assert_eq!(analyzed["stats"]["changes"], 0, "{analyzed}");
    let (_, w0) = app
        .get(&format!("/catalogs/{catalog}/tables/public/w0"))
        .await;
    assert_eq!(w0["row_estimate"], 2, "{w0}");
}

/// A snapshot's detail documents appear with its commit: readers see the new documents with the
/// new rows (and the new columns in column search and the change history), and a write that
/// fails keeps the old ones.
#[tokio::test]
async fn a_big_snapshots_columns_and_details_appear_with_it_and_a_failed_write_keeps_the_old_ones()
{
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let ddl = wide_tables(6, false);
    let source = TestDatabase::with_ddl("pgcs_big", &ddl).await;
    let rows_in = |table: &'static str| {
        let pool = &app.pool;
        async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {table}"
            )))
            .fetch_one(pool)
            .await
            .unwrap()
        }
    };
    let stored_columns = || rows_in("catalog_columns");
    let found_columns = |catalog_id: String, q: &'static str| {
        let app = &app;
        async move {
            app.found_columns(&catalog_id, &format!("q={q}&limit=1000"))
                .await
        }
    };
    let detail_columns = |catalog_id: String, table: &'static str| {
        let app = &app;
        async move {
            let (status, detail) = app
                .get(&format!("/catalogs/{catalog_id}/tables/public/{table}"))
                .await;
            assert_eq!(status, StatusCode::OK, "{detail}");
            names(&detail["columns"], "name")
        }
    };

    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let catalog_id = first["catalog_id"].as_str().unwrap().to_owned();
    for t in ["w0", "w5"] {
        let columns = detail_columns(catalog_id.clone(), t).await;
        assert_eq!(columns.len(), 1000, "{t}");
        assert_eq!(
            (columns[0].as_str(), columns[999].as_str()),
            ("c1", "c1000")
        );
    }
    assert_eq!(found_columns(catalog_id.clone(), "c1000").await.len(), 6);
    assert_eq!(stored_columns().await, 6000);
    // Types are stored once (`column_types`) and each list holds their keys.
    let types_of = |table: &'static str| {
        let app = &app;
        let catalog_id = catalog_id.clone();
        async move {
            let (_, detail) = app
                .get(&format!("/catalogs/{catalog_id}/tables/public/{table}"))
                .await;
            detail["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {}.{}",
                        c["name"].as_str().unwrap(),
                        c["type"].as_str().unwrap(),
                        c["type_schema"].as_str().unwrap_or("-"),
                        c["type_name"].as_str().unwrap_or("-")
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let w5 = types_of("w5").await;
    assert_eq!(w5[0], "c1 integer pg_catalog.int4");
    assert!(w5.iter().all(|c| c.ends_with(" integer pg_catalog.int4")));

    // The snapshot's transaction refuses the documents as it copies them in.
    app.store
        .execute(
            "CREATE TABLE refuse_details ();
             CREATE FUNCTION refuse_details() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF EXISTS (SELECT FROM refuse_details) THEN
                     RAISE EXCEPTION 'no documents today';
                 END IF;
                 RETURN NULL;
             END $$;
             CREATE TRIGGER refuse_details BEFORE INSERT ON catalog_relation_details
             FOR EACH STATEMENT EXECUTE FUNCTION refuse_details();
             INSERT INTO refuse_details DEFAULT VALUES;",
        )
        .await;
    source.execute("ALTER TABLE w0 ADD COLUMN added text").await;
    let refused = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["last_error"]
            .as_str()
            .unwrap()
            .contains("no documents today"),
        "{refused}"
    );
    assert_eq!(detail_columns(catalog_id.clone(), "w0").await.len(), 1000);
    assert_eq!(
        found_columns(catalog_id.clone(), "added").await,
        Vec::<String>::new()
    );
    assert_eq!(found_columns(catalog_id.clone(), "c1000").await.len(), 6);
    assert_eq!(stored_columns().await, 6000);

    app.store.execute("DELETE FROM refuse_details").await;
    let fixed = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(fixed["status"], "succeeded", "{fixed}");
    let columns = detail_columns(catalog_id.clone(), "w0").await;
    assert_eq!(columns.len(), 1001);
    assert_eq!(columns[1000], "added");
    let w0 = types_of("w0").await;
    assert_eq!(
        (w0[0].as_str(), w0[1000].as_str()),
        ("c1 integer pg_catalog.int4", "added text pg_catalog.text")
    );
    assert_eq!(
        found_columns(catalog_id.clone(), "added").await,
        ["w0.added"]
    );
    assert_eq!(stored_columns().await, 6001, "no column twice");
    // The change history of a re-sync that copied its columns in names the one added.
    let fixed_id = fixed["sync_id"].as_str().unwrap();
    let (_, changes) = app.get(&format!("/syncs/{fixed_id}/changes")).await;
    assert_eq!(
        change_summary(&changes),
        [(
            "column".to_owned(),
            "added".to_owned(),
            "w0".to_owned(),
            Some("added".to_owned())
        )]
    );
}
