//! Several workers share one queue: every sync runs once, a killed worker's sync is finished by
//! another after the heartbeat timeout, and shutdown finishes or releases in-flight syncs.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use pg_catalog_sync::queue::Worker;
use serde_json::Value;

fn mock_worker(app: &TestApp, mock: &MockSource) -> pg_catalog_sync::config::WorkerConfig {
    let mut config = worker_config(app);
    config.external_metadata_url = Some(mock.url.clone());
    config
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Posts a sync of the synthetic catalog `spec` and waits until an attempt runs it.
async fn post_and_wait_running(app: &TestApp, spec: &str) -> Value {
    let (_, accepted) = app.post_sync(&synthetic_body(spec)).await;
    let sync_id = accepted["sync_id"].as_str().unwrap().to_owned();
    wait_until("an attempt", Duration::from_secs(10), async || {
        let (_, sync) = app.get(&format!("/syncs/{sync_id}")).await;
        sync["status"] == "running"
    })
    .await;
    accepted
}

#[tokio::test]
async fn two_workers_run_fifty_syncs_each_exactly_once() {
    let app = spawn_app().await;
    let mock = MockSource::spawn().await;
    let mut accepted = Vec::new();
    for i in 0..50 {
        let (_, body) = app
            .post_sync(&synthetic_body(&format!("1x2x{};latency_ms=40", i + 1)))
            .await;
        accepted.push(body["sync_id"].as_str().unwrap().to_owned());
    }
    let mut config = mock_worker(&app, &mock);
    config.concurrency = 2;
    config.batch_size = 2;
    let a = app.start_worker(config.clone()).await;
    let b = app.start_worker(config).await;

    let mut workers = HashSet::new();
    for sync_id in &accepted {
        let sync = app.wait_for_sync(sync_id, Duration::from_secs(60)).await;
        assert_eq!(sync["status"], "succeeded", "{sync}");
        assert_eq!(sync["attempts"], 1, "ran more than once: {sync}");
        let log = sync["attempt_log"].as_array().unwrap();
        assert_eq!(log.len(), 1);
        workers.insert(log[0]["worker"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        workers,
        HashSet::from([a.name.clone(), b.name.clone()]),
        "both workers took part"
    );

    // Finished jobs are deleted from the queue table; the history stays in syncs.
    wait_until("the janitor", Duration::from_secs(10), async || {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM apalis.jobs")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        left == 0
    })
    .await;
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM syncs WHERE status = 'succeeded'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(kept, 50);

    for worker in [a, b] {
        worker.shutdown.cancel();
        worker.join.await.unwrap().unwrap();
    }
}

/// A worker on a runtime of its own, so the test can kill it without any shutdown.
struct KillableWorker {
    name: String,
    kill: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

fn spawn_killable(config: pg_catalog_sync::config::WorkerConfig) -> KillableWorker {
    let (name_tx, name_rx) = std::sync::mpsc::channel();
    let (kill, kill_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let handle = runtime.block_on(async {
            let pool = pg_catalog_sync::db::connect(&config.store).unwrap();
            Worker::new(config, pool).unwrap().start()
        });
        name_tx.send(handle.name.clone()).unwrap();
        let _ = kill_rx.recv();
        // No graceful shutdown: tasks are dropped, connections cut, heartbeats stop.
        runtime.shutdown_background();
    });
    KillableWorker {
        name: name_rx.recv().unwrap(),
        kill,
        thread,
    }
}

#[tokio::test]
async fn a_killed_workers_sync_is_finished_by_another_worker() {
    let app = spawn_app().await;
    let mock = MockSource::spawn().await;
    let doomed = spawn_killable(mock_worker(&app, &mock));

    let accepted = post_and_wait_running(&app, "2x10x5;latency_ms=2500").await;
    let sync_id = accepted["sync_id"].as_str().unwrap().to_owned();
    let catalog_id = accepted["catalog_id"].as_str().unwrap().to_owned();
    let (_, sync) = app.get(&format!("/syncs/{sync_id}")).await;
    assert_eq!(sync["attempt_log"][0]["worker"], doomed.name.as_str());

    doomed.kill.send(()).unwrap();
    doomed.thread.join().unwrap();
    let killed_at = Instant::now();
    // Nothing half-written: the catalog is still empty.
    let (_, tables) = app.get(&format!("/catalogs/{catalog_id}/tables")).await;
    assert_eq!(tables, Value::Array(vec![]));

    let rescuer = app.start_worker(mock_worker(&app, &mock)).await;
    let sync = app.wait_for_sync(&sync_id, Duration::from_secs(30)).await;
    let recovery = killed_at.elapsed();
    assert_eq!(sync["status"], "succeeded", "{sync}");
    assert_eq!(sync["attempts"], 2);
    let log = sync["attempt_log"].as_array().unwrap();
    assert!(
        log[0]["error"].as_str().unwrap().contains("worker stopped"),
        "{sync}"
    );
    assert_eq!(log[1]["worker"], rescuer.name.as_str());
    // Heartbeat 1 s x 2 missed, plus the 2.5 s source latency, plus slack.
    assert!(
        recovery < Duration::from_secs(12),
        "recovery took {recovery:?}"
    );
    let (_, tables) = app
        .get(&format!("/catalogs/{catalog_id}/tables?limit=1000"))
        .await;
    assert_eq!(tables.as_array().unwrap().len(), 20);
    let columns: i64 = sqlx::query_scalar("SELECT count(*) FROM catalog_columns")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(columns, 100);
}

#[tokio::test]
async fn shutdown_finishes_running_syncs_and_releases_waiting_ones() {
    let app = spawn_app().await;
    let mock = MockSource::spawn().await;

    // A sync in the middle of its fetch finishes before the worker exits.
    let worker = app.start_worker(mock_worker(&app, &mock)).await;
    let (_, running) = app
        .post_sync(&synthetic_body("1x3x3;latency_ms=1000"))
        .await;
    let running_id = running["sync_id"].as_str().unwrap().to_owned();
    wait_until("the sync to start", Duration::from_secs(10), async || {
        app.get(&format!("/syncs/{running_id}")).await.1["status"] == "running"
    })
    .await;
    worker.shutdown.cancel();
    worker.join.await.unwrap().unwrap();
    let (_, sync) = app.get(&format!("/syncs/{running_id}")).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");

    // A sync waiting out its backoff goes back to the queue, and another worker finishes it.
    let mut slow_retry = mock_worker(&app, &mock);
    slow_retry.retry_min_delay_ms = 60_000;
    slow_retry.retry_max_delay_ms = 60_000;
    let worker = app.start_worker(slow_retry).await;
    let (_, waiting) = app.post_sync(&synthetic_body("1x3x3;fail_first=1")).await;
    let waiting_id = waiting["sync_id"].as_str().unwrap().to_owned();
    wait_until(
        "the first attempt to fail",
        Duration::from_secs(10),
        async || app.get(&format!("/syncs/{waiting_id}")).await.1["status"] == "retrying",
    )
    .await;
    let stopping = Instant::now();
    worker.shutdown.cancel();
    worker.join.await.unwrap().unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "shutdown waited out the backoff"
    );

    let next = app.start_worker(mock_worker(&app, &mock)).await;
    let sync = app
        .wait_for_sync(&waiting_id, Duration::from_secs(30))
        .await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    assert_eq!(sync["attempts"], 2);
    assert_eq!(sync["attempt_log"][1]["worker"], next.name.as_str());
}

#[tokio::test]
async fn the_api_shuts_down_gracefully() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health").await.0, reqwest::StatusCode::OK);
    app.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), app.server)
        .await
        .expect("server stopped")
        .unwrap()
        .unwrap();
    assert!(reqwest::get(format!("{}/health", app.base)).await.is_err());
}

