//! `POST /sync` (validate and enqueue) and `GET /syncs/{id}` (the status clients poll).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::authorize::{self, AuditTarget};
use super::extract::{JsonObject, PathParams, QueryParams, parse_id};
use super::openapi::{
    BodyErrors, CatalogId as CatalogIdParam, ReadErrors, SyncId, WaitOutcome, WaitParam,
    WaitResponses,
};
use super::server_syncs::{self, ChildView};
use super::sync_request::{SyncRequest, parse_schema_filter, parse_scope, parse_sync_request};
use super::watch;
use crate::access::Caller;
use crate::catalog::SchemaFilter;
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::queue::{EnqueueRequest, SealedCredentials};
use crate::store::catalogs::catalog_id_for;
use crate::store::progress::ProgressReport;
use crate::store::schedules;
use crate::store::server_syncs::{ServerSummary, lock_active_children};
use crate::store::syncs::{self, AttemptRow, SyncRow, SyncStatus};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_sync))
        .routes(routes!(get_sync, cancel_sync))
        .routes(routes!(retry_sync))
        .routes(routes!(resync_catalog))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct SyncAccepted {
    /// The catalog the sync writes; null for a whole-server sync (its status lists the
    /// databases' catalogs once discovery found them).
    catalog_id: Option<Uuid>,
    sync_id: Uuid,
    status: SyncStatus,
}

/// Validates the source's connection details and enqueues a sync; never touches the source.
/// With `?wait=30s` it then waits for the sync to end: 200 when it succeeded, 502 when it
/// failed (the source's error), 504 when the wait ended first.
///
/// With `dbname` `*` (or a `databases` selection) it enqueues a whole-server sync: a worker
/// lists the server's databases and syncs each into its own catalog, under this sync, whose
/// status lists them (`children`). Its `catalog_id` is null.
#[utoipa::path(
    post, path = "/sync", tag = "syncs",
    security(("bearer" = ["sync"])),
    params(WaitParam),
    request_body = SyncRequest,
    responses(
        (status = 202, description = "Queued, or the catalog's active sync", body = SyncAccepted,
         headers(("location" = String, description = "The sync's status URL"))),
        WaitResponses, ReadErrors, BodyErrors,
    )
)]
async fn create_sync(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
    JsonObject(mut body): JsonObject,
) -> Result<Response, ApiError> {
    query.only(&["wait"])?;
    let wait = query.get("wait").map(watch::parse_wait).transpose()?;
    let whole_server = parse_scope(&mut body)?;
    let (target, secrets) = parse_sync_request(&body)?;
    state
        .source_policy
        .check_host(&target.host)
        .map_err(|message| ApiError::validation("host", message))?;
    if let Some(databases) = whole_server {
        let schemas = parse_schema_filter(body.get("schemas"))?;
        let sync_id =
            server_syncs::create(&state, &caller, target, secrets, databases, schemas).await?;
        let mut response = answer_new(&state, sync_id, None, wait).await?;
        let target = AuditTarget(format!("/syncs/{sync_id}"));
        response.extensions_mut().insert(target);
        return Ok(response);
    }
    let catalog = catalog_id_for(&target.host, target.port, &target.dbname);
    authorize::reach(&caller, catalog)?;
    let schemas = parse_schema_filter(body.get("schemas"))?;
    let request = EnqueueRequest {
        target,
        secrets,
        schemas,
        max_attempts: state.max_attempts,
    };
    let mut response = enqueue_and_answer(&state, request, wait).await?;
    let target = AuditTarget(format!("/catalogs/{catalog}"));
    response.extensions_mut().insert(target);
    Ok(response)
}

