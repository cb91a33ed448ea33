//! Typed configuration of the API server and the worker, read from flags or the environment.

use std::time::Duration;

use clap::Args;
use secrecy::SecretString;

/// Settings every process that talks to the store shares.
#[derive(Debug, Clone, Args)]
pub struct StoreConfig {
    /// Connection string of the store (this service's own PostgreSQL database).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: SecretString,

    /// Largest number of store connections this process opens.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 20)]
    pub database_max_connections: u32,

    /// How long a request waits for a store connection before the store counts as unavailable.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_MS", default_value_t = 3000)]
    pub database_acquire_timeout_ms: u64,

    /// Name of the apalis queue the sync jobs go through.
    #[arg(long, env = "QUEUE_NAME", default_value = "pg-catalog-sync")]
    pub queue_name: String,
}

impl StoreConfig {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.database_acquire_timeout_ms)
    }
}

/// The key that seals source passwords in job payloads; API and workers must share it.
#[derive(Debug, Clone, Args)]
pub struct CredentialsConfig {
    /// 32 random bytes, base64-encoded (`openssl rand -base64 32`).
    #[arg(long, env = "CREDENTIALS_KEY", hide_env_values = true)]
    pub credentials_key: SecretString,
}

/// Configuration of the API server.
#[derive(Debug, Clone, Args)]
pub struct ApiConfig {
    #[command(flatten)]
    pub store: StoreConfig,

    #[command(flatten)]
    pub credentials: CredentialsConfig,

    /// Address to listen on.
    #[arg(long, env = "BIND_ADDR", default_value = "0.0.0.0")]
    pub bind_addr: String,

    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Attempts a sync gets before it is marked failed (transient source errors are retried).
    #[arg(long, env = "SYNC_MAX_ATTEMPTS", default_value_t = 5)]
    pub sync_max_attempts: i32,

    /// Bearer tokens, comma-separated: a bare token has every scope; `name:scopes:token` (scopes
    /// `read`, `sync`, `admin` joined by `+`, an optional fourth field of catalog ids joined by
    /// `+`) names and limits one. When set, every endpoint but /health and /ready needs one.
    #[arg(long, env = "API_TOKENS", hide_env_values = true)]
    pub api_tokens: Option<SecretString>,

    /// Mutating requests each token (each client address without tokens) may make: `50/s`,
    /// `600/m`, `3000/h` (bursts of twice that), or `off`.
    #[arg(long, env = "RATE_LIMIT", default_value = "50/s")]
    pub rate_limit: crate::api::rate_limit::RateSetting,

    /// A file of more tokens, one entry (as in `API_TOKENS`) per line; `#` starts a comment.
    #[arg(long, env = "API_TOKENS_FILE")]
    pub api_tokens_file: Option<std::path::PathBuf>,

    /// Hosts and networks syncs may connect to, e.g. `10.0.0.0/8,db.internal`; without it every
    /// host but loopback, link-local, unspecified, 0.0.0.0/8 and IPv6 unique-local addresses.
    #[arg(long, env = "SOURCE_ALLOWLIST")]
    pub source_allowlist: Option<String>,

    /// Hosts and networks webhook receivers may be at, as `SOURCE_ALLOWLIST` (which applies
    /// when this is unset).
    #[arg(long, env = "WEBHOOK_ALLOWLIST")]
    pub webhook_allowlist: Option<String>,
}

/// Configuration of a worker process.
#[derive(Debug, Clone, Args)]
pub struct WorkerConfig {
    #[command(flatten)]
    pub store: StoreConfig,

    #[command(flatten)]
    pub credentials: CredentialsConfig,

    /// Syncs one worker process runs at the same time.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 8)]
    pub concurrency: usize,

    /// Jobs taken from the queue per fetch.
    #[arg(long, env = "WORKER_BATCH_SIZE", default_value_t = 8)]
    pub batch_size: usize,

    /// How often an idle worker polls the queue besides LISTEN/NOTIFY wake-ups.
    #[arg(long, env = "WORKER_POLL_INTERVAL_MS", default_value_t = 25)]
    pub poll_interval_ms: u64,

    /// Interval of the worker's heartbeat in the store.
    #[arg(long, env = "WORKER_HEARTBEAT_SECS", default_value_t = 5)]
    pub heartbeat_secs: u64,

    /// Missed heartbeats after which a worker counts as dead and its jobs are re-run elsewhere.
    #[arg(long, env = "WORKER_MISSED_HEARTBEATS", default_value_t = 3)]
    pub missed_heartbeats: usize,

    /// Shortest delay before retrying a transient failure.
    #[arg(long, env = "RETRY_MIN_DELAY_MS", default_value_t = 500)]
    pub retry_min_delay_ms: u64,

