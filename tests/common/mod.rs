//! Test harness: a fresh store database per test, the API served on a real port, workers
//! in-process, source databases with known DDL, and the real mock-source binary.

#![allow(dead_code)]

pub mod counts;
pub mod receiver;
pub mod roles;
pub mod service;
pub mod summaries;
pub mod tls_server;

pub use summaries::*;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pg_catalog_sync::access::{ApiTokens, SourcePolicy};
use pg_catalog_sync::api::rate_limit::RateSetting;
use pg_catalog_sync::api::{self, AppState};
use pg_catalog_sync::config::{CredentialsConfig, StoreConfig, WebhookConfig, WorkerConfig};
use pg_catalog_sync::crypto::CredentialsKey;
use pg_catalog_sync::db;
use pg_catalog_sync::queue::{Worker, WorkerHandle};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const QUEUE: &str = "pg-catalog-sync";

/// The server's `postgres` database, from `TEST_DATABASE_URL` (set by scripts/test).
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `admin_url` with another database name.
pub fn url_for(dbname: &str) -> String {
    let admin = admin_url();
    let (base, rest) = admin
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL has a database name");
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{base}/{dbname}{query}")
}

/// Host and port of the test server, as a client of POST /sync would give them.
pub fn server_host_port() -> (String, u16) {
    let url = reqwest::Url::parse(&admin_url()).expect("TEST_DATABASE_URL parses");
    (
        url.host_str().unwrap_or("127.0.0.1").to_owned(),
        url.port().unwrap_or(5432),
    )
}

/// A database created for one test and dropped (with FORCE) when the value is dropped.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create(prefix: &str) -> Self {
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        let admin = PgPool::connect(&admin_url())
            .await
            .expect("connecting to TEST_DATABASE_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&admin)
            .await
            .expect("creating a test database");
        admin.close().await;
        let url = url_for(&name);
        Self { name, url }
    }

    /// (schema, table, name, definition) rows that `sql` reads from this database: what the
    /// server's own printing functions say, to compare with [`TestApp::served_definitions`].
    pub async fn definitions(&self, sql: &'static str) -> Vec<(String, String, String, String)> {
        let pool = PgPool::connect(&self.url).await.unwrap();
        let rows = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    }

    /// A database holding `ddl`.
    pub async fn with_ddl(prefix: &str, ddl: &str) -> Self {
        let db = Self::create(prefix).await;
        let pool = PgPool::connect(&db.url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(ddl.to_owned()))
            .execute(&pool)
            .await
            .expect("applying DDL");
        pool.close().await;
        db
    }

    pub async fn execute(&self, sql: &str) {
        let pool = PgPool::connect(&self.url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&pool)
            .await
            .expect("running SQL");
        pool.close().await;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee: use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(admin) = PgPool::connect(&admin_url()).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&admin)
                    .await;
                }
            });
        })
        .join();
    }
}

pub fn store_config(url: &str) -> StoreConfig {
    StoreConfig {
        database_url: url.to_owned().into(),
        database_max_connections: 20,
        database_acquire_timeout_ms: 3000,
        queue_name: QUEUE.into(),
    }
}

/// A running API over a fresh, migrated store.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub key: String,
    pub shutdown: CancellationToken,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    pub store: TestDatabase,
}

pub struct AppOptions {
    pub max_attempts: i32,
    pub max_body_bytes: usize,
    pub api_tokens: Option<String>,
    /// `SOURCE_ALLOWLIST`; `None` for the default policy.
    pub source_allowlist: Option<String>,
    /// `WEBHOOK_ALLOWLIST`; `None` for the default policy.
    pub webhook_allowlist: Option<String>,
    /// `RATE_LIMIT`: off unless a test is about it (tests send bursts).
    pub rate_limit: RateSetting,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            max_body_bytes: 64 * 1024,
            api_tokens: None,
            source_allowlist: Some(LOOPBACK.into()),
            webhook_allowlist: Some(LOOPBACK.into()),
            rate_limit: RateSetting::Off,
        }
    }
}

/// The source allow-list tests run with: the test server is on loopback.
pub const LOOPBACK: &str = "127.0.0.0/8,localhost,::1";

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    spawn_app_on(TestDatabase::create("pgcs_store").await, options).await
}

