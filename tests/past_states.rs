//! Reads as of a past sync (`?sync=`, `?as_of=`): every object read answers what the catalog
//! looked like after that sync, whatever changed since, and a past state is never listed or
//! searched as a catalog of its own.

mod common;

use common::roles::Roles;
use common::*;
use reqwest::StatusCode;
use serde_json::Value;

const BEFORE: &str = r#"
CREATE SCHEMA shop;
CREATE TYPE shop.mood AS ENUM ('calm', 'busy');
CREATE SEQUENCE shop.ticket;
CREATE TABLE shop.customers (id integer PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE shop.orders (
    id integer PRIMARY KEY,
    customer integer REFERENCES shop.customers (id),
    total numeric,
    note text
);
CREATE INDEX orders_total ON shop.orders (total);
CREATE VIEW shop.big_orders AS SELECT id, total FROM shop.orders WHERE total > 100;
CREATE FUNCTION shop.double(x integer) RETURNS integer LANGUAGE sql AS 'SELECT x * 2';
COMMENT ON TABLE shop.orders IS 'what customers bought';
CREATE SCHEMA gone;
CREATE TABLE gone.scratch (id integer);
GRANT USAGE ON SCHEMA shop TO {p}_reader;
GRANT SELECT ON shop.orders TO {p}_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT SELECT ON TABLES TO {p}_reader;
ALTER TABLE shop.orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY positive ON shop.orders FOR SELECT TO {p}_reader USING (total > 0);
"#;

/// Changes every kind of unit: a relation altered, one dropped, one added, a schema dropped and
/// one added, a type, a sequence and a function changed; and who may do what: grants, a
/// policy, default privileges and so the roles of the catalog.
const CHANGE: &str = r#"
DROP VIEW shop.big_orders;
ALTER TABLE shop.orders ADD COLUMN status text NOT NULL DEFAULT 'new', DROP COLUMN note;
DROP INDEX shop.orders_total;
COMMENT ON TABLE shop.orders IS 'orders, newest first';
ALTER TABLE shop.customers RENAME TO clients;
CREATE TABLE shop.invoices (id integer PRIMARY KEY, amount numeric);
ALTER TYPE shop.mood ADD VALUE 'closed';
DROP FUNCTION shop.double(integer);
DROP SEQUENCE shop.ticket;
DROP SCHEMA gone CASCADE;
CREATE SCHEMA fresh;
CREATE TABLE fresh.things (id integer);
REVOKE SELECT ON shop.orders FROM {p}_reader;
GRANT SELECT, INSERT ON shop.orders TO {p}_limited;
ALTER DEFAULT PRIVILEGES IN SCHEMA shop REVOKE SELECT ON TABLES FROM {p}_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT INSERT ON TABLES TO {p}_limited;
DROP POLICY positive ON shop.orders;
"#;

/// Every object read of a catalog, with `query` ("" or "sync=..."), as (path, body): JSON
/// bodies without the statistics that move with the data (they are the latest known of each
/// version) and without the state's own query in links; text bodies as they are.
async fn read_everything(app: &TestApp, catalog: &str, query: &str) -> Vec<(String, Value)> {
    let with = |path: &str| {
        let sep = if path.contains('?') { '&' } else { '?' };
        match query {
            "" => path.to_owned(),
            q => format!("{path}{sep}{q}"),
        }
    };
    let (tables, _) = app
        .get_all_pages(&with(&format!("/catalogs/{catalog}/tables?limit=2")))
        .await;
    let mut paths: Vec<String> = [
        "schemas",
        "tables",
        "columns",
        "types",
        "sequences",
        "functions",
        "privileges",
        "policies",
        "default_privileges",
        "roles",
    ]
    .iter()
    .map(|list| format!("/catalogs/{catalog}/{list}"))
    .collect();
    for t in &tables {
        let table = format!(
            "/catalogs/{catalog}/tables/{}/{}",
            t["schema"].as_str().unwrap(),
            t["name"].as_str().unwrap()
        );
        paths.push(format!("{table}/access"));
        paths.push(table);
    }
    paths.push(format!("/catalogs/{catalog}/ddl"));
    paths.push(format!("/catalogs/{catalog}/erd?format=mermaid"));
    let mut read = Vec::new();
    for path in paths {
        let response = app.client.get(app.url(&with(&path))).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}?{query}");
        let text = response.text().await.unwrap();
        let text = match query {
            "" => text,
            q => text.replace(&format!("?{q}"), ""),
        };
        let body = serde_json::from_str::<Value>(&text)
            .map(without_statistics)
            .unwrap_or(Value::String(text));
        read.push((path, body));
    }
    read
}

