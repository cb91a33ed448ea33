//! Reading who may do what in a catalog's snapshot: privileges (of relations, columns and of
//! schemas' objects, as one list), row-level security policies, and the database-wide access
//! facts (roles, default privileges) kept with the catalog.

use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::details::StoredPolicy;
use super::object_reads::{CatalogDocument, catalog_document};
use super::reads::Members;
use crate::catalog::{Access, ObjectType, Policy, Privilege};
use crate::ids::SyncId;

/// One privilege: one entry of an object's ACL.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PrivilegeItem {
    /// `schema`, `table`, `view`, `column`, `sequence`, `function` or `type`.
    pub object_type: String,
    pub schema: String,
    /// The object's name in its schema (a function's with its arguments; for a schema, the
    /// schema's own name).
    pub object: String,
    /// For a column grant: the column.
    pub column: Option<String>,
    /// `PUBLIC` for every role.
    pub grantee: String,
    pub grantor: String,
    pub privilege: String,
    /// Granted WITH GRANT OPTION.
    pub grantable: bool,
}

impl PrivilegeItem {
    /// Where the item sorts, as a page's cursor.
    pub fn cursor(&self) -> PrivilegeCursor {
        (
            self.schema.clone(),
            self.object.clone(),
            self.object_type.clone(),
            self.column.clone().unwrap_or_default(),
            self.grantee.clone(),
            self.privilege.clone(),
            self.grantor.clone(),
        )
    }
}

/// (schema, object, object type, column or '', grantee, privilege, grantor): a privilege's
/// place in the list, which it alone holds.
pub type PrivilegeCursor = (String, String, String, String, String, String, String);

/// The filters of the privilege list.
#[derive(Debug, Default)]
pub struct PrivilegeFilter<'a> {
    pub grantee: Option<&'a str>,
    pub schema: Option<&'a str>,
    pub object: Option<&'a str>,
    /// Whether the privileges on extensions' relations are listed too.
    pub members: Members,
}

/// The catalog's privileges in (schema, object, object type, column, grantee, privilege,
/// grantor) order, after the cursor `after`.
pub async fn privileges(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    filter: &PrivilegeFilter<'_>,
    after: Option<PrivilegeCursor>,
    limit: i64,
) -> sqlx::Result<Vec<PrivilegeItem>> {
    let after = after.map(|(a, b, c, d, e, f, g)| [a, b, c, d, e, f, g].to_vec());
    sqlx::query_as(
        r#"SELECT object_type, schema, object, nullif(column_name, '') AS column, grantee,
                  grantor, privilege, grantable
           FROM (SELECT schema_name AS schema, relation_name AS object, object_type,
                        coalesce(column_name, '') AS column_name, grantee, grantor, privilege,
                        grantable
                 FROM catalog_privileges t
                 WHERE catalog_id = $1
                   AND ($7 OR NOT EXISTS (
                       SELECT 1 FROM catalog_relations x
                       WHERE x.catalog_id = $1 AND x.schema_name = t.schema_name
                         AND x.name = t.relation_name AND x.extension IS NOT NULL))
                 UNION ALL
                 SELECT schema_name, object, object_type, '', grantee, grantor, privilege,
                        grantable
                 FROM catalog_schema_privileges WHERE catalog_id = $1) p
           WHERE ($2::text IS NULL OR grantee = $2)
             AND ($3::text IS NULL OR schema = $3)
             AND ($4::text IS NULL OR object = $4)
             AND ($5::text[] IS NULL
                  OR (schema, object, object_type, column_name, grantee, privilege, grantor)
                     > ($5[1], $5[2], $5[3], $5[4], $5[5], $5[6], $5[7]))
           ORDER BY schema, object, object_type, column_name, grantee, privilege, grantor
           LIMIT $6"#,
    )
    .bind(catalog_id)
    .bind(filter.grantee)
    .bind(filter.schema)
    .bind(filter.object)
    .bind(after)
    .bind(limit)
    .bind(filter.members.with_extensions())
    .fetch_all(db)
    .await
}

/// A row-level security policy of a relation.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PolicyItem {
    pub schema: String,
    pub table: String,
    pub name: String,
    /// `permissive` (ORed with the others) or `restrictive` (ANDed).
    pub kind: String,
    /// `ALL`, `SELECT`, `INSERT`, `UPDATE` or `DELETE`.
    pub command: String,
    /// The roles it applies to; `PUBLIC` for every role.
    pub roles: Vec<String>,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

