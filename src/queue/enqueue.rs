//! Writing sync rows and their jobs, many requests per transaction.
//!
//! Every enqueue commit pays an fsync, and apalis's per-row NOTIFY trigger takes a cluster-wide
//! lock through it, which defeats group commit: one job per transaction tops out near 2,000
//! jobs/s. The [`Enqueuer`] coalesces concurrent requests instead: a few batchers each take
//! whatever requests are waiting (at least one, so an idle service adds no delay) and write them
//! in one statement; each request is answered only after its own rows are committed.
//!
//! A batcher keeps its connection between batches ([`HeldConnections`]): a connection taken
//! from the pool and given back pings the store both ways, which cost a fifth of each batch.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{PgConnection, PgPool};
use ulid::Ulid;
use uuid::Uuid;

use super::{JOB_MAX_DELIVERIES, SealedCredentials, SyncJob};
use crate::catalog::SchemaFilter;
use crate::coalesce::Coalescer;
use crate::crypto::CredentialsKey;
use crate::db::HeldConnections;
use crate::source::{SourceSecrets, SourceTarget};
use crate::store::syncs::SyncStatus;
use crate::store::{catalogs, jobs};
use crate::telemetry::TraceContext;

pub struct EnqueueRequest {
    pub target: SourceTarget,
    pub secrets: SourceSecrets,
    pub max_attempts: i32,
    pub schemas: SchemaFilter,
}

/// The sync that now represents a request: a new one, or the catalog's already active one.
#[derive(Debug, Clone)]
pub struct Enqueued {
    pub catalog_id: Uuid,
    pub sync_id: Uuid,
    pub status: SyncStatus,
    /// False when an active sync of the same catalog answered the request.
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error("encoding the job: {0}")]
    Encode(#[from] serde_json::Error),
    /// The batch this request was written with failed; the reason was logged once for all.
    #[error("the batch failed: {message}")]
    Batch { unavailable: bool, message: String },
    #[error("the enqueuer has stopped")]
    Stopped,
}

impl EnqueueError {
    /// Whether the store was unreachable (the client may retry).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Store(e) => crate::db::is_unavailable(e),
            Self::Batch { unavailable, .. } => *unavailable,
            _ => false,
        }
    }
}

/// Coalesces concurrent enqueue requests into shared transactions.
#[derive(Clone)]
pub struct Enqueuer {
    batches: Coalescer<(EnqueueRequest, Option<TraceContext>), Result<Enqueued, EnqueueError>>,
}

impl Enqueuer {
    /// Starts `batchers` tasks writing at most `max_batch` requests per transaction.
    pub fn start(
        pool: PgPool,
        queue: Arc<str>,
        key: CredentialsKey,
        batchers: usize,
        max_batch: usize,
    ) -> Self {
        let connections = Arc::new(HeldConnections::new(pool));
        let batches = Coalescer::start(batchers, max_batch, move |requests| {
            let (connections, queue, key) = (connections.clone(), queue.clone(), key.clone());
            async move { write_batch(&connections, &queue, &key, requests).await }
        });
        Self { batches }
    }

    /// Enqueues one request; answers once its rows are committed. A new sync's job carries
    /// the trace context of this call's span, so the worker's spans continue its trace.
    #[tracing::instrument(name = "enqueue", skip_all, fields(sync_id = tracing::field::Empty))]
    pub async fn enqueue(&self, request: EnqueueRequest) -> Result<Enqueued, EnqueueError> {
        let enqueued = self
            .batches
            .call((request, TraceContext::current()))
            .await
            .unwrap_or(Err(EnqueueError::Stopped));
        if let Ok(e) = &enqueued {
            tracing::Span::current().record("sync_id", tracing::field::display(e.sync_id));
        }
        enqueued
    }
}

/// One result per request: a failed batch fails each of its requests, logged once.
async fn write_batch(
    connections: &HeldConnections,
    queue: &str,
    key: &CredentialsKey,
    requests: Vec<(EnqueueRequest, Option<TraceContext>)>,
) -> Vec<Result<Enqueued, EnqueueError>> {
    let (requests, traces): (Vec<_>, Vec<_>) = requests.into_iter().unzip();
    let written = connections
        .run(async |conn| enqueue_traced_in(conn, queue, key, &requests, &traces).await)
        .await;
    match written {
        Ok(results) => results.into_iter().map(Ok).collect(),
        Err(e) => {
            let unavailable = e.is_unavailable();
            if !unavailable {
                tracing::error!(error = ?e, requests = requests.len(), "enqueueing a batch failed");
            }
            let message = e.to_string();
            requests
                .iter()
                .map(|_| {
                    Err(EnqueueError::Batch {
                        unavailable,
                        message: message.clone(),
                    })
                })
                .collect()
        }
    }
}

