//! Catalog fidelity on a real schema nobody here wrote (Pagila: partitions, views, a
//! materialized view, domains, enums): what a sync serves is what the source's own
//! catalog (`pg_catalog` and `information_schema`) reports.

mod common;

use std::collections::BTreeMap;

use common::*;
use pg_catalog_sync::store::reads::{self, DetailParts};
use serde_json::{Value, json};
use sqlx::PgPool;

/// (column, type, nullable) in ordinal order.
type Columns = Vec<(String, String, bool)>;

const PAGILA: &str = include_str!("fixtures/pagila/pagila-schema.sql");

/// A service with a worker, a source database holding Pagila, and its finished sync.
async fn synced_pagila() -> (
    TestApp,
    pg_catalog_sync::queue::WorkerHandle,
    TestDatabase,
    Value,
) {
    let app = spawn_app().await;
    let worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_pagila", PAGILA).await;
    let sync = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    (app, worker, source, sync)
}

#[tokio::test]
async fn a_pagila_sync_matches_the_source_catalog() {
    let (app, _worker, source, sync) = synced_pagila().await;
    let catalog = sync["catalog_id"].as_str().unwrap();
    let src = PgPool::connect(&source.url).await.unwrap();

    // Relations and their kinds.
    let mut expected: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text,
                CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned_table' WHEN 'v' THEN 'view'
                               WHEN 'm' THEN 'materialized_view' WHEN 'f' THEN 'foreign_table' END
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
           AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
",
    )
    .fetch_all(&src)
    .await
    .unwrap();
    expected.sort();
    assert_eq!(expected.len(), 30, "the fixture loaded");
    let (_, tables) = app
        .get(&format!("/catalogs/{catalog}/tables?limit=1000"))
        .await;
    let mut served = relation_kinds(&tables);
    served.sort();
    assert_eq!(served, expected);

    // Every relation's columns: names in order, types as format_type prints them, nullability as
    // information_schema reports it (NOT NULL domains included).
    let columns: Vec<(String, String, String, String, bool)> = sqlx::query_as(
        "SELECT c.table_schema::text, c.table_name::text, c.column_name::text,
                format_type(a.atttypid, a.atttypmod), c.is_nullable = 'YES'
         FROM information_schema.columns c
         JOIN pg_attribute a ON a.attrelid = format('%I.%I', c.table_schema, c.table_name)::regclass
                            AND a.attname = c.column_name
         WHERE c.table_schema = 'public'
         ORDER BY c.table_schema, c.table_name, c.ordinal_position",
    )
    .fetch_all(&src)
    .await
    .unwrap();
    let mut by_table: BTreeMap<(String, String), Columns> = BTreeMap::new();
    for (schema, table, column, ty, nullable) in columns {
        by_table
            .entry((schema, table))
            .or_default()
            .push((column, ty, nullable));
    }
    // information_schema leaves out materialized views; every other relation must be there.
    assert_eq!(by_table.len(), expected.len() - 1);
    for ((schema, table), expected_columns) in &by_table {
        let (status, detail) = app
            .get(&format!("/catalogs/{catalog}/tables/{schema}/{table}"))
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{schema}.{table}");
        let got: Columns = detail["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().into(),
                    c["type"].as_str().unwrap().into(),
                    c["nullable"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(&got, expected_columns, "{schema}.{table}");
    }

    // Primary keys, column lists in key order.
    let keys: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT c.relname::text, ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, o)
                                        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o)
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
         WHERE k.contype = 'p' AND c.relnamespace = 'public'::regnamespace",
    )
    .fetch_all(&src)
    .await
    .unwrap();
    assert!(keys.len() >= 20);
    for (table, key) in keys {
        let (_, detail) = app
            .get(&format!("/catalogs/{catalog}/tables/public/{table}"))
            .await;
        assert_eq!(detail["primary_key"], serde_json::json!(key), "{table}");
    }

    // Totals of constraints and indexes.
    let (constraints, indexes): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND k.contype IN ('p','u','f','c','x')),
                (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public')",
    )
    .fetch_one(&src)
    .await
    .unwrap();
    assert_eq!(sync["stats"]["constraints"], constraints);
    assert_eq!(sync["stats"]["indexes"], indexes);

    // Partitions name their parent and bound; the materialized view keeps its definition.
    let partitions: Vec<&Value> = tables
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["parent_name"] == "payment")
        .collect();
    assert_eq!(partitions.len(), 7);
    assert!(partitions.iter().all(|p| {
        p["partition_bound"]
            .as_str()
            .unwrap()
            .starts_with("FOR VALUES FROM")
    }));
    let (_, matview) = app
        .get(&format!(
            "/catalogs/{catalog}/tables/public/rental_by_category"
        ))
        .await;
    assert_eq!(matview["kind"], "materialized_view");
    assert!(matview["definition"].as_str().unwrap().contains("GROUP BY"));
    src.close().await;
}