/// The catalog's policies in (schema, table, name) order, after the cursor `after`; those of
/// extensions' relations with `members` only.
pub async fn policies(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: Option<&str>,
    members: Members,
    after: Option<(String, String, String)>,
    limit: i64,
) -> sqlx::Result<Vec<PolicyItem>> {
    let (after_schema, after_table, after_name) = match after {
        Some((s, t, n)) => (Some(s), Some(t), Some(n)),
        None => (None, None, None),
    };
    sqlx::query_as(
        r#"SELECT schema_name AS schema, relation_name AS table, name,
                  CASE WHEN permissive THEN 'permissive' ELSE 'restrictive' END AS kind,
                  command, roles, using_expr AS using, with_check
           FROM catalog_policies t
           WHERE catalog_id = $1
             AND ($2::text IS NULL OR schema_name = $2)
             AND ($7 OR NOT EXISTS (
                 SELECT 1 FROM catalog_relations x
                 WHERE x.catalog_id = $1 AND x.schema_name = t.schema_name
                   AND x.name = t.relation_name AND x.extension IS NOT NULL))
             AND ($3::text IS NULL OR (schema_name, relation_name, name) > ($3, $4::text, $5::text))
           ORDER BY schema_name, relation_name, name
           LIMIT $6"#,
    )
    .bind(catalog_id)
    .bind(schema)
    .bind(after_schema)
    .bind(after_table)
    .bind(after_name)
    .bind(limit)
    .bind(members.with_extensions())
    .fetch_all(db)
    .await
}

/// The catalog's database-wide access facts: `None` for an unknown catalog, an empty
/// [`Access`] for one synced from a source that has none (or never synced).
pub async fn access_facts(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    at: Option<SyncId>,
) -> sqlx::Result<Option<Access>> {
    let found = catalog_document(db, catalog_id, at, CatalogDocument::Access).await?;
    Ok(found.map(Option::unwrap_or_default))
}

/// What deciding who may do what on one relation takes from its snapshot.
#[derive(Debug, Clone)]
pub struct StoredRelationAccess {
    pub owner: Option<String>,
    pub rls_enabled: bool,
    pub rls_forced: bool,
    /// In ordinal order.
    pub columns: Vec<String>,
    pub privileges: Vec<Privilege>,
    pub policies: Vec<Policy>,
}

/// The relation `schema`.`name`'s owner, row-level security, columns, privileges and policies;
/// `None` when the catalog has no such relation.
pub async fn relation_access(
    conn: &mut PgConnection,
    catalog_id: Uuid,
    schema: &str,
    name: &str,
) -> sqlx::Result<Option<StoredRelationAccess>> {
    /// Owner, RLS enabled, RLS forced, column names.
    type RelationRow = (Option<String>, bool, bool, Option<Vec<String>>);
    let found: Option<RelationRow> = sqlx::query_as(
        r#"SELECT r.owner, r.rls_enabled, r.rls_forced,
                  (SELECT l.names FROM catalog_column_lists l
                   WHERE l.catalog_id = r.catalog_id AND l.schema_name = r.schema_name
                     AND l.relation_name = r.name)
           FROM catalog_relations r
           WHERE r.catalog_id = $1 AND r.schema_name = $2 AND r.name = $3"#,
    )
    .bind(catalog_id)
    .bind(schema)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((owner, rls_enabled, rls_forced, columns)) = found else {
        return Ok(None);
    };
    let rows: Vec<(String, Option<String>, String, String, String, bool)> = sqlx::query_as(
        r#"SELECT object_type, column_name, grantee, grantor, privilege, grantable
           FROM catalog_privileges
           WHERE catalog_id = $1 AND schema_name = $2 AND relation_name = $3"#,
    )
    .bind(catalog_id)
    .bind(schema)
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    let privileges = rows
        .into_iter()
        .filter_map(
            |(object_type, column, grantee, grantor, privilege, grantable)| {
                Some(Privilege {
                    object_type: ObjectType::parse(&object_type)?,
                    object: name.to_owned(),
                    column,
                    grantee,
                    grantor,
                    privilege,
                    grantable,
                })
            },
        )
        .collect();
    let rows: Vec<StoredPolicy> = sqlx::query_as(
        r#"SELECT name, CASE WHEN permissive THEN 'permissive' ELSE 'restrictive' END AS kind,
                  command, roles, using_expr AS using, with_check
           FROM catalog_policies
           WHERE catalog_id = $1 AND schema_name = $2 AND relation_name = $3
           ORDER BY name"#,
    )
    .bind(catalog_id)
    .bind(schema)
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    let policies = rows.into_iter().map(StoredPolicy::into_policy).collect();
    Ok(Some(StoredRelationAccess {
        owner,
        rls_enabled,
        rls_forced,
        columns: columns.unwrap_or_default(),
        privileges,
        policies,
    }))
}
