//! Owners of sequences and functions (aggregates and procedures included) are read as the
//! source has them, served in their lists, compared in the change history and given back by
//! the DDL export.

mod common;

use std::collections::BTreeMap;

use common::roles::{Roles, source_rows};
use common::*;
use reqwest::StatusCode;
use serde_json::Value;

/// Objects of three owners: the loading role's, `{p}_bob`'s and `{p}_base`'s. A serial
/// column's sequence belongs to its table's owner.
const DDL: &str = r#"
CREATE SCHEMA app;
CREATE SEQUENCE app.tickets;
CREATE SEQUENCE app.plain;
CREATE TABLE app.orders (id serial PRIMARY KEY);
CREATE FUNCTION app.total() RETURNS int LANGUAGE sql RETURN 1;
CREATE FUNCTION app.kept() RETURNS int LANGUAGE sql RETURN 2;
CREATE PROCEDURE app.tidy() LANGUAGE sql AS $$ SELECT 1 $$;
CREATE AGGREGATE app.total_of(int) (SFUNC = int4pl, STYPE = int);
ALTER SEQUENCE app.tickets OWNER TO {p}_bob;
ALTER TABLE app.orders OWNER TO {p}_bob;
ALTER FUNCTION app.total() OWNER TO {p}_bob;
ALTER PROCEDURE app.tidy() OWNER TO {p}_base;
ALTER AGGREGATE app.total_of(int) OWNER TO {p}_base;
"#;

/// `name -> owner` of the schema `app`'s sequences and functions (named with their identity
/// arguments), as the source's catalogs say.
const SOURCE_OWNERS: &str = r#"
SELECT c.relname::text, pg_get_userbyid(c.relowner)::text
FROM pg_class c WHERE c.relnamespace = 'app'::regnamespace AND c.relkind = 'S'
UNION ALL
SELECT format('%s(%s)', p.proname, pg_get_function_identity_arguments(p.oid)),
       pg_get_userbyid(p.proowner)::text
FROM pg_proc p WHERE p.pronamespace = 'app'::regnamespace
"#;

async fn owners_in(db: &TestDatabase) -> BTreeMap<String, String> {
    source_rows::<(String, String)>(db, SOURCE_OWNERS)
        .await
        .into_iter()
        .collect()
}

/// `name -> owner` as the catalog's `/sequences` and `/functions` serve them.
async fn served_owners(app: &TestApp, catalog: &str) -> BTreeMap<String, String> {
    let mut owners = BTreeMap::new();
    let owner = |item: &Value| item["owner"].as_str().expect("an owner").to_owned();
    let (sequences, _) = app
        .get_all_pages(&format!("/catalogs/{catalog}/sequences?schema=app"))
        .await;
    for q in &sequences {
        owners.insert(q["name"].as_str().unwrap().to_owned(), owner(q));
    }
    let (functions, _) = app
        .get_all_pages(&format!("/catalogs/{catalog}/functions?schema=app"))
        .await;
    for f in &functions {
        let (name, arguments) = (
            f["name"].as_str().unwrap(),
            f["arguments"].as_str().unwrap(),
        );
        owners.insert(format!("{name}({arguments})"), owner(f));
    }
    owners
}

#[tokio::test]
async fn owners_are_read_compared_and_exported() {
    let roles = Roles::create().await;
    let source = TestDatabase::with_ddl("pgcs_owners", &roles.sql(DDL)).await;
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();

    let expected = owners_in(&source).await;
    assert_eq!(expected.len(), 7, "{expected:?}");
    assert_eq!(expected["tickets"], roles.name("bob"));
    assert_eq!(expected["orders_id_seq"], roles.name("bob"));
    assert_eq!(expected["total_of(integer)"], roles.name("base"));
    assert_eq!(served_owners(&app, &catalog).await, expected);

    // The export gives every owner back: a copy loaded from it has the same ones.
    let ddl = app.get_text(&format!("/catalogs/{catalog}/ddl")).await;
    let bob = roles.name("bob");
    assert!(
        ddl.contains(&format!(
            "ALTER AGGREGATE app.total_of(integer) OWNER TO {}",
            roles.name("base")
        )),
        "{ddl}"
    );
    assert!(
        !ddl.contains("ALTER SEQUENCE app.orders_id_seq OWNER"),
        "a column's sequence follows its table: {ddl}"
    );
    let copy = TestDatabase::with_ddl("pgcs_owners_copy", &ddl).await;
    assert_eq!(owners_in(&copy).await, expected, "{ddl}");
    drop(copy);

    // A new owner is a change of the object.
    source
        .execute(&roles.sql("ALTER FUNCTION app.total() OWNER TO {p}_base"))
        .await;
    let second = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    let sync = second["sync_id"].as_str().unwrap();
    let (status, changes) = app.get(&format!("/syncs/{sync}/changes")).await;
    assert_eq!(status, StatusCode::OK, "{changes}");
    let changes = changes.as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["object"], "function", "{changes:?}");
    assert_eq!(changes[0]["action"], "altered", "{changes:?}");
    assert_eq!(changes[0]["before"]["owner"], bob.as_str(), "{changes:?}");
    assert_eq!(
        changes[0]["after"]["owner"],
        roles.name("base"),
        "{changes:?}"
    );

    // Rows stored before owners were read have none: the first write after that records no
    // owner as changed, only what did change.
    let id: uuid::Uuid = catalog.parse().unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "UPDATE catalog_functions SET owner = NULL WHERE catalog_id = '{id}';
         UPDATE catalog_sequences SET owner = NULL WHERE catalog_id = '{id}';"
    )))
    .execute(&app.pool)
    .await
    .unwrap();
    source
        .execute("CREATE FUNCTION app.more() RETURNS int LANGUAGE sql RETURN 3")
        .await;
    let third = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(third["status"], "succeeded", "{third}");
    let sync = third["sync_id"].as_str().unwrap();
    let (_, changes) = app.get(&format!("/syncs/{sync}/changes")).await;
    let found: Vec<(&str, &str, &str)> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let text = |key: &str| c[key].as_str().unwrap_or_default();
            (text("object"), text("action"), text("relation"))
        })
        .collect();
    assert_eq!(found, [("function", "added", "more()")], "{changes}");
    // And the owners are stored again.
    assert_eq!(
        served_owners(&app, &catalog).await,
        owners_in(&source).await
    );
    drop(source);
}