/// Rows of `sql` on the source, each as a JSON value, sorted: the expected side of a comparison.
async fn expected(src: &PgPool, sql: &str) -> Vec<Value> {
    let rows: Vec<(Value,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT to_jsonb(r) FROM ({sql}) r"
    )))
    .fetch_all(src)
    .await
    .unwrap();
    let mut rows: Vec<Value> = rows.into_iter().map(|(v,)| v).collect();
    rows.sort_by_key(|v| v.to_string());
    assert!(!rows.is_empty(), "the fixture has some: {sql}");
    rows
}

fn sorted(mut rows: Vec<Value>) -> Vec<Value> {
    rows.sort_by_key(|v| v.to_string());
    rows
}

#[tokio::test]
async fn pagila_types_sequences_functions_triggers_defaults_and_lineage_match_pg_catalog() {
    let (app, _worker, source, sync) = synced_pagila().await;
    let catalog = sync["catalog_id"].as_str().unwrap();
    let src = PgPool::connect(&source.url).await.unwrap();
    let list = async |what: &str| {
        app.get(&format!("/catalogs/{catalog}/{what}?limit=1000"))
            .await
            .1
    };
    let (_, tables) = app
        .get(&format!("/catalogs/{catalog}/tables?limit=1000"))
        .await;
    let mut details = Vec::new();
    for t in tables.as_array().unwrap() {
        let path = format!(
            "/catalogs/{catalog}/tables/public/{}",
            t["name"].as_str().unwrap()
        );
        details.push(app.get(&path).await.1);
    }
    let each = |f: &dyn Fn(&Value) -> Vec<Value>| sorted(details.iter().flat_map(f).collect());

    // Enums with their labels in order; domains with their base types.
    let types = list("types").await;
    let served = |kind: &str, f: &dyn Fn(&Value) -> Value| {
        sorted(
            types
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["kind"] == kind)
                .map(f)
                .collect(),
        )
    };
    assert_eq!(
        served("enum", &|t| json!({"name": t["name"], "labels": t["labels"]})),
        expected(&src, "SELECT t.typname AS name, ARRAY(SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) AS labels
                        FROM pg_type t WHERE t.typtype = 'e' AND t.typnamespace = 'public'::regnamespace").await
    );
    assert_eq!(
        served(
            "domain",
            &|t| json!({"name": t["name"], "base": t["base_type"]})
        ),
        expected(
            &src,
            "SELECT typname AS name, format_type(typbasetype, typtypmod) AS base FROM pg_type
                        WHERE typtype = 'd' AND typnamespace = 'public'::regnamespace"
        )
        .await
    );

    // Sequences and the columns owning them.
    let sequences = list("sequences").await;
    assert_eq!(
        sorted(sequences.as_array().unwrap().iter().map(|s| json!({"name": s["name"], "start": s["start"], "owner": s["owned_by_column"]})).collect()),
        expected(&src, "SELECT c.relname AS name, s.seqstart AS start, a.attname AS owner
                        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
                        LEFT JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
                        LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                        WHERE c.relnamespace = 'public'::regnamespace").await
    );

    // Functions, overloads told apart by their arguments.
    let functions = list("functions").await;
    assert_eq!(
        sorted(functions.as_array().unwrap().iter().map(|f| json!({"name": f["name"], "args": f["arguments"], "lang": f["language"]})).collect()),
        expected(&src, "SELECT p.proname AS name, pg_get_function_identity_arguments(p.oid) AS args, l.lanname AS lang
                        FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.pronamespace = 'public'::regnamespace").await
    );

    // Triggers, as pg_get_triggerdef prints them.
    assert_eq!(
        each(&|d| d["triggers"].as_array().unwrap().iter().map(|t| json!({"table": d["name"], "def": t["definition"]})).collect()),
        expected(&src, "SELECT c.relname AS table, pg_get_triggerdef(t.oid, true) AS def FROM pg_trigger t
                        JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal").await
    );

    // Column defaults.
    assert_eq!(
        each(&|d| d["columns"].as_array().unwrap().iter().filter(|c| !c["default"].is_null())
            .map(|c| json!({"table": d["name"], "column": c["name"], "default": c["default"]})).collect()),
        expected(&src, "SELECT c.relname AS table, a.attname AS column, pg_get_expr(ad.adbin, ad.adrelid) AS default
                        FROM pg_attrdef ad JOIN pg_class c ON c.oid = ad.adrelid
                        JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
                        WHERE c.relnamespace = 'public'::regnamespace AND a.attgenerated = ''").await
    );

    // Index definitions.
    assert_eq!(
        each(&|d| d["indexes"].as_array().unwrap().iter().map(|i| json!({"name": i["name"], "def": i["definition"]})).collect()),
        expected(&src, "SELECT ic.relname AS name, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i
                        JOIN pg_class ic ON ic.oid = i.indexrelid WHERE ic.relnamespace = 'public'::regnamespace").await
    );

    // Foreign keys: columns, target and actions.
    assert_eq!(
        each(&|d| d["constraints"].as_array().unwrap().iter().filter(|k| k["kind"] == "foreign_key")
            .map(|k| json!({"name": k["name"], "target": k["ref_table"], "on_delete": k["on_delete"], "def": k["definition"]})).collect()),
        expected(&src, "SELECT k.conname AS name, t.relname AS target, pg_get_constraintdef(k.oid) AS def,
                               CASE k.confdeltype WHEN 'a' THEN 'no action' WHEN 'r' THEN 'restrict' WHEN 'c' THEN 'cascade'
                                                  WHEN 'n' THEN 'set null' ELSE 'set default' END AS on_delete
                        FROM pg_constraint k JOIN pg_class t ON t.oid = k.confrelid
                        WHERE k.contype = 'f' AND k.connamespace = 'public'::regnamespace").await
    );

    // Partition bounds, and the parent's list of partitions.
    let payment = details.iter().find(|d| d["name"] == "payment").unwrap();
    assert_eq!(payment["kind"], "partitioned_table");
    assert_eq!(
        sorted(payment["partitions"].as_array().unwrap().iter().map(|p| json!({"name": p["name"], "bound": p["partition_bound"]})).collect()),
        expected(&src, "SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i
                        JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'public.payment'::regclass").await
    );

    // View lineage: what each view reads.
    assert_eq!(
        each(&|d| d["depends_on"].as_array().map(|refs| refs.iter().map(|r| json!({"view": d["name"], "reads": r["name"]})).collect()).unwrap_or_default()),
        expected(&src, "SELECT DISTINCT v.relname AS view, rc.relname AS reads FROM pg_rewrite r
                        JOIN pg_class v ON v.oid = r.ev_class
                        JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
                        JOIN pg_class rc ON rc.oid = d.refobjid
                        WHERE v.relnamespace = 'public'::regnamespace AND v.relkind IN ('v', 'm') AND rc.oid <> v.oid").await
    );
    src.close().await;
}

/// Arrays of objects in a stable order (the migration orders by the store's collation, the
/// worker by bytes); everything else as it is.
fn normalized(value: Value) -> Value {
    match value {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.into_iter().map(normalized).collect();
            if items.iter().all(Value::is_object) {
                items.sort_by_key(|v| v.to_string());
            }
            Value::Array(items)
        }
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, normalized(v))).collect())
        }
        other => other,
    }
}

/// The migration that introduced stored detail documents built them for the catalogs already
/// in the store, in SQL, with their columns inside; the worker builds them from the snapshot
/// and leaves the columns to the column lists. Both must be served the same: the documents
/// of earlier versions stay readable as they are.
#[tokio::test]
async fn the_migration_builds_the_detail_documents_the_worker_writes() {
    let (app, _worker, _source, sync) = synced_pagila().await;
    let catalog: uuid::Uuid = sync["catalog_id"].as_str().unwrap().parse().unwrap();
    let documents = async || -> Vec<(String, String, bool, Value)> {
        let rows: Vec<(String, String, bool)> = sqlx::query_as(
            "SELECT schema_name, name, columns_inside FROM catalog_relation_details
             WHERE catalog_id = $1 ORDER BY 1, 2",
        )
        .bind(catalog)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        let mut served = Vec::new();
        for (schema, name, columns_inside) in rows {
            let detail =
                reads::relation_detail(&app.pool, catalog, &schema, &name, "", DetailParts::ALL)
                    .await
                    .unwrap()
                    .unwrap();
            let detail = normalized(serde_json::from_str(&detail).unwrap());
            served.push((schema, name, columns_inside, detail));
        }
        served
    };
    let written = documents().await;
    assert!(written.len() > 20, "{} documents", written.len());
    assert!(written.iter().all(|(.., inside, _)| !inside));
    let film = written.iter().find(|(_, name, ..)| name == "film").unwrap();
    assert_eq!(
        film.3["columns"].as_array().unwrap().len(),
        14,
        "{}",
        film.3
    );

    sqlx::query("DELETE FROM catalog_relation_details WHERE catalog_id = $1")
        .bind(catalog)
        .execute(&app.pool)
        .await
        .unwrap();
    let migration = include_str!("../migrations/20261126000005_relation_details.sql");
    let backfill = &migration[migration
        .find("INSERT INTO catalog_relation_details")
        .unwrap()..];
    sqlx::raw_sql(sqlx::AssertSqlSafe(backfill.to_owned()))
        .execute(&app.pool)
        .await
        .unwrap();
    let rebuilt = documents().await;
    assert_eq!(rebuilt.len(), written.len());
    assert!(rebuilt.iter().all(|(.., inside, _)| *inside));
    for (w, r) in written.iter().zip(&rebuilt) {
        // What documents show of access came after that migration: a document it built is
        // replaced by the next sync (the relation's hash covers its access rows).
        let mut w3 = w.3.clone();
        for later in ["privileges", "policies", "rls_forced"] {
            w3.as_object_mut().unwrap().remove(later);
        }
        assert_eq!((&w.0, &w.1, &w3), (&r.0, &r.1, &r.3));
    }
}

/// The migration that packed each relation's columns into one row of arrays moved the columns
/// already in the store: a catalog's columns read the same through the `catalog_columns` view
/// after the move as they did from the table before it (names, types, defaults, comments,
/// identities, generated expressions, collations, and their order).
#[tokio::test]
async fn the_column_lists_migration_keeps_every_column() {
    let (app, _worker, _source, _sync) = synced_pagila().await;
    // What Pagila lacks: a column comment, an identity and a generated column.
    let other = TestDatabase::with_ddl(
        "pgcs_columns",
        r#"CREATE DOMAIN "größe" AS numeric(6, 1);
           CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY, "odd ""name""" text COLLATE "C",
                           twice int GENERATED ALWAYS AS (id * 2) STORED, size "größe");
           COMMENT ON COLUMN t."odd ""name""" IS 'a {braced, "quoted"} comment';"#,
    )
    .await;
    let sync = app.sync_and_wait(&sync_body(&other.name)).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let columns = async || -> Vec<Value> {
        let rows: Vec<(Value,)> = sqlx::query_as(
            "SELECT to_jsonb(c) FROM catalog_columns c
             ORDER BY catalog_id, schema_name, relation_name, ordinal",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap();
        rows.into_iter().map(|(row,)| row).collect()
    };
    let written = columns().await;
    assert!(written.len() > 100, "{} columns", written.len());
    let attribute = |name: &str| written.iter().filter(|c| !c[name].is_null()).count();
    for optional in [
        "default_expr",
        "comment",
        "identity",
        "generated",
        "collation_name",
    ] {
        assert!(attribute(optional) > 0, "a column has a {optional}");
    }

    // The store as it was before the migration: the same columns, a row each.
    sqlx::raw_sql(
        "CREATE TABLE columns_before AS SELECT * FROM catalog_columns;
         DROP VIEW catalog_columns;
         DROP FUNCTION column_list_columns(catalog_column_lists);
         DROP TABLE catalog_column_lists;
         ALTER TABLE columns_before RENAME TO catalog_columns;",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let migration = include_str!("../migrations/20261126000007_column_lists.sql");
    sqlx::raw_sql(sqlx::AssertSqlSafe(migration.to_owned()))
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(columns().await, written);

    // Then the migration that moved the lists' types into the `column_types` dictionary, from
    // the lists as the one before left them.
    sqlx::raw_sql(
        "DROP TABLE column_types;
         DROP FUNCTION column_type_key(text, text, text);",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let migration = include_str!("../migrations/20261204000001_column_types.sql");
    sqlx::raw_sql(sqlx::AssertSqlSafe(migration.to_owned()))
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(columns().await, written);
    // Its keys are the ones the worker computes, non-ASCII names included.
    let types: Vec<(uuid::Uuid, String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT key, data_type, type_schema, type_name FROM column_types")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(
        types.iter().any(|(_, d, ..)| d.contains("größe")),
        "{types:?}"
    );
    for (key, data_type, schema, name) in &types {
        assert_eq!(
            *key,
            pg_catalog_sync::store::column_types::key(
                data_type,
                schema.as_deref(),
                name.as_deref()
            ),
            "{data_type} {schema:?} {name:?}"
        );
    }
}
