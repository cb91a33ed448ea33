//! The queries of the object kinds beyond relations, types, sequences and functions: each
//! row is one object as the JSON of its model variant (`catalog::objects`), tagged with its
//! kind, so that one statement reads every kind of its scope. JSON has no order: the rows are
//! sorted where they are assembled.

use sqlx::FromRow;
use sqlx::postgres::types::Oid;
use sqlx::types::Json;

use crate::catalog::{DatabaseObject, SchemaObject};

/// Rewrite rules (views' `_RETURN` rules are their definitions), collations, extended
/// statistics and text search configurations of the included schemas `$1`. Extensions'
/// members are read, named by their extension: a rule by its relation's.
pub const SCHEMA_OBJECTS: &str = concat!(
    r#"
SELECT c.relnamespace AS schema_oid,
       json_build_object(
           'kind', 'rule', 'name', r.rulename::text, 'table', c.relname::text,
           'event', CASE r.ev_type WHEN '1' THEN 'SELECT' WHEN '2' THEN 'UPDATE'
                                   WHEN '3' THEN 'INSERT' ELSE 'DELETE' END,
           'instead', r.is_instead,
           'enabled', CASE r.ev_enabled WHEN 'O' THEN 'origin' WHEN 'A' THEN 'always'
                                        WHEN 'R' THEN 'replica' ELSE 'disabled' END,
           'definition', pg_get_ruledef(r.oid),
           'extension', "#,
    owning_extension!("pg_class", "c.oid"),
    r#") AS body
FROM pg_rewrite r
JOIN pg_class c ON c.oid = r.ev_class
WHERE c.relnamespace = ANY($1)
  AND c.relkind IN "#,
    relkinds!(),
    r#"
  AND NOT (r.rulename = '_RETURN' AND c.relkind IN ('v', 'm'))
UNION ALL
SELECT co.collnamespace,
       json_build_object(
           'kind', 'collation', 'name', co.collname::text,
           'owner', pg_get_userbyid(co.collowner)::text,
           'provider', CASE co.collprovider WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu'
                                            ELSE 'default' END,
           'lc_collate', co.collcollate, 'lc_ctype', co.collctype,
           -- colliculocale until PostgreSQL 16, colllocale since 17.
           'locale', coalesce(to_jsonb(co) ->> 'colllocale', to_jsonb(co) ->> 'colliculocale'),
           'deterministic', co.collisdeterministic,
           'encoding', CASE WHEN co.collencoding >= 0
                            THEN pg_encoding_to_char(co.collencoding)::text END,
           'extension', "#,
    owning_extension!("pg_collation", "co.oid"),
    r#")
FROM pg_collation co
WHERE co.collnamespace = ANY($1)
UNION ALL
SELECT s.stxnamespace,
       json_build_object(
           'kind', 'statistics', 'name', s.stxname::text,
           'owner', pg_get_userbyid(s.stxowner)::text,
           'table', format('%I.%I', tn.nspname, t.relname),
           'kinds', ARRAY(SELECT CASE k WHEN 'd' THEN 'ndistinct' WHEN 'f' THEN 'dependencies'
                                        WHEN 'm' THEN 'mcv' ELSE 'expressions' END
                          FROM unnest(s.stxkind) k),
           'columns', ARRAY(SELECT a.attname::text
                            FROM unnest(s.stxkeys::int2[]) k(attnum)
                            JOIN pg_attribute a ON a.attrelid = s.stxrelid AND a.attnum = k.attnum
                            ORDER BY k.attnum),
           'definition', pg_get_statisticsobjdef(s.oid),
           'extension', "#,
    owning_extension!("pg_statistic_ext", "s.oid"),
    r#")
FROM pg_statistic_ext s
JOIN pg_class t ON t.oid = s.stxrelid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE s.stxnamespace = ANY($1)
UNION ALL
SELECT cfg.cfgnamespace,
       json_build_object(
           'kind', 'text_search_configuration', 'name', cfg.cfgname::text,
           'owner', pg_get_userbyid(cfg.cfgowner)::text,
           'parser', format('%I.%I', pn.nspname, p.prsname),
           'mappings', coalesce((
               SELECT json_agg(json_build_object('token', m.alias, 'dictionaries', m.dictionaries)
                               ORDER BY m.tokid)
               FROM (SELECT tt.tokid, tt.alias,
                            array_agg(format('%I.%I', dn.nspname, d.dictname)
                                      ORDER BY cm.mapseqno) AS dictionaries
                     FROM pg_ts_config_map cm
                     JOIN ts_token_type(cfg.cfgparser) tt ON tt.tokid = cm.maptokentype
                     JOIN pg_ts_dict d ON d.oid = cm.mapdict
                     JOIN pg_namespace dn ON dn.oid = d.dictnamespace
                     WHERE cm.mapcfg = cfg.oid
                     GROUP BY tt.tokid, tt.alias) m), '[]'),
           'extension', "#,
    owning_extension!("pg_ts_config", "cfg.oid"),
    r#")
FROM pg_ts_config cfg
JOIN pg_ts_parser p ON p.oid = cfg.cfgparser
JOIN pg_namespace pn ON pn.oid = p.prsnamespace
WHERE cfg.cfgnamespace = ANY($1)
"#
);

#[derive(FromRow)]
pub struct SchemaObjectRow {
    pub schema_oid: Oid,
    pub body: Json<SchemaObject>,
}

/// A publication's tables one by one: with column lists and row filters since PostgreSQL 15.
macro_rules! published_tables {
    (columns_and_filters) => {
        r#"'columns', CASE WHEN pr.prattrs IS NOT NULL THEN ARRAY(
                          SELECT a.attname::text FROM unnest(pr.prattrs::int2[]) k(attnum)
                          JOIN pg_attribute a ON a.attrelid = pr.prrelid AND a.attnum = k.attnum
                          ORDER BY k.attnum) END,
           'row_filter', pg_get_expr(pr.prqual, pr.prrelid)"#
    };
    (whole) => {
        "'columns', NULL, 'row_filter', NULL"
    };
}

/// A foreign data wrapper `w` as JSON.
macro_rules! wrapper {
    () => {
        r#"jsonb_build_object(
           'name', w.fdwname::text,
           'owner', pg_get_userbyid(w.fdwowner)::text,
           'handler', (SELECT format('%I.%I', hn.nspname, h.proname)
                       FROM pg_proc h JOIN pg_namespace hn ON hn.oid = h.pronamespace
                       WHERE h.oid = w.fdwhandler),
           'validator', (SELECT format('%I.%I', vn.nspname, v.proname)
                         FROM pg_proc v JOIN pg_namespace vn ON vn.oid = v.pronamespace
                         WHERE v.oid = w.fdwvalidator),
           'options', coalesce(w.fdwoptions, '{}'))"#
    };
}

/// Publications, event triggers, foreign data wrappers and foreign servers, extensions'
/// members left out. `$published` gives a publication's tables, `$schemas` its schemas.
macro_rules! database_objects {
    ($published:tt, $schemas:expr) => {
        concat!(
            r#"
SELECT json_build_object(
           'kind', 'publication', 'name', p.pubname::text,
           'owner', pg_get_userbyid(p.pubowner)::text,
           'all_tables', p.puballtables,
           'operations', array_remove(ARRAY[CASE WHEN p.pubinsert THEN 'insert' END,
                                            CASE WHEN p.pubupdate THEN 'update' END,
                                            CASE WHEN p.pubdelete THEN 'delete' END,
                                            CASE WHEN p.pubtruncate THEN 'truncate' END], NULL),
           'via_root', p.pubviaroot,
           'tables', coalesce((
               SELECT json_agg(json_build_object(
                          'schema', n.nspname::text, 'table', c.relname::text, "#,
            published_tables!($published),
            r#")
                      ORDER BY n.nspname, c.relname)
               FROM pg_publication_rel pr
               JOIN pg_class c ON c.oid = pr.prrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE pr.prpubid = p.oid), '[]'),
           'schemas', "#,
            $schemas,
            r#") AS body
FROM pg_publication p
UNION ALL
SELECT json_build_object(
           'kind', 'event_trigger', 'name', et.evtname::text,
           'owner', pg_get_userbyid(et.evtowner)::text,
           'event', et.evtevent::text,
           'function', format('%I.%I', fn.nspname, f.proname),
           'enabled', CASE et.evtenabled WHEN 'O' THEN 'origin' WHEN 'A' THEN 'always'
                                        WHEN 'R' THEN 'replica' ELSE 'disabled' END,
           'tags', coalesce(et.evttags, '{}'))
FROM pg_event_trigger et
JOIN pg_proc f ON f.oid = et.evtfoid
JOIN pg_namespace fn ON fn.oid = f.pronamespace
WHERE "#,
            not_extension_member!("pg_event_trigger", "et.oid"),
            r#"
UNION ALL
SELECT (jsonb_build_object('kind', 'foreign_data_wrapper') || "#,
            wrapper!(),
            r#")::json
FROM pg_foreign_data_wrapper w
WHERE "#,
            not_extension_member!("pg_foreign_data_wrapper", "w.oid"),
            r#"
UNION ALL
SELECT json_build_object(
           'kind', 'foreign_server', 'name', s.srvname::text,
           'owner', pg_get_userbyid(s.srvowner)::text,
           'wrapper', "#,
            wrapper!(),
            r#",
           'server_type', s.srvtype, 'version', s.srvversion,
           'options', coalesce(s.srvoptions, '{}'))
FROM pg_foreign_server s
JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
WHERE "#,
            not_extension_member!("pg_foreign_server", "s.oid"),
            "\n"
        )
    };
}

/// [`DATABASE_OBJECTS`] for PostgreSQL 15 and later.
pub const DATABASE_OBJECTS: &str = database_objects!(
    columns_and_filters,
    r#"ARRAY(SELECT n.nspname::text FROM pg_publication_namespace pn
                    JOIN pg_namespace n ON n.oid = pn.pnnspid
                    WHERE pn.pnpubid = p.oid ORDER BY 1)"#
);

/// The database objects of a server before PostgreSQL 15: no column lists, row filters or
/// schemas in publications.
pub const DATABASE_OBJECTS_BEFORE_15: &str = database_objects!(whole, "'{}'::text[]");

#[derive(FromRow)]
pub struct DatabaseObjectRow {
    pub body: Json<DatabaseObject>,
}
