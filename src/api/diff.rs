//! Diffs: what differs between two syncs of one catalog, or between two catalogs (production
//! and staging, say), as changes in the history's shape, each classified.

use std::cmp::Ordering;

use axum::Json;
use axum::extract::State as AppStateExtractor;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::authorize::reach;
use super::extract::{QueryParams, parse_id};
use super::openapi::ReadErrors;
use crate::access::Caller;
use crate::error::ApiError;
use crate::store::changes::{self, Change};
use crate::store::diff::{self, State};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(diff))
}

/// The two states a diff compares.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // only its documentation is used
struct DiffParams {
    /// A catalog id (its snapshot as stored now) or a sync id (its catalog's state after it).
    from: uuid::Uuid,
    /// Of the same kind as `from`: another catalog, or a sync of the same catalog.
    to: uuid::Uuid,
}

/// What changed from one state to another: between two syncs of one catalog (the history the
/// syncs after `from` up to `to` recorded, composed; inverted when `from` is the later), or
/// between two catalogs (their relations matched by schema and name). Each change says
/// whether it can break clients.
#[utoipa::path(
    get, path = "/diff", tag = "catalogs",
    params(DiffParams),
    responses((status = 200, description = "The changes from `from` to `to`, by kind, then schema, relation and name", body = Vec<Change>), ReadErrors)
)]
async fn diff(
    AppStateExtractor(state): AppStateExtractor<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Json<Vec<Change>>, ApiError> {
    query.only(&["from", "to"])?;
    let id = |field: &str| match query.get(field) {
        Some(raw) => parse_id(field, raw),
        None => Err(ApiError::validation(
            field,
            "required: a catalog or sync id",
        )),
    };
    let (from, to) = (id("from")?, id("to")?);
    let from = resolve(&state, &caller, "from", from).await?;
    let to = resolve(&state, &caller, "to", to).await?;
    let changes = match (from, to) {
        (
            State::Sync { id: a, catalog },
            State::Sync {
                id: b,
                catalog: other,
            },
        ) => {
            if catalog != other {
                return Err(ApiError::validation(
                    "to",
                    "a sync of another catalog than `from`'s: compare two syncs of one catalog, or two catalogs",
                ));
            }
            match a.uuid().cmp(&b.uuid()) {
                Ordering::Equal => Vec::new(),
                Ordering::Less => {
                    diff::compose(changes::list_between_syncs(&state.pool, catalog, a, b).await?)
                }
                Ordering::Greater => diff::invert(diff::compose(
                    changes::list_between_syncs(&state.pool, catalog, b, a).await?,
                )),
            }
        }
        (State::Catalog(a), State::Catalog(b)) => {
            let mut tx = state.pool.begin().await?;
            let mut found = changes::compare_catalogs(&mut tx, a, b).await?;
            tx.commit().await?;
            diff::sort(&mut found);
            found
        }
        _ => {
            return Err(ApiError::validation(
                "to",
                "must name the same kind of state as `from`: two syncs of one catalog, or two catalogs",
            ));
        }
    };
    Ok(Json(changes))
}

/// The state `id` names (404 naming `field` when none), if the caller may reach its catalog.
async fn resolve(
    state: &AppState,
    caller: &Caller,
    field: &str,
    id: uuid::Uuid,
) -> Result<State, ApiError> {
    let found = diff::resolve(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{field}: no catalog or sync {id}")))?;
    reach(caller, found.catalog().uuid())?;
    Ok(found)
}
