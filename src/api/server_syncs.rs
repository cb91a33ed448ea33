//! Whole-server syncs in the API: queueing a parent (`POST /sync` with `dbname` `*` or a
//! `databases` selection), showing its databases, and retrying it. The API never connects to
//! the server: a worker's discovery lists its databases and queues their syncs.

use serde::Serialize;
use uuid::Uuid;

use super::AppState;
use super::syncs::SyncView;
use crate::access::Caller;
use crate::catalog::{DatabaseSelection, SchemaFilter};
use crate::error::ApiError;
use crate::queue::{SealedCredentials, ServerRequest, enqueue_server};
use crate::source::{SourceSecrets, SourceTarget};
use crate::store::server_syncs::{self, ChildRow, ServerSummary};
use crate::store::syncs::{self, SyncStatus};

/// Where a database of a whole-server sync is: its sync's status, or `missing` when the
/// selection named it and the server did not offer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChildStatus {
    Queued,
    Running,
    Retrying,
    Succeeded,
    Failed,
    Cancelled,
    Missing,
}

impl From<Option<SyncStatus>> for ChildStatus {
    fn from(status: Option<SyncStatus>) -> Self {
        match status {
            None => Self::Missing,
            Some(SyncStatus::Queued) => Self::Queued,
            Some(SyncStatus::Running) => Self::Running,
            Some(SyncStatus::Retrying) => Self::Retrying,
            Some(SyncStatus::Succeeded) => Self::Succeeded,
            Some(SyncStatus::Failed) => Self::Failed,
            Some(SyncStatus::Cancelled) => Self::Cancelled,
        }
    }
}

/// One database of a whole-server sync.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChildView {
    pub dbname: String,
    /// The database's sync: the one this parent queued, or the catalog's sync that was already
    /// active. Absent for a missing database.
    pub sync_id: Option<Uuid>,
    /// The database's catalog (the id a single-database sync gives it).
    pub catalog_id: Option<Uuid>,
    pub status: ChildStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl From<ChildRow> for ChildView {
    fn from(c: ChildRow) -> Self {
        Self {
            dbname: c.dbname,
            sync_id: c.sync_id,
            catalog_id: c.catalog_id,
            status: c.status.into(),
            last_error: c.last_error,
        }
    }
}

/// Refuses a caller limited to catalogs: a whole-server sync reaches every catalog of its server.
pub(super) fn reach_server(caller: &Caller) -> Result<(), ApiError> {
    match caller.catalogs() {
        None => Ok(()),
        Some(_) => Err(ApiError::ServerNotAllowed),
    }
}

/// Queues a whole-server sync; answers the parent's id.
pub(super) async fn create(
    state: &AppState,
    caller: &Caller,
    target: SourceTarget,
    secrets: SourceSecrets,
    databases: DatabaseSelection,
    schemas: SchemaFilter,
) -> Result<Uuid, ApiError> {
    reach_server(caller)?;
    let request = ServerRequest {
        target,
        secrets,
        databases,
        schemas,
        max_attempts: state.max_attempts,
    };
    let sync_id = enqueue_server(&state.pool, &state.queue, &state.key, request).await?;
    metrics::counter!("pgcs_syncs_enqueued_total").increment(1);
    tracing::info!(%sync_id, "whole-server sync queued");
    Ok(sync_id)
}

/// Adds a parent's databases and their summary to its view; a catalog's sync is left as it is.
pub(super) async fn add_children(state: &AppState, view: &mut SyncView) -> Result<(), ApiError> {
    if view.databases.is_none() {
        return Ok(());
    }
    let children = server_syncs::children(&state.pool, view.sync_id.into()).await?;
    view.summary = Some(ServerSummary::of(&children));
    view.children = Some(children.into_iter().map(ChildView::from).collect());
    Ok(())
}

/// The request that runs a failed or cancelled whole-server sync again, discovery included,
/// with its own credentials and selection; `None` when `id` is not a whole-server sync.
pub(super) async fn retry_request(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<Option<ServerRequest>, ApiError> {
    let Some(old) = syncs::retry_source(&state.pool, id).await? else {
        return Ok(None);
    };
    let Some(databases) = old.databases else {
        return Ok(None);
    };
    reach_server(caller)?;
    if !matches!(old.status, SyncStatus::Failed | SyncStatus::Cancelled) {
        return Err(ApiError::Conflict(format!(
            "only a failed or cancelled sync can be retried; this one is {}",
            old.status
        )));
    }
    let gone = |why: &str| {
        ApiError::Gone(format!(
            "this sync can no longer be run again: {why}; start a new one with POST /sync"
        ))
    };
    let credentials: SealedCredentials = old
        .credentials
        .ok_or_else(|| gone("its credentials were deleted when it reached the retention age"))
        .and_then(|c| {
            serde_json::from_value(c).map_err(|_| gone("its credentials are unreadable"))
        })?;
    let secrets = credentials
        .open(&state.key, id.as_bytes())
        .map_err(|_| gone("its credentials were sealed under another CREDENTIALS_KEY"))?;
    state.recheck_source(&credentials.source.host)?;
    let unreadable = |e: serde_json::Error| ApiError::Internal(e.into());
    let schemas = match old.schema_filter {
        Some(filter) => serde_json::from_value(filter).map_err(unreadable)?,
        None => SchemaFilter::default(),
    };
    tracing::info!(sync_id = %id, "retrying whole-server sync");
    Ok(Some(ServerRequest {
        target: credentials.source,
        secrets,
        databases: serde_json::from_value(databases).map_err(unreadable)?,
        schemas,
        max_attempts: state.max_attempts,
    }))
}

/// Queues a retried whole-server sync; answers the new parent's id.
pub(super) async fn enqueue_again(
    state: &AppState,
    request: ServerRequest,
) -> Result<Uuid, ApiError> {
    let sync_id = enqueue_server(&state.pool, &state.queue, &state.key, request).await?;
    metrics::counter!("pgcs_syncs_enqueued_total").increment(1);
    Ok(sync_id)
}
