//! The real binaries as separate processes: an API over a fresh store, and workers, each
//! writing its output to a log file a test can read.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{LOOPBACK, TestDatabase, binary, free_port};

/// A binary of the workspace running with `env`, its output going to a log file.
pub struct Process {
    pub child: Child,
    log: PathBuf,
}

impl Process {
    pub fn spawn(binary_name: &str, label: &str, env: &[(&str, String)]) -> Self {
        let log = std::env::temp_dir().join(format!(
            "pgcs-{label}-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let out = File::create(&log).unwrap();
        let mut command = Command::new(binary(binary_name));
        command
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out));
        for (k, v) in env {
            command.env(k, v);
        }
        Self {
            child: command.spawn().unwrap(),
            log,
        }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// An API process over a fresh store; workers are started by each test.
pub struct Service {
    pub api: Process,
    pub base: String,
    pub env: Vec<(&'static str, String)>,
    pub store: TestDatabase,
    pub client: reqwest::Client,
}

impl Service {
    pub async fn start(extra: &[(&'static str, String)]) -> Self {
        let store = TestDatabase::create("pgcs_proc").await;
        let port = free_port();
        let mut env = vec![
            ("DATABASE_URL", store.url.clone()),
            (
                "CREDENTIALS_KEY",
                pg_catalog_sync::crypto::CredentialsKey::generate_base64(),
            ),
            ("SOURCE_ALLOWLIST", LOOPBACK.to_owned()),
            ("BIND_ADDR", "127.0.0.1".to_owned()),
            ("PORT", port.to_string()),
            ("WORKER_HEARTBEAT_SECS", "1".to_owned()),
            ("WORKER_MISSED_HEARTBEATS", "2".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ];
        env.extend(extra.iter().cloned());
        let api = Process::spawn("pg-catalog-sync", "api", &env);
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(client.get(format!("{base}/ready")).send().await, Ok(r) if r.status().is_success())
        {
            assert!(
                Instant::now() < deadline,
                "the API did not become ready: {}",
                api.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            api,
            base,
            env,
            store,
            client,
        }
    }

    pub fn worker(&self, name: &str, extra: &[(&'static str, String)]) -> Process {
        let mut env = self.env.clone();
        env.push(("WORKER_NAME", name.to_owned()));
        env.extend(extra.iter().cloned());
        Process::spawn("pg-catalog-sync-worker", name, &env)
    }

    pub async fn post(&self, body: &Value) -> Value {
        let response = self
            .client
            .post(format!("{}/sync", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        response.json().await.unwrap()
    }

    /// POSTs `body` (none: an empty body) to `path` and answers the JSON answer.
    pub async fn post_to(&self, path: &str, body: Option<&Value>) -> Value {
        let mut request = self.client.post(format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    pub async fn get_text(&self, path: &str) -> String {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}
