//! Owners and privileges, after everything else as pg_dump prints them.
//!
//! Schemas, relations, types, sequences and functions get their owners back (`ALTER ...
//! OWNER TO`); a sequence that a column owns follows its table's. An object whose ACL was
//! changed lists all its entries, its owner's included: its defaults are revoked from `PUBLIC`
//! and from its owner first, then each entry is granted. An entry that a role other than the
//! owner granted (holding the grant option) is granted as that role (`SET ROLE`). Where the
//! snapshot names no owner (one stored before owners were read), the owner on the source is
//! the role that granted itself privileges. Column grants add to the relation's ACL. Default privileges
//! come last, so that they apply to what is created after the script, not by it. The roles
//! must exist where the script is loaded, as with pg_dump's output.

use std::collections::BTreeMap;

use super::quote::{ident, qualified};
use crate::catalog::access::{DefaultPrivilege, ObjectType, PUBLIC, Privilege};
use crate::catalog::{Schema, Snapshot, TypeKind};

/// `ALTER ... OWNER TO` of each schema, type, relation, sequence and function with an owner
/// (extensions' members are the extension's).
pub(super) fn owners(snapshot: &Snapshot) -> Vec<String> {
    let mut lines = Vec::new();
    let mut owned = |kind: &str, name: String, owner: &Option<String>| {
        if let Some(owner) = owner {
            lines.push(format!("ALTER {kind} {name} OWNER TO {};", ident(owner)));
        }
    };
    for s in &snapshot.schemas {
        owned("SCHEMA", ident(&s.name), &s.owner);
        for t in s.types.iter().filter(|t| t.extension.is_none()) {
            let kind = match t.kind {
                TypeKind::Domain => "DOMAIN",
                _ => "TYPE",
            };
            owned(kind, qualified(&s.name, &t.name), &t.owner);
        }
        for t in &s.tables {
            owned("TABLE", qualified(&s.name, &t.name), &t.owner);
        }
        // A sequence a column owns (serial, identity) changes owner with its table.
        let sequences = s.sequences.iter().filter(|q| q.extension.is_none());
        for q in sequences.filter(|q| q.owned_by.is_none()) {
            owned("SEQUENCE", qualified(&s.name, &q.name), &q.owner);
        }
        for f in s.functions.iter().filter(|f| f.extension.is_none()) {
            let kind = match f.kind.as_str() {
                "aggregate" => "AGGREGATE",
                _ => "ROUTINE",
            };
            let name = format!("{}({})", qualified(&s.name, &f.name), f.arguments);
            owned(kind, name, &f.owner);
        }
    }
    lines
}

/// The statements that give every object of `snapshot` its ACL, once [`owners`] ran.
pub(super) fn grants(snapshot: &Snapshot) -> Vec<String> {
    let mut lines = Vec::new();
    for s in &snapshot.schemas {
        let mut objects: BTreeMap<(ObjectType, &str), Vec<&Privilege>> = BTreeMap::new();
        for p in &s.privileges {
            objects
                .entry((p.object_type, p.object.as_str()))
                .or_default()
                .push(p);
        }
        for ((kind, object), entries) in objects {
            // An object the export does not create (an extension's) has no grants here.
            if let Some((target, owner)) = schema_object(s, kind, object) {
                acl(&mut lines, &target, owner, &entries);
            }
        }
        for t in &s.tables {
            let target = format!("TABLE {}", qualified(&s.name, &t.name));
            let (columns, own): (Vec<&Privilege>, Vec<&Privilege>) =
                t.privileges.iter().partition(|p| p.column.is_some());
            let owner = t.owner.as_deref().or_else(|| source_owner(&own));
            if !own.is_empty() {
                acl(&mut lines, &target, owner, &own);
            }
            for p in columns {
                let column = p.column.as_deref().unwrap_or_default();
                let on = format!("({}) ON {target}", ident(column));
                lines.extend(grant(p, &on, owner));
            }
        }
    }
    lines
}

