//! Change history: a re-sync records what changed in the source since the previous snapshot
//! (relations, columns, constraints, indexes, types, sequences and functions added, removed and
//! altered), an unchanged re-sync records nothing, and the history pages and filters like every
//! list.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const DDL: &str = r#"
CREATE SCHEMA shop;
CREATE TABLE shop.customers (
    id     integer PRIMARY KEY,
    email  text NOT NULL,
    note   text,
    CONSTRAINT email_unique UNIQUE (email)
);
CREATE TABLE shop.orders (
    id           integer PRIMARY KEY,
    customer_id  integer REFERENCES shop.customers (id),
    total        numeric(10,2)
);
CREATE INDEX orders_total_idx ON shop.orders (total);
CREATE TABLE shop.legacy (id integer);
CREATE TABLE shop.stock (id integer);
"#;

const CHANGES: &str = r#"
ALTER TABLE shop.customers ALTER COLUMN id TYPE bigint;
ALTER TABLE shop.customers DROP COLUMN note;
ALTER TABLE shop.customers ADD COLUMN name text NOT NULL DEFAULT '';
ALTER TABLE shop.customers DROP CONSTRAINT email_unique;
ALTER TABLE shop.orders ALTER COLUMN total SET NOT NULL;
CREATE INDEX orders_customer_idx ON shop.orders (customer_id);
DROP TABLE shop.legacy;
CREATE VIEW shop.big_orders AS SELECT id, total FROM shop.orders WHERE total > 100;
COMMENT ON TABLE shop.orders IS 'What was bought';
-- Statistics alone: not a change.
INSERT INTO shop.stock SELECT generate_series(1, 100);
ANALYZE shop.stock;
"#;

/// (object, action, relation, name) of each change, in the order given.
/// [`change_summary`] of changes that must all be in the schema `shop`.
fn summary(changes: &[Value]) -> Vec<(String, String, String, Option<String>)> {
    for c in changes {
        assert_eq!(c["schema"], "shop", "{c}");
    }
    change_summary(&Value::from(changes.to_vec()))
}

fn find<'a>(changes: &'a [Value], object: &str, relation: &str, name: Option<&str>) -> &'a Value {
    changes
        .iter()
        .find(|c| c["object"] == object && c["relation"] == relation && c["name"].as_str() == name)
        .unwrap_or_else(|| panic!("no {object} change of {relation}.{name:?} in {changes:?}"))
}

