//! Roles and a source database for the access metadata tests. Roles are server-wide: each
//! test makes its own, with names unique to the run, and drops them after its databases.

use sqlx::PgPool;

use super::{TestDatabase, admin_url};

/// The roles of one test, `{prefix}_{name}`: dropped (after the test's databases, which are
/// declared after them and so dropped first) when it ends.
pub struct Roles {
    pub prefix: String,
}

impl Roles {
    /// `base`; `reader`, a member of `base`; `alice`, a login member of `reader` who does not
    /// inherit; `bob`, a member of `reader` WITH ADMIN OPTION; `limited`, a login role.
    pub async fn create() -> Self {
        let prefix = format!("pgcs_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let p = &prefix;
        let admin = PgPool::connect(&admin_url()).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE ROLE {p}_base NOLOGIN;
             CREATE ROLE {p}_reader NOLOGIN IN ROLE {p}_base;
             CREATE ROLE {p}_alice LOGIN NOINHERIT CONNECTION LIMIT 3 IN ROLE {p}_reader;
             CREATE ROLE {p}_bob NOLOGIN;
             GRANT {p}_reader TO {p}_bob WITH ADMIN OPTION;
             CREATE ROLE {p}_limited LOGIN;"
        )))
        .execute(&admin)
        .await
        .expect("creating roles");
        admin.close().await;
        Self { prefix }
    }

    pub fn name(&self, role: &str) -> String {
        format!("{}_{role}", self.prefix)
    }

    /// `sql` with `{p}` replaced by the roles' prefix.
    pub fn sql(&self, sql: &str) -> String {
        sql.replace("{p}", &self.prefix)
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        let p = self.prefix.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(admin) = PgPool::connect(&admin_url()).await {
                    for role in ["limited", "bob", "alice", "reader", "base"] {
                        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                            "DROP ROLE IF EXISTS {p}_{role}"
                        )))
                        .execute(&admin)
                        .await;
                    }
                }
            });
        })
        .join();
    }
}

pub const ACCESS_DDL: &str = r#"
CREATE SCHEMA app;
CREATE TABLE app.accounts (id int PRIMARY KEY, owner_name text, balance numeric, secret text);
CREATE VIEW app.account_names AS SELECT id, owner_name FROM app.accounts;
CREATE TABLE app.untouched (id int);
CREATE SEQUENCE app.ticket_seq;
CREATE FUNCTION app.add(a int, b int) RETURNS int LANGUAGE sql AS 'SELECT a + b';
CREATE TYPE app.mood AS ENUM ('ok', 'sad');

GRANT USAGE ON SCHEMA app TO {p}_base;
GRANT SELECT ON app.accounts TO {p}_reader WITH GRANT OPTION;
GRANT SELECT (id, owner_name), UPDATE (owner_name) ON app.accounts TO {p}_alice;
GRANT SELECT ON app.account_names TO PUBLIC;
GRANT USAGE ON SEQUENCE app.ticket_seq TO {p}_base;
REVOKE EXECUTE ON FUNCTION app.add(int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.add(int, int) TO {p}_reader;
REVOKE USAGE ON TYPE app.mood FROM PUBLIC;

ALTER TABLE app.accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON app.accounts FOR SELECT TO {p}_reader USING (owner_name = current_user);
CREATE POLICY not_frozen ON app.accounts AS RESTRICTIVE FOR UPDATE TO {p}_alice, {p}_bob
    USING (balance > 0) WITH CHECK (balance >= 0);

ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO {p}_reader;
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
"#;

/// The rows `sql` reads from `source`.
pub async fn source_rows<T>(source: &TestDatabase, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let pool = PgPool::connect(&source.url).await.unwrap();
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}
