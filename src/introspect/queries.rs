//! The bulk catalog queries and their rows. `$1` is always the array of included schema oids.

use sqlx::FromRow;
use sqlx::postgres::types::Oid;

pub const DATABASE: &str = r#"
SELECT current_database()::text                 AS name,
       current_setting('server_version')        AS server_version,
       pg_encoding_to_char(d.encoding)::text    AS encoding,
       pg_database_size(d.oid)                  AS size_bytes
FROM pg_database d
WHERE d.datname = current_database()
"#;

#[derive(FromRow)]
pub struct DatabaseRow {
    pub name: String,
    pub server_version: Option<String>,
    pub encoding: Option<String>,
    pub size_bytes: Option<i64>,
}

/// User schemas: system schemas, TOAST and temporary schemas are left out.
pub const SCHEMAS: &str = r#"
SELECT n.oid,
       n.nspname::text                  AS name,
       pg_get_userbyid(n.nspowner)::text AS owner,
       d.description                    AS comment
FROM pg_namespace n
LEFT JOIN pg_description d
       ON d.objoid = n.oid AND d.classoid = 'pg_namespace'::regclass AND d.objsubid = 0
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
  AND n.nspname NOT LIKE 'pg\_temp\_%'
ORDER BY n.nspname
"#;

#[derive(FromRow)]
pub struct SchemaRow {
    pub oid: Oid,
    pub name: String,
    pub owner: Option<String>,
    pub comment: Option<String>,
}

pub const RELATIONS: &str = r#"
SELECT c.oid,
       c.relnamespace                      AS schema_oid,
       c.relname::text                     AS name,
       c.relkind::text                     AS relkind,
       pg_get_userbyid(c.relowner)::text   AS owner,
       d.description                       AS comment,
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END AS row_estimate,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS definition,
       pn.nspname::text                    AS parent_schema,
       pc.relname::text                    AS parent_name,
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS partition_bound
FROM pg_class c
LEFT JOIN pg_description d
       ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
LEFT JOIN pg_inherits i  ON c.relispartition AND i.inhrelid = c.oid
LEFT JOIN pg_class pc    ON pc.oid = i.inhparent
LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
WHERE c.relnamespace = ANY($1)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY c.relnamespace, c.relname
"#;

#[derive(FromRow)]
pub struct RelationRow {
    pub oid: Oid,
    pub schema_oid: Oid,
    pub name: String,
    pub relkind: String,
    pub owner: Option<String>,
    pub comment: Option<String>,
    pub row_estimate: Option<i64>,
    pub definition: Option<String>,
    pub parent_schema: Option<String>,
    pub parent_name: Option<String>,
    pub partition_bound: Option<String>,
}

/// Columns in attnum order, dropped columns skipped. A column is NOT NULL when it says so or
/// when its type is a NOT NULL domain. A generated column's expression is not a default.
pub const COLUMNS: &str = r#"
SELECT a.attrelid                                   AS table_oid,
       a.attnum::int4                               AS ordinal,
       a.attname::text                              AS name,
       format_type(a.atttypid, a.atttypmod)         AS data_type,
       NOT (a.attnotnull OR (t.typtype = 'd' AND t.typnotnull)) AS nullable,
       CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END AS default_expr,
       d.description                                AS comment
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_type t  ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad
       ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_description d
       ON d.objoid = a.attrelid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum
WHERE c.relnamespace = ANY($1)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND a.attnum > 0
  AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"#;

#[derive(FromRow)]
pub struct ColumnRow {
    pub table_oid: Oid,
    pub ordinal: i32,
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
    pub default_expr: Option<String>,
    pub comment: Option<String>,
}

/// Key, unique, foreign-key, check and exclusion constraints, column lists in key order.
pub const CONSTRAINTS: &str = r#"
SELECT con.conrelid         AS table_oid,
       con.conname::text    AS name,
       con.contype::text    AS contype,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord)  AS columns,
       pg_get_constraintdef(con.oid) AS definition,
       fn.nspname::text     AS ref_schema,
       fc.relname::text     AS ref_table,
       CASE WHEN con.contype = 'f' THEN
           ARRAY(SELECT a.attname::text
                 FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                 ORDER BY k.ord)
       END                  AS ref_columns
FROM pg_constraint con
JOIN pg_class c        ON c.oid = con.conrelid
LEFT JOIN pg_class fc  ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE c.relnamespace = ANY($1)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND con.contype IN ('p', 'u', 'f', 'c', 'x')
ORDER BY con.conrelid, con.conname
"#;

#[derive(FromRow)]
pub struct ConstraintRow {
    pub table_oid: Oid,
    pub name: String,
    pub contype: String,
    pub columns: Vec<String>,
    pub definition: Option<String>,
    pub ref_schema: Option<String>,
    pub ref_table: Option<String>,
    pub ref_columns: Option<Vec<String>>,
}

/// Indexes with their key columns or expressions in order (INCLUDE columns left out of the key).
pub const INDEXES: &str = r#"
SELECT i.indrelid          AS table_oid,
       ic.relname::text    AS name,
       ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
             FROM generate_series(1, i.indnkeyatts::int4) AS k
             ORDER BY k)   AS columns,
       i.indisunique       AS is_unique,
       i.indisprimary      AS is_primary,
       am.amname::text     AS method,
       pg_get_expr(i.indpred, i.indrelid) AS predicate,
       pg_get_indexdef(i.indexrelid)      AS definition
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c  ON c.oid = i.indrelid
JOIN pg_am am    ON am.oid = ic.relam
WHERE c.relnamespace = ANY($1)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY i.indrelid, ic.relname
"#;

#[derive(FromRow)]
pub struct IndexRow {
    pub table_oid: Oid,
    pub name: String,
    pub columns: Vec<String>,
    pub is_unique: bool,
    pub is_primary: bool,
    pub method: String,
    pub predicate: Option<String>,
    pub definition: Option<String>,
}
