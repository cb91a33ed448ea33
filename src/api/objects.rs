//! A catalog's objects: schemas, relations (list and detail), columns by name, types,
//! sequences and functions. Every list follows the pagination convention.

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use uuid::Uuid;

use super::AppState;
use super::extract::{PathParams, QueryParams, parse_id};
use super::pagination::{PageRequest, encode_segment, page_response};
use crate::catalog::{MAX_NAME_BYTES, RelationKind};
use crate::error::ApiError;
use crate::store::catalogs;
use crate::store::reads::{self, DetailParts, RelationFilter, RelationRow};

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

/// The catalog id of an object path: 400 when malformed, 404 when unknown.
async fn catalog_id(state: &AppState, raw: &str) -> Result<Uuid, ApiError> {
    let id = parse_id("catalog_id", raw)?;
    if catalogs::exists(&state.pool, id).await? {
        Ok(id)
    } else {
        Err(ApiError::NotFound(format!("no catalog {id}")))
    }
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
    let c = catalog_id(&state, &id).await?;
    let page = PageRequest::<String>::from_query(&query)?;
    let rows = reads::schemas(&state.pool, c, page.after.as_deref(), page.fetch_limit()).await?;
    let path = format!("/catalogs/{}/schemas", c);
    Ok(page_response(rows, &page, &path, &[], |s| s.name.clone()))
}

async fn list_tables(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["schema", "kind", "q", "limit", "cursor"])?;
    let c = catalog_id(&state, &id).await?;
    let schema = schema_param(&state, c, &query).await?;
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
        c,
        &filter,
        page.after.clone(),
        page.fetch_limit(),
    )
    .await?;
    let path = format!("/catalogs/{}/tables", c);
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
/// partitions, and the views it reads and is read by, as one JSON document from the store.
async fn get_table(
    State(state): State<AppState>,
    PathParams((id, schema, table)): PathParams<(String, String, String)>,
    query: QueryParams,
) -> Result<Response, ApiError> {
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
    let parts = DetailParts {
        columns: wants("columns"),
        constraints: wants("constraints"),
        indexes: wants("indexes"),
        triggers: wants("triggers"),
        partitions: wants("partitions"),
        lineage: wants("lineage"),
    };
    let c = parse_id("catalog_id", &id)?;
    let href = format!(
        "/catalogs/{c}/tables/{}/{}",
        encode_segment(&schema),
        encode_segment(&table)
    );
    // A found relation proves its catalog exists; only a miss needs to tell which is unknown.
    let Some(detail) =
        reads::relation_detail(&state.pool, c, &schema, &table, &href, parts).await?
    else {
        catalog_id(&state, &id).await?;
        return Err(ApiError::NotFound(format!(
            "no relation {schema:?}.{table:?} in catalog {c}"
        )));
    };
    Ok(([(CONTENT_TYPE, "application/json")], detail).into_response())
}

async fn find_columns(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["q", "limit", "cursor"])?;
    let c = catalog_id(&state, &id).await?;
    let q = name_param(&query, "q")?;
    let page = PageRequest::<(String, String, i32)>::from_query(&query)?;
    let rows =
        reads::find_columns(&state.pool, c, q, page.after.clone(), page.fetch_limit()).await?;
    let path = format!("/catalogs/{}/columns", c);
    let params: Vec<(&str, &str)> = q.map(|q| ("q", q)).into_iter().collect();
    Ok(page_response(rows, &page, &path, &params, |col| {
        (col.schema.clone(), col.table.clone(), col.ordinal)
    }))
}

/// What the schema-filtered lists (types, sequences, functions) share: the catalog, the
/// `schema` filter and the page.
struct SchemaList<'q, C> {
    catalog: Uuid,
    schema: Option<&'q str>,
    page: PageRequest<C>,
}

impl<'q, C: serde::de::DeserializeOwned> SchemaList<'q, C> {
    async fn from_request(
        state: &AppState,
        id: &str,
        query: &'q QueryParams,
    ) -> Result<Self, ApiError> {
        query.only(&["schema", "limit", "cursor"])?;
        let catalog = catalog_id(state, id).await?;
        let schema = schema_param(state, catalog, query).await?;
        let page = PageRequest::from_query(query)?;
        Ok(Self {
            catalog,
            schema,
            page,
        })
    }

    fn respond<T: Serialize, K: Serialize>(
        &self,
        kind: &str,
        rows: Vec<T>,
        cursor_of: impl Fn(&T) -> K,
    ) -> Response {
        let path = format!("/catalogs/{}/{kind}", self.catalog);
        let params: Vec<(&str, &str)> = self.schema.map(|s| ("schema", s)).into_iter().collect();
        page_response(rows, &self.page, &path, &params, cursor_of)
    }
}

async fn list_types(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let list = SchemaList::<(String, String)>::from_request(&state, &id, &query).await?;
    let rows = reads::types(
        &state.pool,
        list.catalog,
        list.schema,
        list.page.after.clone(),
        list.page.fetch_limit(),
    )
    .await?;
    Ok(list.respond("types", rows, |t| (t.schema.clone(), t.name.clone())))
}

async fn list_sequences(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let list = SchemaList::<(String, String)>::from_request(&state, &id, &query).await?;
    let rows = reads::sequences(
        &state.pool,
        list.catalog,
        list.schema,
        list.page.after.clone(),
        list.page.fetch_limit(),
    )
    .await?;
    Ok(list.respond("sequences", rows, |q| (q.schema.clone(), q.name.clone())))
}

async fn list_functions(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let list = SchemaList::<(String, String, String)>::from_request(&state, &id, &query).await?;
    let rows = reads::functions(
        &state.pool,
        list.catalog,
        list.schema,
        list.page.after.clone(),
        list.page.fetch_limit(),
    )
    .await?;
    Ok(list.respond("functions", rows, |f| {
        (f.schema.clone(), f.name.clone(), f.arguments.clone())
    }))
}
