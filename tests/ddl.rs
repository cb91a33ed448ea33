//! The DDL export (`GET /catalogs/{id}/ddl`, `pg-catalog-sync ddl`), proven by round trip: a
//! source is synced, its export loaded into an empty database, that database synced, and the
//! two catalogs compared. They must not differ: the diff (relations, columns, constraints,
//! indexes, privileges, policies, database-wide objects) is empty, the schemas, types,
//! sequences, functions and default privileges served are the same, owners included, and so
//! is the export of the copy (which also holds what no list serves: function bodies,
//! triggers, extensions, comments). Left out of the comparison: the ids the store gives rows.

mod common;

use common::*;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use sqlx::PgPool;

const PAGILA: &str = include_str!("fixtures/pagila/pagila-schema.sql");
const ADVENTUREWORKS: &str = include_str!("fixtures/realworld/adventureworks.sql");
const DANBOORU: &str = include_str!("fixtures/realworld/danbooru.sql");
const HATCHET: &str = include_str!("fixtures/realworld/hatchet.sql");

/// Awkward names and one of each kind of object the export writes.
const AWKWARD: &str = r#"
CREATE SCHEMA "Mixed Case";
CREATE EXTENSION pg_trgm WITH SCHEMA public;
COMMENT ON SCHEMA "Mixed Case" IS 'it''s mixed';
CREATE TYPE "Mixed Case"."Mood" AS ENUM ('happy', 'it''s complicated');
CREATE DOMAIN "Mixed Case".positive AS integer NOT NULL DEFAULT 1 CHECK (VALUE > 0);
CREATE TYPE "Mixed Case".span AS RANGE (SUBTYPE = float8, SUBTYPE_DIFF = float8mi);
CREATE TYPE "Mixed Case".pair AS (a "Mixed Case".positive, "b b" "Mixed Case"."Mood");
CREATE SEQUENCE "Mixed Case".counter AS smallint START 5 INCREMENT 5 MAXVALUE 1000 CYCLE;
CREATE TABLE "Mixed Case"."select" (
    "from" int GENERATED ALWAYS AS IDENTITY (START WITH 7),
    "Quote""d" text COLLATE "C" NOT NULL DEFAULT 'x''y',
    mood "Mixed Case"."Mood",
    twice int GENERATED ALWAYS AS ("from" * 2) STORED,
    n int DEFAULT nextval('"Mixed Case".counter'),
    p "Mixed Case".pair,
    s "Mixed Case".span[],
    gone int,
    PRIMARY KEY ("from"),
    CHECK (length("Quote""d") < 100)
);
ALTER TABLE "Mixed Case"."select" DROP COLUMN n, DROP COLUMN gone;
ALTER TABLE "Mixed Case"."select" ADD COLUMN n int DEFAULT nextval('"Mixed Case".counter');
ALTER SEQUENCE "Mixed Case".counter OWNED BY "Mixed Case"."select".n;
COMMENT ON TABLE "Mixed Case"."select" IS 'a keyword';
GRANT SELECT, UPDATE ("Quote""d") ON "Mixed Case"."select" TO pg_read_all_data;
GRANT USAGE ON SCHEMA "Mixed Case" TO pg_monitor;
GRANT SELECT ON "Mixed Case"."select" TO pg_monitor WITH GRANT OPTION;
SET ROLE pg_monitor;
GRANT SELECT ON "Mixed Case"."select" TO pg_read_all_stats;
RESET ROLE;
REVOKE ALL ON SCHEMA "Mixed Case" FROM PUBLIC;
GRANT USAGE ON SCHEMA "Mixed Case" TO pg_read_all_data;
GRANT USAGE ON SEQUENCE "Mixed Case".counter TO pg_monitor;
GRANT USAGE ON TYPE "Mixed Case"."Mood" TO pg_read_all_data;
ALTER DEFAULT PRIVILEGES IN SCHEMA "Mixed Case" GRANT SELECT ON TABLES TO pg_read_all_data;
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES GRANT USAGE ON TYPES TO pg_monitor WITH GRANT OPTION;
ALTER TABLE "Mixed Case"."select" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "Mixed Case"."select" FORCE ROW LEVEL SECURITY;
CREATE POLICY "Happy only" ON "Mixed Case"."select" FOR SELECT TO PUBLIC
    USING (mood = 'happy');