/// Enqueues every request: catalogs created if new, one queued sync and job per catalog
/// without an active sync, and for the others their active sync. Results come in request order.
///
/// Each round is one statement on one connection, committed on its own: a batch costs one
/// round trip and one commit (a catalog whose active sync finished during the round goes round
/// again, rarely).
pub async fn enqueue_all(
    pool: &PgPool,
    queue: &str,
    key: &CredentialsKey,
    requests: &[EnqueueRequest],
) -> Result<Vec<Enqueued>, EnqueueError> {
    let mut conn = pool.acquire().await?;
    enqueue_all_in(&mut conn, queue, key, requests).await
}

/// [`enqueue_all`] on the caller's connection, inside its transaction if it has one.
pub async fn enqueue_all_in(
    conn: &mut PgConnection,
    queue: &str,
    key: &CredentialsKey,
    requests: &[EnqueueRequest],
) -> Result<Vec<Enqueued>, EnqueueError> {
    enqueue_traced_in(conn, queue, key, requests, &[]).await
}

/// [`enqueue_all_in`], each new job carrying the trace context of its request (`traces` in
/// request order; a job without one starts a trace of its own).
async fn enqueue_traced_in(
    conn: &mut PgConnection,
    queue: &str,
    key: &CredentialsKey,
    requests: &[EnqueueRequest],
    traces: &[Option<TraceContext>],
) -> Result<Vec<Enqueued>, EnqueueError> {
    let catalog_of: Vec<Uuid> = requests
        .iter()
        .map(|r| catalogs::catalog_id_for(&r.target.host, r.target.port, &r.target.dbname))
        .collect();
    // One candidate request per catalog; rows go in catalog id order, so concurrent batches
    // lock the same keys in the same order and cannot deadlock.
    let mut first_request: HashMap<Uuid, usize> = HashMap::new();
    for (i, id) in catalog_of.iter().enumerate() {
        first_request.entry(*id).or_insert(i);
    }
    let mut pending: Vec<(Uuid, usize)> = first_request.into_iter().collect();
    pending.sort();

    let mut answer: HashMap<Uuid, (Uuid, SyncStatus, bool)> = HashMap::new();
    while !pending.is_empty() {
        let candidates: Vec<&EnqueueRequest> = pending.iter().map(|&(_, i)| &requests[i]).collect();
        let catalog_ids: Vec<Uuid> = pending.iter().map(|&(id, _)| id).collect();
        let sync_ids: Vec<Uuid> = pending.iter().map(|_| Uuid::now_v7()).collect();
        let mut credentials = Vec::with_capacity(pending.len());
        let mut jobs = Vec::with_capacity(pending.len());
        for ((r, &(catalog_id, request)), &sync_id) in
            candidates.iter().zip(&pending).zip(&sync_ids)
        {
            // Sealed with the sync id: sealed secrets open only for their own sync.
            let sealed =
                SealedCredentials::seal(key, r.target.clone(), &r.secrets, sync_id.as_bytes());
            credentials.push(serde_json::to_value(&sealed)?);
            jobs.push(serde_json::to_vec(&SyncJob {
                sync_id: sync_id.into(),
                catalog_id: catalog_id.into(),
                source: sealed.source,
                sealed_password: sealed.sealed_password,
                sealed_tls: sealed.sealed_tls,
                schemas: r.schemas.clone(),
                trace: traces.get(request).cloned().flatten(),
            })?);
        }
        let rows = jobs::EnqueueRows {
            catalog_ids: &catalog_ids,
            hosts: &candidates
                .iter()
                .map(|r| r.target.host.as_str())
                .collect::<Vec<_>>(),
            ports: &candidates
                .iter()
                .map(|r| i32::from(r.target.port))
                .collect::<Vec<_>>(),
            dbnames: &candidates
                .iter()
                .map(|r| r.target.dbname.as_str())
                .collect::<Vec<_>>(),
            sync_ids: &sync_ids,
            max_attempts: &candidates
                .iter()
                .map(|r| r.max_attempts)
                .collect::<Vec<_>>(),
            schema_filters: &candidates
                .iter()
                .map(|r| (!r.schemas.is_empty()).then(|| serde_json::json!(r.schemas)))
                .collect::<Vec<_>>(),
            credentials: &credentials,
            job_ids: &pending
                .iter()
                .map(|_| Ulid::generate().to_string())
                .collect::<Vec<_>>(),
            jobs: &jobs,
        };
        for row in jobs::enqueue(&mut *conn, queue, JOB_MAX_DELIVERIES as i32, &rows).await? {
            answer.insert(row.catalog_id, (row.sync_id, row.status, row.created));
        }
        pending.retain(|(id, _)| !answer.contains_key(id));
    }
    // The first request of a catalog created its sync; later ones in the batch share it.
    let mut seen = std::collections::HashSet::new();
    Ok(catalog_of
        .into_iter()
        .map(|catalog_id| {
            let (sync_id, status, created) = answer[&catalog_id];
            Enqueued {
                catalog_id,
                sync_id,
                status,
                created: created && seen.insert(catalog_id),
            }
        })
        .collect())
}
