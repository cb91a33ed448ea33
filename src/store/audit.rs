//! The audit log: one entry per mutating API request, newest first when read.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

/// An entry as the API records it.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// The token's name; `None` on an API without tokens.
    pub token: Option<String>,
    /// The operation, as the OpenAPI document names it (`create_sync`, `delete_catalog`, ...).
    pub action: String,
    pub method: String,
    /// What the request acted on: its path, or the catalog a new sync is for.
    pub target: String,
    pub request_id: String,
    pub status: u16,
}

/// An entry as stored.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub token: Option<String>,
    pub action: String,
    pub method: String,
    pub target: String,
    pub request_id: String,
    /// The answer's HTTP status.
    pub status: i16,
}

/// Appends `entries` in one statement. The commit does not wait for the WAL flush
/// (`synchronous_commit = off`): the entries are visible at once and durable a moment later,
/// so a store crash can lose the last fraction of a second of them, and a mutating request
/// does not wait for a second flush after its own.
pub async fn insert(pool: &PgPool, entries: &[NewEntry]) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    let column = |f: fn(&NewEntry) -> String| entries.iter().map(f).collect::<Vec<_>>();
    let tokens: Vec<Option<String>> = entries.iter().map(|e| e.token.clone()).collect();
    let statuses: Vec<i16> = entries.iter().map(|e| e.status as i16).collect();
    sqlx::query!(
        "INSERT INTO audit_log (token, action, method, target, request_id, status)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int2[])",
        &tokens as &[Option<String>],
        &column(|e| e.action.clone()),
        &column(|e| e.method.clone()),
        &column(|e| e.target.clone()),
        &column(|e| e.request_id.clone()),
        &statuses,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Which entries a read wants.
#[derive(Debug, Default)]
pub struct Filter {
    pub token: Option<String>,
    pub action: Option<String>,
    /// Entries older than this id (the paging cursor).
    pub before: Option<i64>,
}

/// Up to `limit` entries, newest first.
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: &Filter,
    limit: i64,
) -> sqlx::Result<Vec<Entry>> {
    sqlx::query_as!(
        Entry,
        "SELECT id, at, token, action, method, target, request_id, status FROM audit_log
         WHERE ($1::text IS NULL OR token = $1)
           AND ($2::text IS NULL OR action = $2)
           AND ($3::int8 IS NULL OR id < $3)
         ORDER BY id DESC
         LIMIT $4",
        filter.token,
        filter.action,
        filter.before,
        limit
    )
    .fetch_all(db)
    .await
}

/// Deletes the entries older than `before`; answers how many.
pub async fn prune(db: impl PgExecutor<'_>, before: DateTime<Utc>) -> sqlx::Result<u64> {
    let done = sqlx::query!("DELETE FROM audit_log WHERE at < $1", before)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}
