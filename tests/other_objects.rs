//! The object kinds beyond relations, types, sequences and functions: extensions (with the
//! objects they own), rules, collations, extended statistics, text search configurations,
//! publications, event triggers and foreign servers are read from the source, served as lists
//! field by field as the source's catalogs say, and their changes recorded in the history.

mod common;

use std::collections::BTreeSet;

use common::roles::source_rows;
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// One object of every kind, and an extension whose objects stay out of the other lists.
const DDL: &str = r#"
CREATE SCHEMA app;
CREATE EXTENSION citext SCHEMA app;
CREATE TABLE app.orders (id int PRIMARY KEY, customer text NOT NULL, total numeric,
                         region text, note app.citext);
CREATE TABLE app.orders_log (id int, action text);
CREATE RULE log_delete AS ON DELETE TO app.orders
    DO ALSO INSERT INTO app.orders_log VALUES (OLD.id, 'delete');
CREATE VIEW app.big_orders AS SELECT id, total FROM app.orders WHERE total > 100;
CREATE COLLATION app.plain (provider = libc, locale = 'C');
CREATE COLLATION app.nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE STATISTICS app.orders_stats (ndistinct, dependencies) ON customer, region FROM app.orders;
CREATE TEXT SEARCH CONFIGURATION app.plain_english (PARSER = pg_catalog.default);
ALTER TEXT SEARCH CONFIGURATION app.plain_english
    ADD MAPPING FOR asciiword WITH pg_catalog.english_stem, pg_catalog.simple;
CREATE PUBLICATION big_orders FOR TABLE app.orders (id, total) WHERE (total > 100)
    WITH (publish = 'insert');
CREATE PUBLICATION logs FOR TABLES IN SCHEMA app WITH (publish = 'insert, update');
CREATE FUNCTION app.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE EVENT TRIGGER audit_ddl ON ddl_command_end WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION app.on_ddl();
CREATE FOREIGN DATA WRAPPER dummy_fdw OPTIONS (debug 'true');
CREATE SERVER warehouse VERSION '2' FOREIGN DATA WRAPPER dummy_fdw
    OPTIONS (host 'warehouse.internal', port '5432');
CREATE USER MAPPING FOR CURRENT_USER SERVER warehouse OPTIONS (password 'do-not-read');
CREATE AGGREGATE app.total_sum(numeric) (SFUNC = numeric_add, STYPE = numeric, INITCOND = '0');
CREATE PROCEDURE app.archive() LANGUAGE sql AS $$ SELECT 1 $$;
CREATE FUNCTION app.running(x int) RETURNS int LANGUAGE internal WINDOW AS 'window_row_number';
"#;