/// Leaves out what differs between two reads of one state: the statistics, and the `id` of a
/// schema row (a surrogate key: a past state's schema rows are copies).
fn without_statistics(mut value: Value) -> Value {
    match &mut value {
        Value::Object(map) => {
            map.remove("row_estimate");
            map.remove("total_bytes");
            if map.contains_key("catalog_id") {
                map.remove("id");
            }
            for v in map.values_mut() {
                *v = without_statistics(v.take());
            }
        }
        Value::Array(items) => {
            for v in items.iter_mut() {
                *v = without_statistics(v.take());
            }
        }
        _ => {}
    }
    value
}

/// Two reads of every object, the same path by path.
fn assert_same(read: &[(String, Value)], expected: &[(String, Value)]) {
    let paths = |r: &[(String, Value)]| r.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(paths(read), paths(expected));
    for ((path, got), (_, want)) in read.iter().zip(expected) {
        assert_eq!(got, want, "{path}");
    }
}

fn sync_id(sync: &Value) -> String {
    assert_eq!(sync["status"], "succeeded", "{sync}");
    sync["sync_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_past_sync_reads_as_it_left_the_catalog() {
    let roles = Roles::create().await;
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", &roles.sql(BEFORE)).await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();
    let first = sync_id(&first);
    let then = read_everything(&app, &catalog, "").await;
    assert!(
        then.iter().any(|(p, _)| p.ends_with("/shop/big_orders")),
        "{then:?}"
    );

    source.execute(&roles.sql(CHANGE)).await;
    let second = sync_id(&app.sync_and_wait(&sync_body(&source.name)).await);
    let now = read_everything(&app, &catalog, "").await;
    assert_ne!(then, now, "the change must show in the current reads");
    let listed = |read: &[(String, Value)], list: &str| -> Vec<String> {
        let (_, body) = read.iter().find(|(p, _)| p.ends_with(list)).unwrap();
        names(body, "name")
    };
    let limited = roles.name("limited");
    assert!(!listed(&then, "/roles").contains(&limited), "{then:?}");
    assert!(listed(&now, "/roles").contains(&limited), "{now:?}");

    // The first sync's state, whatever changed since; the second's is the current one.
    assert_same(
        &read_everything(&app, &catalog, &format!("sync={first}")).await,
        &then,
    );
    assert_same(
        &read_everything(&app, &catalog, &format!("sync={second}")).await,
        &now,
    );

    // An unchanged re-sync keeps both states readable, and the same.
    let third = sync_id(&app.sync_and_wait(&sync_body(&source.name)).await);
    assert_same(
        &read_everything(&app, &catalog, &format!("sync={third}")).await,
        &now,
    );
    assert_same(
        &read_everything(&app, &catalog, &format!("sync={first}")).await,
        &then,
    );

    // `as_of` names the last sync finished by then.
    let (_, first_sync) = app.get(&format!("/syncs/{first}")).await;
    let finished = first_sync["finished_at"].as_str().unwrap();
    let (status, relation) = app
        .get(&format!(
            "/catalogs/{catalog}/tables/shop/orders?as_of={}",
            urlencode(finished)
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{relation}");
    assert_eq!(relation["comment"], "what customers bought");
    assert_eq!(
        relation["href"],
        format!("/catalogs/{catalog}/tables/shop/orders?sync={first}")
    );
    let (status, body) = app
        .get(&format!(
            "/catalogs/{catalog}/tables?as_of=2000-01-01T00:00:00Z"
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The catalog itself, as the first sync left it.
    let (status, past) = app.get(&format!("/catalogs/{catalog}?sync={first}")).await;
    assert_eq!(status, StatusCode::OK, "{past}");
    let (_, schemas_then) = then.iter().find(|(p, _)| p.ends_with("/schemas")).unwrap();
    assert_eq!(without_statistics(past["schemas"].clone()), *schemas_then);
    assert!(names(&past["schemas"], "name").contains(&"gone".to_owned()));
    assert_eq!(past["sync"]["sync_id"], first.as_str());
    assert_eq!(past["catalog"]["synced_at"], finished);

    // A page's link stays on the state it pages through.
    let response = app
        .client
        .get(app.url(&format!("/catalogs/{catalog}/tables?limit=1&sync={first}")))
        .send()
        .await
        .unwrap();
    let link = response.headers()["link"].to_str().unwrap().to_owned();
    assert!(link.contains(&format!("sync={first}")), "{link}");
    let (pages, count) = app
        .get_all_pages(&format!("/catalogs/{catalog}/tables?limit=1&sync={first}"))
        .await;
    let listed = |path: &str| {
        let (_, body) = then.iter().find(|(p, _)| p.ends_with(path)).unwrap();
        body.as_array().unwrap().len()
    };
    assert_eq!(count, listed("/tables"));
    assert_eq!(
        pages
            .into_iter()
            .map(without_statistics)
            .collect::<Vec<_>>(),
        *then
            .iter()
            .find(|(p, _)| p.ends_with("/tables"))
            .unwrap()
            .1
            .as_array()
            .unwrap()
    );

    // A past state is no catalog of its own: neither listed nor searched twice.
    let (_, catalogs) = app.get("/catalogs").await;
    assert_eq!(catalogs.as_array().unwrap().len(), 1, "{catalogs}");
    let (_, hits) = app.get("/search?q=invoices&kind=table").await;
    assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");

    // Deleting the catalog deletes its past states and the versions kept for them.
    let (status, _) = app.delete(&format!("/catalogs/{catalog}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM catalog_states) + (SELECT count(*) FROM catalog_retired_rows)
              + (SELECT count(*) FROM catalog_relations) + (SELECT count(*) FROM catalog_schemas)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_bad_past_state_is_refused_naming_the_parameter() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", "CREATE TABLE t (id integer);").await;
    let other = TestDatabase::with_ddl("pgcs_src", "CREATE TABLE u (id integer);").await;
    let synced = app.sync_and_wait(&sync_body(&source.name)).await;
    let catalog = synced["catalog_id"].as_str().unwrap().to_owned();
    let sync = sync_id(&synced);
    let elsewhere = sync_id(&app.sync_and_wait(&sync_body(&other.name)).await);
    let unknown = "0190a0a0-0000-7000-8000-000000000000";
    let tables = format!("/catalogs/{catalog}/tables");
    for (query, status, field) in [
        ("sync=yesterday", StatusCode::BAD_REQUEST, Some("sync")),
        ("as_of=yesterday", StatusCode::BAD_REQUEST, Some("as_of")),
        (
            &format!("sync={sync}&as_of=2030-01-01T00:00:00Z") as &str,
            StatusCode::BAD_REQUEST,
            Some("as_of"),
        ),
        (
            &format!("sync={elsewhere}"),
            StatusCode::BAD_REQUEST,
            Some("sync"),
        ),
        (&format!("sync={unknown}"), StatusCode::NOT_FOUND, None),
    ] {
        let (got, body) = app.get(&format!("{tables}?{query}")).await;
        assert_eq!(got, status, "{query}: {body}");
        if let Some(field) = field {
            assert_eq!(body["error"]["field"], field, "{query}: {body}");
        }
    }
    let (status, body) = app
        .get(&format!("/catalogs/{unknown}/tables?sync={sync}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // A sync that failed left no snapshot to read.
    let name = source.name.clone();
    drop(source);
    let (status, accepted) = app.post_sync(&sync_body(&name)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let failed = accepted["sync_id"].as_str().unwrap();
    let ended = app
        .wait_for_sync(failed, std::time::Duration::from_secs(60))
        .await;
    assert_eq!(ended["status"], "failed", "{ended}");
    let (status, body) = app.get(&format!("{tables}?sync={failed}")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = app.get(&format!("{tables}?sync={sync}")).await;
    assert_eq!(status, StatusCode::OK);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
