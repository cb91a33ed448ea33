//! What an extension owns is the extension's, as pg_dump has it: its functions and types are
//! in no list, count, change or DDL export of the schema's own objects, and `/functions` and
//! `/types` show them whole on request (`?include_extension_objects=true`), each marked with
//! its extension.

mod common;

use std::collections::BTreeSet;

use common::roles::source_rows;
use common::*;
use reqwest::StatusCode;
use serde_json::Value;

/// `tablefunc` owns functions and composite types, and is given a sequence and a collation;
/// the schema has one of each of its own.
const DDL: &str = r#"
CREATE SCHEMA app;
CREATE EXTENSION tablefunc SCHEMA app;
CREATE TYPE app.mood AS ENUM ('ok', 'happy');
CREATE FUNCTION app.cheer(m app.mood) RETURNS text LANGUAGE sql AS $$ SELECT m::text $$;
CREATE SEQUENCE app.counter;
CREATE SEQUENCE app.ext_counter;
CREATE COLLATION app.plain (provider = libc, locale = 'C');
CREATE COLLATION app.ext_plain (provider = libc, locale = 'C');
ALTER EXTENSION tablefunc ADD SEQUENCE app.ext_counter;
ALTER EXTENSION tablefunc ADD COLLATION app.ext_plain;
"#;

/// `(name, arguments or '', extension or '')` of each item.
fn keys(items: &[Value]) -> BTreeSet<(String, String, String)> {
    let text = |item: &Value, key: &str| item[key].as_str().unwrap_or_default().to_owned();
    items
        .iter()
        .map(|i| (text(i, "name"), text(i, "arguments"), text(i, "extension")))
        .collect()
}

/// What the source says `tablefunc` owns of `class`: `(name, arguments, "tablefunc")`.
async fn owned(source: &TestDatabase, sql: &str) -> BTreeSet<(String, String, String)> {
    let rows: Vec<(String, String)> = source_rows(source, sql).await;
    rows.into_iter()
        .map(|(name, arguments)| (name, arguments, "tablefunc".to_owned()))
        .collect()
}

fn own(name: &str, arguments: &str) -> (String, String, String) {
    (name.to_owned(), arguments.to_owned(), String::new())
}

fn own_item(name: &str) -> (String, String, String) {
    own(name, "")
}

