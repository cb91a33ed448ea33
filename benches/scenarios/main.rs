//! The project's benchmark: every scenario of BENCHMARKS.md, each measured side by side with a
//! reference run in the same process (pg_dump, pgbench, one worker against two), medians of
//! several runs. Run it through `scripts/bench`, which finds PostgreSQL and builds the release
//! binaries first.
//!
//! Environment: `BENCH_STORE_URL` (a server's `postgres` database for the store),
//! `BENCH_SOURCE_URL` (a server for the generated source databases; pg_dump needs
//! `max_locks_per_transaction` big enough to lock every table), `BENCH_BIN_DIR` (the release
//! binaries), `BENCH_SCENARIOS` (comma-separated subset: `big`, `mid`, `enqueue`, `pickup`,
//! `drain`, `reads`, `peer`, `search`, `webhook-latency`, `webhook-delivery`, `past` by
//! default;
//! `huge`, the 100,000-table catalog, only when named),
//! `BENCH_RUNS`, `BENCH_OUT` (a file to write the results table to).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

mod catalog;
mod past;
mod peer;
mod queue;
mod search;
mod webhooks;

type Result<T> = anyhow::Result<T>;

struct Bench {
    store_admin: String,
    source_admin: String,
    bin_dir: PathBuf,
    runs: usize,
    client: reqwest::Client,
    rows: Vec<[String; 5]>,
    /// The load generators' own reports (pgbench, wrk), written after the table.
    reports: Vec<(String, String)>,
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn with_db(admin: &str, db: &str) -> String {
    let (base, _) = admin.rsplit_once('/').expect("URL with a database");
    format!("{base}/{db}")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The API, workers and (optionally) mock-source as real processes over a fresh store.
struct Service {
    children: Vec<Child>,
    workers: Vec<Child>,
    base: String,
    store: PgPool,
    store_db: String,
    env: Vec<(String, String)>,
}

impl Service {
    async fn start(
        b: &Bench,
        workers: usize,
        external: bool,
        worker_env: &[(&str, &str)],
    ) -> Result<Service> {
        let store_db = format!("pgcs_bench_store_{}", std::process::id());
        let admin = PgPool::connect(&b.store_admin).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {store_db} WITH (FORCE)"
        )))
        .execute(&admin)
        .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {store_db}")))
            .execute(&admin)
            .await?;
        admin.close().await;
        let store_url = with_db(&b.store_admin, &store_db);
        let api_port = free_port();
        let mock_port = free_port();
        let mut env: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), store_url.clone()),
            (
                "CREDENTIALS_KEY".into(),
                "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
            ),
            // BENCH_LOG=<filter> shows the services' logs (the worker's phase timings are at
            // `pg_catalog_sync=debug`).
            (
                "RUST_LOG".into(),
                std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            ),
            ("PORT".into(), api_port.to_string()),
            ("BIND_ADDR".into(), "127.0.0.1".into()),
            ("MOCK_BIND".into(), format!("127.0.0.1:{mock_port}")),
            (
                "SOURCE_ALLOWLIST".into(),
                "127.0.0.0/8,localhost,::1".into(),
            ),
            // The enqueue scenarios measure the API's own rate, from one address.
            ("RATE_LIMIT".into(), "off".into()),
        ];
        if external {
            env.push((
                "EXTERNAL_METADATA_URL".into(),
                format!("http://127.0.0.1:{mock_port}"),
            ));
        }
        for (k, v) in worker_env {
            env.push((k.to_string(), v.to_string()));
        }
        let mut service = Service {
            children: Vec::new(),
            workers: Vec::new(),
            base: format!("http://127.0.0.1:{api_port}"),
            store: PgPool::connect(&store_url).await?,
            store_db,
            env,
        };
        service
            .children
            .push(service.spawn(b, "pg-catalog-sync", &[])?);
        if external {
            service.children.push(service.spawn(b, "mock-source", &[])?);
            wait_http(&b.client, &format!("http://127.0.0.1:{mock_port}/health")).await?;
        }
        wait_http(&b.client, &format!("{}/ready", service.base)).await?;
        for _ in 0..workers {
            service.add_worker(b)?;
        }
        service.wait_workers().await?;
        checkpoint(&b.store_admin).await?;
        Ok(service)
    }

    /// Waits until every worker process has registered with the queue: what is measured next
    /// is the service at work, not the processes starting.
    async fn wait_workers(&self) -> Result<()> {
        let started = Instant::now();
        loop {
            // Each worker process registers a consumer of syncs (and one of webhook
            // deliveries, named after it).
            let registered: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM apalis.workers WHERE id NOT LIKE '%-webhooks'",
            )
            .fetch_one(&self.store)
            .await
            .unwrap_or(0); // the workers have not created the queue's tables yet
            if registered as usize >= self.workers.len() {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "{registered} of {} workers registered after 30 s",
                self.workers.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn spawn(&self, b: &Bench, binary: &str, extra_env: &[(&str, &str)]) -> Result<Child> {
        Ok(Command::new(b.bin_dir.join(binary))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(extra_env.iter().copied())
            .stdout(match std::env::var_os("BENCH_LOG") {
                Some(_) => Stdio::inherit(),
                None => Stdio::null(),
            })
            .stderr(Stdio::inherit())
            .spawn()?)
    }

    fn add_worker(&mut self, b: &Bench) -> Result<()> {
        // Workers running up to 32 syncs at once hold a connection each while writing; the API
        // keeps its default pool.
        self.add_worker_with(b, &[("DATABASE_MAX_CONNECTIONS", "40")])
    }

    fn add_worker_with(&mut self, b: &Bench, env: &[(&str, &str)]) -> Result<()> {
        let worker = self.spawn(b, "pg-catalog-sync-worker", env)?;
        self.workers.push(worker);
        Ok(())
    }

    async fn post_sync(&self, client: &reqwest::Client, body: &Value) -> Result<String> {
        let response = client
            .post(format!("{}/sync", self.base))
            .json(body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 202,
            "POST /sync answered {}",
            response.status()
        );
        let body: Value = response.json().await?;
        Ok(body["sync_id"].as_str().unwrap().to_owned())
    }

    /// Waits for the sync to end the way a client should: with the API's long poll, which
    /// answers as soon as the sync has ended (a notification from the store wakes it), and
    /// takes no CPU from the sync it waits for.
    async fn wait_sync(&self, client: &reqwest::Client, sync_id: &str) -> Result<Value> {
        loop {
            let body: Value = client
                .get(format!("{}/syncs/{sync_id}?wait=30s", self.base))
                .send()
                .await?
                .json()
                .await?;
            match body["status"].as_str() {
                Some("succeeded") => return Ok(body),
                Some("failed") => anyhow::bail!("sync failed: {body}"),
                _ => continue, // the wait ended first
            }
        }
    }

    /// Peak resident memory of the worker processes, in MiB (VmHWM).
    fn worker_peak_rss_mib(&self) -> f64 {
        self.workers
            .iter()
            .filter_map(|w| std::fs::read_to_string(format!("/proc/{}/status", w.id())).ok())
            .filter_map(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .map(str::to_owned)
            })
            .filter_map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .fold(0.0, f64::max)
            / 1024.0
    }

    async fn stop(mut self, b: &Bench) -> Result<()> {
        for child in self.workers.iter_mut().chain(self.children.iter_mut()) {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        for child in self.workers.iter_mut().chain(self.children.iter_mut()) {
            let _ = child.wait();
        }
        self.store.close().await;
        let admin = PgPool::connect(&b.store_admin).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.store_db
        )))
        .execute(&admin)
        .await?;
        Ok(())
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes out what earlier steps left in the store server's buffers (a big snapshot, a pgbench
/// run, queued syncs) before a timed load, so that load does not pay for a checkpoint it did
/// not cause. Both sides of a ratio start from one.
async fn checkpoint(store_admin: &str) -> Result<()> {
    let admin = PgPool::connect(store_admin).await?;
    sqlx::raw_sql("CHECKPOINT")
        .execute(&admin)
        .await
        .map_err(|e| {
            anyhow::anyhow!("CHECKPOINT on the store's server (needs a superuser): {e}")
        })?;
    admin.close().await;
    Ok(())
}