/// The served list `kind` of `catalog`, every page.
async fn list(app: &TestApp, catalog: &str, kind: &str) -> Vec<Value> {
    let separator = if kind.contains('?') { '&' } else { '?' };
    app.get_all_pages(&format!("/catalogs/{catalog}/{kind}{separator}limit=2"))
        .await
        .0
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_kind_is_served_as_the_source_says() {
    let source = TestDatabase::with_ddl("pgcs_kinds", DDL).await;
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let sync = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let catalog = sync["catalog_id"].as_str().unwrap().to_owned();

    // The extension, with every object it owns; none of them in the other lists.
    let extensions = list(&app, &catalog, "extensions").await;
    assert_eq!(extensions.len(), 1, "{extensions:?}");
    let citext = &extensions[0];
    assert_eq!(
        (&citext["schema"], &citext["name"]),
        (&json!("app"), &json!("citext"))
    );
    let version: Vec<(String,)> = source_rows(
        &source,
        "SELECT extversion FROM pg_extension WHERE extname = 'citext'",
    )
    .await;
    assert_eq!(citext["version"], version[0].0);
    let owned: Vec<(String, String)> = source_rows(
        &source,
        "SELECT i.type, i.identity FROM pg_depend d
         CROSS JOIN LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) i
         WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'citext')
           AND d.deptype = 'e'",
    )
    .await;
    let served: BTreeSet<(String, String)> = citext["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap().to_owned();
            (text("type"), text("identity"))
        })
        .collect();
    assert_eq!(served, owned.into_iter().collect(), "{citext}");
    assert!(served.len() > 20, "citext owns its functions and operators");
    let functions = list(&app, &catalog, "functions?schema=app").await;
    let kinds: BTreeSet<(String, String)> = functions
        .iter()
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap().to_owned();
            (text("name"), text("kind"))
        })
        .collect();
    let expected = [
        ("archive", "procedure"),
        ("on_ddl", "function"),
        ("running", "window"),
        ("total_sum", "aggregate"),
    ];
    let expected = expected.map(|(n, k)| (n.to_owned(), k.to_owned()));
    assert_eq!(kinds, expected.into_iter().collect(), "{functions:?}");

    let rules = list(&app, &catalog, "rules").await;
    assert_eq!(
        rules.len(),
        1,
        "a view's own rule is its definition: {rules:?}"
    );
    let rule = &rules[0];
    assert_eq!(
        (&rule["schema"], &rule["table"], &rule["name"]),
        (&json!("app"), &json!("orders"), &json!("log_delete"))
    );
    assert_eq!(
        (&rule["event"], &rule["instead"]),
        (&json!("DELETE"), &json!(false))
    );
    assert_eq!(rule["enabled"], "origin");
    let definition: Vec<(String,)> = source_rows(
        &source,
        "SELECT pg_get_ruledef(oid) FROM pg_rewrite WHERE rulename = 'log_delete'",
    )
    .await;
    assert_eq!(rule["definition"], definition[0].0);

    let collations = list(&app, &catalog, "collations").await;
    assert_eq!(names(&collations), ["nocase", "plain"]);
    let (nocase, plain) = (&collations[0], &collations[1]);
    assert_eq!(nocase["provider"], "icu");
    assert_eq!(nocase["locale"], "und-u-ks-level2");
    assert_eq!(nocase["deterministic"], false);
    assert_eq!(plain["provider"], "libc");
    assert_eq!(
        (&plain["lc_collate"], &plain["lc_ctype"]),
        (&json!("C"), &json!("C"))
    );
    assert_eq!(plain["deterministic"], true);

    let statistics = list(&app, &catalog, "statistics").await;
    assert_eq!(names(&statistics), ["orders_stats"]);
    let stats = &statistics[0];
    assert_eq!(stats["table"], "app.orders");
    assert_eq!(stats["kinds"], json!(["ndistinct", "dependencies"]));
    assert_eq!(stats["columns"], json!(["customer", "region"]));
    let definition: Vec<(String,)> = source_rows(
        &source,
        "SELECT pg_get_statisticsobjdef(oid) FROM pg_statistic_ext WHERE stxname = 'orders_stats'",
    )
    .await;
    assert_eq!(stats["definition"], definition[0].0);

    let configurations = list(&app, &catalog, "text_search_configurations").await;
    assert_eq!(names(&configurations), ["plain_english"]);
    let configuration = &configurations[0];
    assert_eq!(configuration["parser"], "pg_catalog.\"default\"");
    assert_eq!(
        configuration["mappings"],
        json!([{"token": "asciiword",
                "dictionaries": ["pg_catalog.english_stem", "pg_catalog.simple"]}])
    );

    let publications = list(&app, &catalog, "publications").await;
    assert_eq!(names(&publications), ["big_orders", "logs"]);
    assert_eq!(
        publications[0],
        json!({"name": "big_orders", "owner": "postgres", "all_tables": false,
               "operations": ["insert"], "via_root": false, "schemas": [],
               "tables": [{"schema": "app", "table": "orders", "columns": ["id", "total"],
                           "row_filter": "(total > (100)::numeric)"}]})
    );
    assert_eq!(publications[1]["schemas"], json!(["app"]));
    assert_eq!(publications[1]["operations"], json!(["insert", "update"]));

    let triggers = list(&app, &catalog, "event_triggers").await;
    assert_eq!(
        triggers,
        [
            json!({"name": "audit_ddl", "owner": "postgres", "event": "ddl_command_end",
                "function": "app.on_ddl", "enabled": "origin",
                "tags": ["CREATE TABLE", "ALTER TABLE"]})
        ]
    );

    let servers = list(&app, &catalog, "foreign_servers").await;
    assert_eq!(
        servers,
        [
            json!({"name": "warehouse", "owner": "postgres", "version": "2",
                "options": ["host=warehouse.internal", "port=5432"],
                "wrapper": {"name": "dummy_fdw", "owner": "postgres",
                            "options": ["debug=true"]}})
        ]
    );
    // A publication depends on the columns it publishes: `big_orders` lists two of them,
    // `logs` publishes the whole schema.
    let publications_of = |column: &'static str| {
        let path = format!("/catalogs/{catalog}/tables/app/orders/columns/{column}/dependents");
        let app = &app;
        async move {
            let (status, found) = app.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{found}");
            let found = found.as_array().unwrap().clone();
            let publications = found.iter().filter(|d| d["kind"] == "publication");
            names(&publications.cloned().collect::<Vec<_>>())
        }
    };
    assert_eq!(publications_of("total").await, ["big_orders", "logs"]);
    assert_eq!(publications_of("customer").await, ["logs"]);
    let (_, everything) = app.get(&format!("/catalogs/{catalog}")).await;
    assert!(
        !everything.to_string().contains("do-not-read"),
        "user mappings are never read"
    );

    // Every list follows the conventions: a schema filter, 404s, unknown parameters refused.
    let other = list(&app, &catalog, "collations?schema=public").await;
    assert!(other.is_empty(), "{other:?}");
    let unknown = "00000000-0000-0000-0000-000000000000";
    for kind in ["rules", "publications", "extensions", "foreign_servers"] {
        let (status, body) = app.get(&format!("/catalogs/{unknown}/{kind}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{kind}: {body}");
    }
    let (status, body) = app
        .get(&format!("/catalogs/{catalog}/publications?schema=app"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("schema"), "{body}");
    drop(source);
}

#[tokio::test]
async fn changes_of_every_kind_are_in_the_history() {
    let source = TestDatabase::with_ddl("pgcs_kinds", DDL).await;
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    source
        .execute(
            "DROP RULE log_delete ON app.orders;
             DROP STATISTICS app.orders_stats;
             ALTER COLLATION app.plain RENAME TO bytes;
             ALTER TEXT SEARCH CONFIGURATION app.plain_english
                 ALTER MAPPING FOR asciiword WITH pg_catalog.simple;
             ALTER PUBLICATION logs SET (publish = 'insert');
             ALTER EVENT TRIGGER audit_ddl DISABLE;
             ALTER SERVER warehouse OPTIONS (SET host 'replica.internal');
             DROP PUBLICATION big_orders;
             CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql
                 AS $$ BEGIN RETURN NEW; END $$;
             CREATE TRIGGER touch BEFORE UPDATE ON app.orders
                 FOR EACH ROW EXECUTE FUNCTION app.touch();",
        )
        .await;
    let second = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    let sync = second["sync_id"].as_str().unwrap();
    let (status, changes) = app.get(&format!("/syncs/{sync}/changes")).await;
    assert_eq!(status, StatusCode::OK, "{changes}");
    let found: BTreeSet<(String, String, String)> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            let name = match c["name"].as_str() {
                Some(name) => format!("{}.{name}", text("relation")),
                None => text("relation"),
            };
            (text("object"), text("action"), name)
        })
        .collect();
    let expected = [
        ("rule", "removed", "orders.log_delete"),
        ("statistics", "removed", "orders_stats"),
        ("collation", "removed", "plain"),
        ("collation", "added", "bytes"),
        ("text_search_configuration", "altered", "plain_english"),
        ("publication", "altered", "logs"),
        ("publication", "removed", "big_orders"),
        ("event_trigger", "altered", "audit_ddl"),
        ("foreign_server", "altered", "warehouse"),
        ("function", "added", "touch()"),
        ("trigger", "added", "orders.touch"),
    ];
    let expected: BTreeSet<_> = expected
        .iter()
        .map(|(o, a, n)| (o.to_string(), a.to_string(), n.to_string()))
        .collect();
    assert_eq!(found, expected, "{changes}");
    let server = changes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["object"] == "foreign_server")
        .unwrap();
    assert_eq!(
        (&server["before"], &server["after"]),
        (
            &json!({"options": ["host=warehouse.internal", "port=5432"]}),
            &json!({"options": ["host=replica.internal", "port=5432"]})
        )
    );
    let trigger = changes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["object"] == "event_trigger")
        .unwrap();
    assert_eq!(trigger["after"], json!({"enabled": "disabled"}));

    // The database-wide lists serve the state a past sync left, as the schema lists do.
    let catalog = second["catalog_id"].as_str().unwrap();
    let before = first["sync_id"].as_str().unwrap();
    let host = |servers: Vec<Value>| servers[0]["options"][0].clone();
    let past = list(&app, catalog, &format!("foreign_servers?sync={before}")).await;
    assert_eq!(host(past), "host=warehouse.internal");
    let now = list(&app, catalog, &format!("foreign_servers?sync={sync}")).await;
    assert_eq!(host(now), "host=replica.internal");
    assert_eq!(
        host(list(&app, catalog, "foreign_servers").await),
        "host=replica.internal"
    );
    let past = list(&app, catalog, &format!("event_triggers?sync={before}")).await;
    assert_eq!(past[0]["enabled"], "origin");
    // Pages of one: the next page's link keeps the state.
    let path = format!("/catalogs/{catalog}/publications?sync={before}&limit=1");
    let (past, _) = app.get_all_pages(&path).await;
    assert_eq!(names(&past), ["big_orders", "logs"]);
    assert_eq!(past[1]["operations"], json!(["insert", "update"]));
    // So does impact analysis: the dropped publication published the column then.
    let publications_of = |at: String| {
        let path = format!("/catalogs/{catalog}/tables/app/orders/columns/total/dependents{at}");
        let app = &app;
        async move {
            let (status, found) = app.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{found}");
            let found = found.as_array().unwrap().clone();
            let publications = found.into_iter().filter(|d| d["kind"] == "publication");
            names(&publications.collect::<Vec<_>>())
        }
    };
    assert_eq!(publications_of(String::new()).await, ["logs"]);
    let past = publications_of(format!("?sync={before}")).await;
    assert_eq!(past, ["big_orders", "logs"]);
    let unknown = "00000000-0000-7000-8000-000000000000";
    let (status, body) = app
        .get(&format!("/catalogs/{catalog}/publications?sync={unknown}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    drop(source);
}