#[tokio::test]
async fn a_resync_records_what_changed_and_an_unchanged_one_records_nothing() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", DDL).await;

    // The first sync is the baseline: nothing to compare with.
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["stats"]["changes"], Value::Null);
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();
    let first_id = first["sync_id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/syncs/{first_id}/changes")).await,
        (StatusCode::OK, json!([]))
    );
    assert_eq!(
        app.get(&format!("/catalogs/{catalog}/changes")).await,
        (StatusCode::OK, json!([]))
    );

    source.execute(CHANGES).await;
    let second = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    let second_id = second["sync_id"].as_str().unwrap().to_owned();
    let (status, recorded) = app.get(&format!("/syncs/{second_id}/changes")).await;
    assert_eq!(status, StatusCode::OK);
    let recorded = recorded.as_array().unwrap().clone();
    let s = |o: &str, a: &str, r: &str, n: Option<&str>| {
        (
            o.to_owned(),
            a.to_owned(),
            r.to_owned(),
            n.map(str::to_owned),
        )
    };
    // Grouped by kind, then by relation and name.
    assert_eq!(
        summary(&recorded),
        [
            s("relation", "added", "big_orders", None),
            s("relation", "removed", "legacy", None),
            s("relation", "altered", "orders", None),
            s("column", "added", "big_orders", Some("id")),
            s("column", "added", "big_orders", Some("total")),
            s("column", "altered", "customers", Some("id")),
            s("column", "added", "customers", Some("name")),
            s("column", "removed", "customers", Some("note")),
            s("column", "removed", "legacy", Some("id")),
            s("column", "altered", "orders", Some("total")),
            s("constraint", "removed", "customers", Some("email_unique")),
            s("index", "removed", "customers", Some("email_unique")),
            s("index", "added", "orders", Some("orders_customer_idx")),
        ]
    );
    assert_eq!(second["stats"]["changes"], recorded.len());

    // Altered objects show only what changed, before and after.
    let id = find(&recorded, "column", "customers", Some("id"));
    assert_eq!(
        id["before"],
        json!({"data_type": "integer", "type_name": "int4"})
    );
    assert_eq!(
        id["after"],
        json!({"data_type": "bigint", "type_name": "int8"})
    );
    let total = find(&recorded, "column", "orders", Some("total"));
    assert_eq!(total["before"], json!({"nullable": true}));
    assert_eq!(total["after"], json!({"nullable": false}));
    let orders = find(&recorded, "relation", "orders", None);
    assert_eq!(orders["before"], json!({"comment": null}));
    assert_eq!(orders["after"], json!({"comment": "What was bought"}));
    // Added objects carry their definition; removed ones what they were.
    let view = find(&recorded, "relation", "big_orders", None);
    assert_eq!(view["before"], Value::Null);
    assert_eq!(view["after"]["kind"], "view");
    let note = find(&recorded, "column", "customers", Some("note"));
    assert_eq!(note["before"]["data_type"], "text");
    assert_eq!(note["after"], Value::Null);
    let index = find(&recorded, "index", "orders", Some("orders_customer_idx"));
    assert!(
        index["after"]["definition"]
            .as_str()
            .unwrap()
            .contains("(customer_id)"),
        "{index}"
    );
    for c in &recorded {
        assert_eq!(c["sync_id"], second_id.as_str());
    }
    // Each change says whether it can break the catalog's clients.
    for (object, relation, name, classification) in [
        ("column", "customers", Some("note"), "breaking"),
        ("column", "customers", Some("id"), "breaking"),
        ("column", "orders", Some("total"), "breaking"),
        ("relation", "legacy", None, "breaking"),
        ("column", "customers", Some("name"), "non_breaking"),
        (
            "constraint",
            "customers",
            Some("email_unique"),
            "non_breaking",
        ),
        (
            "index",
            "orders",
            Some("orders_customer_idx"),
            "non_breaking",
        ),
        ("relation", "orders", None, "non_breaking"),
    ] {
        let change = find(&recorded, object, relation, name);
        assert_eq!(change["classification"], classification, "{change}");
    }

    // Nothing changed since: the re-sync records nothing.
    let third = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(third["stats"]["changes"], 0, "{third}");
    let third_id = third["sync_id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/syncs/{third_id}/changes")).await.1,
        json!([])
    );

    // The catalog's history is the same changes, newest first, in pages.
    let (history, pages) = app
        .get_all_pages(&format!("/catalogs/{catalog}/changes?limit=5"))
        .await;
    assert_eq!(pages, recorded.len().div_ceil(5));
    let mut oldest_first = history.clone();
    oldest_first.reverse();
    assert_eq!(oldest_first, recorded);

    // `since` keeps what was recorded at or after it.
    let changed_at = recorded[0]["changed_at"].as_str().unwrap();
    let url = format!(
        "/catalogs/{catalog}/changes?since={}",
        urlencode(changed_at)
    );
    assert_eq!(
        app.get(&url).await.1.as_array().unwrap().len(),
        recorded.len()
    );
    let (status, later) = app
        .get(&format!(
            "/catalogs/{catalog}/changes?since=2999-01-01T00:00:00Z"
        ))
        .await;
    assert_eq!((status, later), (StatusCode::OK, json!([])));
}

const SCHEMA_OBJECTS: &str = r#"
CREATE SCHEMA lib;
CREATE TYPE lib.mood AS ENUM ('calm', 'busy');
CREATE SEQUENCE lib.ticket;
CREATE FUNCTION lib.double(x integer) RETURNS integer LANGUAGE sql AS 'SELECT x * 2';
CREATE FUNCTION lib.double(x numeric) RETURNS numeric LANGUAGE sql AS 'SELECT x * 2';
CREATE FUNCTION lib.half(x integer) RETURNS integer LANGUAGE sql AS 'SELECT x / 2';
"#;

