//! `POST /sync` (validate and enqueue) and `GET /syncs/{id}` (the status clients poll).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::authorize::{self, AuditTarget};
use super::extract::{JsonObject, PathParams, QueryParams, only_fields, parse_id};
use super::openapi::{
    BodyErrors, CatalogId as CatalogIdParam, ReadErrors, SyncId, WaitOutcome, WaitParam,
    WaitResponses,
};
use super::watch;
use crate::access::Caller;
use crate::catalog::{MAX_NAME_BYTES, SchemaFilter};
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::queue::{EnqueueRequest, SealedCredentials};
use crate::source::SourceTarget;
use crate::store::catalogs::catalog_id_for;
use crate::store::schedules;
use crate::store::syncs::{self, AttemptRow, ProgressReport, SyncRow, SyncStatus};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_sync))
        .routes(routes!(get_sync, cancel_sync))
        .routes(routes!(retry_sync))
        .routes(routes!(resync_catalog))
}

/// The body of `POST /sync`: how to reach the source database. Unknown fields are refused.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // the handler reads the body field by field, to name the one at fault
pub(super) struct SyncRequest {
    /// Hostname or IP address (checked against `SOURCE_ALLOWLIST`).
    #[schema(min_length = 1, max_length = 253)]
    host: String,
    #[schema(minimum = 1, maximum = 65535)]
    port: u16,
    #[schema(min_length = 1, max_length = 128)]
    user: String,
    /// Sealed at once; never stored in clear nor returned.
    #[schema(max_length = 1024)]
    password: Option<String>,
    #[schema(min_length = 1, max_length = 1024)]
    dbname: String,
    /// `disable`, `allow`, `prefer`, `require`, `verify-ca` or `verify-full`.
    sslmode: Option<String>,
    /// Which schemas to read: `{"include": [...], "exclude": [...]}`; all user schemas by default.
    schemas: Option<SchemaFilter>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct SyncAccepted {
    catalog_id: Uuid,
    sync_id: Uuid,
    status: SyncStatus,
}

/// Validates the source's connection details and enqueues a sync; never touches the source.
/// With `?wait=30s` it then waits for the sync to end: 200 when it succeeded, 502 when it
/// failed (the source's error), 504 when the wait ended first.
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
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    query.only(&["wait"])?;
    let wait = query.get("wait").map(watch::parse_wait).transpose()?;
    let (target, password) = parse_sync_request(&body)?;
    state
        .source_policy
        .check_host(&target.host)
        .map_err(|message| ApiError::validation("host", message))?;
    let catalog = catalog_id_for(&target.host, target.port, &target.dbname);
    authorize::reach(&caller, catalog)?;
    let schemas = parse_schema_filter(body.get("schemas"))?;
    let request = EnqueueRequest {
        target,
        password,
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
    authorize::reach(caller, sync.catalog_id)
}

/// Enqueues `request` and answers 202 with the sync (a new one, or the catalog's active one);
/// with `wait`, waits for it to end first.
async fn enqueue_and_answer(
    state: &AppState,
    request: EnqueueRequest,
    wait: Option<std::time::Duration>,
) -> Result<Response, ApiError> {
    let enqueued = state.enqueuer.enqueue(request).await?;
    if enqueued.created {
        metrics::counter!("pgcs_syncs_enqueued_total").increment(1);
        tracing::info!(sync_id = %enqueued.sync_id, catalog_id = %enqueued.catalog_id, "sync queued");
    }
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

const FIELDS: [&str; 7] = [
    "host", "port", "user", "password", "dbname", "sslmode", "schemas",
];
const SSL_MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// Checks every field of a `POST /sync` body, naming the first one that is wrong.
pub(super) fn parse_sync_request(
    body: &Map<String, Value>,
) -> Result<(SourceTarget, SecretString), ApiError> {
    only_fields(body, &FIELDS, "")?;
    let host = required_text(body, "host", 253)?;
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "/?#@".contains(c))
    {
        return Err(ApiError::validation(
            "host",
            "must be a hostname or an IP address",
        ));
    }
    let port = match body.get("port") {
        None | Some(Value::Null) => return Err(ApiError::validation("port", "is required")),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|p| (1..=65535).contains(p))
            .ok_or_else(|| ApiError::validation("port", "must be an integer from 1 to 65535"))?
            as u16,
        Some(_) => {
            return Err(ApiError::validation(
                "port",
                "must be an integer from 1 to 65535",
            ));
        }
    };
    let user = required_text(body, "user", 128)?;
    let dbname = required_text(body, "dbname", 1024)?;
    let password = match body.get("password") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(p)) if p.len() > 1024 => {
            return Err(ApiError::validation(
                "password",
                "must be at most 1024 bytes",
            ));
        }
        Some(Value::String(p)) if p.contains('\0') => {
            return Err(ApiError::validation(
                "password",
                "must not contain NUL bytes",
            ));
        }
        Some(Value::String(p)) => p.clone(),
        Some(_) => return Err(ApiError::validation("password", "must be a string")),
    };
    let sslmode = match body.get("sslmode") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) if SSL_MODES.contains(&m.as_str()) => Some(m.clone()),
        Some(_) => {
            return Err(ApiError::validation(
                "sslmode",
                format!("must be one of {}", SSL_MODES.join(", ")),
            ));
        }
    };
    Ok((
        SourceTarget {
            host: host.to_ascii_lowercase(),
            port,
            user,
            dbname,
            sslmode,
        },
        SecretString::from(password),
    ))
}