/// A sync whose only attempt died with its worker is not run again: the next delivery of its
/// job ends it as failed, saying why.
#[tokio::test]
async fn a_sync_whose_last_attempt_died_with_its_worker_fails() {
    let app = spawn_app_with(AppOptions {
        max_attempts: 1,
        ..AppOptions::default()
    })
    .await;
    let mock = MockSource::spawn().await;
    let doomed = spawn_killable(mock_worker(&app, &mock));
    let accepted = post_and_wait_running(&app, "1x2x2;latency_ms=2500").await;
    let sync_id = accepted["sync_id"].as_str().unwrap().to_owned();
    doomed.kill.send(()).unwrap();
    doomed.thread.join().unwrap();

    let _rescuer = app.start_worker(mock_worker(&app, &mock)).await;
    let sync = app.wait_for_sync(&sync_id, Duration::from_secs(30)).await;
    assert_eq!(sync["status"], "failed", "{sync}");
    assert_eq!(sync["attempts"], 1, "{sync}");
    assert_eq!(
        sync["last_error"],
        "gave up after 1 attempts: the worker stopped mid-attempt"
    );
    let log = sync["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 1, "{sync}");
    assert_eq!(
        log[0]["error"], "worker stopped before finishing the attempt",
        "{sync}"
    );
}

/// An idle worker hears of each new sync from the queue's notification: with its poll and its
/// heartbeat (which also fetches) an hour apart, nothing else could wake it.
#[tokio::test]
async fn an_idle_worker_is_woken_by_each_new_sync() {
    let app = spawn_app().await;
    let mock = MockSource::spawn().await;
    let mut config = mock_worker(&app, &mock);
    config.poll_interval_ms = 3_600_000;
    config.heartbeat_secs = 3_600;
    let _worker = app.start_worker(config).await;
    wait_until(
        "the worker to register",
        Duration::from_secs(10),
        async || {
            // Its consumers of the sync queue and of the webhook queue.
            let registered: i64 = sqlx::query_scalar("SELECT count(*) FROM apalis.workers")
                .fetch_one(&app.pool)
                .await
                .unwrap_or(0);
            registered == 2
        },
    )
    .await;
    // Past the worker's first fetch, which found nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 1..=3 {
        let (_, body) = app.post_sync(&synthetic_body(&format!("1x1x{i}"))).await;
        let sync_id = body["sync_id"].as_str().unwrap();
        let sync = app.wait_for_sync(sync_id, Duration::from_secs(20)).await;
        assert_eq!(sync["status"], "succeeded", "{sync}");
    }
}
