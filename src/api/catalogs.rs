//! Catalog reads: the list, one catalog with its schemas and latest sync, its sync history,
//! its relations, and one relation in detail.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::AppState;
use super::extract::{PathParams, QueryParams, parse_id};
use super::pagination::{PageRequest, encode_segment, page_response};
use super::syncs::SyncView;
use crate::catalog::RelationKind;
use crate::error::ApiError;
use crate::source::format_source;
use crate::store::catalogs::{self, CatalogRow};
use crate::store::snapshot::{self, ColumnRow, ConstraintRow, IndexRow, RelationRow, SchemaRow};
use crate::store::syncs;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/catalogs", get(list_catalogs))
        .route("/catalogs/{id}", get(get_catalog))
        .route("/catalogs/{id}/syncs", get(list_syncs))
        .route("/catalogs/{id}/tables", get(list_tables))
        .route("/catalogs/{id}/tables/{schema}/{table}", get(get_table))
}

/// A catalog in the list: the original service's `{"id","source","synced_at"}` plus more.
#[derive(Serialize)]
struct CatalogSummary {
    id: Uuid,
    source: String,
    synced_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    /// Status of the latest sync.
    status: Option<String>,
}

impl From<&CatalogRow> for CatalogSummary {
    fn from(c: &CatalogRow) -> Self {
        Self {
            id: c.id,
            source: format_source(&c.host, c.port, &c.dbname),
            synced_at: c.synced_at,
            created_at: c.created_at,
            status: c.status.clone(),
        }
    }
}

async fn list_catalogs(
    State(state): State<AppState>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["limit", "cursor"])?;
    let page = PageRequest::<(DateTime<Utc>, Uuid)>::from_query(&query)?;
    let rows = catalogs::list(&state.pool, page.after, page.fetch_limit()).await?;
    let rows: Vec<CatalogSummary> = rows.iter().map(CatalogSummary::from).collect();
    Ok(page_response(rows, &page, "/catalogs", &[], |c| {
        (c.created_at, c.id)
    }))
}

#[derive(Serialize)]
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

#[derive(Serialize)]
struct CatalogResponse {
    catalog: CatalogDetail,
    schemas: Vec<SchemaRow>,
    /// The latest sync, whatever its state.
    sync: Option<SyncView>,
}

async fn find_catalog(state: &AppState, raw_id: &str) -> Result<CatalogRow, ApiError> {
    let id = parse_id("catalog_id", raw_id)?;
    catalogs::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no catalog {id}")))
}

async fn get_catalog(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<CatalogResponse>, ApiError> {
    let c = find_catalog(&state, &id).await?;
    let schemas = snapshot::schemas(&state.pool, c.id).await?;
    let sync = syncs::latest_for_catalog(&state.pool, c.id)
        .await?
        .map(SyncView::from);
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

async fn list_syncs(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["limit", "cursor"])?;
    let c = find_catalog(&state, &id).await?;
    let page = PageRequest::<(DateTime<Utc>, Uuid)>::from_query(&query)?;
    let rows = syncs::list_for_catalog(&state.pool, c.id, page.after, page.fetch_limit()).await?;
    let rows: Vec<SyncView> = rows.into_iter().map(SyncView::from).collect();
    let path = format!("/catalogs/{}/syncs", c.id);
    Ok(page_response(rows, &page, &path, &[], |s| {
        (s.enqueued_at, s.sync_id)
    }))
}

async fn list_tables(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["schema", "limit", "cursor"])?;
    let c = find_catalog(&state, &id).await?;
    let schema = query.get("schema");
    if let Some(schema) = schema
        && !snapshot::schema_exists(&state.pool, c.id, schema).await?
    {
        return Err(ApiError::NotFound(format!(
            "no schema {schema:?} in catalog {}",
            c.id
        )));
    }
    let page = PageRequest::<(String, String)>::from_query(&query)?;
    let rows = snapshot::relations(
        &state.pool,
        c.id,
        schema,
        page.after.clone(),
        page.fetch_limit(),
    )
    .await?;
    let path = format!("/catalogs/{}/tables", c.id);
    let params: Vec<(&str, &str)> = schema.map(|s| ("schema", s)).into_iter().collect();
    Ok(page_response(
        rows,
        &page,
        &path,
        &params,
        |r: &RelationRow| (r.schema.clone(), r.name.clone()),
    ))
}

/// A relation with its columns (in ordinal order), keys, constraints and indexes.
#[derive(Serialize)]
struct TableDetail {
    #[serde(flatten)]
    relation: RelationRow,
    columns: Vec<ColumnRow>,
    primary_key: Vec<String>,
    constraints: Vec<ConstraintRow>,
    indexes: Vec<IndexRow>,
    /// The relation's own URL, percent-encoded.
    href: String,
}

async fn get_table(
    State(state): State<AppState>,
    PathParams((id, schema, table)): PathParams<(String, String, String)>,
) -> Result<Json<TableDetail>, ApiError> {
    let c = find_catalog(&state, &id).await?;
    let relation = snapshot::relation(&state.pool, c.id, &schema, &table)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no relation {schema:?}.{table:?} in catalog {}",
                c.id
            ))
        })?;
    let (columns, constraints, indexes) = tokio::try_join!(
        snapshot::columns(&state.pool, c.id, &schema, &table),
        snapshot::constraints(&state.pool, c.id, &schema, &table),
        snapshot::indexes(&state.pool, c.id, &schema, &table),
    )?;
    let primary_key = constraints
        .iter()
        .find(|k| k.kind == "primary_key")
        .map(|k| k.columns.clone())
        .unwrap_or_default();
    debug_assert!(RelationKind::parse(&relation.kind).is_some());
    Ok(Json(TableDetail {
        href: format!(
            "/catalogs/{}/tables/{}/{}",
            c.id,
            encode_segment(&schema),
            encode_segment(&table)
        ),
        relation,
        columns,
        primary_key,
        constraints,
        indexes,
    }))
}
