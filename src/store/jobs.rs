//! The apalis queue's job table, as this service looks after it.

use sqlx::PgExecutor;
use uuid::Uuid;

/// How many jobs of the queue are in each apalis state.
pub async fn counts_by_state(
    db: impl PgExecutor<'_>,
    queue: &str,
) -> sqlx::Result<Vec<(String, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT status, count(*) AS "n!" FROM apalis.jobs WHERE job_type = $1 GROUP BY status"#,
        queue
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.status, r.n)).collect())
}

/// Deletes the queue's finished jobs. apalis keeps them forever, and both its fetch and its
/// acknowledgement slow down as they pile up; the sync history lives in `syncs`.
pub async fn delete_finished(db: impl PgExecutor<'_>, queue: &str) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        r#"DELETE FROM apalis.jobs
           WHERE job_type = $1
             AND (status IN ('Done', 'Killed') OR (status = 'Failed' AND attempts >= max_attempts))"#,
        queue
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// What one enqueue statement writes: per catalog (in catalog id order) its row, a candidate
/// sync, and that sync's job, inserted only when the sync is.
pub struct EnqueueRows<'a> {
    pub catalog_ids: &'a [Uuid],
    pub hosts: &'a [&'a str],
    pub ports: &'a [i32],
    pub dbnames: &'a [&'a str],
    pub sync_ids: &'a [Uuid],
    pub max_attempts: &'a [i32],
    pub schema_filters: &'a [Option<serde_json::Value>],
    pub credentials: &'a [serde_json::Value],
    pub job_ids: &'a [String],
    pub jobs: &'a [Vec<u8>],
}

/// The sync a catalog of an enqueue statement now has: the new one (`created`) or its active one.
pub struct EnqueuedRow {
    pub catalog_id: Uuid,
    pub sync_id: Uuid,
    pub status: super::syncs::SyncStatus,
    pub created: bool,
}

/// Creates the catalogs that are new, a queued sync and its apalis job for each catalog without
/// an active sync, and reads the active sync of the others: one statement, so one round trip
/// and, outside a transaction, one commit. The job rows are the ones apalis's own `push_tasks`
/// writes (`queries/task/sink.sql`), with `run_at` at the statement's time.
///
/// A catalog whose active sync committed while this statement ran is in neither set (its
/// sync is outside the statement's snapshot) and is missing from the answer: the caller asks
/// again for those.
pub async fn enqueue(
    db: impl PgExecutor<'_>,
    queue: &str,
    max_deliveries: i32,
    rows: &EnqueueRows<'_>,
) -> sqlx::Result<Vec<EnqueuedRow>> {
    sqlx::query_as!(
        EnqueuedRow,
        r#"WITH new_catalogs AS (
               INSERT INTO catalogs (id, host, port, dbname)
               SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::int4[], $4::text[])
               ON CONFLICT (id) DO NOTHING
           ), new_syncs AS (
               INSERT INTO syncs (id, catalog_id, max_attempts, schema_filter, credentials)
               SELECT * FROM UNNEST($5::uuid[], $1::uuid[], $6::int4[], $7::jsonb[], $8::jsonb[])
               ON CONFLICT (catalog_id) WHERE status IN ('queued', 'running', 'retrying') DO NOTHING
               RETURNING catalog_id, id
           ), new_jobs AS (
               INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at,
                                        priority, metadata)
               SELECT j.job_id, $9, j.job, 'Pending', 0, $10, now(), 0, ''::hstore
               FROM UNNEST($5::uuid[], $11::text[], $12::bytea[]) AS j(sync_id, job_id, job)
               JOIN new_syncs n ON n.id = j.sync_id
           )
           SELECT catalog_id AS "catalog_id!", id AS "sync_id!", 'queued' AS "status!: _",
                  true AS "created!"
           FROM new_syncs
           UNION ALL
           SELECT catalog_id, id, status, false
           FROM syncs
           WHERE catalog_id = ANY($1) AND status IN ('queued', 'running', 'retrying')"#,
        rows.catalog_ids,
        rows.hosts as &[&str],
        rows.ports,
        rows.dbnames as &[&str],
        rows.sync_ids,
        rows.max_attempts,
        rows.schema_filters as &[Option<serde_json::Value>],
        rows.credentials,
        queue,
        max_deliveries,
        rows.job_ids,
        rows.jobs,
    )
    .fetch_all(db)
    .await
}
