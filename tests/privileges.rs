//! Access metadata: privileges (schemas, relations, columns, sequences, functions, types),
//! row-level security, default privileges and roles are read from the source, served as lists
//! and in a relation's detail, compared in the change history, and a source user who may not
//! read some of it still syncs the rest.

mod common;

use std::collections::BTreeSet;

use common::roles::{ACCESS_DDL, Roles, source_rows};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Every ACL entry of the objects the catalog lists, as the source's own catalogs say:
/// (object_type, schema, object, column, grantee, grantor, privilege, grantable).
const SOURCE_PRIVILEGES: &str = r#"
WITH entries AS (
    SELECT 'schema' AS object_type, n.nspname AS schema, n.nspname AS object, NULL AS col,
           n.nspacl AS acl
    FROM pg_namespace n WHERE n.nspname IN ('app', 'public')
    UNION ALL
    SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' ELSE 'table' END,
           'app', c.relname, NULL, c.relacl
    FROM pg_class c WHERE c.relnamespace = 'app'::regnamespace AND c.relkind IN ('r', 'v', 'S')
    UNION ALL
    SELECT 'column', 'app', c.relname, a.attname, a.attacl
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    WHERE c.relnamespace = 'app'::regnamespace AND a.attnum > 0
    UNION ALL
    SELECT 'function', 'app', p.oid::regprocedure::text, NULL, p.proacl
    FROM pg_proc p WHERE p.pronamespace = 'app'::regnamespace
    UNION ALL
    SELECT 'type', 'app', t.typname, NULL, t.typacl
    FROM pg_type t WHERE t.typnamespace = 'app'::regnamespace AND t.typtype = 'e'
)
SELECT e.object_type, e.schema::text, e.object::text, e.col::text,
       CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END,
       x.grantor::regrole::text, x.privilege_type, x.is_grantable
FROM entries e CROSS JOIN LATERAL aclexplode(e.acl) x
"#;

type Entry = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    bool,
);

fn entry(p: &Value) -> Entry {
    let text = |k: &str| p[k].as_str().unwrap().to_owned();
    (
        text("object_type"),
        text("schema"),
        text("object"),
        p["column"].as_str().map(str::to_owned),
        text("grantee"),
        text("grantor"),
        text("privilege"),
        p["grantable"].as_bool().unwrap(),
    )
}

