//! The queries of the rest of a catalog: types, sequences, functions, triggers, view lineage,
//! and the probe of the source's catalog state.

use sqlx::FromRow;
use sqlx::postgres::types::Oid;

/// Enums, domains, ranges and stand-alone composite types (not the row types of tables). A
/// range's options are those `CREATE TYPE ... AS RANGE` takes but the subtype and the
/// multirange's name (which servers before 14 do not have), left out where they are the
/// defaults. Extensions' types are read too, named by their extension.
pub const TYPES: &str = concat!(
    r#"
SELECT t.typnamespace                    AS schema_oid,
       t.typname::text                   AS name,
       t.typtype::text                   AS typtype,
       pg_get_userbyid(t.typowner)::text AS owner,
       d.description                     AS comment,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) AS labels,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod)
            WHEN t.typtype = 'r' THEN format_type(rng.rngsubtype, NULL) END AS base_type,
       CASE WHEN t.typtype = 'r' THEN nullif(concat_ws(', ',
           CASE WHEN NOT opc.opcdefault THEN
               'SUBTYPE_OPCLASS = ' || quote_ident(opcn.nspname) || '.' || quote_ident(opc.opcname) END,
           CASE WHEN rng.rngcollation <> 0 AND rng.rngcollation <> st.typcollation THEN
               'COLLATION = ' || (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
                                  FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
                                  WHERE co.oid = rng.rngcollation) END,
           CASE WHEN rng.rngcanonical <> 0 THEN 'CANONICAL = ' || rng.rngcanonical::regproc END,
           CASE WHEN rng.rngsubdiff <> 0 THEN 'SUBTYPE_DIFF = ' || rng.rngsubdiff::regproc END), '')
       END                               AS range_options,
       t.typnotnull                      AS not_null,
       t.typdefault                      AS default_expr,
       ARRAY(SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k
             WHERE k.contypid = t.oid AND k.contype = 'c' ORDER BY k.conname) AS checks,
       ARRAY(SELECT a.attname::text FROM pg_attribute a
             WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum)          AS attribute_names,
       ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
             WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum)          AS attribute_types,
       "#,
    owning_extension!("pg_type", "t.oid"),
    r#" AS extension
FROM pg_type t
LEFT JOIN pg_class c ON c.oid = t.typrelid
LEFT JOIN pg_range rng ON rng.rngtypid = t.oid
LEFT JOIN pg_type st ON st.oid = rng.rngsubtype
LEFT JOIN pg_opclass opc ON opc.oid = rng.rngsubopc
LEFT JOIN pg_namespace opcn ON opcn.oid = opc.opcnamespace
LEFT JOIN pg_description d
       ON d.objoid = t.oid AND d.classoid = 'pg_type'::regclass AND d.objsubid = 0
WHERE t.typnamespace = ANY($1)
  AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
ORDER BY t.typnamespace, t.typname
"#
);

#[derive(FromRow)]
pub struct TypeRow {
    pub schema_oid: Oid,
    pub name: String,
    pub typtype: String,
    pub owner: Option<String>,
    pub comment: Option<String>,
    pub labels: Vec<String>,
    pub base_type: Option<String>,
    pub range_options: Option<String>,
    pub not_null: bool,
    pub default_expr: Option<String>,
    pub checks: Vec<String>,
    pub attribute_names: Vec<String>,
    pub attribute_types: Vec<String>,
    pub extension: Option<String>,
}

/// Sequences with their parameters and the column that owns them, if any, extensions' ones
/// named by their extension.
pub const SEQUENCES: &str = concat!(
    r#"
SELECT c.relnamespace                     AS schema_oid,
       c.relname::text                    AS name,
       pg_get_userbyid(c.relowner)::text  AS owner,
       format_type(s.seqtypid, NULL)      AS data_type,
       s.seqstart                         AS start_value,
       s.seqincrement                     AS increment,
       s.seqmin                           AS min_value,
       s.seqmax                           AS max_value,
       s.seqcache                         AS cache,
       s.seqcycle                         AS cycle,
       on_.nspname::text                  AS owned_by_schema,
       oc.relname::text                   AS owned_by_table,
       oa.attname::text                   AS owned_by_column,
       "#,
    owning_extension!("pg_class", "c.oid"),
    r#" AS extension
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
LEFT JOIN pg_depend dep
       ON dep.classid = 'pg_class'::regclass AND dep.objid = c.oid
      AND dep.refclassid = 'pg_class'::regclass AND dep.refobjsubid > 0 AND dep.deptype IN ('a', 'i')
LEFT JOIN pg_class oc      ON oc.oid = dep.refobjid
LEFT JOIN pg_namespace on_ ON on_.oid = oc.relnamespace
LEFT JOIN pg_attribute oa  ON oa.attrelid = dep.refobjid AND oa.attnum = dep.refobjsubid
WHERE c.relnamespace = ANY($1)
ORDER BY c.relnamespace, c.relname
"#
);

