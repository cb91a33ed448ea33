//! Scenarios 3-6: enqueueing, pickup, draining the queue and reads under load.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

/// wrk's script for scenario 3: each thread numbers its requests apart from the other's, so
/// every request names a new source (a new catalog) over 10,000 hosts.
const WRK_SYNC_SCRIPT: &str = r#"
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function init(args)
  n = 0
end
function request()
  n = n + 1
  local i = id * 100000000 + n
  local body = '{"host":"db' .. (i % 10000) .. '.bench","port":5432,"user":"u","password":"p","dbname":"d' .. i .. '"}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
"#;

fn wrk_installed() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// A wrk latency ("812.00us", "2.10ms", "1.02s") in milliseconds.
fn wrk_ms(text: &str) -> Result<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        anyhow::bail!("unexpected wrk latency {text:?}")
    };
    Ok(number.parse::<f64>()? * factor)
}

impl Bench {
    /// Scenario 3: POST /sync from 32 clients over distinct sources, against pgbench's one-row
    /// insert on the same server with the same durability. The load comes from wrk when it is
    /// installed (a C client like pgbench, whose own figures are printed), else from a Rust
    /// client in this process.
    pub async fn enqueue(&mut self) -> Result<()> {
        let seconds = 10;
        let pgbench_tps = self.pgbench_insert_tps(seconds).await?;
        let service = Service::start(self, 0, false, &[]).await?;
        let measured = if wrk_installed() {
            self.enqueue_with_wrk(&service, seconds).await
        } else {
            self.enqueue_in_process(&service, seconds).await
        };
        service.stop(self).await?;
        let (generator, rps, p50, p99) = measured?;
        self.row(
            "3. enqueue, 32 clients",
            format!("{rps:.0} req/s, p50 {p50:.1} ms, p99 {p99:.1} ms ({generator})"),
            format!("pgbench 1-row insert {pgbench_tps:.0} tps"),
            format!("{:.2}x", rps / pgbench_tps),
            ">= 0.5x, p99 <= 25 ms",
        );
        Ok(())
    }

    /// wrk with 2 threads (as pgbench's `-j 2`) and 32 connections; every request names a new
    /// source. Its report is printed as it is, and every request it counts must have been a 202
    /// whose sync is in the store.
    async fn enqueue_with_wrk(
        &mut self,
        service: &Service,
        seconds: u64,
    ) -> Result<(&'static str, f64, f64, f64)> {
        let script = std::env::temp_dir().join(format!("pgcs-bench-{}.lua", std::process::id()));
        std::fs::write(&script, WRK_SYNC_SCRIPT)?;
        let output = tokio::process::Command::new("wrk")
            .args(["-t2", "-c32", "--latency", "-d"])
            .arg(format!("{seconds}s"))
            .arg("-s")
            .arg(&script)
            .arg(format!("{}/sync", service.base))
            .output()
            .await;
        let _ = std::fs::remove_file(&script);
        let output = output?;
        let report = String::from_utf8_lossy(&output.stdout);
        anyhow::ensure!(
            output.status.success(),
            "wrk failed: {report} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        println!("{}", report.trim_end());
        self.reports
            .push(("3: wrk".into(), report.trim_end().to_owned()));
        anyhow::ensure!(
            !report.contains("Non-2xx or 3xx responses") && !report.contains("Socket errors"),
            "wrk saw errors"
        );
        let figure = |label: &str| {
            report
                .lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix(label))
                .map(str::trim)
                .ok_or_else(|| anyhow::anyhow!("wrk printed no {label:?}: {report}"))
        };
        let requests: f64 = figure("Requests/sec:")?.parse()?;
        let (p50, p99) = (wrk_ms(figure("50%")?)?, wrk_ms(figure("99%")?)?);
        let completed: f64 = report
            .lines()
            .find_map(|l| l.trim().split_once(" requests in "))
            .map(|(n, _)| n.parse())
            .transpose()?
            .unwrap_or(0.0);
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM syncs")
            .fetch_one(&service.store)
            .await?;
        anyhow::ensure!(
            stored as f64 >= completed,
            "wrk counted {completed} answers but the store holds {stored} syncs"
        );
        Ok(("wrk", requests, p50, p99))
    }