CREATE POLICY capped ON "Mixed Case"."select" AS RESTRICTIVE FOR INSERT
    TO pg_read_all_data, pg_monitor WITH CHECK ("from" < 1000);
COMMENT ON COLUMN "Mixed Case"."select"."Quote""d" IS 'quoted';
CREATE UNLOGGED TABLE public.child (
    id serial PRIMARY KEY,
    parent int REFERENCES "Mixed Case"."select" ("from") ON DELETE CASCADE DEFERRABLE,
    during tstzrange,
    EXCLUDE USING gist (during WITH &&)
);
CREATE UNIQUE INDEX child_upper ON public.child (upper(during)) WHERE id > 0;
CREATE INDEX select_trigrams ON "Mixed Case"."select" USING gin ("Quote""d" gin_trgm_ops);
CREATE TABLE public.events (id int, at date NOT NULL, body text) PARTITION BY RANGE (at);
CREATE TABLE public.events_2024 PARTITION OF public.events
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY LIST (body);
CREATE TABLE public."events_2024 a" PARTITION OF public.events_2024 FOR VALUES IN ('a');
CREATE TABLE public.events_default PARTITION OF public.events DEFAULT;
ALTER TABLE public.events ADD PRIMARY KEY (id, at, body);
CREATE INDEX events_body ON public.events (body);
CREATE FUNCTION public.stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.body := coalesce(NEW.body, 'a'); RETURN NEW; END $$;
CREATE TRIGGER stamp BEFORE INSERT ON public.events FOR EACH ROW EXECUTE FUNCTION public.stamp();
REVOKE EXECUTE ON FUNCTION public.stamp() FROM PUBLIC;
CREATE FUNCTION public.children() RETURNS SETOF public.child LANGUAGE sql
    AS $$ SELECT * FROM public.child $$;
COMMENT ON FUNCTION public.children() IS 'every child';
CREATE AGGREGATE public.total(int) (SFUNC = int4pl, STYPE = int, INITCOND = '0');
CREATE VIEW public.b_view AS SELECT "from", mood FROM "Mixed Case"."select";
CREATE VIEW public.a_view AS SELECT public.total("from") AS total FROM public.b_view;
CREATE MATERIALIZED VIEW public.m AS SELECT * FROM public.a_view;
CREATE INDEX m_total ON public.m (total);
CREATE TRIGGER "Odd trigger" AFTER UPDATE ON public.child FOR EACH STATEMENT
    EXECUTE FUNCTION public.stamp();
ALTER TABLE public.child DISABLE TRIGGER "Odd trigger";
CREATE SCHEMA "ünïcödé";
-- 63 bytes, PostgreSQL's longest name.
CREATE TABLE "ünïcödé"."éxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" (id int);
CREATE TABLE public."'); DROP TABLE catalogs; --" (x int);
CREATE TABLE public.empty ();
CREATE TABLE public.parent (a int, b int, PRIMARY KEY (a, b));
CREATE TABLE public.pair_child (
    x int, y int,
    CONSTRAINT pair_child_fk FOREIGN KEY (y, x) REFERENCES public.parent (a, b)
        ON UPDATE CASCADE ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED
);
CREATE UNIQUE INDEX covering_idx ON public.parent (b) INCLUDE (a);
CREATE FUNCTION public.add(a int, b int) RETURNS int LANGUAGE sql AS 'SELECT a + b';
CREATE FUNCTION public.add(a text, b text) RETURNS text LANGUAGE sql AS 'SELECT a || b';
"#;

