//! The metadata model: one snapshot of a source database's catalog.
//!
//! The same types are the wire contract of the external metadata service
//! (`POST {EXTERNAL_METADATA_URL}/api/metadata`): the original service's
//! `{"schemas":[{"name","tables":[{"name","columns":[{"name","type","nullable"}]}]}]}`,
//! extended with optional fields. Every field beyond that original shape has a default, so a
//! service that only speaks the original contract is still understood.

pub mod access;
pub mod classify;
mod database_selection;
pub mod ddl;
pub mod effective;
mod links;
pub mod objects;
mod schema_filter;
mod stats;
mod stream;
mod validate;

use serde::{Deserialize, Serialize};

pub use access::{Access, ObjectType, Policy, Privilege};
pub use database_selection::{DatabaseSelection, Selected};
pub use links::{Dependent, Links, Partition};
pub use objects::{DatabaseObject, SchemaObject};
pub use schema_filter::SchemaFilter;
pub use stats::SnapshotStats;
pub use stream::{BATCH_RELATIONS, End, Head, Piece, Relation};

/// Everything a sync reads from one source database.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseInfo>,
    pub schemas: Vec<Schema>,
    /// Roles and default privileges, where the source reads them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    /// Publications, event triggers, foreign data wrappers and servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<DatabaseObject>,
}

/// Facts about the source database itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatabaseInfo {
    pub name: String,
    #[serde(default)]
    pub server_version: Option<String>,
    #[serde(default)]
    pub encoding: Option<String>,
    #[serde(default)]
    pub size_bytes: Option<i64>,
    /// What the source user could not read (say, a catalog whose SELECT was revoked): the rest
    /// is synced without it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default)]
    pub tables: Vec<Table>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<TypeDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequences: Vec<Sequence>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<Function>,
    /// The extensions installed in this schema (their own objects are not listed apart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<Extension>,
    /// The privileges on the schema itself and on its sequences, functions and types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<Privilege>,
    /// Its rules, collations, extended statistics and text search configurations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<SchemaObject>,
}

/// An extension, as `CREATE EXTENSION` installed it in its schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Extension {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The objects it owns. They are left out of every other list, count, comparison and DDL
    /// export as `pg_dump` leaves them out; its functions and types are also kept whole,
    /// marked with its name, for the lists that show them on request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<ExtensionMember>,
}

/// An object an extension owns, as `pg_identify_object` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExtensionMember {
    /// `function`, `table`, `type`, `operator`, and so on.
    #[serde(rename = "type")]
    pub object_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The object's identity, e.g. `public.similarity(text,text)`.
    pub identity: String,
}

/// What kind of relation a [`Table`] is (PostgreSQL's `relkind`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    #[default]
    Table,
    PartitionedTable,
    View,
    MaterializedView,
    ForeignTable,
}

impl RelationKind {
    pub const ALL: [RelationKind; 5] = [
        RelationKind::Table,
        RelationKind::PartitionedTable,
        RelationKind::View,
        RelationKind::MaterializedView,
        RelationKind::ForeignTable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RelationKind::Table => "table",
            RelationKind::PartitionedTable => "partitioned_table",
            RelationKind::View => "view",
            RelationKind::MaterializedView => "materialized_view",
            RelationKind::ForeignTable => "foreign_table",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A relation: ordinary or partitioned table, view, materialized view or foreign table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    #[serde(default)]
    pub kind: RelationKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The planner's row estimate (`reltuples`); `None` when never analyzed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_estimate: Option<i64>,
    /// Size on disk with indexes and TOAST, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub unlogged: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub rls_enabled: bool,
    /// Row-level security applies to the owner too (`FORCE ROW LEVEL SECURITY`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub rls_forced: bool,
    /// For a partitioned table: its partition key, e.g. `RANGE (payment_date)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<String>,
    /// View and materialized view definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    /// For a partition: its parent, as `schema.table` parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_of: Option<QualifiedName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_bound: Option<String>,
    #[serde(default)]
    pub columns: Vec<Column>,
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    #[serde(default)]
    pub indexes: Vec<Index>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Trigger>,
    /// For a view or materialized view: the relations it reads, with the columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<RelationUse>,
    /// The privileges on the relation and on its columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<Privilege>,
    /// Its row-level security policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    /// The extension that owns it (pg_partman's configuration, PostGIS's `spatial_ref_sys`):
    /// such relations are in no list, count or export unless asked for, as pg_dump leaves them
    /// out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
}

/// What a view or a SQL-standard function body reads of one relation, as the source's
/// `pg_depend` records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RelationUse {
    pub schema: String,
    pub name: String,
    /// The columns read, in column order; `None` for the whole relation (a whole-row
    /// reference, `count(*)`, or a source that does not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
}

