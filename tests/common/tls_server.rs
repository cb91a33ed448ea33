//! A throwaway PostgreSQL cluster serving TLS with a certificate for `localhost` from a private
//! CA made for it (with the `openssl` command), for the tests of a source's TLS material. Its
//! database `certdb` admits only clients with a certificate of that CA for their user name
//! (`hostssl ... cert`); every other database admits any client over TLS.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::free_port;

/// The database that requires a client certificate.
pub const CERT_DB: &str = "certdb";

pub struct TlsServer {
    pub port: u16,
    /// The CA that signed the server's and the client's certificates.
    pub ca_pem: String,
    /// Another CA, which signed neither.
    pub other_ca_pem: String,
    /// A client certificate for the user `postgres`, and its key.
    pub client_cert_pem: String,
    pub client_key_pem: String,
    dir: PathBuf,
    data: PathBuf,
}

impl TlsServer {
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("pgcs-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        // The server runs as `postgres` when the tests run as root: it must reach its files.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        make_certificates(&dir);
        let data = dir.join("data");
        let bindir = pg_bindir();
        run(as_server(&bindir.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-N", "-D"])
            .arg(&data));
        for name in ["ca.crt", "server.crt", "server.key"] {
            let target = data.join(name);
            std::fs::copy(dir.join(name), &target).unwrap();
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
            chown_like(&target, &data);
        }
        std::fs::write(
            data.join("pg_hba.conf"),
            format!("hostssl {CERT_DB} all samehost cert\nhostssl all all samehost trust\n"),
        )
        .unwrap();
        let port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=localhost -c ssl=on -c ssl_cert_file=server.crt \
             -c ssl_key_file=server.key -c ssl_ca_file=ca.crt -c fsync=off",
            dir.display()
        );
        run(as_server(&bindir.join("pg_ctl"))
            .args(["-w", "-t", "30", "-o", &options, "-l"])
            .arg(dir.join("server.log"))
            .arg("-D")
            .arg(&data)
            .arg("start"));
        let server = Self {
            port,
            ca_pem: read(&dir, "ca.crt"),
            other_ca_pem: read(&dir, "other-ca.crt"),
            client_cert_pem: read(&dir, "client.crt"),
            client_key_pem: read(&dir, "client.key"),
            dir,
            data,
        };
        server
            .admin_execute(&format!("CREATE DATABASE {CERT_DB}"))
            .await;
        server
    }

    /// Runs `sql` in the `postgres` database (over TLS, any certificate accepted).
    pub async fn admin_execute(&self, sql: &str) {
        self.execute("postgres", sql).await;
    }

    /// Runs `sql` in `dbname`, presenting the client certificate.
    pub async fn execute(&self, dbname: &str, sql: &str) {
        use sqlx::{ConnectOptions, Connection};
        let mut conn = sqlx::postgres::PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username("postgres")
            .database(dbname)
            .ssl_mode(sqlx::postgres::PgSslMode::Require)
            .ssl_client_cert_from_pem(&self.client_cert_pem)
            .ssl_client_key_from_pem(&self.client_key_pem)
            .connect()
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }

    /// The POST /sync body for `dbname` on this server by the name its certificate holds.
    pub fn sync_body(&self, dbname: &str) -> serde_json::Value {
        serde_json::json!({"host": "localhost", "port": self.port, "user": "postgres",
                           "password": "unused-under-trust", "dbname": dbname})
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = as_server(&pg_bindir().join("pg_ctl"))
            .args(["-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes `ca.crt`, `server.crt`/`.key` (for `localhost`), `client.crt`/`.key` (for the user
/// `postgres`), all from one CA, and `other-ca.crt`, a CA that signed nothing here.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        run(Command::new("openssl").current_dir(dir).args(args));
    };
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    for (name, subject) in [
        ("ca", "/CN=pgcs test CA"),
        ("other-ca", "/CN=pgcs other CA"),
    ] {
        let (key_file, cert_file) = (format!("{name}.key"), format!("{name}.crt"));
        let mut args = vec!["req", "-x509", "-days", "2", "-subj", subject];
        args.extend(key);
        args.extend(["-keyout", &key_file, "-out", &cert_file]);
        openssl(&args);
    }
    // Extensions make version 3 certificates, the only ones rustls takes.
    std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, subject) in [("server", "/CN=localhost"), ("client", "/CN=postgres")] {
        let (key_file, csr, cert) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        let mut args = vec!["req", "-subj", subject, "-keyout", &key_file, "-out", &csr];
        args.extend(key);
        openssl(&args);
        let extensions = format!("{name}.ext");
        let mut args = vec!["x509", "-req", "-in", &csr, "-out", &cert, "-days", "2"];
        args.extend(["-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"]);
        args.extend(["-extfile", &extensions]);
        openssl(&args);
    }
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// `program` as the server's user: `postgres` when the tests run as root (initdb refuses root).
fn as_server(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Gives `path` the owner of `like` (the data directory's, which initdb made).
fn chown_like(path: &Path, like: &Path) {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(like).unwrap();
    std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid())).unwrap();
}

/// The directory of the server binaries: `pg_config --bindir`, else where `initdb` is found.
fn pg_bindir() -> PathBuf {
    let from_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|dir| dir.join("initdb").exists());
    from_config.unwrap_or_else(|| {
        let which = run(Command::new("sh").args(["-c", "command -v initdb"]));
        PathBuf::from(String::from_utf8_lossy(&which.stdout).trim())
            .parent()
            .expect("initdb (PostgreSQL's server binaries) is needed for the TLS tests")
            .to_owned()
    })
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
