//! The probe: a digest of the source's catalog state, computed the way earlier versions
//! computed it, so that a stored probe stays comparable.

mod common;

use common::*;
use sqlx::Connection;

const DDL: &str = r#"
CREATE SCHEMA sales;
CREATE TABLE sales.orders (id integer PRIMARY KEY, total numeric(12,2) CHECK (total >= 0));
CREATE VIEW sales.big_orders AS SELECT id, total FROM sales.orders WHERE total > 100;
"#;

/// The probe as versions before 2026-11-26 computed it, converting every row's transaction id
/// on its own.
const EARLIER_PROBE: &str = r#"
SELECT md5(concat_ws('|',
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_class),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_attribute),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_attrdef),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_constraint),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_index),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_description),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_namespace),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_type),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_enum),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_proc),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_trigger),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_sequence),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_inherits),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_rewrite),
    (SELECT count(*) || ':' || sum(xmin::text::int8) || ':' || max(xmin::text::int8) FROM pg_depend),
    (SELECT sum(reltuples)::text || ':' || sum(relpages)::text FROM pg_class),
    (SELECT string_agg(r::text, ',' ORDER BY oid) FROM pg_roles r WHERE r.rolname = ANY($1)),
    (SELECT md5(query_to_xml(format('SELECT
        (SELECT count(*) || '':'' || sum(xmin::text::int8) FROM pg_policy) AS policies,
        (SELECT count(*) || '':'' || sum(xmin::text::int8) FROM pg_default_acl) AS defaults,
        (SELECT count(*) || '':'' || sum(xmin::text::int8) FROM pg_auth_members m
         WHERE pg_get_userbyid(m.roleid) = ANY(%L::text[])
            OR pg_get_userbyid(m.member) = ANY(%L::text[])) AS members', $1, $1),
        false, true, '')::text)),
    (SELECT md5(query_to_xml('SELECT
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
        false, true, '')::text)),
    (SELECT md5(query_to_xml('SELECT count(*) || '':'' || sum(xmin::text::int8)
                           FROM pg_catalog.pg_publication_namespace', false, true, '')::text)),
    current_setting('server_version_num')
))
"#;

/// The probe converts each distinct transaction id once instead of every row's, and must still
/// give the digest of converting every row's, as earlier versions did (but for roles, the
/// access catalogs and those of the other object kinds: after the upgrade a catalog is read
/// once more, gaining them; the roles are the snapshot's, `$1`).
#[tokio::test]
async fn the_probe_is_the_digest_earlier_versions_stored() {
    let source = TestDatabase::with_ddl("pgcs_probe", DDL).await;
    // More transactions, so that the catalogs' rows come from several.
    source
        .execute("COMMENT ON COLUMN sales.orders.total IS 'in cents'")
        .await;
    source
        .execute("ALTER TABLE sales.orders ADD COLUMN note text")
        .await;
    let mut conn = sqlx::PgConnection::connect(&source.url).await.unwrap();
    let roles = vec!["postgres".to_owned()];
    let earlier: String = sqlx::query_scalar(EARLIER_PROBE)
        .bind(&roles)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let now = pg_catalog_sync::introspect::probe(&mut conn, &roles)
        .await
        .unwrap();
    assert_eq!(now, earlier);
}
