//! Fetching a source's metadata: straight from its `pg_catalog`, or from an external HTTP
//! metadata service. Every failure is classified as transient (worth retrying) or permanent.

mod database;
mod http;
mod secrets;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use crate::access::SourcePolicy;
use crate::catalog::{End, Piece, SchemaFilter};
use crate::join::join_task;

pub use database::DatabaseSource;
pub use http::HttpSource;
pub use secrets::{
    MAX_CLIENT_CERT_BYTES, MAX_CLIENT_KEY_BYTES, MAX_ROOT_CERT_BYTES, PemContent, SourceSecrets,
    SourceTls, check_pem,
};

/// Where a source database is and who to connect as (the password and TLS material travel
/// separately, as [`SourceSecrets`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslmode: Option<String>,
}

impl SourceTarget {
    /// `host:port/dbname`: how a catalog's source is shown (never the user or password).
    pub fn display(&self) -> String {
        format_source(&self.host, self.port, &self.dbname)
    }
}

pub fn format_source(host: &str, port: impl std::fmt::Display, dbname: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}/{dbname}")
    } else {
        format!("{host}:{port}/{dbname}")
    }
}

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Connection refused or reset, timeouts, 5xx/429, too many connections, serialization
    /// failures, concurrent DDL: retried with backoff.
    Transient,
    /// Authentication failed, unknown database, permission denied, malformed payload: fails at once.
    Permanent,
}

/// A failed fetch, with a message fit for the sync status (never containing the password or
/// TLS material).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub kind: FailureKind,
    pub message: String,
}

impl SourceError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Transient,
            message: message.into(),
        }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Permanent,
            message: message.into(),
        }
    }
    pub fn is_transient(&self) -> bool {
        self.kind == FailureKind::Transient
    }
}

/// Timeouts and limits shared by both kinds of source.
#[derive(Debug, Clone)]
pub struct SourceLimits {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_response_bytes: usize,
    /// Relations a read hands over at once.
    pub batch_relations: usize,
}

/// The configured way of reading metadata.
#[derive(Debug, Clone)]
pub enum MetadataSource {
    Database(DatabaseSource),
    Http(HttpSource),
}

impl MetadataSource {
    /// `Http` when an external metadata service URL is given, else the source database itself.
    /// `policy` limits the databases a database source connects to; a metadata service
    /// connects on its own, so its requests are not checked here.
    pub fn new(
        external_url: Option<&str>,
        limits: SourceLimits,
        policy: SourcePolicy,
    ) -> anyhow::Result<Self> {
        Ok(match external_url {
            Some(url) => Self::Http(HttpSource::new(url, limits)?),
            None => Self::Database(DatabaseSource::new(limits, std::sync::Arc::new(policy))),
        })
    }

    /// `database` or `http`, as recorded with each sync.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Database(_) => "database",
            Self::Http(_) => "http",
        }
    }

    /// Starts reading the catalog of `target`: its pieces come through the [`Reading`], the
    /// last one with the probe of the state it was read from where the source has one.
    /// Failing to reach the source fails here; a read that fails later ends its pieces early,
    /// and [`Reading::failure`] says why.
    pub async fn read(
        &self,
        target: &SourceTarget,
        secrets: &SourceSecrets,
        schemas: &SchemaFilter,
    ) -> Result<Reading, SourceError> {
        match self {
            // PostgreSQL itself guarantees what `validate` checks (names present, unique, short
            // enough), and the queries applied the schema filter.
            Self::Database(source) => {
                let (sender, pieces) = mpsc::channel(1);
                let reading = source
                    .read(target, secrets, schemas, sender.clone())
                    .await?;
                let schemas = schemas.clone();
                // The caller's span (the read's) lasts until the task has sent the last piece.
                let task = tokio::spawn(
                    async move {
                        let read = reading.await?;
                        let end = End {
                            probe: Some(probe_for(&read.probe, &schemas)),
                            database: Some(read.database),
                            access: Some(read.access),
                            objects: read.objects,
                        };
                        // Nobody takes it when the writer failed, which it reports itself.
                        let _ = sender.send(Piece::End(end)).await;
                        Ok(())
                    }
                    .in_current_span(),
                );
                Ok(Reading {
                    pieces,
                    task: ReadTask(Some(AbortOnDropHandle::new(task))),
                })
            }
            // The service answers one document, already in memory: its pieces are queued at
            // once, with no task to send them.
            Self::Http(source) => {
                let mut snapshot = source.fetch(target, secrets).await?;
                // A metadata service does not know the filter.
                snapshot.schemas.retain(|s| schemas.admits(&s.name));
                snapshot
                    .validate()
                    .map_err(|e| SourceError::permanent(format!("malformed metadata: {e}")))?;
                let pieces = snapshot.into_pieces(None, source.batch_relations());
                let (sender, received) = mpsc::channel(pieces.len());
                for piece in pieces {
                    sender
                        .try_send(piece)
                        .expect("the channel has room for every piece");
                }
                Ok(Reading {
                    pieces: received,
                    task: ReadTask(None),
                })
            }
        }
    }

    /// The databases of the server of `target` a whole-server sync may cover; only a database
    /// source can list them.
    pub async fn list_databases(
        &self,
        target: &SourceTarget,
        secrets: &SourceSecrets,
    ) -> Result<Vec<String>, SourceError> {
        match self {
            Self::Database(source) => source.list_databases(target, secrets).await,
            Self::Http(_) => Err(SourceError::permanent(
                "a whole-server sync needs to read the source database itself; this worker \
                 reads metadata from EXTERNAL_METADATA_URL",
            )),
        }
    }

    /// Whether [`probe`](Self::probe) can tell an unchanged catalog.
    pub fn can_probe(&self) -> bool {
        matches!(self, Self::Database(_))
    }

    /// The source's current probe with the roles the last fetch showed (`roles`), where the
    /// source can give one cheaply (a database can; a metadata service cannot). Equal to the
    /// probe of the last fetch means nothing changed.
    pub async fn probe(
        &self,
        target: &SourceTarget,
        secrets: &SourceSecrets,
        schemas: &SchemaFilter,
        roles: &[String],
    ) -> Result<Option<String>, SourceError> {
        match self {
            Self::Database(source) => Ok(Some(probe_for(
                &source.probe(target, secrets, roles).await?,
                schemas,
            ))),
            Self::Http(_) => Ok(None),
        }
    }
}

/// A read of a catalog in progress: its pieces, sent by a task (for a database source) that
/// stops, and the read with it, when the reading is dropped.
pub struct Reading {
    pub pieces: mpsc::Receiver<Piece>,
    pub task: ReadTask,
}

/// The task that sends a [`Reading`]'s pieces, if any; dropping it stops the read.
pub struct ReadTask(Option<AbortOnDropHandle<Result<(), SourceError>>>);

impl ReadTask {
    /// Why the read ended before its last piece.
    pub async fn failure(self) -> SourceError {
        let Some(task) = self.0 else {
            return SourceError::transient("the read of the catalog ended early");
        };
        match join_task(task).await {
            Ok(Err(e)) => e,
            Ok(Ok(())) => SourceError::transient("the read of the catalog ended early"),
            Err(e) => SourceError::transient(format!("the read of the catalog stopped: {e}")),
        }
    }
}

/// A probe covers one schema filter: the same catalog read with another filter is another read.
fn probe_for(catalog_probe: &str, schemas: &SchemaFilter) -> String {
    if schemas.is_empty() {
        catalog_probe.to_owned()
    } else {
        format!(
            "{catalog_probe}:{}",
            serde_json::to_string(schemas).expect("filter serializes")
        )
    }
}
