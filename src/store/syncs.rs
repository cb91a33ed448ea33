//! Syncs and their attempts: the status clients poll.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Acquire, PgConnection, PgExecutor};
use uuid::Uuid;

use super::Tx;
use super::progress::{Phase, ProgressReport};
use crate::catalog::SnapshotStats;
use crate::ids::{CatalogId, SyncId};

/// Where a sync is. A sync moves `queued -> running -> (retrying -> running)* -> succeeded |
/// failed`, and any active sync can be `cancelled`. Stored as its name (`syncs.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    Queued,
    Running,
    Retrying,
    Succeeded,
    Failed,
    Cancelled,
}

impl SyncStatus {
    pub const ALL: [SyncStatus; 6] = [
        SyncStatus::Queued,
        SyncStatus::Running,
        SyncStatus::Retrying,
        SyncStatus::Succeeded,
        SyncStatus::Failed,
        SyncStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Queued => "queued",
            SyncStatus::Running => "running",
            SyncStatus::Retrying => "retrying",
            SyncStatus::Succeeded => "succeeded",
            SyncStatus::Failed => "failed",
            SyncStatus::Cancelled => "cancelled",
        }
    }

    /// Whether a sync in this status has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SyncStatus::Succeeded | SyncStatus::Failed | SyncStatus::Cancelled
        )
    }
}

impl std::fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SyncStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown sync status {s:?}"))
    }
}

