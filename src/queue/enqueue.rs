//! Writing sync rows and their jobs, many requests per transaction.
//!
//! Every enqueue commit pays an fsync, and apalis's per-row NOTIFY trigger takes a cluster-wide
//! lock through it, which defeats group commit: one job per transaction tops out near 2,000
//! jobs/s. The [`Enqueuer`] coalesces concurrent requests instead: a few batchers each take
//! whatever requests are waiting (at least one, so an idle service adds no delay) and write them
//! in one transaction; each request is answered only after its own rows are committed.

use std::collections::HashMap;
use std::sync::Arc;

use apalis::prelude::TaskBuilder;
use secrecy::SecretString;
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use super::{JOB_MAX_DELIVERIES, SealedCredentials, SyncJob};
use crate::catalog::SchemaFilter;
use crate::crypto::CredentialsKey;
use crate::source::SourceTarget;
use crate::store::{Tx, catalogs, syncs};

pub struct EnqueueRequest {
    pub target: SourceTarget,
    pub password: SecretString,
    pub max_attempts: i32,
    pub schemas: SchemaFilter,
}

/// The sync that now represents a request: a new one, or the catalog's already active one.
#[derive(Debug, Clone)]
pub struct Enqueued {
    pub catalog_id: Uuid,
    pub sync_id: Uuid,
    pub status: String,
    /// False when an active sync of the same catalog answered the request.
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error("queueing the job: {0}")]
    Queue(#[from] apalis_postgres::Error),
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
            Self::Store(e) | Self::Queue(apalis_postgres::Error::Database(e)) => {
                crate::db::is_unavailable(e)
            }
            Self::Batch { unavailable, .. } => *unavailable,
            _ => false,
        }
    }
}

struct Pending {
    request: EnqueueRequest,
    reply: oneshot::Sender<Result<Enqueued, EnqueueError>>,
}

/// Coalesces concurrent enqueue requests into shared transactions.
#[derive(Clone)]
pub struct Enqueuer {
    sender: mpsc::Sender<Pending>,
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
        let (sender, receiver) = mpsc::channel::<Pending>(max_batch * batchers * 4);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..batchers.max(1) {
            let (pool, queue, key, receiver) =
                (pool.clone(), queue.clone(), key.clone(), receiver.clone());
            tokio::spawn(async move {
                loop {
                    let batch = {
                        let mut receiver = receiver.lock().await;
                        let Some(first) = receiver.recv().await else {
                            return;
                        };
                        let mut batch = vec![first];
                        while batch.len() < max_batch.max(1) {
                            match receiver.try_recv() {
                                Ok(next) => batch.push(next),
                                Err(_) => break,
                            }
                        }
                        batch
                    };
                    write_batch(&pool, &queue, &key, batch).await;
                }
            });
        }
        Self { sender }
    }

    /// Enqueues one request; answers once its rows are committed.
    pub async fn enqueue(&self, request: EnqueueRequest) -> Result<Enqueued, EnqueueError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Pending { request, reply })
            .await
            .map_err(|_| EnqueueError::Stopped)?;
        answer.await.map_err(|_| EnqueueError::Stopped)?
    }
}

async fn write_batch(pool: &PgPool, queue: &str, key: &CredentialsKey, batch: Vec<Pending>) {
    let (requests, replies): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|p| (p.request, p.reply)).unzip();
    match enqueue_all(pool, queue, key, &requests).await {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(Ok(result));
            }
        }
        Err(e) => {
            let unavailable = e.is_unavailable();
            if !unavailable {
                tracing::error!(error = ?e, requests = replies.len(), "enqueueing a batch failed");
            }
            for reply in replies {
                let _ = reply.send(Err(EnqueueError::Batch {
                    unavailable,
                    message: e.to_string(),
                }));
            }
        }
    }
}

/// Enqueues every request in one transaction: catalogs created if new, one queued sync and job
/// per catalog without an active sync, and for the others their active sync. Results come in
/// request order.
pub async fn enqueue_all(
    pool: &PgPool,
    queue: &str,
    key: &CredentialsKey,
    requests: &[EnqueueRequest],
) -> Result<Vec<Enqueued>, EnqueueError> {
    let mut tx = pool.begin().await?;
    let enqueued = enqueue_all_in(&mut tx, queue, key, requests).await?;
    tx.commit().await?;
    Ok(enqueued)
}

