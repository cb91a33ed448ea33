//! Change history: what each sync changed in its catalog.

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::catalogs::ensure_catalog;
use super::extract::{PathParams, QueryParams, parse_id};
use super::openapi::{CatalogId, PageParams, ReadErrors, SyncId};
use super::pagination::{PageRequest, page_response};
use crate::access::Caller;
use crate::error::ApiError;
use crate::store::changes::{self, ChangeRow};
use crate::store::syncs;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(catalog_changes))
        .routes(routes!(sync_changes))
}

/// `since`: only changes recorded at or after this time.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SinceParam {
    /// An RFC 3339 timestamp, such as `2026-11-26T08:00:00Z`.
    since: Option<String>,
}

/// The catalog's changes, newest first; `since` (RFC 3339) keeps those recorded at or after it.
#[utoipa::path(
    get, path = "/catalogs/{id}/changes", tag = "catalogs",
    params(CatalogId, SinceParam, PageParams),
    responses((status = 200, description = "A page of changes", body = Vec<ChangeRow>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn catalog_changes(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["since", "limit", "cursor"])?;
    let id = parse_id("catalog_id", &id)?;
    let since = query.get("since").map(parse_since).transpose()?;
    let page = PageRequest::<i64>::from_query(&query)?;
    let rows = changes::list_for_catalog(
        &state.pool,
        id.into(),
        since,
        page.after,
        page.fetch_limit(),
    )
    .await?;
    // Rows prove the catalog exists; only an empty page has to tell an unknown one apart.
    if rows.is_empty() {
        ensure_catalog(&state, id).await?;
    }
    let since_param = query.get("since").map(|s| ("since", s));
    Ok(page_response(
        rows,
        &page,
        &format!("/catalogs/{id}/changes"),
        since_param.as_slice(),
        |c| c.id,
    ))
}

/// The changes one sync recorded, in the order it recorded them (none for a catalog's first
/// sync, which is the baseline, or for an unchanged re-sync).
#[utoipa::path(
    get, path = "/syncs/{id}/changes", tag = "syncs",
    params(SyncId, PageParams),
    responses((status = 200, description = "A page of changes", body = Vec<ChangeRow>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn sync_changes(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["limit", "cursor"])?;
    let id = parse_id("sync_id", &id)?;
    super::syncs::reach_sync(&state, &caller, id).await?;
    let page = PageRequest::<i64>::from_query(&query)?;
    let rows =
        changes::list_for_sync(&state.pool, id.into(), page.after, page.fetch_limit()).await?;
    // An empty list is ambiguous: tell an unknown sync apart (a sync deleted by retention
    // still has its changes, so only look when there are none).
    if rows.is_empty() && syncs::get(&state.pool, id.into()).await?.is_none() {
        return Err(ApiError::NotFound(format!("no sync {id}")));
    }
    Ok(page_response(
        rows,
        &page,
        &format!("/syncs/{id}/changes"),
        &[],
        |c| c.id,
    ))
}

fn parse_since(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::validation(
                "since",
                "must be an RFC 3339 timestamp, such as 2026-11-26T08:00:00Z",
            )
        })
}
