//! What an extension owns is the extension's, as pg_dump has it: its functions, types and
//! relations are in no list, count, search, diagram, change or DDL export of the schema's own
//! objects, and the lists show them whole on request (`?include_extension_objects=true`), each
//! marked with its extension.

mod common;

use std::collections::BTreeSet;

use common::roles::{Roles, source_rows};
use common::*;
use reqwest::StatusCode;
use serde_json::Value;

/// `tablefunc` owns functions and composite types, and is given a sequence, a collation, a
/// table (with a rule, a grant and a policy) and a view; the schema has one of each of its own.
/// `{p}` is the test's roles' prefix.
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
CREATE TABLE app.notes (id int PRIMARY KEY, note_text text);
CREATE TABLE app.ext_settings (id int PRIMARY KEY, setting_value text);
CREATE VIEW app.ext_settings_view AS SELECT id, setting_value FROM app.ext_settings;
CREATE RULE notes_keep AS ON DELETE TO app.notes DO INSTEAD NOTHING;
CREATE RULE ext_settings_keep AS ON DELETE TO app.ext_settings DO INSTEAD NOTHING;
GRANT SELECT ON app.notes, app.ext_settings TO {p}_reader;
ALTER TABLE app.notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE app.ext_settings ENABLE ROW LEVEL SECURITY;
CREATE POLICY notes_read ON app.notes FOR SELECT USING (true);
CREATE POLICY ext_settings_read ON app.ext_settings FOR SELECT USING (true);
ALTER EXTENSION tablefunc ADD TABLE app.ext_settings;
ALTER EXTENSION tablefunc ADD VIEW app.ext_settings_view;
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
    let roles = Roles::create().await;
    let source = TestDatabase::with_ddl("pgcs_extobjects", &roles.sql(DDL)).await;
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
    let ddl = app.get_text(&format!("/catalogs/{catalog}/ddl")).await;
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
        "tables?include_extension_objects=yes",
        "columns?include_extension_objects=1",
        "privileges?include_extension_objects=TRUE",
        "schemas?include_extension_objects=true",
    ] {
        let (status, body) = app.get(&format!("/catalogs/{catalog}/{path}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let field = &body["error"]["field"];
        assert_eq!(field, "include_extension_objects", "{path}: {body}");
    }
    drop(source);
}

/// The `(schema, table or relation, name)` of each item, with its extension or "".
fn relation_keys(items: &[Value], relation: &str) -> BTreeSet<(String, String, String)> {
    let text = |item: &Value, key: &str| item[key].as_str().unwrap_or_default().to_owned();
    items
        .iter()
        .map(|i| {
            let extension = text(i, "extension");
            (text(i, relation), text(i, "name"), extension)
        })
        .collect()
}

fn key(relation: &str, name: &str, extension: &str) -> (String, String, String) {
    (relation.to_owned(), name.to_owned(), extension.to_owned())
}

#[tokio::test]
async fn extension_relations_are_listed_only_on_request() {
    let roles = Roles::create().await;
    let source = TestDatabase::with_ddl("pgcs_extobjects", &roles.sql(DDL)).await;
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let sync = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let catalog = sync["catalog_id"].as_str().unwrap().to_owned();
    // The counts are the schema author's: one table.
    assert_eq!(sync["stats"]["tables"], 1, "{sync}");
    let list = |path: &str| {
        let path = format!("/catalogs/{catalog}/{path}&limit=1");
        let app = &app;
        async move { app.get_all_pages(&path).await.0 }
    };

    // Relations: the extension's are listed on request, marked as its.
    let tables = list("tables?schema=app").await;
    assert_eq!(
        relation_keys(&tables, "schema"),
        [key("app", "notes", "")].into()
    );
    let tables = list("tables?schema=app&include_extension_objects=true").await;
    assert_eq!(
        relation_keys(&tables, "schema"),
        [
            key("app", "notes", ""),
            key("app", "ext_settings", "tablefunc"),
            key("app", "ext_settings_view", "tablefunc"),
        ]
        .into()
    );

    // Their columns, rules, privileges and policies the same way.
    let columns = list("columns?q=e").await;
    let names: BTreeSet<&str> = columns
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["note_text"].into(), "{columns:?}");
    let columns = list("columns?q=e&include_extension_objects=true").await;
    let tables: BTreeSet<&str> = columns
        .iter()
        .map(|c| c["table"].as_str().unwrap())
        .collect();
    assert_eq!(
        tables,
        ["notes", "ext_settings", "ext_settings_view"].into(),
        "{columns:?}"
    );
    let rules = list("rules?schema=app").await;
    assert_eq!(
        relation_keys(&rules, "table"),
        [key("notes", "notes_keep", "")].into()
    );
    let rules = list("rules?schema=app&include_extension_objects=true").await;
    assert_eq!(
        relation_keys(&rules, "table"),
        [
            key("notes", "notes_keep", ""),
            key("ext_settings", "ext_settings_keep", "tablefunc"),
        ]
        .into()
    );
    let policies = list("policies?schema=app").await;
    assert_eq!(
        relation_keys(&policies, "table"),
        [key("notes", "notes_read", "")].into()
    );
    let policies = list("policies?schema=app&include_extension_objects=true").await;
    assert_eq!(policies.len(), 2, "{policies:?}");
    let granted = |items: &[Value]| -> BTreeSet<String> {
        items
            .iter()
            .map(|p| p["object"].as_str().unwrap().to_owned())
            .collect()
    };
    let reader = roles.name("reader");
    let privileges = list(&format!("privileges?grantee={reader}")).await;
    assert_eq!(granted(&privileges), ["notes".to_owned()].into());
    let privileges = list(&format!(
        "privileges?grantee={reader}&include_extension_objects=true"
    ))
    .await;
    assert_eq!(
        granted(&privileges),
        ["notes".to_owned(), "ext_settings".to_owned()].into()
    );

    // A relation of the extension is read whole, as the source has it.
    let (status, detail) = app
        .get(&format!("/catalogs/{catalog}/tables/app/ext_settings"))
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["extension"], "tablefunc", "{detail}");
    let columns: Vec<&str> = detail["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["id", "setting_value"]);
    assert_eq!(detail["primary_key"], serde_json::json!(["id"]), "{detail}");
    assert_eq!(detail["rls_enabled"], true, "{detail}");
    let (_, notes) = app
        .get(&format!("/catalogs/{catalog}/tables/app/notes"))
        .await;
    assert!(notes.get("extension").is_none(), "{notes}");

    // Search, diagrams and the export know the schema author's relations only.
    let (status, found) = app.get("/search?q=ext_settings").await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found.as_array().map(Vec::len), Some(0), "{found}");
    for path in ["erd?format=mermaid", "ddl"] {
        let text = app.get_text(&format!("/catalogs/{catalog}/{path}")).await;
        assert!(text.contains("notes"), "{path}: {text}");
        assert!(!text.contains("ext_settings"), "{path}: {text}");
    }
    drop(source);
}

#[tokio::test]
async fn an_extension_dropped_is_one_change() {
    let roles = Roles::create().await;
    let source = TestDatabase::with_ddl("pgcs_extobjects", &roles.sql(DDL)).await;
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