#[derive(FromRow)]
pub struct SequenceRow {
    pub schema_oid: Oid,
    pub name: String,
    pub owner: Option<String>,
    pub data_type: String,
    pub start_value: i64,
    pub increment: i64,
    pub min_value: i64,
    pub max_value: i64,
    pub cache: i64,
    pub cycle: bool,
    pub owned_by_schema: Option<String>,
    pub owned_by_table: Option<String>,
    pub owned_by_column: Option<String>,
    pub extension: Option<String>,
}

/// Functions, procedures, aggregates and window functions, extensions' ones named by their
/// extension. A SQL-standard body (`BEGIN
/// ATOMIC` or `RETURN`, PostgreSQL 14 on: `prosqlbody`) records its dependencies in `pg_depend`
/// as a view's rule does: `uses` lists the relations it reads, each with its columns or NULL
/// for the whole relation (see [`DEPENDENCIES`]). Servers before 14 have no such bodies
/// ([`FUNCTIONS_BEFORE_14`]).
macro_rules! functions {
    ($uses:literal) => {
        concat!(
            r#"
SELECT p.pronamespace                              AS schema_oid,
       p.proname::text                             AS name,
       pg_get_userbyid(p.proowner)::text           AS owner,
       pg_get_function_identity_arguments(p.oid)   AS arguments,
       pg_get_function_result(p.oid)               AS result,
       l.lanname::text                             AS language,
       CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                      WHEN 'w' THEN 'window' ELSE 'function' END AS kind,
       d.description                               AS comment,
       CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) ELSE (
           -- pg_get_functiondef prints no aggregate: its CREATE AGGREGATE is built here
           -- (moving-aggregate options are not).
           SELECT format('CREATE AGGREGATE %I.%I(%s) (%s)', n.nspname, p.proname,
                         pg_get_function_arguments(p.oid),
                         concat_ws(', ',
                             'SFUNC = ' || a.aggtransfn::regproc,
                             'STYPE = ' || format_type(a.aggtranstype, NULL),
                             CASE WHEN a.aggtransspace <> 0 THEN 'SSPACE = ' || a.aggtransspace END,
                             CASE WHEN a.aggfinalfn <> 0 THEN 'FINALFUNC = ' || a.aggfinalfn::regproc END,
                             CASE WHEN a.aggfinalextra THEN 'FINALFUNC_EXTRA' END,
                             CASE WHEN a.aggcombinefn <> 0 THEN 'COMBINEFUNC = ' || a.aggcombinefn::regproc END,
                             CASE WHEN a.aggserialfn <> 0 THEN 'SERIALFUNC = ' || a.aggserialfn::regproc END,
                             CASE WHEN a.aggdeserialfn <> 0 THEN 'DESERIALFUNC = ' || a.aggdeserialfn::regproc END,
                             CASE WHEN a.agginitval IS NOT NULL THEN 'INITCOND = ' || quote_literal(a.agginitval) END,
                             CASE WHEN a.aggsortop <> 0 THEN 'SORTOP = OPERATOR(' || a.aggsortop::regoper::text || ')' END,
                             CASE WHEN a.aggkind = 'h' THEN 'HYPOTHETICAL' END,
                             CASE p.proparallel WHEN 's' THEN 'PARALLEL = SAFE'
                                                WHEN 'r' THEN 'PARALLEL = RESTRICTED' END))
           FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
       END                                         AS definition,
       "#,
            $uses,
            r#"                                   AS uses,
       "#,
            owning_extension!("pg_proc", "p.oid"),
            r#" AS extension
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_language l ON l.oid = p.prolang
LEFT JOIN pg_description d
       ON d.objoid = p.oid AND d.classoid = 'pg_proc'::regclass AND d.objsubid = 0
WHERE p.pronamespace = ANY($1)
ORDER BY p.pronamespace, p.proname, 4
"#
        )
    };
}
pub const FUNCTIONS: &str = functions!(
    "CASE WHEN p.prosqlbody IS NOT NULL THEN (
           SELECT jsonb_agg(jsonb_build_object('schema', rn.nspname, 'name', rc.relname,
                                               'columns', u.columns)
                            ORDER BY rn.nspname, rc.relname)
           FROM (SELECT d.refobjid,
                        CASE WHEN bool_or(d.refobjsubid = 0)
                                  OR strpos(p.prosqlbody::text, ':varattno 0 ') > 0 THEN NULL
                             ELSE array_agg(a.attname::text ORDER BY a.attnum) END AS columns
                 FROM pg_depend d
                 LEFT JOIN pg_attribute a
                        ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                       AND d.refobjsubid > 0
                 WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                   AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'n'
                 GROUP BY d.refobjid) u
           JOIN pg_class rc     ON rc.oid = u.refobjid
           JOIN pg_namespace rn ON rn.oid = rc.relnamespace)
       END"
);
pub const FUNCTIONS_BEFORE_14: &str = functions!("NULL::jsonb");

