//! The number of queries one introspection runs does not grow with the number of tables within
//! a batch of relations (2,500 by default): measured on the wire, by a proxy between the worker and the
//! source that counts the statements the worker sends.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::roles::Roles;
use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy to the test server that counts frontend Query ('Q') and Bind ('B') messages:
/// one per statement executed, in the simple and the extended protocol.
struct CountingProxy {
    port: u16,
    statements: Arc<AtomicUsize>,
}

impl CountingProxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let statements = Arc::new(AtomicUsize::new(0));
        let (host, server_port) = server_host_port();
        let counter = statements.clone();
        tokio::spawn(async move {
            loop {
                let (client, _) = listener.accept().await.unwrap();
                let server = TcpStream::connect((host.as_str(), server_port))
                    .await
                    .unwrap();
                tokio::spawn(relay(client, server, counter.clone()));
            }
        });
        Self { port, statements }
    }

    fn count(&self) -> usize {
        self.statements.load(Ordering::SeqCst)
    }
}

async fn relay(client: TcpStream, server: TcpStream, counter: Arc<AtomicUsize>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let backward =
        tokio::spawn(async move { tokio::io::copy(&mut server_read, &mut client_write).await });
    // The startup message has no type byte: a 4-byte length, then the rest.
    let mut length = [0u8; 4];
    if client_read.read_exact(&mut length).await.is_err() {
        return;
    }
    let mut body = vec![0u8; u32::from_be_bytes(length) as usize - 4];
    client_read.read_exact(&mut body).await.unwrap();
    server_write.write_all(&length).await.unwrap();
    server_write.write_all(&body).await.unwrap();
    loop {
        let mut header = [0u8; 5];
        if client_read.read_exact(&mut header).await.is_err() {
            break;
        }
        if header[0] == b'Q' || header[0] == b'B' {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        let len = u32::from_be_bytes(header[1..5].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len - 4];
        if client_read.read_exact(&mut body).await.is_err()
            || server_write.write_all(&header).await.is_err()
        {
            break;
        }
        if server_write.write_all(&body).await.is_err() {
            break;
        }
    }
    backward.abort();
}

fn ddl(tables: usize) -> String {
    let mut sql = String::from("CREATE TABLE parent (id int PRIMARY KEY);\n");
    for i in 0..tables {
        sql.push_str(&format!(
            "CREATE TABLE t{i} (id int PRIMARY KEY, parent int REFERENCES parent, note text UNIQUE);\n\
             COMMENT ON TABLE t{i} IS 'table {i}';\n\
             CREATE VIEW v{i} AS SELECT id FROM t{i};\n"
        ));
    }
    sql
}

#[tokio::test]
async fn introspection_runs_the_same_number_of_queries_for_5_and_200_tables() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let proxy = CountingProxy::start().await;

    let mut counts = Vec::new();
    for tables in [5, 200] {
        let source = TestDatabase::with_ddl("pgcs_count", &ddl(tables)).await;
        let before = proxy.count();
        let mut body = sync_body(&source.name);
        body["host"] = json!("127.0.0.1");
        body["port"] = json!(proxy.port);
        body["sslmode"] = json!("disable"); // the proxy reads the protocol in clear
        let sync = app.sync_and_wait(&body).await;
        assert_eq!(sync["status"], "succeeded", "{sync}");
        assert_eq!(sync["stats"]["tables"], 2 * tables + 1);
        counts.push(proxy.count() - before);
    }
    assert_eq!(
        counts[0], counts[1],
        "statements for 5 and for 200 tables: {counts:?}"
    );
    // 28 catalog queries (what index definitions are printed with, the names of the columns'
    // types and collations, the extensions, the snapshot's export, the schemas' privileges, the
    // default privileges, the schemas' other objects, the database's objects, the roles and the
    // probe included; the relations' parts, privileges and policies among them, once per batch
    // of relations) and transaction control on two connections.
    assert!(
        counts[0] <= 33,
        "one introspection ran {} statements",
        counts[0]
    );
}

