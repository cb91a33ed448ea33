//! How far a sync is: the phase and the relations done, shared by the threads doing the work,
//! stored now and then in the sync's row, and shown by `GET /syncs/{id}` and the dashboard.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;

use crate::ids::SyncId;

/// The phase a running sync is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Phase {
    /// Reading what comes before the relations (the total is not known yet).
    Reading,
    /// A re-sync: reading the relations, comparing them with the stored snapshot and writing
    /// the changed ones, batch by batch.
    Comparing,
    /// A first sync: reading the relations and writing them, batch by batch.
    Writing,
    /// Not started: every connection `SOURCE_HOST_CONNECTIONS` allows to the source's host is
    /// taken by other syncs. The sync keeps its place in the queue.
    Waiting,
}

impl Phase {
    /// In discriminant order: `Progress` stores a phase as its discriminant.
    const ALL: [Phase; 4] = [
        Phase::Reading,
        Phase::Comparing,
        Phase::Writing,
        Phase::Waiting,
    ];
}

/// How far a running sync is, as `GET /syncs/{id}` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProgressReport {
    pub phase: Phase,
    pub relations_done: u64,
    /// Unknown while the source is read.
    pub relations_total: Option<u64>,
}

/// A sync's progress, shared by the tasks and threads doing its work (which update it without
/// waiting) and the task that stores it now and then ([`record_progress`]).
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<ProgressState>);

#[derive(Debug, Default)]
struct ProgressState {
    phase: AtomicU8,
    done: AtomicU64,
    /// `u64::MAX` while unknown.
    total: AtomicU64,
}

impl Progress {
    /// Enters `phase`, with nothing done of `total` relations.
    pub fn start(&self, phase: Phase, total: Option<u64>) {
        let state = &self.0;
        state.done.store(0, Ordering::Relaxed);
        state
            .total
            .store(total.unwrap_or(u64::MAX), Ordering::Relaxed);
        state.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// `relations` more are done.
    pub fn advance(&self, relations: u64) {
        self.0.done.fetch_add(relations, Ordering::Relaxed);
    }

    pub fn report(&self) -> ProgressReport {
        let state = &self.0;
        let total = state.total.load(Ordering::Relaxed);
        ProgressReport {
            phase: Phase::ALL[usize::from(state.phase.load(Ordering::Relaxed))],
            relations_done: state.done.load(Ordering::Relaxed),
            relations_total: (total != u64::MAX).then_some(total),
        }
    }
}

/// Shows that a sync not started yet waits for its source host's connections.
pub async fn record_waiting(db: impl PgExecutor<'_>, sync_id: SyncId) -> sqlx::Result<()> {
    let report = ProgressReport {
        phase: Phase::Waiting,
        relations_done: 0,
        relations_total: None,
    };
    let report = serde_json::to_value(report).expect("a progress report serializes");
    sqlx::query!(
        "UPDATE syncs SET progress = $2 WHERE id = $1 AND status IN ('queued', 'retrying')",
        sync_id.uuid(),
        report
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Stores a running sync's progress; a sync that is no longer running keeps none.
pub async fn record_progress(
    db: impl PgExecutor<'_>,
    sync_id: SyncId,
    report: &ProgressReport,
) -> sqlx::Result<()> {
    let report = serde_json::to_value(report).expect("a progress report serializes");
    sqlx::query!(
        r#"UPDATE syncs SET progress = $2 WHERE id = $1 AND status = 'running'"#,
        sync_id.uuid(),
        report
    )
    .execute(db)
    .await?;
    Ok(())
}
