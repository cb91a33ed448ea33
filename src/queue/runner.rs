//! Running one sync: attempts with backoff, classification of failures, and the transactional
//! snapshot write.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use secrecy::SecretString;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::SyncJob;
use crate::catalog::Snapshot;
use crate::crypto::CredentialsKey;
use crate::source::{Fetched, MetadataSource, PendingProbe, SourceError};
use crate::store::{catalogs, snapshot, syncs};

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
}

impl SyncRunner {
    /// Runs the sync of `job` to its end, or releases it (`Err`) for another delivery. A
    /// release for a store error ends the attempt with that error where the store lets it, so
    /// the sync shows `retrying` and why until the next delivery starts its next attempt.
    #[tracing::instrument(skip_all, fields(sync_id = %job.sync_id, catalog_id = %job.catalog_id, source = %job.source.display()))]
    pub async fn run(&self, job: &SyncJob, worker: &str) -> Result<(), Release> {
        // Set while an attempt of this delivery is open: a store error before it started (or
        // after it ended) is not this attempt's to record.
        let mut attempt_open = false;
        let result = self.run_attempts(job, worker, &mut attempt_open).await;
        if let (true, Err(e @ Release::Store(_))) = (attempt_open, &result)
            && let Err(why) = self.retry_later(job, &e.to_string()).await
        {
            debug!(error = %why, "could not record the store error on the attempt");
        }
        result
    }

