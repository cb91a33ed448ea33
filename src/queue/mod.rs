//! The sync job, its enqueueing, and the worker that runs it.
//!
//! The job travels through an apalis queue in the store (`apalis.jobs`). Its payload holds the
//! source's connection details with the password and TLS material sealed under
//! `CREDENTIALS_KEY`; the sync's
//! status lives in this service's own `syncs` table, written in the same transaction as the job.

pub mod delivery;
mod enqueue;
mod housekeeping;
mod runner;
mod server;
pub mod source_slots;
mod worker;

use serde::{Deserialize, Serialize};

use crate::catalog::SchemaFilter;
use crate::crypto::{CredentialsKey, CryptoError};
use crate::ids::{CatalogId, SyncId};
use crate::source::{SourceSecrets, SourceTarget, SourceTls};
use crate::telemetry::TraceContext;

pub use enqueue::{EnqueueError, EnqueueRequest, Enqueued, Enqueuer, enqueue_all, enqueue_all_in};
pub use runner::{RetryPolicy, SyncRunner};
pub use server::{ServerJob, ServerRequest, enqueue_server};
pub use worker::{Worker, WorkerHandle};

/// How many times apalis may hand one job to a worker. Deliveries beyond the first happen only
/// when a worker died or released the job at shutdown; the sync's own `max_attempts` (checked
/// at every delivery) is always the tighter bound.
pub const JOB_MAX_DELIVERIES: usize = 25;

/// A source's connection details with its secrets sealed under `CREDENTIALS_KEY`: what a sync
/// needs to run again without its client (manual retries, schedules).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedCredentials {
    pub source: SourceTarget,
    pub sealed_password: String,
    /// The TLS material, when the client gave some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_tls: Option<String>,
}

impl SealedCredentials {
    /// Seals `secrets` for the record `context` (a sync's id, or a schedule's catalog id).
    pub fn seal(
        key: &CredentialsKey,
        source: SourceTarget,
        secrets: &SourceSecrets,
        context: &[u8],
    ) -> Self {
        Self {
            source,
            sealed_password: key.seal(&secrets.password, context),
            sealed_tls: (!secrets.tls.is_empty())
                .then(|| key.seal(&secrets.tls.to_sealable(), &tls_context(context))),
        }
    }

    /// The secrets [`seal`](Self::seal) sealed for `context`.
    pub fn open(&self, key: &CredentialsKey, context: &[u8]) -> Result<SourceSecrets, CryptoError> {
        open_secrets(
            key,
            &self.sealed_password,
            self.sealed_tls.as_deref(),
            context,
        )
    }
}

/// The password and TLS material sealed for `context`.
pub fn open_secrets(
    key: &CredentialsKey,
    sealed_password: &str,
    sealed_tls: Option<&str>,
    context: &[u8],
) -> Result<SourceSecrets, CryptoError> {
    let password = key.open(sealed_password, context)?;
    let tls = match sealed_tls {
        Some(sealed) => SourceTls::from_sealable(&key.open(sealed, &tls_context(context))?)
            .ok_or(CryptoError::Undecryptable)?,
        None => SourceTls::default(),
    };
    Ok(SourceSecrets { password, tls })
}

/// The associated data of sealed TLS material: the record's, marked apart from the password's,
/// so that neither sealed text opens in the other's place.
fn tls_context(context: &[u8]) -> Vec<u8> {
    [b"tls:".as_slice(), context].concat()
}

/// The payload of a sync job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncJob {
    pub sync_id: SyncId,
    pub catalog_id: CatalogId,
    pub source: SourceTarget,
    /// The source password, sealed with the sync id as associated data.
    pub sealed_password: String,
    /// The TLS material, sealed likewise ([`SealedCredentials::sealed_tls`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_tls: Option<String>,
    /// Which schemas to read.
    #[serde(default)]
    pub schemas: SchemaFilter,
    /// The trace of the request that queued the job, which the worker's spans continue
    /// (absent when traces are not exported, and in scheduled syncs: they start a trace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
}

/// A job of the sync queue: a catalog's sync, or a whole-server sync's discovery. Untagged, so
/// the payload of a catalog's sync is the [`SyncJob`] itself; a [`ServerJob`] is told apart by
/// its `databases` field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Job {
    Server(ServerJob),
    Catalog(SyncJob),
}
