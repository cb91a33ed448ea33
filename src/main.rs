//! `pg-catalog-sync`: the API server (`serve`, the default) and the `migrate` command.

use anyhow::Context;
use clap::{Parser, Subcommand};
use pg_catalog_sync::access::{ApiTokens, SourcePolicy};
use pg_catalog_sync::api::{self, AppState};
use pg_catalog_sync::config::{ApiConfig, StoreConfig};
use pg_catalog_sync::crypto::CredentialsKey;
use pg_catalog_sync::{db, shutdown, telemetry};

#[derive(Parser)]
#[command(
    version,
    about = "Keeps a live, queryable copy of PostgreSQL catalog metadata"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

/// `pg-catalog-sync` without a subcommand: serve, configured from the environment.
#[derive(Parser)]
struct ServeOnly {
    #[command(flatten)]
    config: ApiConfig,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (the default).
    Serve(ApiConfig),
    /// Apply the store's migrations and exit.
    Migrate(StoreConfig),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Migrate(store)) => {
            let pool = db::connect(&store)?;
            db::migrate(&pool).await.context("applying migrations")?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Some(Command::Serve(config)) => serve(config).await,
        None => serve(ServeOnly::parse_from(["pg-catalog-sync"]).config).await,
    }
}

async fn serve(config: ApiConfig) -> anyhow::Result<()> {
    let key = CredentialsKey::from_base64(&config.credentials.credentials_key)?;
    let pool = db::connect(&config.store)?;
    let shutdown = shutdown::on_signal();
    db::migrate_when_available(&pool, &shutdown).await?;

    let policy = SourcePolicy::from_setting(config.source_allowlist.as_deref())
        .map_err(anyhow::Error::msg)?;
    let tokens = config.api_tokens.as_ref().and_then(ApiTokens::parse);
    if tokens.is_none() {
        tracing::warn!("API_TOKENS is not set: the API accepts every request");
    }
    let state = AppState::new(
        pool,
        key,
        &config.store.queue_name,
        config.sync_max_attempts.max(1),
        config.max_body_bytes,
    )
    .with_tokens(tokens)
    .with_source_policy(policy);
    let addr = format!("{}:{}", config.bind_addr, config.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, "API listening");
    api::serve(listener, api::router(state), shutdown).await?;
    tracing::info!("API stopped");
    Ok(())
}
