//! Periodic re-syncs of catalogs: one schedule per catalog, with the credentials its re-syncs
//! need (sealed with the catalog id).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::Tx;

#[derive(Debug, Clone)]
pub struct ScheduleRow {
    pub catalog_id: Uuid,
    pub every_seconds: Option<i64>,
    pub cron: Option<String>,
    pub next_run_at: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_sync_id: Option<Uuid>,
    /// Set while the schedule is paused.
    pub paused_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Sets (or replaces) the catalog's schedule: every `every_seconds` or on `cron`, the first run
/// at `next_run_at`.
#[allow(clippy::too_many_arguments)]
pub async fn put(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    every_seconds: Option<i64>,
    cron: Option<&str>,
    next_run_at: DateTime<Utc>,
    credentials: &Value,
    schema_filter: Option<&Value>,
    max_attempts: i32,
) -> sqlx::Result<ScheduleRow> {
    sqlx::query_as!(
        ScheduleRow,
        r#"INSERT INTO catalog_schedules
               (catalog_id, every_seconds, cron, next_run_at, credentials, schema_filter, max_attempts)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (catalog_id) DO UPDATE
           SET every_seconds = excluded.every_seconds, cron = excluded.cron,
               next_run_at = excluded.next_run_at, credentials = excluded.credentials,
               schema_filter = excluded.schema_filter, max_attempts = excluded.max_attempts,
               updated_at = now()
           RETURNING catalog_id, every_seconds, cron, next_run_at, last_run_at, last_sync_id,
                     paused_at, created_at, updated_at"#,
        catalog_id,
        every_seconds,
        cron,
        next_run_at,
        credentials,
        schema_filter,
        max_attempts
    )
    .fetch_one(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, catalog_id: Uuid) -> sqlx::Result<Option<ScheduleRow>> {
    sqlx::query_as!(
        ScheduleRow,
        r#"SELECT catalog_id, every_seconds, cron, next_run_at, last_run_at, last_sync_id,
                  paused_at, created_at, updated_at
           FROM catalog_schedules WHERE catalog_id = $1"#,
        catalog_id
    )
    .fetch_optional(db)
    .await
}

/// Deletes the schedule and the credentials it kept. False when there was none.
pub async fn delete(db: impl PgExecutor<'_>, catalog_id: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        r#"DELETE FROM catalog_schedules WHERE catalog_id = $1"#,
        catalog_id
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Pauses or resumes the schedule; `None` when there is none. A schedule resumed after its
/// next run's time runs at once.
pub async fn set_paused(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    paused: bool,
) -> sqlx::Result<Option<ScheduleRow>> {
    sqlx::query_as!(
        ScheduleRow,
        r#"UPDATE catalog_schedules
           SET paused_at = CASE WHEN $2 THEN coalesce(paused_at, now()) END, updated_at = now()
           WHERE catalog_id = $1
           RETURNING catalog_id, every_seconds, cron, next_run_at, last_run_at, last_sync_id,
                     paused_at, created_at, updated_at"#,
        catalog_id,
        paused
    )
    .fetch_optional(db)
    .await
}

/// The schedule's sealed credentials and schema filter, if the catalog has a schedule.
pub async fn sealed(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
) -> sqlx::Result<Option<(Value, Option<Value>)>> {
    let row = sqlx::query!(
        "SELECT credentials, schema_filter FROM catalog_schedules WHERE catalog_id = $1",
        catalog_id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.credentials, r.schema_filter)))
}

/// A schedule whose re-sync is due.
pub struct Due {
    pub catalog_id: Uuid,
    pub every_seconds: Option<i64>,
    pub cron: Option<String>,
    pub credentials: Value,
    pub schema_filter: Option<Value>,
    pub max_attempts: i32,
}

/// Locks up to `limit` due schedules; other workers skip them until `tx` ends. Their catalogs
/// are locked too (`KEY SHARE`, as the syncs about to reference them would), in the same
/// statement: a catalog being deleted (which locks the catalog, then its schedule) is skipped
/// instead of waiting in the opposite order.
pub async fn lock_due(tx: &mut Tx<'_>, limit: i64) -> sqlx::Result<Vec<Due>> {
    sqlx::query_as!(
        Due,
        r#"SELECT s.catalog_id, s.every_seconds, s.cron, s.credentials, s.schema_filter,
                  s.max_attempts
           FROM catalog_schedules s JOIN catalogs c ON c.id = s.catalog_id
           WHERE s.next_run_at <= now() AND s.paused_at IS NULL
           ORDER BY s.next_run_at
           LIMIT $1
           FOR UPDATE OF s SKIP LOCKED
           FOR KEY SHARE OF c SKIP LOCKED"#,
        limit
    )
    .fetch_all(&mut **tx)
    .await
}

/// Records that these schedules ran (each with the sync it started, if any) and sets their
/// next runs, in one statement.
pub async fn ran_all(
    tx: &mut Tx<'_>,
    catalog_ids: &[Uuid],
    next_runs: &[DateTime<Utc>],
    sync_ids: &[Option<Uuid>],
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE catalog_schedules s
           SET last_run_at = now(), last_sync_id = coalesce(r.sync_id, s.last_sync_id),
               next_run_at = r.next_run_at
           FROM UNNEST($1::uuid[], $2::timestamptz[], $3::uuid[]) AS r(catalog_id, next_run_at, sync_id)
           WHERE s.catalog_id = r.catalog_id"#,
        catalog_ids,
        next_runs,
        sync_ids as &[Option<Uuid>]
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// When the next schedule that is not paused is due.
pub async fn next_due(db: impl PgExecutor<'_>) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar("SELECT min(next_run_at) FROM catalog_schedules WHERE paused_at IS NULL")
        .fetch_one(db)
        .await
}
