//! `pg-catalog-sync-worker`: takes sync jobs from the queue and runs them.

use clap::Parser;
use pg_catalog_sync::config::WorkerConfig;
use pg_catalog_sync::queue::Worker;
use pg_catalog_sync::{db, monitoring, shutdown, telemetry};

/// jemalloc instead of glibc's malloc. A big sync allocates a lot for a few seconds, much of it
/// on short-lived blocking threads; glibc's malloc keeps it after the sync (a thread's arena is
/// not trimmed), and the next big sync takes more beside it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts (`_RJEM_MALLOC_CONF` in the environment overrides
/// them): a background thread gives freed pages back to the system about a second after a sync
/// let go of them, so a big sync reuses or returns the last one's memory instead of adding to
/// it, and an idle worker is small again.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &std::ffi::c_char =
    // SAFETY: a pointer to the first byte of a static, NUL-terminated string.
    unsafe { &*c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr() };

#[derive(Parser)]
#[command(
    version,
    about = "Runs catalog syncs taken from the pg-catalog-sync queue"
)]
struct Cli {
    #[command(flatten)]
    config: WorkerConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init(telemetry::WORKER);
    let config = Cli::parse().config;
    let pool = db::connect(&config.store)?;
    let signal = shutdown::on_signal();
    db::migrate_when_available(&pool, &signal).await?;

    if let Some(addr) = &config.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(%addr, "worker metrics listening");
        let app = monitoring::router(None, &config.store.queue_name);
        tokio::spawn(shutdown::serve(listener, app, signal.clone()));
    }
    let worker = Worker::new(config, pool)?.start();
    signal.cancelled().await;
    worker.shutdown.cancel();
    let stopped = worker.join.await;
    telemetry::shutdown().await;
    stopped?
}
