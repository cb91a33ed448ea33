//! What each role may do on one relation, as the server would decide it
//! (`has_table_privilege`, `has_column_privilege`), from the snapshot alone: the relation's
//! ACL and its columns', its owner, the roles' memberships (followed where the member
//! INHERITs, as PostgreSQL before 16 does), PUBLIC, superusers, and which row-level security
//! policies restrict its rows.
//!
//! A relation whose ACL holds no entry is taken as never changed: the owner holds every
//! privilege and PUBLIC none (an ACL emptied by revoking the owner's own privileges too is
//! stored the same way, and read as the default).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::access::{PUBLIC, Role};
use super::{ObjectType, Policy, Privilege};

/// The privileges a relation has, in the order `aclitem` prints them (PostgreSQL 17's
/// MAINTAIN is not checked).
pub const RELATION_PRIVILEGES: [&str; 7] = [
    "INSERT",
    "SELECT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
];

/// The privileges a column can be granted.
pub const COLUMN_PRIVILEGES: [&str; 4] = ["INSERT", "SELECT", "UPDATE", "REFERENCES"];

/// Predefined roles that hold privileges on every relation.
const READ_ALL: &str = "pg_read_all_data";
const WRITE_ALL: &str = "pg_write_all_data";

/// One relation as the check needs it.
pub struct RelationAccess<'a> {
    pub owner: Option<&'a str>,
    /// The relation's and its columns' ACL entries.
    pub privileges: &'a [Privilege],
    pub policies: &'a [Policy],
    pub columns: &'a [String],
    pub rls_enabled: bool,
    pub rls_forced: bool,
}

/// What one role may do on the relation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RoleAccess {
    pub role: String,
    /// Its privileges on the relation as a whole.
    pub privileges: Vec<String>,
    /// Each column's privileges (the relation's own included), by column name.
    pub columns: BTreeMap<String, Vec<String>>,
    /// Where its privileges come from: itself, the roles it inherits from, `PUBLIC`, `owner`
    /// (it is or inherits from the owner), `superuser`.
    pub via: Vec<String>,
    /// The names of the policies that restrict the rows it sees or writes; empty when row-level
    /// security does not apply to it (disabled, superuser, BYPASSRLS, or the owner or a role
    /// inheriting its privileges without FORCE).
    pub policies: Vec<String>,
}

/// The roles whose privileges `role` has: itself, then through every membership it inherits
/// (a role with NOINHERIT only has its own), and `PUBLIC`.
fn privileges_of<'a>(role: &'a Role, roles: &'a BTreeMap<&str, &Role>) -> BTreeSet<&'a str> {
    let mut found = BTreeSet::from([role.name.as_str(), PUBLIC]);
    let mut pending = vec![role];
    while let Some(r) = pending.pop() {
        if !r.inherit {
            continue;
        }
        for m in &r.member_of {
            if found.insert(m.role.as_str())
                && let Some(next) = roles.get(m.role.as_str())
            {
                pending.push(next);
            }
        }
    }
    found
}

/// What each of `roles` may do on `relation`, in the roles' order.
pub fn effective(relation: &RelationAccess<'_>, roles: &[Role]) -> Vec<RoleAccess> {
    let by_name: BTreeMap<&str, &Role> = roles.iter().map(|r| (r.name.as_str(), r)).collect();
    let table_entries: Vec<&Privilege> = relation
        .privileges
        .iter()
        .filter(|p| p.object_type != ObjectType::Column)
        .collect();
    let default_acl = table_entries.is_empty();
    roles
        .iter()
        .map(|role| {
            let holds = privileges_of(role, &by_name);
            let owns = relation.owner.is_some_and(|o| holds.contains(o));
            let mut via = BTreeSet::new();
            let mut table = BTreeSet::new();
            if role.superuser {
                table.extend(RELATION_PRIVILEGES);
                via.insert("superuser".to_owned());
            }
            if default_acl && owns {
                table.extend(RELATION_PRIVILEGES);
                via.insert("owner".to_owned());
            }
            for p in &table_entries {
                if holds.contains(p.grantee.as_str()) {
                    table.insert(p.privilege.as_str());
                    via.insert(p.grantee.clone());
                }
            }
            if holds.contains(READ_ALL) {
                table.insert("SELECT");
                via.insert(READ_ALL.to_owned());
            }
            if holds.contains(WRITE_ALL) {
                table.extend(["INSERT", "UPDATE", "DELETE"]);
                via.insert(WRITE_ALL.to_owned());
            }
            let columns: BTreeMap<String, Vec<String>> = relation
                .columns
                .iter()
                .map(|c| {
                    let mut granted: BTreeSet<&str> = COLUMN_PRIVILEGES
                        .into_iter()
                        .filter(|p| table.contains(p))
                        .collect();
                    for p in relation.privileges.iter().filter(|p| {
                        p.object_type == ObjectType::Column
                            && p.column.as_deref() == Some(c.as_str())
                            && holds.contains(p.grantee.as_str())
                    }) {
                        granted.insert(p.privilege.as_str());
                        via.insert(p.grantee.clone());
                    }
                    (c.clone(), in_order(&COLUMN_PRIVILEGES, &granted))
                })
                .collect();
            // As `check_enable_rls`: the owner's privileges exempt unless FORCEd.
            let exempt = role.superuser || role.bypassrls || (owns && !relation.rls_forced);
            let policies = match relation.rls_enabled && !exempt {
                true => relation
                    .policies
                    .iter()
                    .filter(|p| p.roles.iter().any(|r| holds.contains(r.as_str())))
                    .map(|p| p.name.clone())
                    .collect(),
                false => Vec::new(),
            };
            RoleAccess {
                role: role.name.clone(),
                privileges: in_order(&RELATION_PRIVILEGES, &table),
                columns,
                via: via.into_iter().collect(),
                policies,
            }
        })
        .collect()
}

