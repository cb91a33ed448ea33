//! Incremental writes: a re-sync writes only the relations that changed, yet after every kind of
//! change (adding, altering, renaming and dropping a relation, a column, a constraint and an
//! index) the served catalog equals what the source's own catalog says, and the change history
//! records exactly that change.

mod common;

use common::*;
use serde_json::Value;

const DDL: &str = r#"
CREATE SCHEMA app;
CREATE TABLE app.a (id integer PRIMARY KEY, x integer, y text);
CREATE TABLE app.b (id integer PRIMARY KEY, a_id integer REFERENCES app.a (id));
CREATE INDEX b_a_idx ON app.b (a_id);
CREATE TABLE app.untouched (id integer PRIMARY KEY, note text);
"#;

/// What the source's catalog says of schema `app`, as (table, kind, name, definition) rows:
/// relations, columns (type, NOT NULL), constraints and indexes as the server prints them.
const SOURCE_STATE: &str = "
    SELECT 'app', c.relname::text, 'relation', c.relkind::text
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'app' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    UNION ALL
    SELECT 'app', c.relname::text, 'column ' || a.attname,
           format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'app' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0
      AND NOT a.attisdropped
    UNION ALL
    SELECT 'app', c.relname::text, 'constraint ' || k.conname, pg_get_constraintdef(k.oid)
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app'
    UNION ALL
    SELECT 'app', c.relname::text, 'index ' || ic.relname, pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'app'";

/// The same rows from what the service serves: every relation's detail.
async fn served_state(app: &TestApp, catalog: &str) -> Vec<(String, String, String, String)> {
    let (tables, _) = app
        .get_all_pages(&format!("/catalogs/{catalog}/tables?limit=100"))
        .await;
    let mut rows = Vec::new();
    for table in &tables {
        let name = table["name"].as_str().unwrap().to_owned();
        let (_, detail) = app
            .get(&format!("/catalogs/{catalog}/tables/app/{name}"))
            .await;
        let row = |kind: String, definition: &str| {
            ("app".to_owned(), name.clone(), kind, definition.to_owned())
        };
        let relkind = match detail["kind"].as_str().unwrap() {
            "table" => "r",
            other => panic!("unexpected kind {other}"),
        };
        rows.push(row("relation".into(), relkind));
        for c in detail["columns"].as_array().unwrap() {
            let not_null = if c["nullable"] == false {
                " NOT NULL"
            } else {
                ""
            };
            let definition = format!("{}{not_null}", c["type"].as_str().unwrap());
            rows.push(row(
                format!("column {}", c["name"].as_str().unwrap()),
                &definition,
            ));
        }
        for (kind, list) in [("constraint", "constraints"), ("index", "indexes")] {
            for item in detail[list].as_array().unwrap() {
                let name = item["name"].as_str().unwrap();
                let definition = item["definition"].as_str().unwrap();
                rows.push(row(format!("{kind} {name}"), definition));
            }
        }
    }
    rows.sort();
    rows
}

type Change = (String, String, String, Option<String>);

fn change(object: &str, action: &str, relation: &str, name: Option<&str>) -> Change {
    (
        object.to_owned(),
        action.to_owned(),
        relation.to_owned(),
        name.map(str::to_owned),
    )
}