/// The export of `catalog` (`?schema=` when given): status, content type and text.
async fn get_ddl(
    app: &TestApp,
    catalog: &str,
    schema: Option<&str>,
) -> (StatusCode, String, String) {
    let mut request = app.client.get(app.url(&format!("/catalogs/{catalog}/ddl")));
    if let Some(schema) = schema {
        request = request.query(&[("schema", schema)]);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// The export without its first line (which names the source database).
fn body(ddl: &str) -> &str {
    ddl.split_once('\n').map_or(ddl, |(_, rest)| rest)
}

/// Every row of a schema-object list the API serves.
async fn list(app: &TestApp, catalog: &str, what: &str) -> Vec<Value> {
    app.get_all_pages(&format!("/catalogs/{catalog}/{what}?limit=1000"))
        .await
        .0
}

/// Loads `ddl` into a fresh source, syncs it, loads its export into a fresh empty database,
/// syncs that, and checks that the two catalogs do not differ. Returns the export. `None`
/// (after saying so) when the server lacks one of `extensions`.
async fn round_trip(name: &str, ddl: &str, extensions: &[&str]) -> Option<String> {
    let admin = PgPool::connect(&admin_url()).await.unwrap();
    let missing: Vec<String> = sqlx::query_scalar(
        "SELECT x FROM unnest($1::text[]) x
         WHERE x NOT IN (SELECT name FROM pg_available_extensions)",
    )
    .bind(extensions)
    .fetch_all(&admin)
    .await
    .unwrap();
    admin.close().await;
    if !missing.is_empty() {
        eprintln!("SKIPPED: {name} needs the extensions {missing:?}, not installed on this server");
        return None;
    }

    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl(&format!("pgcs_ddl_{name}"), ddl).await;
    let synced = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(synced["status"], "succeeded", "{synced}");
    let original = synced["catalog_id"].as_str().unwrap().to_owned();
    assert_eq!(
        counts::served_counts(&app, &original).await,
        counts::source_counts(&source.url).await,
        "the counts by kind of {name}"
    );
    let (status, content_type, export) = get_ddl(&app, &original, None).await;
    assert_eq!(status, StatusCode::OK, "{export}");
    assert_eq!(content_type, "application/sql; charset=utf-8");

    let copy = TestDatabase::create(&format!("pgcs_ddl_{name}_copy")).await;
    let pool = PgPool::connect(&copy.url).await.unwrap();
    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(export.clone()))
        .execute(&pool)
        .await
    {
        panic!("the export of {name} does not load: {e}\n{export}");
    }
    pool.close().await;
    let synced = app.sync_and_wait(&sync_body(&copy.name)).await;
    assert_eq!(synced["status"], "succeeded", "{synced}");
    let recreated = synced["catalog_id"].as_str().unwrap().to_owned();
    assert_ne!(recreated, original);

    let (status, diff) = app
        .get(&format!("/diff?from={original}&to={recreated}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    let differing: Vec<&Value> = diff.as_array().unwrap().iter().collect();
    assert!(
        differing.is_empty(),
        "the catalogs of {name} and its copy differ: {differing:?}"
    );
    for what in [
        "schemas",
        "types",
        "sequences",
        "functions",
        "default_privileges",
    ] {
        let strip = |rows: Vec<Value>| -> Vec<Value> {
            rows.into_iter()
                .map(|mut r| {
                    if let Some(o) = r.as_object_mut() {
                        for key in ["id", "catalog_id"] {
                            o.remove(key);
                        }
                    }
                    r
                })
                .collect()
        };
        assert_eq!(
            strip(list(&app, &recreated, what).await),
            strip(list(&app, &original, what).await),
            "the {what} of {name} and its copy differ"
        );
    }
    let (_, _, again) = get_ddl(&app, &recreated, None).await;
    assert_eq!(
        body(&again),
        body(&export),
        "the exports of {name} and its copy differ"
    );
    Some(export)
}

#[tokio::test]
async fn an_awkward_schema_round_trips() {
    let export = round_trip("awkward", AWKWARD, &["pg_trgm"]).await.unwrap();
    // Created before what names them, whatever the order of their names.
    let at = |needle: &str| {
        export
            .find(needle)
            .unwrap_or_else(|| panic!("{needle}: {export}"))
    };
    assert!(at("CREATE VIEW public.b_view") < at("CREATE VIEW public.a_view"));
    assert!(at("AGGREGATE public.total") < at("CREATE VIEW public.a_view"));
    assert!(at("TABLE public.child (") < at("FUNCTION public.children()"));
    assert!(at("CREATE TABLE \"Mixed Case\".\"select\"") < at("ENABLE ROW LEVEL SECURITY"));
    // A grant keeps its column and its grantor; default privileges come after every grant.
    assert!(at("RESET ROLE;") < at("ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA"));
    for grant in [
        "ALTER DEFAULT PRIVILEGES FOR ROLE postgres REVOKE ALL ON FUNCTIONS FROM PUBLIC, postgres;",
        "ALTER DEFAULT PRIVILEGES FOR ROLE postgres GRANT USAGE ON TYPES TO pg_monitor WITH GRANT OPTION;",
        "GRANT UPDATE (\"Quote\"\"d\") ON TABLE \"Mixed Case\".\"select\" TO pg_read_all_data;",
        "SET ROLE pg_monitor;\nGRANT SELECT ON TABLE \"Mixed Case\".\"select\" TO pg_read_all_stats;\nRESET ROLE;",
    ] {
        assert!(export.contains(grant), "{grant}\n{export}");
    }
    assert!(export.contains(
        "CREATE POLICY capped ON \"Mixed Case\".\"select\" AS RESTRICTIVE FOR INSERT \
         TO pg_monitor, pg_read_all_data WITH CHECK ((\"from\" < 1000));"
    ));
    assert!(export.contains("CREATE TABLE \"Mixed Case\".\"select\" (\n    \"from\" integer GENERATED ALWAYS AS IDENTITY"));
}

/// Collations (used by columns), a disabled rule, extended statistics and a text search
/// configuration with its mappings.
const OTHER_KINDS: &str = r#"
CREATE SCHEMA app;
CREATE COLLATION app.nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE COLLATION app.plain (provider = libc, locale = 'C');
CREATE TABLE app.t (id int, name text COLLATE app.nocase, code text COLLATE app.plain);
CREATE TABLE app.log (id int);
CREATE RULE copy_id AS ON INSERT TO app.t DO ALSO INSERT INTO app.log VALUES (NEW.id);
ALTER TABLE app.t DISABLE RULE copy_id;
CREATE STATISTICS app.t_stats (mcv) ON id, code FROM app.t;
CREATE TEXT SEARCH CONFIGURATION app.cfg (PARSER = pg_catalog.default);
ALTER TEXT SEARCH CONFIGURATION app.cfg
    ADD MAPPING FOR asciiword, word WITH pg_catalog.english_stem, pg_catalog.simple;
CREATE PUBLICATION "some t" FOR TABLE app.t (id, code) WHERE (id > 10), TABLE app.log
    WITH (publish = 'insert, delete');
CREATE PUBLICATION whole FOR TABLES IN SCHEMA app WITH (publish_via_partition_root = true);
CREATE PUBLICATION empty;
CREATE FUNCTION app.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE EVENT TRIGGER audit ON ddl_command_end WHEN TAG IN ('CREATE TABLE', 'DROP TABLE')
    EXECUTE FUNCTION app.on_ddl();
CREATE EVENT TRIGGER quiet ON sql_drop EXECUTE FUNCTION app.on_ddl();
ALTER EVENT TRIGGER quiet DISABLE;
CREATE FOREIGN DATA WRAPPER plain_fdw OPTIONS (debug 'it''s on');
CREATE SERVER warehouse TYPE 'pg' VERSION '15' FOREIGN DATA WRAPPER plain_fdw
    OPTIONS (host 'warehouse.internal', port '5432');
"#;

#[tokio::test]
async fn every_other_kind_round_trips() {
    let export = round_trip("kinds", OTHER_KINDS, &[]).await.unwrap();
    for statement in [
        "CREATE COLLATION app.nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);",
        "ALTER TABLE app.t DISABLE RULE copy_id;",
        "CREATE STATISTICS app.t_stats (mcv) ON id, code FROM app.t;",
        "CREATE PUBLICATION \"some t\" FOR TABLE ONLY app.log, TABLE ONLY app.t (id, code) \
         WHERE ((id > 10)) WITH (publish = 'insert, delete', publish_via_partition_root = false);",
        "CREATE SERVER warehouse TYPE 'pg' VERSION '15' FOREIGN DATA WRAPPER plain_fdw \
         OPTIONS (host 'warehouse.internal', port '5432');",
        "ALTER EVENT TRIGGER quiet DISABLE;",
    ] {
        assert!(export.contains(statement), "{statement}\n{export}");
    }
    // Event triggers come last: none fires while the script loads.
    let last_create = export.rfind("CREATE ").unwrap();
    assert!(
        export[last_create..].starts_with("CREATE EVENT TRIGGER"),
        "{export}"
    );
}

#[tokio::test]
async fn the_pagila_schema_round_trips() {
    round_trip("pagila", PAGILA, &[]).await.unwrap();
}

#[tokio::test]
async fn the_adventureworks_schema_round_trips() {
    let ddl = loadable(ADVENTUREWORKS);
    round_trip("adventureworks", &ddl, &["uuid-ossp", "tablefunc"]).await;
}

#[tokio::test]
async fn the_danbooru_schema_round_trips() {
    let extensions = [
        "btree_gin",
        "fuzzystrmatch",
        "pg_trgm",
        "pgcrypto",
        "pgstattuple",
    ];
    round_trip("danbooru", &loadable(DANBOORU), &extensions).await;
}

#[tokio::test]
async fn the_hatchet_schema_round_trips() {
    round_trip("hatchet", &loadable(HATCHET), &["btree_gist"]).await;
}

#[tokio::test]
async fn one_schema_is_exported_and_unknown_ones_are_refused() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl(
        "pgcs_ddl_one",
        "CREATE SCHEMA sales; CREATE TABLE sales.orders (id int PRIMARY KEY);
         CREATE TABLE public.notes (body text);",
    )
    .await;
    let synced = app.sync_and_wait(&sync_body(&source.name)).await;
    let catalog = synced["catalog_id"].as_str().unwrap();

    let (status, _, sales) = get_ddl(&app, catalog, Some("sales")).await;
    assert_eq!(status, StatusCode::OK, "{sales}");
    assert!(sales.contains("CREATE SCHEMA sales;"), "{sales}");
    assert!(sales.contains("CREATE TABLE sales.orders"), "{sales}");
    assert!(!sales.contains("notes"), "{sales}");

    let (status, _, refused) = get_ddl(&app, catalog, Some("nope")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let refused: Value = serde_json::from_str(&refused).unwrap();
    assert_eq!(refused["error"]["field"], "schema", "{refused}");
    let unknown = uuid::Uuid::new_v4();
    let (status, _, _) = get_ddl(&app, &unknown.to_string(), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The export is cached with the catalog's other reads.
    let (_, _, whole) = get_ddl(&app, catalog, None).await;
    let again = app
        .client
        .get(app.url(&format!("/catalogs/{catalog}/ddl")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.headers()["x-cache"], "hit");
    assert_eq!(
        again.headers()[CONTENT_TYPE],
        "application/sql; charset=utf-8"
    );
    assert_eq!(again.text().await.unwrap(), whole);

    // The client prints what the API answers, and says why it was refused.
    let run = |args: Vec<String>| {
        tokio::process::Command::new(binary("pg-catalog-sync"))
            .args(args)
            .env("PGCS_API_URL", &app.base)
            .output()
    };
    let out = run(vec!["ddl".into(), catalog.into()]).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), whole);
    let out = run(vec![
        "ddl".into(),
        catalog.into(),
        "--schema".into(),
        "sales".into(),
    ])
    .await
    .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), sales);
    let out = run(vec![
        "ddl".into(),
        catalog.into(),
        "--schema".into(),
        "nope".into(),
    ])
    .await
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("400") && stderr.contains("schema:"),
        "{stderr}"
    );
}

