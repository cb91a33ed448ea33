//! Each relation's detail document (`GET /catalogs/{id}/tables/{schema}/{table}`), written with
//! its snapshot.
//!
//! A read of a table's detail is one primary-key lookup: the document is built by the worker
//! from the snapshot in memory when the relation is written, instead of being assembled by the
//! store from seven tables on every read.
//!
//! What moves without a rewrite is not in the document: the statistics (`row_estimate`,
//! `total_bytes`, refreshed in place) are read from `catalog_relations`, and the `href` is the
//! reader's; [`with_live_fields`] puts them in front.
//!
//! Nor are the columns, most of a document's bytes: the reader takes them from the relation's
//! column list (`catalog_column_lists`, one primary-key lookup more in the same statement),
//! and [`columns_member`] renders them.
//!
//! Lists are in byte order of their names (columns in ordinal order), whatever the store's
//! collation.

use std::sync::Arc;

use serde::Serialize;

use super::column_types;
use crate::catalog::{
    ConstraintKind, Dependent, Links, Partition, Policy, Privilege, RelationUse, Table,
};

#[derive(Serialize)]
struct Detail<'a> {
    schema: &'a str,
    name: &'a str,
    kind: &'static str,
    owner: Option<&'a str>,
    comment: Option<&'a str>,
    unlogged: bool,
    rls_enabled: bool,
    rls_forced: bool,
    column_count: usize,
    definition: Option<&'a str>,
    partition_key: Option<&'a str>,
    parent_schema: Option<&'a str>,
    parent_name: Option<&'a str>,
    partition_bound: Option<&'a str>,
    primary_key: &'a [String],
    constraints: Vec<Constraint<'a>>,
    indexes: Vec<Index<'a>>,
    triggers: Vec<Trigger<'a>>,
    partitions: &'a [Partition],
    depends_on: Vec<Name<'a>>,
    dependent_views: &'a [Dependent],
    privileges: Vec<Grant<'a>>,
    policies: Vec<PolicyItem<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extension: Option<&'a str>,
}

/// A privilege on the relation or one of its columns, as the relation's detail shows it.
#[derive(Serialize)]
struct Grant<'a> {
    object_type: &'static str,
    column: Option<&'a str>,
    grantee: &'a str,
    grantor: &'a str,
    privilege: &'a str,
    grantable: bool,
}

fn grant(p: &Privilege) -> Grant<'_> {
    Grant {
        object_type: p.object_type.as_str(),
        column: p.column.as_deref(),
        grantee: &p.grantee,
        grantor: &p.grantor,
        privilege: &p.privilege,
        grantable: p.grantable,
    }
}

/// A row-level security policy, as the relation's detail and the policy list show it.
#[derive(Serialize)]
struct PolicyItem<'a> {
    name: &'a str,
    kind: &'static str,
    command: &'a str,
    roles: &'a [String],
    using: Option<&'a str>,
    with_check: Option<&'a str>,
}

/// A policy as the detail document (and the store, with its kind spelled out) gives it, read
/// back as the model.
#[derive(serde::Deserialize, sqlx::FromRow)]
pub struct StoredPolicy {
    name: String,
    kind: String,
    command: String,
    roles: Vec<String>,
    using: Option<String>,
    with_check: Option<String>,
}

impl StoredPolicy {
    /// The policy, without the columns its expressions read (not kept in either form).
    pub fn into_policy(self) -> Policy {
        Policy {
            permissive: self.kind == "permissive",
            name: self.name,
            command: self.command,
            roles: self.roles,
            using: self.using,
            with_check: self.with_check,
            columns: Vec::new(),
        }
    }
}

fn policy(p: &Policy) -> PolicyItem<'_> {
    PolicyItem {
        name: &p.name,
        kind: p.kind(),
        command: &p.command,
        roles: &p.roles,
        using: p.using.as_deref(),
        with_check: p.with_check.as_deref(),
    }
}

#[derive(Serialize)]
struct Column<'a> {
    name: &'a str,
    ordinal: i32,
    #[serde(rename = "type")]
    data_type: &'a str,
    nullable: bool,
    default: Option<&'a str>,
    comment: Option<&'a str>,
    type_schema: Option<&'a str>,
    type_name: Option<&'a str>,
    is_array: bool,
    identity: Option<&'a str>,
    generated: Option<&'a str>,
    collation: Option<&'a str>,
}

#[derive(Serialize)]
struct Constraint<'a> {
    name: &'a str,
    kind: &'static str,
    columns: &'a [String],
    definition: Option<&'a str>,
    ref_schema: Option<&'a str>,
    ref_table: Option<&'a str>,
    ref_columns: Option<&'a [String]>,
    on_update: Option<&'a str>,
    on_delete: Option<&'a str>,
    deferrable: bool,
    initially_deferred: bool,
}

