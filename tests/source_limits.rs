//! The per-host limit on source connections (`SOURCE_HOST_CONNECTIONS`): syncs beyond it wait
//! in the queue, visibly, and all succeed; the source never sees more connections than allowed,
//! whichever worker runs the syncs.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use sqlx::PgPool;

const LIMIT: u32 = 4;
/// Each sync reads over two connections: two run at once, the others wait.
const SYNCS: usize = 6;

#[tokio::test]
async fn syncs_beyond_a_hosts_connections_wait_in_the_queue_and_all_succeed() {
    let app = spawn_app().await;
    let mut sources = Vec::new();
    for _ in 0..SYNCS {
        sources
            .push(TestDatabase::with_ddl("pgcs_src", "CREATE TABLE t (id int PRIMARY KEY)").await);
    }
    let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();

    // Two workers share the limit, with room to run every sync at once.
    let mut workers = Vec::new();
    for _ in 0..2 {
        let mut config = worker_config(&app);
        config.concurrency = SYNCS;
        config.source_host_connections = LIMIT;
        workers.push(app.start_worker(config).await);
    }

    // Count the source's connections from this service, all along.
    let admin = PgPool::connect(&admin_url()).await.unwrap();
    let most = Arc::new(AtomicI64::new(0));
    let sampler = {
        let (admin, most, names) = (admin.clone(), most.clone(), names.clone());
        tokio::spawn(async move {
            loop {
                let open: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE application_name = 'pg-catalog-sync' AND datname = ANY($1)",
                )
                .bind(&names)
                .fetch_one(&admin)
                .await
                .unwrap();
                most.fetch_max(open, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    // Held writes keep the first syncs running, and their slots taken.
    app.hold_writes().await;
    let mut ids = Vec::new();
    for name in &names {
        let (_, accepted) = app.post_sync(&sync_body(name)).await;
        ids.push(accepted["sync_id"].as_str().unwrap().to_owned());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let (running, waiting) = loop {
        let mut running = 0;
        let mut waiting = 0;
        for id in &ids {
            let (_, sync) = app.get(&format!("/syncs/{id}")).await;
            match (sync["status"].as_str(), sync["progress"]["phase"].as_str()) {
                (Some("running"), _) => running += 1,
                (Some("queued"), Some("waiting")) => waiting += 1,
                _ => {}
            }
        }
        if running + waiting == SYNCS && waiting == SYNCS - 2 || Instant::now() > deadline {
            break (running, waiting);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (running, waiting),
        (2, SYNCS - 2),
        "two syncs run (four connections); the others wait in the queue and say so"
    );

    app.release_writes().await;
    for id in &ids {
        let sync = app.wait_for_sync(id, Duration::from_secs(60)).await;
        assert_eq!(sync["status"], "succeeded", "{sync}");
        assert_eq!(sync["attempts"], 1, "waiting costs no attempt: {sync}");
    }
    sampler.abort();
    let most = most.load(Ordering::Relaxed);
    assert!(
        (1..=i64::from(LIMIT)).contains(&most),
        "the source saw {most} connections at once; the limit is {LIMIT}"
    );
    println!(
        "source host limit: {SYNCS} syncs over two workers, {waiting} waited, all succeeded; \
         at most {most} source connections at once (limit {LIMIT})"
    );
    for worker in workers {
        worker.shutdown.cancel();
        worker.join.await.unwrap().unwrap();
    }
}
