//! The store stopped and restarted under load: the API keeps answering (503 JSON while the store
//! is down, never a crash), recovers by itself within seconds of the store's return, the workers
//! reconnect, and no sync that got a 202 is lost.
//!
//! The store is a throwaway PostgreSQL cluster of the test's own (initdb + pg_ctl), so stopping
//! it disturbs nothing else.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// A PostgreSQL cluster under `target/test-clusters/` (as root, under the temporary directory:
/// the `postgres` user the server runs as may not be able to enter the checkout), removed
/// when dropped.
struct Cluster {
    dir: PathBuf,
    bindir: PathBuf,
    port: u16,
}

impl Cluster {
    fn start() -> Self {
        let bindir = server_bindir();
        let base = match is_root() {
            true => std::env::temp_dir().join("pgcs-test-clusters"),
            false => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-clusters"),
        };
        let dir = base.join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let cluster = Self {
            dir,
            bindir,
            port: free_port(),
        };
        if is_root() {
            // initdb and postgres refuse to run as root.
            run(Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&cluster.dir));
        }
        run(cluster
            .as_owner("initdb")
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(cluster.dir.join("data")));
        cluster.pg_ctl("start");
        cluster
    }

    fn url(&self, dbname: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{dbname}", self.port)
    }

    fn as_owner(&self, program: &str) -> Command {
        let path = self.bindir.join(program);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let mut command = self.as_owner("pg_ctl");
        command
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-m", "fast", "-o", &options, action]);
        run(&mut command);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .as_owner("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn run(command: &mut Command) {
    let out = command
        .output()
        .expect("running a PostgreSQL server binary");
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Where initdb and pg_ctl are: `pg_config --bindir`, else the newest of Debian's versions.
fn server_bindir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|d| d.join("initdb").exists());
    versions.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    versions
        .pop()
        .expect("the PostgreSQL server binaries (initdb, pg_ctl) are needed for this test")
}

/// What the load saw: every accepted sync, and how the others were answered.
#[derive(Default)]
struct Seen {
    accepted: Vec<String>,
    unavailable: usize,
    /// (time, status) of each answer.
    answers: Vec<(Instant, StatusCode)>,
}

#[tokio::test]
async fn a_store_restart_under_load_loses_no_accepted_sync() {
    let cluster = Cluster::start();
    let admin = sqlx::PgPool::connect(&cluster.url("postgres"))
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE pgcs_store")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let store = TestDatabase {
        name: "pgcs_store".into(),
        url: cluster.url("pgcs_store"),
    };
    let app = spawn_app_on(store, AppOptions::default()).await;
    let mock = MockSource::spawn().await;
    let mut config = worker_config(&app);
    config.external_metadata_url = Some(mock.url.clone());
    let _worker = app.start_worker(config).await;

    // Load: one client after another posting syncs of distinct synthetic sources.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = CancellationToken::new();
    let mut clients = Vec::new();
    for client in 0..4 {
        let (http, url, seen, stop) = (
            app.client.clone(),
            app.url("/sync"),
            seen.clone(),
            stop.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.is_cancelled() {
                n += 1;
                let body = synthetic_body(&format!("1x2x3;tag=c{client}n{n}"));
                let response = http.post(&url).json(&body).send().await;
                let response = response.expect("the API stays up while the store is down");
                let status = response.status();
                let json: Value = response.json().await.expect("every answer is JSON");
                {
                    let mut seen = seen.lock().unwrap();
                    seen.answers.push((Instant::now(), status));
                    match status {
                        StatusCode::ACCEPTED => seen
                            .accepted
                            .push(json["sync_id"].as_str().unwrap().to_owned()),
                        StatusCode::SERVICE_UNAVAILABLE => {
                            assert_eq!(json["error"]["code"], "store_unavailable", "{json}");
                            seen.unavailable += 1;
                        }
                        other => panic!("unexpected {other}: {json}"),
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.pg_ctl("stop");
    let stopped_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // While it is down: alive, not ready, reads are 503 JSON.
    assert_eq!(app.get("/health").await.0, StatusCode::OK);
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, body) = app.get("/catalogs").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable");
    tokio::time::sleep(Duration::from_secs(2)).await;

    cluster.pg_ctl("start");
    let restarted_at = Instant::now();
    let deadline = restarted_at + Duration::from_secs(30);
    let recovered_at = loop {
        let accepted_since = seen
            .lock()
            .unwrap()
            .answers
            .iter()
            .find(|(at, status)| *at > restarted_at && *status == StatusCode::ACCEPTED)
            .map(|(at, _)| *at);
        if let Some(at) = accepted_since {
            break at;
        }
        assert!(Instant::now() < deadline, "the API did not recover");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(app.get("/ready").await.0, StatusCode::OK);

    // Every accepted sync is run to success by the reconnected worker.
    let (accepted, unavailable) = {
        let seen = seen.lock().unwrap();
        (seen.accepted.clone(), seen.unavailable)
    };
    assert!(unavailable > 0, "the outage was not seen");
    let mut lost = Vec::new();
    for sync_id in &accepted {
        let sync = app.wait_for_sync(sync_id, Duration::from_secs(60)).await;
        if sync["status"] != "succeeded" {
            lost.push(sync);
        }
    }
    assert_eq!(
        lost,
        Vec::<Value>::new(),
        "accepted syncs that did not succeed"
    );
    println!(
        "store outage: {} syncs accepted, {unavailable} answered 503 while the store was down \
         ({:.1} s), 0 lost; first 202 {:.2} s after the store restarted",
        accepted.len(),
        (restarted_at - stopped_at).as_secs_f64(),
        (recovered_at - restarted_at).as_secs_f64()
    );
}
