//! Whole-server syncs: a parent sync (no catalog, a database selection) and the child syncs
//! its discovery queued, linked in `sync_children`. The parent's end when its last child ends
//! is the store's own trigger (`finish_parent_syncs`); discovery ends it at once when nothing
//! it linked is still active.

use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::Tx;
use super::syncs::SyncStatus;
use crate::ids::SyncId;

/// A parent sync and its job, written by [`insert_parent`].
pub struct ParentRow<'a> {
    pub sync_id: Uuid,
    pub max_attempts: i32,
    pub schema_filter: Option<serde_json::Value>,
    pub databases: serde_json::Value,
    pub credentials: serde_json::Value,
    pub job_id: &'a str,
    pub job: &'a [u8],
}

/// Inserts a queued parent sync and its apalis job (the row apalis's own `push_tasks` writes),
/// in one statement. Parents are not deduplicated: two requests for one server are two
/// parents, whose children share each catalog's active sync.
pub async fn insert_parent(
    db: impl PgExecutor<'_>,
    queue: &str,
    max_deliveries: i32,
    row: &ParentRow<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "WITH parent AS (
             INSERT INTO syncs (id, catalog_id, max_attempts, schema_filter, credentials, databases)
             VALUES ($1, NULL, $2, $3, $4, $5)
         )
         INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at,
                                  priority, metadata)
         VALUES ($6, $7, $8, 'Pending', 0, $9, now(), 0, ''::hstore)",
    )
    .bind(row.sync_id)
    .bind(row.max_attempts)
    .bind(&row.schema_filter)
    .bind(&row.credentials)
    .bind(&row.databases)
    .bind(row.job_id)
    .bind(queue)
    .bind(row.job)
    .bind(max_deliveries)
    .execute(db)
    .await?;
    Ok(())
}

/// Whether the parent's discovery already linked its databases (a later delivery of its job
/// has nothing to do).
pub async fn discovered(db: impl PgExecutor<'_>, parent: SyncId) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sync_children WHERE parent_id = $1)")
        .bind(parent.uuid())
        .fetch_one(db)
        .await
}

/// One database of a discovery: the sync that answers it, or `None` when the selection named
/// it and the server did not offer it.
pub struct Link {
    pub dbname: String,
    pub child: Option<Uuid>,
}

/// What [`record_discovery`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The parent waits for its children (`running`).
    Waiting,
    /// No child was still active: the parent succeeded.
    Finished,
    /// The parent is no longer running (cancelled meanwhile): the caller rolls back.
    NotRunning,
}

/// Links the parent to its databases, ends its discovery attempt, and ends the parent when no
/// child is active, in the caller's transaction (the one that queued the children). The
/// children are locked before they are counted: a child ending concurrently either committed
/// before (and is counted as ended) or waits for this commit and then finds its parent linked.
pub async fn record_discovery(
    tx: &mut Tx<'_>,
    parent: SyncId,
    links: &[Link],
) -> sqlx::Result<Recorded> {
    let children: Vec<Uuid> = links.iter().filter_map(|l| l.child).collect();
    sqlx::query("SELECT id FROM syncs WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(&children)
        .execute(&mut **tx)
        .await?;
    let status: Option<SyncStatus> =
        sqlx::query_scalar("SELECT status FROM syncs WHERE id = $1 FOR UPDATE")
            .bind(parent.uuid())
            .fetch_optional(&mut **tx)
            .await?;
    if status != Some(SyncStatus::Running) {
        return Ok(Recorded::NotRunning);
    }
    let names: Vec<&str> = links.iter().map(|l| l.dbname.as_str()).collect();
    let ids: Vec<Option<Uuid>> = links.iter().map(|l| l.child).collect();
    sqlx::query(
        "INSERT INTO sync_children (parent_id, dbname, child_id)
         SELECT $1, * FROM UNNEST($2::text[], $3::uuid[])
         ON CONFLICT DO NOTHING",
    )
    .bind(parent.uuid())
    .bind(&names)
    .bind(&ids)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE sync_attempts SET finished_at = now(), error = NULL
         WHERE sync_id = $1 AND finished_at IS NULL",
    )
    .bind(parent.uuid())
    .execute(&mut **tx)
    .await?;
    let finished: bool = sqlx::query_scalar(
        "UPDATE syncs
         SET status = CASE WHEN active.n = 0 THEN 'succeeded' ELSE status END,
             finished_at = CASE WHEN active.n = 0 THEN now() END,
             credentials = CASE WHEN active.n = 0 THEN NULL ELSE credentials END,
             stats = CASE WHEN active.n = 0 THEN server_sync_summary($1) END,
             progress = NULL, last_error = NULL
         FROM (SELECT count(*) AS n FROM sync_children l JOIN syncs c ON c.id = l.child_id
               WHERE l.parent_id = $1 AND c.status IN ('queued', 'running', 'retrying')) active
         WHERE id = $1
         RETURNING active.n = 0",
    )
    .bind(parent.uuid())
    .fetch_one(&mut **tx)
    .await?;
    Ok(if finished {
        Recorded::Finished
    } else {
        Recorded::Waiting
    })
}

