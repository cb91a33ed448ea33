//! The bulk catalog queries and their rows. The queries of what comes before the relations take
//! the array of included schema oids as `$1`; the queries of the relations' parts take a
//! batch's relation oids: each covers a whole batch at once, whatever its size.

use sqlx::postgres::PgRow;
use sqlx::postgres::types::Oid;
use sqlx::{FromRow, Row};

/// Relation kinds a catalog holds: tables, partitioned tables, views, materialized views,
/// foreign tables.
macro_rules! relkinds {
    () => {
        "('r', 'p', 'v', 'm', 'f')"
    };
}

/// The extension that owns an object, as a column: NULL for the schema author's own. Functions
/// and types are read with it, and lists show an extension's on request.
macro_rules! owning_extension {
    ($class:literal, $oid:literal) => {
        concat!(
            "(SELECT x.extname::text FROM pg_depend e JOIN pg_extension x ON x.oid = e.refobjid \
              WHERE e.classid = '",
            $class,
            "'::regclass AND e.objid = ",
            $oid,
            " AND e.refclassid = 'pg_extension'::regclass AND e.deptype = 'e')"
        )
    };
}

/// Objects that belong to an extension (pg_trgm's functions, hstore's type, pg_partman's
/// tables) are the extension's, not the schema author's: they are left out.
macro_rules! not_extension_member {
    ($class:literal, $oid:literal) => {
        concat!(
            "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '",
            $class,
            "'::regclass AND e.objid = ",
            $oid,
            " AND e.deptype = 'e')"
        )
    };
}

pub const DATABASE: &str = r#"
SELECT current_database()::text                 AS name,
       current_setting('server_version')        AS server_version,
       pg_encoding_to_char(d.encoding)::text    AS encoding,
       current_setting('server_version_num')::int4 AS version_num,
       -- What of the access metadata the reading user may read: an administrator can revoke
       -- SELECT on these catalogs, and the rest of the catalog is read without them.
       has_column_privilege('pg_catalog.pg_class', 'relacl', 'SELECT')
           AND has_column_privilege('pg_catalog.pg_attribute', 'attacl', 'SELECT')
           AND has_column_privilege('pg_catalog.pg_namespace', 'nspacl', 'SELECT')
           AND has_column_privilege('pg_catalog.pg_proc', 'proacl', 'SELECT')
           AND has_column_privilege('pg_catalog.pg_type', 'typacl', 'SELECT') AS acls_readable,
       has_table_privilege('pg_catalog.pg_policy', 'SELECT') AS policies_readable,
       has_table_privilege('pg_catalog.pg_default_acl', 'SELECT') AS default_acl_readable,
       has_table_privilege('pg_catalog.pg_roles', 'SELECT')
           AND has_table_privilege('pg_catalog.pg_auth_members', 'SELECT') AS roles_readable,
       has_table_privilege('pg_catalog.pg_rewrite', 'SELECT')
           AND has_table_privilege('pg_catalog.pg_collation', 'SELECT')
           AND has_table_privilege('pg_catalog.pg_statistic_ext', 'SELECT')
           AND has_table_privilege('pg_catalog.pg_ts_config', 'SELECT')
           AND has_table_privilege('pg_catalog.pg_ts_config_map', 'SELECT')
           AND has_table_privilege('pg_catalog.pg_ts_parser', 'SELECT')
           AND has_table_privilege('pg_catalog.pg_ts_dict', 'SELECT') AS schema_objects_readable,
       has_table_privilege('pg_catalog.pg_publication', 'SELECT')
           AND has_table_privilege('pg_catalog.pg_publication_rel', 'SELECT')
           AND has_table_privilege('pg_catalog.pg_event_trigger', 'SELECT')
           AND has_table_privilege('pg_catalog.pg_foreign_data_wrapper', 'SELECT')
           AND has_table_privilege('pg_catalog.pg_foreign_server', 'SELECT')
           AS database_objects_readable
FROM pg_database d
WHERE d.datname = current_database()
"#;

#[derive(FromRow)]
pub struct DatabaseRow {
    pub name: String,
    pub server_version: Option<String>,
    pub encoding: Option<String>,
    pub version_num: i32,
    pub acls_readable: bool,
    pub policies_readable: bool,
    pub default_acl_readable: bool,
    pub roles_readable: bool,
    pub schema_objects_readable: bool,
    pub database_objects_readable: bool,
}

