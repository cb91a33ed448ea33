//! The apalis queue's job table, as this service looks after it.

use sqlx::PgExecutor;

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
