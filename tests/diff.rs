//! Diffs: two syncs of one catalog compose the history between them, two catalogs compare their
//! snapshots, every change is classified, and `pg-catalog-sync diff --fail-on` gates on them.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// (object, action, relation, name, classification) of each change, in the order given.
fn summary(changes: &Value) -> Vec<(String, String, String, Option<String>, String)> {
    changes
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {changes}"))
        .iter()
        .map(|c| {
            (
                c["object"].as_str().unwrap().to_owned(),
                c["action"].as_str().unwrap().to_owned(),
                c["relation"].as_str().unwrap().to_owned(),
                c["name"].as_str().map(str::to_owned),
                c["classification"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn s(
    object: &str,
    action: &str,
    relation: &str,
    name: Option<&str>,
    classification: &str,
) -> (String, String, String, Option<String>, String) {
    (
        object.into(),
        action.into(),
        relation.into(),
        name.map(str::to_owned),
        classification.into(),
    )
}

fn find<'a>(changes: &'a Value, object: &str, relation: &str, name: Option<&str>) -> &'a Value {
    changes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["object"] == object && c["relation"] == relation && c["name"].as_str() == name)
        .unwrap_or_else(|| panic!("no {object} change of {relation}.{name:?} in {changes}"))
}

async fn diff(app: &TestApp, from: &str, to: &str) -> Value {
    let (status, body) = app.get(&format!("/diff?from={from}&to={to}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

const SHOP: &str = r#"
CREATE SCHEMA shop;
CREATE TABLE shop.orders (id integer PRIMARY KEY, total numeric, note text);
"#;

#[tokio::test]
async fn two_syncs_compose_the_history_between_them() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", SHOP).await;
    let sync_id = |sync: &Value| {
        assert_eq!(sync["status"], "succeeded", "{sync}");
        sync["sync_id"].as_str().unwrap().to_owned()
    };
    let first = sync_id(&app.sync_and_wait(&sync_body(&source.name)).await);
    source
        .execute(
            "ALTER TABLE shop.orders ADD COLUMN status text;
             ALTER TABLE shop.orders ALTER COLUMN total SET NOT NULL;
             CREATE TABLE shop.scratch (id integer);",
        )
        .await;
    let second = sync_id(&app.sync_and_wait(&sync_body(&source.name)).await);
    source
        .execute(
            "ALTER TABLE shop.orders ALTER COLUMN status SET NOT NULL;
             ALTER TABLE shop.orders ALTER COLUMN total TYPE bigint;
             ALTER TABLE shop.orders DROP COLUMN note;
             DROP TABLE shop.scratch;",
        )
        .await;
    let third = sync_id(&app.sync_and_wait(&sync_body(&source.name)).await);

    // From the first to the last: the scratch table, added then removed, is gone; `total`'s
    // two alterations merge; `status` is added as it ends, NOT NULL without a default.
    let composed = diff(&app, &first, &third).await;
    assert_eq!(
        summary(&composed),
        [
            s("column", "removed", "orders", Some("note"), "breaking"),
            s("column", "added", "orders", Some("status"), "breaking"),
            s("column", "altered", "orders", Some("total"), "breaking"),
        ]
    );
    let total = find(&composed, "column", "orders", Some("total"));
    assert_eq!(
        total["before"],
        json!({"data_type": "numeric", "type_name": "numeric", "nullable": true})
    );
    assert_eq!(
        total["after"],
        json!({"data_type": "bigint", "type_name": "int8", "nullable": false})
    );
    let status = find(&composed, "column", "orders", Some("status"));
    assert_eq!(status["before"], Value::Null);
    assert_eq!(status["after"]["nullable"], false);
    assert_eq!(status["after"]["data_type"], "text");

    // From the last to the first: the inverse, classified again.
    let inverted = diff(&app, &third, &first).await;
    assert_eq!(
        summary(&inverted),
        [
            s("column", "added", "orders", Some("note"), "non_breaking"),
            s("column", "removed", "orders", Some("status"), "breaking"),
            s("column", "altered", "orders", Some("total"), "breaking"),
        ]
    );
    let total = find(&inverted, "column", "orders", Some("total"));
    assert_eq!(total["before"]["data_type"], "bigint");
    assert_eq!(total["after"]["data_type"], "numeric");

    // A sync with itself: nothing. Two adjacent syncs: what the later one recorded.
    assert_eq!(diff(&app, &second, &second).await, json!([]));
    let (_, recorded) = app.get(&format!("/syncs/{third}/changes")).await;
    let adjacent = diff(&app, &second, &third).await;
    assert_eq!(summary(&adjacent), summary(&recorded));
    assert!(
        summary(&recorded).contains(&s("relation", "removed", "scratch", None, "breaking")),
        "the history's items are classified too: {recorded}"
    );
}

#[tokio::test]
async fn the_diff_names_the_parameter_it_refuses() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", SHOP).await;
    let other = TestDatabase::with_ddl("pgcs_src", SHOP).await;
    let sync = app.sync_and_wait(&sync_body(&source.name)).await;
    let other_sync = app.sync_and_wait(&sync_body(&other.name)).await;
    let (sync, catalog) = (
        sync["sync_id"].as_str().unwrap(),
        sync["catalog_id"].as_str().unwrap(),
    );
    let other_sync = other_sync["sync_id"].as_str().unwrap();
    let unknown = uuid::Uuid::now_v7().to_string();
    let refused = |field: &'static str, status: StatusCode| (field, status);
    for (query, (field, status)) in [
        (
            format!("from=nope&to={sync}"),
            refused("from", StatusCode::BAD_REQUEST),
        ),
        (
            format!("from={sync}"),
            refused("to", StatusCode::BAD_REQUEST),
        ),
        (
            format!("from={sync}&to={catalog}"),
            refused("to", StatusCode::BAD_REQUEST),
        ),
        (
            format!("from={sync}&to={other_sync}"),
            refused("to", StatusCode::BAD_REQUEST),
        ),
        (
            format!("from={sync}&to={sync}&x=1"),
            refused("x", StatusCode::BAD_REQUEST),
        ),
        (
            format!("from={unknown}&to={sync}"),
            refused("from", StatusCode::NOT_FOUND),
        ),
        (
            format!("from={sync}&to={unknown}"),
            refused("to", StatusCode::NOT_FOUND),
        ),
    ] {
        let (got, body) = app.get(&format!("/diff?{query}")).await;
        assert_eq!(got, status, "{query}: {body}");
        match status {
            StatusCode::NOT_FOUND => {
                let message = body["error"]["message"].as_str().unwrap();
                assert!(message.starts_with(&format!("{field}: ")), "{message}");
            }
            _ => assert_eq!(body["error"]["field"], field, "{query}: {body}"),
        }
    }
}

const PRODUCTION: &str = r#"
CREATE TABLE customers (
    id          integer PRIMARY KEY,
    email       text NOT NULL,
    legacy_code text,
    score       integer,
    status      text DEFAULT 'new'
);
CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer, total numeric);
CREATE TABLE old_reports (id integer);
"#;

/// Production's schema after the migrations under review.
const STAGING_MIGRATIONS: &str = r#"
ALTER TABLE customers DROP COLUMN legacy_code;
ALTER TABLE customers ALTER COLUMN score TYPE bigint;
ALTER TABLE customers ALTER COLUMN status DROP DEFAULT;
ALTER TABLE customers ADD CONSTRAINT customers_email_key UNIQUE (email);
ALTER TABLE orders ADD COLUMN note text;
ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;
ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total > 0);
CREATE INDEX orders_customer_idx ON orders (customer_id);
COMMENT ON TABLE orders IS 'What was bought';
CREATE TABLE audit (id bigint, at timestamptz);
DROP TABLE old_reports;
"#;

#[tokio::test]
async fn two_catalogs_compare_their_snapshots_and_classify_each_change() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let prod = TestDatabase::with_ddl("pgcs_prod", PRODUCTION).await;
    let staging = TestDatabase::with_ddl("pgcs_staging", PRODUCTION).await;
    staging.execute(STAGING_MIGRATIONS).await;
    let prod = app.sync_and_wait(&sync_body(&prod.name)).await;
    let staging = app.sync_and_wait(&sync_body(&staging.name)).await;
    let (prod, staging) = (
        prod["catalog_id"].as_str().unwrap(),
        staging["catalog_id"].as_str().unwrap(),
    );

    let found = diff(&app, prod, staging).await;
    assert_eq!(
        summary(&found),
        [
            s("relation", "added", "audit", None, "non_breaking"),
            s("relation", "removed", "old_reports", None, "breaking"),
            s("relation", "altered", "orders", None, "non_breaking"),
            s("column", "added", "audit", Some("at"), "non_breaking"),
            s("column", "added", "audit", Some("id"), "non_breaking"),
            s(
                "column",
                "removed",
                "customers",
                Some("legacy_code"),
                "breaking"
            ),
            s("column", "altered", "customers", Some("score"), "breaking"),
            s("column", "altered", "customers", Some("status"), "breaking"),
            s("column", "removed", "old_reports", Some("id"), "breaking"),
            s(
                "column",
                "altered",
                "orders",
                Some("customer_id"),
                "breaking"
            ),
            s("column", "added", "orders", Some("note"), "non_breaking"),
            s(
                "constraint",
                "added",
                "customers",
                Some("customers_email_key"),
                "breaking"
            ),
            s(
                "constraint",
                "added",
                "orders",
                Some("orders_total_check"),
                "breaking"
            ),
            s(
                "index",
                "added",
                "customers",
                Some("customers_email_key"),
                "non_breaking"
            ),
            s(
                "index",
                "added",
                "orders",
                Some("orders_customer_idx"),
                "non_breaking"
            ),
        ]
    );
    for c in found.as_array().unwrap() {
        assert_eq!(c["schema"], "public", "{c}");
    }
    let score = find(&found, "column", "customers", Some("score"));
    assert_eq!(
        (&score["before"]["data_type"], &score["after"]["data_type"]),
        (&json!("integer"), &json!("bigint"))
    );
    let status = find(&found, "column", "customers", Some("status"));
    assert_eq!(status["before"], json!({"default_expr": "'new'::text"}));
    assert_eq!(status["after"], json!({"default_expr": null}));
    let orders = find(&found, "relation", "orders", None);
    assert_eq!(orders["after"], json!({"comment": "What was bought"}));

    // The other way round: the inverse, and a catalog with itself is the same.
    let back = summary(&diff(&app, staging, prod).await);
    assert!(
        back.contains(&s("relation", "removed", "audit", None, "breaking")),
        "{back:?}"
    );
    assert!(
        back.contains(&s(
            "column",
            "altered",
            "orders",
            Some("customer_id"),
            "non_breaking"
        )),
        "NOT NULL dropped: {back:?}"
    );
    assert_eq!(back.len(), found.as_array().unwrap().len());
    assert_eq!(diff(&app, prod, prod).await, json!([]));
}

