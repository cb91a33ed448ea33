//! Connecting to the store and applying its migrations.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use apalis_postgres::PostgresStorage;
use secrecy::ExposeSecret;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres, postgres::PgPoolOptions};

use crate::config::StoreConfig;

/// The store's own migrations (`migrations/`), applied after apalis's.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Opens a pool to the store. The pool connects lazily, so a process starts even while the
/// store is down and recovers by itself when it returns.
pub fn connect(config: &StoreConfig) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(config.acquire_timeout())
        .connect_lazy(config.database_url.expose_secret())?;
    Ok(pool)
}

/// Connections a batcher (see [`crate::coalesce`]) keeps between its batches. A connection
/// taken from the pool is pinged before it is handed out, and again when it is given back:
/// for a batch of one short statement, those two round trips cost as much as the statement
/// (a fifth of each enqueue batch; the first read of a relation's detail waited for one more).
/// Kept connections idle for longer than [`HeldConnections::FRESH`] go back to the pool at the
/// next batch (the pool tests them before handing them out again); one whose batch failed is
/// dropped.
pub struct HeldConnections {
    pool: PgPool,
    idle: Mutex<Vec<(PoolConnection<Postgres>, Instant)>>,
}

impl HeldConnections {
    pub const FRESH: Duration = Duration::from_secs(1);

    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `batch` on a kept connection (or a pooled one when none is fresh), and keeps the
    /// connection for the next batch if `batch` succeeded.
    pub async fn run<T, E: From<sqlx::Error>>(
        &self,
        batch: impl AsyncFnOnce(&mut PgConnection) -> Result<T, E>,
    ) -> Result<T, E> {
        let held = {
            let mut idle = self.idle.lock().expect("held connections");
            idle.retain(|(_, since)| since.elapsed() < Self::FRESH);
            idle.pop()
        };
        let mut conn = match held {
            Some((conn, _)) => conn,
            None => self.pool.acquire().await?,
        };
        let done = batch(&mut conn).await;
        if done.is_ok() {
            self.idle
                .lock()
                .expect("held connections")
                .push((conn, Instant::now()));
        }
        done
    }
}

/// Applies apalis's migrations (schema `apalis`) and then the store's, each under sqlx's
/// migration advisory lock, so any number of processes may start at once.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    PostgresStorage::setup(pool)
        .await
        .map_err(|e| anyhow::anyhow!("applying apalis migrations: {e}"))?;
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// True when the store answers and every migration this build knows is applied.
pub async fn is_ready(pool: &PgPool) -> bool {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: Result<Option<i64>, _> =
        sqlx::query_scalar("SELECT max(version) FROM public._sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await;
    matches!(applied, Ok(Some(v)) if v >= latest)
}

/// Applies the migrations, waiting for the store while it is unreachable (a process may start
/// before its database does). Gives up only when `shutdown` is cancelled.
pub async fn migrate_when_available(
    pool: &PgPool,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let mut delay = std::time::Duration::from_millis(200);
    loop {
        match migrate(pool).await {
            Ok(()) => return Ok(()),
            Err(e) if chain_is_unavailable(&e) => {
                tracing::warn!(error = %e, ?delay, "store unavailable, retrying migrations");
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => anyhow::bail!("shut down before the store became available"),
        }
        delay = (delay * 2).min(std::time::Duration::from_secs(5));
    }
}

/// Whether `e` means the store cannot be reached right now (connection lost or refused, pool
/// exhausted, server shutting down or full), as opposed to a failed statement.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
    ) || matches!(e, sqlx::Error::Database(d)
            if d.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300"))
}

/// Whether the same statement may succeed if tried again: the store was unavailable, the
/// transaction lost a serialization conflict or a deadlock, a lock or the statement timed out, or
/// the server lacked a resource (disk, memory, connections). Anything else (a constraint or a
/// trigger refusing the data, a bug) will fail the same way again.
pub fn is_transient(e: &sqlx::Error) -> bool {
    is_unavailable(e)
        || matches!(e, sqlx::Error::Database(d)
            if d.code().is_some_and(|c| c.starts_with("40") || c.starts_with("53")
                || c == "55P03" || c == "57014"))
}

/// [`is_unavailable`] for an error chain; apalis's migration error arrives as text.
fn chain_is_unavailable(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        if let Some(e) = cause.downcast_ref::<sqlx::Error>() {
            return is_unavailable(e);
        }
        let text = cause.to_string();
        text.contains("pool timed out")
            || text.contains("Connection refused")
            || text.contains("error communicating with database")
    })
}