/// The round trip of the schema file `DDL_ROUNDTRIP_FILE` (named `DDL_ROUNDTRIP_NAME`), for
/// the real-world schemas kept beside the project rather than in it: `scripts/ddl-roundtrip`
/// runs it for each. The extensions the file creates must be available, or it is skipped.
#[tokio::test]
#[ignore = "run by scripts/ddl-roundtrip, with a schema file"]
async fn a_schema_file_round_trips() {
    let path = std::env::var("DDL_ROUNDTRIP_FILE").expect("DDL_ROUNDTRIP_FILE names a file");
    let name = std::env::var("DDL_ROUNDTRIP_NAME").unwrap_or_else(|_| "file".into());
    let sql = std::fs::read_to_string(&path).unwrap();
    let extensions: Vec<String> = sql
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("CREATE EXTENSION ")?;
            let rest = rest.strip_prefix("IF NOT EXISTS ").unwrap_or(rest);
            let name = rest.split([' ', ';']).next()?;
            Some(name.trim_matches('"').to_owned())
        })
        .collect();
    let extensions: Vec<&str> = extensions.iter().map(String::as_str).collect();
    let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    if round_trip(&name, &loadable(&sql), &extensions)
        .await
        .is_some()
    {
        println!("ROUND TRIP OK: {name}");
    }
}