impl sqlx::Type<sqlx::Postgres> for SyncStatus {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <&str as sqlx::Type<sqlx::Postgres>>::type_info()
    }

    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl sqlx::Decode<'_, sqlx::Postgres> for SyncStatus {
    fn decode(value: sqlx::postgres::PgValueRef<'_>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(<&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?.parse()?)
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SyncRow {
    pub id: Uuid,
    /// `None` for a whole-server sync (a parent; see [`super::server_syncs`]).
    pub catalog_id: Option<Uuid>,
    pub status: SyncStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    pub source_kind: Option<String>,
    pub enqueued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub stats: Option<serde_json::Value>,
    pub schema_filter: Option<serde_json::Value>,
    /// A running sync's last [`ProgressReport`].
    pub progress: Option<serde_json::Value>,
    /// A whole-server sync's database selection.
    pub databases: Option<serde_json::Value>,
}

/// The columns of a [`SyncRow`].
const SYNC_COLUMNS: &str = "id, catalog_id, status, attempts, max_attempts, last_error, \
     source_kind, enqueued_at, started_at, finished_at, stats, schema_filter, progress, databases";

impl SyncRow {
    /// How far the sync is: a running sync's last report, or that a sync not started yet waits
    /// for its source host. A report left by an earlier attempt is not shown.
    pub fn current_progress(&self) -> Option<ProgressReport> {
        let report: ProgressReport = serde_json::from_value(self.progress.clone()?).ok()?;
        let current = match self.status {
            SyncStatus::Running => true,
            SyncStatus::Queued | SyncStatus::Retrying => report.phase == Phase::Waiting,
            _ => false,
        };
        current.then_some(report)
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptRow {
    pub attempt: i32,
    pub worker: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

pub async fn get(db: impl PgExecutor<'_>, id: SyncId) -> sqlx::Result<Option<SyncRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SYNC_COLUMNS} FROM syncs WHERE id = $1"
    )))
    .bind(id.uuid())
    .fetch_optional(db)
    .await
}

/// What a manual retry needs of a sync: its status, and the credentials and schema filter it
/// ran with (the credentials are gone once it succeeded or retention removed them).
#[derive(sqlx::FromRow)]
pub struct RetrySource {
    /// `None` for a whole-server sync.
    pub catalog_id: Option<Uuid>,
    pub status: SyncStatus,
    pub credentials: Option<serde_json::Value>,
    pub schema_filter: Option<serde_json::Value>,
    /// A whole-server sync's database selection.
    pub databases: Option<serde_json::Value>,
}

pub async fn retry_source(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<RetrySource>> {
    sqlx::query_as(
        "SELECT catalog_id, status, credentials, schema_filter, databases FROM syncs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The catalog's latest sync that still has its sealed credentials, if any.
pub async fn latest_with_credentials(
    db: impl PgExecutor<'_>,
    catalog: CatalogId,
) -> sqlx::Result<Option<(Uuid, RetrySource)>> {
    let row = sqlx::query!(
        r#"SELECT id, catalog_id, status AS "status: SyncStatus", credentials, schema_filter
           FROM syncs WHERE catalog_id = $1 AND credentials IS NOT NULL
           ORDER BY enqueued_at DESC, id DESC LIMIT 1"#,
        catalog.uuid()
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| {
        let source = RetrySource {
            catalog_id: Some(r.catalog_id),
            status: r.status,
            credentials: r.credentials,
            schema_filter: r.schema_filter,
            databases: None,
        };
        (r.id, source)
    }))
}

/// Retention: deletes syncs (with their attempts) that ended more than `age` ago, except each
/// catalog's latest, and removes the credentials of the ended syncs it keeps. Returns how many
/// syncs were deleted.
pub async fn apply_retention(db: &sqlx::PgPool, age: std::time::Duration) -> sqlx::Result<u64> {
    let age = age.as_secs_f64();
    let deleted = sqlx::query!(
        r#"DELETE FROM syncs s
           WHERE s.finished_at < now() - make_interval(secs => $1)
             AND EXISTS (SELECT 1 FROM syncs later
                         WHERE later.catalog_id = s.catalog_id
                           AND (later.enqueued_at, later.id) > (s.enqueued_at, s.id))"#,
        age
    )
    .execute(db)
    .await?;
    sqlx::query!(
        r#"UPDATE syncs SET credentials = NULL
           WHERE credentials IS NOT NULL AND finished_at < now() - make_interval(secs => $1)"#,
        age
    )
    .execute(db)
    .await?;
    let parents =
        super::server_syncs::apply_retention(db, std::time::Duration::from_secs_f64(age)).await?;
    Ok(deleted.rows_affected() + parents)
}

/// How many syncs are in each status.
pub async fn status_counts(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<(SyncStatus, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT status AS "status: SyncStatus", count(*) AS "n!" FROM syncs GROUP BY status"#
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.status, r.n)).collect())
}

/// A sync with its catalog's source, for lists across catalogs.
pub struct RecentSync {
    pub id: Uuid,
    pub catalog_id: Uuid,
    pub host: String,
    pub port: i32,
    pub dbname: String,
    pub status: SyncStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    pub enqueued_at: DateTime<Utc>,
}

/// The latest syncs of all catalogs, newest first.
pub async fn recent(db: impl PgExecutor<'_>, limit: i64) -> sqlx::Result<Vec<RecentSync>> {
    sqlx::query_as!(
        RecentSync,
        r#"SELECT s.id, s.catalog_id, c.host, c.port, c.dbname, s.status AS "status: _", s.attempts,
                  s.max_attempts, s.last_error, s.enqueued_at
           FROM syncs s JOIN catalogs c ON c.id = s.catalog_id
           ORDER BY s.enqueued_at DESC, s.id DESC
           LIMIT $1"#,
        limit
    )
    .fetch_all(db)
    .await
}

/// The latest sync of a catalog, whatever its state.
pub async fn latest_for_catalog(
    db: impl PgExecutor<'_>,
    catalog_id: CatalogId,
) -> sqlx::Result<Option<SyncRow>> {
    Ok(list_for_catalog(db, catalog_id, None, 1).await?.pop())
}

/// A catalog's syncs, newest first, after the `(enqueued_at, id)` cursor when given.
pub async fn list_for_catalog(
    db: impl PgExecutor<'_>,
    catalog_id: CatalogId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<SyncRow>> {
    let (after_ts, after_id) = after.unzip();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SYNC_COLUMNS} FROM syncs
         WHERE catalog_id = $1
           AND ($2::timestamptz IS NULL OR (enqueued_at, id) < ($2, $3::uuid))
         ORDER BY enqueued_at DESC, id DESC
         LIMIT $4"
    )))
    .bind(catalog_id.uuid())
    .bind(after_ts)
    .bind(after_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn attempts(db: impl PgExecutor<'_>, sync_id: SyncId) -> sqlx::Result<Vec<AttemptRow>> {
    sqlx::query_as!(
        AttemptRow,
        r#"SELECT attempt, worker, started_at, finished_at, error
           FROM sync_attempts WHERE sync_id = $1 ORDER BY attempt"#,
        sync_id.uuid()
    )
    .fetch_all(db)
    .await
}

/// What [`begin_attempt`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptStart {
    /// A new attempt was recorded; the sync is `running`.
    Started {
        attempt: i32,
        max_attempts: i32,
        enqueued_at: DateTime<Utc>,
    },
    /// The sync already ended (a duplicate delivery of its job): nothing to do.
    AlreadyFinished,
    /// Every attempt was used (the last one was cut short, e.g. by a crash): the sync failed.
    Exhausted,
    /// No such sync (its catalog was deleted).
    Missing,
}

