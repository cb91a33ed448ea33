//! The real binaries as separate processes: a worker killed with SIGKILL while 100 syncs (or
//! 30 webhook deliveries) are in flight loses none of them, one killed in the middle of a
//! snapshot's write leaves the previous snapshot intact, and the source password appears in no
//! log line a process wrote, in no API response, and nowhere in a `pg_dump` of the store.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::service::Service;
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_sigkilled_worker_loses_none_of_100_syncs() {
    let mock = MockSource::spawn().await;
    let service = Service::start(&[]).await;
    let external = [
        ("EXTERNAL_METADATA_URL", mock.url.clone()),
        ("WORKER_CONCURRENCY", "10".to_owned()),
    ];
    let mut doomed = service.worker("doomed", &external);
    let survivor = service.worker("survivor", &external);

    let mut ids = Vec::new();
    for i in 0..100 {
        let body = synthetic_body(&format!("1x3x3;latency_ms=400;tag={i}"));
        ids.push(
            service.post(&body).await["sync_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let pool = sqlx::PgPool::connect(&service.store.url).await.unwrap();
    // Kill the doomed worker while it holds syncs in the middle of their fetch.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sync_attempts WHERE worker LIKE 'doomed-%' AND finished_at IS NULL",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if running >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the doomed worker took no sync");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.child.kill().unwrap(); // SIGKILL: no shutdown, no release
    doomed.child.wait().unwrap();
    let killed_at = Instant::now();

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM syncs WHERE status NOT IN ('succeeded', 'failed')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} syncs never ended; survivor: {}",
            survivor.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered_in = killed_at.elapsed();

    let (succeeded, rerun, relations): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM syncs WHERE status = 'succeeded'),
                (SELECT count(*) FROM syncs WHERE attempts > 1),
                (SELECT count(*) FROM catalog_relations)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    println!(
        "SIGKILL with 100 syncs in flight: lost 0 of {succeeded}; {rerun} re-run elsewhere; all ended {recovered_in:?} after the kill"
    );
    assert_eq!(succeeded, 100, "every sync succeeded");
    assert!(rerun >= 3, "the killed worker's syncs ran again: {rerun}");
    assert_eq!(
        relations, 300,
        "every catalog holds its snapshot exactly once"
    );
    // The orphan timeout is 1 s x 2 missed heartbeats; the rest is the remaining work.
    assert!(recovered_in < Duration::from_secs(60), "{recovered_in:?}");
    for id in &ids {
        let sync: Value =
            serde_json::from_str(&service.get_text(&format!("/syncs/{id}")).await).unwrap();
        let log = sync["attempt_log"].as_array().unwrap();
        assert_eq!(log.last().unwrap()["error"], Value::Null, "{sync}");
        assert!(
            log.iter().filter(|a| a["error"].is_null()).count() == 1,
            "succeeded exactly once: {sync}"
        );
    }
}

/// A worker killed with SIGKILL in the middle of a snapshot's write (held there by a trigger of
/// the store that sleeps) leaves the previous snapshot served as it was, and the sync's next
/// attempt, on another worker, writes the new one.
#[tokio::test]
async fn a_worker_killed_mid_write_leaves_the_previous_snapshot_and_the_next_attempt_writes() {
    let service = Service::start(&[]).await;
    let pool = sqlx::PgPool::connect(&service.store.url).await.unwrap();
    // The dead worker's backend notices its client is gone while it sleeps, and rolls back.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{}\" SET client_connection_check_interval = '100ms';
         CREATE TABLE hold_writes ();
         CREATE FUNCTION hold_writes() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF EXISTS (SELECT FROM hold_writes) THEN PERFORM pg_sleep(60); END IF;
             RETURN NULL;
         END $$;
         CREATE TRIGGER hold_writes BEFORE INSERT ON catalog_relation_details
         FOR EACH STATEMENT EXECUTE FUNCTION hold_writes();",
        service.store.name
    )))
    .execute(&pool)
    .await
    .unwrap();
    let source = TestDatabase::with_ddl(
        "pgcs_proc_src",
        "CREATE TABLE public.a (id int PRIMARY KEY, x int); CREATE TABLE public.b (id int);",
    )
    .await;
    let body = sync_body(&source.name);
    let mut doomed = service.worker("doomed", &[]);
    let first = service.post(&body).await;
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();
    let sync_status = |id: String| {
        let service = &service;
        async move {
            let sync: Value =
                serde_json::from_str(&service.get_text(&format!("/syncs/{id}")).await).unwrap();
            sync
        }
    };
    let wait_until_ended = |id: String| async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let sync = sync_status(id.clone()).await;
            if ["succeeded", "failed"].contains(&sync["status"].as_str().unwrap()) {
                return sync;
            }
            assert!(Instant::now() < deadline, "the sync never ended: {sync}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let first = wait_until_ended(first["sync_id"].as_str().unwrap().to_owned()).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let (a_path, tables_path) = (
        format!("/catalogs/{catalog}/tables/public/a"),
        format!("/catalogs/{catalog}/tables"),
    );
    let table_a = || service.get_text(&a_path);
    let tables = || service.get_text(&tables_path);
    let (before_a, before_tables) = (table_a().await, tables().await);

    source
        .execute("ALTER TABLE public.a ADD COLUMN y text; CREATE TABLE public.c (id int);")
        .await;
    sqlx::query("INSERT INTO hold_writes DEFAULT VALUES")
        .execute(&pool)
        .await
        .unwrap();
    let second = service.post(&body).await;
    let second_id = second["sync_id"].as_str().unwrap().to_owned();
    let sleeping = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event = 'PgSleep'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while sleeping().await == 0 {
        assert!(
            Instant::now() < deadline,
            "the write never reached the trigger"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Mid-write: the changed relation's rows are rewritten in the open transaction, unseen.
    assert_eq!(table_a().await, before_a);
    doomed.child.kill().unwrap(); // SIGKILL
    doomed.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while sleeping().await > 0 {
        assert!(
            Instant::now() < deadline,
            "the dead worker's write never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(table_a().await, before_a, "the previous snapshot is intact");
    assert_eq!(tables().await, before_tables);

    sqlx::query("DELETE FROM hold_writes")
        .execute(&pool)
        .await
        .unwrap();
    let _survivor = service.worker("survivor", &[]);
    let second = wait_until_ended(second_id).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(second["attempts"], 2, "{second}");
    assert_eq!(second["stats"]["relations_written"], 2, "{second}");
    let after_a: Value = serde_json::from_str(&table_a().await).unwrap();
    assert_eq!(names(&after_a["columns"], "name"), ["id", "x", "y"]);
    let after: Value = serde_json::from_str(&tables().await).unwrap();
    assert_eq!(names(&after, "name"), ["a", "b", "c"]);
}

#[tokio::test]
async fn the_password_appears_in_no_log_response_or_dump() {
    let verbose = [("RUST_LOG", "debug".to_owned())];
    let service = Service::start(&verbose).await;
    let worker = service.worker("secretive", &verbose);
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let mut body = sync_body("postgres");
    body["password"] = json!(password);
    let accepted = service.post(&body).await;
    let sync_id = accepted["sync_id"].as_str().unwrap();
    let catalog_id = accepted["catalog_id"].as_str().unwrap();
    let status: Value = serde_json::from_str(
        &service
            .get_text(&format!("/syncs/{sync_id}?wait=30s"))
            .await,
    )
    .unwrap();
    assert_eq!(status["status"], "succeeded", "{status}");

    let mut responses = String::new();
    for path in [
        format!("/syncs/{sync_id}"),
        format!("/catalogs/{catalog_id}"),
        format!("/catalogs/{catalog_id}/syncs"),
        "/catalogs".to_owned(),
        "/metrics".to_owned(),
    ] {
        responses.push_str(&service.get_text(&path).await);
    }
    let dump = Command::new("pg_dump")
        .args(["--data-only", "--no-owner", "-d", &service.store.url])
        .output()
        .expect("pg_dump (PostgreSQL's client tools) is needed for this test");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout).to_string();
    assert!(dump.contains(sync_id), "the dump holds the sync");

    let logs = format!("{}{}", service.api.output(), worker.output());
    assert!(
        logs.contains(sync_id) && logs.lines().count() > 10,
        "debug logs were written"
    );
    let hex: String = password.bytes().map(|b| format!("{b:02x}")).collect();
    for (what, text) in [
        ("logs", &logs),
        ("responses", &responses),
        ("pg_dump", &dump),
    ] {
        assert!(
            !text.contains(&password) && !text.contains(&hex),
            "the password leaked into the {what}"
        );
    }
}

#[tokio::test]
async fn terminated_store_connections_lose_no_accepted_sync() {
    let mock = MockSource::spawn().await;
    let service = Service::start(&[]).await;
    let external = [("EXTERNAL_METADATA_URL", mock.url.clone())];
    let mut worker = service.worker(
        "resilient",
        &[
            external[0].clone(),
            (
                "RUST_LOG",
                "info,apalis=debug,apalis_core=debug,apalis_postgres=debug".to_owned(),
            ),
        ],
    );
    let admin = sqlx::PgPool::connect(&admin_url()).await.unwrap();

    let mut accepted = Vec::new();
    let mut unavailable = 0;
    for i in 0..60 {
        if i % 10 == 5 {
            // Every connection the API and the worker hold to the store is cut.
            let cut: Vec<(bool,)> = sqlx::query_as(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&service.store.name)
            .fetch_all(&admin)
            .await
            .unwrap();
            assert!(!cut.is_empty());
        }
        let body = synthetic_body(&format!("1x2x2;latency_ms=50;tag={i}"));
        let response = service
            .client
            .post(format!("{}/sync", service.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            202 => accepted.push(
                response.json::<Value>().await.unwrap()["sync_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
            503 => {
                let error: Value = response.json().await.unwrap();
                assert_eq!(error["error"]["code"], "store_unavailable");
                unavailable += 1;
            }
            other => panic!("POST /sync answered {other}"),
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(
        accepted.len() >= 50,
        "the API recovered at once: {} accepted, {unavailable} unavailable",
        accepted.len()
    );
    for id in &accepted {
        let status: Value =
            serde_json::from_str(&service.get_text(&format!("/syncs/{id}?wait=30s")).await)
                .unwrap();
        assert_eq!(
            status["status"],
            "succeeded",
            "accepted sync {id}: {status}\nworker log:\n{}",
            worker.output()
        );
    }
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "the worker is still running: {}",
        worker.output()
    );
    let restarts = worker.output().matches("starting a new one").count();
    println!(
        "{} syncs accepted, {unavailable} answered 503, all accepted ones succeeded; the worker's queue consumer restarted {restarts} times",
        accepted.len()
    );
}

#[tokio::test]
async fn a_sigkilled_worker_loses_no_webhook_delivery() {
    let receiver = common::receiver::Receiver::spawn().await;
    receiver.delay(Duration::from_millis(500));
    let service = Service::start(&[("WEBHOOK_ALLOWLIST", LOOPBACK.to_owned())]).await;
    let subscription = json!({"url": receiver.url, "catalogs": "all", "events": ["sync.failed"]});
    let hook = service.post_to("/webhooks", Some(&subscription)).await;
    let id = hook["id"].as_str().unwrap();
    let mut events = Vec::new();
    for _ in 0..30 {
        let queued = service.post_to(&format!("/webhooks/{id}/test"), None).await;
        events.push(queued["event_id"].as_str().unwrap().to_owned());
    }
    let concurrency = [("WEBHOOK_CONCURRENCY", "10".to_owned())];
    let mut doomed = service.worker("doomed", &concurrency);
    let pool = sqlx::PgPool::connect(&service.store.url).await.unwrap();
    // Kill the doomed worker while receivers hold its requests.
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.received().len() < 5 {
        assert!(Instant::now() < deadline, "no delivery started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();
    let survivor = service.worker("survivor", &concurrency);

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_deliveries WHERE status <> 'succeeded'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} deliveries never succeeded; survivor: {}",
            survivor.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = receiver.received();
    let mut seen: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    seen.sort();
    let requests = seen.len();
    seen.dedup();
    events.sort();
    assert_eq!(seen, events, "every event reached the receiver");
    assert!(requests >= events.len());
    // A fresh worker's metrics count what it delivers.
    let metrics_port = free_port();
    drop(survivor);
    let counted = service.worker(
        "counter",
        &[("WORKER_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))],
    );
    let queued = service.post_to(&format!("/webhooks/{id}/test"), None).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivery = queued["delivery_id"].as_str().unwrap().to_owned();
    loop {
        let status: String =
            sqlx::query_scalar("SELECT status FROM webhook_deliveries WHERE id = $1::uuid")
                .bind(&delivery)
                .fetch_one(&pool)
                .await
                .unwrap();
        if status == "succeeded" {
            break;
        }
        assert!(Instant::now() < deadline, "{}", counted.output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = service
        .client
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"pgcs_webhook_deliveries_total{outcome="succeeded"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("pgcs_webhook_delivery_duration_seconds"),
        "{metrics}"
    );
}
