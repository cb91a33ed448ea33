//! The queries of who may do what: the ACLs of schemas, relations, columns, sequences,
//! functions and types (one row per entry, as `aclexplode` gives it), row-level security
//! policies, default privileges and roles. Like the others, each covers all the included
//! schemas or a whole batch of relations at once.

use sqlx::FromRow;
use sqlx::postgres::types::Oid;

/// The grantee of an `aclexplode` entry `a`: `PUBLIC` for 0.
macro_rules! acl_entry {
    () => {
        r#"CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END AS grantee,
       pg_get_userbyid(a.grantor)::text AS grantor,
       a.privilege_type::text           AS privilege,
       a.is_grantable                   AS grantable"#
    };
}

/// The ACL entries of the included schemas `$1` and of their sequences, functions and types
/// (those the catalog lists: not an extension's). An object whose ACL is NULL has none.
pub const SCHEMA_PRIVILEGES: &str = concat!(
    r#"
SELECT n.oid AS owner_oid, 'schema' AS object_type, n.nspname::text AS object,
       NULL::text AS column_name, "#,
    acl_entry!(),
    r#"
FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a
WHERE n.oid = ANY($1)
UNION ALL
SELECT c.relnamespace, 'sequence', c.relname::text, NULL, "#,
    acl_entry!(),
    r#"
FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
WHERE c.relnamespace = ANY($1) AND c.relkind = 'S' AND "#,
    not_extension_member!("pg_class", "c.oid"),
    r#"
UNION ALL
SELECT p.pronamespace, 'function',
       p.proname::text || '(' || pg_get_function_identity_arguments(p.oid) || ')', NULL, "#,
    acl_entry!(),
    r#"
FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) a
WHERE p.pronamespace = ANY($1) AND "#,
    not_extension_member!("pg_proc", "p.oid"),
    r#"
UNION ALL
SELECT t.typnamespace, 'type', t.typname::text, NULL, "#,
    acl_entry!(),
    r#"
FROM pg_type t
LEFT JOIN pg_class tc ON tc.oid = t.typrelid
CROSS JOIN LATERAL aclexplode(t.typacl) a
WHERE t.typnamespace = ANY($1)
  AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND tc.relkind = 'c'))
  AND "#,
    not_extension_member!("pg_type", "t.oid"),
    r#"
"#
);

/// The ACL entries of the relations `$1` and of their columns.
pub const RELATION_PRIVILEGES: &str = concat!(
    r#"
SELECT c.oid AS owner_oid,
       CASE WHEN c.relkind IN ('v', 'm') THEN 'view' ELSE 'table' END AS object_type,
       c.relname::text AS object, NULL::text AS column_name, "#,
    acl_entry!(),
    r#"
FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
WHERE c.oid = ANY($1)
UNION ALL
SELECT c.oid, 'column', c.relname::text, at.attname::text, "#,
    acl_entry!(),
    r#"
FROM pg_attribute at
JOIN pg_class c ON c.oid = at.attrelid
CROSS JOIN LATERAL aclexplode(at.attacl) a
WHERE at.attrelid = ANY($1) AND at.attnum > 0 AND NOT at.attisdropped AND at.attacl IS NOT NULL
"#
);

/// One ACL entry of an object: of a schema's object (`owner_oid` the schema) or of a relation
/// or its column (`owner_oid` the relation).
#[derive(FromRow)]
pub struct PrivilegeRow {
    pub owner_oid: Oid,
    pub object_type: String,
    pub object: String,
    pub column_name: Option<String>,
    pub grantee: String,
    pub grantor: String,
    pub privilege: String,
    pub grantable: bool,
}

/// The row-level security policies of the relations `$1`; a policy for every role names
/// `PUBLIC`.
pub const POLICIES: &str = r#"
SELECT pol.polrelid          AS table_oid,
       pol.polname::text     AS name,
       pol.polpermissive     AS permissive,
       CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                       WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS command,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r)::text END
             FROM unnest(pol.polroles) AS r) AS roles,
       pg_get_expr(pol.polqual, pol.polrelid)      AS using_expr,
       pg_get_expr(pol.polwithcheck, pol.polrelid) AS with_check,
       -- The columns its expressions read: the policy's dependencies.
       ARRAY(SELECT a.attname::text
             FROM pg_depend d
             JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE d.classid = 'pg_policy'::regclass AND d.objid = pol.oid
               AND d.refclassid = 'pg_class'::regclass AND d.refobjid = pol.polrelid
               AND d.refobjsubid > 0
             ORDER BY a.attnum)                    AS columns
FROM pg_policy pol
WHERE pol.polrelid = ANY($1)
"#;

#[derive(FromRow)]
pub struct PolicyRow {
    pub table_oid: Oid,
    pub name: String,
    pub permissive: bool,
    pub command: String,
    pub roles: Vec<String>,
    pub using_expr: Option<String>,
    pub with_check: Option<String>,
    pub columns: Vec<String>,
}

/// The default privileges (`ALTER DEFAULT PRIVILEGES`) that apply everywhere or in one of
/// the included schemas `$1`, one row per ACL entry.
pub const DEFAULT_PRIVILEGES: &str = concat!(
    r#"
SELECT pg_get_userbyid(d.defaclrole)::text AS role,
       n.nspname::text AS schema,
       CASE d.defaclobjtype WHEN 'r' THEN 'table' WHEN 'S' THEN 'sequence'
                            WHEN 'f' THEN 'function' WHEN 'T' THEN 'type'
                            WHEN 'n' THEN 'schema' ELSE d.defaclobjtype::text END AS object_type,
       "#,
    acl_entry!(),
    r#"
FROM pg_default_acl d
LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
CROSS JOIN LATERAL aclexplode(d.defaclacl) a
WHERE d.defaclnamespace = 0 OR d.defaclnamespace = ANY($1)
"#
);

#[derive(FromRow)]
pub struct DefaultPrivilegeRow {
    pub role: String,
    pub schema: Option<String>,
    pub object_type: String,
    pub grantee: String,
    #[allow(dead_code)]
    pub grantor: String,
    pub privilege: String,
    pub grantable: bool,
}

/// The roles named `$1` and, transitively, their members (who may act through them), from
/// `pg_roles`, which never shows a password; each with the roles it is a member of as JSON.
pub const ROLES: &str = r#"
WITH RECURSIVE named AS (
    SELECT r.oid FROM pg_roles r WHERE r.rolname = ANY($1)
    UNION
    SELECT m.member FROM pg_auth_members m JOIN named ON m.roleid = named.oid
)
SELECT r.rolname::text      AS name,
       r.rolcanlogin        AS login,
       r.rolsuper           AS superuser,
       r.rolcreatedb        AS createdb,
       r.rolcreaterole      AS createrole,
       r.rolinherit         AS inherit,
       r.rolbypassrls       AS bypassrls,
       r.rolreplication     AS replication,
       r.rolconnlimit       AS connection_limit,
       r.rolvaliduntil::text AS valid_until,
       coalesce((SELECT json_agg(json_build_object('role', g.rolname::text,
                                                   'admin_option', m.admin_option))
                 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                 WHERE m.member = r.oid), '[]')::text AS member_of
FROM pg_roles r
WHERE r.oid IN (SELECT oid FROM named)
"#;

#[derive(FromRow)]
pub struct RoleRow {
    pub name: String,
    pub login: bool,
    pub superuser: bool,
    pub createdb: bool,
    pub createrole: bool,
    pub inherit: bool,
    pub bypassrls: bool,
    pub replication: bool,
    pub connection_limit: i32,
    pub valid_until: Option<String>,
    pub member_of: String,
}