#[derive(FromRow)]
pub struct FunctionRow {
    pub schema_oid: Oid,
    pub name: String,
    pub owner: Option<String>,
    pub arguments: String,
    pub result: Option<String>,
    pub language: String,
    pub kind: String,
    pub comment: Option<String>,
    pub definition: Option<String>,
    pub uses: Option<sqlx::types::Json<Vec<crate::catalog::RelationUse>>>,
    pub extension: Option<String>,
}

/// The extensions installed in the included schemas (plpgsql, in `pg_catalog`, never is),
/// each with the objects it owns as `pg_identify_object` names them.
pub const EXTENSIONS: &str = r#"
SELECT x.extnamespace AS schema_oid,
       x.extname::text AS name,
       x.extversion    AS version,
       coalesce((SELECT json_agg(json_build_object('type', i.type, 'schema', i.schema,
                                                   'identity', i.identity)
                                 ORDER BY i.type, i.identity)
                 FROM pg_depend d
                 CROSS JOIN LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) i
                 WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = x.oid
                   AND d.deptype = 'e'), '[]') AS members
FROM pg_extension x
WHERE x.extnamespace = ANY($1)
ORDER BY x.extnamespace, x.extname
"#;

#[derive(FromRow)]
pub struct ExtensionRow {
    pub schema_oid: Oid,
    pub name: String,
    pub version: Option<String>,
    pub members: sqlx::types::Json<Vec<crate::catalog::ExtensionMember>>,
}

/// User triggers (not the internal ones behind foreign keys), decoded from `tgtype`'s bits:
/// ROW 1, BEFORE 2, INSERT 4, DELETE 8, UPDATE 16, TRUNCATE 32, INSTEAD 64.
pub const TRIGGERS: &str = r#"
SELECT t.tgrelid AS table_oid,
       t.tgname::text AS name,
       CASE WHEN t.tgtype & 2 <> 0 THEN 'BEFORE' WHEN t.tgtype & 64 <> 0 THEN 'INSTEAD OF' ELSE 'AFTER' END AS timing,
       array_remove(ARRAY[
           CASE WHEN t.tgtype & 4 <> 0 THEN 'INSERT' END,
           CASE WHEN t.tgtype & 16 <> 0 THEN 'UPDATE' END,
           CASE WHEN t.tgtype & 8 <> 0 THEN 'DELETE' END,
           CASE WHEN t.tgtype & 32 <> 0 THEN 'TRUNCATE' END], NULL) AS events,
       CASE WHEN t.tgtype & 1 <> 0 THEN 'ROW' ELSE 'STATEMENT' END AS for_each,
       format('%I.%I', pn.nspname, p.proname) AS function,
       t.tgenabled <> 'D' AS enabled,
       pg_get_triggerdef(t.oid, true) AS definition,
       -- The columns of UPDATE OF and of the WHEN condition: the trigger's dependencies.
       CASE WHEN t.tgqual IS NOT NULL OR cardinality(t.tgattr::int2[]) > 0 THEN
           ARRAY(SELECT a.attname::text
                 FROM pg_depend d
                 JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                 WHERE d.classid = 'pg_trigger'::regclass AND d.objid = t.oid
                   AND d.refclassid = 'pg_class'::regclass AND d.refobjid = t.tgrelid
                   AND d.refobjsubid > 0
                 ORDER BY a.attnum)
       END AS columns
