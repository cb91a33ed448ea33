//! Counts by kind: how many objects of each kind the API serves for a catalog, and how many
//! the source's pg_catalog holds, extensions' members left out as `pg_dump` leaves them out.

use std::collections::BTreeMap;

use sqlx::PgPool;

use super::TestApp;

/// The lists counted, as `/catalogs/{id}/{list}` serves them.
pub const COUNTED: [&str; 17] = [
    "schemas",
    "tables",
    "columns",
    "types",
    "sequences",
    "functions",
    "extensions",
    "rules",
    "collations",
    "statistics",
    "text_search_configurations",
    "privileges",
    "policies",
    "default_privileges",
    "publications",
    "event_triggers",
    "foreign_servers",
];

/// How many items each list of [`COUNTED`] serves for `catalog`, every page followed.
pub async fn served_counts(app: &TestApp, catalog: &str) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for list in COUNTED {
        let (items, _) = app
            .get_all_pages(&format!("/catalogs/{catalog}/{list}?limit=1000"))
            .await;
        counts.insert(list.to_owned(), items.len() as i64);
    }
    counts
}

/// Each kind of [`COUNTED`] as pg_catalog counts it: in the user schemas (all but the system,
/// TOAST and temporary ones), not an extension's.
const SOURCE_COUNTS: &str = r#"
WITH ns AS (
    SELECT oid FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema')
      AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp\_%'
), ext AS (
    SELECT classid, objid FROM pg_depend WHERE deptype = 'e'
), rel AS (
    SELECT c.oid, c.relkind, c.relacl FROM pg_class c
    WHERE c.relnamespace IN (SELECT oid FROM ns) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND ('pg_class'::regclass, c.oid) NOT IN (SELECT * FROM ext)
), seq AS (
    SELECT c.oid, c.relacl FROM pg_class c
    WHERE c.relnamespace IN (SELECT oid FROM ns) AND c.relkind = 'S'
      AND ('pg_class'::regclass, c.oid) NOT IN (SELECT * FROM ext)
), col AS (
    SELECT a.attacl FROM pg_attribute a JOIN rel ON rel.oid = a.attrelid
    WHERE a.attnum > 0 AND NOT a.attisdropped
), typ AS (
    SELECT t.typacl FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid
    WHERE t.typnamespace IN (SELECT oid FROM ns)
      AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
      AND ('pg_type'::regclass, t.oid) NOT IN (SELECT * FROM ext)
), fn AS (
    SELECT p.proacl FROM pg_proc p
    WHERE p.pronamespace IN (SELECT oid FROM ns)
      AND ('pg_proc'::regclass, p.oid) NOT IN (SELECT * FROM ext)
), owners AS (
    SELECT nspowner AS r FROM pg_namespace WHERE oid IN (SELECT oid FROM ns)
    UNION SELECT relowner FROM pg_class WHERE oid IN (SELECT oid FROM rel UNION SELECT oid FROM seq)
)
SELECT
    (SELECT count(*) FROM ns) AS schemas,
    (SELECT count(*) FROM rel) AS tables,
    (SELECT count(*) FROM col) AS columns,
    (SELECT count(*) FROM typ) AS types,
    (SELECT count(*) FROM seq) AS sequences,
    (SELECT count(*) FROM fn) AS functions,
    (SELECT count(*) FROM pg_extension WHERE extnamespace IN (SELECT oid FROM ns)) AS extensions,
    (SELECT count(*) FROM pg_rewrite r JOIN rel ON rel.oid = r.ev_class
     WHERE NOT (r.rulename = '_RETURN' AND rel.relkind IN ('v', 'm'))) AS rules,
    (SELECT count(*) FROM pg_collation co WHERE co.collnamespace IN (SELECT oid FROM ns)
       AND ('pg_collation'::regclass, co.oid) NOT IN (SELECT * FROM ext)) AS collations,
    (SELECT count(*) FROM pg_statistic_ext s WHERE s.stxnamespace IN (SELECT oid FROM ns)
       AND ('pg_statistic_ext'::regclass, s.oid) NOT IN (SELECT * FROM ext)) AS statistics,
    (SELECT count(*) FROM pg_ts_config c WHERE c.cfgnamespace IN (SELECT oid FROM ns)
       AND ('pg_ts_config'::regclass, c.oid) NOT IN (SELECT * FROM ext))
        AS text_search_configurations,
    (SELECT count(*) FROM pg_namespace n, aclexplode(n.nspacl) WHERE n.oid IN (SELECT oid FROM ns))
      + (SELECT count(*) FROM rel, aclexplode(rel.relacl))
      + (SELECT count(*) FROM seq, aclexplode(seq.relacl))
      + (SELECT count(*) FROM col, aclexplode(col.attacl))
      + (SELECT count(*) FROM typ, aclexplode(typ.typacl))
      + (SELECT count(*) FROM fn, aclexplode(fn.proacl)) AS privileges,
    (SELECT count(*) FROM pg_policy p JOIN rel ON rel.oid = p.polrelid) AS policies,
    (SELECT count(*) FROM pg_default_acl d, aclexplode(d.defaclacl)
     WHERE d.defaclnamespace = 0 OR d.defaclnamespace IN (SELECT oid FROM ns))
        AS default_privileges,
    (SELECT count(*) FROM pg_publication) AS publications,
    (SELECT count(*) FROM pg_event_trigger e
     WHERE ('pg_event_trigger'::regclass, e.oid) NOT IN (SELECT * FROM ext)) AS event_triggers,
    (SELECT count(*) FROM pg_foreign_server s
     WHERE ('pg_foreign_server'::regclass, s.oid) NOT IN (SELECT * FROM ext)) AS foreign_servers
"#;

/// How many objects of each kind of [`COUNTED`] the database at `url` holds.
pub async fn source_counts(url: &str) -> BTreeMap<String, i64> {
    let pool = PgPool::connect(url).await.unwrap();
    let row: (sqlx::types::Json<BTreeMap<String, i64>>,) = sqlx::query_as(sqlx::AssertSqlSafe(
        format!("SELECT to_jsonb(c) FROM ({SOURCE_COUNTS}) c"),
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    row.0.0
}
