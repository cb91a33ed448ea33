//! TLS with sources. `sslmode` reaches the source connection: seen on the wire by a relay
//! between the worker and the test server (which has TLS enabled), which records how each
//! connection opens. The TLS material of a request (`sslrootcert`, `sslcert`, `sslkey`) reaches
//! it too: seen against a throwaway server with a private CA and a database that requires client
//! certificates; it is refused when it is not PEM of its kind, and shows nowhere.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::service::Service;
use common::tls_server::{CERT_DB, TlsServer};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// The code of PostgreSQL's SSLRequest, and of a plain StartupMessage (protocol 3.0).
const SSL_REQUEST: u32 = 80_877_103;
const STARTUP_3_0: u32 = 196_608;

/// Relays connections to the test server, recording the code of each one's first message.
struct Relay {
    port: u16,
    first_codes: Arc<Mutex<Vec<u32>>>,
}

impl Relay {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let first_codes = Arc::new(Mutex::new(Vec::new()));
        let codes = first_codes.clone();
        let (host, server_port) = server_host_port();
        tokio::spawn(async move {
            loop {
                let (mut client, _) = listener.accept().await.unwrap();
                let mut server = TcpStream::connect((host.as_str(), server_port))
                    .await
                    .unwrap();
                let codes = codes.clone();
                tokio::spawn(async move {
                    let mut head = [0u8; 8];
                    if client.read_exact(&mut head).await.is_err() {
                        return;
                    }
                    codes
                        .lock()
                        .unwrap()
                        .push(u32::from_be_bytes(head[4..8].try_into().unwrap()));
                    use tokio::io::AsyncWriteExt;
                    if server.write_all(&head).await.is_ok() {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { port, first_codes }
    }

    fn take(&self) -> Vec<u32> {
        std::mem::take(&mut self.first_codes.lock().unwrap())
    }
}

#[tokio::test]
async fn sslmode_decides_whether_the_source_connection_uses_tls() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", "CREATE TABLE t (id int)").await;
    let relay = Relay::start().await;
    let body = |mode: &str| {
        let mut body = sync_body(&source.name);
        body["host"] = json!("127.0.0.1");
        body["port"] = json!(relay.port);
        body["sslmode"] = json!(mode);
        body
    };

    // `require`: every connection starts by asking for TLS; the sync succeeds over it when the
    // server offers TLS (a throwaway cluster made by the scripts does not), and fails otherwise.
    let pool = sqlx::PgPool::connect(&source.url).await.unwrap();
    let server_tls: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    let sync = app.sync_and_wait(&body("require")).await;
    let expected = if server_tls == "on" {
        "succeeded"
    } else {
        "failed"
    };
    assert_eq!(sync["status"], expected, "{sync}");
    let codes = relay.take();
    assert!(
        !codes.is_empty() && codes.iter().all(|c| *c == SSL_REQUEST),
        "{codes:?}"
    );
    if server_tls != "on" {
        return;
    }

    // `disable`: no connection asks for TLS.
    source.execute("CREATE TABLE u (id int)").await;
    let sync = app.sync_and_wait(&body("disable")).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let codes = relay.take();
    assert!(
        !codes.is_empty() && codes.iter().all(|c| *c == STARTUP_3_0),
        "{codes:?}"
    );

    // `verify-full`: the test server's certificate is not one the worker trusts for
    // 127.0.0.1, so the sync fails at once, saying why.
    let sync = app.sync_and_wait(&body("verify-full")).await;
    assert_eq!(sync["status"], "failed", "{sync}");
    assert_eq!(
        sync["attempts"], 1,
        "a certificate does not get better on retry: {sync}"
    );
    let error = sync["last_error"].as_str().unwrap().to_lowercase();
    assert!(
        error.contains("certificate") || error.contains("tls"),
        "{error}"
    );
}

/// Every connection to PostgreSQL, to the store or to a source, disables Nagle's algorithm:
/// without `TCP_NODELAY` a message written right after another waits for the server's delayed
/// ACK (about 40 ms, twice in each TLS handshake). sqlx-core 0.9.0 does not set it; the
/// patched copy in `vendor/` does, and this fails if that patch goes missing.
#[tokio::test]
async fn connections_to_postgres_set_tcp_nodelay() {
    use sqlx::Connection;
    use std::os::fd::BorrowedFd;

    let mut conn = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
    // The server tells our end's port; the socket bound to it is this connection's.
    let port: Option<i32> = sqlx::query_scalar("SELECT inet_client_port()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let port = port.expect("the test server is reached over TCP");
    let mut nodelay = None;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // SAFETY: only getsockname and getsockopt run on the borrowed descriptor; on one that
        // is not a socket, or was closed meanwhile, they fail and it is skipped. The socket
        // looked for stays open while `conn` lives.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let local = socket.local_addr().ok().and_then(|a| a.as_socket());
        if local.is_some_and(|a| i32::from(a.port()) == port) {
            nodelay = Some(socket.tcp_nodelay().unwrap());
        }
    }
    assert_eq!(nodelay, Some(true), "the connection from port {port}");
    conn.close().await.unwrap();
}

/// A line of the PEM text's base64 (its first), which shows if the text leaks anywhere.
fn pem_marker(pem: &str) -> &str {
    pem.lines().nth(1).expect("PEM text has a base64 line")
}

#[tokio::test]
async fn verify_full_trusts_the_ca_given_and_checks_the_host_name() {
    let server = TlsServer::start().await;
    server.admin_execute("CREATE DATABASE src").await;
    server.execute("src", "CREATE TABLE t (id int)").await;
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let body = |host: &str, mode: &str, ca: &str| {
        let mut body = server.sync_body("src");
        body["host"] = json!(host);
        body["sslmode"] = json!(mode);
        body["sslrootcert"] = json!(ca);
        body
    };

    // The connection goes to the address checked against the allow-list, and TLS checks the
    // certificate against the name: `localhost`, which the server's certificate holds.
    let sync = app
        .sync_and_wait(&body("localhost", "verify-full", &server.ca_pem))
        .await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    assert_eq!(sync["stats"]["relations_written"], 1, "{sync}");

    // A CA that did not sign the server's certificate: failed at once, saying why, without
    // quoting the CA given.
    let sync = app
        .sync_and_wait(&body("localhost", "verify-full", &server.other_ca_pem))
        .await;
    assert_eq!(sync["status"], "failed", "{sync}");
    assert_eq!(sync["attempts"], 1, "{sync}");
    let error = sync["last_error"].as_str().unwrap();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert!(!error.contains(pem_marker(&server.other_ca_pem)), "{error}");
    assert!(!error.contains("BEGIN"), "{error}");

    // The same server by address: its certificate does not name 127.0.0.1, which verify-full
    // refuses and verify-ca (the CA alone) accepts.
    let sync = app
        .sync_and_wait(&body("127.0.0.1", "verify-full", &server.ca_pem))
        .await;
    assert_eq!(sync["status"], "failed", "{sync}");
    let sync = app
        .sync_and_wait(&body("127.0.0.1", "verify-ca", &server.ca_pem))
        .await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
}

#[tokio::test]
async fn a_server_that_requires_client_certificates_accepts_sslcert_and_sslkey() {
    let server = TlsServer::start().await;
    server.execute(CERT_DB, "CREATE TABLE t (id int)").await;
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let mut body = server.sync_body(CERT_DB);
    body["sslmode"] = json!("verify-full");
    body["sslrootcert"] = json!(server.ca_pem);

    let sync = app.sync_and_wait(&body).await;
    assert_eq!(sync["status"], "failed", "{sync}");
    assert_eq!(sync["attempts"], 1, "{sync}");
    let error = sync["last_error"].as_str().unwrap();
    assert!(error.contains("certificate"), "{error}");

    body["sslcert"] = json!(server.client_cert_pem);
    body["sslkey"] = json!(server.client_key_pem);
    let sync = app.sync_and_wait(&body).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    assert_eq!(sync["stats"]["relations_written"], 1, "{sync}");

    // `require` sends the client certificate too (and verifies nothing of the server's).
    body["sslmode"] = json!("require");
    body.as_object_mut().unwrap().remove("sslrootcert");
    server.execute(CERT_DB, "CREATE TABLE u (id int)").await;
    let sync = app.sync_and_wait(&body).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
}

#[tokio::test]
async fn tls_material_that_is_not_pem_of_its_kind_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let cert = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";
    let key = "-----BEGIN PRIVATE KEY-----\nMIIBAA==\n-----END PRIVATE KEY-----\n";
    let mut base = sync_body("postgres");
    base["sslmode"] = json!("verify-full");
    for (fields, named) in [
        (json!({"sslrootcert": "my-secret-not-pem"}), "sslrootcert"),
        (json!({"sslrootcert": key}), "sslrootcert"),
        (json!({"sslrootcert": 5}), "sslrootcert"),
        (json!({"sslcert": cert, "sslkey": cert}), "sslkey"),
        (json!({"sslcert": key, "sslkey": key}), "sslcert"),
        (json!({"sslcert": cert}), "sslkey"),
        (json!({"sslkey": key}), "sslcert"),
        (
            json!({"sslrootcert": cert, "sslmode": "require"}),
            "sslrootcert",
        ),
        (
            json!({"sslcert": cert, "sslkey": key, "sslmode": "disable"}),
            "sslcert",
        ),
    ] {
        let mut body = base.clone();
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = app.post_sync(&body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{fields}: {answer}");
        assert_eq!(answer["error"]["field"], named, "{fields}: {answer}");
        assert!(!answer.to_string().contains("my-secret"), "{answer}");
        assert!(!answer.to_string().contains("MIIBAA"), "{answer}");
    }
}

/// The real binaries, logging at debug: the TLS material given to a sync and to a schedule
/// shows in no answer, no log line, and nowhere in a dump of the store (where it is sealed),
/// and the schedule's sealed copy serves a re-sync.
#[tokio::test]
async fn tls_material_shows_in_no_answer_log_or_dump() {
    let server = TlsServer::start().await;
    server.execute(CERT_DB, "CREATE TABLE t (id int)").await;
    let verbose = [("RUST_LOG", "debug".to_owned())];
    let service = Service::start(&verbose).await;
    let worker = service.worker("tls", &verbose);
    let mut body = server.sync_body(CERT_DB);
    body["sslmode"] = json!("verify-full");
    body["sslrootcert"] = json!(server.ca_pem);
    body["sslcert"] = json!(server.client_cert_pem);
    body["sslkey"] = json!(server.client_key_pem);
    let wait = |sync_id: String| {
        let service = &service;
        async move {
            let answer = service
                .get_text(&format!("/syncs/{sync_id}?wait=30s"))
                .await;
            (serde_json::from_str::<Value>(&answer).unwrap(), answer)
        }
    };

    let accepted = service.post(&body).await;
    let catalog_id = accepted["catalog_id"].as_str().unwrap().to_owned();
    let (sync, mut answers) = wait(accepted["sync_id"].as_str().unwrap().into()).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");

    // A failing sync's error, too.
    let mut wrong = body.clone();
    wrong["sslrootcert"] = json!(server.other_ca_pem);
    let accepted = service.post(&wrong).await;
    let (sync, answer) = wait(accepted["sync_id"].as_str().unwrap().into()).await;
    assert_eq!(sync["status"], "failed", "{sync}");
    answers.push_str(&answer);

    // A schedule keeps the material sealed; a re-sync of the catalog runs with it.
    let schedule = json!({"every": "1d", "user": "postgres", "sslmode": "verify-full",
        "sslrootcert": server.ca_pem, "sslcert": server.client_cert_pem,
        "sslkey": server.client_key_pem});
    let path = format!("/catalogs/{catalog_id}/schedule");
    let response = service
        .client
        .put(format!("{}{path}", service.base))
        .json(&schedule)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    answers.push_str(&response.text().await.unwrap());
    server.execute(CERT_DB, "CREATE TABLE u (id int)").await;
    let accepted = service
        .post_to(&format!("/catalogs/{catalog_id}/sync"), None)
        .await;
    let (sync, answer) = wait(accepted["sync_id"].as_str().unwrap().into()).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    assert_eq!(sync["stats"]["tables"], 2, "{sync}");
    answers.push_str(&answer);

    for path in [
        path.clone(),
        format!("/catalogs/{catalog_id}"),
        format!("/catalogs/{catalog_id}/syncs"),
        "/catalogs".to_owned(),
    ] {
        answers.push_str(&service.get_text(&path).await);
    }
    let dump = std::process::Command::new("pg_dump")
        .args(["--data-only", "--no-owner", "-d", &service.store.url])
        .output()
        .expect("pg_dump (PostgreSQL's client tools) is needed for this test");
    assert!(dump.status.success());
    let dump = String::from_utf8_lossy(&dump.stdout).to_string();
    assert!(dump.contains(&catalog_id), "the dump holds the catalog");
    // Give the worker's last lines time to reach its log.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = format!("{}{}", service.api.output(), worker.output());
    assert!(logs.lines().count() > 10, "debug logs were written");
    for pem in [
        &server.ca_pem,
        &server.other_ca_pem,
        &server.client_cert_pem,
        &server.client_key_pem,
    ] {
        let marker = pem_marker(pem);
        for (what, text) in [("answers", &answers), ("logs", &logs), ("pg_dump", &dump)] {
            assert!(!text.contains(marker), "PEM text leaked into the {what}");
        }
    }
}
