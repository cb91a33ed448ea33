//! The lists of the object kinds beyond relations, types, sequences and functions: a schema's
//! extensions, rules, collations, extended statistics and text search configurations (which
//! take `?schema=` and the past-state parameters, as the other schema lists do), and the
//! database's publications, event triggers and foreign servers (kept with the catalog, with
//! their past versions: they take the past-state parameters too). Every list follows the
//! pagination convention.

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{PathParams, QueryParams};
use super::objects::SchemaList;
use super::openapi::{
    CatalogId, ExtensionMembersParam, PageParams, PastParams, ReadErrors, SchemaParam,
};
use super::pagination::document_page;
use crate::catalog::DatabaseObject;
use crate::catalog::objects::{
    Collation, EventTrigger, ForeignServer, Publication, Rule, SchemaObjectKind, Statistics,
    TextSearchConfiguration,
};
use crate::error::ApiError;
use crate::store::object_reads::{self, ExtensionItem, SchemaObjectCursor};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_extensions))
        .routes(routes!(list_rules))
        .routes(routes!(list_collations))
        .routes(routes!(list_statistics))
        .routes(routes!(list_text_search_configurations))
        .routes(routes!(list_publications))
        .routes(routes!(list_event_triggers))
        .routes(routes!(list_foreign_servers))
}

/// An item of a schema object list: the object (`$object`) with its schema.
macro_rules! in_schema {
    ($item:ident, $object:ty) => {
        #[derive(Serialize, utoipa::ToSchema)]
        struct $item {
            #[serde(skip)]
            cursor: SchemaObjectCursor,
            schema: String,
            #[serde(flatten)]
            object: $object,
        }

        impl From<(SchemaObjectCursor, $object)> for $item {
            fn from((cursor, object): (SchemaObjectCursor, $object)) -> Self {
                Self {
                    schema: cursor.0.clone(),
                    cursor,
                    object,
                }
            }
        }
    };
}

in_schema!(RuleItem, Rule);
in_schema!(CollationItem, Collation);
in_schema!(StatisticsItem, Statistics);
in_schema!(TextSearchConfigurationItem, TextSearchConfiguration);

/// A page of the schema objects of `kind`, as `T` (the kind's model) in items `I`.
async fn schema_objects<T, I>(
    state: &AppState,
    id: &str,
    query: &QueryParams,
    kind: SchemaObjectKind,
    path: &str,
    cursor: impl Fn(&I) -> SchemaObjectCursor,
) -> Result<Response, ApiError>
where
    T: DeserializeOwned + Send + Unpin + 'static,
    I: Serialize + From<(SchemaObjectCursor, T)>,
{
    // Extensions' members (a rule by its relation) are listed on request.
    let list = SchemaList::<SchemaObjectCursor>::with_members(state, id, query).await?;
    let rows = object_reads::schema_objects::<T>(
        &state.pool,
        list.at.stored_as,
        kind,
        list.schema,
        list.members,
        list.page.after.clone(),
        list.page.fetch_limit(),
    )
    .await?;
    let rows: Vec<I> = rows.into_iter().map(I::from).collect();
    list.respond(state, path, rows, cursor).await
}

