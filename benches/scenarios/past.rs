//! Scenario 12: what past states cost on the 10,000-table catalog. A re-sync after 100 tables
//! changed keeps those tables' old rows as versions (their size against the snapshot's), and
//! the first read as of the earlier sync copies its state (its time against a read of the
//! current state, and its size).

use std::time::Instant;

use serde_json::Value;
use sqlx::PgPool;

use super::catalog::{BIG, timed_sync};
use super::*;

/// Tables altered between the two syncs.
const CHANGED: usize = 100;

/// The bytes of every row stored under `catalog_id` in the snapshot tables.
const SNAPSHOT_BYTES: &str = "
    SELECT (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM catalog_schemas t WHERE catalog_id = $1)
         + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM catalog_types t WHERE catalog_id = $1)
         + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM catalog_sequences t WHERE catalog_id = $1)
         + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM catalog_functions t WHERE catalog_id = $1)
         + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM catalog_relations t WHERE catalog_id = $1)
         + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM catalog_column_lists t WHERE catalog_id = $1)
         + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM catalog_constraints t WHERE catalog_id = $1)
         + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM catalog_indexes t WHERE catalog_id = $1)
         + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM catalog_relation_details t WHERE catalog_id = $1)";

fn alter(add: bool) -> String {
    (0..CHANGED)
        .map(|i| {
            let table = format!("s{}.t{}", i % BIG.schemas(), i);
            match add {
                true => format!("ALTER TABLE {table} ADD COLUMN bench_past text;"),
                false => format!("ALTER TABLE {table} DROP COLUMN IF EXISTS bench_past;"),
            }
        })
        .collect()
}

async fn get_seconds(b: &Bench, url: &str) -> Result<f64> {
    let started = Instant::now();
    let response = b.client.get(url).send().await?;
    anyhow::ensure!(response.status() == 200, "{url}: {}", response.status());
    response.bytes().await?;
    Ok(started.elapsed().as_secs_f64())
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Bench {
    pub async fn past_states(&mut self) -> Result<()> {
        let url = BIG.ensure(self).await?;
        let source = PgPool::connect(&url).await?;
        let body = source_body(&url);
        let (mut kept, mut copy, mut current, mut state_bytes) =
            (Vec::new(), Vec::new(), Vec::new(), 0i64);
        let mut snapshot_bytes = 0i64;
        for _ in 0..self.runs {
            sqlx::raw_sql(sqlx::AssertSqlSafe(alter(false)))
                .execute(&source)
                .await?;
            let service = Service::start(self, 1, false, &[]).await?;
            let (_, first) = timed_sync(self, &service, &body).await?;
            let catalog = first["catalog_id"].as_str().unwrap().to_owned();
            let first = first["sync_id"].as_str().unwrap().to_owned();
            sqlx::raw_sql(sqlx::AssertSqlSafe(alter(true)))
                .execute(&source)
                .await?;
            let (_, second) = timed_sync(self, &service, &body).await?;
            anyhow::ensure!(
                second["stats"]["relations_written"].as_u64() == Some(CHANGED as u64),
                "{CHANGED} relations written: {second}"
            );
            let catalog_id = uuid::Uuid::parse_str(&catalog)?;
            snapshot_bytes = sqlx::query_scalar::<_, i64>(SNAPSHOT_BYTES)
                .bind(catalog_id)
                .fetch_one(&service.store)
                .await?;
            let kept_bytes = sqlx::query_scalar::<_, i64>(
                "SELECT coalesce(sum(pg_column_size(a.*)), 0)::int8 FROM catalog_retired_rows a
                 WHERE catalog_id = $1",
            )
            .bind(catalog_id)
            .fetch_one(&service.store)
            .await?;
            kept.push(mib(kept_bytes));
            let tables = format!("{}/catalogs/{catalog}/tables?limit=100", service.base);
            current.push(get_seconds(self, &tables).await?);
            copy.push(get_seconds(self, &format!("{tables}&sync={first}")).await?);
            let state: Value = self
                .client
                .get(format!("{}/catalogs/{catalog}?sync={first}", service.base))
                .send()
                .await?
                .json()
                .await?;
            anyhow::ensure!(state["sync"]["sync_id"] == first.as_str(), "{state}");
            let state_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM catalog_states")
                .fetch_one(&service.store)
                .await?;
            state_bytes = sqlx::query_scalar::<_, i64>(SNAPSHOT_BYTES)
                .bind(state_id)
                .fetch_one(&service.store)
                .await?;
            service.stop(self).await?;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(alter(false)))
            .execute(&source)
            .await?;
        source.close().await;
        let (copy, current, kept) = (median(copy), median(current), median(kept));
        self.row(
            "12. 10,000 tables: versions kept",
            format!("{kept:.2} MiB for {CHANGED} changed tables"),
            format!("the snapshot's rows {:.1} MiB", mib(snapshot_bytes)),
            format!("{:.3}x", kept / mib(snapshot_bytes)),
            "(cost of as-of reads)",
        );
        self.row(
            "12a. 10,000 tables: first past read",
            format!(
                "{copy:.2} s (copies the state: {:.1} MiB)",
                mib(state_bytes)
            ),
            format!("the same read, current: {:.3} s", current),
            format!("{:.0}x", copy / current),
            "(once per state)",
        );
        Ok(())
    }
}