#[derive(Serialize)]
struct Index<'a> {
    name: &'a str,
    columns: &'a [String],
    include: &'a [String],
    unique: bool,
    primary: bool,
    method: Option<&'a str>,
    predicate: Option<&'a str>,
    definition: Option<&'a str>,
}

#[derive(Serialize)]
struct Trigger<'a> {
    name: &'a str,
    timing: &'a str,
    events: &'a [String],
    for_each: &'a str,
    function: &'a str,
    enabled: bool,
    definition: &'a str,
}

#[derive(Serialize, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
struct Name<'a> {
    schema: &'a str,
    name: &'a str,
}

fn name_of(q: &RelationUse) -> Name<'_> {
    Name {
        schema: &q.schema,
        name: &q.name,
    }
}

/// The detail document of the relation `t` of `schema`, as JSON text.
pub fn document(schema: &str, t: &Table, links: &Links) -> String {
    let mut constraints: Vec<Constraint> = t
        .constraints
        .iter()
        .map(|k| {
            let target = k.references.as_ref();
            Constraint {
                name: &k.name,
                kind: k.kind.as_str(),
                columns: &k.columns,
                definition: k.definition.as_deref(),
                ref_schema: target.map(|r| r.schema.as_str()),
                ref_table: target.map(|r| r.table.as_str()),
                ref_columns: target.map(|r| r.columns.as_slice()),
                on_update: target.and_then(|r| r.on_update.as_deref()),
                on_delete: target.and_then(|r| r.on_delete.as_deref()),
                deferrable: k.deferrable,
                initially_deferred: k.initially_deferred,
            }
        })
        .collect();
    constraints.sort_by_key(|k| k.name);
    let mut indexes: Vec<Index> = t
        .indexes
        .iter()
        .map(|i| Index {
            name: &i.name,
            columns: &i.columns,
            include: &i.include,
            unique: i.unique,
            primary: i.primary,
            method: i.method.as_deref(),
            predicate: i.predicate.as_deref(),
            definition: i.definition.as_deref(),
        })
        .collect();
    indexes.sort_by_key(|i| i.name);
    let mut triggers: Vec<Trigger> = t
        .triggers
        .iter()
        .map(|g| Trigger {
            name: &g.name,
            timing: &g.timing,
            events: &g.events,
            for_each: &g.for_each,
            function: &g.function,
            enabled: g.enabled,
            definition: &g.definition,
        })
        .collect();
    triggers.sort_by_key(|g| g.name);
    let mut depends_on: Vec<Name> = t.depends_on.iter().map(name_of).collect();
    depends_on.sort();
    depends_on.dedup();
    let primary_key = t
        .constraints
        .iter()
        .find(|k| k.kind == ConstraintKind::PrimaryKey)
        .map_or(&[][..], |k| k.columns.as_slice());
    let detail = Detail {
        schema,
        name: &t.name,
        kind: t.kind.as_str(),
        owner: t.owner.as_deref(),
        comment: t.comment.as_deref(),
        unlogged: t.unlogged,
        rls_enabled: t.rls_enabled,
        rls_forced: t.rls_forced,
        column_count: t.columns.len(),
        definition: t.definition.as_deref(),
        partition_key: t.partition_key.as_deref(),
        parent_schema: t.partition_of.as_ref().map(|p| p.schema.as_str()),
        parent_name: t.partition_of.as_ref().map(|p| p.name.as_str()),
        partition_bound: t.partition_bound.as_deref(),
        primary_key,
        constraints,
        indexes,
        triggers,
        partitions: links.partitions(schema, &t.name),
        depends_on,
        dependent_views: links.dependents(schema, &t.name),
        privileges: t.privileges.iter().map(grant).collect(),
        policies: t.policies.iter().map(policy).collect(),
        extension: t.extension.as_deref(),
    };
    serde_json::to_string(&detail).expect("a detail document serializes")
}

/// A relation's columns as its column list (`catalog_column_lists`) holds them: parallel
/// arrays, element i of each for column i; an optional attribute's array is `None` when no
/// column has it.
#[derive(Debug, Clone, Default)]
pub struct StoredColumns {
    pub ordinals: Vec<i32>,
    pub names: Vec<String>,
    /// Each column's type, `None` if the dictionary lacks it (it never should).
    pub types: Vec<Option<Arc<column_types::Named>>>,
    pub nullable: Vec<bool>,
    pub default_exprs: Option<Vec<Option<String>>>,
    pub comments: Option<Vec<Option<String>>>,
    pub is_array: Vec<bool>,
    pub identities: Option<Vec<Option<String>>>,
    pub generated: Option<Vec<Option<String>>>,
    pub collation_names: Option<Vec<Option<String>>>,
}