    /// Longest delay between two attempts.
    #[arg(long, env = "RETRY_MAX_DELAY_MS", default_value_t = 30_000)]
    pub retry_max_delay_ms: u64,

    /// When set, metadata is fetched from this external metadata service
    /// (`POST {url}/api/metadata`) instead of from the source database itself.
    #[arg(long, env = "EXTERNAL_METADATA_URL")]
    pub external_metadata_url: Option<String>,

    /// Time allowed to connect to a source database or metadata service.
    #[arg(long, env = "SOURCE_CONNECT_TIMEOUT_MS", default_value_t = 10_000)]
    pub source_connect_timeout_ms: u64,

    /// Statement timeout on the source, and the whole-request timeout of the metadata service.
    #[arg(long, env = "SOURCE_TIMEOUT_MS", default_value_t = 60_000)]
    pub source_timeout_ms: u64,

    /// Relations read and written per batch of a sync: larger batches cost the source fewer
    /// statements and the worker more memory.
    #[arg(long, env = "SYNC_BATCH_RELATIONS", default_value_t = 2_500,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub sync_batch_relations: u32,

    /// Largest metadata-service response accepted, in bytes.
    #[arg(long, env = "SOURCE_MAX_RESPONSE_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub source_max_response_bytes: usize,

    /// Time in-flight syncs get to finish after SIGTERM before the process exits anyway
    /// (unfinished jobs are then re-run by another worker after the heartbeat timeout).
    #[arg(long, env = "WORKER_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Name prefix of this worker; the process id and a counter make it unique.
    #[arg(long, env = "WORKER_NAME")]
    pub worker_name: Option<String>,

    /// Hosts and networks syncs may connect to (checked after DNS resolution); see the API's.
    #[arg(long, env = "SOURCE_ALLOWLIST")]
    pub source_allowlist: Option<String>,

    /// Where this worker serves `GET /metrics` (e.g. `0.0.0.0:9100`); unset: no metrics server.
    #[arg(long, env = "WORKER_METRICS_ADDR")]
    pub metrics_addr: Option<String>,

    /// Ended syncs older than this are deleted, except each catalog's latest, whose sealed
    /// credentials are removed instead (it can then no longer be retried by hand).
    #[arg(long, env = "SYNC_RETENTION", default_value = "7d", value_parser = crate::duration::parse_arg)]
    pub sync_retention: Duration,

    /// Connections all workers together open to one source host at most; a sync reads over
    /// two, and waits in the queue while they are taken. At least 2.
    #[arg(long, env = "SOURCE_HOST_CONNECTIONS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..))]
    pub source_host_connections: u32,

    /// Audit log entries older than this are deleted.
    #[arg(long, env = "AUDIT_RETENTION", default_value = "90d", value_parser = crate::duration::parse_arg)]
    pub audit_retention: Duration,

    #[command(flatten)]
    pub webhooks: WebhookConfig,
}

/// How a worker delivers webhook events.
#[derive(Debug, Clone, Args)]
pub struct WebhookConfig {
    /// Hosts and networks webhook receivers may be at (checked after DNS resolution), as
    /// `SOURCE_ALLOWLIST` (which applies when this is unset).
    #[arg(long, env = "WEBHOOK_ALLOWLIST")]
    pub webhook_allowlist: Option<String>,

    /// Deliveries one worker process makes at the same time.
    #[arg(long, env = "WEBHOOK_CONCURRENCY", default_value_t = 32)]
    pub webhook_concurrency: usize,

    /// Shortest delay before a failed delivery is tried again.
    #[arg(long, env = "WEBHOOK_RETRY_MIN_DELAY_MS", default_value_t = 1_000)]
    pub webhook_retry_min_delay_ms: u64,

    /// Longest delay between two attempts of a delivery.
    #[arg(long, env = "WEBHOOK_RETRY_MAX_DELAY_MS", default_value_t = 3_600_000)]
    pub webhook_retry_max_delay_ms: u64,

    /// A delivery is given up once its next attempt would come later than this after its event.
    #[arg(long, env = "WEBHOOK_MAX_AGE", default_value = "24h", value_parser = crate::duration::parse_arg)]
    pub webhook_max_age: Duration,

    /// Time a receiver gets to answer, connection included.
    #[arg(long, env = "WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,

    /// Failed attempts in a row after which a subscription is disabled (with the reason shown).
    #[arg(long, env = "WEBHOOK_DISABLE_AFTER", default_value_t = 50,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub webhook_disable_after: i32,
}

impl WorkerConfig {
    pub fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
}
