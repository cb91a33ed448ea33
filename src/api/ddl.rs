//! The DDL export: SQL that recreates a catalog's schema, rendered from its stored snapshot.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::catalogs::ensure_catalog;
use super::extract::{PathParams, QueryParams, parse_id};
use super::openapi::{CatalogId, PastParams, ReadErrors, SchemaParam};
use super::past;
use crate::catalog::{MAX_NAME_BYTES, ddl};
use crate::error::ApiError;
use crate::store::{export, reads};

/// The media type of the export.
pub const SQL: &str = "application/sql; charset=utf-8";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_ddl))
}

/// SQL that recreates the catalog's objects (or one schema's) in an empty database, as
/// `pg_dump --schema-only` would print them, in dependency order. Owners, privileges and
/// what the snapshot does not hold (policies, operators, casts...) are left out.
#[utoipa::path(
    get, path = "/catalogs/{id}/ddl", tag = "objects",
    params(CatalogId, SchemaParam, PastParams),
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The SQL script", content_type = "application/sql", body = String), ReadErrors)
)]
async fn get_ddl(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["schema", "sync", "as_of"])?;
    let c = parse_id("catalog_id", &id)?;
    let schema = query.get("schema");
    if let Some(name) = schema
        && (name.len() > MAX_NAME_BYTES || name.contains('\0'))
    {
        return Err(ApiError::validation(
            "schema",
            format!("must be at most {MAX_NAME_BYTES} bytes, without NUL bytes"),
        ));
    }
    let at = past::snapshot(&state, c, &query).await?;
    ensure_catalog(&state, c).await?;
    if let Some(name) = schema
        && !reads::schema_exists(&state.pool, at.stored_as, name).await?
    {
        return Err(ApiError::validation(
            "schema",
            format!("no schema {name:?} in catalog {c}"),
        ));
    }
    let mut tx = state.pool.begin().await?;
    // One snapshot of the store: a sync committing meanwhile is seen whole or not at all.
    sqlx::raw_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let snapshot = export::snapshot(&mut tx, c, at.stored_as, at.sync, schema).await?;
    tx.commit().await?;
    let sql = tokio::task::spawn_blocking(move || ddl::render(&snapshot))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(([(CONTENT_TYPE, SQL)], sql).into_response())
}
