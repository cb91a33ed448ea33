//! Scheduled re-syncs: `PUT /catalogs/{id}/schedule` makes the workers re-sync the catalog
//! periodically; `GET` shows the schedule, `DELETE` stops it and deletes its credentials.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::extract::{JsonObject, PathParams, only_fields, parse_id};
use super::openapi::{BodyErrors, CatalogId, ReadErrors};
use super::sync_request::{parse_schema_filter, parse_sync_request};
use crate::error::{ApiError, ErrorBody};
use crate::period::Period;
use crate::queue::SealedCredentials;
use crate::store::catalogs;
use crate::store::schedules::{self, ScheduleRow};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(
        get_schedule,
        put_schedule,
        patch_schedule,
        delete_schedule
    ))
}

/// The body of `PUT /catalogs/{id}/schedule`: `every` or `cron`, and the credentials. The
/// source is the catalog's.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // the handler reads the body field by field, to name the one at fault
struct ScheduleRequest {
    /// The period: `90s`, `15m`, `1h`, `1d`; from 1 s to 366 days.
    every: Option<String>,
    /// A cron pattern in UTC: 5 fields (`0 3 * * *`, daily at 03:00), or 6 with seconds first.
    cron: Option<String>,
    #[schema(min_length = 1, max_length = 128)]
    user: String,
    /// Kept sealed until the schedule is deleted.
    #[schema(max_length = 1024)]
    password: Option<String>,
    /// As in `POST /sync`.
    sslmode: Option<String>,
    /// As in `POST /sync`; kept sealed until the schedule is deleted.
    #[schema(max_length = 262144)]
    sslrootcert: Option<String>,
    /// As in `POST /sync`; kept sealed until the schedule is deleted.
    #[schema(max_length = 65536)]
    sslcert: Option<String>,
    /// As in `POST /sync`; kept sealed until the schedule is deleted.
    #[schema(max_length = 16384)]
    sslkey: Option<String>,
    schemas: Option<crate::catalog::SchemaFilter>,
}

const FIELDS: [&str; 9] = [
    "every",
    "cron",
    "user",
    "password",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "schemas",
];
const SHORTEST: Duration = Duration::from_secs(1);
const LONGEST: Duration = Duration::from_secs(366 * 86_400);

#[derive(Serialize, utoipa::ToSchema)]
struct ScheduleView {
    catalog_id: Uuid,
    /// The period, as `PUT` accepts it (`90s`, `15m`, `1h`, `1d`), for a periodic schedule.
    every: Option<String>,
    /// The cron pattern, for a cron schedule.
    cron: Option<String>,
    next_run_at: DateTime<Utc>,
    last_run_at: Option<DateTime<Utc>>,
    /// The sync the schedule started last.
    last_sync_id: Option<Uuid>,
    /// A paused schedule starts no re-sync until resumed.
    paused: bool,
    paused_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ScheduleRow> for ScheduleView {
    fn from(s: ScheduleRow) -> Self {
        Self {
            catalog_id: s.catalog_id,
            every: s
                .every_seconds
                .map(|secs| crate::duration::format(Duration::from_secs(secs.unsigned_abs()))),
            cron: s.cron,
            next_run_at: s.next_run_at,
            last_run_at: s.last_run_at,
            last_sync_id: s.last_sync_id,
            paused: s.paused_at.is_some(),
            paused_at: s.paused_at,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// Sets the catalog's schedule: `{"every": "1h", "user": ..., "password": ...}` (plus the
/// optional `sslmode`, TLS material and `schemas` of `POST /sync`). The source is the catalog's; the
/// credentials are kept sealed until the schedule is deleted. The first re-sync is one period
/// from now.
#[utoipa::path(
    put, path = "/catalogs/{id}/schedule", tag = "catalogs",
    security(("bearer" = ["sync"])),
    params(CatalogId),
    request_body = ScheduleRequest,
    responses(
        (status = 200, description = "The schedule", body = ScheduleView),
        (status = 409, description = "The catalog's source is no longer allowed (SOURCE_ALLOWLIST)", body = ErrorBody),
        ReadErrors, BodyErrors,
    )
)]
async fn put_schedule(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<ScheduleView>, ApiError> {
    let id = parse_id("catalog_id", &id)?;
    only_fields(&body, &FIELDS, " (the source is the catalog's)")?;
    let period = parse_period(&body)?;
    let catalog = catalogs::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no catalog {id}")))?;
    let mut request: Map<String, Value> = body.clone();
    request.remove("every");
    request.remove("cron");
    request.insert("host".into(), catalog.host.into());
    request.insert("port".into(), catalog.port.into());
    request.insert("dbname".into(), catalog.dbname.into());
    let (source, secrets) = parse_sync_request(&request)?;
    state.recheck_source(&source.host)?;
    let schemas = parse_schema_filter(body.get("schemas"))?;
    let credentials = SealedCredentials::seal(&state.key, source, &secrets, id.as_bytes());
    let credentials =
        serde_json::to_value(&credentials).map_err(|e| ApiError::Internal(e.into()))?;
    let filter = (!schemas.is_empty()).then(|| serde_json::json!(schemas));
    let next_run_at = period
        .next_after(Utc::now())
        .ok_or_else(|| ApiError::validation("cron", "never matches"))?;
    let cron = period.cron_pattern();
    let schedule = schedules::put(
        &state.pool,
        id,
        period.every_seconds(),
        cron.as_deref(),
        next_run_at,
        &credentials,
        filter.as_ref(),
        state.max_attempts,
    )
    .await?;
    tracing::info!(catalog_id = %id, ?period, "schedule set");
    Ok(Json(schedule.into()))
}

/// `every` (a period) or `cron` (a pattern), exactly one of them.
fn parse_period(body: &Map<String, Value>) -> Result<Period, ApiError> {
    let present = |k: &str| body.get(k).is_some_and(|v| !v.is_null());
    match (present("every"), present("cron")) {
        (true, true) => Err(ApiError::validation(
            "cron",
            "give either every or cron, not both",
        )),
        (false, false) => Err(ApiError::validation(
            "every",
            "is required (or a cron pattern in cron)",
        )),
        (true, false) => {
            let invalid = || {
                ApiError::validation(
                    "every",
                    "must be a period like 90s, 15m, 1h or 1d, from 1s to 366d",
                )
            };
            let raw = body["every"].as_str().ok_or_else(invalid)?;
            crate::duration::parse(raw)
                .filter(|d| (SHORTEST..=LONGEST).contains(d) && d.subsec_nanos() == 0)
                .map(Period::Every)
                .ok_or_else(invalid)
        }
        (false, true) => {
            let raw = body["cron"]
                .as_str()
                .filter(|p| p.len() <= 256)
                .ok_or_else(|| ApiError::validation("cron", "must be a cron pattern"))?;
            Period::cron(raw)
                .map_err(|e| ApiError::validation("cron", format!("not a cron pattern: {e}")))
        }
    }
}

/// The catalog's schedule, with its last run and sync.
#[utoipa::path(
    get, path = "/catalogs/{id}/schedule", tag = "catalogs",
    params(CatalogId),
    responses((status = 200, description = "The schedule", body = ScheduleView), ReadErrors)
)]
async fn get_schedule(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    let id = parse_id("catalog_id", &id)?;
    match schedules::get(&state.pool, id).await? {
        Some(schedule) => Ok(Json(schedule.into())),
        None => Err(no_schedule(&state, id).await),
    }
}

/// The body of `PATCH /catalogs/{id}/schedule`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct SchedulePatch {
    /// True pauses the schedule, false resumes it (at once if its next run is past).
    paused: bool,
}

