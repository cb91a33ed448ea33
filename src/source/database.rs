//! Reading metadata straight from the source database.

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection};

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{SourceError, SourceLimits, SourceTarget};
use crate::access::SourcePolicy;
use crate::catalog::{End, Piece, SchemaFilter, Snapshot};
use crate::introspect;

#[derive(Debug, Clone)]
pub struct DatabaseSource {
    limits: SourceLimits,
    policy: Arc<SourcePolicy>,
}

impl DatabaseSource {
    pub fn new(limits: SourceLimits, policy: Arc<SourcePolicy>) -> Self {
        Self { limits, policy }
    }

    /// Connects to the source, and answers the read of its catalog into `out`, which returns
    /// what the read learnt last. Connecting fails here; the read fails when run.
    pub async fn read(
        &self,
        target: &SourceTarget,
        password: &SecretString,
        schemas: &SchemaFilter,
        out: mpsc::Sender<Piece>,
    ) -> Result<impl Future<Output = Result<introspect::Read, SourceError>> + use<>, SourceError>
    {
        let options = self.connect_options(target, password).await?;

        // Two connections: half of the catalog queries run on the second, in the same snapshot.
        let connect = async { tokio::try_join!(options.connect(), options.connect()) };
        let (mut conn, mut helper) = tokio::time::timeout(self.limits.connect_timeout, connect)
            .await
            .map_err(|_| {
                SourceError::transient(format!(
                    "connecting to the source timed out after {:?}",
                    self.limits.connect_timeout
                ))
            })?
            .map_err(classify)?;

        let options = introspect::Options {
            statement_timeout: self.limits.timeout,
            schemas: schemas.clone(),
            batch_relations: self.limits.batch_relations,
        };
        Ok(async move {
            let read = introspect::introspect(&mut conn, &mut helper, &options, &out).await;
            let _ = tokio::join!(conn.close(), helper.close());
            read.map_err(classify_read)
        })
    }

    /// The whole catalog of `target` as one snapshot, for what must answer a whole document.
    pub async fn snapshot(
        &self,
        target: &SourceTarget,
        password: &SecretString,
        schemas: &SchemaFilter,
    ) -> Result<Snapshot, SourceError> {
        let (sender, mut received) = mpsc::channel(1);
        let read = self.read(target, password, schemas, sender).await?;
        let gather = async {
            let mut pieces = Vec::new();
            while let Some(piece) = received.recv().await {
                pieces.push(piece);
            }
            pieces
        };
        let (read, mut pieces) = tokio::join!(read, gather);
        let read = read?;
        pieces.push(Piece::End(End {
            database: Some(read.database),
            probe: None,
            access: Some(read.access),
        }));
        Ok(Snapshot::from_pieces(pieces))
    }

    /// The probe of the source's catalog state: one connection, one cheap query.
    pub async fn probe(
        &self,
        target: &SourceTarget,
        password: &SecretString,
    ) -> Result<String, SourceError> {
        let options = self.connect_options(target, password).await?;
        let run = async {
            let mut conn = options.connect().await?;
            let probe = introspect::probe(&mut conn).await;
            let _ = conn.close().await;
            probe
        };
        tokio::time::timeout(self.limits.connect_timeout + self.limits.timeout, run)
            .await
            .map_err(|_| SourceError::transient("probing the source timed out"))?
            .map_err(classify)
    }

    /// Connection options to an address the source policy allows: the host is resolved and
    /// checked, and the connection goes to the checked address (so DNS cannot answer
    /// differently in between), except with `verify-full`, whose certificate check needs the
    /// name.
    async fn connect_options(
        &self,
        target: &SourceTarget,
        password: &SecretString,
    ) -> Result<PgConnectOptions, SourceError> {
        let resolved = tokio::time::timeout(
            self.limits.connect_timeout,
            self.policy.resolve(&target.host, target.port),
        )
        .await
        .map_err(|_| SourceError::transient(format!("resolving {:?} timed out", target.host)))?;
        let addresses = resolved.map_err(|message| {
            if message.contains("not allowed") {
                SourceError::permanent(message)
            } else {
                SourceError::transient(message)
            }
        })?;
        let host = match target.sslmode.as_deref() {
            Some("verify-full") => target.host.clone(),
            _ => addresses[0].to_string(),
        };
        let mut options = PgConnectOptions::new()
            .host(&host)
            .port(target.port)
            .username(&target.user)
            .password(password.expose_secret())
            .database(&target.dbname)
            .application_name("pg-catalog-sync")
            .log_statements(tracing::log::LevelFilter::Off);
        if let Some(mode) = &target.sslmode {
            let mode: PgSslMode = mode
                .parse()
                .map_err(|_| SourceError::permanent(format!("invalid sslmode {mode:?}")))?;
            options = options.ssl_mode(mode);
        }
        Ok(options)
    }
}

/// Sorts a failed read: a query's error by [`classify`], the rest (the read's own machinery
/// failing) as worth another try.
fn classify_read(err: introspect::ReadError) -> SourceError {
    match err {
        introspect::ReadError::Query(e) => classify(e),
        other => SourceError::transient(format!("reading the source catalog failed: {other}")),
    }
}

/// Sorts a source database error into transient or permanent, by SQLSTATE where there is one.
pub fn classify(err: sqlx::Error) -> SourceError {
    match &err {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let message = format!("source database: {} (SQLSTATE {code})", db.message());
            let transient = code.starts_with("08")            // connection exception
                || code.starts_with("53")                     // insufficient resources, too many connections
                || code.starts_with("57P")                    // admin shutdown, cannot connect now
                || code == "57014"                            // statement timeout / query canceled
                || code == "40001" || code == "40P01"         // serialization failure, deadlock
                || (code == "XX000" && db.message().contains("cache lookup failed")); // concurrent DDL
            if transient {
                SourceError::transient(message)
            } else {
                SourceError::permanent(message)
            }
        }
        // TLS handshake failures (an untrusted or mismatched certificate) surface as invalid
        // data on the socket; they do not get better on retry.
        sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            SourceError::permanent(format!("TLS with the source failed: {e}"))
        }
        sqlx::Error::Io(e) => SourceError::transient(format!("source database unreachable: {e}")),
        sqlx::Error::Tls(e) => SourceError::permanent(format!("TLS with the source failed: {e}")),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            SourceError::transient("source connection unavailable")
        }
        sqlx::Error::Protocol(e) => SourceError::transient(format!("source protocol error: {e}")),
        sqlx::Error::Configuration(e) => {
            SourceError::permanent(format!("invalid source connection settings: {e}"))
        }
        other => SourceError::permanent(format!("reading the source catalog failed: {other}")),
    }
}