/// The extensions installed in the catalog's schemas, each with the objects it owns (left out
/// of every other list, as `pg_dump` leaves them out), in (schema, name) order.
#[utoipa::path(
    get, path = "/catalogs/{id}/extensions", tag = "objects",
    params(CatalogId, SchemaParam, PastParams, PageParams),
    responses((status = 200, description = "A page of extensions", body = Vec<ExtensionItem>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_extensions(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let list = SchemaList::<(String, String)>::from_request(&state, &id, &query).await?;
    let rows = object_reads::extensions(
        &state.pool,
        list.at.stored_as,
        list.schema,
        list.page.after.clone(),
        list.page.fetch_limit(),
    )
    .await?;
    list.respond(&state, "extensions", rows, |x| {
        (x.schema.clone(), x.extension.name.clone())
    })
    .await
}

/// The rewrite rules (`CREATE RULE`) of the catalog's tables and views (a view's own
/// definition is not one), in (schema, table, name) order.
#[utoipa::path(
    get, path = "/catalogs/{id}/rules", tag = "objects",
    params(CatalogId, SchemaParam, ExtensionMembersParam, PastParams, PageParams),
    responses((status = 200, description = "A page of rules", body = Vec<RuleItem>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_rules(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let kind = SchemaObjectKind::Rule;
    schema_objects(&state, &id, &query, kind, "rules", |r: &RuleItem| {
        r.cursor.clone()
    })
    .await
}

/// The collations of the catalog's schemas, in (schema, name) order.
#[utoipa::path(
    get, path = "/catalogs/{id}/collations", tag = "objects",
    params(CatalogId, SchemaParam, ExtensionMembersParam, PastParams, PageParams),
    responses((status = 200, description = "A page of collations", body = Vec<CollationItem>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_collations(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let kind = SchemaObjectKind::Collation;
    schema_objects(
        &state,
        &id,
        &query,
        kind,
        "collations",
        |c: &CollationItem| c.cursor.clone(),
    )
    .await
}

/// The extended statistics objects (`CREATE STATISTICS`) of the catalog's schemas, in
/// (schema, name) order.
#[utoipa::path(
    get, path = "/catalogs/{id}/statistics", tag = "objects",
    params(CatalogId, SchemaParam, ExtensionMembersParam, PastParams, PageParams),
    responses((status = 200, description = "A page of statistics objects", body = Vec<StatisticsItem>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_statistics(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let kind = SchemaObjectKind::Statistics;
    schema_objects(
        &state,
        &id,
        &query,
        kind,
        "statistics",
        |s: &StatisticsItem| s.cursor.clone(),
    )
    .await
}

/// The text search configurations of the catalog's schemas, each with its parser and its
/// token mappings, in (schema, name) order.
#[utoipa::path(
    get, path = "/catalogs/{id}/text_search_configurations", tag = "objects",
    params(CatalogId, SchemaParam, ExtensionMembersParam, PastParams, PageParams),
    responses((status = 200, description = "A page of text search configurations", body = Vec<TextSearchConfigurationItem>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_text_search_configurations(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let kind = SchemaObjectKind::TextSearchConfiguration;
    let path = "text_search_configurations";
    schema_objects(
        &state,
        &id,
        &query,
        kind,
        path,
        |c: &TextSearchConfigurationItem| c.cursor.clone(),
    )
    .await
}

/// A page of the database objects `pick` takes, in name order, from the catalog's latest
/// snapshot or as a past sync left them.
async fn database_objects<T: Serialize>(
    state: &AppState,
    id: &str,
    query: &QueryParams,
    kind: &str,
    pick: impl Fn(DatabaseObject) -> Option<T>,
    name: impl Fn(&T) -> String,
) -> Result<Response, ApiError> {
    let load = |c, sync| object_reads::database_objects(&state.pool, c, sync);
    let items = |objects: Vec<DatabaseObject>| objects.into_iter().filter_map(pick).collect();
    document_page(state, id, query, kind, load, items, name).await
}

/// The source database's publications (logical replication), each with its tables (column
/// lists and row filters), schemas and operations, in name order.
#[utoipa::path(
    get, path = "/catalogs/{id}/publications", tag = "objects",
    params(CatalogId, PastParams, PageParams),
    responses((status = 200, description = "A page of publications", body = Vec<Publication>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_publications(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let pick = |o| match o {
        DatabaseObject::Publication(p) => Some(p),
        _ => None,
    };
    database_objects(&state, &id, &query, "publications", pick, |p| {
        p.name.clone()
    })
    .await
}

/// The source database's event triggers, in name order.
#[utoipa::path(
    get, path = "/catalogs/{id}/event_triggers", tag = "objects",
    params(CatalogId, PastParams, PageParams),
    responses((status = 200, description = "A page of event triggers", body = Vec<EventTrigger>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_event_triggers(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let pick = |o| match o {
        DatabaseObject::EventTrigger(t) => Some(t),
        _ => None,
    };
    database_objects(&state, &id, &query, "event_triggers", pick, |t| {
        t.name.clone()
    })
    .await
}

/// The source database's foreign servers, each with its foreign data wrapper and options
/// (user mappings are never read: they hold credentials), in name order.
#[utoipa::path(
    get, path = "/catalogs/{id}/foreign_servers", tag = "objects",
    params(CatalogId, PastParams, PageParams),
    responses((status = 200, description = "A page of foreign servers", body = Vec<ForeignServer>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn list_foreign_servers(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let pick = |o| match o {
        DatabaseObject::ForeignServer(s) => Some(s),
        _ => None,
    };
    database_objects(&state, &id, &query, "foreign_servers", pick, |s| {
        s.name.clone()
    })
    .await
}
