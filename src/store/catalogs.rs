//! Catalogs: one per source database, identified by (host, port, dbname).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::ids::CatalogId;

/// The stable id of the catalog of a source: the same source always gets the same id.
pub fn catalog_id_for(host: &str, port: u16, dbname: &str) -> Uuid {
    // Length-prefixed parts, so no two (host, port, dbname) triples share a name.
    let name = format!("{}:{host}|{port}|{}:{dbname}", host.len(), dbname.len());
    Uuid::new_v5(&Uuid::NAMESPACE_URL, name.as_bytes())
}

#[derive(Debug, Clone, Serialize)]
pub struct CatalogRow {
    pub id: Uuid,
    pub host: String,
    pub port: i32,
    pub dbname: String,
    pub created_at: DateTime<Utc>,
    pub synced_at: Option<DateTime<Utc>>,
    pub database: Option<serde_json::Value>,
    /// Status of the latest sync, if any.
    pub status: Option<super::syncs::SyncStatus>,
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<CatalogRow>> {
    sqlx::query_as!(
        CatalogRow,
        r#"SELECT c.id, c.host, c.port, c.dbname, c.created_at, c.synced_at, c.database,
                  latest.status AS "status?: _"
           FROM catalogs c
           LEFT JOIN LATERAL (
               SELECT s.status FROM syncs s WHERE s.catalog_id = c.id
               ORDER BY s.enqueued_at DESC, s.id DESC LIMIT 1
           ) latest ON true
           WHERE c.id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// One page of catalogs, newest first, after the `(created_at, id)` cursor when given; only
/// those of `only` when given.
pub async fn list(
    db: impl PgExecutor<'_>,
    only: Option<&[CatalogId]>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<CatalogRow>> {
    let (after_ts, after_id) = after.unzip();
    let only: Option<Vec<Uuid>> = only.map(|ids| ids.iter().map(|id| id.uuid()).collect());
    sqlx::query_as!(
        CatalogRow,
        r#"SELECT c.id, c.host, c.port, c.dbname, c.created_at, c.synced_at, c.database,
                  latest.status AS "status?: _"
           FROM catalogs c
           LEFT JOIN LATERAL (
               SELECT s.status FROM syncs s WHERE s.catalog_id = c.id
               ORDER BY s.enqueued_at DESC, s.id DESC LIMIT 1
           ) latest ON true
           WHERE ($1::timestamptz IS NULL OR (c.created_at, c.id) < ($1, $2::uuid))
             AND ($4::uuid[] IS NULL OR c.id = ANY($4))
           ORDER BY c.created_at DESC, c.id DESC
           LIMIT $3"#,
        after_ts,
        after_id,
        limit,
        only.as_deref()
    )
    .fetch_all(db)
    .await
}

/// The source probe the catalog's snapshot was read at, if any, with the roles it was taken
/// with: those the snapshot shows.
pub async fn source_probe(
    db: impl PgExecutor<'_>,
    id: CatalogId,
) -> sqlx::Result<Option<(String, Vec<String>)>> {
    let row: Option<(Option<String>, Vec<String>)> = sqlx::query_as(
        "SELECT source_probe,
                ARRAY(SELECT r ->> 'name' FROM jsonb_array_elements(access -> 'roles') r)
         FROM catalogs WHERE id = $1",
    )
    .bind(id.uuid())
    .fetch_optional(db)
    .await?;
    Ok(row.and_then(|(probe, roles)| Some((probe?, roles))))
}

pub async fn exists(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<bool> {
    let found = sqlx::query_scalar!(r#"SELECT 1 AS "one!" FROM catalogs WHERE id = $1"#, id)
        .fetch_optional(db)
        .await?;
    Ok(found.is_some())
}
