//! A catalog's objects: schemas, relations (list and detail), columns by name, types,
//! sequences and functions. Every list follows the pagination convention.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::catalogs::ensure_catalog;
use super::extract::{PathParams, QueryParams, parse_id};
use super::openapi::{
    CatalogId, ExtensionMembersParam, PageParams, PastParams, ReadErrors, SchemaParam,
};
use super::pagination::{PageRequest, encode_segment, page_response};
use super::past::{self, Snapshot};
use crate::catalog::{MAX_NAME_BYTES, RelationKind};
use crate::error::ApiError;
use crate::store::reads::{
    self, DetailKey, DetailParts, FoundColumn, FunctionRow, Members, RelationFilter, RelationRow,
    SchemaRow, SequenceRow, TypeRow,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_schemas))
        .routes(routes!(list_tables))
        .routes(routes!(get_table))
        .routes(routes!(find_columns))
        .routes(routes!(list_types))
        .routes(routes!(list_sequences))
        .routes(routes!(list_functions))
}

/// The filters of the relation list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct TableFilters {
    /// Only this schema.
    schema: Option<String>,
    /// `table`, `partitioned_table`, `view`, `materialized_view` or `foreign_table`.
    kind: Option<String>,
    /// Only names containing this (case-insensitive).
    q: Option<String>,
}

/// The `{schema}` and `{table}` of a relation, percent-encoded.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct RelationPath {
    /// The catalog's id.
    id: uuid::Uuid,
    schema: String,
    table: String,
}

/// `fields`: which heavy parts of a relation's detail to include.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct DetailFields {
    /// Comma-separated, some of `columns`, `constraints`, `indexes`, `triggers`, `partitions`,
    /// `lineage`, `access` (privileges and policies); all by default.
    fields: Option<String>,
}

/// `q`: columns whose name contains it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ColumnQuery {
    /// Case-insensitive substring of the column name.
    q: Option<String>,
}

/// A relation's detail as `GET /catalogs/{id}/tables/{schema}/{table}` returns it (built by the
/// store as one JSON document; this type only documents it). The parts `?fields=` leaves out
/// are absent.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct RelationDetail {
    schema: String,
    name: String,
    /// `table`, `partitioned_table`, `view`, `materialized_view` or `foreign_table`.
    kind: String,
    owner: Option<String>,
    comment: Option<String>,
    row_estimate: Option<i64>,
    total_bytes: Option<i64>,
    unlogged: bool,
    rls_enabled: bool,
    /// Row-level security applies to the owner too.
    rls_forced: bool,
    column_count: i32,
    /// A view's definition.
    definition: Option<String>,
    partition_key: Option<String>,
    parent_schema: Option<String>,
    parent_name: Option<String>,
    partition_bound: Option<String>,
    /// This document's own path.
    href: String,
    /// In ordinal order: name, ordinal, type, type_schema, type_name, is_array, nullable,
    /// default, identity, generated, collation, comment.
    columns: Option<Vec<serde_json::Value>>,
    /// The primary key's columns.
    primary_key: Option<serde_json::Value>,
    constraints: Option<Vec<serde_json::Value>>,
    indexes: Option<Vec<serde_json::Value>>,
    triggers: Option<Vec<serde_json::Value>>,
    partitions: Option<Vec<serde_json::Value>>,
    /// For a view: the relations it reads.
    depends_on: Option<Vec<serde_json::Value>>,
    /// The views reading this relation.
    dependent_views: Option<Vec<serde_json::Value>>,
    /// The privileges on the relation and its columns: object_type (`table`, `view` or
    /// `column`), column, grantee (`PUBLIC` for everyone), grantor, privilege, grantable.
    privileges: Option<Vec<serde_json::Value>>,
    /// Row-level security policies: name, kind (`permissive` or `restrictive`), command,
    /// roles, using, with_check.
    policies: Option<Vec<serde_json::Value>>,
}

/// A name from a path segment: PostgreSQL names hold no NUL byte and are short.
pub(super) fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
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
pub(super) fn name_param<'a>(
    query: &'a QueryParams,
    field: &str,
) -> Result<Option<&'a str>, ApiError> {
    let value = query.get(field);
    if let Some(v) = value {
        check_name(field, v)?;
    }
    Ok(value)
}

