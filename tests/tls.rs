//! `sslmode` reaches the source connection: seen on the wire by a relay between the worker and
//! the test server (which has TLS enabled), which records how each connection opens.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;
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