    async fn run_attempts(
        &self,
        job: &SyncJob,
        worker: &str,
        attempt_open: &mut bool,
    ) -> Result<(), Release> {
        loop {
            let mut conn = self.pool.acquire().await?;
            let start =
                syncs::begin_attempt(&mut conn, job.sync_id, worker, self.source.kind()).await?;
            drop(conn);
            let (attempt, max_attempts) = match start {
                syncs::AttemptStart::Started {
                    attempt,
                    max_attempts,
                    enqueued_at,
                } => {
                    *attempt_open = true;
                    if attempt == 1 {
                        let waited = (chrono::Utc::now() - enqueued_at)
                            .to_std()
                            .unwrap_or_default();
                        metrics::histogram!("pgcs_sync_pickup_seconds")
                            .record(waited.as_secs_f64());
                    }
                    (attempt, max_attempts)
                }
                other => {
                    info!(?other, "nothing to run");
                    return Ok(());
                }
            };
            info!(attempt, max_attempts, "sync attempt started");

            let password = match self.key.open(&job.sealed_password, job.sync_id.as_bytes()) {
                Ok(p) => p,
                Err(e) => return self.fail(job, &e.to_string()).await,
            };
            let probed = self.unchanged_since_last_read(job, &password).await?;
            if probed == Probed::Unchanged {
                return Ok(());
            }
            // A catalog never read from its database (no probe stored) has no snapshot yet: a
            // big one's relations, columns and keys go into the store while the rest is read.
            let (early, early_write) = match probed == Probed::NeverRead && self.source.can_probe()
            {
                true => {
                    let (hook, write) = snapshot::write_early(&self.pool, job.catalog_id);
                    (Some(hook), Some(write))
                }
                false => (None, None),
            };
            let fetch_started = std::time::Instant::now();
            let error = match self
                .source
                .fetch(&job.source, &password, &job.schemas, early)
                .await
            {
                Ok(fetched) => {
                    let elapsed_ms = fetch_started.elapsed().as_millis() as u64;
                    info!(elapsed_ms, "metadata fetched");
                    let written = self.write(job, fetched, early_write).await;
                    metrics::histogram!("pgcs_sync_duration_seconds")
                        .record(fetch_started.elapsed().as_secs_f64());
                    return written;
                }
                Err(e) => e,
            };
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

    /// When the source's probe matches the one the catalog was last read at, the catalog is
    /// current: the sync succeeds without reading it (a cheap query instead of a full read).
    /// Any doubt (no probe, a probe error, a concurrent change) means a full read.
    async fn unchanged_since_last_read(
        &self,
        job: &SyncJob,
        password: &SecretString,
    ) -> Result<Probed, Release> {
        if !self.source.can_probe() {
            return Ok(Probed::Read);
        }
        let Some(stored) = catalogs::source_probe(&self.pool, job.catalog_id).await? else {
            return Ok(Probed::NeverRead);
        };
        // The last sync may still be taking its probe (see `settle_probe`): that is waited
        // for while the source is probed.
        let (current, stored) = tokio::join!(
            self.source.probe(&job.source, password, &job.schemas),
            self.settled_probe(job.catalog_id, stored),
        );
        let current = match current {
            Ok(Some(current)) => current,
            Ok(None) => return Ok(Probed::Read),
            Err(e) => {
                info!(error = %e.message, "probe failed; reading the catalog");
                return Ok(Probed::Read);
            }
        };
        if current != stored? {
            return Ok(Probed::Read);
        }
        let mut tx = self.pool.begin().await?;
        if !snapshot::confirm_unchanged(&mut tx, job.catalog_id, &current).await? {
            return Ok(Probed::Read);
        }
        let mut stats = syncs::latest_stats(&mut *tx, job.catalog_id)
            .await?
            .unwrap_or_else(|| serde_json::json!({}));
        stats["unchanged"] = true.into();
        stats["changes"] = 0.into();
        if syncs::succeed(&mut tx, job.sync_id, stats).await? {
            tx.commit().await?;
            metrics::counter!("pgcs_syncs_finished_total", "outcome" => "unchanged").increment(1);
            info!("sync succeeded: the source's catalog is unchanged since the last read");
        }
        Ok(Probed::Unchanged)
    }

    /// The catalog's stored probe, once the sync that stored `stored`, a `pending:` mark, has
    /// taken the probe it stands for (a tenth of a second or so after that sync succeeded). A
    /// mark that stays longer than [`PROBE_SETTLE_WAIT`] (its worker stopped, or the probe
    /// failed) is given back as it is, and compares as changed.
    async fn settled_probe(&self, catalog_id: Uuid, stored: String) -> sqlx::Result<String> {
        let deadline = tokio::time::Instant::now() + PROBE_SETTLE_WAIT;
        let mut stored = stored;
        while stored.starts_with("pending:") && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
            match catalogs::source_probe(&self.pool, catalog_id).await? {
                Some(probe) => stored = probe,
                None => break, // the catalog is gone
            }
        }
        Ok(stored)
    }

    /// Ends the open attempt with `error` and shows the sync `retrying`.
    async fn retry_later(&self, job: &SyncJob, error: &str) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        syncs::retry_later(&mut tx, job.sync_id, error).await?;
        tx.commit().await
    }

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
        syncs::fail(&mut tx, job.sync_id, message).await?;
        tx.commit().await?;
        metrics::counter!("pgcs_syncs_finished_total", "outcome" => "failed").increment(1);
        Ok(())
    }

    /// Replaces the catalog's snapshot and marks the sync succeeded, in one transaction. A
    /// write that may succeed on another try releases the job; one the store refuses for good
    /// (data too long, a constraint or trigger, a bug) fails the sync with the store's reason.
    async fn write(
        &self,
        job: &SyncJob,
        fetched: Fetched,
        early: Option<snapshot::EarlyWrite>,
    ) -> Result<(), Release> {
        match self.try_write(job, fetched, early).await {
            Ok(()) => Ok(()),
            Err(e) if crate::db::is_transient(&e) => Err(Release::Store(e)),
            Err(e) => {
                warn!(error = %e, "the store refused the snapshot");
                let message = match &e {
                    sqlx::Error::Database(db) => format!(
                        "the store refused the snapshot: {} ({})",
                        db.message(),
                        db.code().unwrap_or_default()
                    ),
                    other => format!("the store refused the snapshot: {other}"),
                };
                self.fail(job, &message).await
            }
        }
    }

    /// An unchanged snapshot (same fingerprint) only refreshes its statistics. With an `early`
    /// write that wrote the relations, columns and keys, the rest goes into its transaction.
    async fn try_write(
        &self,
        job: &SyncJob,
        fetched: Fetched,
        early: Option<snapshot::EarlyWrite>,
    ) -> sqlx::Result<()> {
        let Fetched {
            snapshot: snap,
            probe,
        } = fetched;
        // The source's probe is taken once the snapshot is committed (see
        // `introspect::finish_read`); the snapshot is committed with this in its place.
        let pending = format!("pending:{}", job.sync_id);
        let probe_pending = probe.as_ref().map(|_| pending.as_str());
        let write_started = std::time::Instant::now();
        // Shared with the threads that prepare the bulk parts of the write.
        let snap = std::sync::Arc::new(snap);
        let big = snapshot::is_big(&snap);
        // A snapshot written early is a first one, which cannot be unchanged: its documents are
        // built and written beside it while its early write ends. (By the end of the read, the
        // early write has long decided whether it writes.)
        let (early, documents) = match early {
            Some(mut write) => {
                if write.locked().await {
                    let documents = snapshot::documents(big, snap.clone());
                    let beside =
                        snapshot::write_documents_beside(&self.pool, job.catalog_id, documents);
                    let (tx, left) = tokio::join!(write.finish(), beside.finish());
                    match (tx?, left?) {
                        (Some(tx), None) => (Some(tx), snapshot::DetailDocuments::WrittenBeside),
                        (Some(tx), Some(left)) => {
                            (Some(tx), snapshot::DetailDocuments::Building(left))
                        }
                        (None, _) => (None, snapshot::DetailDocuments::ToBuild),
                    }
                } else {
                    // Nothing was written early (a small snapshot, or one written meanwhile by
                    // another sync): the write builds the documents, once.
                    (write.finish().await?, snapshot::DetailDocuments::ToBuild)
                }
            }
            None => (None, snapshot::DetailDocuments::ToBuild),
        };
        // The fingerprint serializes and hashes the whole snapshot: a big one's (a tenth of a
        // second or more for 10,000 tables) on a thread of its own from the start; a small
        // one's at once, as a thread hand-off would cost more than it saves. Nothing is compared
        // with a first snapshot written early: its fingerprint is computed once it is committed.
        let mut fingerprint = match (early.is_some(), big) {
            (true, _) => Fingerprint::AfterCommit(pending.clone()),
            (false, true) => {
                let (snap, span) = (snap.clone(), tracing::Span::current());
                Fingerprint::Running(AbortOnDropHandle::new(tokio::task::spawn_blocking(
                    move || {
                        let _span = span.enter();
                        fingerprint_of(&snap)
                    },
                )))
            }
            (false, false) => Fingerprint::Done(snap.fingerprint()),
        };
        let (mut tx, current, before) = match early {
            Some(tx) => (tx, None, snapshot::Before::EarlyRows),
            None => {
                let mut tx = self.pool.begin().await?;
                let snapshot::Locked::Catalog {
                    fingerprint: current,
                    ..
                } = snapshot::lock_catalog(&mut tx, job.catalog_id).await?
                else {
                    return Ok(()); // the catalog was deleted meanwhile
                };
                let before = match current {
                    Some(_) => snapshot::Before::Snapshot,
                    None => snapshot::Before::Nothing,
                };
                (tx, current, before)
            }
        };
        // A catalog's first snapshot cannot be unchanged, so it is written while the fingerprint
        // is computed; a later one is compared with the current one first.
        let known = match current {
            Some(_) => Some(fingerprint.join().await?),
            None => None,
        };
        let unchanged = current.is_some() && current == known;
        let changes = if unchanged {
            snapshot::refresh_statistics(&mut tx, job.catalog_id, &snap, probe_pending).await?;
            Some(0)
        } else {
            let fingerprint = async {
                match known {
                    Some(fingerprint) => Ok(fingerprint),
                    None => fingerprint.join().await,
                }
            };
            let written = snapshot::Written {
                snapshot: &snap,
                fingerprint,
                big,
                probe: probe_pending,
                documents,
            };
            snapshot::replace(
                &mut tx,
                &self.pool,
                job.catalog_id,
                job.sync_id,
                written,
                before,
            )
            .await?
        };
        let mut stats = serde_json::to_value(snap.stats()).expect("stats serialize");
        stats["unchanged"] = unchanged.into();
        stats["changes"] = changes.into();
        if syncs::succeed(&mut tx, job.sync_id, stats).await? {
            let commit_started = std::time::Instant::now();
            tx.commit().await?;
            debug!(
                commit_ms = commit_started.elapsed().as_millis() as u64,
                "snapshot committed"
            );
            let elapsed_ms = write_started.elapsed().as_millis() as u64;
            info!(stats = ?snap.stats(), unchanged, elapsed_ms, "sync succeeded");
            let settled = async {
                if let Fingerprint::AfterCommit(pending) = fingerprint {
                    self.settle_fingerprint(job, snap.clone(), &pending).await;
                }
            };
            let probed = async {
                if let Some(probe) = probe {
                    self.settle_probe(job, probe, &pending).await;
                }
            };
            tokio::join!(settled, probed);
            let outcome = if unchanged { "unchanged" } else { "succeeded" };
            metrics::counter!("pgcs_syncs_finished_total", "outcome" => outcome).increment(1);
            if !unchanged {
                let counts = snap.stats();
                for (kind, n) in [
                    ("tables", counts.tables),
                    ("columns", counts.columns),
                    ("constraints", counts.constraints),
                    ("indexes", counts.indexes),
                ] {
                    metrics::counter!("pgcs_objects_written_total", "kind" => kind).increment(n);
                }
            }
        } else {
            // Another delivery of this job finished first; keep its snapshot.
            tx.rollback().await?;
        }
        Ok(())
    }

    /// Stores the fingerprint of a committed first snapshot in place of the `pending` one it
    /// was committed with, unless another write replaced it meanwhile. Until then (or for good,
    /// should the worker stop first) the catalog's next read compares as changed and rewrites
    /// the snapshot: slower, never wrong.
    async fn settle_fingerprint(&self, job: &SyncJob, snap: Arc<Snapshot>, pending: &str) {
        let span = tracing::Span::current();
        let computed = tokio::task::spawn_blocking(move || {
            let _span = span.enter();
            fingerprint_of(&snap)
        })
        .await;
        let stored = match computed {
            Ok(fingerprint) => {
                snapshot::settle_fingerprint(&self.pool, job.catalog_id, pending, &fingerprint)
                    .await
            }
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return, // the runtime is shutting down
        };
        if let Err(e) = stored {
            warn!(error = %e, "could not store the snapshot's fingerprint; its next read rewrites it");
        }
    }

    /// Stores the source's probe of a committed snapshot in place of the `pending` one it was
    /// committed with, unless another write replaced the snapshot meanwhile. Until then (or for
    /// good, should the probe fail or the worker stop first) the catalog's next sync reads the
    /// source, where an equal probe would have let it skip the read: slower, never wrong.
    async fn settle_probe(&self, job: &SyncJob, probe: PendingProbe, pending: &str) {
        let started = std::time::Instant::now();
        let probe = match probe.take().await {
            Ok(probe) => probe,
            Err(e) => {
                warn!(error = %e.message, "could not probe the source after the read; its next sync reads it");
                return;
            }
        };
        let probe_ms = started.elapsed().as_millis() as u64;
        debug!(probe_ms, "source probed");
        if let Err(e) = snapshot::settle_probe(&self.pool, job.catalog_id, pending, &probe).await {
            warn!(error = %e, "could not store the source's probe; its next sync reads it");
        }
    }
}