/// The database's size on disk. It stat()s every file of every relation, so it runs beside
/// the bulk queries rather than before them.
pub const DATABASE_SIZE: &str = "SELECT pg_database_size(current_database())";

/// User schemas: system, TOAST and temporary schemas are left out; `$1` (include, or NULL for
/// all) and `$2` (exclude) narrow them further.
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
  AND ($1::text[] IS NULL OR n.nspname = ANY($1))
  AND NOT (n.nspname = ANY($2::text[]))
ORDER BY n.nspname
"#;

#[derive(FromRow)]
pub struct SchemaRow {
    pub oid: Oid,
    pub name: String,
    pub owner: Option<String>,
    pub comment: Option<String>,
}

/// The relations of the included schemas, in schema and name order: the batches. An
/// extension's own (pg_partman's configuration) are read too, named by their extension.
pub const RELATION_OIDS: &str = concat!(
    r#"
SELECT c.oid FROM pg_class c
WHERE c.relnamespace = ANY($1)
  AND c.relkind IN "#,
    relkinds!(),
    r#"
ORDER BY c.relnamespace, c.relname
"#
);

/// The partitions of the included schemas with their parents: what a parent's detail shows.
pub const PARTITIONS: &str = concat!(
    r#"
SELECT n.nspname::text  AS schema,
       c.relname::text  AS name,
       pn.nspname::text AS parent_schema,
       pc.relname::text AS parent_name,
       pg_get_expr(c.relpartbound, c.oid) AS partition_bound
FROM pg_class c
JOIN pg_namespace n  ON n.oid = c.relnamespace
JOIN pg_inherits i   ON i.inhrelid = c.oid
JOIN pg_class pc     ON pc.oid = i.inhparent
JOIN pg_namespace pn ON pn.oid = pc.relnamespace
WHERE c.relispartition
  AND c.relnamespace = ANY($1)
  AND c.relkind IN "#,
    relkinds!(),
    r#"
"#
);

#[derive(FromRow)]
pub struct PartitionRow {
    pub schema: String,
    pub name: String,
    pub parent_schema: String,
    pub parent_name: String,
    pub partition_bound: Option<String>,
}

/// The relations `$1`.
pub const RELATIONS: &str = concat!(
    r#"
SELECT c.oid,
       c.relnamespace                      AS schema_oid,
       c.relname::text                     AS name,
       c.relkind::text                     AS relkind,
       pg_get_userbyid(c.relowner)::text   AS owner,
       d.description                       AS comment,
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::int8 END AS row_estimate,
       -- Pages of the table, its TOAST table and its indexes as of the last VACUUM/ANALYZE:
       -- an estimate like reltuples, read from pg_class instead of stat()-ing every file
       -- (pg_total_relation_size costs a second per 10,000 tables).
       CASE WHEN c.relkind IN ('r', 'm') AND c.reltuples >= 0 THEN
           (c.relpages::int8 + coalesce(toast.relpages, 0) + coalesce(ip.pages, 0))
           * current_setting('block_size')::int8
       END AS total_bytes,
       c.relpersistence = 'u'              AS unlogged,
       c.relrowsecurity                    AS rls_enabled,
       c.relforcerowsecurity               AS rls_forced,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS definition,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key,
       pn.nspname::text                    AS parent_schema,
       pc.relname::text                    AS parent_name,
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS partition_bound,
       "#,
    owning_extension!("pg_class", "c.oid"),
    r#" AS extension
FROM pg_class c
LEFT JOIN pg_description d
       ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
LEFT JOIN pg_class toast  ON toast.oid = c.reltoastrelid
-- One pass over the batch's indexes (a subquery per relation costs twice the rest).
LEFT JOIN (SELECT ix.indrelid, sum(ic.relpages)::int8 AS pages
           FROM pg_index ix JOIN pg_class ic ON ic.oid = ix.indexrelid
           WHERE ix.indrelid = ANY($1)
           GROUP BY ix.indrelid) ip ON ip.indrelid = c.oid
LEFT JOIN pg_inherits i   ON c.relispartition AND i.inhrelid = c.oid
LEFT JOIN pg_class pc     ON pc.oid = i.inhparent
LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
WHERE c.oid = ANY($1)
"#
);

