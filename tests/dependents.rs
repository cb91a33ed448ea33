//! Impact analysis (`.../dependents`): what depends on a relation and on each of its columns,
//! with the path that leads to it. Views are found column-exactly, as the source's own
//! `pg_depend` records what each view reads, and through views that read them; foreign keys,
//! constraints, indexes, triggers, policies and SQL-standard function bodies by the columns
//! they use.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

const SOURCE: &str = r#"
CREATE SCHEMA shop;
CREATE TABLE shop.orders (
    id integer PRIMARY KEY,
    customer text NOT NULL,
    total numeric CHECK (total >= 0),
    status text,
    note text
);
CREATE INDEX orders_status ON shop.orders (status);
CREATE INDEX orders_open ON shop.orders (lower(customer)) WHERE status <> 'closed';
CREATE VIEW shop.order_totals AS SELECT id, total FROM shop.orders;
CREATE VIEW shop.big_orders AS SELECT id FROM shop.order_totals WHERE total > 100;
CREATE MATERIALIZED VIEW shop.customers AS SELECT DISTINCT customer FROM shop.orders;
CREATE VIEW shop.order_rows AS SELECT o FROM shop.orders o;
CREATE TABLE shop.lines (id integer, order_id integer REFERENCES shop.orders (id));
CREATE FUNCTION shop.stamp() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE TRIGGER orders_status_changed BEFORE UPDATE OF status ON shop.orders
    FOR EACH ROW WHEN (OLD.note IS DISTINCT FROM NEW.note) EXECUTE FUNCTION shop.stamp();
CREATE TRIGGER orders_any BEFORE INSERT ON shop.orders
    FOR EACH ROW EXECUTE FUNCTION shop.stamp();
ALTER TABLE shop.orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_orders ON shop.orders USING (customer = current_user);
CREATE FUNCTION shop.revenue() RETURNS numeric LANGUAGE sql
BEGIN ATOMIC
    SELECT sum(total) FROM shop.orders WHERE status = 'paid';
END;
CREATE FUNCTION shop.big_count() RETURNS bigint LANGUAGE sql
    RETURN (SELECT count(*) FROM shop.big_orders);
"#;

/// (kind, schema, relation or "", name) of each dependent.
type Found = BTreeSet<(String, String, String, String)>;

fn found(items: &[Value]) -> Found {
    items
        .iter()
        .map(|d| {
            let text = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
            (text("kind"), text("schema"), text("relation"), text("name"))
        })
        .collect()
}

fn item(kind: &str, relation: &str, name: &str) -> (String, String, String, String) {
    (kind.into(), "shop".into(), relation.into(), name.into())
}

async fn dependents(app: &TestApp, catalog: &str, of: &str) -> Vec<Value> {
    let (items, _) = app
        .get_all_pages(&format!(
            "/catalogs/{catalog}/tables/shop/{of}dependents?limit=3"
        ))
        .await;
    items
}

/// What the source's pg_depend says each view's rule reads of `shop.orders`: (view, column),
/// column `None` for the whole relation.
async fn source_view_columns(source: &TestDatabase) -> BTreeSet<(String, Option<String>)> {
    let pool = PgPool::connect(&source.url).await.unwrap();
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT v.relname::text, a.attname::text
         FROM pg_rewrite r
         JOIN pg_class v ON v.oid = r.ev_class
         JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                         AND d.refobjid = 'shop.orders'::regclass
         LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                                 AND d.refobjsubid > 0",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.into_iter().collect()
}