/// Starts the next attempt of a sync, in one statement: it locks the sync's row, so two workers
/// handed the same job cannot both start the same attempt. An attempt still open (its worker
/// died) is closed first. A sync whose attempts are all used fails here.
pub async fn begin_attempt(
    conn: &mut PgConnection,
    sync_id: SyncId,
    worker: &str,
    source_kind: &str,
) -> sqlx::Result<AttemptStart> {
    let Some(row) = sqlx::query!(
        r#"WITH current AS (
               SELECT status, attempts, max_attempts, last_error, enqueued_at,
                      status NOT IN ('succeeded', 'failed', 'cancelled') AS active
               FROM syncs WHERE id = $1 FOR UPDATE
           ), cut_short AS (
               UPDATE sync_attempts
               SET finished_at = now(),
                   error = coalesce(error, 'worker stopped before finishing the attempt')
               WHERE sync_id = $1 AND finished_at IS NULL AND (SELECT active FROM current)
           ), started AS (
               UPDATE syncs s
               SET status = 'running', attempts = c.attempts + 1, source_kind = $3,
                   started_at = coalesce(s.started_at, now()), progress = NULL
               FROM current c
               WHERE s.id = $1 AND c.active AND c.attempts < c.max_attempts
               RETURNING s.attempts
           ), recorded AS (
               INSERT INTO sync_attempts (sync_id, attempt, worker)
               SELECT $1, attempts, $2 FROM started
           )
           SELECT c.status AS "status: SyncStatus", c.attempts, c.max_attempts, c.last_error,
                  c.enqueued_at,
                  (SELECT attempts FROM started) AS started
           FROM current c"#,
        sync_id.uuid(),
        worker,
        source_kind
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(AttemptStart::Missing);
    };
    if row.status.is_terminal() {
        return Ok(AttemptStart::AlreadyFinished);
    }
    let Some(attempt) = row.started else {
        let last = row
            .last_error
            .unwrap_or_else(|| "the worker stopped mid-attempt".into());
        let mut tx = conn.begin().await?;
        fail(
            &mut tx,
            sync_id,
            &format!("gave up after {} attempts: {last}", row.attempts),
        )
        .await?;
        tx.commit().await?;
        return Ok(AttemptStart::Exhausted);
    };
    Ok(AttemptStart::Started {
        attempt,
        max_attempts: row.max_attempts,
        enqueued_at: row.enqueued_at,
    })
}

/// Records a transient failure of the current attempt; the sync waits to be retried.
pub async fn retry_later(db: &mut Tx<'_>, sync_id: SyncId, error: &str) -> sqlx::Result<()> {
    finish_attempt(db, sync_id, Some(error)).await?;
    sqlx::query!(
        r#"UPDATE syncs SET status = 'retrying', last_error = $2, progress = NULL
           WHERE id = $1 AND status IN ('running', 'retrying')"#,
        sync_id.uuid(),
        error
    )
    .execute(&mut **db)
    .await?;
    Ok(())
}

