//! Scenarios 1, 2 and 7: syncs of generated catalogs of 2,000, 10,000 and 100,000 tables
//! against `pg_dump --schema-only` of the same database, run side by side.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::PgPool;

use super::*;

/// A generated source database: `tables` tables in schemas of 100 (at least 10 schemas), as a
/// schema-per-tenant database has them. Each table has a serial key, a foreign key to its
/// schema's `root` table, 18 more columns of 18 types (defaults on four), a unique index, two
/// comments, a table grant and a column grant to two roles, and row-level security with a
/// policy. Created once and reused while [`SOURCE_VERSION`] holds.
pub struct GeneratedSource {
    db: &'static str,
    pub tables: usize,
}

/// Bumped when the generated shape changes: older databases are made again.
const SOURCE_VERSION: i32 = 3;

/// The source of the webhook latency scenario (its tables are altered and restored).
pub const SMALL: GeneratedSource = GeneratedSource {
    db: "pgcs_bench_small",
    tables: 1_000,
};
pub const MID: GeneratedSource = GeneratedSource {
    db: "pgcs_bench_mid",
    tables: 2_000,
};
pub const BIG: GeneratedSource = GeneratedSource {
    db: "pgcs_bench_big",
    tables: 10_000,
};
const HUGE: GeneratedSource = GeneratedSource {
    db: "pgcs_bench_huge",
    tables: 100_000,
};

/// The 18 columns after the key and the foreign key: 18 types, defaults on the first four.
const COLUMNS: &str = "c3 integer NOT NULL DEFAULT 0, c4 text DEFAULT 'none', \
    c5 timestamptz NOT NULL DEFAULT now(), c6 numeric(12,2) DEFAULT 0, c7 boolean, \
    c8 smallint, c9 bigint, c10 real, c11 double precision, c12 date, c13 time, \
    c14 interval, c15 uuid, c16 jsonb, c17 bytea, c18 varchar(64), c19 char(2), c20 inet";

impl GeneratedSource {
    pub fn schemas(&self) -> usize {
        (self.tables / 100).max(10)
    }

    /// Relations a sync of it finds: the tables, one root per schema, and `bench_meta`.
    fn relations(&self) -> u64 {
        (self.tables + self.schemas() + 1) as u64
    }

    /// Its URL, after creating it if it is missing or of an older shape.
    pub async fn ensure(&self, b: &Bench) -> Result<String> {
        let url = with_db(&b.source_admin, self.db);
        if let Ok(pool) = PgPool::connect(&url).await {
            let version: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM bench_meta")
                .fetch_one(&pool)
                .await
                .ok()
                .flatten();
            pool.close().await;
            if version == Some(SOURCE_VERSION) {
                return Ok(url);
            }
        }
        eprintln!(
            "creating the source database {} ({} tables); this takes a while, once",
            self.db, self.tables
        );
        let admin = PgPool::connect(&b.source_admin).await?;
        for sql in [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db),
            format!("CREATE DATABASE {}", self.db),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&admin)
                .await?;
        }
        admin.close().await;
        let pool = PgPool::connect(&url).await?;
        let schemas = self.schemas();
        // The roles are the server's: made once, kept.
        sqlx::raw_sql(
            "DO $$ BEGIN
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_reader') THEN
                     CREATE ROLE bench_reader;
                 END IF;
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_writer') THEN
                     CREATE ROLE bench_writer IN ROLE bench_reader;
                 END IF;
             END $$",
        )
        .execute(&pool)
        .await?;
        let roots: String = (0..schemas)
            .map(|s| format!("CREATE SCHEMA s{s}; CREATE TABLE s{s}.root (id bigint PRIMARY KEY);"))
            .collect();
        sqlx::raw_sql(sqlx::AssertSqlSafe(roots))
            .execute(&pool)
            .await?;
        for chunk in (0..self.tables).collect::<Vec<_>>().chunks(250) {
            let mut sql = String::new();
            for &i in chunk {
                let s = format!("s{}", i % schemas);
                let t = format!("{s}.t{i}");
                sql.push_str(&format!(
                    "CREATE TABLE {t} (id bigserial PRIMARY KEY, \
                         root_id bigint NOT NULL REFERENCES {s}.root (id), {COLUMNS});\n\
                     CREATE UNIQUE INDEX t{i}_c3_key ON {t} (c3);\n\
                     COMMENT ON TABLE {t} IS 'table {i}';\n\
                     COMMENT ON COLUMN {t}.id IS 'key of table {i}';\n\
                     GRANT SELECT ON {t} TO bench_reader;\n\
                     GRANT UPDATE (c3) ON {t} TO bench_writer;\n\
                     ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;\n\
                     CREATE POLICY own_root ON {t} USING (root_id > 0);\n"
                ));
            }
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await?;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ANALYZE; CREATE TABLE bench_meta (version int); \
             INSERT INTO bench_meta VALUES ({SOURCE_VERSION});"
        )))
        .execute(&pool)
        .await?;
        pool.close().await;
        Ok(url)
    }
}

