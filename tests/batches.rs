//! A catalog of more relations than one batch holds is read and written batch by batch: what
//! one relation shows of another in a different batch (a foreign key's columns, a parent's
//! partitions, the views that read a table) is served as in one batch, and a read that fails
//! between batches rolls the whole write back and the next attempt writes all of it.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// How many plain tables the source holds: with the four relations below, five batches of
/// [`BATCH`] relations.
const TABLES: usize = 400;
const BATCH: u32 = 100;

/// A source of tables `big.t000`.. (in name order between the partitioned parent, which
/// comes first, and its partitions and a view, which come last), the last table's foreign key
/// to the first.
async fn source() -> TestDatabase {
    let db = TestDatabase::with_ddl(
        "pgcs_batches",
        "CREATE SCHEMA big;
         CREATE TABLE big.a_parent (id int, note text) PARTITION BY LIST (id);",
    )
    .await;
    let tables: String = (0..TABLES)
        .map(|i| format!("CREATE TABLE big.t{i:03} (id int PRIMARY KEY);"))
        .collect();
    db.execute(&tables).await;
    let last = TABLES - 1;
    db.execute(&format!(
        "ALTER TABLE big.t{last:03} ADD COLUMN first_id int
             CONSTRAINT t_last_first_fk REFERENCES big.t000 (id);
         CREATE TABLE big.z_p1 PARTITION OF big.a_parent FOR VALUES IN (1);
         CREATE TABLE big.z_p2 PARTITION OF big.a_parent FOR VALUES IN (2);
         CREATE VIEW big.zz_view AS SELECT id FROM big.t000;"
    ))
    .await;
    db
}

async fn detail(app: &TestApp, catalog: &str, table: &str) -> Value {
    let (status, detail) = app
        .get(&format!("/catalogs/{catalog}/tables/big/{table}"))
        .await;
    assert_eq!(status, 200, "{table}: {detail}");
    detail
}

/// What the first, a middle and the last relations show of each other, across batches.
async fn assert_links_across_batches(app: &TestApp, catalog: &str) {
    let parent = detail(app, catalog, "a_parent").await;
    assert_eq!(
        parent["partitions"],
        serde_json::json!([
            {"schema": "big", "name": "z_p1", "partition_bound": "FOR VALUES IN (1)"},
            {"schema": "big", "name": "z_p2", "partition_bound": "FOR VALUES IN (2)"},
        ])
    );
    let first = detail(app, catalog, "t000").await;
    assert_eq!(
        first["dependent_views"],
        serde_json::json!([{"schema": "big", "name": "zz_view"}])
    );
    let last = detail(app, catalog, &format!("t{:03}", TABLES - 1)).await;
    let key = last["constraints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "t_last_first_fk")
        .unwrap_or_else(|| panic!("the foreign key: {last}"));
    assert_eq!(key["ref_table"], "t000");
    assert_eq!(key["ref_columns"], serde_json::json!(["id"]));
    assert_eq!(
        key["definition"],
        "FOREIGN KEY (first_id) REFERENCES big.t000(id)"
    );
    let view = detail(app, catalog, "zz_view").await;
    assert_eq!(
        view["depends_on"],
        serde_json::json!([{"schema": "big", "name": "t000"}])
    );
}

#[tokio::test]
async fn a_catalog_of_many_batches_is_served_as_one_and_a_failed_read_writes_nothing() {
    let app = spawn_app().await;
    let config = pg_catalog_sync::config::WorkerConfig {
        sync_batch_relations: BATCH,
        ..worker_config(&app)
    };
    let _worker = app.start_worker(config).await;
    let source = source().await;
    let body = sync_body(&source.name);

    let first = app.sync_and_wait(&body).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let relations = TABLES as u64 + 4;
    assert_eq!(first["stats"]["tables"], relations, "{first}");
    assert_eq!(first["stats"]["relations_written"], relations, "{first}");
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();
    assert_links_across_batches(&app, &catalog).await;

    // A change in the first batch; the write is held as it copies that batch's details, while
    // the read goes on until the channels between them are full. The source's connections are
    // then ended under it: the read fails between batches.
    source
        .execute("ALTER TABLE big.t001 ADD COLUMN added int")
        .await;
    app.hold_writes().await;
    let (_, accepted) = app.post_sync(&body).await;
    let sync_id = accepted["sync_id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, sync) = app.get(&format!("/syncs/{sync_id}")).await;
        if sync["progress"]["phase"] == "comparing" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never compared: {sync}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    source
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'pg-catalog-sync'",
        )
        .await;
    // Nothing of the held write is served meanwhile.
    let changed = detail(&app, &catalog, "t001").await;
    assert_eq!(changed["column_count"], 1, "{changed}");
    app.release_writes().await;

    let second = app.wait_for_sync(&sync_id, Duration::from_secs(60)).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(
        second["attempts"], 2,
        "the failed read's attempt, then one that wrote: {second}"
    );
    assert_eq!(second["stats"]["changes"], 1, "{second}");
    assert_eq!(second["stats"]["relations_written"], 1, "{second}");
    let (_, changes) = app.get(&format!("/syncs/{sync_id}/changes")).await;
    assert_eq!(
        change_summary(&changes),
        vec![(
            "column".to_owned(),
            "added".to_owned(),
            "t001".to_owned(),
            Some("added".to_owned())
        )],
        "{changes}"
    );
    let changed = detail(&app, &catalog, "t001").await;
    assert_eq!(changed["column_count"], 2, "{changed}");
    assert_links_across_batches(&app, &catalog).await;
}