/// Ends a sync as failed; false when it was no longer active.
pub async fn fail(tx: &mut Tx<'_>, sync_id: SyncId, error: &str) -> sqlx::Result<bool> {
    finish_attempt(tx, sync_id, Some(error)).await?;
    let done = sqlx::query!(
        r#"UPDATE syncs SET status = 'failed', last_error = $2, finished_at = now(), progress = NULL
           WHERE id = $1 AND status IN ('queued', 'running', 'retrying')"#,
        sync_id.uuid(),
        error
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// What a succeeded sync found and did, as `GET /syncs/{id}` shows it (`stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStats {
    /// What the snapshot holds.
    #[serde(flatten)]
    pub counts: SnapshotStats,
    /// Whether the snapshot was the stored one but for its statistics.
    pub unchanged: bool,
    /// Changes recorded in the history; none for a catalog's first snapshot.
    pub changes: Option<u64>,
    /// Relations written (added or changed).
    #[serde(default)]
    pub relations_written: u64,
}

/// Ends a sync as succeeded, in the transaction that wrote its snapshot: its attempt ends
/// with it. False when the sync was no longer active.
pub async fn succeed(tx: &mut Tx<'_>, sync_id: SyncId, stats: &SyncStats) -> sqlx::Result<bool> {
    let stats = serde_json::to_value(stats).expect("sync stats serialize");
    let done = sqlx::query_scalar!(
        r#"WITH attempt AS (
               UPDATE sync_attempts SET finished_at = now(), error = NULL
               WHERE sync_id = $1 AND finished_at IS NULL
           ), done AS (
               UPDATE syncs
               SET status = 'succeeded', stats = $2, finished_at = now(), credentials = NULL,
                   progress = NULL
               WHERE id = $1 AND status IN ('running', 'retrying')
               RETURNING id
           )
           SELECT count(*) AS "n!" FROM done"#,
        sync_id.uuid(),
        stats
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(done == 1)
}

async fn finish_attempt(tx: &mut Tx<'_>, sync_id: SyncId, error: Option<&str>) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE sync_attempts SET finished_at = now(), error = $2
           WHERE sync_id = $1 AND finished_at IS NULL"#,
        sync_id.uuid(),
        error
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The stats of the catalog's latest successful sync (none where they cannot be read).
pub async fn latest_stats(
    db: impl PgExecutor<'_>,
    catalog_id: CatalogId,
) -> sqlx::Result<Option<SyncStats>> {
    let row = sqlx::query_scalar!(
        r#"SELECT stats FROM syncs WHERE catalog_id = $1 AND status = 'succeeded'
           ORDER BY finished_at DESC LIMIT 1"#,
        catalog_id.uuid()
    )
    .fetch_optional(db)
    .await?;
    Ok(row.flatten().and_then(|s| serde_json::from_value(s).ok()))
}

/// What [`cancel`] did.
#[derive(Debug, Clone)]
pub enum Cancelled {
    /// The sync is now `cancelled`; a worker running it stops at its next step.
    Done(Box<SyncRow>),
    /// The sync had already ended, in this state.
    AlreadyEnded(SyncStatus),
    Missing,
}

/// Cancels an active sync. A queued one is never run (its job finds it cancelled); a running
/// one stops before it writes or retries, because those steps only touch active syncs.
pub async fn cancel(tx: &mut Tx<'_>, sync_id: SyncId) -> sqlx::Result<Cancelled> {
    let Some(status) = sqlx::query_scalar!(
        r#"SELECT status AS "status: SyncStatus" FROM syncs WHERE id = $1 FOR UPDATE"#,
        sync_id.uuid()
    )
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(Cancelled::Missing);
    };
    if status.is_terminal() {
        return Ok(Cancelled::AlreadyEnded(status));
    }
    sqlx::query!(
        r#"UPDATE syncs SET status = 'cancelled', finished_at = now(), progress = NULL,
               last_error = 'cancelled by request'
           WHERE id = $1"#,
        sync_id.uuid()
    )
    .execute(&mut **tx)
    .await?;
    finish_attempt(tx, sync_id, Some("cancelled by request")).await?;
    Ok(match get(&mut **tx, sync_id).await? {
        Some(row) => Cancelled::Done(Box::new(row)),
        None => Cancelled::Missing,
    })
}
