//! Catalog fidelity on real-world schemas nobody here wrote (AdventureWorks, Danbooru, Hatchet;
//! see tests/fixtures/realworld/README.md): what a sync serves is what the source's own
//! pg_catalog says, for every relation, every column in order, every constraint, index and
//! trigger definition, every function and the sync's counts; and a second sync of the
//! unchanged source writes nothing.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

const ADVENTUREWORKS: &str = include_str!("fixtures/realworld/adventureworks.sql");
const DANBOORU: &str = include_str!("fixtures/realworld/danbooru.sql");
const HATCHET: &str = include_str!("fixtures/realworld/hatchet.sql");

/// The schemas a sync covers by default: all but the system, TOAST and temporary ones.
macro_rules! user_schema {
    ($nspname:literal) => {
        concat!(
            $nspname,
            " NOT IN ('pg_catalog', 'information_schema') AND ",
            $nspname,
            " NOT LIKE 'pg\\_toast%' AND ",
            $nspname,
            " NOT LIKE 'pg\\_temp\\_%'"
        )
    };
}

/// The relations a catalog holds: in a user schema, of a kind the service lists.
macro_rules! catalog_relation {
    () => {
        concat!(
            user_schema!("n.nspname"),
            " AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
        )
    };
}

/// Rows of `sql` on the source, each as a JSON object, sorted: the expected side.
async fn rows(src: &PgPool, sql: &'static str) -> Vec<Value> {
    let rows: Vec<(Value,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT to_jsonb(r) FROM ({sql}) r"
    )))
    .fetch_all(src)
    .await
    .unwrap();
    sorted(rows.into_iter().map(|(v,)| v).collect())
}

fn sorted(mut rows: Vec<Value>) -> Vec<Value> {
    rows.sort_by_key(|v| v.to_string());
    rows
}