/// An API over the given (empty) store database.
pub async fn spawn_app_on(store: TestDatabase, options: AppOptions) -> TestApp {
    pg_catalog_sync::telemetry::init("pg-catalog-sync-tests");
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&store.url)
        .await
        .unwrap();
    db::migrate(&pool).await.expect("migrating the store");
    let key = CredentialsKey::generate_base64();
    let state = AppState::new(
        pool.clone(),
        CredentialsKey::from_base64(&key.clone().into()).unwrap(),
        QUEUE,
        options.max_attempts,
        options.max_body_bytes,
    )
    .with_tokens(
        options
            .api_tokens
            .as_deref()
            .and_then(|t| ApiTokens::parse(t).expect("the test's tokens parse")),
    )
    .with_rate_limit(options.rate_limit)
    .with_source_policy(SourcePolicy::from_setting(options.source_allowlist.as_deref()).unwrap())
    .with_webhook_policy(SourcePolicy::from_setting(options.webhook_allowlist.as_deref()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(pg_catalog_sync::shutdown::serve(
        listener,
        api::router(state),
        shutdown.clone(),
    ));
    TestApp {
        addr,
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        pool,
        key,
        shutdown,
        server,
        store,
    }
}

/// Worker settings tuned for tests: fast heartbeats and short backoff.
pub fn worker_config(app: &TestApp) -> WorkerConfig {
    WorkerConfig {
        store: store_config(&app.store.url),
        credentials: CredentialsConfig {
            credentials_key: app.key.clone().into(),
        },
        concurrency: 4,
        batch_size: 4,
        poll_interval_ms: 50,
        heartbeat_secs: 1,
        missed_heartbeats: 2,
        retry_min_delay_ms: 50,
        retry_max_delay_ms: 200,
        external_metadata_url: None,
        source_connect_timeout_ms: 5000,
        source_timeout_ms: 10_000,
        source_max_response_bytes: 64 * 1024 * 1024,
        sync_batch_relations: 2_500,
        shutdown_grace_secs: 30,
        worker_name: Some("test".into()),
        source_allowlist: Some(LOOPBACK.into()),
        metrics_addr: None,
        sync_retention: Duration::from_secs(7 * 86_400),
        audit_retention: Duration::from_secs(90 * 86_400),
        source_host_connections: 4,
        webhooks: WebhookConfig {
            webhook_allowlist: Some(LOOPBACK.into()),
            webhook_concurrency: 8,
            webhook_retry_min_delay_ms: 100,
            webhook_retry_max_delay_ms: 400,
            webhook_max_age: Duration::from_secs(600),
            webhook_timeout_ms: 2_000,
            webhook_disable_after: 50,
        },
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Starts an in-process worker with `config`.
    pub async fn start_worker(&self, config: WorkerConfig) -> WorkerHandle {
        let pool = db::connect(&config.store).unwrap();
        Worker::new(config, pool).unwrap().start()
    }

    pub async fn post_sync(&self, body: &Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.url("/sync"))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// The body of a successful GET of `path` as text (an export, a diagram).
    pub async fn get_text(&self, path: &str) -> String {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.text().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Any request, with an optional JSON body: the status and the JSON answer (`Null` if none).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Every table's `kind` ("indexes", "constraints") as served in its detail, as
    /// `{"table": "schema.table", "name": .., "definition": ..}` sorted by table and name, to
    /// compare with what the source's own printing functions say ([`definitions_json`]).
    pub async fn served_definitions(&self, catalog: &str, kind: &str) -> Vec<Value> {
        let (tables, _) = self
            .get_all_pages(&format!("/catalogs/{catalog}/tables?limit=100"))
            .await;
        let mut served = Vec::new();
        for table in &tables {
            let (schema, name) = (
                table["schema"].as_str().unwrap(),
                table["name"].as_str().unwrap(),
            );
            let path = format!(
                "/catalogs/{catalog}/tables/{}/{}",
                encode_segment(schema),
                encode_segment(name)
            );
            let (status, detail) = self.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {detail}");
            for item in detail[kind].as_array().unwrap() {
                served.push((
                    schema.to_owned(),
                    name.to_owned(),
                    item["name"].as_str().unwrap().to_owned(),
                    item["definition"].as_str().unwrap().to_owned(),
                ));
            }
        }
        definitions_json(served)
    }

    /// Follows a list's `Link: rel="next"` headers from `first`: every item, and how many pages.
    pub async fn get_all_pages(&self, first: &str) -> (Vec<Value>, usize) {
        let (mut items, mut pages) = (Vec::new(), 0);
        let mut next = Some(self.url(first));
        while let Some(url) = next {
            let response = self.client.get(&url).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{url}");
            next = response
                .headers()
                .get("link")
                .map(|l| l.to_str().unwrap().to_owned())
                .map(|l| self.url(l.trim_start_matches('<').split('>').next().unwrap()));
            let page: Value = response.json().await.unwrap();
            items.extend(page.as_array().unwrap().iter().cloned());
            pages += 1;
        }
        (items, pages)
    }

    /// Column search of a catalog (`query`: the search's query string), every page of it, as
    /// `table.column`.
    pub async fn found_columns(&self, catalog_id: &str, query: &str) -> Vec<String> {
        let (found, _) = self
            .get_all_pages(&format!("/catalogs/{catalog_id}/columns?{query}"))
            .await;
        found
            .iter()
            .map(|c| {
                format!(
                    "{}.{}",
                    c["table"].as_str().unwrap(),
                    c["name"].as_str().unwrap()
                )
            })
            .collect()
    }

    /// Polls `GET /syncs/{id}` until the sync is succeeded or failed.
    pub async fn wait_for_sync(&self, sync_id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, body) = self.get(&format!("/syncs/{sync_id}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if body["status"] == "succeeded" || body["status"] == "failed" {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "sync {sync_id} did not finish in {timeout:?}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The source probe stored with a catalog: the probe of the state its last read saw.
    pub async fn stored_probe(&self, catalog_id: &str) -> Option<String> {
        let id: uuid::Uuid = catalog_id.parse().unwrap();
        sqlx::query_scalar("SELECT source_probe FROM catalogs WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Holds every snapshot write of the store in its `writing` phase, just before the
    /// relations' details are inserted, until [`Self::release_writes`]: a trigger that sleeps
    /// while `hold_writes` has a row.
    pub async fn hold_writes(&self) {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS hold_writes ();
             CREATE OR REPLACE FUNCTION hold_writes() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 WHILE EXISTS (SELECT FROM hold_writes) LOOP PERFORM pg_sleep(0.05); END LOOP;
                 RETURN NULL;
             END $$;
             CREATE OR REPLACE TRIGGER hold_writes BEFORE INSERT ON catalog_relation_details
             FOR EACH STATEMENT EXECUTE FUNCTION hold_writes();
             INSERT INTO hold_writes DEFAULT VALUES;",
        )
        .execute(&self.pool)
        .await
        .unwrap();
    }

    pub async fn release_writes(&self) {
        sqlx::raw_sql("DELETE FROM hold_writes")
            .execute(&self.pool)
            .await
            .unwrap();
    }

    /// Enqueues a sync and waits for it to end.
    pub async fn sync_and_wait(&self, body: &Value) -> Value {
        let (status, accepted) = self.post_sync(body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        self.wait_for_sync(
            accepted["sync_id"].as_str().unwrap(),
            Duration::from_secs(60),
        )
        .await
    }
}

/// The POST /sync body for a database on the test server.
pub fn sync_body(dbname: &str) -> Value {
    let (host, port) = server_host_port();
    json!({"host": host, "port": port, "user": "postgres", "password": "unused-under-trust", "dbname": dbname})
}

/// The real `mock-source` binary, listening on a free port; killed when dropped.
pub struct MockSource {
    pub url: String,
    child: Child,
}

impl MockSource {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut command = Command::new(binary("mock-source"));
        command
            .env("MOCK_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .expect("starting mock-source (build the workspace first)");
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.get(format!("{url}/health")).send().await.is_err() {
            assert!(Instant::now() < deadline, "mock-source did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { url, child }
    }
}

impl Drop for MockSource {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A workspace binary next to the test executable (`target/<profile>/<name>`).
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// The POST /sync body for a synthetic mock-source catalog (host and port are not used by it).
pub fn synthetic_body(spec: &str) -> Value {
    json!({"host": "mock.invalid", "port": 5432, "user": "u", "password": "p", "dbname": format!("synthetic:{spec}")})
}

/// A path segment percent-encoded, as a client puts any name in a URL.
pub fn encode_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// What psql runs from a file but the server does not take in one simple-protocol query
/// (what `sqlx::raw_sql` sends), changed while loading (the fixture files are left as copied):
/// - psql's meta-commands (lines starting with a backslash: adventureworks' `\pset` and `\dt`)
///   are the client's commands, not SQL: dropped;
/// - `CREATE INDEX CONCURRENTLY` (hatchet) cannot run inside the implicit transaction of a
///   multi-statement query: the same index is built without CONCURRENTLY (which no catalog
///   records, and `pg_get_indexdef` never prints).
pub fn loadable(sql: &str) -> String {
    sql.lines()
        .filter(|line| !line.starts_with('\\'))
        .map(|line| line.replace("CREATE INDEX CONCURRENTLY", "CREATE INDEX"))
        .collect::<Vec<_>>()
        .join("\n")
}