/// `pg_dump --schema-only` of `url` to nowhere, timed: the reference of every ratio here.
fn pg_dump_seconds(url: &str) -> Result<f64> {
    let started = Instant::now();
    let status = Command::new("pg_dump")
        .args(["--schema-only", "-f", "/dev/null", "-d", url])
        .status()?;
    anyhow::ensure!(
        status.success(),
        "pg_dump failed (is max_locks_per_transaction high enough?)"
    );
    Ok(started.elapsed().as_secs_f64())
}

/// The worker's read of the catalog at `url`, timed on its own: two connections and the bulk
/// queries, assembled into pieces and dropped as they come, without the queue or the store. No
/// sync can be faster.
async fn read_alone(url: &str) -> Result<f64> {
    use sqlx::Connection;
    let started = Instant::now();
    let (mut conn, mut helper) = tokio::try_join!(
        sqlx::PgConnection::connect(url),
        sqlx::PgConnection::connect(url)
    )?;
    let options = pg_catalog_sync::introspect::Options {
        statement_timeout: Duration::from_secs(600),
        ..Default::default()
    };
    let (sender, mut pieces) = tokio::sync::mpsc::channel(1);
    let drain = tokio::spawn(async move { while pieces.recv().await.is_some() {} });
    pg_catalog_sync::introspect::introspect(&mut conn, &mut helper, &options, &sender).await?;
    drop(sender);
    drain.await?;
    let elapsed = started.elapsed().as_secs_f64();
    let _ = tokio::join!(conn.close(), helper.close());
    Ok(elapsed)
}

/// The one change of the "one change" re-syncs, and its undoing (also run first, in case an
/// earlier run stopped halfway).
const CHANGE: &str = "ALTER TABLE s0.t0 ADD COLUMN bench_changed text";
const UNDO: &str = "ALTER TABLE s0.t0 DROP COLUMN IF EXISTS bench_changed";

/// A timed sync through the service: seconds, and the sync as it ended.
pub async fn timed_sync(b: &Bench, service: &Service, body: &Value) -> Result<(f64, Value)> {
    let started = Instant::now();
    let sync_id = service.post_sync(&b.client, body).await?;
    let sync = service.wait_sync(&b.client, &sync_id).await?;
    Ok((started.elapsed().as_secs_f64(), sync))
}

fn ratio(seconds: f64, dump: f64) -> String {
    format!("{:.3}x", seconds / dump)
}

impl Bench {
    /// Scenarios 1, 1a, 2 and 2b: the 10,000-table catalog's full sync, its read alone, an
    /// unchanged re-sync and a re-sync after one added column.
    pub async fn big_catalog(&mut self) -> Result<()> {
        let url = BIG.ensure(self).await?;
        let source = PgPool::connect(&url).await?;
        let body = source_body(&url);
        let (mut dump, mut read, mut full) = (Vec::new(), Vec::new(), Vec::new());
        let (mut unchanged, mut changed, mut rss) = (Vec::new(), Vec::new(), 0.0f64);
        for _ in 0..self.runs {
            sqlx::query(UNDO).execute(&source).await?;
            dump.push(pg_dump_seconds(&url)?);
            read.push(read_alone(&url).await?);

            let service = Service::start(self, 1, false, &[]).await?;
            let (seconds, sync) = timed_sync(self, &service, &body).await?;
            full.push(seconds);
            anyhow::ensure!(
                sync["stats"]["tables"].as_u64() == Some(BIG.relations()),
                "unexpected stats {sync}"
            );
            unchanged.push(timed_sync(self, &service, &body).await?.0);
            sqlx::query(CHANGE).execute(&source).await?;
            let (seconds, sync) = timed_sync(self, &service, &body).await?;
            changed.push(seconds);
            // (A build older than `relations_written`, run for comparison, does not report it.)
            let written = sync["stats"]["relations_written"].as_u64();
            anyhow::ensure!(
                sync["stats"]["changes"].as_u64() == Some(1) && written.is_none_or(|n| n == 1),
                "one added column, one relation written, one change recorded: {sync}"
            );
            sqlx::query(UNDO).execute(&source).await?;
            // A deployed worker runs one big sync after another: the peak counts two more full
            // syncs in the same process (the catalog deleted before each, so it is read and
            // written whole again), not only a fresh process's first.
            for _ in 0..2 {
                let catalog_id = sync["catalog_id"].as_str().unwrap();
                let deleted = self
                    .client
                    .delete(format!("{}/catalogs/{catalog_id}", service.base))
                    .send()
                    .await?;
                anyhow::ensure!(
                    deleted.status() == 204,
                    "DELETE answered {}",
                    deleted.status()
                );
                timed_sync(self, &service, &body).await?;
            }
            rss = rss.max(service.worker_peak_rss_mib());
            service.stop(self).await?;
        }
        source.close().await;
        let dump = median(dump);
        let (read, full) = (median(read), median(full));
        let (unchanged, changed) = (median(unchanged), median(changed));
        let reference = format!("pg_dump --schema-only {dump:.2} s");
        self.row(
            "1. 10,000 tables: full sync",
            format!("{full:.2} s (worker peak RSS {rss:.0} MiB over 3 full syncs)"),
            reference.clone(),
            ratio(full, dump),
            "<= 0.25x, RSS <= 192 MiB",
        );
        self.row(
            "1a. 10,000 tables: read alone (floor)",
            format!("{read:.2} s (introspection, no store)"),
            reference.clone(),
            ratio(read, dump),
            "(context for 1)",
        );
        self.row(
            "2. 10,000 tables: unchanged re-sync",
            format!("{unchanged:.2} s"),
            reference.clone(),
            ratio(unchanged, dump),
            "<= 0.10x",
        );
        self.row(
            "2b. 10,000 tables: one column added",
            format!("{changed:.2} s (read, compared, one relation written)"),
            reference,
            ratio(changed, dump),
            "<= 0.20x, one change recorded",
        );
        Ok(())
    }

