//! A snapshot's write is all or nothing: a write the store refuses at any step leaves no row
//! behind, a failed re-sync keeps the snapshot before it, and a re-sync that finds only new
//! statistics refreshes them in place.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

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
