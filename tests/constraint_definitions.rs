//! Constraint definitions read exactly as the source's `pg_get_constraintdef` prints them,
//! whether the worker prints them (keys, unique and foreign-key constraints) or the server does
//! (checks, exclusions, foreign keys whose ON DELETE sets columns): identifiers that need
//! quoting, INCLUDE columns, NULLS NOT DISTINCT, every match type and action, DEFERRABLE,
//! NOT VALID, partitioned tables, and foreign keys to tables that the search path shows, hides
//! behind a table of the same name, or that lie outside the catalog's schemas.

mod common;

use common::*;
use serde_json::json;

const DDL: &str = r#"
CREATE SCHEMA "Odd Schema";
CREATE SCHEMA "user";
CREATE SCHEMA outside;
-- "$user" comes first in the default search path: this hides public.shadow.
CREATE SCHEMA postgres;
CREATE TABLE postgres.shadow (id int PRIMARY KEY);
CREATE TABLE public.shadow (id int PRIMARY KEY);
CREATE TABLE outside.target (id int PRIMARY KEY, "Code" text UNIQUE);
CREATE TABLE "user"."table" (id int PRIMARY KEY, "select" int, "Mixed" text,
    UNIQUE ("select", "Mixed"));
CREATE TABLE public.parent (a int, b int, "quo""te" int, n int, note text,
    CONSTRAINT parent_pkey PRIMARY KEY (a, b) INCLUDE ("quo""te"),
    CONSTRAINT parent_n_key UNIQUE NULLS NOT DISTINCT (n),
    CONSTRAINT "Deferred Unique" UNIQUE (note) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT immediate_unique UNIQUE ("quo""te") DEFERRABLE,
    CONSTRAINT included UNIQUE (n, a) INCLUDE (note, b));
CREATE TABLE "Odd Schema"."Order" (
    id int PRIMARY KEY,
    pa int, pb int, sh int, tbl int, code text, sel int, mixed text,
    CONSTRAINT fk_parent FOREIGN KEY (pa, pb) REFERENCES public.parent (a, b)
        MATCH FULL ON UPDATE CASCADE ON DELETE RESTRICT,
    CONSTRAINT "FK Reversed" FOREIGN KEY (pb, pa) REFERENCES public.parent (b, a),
    CONSTRAINT fk_shadow FOREIGN KEY (sh) REFERENCES public.shadow (id) ON DELETE CASCADE,
    CONSTRAINT fk_shadowing FOREIGN KEY (sh) REFERENCES postgres.shadow (id)
        ON UPDATE SET NULL DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT fk_user FOREIGN KEY (tbl) REFERENCES "user"."table" ON UPDATE SET DEFAULT,
    CONSTRAINT fk_user_unique FOREIGN KEY (sel, mixed) REFERENCES "user"."table" ("select", "Mixed")
        ON UPDATE RESTRICT ON DELETE NO ACTION DEFERRABLE,
    CONSTRAINT fk_outside FOREIGN KEY (code) REFERENCES outside.target ("Code"),
    CONSTRAINT fk_set_null FOREIGN KEY (pa, pb) REFERENCES public.parent ON DELETE SET NULL (pb),
    CONSTRAINT fk_set_default FOREIGN KEY (sh) REFERENCES public.shadow ON DELETE SET DEFAULT,
    CONSTRAINT positive CHECK (id > 0),
    CONSTRAINT no_overlap EXCLUDE USING gist (int4range(pa, pb) WITH &&)
);
ALTER TABLE "Odd Schema"."Order"
    ADD CONSTRAINT fk_not_valid FOREIGN KEY (tbl) REFERENCES "user"."table" NOT VALID;
ALTER TABLE "Odd Schema"."Order" ADD CONSTRAINT check_not_valid CHECK (sel <> 0) NOT VALID;
CREATE TABLE public.measurement (id int, at date, sh int REFERENCES public.shadow,
    PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.measurement_2026 PARTITION OF public.measurement
    FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE public.reading (id int, at date,
    FOREIGN KEY (id, at) REFERENCES public.measurement);
"#;

#[tokio::test]
async fn every_constraint_definition_reads_as_pg_get_constraintdef_prints_it() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src_constraintdef", DDL).await;
    let mut body = sync_body(&source.name);
    body["schemas"] = json!({"exclude": ["outside"]});
    let sync = app.sync_and_wait(&body).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let catalog = sync["catalog_id"].as_str().unwrap();

    let expected = source
        .definitions(
            "SELECT n.nspname::text, c.relname::text, k.conname::text, pg_get_constraintdef(k.oid)
         FROM pg_constraint k
         JOIN pg_class c ON c.oid = k.conrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN ('Odd Schema', 'user', 'public', 'postgres')",
        )
        .await;
    // 28 declared, and the clone of the foreign key to the partitioned table for its partition.
    assert_eq!(expected.len(), 29, "the DDL above makes 29 constraints");
    // The printed forms this test is about, as the server prints them.
    let definitions: Vec<&str> = expected.iter().map(|(_, _, _, d)| d.as_str()).collect();
    for printed in [
        "PRIMARY KEY (a, b) INCLUDE (\"quo\"\"te\")",
        "UNIQUE NULLS NOT DISTINCT (n)",
        "FOREIGN KEY (sh) REFERENCES public.shadow(id) ON DELETE CASCADE",
        "FOREIGN KEY (sh) REFERENCES shadow(id) ON UPDATE SET NULL DEFERRABLE INITIALLY DEFERRED",
        "FOREIGN KEY (code) REFERENCES outside.target(\"Code\")",
        "FOREIGN KEY (tbl) REFERENCES \"user\".\"table\"(id) NOT VALID",
    ] {
        assert!(
            definitions.contains(&printed),
            "{printed} in {definitions:#?}"
        );
    }

    assert_eq!(
        app.served_definitions(catalog, "constraints").await,
        definitions_json(expected)
    );
}
