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

use super::delivery::{Deliverer, DeliverySettings};
use super::housekeeping::Housekeeping;
use super::source_slots::SourceSlots;
use super::{Job, RetryPolicy, SyncRunner};
use crate::access::{SourcePolicy, Subject};
use crate::config::WorkerConfig;
use crate::crypto::CredentialsKey;
use crate::source::{MetadataSource, SourceLimits};
use crate::store::deliveries::{self, DeliveryJob};

/// A configured worker, ready to start.
pub struct Worker {
    pub name: String,
    pub pool: PgPool,
    pub runner: SyncRunner,
    pub deliverer: Deliverer,
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
        let webhooks = &config.webhooks;
        let webhook_policy = SourcePolicy::from_setting(
            webhooks
                .webhook_allowlist
                .as_deref()
                .or(config.source_allowlist.as_deref()),
        )
        .map_err(anyhow::Error::msg)?
        .guarding(Subject::Webhook);
        let webhook_queue = deliveries::queue_name(&config.store.queue_name);
        let deliverer = Deliverer::new(
            pool.clone(),
            key.clone(),
            webhook_policy,
            DeliverySettings {
                retry: RetryPolicy {
                    min_delay: WorkerConfig::ms(webhooks.webhook_retry_min_delay_ms),
                    max_delay: WorkerConfig::ms(webhooks.webhook_retry_max_delay_ms),
                },
                max_age: webhooks.webhook_max_age,
                timeout: WorkerConfig::ms(webhooks.webhook_timeout_ms),
                disable_after: webhooks.webhook_disable_after,
            },
            &webhook_queue,
        )?;
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
            webhook_queue: webhook_queue.into(),
            queue: config.store.queue_name.as_str().into(),
        };
        Ok(Self {
            name: unique_worker_name(config.worker_name.as_deref()),
            pool,
            runner,
            deliverer,
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
            deliverer,
            config,
        } = self;
        let shutdown = runner.shutdown.clone();
        let runner = Arc::new(runner);
        let deliverer = Arc::new(deliverer);
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
            let consumers = Consumers {
                runner: runner.clone(),
                deliverer: deliverer.clone(),
            };
            let outcome = consume(&name, &pool, consumers, &config, &shutdown).await;
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

/// What a worker's consumers run: syncs, and webhook deliveries.
struct Consumers {
    runner: Arc<SyncRunner>,
    deliverer: Arc<Deliverer>,
}

/// The apalis consumers of the sync queue and of the webhook queue, until shutdown or until
/// apalis gives up on either. Deliveries have a queue of their own, so that a burst of them
/// never waits behind long syncs, nor syncs behind them.
async fn consume(
    name: &str,
    pool: &PgPool,
    consumers: Consumers,
    config: &WorkerConfig,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let queue_config = |queue: &str, batch: usize| {
        apalis_postgres::Config::default()
            .queue(queue)
            .batch_size(batch.max(1))
            .heartbeat_interval(Duration::from_secs(config.heartbeat_secs.max(1)))
            .missed_heartbeats(config.missed_heartbeats.max(1))
    };
    let poll = WorkerConfig::ms(config.poll_interval_ms.max(1));
    // LISTEN/NOTIFY wakes an idle worker at once; the short poll catches what a notification
    // misses (delayed and re-queued jobs, a wake-up lost during a fetch).
    let syncs = PostgresStorage::<Job>::new(pool)
        .with_config(queue_config(&config.store.queue_name, config.batch_size))
        .with_pubsub()
        .poll_with_interval(poll);
    let sync_worker = WorkerBuilder::new(name)
        .backend(syncs)
        .data(consumers.runner)
        .concurrency(config.concurrency.max(1))
        .build(handle_sync);
    let webhook_queue = deliveries::queue_name(&config.store.queue_name);
    let concurrency = config.webhooks.webhook_concurrency.max(1);
    let webhooks = PostgresStorage::<DeliveryJob>::new(pool)
        .with_config(queue_config(&webhook_queue, concurrency))
        .with_pubsub()
        .poll_with_interval(poll);
    let delivery_name = format!("{name}-webhooks");
    let delivery_worker = WorkerBuilder::new(delivery_name.as_str())
        .backend(webhooks)
        .data(consumers.deliverer)
        .concurrency(concurrency)
        .build(handle_delivery);
    info!(worker = %name, queue = %config.store.queue_name, %webhook_queue, "worker started");

    let stopped = |stop: CancellationToken| async move {
        stop.cancelled().await;
        Ok::<(), WorkerError>(())
    };
    let run_syncs = sync_worker.run_until(stopped(shutdown.clone()));
    let run_deliveries = delivery_worker.run_until(stopped(shutdown.clone()));
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    tokio::select! {
        r = async { tokio::try_join!(run_syncs, run_deliveries) } => {
            r.map(|_| ()).map_err(|e| anyhow::anyhow!("worker {name} stopped: {e}"))
        }
        _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            warn!(worker = %name, ?grace, "in-flight jobs did not finish in time; they will be re-run after the heartbeat timeout");
            Ok(())
        }
    }
}

/// The apalis handler of the webhook queue: one delivery attempt.
async fn handle_delivery(
    job: DeliveryJob,
    deliverer: Data<Arc<Deliverer>>,
) -> Result<(), BoxDynError> {
    let deliverer = Arc::clone(&deliverer);
    let id = job.delivery_id;
    tokio::spawn(async move { deliverer.deliver(job).await })
        .await?
        .map_err(|e| {
            warn!(delivery = %id, error = %e, "delivery released to the queue");
            e.into()
        })
}

/// The apalis handler: runs one sync job (or a whole-server sync's discovery) on its own task,
/// so syncs use every core (apalis drives all of a worker's handlers from one task).
async fn handle_sync(
    job: Job,
    runner: Data<Arc<SyncRunner>>,
    worker: WorkerContext,
) -> Result<(), BoxDynError> {
    let runner = Arc::clone(&runner);
    let name = worker.name().to_owned();
    let sync_id = match &job {
        Job::Catalog(job) => job.sync_id,
        Job::Server(job) => job.sync_id,
    };
    let result = tokio::spawn(async move {
        match &job {
            Job::Catalog(job) => runner.run(job, &name).await,
            Job::Server(job) => runner.discover(job, &name).await,
        }
    })
    .await?;
    result.map_err(|e| {
        warn!(%sync_id, error = %e, "sync released to the queue");
        e.into()
    })
}
