//! The sync job, its enqueueing, and the worker that runs it.
//!
//! The job travels through an apalis queue in the store (`apalis.jobs`). Its payload holds the
//! source's connection details with the password sealed under `CREDENTIALS_KEY`; the sync's
//! status lives in this service's own `syncs` table, written in the same transaction as the job.

pub mod delivery;
mod enqueue;
mod housekeeping;
mod runner;
pub mod source_slots;
mod worker;

use serde::{Deserialize, Serialize};

use crate::catalog::SchemaFilter;
use crate::ids::{CatalogId, SyncId};
use crate::source::SourceTarget;
use crate::telemetry::TraceContext;

pub use enqueue::{EnqueueError, EnqueueRequest, Enqueued, Enqueuer, enqueue_all, enqueue_all_in};
pub use runner::{RetryPolicy, SyncRunner};
pub use worker::{Worker, WorkerHandle};

/// How many times apalis may hand one job to a worker. Deliveries beyond the first happen only
/// when a worker died or released the job at shutdown; the sync's own `max_attempts` (checked
/// at every delivery) is always the tighter bound.
pub const JOB_MAX_DELIVERIES: usize = 25;

/// A source's connection details with the password sealed under `CREDENTIALS_KEY`: what a
/// sync needs to run again without its client (manual retries, schedules).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedCredentials {
    pub source: SourceTarget,
    pub sealed_password: String,
}

/// The payload of a sync job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncJob {
    pub sync_id: SyncId,
    pub catalog_id: CatalogId,
    pub source: SourceTarget,
    /// The source password, sealed with the sync id as associated data.
    pub sealed_password: String,
    /// Which schemas to read.
    #[serde(default)]
    pub schemas: SchemaFilter,
    /// The trace of the request that queued the job, which the worker's spans continue
    /// (absent when traces are not exported, and in scheduled syncs: they start a trace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
}
