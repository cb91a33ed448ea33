//! Owners and privileges, after everything else as pg_dump prints them.
//!
//! Schemas, relations and types get their owners back (`ALTER ... OWNER TO`); the snapshot
//! names no owner of a sequence or function, which belong to the role that loads the script.
//! An object whose ACL was changed lists all its entries, its owner's included: its defaults
//! are revoked from `PUBLIC` and from its owner first, then each entry is granted. An entry
//! that a role other than the owner granted (holding the grant option) is granted as that role
//! (`SET ROLE`). Where the snapshot names no owner, the owner on the source is the role that
//! granted itself privileges. Column grants add to the relation's ACL. The roles must exist
//! where the script is loaded, as with pg_dump's output.

use std::collections::BTreeMap;

use super::quote::{ident, qualified};
use crate::catalog::access::{ObjectType, PUBLIC, Privilege};
use crate::catalog::{Schema, Snapshot, TypeKind};

/// `ALTER ... OWNER TO` of each schema, relation and type with an owner.
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
            .find(|q| q.name == object)
            .map(|q| (format!("SEQUENCE {}", name(&q.name)), None)),
        ObjectType::Type => (s.types.iter())
            .find(|t| t.name == object && t.extension.is_none())
            .map(|t| (format!("TYPE {}", name(&t.name)), t.owner.as_deref())),
        ObjectType::Function => (s.functions.iter())
            .filter(|f| f.extension.is_none())
            .find(|f| format!("{}({})", f.name, f.arguments) == object)
            .map(|f| (format!("ROUTINE {}({})", name(&f.name), f.arguments), None)),
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
    let grantee = match p.grantee.as_str() {
        PUBLIC => PUBLIC.to_owned(),
        role => ident(role),
    };
    let option = match p.grantable {
        true => " WITH GRANT OPTION",
        false => "",
    };
    let statement = format!("GRANT {} {on} TO {grantee}{option};", p.privilege);
    match owner.is_some_and(|owner| owner != p.grantor) {
        true => vec![
            format!("SET ROLE {};", ident(&p.grantor)),
            statement,
            "RESET ROLE;".to_owned(),
        ],
        false => vec![statement],
    }
}