/// How a `GRANT` names the schema's object `object` of kind `kind`, with its owner where the
/// snapshot names it, if the export creates the object.
fn schema_object<'a>(
    s: &'a Schema,
    kind: ObjectType,
    object: &str,
) -> Option<(String, Option<&'a str>)> {
    let name = |n: &str| qualified(&s.name, n);
    match kind {
        ObjectType::Schema => Some((format!("SCHEMA {}", ident(&s.name)), s.owner.as_deref())),
        ObjectType::Sequence => (s.sequences.iter())
            .find(|q| q.name == object && q.extension.is_none())
            .map(|q| (format!("SEQUENCE {}", name(&q.name)), q.owner.as_deref())),
        ObjectType::Type => (s.types.iter())
            .find(|t| t.name == object && t.extension.is_none())
            .map(|t| (format!("TYPE {}", name(&t.name)), t.owner.as_deref())),
        ObjectType::Function => (s.functions.iter())
            .filter(|f| f.extension.is_none())
            .find(|f| format!("{}({})", f.name, f.arguments) == object)
            .map(|f| {
                let target = format!("ROUTINE {}({})", name(&f.name), f.arguments);
                (target, f.owner.as_deref())
            }),
        ObjectType::Table | ObjectType::View | ObjectType::Column => None,
    }
}

/// Replaces the defaults of `target`, owned by `owner` (`None`: the role loading the script),
/// with its ACL `entries`.
fn acl(lines: &mut Vec<String>, target: &str, owner: Option<&str>, entries: &[&Privilege]) {
    let from = owner.map_or_else(|| "CURRENT_USER".to_owned(), ident);
    lines.push(format!("REVOKE ALL ON {target} FROM PUBLIC, {from};"));
    let owner = owner.or_else(|| source_owner(entries));
    for p in entries {
        lines.extend(grant(p, &format!("ON {target}"), owner));
    }
}

/// The role that owned the object on the source: the one that granted itself privileges.
fn source_owner<'a>(entries: &[&'a Privilege]) -> Option<&'a str> {
    entries
        .iter()
        .find(|p| p.grantee == p.grantor)
        .map(|p| p.grantor.as_str())
}

/// `GRANT` of one entry, `on` its object (`ON TABLE ...`, `(column) ON TABLE ...`), as its
/// grantor where that was not the owner.
fn grant(p: &Privilege, on: &str, owner: Option<&str>) -> Vec<String> {
    let statement = format!(
        "GRANT {} {on} TO {}{};",
        p.privilege,
        role(&p.grantee),
        grant_option(p.grantable)
    );
    match owner.is_some_and(|owner| owner != p.grantor) {
        true => vec![
            format!("SET ROLE {};", ident(&p.grantor)),
            statement,
            "RESET ROLE;".to_owned(),
        ],
        false => vec![statement],
    }
}

/// `ALTER DEFAULT PRIVILEGES` of the snapshot's default privileges. A role's entry for every
/// schema replaces the built-in defaults (it lists the role's own privileges too): those are
/// revoked first. An entry for one schema adds to them.
pub(super) fn default_privileges(snapshot: &Snapshot) -> Vec<String> {
    let Some(access) = &snapshot.access else {
        return Vec::new();
    };
    let mut entries: BTreeMap<(&str, Option<&str>, &str), Vec<&DefaultPrivilege>> = BTreeMap::new();
    for d in &access.default_privileges {
        let key = (d.role.as_str(), d.schema.as_deref(), d.object_type.as_str());
        entries.entry(key).or_default().push(d);
    }
    let mut lines = Vec::new();
    for ((owner, schema, object_type), entries) in entries {
        let Some(objects) = default_objects(object_type) else {
            continue;
        };
        let mut prefix = format!("ALTER DEFAULT PRIVILEGES FOR ROLE {}", ident(owner));
        if let Some(schema) = schema {
            prefix.push_str(&format!(" IN SCHEMA {}", ident(schema)));
        } else {
            lines.push(format!(
                "{prefix} REVOKE ALL ON {objects} FROM PUBLIC, {};",
                ident(owner)
            ));
        }
        for d in entries {
            lines.push(format!(
                "{prefix} GRANT {} ON {objects} TO {}{};",
                d.privilege,
                role(&d.grantee),
                grant_option(d.grantable)
            ));
        }
    }
    lines
}

/// The objects clause of `ALTER DEFAULT PRIVILEGES` for a default privilege's object type.
fn default_objects(object_type: &str) -> Option<&'static str> {
    match object_type {
        "table" => Some("TABLES"),
        "sequence" => Some("SEQUENCES"),
        "function" => Some("FUNCTIONS"),
        "type" => Some("TYPES"),
        "schema" => Some("SCHEMAS"),
        _ => None,
    }
}

/// A role as a grant or policy names it: `PUBLIC`, the keyword, for everyone.
pub(super) fn role(name: &str) -> String {
    match name {
        PUBLIC => PUBLIC.to_owned(),
        role => ident(role),
    }
}

fn grant_option(grantable: bool) -> &'static str {
    match grantable {
        true => " WITH GRANT OPTION",
        false => "",
    }
}