async fn wait_http(client: &reqwest::Client, url: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{url} did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn source_body(url: &str) -> Value {
    let u = reqwest::Url::parse(url).unwrap();
    json!({"host": u.host_str().unwrap(), "port": u.port().unwrap_or(5432), "user": u.username(),
           "password": u.password().unwrap_or(""), "dbname": u.path().trim_start_matches('/')})
}

impl Bench {
    fn row(
        &mut self,
        scenario: &str,
        measured: String,
        reference: String,
        ratio: String,
        target: &str,
    ) {
        println!("{scenario:<34} {measured:<44} {reference:<30} {ratio:<10} {target}");
        self.rows
            .push([scenario.into(), measured, reference, ratio, target.into()]);
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let store_admin = env(
        "BENCH_STORE_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    );
    let mut bench = Bench {
        source_admin: env("BENCH_SOURCE_URL", &store_admin),
        store_admin,
        bin_dir: PathBuf::from(env("BENCH_BIN_DIR", "target/release")),
        runs: env("BENCH_RUNS", "3").parse()?,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(128)
            .build()?,
        rows: Vec::new(),
        reports: Vec::new(),
    };
    let scenarios = env(
        "BENCH_SCENARIOS",
        "big,mid,enqueue,pickup,drain,reads,peer,search,webhook-latency,webhook-delivery,past",
    );
    println!(
        "{:<34} {:<44} {:<30} {:<10} target",
        "scenario", "measured", "reference (same run)", "ratio"
    );
    for scenario in scenarios.split(',') {
        let result = match scenario.trim() {
            "big" => bench.big_catalog().await,
            "mid" => bench.mid_catalog().await,
            "huge" => bench.huge_catalog().await,
            "enqueue" => bench.enqueue().await,
            "pickup" => bench.pickup().await,
            "drain" => bench.drain().await,
            "reads" => bench.reads().await,
            "peer" => bench.peer().await,
            "search" => bench.search().await,
            "webhook-latency" => bench.webhook_latency().await,
            "webhook-delivery" => bench.webhook_delivery().await,
            "past" => bench.past_states().await,
            other => Err(anyhow::anyhow!("unknown scenario {other}")),
        };
        if let Err(e) = result {
            eprintln!("scenario {scenario} failed: {e:#}");
            bench.row(
                scenario,
                format!("failed: {e}"),
                "-".into(),
                "-".into(),
                "-",
            );
        }
    }
    if let Ok(out) = std::env::var("BENCH_OUT") {
        let mut table = String::from(
            "| scenario | measured | reference (same run) | ratio | target |\n|---|---|---|---|---|\n",
        );
        for r in &bench.rows {
            table.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                r[0], r[1], r[2], r[3], r[4]
            ));
        }
        for (scenario, report) in &bench.reports {
            table.push_str(&format!(
                "\nThe load generator's own report ({scenario}):\n\n```text\n{report}\n```\n"
            ));
        }
        std::fs::write(out, table)?;
    }
    Ok(())
}
