//! Catalog reads: the list, one catalog with its schemas and latest sync, its sync history,
//! its relations, and one relation in detail.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::extract::{PathParams, QueryParams, parse_id};
use super::openapi::{CatalogId, PageParams, PastParams, ReadErrors};
use super::pagination::{PageRequest, page_response};
use super::past;
use super::syncs::SyncView;
use crate::access::Caller;
use crate::error::ApiError;
use crate::source::format_source;
use crate::store::catalogs::{self, CatalogRow};
use crate::store::reads::{self, SchemaRow};
use crate::store::syncs::{self, SyncStatus};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_catalogs))
        .routes(routes!(get_catalog, delete_catalog))
        .routes(routes!(list_syncs))
}

/// A catalog in the list: the original service's `{"id","source","synced_at"}` plus more.
#[derive(Serialize, utoipa::ToSchema)]
struct CatalogSummary {
    id: Uuid,
    source: String,
    synced_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    /// Status of the latest sync.
    status: Option<SyncStatus>,
}

impl From<&CatalogRow> for CatalogSummary {
    fn from(c: &CatalogRow) -> Self {
        Self {
            id: c.id,
            source: format_source(&c.host, c.port, &c.dbname),
            synced_at: c.synced_at,
            created_at: c.created_at,
            status: c.status,
        }
    }
}

/// Every catalog with its latest sync's status, newest first.
#[utoipa::path(
    get, path = "/catalogs", tag = "catalogs",
    params(PageParams),
    responses((status = 200, description = "A page of catalogs", body = Vec<CatalogSummary>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_catalogs(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["limit", "cursor"])?;
    let page = PageRequest::<(DateTime<Utc>, Uuid)>::from_query(&query)?;
    let only = caller.catalogs();
    let rows = catalogs::list(&state.pool, only, page.after, page.fetch_limit()).await?;
    let rows: Vec<CatalogSummary> = rows.iter().map(CatalogSummary::from).collect();
    Ok(page_response(rows, &page, "/catalogs", &[], |c| {
        (c.created_at, c.id)
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct CatalogDetail {
    id: Uuid,
    source: String,
    host: String,
    port: i32,
    dbname: String,
    created_at: DateTime<Utc>,
    synced_at: Option<DateTime<Utc>>,
    database: Option<Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct CatalogResponse {
    catalog: CatalogDetail,
    schemas: Vec<SchemaRow>,
    /// The latest sync, whatever its state (or the past sync read).
    sync: Option<SyncView>,
}

/// 404 unless the catalog exists (a cheap check for reads that need nothing else of it).
pub(super) async fn ensure_catalog(state: &AppState, id: Uuid) -> Result<(), ApiError> {
    if catalogs::exists(&state.pool, id).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no catalog {id}")))
    }
}

async fn find_catalog(state: &AppState, raw_id: &str) -> Result<CatalogRow, ApiError> {
    let id = parse_id("catalog_id", raw_id)?;
    catalogs::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no catalog {id}")))
}

/// One catalog: its source, database facts, schemas and latest sync; with `?sync=` or
/// `?as_of=`, the schemas that sync left, and that sync.
#[utoipa::path(
    get, path = "/catalogs/{id}", tag = "catalogs",
    params(CatalogId, PastParams),
    responses((status = 200, description = "The catalog", body = CatalogResponse), ReadErrors)
)]
async fn get_catalog(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Json<CatalogResponse>, ApiError> {
    query.only(&past::PARAMS)?;
    let mut c = find_catalog(&state, &id).await?;
    let at = past::snapshot(&state, c.id, &query).await?;
    let schemas = at.own(reads::schemas(&state.pool, at.stored_as, None, i64::MAX).await?);
    let sync = match at.sync {
        Some(past) => syncs::get(&state.pool, past).await?,
        None => syncs::latest_for_catalog(&state.pool, c.id.into()).await?,
    }
    .map(SyncView::from);
    if at.sync.is_some() {
        c.synced_at = sync.as_ref().and_then(|s| s.finished_at);
    }
    Ok(Json(CatalogResponse {
        catalog: CatalogDetail {
            id: c.id,
            source: format_source(&c.host, c.port, &c.dbname),
            host: c.host,
            port: c.port,
            dbname: c.dbname,
            created_at: c.created_at,
            synced_at: c.synced_at,
            database: c.database,
        },
        schemas,
        sync,
    }))
}

/// The catalog's syncs, newest first.
#[utoipa::path(
    get, path = "/catalogs/{id}/syncs", tag = "catalogs",
    params(CatalogId, PageParams),
    responses((status = 200, description = "A page of syncs", body = Vec<SyncView>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_syncs(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["limit", "cursor"])?;
    let id = parse_id("catalog_id", &id)?;
    ensure_catalog(&state, id).await?;
    let page = PageRequest::<(DateTime<Utc>, Uuid)>::from_query(&query)?;
    let rows =
        syncs::list_for_catalog(&state.pool, id.into(), page.after, page.fetch_limit()).await?;
    let rows: Vec<SyncView> = rows.into_iter().map(SyncView::from).collect();
    let path = format!("/catalogs/{}/syncs", id);
    Ok(page_response(rows, &page, &path, &[], |s| {
        (s.enqueued_at, s.sync_id)
    }))
}

/// Deletes a catalog with its snapshot and sync history: 204, or 404 for an unknown id.
#[utoipa::path(
    delete, path = "/catalogs/{id}", tag = "catalogs",
    security(("bearer" = ["admin"])),
    params(CatalogId),
    responses((status = 204, description = "Deleted with everything it owned"), ReadErrors)
)]
async fn delete_catalog(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("catalog_id", &id)?;
    let mut tx = state.pool.begin().await?;
    if !crate::store::snapshot::delete_catalog(&mut tx, id.into()).await? {
        return Err(ApiError::NotFound(format!("no catalog {id}")));
    }
    tx.commit().await?;
    state.cache.catalog_changed(id); // other API processes hear it from the store
    tracing::info!(catalog_id = %id, "catalog deleted");
    Ok(StatusCode::NO_CONTENT)
}