impl RelationUse {
    /// `uses` with each relation once, in (schema, name) order, reading the union of the
    /// columns its entries read (the whole relation if any of them reads it whole).
    pub fn merged(uses: &[RelationUse]) -> Vec<RelationUse> {
        let mut sorted: Vec<&RelationUse> = uses.iter().collect();
        sorted.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
        sorted
            .chunk_by(|a, b| (&a.schema, &a.name) == (&b.schema, &b.name))
            .map(|same| {
                let columns = same.iter().try_fold(Vec::new(), |mut all, d| {
                    for c in d.columns.as_ref()? {
                        if !all.contains(c) {
                            all.push(c.clone());
                        }
                    }
                    Some(all)
                });
                RelationUse {
                    schema: same[0].schema.clone(),
                    name: same[0].name.clone(),
                    columns,
                }
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The type as `format_type` spells it, e.g. `character varying(20)`.
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    /// Position in the relation; when a source leaves it out, list order is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordinal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Schema and name of the underlying type (the element type for arrays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_array: bool,
    /// `always` or `by_default` for identity columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The expression of a stored generated column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collation: Option<String>,
}

/// Kind of a table constraint (PostgreSQL's `contype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintKind {
    PrimaryKey,
    Unique,
    ForeignKey,
    Check,
    Exclusion,
}

impl ConstraintKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConstraintKind::PrimaryKey => "primary_key",
            ConstraintKind::Unique => "unique",
            ConstraintKind::ForeignKey => "foreign_key",
            ConstraintKind::Check => "check",
            ConstraintKind::Exclusion => "exclusion",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::PrimaryKey,
            Self::Unique,
            Self::ForeignKey,
            Self::Check,
            Self::Exclusion,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Constraint {
    pub name: String,
    pub kind: ConstraintKind,
    /// Constrained columns, in key order.
    #[serde(default)]
    pub columns: Vec<String>,
    /// `pg_get_constraintdef` text, e.g. `CHECK ((price > 0))`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    /// For a foreign key: the referenced table and columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<ForeignKeyTarget>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deferrable: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub initially_deferred: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForeignKeyTarget {
    pub schema: String,
    pub table: String,
    pub columns: Vec<String>,
    /// `no action`, `restrict`, `cascade`, `set null` or `set default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_update: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_delete: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    /// Key columns or expressions, in order.
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub primary: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<String>,
    /// Non-key columns of `INCLUDE (...)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// The columns its key expressions and predicate read, in column order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expression_columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
}

/// A user-defined type: enum, domain, composite or range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeDef {
    pub name: String,
    pub kind: TypeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Enum labels in sort order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Domain: the base type, NOT NULL, default and CHECK constraints. Range: the subtype.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_type: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub not_null: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
    /// Composite: its attributes in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<TypeAttribute>,
    /// Range: its options besides the subtype, as `CREATE TYPE ... AS RANGE` takes them
    /// (`SUBTYPE_DIFF = float8mi`), where it has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_options: Option<String>,
    /// The extension that owns it: such a type is not the schema author's (see
    /// [`Extension`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeKind {
    Enum,
    Domain,
    Composite,
    Range,
}

impl TypeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TypeKind::Enum => "enum",
            TypeKind::Domain => "domain",
            TypeKind::Composite => "composite",
            TypeKind::Range => "range",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Enum, Self::Domain, Self::Composite, Self::Range]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeAttribute {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequence {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
    /// The column that owns the sequence (serial and identity columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<ColumnRef>,
    /// The extension that owns it: such a sequence is not the schema author's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnRef {
    pub schema: String,
    pub table: String,
    pub column: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Function {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Identity arguments, e.g. `p_film_id integer, p_store_id integer`.
    pub arguments: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    pub language: String,
    /// `function`, `procedure`, `aggregate` or `window`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The statement that creates it: `pg_get_functiondef`'s text, or for an aggregate a
    /// `CREATE AGGREGATE` built from `pg_aggregate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    /// For a SQL-standard body (`BEGIN ATOMIC` or `RETURN`): the relations and columns it
    /// reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uses: Vec<RelationUse>,
    /// The extension that owns it: such a function is not the schema author's (see
    /// [`Extension`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub name: String,
    /// `BEFORE`, `AFTER` or `INSTEAD OF`.
    pub timing: String,
    /// Some of `INSERT`, `UPDATE`, `DELETE`, `TRUNCATE`.
    pub events: Vec<String>,
    /// `ROW` or `STATEMENT`.
    pub for_each: String,
    /// The trigger function, schema-qualified.
    pub function: String,
    pub enabled: bool,
    pub definition: String,
    /// The columns of its `UPDATE OF` list and those its `WHEN` condition reads, in column
    /// order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
}

/// Longest name accepted from a metadata service. PostgreSQL's own limit is 63 bytes; this
/// leaves room while keeping the store's composite keys within btree limits.
pub const MAX_NAME_BYTES: usize = 255;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_contract_parses() {
        let body = r#"{"schemas":[{"name":"public","tables":[{"name":"users","columns":[
            {"name":"id","type":"integer","nullable":false},
            {"name":"email","type":"text","nullable":true}]}]}]}"#;
        let snapshot: Snapshot = serde_json::from_str(body).unwrap();
        let table = &snapshot.schemas[0].tables[0];
        assert_eq!(table.kind, RelationKind::Table);
        assert_eq!(table.columns[1].data_type, "text");
        assert!(table.columns[1].nullable);
        assert_eq!(snapshot.stats().columns, 2);
        snapshot.validate().unwrap();
    }

    #[test]
    fn duplicate_and_nul_names_are_refused() {
        let mut snapshot = Snapshot {
            database: None,
            access: None,
            objects: Vec::new(),
            schemas: vec![Schema {
                name: "s".into(),
                tables: vec![Table {
                    name: "t".into(),
                    ..Table::default()
                }],
                ..Schema::default()
            }],
        };
        snapshot.schemas.push(snapshot.schemas[0].clone());
        assert!(snapshot.validate().unwrap_err().contains("appears twice"));
        snapshot.schemas.pop();
        snapshot.schemas[0].tables[0].name = "a\0b".into();
        assert!(snapshot.validate().unwrap_err().contains("NUL"));
    }
}
