//! Reading who may do what: privileges and policies come with the schemas and the batches of
//! relations (one query per kind, like the rest); default privileges with the schemas; the
//! roles the snapshot names at the end, once every owner and grantee is known.
//!
//! What the reading user may not read (an administrator can revoke SELECT on `pg_policy`,
//! say) is not asked for: the rest syncs, and the catalog's access facts say what is missing.

use std::collections::{BTreeSet, HashMap};

use sqlx::PgConnection;
use sqlx::postgres::types::Oid;

use super::queries;
use crate::catalog::access::{DefaultPrivilege, Membership, PUBLIC, Role};
use crate::catalog::{ObjectType, Policy, Privilege, Relation, Schema};

/// Which access catalogs the reading user may read (from [`queries::DATABASE`]).
#[derive(Debug, Clone, Copy)]
pub struct Readable {
    pub acls: bool,
    pub policies: bool,
    pub default_acl: bool,
    pub roles: bool,
    pub schema_objects: bool,
    pub database_objects: bool,
}

impl Readable {
    pub fn of(row: &queries::DatabaseRow) -> Self {
        Self {
            acls: row.acls_readable,
            policies: row.policies_readable,
            default_acl: row.default_acl_readable,
            roles: row.roles_readable,
            schema_objects: row.schema_objects_readable,
            database_objects: row.database_objects_readable,
        }
    }

    /// What the snapshot lacks because the user could not read it.
    pub fn warnings(self) -> Vec<String> {
        [
            (self.acls, "privileges (the ACL columns of pg_catalog)"),
            (self.policies, "row-level security policies (pg_policy)"),
            (self.default_acl, "default privileges (pg_default_acl)"),
            (self.roles, "roles (pg_roles, pg_auth_members)"),
            (
                self.schema_objects,
                "rules, collations, extended statistics and text search configurations",
            ),
            (
                self.database_objects,
                "publications, event triggers, foreign data wrappers and servers",
            ),
        ]
        .into_iter()
        .filter(|(readable, _)| !readable)
        .map(|(_, what)| format!("the source user may not read {what}; they are left out"))
        .collect()
    }
}

/// The roles a read has met so far: owners, grantees, grantors and policies' roles.
#[derive(Debug, Default)]
pub struct RoleNames(BTreeSet<String>);

impl RoleNames {
    pub fn add(&mut self, name: Option<&str>) {
        if let Some(name) = name
            && name != PUBLIC
            && !self.0.contains(name)
        {
            self.0.insert(name.to_owned());
        }
    }

    fn add_privileges(&mut self, rows: &[queries::PrivilegeRow]) {
        for p in rows {
            self.add(Some(&p.grantee));
            self.add(Some(&p.grantor));
        }
    }

    /// Adds the owners and grantees of the schemas and their objects.
    pub fn add_schemas(&mut self, schemas: &[Schema]) {
        for s in schemas {
            self.add(s.owner.as_deref());
            s.types
                .iter()
                .filter(|t| t.extension.is_none())
                .for_each(|t| self.add(t.owner.as_deref()));
            for p in &s.privileges {
                self.add(Some(&p.grantee));
                self.add(Some(&p.grantor));
            }
        }
    }

    /// Adds the roles of a batch's rows.
    pub fn add_batch(
        &mut self,
        relations: &[queries::RelationRow],
        privileges: &[queries::PrivilegeRow],
        policies: &[queries::PolicyRow],
    ) {
        relations.iter().for_each(|r| self.add(r.owner.as_deref()));
        self.add_privileges(privileges);
        for p in policies {
            p.roles.iter().for_each(|r| self.add(Some(r)));
        }
    }

    pub fn add_default_privileges(&mut self, rows: &[DefaultPrivilege]) {
        for d in rows {
            self.add(Some(&d.role));
            self.add(Some(&d.grantee));
        }
    }
}

/// Runs `query` with `oids` when `readable`, else reads nothing.
async fn rows_if<T>(
    readable: bool,
    conn: &mut PgConnection,
    query: &'static str,
    oids: &[Oid],
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    if !readable {
        return Ok(Vec::new());
    }
    sqlx::query_as(query).bind(oids).fetch_all(conn).await
}

/// The ACL entries of the schemas `schema_oids` and of their objects.
pub async fn schema_privileges(
    conn: &mut PgConnection,
    readable: Readable,
    schema_oids: &[Oid],
) -> Result<Vec<queries::PrivilegeRow>, sqlx::Error> {
    rows_if(readable.acls, conn, queries::SCHEMA_PRIVILEGES, schema_oids).await
}

/// The ACL entries and policies of the relations `oids`.
pub async fn relation_access(
    conn: &mut PgConnection,
    readable: Readable,
    oids: &[Oid],
) -> Result<(Vec<queries::PrivilegeRow>, Vec<queries::PolicyRow>), sqlx::Error> {
    let privileges = rows_if(readable.acls, conn, queries::RELATION_PRIVILEGES, oids).await?;
    let policies = rows_if(readable.policies, conn, queries::POLICIES, oids).await?;
    Ok((privileges, policies))
}

