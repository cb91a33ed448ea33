//! Impact analysis: what depends on a relation or on one of its columns (views, foreign keys,
//! constraints, indexes, triggers, policies, SQL-standard function bodies), each with the path
//! that leads to it; see `store::dependents`. Both lists follow the pagination convention.

use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::catalogs::ensure_catalog;
use super::extract::{PathParams, QueryParams, parse_id};
use super::objects::{check_name, link_params};
use super::openapi::{PageParams, PastParams, ReadErrors};
use super::pagination::{PageRequest, encode_segment, page_of, page_response};
use super::past;
use crate::error::ApiError;
use crate::store::dependents::{self, Dependent};
use crate::store::object_reads;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(table_dependents))
        .routes(routes!(column_dependents))
}

/// (kind, schema, relation or "", name): a dependent's place in the list.
type Cursor = (String, String, String, String);

/// The `{schema}`, `{table}` and `{column}` of a column, percent-encoded.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct ColumnPath {
    /// The catalog's id.
    id: uuid::Uuid,
    schema: String,
    table: String,
    column: String,
}

/// What depends on the relation: the views and materialized views that read it (through
/// other views too), the foreign keys that reference it, its own constraints, indexes,
/// triggers and policies, and the functions whose SQL-standard body reads it or one of those
/// views; each with the path from the relation to it. In (kind, schema, relation, name) order.
#[utoipa::path(
    get, path = "/catalogs/{id}/tables/{schema}/{table}/dependents", tag = "objects",
    params(super::objects::RelationPath, PastParams, PageParams),
    responses((status = 200, description = "A page of dependents", body = Vec<Dependent>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn table_dependents(
    State(state): State<AppState>,
    PathParams((id, schema, table)): PathParams<(String, String, String)>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    respond(&state, &id, &schema, &table, None, &query).await
}

/// What depends on the column: the views and materialized views whose definition reads it
/// (exactly, as the source's `pg_depend` records it; through other views, every view reading
/// such a view), the foreign keys that reference it, the constraints, indexes (keys,
/// `INCLUDE`, expressions, predicates), triggers (`UPDATE OF`, `WHEN`) and policies that use
/// it, and the functions whose SQL-standard body reads it or one of those views; each with the
/// path from the column to it. In (kind, schema, relation, name) order.
#[utoipa::path(
    get, path = "/catalogs/{id}/tables/{schema}/{table}/columns/{column}/dependents",
    tag = "objects",
    params(ColumnPath, PastParams, PageParams),
    responses((status = 200, description = "A page of dependents", body = Vec<Dependent>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn column_dependents(
    State(state): State<AppState>,
    PathParams((id, schema, table, column)): PathParams<(String, String, String, String)>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    check_name("column", &column)?;
    respond(&state, &id, &schema, &table, Some(&column), &query).await
}

async fn respond(
    state: &AppState,
    id: &str,
    schema: &str,
    table: &str,
    column: Option<&str>,
    query: &QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["limit", "cursor", "sync", "as_of"])?;
    check_name("schema", schema)?;
    check_name("table", table)?;
    let c = parse_id("catalog_id", id)?;
    let page = PageRequest::<Cursor>::from_query(query)?;
    let at = past::snapshot(state, c, query).await?;
    match dependents::target_exists(&state.pool, at.stored_as, schema, table, column).await? {
        Some(true) => {}
        Some(false) => {
            return Err(ApiError::NotFound(format!(
                "no column {:?} in {schema:?}.{table:?} of catalog {c}",
                column.unwrap_or_default()
            )));
        }
        None => {
            ensure_catalog(state, c).await?;
            return Err(ApiError::NotFound(format!(
                "no relation {schema:?}.{table:?} in catalog {c}"
            )));
        }
    }
    let objects = object_reads::database_objects(&state.pool, c, at.sync)
        .await?
        .unwrap_or_default();
    let found =
        dependents::dependents(&state.pool, at.stored_as, &objects, schema, table, column).await?;
    let rows = page_of(found, &page, Dependent::sort_key);
    let mut path = format!(
        "/catalogs/{c}/tables/{}/{}",
        encode_segment(schema),
        encode_segment(table)
    );
    if let Some(column) = column {
        path = format!("{path}/columns/{}", encode_segment(column));
    }
    path.push_str("/dependents");
    let snapshot = at.link_params();
    let params = link_params(&[], &snapshot);
    Ok(page_response(
        rows,
        &page,
        &path,
        &params,
        Dependent::sort_key,
    ))
}