/// Refuses a sync of a catalog the caller may not reach; a caller limited to no catalogs
/// needs no lookup.
pub(super) async fn reach_sync(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<(), ApiError> {
    if caller.catalogs().is_none() {
        return Ok(());
    }
    let sync = syncs::get(&state.pool, id.into())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no sync {id}")))?;
    match sync.catalog_id {
        Some(catalog) => authorize::reach(caller, catalog),
        None => server_syncs::reach_server(caller),
    }
}

/// Enqueues `request` and answers 202 with the sync (a new one, or the catalog's active one);
/// with `wait`, waits for it to end first.
async fn enqueue_and_answer(
    state: &AppState,
    request: EnqueueRequest,
    wait: Option<std::time::Duration>,
) -> Result<Response, ApiError> {
    let queued = state.enqueuer.enqueue(request).await?;
    let enqueued = Enqueued {
        catalog_id: Some(queued.catalog_id),
        sync_id: queued.sync_id,
        status: queued.status,
    };
    if queued.created {
        metrics::counter!("pgcs_syncs_enqueued_total").increment(1);
        tracing::info!(sync_id = %queued.sync_id, catalog_id = %queued.catalog_id, "sync queued");
    }
    answer_enqueued(state, enqueued, wait).await
}

/// Answers 202 with the sync, or with `wait`, waits for it to end first.
async fn answer_enqueued(
    state: &AppState,
    enqueued: Enqueued,
    wait: Option<std::time::Duration>,
) -> Result<Response, ApiError> {
    let location = format!("/syncs/{}", enqueued.sync_id);
    if let Some(wait) = wait {
        return waited_response(state, enqueued.sync_id, wait, location).await;
    }
    Ok((
        StatusCode::ACCEPTED,
        [(LOCATION, location)],
        Json(SyncAccepted {
            catalog_id: enqueued.catalog_id,
            sync_id: enqueued.sync_id,
            status: enqueued.status,
        }),
    )
        .into_response())
}

/// [`answer_enqueued`] for a sync just queued, of `catalog` (none for a whole-server sync).
async fn answer_new(
    state: &AppState,
    sync_id: Uuid,
    catalog: Option<Uuid>,
    wait: Option<std::time::Duration>,
) -> Result<Response, ApiError> {
    let enqueued = Enqueued {
        catalog_id: catalog,
        sync_id,
        status: SyncStatus::Queued,
    };
    answer_enqueued(state, enqueued, wait).await
}

/// A sync that answers a request.
struct Enqueued {
    catalog_id: Option<Uuid>,
    sync_id: Uuid,
    status: SyncStatus,
}

/// A sync as clients see it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SyncView {
    pub sync_id: Uuid,
    /// Null for a whole-server sync.
    pub catalog_id: Option<Uuid>,
    pub status: SyncStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    pub source_kind: Option<String>,
    pub enqueued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub stats: Option<Value>,
    /// How far a running sync is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<ProgressReport>,
    /// The schema include/exclude list, when the request gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schemas: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptRow>>,
    /// A whole-server sync's database selection (`{}`: every database).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub databases: Option<Value>,
    /// A whole-server sync's databases, in name order (none until discovery found them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<ChildView>>,
    /// How a whole-server sync's databases stand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<ServerSummary>,
}

impl From<SyncRow> for SyncView {
    fn from(s: SyncRow) -> Self {
        let progress = s.current_progress();
        Self {
            sync_id: s.id,
            catalog_id: s.catalog_id,
            status: s.status,
            attempts: s.attempts,
            max_attempts: s.max_attempts,
            last_error: s.last_error,
            source_kind: s.source_kind,
            enqueued_at: s.enqueued_at,
            started_at: s.started_at,
            finished_at: s.finished_at,
            stats: s.stats,
            progress,
            schemas: s.schema_filter,
            attempt_log: None,
            databases: s.databases,
            children: None,
            summary: None,
        }
    }
}

/// The answer to `POST /sync?wait=`: the original service's status codes, now meaningful.
async fn waited_response(
    state: &AppState,
    sync_id: Uuid,
    wait: std::time::Duration,
    location: String,
) -> Result<Response, ApiError> {
    let sync = state
        .watcher
        .wait(&state.pool, sync_id, wait)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no sync {sync_id}")))?;
    state.cache.saw_sync(&sync);
    let (status, error) = match sync.status {
        SyncStatus::Succeeded => (StatusCode::OK, None),
        SyncStatus::Cancelled => (
            StatusCode::CONFLICT,
            Some(("cancelled", "the sync was cancelled".to_owned())),
        ),
        SyncStatus::Failed => (
            StatusCode::BAD_GATEWAY,
            Some((
                "source_failed",
                sync.last_error
                    .clone()
                    .unwrap_or_else(|| "the sync failed".into()),
            )),
        ),
        _ => (
            StatusCode::GATEWAY_TIMEOUT,
            Some((
                "wait_timeout",
                format!("the sync is still {}; poll {location}", sync.status),
            )),
        ),
    };
    let mut view = SyncView::from(sync);
    server_syncs::add_children(state, &mut view).await?;
    let headers = [(LOCATION, location)];
    Ok(match error {
        None => (status, headers, Json(view)).into_response(),
        Some((code, message)) => {
            let error = ErrorDetail::new(code, message);
            (status, headers, Json(WaitOutcome { error, sync: view })).into_response()
        }
    })
}