/// A sync stores the probe of the state it read with its snapshot; the next sync probes the
/// source and, if the probe matches, does not read the catalog again. A stored probe that no
/// longer matches (the source changed, or its statistics moved) means a full read, which
/// stores a probe again.
#[tokio::test]
async fn a_resync_of_an_unchanged_source_only_probes_it() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let proxy = CountingProxy::start().await;
    let source = TestDatabase::with_ddl("pgcs_count", &ddl(20)).await;
    let mut body = sync_body(&source.name);
    body["host"] = json!("127.0.0.1");
    body["port"] = json!(proxy.port);
    body["sslmode"] = json!("disable");
    let first = app.sync_and_wait(&body).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();
    let probe = app.stored_probe(&catalog).await.expect("a probe is stored");

    let before = proxy.count();
    let again = app.sync_and_wait(&body).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["stats"]["unchanged"], true, "{again}");
    let statements = proxy.count() - before;
    assert_eq!(statements, 1, "only the probe: {again}");

    // A stored probe that does not match: the re-sync reads the catalog, finds it unchanged,
    // and stores the probe of what it read.
    sqlx::query("UPDATE catalogs SET source_probe = 'stale' WHERE id = $1")
        .bind(catalog.parse::<uuid::Uuid>().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let before = proxy.count();
    let third = app.sync_and_wait(&body).await;
    assert_eq!(third["status"], "succeeded", "{third}");
    assert_eq!(third["stats"]["unchanged"], true, "{third}");
    assert_eq!(third["stats"]["relations_written"], 0, "{third}");
    assert_eq!(app.stored_probe(&catalog).await, Some(probe));
    assert!(
        proxy.count() - before > 10,
        "a full read: {} statements",
        proxy.count() - before
    );
}

/// The probe covers the roles the catalog shows, not the server's others: a change to
/// another role (another database's user, a short-lived credential) leaves the next sync at
/// its probe, while a change to a shown role's attributes or memberships is read.
#[tokio::test]
async fn only_the_catalogs_roles_are_probed() {
    let roles = Roles::create().await;
    let source = TestDatabase::with_ddl(
        "pgcs_probe",
        &roles.sql("CREATE TABLE notes (id integer); GRANT SELECT ON notes TO {p}_reader;"),
    )
    .await;
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let proxy = CountingProxy::start().await;
    let mut body = sync_body(&source.name);
    body["host"] = json!("127.0.0.1");
    body["port"] = json!(proxy.port);
    body["sslmode"] = json!("disable");
    let first = app.sync_and_wait(&body).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();
    let (reader, other) = (roles.name("reader"), roles.name("limited"));
    let sync_after = |sql: String| {
        let (app, source, proxy, body) = (&app, &source, &proxy, &body);
        async move {
            source.execute(&sql).await;
            let before = proxy.count();
            let sync = app.sync_and_wait(body).await;
            assert_eq!(sync["status"], "succeeded", "{sync}");
            proxy.count() - before
        }
    };

    // Another role of the server changes: only the probe runs.
    let statements = sync_after(format!("ALTER ROLE {other} CONNECTION LIMIT 7")).await;
    assert_eq!(statements, 1, "only the probe");

    // One the catalog shows changes: the sync reads the catalog again.
    let statements = sync_after(format!("ALTER ROLE {reader} CONNECTION LIMIT 4")).await;
    assert!(statements > 10, "a full read: {statements} statements");
    let (_, listed) = app.get(&format!("/catalogs/{catalog}/roles")).await;
    let shown = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == reader.as_str())
        .unwrap_or_else(|| panic!("{reader} in {listed}"));
    assert_eq!(shown["connection_limit"], 4, "{shown}");

    // And so does a new membership in one of them.
    let statements = sync_after(format!("GRANT {reader} TO {other}")).await;
    assert!(statements > 10, "a full read: {statements} statements");
    let (_, listed) = app.get(&format!("/catalogs/{catalog}/roles")).await;
    assert!(
        summaries::names(&listed, "name").contains(&other),
        "{listed}"
    );
    drop(source);
}