/// Loads `fixture` into a fresh source database, syncs it, and checks what the API serves
/// against the source's pg_catalog; then syncs it again, unchanged. `extensions`: those the
/// fixture creates (without one of them on this server, the schema is skipped, and says so);
/// `relations`: how many the fixture makes, so that a fixture that loaded nothing fails.
async fn served_as_pg_catalog_says(
    name: &str,
    fixture: &str,
    extensions: &[&str],
    relations: usize,
) {
    let admin = PgPool::connect(&admin_url()).await.unwrap();
    let missing: Vec<String> = sqlx::query_scalar(
        "SELECT x FROM unnest($1::text[]) x
         WHERE x NOT IN (SELECT name FROM pg_available_extensions)",
    )
    .bind(extensions)
    .fetch_all(&admin)
    .await
    .unwrap();
    admin.close().await;
    if !missing.is_empty() {
        eprintln!(
            "SKIPPED: the {name} schema needs the extensions {missing:?}, not installed on this server"
        );
        return;
    }

    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl(&format!("pgcs_rw_{name}"), &loadable(fixture)).await;
    let src = PgPool::connect(&source.url).await.unwrap();
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let catalog = first["catalog_id"].as_str().unwrap();

    // Every relation: schema, name, kind, and a view's or materialized view's definition.
    let (listed, _) = app
        .get_all_pages(&format!("/catalogs/{catalog}/tables?limit=1000"))
        .await;
    let expected_relations = rows(
        &src,
        concat!(
            "SELECT n.nspname AS schema, c.relname AS name,
                    CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned_table'
                                   WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized_view'
                                   WHEN 'f' THEN 'foreign_table' END AS kind,
                    CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS definition
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE ",
            catalog_relation!()
        ),
    )
    .await;
    assert_eq!(
        expected_relations.len(),
        relations,
        "the {name} fixture loaded"
    );
    let served_relations = sorted(
        listed
            .iter()
            .map(|r| {
                json!({"schema": r["schema"], "name": r["name"], "kind": r["kind"],
                       "definition": r["definition"]})
            })
            .collect(),
    );
    assert_eq!(served_relations, expected_relations);

    // Each relation's detail: its columns, constraints, indexes and triggers.
    let mut details = Vec::new();
    for r in &listed {
        let (schema, table) = (r["schema"].as_str().unwrap(), r["name"].as_str().unwrap());
        let path = format!(
            "/catalogs/{catalog}/tables/{}/{}",
            encode_segment(schema),
            encode_segment(table)
        );
        let (status, detail) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {detail}");
        details.push((schema.to_owned(), table.to_owned(), detail));
    }

    // Every column of every relation, in order: name, type as format_type prints it, and
    // whether it is NOT NULL (itself, or through a NOT NULL domain).
    let served_columns = sorted(
        details
            .iter()
            .filter(|(.., d)| !d["columns"].as_array().unwrap().is_empty())
            .map(|(schema, table, d)| {
                let columns: Vec<Value> = d["columns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| json!([c["name"], c["type"], !c["nullable"].as_bool().unwrap()]))
                    .collect();
                json!({"schema": schema, "table": table, "columns": columns})
            })
            .collect(),
    );
    let expected_columns = rows(
        &src,
        concat!(
            "SELECT n.nspname AS schema, c.relname AS table,
                    jsonb_agg(jsonb_build_array(a.attname, format_type(a.atttypid, a.atttypmod),
                                                a.attnotnull OR (t.typtype = 'd' AND t.typnotnull))
                              ORDER BY a.attnum) AS columns
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid
             WHERE a.attnum > 0 AND NOT a.attisdropped AND ",
            catalog_relation!(),
            " GROUP BY n.nspname, c.relname"
        ),
    )
    .await;
    assert_eq!(served_columns, expected_columns);

    // Constraint, index and trigger definitions, as the server's printing functions print them.
    let served = |kind: &str| {
        definitions_json(
            details
                .iter()
                .flat_map(|(schema, table, d)| {
                    d[kind].as_array().unwrap().iter().map(|item| {
                        (
                            schema.clone(),
                            table.clone(),
                            item["name"].as_str().unwrap().to_owned(),
                            item["definition"].as_str().unwrap().to_owned(),
                        )
                    })
                })
                .collect(),
        )
    };
    let expected = async |sql: &'static str| definitions_json(source.definitions(sql).await);
    assert_eq!(
        served("constraints"),
        expected(concat!(
            "SELECT n.nspname::text, c.relname::text, k.conname::text, pg_get_constraintdef(k.oid)
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE k.contype IN ('p', 'u', 'f', 'c', 'x') AND ",
            catalog_relation!()
        ))
        .await
    );
    assert_eq!(
        served("indexes"),
        expected(concat!(
            "SELECT n.nspname::text, c.relname::text, ic.relname::text, pg_get_indexdef(i.indexrelid)
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
             JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE ",
            catalog_relation!()
        ))
        .await
    );
    assert_eq!(
        served("triggers"),
        expected(concat!(
            "SELECT n.nspname::text, c.relname::text, t.tgname::text, pg_get_triggerdef(t.oid, true)
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE NOT t.tgisinternal AND ",
            catalog_relation!()
        ))
        .await
    );

    // Functions (an extension's own left out): identity arguments, result, language, kind.
    let (functions, _) = app
        .get_all_pages(&format!("/catalogs/{catalog}/functions?limit=1000"))
        .await;
    let served_functions = sorted(
        functions
            .iter()
            .map(|f| {
                json!({"schema": f["schema"], "name": f["name"], "arguments": f["arguments"],
                            "result": f["result"], "language": f["language"], "kind": f["kind"]})
            })
            .collect(),
    );
    let expected_functions = rows(
        &src,
        concat!(
            "SELECT n.nspname AS schema, p.proname AS name,
                    pg_get_function_identity_arguments(p.oid) AS arguments,
                    pg_get_function_result(p.oid) AS result, l.lanname AS language,
                    CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                                   WHEN 'w' THEN 'window' ELSE 'function' END AS kind
             FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
             JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass
                                  AND e.objid = p.oid AND e.deptype = 'e') AND ",
            user_schema!("n.nspname")
        ),
    )
    .await;
    assert_eq!(served_functions, expected_functions);

    // The sync's counts.
    let expected_stats = rows(
        &src,
        concat!(
            "WITH rel AS (SELECT c.oid FROM pg_class c
                          JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ",
            catalog_relation!(),
            "), ext AS (SELECT objid FROM pg_depend WHERE deptype = 'e')
             SELECT (SELECT count(*) FROM pg_namespace n WHERE ",
            user_schema!("n.nspname"),
            ") AS schemas,
                    (SELECT count(*) FROM rel) AS tables,
                    (SELECT count(*) FROM pg_attribute a JOIN rel ON rel.oid = a.attrelid
                     WHERE a.attnum > 0 AND NOT a.attisdropped) AS columns,
                    (SELECT count(*) FROM pg_constraint k JOIN rel ON rel.oid = k.conrelid
                     WHERE k.contype IN ('p', 'u', 'f', 'c', 'x')) AS constraints,
                    (SELECT count(*) FROM pg_index i JOIN rel ON rel.oid = i.indrelid) AS indexes,
                    (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                     LEFT JOIN pg_class c ON c.oid = t.typrelid
                     WHERE (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
                       AND t.oid NOT IN (SELECT objid FROM ext) AND ",
            user_schema!("n.nspname"),
            ") AS types,
                    (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE c.relkind = 'S' AND ",
            user_schema!("n.nspname"),
            ") AS sequences,
                    (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                     WHERE p.oid NOT IN (SELECT objid FROM ext) AND ",
            user_schema!("n.nspname"),
            ") AS functions,
                    (SELECT count(*) FROM pg_trigger t JOIN rel ON rel.oid = t.tgrelid
                     WHERE NOT t.tgisinternal) AS triggers"
        ),
    )
    .await;
    let counts = |stats: &Value| {
        let keys = expected_stats[0].as_object().unwrap().keys();
        keys.map(|k| (k.clone(), stats[k].clone()))
            .collect::<serde_json::Map<_, _>>()
    };
    assert_eq!(
        Value::Object(counts(&first["stats"])),
        expected_stats[0],
        "{first}"
    );

    // A second sync of the unchanged source: the same catalog, nothing written.
    let second = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(second["catalog_id"], first["catalog_id"]);
    assert_eq!(second["stats"]["unchanged"], true, "{second}");
    assert_eq!(second["stats"]["relations_written"], 0, "{second}");
    assert_eq!(counts(&second["stats"]), counts(&first["stats"]));
    src.close().await;
}

#[tokio::test]
async fn an_adventureworks_sync_serves_what_pg_catalog_says() {
    served_as_pg_catalog_says(
        "adventureworks",
        ADVENTUREWORKS,
        &["uuid-ossp", "tablefunc"],
        157,
    )
    .await;
}

#[tokio::test]
async fn a_danbooru_sync_serves_what_pg_catalog_says() {
    let extensions = [
        "btree_gin",
        "fuzzystrmatch",
        "pg_trgm",
        "pgcrypto",
        "pgstattuple",
    ];
    served_as_pg_catalog_says("danbooru", DANBOORU, &extensions, 68).await;
}

#[tokio::test]
async fn a_hatchet_sync_serves_what_pg_catalog_says() {
    served_as_pg_catalog_says("hatchet", HATCHET, &["btree_gist"], 132).await;
}
