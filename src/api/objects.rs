//! A catalog's objects: schemas, relations (list and detail), columns by name, types,
//! sequences and functions. Every list follows the pagination convention.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;
use uuid::Uuid;

use super::AppState;
use super::catalogs::find_catalog;
use super::extract::{PathParams, QueryParams};
use super::pagination::{PageRequest, encode_segment, page_response};
use crate::catalog::{MAX_NAME_BYTES, RelationKind};
use crate::error::ApiError;
use crate::store::reads::{
    self, ColumnRow, ConstraintRow, IndexRow, RelationFilter, RelationRef, RelationRow, TriggerRow,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/catalogs/{id}/schemas", get(list_schemas))
        .route("/catalogs/{id}/tables", get(list_tables))
        .route("/catalogs/{id}/tables/{schema}/{table}", get(get_table))
        .route("/catalogs/{id}/columns", get(find_columns))
        .route("/catalogs/{id}/types", get(list_types))
        .route("/catalogs/{id}/sequences", get(list_sequences))
        .route("/catalogs/{id}/functions", get(list_functions))
}

/// A name-like query parameter: at most [`MAX_NAME_BYTES`], no NUL bytes.
fn name_param<'a>(query: &'a QueryParams, field: &str) -> Result<Option<&'a str>, ApiError> {
    match query.get(field) {
        Some(v) if v.len() > MAX_NAME_BYTES => Err(ApiError::validation(
            field,
            format!("must be at most {MAX_NAME_BYTES} bytes"),
        )),
        Some(v) if v.contains('\0') => {
            Err(ApiError::validation(field, "must not contain NUL bytes"))
        }
        other => Ok(other),
    }
}

/// The `schema` filter of a list: it must name a schema of the catalog.
async fn schema_param<'a>(
    state: &AppState,
    catalog_id: Uuid,
    query: &'a QueryParams,
) -> Result<Option<&'a str>, ApiError> {
    let schema = name_param(query, "schema")?;
    if let Some(name) = schema
        && !reads::schema_exists(&state.pool, catalog_id, name).await?
    {
        return Err(ApiError::NotFound(format!(
            "no schema {name:?} in catalog {catalog_id}"
        )));
    }
    Ok(schema)
}

async fn list_schemas(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["limit", "cursor"])?;
    let c = find_catalog(&state, &id).await?;
    let page = PageRequest::<String>::from_query(&query)?;
    let rows = reads::schemas(&state.pool, c.id, page.after.as_deref(), page.fetch_limit()).await?;
    let path = format!("/catalogs/{}/schemas", c.id);
    Ok(page_response(rows, &page, &path, &[], |s| s.name.clone()))
}

async fn list_tables(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["schema", "kind", "q", "limit", "cursor"])?;
    let c = find_catalog(&state, &id).await?;
    let schema = schema_param(&state, c.id, &query).await?;
    let kind = query.get("kind");
    if let Some(kind) = kind
        && RelationKind::parse(kind).is_none()
    {
        let kinds: Vec<&str> = RelationKind::ALL.iter().map(|k| k.as_str()).collect();
        return Err(ApiError::validation(
            "kind",
            format!("must be one of {}", kinds.join(", ")),
        ));
    }
    let q = name_param(&query, "q")?;
    let page = PageRequest::<(String, String)>::from_query(&query)?;
    let filter = RelationFilter { schema, kind, q };
    let rows = reads::relations(
        &state.pool,
        c.id,
        &filter,
        page.after.clone(),
        page.fetch_limit(),
    )
    .await?;
    let path = format!("/catalogs/{}/tables", c.id);
    let params: Vec<(&str, &str)> = [("schema", schema), ("kind", kind), ("q", q)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    Ok(page_response(
        rows,
        &page,
        &path,
        &params,
        |r: &RelationRow| (r.schema.clone(), r.name.clone()),
    ))
}

/// The heavy parts of a table's detail, each of which `?fields=` can leave out.
const DETAIL_FIELDS: [&str; 6] = [
    "columns",
    "constraints",
    "indexes",
    "triggers",
    "partitions",
    "lineage",
];

/// A relation with its columns (in ordinal order), keys, constraints, indexes, triggers,
/// partitions, and the views it reads and is read by.
#[derive(Serialize)]
struct TableDetail {
    #[serde(flatten)]
    relation: RelationRow,
    #[serde(skip_serializing_if = "Option::is_none")]
    columns: Option<Vec<ColumnRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary_key: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    constraints: Option<Vec<ConstraintRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    indexes: Option<Vec<IndexRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    triggers: Option<Vec<TriggerRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partitions: Option<Vec<RelationRef>>,
    /// For views: the relations this one reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    depends_on: Option<Vec<RelationRef>>,
    /// The views that read this relation.
    #[serde(skip_serializing_if = "Option::is_none")]
    dependent_views: Option<Vec<RelationRef>>,
    /// The relation's own URL, percent-encoded.
    href: String,
}

