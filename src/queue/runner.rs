//! Running one sync: take an attempt, read the source and write what it reads as it comes,
//! marking the sync succeeded in the same transaction; a failed read is retried with backoff.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use super::SyncJob;
use super::source_slots::{Held, SourceSlots};
use crate::catalog::Piece;
use crate::crypto::CredentialsKey;
use crate::ids::SyncId;
use crate::source::{MetadataSource, Reading, SourceError, SourceSecrets};
use crate::store::progress::{self, Phase, Progress};
use crate::store::snapshot::{self, WriteError};
use crate::store::syncs::{self, SyncStats};
use crate::store::{catalogs, outbox};
use crate::telemetry;

/// Backoff between attempts of a transiently failing sync: exponential with full jitter.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The delay after the `attempt`-th failed attempt (1-based).
    pub fn delay_after(&self, attempt: i32) -> Duration {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.max_delay)
    }
}

/// Why a job went back to the queue unfinished.
#[derive(Debug, thiserror::Error)]
pub enum Release {
    #[error("worker shutting down; the sync goes back to the queue")]
    Shutdown,
    #[error("store error, the sync goes back to the queue: {0}")]
    Store(#[from] sqlx::Error),
}

/// Everything a worker needs to run syncs.
#[derive(Debug, Clone)]
pub struct SyncRunner {
    pub pool: PgPool,
    pub key: CredentialsKey,
    pub source: Arc<MetadataSource>,
    pub retry: RetryPolicy,
    /// Cancelled at shutdown: a sync waiting to retry gives its job back instead of waiting.
    pub shutdown: CancellationToken,
    /// The per-host limit on source connections; `None` for a metadata service.
    pub slots: Option<SourceSlots>,
    /// The webhook queue the events of ended syncs are delivered through.
    pub webhook_queue: Arc<str>,
    /// The sync queue, where a whole-server sync's discovery queues its children.
    pub queue: Arc<str>,
}

impl SyncRunner {
    /// Runs the sync of `job` to its end, or releases it (`Err`) for another delivery. A
    /// release for a store error ends the attempt with that error where the store lets it, so
    /// the sync shows `retrying` and why until the next delivery starts its next attempt.
    ///
    /// The delivery's span continues the trace of the request that queued the job.
    pub async fn run(&self, job: &SyncJob, worker: &str) -> Result<(), Release> {
        let span = info_span!("run", sync_id = %job.sync_id, catalog_id = %job.catalog_id, source = %job.source.display());
        telemetry::continue_trace(&span, job.trace.as_ref());
        async {
            // Set while an attempt of this delivery is open: a store error before it started
            // (or after it ended) is not this attempt's to record.
            let mut attempt_open = false;
            let result = self.run_attempts(job, worker, &mut attempt_open).await;
            if let (true, Err(e @ Release::Store(_))) = (attempt_open, &result)
                && let Err(why) = self.retry_later(job, &e.to_string()).await
            {
                debug!(error = %why, "could not record the store error on the attempt");
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn run_attempts(
        &self,
        job: &SyncJob,
        worker: &str,
        attempt_open: &mut bool,
    ) -> Result<(), Release> {
        loop {
            let held = match &self.slots {
                None => None,
                Some(slots) => match self.wait_for_slots(slots, job).await? {
                    Some(held) => Some(held),
                    None => return Ok(()), // the sync ended while it waited
                },
            };
            let Some((attempt, max_attempts)) = self.take_attempt(job, worker).await? else {
                return Ok(());
            };
            *attempt_open = true;
            let span = info_span!(
                "attempt",
                attempt,
                max_attempts,
                error = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
            );
            let error = match self.attempt(job).instrument(span.clone()).await {
                Outcome::Settled(settled) => return settled,
                Outcome::ReadFailed(error) => error,
            };
            drop(held); // the source's connections are closed
            span.record("error", error.message.as_str());
            span.record("otel.status_code", "ERROR");
            drop(span); // the attempt ends here, before any backoff
            if !error.is_transient() {
                warn!(attempt, error = %error.message, "sync failed permanently");
                return self.fail(job, &error.message).await;
            }
            if attempt >= max_attempts {
                warn!(attempt, error = %error.message, "sync failed, attempts exhausted");
                let message = format!("gave up after {attempt} attempts: {}", error.message);
                return self.fail(job, &message).await;
            }
            self.wait_to_retry(job, attempt, &error).await?;
            *attempt_open = false; // ended as `retrying` before the wait
        }
    }

    /// Takes the slots the sync's read needs on its source host, waiting while other syncs
    /// hold them all; the sync shows it waits. `None` when the sync ended meanwhile (cancelled).
    async fn wait_for_slots(
        &self,
        slots: &SourceSlots,
        job: &SyncJob,
    ) -> Result<Option<Held>, Release> {
        let host = job.source.host.as_str();
        let mut waiting = false;
        loop {
            if let Some(held) = slots.try_take(host).await? {
                return Ok(Some(held));
            }
            if !waiting {
                waiting = true;
                info!(
                    host,
                    limit = slots.per_host(),
                    "waiting for free connections to the source host"
                );
                metrics::counter!("pgcs_source_slot_waits_total").increment(1);
                progress::record_waiting(&self.pool, job.sync_id).await?;
            } else if syncs::get(&self.pool, job.sync_id)
                .await?
                .is_none_or(|s| s.status.is_terminal())
            {
                return Ok(None);
            }
            tokio::select! {
                _ = tokio::time::sleep(SLOT_POLL_INTERVAL) => {}
                _ = self.shutdown.cancelled() => return Err(Release::Shutdown),
            }
        }
    }

    /// Reads the source and writes what it reads, unless the probe finds the catalog unchanged.
    async fn attempt(&self, job: &SyncJob) -> Outcome {
        info!("sync attempt started");
        let secrets = match super::open_secrets(
            &self.key,
            &job.sealed_password,
            job.sealed_tls.as_deref(),
            job.sync_id.as_bytes(),
        ) {
            Ok(s) => s,
            Err(e) => return Outcome::Settled(self.fail(job, &e.to_string()).await),
        };
        match self.unchanged_since_last_read(job, &secrets).await {
            Ok(false) => {}
            Ok(true) => return Outcome::Settled(Ok(())),
            Err(release) => return Outcome::Settled(Err(release)),
        }
        let progress = Progress::default();
        progress.start(Phase::Reading, None);
        let _reporting = self.report_progress(job.sync_id, progress.clone());
        let started = std::time::Instant::now();
        let read = self
            .source
            .read(&job.source, &secrets, &job.schemas)
            .instrument(info_span!("source.read", kind = self.source.kind()))
            .await;
        match read {
            Ok(reading) => {
                let outcome = self.write(job, reading, &progress).await;
                if let Outcome::Settled(_) = outcome {
                    metrics::histogram!("pgcs_sync_duration_seconds")
                        .record(started.elapsed().as_secs_f64());
                }
                outcome
            }
            Err(e) => Outcome::ReadFailed(e),
        }
    }

    /// Starts the sync's next attempt: its number and the most it may have, or `None` when
    /// there is nothing to run (the sync ended, or is gone).
    async fn take_attempt(&self, job: &SyncJob, worker: &str) -> sqlx::Result<Option<(i32, i32)>> {
        let mut conn = self.pool.acquire().await?;
        let start =
            syncs::begin_attempt(&mut conn, job.sync_id, worker, self.source.kind()).await?;
        match start {
            syncs::AttemptStart::Started {
                attempt,
                max_attempts,
                enqueued_at,
            } => {
                if attempt == 1 {
                    let waited = (chrono::Utc::now() - enqueued_at)
                        .to_std()
                        .unwrap_or_default();
                    metrics::histogram!("pgcs_sync_pickup_seconds").record(waited.as_secs_f64());
                    telemetry::record_queue_wait(job.trace.as_ref(), enqueued_at.into());
                }
                Ok(Some((attempt, max_attempts)))
            }
            other => {
                info!(?other, "nothing to run");
                Ok(None)
            }
        }
    }

    /// When the source's probe matches the one the catalog was last read at, the catalog is
    /// current: the sync succeeds without reading it (one cheap query instead of a full read),
    /// and true is returned. Any doubt (no probe, a probe error, a concurrent change) means a
    /// full read.
    #[tracing::instrument(name = "source.probe", skip_all)]
    async fn unchanged_since_last_read(
        &self,
        job: &SyncJob,
        secrets: &SourceSecrets,
    ) -> Result<bool, Release> {
        if !self.source.can_probe() {
            return Ok(false);
        }
        let Some((stored, roles)) = catalogs::source_probe(&self.pool, job.catalog_id).await?
        else {
            return Ok(false);
        };
        let probed = self
            .source
            .probe(&job.source, secrets, &job.schemas, &roles);
        let current = match probed.await {
            Ok(Some(current)) => current,
            Ok(None) => return Ok(false),
            Err(e) => {
                info!(error = %e.message, "probe failed; reading the catalog");
                return Ok(false);
            }
        };
        if current != stored {
            return Ok(false);
        }
        let mut tx = self.pool.begin().await?;
        if !snapshot::confirm_unchanged(&mut tx, job.catalog_id, &current).await? {
            return Ok(false);
        }
        let stats = SyncStats {
            unchanged: true,
            changes: Some(0),
            relations_written: 0,
            ..syncs::latest_stats(&mut *tx, job.catalog_id)
                .await?
                .unwrap_or_default()
        };
        if syncs::succeed(&mut tx, job.sync_id, &stats).await? {
            outbox::sync_succeeded(
                &mut tx,
                &self.webhook_queue,
                job.catalog_id,
                job.sync_id,
                &stats,
            )
            .await?;
            tx.commit().await?;
            metrics::counter!("pgcs_syncs_finished_total", "outcome" => "unchanged").increment(1);
            info!("sync succeeded: the source's catalog is unchanged since the last read");
        }
        Ok(true)
    }

    /// Stores the sync's progress a few times a second, while it changes, until dropped. The
    /// first report waits one interval: a sync that ends sooner (most do) costs the store no
    /// write for it.
    fn report_progress(&self, sync_id: SyncId, progress: Progress) -> AbortOnDropHandle<()> {
        let pool = self.pool.clone();
        AbortOnDropHandle::new(tokio::spawn(async move {
            let mut last = None;
            loop {
                tokio::time::sleep(PROGRESS_INTERVAL).await;
                let report = progress.report();
                if last != Some(report) {
                    if let Err(e) = progress::record_progress(&pool, sync_id, &report).await {
                        debug!(error = %e, "could not store the sync's progress");
                    }
                    last = Some(report);
                }
            }
        }))
    }

    /// Ends the open attempt with `error` and shows the sync `retrying`.
    async fn retry_later(&self, job: &SyncJob, error: &str) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        syncs::retry_later(&mut tx, job.sync_id, error).await?;
        tx.commit().await
    }

    #[tracing::instrument(name = "retry.backoff", skip_all)]
    async fn wait_to_retry(
        &self,
        job: &SyncJob,
        attempt: i32,
        error: &SourceError,
    ) -> Result<(), Release> {
        self.retry_later(job, &error.message).await?;
        metrics::counter!("pgcs_sync_retries_total").increment(1);
        let delay = self.retry.delay_after(attempt);
        warn!(attempt, ?delay, error = %error.message, "transient failure, retrying");
        tokio::select! {
            _ = tokio::time::sleep(delay) => Ok(()),
            _ = self.shutdown.cancelled() => Err(Release::Shutdown),
        }
    }

    async fn fail(&self, job: &SyncJob, message: &str) -> Result<(), Release> {
        let mut tx = self.pool.begin().await?;
        if syncs::fail(&mut tx, job.sync_id, message).await? {
            outbox::sync_failed(
                &mut tx,
                &self.webhook_queue,
                job.catalog_id,
                job.sync_id,
                message,
            )
            .await?;
        }
        tx.commit().await?;
        metrics::counter!("pgcs_syncs_finished_total", "outcome" => "failed").increment(1);
        Ok(())
    }

    /// Writes the catalog as it is read and marks the sync succeeded, in one transaction. A
    /// read that fails rolls the write back and is the attempt's failure. A write that may
    /// succeed on another try releases the job; one the store refuses for good (data too long,
    /// a constraint or trigger, a bug) fails the sync with the store's reason.
    async fn write(&self, job: &SyncJob, reading: Reading, progress: &Progress) -> Outcome {
        let Reading { pieces, task } = reading;
        let e = match self.try_write(job, pieces, progress).await {
            Ok(()) => return Outcome::Settled(Ok(())),
            Err(WriteError::ReadEnded) => return Outcome::ReadFailed(task.failure().await),
            Err(WriteError::Cancelled(_)) => return Outcome::Settled(Err(Release::Shutdown)),
            Err(WriteError::Store(e)) if crate::db::is_transient(&e) => {
                return Outcome::Settled(Err(Release::Store(e)));
            }
            Err(WriteError::Store(e)) => e,
        };
        warn!(error = %e, "the store refused the snapshot");
        let message = match &e {
            sqlx::Error::Database(db) => format!(
                "the store refused the snapshot: {} ({})",
                db.message(),
                db.code().unwrap_or_default()
            ),
            other => format!("the store refused the snapshot: {other}"),
        };
        Outcome::Settled(self.fail(job, &message).await)
    }

    #[tracing::instrument(name = "store.write", skip_all)]
    async fn try_write(
        &self,
        job: &SyncJob,
        pieces: mpsc::Receiver<Piece>,
        progress: &Progress,
    ) -> Result<(), WriteError> {
        let started = std::time::Instant::now();
        let mut tx = self.pool.begin().await?;
        let snapshot::Locked::Catalog(state) =
            snapshot::lock_catalog(&mut tx, job.catalog_id).await?
        else {
            return Ok(()); // the catalog was deleted meanwhile
        };
        let written = snapshot::write(
            &mut tx,
            job.catalog_id,
            job.sync_id,
            &state,
            pieces,
            progress,
        )
        .await?;
        let stats = SyncStats {
            counts: written.counts,
            unchanged: written.unchanged,
            changes: written.changes,
            relations_written: written.written.tables,
        };
        if !syncs::succeed(&mut tx, job.sync_id, &stats).await? {
            // Another delivery of this job finished first; keep its snapshot.
            tx.rollback().await?;
            return Ok(());
        }
        outbox::sync_succeeded(
            &mut tx,
            &self.webhook_queue,
            job.catalog_id,
            job.sync_id,
            &stats,
        )
        .await?;
        tx.commit().await?;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        info!(?stats, elapsed_ms, "sync succeeded");
        let outcome = if written.unchanged {
            "unchanged"
        } else {
            "succeeded"
        };
        metrics::counter!("pgcs_syncs_finished_total", "outcome" => outcome).increment(1);
        let counts = written.written;
        for (kind, n) in [
            ("tables", counts.tables),
            ("columns", counts.columns),
            ("constraints", counts.constraints),
            ("indexes", counts.indexes),
        ] {
            metrics::counter!("pgcs_objects_written_total", "kind" => kind).increment(n);
        }
        Ok(())
    }
}

/// How reading and writing a catalog ended.
enum Outcome {
    /// The sync succeeded, failed for good, or goes back to the queue.
    Settled(Result<(), Release>),
    /// The read failed: retried or failed as the error says.
    ReadFailed(SourceError),
}

/// How often a sync waiting for its source host's slots tries again.
const SLOT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How often a running sync's progress is stored, at most.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