/// The optional `"schemas": {"include": [...], "exclude": [...]}` of a sync request.
pub(super) fn parse_schema_filter(value: Option<&Value>) -> Result<SchemaFilter, ApiError> {
    let object = match value {
        None | Some(Value::Null) => return Ok(SchemaFilter::default()),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(ApiError::validation(
                "schemas",
                "must be an object with \"include\" and/or \"exclude\" lists",
            ));
        }
    };
    let list = |key: &str| -> Result<Option<Vec<String>>, ApiError> {
        let field = format!("schemas.{key}");
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) if items.len() <= 1000 => items
                .iter()
                .map(|item| match item {
                    Value::String(s)
                        if !s.is_empty() && s.len() <= MAX_NAME_BYTES && !s.contains('\0') =>
                    {
                        Ok(s.clone())
                    }
                    _ => Err(ApiError::validation(
                        &field,
                        "must hold schema names (non-empty strings)",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::validation(
                &field,
                "must be a list of at most 1000 schema names",
            )),
        }
    };
    if let Some(unknown) = object.keys().find(|k| *k != "include" && *k != "exclude") {
        return Err(ApiError::validation(
            format!("schemas.{unknown}"),
            "unknown field; expected include or exclude",
        ));
    }
    Ok(SchemaFilter {
        include: list("include")?,
        exclude: list("exclude")?.unwrap_or_default(),
    })
}

/// A non-blank string field without NUL bytes, at most `max` bytes long.
fn required_text(body: &Map<String, Value>, field: &str, max: usize) -> Result<String, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Err(ApiError::validation(field, "is required")),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(ApiError::validation(field, "must not be blank"))
        }
        Some(Value::String(s)) if s.len() > max => Err(ApiError::validation(
            field,
            format!("must be at most {max} bytes"),
        )),
        Some(Value::String(s)) if s.contains('\0') => {
            Err(ApiError::validation(field, "must not contain NUL bytes"))
        }
        Some(Value::String(s)) => Ok(s.trim().to_owned()),
        Some(_) => Err(ApiError::validation(field, "must be a string")),
    }
}

/// A sync as clients see it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SyncView {
    pub sync_id: Uuid,
    pub catalog_id: Uuid,
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
    let view = SyncView::from(sync);
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
    Ok(Json(view))
}

/// Cancels a queued or running sync: 200 with the sync, now `cancelled`; 409 when it had
/// already ended. A running sync stops at its next step and writes nothing.
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
    let outcome = syncs::cancel(&mut tx, id.into()).await?;
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
    authorize::reach(caller, old.catalog_id)?;
    if !matches!(old.status, SyncStatus::Failed | SyncStatus::Cancelled) {
        return Err(ApiError::Conflict(format!(
            "only a failed or cancelled sync can be retried; this one is {}",
            old.status
        )));
    }
    tracing::info!(sync_id = %id, catalog_id = %old.catalog_id, "retrying sync");
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
    let password = state
        .key
        .open(&credentials.sealed_password, sealed_with)
        .map_err(|_| gone("its credentials were sealed under another CREDENTIALS_KEY"))?;
    state.recheck_source(&credentials.source.host)?;
    let schemas = match schema_filter {
        Some(filter) => serde_json::from_value(filter).map_err(|e| ApiError::Internal(e.into()))?,
        None => SchemaFilter::default(),
    };
    Ok(EnqueueRequest {
        target: credentials.source,
        password,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<(SourceTarget, SecretString), ApiError> {
        parse_sync_request(v.as_object().unwrap())
    }

    fn field_of(v: Value) -> String {
        match parse(v) {
            Err(ApiError::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {:?}", other.map(|t| t.0)),
        }
    }

    #[test]
    fn each_rule_names_its_field() {
        let ok = json!({"host":"DB.example","port":5432,"user":"u","password":"p","dbname":"d"});
        let (target, _) = parse(ok.clone()).unwrap();
        assert_eq!(target.host, "db.example");
        assert_eq!(target.port, 5432);

        let with = |k: &str, v: Value| {
            let mut o = ok.clone();
            o[k] = v;
            o
        };
        assert_eq!(field_of(with("host", json!("  "))), "host");
        assert_eq!(field_of(with("host", json!("a b"))), "host");
        assert_eq!(field_of(with("port", json!(0))), "port");
        assert_eq!(field_of(with("port", json!(65536))), "port");
        assert_eq!(field_of(with("port", json!("5432"))), "port");
        assert_eq!(field_of(with("port", json!(54.5))), "port");
        assert_eq!(field_of(with("user", json!(""))), "user");
        assert_eq!(field_of(with("dbname", json!(null))), "dbname");
        assert_eq!(field_of(with("password", json!(5))), "password");
        assert_eq!(field_of(with("sslmode", json!("sometimes"))), "sslmode");
        assert_eq!(field_of(with("extra", json!(1))), "extra");
        let mut missing = ok.clone();
        missing.as_object_mut().unwrap().remove("host");
        assert_eq!(field_of(missing), "host");
    }
}