/// The `columns` member of a document (`"columns":[...]`), in ordinal order.
pub fn columns_member(list: &StoredColumns) -> String {
    fn at(values: &Option<Vec<Option<String>>>, i: usize) -> Option<&str> {
        values.as_ref()?.get(i)?.as_deref()
    }
    let mut columns: Vec<Column> = (0..list.names.len())
        .map(|i| {
            let ty = list.types.get(i).and_then(Option::as_deref);
            Column {
                name: &list.names[i],
                ordinal: list.ordinals.get(i).copied().unwrap_or(i as i32 + 1),
                data_type: ty.map_or("", |t| t.data_type.as_str()),
                nullable: list.nullable.get(i).copied().unwrap_or(true),
                default: at(&list.default_exprs, i),
                comment: at(&list.comments, i),
                type_schema: ty.and_then(|t| t.type_schema.as_deref()),
                type_name: ty.and_then(|t| t.type_name.as_deref()),
                is_array: list.is_array.get(i).copied().unwrap_or(false),
                identity: at(&list.identities, i),
                generated: at(&list.generated, i),
                collation: at(&list.collation_names, i),
            }
        })
        .collect();
    columns.sort_by_key(|c| c.ordinal);
    let mut member = String::from("\"columns\":");
    member.push_str(&serde_json::to_string(&columns).expect("columns serialize"));
    member
}

/// A stored document as served: the reader's `href` and the statistics as they are now in
/// front, then the document's members, then `columns` (a [`columns_member`]) when the
/// document leaves its columns out and they are wanted.
pub fn with_live_fields(
    detail: &str,
    columns: Option<&str>,
    href: &str,
    row_estimate: Option<i64>,
    total_bytes: Option<i64>,
) -> String {
    let rest = detail.strip_prefix('{').unwrap_or(detail);
    let live = serde_json::json!({
        "href": href, "row_estimate": row_estimate, "total_bytes": total_bytes,
    })
    .to_string();
    // `live` is a non-empty object: drop its closing brace and continue with the document's
    // members (a stored document always has some: its schema and name).
    let mut served =
        String::with_capacity(live.len() + rest.len() + columns.map_or(0, |c| c.len() + 1));
    served.push_str(&live[..live.len() - 1]);
    served.push(',');
    match columns {
        Some(columns) => {
            served.push_str(rest.strip_suffix('}').unwrap_or(rest));
            served.push(',');
            served.push_str(columns);
            served.push('}');
        }
        None => served.push_str(rest),
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_fields_join_the_stored_members() {
        let merged = with_live_fields(r#"{"schema":"s","name":"t"}"#, None, "/x", Some(3), None);
        let value: serde_json::Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"href": "/x", "row_estimate": 3, "total_bytes": null,
                               "schema": "s", "name": "t"})
        );
    }

    #[test]
    fn columns_follow_the_stored_members_in_ordinal_order() {
        let list = StoredColumns {
            ordinals: vec![2, 1],
            names: vec!["b".into(), "a".into()],
            types: ["text", "integer"]
                .map(|t| {
                    Some(Arc::new(column_types::Named {
                        data_type: t.into(),
                        type_schema: None,
                        type_name: None,
                    }))
                })
                .into(),
            nullable: vec![true, false],
            default_exprs: Some(vec![None, Some("0".into())]),
            is_array: vec![false, false],
            ..StoredColumns::default()
        };
        let merged = with_live_fields(
            r#"{"schema":"s","name":"t"}"#,
            Some(&columns_member(&list)),
            "/x",
            None,
            None,
        );
        let value: serde_json::Value = serde_json::from_str(&merged).unwrap();
        let column = |name: &str, ordinal: i32, ty: &str, nullable: bool, default: Option<&str>| {
            serde_json::json!({"name": name, "ordinal": ordinal, "type": ty,
                               "nullable": nullable, "default": default, "comment": null,
                               "type_schema": null, "type_name": null, "is_array": false,
                               "identity": null, "generated": null, "collation": null})
        };
        assert_eq!(
            value,
            serde_json::json!({"href": "/x", "row_estimate": null, "total_bytes": null,
                               "schema": "s", "name": "t",
                               "columns": [column("a", 1, "integer", false, Some("0")),
                                           column("b", 2, "text", true, None)]})
        );
    }
}
