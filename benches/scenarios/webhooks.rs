//! Scenarios 9 and 10: webhooks. The latency from a schema change on a source to the verified
//! event at a receiver, with a schedule of every second; the rate at which two workers deliver
//! to a receiver that answers at once; and whether deliveries to a slow receiver slow syncs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use pg_catalog_sync::events::SigningKey;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::mpsc;

use super::catalog::SMALL;
use super::*;

/// A receiver on loopback: verifies each request and reports the verified event ids, with
/// when they arrived, after answering `delay` later.
struct Receiver {
    url: String,
    arrivals: mpsc::UnboundedReceiver<(String, Instant)>,
    secret: Arc<std::sync::Mutex<Option<SigningKey>>>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct ReceiverState {
    sent: mpsc::UnboundedSender<(String, Instant)>,
    key: Arc<std::sync::Mutex<Option<SigningKey>>>,
    delay: Duration,
}

impl Receiver {
    async fn start(delay: Duration) -> Result<Self> {
        let (sent, arrivals) = mpsc::unbounded_channel();
        let key = Arc::new(std::sync::Mutex::new(None));
        let state = ReceiverState {
            sent,
            key: key.clone(),
            delay,
        };
        let app = Router::new().fallback(receive).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url,
            arrivals,
            secret: key,
            server,
        })
    }

    /// Subscribes the receiver to `events` of every catalog, keeping the secret to verify with.
    async fn subscribe(&self, b: &Bench, service: &Service, events: &[&str]) -> Result<String> {
        let created: Value = b
            .client
            .post(format!("{}/webhooks", service.base))
            .json(&json!({"url": self.url, "catalogs": "all", "events": events}))
            .send()
            .await?
            .json()
            .await?;
        let secret = SecretString::from(created["secret"].as_str().unwrap_or_default().to_owned());
        *self.secret.lock().unwrap() = Some(SigningKey::parse(&secret)?);
        Ok(created["id"].as_str().unwrap_or_default().to_owned())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let id = header("webhook-id");
    let verified = state.key.lock().unwrap().as_ref().is_some_and(|key| {
        key.verify(
            &id,
            &header("webhook-timestamp"),
            &header("webhook-signature"),
            &body,
            chrono::Utc::now().timestamp(),
        )
        .is_ok()
    });
    if !verified {
        return StatusCode::UNAUTHORIZED;
    }
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    let _ = state.sent.send((id, at));
    StatusCode::NO_CONTENT
}

/// Changes the latency scenario makes on the source, one per round.
const ROUNDS: usize = 30;

impl Bench {
    /// Scenario 9: `ALTER TABLE` on a 1,000-table source re-synced every second, to the
    /// verified `schema.changed` at a receiver.
    pub async fn webhook_latency(&mut self) -> Result<()> {
        let url = SMALL.ensure(self).await?;
        let service = Service::start(self, 2, false, &[]).await?;
        let body = source_body(&url);
        let sync_id = service.post_sync(&self.client, &body).await?;
        let synced = service.wait_sync(&self.client, &sync_id).await?;
        let catalog = synced["catalog_id"].as_str().unwrap_or_default().to_owned();
        let mut receiver = Receiver::start(Duration::ZERO).await?;
        receiver
            .subscribe(self, &service, &["schema.changed"])
            .await?;
        let schedule = json!({"every": "1s", "user": body["user"], "password": body["password"]});
        let response = self
            .client
            .put(format!("{}/catalogs/{catalog}/schedule", service.base))
            .json(&schedule)
            .send()
            .await?;
        anyhow::ensure!(response.status() == 200, "schedule: {}", response.status());
        let source = PgPool::connect(&url).await?;
        let mut ms = Vec::with_capacity(ROUNDS);
        for round in 0..ROUNDS {
            // Changes land at any point of the schedule's period, as real ones do.
            tokio::time::sleep(Duration::from_millis(300 + (round as u64 * 337) % 1000)).await;
            let change = match round % 2 {
                0 => "ALTER TABLE s0.t0 ADD COLUMN bench_probe integer",
                _ => "ALTER TABLE s0.t0 DROP COLUMN bench_probe",
            };
            sqlx::raw_sql(change).execute(&source).await?;
            let committed = Instant::now();
            let (_, at) = tokio::time::timeout(Duration::from_secs(30), receiver.arrivals.recv())
                .await?
                .ok_or_else(|| anyhow::anyhow!("the receiver stopped"))?;
            ms.push(at.duration_since(committed).as_secs_f64() * 1000.0);
        }
        source.close().await;
        service.stop(self).await?;
        ms.sort_by(f64::total_cmp);
        self.row(
            "9. change to webhook, 1,000 tables",
            format!(
                "p50 {:.0} ms, p99 {:.0} ms ({ROUNDS} changes)",
                percentile(&ms, 0.5),
                percentile(&ms, 0.99)
            ),
            "-".into(),
            "-".into(),
            "p50 <= 1.5 s, p99 <= 3 s",
        );
        Ok(())
    }