/// [`enqueue_all`] inside the caller's transaction (which commits it).
pub async fn enqueue_all_in(
    tx: &mut Tx<'_>,
    queue: &str,
    key: &CredentialsKey,
    requests: &[EnqueueRequest],
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
    let mut candidates: Vec<(Uuid, usize)> = first_request.into_iter().collect();
    candidates.sort();

    let hosts: Vec<&str> = candidates
        .iter()
        .map(|&(_, i)| requests[i].target.host.as_str())
        .collect();
    let ports: Vec<i32> = candidates
        .iter()
        .map(|&(_, i)| i32::from(requests[i].target.port))
        .collect();
    let dbnames: Vec<&str> = candidates
        .iter()
        .map(|&(_, i)| requests[i].target.dbname.as_str())
        .collect();
    let ids: Vec<Uuid> = candidates.iter().map(|&(id, _)| id).collect();
    catalogs::ensure_all(&mut **tx, &ids, &hosts, &ports, &dbnames).await?;

    let mut answer: HashMap<Uuid, (Uuid, String, bool)> = HashMap::new();
    let mut pending = candidates;
    // An active sync can finish between the insert that conflicts with it and the look-up
    // that should find it; such catalogs simply go round again.
    while !pending.is_empty() {
        let sync_ids: Vec<Uuid> = pending.iter().map(|_| Uuid::now_v7()).collect();
        let filters: Vec<Option<serde_json::Value>> = pending
            .iter()
            .map(|&(_, i)| {
                (!requests[i].schemas.is_empty()).then(|| serde_json::json!(requests[i].schemas))
            })
            .collect();
        let catalog_ids: Vec<Uuid> = pending.iter().map(|&(id, _)| id).collect();
        let attempts: Vec<i32> = pending
            .iter()
            .map(|&(_, i)| requests[i].max_attempts)
            .collect();
        // Sealed with the sync id: a sealed password opens only for its own sync.
        let sealed: Vec<SealedCredentials> = pending
            .iter()
            .zip(&sync_ids)
            .map(|(&(_, i), sync_id)| SealedCredentials {
                source: requests[i].target.clone(),
                sealed_password: key.seal(&requests[i].password, sync_id.as_bytes()),
            })
            .collect();
        let credentials = sealed
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()?;
        let inserted = syncs::insert_all_if_idle(
            tx,
            &sync_ids,
            &catalog_ids,
            &attempts,
            &filters,
            &credentials,
        )
        .await?;
        let inserted: HashMap<Uuid, Uuid> = inserted.into_iter().collect();

        let mut tasks = Vec::new();
        for ((&(catalog_id, i), &sync_id), sealed) in pending.iter().zip(&sync_ids).zip(sealed) {
            if inserted.get(&catalog_id) == Some(&sync_id) {
                let job = SyncJob {
                    sync_id,
                    catalog_id,
                    source: sealed.source,
                    sealed_password: sealed.sealed_password,
                    schemas: requests[i].schemas.clone(),
                };
                tasks.push(
                    TaskBuilder::new(serde_json::to_vec(&job)?)
                        .max_attempts(JOB_MAX_DELIVERIES)
                        .build(),
                );
                answer.insert(catalog_id, (sync_id, "queued".into(), true));
            }
        }
        if !tasks.is_empty() {
            apalis_postgres::queries::push_tasks(&mut **tx, queue, tasks).await?;
        }
        let busy: Vec<Uuid> = catalog_ids
            .iter()
            .copied()
            .filter(|id| !answer.contains_key(id))
            .collect();
        if !busy.is_empty() {
            for active in syncs::active_for_catalogs(&mut **tx, &busy).await? {
                answer.insert(active.catalog_id, (active.id, active.status, false));
            }
        }
        pending.retain(|(id, _)| !answer.contains_key(id));
    }
    // The first request of a catalog created its sync; later ones in the batch share it.
    let mut seen = std::collections::HashSet::new();
    Ok(catalog_of
        .into_iter()
        .map(|catalog_id| {
            let (sync_id, status, created) = answer[&catalog_id].clone();
            Enqueued {
                catalog_id,
                sync_id,
                status,
                created: created && seen.insert(catalog_id),
            }
        })
        .collect())
}