/// A page with rows proves its catalog (and schema filter) exist; only an empty page has to
/// find out whether one of them is unknown (404) or the page is merely empty. So a list costs
/// one query in the common case.
pub(super) async fn check_empty_list(
    state: &AppState,
    at: &Snapshot,
    schema: Option<&str>,
) -> Result<(), ApiError> {
    ensure_catalog(state, at.catalog).await?;
    if let Some(name) = schema
        && !reads::schema_exists(&state.pool, at.stored_as, name).await?
    {
        return Err(ApiError::NotFound(format!(
            "no schema {name:?} in catalog {}",
            at.catalog
        )));
    }
    Ok(())
}

/// A list's query parameters for its links: `given` (those set) and the snapshot's.
pub(super) fn link_params<'a>(
    given: &[(&'a str, Option<&'a str>)],
    snapshot: &'a [(&'static str, String)],
) -> Vec<(&'a str, &'a str)> {
    given
        .iter()
        .filter_map(|(k, v)| v.map(|v| (*k, v)))
        .chain(snapshot.iter().map(|(k, v)| (*k, v.as_str())))
        .collect()
}

/// The catalog's schemas, in name order.
#[utoipa::path(
    get, path = "/catalogs/{id}/schemas", tag = "objects",
    params(CatalogId, PastParams, PageParams),
    responses((status = 200, description = "A page of schemas", body = Vec<SchemaRow>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_schemas(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["limit", "cursor", "sync", "as_of"])?;
    let c = parse_id("catalog_id", &id)?;
    let page = PageRequest::<String>::from_query(&query)?;
    let at = past::snapshot(&state, c, &query).await?;
    let rows = at.own(
        reads::schemas(
            &state.pool,
            at.stored_as,
            page.after.as_deref(),
            page.fetch_limit(),
        )
        .await?,
    );
    if rows.is_empty() {
        check_empty_list(&state, &at, None).await?;
    }
    let path = format!("/catalogs/{}/schemas", c);
    let snapshot = at.link_params();
    let params = link_params(&[], &snapshot);
    Ok(page_response(rows, &page, &path, &params, |s| {
        s.name.clone()
    }))
}

/// The catalog's relations (tables, partitions, views, materialized views, foreign tables), in
/// (schema, name) order.
#[utoipa::path(
    get, path = "/catalogs/{id}/tables", tag = "objects",
    params(CatalogId, TableFilters, ExtensionMembersParam, PastParams, PageParams),
    responses((status = 200, description = "A page of relations", body = Vec<RelationRow>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_tables(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&[
        "schema",
        "kind",
        "q",
        INCLUDE_EXTENSION_OBJECTS,
        "limit",
        "cursor",
        "sync",
        "as_of",
    ])?;
    let c = parse_id("catalog_id", &id)?;
    let schema = name_param(&query, "schema")?;
    let members = members(&query)?;
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
    let filter = RelationFilter {
        schema,
        kind,
        q,
        members,
    };
    let at = past::snapshot(&state, c, &query).await?;
    let rows = reads::relations(
        &state.pool,
        at.stored_as,
        &filter,
        page.after.clone(),
        page.fetch_limit(),
    )
    .await?;
    if rows.is_empty() {
        check_empty_list(&state, &at, schema).await?;
    }
    let path = format!("/catalogs/{}/tables", c);
    let snapshot = at.link_params();
    let params = link_params(
        &[
            ("schema", schema),
            ("kind", kind),
            ("q", q),
            (INCLUDE_EXTENSION_OBJECTS, members.param()),
        ],
        &snapshot,
    );
    Ok(page_response(
        rows,
        &page,
        &path,
        &params,
        |r: &RelationRow| (r.schema.clone(), r.name.clone()),
    ))
}

/// The heavy parts of a table's detail, each of which `?fields=` can leave out.
const DETAIL_FIELDS: [&str; 7] = [
    "columns",
    "constraints",
    "indexes",
    "triggers",
    "partitions",
    "lineage",
    "access",
];

/// A relation with its columns (in ordinal order), keys, constraints, indexes, triggers,
/// partitions, and the views it reads and is read by, as one JSON document from the store.
#[utoipa::path(
    get, path = "/catalogs/{id}/tables/{schema}/{table}", tag = "objects",
    params(RelationPath, DetailFields, PastParams),
    responses((status = 200, description = "The relation", body = RelationDetail), ReadErrors)
)]
async fn get_table(
    State(state): State<AppState>,
    PathParams((id, schema, table)): PathParams<(String, String, String)>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["fields", "sync", "as_of"])?;
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
        access: wants("access"),
    };
    let c = parse_id("catalog_id", &id)?;
    let at = past::snapshot(&state, c, &query).await?;
    let href = at.href(format!(
        "/catalogs/{c}/tables/{}/{}",
        encode_segment(&schema),
        encode_segment(&table)
    ));
    let key = DetailKey {
        catalog_id: at.stored_as,
        schema,
        name: table,
    };
    let found =
        state.details.call(key.clone()).await.ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("the detail readers have stopped"))
        })??;
    // A found relation proves its catalog exists; only a miss needs to tell which is unknown.
    let Some(detail) = found.map(|d| d.finish(&href, parts)) else {
        let DetailKey {
            schema,
            name: table,
            ..
        } = key;
        ensure_catalog(&state, c).await?;
        return Err(ApiError::NotFound(format!(
            "no relation {schema:?}.{table:?} in catalog {c}"
        )));
    };
    Ok(([(CONTENT_TYPE, "application/json")], detail).into_response())
}