/// `snap`'s fingerprint, timed in the logs.
fn fingerprint_of(snap: &Snapshot) -> String {
    let started = std::time::Instant::now();
    let fingerprint = snap.fingerprint();
    let fingerprint_ms = started.elapsed().as_millis() as u64;
    debug!(fingerprint_ms, "snapshot fingerprinted");
    fingerprint
}

/// How long a sync waits for the previous sync's probe, taken after its commit, before it reads
/// the source in full: a 10,000-table source's probe takes 0.1-0.2 s.
const PROBE_SETTLE_WAIT: Duration = Duration::from_secs(3);

/// What the source's probe said before a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probed {
    /// The catalog is current: the sync succeeded without reading it.
    Unchanged,
    /// The catalog was never read from its database (no probe is stored).
    NeverRead,
    /// The catalog must be read (the probe moved, failed, or the source has none).
    Read,
}

/// A snapshot's fingerprint, computed at once, on a thread of its own, or after the commit (a
/// `pending` one stands in until then).
enum Fingerprint {
    Done(String),
    Running(AbortOnDropHandle<String>),
    AfterCommit(String),
}

impl Fingerprint {
    async fn join(&mut self) -> sqlx::Result<String> {
        let task = match self {
            Fingerprint::Done(fingerprint) => return Ok(std::mem::take(fingerprint)),
            Fingerprint::AfterCommit(pending) => return Ok(pending.clone()),
            Fingerprint::Running(task) => task,
        };
        match task.await {
            Ok(fingerprint) => Ok(fingerprint),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only a runtime shutting down cancels a blocking task.
            Err(_) => Err(sqlx::Error::Protocol(
                "computing the fingerprint was cancelled".into(),
            )),
        }
    }
}