async fn get_table(
    State(state): State<AppState>,
    PathParams((id, schema, table)): PathParams<(String, String, String)>,
    query: QueryParams,
) -> Result<Json<TableDetail>, ApiError> {
    query.only(&["fields"])?;
    let fields: Vec<&str> = match query.get("fields") {
        None => DETAIL_FIELDS.to_vec(),
        Some(list) => {
            let fields: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .collect();
            if let Some(bad) = fields.iter().find(|f| !DETAIL_FIELDS.contains(f)) {
                return Err(ApiError::validation(
                    "fields",
                    format!(
                        "unknown field {bad:?}; expected some of {}",
                        DETAIL_FIELDS.join(", ")
                    ),
                ));
            }
            fields
        }
    };
    let wants = |f: &str| fields.contains(&f);
    let c = find_catalog(&state, &id).await?;
    let relation = reads::relation(&state.pool, c.id, &schema, &table)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no relation {schema:?}.{table:?} in catalog {}",
                c.id
            ))
        })?;

    let pool = &state.pool;
    let (s, t) = (schema.as_str(), table.as_str());
    let (columns, constraints, indexes, triggers, partitions, depends_on, dependent_views) = tokio::try_join!(
        maybe(wants("columns"), reads::columns(pool, c.id, s, t)),
        // The primary key comes from the constraints, so they are read for it too.
        maybe(
            wants("constraints") || wants("columns"),
            reads::constraints(pool, c.id, s, t)
        ),
        maybe(wants("indexes"), reads::indexes(pool, c.id, s, t)),
        maybe(wants("triggers"), reads::triggers(pool, c.id, s, t)),
        maybe(wants("partitions"), reads::partitions(pool, c.id, s, t)),
        maybe(wants("lineage"), reads::depends_on(pool, c.id, s, t)),
        maybe(wants("lineage"), reads::dependents(pool, c.id, s, t)),
    )?;
    let primary_key = constraints.as_ref().map(|cs| {
        cs.iter()
            .find(|k| k.kind == "primary_key")
            .map(|k| k.columns.clone())
            .unwrap_or_default()
    });
    Ok(Json(TableDetail {
        href: format!(
            "/catalogs/{}/tables/{}/{}",
            c.id,
            encode_segment(s),
            encode_segment(t)
        ),
        relation,
        columns,
        primary_key,
        constraints: constraints.filter(|_| wants("constraints")),
        indexes,
        triggers,
        partitions,
        depends_on,
        dependent_views,
    }))
}

/// Runs `read` only when `want`.
async fn maybe<T>(
    want: bool,
    read: impl Future<Output = sqlx::Result<T>>,
) -> sqlx::Result<Option<T>> {
    if want { read.await.map(Some) } else { Ok(None) }
}

async fn find_columns(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["q", "limit", "cursor"])?;
    let c = find_catalog(&state, &id).await?;
    let q = name_param(&query, "q")?;
    let page = PageRequest::<(String, String, i32)>::from_query(&query)?;
    let rows =
        reads::find_columns(&state.pool, c.id, q, page.after.clone(), page.fetch_limit()).await?;
    let path = format!("/catalogs/{}/columns", c.id);
    let params: Vec<(&str, &str)> = q.map(|q| ("q", q)).into_iter().collect();
    Ok(page_response(rows, &page, &path, &params, |col| {
        (col.schema.clone(), col.table.clone(), col.ordinal)
    }))
}

async fn list_types(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["schema", "limit", "cursor"])?;
    let c = find_catalog(&state, &id).await?;
    let schema = schema_param(&state, c.id, &query).await?;
    let page = PageRequest::<(String, String)>::from_query(&query)?;
    let rows = reads::types(
        &state.pool,
        c.id,
        schema,
        page.after.clone(),
        page.fetch_limit(),
    )
    .await?;
    let path = format!("/catalogs/{}/types", c.id);
    let params: Vec<(&str, &str)> = schema.map(|s| ("schema", s)).into_iter().collect();
    Ok(page_response(rows, &page, &path, &params, |t| {
        (t.schema.clone(), t.name.clone())
    }))
}

async fn list_sequences(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["schema", "limit", "cursor"])?;
    let c = find_catalog(&state, &id).await?;
    let schema = schema_param(&state, c.id, &query).await?;
    let page = PageRequest::<(String, String)>::from_query(&query)?;
    let rows = reads::sequences(
        &state.pool,
        c.id,
        schema,
        page.after.clone(),
        page.fetch_limit(),
    )
    .await?;
    let path = format!("/catalogs/{}/sequences", c.id);
    let params: Vec<(&str, &str)> = schema.map(|s| ("schema", s)).into_iter().collect();
    Ok(page_response(rows, &page, &path, &params, |q| {
        (q.schema.clone(), q.name.clone())
    }))
}

async fn list_functions(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["schema", "limit", "cursor"])?;
    let c = find_catalog(&state, &id).await?;
    let schema = schema_param(&state, c.id, &query).await?;
    let page = PageRequest::<(String, String, String)>::from_query(&query)?;
    let rows = reads::functions(
        &state.pool,
        c.id,
        schema,
        page.after.clone(),
        page.fetch_limit(),
    )
    .await?;
    let path = format!("/catalogs/{}/functions", c.id);
    let params: Vec<(&str, &str)> = schema.map(|s| ("schema", s)).into_iter().collect();
    Ok(page_response(rows, &page, &path, &params, |f| {
        (f.schema.clone(), f.name.clone(), f.arguments.clone())
    }))
}