#[derive(FromRow)]
pub struct RelationRow {
    pub oid: Oid,
    pub schema_oid: Oid,
    pub name: String,
    pub relkind: String,
    pub owner: Option<String>,
    pub comment: Option<String>,
    pub row_estimate: Option<i64>,
    pub total_bytes: Option<i64>,
    pub unlogged: bool,
    pub rls_enabled: bool,
    pub rls_forced: bool,
    pub definition: Option<String>,
    pub partition_key: Option<String>,
    pub parent_schema: Option<String>,
    pub parent_name: Option<String>,
    pub partition_bound: Option<String>,
    pub extension: Option<String>,
}

/// The columns of the relations `$1`, dropped ones skipped, in no promised order (the worker
/// sorts them when they come otherwise than by relation and number). The column's type is
/// only its oid and modifier here: a big catalog has millions of columns but a handful of
/// distinct types, so [`COLUMN_TYPES`] names each type once instead of `format_type` and four
/// joins running for every column. A generated column's expression is not a default.
///
/// A default cannot name a column, so it is printed without its relation (`pg_get_expr`'s
/// relation 0): given one, the server opens the relation to name columns, building its cache
/// entry and taking a lock for every table with a default, which costs more than the rest of
/// the query. A generated column's expression names columns and is printed with it.
pub const COLUMNS: &str = r#"
SELECT a.attrelid                                   AS table_oid,
       a.attnum::int4                               AS ordinal,
       a.attname::text                              AS name,
       a.atttypid                                   AS type_oid,
       a.atttypmod                                  AS type_modifier,
       a.attnotnull                                 AS not_null,
       CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, 0) END AS default_expr,
       CASE WHEN a.attgenerated = 's' THEN pg_get_expr(ad.adbin, ad.adrelid) END AS generated,
       CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by_default' END AS identity,
       d.description                                AS comment,
       a.attcollation                               AS collation_oid
FROM pg_attribute a
LEFT JOIN pg_attrdef ad
       ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_description d
       ON d.objoid = a.attrelid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum
WHERE a.attrelid = ANY($1)
  AND a.attnum > 0
  AND NOT a.attisdropped
"#;

/// Decoded by position ([`FromRow`] below): by name, finding each field's column was a tenth
/// of the worker's time reading a big catalog.
pub struct ColumnRow {
    pub table_oid: Oid,
    pub ordinal: i32,
    pub name: String,
    pub type_oid: Oid,
    pub type_modifier: i32,
    pub not_null: bool,
    pub default_expr: Option<String>,
    pub generated: Option<String>,
    pub identity: Option<String>,
    pub comment: Option<String>,
    pub collation_oid: Oid,
}

impl<'r> FromRow<'r, PgRow> for ColumnRow {
    fn from_row(row: &'r PgRow) -> sqlx::Result<Self> {
        Ok(Self {
            table_oid: row.try_get(0)?,
            ordinal: row.try_get(1)?,
            name: row.try_get(2)?,
            type_oid: row.try_get(3)?,
            type_modifier: row.try_get(4)?,
            not_null: row.try_get(5)?,
            default_expr: row.try_get(6)?,
            generated: row.try_get(7)?,
            identity: row.try_get(8)?,
            comment: row.try_get(9)?,
            collation_oid: row.try_get(10)?,
        })
    }
}

/// The types of the columns, once per (type oid `$1`, modifier `$2`) pair: the name
/// `format_type` prints, whether it is a NOT NULL domain (which makes its columns NOT NULL),
/// the schema and name of the type or, for an array, of its element type, and the type's own
/// collation (a column's collation is shown only where it differs). `$3` are the columns'
/// collations, named in `collation_names`.
pub const COLUMN_TYPES: &str = r#"
SELECT x.oid                                   AS oid,
       x.modifier                              AS modifier,
       format_type(x.oid, x.modifier)          AS data_type,
       t.typtype = 'd' AND t.typnotnull        AS domain_not_null,
       et_ns.nspname::text                     AS type_schema,
       et.typname::text                        AS type_name,
       t.typcategory = 'A'                     AS is_array,
       t.typcollation                          AS collation_oid
FROM unnest($1::oid[], $2::int4[]) AS x(oid, modifier)
JOIN pg_type t        ON t.oid = x.oid
JOIN pg_type et       ON et.oid = CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem ELSE t.oid END
JOIN pg_namespace et_ns ON et_ns.oid = et.typnamespace
"#;

#[derive(Clone, FromRow)]
pub struct ColumnTypeRow {
    pub oid: Oid,
    pub modifier: i32,
    pub data_type: String,
    pub domain_not_null: bool,
    pub type_schema: String,
    pub type_name: String,
    pub is_array: bool,
    pub collation_oid: Oid,
}

