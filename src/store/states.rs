//! Past states of catalogs, made readable: the state after a sync is copied once into the
//! snapshot tables under its own id ([`state_id`]), from the current units and the retired
//! versions (`snapshot::versions`), then read as any catalog's snapshot is. A state is never
//! listed as a catalog (nothing joins it to `catalogs`), is immutable, and is deleted when
//! nobody read it for [`IDLE`] or its sync is gone; a later read makes it again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::snapshot::versions;
use crate::ids::{CatalogId, SyncId};

/// How long a state nobody reads is kept.
pub const IDLE: Duration = Duration::from_secs(3600);

/// How stale a state's `read_at` may get before a read refreshes it: far below [`IDLE`], so a
/// state being read is never deleted, and a read writes at most once a minute.
const READ_MARK_EVERY_SECS: f64 = 60.0;

/// The id the state of `catalog` after `sync` is stored under.
pub fn state_id(catalog: CatalogId, sync: SyncId) -> Uuid {
    Uuid::new_v5(&catalog.uuid(), sync.uuid().as_bytes())
}

/// The succeeded sync of `catalog` that finished last at or before `at`.
pub async fn sync_as_of(
    db: impl PgExecutor<'_>,
    catalog: CatalogId,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<SyncId>> {
    let id: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM syncs
         WHERE catalog_id = $1 AND status = 'succeeded' AND finished_at <= $2
         ORDER BY finished_at DESC, id DESC LIMIT 1",
    )
    .bind(catalog)
    .bind(at)
    .fetch_optional(db)
    .await?;
    Ok(id.map(SyncId::from))
}

/// The id under which the state of `catalog` after its succeeded `sync` can be read, copied
/// first if it is not stored yet. `None` when the catalog was deleted meanwhile.
pub async fn readable(
    pool: &PgPool,
    catalog: CatalogId,
    sync: SyncId,
) -> sqlx::Result<Option<Uuid>> {
    let id = state_id(catalog, sync);
    let stale: Option<bool> = sqlx::query_scalar(
        "SELECT read_at < now() - make_interval(secs => $2) FROM catalog_states WHERE id = $1",
    )
    .bind(id)
    .bind(READ_MARK_EVERY_SECS)
    .fetch_optional(pool)
    .await?;
    match stale {
        Some(false) => return Ok(Some(id)),
        // Marked read unless housekeeping deleted it meanwhile (then it is made again).
        Some(true) => {
            let marked = sqlx::query("UPDATE catalog_states SET read_at = now() WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            if marked.rows_affected() == 1 {
                return Ok(Some(id));
            }
        }
        None => {}
    }
    make(pool, catalog, sync, id).await
}

/// Copies the state in one transaction. The catalog's `SHARE` row lock keeps snapshot writes
/// (which take `NO KEY UPDATE`) out while it copies, so the copy's statements all see the same
/// snapshot; two requests making the same state meet on its primary key, and the second finds
/// it made.
async fn make(
    pool: &PgPool,
    catalog: CatalogId,
    sync: SyncId,
    id: Uuid,
) -> sqlx::Result<Option<Uuid>> {
    let mut tx = pool.begin().await?;
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM catalogs WHERE id = $1 FOR SHARE")
        .bind(catalog)
        .fetch_optional(&mut *tx)
        .await?;
    if found.is_none() {
        return Ok(None);
    }
    let inserted = sqlx::query(
        "INSERT INTO catalog_states (id, catalog_id, sync_id) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(catalog)
    .bind(sync)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 1 {
        versions::copy_state(&mut tx, catalog, sync, id).await?;
    }
    tx.commit().await?;
    Ok(Some(id))
}

/// Deletes the states nobody read for [`IDLE`] and those whose sync retention deleted, with
/// their rows, then the retired versions no retained sync can read. How many states went.
pub async fn evict(pool: &PgPool) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let gone: Vec<Uuid> = sqlx::query_scalar(
        "DELETE FROM catalog_states s
         WHERE s.read_at < now() - make_interval(secs => $1)
            OR NOT EXISTS (SELECT 1 FROM syncs WHERE id = s.sync_id)
         RETURNING id",
    )
    .bind(IDLE.as_secs_f64())
    .fetch_all(&mut *tx)
    .await?;
    for id in &gone {
        versions::delete_rows(&mut tx, *id).await?;
    }
    versions::prune(&mut tx).await?;
    tx.commit().await?;
    Ok(gone.len() as u64)
}