    /// Scenario 1c: the 2,000-table catalog's full sync, where fixed costs weigh more.
    pub async fn mid_catalog(&mut self) -> Result<()> {
        let url = MID.ensure(self).await?;
        let body = source_body(&url);
        let (mut dump, mut full) = (Vec::new(), Vec::new());
        for _ in 0..self.runs {
            dump.push(pg_dump_seconds(&url)?);
            let service = Service::start(self, 1, false, &[]).await?;
            let (seconds, sync) = timed_sync(self, &service, &body).await?;
            anyhow::ensure!(
                sync["stats"]["tables"].as_u64() == Some(MID.relations()),
                "unexpected stats {sync}"
            );
            full.push(seconds);
            service.stop(self).await?;
        }
        let (dump, full) = (median(dump), median(full));
        self.row(
            "1c. 2,000 tables: full sync",
            format!("{full:.2} s"),
            format!("pg_dump --schema-only {dump:.2} s"),
            ratio(full, dump),
            "<= 0.25x",
        );
        Ok(())
    }

    /// Scenarios 7, 7b and 7c, once each (a run takes minutes): the 100,000-table catalog's
    /// full sync with the worker's peak memory, an unchanged re-sync posted right after it,
    /// and a re-sync after one added column, with the p99 of table details read meanwhile.
    pub async fn huge_catalog(&mut self) -> Result<()> {
        let url = HUGE.ensure(self).await?;
        let source = PgPool::connect(&url).await?;
        sqlx::query(UNDO).execute(&source).await?;
        let body = source_body(&url);
        let dump = pg_dump_seconds(&url)?;
        let service = Service::start(self, 1, false, &[]).await?;
        let (full, sync) = timed_sync(self, &service, &body).await?;
        anyhow::ensure!(
            sync["stats"]["tables"].as_u64() == Some(HUGE.relations()),
            "unexpected stats {sync}"
        );
        let rss = service.worker_peak_rss_mib();
        let (unchanged, _) = timed_sync(self, &service, &body).await?;
        sqlx::query(CHANGE).execute(&source).await?;
        let catalog_id = sync["catalog_id"].as_str().unwrap().to_owned();
        let reading = self.read_details_meanwhile(&service, &catalog_id);
        let (changed, p99) = tokio::join!(timed_sync(self, &service, &body), reading);
        let (changed, sync) = changed?;
        anyhow::ensure!(
            sync["stats"]["relations_written"].as_u64() == Some(1),
            "one relation written: {sync}"
        );
        sqlx::query(UNDO).execute(&source).await?;
        service.stop(self).await?;
        source.close().await;
        let reference = format!("pg_dump --schema-only {dump:.1} s");
        self.row(
            "7. 100,000 tables: full sync",
            format!("{full:.1} s (worker peak RSS {rss:.0} MiB)"),
            reference.clone(),
            ratio(full, dump),
            "<= 0.25x, RSS <= 256 MiB",
        );
        self.row(
            "7b. 100,000 tables: one column added",
            format!("{changed:.1} s (table detail p99 meanwhile {:.1} ms)", p99?),
            reference.clone(),
            ratio(changed, dump),
            "<= 0.20x, detail p99 <= 20 ms",
        );
        self.row(
            "7c. 100,000 tables: unchanged, right after",
            format!("{unchanged:.1} s"),
            reference,
            ratio(unchanged, dump),
            "<= 0.10x",
        );
        Ok(())
    }

    /// Reads table details of the catalog, one at a time, for 10 s: the p99 in milliseconds.
    async fn read_details_meanwhile(&self, service: &Service, catalog_id: &str) -> Result<f64> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut latencies = Vec::new();
        let mut i = 0;
        while Instant::now() < deadline {
            let path = format!(
                "{}/catalogs/{catalog_id}/tables/s{}/t{i}",
                service.base,
                i % HUGE.schemas()
            );
            let started = Instant::now();
            let response = self.client.get(path).send().await?;
            anyhow::ensure!(
                response.status() == 200,
                "detail read: {}",
                response.status()
            );
            response.bytes().await?;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            i = (i + 7919) % HUGE.tables;
        }
        latencies.sort_by(f64::total_cmp);
        Ok(percentile(&latencies, 0.99))
    }
}