FROM pg_trigger t
JOIN pg_proc p       ON p.oid = t.tgfoid
JOIN pg_namespace pn ON pn.oid = p.pronamespace
WHERE t.tgrelid = ANY($1)
  AND NOT t.tgisinternal
ORDER BY t.tgrelid, t.tgname
"#;

#[derive(FromRow)]
pub struct TriggerRow {
    pub table_oid: Oid,
    pub name: String,
    pub timing: String,
    pub events: Vec<String>,
    pub for_each: String,
    pub function: String,
    pub enabled: bool,
    pub definition: String,
    pub columns: Option<Vec<String>>,
}

/// What each view and materialized view reads, from its rewrite rules' dependencies: each
/// relation with the columns read (`pg_depend` records a rule's columns, with `refobjsubid`
/// their numbers), or NULL for the whole relation. A relation whose only reference is a whole
/// row or none (`count(*)`) is recorded without columns (`refobjsubid` 0); one read both by
/// whole row and by column is recorded by its columns alone, so a rule holding any whole-row
/// reference (a `Var` with `varattno` 0 in its tree) counts as reading every relation whole.
pub const DEPENDENCIES: &str = r#"
SELECT d.view_oid,
       vn.nspname::text           AS view_schema,
       v.relname::text            AS view_name,
       rn.nspname::text           AS ref_schema,
       rc.relname::text           AS ref_name,
       CASE WHEN bool_or(d.attnum = 0) THEN NULL
            ELSE array_agg(a.attname::text ORDER BY a.attnum) END AS ref_columns
FROM (SELECT DISTINCT r.ev_class AS view_oid, dep.refobjid AS ref_oid,
             CASE WHEN strpos(r.ev_action::text, ':varattno 0 ') > 0 THEN 0
                  ELSE dep.refobjsubid END AS attnum
      FROM pg_rewrite r
      JOIN pg_class v    ON v.oid = r.ev_class
      JOIN pg_depend dep ON dep.classid = 'pg_rewrite'::regclass AND dep.objid = r.oid
                        AND dep.refclassid = 'pg_class'::regclass AND dep.deptype = 'n'
      WHERE v.relnamespace = ANY($1)
        AND v.relkind IN ('v', 'm')
        AND dep.refobjid <> r.ev_class) d
JOIN pg_class v       ON v.oid = d.view_oid
JOIN pg_namespace vn  ON vn.oid = v.relnamespace
JOIN pg_class rc      ON rc.oid = d.ref_oid
JOIN pg_namespace rn  ON rn.oid = rc.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = d.ref_oid AND a.attnum = d.attnum AND d.attnum > 0
GROUP BY d.view_oid, vn.nspname, v.relname, rn.nspname, rc.relname
ORDER BY 1, 4, 5
"#;

#[derive(FromRow)]
pub struct DependencyRow {
    pub view_oid: Oid,
    pub view_schema: String,
    pub view_name: String,
    pub ref_schema: String,
    pub ref_name: String,
    pub ref_columns: Option<Vec<String>>,
}

/// One catalog's part of [`PROBE`]: its row count, and the sum and maximum of its rows'
/// transaction ids. The rows are grouped by transaction id first, so that each distinct id is
/// converted once (there is no cast from `xid` to a number but through text): a catalog's rows
/// come from few transactions.
macro_rules! xmin_digest {
    ($catalog:literal) => {
        concat!(
            "(SELECT sum(n) || ':' || sum(n * x::text::int8) || ':' || max(x::text::int8) ",
            "FROM (SELECT xmin AS x, count(*) AS n FROM ",
            $catalog,
            " GROUP BY xmin) g),\n"
        )
    };
}

