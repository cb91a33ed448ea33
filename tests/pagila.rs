//! Catalog fidelity on a real schema nobody here wrote (Pagila: partitions, views, a
//! materialized view, domains, enums): what a sync serves is what the source's own
//! catalog (`pg_catalog` and `information_schema`) reports.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;
use sqlx::PgPool;

/// (column, type, nullable) in ordinal order.
type Columns = Vec<(String, String, bool)>;

const PAGILA: &str = include_str!("fixtures/pagila/pagila-schema.sql");

#[tokio::test]
async fn a_pagila_sync_matches_the_source_catalog() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_pagila", PAGILA).await;
    let sync = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
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
    let mut served: Vec<(String, String, String)> = tables
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["schema"].as_str().unwrap().into(),
                t["name"].as_str().unwrap().into(),
                t["kind"].as_str().unwrap().into(),
            )
        })
        .collect();
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