    /// The same load from 32 tasks of a reqwest client in this process.
    async fn enqueue_in_process(
        &self,
        service: &Service,
        seconds: u64,
    ) -> Result<(&'static str, f64, f64, f64)> {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (client, base, counter) =
                (self.client.clone(), service.base.clone(), counter.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let body = json!({"host": format!("db{}.bench", n % 10_000), "port": 5432, "user": "u", "password": "p", "dbname": format!("d{n}")});
                    let started = Instant::now();
                    let response = client.post(format!("{base}/sync")).json(&body).send().await;
                    if matches!(response, Ok(ref r) if r.status() == 202) {
                        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                latencies
            }));
        }
        let mut latencies = Vec::new();
        for t in tasks {
            latencies.extend(t.await?);
        }
        latencies.sort_by(f64::total_cmp);
        Ok((
            "in-process client",
            latencies.len() as f64 / seconds as f64,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
        ))
    }

    async fn pgbench_insert_tps(&mut self, seconds: u64) -> Result<f64> {
        let db = format!("pgcs_bench_pgbench_{}", std::process::id());
        let admin = PgPool::connect(&self.store_admin).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE); "
        )))
        .execute(&admin)
        .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .execute(&admin)
            .await?;
        let url = with_db(&self.store_admin, &db);
        let pool = PgPool::connect(&url).await?;
        sqlx::raw_sql("CREATE TABLE inserts (id bigserial PRIMARY KEY, v double precision, at timestamptz DEFAULT now())").execute(&pool).await?;
        pool.close().await;
        checkpoint(&self.store_admin).await?;
        let script = std::env::temp_dir().join(format!("pgcs-bench-{}.sql", std::process::id()));
        std::fs::write(&script, "INSERT INTO inserts (v) VALUES (random());\n")?;
        let output = Command::new("pgbench")
            .args([
                "-n",
                "-c",
                "32",
                "-j",
                "2",
                "-T",
                &seconds.to_string(),
                "-f",
            ])
            .arg(&script)
            .arg(&url)
            .output()?;
        let _ = std::fs::remove_file(&script);
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .execute(&admin)
        .await?;
        let text = String::from_utf8_lossy(&output.stdout);
        let tps = text
            .lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "pgbench printed no tps: {text} {}",
                    String::from_utf8_lossy(&output.stderr)
                )
            })?;
        // Its own report, without the path of the script and the database it ran against.
        let report: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("transaction type:") && !l.contains("pgcs_bench_pgbench"))
            .collect();
        self.reports
            .push(("3: pgbench".into(), report.join("\n").trim_end().to_owned()));
        Ok(tps)
    }

    /// Scenario 4: enqueue -> worker start on an idle queue, from the timestamps in the store.
    pub async fn pickup(&mut self) -> Result<()> {
        let service = Service::start(self, 1, true, &[]).await?;
        for i in 0..500 {
            let body = json!({"host": "mock", "port": 1, "user": "u", "password": "p", "dbname": format!("synthetic:1x1x1;tag={i}")});
            let sync_id = service.post_sync(&self.client, &body).await?;
            service.wait_sync(&self.client, &sync_id).await?;
            tokio::time::sleep(Duration::from_millis(20)).await; // idle again
        }
        let mut ms: Vec<f64> = sqlx::query_scalar(
            "SELECT extract(epoch FROM started_at - enqueued_at)::float8 * 1000 FROM syncs",
        )
        .fetch_all(&service.store)
        .await?;
        ms.sort_by(f64::total_cmp);
        service.stop(self).await?;
        self.row(
            "4. pickup latency, idle queue",
            format!(
                "p50 {:.1} ms, p99 {:.1} ms ({} syncs)",
                percentile(&ms, 0.5),
                percentile(&ms, 0.99),
                ms.len()
            ),
            "-".into(),
            "-".into(),
            "p50 <= 10 ms, p99 <= 50 ms",
        );
        Ok(())
    }

    /// Scenario 5: 2,000 queued syncs of 5 x 10 synthetic catalogs drained by 2 workers; with
    /// 20 ms of source latency, 2 workers against 1.
    pub async fn drain(&mut self) -> Result<()> {
        let two = self.drain_rate(2, 0, 2000, "32").await?;
        self.row(
            "5a. drain, 2 workers",
            format!("{two:.0} syncs/s (2,000 syncs)"),
            "-".into(),
            "-".into(),
            ">= 400 syncs/s",
        );
        // Each worker runs 2 syncs at once, so the workers are bound by the source's latency (at
        // most 100 syncs/s each), not by this machine's two cores. (With 4 at once, two workers
        // reached about 200 syncs/s, which is what the two cores hold with everything else.)
        let one_slow = self.drain_rate(1, 20, 1000, "2").await?;
        let two_slow = self.drain_rate(2, 20, 1000, "2").await?;
        self.row(
            "5b. drain, 20 ms source latency",
            format!("2 workers {two_slow:.0} syncs/s (2 at once each)"),
            format!("1 worker {one_slow:.0} syncs/s"),
            format!("{:.2}x", two_slow / one_slow),
            ">= 1.6x",
        );
        Ok(())
    }

    async fn drain_rate(
        &self,
        workers: usize,
        latency_ms: u64,
        syncs: usize,
        concurrency: &str,
    ) -> Result<f64> {
        let settings = [
            ("WORKER_CONCURRENCY", concurrency),
            ("WORKER_BATCH_SIZE", concurrency),
        ];
        let mut service = Service::start(self, 0, true, &settings).await?;
        for i in 0..syncs {
            let body = json!({"host": "mock", "port": 1, "user": "u", "password": "p",
                              "dbname": format!("synthetic:1x5x10;latency_ms={latency_ms};tag={i}")});
            service.post_sync(&self.client, &body).await?;
        }
        let started = Instant::now();
        for _ in 0..workers {
            service.add_worker(self)?;
        }
        // The rate runs from the first sync's start to the last one's end, as the store
        // recorded them: the worker processes' start-up is not part of the drain.
        loop {
            let done: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM syncs WHERE status IN ('succeeded', 'failed')",
            )
            .fetch_one(&service.store)
            .await?;
            if done as usize >= syncs {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(300),
                "drain stalled at {done}"
            );
            // The rate comes from the store's timestamps, so this poll only needs to notice
            // the end; polling often would take the store's CPU from the drain.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let seconds: f64 = sqlx::query_scalar(
            "SELECT extract(epoch FROM max(finished_at) - min(started_at))::float8 FROM syncs",
        )
        .fetch_one(&service.store)
        .await?;
        let rate = syncs as f64 / seconds;
        let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM syncs WHERE status = 'failed'")
            .fetch_one(&service.store)
            .await?;
        anyhow::ensure!(failed == 0, "{failed} syncs failed");
        service.stop(self).await?;
        Ok(rate)
    }

    /// Scenario 6: table detail and list pages of the big catalog under 64 concurrent clients,
    /// next to /health through the same stack.
    pub async fn reads(&mut self) -> Result<()> {
        let url = catalog::BIG.ensure(self).await?;
        let schemas = catalog::BIG.schemas();
        let service = Service::start(self, 1, false, &[]).await?;
        let sync_id = service.post_sync(&self.client, &source_body(&url)).await?;
        let sync = service.wait_sync(&self.client, &sync_id).await?;
        let catalog = sync["catalog_id"].as_str().unwrap().to_owned();
        let detail = |i: usize| format!("/catalogs/{catalog}/tables/s{}/t{i}", i % schemas);
        let page = |i: usize| {
            format!(
                "/catalogs/{catalog}/tables?schema=s{}&limit=100",
                i % schemas
            )
        };
        let health = |_: usize| "/health".to_owned();
        let h = self.load(&service, &health).await?;
        let d = self.load(&service, &detail).await?;
        let p = self.load(&service, &page).await?;
        service.stop(self).await?;
        self.row(
            "6a. table detail, 64 clients",
            format!("p50 {:.1} ms, p99 {:.1} ms, {:.0} req/s", d.0, d.1, d.2),
            format!("/health p99 {:.1} ms", h.1),
            format!("{:.1}x", d.1 / h.1),
            "p99 <= 10 ms",
        );
        self.row(
            "6b. list page, 64 clients",
            format!("p50 {:.1} ms, p99 {:.1} ms, {:.0} req/s", p.0, p.1, p.2),
            format!("/health p99 {:.1} ms", h.1),
            format!("{:.1}x", p.1 / h.1),
            "p99 <= 15 ms",
        );
        Ok(())
    }

    /// 64 clients for 5 s on the paths `path(n)` makes; (p50 ms, p99 ms, req/s).
    async fn load(
        &self,
        service: &Service,
        path: &dyn Fn(usize) -> String,
    ) -> Result<(f64, f64, f64)> {
        checkpoint(&self.store_admin).await?;
        let seconds = 5.0;
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let mut tasks = Vec::new();
        for c in 0..64 {
            let client = self.client.clone();
            let urls: Vec<String> = (0..500)
                .map(|i| {
                    format!(
                        "{}{}",
                        service.base,
                        path((c * 7919 + i * 104_729) % catalog::BIG.tables)
                    )
                })
                .collect();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                for url in urls.iter().cycle() {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let started = Instant::now();
                    let ok = match client.get(url).send().await {
                        Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                        _ => false,
                    };
                    if ok {
                        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                latencies
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await?);
        }
        all.sort_by(f64::total_cmp);
        Ok((
            percentile(&all, 0.5),
            percentile(&all, 0.99),
            all.len() as f64 / seconds,
        ))
    }
}
