//! Who may do what: privileges (one entry of an object's ACL each), row-level security
//! policies, default privileges and the roles a snapshot names.
//!
//! Relations carry their own and their columns' privileges and their policies; schemas carry
//! their own privileges and those of their sequences, functions and types. Roles and default
//! privileges belong to the whole database ([`Access`]).

use serde::{Deserialize, Serialize};

/// What kind of object a privilege is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectType {
    Schema,
    /// A table of any kind (ordinary, partitioned, foreign).
    Table,
    /// A view or materialized view.
    View,
    Column,
    Sequence,
    Function,
    Type,
}

impl ObjectType {
    pub const ALL: [ObjectType; 7] = [
        ObjectType::Schema,
        ObjectType::Table,
        ObjectType::View,
        ObjectType::Column,
        ObjectType::Sequence,
        ObjectType::Function,
        ObjectType::Type,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Schema => "schema",
            ObjectType::Table => "table",
            ObjectType::View => "view",
            ObjectType::Column => "column",
            ObjectType::Sequence => "sequence",
            ObjectType::Function => "function",
            ObjectType::Type => "type",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The name a grant to every role (grantee 0 in an ACL) is shown with.
pub const PUBLIC: &str = "PUBLIC";

/// One entry of an object's ACL, as `aclexplode` gives it. An object whose ACL was never
/// changed (NULL: the owner's and PUBLIC's defaults apply) has none; a changed one has all of
/// its entries, the owner's included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Privilege {
    pub object_type: ObjectType,
    /// The object's name within its schema: a relation, sequence or type name, a function's
    /// `name(identity arguments)`, the schema's own name for a schema.
    pub object: String,
    /// For a column grant: the column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The role granted to, [`PUBLIC`] for everyone.
    pub grantee: String,
    pub grantor: String,
    /// `SELECT`, `INSERT`, `UPDATE`, `DELETE`, `TRUNCATE`, `REFERENCES`, `TRIGGER`, `USAGE`,
    /// `CREATE`, `EXECUTE`, ...
    pub privilege: String,
    /// Granted WITH GRANT OPTION.
    #[serde(default)]
    pub grantable: bool,
}

/// A row-level security policy of a relation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    /// Restrictive policies are ANDed; permissive ones ORed.
    #[serde(default = "permissive")]
    pub permissive: bool,
    /// `ALL`, `SELECT`, `INSERT`, `UPDATE` or `DELETE`.
    pub command: String,
    /// The roles it applies to, in name order; [`PUBLIC`] for everyone.
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub using: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_check: Option<String>,
    /// The columns of its relation that its expressions read, in column order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
}

fn permissive() -> bool {
    true
}

impl Policy {
    pub fn kind(&self) -> &'static str {
        match self.permissive {
            true => "permissive",
            false => "restrictive",
        }
    }
}

/// What the database grants by default on objects a role creates (`ALTER DEFAULT
/// PRIVILEGES`), one ACL entry each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DefaultPrivilege {
    /// The role whose new objects get it.
    pub role: String,
    /// Only in this schema; everywhere when null.
    pub schema: Option<String>,
    /// `table`, `sequence`, `function`, `type` or `schema`.
    pub object_type: String,
    pub grantee: String,
    pub privilege: String,
    pub grantable: bool,
}

/// A role of the source server, as `pg_roles` shows it (never its password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Role {
    pub name: String,
    pub login: bool,
    pub superuser: bool,
    pub createdb: bool,
    pub createrole: bool,
    pub inherit: bool,
    pub bypassrls: bool,
    pub replication: bool,
    /// -1 for no limit.
    pub connection_limit: i32,
    pub valid_until: Option<String>,
    /// The roles it is a member of, in name order.
    pub member_of: Vec<Membership>,
}

/// A role's membership in another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Membership {
    pub role: String,
    /// May grant the membership to others.
    pub admin_option: bool,
}

/// The database-wide access facts: roles that own or are granted anything in the snapshot
/// (and their members), and default privileges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub default_privileges: Vec<DefaultPrivilege>,
}
