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
use super::catalogs::ensure_catalog;
use super::extract::{PathParams, QueryParams, parse_id};
use super::pagination::{PageRequest, encode_segment, page_response};
use crate::catalog::{MAX_NAME_BYTES, RelationKind};
use crate::error::ApiError;
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

/// A name from a path segment: PostgreSQL names hold no NUL byte and are short.
fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(ApiError::validation(
            field,
            format!("must be at most {MAX_NAME_BYTES} bytes"),
        ));
    }
    if name.contains('\0') {
        return Err(ApiError::validation(field, "must not contain NUL bytes"));
    }
    Ok(())
}

/// A name-like query parameter: at most [`MAX_NAME_BYTES`], no NUL bytes.
fn name_param<'a>(query: &'a QueryParams, field: &str) -> Result<Option<&'a str>, ApiError> {
    let value = query.get(field);
    if let Some(v) = value {
        check_name(field, v)?;
    }
    Ok(value)
}

/// A page with rows proves its catalog (and schema filter) exist; only an empty page has to
/// find out whether one of them is unknown (404) or the page is merely empty. So a list costs
/// one query in the common case.
async fn check_empty_list(
    state: &AppState,
    catalog: Uuid,
    schema: Option<&str>,
) -> Result<(), ApiError> {
    ensure_catalog(state, catalog).await?;
    if let Some(name) = schema
        && !reads::schema_exists(&state.pool, catalog, name).await?
    {
        return Err(ApiError::NotFound(format!(
            "no schema {name:?} in catalog {catalog}"
        )));
    }
    Ok(())
}

async fn list_schemas(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["limit", "cursor"])?;
    let c = parse_id("catalog_id", &id)?;
    let page = PageRequest::<String>::from_query(&query)?;
    let rows = reads::schemas(&state.pool, c, page.after.as_deref(), page.fetch_limit()).await?;
    if rows.is_empty() {
        check_empty_list(&state, c, None).await?;
    }
    let path = format!("/catalogs/{}/schemas", c);
    Ok(page_response(rows, &page, &path, &[], |s| s.name.clone()))
}

async fn list_tables(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["schema", "kind", "q", "limit", "cursor"])?;
    let c = parse_id("catalog_id", &id)?;
    let schema = name_param(&query, "schema")?;
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
    if rows.is_empty() {
        check_empty_list(&state, c, schema).await?;
    }
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
    check_name("schema", &schema)?;
    check_name("table", &table)?;
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
        ensure_catalog(&state, c).await?;
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
    let c = parse_id("catalog_id", &id)?;
    let q = name_param(&query, "q")?;
    let page = PageRequest::<(String, String, i32)>::from_query(&query)?;
    let rows =
        reads::find_columns(&state.pool, c, q, page.after.clone(), page.fetch_limit()).await?;
    if rows.is_empty() {
        check_empty_list(&state, c, None).await?;
    }
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
    fn from_request(id: &str, query: &'q QueryParams) -> Result<Self, ApiError> {
        query.only(&["schema", "limit", "cursor"])?;
        let catalog = parse_id("catalog_id", id)?;
        let schema = name_param(query, "schema")?;
        let page = PageRequest::from_query(query)?;
        Ok(Self {
            catalog,
            schema,
            page,
        })
    }

    async fn respond<T: Serialize, K: Serialize>(
        &self,
        state: &AppState,
        kind: &str,
        rows: Vec<T>,
        cursor_of: impl Fn(&T) -> K,
    ) -> Result<Response, ApiError> {
        if rows.is_empty() {
            check_empty_list(state, self.catalog, self.schema).await?;
        }
        let path = format!("/catalogs/{}/{kind}", self.catalog);
        let params: Vec<(&str, &str)> = self.schema.map(|s| ("schema", s)).into_iter().collect();
        Ok(page_response(rows, &self.page, &path, &params, cursor_of))
    }
}

async fn list_types(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let list = SchemaList::<(String, String)>::from_request(&id, &query)?;
    let rows = reads::types(
        &state.pool,
        list.catalog,
        list.schema,
        list.page.after.clone(),
        list.page.fetch_limit(),
    )
    .await?;
    list.respond(&state, "types", rows, |t| {
        (t.schema.clone(), t.name.clone())
    })
    .await
}

async fn list_sequences(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let list = SchemaList::<(String, String)>::from_request(&id, &query)?;
    let rows = reads::sequences(
        &state.pool,
        list.catalog,
        list.schema,
        list.page.after.clone(),
        list.page.fetch_limit(),
    )
    .await?;
    list.respond(&state, "sequences", rows, |q| {
        (q.schema.clone(), q.name.clone())
    })
    .await
}

async fn list_functions(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let list = SchemaList::<(String, String, String)>::from_request(&id, &query)?;
    let rows = reads::functions(
        &state.pool,
        list.catalog,
        list.schema,
        list.page.after.clone(),
        list.page.fetch_limit(),
    )
    .await?;
    list.respond(&state, "functions", rows, |f| {
        (f.schema.clone(), f.name.clone(), f.arguments.clone())
    })
    .await
}