/// Names of the collations `$1`: a built-in one (`pg_catalog`'s) by its name, another one
/// schema-qualified and quoted where needed.
pub const COLLATIONS: &str = r#"
SELECT co.oid,
       CASE WHEN co.collnamespace = 'pg_catalog'::regnamespace THEN co.collname::text
            ELSE format('%I.%I', n.nspname, co.collname) END
FROM pg_collation co
JOIN pg_namespace n ON n.oid = co.collnamespace
WHERE co.oid = ANY($1::oid[])
"#;

/// Key, unique, foreign-key, check and exclusion constraints of the relations `$1`. Column
/// lists come as attribute numbers, resolved to names from the batch's columns (a per-row
/// subquery would cost more than the rest of the query); only a foreign key to a table outside
/// the batch has its referenced names looked up here.
///
/// `pg_get_constraintdef` costs about three quarters of this query on a big catalog. Key,
/// unique and foreign-key constraints (`printed` here: but for a foreign key whose ON DELETE
/// sets some columns, which only the server prints) have their definitions printed by the
/// worker from these rows, the columns and the indexes (see `printing`), and the server prints
/// only the others. Servers from PostgreSQL 17 on, whose printing of these kinds this has not
/// been checked against, print every definition ([`CONSTRAINTS_SERVER_PRINTED`]).
macro_rules! constraints {
    ($printed:literal) => {
        concat!(
            r#"
SELECT con.oid,
       con.conrelid         AS table_oid,
       con.conname::text    AS name,
       con.contype::text    AS contype,
       coalesce(con.conkey, '{}')::int2[] AS keys,
       CASE WHEN NOT ("#,
            $printed,
            r#") THEN pg_get_constraintdef(con.oid) END AS definition,
       con.conindid         AS index_oid,
       con.confrelid        AS ref_oid,
       fn.nspname::text     AS ref_schema,
       fc.relname::text     AS ref_table,
       coalesce(con.confkey, '{}')::int2[] AS ref_keys,
       CASE WHEN con.contype = 'f' AND NOT (con.confrelid = ANY($1)) THEN
           ARRAY(SELECT a.attname::text
                 FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                 ORDER BY k.ord)
       END                  AS ref_columns,
       -- Whether the referenced table's name needs its schema, as the server prints it.
       CASE WHEN con.contype = 'f' THEN pg_table_is_visible(con.confrelid) END AS ref_visible,
       CASE WHEN con.contype = 'f' THEN con.confmatchtype::text END AS match_type,
       CASE WHEN con.contype = 'f' THEN con.confupdtype::text END AS on_update,
       CASE WHEN con.contype = 'f' THEN con.confdeltype::text END AS on_delete,
       con.condeferrable    AS deferrable,
       con.condeferred      AS initially_deferred,
       con.convalidated     AS validated
FROM pg_constraint con
LEFT JOIN pg_class fc  ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.conrelid = ANY($1)
  AND con.contype IN ('p', 'u', 'f', 'c', 'x')
ORDER BY con.conrelid, con.conname
"#
        )
    };
}
pub const CONSTRAINTS: &str = constraints!(
    "con.contype IN ('p', 'u') OR (con.contype = 'f' AND con.confdeltype NOT IN ('n', 'd'))"
);
pub const CONSTRAINTS_SERVER_PRINTED: &str = constraints!("false");

#[derive(FromRow)]
pub struct ConstraintRow {
    pub oid: Oid,
    pub table_oid: Oid,
    pub name: String,
    pub contype: String,
    pub keys: Vec<i16>,
    /// The server's text; `None` for a constraint whose text the worker prints.
    pub definition: Option<String>,
    pub index_oid: Oid,
    pub ref_oid: Oid,
    pub ref_schema: Option<String>,
    pub ref_table: Option<String>,
    pub ref_keys: Vec<i16>,
    pub ref_columns: Option<Vec<String>>,
    pub ref_visible: Option<bool>,
    pub match_type: Option<String>,
    pub on_update: Option<String>,
    pub on_delete: Option<String>,
    pub deferrable: bool,
    pub initially_deferred: bool,
    pub validated: bool,
}

/// `pg_get_constraintdef` for the constraints `$1`.
pub const CONSTRAINT_DEFINITIONS: &str =
    "SELECT x.oid, pg_get_constraintdef(x.oid) FROM unnest($1::oid[]) AS x(oid)";

/// The indexes of the relations `$1`. Key and INCLUDE columns come as attribute numbers
/// (resolved from the batch's columns); `pg_get_indexdef(oid, n)`, costly per call, runs only for expression keys.
/// The definition is not read here: `pg_get_indexdef` costs more than every other catalog query
/// together on a big catalog, so a plain index's (`plain`: no expressions, predicate, storage
/// options or NULLS NOT DISTINCT) is built from these rows the way PostgreSQL prints it, and
/// only the others ask the server ([`INDEX_DEFINITIONS`]). Servers before PostgreSQL 15 have
/// no `indnullsnotdistinct` ([`INDEXES_BEFORE_15`]).
macro_rules! indexes {
    ($nulls_not_distinct:literal) => {
        concat!(
            r#"
SELECT i.indexrelid        AS oid,
       i.indrelid          AS table_oid,
       ic.relname::text    AS name,
       (i.indkey::int2[])[:] AS keys,  -- a slice starts at 1, the int2vector at 0
       i.indnkeyatts::int4 AS key_count,
       CASE WHEN 0 = ANY(i.indkey::int2[]) THEN
           ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
                 FROM generate_series(1, i.indnkeyatts::int4) AS k ORDER BY k)
       END                 AS expressions,
       i.indisunique       AS is_unique,
       i.indisprimary      AS is_primary,
       am.amname::text     AS method,
       pg_get_expr(i.indpred, i.indrelid) AS predicate,
       ic.relkind = 'i' AND i.indexprs IS NULL AND i.indpred IS NULL AND ic.reloptions IS NULL
           AND NOT "#,
            $nulls_not_distinct,
            r#"    AS plain,
       "#,
            $nulls_not_distinct,
            r#" AS nulls_not_distinct,
       (i.indclass::oid[])[:]      AS opclasses,
       (i.indcollation::oid[])[:]  AS collations,
       (i.indoption::int2[])[:]    AS options,
       -- The columns the expressions and the predicate read: the index's dependencies.
       CASE WHEN i.indexprs IS NOT NULL OR i.indpred IS NOT NULL THEN
           ARRAY(SELECT d.refobjsubid::int2 FROM pg_depend d
                 WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                   AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid
                   AND d.refobjsubid > 0
                 ORDER BY 1)
       END                         AS expression_keys
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am    ON am.oid = ic.relam
WHERE i.indrelid = ANY($1)
ORDER BY i.indrelid, ic.relname
"#
        )
    };
}
pub const INDEXES: &str = indexes!("i.indnullsnotdistinct");
pub const INDEXES_BEFORE_15: &str = indexes!("false");