/// One database of a parent, as its status shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChildRow {
    pub dbname: String,
    pub sync_id: Option<Uuid>,
    pub catalog_id: Option<Uuid>,
    pub status: Option<SyncStatus>,
    pub last_error: Option<String>,
}

/// The parent's databases in name order, each with its sync (none for a missing database).
pub async fn children(db: impl PgExecutor<'_>, parent: SyncId) -> sqlx::Result<Vec<ChildRow>> {
    sqlx::query_as(
        "SELECT l.dbname, c.id AS sync_id, c.catalog_id, c.status, c.last_error
         FROM sync_children l LEFT JOIN syncs c ON c.id = l.child_id
         WHERE l.parent_id = $1
         ORDER BY l.dbname",
    )
    .bind(parent.uuid())
    .fetch_all(db)
    .await
}

/// Locks the parent's children that are still active, in id order (the order a child's own
/// end takes its lock before its parent's), and answers their ids.
pub async fn lock_active_children(
    conn: &mut PgConnection,
    parent: SyncId,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "SELECT c.id FROM sync_children l JOIN syncs c ON c.id = l.child_id
         WHERE l.parent_id = $1 AND c.status IN ('queued', 'running', 'retrying')
         ORDER BY c.id
         FOR UPDATE OF c",
    )
    .bind(parent.uuid())
    .fetch_all(conn)
    .await
}

/// Retention of parents: they belong to no catalog, so each goes once it ended more than `age`
/// ago (its links with it; its children stay, under their catalogs' retention).
pub async fn apply_retention(
    db: impl PgExecutor<'_>,
    age: std::time::Duration,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM syncs
         WHERE catalog_id IS NULL AND finished_at < now() - make_interval(secs => $1)",
    )
    .bind(age.as_secs_f64())
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// How a parent's databases stand, as `GET /syncs/{id}` sums them up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ServerSummary {
    /// Every database the parent covers, missing ones included.
    pub databases: u32,
    /// Children still queued, running or retrying.
    pub active: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub cancelled: u32,
    /// Databases the selection named that the server did not offer.
    pub missing: u32,
}

impl ServerSummary {
    pub fn of(children: &[ChildRow]) -> Self {
        let mut summary = Self {
            databases: children.len() as u32,
            ..Self::default()
        };
        for child in children {
            match child.status {
                None => summary.missing += 1,
                Some(SyncStatus::Succeeded) => summary.succeeded += 1,
                Some(SyncStatus::Failed) => summary.failed += 1,
                Some(SyncStatus::Cancelled) => summary.cancelled += 1,
                Some(_) => summary.active += 1,
            }
        }
        summary
    }
}