#[tokio::test]
async fn extension_members_are_listed_only_on_request() {
    let source = TestDatabase::with_ddl("pgcs_extobjects", DDL).await;
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let sync = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let catalog = sync["catalog_id"].as_str().unwrap().to_owned();
    let list = |kind: &str| {
        // Pages of two: the next page's link must keep the parameter.
        let path = format!("/catalogs/{catalog}/{kind}&limit=2");
        let app = &app;
        async move { app.get_all_pages(&path).await.0 }
    };

    // By default, the schema's own only.
    let functions = list("functions?schema=app").await;
    assert_eq!(keys(&functions), [own("cheer", "m app.mood")].into());
    let types = list("types?schema=app").await;
    assert_eq!(keys(&types), [own("mood", "")].into());

    // On request, every function and type the extension owns as well, marked as its.
    let functions = list("functions?schema=app&include_extension_objects=true").await;
    let mut expected = owned(
        &source,
        "SELECT p.proname::text, pg_get_function_identity_arguments(p.oid) FROM pg_proc p
         JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
         JOIN pg_extension x ON x.oid = d.refobjid AND d.refclassid = 'pg_extension'::regclass
         WHERE d.deptype = 'e' AND x.extname = 'tablefunc'",
    )
    .await;
    assert!(
        expected.len() >= 10,
        "tablefunc owns crosstab and normal_rand: {expected:?}"
    );
    expected.insert(own("cheer", "m app.mood"));
    assert_eq!(keys(&functions), expected);
    let crosstab = functions
        .iter()
        .find(|f| f["name"] == "crosstab" && f["arguments"] == "text, text")
        .expect("crosstab(text, text) is listed");
    assert_eq!(crosstab["kind"], "function");
    assert_eq!(crosstab["language"], "c");
    assert_eq!(crosstab["result"], "SETOF record");

    let types = list("types?schema=app&include_extension_objects=true").await;
    let mut expected = owned(
        &source,
        "SELECT t.typname::text, '' FROM pg_type t
         JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid
         JOIN pg_extension x ON x.oid = d.refobjid AND d.refclassid = 'pg_extension'::regclass
         WHERE d.deptype = 'e' AND x.extname = 'tablefunc' AND t.typtype = 'c'",
    )
    .await;
    assert!(!expected.is_empty(), "tablefunc owns composite types");
    expected.insert(own("mood", ""));
    assert_eq!(keys(&types), expected);
    let crosstab_2 = types
        .iter()
        .find(|t| t["name"] == "tablefunc_crosstab_2")
        .expect("tablefunc_crosstab_2 is listed");
    assert_eq!(crosstab_2["kind"], "composite");
    let attributes: Vec<&str> = crosstab_2["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(attributes, ["row_name", "category_1", "category_2"]);

    // Any other kind an extension owns, the same way.
    for (kind, own, member) in [
        ("sequences", "counter", "ext_counter"),
        ("collations", "plain", "ext_plain"),
    ] {
        let listed = list(&format!("{kind}?schema=app")).await;
        assert_eq!(keys(&listed), [own_item(own)].into(), "{kind}");
        let listed = list(&format!("{kind}?schema=app&include_extension_objects=true")).await;
        let member = (member.to_owned(), String::new(), "tablefunc".to_owned());
        assert_eq!(keys(&listed), [own_item(own), member].into(), "{kind}");
    }

    // The export creates the extension, not what it owns.
    let ddl = app
        .client
        .get(app.url(&format!("/catalogs/{catalog}/ddl")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ddl.contains("CREATE EXTENSION"), "{ddl}");
    assert!(ddl.contains("app.cheer"), "{ddl}");
    assert!(!ddl.contains("crosstab"), "{ddl}");
    assert!(
        !ddl.contains("ext_counter") && !ddl.contains("ext_plain"),
        "{ddl}"
    );

    // Bad values are refused, naming the parameter; lists that do not hold extensions'
    // objects whole do not take it.
    for path in [
        "functions?include_extension_objects=yes",
        "types?include_extension_objects=1",
        "tables?include_extension_objects=true",
        "rules?include_extension_objects=true",
    ] {
        let (status, body) = app.get(&format!("/catalogs/{catalog}/{path}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let field = &body["error"]["field"];
        assert_eq!(field, "include_extension_objects", "{path}: {body}");
    }
    drop(source);
}

#[tokio::test]
async fn an_extension_dropped_is_one_change() {
    let source = TestDatabase::with_ddl("pgcs_extobjects", DDL).await;
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    source
        .execute("DROP EXTENSION tablefunc; CREATE FUNCTION app.shout() RETURNS int RETURN 1;")
        .await;
    let second = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    let sync = second["sync_id"].as_str().unwrap();
    let (status, changes) = app.get(&format!("/syncs/{sync}/changes")).await;
    assert_eq!(status, StatusCode::OK, "{changes}");
    // Its functions and types went with it, and are not changes of their own.
    let found: BTreeSet<_> = summaries::change_summary(&changes).into_iter().collect();
    let expected: BTreeSet<_> = [
        ("extension", "removed", "tablefunc"),
        ("function", "added", "shout()"),
    ]
    .iter()
    .map(|(o, a, r)| (o.to_string(), a.to_string(), r.to_string(), None))
    .collect();
    assert_eq!(found, expected, "{changes}");
    let removed = changes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["object"] == "extension")
        .unwrap();
    assert_eq!(removed["classification"], "breaking", "{removed}");
    drop(source);
}
