//! A worker process's queue consumer: an apalis worker over the store's job table, plus its
//! housekeeping (finished jobs, retention, schedules).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::housekeeping::Housekeeping;
use super::source_slots::SourceSlots;
use super::{RetryPolicy, SyncJob, SyncRunner};
use crate::access::SourcePolicy;
use crate::config::WorkerConfig;
use crate::crypto::CredentialsKey;
use crate::source::{MetadataSource, SourceLimits};

/// A configured worker, ready to start.
pub struct Worker {
    pub name: String,
    pub pool: PgPool,
    pub runner: SyncRunner,
    pub config: WorkerConfig,
}

/// A running worker: cancel its token to stop it gracefully, then await `join`.
pub struct WorkerHandle {
    pub name: String,
    pub shutdown: CancellationToken,
    pub join: JoinHandle<anyhow::Result<()>>,
}

static WORKER_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A name unique across processes and within one: `{prefix or hostname}-{pid}-{n}`. apalis
/// needs it: a second worker registered under the same name silently processes nothing.
pub fn unique_worker_name(prefix: Option<&str>) -> String {
    let prefix = prefix.map(str::to_owned).unwrap_or_else(|| {
        std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "worker".into())
    });
    let n = WORKER_SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

impl Worker {
    pub fn new(config: WorkerConfig, pool: PgPool) -> anyhow::Result<Self> {
        crate::monitoring::handle(); // record from the first sync on
        let key = CredentialsKey::from_base64(&config.credentials.credentials_key)?;
        let limits = SourceLimits {
            connect_timeout: WorkerConfig::ms(config.source_connect_timeout_ms),
            timeout: WorkerConfig::ms(config.source_timeout_ms),
            max_response_bytes: config.source_max_response_bytes,
            batch_relations: config.sync_batch_relations as usize,
        };
        let policy = SourcePolicy::from_setting(config.source_allowlist.as_deref())
            .map_err(anyhow::Error::msg)?;
        let source = MetadataSource::new(config.external_metadata_url.as_deref(), limits, policy)?;
        let slots = matches!(source, MetadataSource::Database(_))
            .then(|| SourceSlots::new(pool.clone(), config.source_host_connections));
        let runner = SyncRunner {
            pool: pool.clone(),
            key,
            source: Arc::new(source),
            retry: RetryPolicy {
                min_delay: WorkerConfig::ms(config.retry_min_delay_ms),
                max_delay: WorkerConfig::ms(config.retry_max_delay_ms),
            },
            shutdown: CancellationToken::new(),
            slots,
        };
        Ok(Self {
            name: unique_worker_name(config.worker_name.as_deref()),
            pool,
            runner,
            config,
        })
    }

    /// Starts consuming the queue in the background.
    pub fn start(self) -> WorkerHandle {
        let shutdown = self.runner.shutdown.clone();
        let name = self.name.clone();
        let join = tokio::spawn(self.run());
        WorkerHandle {
            name,
            shutdown,
            join,
        }
    }

    /// Consumes the queue until shutdown. apalis stops a worker whose store connection fails
    /// in the middle of its bookkeeping; the jobs it held come back through orphan recovery, so
    /// a fresh consumer (under a fresh name) takes over after a short pause.
    async fn run(self) -> anyhow::Result<()> {
        let Worker {
            mut name,
            pool,
            runner,
            config,
        } = self;
        let shutdown = runner.shutdown.clone();
        let runner = Arc::new(runner);
        let housekeeping = Housekeeping {
            pool: pool.clone(),
            queue: config.store.queue_name.clone(),
            key: runner.key.clone(),
            retention: config.sync_retention,
            audit_retention: config.audit_retention,
        };
        let housekeeping = tokio::spawn(housekeeping.run(shutdown.clone()));
        let mut delay = Duration::from_millis(500);
        let result = loop {
            let started = tokio::time::Instant::now();
            let outcome = consume(&name, &pool, runner.clone(), &config, &shutdown).await;
            if shutdown.is_cancelled() {
                break outcome;
            }
            if started.elapsed() > Duration::from_secs(60) {
                delay = Duration::from_millis(500);
            }
            let error = outcome
                .err()
                .map_or_else(|| "stopped".to_owned(), |e| e.to_string());
            warn!(worker = %name, %error, ?delay, "queue consumer stopped; starting a new one");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => break Ok(()),
            }
            delay = (delay * 2).min(Duration::from_secs(10));
            name = unique_worker_name(config.worker_name.as_deref());
        };
        housekeeping.abort();
        info!(worker = %name, "worker stopped");
        result
    }
}

/// One apalis consumer of the queue, until shutdown or until apalis gives up.
async fn consume(
    name: &str,
    pool: &PgPool,
    runner: Arc<SyncRunner>,
    config: &WorkerConfig,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let queue_config = apalis_postgres::Config::default()
        .queue(&config.store.queue_name)
        .batch_size(config.batch_size.max(1))
        .heartbeat_interval(Duration::from_secs(config.heartbeat_secs.max(1)))
        .missed_heartbeats(config.missed_heartbeats.max(1));
    // LISTEN/NOTIFY wakes an idle worker at once; the short poll catches what a notification
    // misses (delayed and re-queued jobs, a wake-up lost during a fetch).
    let backend = PostgresStorage::<SyncJob>::new(pool)
        .with_config(queue_config)
        .with_pubsub()
        .poll_with_interval(WorkerConfig::ms(config.poll_interval_ms.max(1)));
    let worker = WorkerBuilder::new(name)
        .backend(backend)
        .data(runner)
        .concurrency(config.concurrency.max(1))
        .build(handle_sync);
    info!(worker = %name, queue = %config.store.queue_name, "worker started");

    let stop = shutdown.clone();
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let run = worker.run_until(async move {
        stop.cancelled().await;
        Ok::<(), WorkerError>(())
    });
    tokio::select! {
        r = run => r.map_err(|e| anyhow::anyhow!("worker {name} stopped: {e}")),
        _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            warn!(worker = %name, ?grace, "in-flight syncs did not finish in time; they will be re-run after the heartbeat timeout");
            Ok(())
        }
    }
}

/// The apalis handler: runs one sync job on its own task, so syncs use every core (apalis
/// drives all of a worker's handlers from one task).
async fn handle_sync(
    job: SyncJob,
    runner: Data<Arc<SyncRunner>>,
    worker: WorkerContext,
) -> Result<(), BoxDynError> {
    let runner = Arc::clone(&runner);
    let name = worker.name().to_owned();
    let sync_id = job.sync_id;
    let result = tokio::spawn(async move { runner.run(&job, &name).await }).await?;
    result.map_err(|e| {
        warn!(%sync_id, error = %e, "sync released to the queue");
        e.into()
    })
}
