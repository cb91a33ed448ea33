//! Whole-server syncs in the queue: the parent's job, its enqueueing, and its run (discovery),
//! which queues one child sync per database through [`enqueue_all_in`], the path of `POST
//! /sync`, so each child is the sync a single-database request would have made.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tracing::{Instrument, info, info_span, warn};
use ulid::Ulid;
use uuid::Uuid;

use super::runner::Release;
use super::{
    EnqueueError, EnqueueRequest, JOB_MAX_DELIVERIES, SealedCredentials, SyncRunner,
    enqueue_all_in, open_secrets,
};
use crate::catalog::{DatabaseSelection, SchemaFilter};
use crate::crypto::CredentialsKey;
use crate::ids::SyncId;
use crate::source::{SourceError, SourceSecrets, SourceTarget};
use crate::store::server_syncs::{self, Link, ParentRow, Recorded};
use crate::store::syncs;
use crate::telemetry::{self, TraceContext};

/// The payload of a whole-server sync's job. Its `databases` field, which a [`super::SyncJob`]
/// lacks, tells the two apart in the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerJob {
    pub sync_id: SyncId,
    /// The server and who to connect as; `dbname` is `*`.
    pub source: SourceTarget,
    /// The source password, sealed with the parent's sync id as associated data.
    pub sealed_password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_tls: Option<String>,
    pub databases: DatabaseSelection,
    /// The schema filter each child sync reads with.
    #[serde(default)]
    pub schemas: SchemaFilter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
}

/// A request for a whole-server sync.
pub struct ServerRequest {
    /// The server and who to connect as; `dbname` is `*`.
    pub target: SourceTarget,
    pub secrets: SourceSecrets,
    pub databases: DatabaseSelection,
    pub schemas: SchemaFilter,
    pub max_attempts: i32,
}

/// Queues a parent sync and its discovery job; answers the parent's id. The secrets are sealed
/// with the parent's id, as a single sync's are with its own.
pub async fn enqueue_server(
    pool: &PgPool,
    queue: &str,
    key: &CredentialsKey,
    request: ServerRequest,
) -> Result<Uuid, EnqueueError> {
    let sync_id = Uuid::now_v7();
    let sealed = SealedCredentials::seal(
        key,
        request.target.clone(),
        &request.secrets,
        sync_id.as_bytes(),
    );
    let job = serde_json::to_vec(&ServerJob {
        sync_id: sync_id.into(),
        source: request.target,
        sealed_password: sealed.sealed_password.clone(),
        sealed_tls: sealed.sealed_tls.clone(),
        databases: request.databases.clone(),
        schemas: request.schemas.clone(),
        trace: TraceContext::current(),
    })?;
    let job_id = Ulid::generate().to_string();
    let row = ParentRow {
        sync_id,
        max_attempts: request.max_attempts,
        schema_filter: (!request.schemas.is_empty()).then(|| serde_json::json!(request.schemas)),
        databases: serde_json::to_value(&request.databases)?,
        credentials: serde_json::to_value(&sealed)?,
        job_id: &job_id,
        job: &job,
    };
    server_syncs::insert_parent(pool, queue, JOB_MAX_DELIVERIES as i32, &row).await?;
    Ok(sync_id)
}

impl SyncRunner {
    /// Runs a whole-server sync's discovery to its end, or releases the job (`Err`). A failure
    /// to list the databases is retried as a sync's read is, and fails the parent for good
    /// when it is permanent or the attempts run out.
    pub async fn discover(&self, job: &ServerJob, worker: &str) -> Result<(), Release> {
        let span = info_span!("discover", sync_id = %job.sync_id, source = %job.source.display());
        telemetry::continue_trace(&span, job.trace.as_ref());
        self.discover_attempts(job, worker).instrument(span).await
    }