/// Pauses or resumes the catalog's schedule: `{"paused": true}` or `{"paused": false}`.
#[utoipa::path(
    patch, path = "/catalogs/{id}/schedule", tag = "catalogs",
    security(("bearer" = ["sync"])),
    params(CatalogId),
    request_body = SchedulePatch,
    responses((status = 200, description = "The schedule", body = ScheduleView), ReadErrors, BodyErrors)
)]
async fn patch_schedule(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<ScheduleView>, ApiError> {
    let id = parse_id("catalog_id", &id)?;
    only_fields(&body, &["paused"], "")?;
    let paused = body
        .get("paused")
        .and_then(Value::as_bool)
        .ok_or_else(|| ApiError::validation("paused", "must be true or false"))?;
    Ok(Json(set_paused(&state, id, paused).await?.into()))
}

/// Pauses or resumes the catalog's schedule (the API's `PATCH`, the dashboard's buttons).
pub(crate) async fn set_paused(
    state: &AppState,
    catalog: Uuid,
    paused: bool,
) -> Result<ScheduleRow, ApiError> {
    match schedules::set_paused(&state.pool, catalog, paused).await? {
        Some(schedule) => {
            tracing::info!(catalog_id = %catalog, paused, "schedule paused or resumed");
            Ok(schedule)
        }
        None => Err(no_schedule(state, catalog).await),
    }
}

/// Stops the re-syncs and deletes the credentials the schedule kept: 204.
#[utoipa::path(
    delete, path = "/catalogs/{id}/schedule", tag = "catalogs",
    security(("bearer" = ["sync"])),
    params(CatalogId),
    responses((status = 204, description = "No more re-syncs"), ReadErrors)
)]
async fn delete_schedule(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("catalog_id", &id)?;
    if schedules::delete(&state.pool, id).await? {
        tracing::info!(catalog_id = %id, "schedule deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_schedule(&state, id).await)
    }
}

/// The 404 for a missing schedule, saying whether the catalog itself is missing.
async fn no_schedule(state: &AppState, id: Uuid) -> ApiError {
    match catalogs::exists(&state.pool, id).await {
        Ok(true) => ApiError::NotFound(format!("catalog {id} has no schedule")),
        Ok(false) => ApiError::NotFound(format!("no catalog {id}")),
        Err(e) => e.into(),
    }
}
