//! What every worker process does besides running syncs, every couple of seconds: deletes
//! finished jobs (of the sync and webhook queues), applies the retention of old syncs,
//! webhook events and audit entries, and starts the re-syncs that schedules
//! have due. Any number of workers may do it at once: each step is safe to run concurrently.

use std::time::Duration;

use secrecy::SecretString;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{EnqueueRequest, SealedCredentials, enqueue_all_in};
use crate::crypto::CredentialsKey;
use crate::period::Period;
use crate::store::{audit, deliveries, jobs, schedules, syncs};

/// How often finished jobs are deleted and schedules looked at.
const INTERVAL: Duration = Duration::from_secs(2);
/// How often retention runs at most (less often than the rest: it scans ended syncs).
const RETENTION_INTERVAL: Duration = Duration::from_secs(60);
/// Due schedules one worker starts per round.
const SCHEDULES_PER_ROUND: i64 = 100;

pub struct Housekeeping {
    pub pool: PgPool,
    pub queue: String,
    pub key: CredentialsKey,
    /// Ended syncs older than this are deleted (each catalog's latest is kept).
    pub retention: Duration,
    /// Audit log entries older than this are deleted.
    pub audit_retention: Duration,
}

impl Housekeeping {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(INTERVAL);
        // A short retention (tests, demos) is applied as often as the rest.
        let retention_every = RETENTION_INTERVAL.min(self.retention).max(INTERVAL);
        let mut last_retention: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            for queue in [self.queue.clone(), deliveries::queue_name(&self.queue)] {
                if let Err(e) = jobs::delete_finished(&self.pool, &queue).await {
                    warn!(error = %e, %queue, "deleting finished jobs failed");
                }
            }
            if let Err(e) = self.start_due_schedules().await {
                warn!(error = %e, "starting scheduled syncs failed");
            }
            if last_retention.is_none_or(|at| at.elapsed() >= retention_every) {
                last_retention = Some(tokio::time::Instant::now());
                match syncs::apply_retention(&self.pool, self.retention).await {
                    Ok(0) => {}
                    Ok(deleted) => info!(deleted, "deleted syncs past the retention age"),
                    Err(e) => warn!(error = %e, "applying retention failed"),
                }
                let before = chrono::Utc::now() - self.audit_retention;
                match audit::prune(&self.pool, before).await {
                    Ok(0) => {}
                    Ok(deleted) => info!(deleted, "deleted audit entries past their retention"),
                    Err(e) => warn!(error = %e, "pruning the audit log failed"),
                }
                match deliveries::prune(&self.pool, self.retention).await {
                    Ok(0) => {}
                    Ok(deleted) => info!(deleted, "deleted webhook events past the retention age"),
                    Err(e) => warn!(error = %e, "pruning webhook events failed"),
                }
            }
        }
    }

    /// Enqueues a re-sync for every due schedule (a catalog with an active sync keeps it) and
    /// sets each schedule's next run, in one transaction holding the schedules' row locks, so
    /// that no other worker starts them too.
    async fn start_due_schedules(&self) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let due = schedules::lock_due(&mut tx, SCHEDULES_PER_ROUND).await?;
        if due.is_empty() {
            return Ok(());
        }
        let now = chrono::Utc::now();
        let mut requests = Vec::with_capacity(due.len());
        let mut runnable = Vec::with_capacity(due.len());
        let (mut ran, mut next_runs, mut started) = (vec![], vec![], vec![]);
        for d in &due {
            // Stored periods were checked when they were set; should one not parse any more,
            // it is looked at again in a day rather than every round.
            let next = Period::from_stored(d.every_seconds, d.cron.as_deref())
                .ok()
                .and_then(|p| p.next_after(now))
                .unwrap_or(now + chrono::Duration::days(1));
            match self.request_for(d) {
                Ok(request) => {
                    requests.push(request);
                    runnable.push((d.catalog_id, next));
                }
                Err(why) => {
                    warn!(catalog_id = %d.catalog_id, error = %why, "scheduled sync skipped");
                    ran.push(d.catalog_id);
                    next_runs.push(next);
                    started.push(None);
                }
            }
        }
        if !requests.is_empty() {
            let enqueued = enqueue_all_in(&mut tx, &self.queue, &self.key, &requests).await?;
            for (&(catalog_id, next), e) in runnable.iter().zip(&enqueued) {
                ran.push(catalog_id);
                next_runs.push(next);
                started.push(Some(e.sync_id));
                if e.created {
                    metrics::counter!("pgcs_syncs_enqueued_total").increment(1);
                    info!(catalog_id = %e.catalog_id, sync_id = %e.sync_id, "scheduled sync queued");
                }
            }
        }
        schedules::ran_all(&mut tx, &ran, &next_runs, &started).await?;
        tx.commit().await?;
        Ok(())
    }

    fn request_for(&self, due: &schedules::Due) -> anyhow::Result<EnqueueRequest> {
        let credentials: SealedCredentials = serde_json::from_value(due.credentials.clone())?;
        let password: SecretString = self
            .key
            .open(&credentials.sealed_password, due.catalog_id.as_bytes())?;
        let schemas = match &due.schema_filter {
            Some(filter) => serde_json::from_value(filter.clone())?,
            None => Default::default(),
        };
        Ok(EnqueueRequest {
            target: credentials.source,
            password,
            schemas,
            max_attempts: due.max_attempts,
        })
    }
}
