//! Search across catalogs: `GET /search?q=` finds schemas, relations and columns by name or
//! comment in every catalog the caller reaches, ranked (see [`crate::store::search`]).

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::extract::{QueryParams, parse_id};
use super::openapi::{PageParams, ReadErrors};
use super::pagination::{PageRequest, page_response};
use crate::access::Caller;
use crate::catalog::RelationKind;
use crate::error::ApiError;
use crate::ids::CatalogId;
use crate::source::format_source;
use crate::store::search::{self, Hit, Position};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search_catalogs))
}

/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// The most results of one group of equally ranked names a cursor may skip.
const MAX_SKIP: i64 = 100_000_000;

/// What `kind` takes: `schema`, `column`, or a relation kind.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // only its documentation is used
enum SearchKind {
    Schema,
    Table,
    PartitionedTable,
    View,
    MaterializedView,
    ForeignTable,
    Column,
}

/// The search's parameters.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SearchParams {
    /// What to look for: 1 to 200 characters (leading and trailing spaces do not count),
    /// matched case-insensitively against names (exactly, as a prefix or substring, or by
    /// trigram similarity, so a typo still finds the name) and comments.
    #[param(min_length = 1, max_length = 200)]
    q: String,
    /// Only this catalog.
    catalog: Option<Uuid>,
    /// Only objects of this kind.
    kind: Option<SearchKind>,
}

/// Which part of the object matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Matched {
    Name,
    Comment,
}

/// An object found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    pub catalog_id: Uuid,
    /// The catalog's source, `host:port/dbname`.
    pub source: String,
    /// `schema`, `column`, or the relation's kind (`table`, `view`, ...).
    pub kind: String,
    /// The schema (a schema's own name for a schema).
    pub schema: String,
    /// A column's relation; absent for schemas and relations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    pub name: String,
    pub comment: Option<String>,
    pub matched: Matched,
    /// How well it matched, from 0 to 1: the name's trigram similarity to the query (1 for an
    /// exact match), or the comment's word similarity.
    pub score: f64,
    #[serde(skip)]
    position: Position,
}

impl From<Hit> for SearchHit {
    fn from(h: Hit) -> Self {
        Self {
            catalog_id: h.catalog_id,
            source: format_source(&h.host, h.port, &h.dbname),
            kind: h.kind,
            schema: h.schema,
            relation: h.relation,
            name: h.name,
            comment: h.comment,
            matched: match h.name_matched {
                true => Matched::Name,
                false => Matched::Comment,
            },
            score: h.score,
            position: h.position,
        }
    }
}

/// A validated search request, as the API and the dashboard take it.
pub struct SearchRequest {
    pub q: String,
    pub catalog: Option<Uuid>,
    pub kind: Option<String>,
    pub page: PageRequest<Position>,
}

impl SearchRequest {
    pub fn from_query(query: &QueryParams) -> Result<Self, ApiError> {
        query.only(&["q", "catalog", "kind", "limit", "cursor"])?;
        let q = query.get("q").map(str::trim).unwrap_or_default();
        let chars = q.chars().count();
        if chars == 0 || chars > MAX_QUERY_CHARS {
            return Err(ApiError::validation(
                "q",
                format!("must have 1 to {MAX_QUERY_CHARS} characters besides spaces"),
            ));
        }
        if q.contains('\0') {
            return Err(ApiError::validation("q", "must not contain NUL bytes"));
        }
        let catalog = query
            .get("catalog")
            .map(|id| parse_id("catalog", id))
            .transpose()?;
        let kind = query.get("kind").map(str::to_owned);
        if let Some(kind) = &kind
            && !["schema", "column"].contains(&kind.as_str())
            && RelationKind::parse(kind).is_none()
        {
            return Err(ApiError::validation(
                "kind",
                "must be schema, table, partitioned_table, view, materialized_view, \
                 foreign_table or column",
            ));
        }
        let page: PageRequest<Position> = PageRequest::from_query(query)?;
        if page
            .after
            .is_some_and(|p| !(0..=MAX_SKIP).contains(&p.skip) || !p.score.is_finite())
        {
            return Err(ApiError::validation(
                "cursor",
                "invalid cursor; use the one from the Link header",
            ));
        }
        Ok(Self {
            q: q.to_owned(),
            catalog,
            kind,
            page,
        })
    }

    /// The query parameters a link to another page keeps.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![("q", self.q.clone())];
        params.extend(self.catalog.map(|c| ("catalog", c.to_string())));
        params.extend(self.kind.clone().map(|k| ("kind", k)));
        params
    }

    /// One page and one more hit (whether there is a next page), in rank order, of the
    /// catalogs `caller` reaches. 403 when `catalog` is not one of them.
    pub async fn run(&self, state: &AppState, caller: &Caller) -> Result<Vec<SearchHit>, ApiError> {
        if let Some(c) = self.catalog
            && !caller.reaches(CatalogId::from(c))
        {
            return Err(ApiError::CatalogNotAllowed(c));
        }
        let only: Option<Vec<Uuid>> = caller
            .catalogs()
            .map(|ids| ids.iter().map(|id| id.uuid()).collect());
        let query = search::Query {
            q: &self.q,
            catalog: self.catalog,
            kind: self.kind.as_deref(),
            only: only.as_deref(),
        };
        let from = self.page.after.unwrap_or(Position::START);
        let hits = search::search(&state.pool, &query, from, self.page.fetch_limit()).await?;
        Ok(hits.into_iter().map(SearchHit::from).collect())
    }
}

/// The cursor of the page after `hit`.
pub fn next_position(hit: &SearchHit) -> Position {
    Position {
        skip: hit.position.skip + 1,
        ..hit.position
    }
}

/// Schemas, relations and columns of every catalog the caller reaches whose name or comment
/// matches `q`, best first: exact names (case-insensitive), then names starting with `q`,
/// then names containing it, then similar names (a typo still finds them), each by trigram
/// similarity; then comment matches. Ties go by catalog, schema, relation and name. The
/// cursor counts positions in the ranking, which a re-sync in between may shift.
#[utoipa::path(
    get, path = "/search", tag = "search",
    params(SearchParams, PageParams),
    responses((status = 200, description = "A page of matches, best first", body = Vec<SearchHit>, headers(("link" = String, description = "The next page"))), ReadErrors)
)]
async fn search_catalogs(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let request = SearchRequest::from_query(&query)?;
    let hits = request.run(&state, &caller).await?;
    let params = request.params();
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(page_response(
        hits,
        &request.page,
        "/search",
        &params,
        next_position,
    ))
}