/// Types, sequences and functions, the objects of a schema, are in the history too: a function
/// is named with its arguments, so overloads are told apart, and a removed one is breaking.
#[tokio::test]
async fn a_schemas_types_sequences_and_functions_are_recorded() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", SCHEMA_OBJECTS).await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    source
        .execute(
            "ALTER TYPE lib.mood ADD VALUE 'closed';
             ALTER SEQUENCE lib.ticket INCREMENT BY 10;
             DROP FUNCTION lib.double(numeric);
             CREATE OR REPLACE FUNCTION lib.half(x integer) RETURNS integer
                 LANGUAGE sql AS 'SELECT x / 2 + 0';
             CREATE FUNCTION lib.triple(x integer) RETURNS integer LANGUAGE sql AS 'SELECT x * 3';",
        )
        .await;
    let second = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(second["stats"]["changes"], 5, "{second}");
    let (_, recorded) = app
        .get(&format!(
            "/syncs/{}/changes",
            second["sync_id"].as_str().unwrap()
        ))
        .await;
    let recorded = recorded.as_array().unwrap().clone();
    let s = |o: &str, a: &str, r: &str| (o.to_owned(), a.to_owned(), r.to_owned(), None);
    let summary: Vec<_> = change_summary(&Value::from(recorded.clone()));
    assert_eq!(
        summary,
        [
            s("type", "altered", "mood"),
            s("sequence", "altered", "ticket"),
            s("function", "removed", "double(x numeric)"),
            s("function", "altered", "half(x integer)"),
            s("function", "added", "triple(x integer)"),
        ]
    );
    let mood = find(&recorded, "type", "mood", None);
    assert_eq!(mood["before"]["labels"], json!(["calm", "busy"]), "{mood}");
    assert_eq!(
        mood["after"]["labels"],
        json!(["calm", "busy", "closed"]),
        "{mood}"
    );
    let ticket = find(&recorded, "sequence", "ticket", None);
    assert_eq!(
        (
            &ticket["before"]["increment"],
            &ticket["after"]["increment"]
        ),
        (&json!(1), &json!(10))
    );
    let removed = find(&recorded, "function", "double(x numeric)", None);
    assert_eq!(removed["classification"], "breaking", "{removed}");
    assert_eq!(removed["before"]["result"], "numeric", "{removed}");
    let half = find(&recorded, "function", "half(x integer)", None);
    assert!(
        half["after"]["definition"]
            .as_str()
            .unwrap()
            .contains("x / 2 + 0"),
        "{half}"
    );
    assert_eq!(half["classification"], "non_breaking");

    // The same changes between the two syncs as a diff, and between two catalogs.
    let (status, diff) = app
        .get(&format!(
            "/diff?from={}&to={}",
            first["sync_id"].as_str().unwrap(),
            second["sync_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    assert_eq!(change_summary(&diff), summary);
    let unchanged = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(unchanged["stats"]["changes"], 0, "{unchanged}");
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn change_history_rejects_bad_input_with_the_field_named() {
    let app = spawn_app().await;
    let source = TestDatabase::with_ddl("pgcs_src", DDL).await;
    let (_, accepted) = app.post_sync(&sync_body(&source.name)).await;
    let catalog = accepted["catalog_id"].as_str().unwrap();

    for (path, status, field) in [
        (
            format!("/catalogs/{catalog}/changes?since=yesterday"),
            400,
            "since",
        ),
        (format!("/catalogs/{catalog}/changes?limit=0"), 400, "limit"),
        (
            format!("/catalogs/{catalog}/changes?cursor=garbage"),
            400,
            "cursor",
        ),
        (
            format!("/catalogs/{catalog}/changes?colour=red"),
            400,
            "colour",
        ),
        ("/catalogs/not-a-uuid/changes".to_owned(), 400, "catalog_id"),
        ("/syncs/not-a-uuid/changes".to_owned(), 400, "sync_id"),
    ] {
        let (got, body) = app.get(&path).await;
        assert_eq!(got.as_u16(), status, "{path}: {body}");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
    }
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/catalogs/{unknown}/changes"),
        format!("/syncs/{unknown}/changes"),
    ] {
        let (got, body) = app.get(&path).await;
        assert_eq!(got, StatusCode::NOT_FOUND, "{path}: {body}");
    }
}