fn in_order(order: &[&str], granted: &BTreeSet<&str>) -> Vec<String> {
    order
        .iter()
        .filter(|p| granted.contains(*p))
        .map(|p| (*p).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::access::Membership;

    fn role(name: &str, inherit: bool, member_of: &[&str]) -> Role {
        Role {
            name: name.into(),
            login: false,
            superuser: false,
            createdb: false,
            createrole: false,
            inherit,
            bypassrls: false,
            replication: false,
            connection_limit: -1,
            valid_until: None,
            member_of: member_of
                .iter()
                .map(|m| Membership {
                    role: (*m).into(),
                    admin_option: false,
                })
                .collect(),
        }
    }

    fn grant(grantee: &str, privilege: &str, column: Option<&str>) -> Privilege {
        Privilege {
            object_type: match column {
                Some(_) => ObjectType::Column,
                None => ObjectType::Table,
            },
            object: "t".into(),
            column: column.map(Into::into),
            grantee: grantee.into(),
            grantor: "owner".into(),
            privilege: privilege.into(),
            grantable: false,
        }
    }

    #[test]
    fn memberships_are_followed_only_where_the_member_inherits() {
        let roles = [
            role("group", true, &[]),
            role("inheriting", true, &["middle"]),
            role("middle", true, &["group"]),
            role("noinherit", false, &["group"]),
        ];
        let privileges = [
            grant("group", "SELECT", None),
            grant("PUBLIC", "INSERT", None),
            grant("noinherit", "UPDATE", Some("a")),
        ];
        let columns = ["a".to_owned(), "b".to_owned()];
        let relation = RelationAccess {
            owner: Some("owner"),
            privileges: &privileges,
            policies: &[],
            columns: &columns,
            rls_enabled: false,
            rls_forced: false,
        };
        let found = effective(&relation, &roles);
        assert_eq!(found[1].privileges, ["INSERT", "SELECT"]);
        assert_eq!(found[1].via, ["PUBLIC", "group"]);
        assert_eq!(found[3].privileges, ["INSERT"]);
        assert_eq!(found[3].columns["a"], ["INSERT", "UPDATE"]);
        assert_eq!(found[3].columns["b"], ["INSERT"]);
    }

    #[test]
    fn an_unchanged_acl_gives_the_owner_everything_and_forced_rls_binds_it() {
        let roles = [role("owner", true, &[]), role("other", true, &[])];
        let policies = [Policy {
            name: "p".into(),
            permissive: true,
            command: "ALL".into(),
            roles: vec![PUBLIC.into()],
            using: Some("true".into()),
            with_check: None,
            columns: vec![],
        }];
        let mut relation = RelationAccess {
            owner: Some("owner"),
            privileges: &[],
            policies: &policies,
            columns: &[],
            rls_enabled: true,
            rls_forced: false,
        };
        let found = effective(&relation, &roles);
        assert_eq!(found[0].privileges.len(), RELATION_PRIVILEGES.len());
        assert_eq!(found[0].via, ["owner"]);
        assert!(found[0].policies.is_empty());
        assert!(found[1].privileges.is_empty());
        assert_eq!(found[1].policies, ["p"]);
        relation.rls_forced = true;
        assert_eq!(effective(&relation, &roles)[0].policies, ["p"]);
    }
}
