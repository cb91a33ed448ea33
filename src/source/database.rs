//! Reading metadata straight from the source database.

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection};

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{SourceError, SourceLimits, SourceSecrets, SourceTarget};
use crate::access::{SourcePolicy, address_literal};
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
        secrets: &SourceSecrets,
        schemas: &SchemaFilter,
        out: mpsc::Sender<Piece>,
    ) -> Result<impl Future<Output = Result<introspect::Read, SourceError>> + use<>, SourceError>
    {
        let options = self.connect_options(target, secrets).await?;

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
        secrets: &SourceSecrets,
        schemas: &SchemaFilter,
    ) -> Result<Snapshot, SourceError> {
        let (sender, mut received) = mpsc::channel(1);
        let read = self.read(target, secrets, schemas, sender).await?;
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
            objects: read.objects,
        }));
        Ok(Snapshot::from_pieces(pieces))
    }

    /// The probe of the source's catalog state with the roles `roles`: one connection, one
    /// cheap query.
    pub async fn probe(
        &self,
        target: &SourceTarget,
        secrets: &SourceSecrets,
        roles: &[String],
    ) -> Result<String, SourceError> {
        let options = self.connect_options(target, secrets).await?;
        let run = async {
            let mut conn = options.connect().await?;
            let probe = introspect::probe(&mut conn, roles).await;
            let _ = conn.close().await;
            probe
        };
        tokio::time::timeout(self.limits.connect_timeout + self.limits.timeout, run)
            .await
            .map_err(|_| SourceError::transient("probing the source timed out"))?
            .map_err(classify)
    }

    /// The databases of `target`'s server the user may connect to: connectable, not
    /// templates, with CONNECT for the user. It connects to the `postgres` database, or to
    /// `template1` where `postgres` is absent or refuses the user (`target.dbname` is ignored).
    pub async fn list_databases(
        &self,
        target: &SourceTarget,
        secrets: &SourceSecrets,
    ) -> Result<Vec<String>, SourceError> {
        let mut error = None;
        for dbname in DISCOVERY_DATABASES {
            let target = SourceTarget {
                dbname: dbname.to_owned(),
                ..target.clone()
            };
            let options = self.connect_options(&target, secrets).await?;
            let run = async {
                let mut conn = options.connect().await?;
                let names = sqlx::query_scalar(
                    "SELECT datname::text FROM pg_database
                     WHERE datallowconn AND NOT datistemplate
                       AND has_database_privilege(oid, 'CONNECT')
                     ORDER BY datname",
                )
                .fetch_all(&mut conn)
                .await;
                let _ = conn.close().await;
                names
            };
            let listed =
                tokio::time::timeout(self.limits.connect_timeout + self.limits.timeout, run)
                    .await
                    .map_err(|_| {
                        SourceError::transient("listing the server's databases timed out")
                    })?;
            match listed {
                Ok(names) => return Ok(names),
                Err(sqlx::Error::Database(db))
                    if matches!(db.code().as_deref(), Some("3D000" | "42501")) =>
                {
                    error = Some(classify(sqlx::Error::Database(db)));
                }
                Err(e) => return Err(classify(e)),
            }
        }
        Err(error.expect("every discovery database was tried"))
    }

    /// Connection options to an address the source policy allows: the host is resolved and
    /// checked, and the connection goes to the checked address (`hostaddr`: DNS cannot answer
    /// differently in between), while TLS sends the host's name and, with `verify-full`, checks
    /// the certificate against it.
    async fn connect_options(
        &self,
        target: &SourceTarget,
        secrets: &SourceSecrets,
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
        // An address written as a number (`2130706433`) is named by its usual form: TLS takes
        // it as an IP address, not as a DNS name.
        let host = match address_literal(&target.host) {
            Some(ip) => ip.to_string(),
            None => target.host.clone(),
        };
        let mut options = PgConnectOptions::new()
            .host(&host)
            .hostaddr(addresses[0])
            .port(target.port)
            .username(&target.user)
            .password(secrets.password.expose_secret())
            .database(&target.dbname)
            .application_name("pg-catalog-sync")
            .log_statements(tracing::log::LevelFilter::Off);
        if let Some(mode) = &target.sslmode {
            let mode: PgSslMode = mode
                .parse()
                .map_err(|_| SourceError::permanent(format!("invalid sslmode {mode:?}")))?;
            options = options.ssl_mode(mode);
        }
        let tls = &secrets.tls;
        if let Some(pem) = &tls.root_cert {
            options = options.ssl_root_cert_from_pem(pem.expose_secret().as_bytes().to_vec());
        }
        if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
            options = options
                .ssl_client_cert_from_pem(cert.expose_secret())
                .ssl_client_key_from_pem(key.expose_secret());
        }
        Ok(options)
    }
}