#[tokio::test]
async fn every_kind_of_change_is_written_and_recorded_exactly() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_incremental", DDL).await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["stats"]["relations_written"], 3, "{first}");
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();
    let mut expected = source.definitions(SOURCE_STATE).await;
    expected.sort();
    assert_eq!(served_state(&app, &catalog).await, expected);

    let c = |o: &str, a: &str, r: &str, n: Option<&str>| change(o, a, r, n);
    // (DDL, relations written, the changes recorded in the history's order: by kind, then by
    // relation and name).
    let steps: Vec<(&str, u64, Vec<Change>)> = vec![
        (
            "CREATE TABLE app.c (id integer)",
            1,
            vec![
                c("relation", "added", "c", None),
                c("column", "added", "c", Some("id")),
            ],
        ),
        (
            "ALTER TABLE app.a ADD COLUMN z text",
            1,
            vec![c("column", "added", "a", Some("z"))],
        ),
        (
            "ALTER TABLE app.a ALTER COLUMN x TYPE bigint",
            1,
            vec![c("column", "altered", "a", Some("x"))],
        ),
        (
            "ALTER TABLE app.a RENAME COLUMN y TO y2",
            1,
            vec![
                c("column", "removed", "a", Some("y")),
                c("column", "added", "a", Some("y2")),
            ],
        ),
        (
            "ALTER TABLE app.a DROP COLUMN z",
            1,
            vec![c("column", "removed", "a", Some("z"))],
        ),
        (
            "ALTER TABLE app.a ADD CONSTRAINT x_positive CHECK (x > 0)",
            1,
            vec![c("constraint", "added", "a", Some("x_positive"))],
        ),
        (
            "ALTER TABLE app.b ALTER CONSTRAINT b_a_id_fkey DEFERRABLE",
            1,
            vec![c("constraint", "altered", "b", Some("b_a_id_fkey"))],
        ),
        (
            "ALTER TABLE app.a RENAME CONSTRAINT x_positive TO x_above_zero",
            1,
            vec![
                c("constraint", "added", "a", Some("x_above_zero")),
                c("constraint", "removed", "a", Some("x_positive")),
            ],
        ),
        (
            "ALTER TABLE app.a DROP CONSTRAINT x_above_zero",
            1,
            vec![c("constraint", "removed", "a", Some("x_above_zero"))],
        ),
        (
            "CREATE INDEX a_x_idx ON app.a (x)",
            1,
            vec![c("index", "added", "a", Some("a_x_idx"))],
        ),
        (
            "DROP INDEX app.b_a_idx; CREATE INDEX b_a_idx ON app.b (a_id, id)",
            1,
            vec![c("index", "altered", "b", Some("b_a_idx"))],
        ),
        (
            "ALTER INDEX app.a_x_idx RENAME TO a_x_index",
            1,
            vec![
                c("index", "removed", "a", Some("a_x_idx")),
                c("index", "added", "a", Some("a_x_index")),
            ],
        ),
        (
            "DROP INDEX app.a_x_index",
            1,
            vec![c("index", "removed", "a", Some("a_x_index"))],
        ),
        (
            "COMMENT ON TABLE app.b IS 'bees'",
            1,
            vec![c("relation", "altered", "b", None)],
        ),
        (
            "ALTER TABLE app.c RENAME TO c2",
            1,
            vec![
                c("relation", "removed", "c", None),
                c("relation", "added", "c2", None),
                c("column", "removed", "c", Some("id")),
                c("column", "added", "c2", Some("id")),
            ],
        ),
        (
            "DROP TABLE app.c2",
            0,
            vec![
                c("relation", "removed", "c2", None),
                c("column", "removed", "c2", Some("id")),
            ],
        ),
    ];
    for (ddl, written, changes) in steps {
        source.execute(ddl).await;
        let sync = app.sync_and_wait(&sync_body(&source.name)).await;
        assert_eq!(sync["status"], "succeeded", "{ddl}: {sync}");
        assert_eq!(sync["stats"]["unchanged"], false, "{ddl}: {sync}");
        assert_eq!(sync["stats"]["relations_written"], written, "{ddl}: {sync}");
        let mut expected = source.definitions(SOURCE_STATE).await;
        expected.sort();
        assert_eq!(served_state(&app, &catalog).await, expected, "after {ddl}");
        let sync_id = sync["sync_id"].as_str().unwrap();
        let (_, recorded) = app.get(&format!("/syncs/{sync_id}/changes")).await;
        assert_eq!(change_summary(&recorded), changes, "after {ddl}");
        assert_eq!(sync["stats"]["changes"], changes.len(), "{ddl}: {sync}");
    }
    let (_, untouched) = app
        .get(&format!("/catalogs/{catalog}/tables/app/untouched"))
        .await;
    assert_eq!(untouched["columns"].as_array().map(Vec::len), Some(2));
}