/// The sync's status, with every attempt (worker, start, end, error). With `?wait=30s` it
/// answers as soon as the sync has ended, or when the wait is over.
#[utoipa::path(
    get, path = "/syncs/{id}", tag = "syncs",
    params(SyncId, WaitParam),
    responses((status = 200, description = "The sync", body = SyncView), ReadErrors)
)]
async fn get_sync(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Json<SyncView>, ApiError> {
    query.only(&["wait"])?;
    let wait = query.get("wait").map(watch::parse_wait).transpose()?;
    let id = parse_id("sync_id", &id)?;
    reach_sync(&state, &caller, id).await?;
    let sync = match wait {
        Some(wait) => state.watcher.wait(&state.pool, id, wait).await?,
        None => syncs::get(&state.pool, id.into()).await?,
    }
    .ok_or_else(|| ApiError::NotFound(format!("no sync {id}")))?;
    state.cache.saw_sync(&sync);
    let mut view = SyncView::from(sync);
    view.attempt_log = Some(syncs::attempts(&state.pool, id.into()).await?);
    server_syncs::add_children(&state, &mut view).await?;
    Ok(Json(view))
}

/// Cancels a queued or running sync: 200 with the sync, now `cancelled`; 409 when it had
/// already ended. A running sync stops at its next step and writes nothing. Cancelling a
/// whole-server sync cancels those of its databases' syncs that have not ended.
#[utoipa::path(
    delete, path = "/syncs/{id}", tag = "syncs",
    security(("bearer" = ["sync"])),
    params(SyncId),
    responses(
        (status = 200, description = "Cancelled", body = SyncView),
        (status = 409, description = "The sync had already ended", body = ErrorBody),
        ReadErrors,
    )
)]
async fn cancel_sync(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<SyncView>, ApiError> {
    let id = parse_id("sync_id", &id)?;
    Ok(Json(SyncView::from(cancel(&state, &caller, id).await?)))
}

/// Cancels a queued or running sync (the API's `DELETE`, the dashboard's button).
pub(crate) async fn cancel(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<SyncRow, ApiError> {
    reach_sync(state, caller, id).await?;
    let mut tx = state.pool.begin().await?;
    // A parent's children are locked before the parent, the order in which a child's end
    // locks them.
    let children = lock_active_children(&mut tx, id.into()).await?;
    let outcome = syncs::cancel(&mut tx, id.into()).await?;
    if let syncs::Cancelled::Done(_) = outcome {
        for child in &children {
            syncs::cancel(&mut tx, (*child).into()).await?;
        }
    }
    tx.commit().await?;
    match outcome {
        syncs::Cancelled::Done(sync) => {
            metrics::counter!("pgcs_syncs_finished_total", "outcome" => "cancelled").increment(1);
            tracing::info!(sync_id = %id, "sync cancelled");
            Ok(*sync)
        }
        syncs::Cancelled::AlreadyEnded(status) => Err(ApiError::Conflict(format!(
            "the sync already ended: {status}"
        ))),
        syncs::Cancelled::Missing => Err(ApiError::NotFound(format!("no sync {id}"))),
    }
}

/// Re-enqueues a failed or cancelled sync as a new sync of the same catalog, with the same
/// (still sealed) credentials and schema filter; the old sync keeps its history. Answers like
/// `POST /sync` (also with `?wait=`).
#[utoipa::path(
    post, path = "/syncs/{id}/retry", tag = "syncs",
    security(("bearer" = ["sync"])),
    params(SyncId, WaitParam),
    responses(
        (status = 202, description = "The new sync, or the catalog's active one", body = SyncAccepted,
         headers(("location" = String, description = "The sync's status URL"))),
        (status = 410, description = "The sync can no longer be retried (credentials past the retention age, or sealed under another key)", body = ErrorBody),
        WaitResponses, ReadErrors,
    )
)]
async fn retry_sync(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["wait"])?;
    let wait = query.get("wait").map(watch::parse_wait).transpose()?;
    let id = parse_id("sync_id", &id)?;
    if let Some(request) = server_syncs::retry_request(&state, &caller, id).await? {
        let sync_id = server_syncs::enqueue_again(&state, request).await?;
        return answer_new(&state, sync_id, None, wait).await;
    }
    let request = retry_request(&state, &caller, id).await?;
    enqueue_and_answer(&state, request, wait).await
}

