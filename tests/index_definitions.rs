//! Index definitions read exactly as the source's `pg_get_indexdef` prints them, whichever way
//! they are produced: identifiers that need quoting (keywords, mixed case, quotes, spaces),
//! every access method, INCLUDE columns, and each thing that makes the text longer than a plain
//! column list (operator classes, collations, orderings, storage options, NULLS NOT DISTINCT,
//! predicates, expressions, partitioned tables).

mod common;

use common::*;

const DDL: &str = r#"
CREATE SCHEMA "Odd Schema";
CREATE SCHEMA "user";
CREATE TABLE "Odd Schema"."Order" (
    "select" int, "Mixed" text, plain text, v varchar(20), c text COLLATE "C", arr int[],
    n int, t tsvector, r int4range, "user" int, "quo""te" int, "analyse" int, "limit" int,
    "int" int, "between" int, name int, "sp ace" int
);
CREATE TABLE "user"."table" (id int PRIMARY KEY, a text, b int);
CREATE INDEX ON "Odd Schema"."Order" ("select");
CREATE INDEX ON "Odd Schema"."Order" ("Mixed", plain);
CREATE INDEX ON "Odd Schema"."Order" ("int", "between", name, "sp ace");
CREATE INDEX varchar_idx ON "Odd Schema"."Order" (v);
CREATE INDEX column_collation_idx ON "Odd Schema"."Order" (c);
CREATE INDEX other_collation_idx ON "Odd Schema"."Order" (plain COLLATE "C");
CREATE INDEX same_collation_idx ON "Odd Schema"."Order" (c COLLATE "C");
CREATE INDEX desc_idx ON "Odd Schema"."Order" (n DESC NULLS LAST, plain);
CREATE INDEX nulls_first_idx ON "Odd Schema"."Order" (n NULLS FIRST);
CREATE INDEX pattern_idx ON "Odd Schema"."Order" (plain text_pattern_ops);
CREATE INDEX hash_idx ON "Odd Schema"."Order" USING hash (n);
CREATE INDEX gin_idx ON "Odd Schema"."Order" USING gin (t);
CREATE INDEX gin_array_idx ON "Odd Schema"."Order" USING gin (arr);
CREATE INDEX gist_idx ON "Odd Schema"."Order" USING gist (r);
CREATE INDEX brin_idx ON "Odd Schema"."Order" USING brin (n) WITH (pages_per_range = 16);
CREATE INDEX fillfactor_idx ON "Odd Schema"."Order" (n) WITH (fillfactor = 70);
CREATE UNIQUE INDEX nulls_not_distinct_idx ON "Odd Schema"."Order" (n) NULLS NOT DISTINCT;
CREATE UNIQUE INDEX "Include Idx" ON "Odd Schema"."Order" ("user") INCLUDE ("quo""te", "analyse", "limit");
CREATE INDEX expression_idx ON "Odd Schema"."Order" (lower(plain), n);
CREATE INDEX partial_idx ON "Odd Schema"."Order" (n) WHERE n > 0;
CREATE INDEX ON "user"."table" (a, b);
CREATE TABLE public.part (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE public.part_1 PARTITION OF public.part FOR VALUES FROM (0) TO (10);
CREATE INDEX part_k_idx ON public.part (k);
CREATE MATERIALIZED VIEW public.mv AS SELECT 1 AS x;
CREATE UNIQUE INDEX ON public.mv (x);
CREATE DOMAIN public.c_text AS text COLLATE "C";
CREATE TABLE public.d (v public.c_text, w text);
CREATE INDEX domain_idx ON public.d (v);
CREATE INDEX domain_default_collation_idx ON public.d (v COLLATE "default");
CREATE INDEX default_collation_idx ON public.d (w COLLATE "default");
"#;

#[tokio::test]
async fn every_index_definition_reads_as_pg_get_indexdef_prints_it() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src_indexdef", DDL).await;
    let sync = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let catalog = sync["catalog_id"].as_str().unwrap();

    let expected = source
        .definitions(
        "SELECT n.nspname::text, c.relname::text, ic.relname::text, pg_get_indexdef(i.indexrelid)
         FROM pg_index i
         JOIN pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_class c ON c.oid = i.indrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN ('Odd Schema', 'user', 'public')",
        )
        .await;
    assert_eq!(expected.len(), 28, "the DDL above makes 28 indexes");

    assert_eq!(
        app.served_definitions(catalog, "indexes").await,
        definitions_json(expected)
    );
}