/// A digest of the source's catalog state, one cheap query: row counts and transaction ids of
/// every catalog a snapshot is built from (any DDL writes new row versions there), plus the
/// statistics that VACUUM and ANALYZE update in place, and the roles the snapshot shows
/// (`$1`, by name: their attributes, and the memberships they are in). Roles of the server
/// that the catalog does not name (those of other databases, short-lived ones) leave the probe
/// as it is: a role that gains a privilege, an ownership or a membership in a named one shows
/// through the catalogs that record it. Equal probes mean an unchanged catalog; a different
/// probe only means "read it all again".
///
/// The access catalogs (policies, default privileges, memberships) and those of the other
/// object kinds (collations to foreign servers) are digested through
/// `query_to_xml`, which runs its query only when the user may read them all: a table named
/// in the probe itself would fail the whole probe for a user whose access was revoked.
pub const PROBE: &str = concat!(
    "SELECT md5(concat_ws('|',\n",
    xmin_digest!("pg_class"),
    xmin_digest!("pg_attribute"),
    xmin_digest!("pg_attrdef"),
    xmin_digest!("pg_constraint"),
    xmin_digest!("pg_index"),
    xmin_digest!("pg_description"),
    xmin_digest!("pg_namespace"),
    xmin_digest!("pg_type"),
    xmin_digest!("pg_enum"),
    xmin_digest!("pg_proc"),
    xmin_digest!("pg_trigger"),
    xmin_digest!("pg_sequence"),
    xmin_digest!("pg_inherits"),
    xmin_digest!("pg_rewrite"),
    xmin_digest!("pg_depend"),
    "(SELECT sum(reltuples)::text || ':' || sum(relpages)::text FROM pg_class),
    (SELECT string_agg(r::text, ',' ORDER BY oid) FROM pg_roles r WHERE r.rolname = ANY($1)),
    CASE WHEN has_table_privilege('pg_catalog.pg_policy', 'SELECT')
          AND has_table_privilege('pg_catalog.pg_default_acl', 'SELECT')
          AND has_table_privilege('pg_catalog.pg_auth_members', 'SELECT')
    THEN md5(query_to_xml(format('SELECT
        (SELECT count(*) || '':'' || sum(xmin::text::int8) FROM pg_policy) AS policies,
        (SELECT count(*) || '':'' || sum(xmin::text::int8) FROM pg_default_acl) AS defaults,
        (SELECT count(*) || '':'' || sum(xmin::text::int8) FROM pg_auth_members m
         WHERE pg_get_userbyid(m.roleid) = ANY(%L::text[])
            OR pg_get_userbyid(m.member) = ANY(%L::text[])) AS members', $1, $1),
        false, true, '')::text) END,
    CASE WHEN has_table_privilege('pg_catalog.pg_collation', 'SELECT')
          AND has_table_privilege('pg_catalog.pg_statistic_ext', 'SELECT')
          AND has_table_privilege('pg_catalog.pg_ts_config', 'SELECT')
          AND has_table_privilege('pg_catalog.pg_ts_config_map', 'SELECT')
          AND has_table_privilege('pg_catalog.pg_extension', 'SELECT')
          AND has_table_privilege('pg_catalog.pg_publication', 'SELECT')
          AND has_table_privilege('pg_catalog.pg_publication_rel', 'SELECT')
          AND has_table_privilege('pg_catalog.pg_event_trigger', 'SELECT')
          AND has_table_privilege('pg_catalog.pg_foreign_data_wrapper', 'SELECT')
          AND has_table_privilege('pg_catalog.pg_foreign_server', 'SELECT')
    THEN md5(query_to_xml('SELECT
        (SELECT count(*) || '':'' || sum(xmin::text::int8) FROM pg_collation) AS collations,
        (SELECT count(*) || '':'' || sum(xmin::text::int8) FROM pg_statistic_ext) AS statistics,
        (SELECT count(*) || '':'' || sum(xmin::text::int8) FROM pg_ts_config) AS configurations,
        (SELECT count(*) || '':'' || sum(xmin::text::int8) FROM pg_ts_config_map) AS mappings,
        (SELECT count(*) || '':'' || sum(xmin::text::int8) FROM pg_extension) AS extensions,
        (SELECT count(*) || '':'' || sum(xmin::text::int8) FROM pg_publication) AS publications,
        (SELECT count(*) || '':'' || sum(xmin::text::int8) FROM pg_publication_rel) AS published,
        (SELECT count(*) || '':'' || sum(xmin::text::int8) FROM pg_event_trigger) AS events,
        (SELECT count(*) || '':'' || sum(xmin::text::int8) FROM pg_foreign_data_wrapper) AS fdws,
        (SELECT count(*) || '':'' || sum(xmin::text::int8) FROM pg_foreign_server) AS servers',
        false, true, '')::text) END,
    -- Schemas published whole (PostgreSQL 15 and later).
    CASE WHEN to_regclass('pg_catalog.pg_publication_namespace') IS NULL THEN NULL
         WHEN has_table_privilege('pg_catalog.pg_publication_namespace', 'SELECT')
    THEN md5(query_to_xml('SELECT count(*) || '':'' || sum(xmin::text::int8)
                           FROM pg_catalog.pg_publication_namespace', false, true, '')::text) END,
    current_setting('server_version_num')))"
);
