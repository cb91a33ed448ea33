//! What every worker process does besides running syncs, every couple of seconds: deletes
//! finished jobs (of the sync and webhook queues), applies the retention of old syncs,
//! webhook events, audit entries and past states, and starts the re-syncs that schedules have
//! due (waking when the next one is due). Any number of workers may do it at once: each step
//! is safe to run concurrently.

use std::time::Duration;

use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{EnqueueRequest, SealedCredentials, enqueue_all_in};
use crate::crypto::CredentialsKey;
use crate::period::Period;
use crate::store::{audit, deliveries, jobs, schedules, states, syncs};

/// How often finished jobs are deleted, and schedules looked at when none is due sooner.
const INTERVAL: Duration = Duration::from_secs(2);
/// The shortest sleep between two looks at the schedules (a due schedule another worker holds
/// stays due until that worker commits).
const MIN_WAIT: Duration = Duration::from_millis(20);
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
        // A short retention (tests, demos) is applied as often as the rest.
        let retention_every = RETENTION_INTERVAL.min(self.retention).max(INTERVAL);
        let mut last_retention: Option<Instant> = None;
        let mut last_round: Option<Instant> = None;
        loop {
            let wake = self.next_wake(last_round).await;
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = shutdown.cancelled() => return,
            }
            if let Err(e) = self.start_due_schedules().await {
                warn!(error = %e, "starting scheduled syncs failed");
            }
            if last_round.is_some_and(|at| at.elapsed() < INTERVAL) {
                continue; // woken for a schedule only
            }
            last_round = Some(Instant::now());
            for queue in [self.queue.clone(), deliveries::queue_name(&self.queue)] {
                if let Err(e) = jobs::delete_finished(&self.pool, &queue).await {
                    warn!(error = %e, %queue, "deleting finished jobs failed");
                }
            }
            if last_retention.is_none_or(|at| at.elapsed() >= retention_every) {
                last_retention = Some(Instant::now());
                self.apply_retention().await;
            }
        }
    }

    /// The next round's time, or sooner the time the next schedule is due: a schedule of every
    /// second runs every second, not every round.
    async fn next_wake(&self, last_round: Option<Instant>) -> Instant {
        let round = last_round.map_or_else(Instant::now, |at| at + INTERVAL);
        let due = match schedules::next_due(&self.pool).await {
            Ok(Some(due)) => due,
            Ok(None) => return round,
            Err(e) => {
                warn!(error = %e, "reading the next schedule failed");
                return round;
            }
        };
        let wait = (due - chrono::Utc::now()).to_std().unwrap_or_default();
        round.min(Instant::now() + wait.max(MIN_WAIT))
    }

    async fn apply_retention(&self) {
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
        match states::evict(&self.pool).await {
            Ok(0) => {}
            Ok(deleted) => info!(deleted, "deleted past states nobody reads"),
            Err(e) => warn!(error = %e, "deleting past states failed"),
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
        let secrets = credentials.open(&self.key, due.catalog_id.as_bytes())?;
        let schemas = match &due.schema_filter {
            Some(filter) => serde_json::from_value(filter.clone())?,
            None => Default::default(),
        };
        Ok(EnqueueRequest {
            target: credentials.source,
            secrets,
            schemas,
            max_attempts: due.max_attempts,
        })
    }
}