    async fn discover_attempts(&self, job: &ServerJob, worker: &str) -> Result<(), Release> {
        loop {
            if server_syncs::discovered(&self.pool, job.sync_id).await? {
                return Ok(()); // a duplicate delivery: the children are queued
            }
            let mut conn = self.pool.acquire().await?;
            let start =
                syncs::begin_attempt(&mut conn, job.sync_id, worker, self.source.kind()).await?;
            drop(conn);
            let syncs::AttemptStart::Started {
                attempt,
                max_attempts,
                ..
            } = start
            else {
                info!(?start, "nothing to run");
                return Ok(());
            };
            let secrets = match self.open(job) {
                Ok(secrets) => secrets,
                Err(message) => return self.fail_parent(job, &message).await,
            };
            let error = match self.source.list_databases(&job.source, &secrets).await {
                Ok(offered) => return self.queue_children(job, max_attempts, &offered).await,
                Err(error) => error,
            };
            if !error.is_transient() {
                warn!(attempt, error = %error.message, "discovery failed permanently");
                let message = format!("listing the server's databases failed: {}", error.message);
                return self.fail_parent(job, &message).await;
            }
            if attempt >= max_attempts {
                warn!(attempt, error = %error.message, "discovery failed, attempts exhausted");
                let message = format!(
                    "gave up after {attempt} attempts to list the server's databases: {}",
                    error.message
                );
                return self.fail_parent(job, &message).await;
            }
            self.wait_to_rediscover(job, attempt, &error).await?;
        }
    }

    fn open(&self, job: &ServerJob) -> Result<SourceSecrets, String> {
        open_secrets(
            &self.key,
            &job.sealed_password,
            job.sealed_tls.as_deref(),
            job.sync_id.as_bytes(),
        )
        .map_err(|e| e.to_string())
    }

    /// Queues a child sync per selected database, links them and the missing names to the
    /// parent, and ends the discovery, in one transaction.
    async fn queue_children(
        &self,
        job: &ServerJob,
        max_attempts: i32,
        offered: &[String],
    ) -> Result<(), Release> {
        let selected = job.databases.select(offered);
        let mut requests = Vec::with_capacity(selected.databases.len());
        for dbname in &selected.databases {
            let secrets = match self.open(job) {
                Ok(secrets) => secrets,
                Err(message) => return self.fail_parent(job, &message).await,
            };
            requests.push(EnqueueRequest {
                target: SourceTarget {
                    dbname: dbname.clone(),
                    ..job.source.clone()
                },
                secrets,
                schemas: job.schemas.clone(),
                max_attempts,
            });
        }
        let mut tx = self.pool.begin().await?;
        let enqueued = match enqueue_all_in(&mut tx, &self.queue, &self.key, &requests).await {
            Ok(enqueued) => enqueued,
            Err(EnqueueError::Store(e)) => return Err(Release::Store(e)),
            Err(e) => {
                drop(tx);
                return self
                    .fail_parent(job, &format!("queueing the databases failed: {e}"))
                    .await;
            }
        };
        let mut links: Vec<Link> = selected
            .databases
            .iter()
            .zip(&enqueued)
            .map(|(dbname, e)| Link {
                dbname: dbname.clone(),
                child: Some(e.sync_id),
            })
            .collect();
        links.extend(selected.missing.iter().map(|dbname| Link {
            dbname: dbname.clone(),
            child: None,
        }));
        let recorded = server_syncs::record_discovery(&mut tx, job.sync_id, &links).await?;
        if recorded == Recorded::NotRunning {
            tx.rollback().await?;
            info!("the whole-server sync ended during discovery; no database queued");
            return Ok(());
        }
        tx.commit().await?;
        let created = enqueued.iter().filter(|e| e.created).count();
        metrics::counter!("pgcs_syncs_enqueued_total").increment(created as u64);
        info!(
            databases = selected.databases.len(),
            missing = selected.missing.len(),
            created,
            finished = recorded == Recorded::Finished,
            "whole-server discovery queued the databases"
        );
        Ok(())
    }

    async fn fail_parent(&self, job: &ServerJob, message: &str) -> Result<(), Release> {
        let mut tx = self.pool.begin().await?;
        syncs::fail(&mut tx, job.sync_id, message).await?;
        tx.commit().await?;
        metrics::counter!("pgcs_syncs_finished_total", "outcome" => "failed").increment(1);
        Ok(())
    }

    async fn wait_to_rediscover(
        &self,
        job: &ServerJob,
        attempt: i32,
        error: &SourceError,
    ) -> Result<(), Release> {
        let mut tx = self.pool.begin().await?;
        syncs::retry_later(&mut tx, job.sync_id, &error.message).await?;
        tx.commit().await?;
        let delay = self.retry.delay_after(attempt);
        warn!(attempt, ?delay, error = %error.message, "discovery failed, retrying");
        tokio::select! {
            _ = tokio::time::sleep(delay) => Ok(()),
            _ = self.shutdown.cancelled() => Err(Release::Shutdown),
        }
    }
}