    /// Scenario 10: deliveries per second of two workers to a receiver that answers at once;
    /// then syncs drained with and without deliveries to a receiver answering in 20 ms.
    pub async fn webhook_delivery(&mut self) -> Result<()> {
        let rate = self.delivery_rate(10_000).await?;
        self.row(
            "10a. webhook deliveries, 2 workers",
            format!("{rate:.0} deliveries/s (10,000 events)"),
            "-".into(),
            "-".into(),
            ">= 1,000/s",
        );
        let alone = self.drain_with_deliveries(0).await?;
        let shared = self.drain_with_deliveries(5_000).await?;
        self.row(
            "10b. syncs beside slow deliveries",
            format!("{shared:.0} syncs/s with 5,000 deliveries (20 ms receiver)"),
            format!("{alone:.0} syncs/s alone"),
            format!("{:.2}x", shared / alone),
            "not slower",
        );
        Ok(())
    }

    /// Queues `events` test events for one subscription, then starts two workers and times
    /// the deliveries from the first to the last arrival.
    async fn delivery_rate(&self, events: usize) -> Result<f64> {
        let mut service = Service::start(self, 0, false, &[]).await?;
        let mut receiver = Receiver::start(Duration::ZERO).await?;
        let id = receiver.subscribe(self, &service, &["sync.failed"]).await?;
        queue_test_events(self, &service, &id, events).await?;
        for _ in 0..2 {
            service.add_worker(self)?;
        }
        let mut seen = std::collections::HashSet::with_capacity(events);
        let (mut first, mut last) = (None, Instant::now());
        while seen.len() < events {
            let (event, at) =
                tokio::time::timeout(Duration::from_secs(60), receiver.arrivals.recv())
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("the receiver stopped"))?;
            first.get_or_insert(at);
            last = at;
            seen.insert(event);
        }
        service.stop(self).await?;
        let seconds = last.duration_since(first.unwrap_or(last)).as_secs_f64();
        Ok(events as f64 / seconds.max(1e-3))
    }

    /// Syncs per second of two workers draining 500 queued syncs, with `deliveries` queued for
    /// a receiver that answers in 20 ms at the same time.
    async fn drain_with_deliveries(&self, deliveries: usize) -> Result<f64> {
        const SYNCS: usize = 500;
        let mut service = Service::start(self, 0, true, &[("WORKER_CONCURRENCY", "8")]).await?;
        let receiver = Receiver::start(Duration::from_millis(20)).await?;
        let id = receiver.subscribe(self, &service, &["sync.failed"]).await?;
        queue_test_events(self, &service, &id, deliveries).await?;
        for i in 0..SYNCS {
            let body = json!({"host": "mock", "port": 1, "user": "u", "password": "p",
                              "dbname": format!("synthetic:1x5x10;tag={i}")});
            service.post_sync(&self.client, &body).await?;
        }
        // The default pool (20 connections) for each worker's syncs and deliveries together:
        // two workers, the API and this benchmark stay within the store's 100 connections.
        for _ in 0..2 {
            service.add_worker_with(self, &[])?;
        }
        let started = Instant::now();
        loop {
            let done: i64 =
                sqlx::query_scalar("SELECT count(*) FROM syncs WHERE status = 'succeeded'")
                    .fetch_one(&service.store)
                    .await?;
            if done as usize >= SYNCS {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(300),
                "stalled at {done}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let seconds: f64 = sqlx::query_scalar(
            "SELECT extract(epoch FROM max(finished_at) - min(started_at))::float8 FROM syncs",
        )
        .fetch_one(&service.store)
        .await?;
        drop(receiver);
        service.stop(self).await?;
        Ok(SYNCS as f64 / seconds)
    }
}

/// `POST /webhooks/{id}/test` `n` times, 32 at once.
async fn queue_test_events(b: &Bench, service: &Service, webhook: &str, n: usize) -> Result<()> {
    use futures::StreamExt;
    let url = format!("{}/webhooks/{webhook}/test", service.base);
    let results: Vec<Result<()>> = futures::stream::iter(0..n)
        .map(|_| {
            let (client, url) = (b.client.clone(), url.clone());
            async move {
                let status = client.post(&url).send().await?.status();
                anyhow::ensure!(status == 202, "POST /webhooks/.../test answered {status}");
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}