/// Columns by name across the catalog, in (schema, table, ordinal) order.
#[utoipa::path(
    get, path = "/catalogs/{id}/columns", tag = "objects",
    params(CatalogId, ColumnQuery, ExtensionMembersParam, PastParams, PageParams),
    responses((status = 200, description = "A page of columns", body = Vec<FoundColumn>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn find_columns(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&[
        "q",
        INCLUDE_EXTENSION_OBJECTS,
        "limit",
        "cursor",
        "sync",
        "as_of",
    ])?;
    let c = parse_id("catalog_id", &id)?;
    let q = name_param(&query, "q")?;
    let members = members(&query)?;
    let page = PageRequest::<(String, String, i32)>::from_query(&query)?;
    let at = past::snapshot(&state, c, &query).await?;
    let rows = reads::find_columns(
        &state.pool,
        at.stored_as,
        q,
        members,
        page.after.clone(),
        page.fetch_limit(),
    )
    .await?;
    if rows.is_empty() {
        check_empty_list(&state, &at, None).await?;
    }
    let path = format!("/catalogs/{}/columns", c);
    let snapshot = at.link_params();
    let params = link_params(
        &[("q", q), (INCLUDE_EXTENSION_OBJECTS, members.param())],
        &snapshot,
    );
    Ok(page_response(rows, &page, &path, &params, |col| {
        (col.schema.clone(), col.table.clone(), col.ordinal)
    }))
}

/// What the schema-filtered lists (types, sequences, functions, policies) share: the
/// catalog's snapshot, the `schema` filter and the page.
pub(super) struct SchemaList<'q, C> {
    pub at: Snapshot,
    pub schema: Option<&'q str>,
    pub members: Members,
    pub page: PageRequest<C>,
}

/// The parameter of the lists that show extensions' members on request.
pub(super) const INCLUDE_EXTENSION_OBJECTS: &str = "include_extension_objects";

/// Which objects a list shows, by its `include_extension_objects` flag.
pub(super) fn members(query: &QueryParams) -> Result<Members, ApiError> {
    Ok(match query.flag(INCLUDE_EXTENSION_OBJECTS)? {
        true => Members::WithExtensions,
        false => Members::Own,
    })
}

impl<'q, C: serde::de::DeserializeOwned> SchemaList<'q, C> {
    /// A list of the schema author's own objects.
    pub async fn from_request(
        state: &AppState,
        id: &str,
        query: &'q QueryParams,
    ) -> Result<Self, ApiError> {
        query.only(&["schema", "limit", "cursor", "sync", "as_of"])?;
        Self::read(state, id, query, Members::Own).await
    }