async fn run_diff(app: &TestApp, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(binary("pg-catalog-sync"))
        .arg("diff")
        .args(args)
        .env("PGCS_API_URL", &app.base)
        .output()
        .await
        .expect("running pg-catalog-sync")
}

#[tokio::test]
async fn the_cli_fails_on_the_kind_of_change_it_is_told() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let prod = TestDatabase::with_ddl("pgcs_prod", PRODUCTION).await;
    let safe = TestDatabase::with_ddl("pgcs_staging", PRODUCTION).await;
    safe.execute(
        "ALTER TABLE orders ADD COLUMN note text;
         CREATE INDEX orders_customer_idx ON orders (customer_id);",
    )
    .await;
    let unsafe_ = TestDatabase::with_ddl("pgcs_staging", PRODUCTION).await;
    unsafe_
        .execute("ALTER TABLE customers DROP COLUMN legacy_code;")
        .await;
    let mut catalogs = Vec::new();
    for db in [&prod, &safe, &unsafe_] {
        let sync = app.sync_and_wait(&sync_body(&db.name)).await;
        catalogs.push(sync["catalog_id"].as_str().unwrap().to_owned());
    }
    let (prod, safe, unsafe_) = (&catalogs[0], &catalogs[1], &catalogs[2]);
    let code = |out: &std::process::Output| out.status.code();
    let text = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).into_owned();

    let out = run_diff(&app, &[prod, safe, "--fail-on", "breaking"]).await;
    assert_eq!(code(&out), Some(0), "only non-breaking: {}", text(&out));
    assert!(
        text(&out).contains("2 changes: 0 breaking, 2 non-breaking"),
        "{}",
        text(&out)
    );
    let out = run_diff(&app, &[prod, safe, "--fail-on", "any"]).await;
    assert_eq!(code(&out), Some(1), "{}", text(&out));
    let out = run_diff(&app, &[prod, unsafe_, "--fail-on", "breaking"]).await;
    assert_eq!(code(&out), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("breaking      column removed     public.customers.legacy_code"),
        "{}",
        text(&out)
    );
    let out = run_diff(&app, &[prod, unsafe_]).await;
    assert_eq!(code(&out), Some(0), "without --fail-on: {}", text(&out));

    let out = run_diff(&app, &[prod, unsafe_, "--format", "json"]).await;
    assert_eq!(code(&out), Some(0));
    let parsed: Value = serde_json::from_slice(&out.stdout).expect("--format json is JSON");
    assert_eq!(
        summary(&parsed),
        [s(
            "column",
            "removed",
            "customers",
            Some("legacy_code"),
            "breaking"
        )]
    );
    let out = run_diff(&app, &[prod, safe, "--format", "markdown"]).await;
    assert!(
        text(&out).contains("| non-breaking | index added | `public.orders.orders_customer_idx` |"),
        "{}",
        text(&out)
    );

    let out = run_diff(&app, &[prod, safe, "--fail-on", "sometimes"]).await;
    assert_eq!(code(&out), Some(2), "a usage error");
    let out = run_diff(&app, &[prod, "not-an-id"]).await;
    assert_eq!(code(&out), Some(1), "the API refused it");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("to: must be a UUID"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