/// A unit's hash covers what its detail shows of other relations: adding a partition rewrites
/// the parent's document (its partitions) though none of its own rows changed, and a view
/// shows in the detail of the relation it reads (its dependent views).
#[tokio::test]
async fn a_relation_is_rewritten_when_what_its_detail_shows_of_others_changes() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl(
        "pgcs_incremental_links",
        "CREATE TABLE public.events (at date NOT NULL, v int) PARTITION BY RANGE (at);
         CREATE TABLE public.events_2025 PARTITION OF public.events
             FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');",
    )
    .await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();
    let detail = |table: &'static str| {
        let (app, catalog) = (&app, &catalog);
        async move {
            let (_, detail) = app
                .get(&format!("/catalogs/{catalog}/tables/public/{table}"))
                .await;
            detail
        }
    };
    let partition_names = |detail: &Value| names(&detail["partitions"], "name");
    assert_eq!(partition_names(&detail("events").await), ["events_2025"]);

    source
        .execute(
            "CREATE TABLE public.events_2026 PARTITION OF public.events
                 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
             CREATE VIEW public.recent AS SELECT * FROM public.events_2026;",
        )
        .await;
    let second = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    // The new partition and view, and the parent (its partitions).
    assert_eq!(second["stats"]["relations_written"], 3, "{second}");
    assert_eq!(
        partition_names(&detail("events").await),
        ["events_2025", "events_2026"]
    );
    assert_eq!(
        names(&detail("events_2026").await["dependent_views"], "name"),
        ["recent"]
    );
}

/// A reader polling the catalog while a re-sync rewrites every relation never sees a mix: each
/// answer (one request, one statement) shows every table as it was, or every table as it is.
#[tokio::test]
async fn a_reader_during_a_rewrite_sees_the_old_catalog_or_the_new_never_a_mix() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let columns: Vec<String> = (1..=400).map(|i| format!("c{i} int")).collect();
    let ddl: String = (0..40)
        .map(|t| format!("CREATE TABLE public.w{t} ({});", columns.join(", ")))
        .collect();
    let source = TestDatabase::with_ddl("pgcs_incremental_mix", &ddl).await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();
    let added: String = (0..40)
        .map(|t| format!("ALTER TABLE public.w{t} ADD COLUMN added int;"))
        .collect();
    source.execute(&added).await;

    let (status, accepted) = app.post_sync(&sync_body(&source.name)).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{accepted}");
    let sync_path = format!("/syncs/{}", accepted["sync_id"].as_str().unwrap());
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let (_, sync) = app.get(&sync_path).await;
        let (_, tables) = app
            .get(&format!("/catalogs/{catalog}/tables?limit=100"))
            .await;
        let counts: std::collections::BTreeSet<i64> = tables
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["column_count"].as_i64().unwrap())
            .collect();
        assert_eq!(counts.len(), 1, "a mix of old and new tables: {counts:?}");
        seen.extend(counts);
        if sync["status"] != "running" && sync["status"] != "queued" {
            assert_eq!(sync["status"], "succeeded", "{sync}");
            break;
        }
    }
    let (_, tables) = app
        .get(&format!("/catalogs/{catalog}/tables?limit=100"))
        .await;
    assert!(
        tables
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["column_count"] == 401),
        "{tables}"
    );
    assert!(seen.contains(&400), "the reader saw the old catalog first");
}

/// A first sync's progress while it writes counts relations only (schemas are written too, but
/// are not what the count is of), and none as done before its batch is written.
#[tokio::test]
async fn a_first_syncs_progress_counts_the_relations_it_writes() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl(
        "pgcs_incremental_progress",
        "CREATE SCHEMA a; CREATE SCHEMA b;
         CREATE TABLE a.one (id int); CREATE TABLE a.two (id int); CREATE TABLE b.three (id int);",
    )
    .await;
    // The write holds before its detail documents (the last table) go in.
    app.hold_writes().await;
    let (status, accepted) = app.post_sync(&sync_body(&source.name)).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{accepted}");
    let sync_path = format!("/syncs/{}", accepted["sync_id"].as_str().unwrap());
    let held = serde_json::json!({"phase": "writing", "relations_done": 0, "relations_total": 3});
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, sync) = app.get(&sync_path).await;
        if sync["progress"] == held {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never held mid-write: {sync}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.release_writes().await;
    let sync = app
        .wait_for_sync(
            accepted["sync_id"].as_str().unwrap(),
            std::time::Duration::from_secs(30),
        )
        .await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    assert_eq!(sync["progress"], Value::Null, "{sync}");
    assert_eq!(sync["stats"]["relations_written"], 3, "{sync}");
}