/// The databases whole-server discovery connects to, in turn: the first that exists and admits
/// the user answers.
const DISCOVERY_DATABASES: [&str; 2] = ["postgres", "template1"];

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
        sqlx::Error::Tls(e) => SourceError::permanent(format!(
            "TLS with the source failed: {}",
            without_pem(&e.to_string())
        )),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            SourceError::transient("source connection unavailable")
        }
        sqlx::Error::Protocol(e) => SourceError::transient(format!("source protocol error: {e}")),
        sqlx::Error::Configuration(e) => SourceError::permanent(format!(
            "invalid source connection settings: {}",
            without_pem(&e.to_string())
        )),
        other => SourceError::permanent(format!("reading the source catalog failed: {other}")),
    }
}

/// `message` up to any PEM text in it: sqlx quotes a certificate it cannot read, and what the
/// client gave as `sslrootcert` must not come back in a sync's error (nor a key, in a log).
fn without_pem(message: &str) -> String {
    match message.find("-----BEGIN") {
        Some(at) => format!("{}(PEM text left out)", &message[..at]),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_errors_leave_pem_text_out() {
        let err = sqlx::Error::Tls(
            "Invalid certificate -----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
                .into(),
        );
        let message = classify(err).message;
        assert!(!message.contains("MIIB"), "{message}");
        assert!(message.contains("Invalid certificate"), "{message}");
    }

    /// The name goes to TLS (to check the certificate against), the connection to the address
    /// the policy checked.
    #[tokio::test]
    async fn the_connection_goes_to_the_checked_address_under_the_given_name() {
        let limits = SourceLimits {
            connect_timeout: std::time::Duration::from_secs(5),
            timeout: std::time::Duration::from_secs(5),
            max_response_bytes: 1024,
            batch_relations: 10,
        };
        let policy = SourcePolicy::parse("127.0.0.0/8,localhost").unwrap();
        let source = DatabaseSource::new(limits, Arc::new(policy));
        let options_for = async |host: &str| {
            let target = SourceTarget {
                host: host.into(),
                port: 5432,
                user: "u".into(),
                dbname: "d".into(),
                sslmode: Some("verify-full".into()),
            };
            let options = source
                .connect_options(&target, &SourceSecrets::default())
                .await
                .unwrap();
            let hostaddr = options
                .to_url_lossy()
                .query_pairs()
                .find(|(k, _)| k == "hostaddr")
                .map(|(_, v)| v.into_owned());
            (options.get_host().to_owned(), hostaddr)
        };
        let (host, hostaddr) = options_for("localhost").await;
        assert_eq!(host, "localhost");
        assert!(
            hostaddr
                .as_deref()
                .and_then(|a| a.parse::<std::net::IpAddr>().ok())
                .is_some_and(|a| a.is_loopback()),
            "{hostaddr:?}"
        );
        let (host, hostaddr) = options_for("2130706433").await;
        assert_eq!(
            (host.as_str(), hostaddr.as_deref()),
            ("127.0.0.1", Some("127.0.0.1"))
        );
    }
}