#[tokio::test]
async fn privileges_policies_and_roles_match_the_source() {
    let roles = Roles::create().await;
    let source = TestDatabase::with_ddl("pgcs_access", &roles.sql(ACCESS_DDL)).await;
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let sync = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let catalog = sync["catalog_id"].as_str().unwrap().to_owned();
    let (alice, reader, base, bob) = (
        roles.name("alice"),
        roles.name("reader"),
        roles.name("base"),
        roles.name("bob"),
    );

    // Every ACL entry, field by field, as aclexplode gives it on the source; the function is
    // named by its identity arguments, as the function list names it.
    let (served, _) = app
        .get_all_pages(&format!("/catalogs/{catalog}/privileges?limit=5"))
        .await;
    let served: BTreeSet<Entry> = served.iter().map(entry).collect();
    let expected: BTreeSet<Entry> = source_rows::<Entry>(&source, SOURCE_PRIVILEGES)
        .await
        .into_iter()
        .map(|mut e| {
            if e.0 == "function" {
                e.2 = "add(a integer, b integer)".into();
            }
            e
        })
        .collect();
    assert_eq!(served, expected);
    let has = |t: &str, object: &str, column: Option<&str>, grantee: &str, what: &str| {
        served.iter().find(|e| {
            e.0 == t && e.2 == object && e.3.as_deref() == column && e.4 == grantee && e.6 == what
        })
    };
    // The grant option, PUBLIC, column grants, the owner's own entries, revoked defaults.
    assert!(has("table", "accounts", None, &reader, "SELECT").unwrap().7);
    assert!(
        !has("column", "accounts", Some("owner_name"), &alice, "UPDATE")
            .unwrap()
            .7
    );
    assert!(has("column", "accounts", Some("id"), &alice, "SELECT").is_some());
    assert!(has("view", "account_names", None, "PUBLIC", "SELECT").is_some());
    assert!(has("table", "accounts", None, "postgres", "TRUNCATE").is_some());
    assert!(has("schema", "app", None, &base, "USAGE").is_some());
    assert!(has("sequence", "ticket_seq", None, &base, "USAGE").is_some());
    let add = "add(a integer, b integer)";
    assert!(has("function", add, None, &reader, "EXECUTE").is_some());
    assert!(has("function", add, None, "PUBLIC", "EXECUTE").is_none());
    assert!(has("type", "mood", None, "PUBLIC", "USAGE").is_none());
    assert!(has("type", "mood", None, "postgres", "USAGE").is_some());
    // An ACL never changed has no entries.
    assert!(!served.iter().any(|e| e.2 == "untouched"));

    // Filters.
    let (list, _) = app
        .get_all_pages(&format!("/catalogs/{catalog}/privileges?grantee={alice}"))
        .await;
    assert_eq!(list.len(), 3, "{list:?}");
    assert!(list.iter().all(|p| p["grantee"] == alice.as_str()));
    let (list, _) = app
        .get_all_pages(&format!(
            "/catalogs/{catalog}/privileges?schema=app&object=account_names"
        ))
        .await;
    let expected_view = served.iter().filter(|e| e.2 == "account_names").count();
    assert_eq!(list.len(), expected_view);
    let (status, body) = app
        .get(&format!("/catalogs/{catalog}/privileges?schema=nope"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app
        .get(&format!("/catalogs/{catalog}/privileges?grantee=a%00b"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "grantee", "{body}");
    let (status, _) = app
        .get(&format!("/catalogs/{}/privileges", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Policies, against pg_policies.
    let (policies, _) = app
        .get_all_pages(&format!("/catalogs/{catalog}/policies"))
        .await;
    type PolicyRow = (
        String,
        String,
        String,
        String,
        Vec<String>,
        Option<String>,
        Option<String>,
    );
    let source_policies: Vec<PolicyRow> = source_rows(
        &source,
        "SELECT tablename::text, policyname::text, lower(permissive), cmd, roles::text[], qual,
                with_check
         FROM pg_policies WHERE schemaname = 'app' ORDER BY policyname",
    )
    .await;
    assert_eq!(policies.len(), source_policies.len());
    for (served, (table, name, kind, command, mut names, using, check)) in
        policies.iter().zip(source_policies)
    {
        names.sort();
        assert_eq!(served["schema"], "app");
        assert_eq!(served["table"], table.as_str());
        assert_eq!(served["name"], name.as_str());
        assert_eq!(served["kind"], kind.as_str());
        assert_eq!(served["command"], command.as_str());
        assert_eq!(served["roles"], json!(names));
        assert_eq!(served["using"], json!(using));
        assert_eq!(served["with_check"], json!(check));
    }
    assert_eq!(policies[0]["name"], "not_frozen");
    assert_eq!(policies[0]["kind"], "restrictive");
    assert_eq!(policies[0]["roles"], json!([alice, bob]));
    assert_eq!(policies[1]["kind"], "permissive");

    // The relation's detail: RLS, its own and its columns' privileges, its policies.
    let (status, detail) = app
        .get(&format!("/catalogs/{catalog}/tables/app/accounts"))
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["rls_enabled"], true);
    assert_eq!(detail["rls_forced"], true);
    let in_detail = served.iter().filter(|e| e.2 == "accounts").count();
    assert_eq!(detail["privileges"].as_array().unwrap().len(), in_detail);
    assert_eq!(detail["policies"].as_array().unwrap().len(), 2);
    let (_, untouched) = app
        .get(&format!("/catalogs/{catalog}/tables/app/untouched"))
        .await;
    assert_eq!(untouched["rls_enabled"], false);
    assert_eq!(untouched["privileges"], json!([]));
    let (_, lean) = app
        .get(&format!(
            "/catalogs/{catalog}/tables/app/accounts?fields=columns"
        ))
        .await;
    assert!(lean.get("privileges").is_none(), "{lean}");

    // Default privileges, against pg_default_acl.
    let (defaults, _) = app
        .get_all_pages(&format!("/catalogs/{catalog}/default_privileges?limit=1"))
        .await;
    type DefaultRow = (String, Option<String>, String, String, String, bool);
    let mut expected: Vec<DefaultRow> = source_rows(
        &source,
        "SELECT d.defaclrole::regrole::text, n.nspname::text,
                CASE d.defaclobjtype WHEN 'r' THEN 'table' WHEN 'f' THEN 'function' END,
                CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END,
                x.privilege_type, x.is_grantable
         FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
         CROSS JOIN LATERAL aclexplode(d.defaclacl) x",
    )
    .await;
    expected.sort_by_key(|d| {
        (
            d.0.clone(),
            d.1.clone().unwrap_or_default(),
            d.2.clone(),
            d.3.clone(),
            d.4.clone(),
        )
    });
    let served_defaults: Vec<DefaultRow> = defaults
        .iter()
        .map(|d| {
            (
                d["role"].as_str().unwrap().to_owned(),
                d["schema"].as_str().map(str::to_owned),
                d["object_type"].as_str().unwrap().to_owned(),
                d["grantee"].as_str().unwrap().to_owned(),
                d["privilege"].as_str().unwrap().to_owned(),
                d["grantable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(served_defaults, expected);
    assert!(
        served_defaults
            .iter()
            .any(|d| d.1.as_deref() == Some("app") && d.3 == reader)
    );

    // Roles: those named anywhere and their members, from pg_roles, without a password.
    let (listed, _) = app
        .get_all_pages(&format!("/catalogs/{catalog}/roles?limit=2"))
        .await;
    let names: Vec<&str> = listed.iter().map(|r| r["name"].as_str().unwrap()).collect();
    for role in [&alice, &reader, &base, &bob] {
        assert!(names.contains(&role.as_str()), "{role} in {names:?}");
    }
    assert!(!names.contains(&roles.name("limited").as_str()));
    assert!(names.contains(&"postgres"));
    let role = |name: &str| listed.iter().find(|r| r["name"] == name).unwrap().clone();
    let alice_row = role(&alice);
    assert_eq!(alice_row["login"], true);
    assert_eq!(alice_row["inherit"], false);
    assert_eq!(alice_row["connection_limit"], 3);
    assert_eq!(
        alice_row["member_of"],
        json!([{"role": reader, "admin_option": false}])
    );
    assert_eq!(
        role(&bob)["member_of"],
        json!([{"role": reader, "admin_option": true}])
    );
    assert_eq!(
        role(&reader)["member_of"],
        json!([{"role": base, "admin_option": false}])
    );
    for r in &listed {
        assert!(r.get("password").is_none() && r.get("rolpassword").is_none());
    }
    type RoleRow = (bool, bool, bool, bool, bool, bool, bool, i32);
    let source_role: RoleRow = source_rows(
        &source,
        &format!(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolinherit, rolbypassrls,
                    rolreplication, rolconnlimit FROM pg_roles WHERE rolname = '{alice}'"
        ),
    )
    .await
    .remove(0);
    let served_role: RoleRow = (
        alice_row["login"].as_bool().unwrap(),
        alice_row["superuser"].as_bool().unwrap(),
        alice_row["createdb"].as_bool().unwrap(),
        alice_row["createrole"].as_bool().unwrap(),
        alice_row["inherit"].as_bool().unwrap(),
        alice_row["bypassrls"].as_bool().unwrap(),
        alice_row["replication"].as_bool().unwrap(),
        alice_row["connection_limit"].as_i64().unwrap() as i32,
    );
    assert_eq!(served_role, source_role);
    drop(source);
}

#[tokio::test]
async fn grants_revokes_and_policy_changes_are_in_the_history() {
    let roles = Roles::create().await;
    let source = TestDatabase::with_ddl("pgcs_access", &roles.sql(ACCESS_DDL)).await;
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();

    source
        .execute(&roles.sql(
            "GRANT INSERT ON app.accounts TO {p}_alice;
             REVOKE SELECT ON app.accounts FROM {p}_reader;
             ALTER POLICY own_rows ON app.accounts USING (true);
             DROP POLICY not_frozen ON app.accounts;",
        ))
        .await;
    let second = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(second["stats"]["unchanged"], false, "{second}");
    let (status, changes) = app.get(&format!("/catalogs/{catalog}/changes")).await;
    assert_eq!(status, StatusCode::OK, "{changes}");
    let changes = changes.as_array().unwrap();
    let find = |object: &str, action: &str, name: &str| {
        changes
            .iter()
            .find(|c| c["object"] == object && c["action"] == action && c["name"] == name)
            .unwrap_or_else(|| panic!("no {object} {action} {name} in {changes:?}"))
    };
    let (alice, reader) = (roles.name("alice"), roles.name("reader"));
    let granted = find(
        "privilege",
        "added",
        &format!("INSERT to {alice} by postgres"),
    );
    assert_eq!(granted["relation"], "accounts");
    assert_eq!(granted["classification"], "non_breaking");
    let revoked = find(
        "privilege",
        "removed",
        &format!("SELECT to {reader} by postgres"),
    );
    assert_eq!(revoked["classification"], "breaking");
    assert_eq!(revoked["before"]["grantable"], true);
    let altered = find("policy", "altered", "own_rows");
    assert_eq!(
        altered["before"]["using_expr"],
        "(owner_name = CURRENT_USER)"
    );
    assert_eq!(altered["after"]["using_expr"], "true");
    find("policy", "removed", "not_frozen");
    assert!(
        changes.iter().all(|c| c["relation"] == "accounts"),
        "{changes:?}"
    );

    // A snapshot written before access metadata was read (no access facts, no access rows):
    // the next sync does not record every grant as added.
    let id: uuid::Uuid = catalog.parse().unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "UPDATE catalogs SET access = NULL WHERE id = '{id}';
         DELETE FROM catalog_privileges WHERE catalog_id = '{id}';
         DELETE FROM catalog_policies WHERE catalog_id = '{id}';"
    )))
    .execute(&app.pool)
    .await
    .unwrap();
    source
        .execute(&roles.sql("GRANT DELETE ON app.accounts TO {p}_alice"))
        .await;
    let third = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(third["status"], "succeeded", "{third}");
    assert_eq!(third["stats"]["changes"], 0, "{third}");
    let (_, detail) = app
        .get(&format!("/catalogs/{catalog}/tables/app/accounts"))
        .await;
    assert!(!detail["privileges"].as_array().unwrap().is_empty());
    drop(source);
}

#[tokio::test]
async fn a_user_who_may_not_read_policies_or_publications_still_syncs_the_rest() {
    let roles = Roles::create().await;
    let source = TestDatabase::with_ddl("pgcs_access", &roles.sql(ACCESS_DDL)).await;
    source
        .execute(&roles.sql(
            "REVOKE SELECT ON pg_catalog.pg_policy FROM PUBLIC;
             REVOKE SELECT ON pg_catalog.pg_publication FROM PUBLIC;
             GRANT USAGE ON SCHEMA app TO {p}_limited;",
        ))
        .await;
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let mut body = sync_body(&source.name);
    body["user"] = json!(roles.name("limited"));
    let sync = app.sync_and_wait(&body).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let catalog = sync["catalog_id"].as_str().unwrap().to_owned();

    let (_, detail) = app
        .get(&format!("/catalogs/{catalog}/tables/app/accounts"))
        .await;
    assert_eq!(detail["rls_enabled"], true, "{detail}");
    assert_eq!(detail["policies"], json!([]));
    assert!(!detail["privileges"].as_array().unwrap().is_empty());
    let (_, facts) = app.get(&format!("/catalogs/{catalog}")).await;
    let warnings = facts["catalog"]["database"]["access_warnings"].clone();
    assert!(
        warnings.as_array().is_some_and(|w| w.len() == 2
            && w[0].as_str().unwrap().contains("pg_policy")
            && w[1].as_str().unwrap().contains("publications")),
        "{facts}"
    );
    let (status, publications) = app.get(&format!("/catalogs/{catalog}/publications")).await;
    assert_eq!(status, StatusCode::OK, "{publications}");
    assert_eq!(publications, json!([]));
    drop(source);
}
