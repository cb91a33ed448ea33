//! `GET /catalogs/{id}/tables/{schema}/{table}/access`: what each role of a catalog may do on
//! a relation, decided from the snapshot as the source decides it.

mod common;

use std::collections::BTreeSet;

use common::roles::{ACCESS_DDL, Roles, source_rows};
use common::*;
use reqwest::StatusCode;
use serde_json::json;

/// `GET .../tables/{schema}/{table}/access` answers, for every role of the catalog, what the
/// source's `has_table_privilege` and `has_column_privilege` answer: through nested
/// memberships (and not through a NOINHERIT one), PUBLIC, ownership (of a role others inherit
/// from) and superusers; and which policies restrict each role's rows.
#[tokio::test]
async fn each_roles_access_to_a_table_is_what_the_source_decides() {
    let roles = Roles::create().await;
    let source = TestDatabase::with_ddl("pgcs_access", &roles.sql(ACCESS_DDL)).await;
    source
        .execute(&roles.sql(
            "ALTER TABLE app.untouched OWNER TO {p}_base;
             ALTER ROLE {p}_bob BYPASSRLS;",
        ))
        .await;
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let sync = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let catalog = sync["catalog_id"].as_str().unwrap().to_owned();
    let (listed, _) = app
        .get_all_pages(&format!("/catalogs/{catalog}/roles"))
        .await;
    let names: Vec<String> = listed
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.len() >= 5, "{names:?}");

    for table in ["accounts", "account_names", "untouched"] {
        let (status, access) = app
            .get(&format!("/catalogs/{catalog}/tables/app/{table}/access"))
            .await;
        assert_eq!(status, StatusCode::OK, "{access}");
        let served = access["roles"].as_array().unwrap();
        let served_roles: Vec<&str> = served.iter().map(|r| r["role"].as_str().unwrap()).collect();
        assert_eq!(served_roles, names);
        let mut served_table = BTreeSet::new();
        let mut served_columns = BTreeSet::new();
        for r in served {
            let role = r["role"].as_str().unwrap().to_owned();
            for p in r["privileges"].as_array().unwrap() {
                served_table.insert((role.clone(), p.as_str().unwrap().to_owned()));
            }
            for (column, list) in r["columns"].as_object().unwrap() {
                for p in list.as_array().unwrap() {
                    let p = p.as_str().unwrap().to_owned();
                    served_columns.insert((role.clone(), column.clone(), p));
                }
            }
        }
        let source_table: Vec<(String, String)> = source_rows(
            &source,
            &format!(
                "SELECT r.rolname::text, p.priv FROM pg_roles r
                 CROSS JOIN unnest(ARRAY['INSERT','SELECT','UPDATE','DELETE','TRUNCATE',
                                         'REFERENCES','TRIGGER']) AS p(priv)
                 WHERE r.rolname = ANY('{{{}}}'::text[])
                   AND has_table_privilege(r.oid, 'app.{table}'::regclass, p.priv)",
                names.join(",")
            ),
        )
        .await;
        assert_eq!(
            served_table,
            source_table.into_iter().collect::<BTreeSet<_>>(),
            "{table}"
        );
        let source_columns: Vec<(String, String, String)> = source_rows(
            &source,
            &format!(
                "SELECT r.rolname::text, a.attname::text, p.priv FROM pg_roles r
                 CROSS JOIN pg_attribute a
                 CROSS JOIN unnest(ARRAY['INSERT','SELECT','UPDATE','REFERENCES']) AS p(priv)
                 WHERE r.rolname = ANY('{{{}}}'::text[])
                   AND a.attrelid = 'app.{table}'::regclass AND a.attnum > 0
                   AND NOT a.attisdropped
                   AND has_column_privilege(r.oid, a.attrelid, a.attnum, p.priv)",
                names.join(",")
            ),
        )
        .await;
        assert_eq!(
            served_columns,
            source_columns.into_iter().collect::<BTreeSet<_>>(),
            "{table}"
        );
    }

    let (_, access) = app
        .get(&format!("/catalogs/{catalog}/tables/app/accounts/access"))
        .await;
    assert_eq!(access["rls_enabled"], true);
    assert_eq!(access["rls_forced"], true);
    let of = |role: &str| {
        access["roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["role"] == role)
            .unwrap()
            .clone()
    };
    assert_eq!(of(&roles.name("reader"))["policies"], json!(["own_rows"]));
    assert_eq!(of(&roles.name("alice"))["policies"], json!(["not_frozen"]));
    assert_eq!(of(&roles.name("bob"))["policies"], json!([]), "BYPASSRLS");
    assert_eq!(of("postgres")["policies"], json!([]), "a superuser");
    assert!(
        of("postgres")["via"]
            .as_array()
            .unwrap()
            .contains(&json!("superuser"))
    );
    // NOINHERIT: alice's own column grants, none of reader's table grant.
    let alice = of(&roles.name("alice"));
    assert_eq!(alice["privileges"], json!([]));
    assert_eq!(alice["columns"]["owner_name"], json!(["SELECT", "UPDATE"]));
    let (_, untouched) = app
        .get(&format!("/catalogs/{catalog}/tables/app/untouched/access"))
        .await;
    let bob = untouched["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == roles.name("bob").as_str())
        .unwrap()
        .clone();
    assert!(
        bob["via"].as_array().unwrap().contains(&json!("owner")),
        "{bob}"
    );

    let (status, _) = app
        .get(&format!("/catalogs/{catalog}/tables/app/nope/access"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    drop(source);
}
