//! `pg-catalog-sync`: the API server (`serve`, the default), the `migrate` command, and the
//! command-line client (`sync`, `status`, `catalogs`, `tables`, `diff`, `ddl`, `webhooks listen`).

use anyhow::Context;
use clap::{Parser, Subcommand};
use pg_catalog_sync::access::{ApiTokens, SourcePolicy};
use pg_catalog_sync::api::{self, AppState};
use pg_catalog_sync::config::{ApiConfig, StoreConfig};
use pg_catalog_sync::crypto::CredentialsKey;
use pg_catalog_sync::{cli, db, shutdown, telemetry};
use secrecy::ExposeSecret;

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
    /// Sync a source database through a running API (`--wait` to follow it to its end).
    Sync(cli::SyncArgs),
    /// Show a sync's status.
    Status(cli::StatusArgs),
    /// List the catalogs with their latest status.
    Catalogs(cli::CatalogsArgs),
    /// List a catalog's tables and views.
    Tables(cli::TablesArgs),
    /// Show what differs between two syncs of one catalog, or two catalogs (`--fail-on` to gate
    /// CI on it).
    Diff(cli::DiffArgs),
    /// Receive webhooks locally and print the verified events (`webhooks listen`).
    Webhooks(cli::WebhooksArgs),
    /// Print SQL that recreates a catalog's schema (`--schema` for one schema).
    Ddl(cli::DdlArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Some(Command::Migrate(store)) => {
            telemetry::init(telemetry::API);
            let pool = db::connect(&store)?;
            db::migrate(&pool).await.context("applying migrations")?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Some(Command::Serve(config)) => serve(config).await,
        None => serve(ServeOnly::parse_from(["pg-catalog-sync"]).config).await,
        Some(Command::Sync(args)) => exit_with(cli::sync(args).await),
        Some(Command::Status(args)) => exit_with(cli::status(args).await),
        Some(Command::Catalogs(args)) => exit_with(cli::catalogs(args).await),
        Some(Command::Tables(args)) => exit_with(cli::tables(args).await),
        Some(Command::Diff(args)) => exit_with(cli::diff(args).await),
        Some(Command::Webhooks(args)) => exit_with(cli::webhooks(args).await),
        Some(Command::Ddl(args)) => exit_with(cli::ddl(args).await),
    }
}

/// Ends a client command: it prints for people, so no log lines and a plain error.
fn exit_with(outcome: anyhow::Result<bool>) -> ! {
    match outcome {
        Ok(true) => std::process::exit(0),
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

/// The tokens of `API_TOKENS` and of the file `API_TOKENS_FILE` names, as one list.
fn api_tokens(config: &ApiConfig) -> anyhow::Result<Option<ApiTokens>> {
    let mut text = config
        .api_tokens
        .as_ref()
        .map(|t| t.expose_secret().to_owned())
        .unwrap_or_default();
    if let Some(path) = &config.api_tokens_file {
        let file = std::fs::read_to_string(path)
            .with_context(|| format!("reading API_TOKENS_FILE {}", path.display()))?;
        text.push('\n');
        text.push_str(&file);
    }
    ApiTokens::parse(&text).context("API_TOKENS")
}

async fn serve(config: ApiConfig) -> anyhow::Result<()> {
    telemetry::init(telemetry::API);
    let key = CredentialsKey::from_base64(&config.credentials.credentials_key)?;
    let pool = db::connect(&config.store)?;
    let shutdown = shutdown::on_signal();
    db::migrate_when_available(&pool, &shutdown).await?;

    let policy = SourcePolicy::from_setting(config.source_allowlist.as_deref())
        .map_err(anyhow::Error::msg)?;
    let webhook_policy = SourcePolicy::from_setting(
        config
            .webhook_allowlist
            .as_deref()
            .or(config.source_allowlist.as_deref()),
    )
    .map_err(anyhow::Error::msg)?;
    let tokens = api_tokens(&config)?;
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
    .with_rate_limit(config.rate_limit)
    .with_source_policy(policy)
    .with_webhook_policy(webhook_policy);
    let addr = format!("{}:{}", config.bind_addr, config.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, "API listening");
    shutdown::serve(listener, api::router(state), shutdown).await?;
    tracing::info!("API stopped");
    telemetry::shutdown().await;
    Ok(())
}
