//! The command-line client, run as the real binary against a running API and worker.

mod common;

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};

async fn run(app: &TestApp, args: &[&str], password: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(binary("pg-catalog-sync"));
    command
        .args(args)
        .env("PGCS_API_URL", &app.base)
        .env_remove("PGPASSWORD");
    if let Some(p) = password {
        command.env("PGPASSWORD", p);
    }
    command.output().await.expect("running pg-catalog-sync")
}

/// `sync` of `dbname` on the test server, then `extra`.
async fn run_sync(app: &TestApp, dbname: &str, extra: &[&str], password: Option<&str>) -> Output {
    let (host, port) = server_host_port();
    let port = port.to_string();
    let mut args = vec![
        "sync", "--host", &host, "--port", &port, "--user", "postgres", "--dbname", dbname,
    ];
    args.extend_from_slice(extra);
    run(app, &args, password).await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn sync_wait_follows_the_sync_and_tables_lists_what_it_read() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl(
        "pgcs_src",
        "CREATE TABLE orders (id int PRIMARY KEY, total numeric);
         CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;",
    )
    .await;
    let out = run_sync(&app, &source.name, &["--wait"], Some("cli-secret")).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("status  succeeded"), "{stdout}");
    assert!(
        stdout.contains("1 schemas, 2 tables, 4 columns"),
        "{stdout}"
    );
    assert!(
        stderr.contains("succeeded"),
        "progress goes to stderr: {stderr}"
    );
    assert!(!stdout.contains("cli-secret") && !stderr.contains("cli-secret"));
    let catalog = stdout
        .lines()
        .find_map(|l| l.strip_prefix("catalog "))
        .expect("the catalog id is printed")
        .trim()
        .to_owned();
    let sync_id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("sync    "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the sync id is printed")
        .to_owned();

    let out = run(&app, &["tables", &catalog], None).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["SCHEMA", "NAME", "KIND", "COLUMNS", "ROWS", "(EST.)"]
    );
    assert_eq!(rows[1][..4], ["public", "big_orders", "view", "2"]);
    assert_eq!(rows[2][..4], ["public", "orders", "table", "2"]);
    assert_eq!(rows.len(), 3);

    let out = run(&app, &["status", &sync_id], None).await;
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("status  succeeded"));
    let out = run(&app, &["status", &sync_id, "--json"], None).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["sync_id"], sync_id.as_str());

    let out = run(&app, &["catalogs"], None).await;
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&catalog) && l.contains("succeeded")),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_client_exits_non_zero_with_the_reason() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    // A sync that fails: exit status 1 and the source's error.
    let out = run_sync(&app, "pgcs_no_such_db", &["--wait"], None).await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("status  failed"), "{stdout}");
    assert!(
        stdout.contains("pgcs_no_such_db"),
        "the error names the database: {stdout}"
    );

    // Refused by the API: the field and the message.
    let out = run_sync(&app, "x", &["--sslmode", "sometimes"], None).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("400") && stderr.contains("sslmode"),
        "{stderr}"
    );

    let out = run(&app, &["status", &uuid::Uuid::new_v4().to_string()], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("404"), "{}", text(&out.stderr));

    // No API there.
    let mut command = tokio::process::Command::new(binary("pg-catalog-sync"));
    let out = command
        .args([
            "catalogs",
            "--api",
            &format!("http://127.0.0.1:{}", free_port()),
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot reach the API"),
        "{}",
        text(&out.stderr)
    );

    // Usage errors come from the argument parser.
    let out = run(&app, &["sync", "--user", "postgres"], None).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--host"));
}

/// `sync --wait` off a terminal shows a running sync's phase and progress bar, one line for as
/// long as they stay the same, and still exits 0 when the sync succeeds.
#[tokio::test]
async fn sync_wait_shows_the_progress_of_a_running_sync() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl(
        "pgcs_src",
        "CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE TABLE c (id int);",
    )
    .await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    // Two of the three tables change: the next sync compares the 3 relations and writes 2,
    // held as it inserts their details, before any relation counts as done.
    source
        .execute("ALTER TABLE a ADD COLUMN x int; ALTER TABLE c ADD COLUMN x int")
        .await;
    app.hold_writes().await;

    let (host, port) = server_host_port();
    let port = port.to_string();
    let mut child = tokio::process::Command::new(binary("pg-catalog-sync"))
        .args([
            "sync", "--host", &host, "--port", &port, "--user", "postgres",
        ])
        .args(["--dbname", &source.name, "--wait"])
        .env("PGCS_API_URL", &app.base)
        .env_remove("PGPASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running pg-catalog-sync");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut shown = Vec::new();
    let writing = "running: comparing [--------------------] 0/3 relations";
    let deadline = Instant::now() + Duration::from_secs(30);
    while !shown.iter().any(|l| l == writing) {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no progress shown: {shown:?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("the client ended first: {shown:?}"));
        shown.push(line);
    }
    // Held for a few more of the client's polls (one a second), which print nothing new.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    app.release_writes().await;
    while let Some(line) = tokio::time::timeout_at(deadline.into(), lines.next_line())
        .await
        .expect("the client never ended")
        .unwrap()
    {
        shown.push(line);
    }
    let out = child.wait_with_output().await.unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{shown:?}");
    assert!(stdout.contains("status  succeeded"), "{stdout}");
    assert_eq!(
        shown.iter().filter(|l| *l == writing).count(),
        1,
        "{shown:?}"
    );
    assert_eq!(
        shown.last().map(String::as_str),
        Some("succeeded (attempt 1)")
    );
    assert!(
        shown.windows(2).all(|pair| pair[0] != pair[1]),
        "a line per change: {shown:?}"
    );
}

#[tokio::test]
async fn sync_sends_the_tls_material_of_the_files_given() {
    use common::tls_server::{CERT_DB, TlsServer};
    let server = TlsServer::start().await;
    server.execute(CERT_DB, "CREATE TABLE t (id int)").await;
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let dir = std::env::temp_dir().join(format!("pgcs-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let ca = file("ca.crt", &server.ca_pem);
    let cert = file("client.crt", &server.client_cert_pem);
    let key = file("client.key", &server.client_key_pem);
    let port = server.port.to_string();
    let sync = |cert: String| {
        let (app, port, ca, key) = (&app, port.clone(), ca.clone(), key.clone());
        async move {
            let args = [
                "sync",
                "--host",
                "localhost",
                "--port",
                &port,
                "--user",
                "postgres",
                "--dbname",
                CERT_DB,
                "--sslmode",
                "verify-full",
                "--sslrootcert",
                &ca,
                "--sslcert",
                &cert,
                "--sslkey",
                &key,
                "--wait",
            ];
            let out = run(app, &args, None).await;
            (out.status.success(), text(&out.stdout), text(&out.stderr))
        }
    };

    let (success, stdout, stderr) = sync(cert).await;
    assert!(success, "{stdout}\n{stderr}");
    assert!(stdout.contains("status  succeeded"), "{stdout}");

    // The key given as the certificate: the API's refusal names the field.
    let (success, stdout, stderr) = sync(key.clone()).await;
    assert!(!success, "{stdout}");
    assert!(
        stderr.contains("400") && stderr.contains("sslcert"),
        "{stderr}"
    );
    let key_line = server.client_key_pem.lines().nth(1).unwrap();
    assert!(!stdout.contains(key_line) && !stderr.contains(key_line));

    // A file that cannot be read: the flag and the file are named.
    let missing = dir.join("missing.crt").to_str().unwrap().to_owned();
    let (success, _, stderr) = sync(missing).await;
    assert!(!success);
    assert!(stderr.contains("--sslcert"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