#[derive(FromRow)]
pub struct IndexRow {
    pub oid: Oid,
    pub table_oid: Oid,
    pub name: String,
    pub keys: Vec<i16>,
    pub key_count: i32,
    pub expressions: Option<Vec<String>>,
    pub is_unique: bool,
    pub is_primary: bool,
    pub method: String,
    pub predicate: Option<String>,
    pub plain: bool,
    pub nulls_not_distinct: bool,
    pub opclasses: Vec<Oid>,
    pub collations: Vec<Oid>,
    pub options: Vec<i16>,
    pub expression_keys: Option<Vec<i16>>,
}

/// `pg_get_indexdef` for the indexes `$1`.
pub const INDEX_DEFINITIONS: &str =
    "SELECT x.oid, pg_get_indexdef(x.oid) FROM unnest($1::oid[]) AS x(oid)";

/// What printing identifiers and operator classes the way the server does takes: the keywords
/// that must be quoted (all but the unreserved ones), whether every identifier is quoted, and
/// each default operator class with its input type.
pub const PRINTING: &str = r#"
SELECT ARRAY(SELECT word FROM pg_get_keywords() WHERE catcode <> 'U')  AS keywords,
       current_setting('quote_all_identifiers')::bool                   AS quote_all,
       ARRAY(SELECT oid FROM pg_opclass WHERE opcdefault ORDER BY oid)        AS opclasses,
       ARRAY(SELECT opcintype FROM pg_opclass WHERE opcdefault ORDER BY oid)  AS opclass_types
"#;

#[derive(FromRow)]
pub struct PrintingRow {
    pub keywords: Vec<String>,
    pub quote_all: bool,
    pub opclasses: Vec<Oid>,
    pub opclass_types: Vec<Oid>,
}

// Declared after the macros above, which its queries use.
mod access;
mod objects;
mod other_objects;
pub use access::*;
pub use objects::*;
pub use other_objects::*;