#[tokio::test]
async fn dependents_of_a_table_and_of_each_column_follow_pg_depend() {
    let source = TestDatabase::with_ddl("pgcs_deps", SOURCE).await;
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let sync = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let catalog = sync["catalog_id"].as_str().unwrap().to_owned();

    // The whole table: everything on it and reading it, paged.
    let all = dependents(&app, &catalog, "orders/").await;
    let expected: Found = [
        item("constraint", "orders", "orders_pkey"),
        item("constraint", "orders", "orders_total_check"),
        item("foreign_key", "lines", "lines_order_id_fkey"),
        item("function", "", "big_count()"),
        item("function", "", "revenue()"),
        item("index", "orders", "orders_open"),
        item("index", "orders", "orders_pkey"),
        item("index", "orders", "orders_status"),
        item("materialized_view", "customers", "customers"),
        item("policy", "orders", "own_orders"),
        item("trigger", "orders", "orders_any"),
        item("trigger", "orders", "orders_status_changed"),
        item("view", "big_orders", "big_orders"),
        item("view", "order_rows", "order_rows"),
        item("view", "order_totals", "order_totals"),
    ]
    .into_iter()
    .collect();
    assert_eq!(found(&all), expected, "{all:#?}");
    let big = all.iter().find(|d| d["name"] == "big_orders").unwrap();
    assert_eq!(
        big["path"],
        json!([
            {"schema": "shop", "relation": "orders"},
            {"schema": "shop", "relation": "order_totals"},
            {"schema": "shop", "relation": "big_orders"}
        ])
    );
    let big_count = all.iter().find(|d| d["name"] == "big_count()").unwrap();
    assert!(big_count.get("relation").is_none(), "{big_count}");
    assert_eq!(big_count["path"], big["path"], "read through the views");

    // Each column: the views that read it (and only those), and what else uses it.
    let per_column: BTreeMap<&str, Found> = [
        (
            "id",
            vec![
                item("constraint", "orders", "orders_pkey"),
                item("foreign_key", "lines", "lines_order_id_fkey"),
                item("function", "", "big_count()"),
                item("index", "orders", "orders_pkey"),
                item("view", "big_orders", "big_orders"),
                item("view", "order_rows", "order_rows"),
                item("view", "order_totals", "order_totals"),
            ],
        ),
        (
            "customer",
            vec![
                item("index", "orders", "orders_open"),
                item("materialized_view", "customers", "customers"),
                item("policy", "orders", "own_orders"),
                item("view", "order_rows", "order_rows"),
            ],
        ),
        (
            "total",
            vec![
                item("constraint", "orders", "orders_total_check"),
                item("function", "", "big_count()"),
                item("function", "", "revenue()"),
                item("view", "big_orders", "big_orders"),
                item("view", "order_rows", "order_rows"),
                item("view", "order_totals", "order_totals"),
            ],
        ),
        (
            "status",
            vec![
                item("function", "", "revenue()"),
                item("index", "orders", "orders_open"),
                item("index", "orders", "orders_status"),
                item("trigger", "orders", "orders_status_changed"),
                item("view", "order_rows", "order_rows"),
            ],
        ),
        (
            "note",
            vec![
                item("trigger", "orders", "orders_status_changed"),
                item("view", "order_rows", "order_rows"),
            ],
        ),
    ]
    .into_iter()
    .map(|(c, items)| (c, items.into_iter().collect()))
    .collect();
    let mut served_views: BTreeSet<(String, String)> = BTreeSet::new();
    for (column, expected) in &per_column {
        let items = dependents(&app, &catalog, &format!("orders/columns/{column}/")).await;
        assert_eq!(&found(&items), expected, "{column}: {items:#?}");
        for d in &items {
            let path = d["path"].as_array().unwrap();
            assert_eq!(
                path[0],
                json!({"schema": "shop", "relation": "orders", "column": column}),
                "{d}"
            );
            if d["kind"] == "view" || d["kind"] == "materialized_view" {
                let first = path[1]["relation"].as_str().unwrap().to_owned();
                served_views.insert((first, column.to_string()));
            }
        }
        if *column == "id" {
            let fk = items.iter().find(|d| d["kind"] == "foreign_key").unwrap();
            assert_eq!(
                fk["path"][1],
                json!({"schema": "shop", "relation": "lines", "column": "order_id"})
            );
        }
    }

    // The first view of every column's path reads that column, as pg_depend says on the source:
    // a view recorded without columns (a whole-row or count(*) reference) reads every column,
    // and so does one whose rule holds a whole-row reference.
    let columns: Vec<&str> = per_column.keys().copied().collect();
    let mut expected_views = BTreeSet::new();
    for (view, column) in source_view_columns(&source).await {
        match (view.as_str(), column) {
            ("order_rows", _) | (_, None) => {
                for c in &columns {
                    expected_views.insert((view.clone(), c.to_string()));
                }
            }
            (_, Some(c)) => {
                expected_views.insert((view, c));
            }
        }
    }
    assert_eq!(served_views, expected_views);

    // Unknown catalog, relation and column are 404s; a bad cursor a 400 naming it.
    let base = format!("/catalogs/{catalog}/tables/shop");
    for path in [
        format!("{base}/nowhere/dependents"),
        format!("{base}/orders/columns/nothing/dependents"),
        "/catalogs/00000000-0000-0000-0000-000000000000/tables/shop/orders/dependents".to_owned(),
    ] {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (status, body) = app
        .get(&format!("{base}/orders/dependents?cursor=nope"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "cursor", "{body}");

    // A past state answers as it was: after the view is dropped, the sync before still has it.
    source.execute("DROP VIEW shop.big_orders CASCADE").await;
    let second = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    let now = dependents(&app, &catalog, "orders/columns/total/").await;
    assert!(!found(&now).contains(&item("view", "big_orders", "big_orders")));
    let first_sync = sync["sync_id"].as_str().unwrap();
    let (then, _) = app
        .get_all_pages(&format!(
            "{base}/orders/columns/total/dependents?sync={first_sync}"
        ))
        .await;
    assert_eq!(&found(&then), &per_column["total"]);
}