/// The request that retries the failed or cancelled sync `id` with its own credentials.
pub(crate) async fn retry_request(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<EnqueueRequest, ApiError> {
    let old = syncs::retry_source(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no sync {id}")))?;
    let catalog = old.catalog_id.ok_or_else(|| {
        ApiError::Conflict("a whole-server sync is retried with POST /syncs/{id}/retry".into())
    })?;
    authorize::reach(caller, catalog)?;
    if !matches!(old.status, SyncStatus::Failed | SyncStatus::Cancelled) {
        return Err(ApiError::Conflict(format!(
            "only a failed or cancelled sync can be retried; this one is {}",
            old.status
        )));
    }
    tracing::info!(sync_id = %id, catalog_id = %catalog, "retrying sync");
    request_again(state, id.as_bytes(), old.credentials, old.schema_filter)
}

/// A new sync with sealed credentials (sealed with `sealed_with`: a sync's id, or a schedule's
/// catalog id) and a stored schema filter.
fn request_again(
    state: &AppState,
    sealed_with: &[u8],
    credentials: Option<Value>,
    schema_filter: Option<Value>,
) -> Result<EnqueueRequest, ApiError> {
    let gone = |why: &str| {
        ApiError::Gone(format!(
            "this sync can no longer be run again: {why}; start a new one with POST /sync"
        ))
    };
    let credentials: SealedCredentials = credentials
        .ok_or_else(|| gone("its credentials were deleted when it reached the retention age"))
        .and_then(|c| {
            serde_json::from_value(c).map_err(|_| gone("its credentials are unreadable"))
        })?;
    let secrets = credentials
        .open(&state.key, sealed_with)
        .map_err(|_| gone("its credentials were sealed under another CREDENTIALS_KEY"))?;
    state.recheck_source(&credentials.source.host)?;
    let schemas = match schema_filter {
        Some(filter) => serde_json::from_value(filter).map_err(|e| ApiError::Internal(e.into()))?,
        None => SchemaFilter::default(),
    };
    Ok(EnqueueRequest {
        target: credentials.source,
        secrets,
        schemas,
        max_attempts: state.max_attempts,
    })
}

/// Syncs the catalog again with the credentials and schema filter its schedule keeps, or else
/// those a failed or cancelled sync of it still holds. Answers like `POST /sync` (also with
/// `?wait=`).
#[utoipa::path(
    post, path = "/catalogs/{id}/sync", tag = "syncs",
    security(("bearer" = ["sync"])),
    params(CatalogIdParam, WaitParam),
    responses(
        (status = 202, description = "The new sync, or the catalog's active one", body = SyncAccepted,
         headers(("location" = String, description = "The sync's status URL"))),
        (status = 410, description = "No sync of the catalog still has its credentials", body = ErrorBody),
        WaitResponses, ReadErrors,
    )
)]
async fn resync_catalog(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["wait"])?;
    let wait = query.get("wait").map(watch::parse_wait).transpose()?;
    let id = parse_id("catalog_id", &id)?;
    let request = resync_request(&state, &caller, id).await?;
    enqueue_and_answer(&state, request, wait).await
}

/// The request that syncs `catalog` again (the API's `POST /catalogs/{id}/sync`, the
/// dashboard's button).
pub(crate) async fn resync_request(
    state: &AppState,
    caller: &Caller,
    catalog: Uuid,
) -> Result<EnqueueRequest, ApiError> {
    authorize::reach(caller, catalog)?;
    if !crate::store::catalogs::exists(&state.pool, catalog).await? {
        return Err(ApiError::NotFound(format!("no catalog {catalog}")));
    }
    if let Some((credentials, filter)) = schedules::sealed(&state.pool, catalog).await? {
        tracing::info!(catalog_id = %catalog, "syncing the catalog again, as its schedule");
        return request_again(state, catalog.as_bytes(), Some(credentials), filter);
    }
    let (id, latest) = syncs::latest_with_credentials(&state.pool, catalog.into())
        .await?
        .ok_or_else(|| {
            ApiError::Gone(
                "the service keeps no credentials for this catalog: a schedule keeps them, and a \
                 sync only until it succeeds; start a sync with POST /sync"
                    .into(),
            )
        })?;
    tracing::info!(catalog_id = %catalog, from_sync = %id, "syncing the catalog again");
    request_again(
        state,
        id.as_bytes(),
        latest.credentials,
        latest.schema_filter,
    )
}
