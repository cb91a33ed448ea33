//! `pg-catalog-sync-worker`: takes sync jobs from the queue and runs them.

use clap::Parser;
use pg_catalog_sync::config::WorkerConfig;
use pg_catalog_sync::queue::Worker;
use pg_catalog_sync::{db, monitoring, shutdown, telemetry};

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
    telemetry::init();
    let config = Cli::parse().config;
    let pool = db::connect(&config.store)?;
    let signal = shutdown::on_signal();
    db::migrate_when_available(&pool, &signal).await?;

    if let Some(addr) = &config.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(%addr, "worker metrics listening");
        let app = monitoring::router(None, &config.store.queue_name);
        tokio::spawn(pg_catalog_sync::api::serve(listener, app, signal.clone()));
    }
    let worker = Worker::new(config, pool)?.start();
    signal.cancelled().await;
    worker.shutdown.cancel();
    worker.join.await??;
    Ok(())
}