/// The default privileges that apply in the schemas `schema_oids`, in a stable order.
pub async fn default_privileges(
    conn: &mut PgConnection,
    readable: Readable,
    schema_oids: &[Oid],
) -> Result<Vec<DefaultPrivilege>, sqlx::Error> {
    let rows: Vec<queries::DefaultPrivilegeRow> = rows_if(
        readable.default_acl,
        conn,
        queries::DEFAULT_PRIVILEGES,
        schema_oids,
    )
    .await?;
    let mut list: Vec<DefaultPrivilege> = rows
        .into_iter()
        .map(|d| DefaultPrivilege {
            role: d.role,
            schema: d.schema,
            object_type: d.object_type,
            grantee: d.grantee,
            privilege: d.privilege,
            grantable: d.grantable,
        })
        .collect();
    list.sort_by(|a, b| {
        let key = |d: &DefaultPrivilege| {
            (
                d.role.clone(),
                d.schema.clone(),
                d.object_type.clone(),
                d.grantee.clone(),
                d.privilege.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(list)
}

/// The roles `names` and their members, in name order.
pub async fn roles(
    conn: &mut PgConnection,
    readable: Readable,
    names: &RoleNames,
) -> Result<Vec<Role>, sqlx::Error> {
    if !readable.roles || names.0.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = names.0.iter().map(String::as_str).collect();
    let rows: Vec<queries::RoleRow> = sqlx::query_as(queries::ROLES)
        .bind(&names)
        .fetch_all(conn)
        .await?;
    let mut roles: Vec<Role> = rows
        .into_iter()
        .map(|r| {
            let mut member_of: Vec<Membership> =
                serde_json::from_str(&r.member_of).unwrap_or_default();
            member_of.sort_by(|a, b| a.role.cmp(&b.role));
            Role {
                name: r.name,
                login: r.login,
                superuser: r.superuser,
                createdb: r.createdb,
                createrole: r.createrole,
                inherit: r.inherit,
                bypassrls: r.bypassrls,
                replication: r.replication,
                connection_limit: r.connection_limit,
                valid_until: r.valid_until,
                member_of,
            }
        })
        .collect();
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(roles)
}

fn privilege(row: queries::PrivilegeRow) -> Option<Privilege> {
    Some(Privilege {
        object_type: ObjectType::parse(&row.object_type)?,
        object: row.object,
        column: row.column_name,
        grantee: row.grantee,
        grantor: row.grantor,
        privilege: row.privilege,
        grantable: row.grantable,
    })
}

/// The order privileges are kept in, whatever order the server sent them in: the hash of a
/// unit digests its rows in order.
fn sort_privileges(list: &mut [Privilege]) {
    list.sort_by(|a, b| {
        (
            a.object_type,
            &a.object,
            &a.column,
            &a.grantee,
            &a.privilege,
            &a.grantor,
        )
            .cmp(&(
                b.object_type,
                &b.object,
                &b.column,
                &b.grantee,
                &b.privilege,
                &b.grantor,
            ))
    });
}

/// Gives each schema of `schemas` (named by oid in `names`) its privileges from `rows`.
pub fn add_schema_privileges(
    schemas: &mut [Schema],
    names: &HashMap<Oid, String>,
    rows: Vec<queries::PrivilegeRow>,
) {
    let positions: HashMap<&str, usize> = schemas
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut found: Vec<Vec<Privilege>> = vec![Vec::new(); schemas.len()];
    for row in rows {
        let Some(&i) = names
            .get(&row.owner_oid)
            .and_then(|n| positions.get(n.as_str()))
        else {
            continue;
        };
        found[i].extend(privilege(row));
    }
    for (schema, mut list) in schemas.iter_mut().zip(found) {
        sort_privileges(&mut list);
        schema.privileges = list;
    }
}

/// Gives the relations of a batch (at `positions` by oid) their privileges and policies.
pub fn add_relation_access(
    relations: &mut [Relation],
    positions: &HashMap<Oid, usize>,
    privileges: Vec<queries::PrivilegeRow>,
    policies: Vec<queries::PolicyRow>,
) {
    for row in privileges {
        if let Some(&i) = positions.get(&row.owner_oid) {
            relations[i].table.privileges.extend(privilege(row));
        }
    }
    for p in policies {
        if let Some(&i) = positions.get(&p.table_oid) {
            let mut roles = p.roles;
            roles.sort();
            relations[i].table.policies.push(Policy {
                name: p.name,
                permissive: p.permissive,
                command: p.command,
                roles,
                using: p.using_expr,
                with_check: p.with_check,
                columns: p.columns,
            });
        }
    }
    for r in relations {
        sort_privileges(&mut r.table.privileges);
        r.table.policies.sort_by(|a, b| a.name.cmp(&b.name));
    }
}