    /// A list of a kind whose extensions' members are stored whole (functions, types,
    /// sequences, rules, collations, statistics, text search configurations):
    /// `?include_extension_objects=true` shows them too.
    pub async fn with_members(
        state: &AppState,
        id: &str,
        query: &'q QueryParams,
    ) -> Result<Self, ApiError> {
        let params = ["schema", "limit", "cursor", "sync", "as_of"];
        query.only(&[&params[..], &[INCLUDE_EXTENSION_OBJECTS]].concat())?;
        let members = members(query)?;
        Self::read(state, id, query, members).await
    }

    async fn read(
        state: &AppState,
        id: &str,
        query: &'q QueryParams,
        members: Members,
    ) -> Result<Self, ApiError> {
        let catalog = parse_id("catalog_id", id)?;
        let schema = name_param(query, "schema")?;
        let page = PageRequest::from_query(query)?;
        let at = past::snapshot(state, catalog, query).await?;
        Ok(Self {
            at,
            schema,
            members,
            page,
        })
    }

    pub async fn respond<T: Serialize, K: Serialize>(
        &self,
        state: &AppState,
        kind: &str,
        rows: Vec<T>,
        cursor_of: impl Fn(&T) -> K,
    ) -> Result<Response, ApiError> {
        if rows.is_empty() {
            check_empty_list(state, &self.at, self.schema).await?;
        }
        let path = format!("/catalogs/{}/{kind}", self.at.catalog);
        let snapshot = self.at.link_params();
        let params = link_params(
            &[
                ("schema", self.schema),
                (INCLUDE_EXTENSION_OBJECTS, self.members.param()),
            ],
            &snapshot,
        );
        Ok(page_response(rows, &self.page, &path, &params, cursor_of))
    }
}

/// Enums (with their labels), domains (base type, NOT NULL, checks), composite and range types
/// (the subtype as `base_type`).
#[utoipa::path(
    get, path = "/catalogs/{id}/types", tag = "objects",
    params(CatalogId, SchemaParam, ExtensionMembersParam, PastParams, PageParams),
    responses((status = 200, description = "A page of types", body = Vec<TypeRow>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_types(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let list = SchemaList::<(String, String)>::with_members(&state, &id, &query).await?;
    let rows = reads::types(
        &state.pool,
        list.at.stored_as,
        list.schema,
        list.members,
        list.page.after.clone(),
        list.page.fetch_limit(),
    )
    .await?;
    list.respond(&state, "types", rows, |t| {
        (t.schema.clone(), t.name.clone())
    })
    .await
}

/// Sequences: type, start, increment, bounds, cache, cycle and owning column.
#[utoipa::path(
    get, path = "/catalogs/{id}/sequences", tag = "objects",
    params(CatalogId, SchemaParam, ExtensionMembersParam, PastParams, PageParams),
    responses((status = 200, description = "A page of sequences", body = Vec<SequenceRow>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_sequences(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let list = SchemaList::<(String, String)>::with_members(&state, &id, &query).await?;
    let rows = reads::sequences(
        &state.pool,
        list.at.stored_as,
        list.schema,
        list.members,
        list.page.after.clone(),
        list.page.fetch_limit(),
    )
    .await?;
    list.respond(&state, "sequences", rows, |q| {
        (q.schema.clone(), q.name.clone())
    })
    .await
}

/// Functions and procedures: identity arguments, result, language and kind.
#[utoipa::path(
    get, path = "/catalogs/{id}/functions", tag = "objects",
    params(CatalogId, SchemaParam, ExtensionMembersParam, PastParams, PageParams),
    responses((status = 200, description = "A page of functions", body = Vec<FunctionRow>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_functions(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let list = SchemaList::<(String, String, String)>::with_members(&state, &id, &query).await?;
    let rows = reads::functions(
        &state.pool,
        list.at.stored_as,
        list.schema,
        list.members,
        list.page.after.clone(),
        list.page.fetch_limit(),
    )
    .await?;
    list.respond(&state, "functions", rows, |f| {
        (f.schema.clone(), f.name.clone(), f.arguments.clone())
    })
    .await
}
