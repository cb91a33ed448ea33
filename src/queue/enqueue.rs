//! Writing a sync row and its job in one transaction.

use apalis::prelude::TaskBuilder;
use secrecy::SecretString;
use sqlx::PgPool;
use uuid::Uuid;

use super::{JOB_MAX_DELIVERIES, SyncJob};
use crate::catalog::SchemaFilter;
use crate::crypto::CredentialsKey;
use crate::source::SourceTarget;
use crate::store::{catalogs, syncs};

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
}

/// Enqueues a sync of `request.target` unless its catalog already has an active sync.
/// The catalog, the sync row and the apalis job are written in one transaction.
pub async fn enqueue(
    pool: &PgPool,
    queue: &str,
    key: &CredentialsKey,
    request: &EnqueueRequest,
) -> Result<Enqueued, EnqueueError> {
    let target = &request.target;
    let catalog_id = catalogs::catalog_id_for(&target.host, target.port, &target.dbname);
    // The active sync can finish between the failed insert and the look-up; then try again.
    loop {
        let mut tx = pool.begin().await?;
        catalogs::ensure(
            &mut *tx,
            catalog_id,
            &target.host,
            target.port,
            &target.dbname,
        )
        .await?;
        let sync_id = Uuid::now_v7();
        let filter = (!request.schemas.is_empty()).then(|| serde_json::json!(request.schemas));
        if syncs::insert_if_idle(&mut tx, sync_id, catalog_id, request.max_attempts, filter)
            .await?
            .is_some()
        {
            let job = SyncJob {
                sync_id,
                catalog_id,
                source: target.clone(),
                sealed_password: key.seal(&request.password, sync_id.as_bytes()),
                schemas: request.schemas.clone(),
            };
            let task = TaskBuilder::new(serde_json::to_vec(&job)?)
                .max_attempts(JOB_MAX_DELIVERIES)
                .build();
            apalis_postgres::queries::push_tasks(&mut *tx, queue, vec![task]).await?;
            tx.commit().await?;
            return Ok(Enqueued {
                catalog_id,
                sync_id,
                status: "queued".into(),
                created: true,
            });
        }
        if let Some(active) = syncs::active_for_catalog(&mut *tx, catalog_id).await? {
            tx.commit().await?;
            return Ok(Enqueued {
                catalog_id,
                sync_id: active.id,
                status: active.status,
                created: false,
            });
        }
    }
}
