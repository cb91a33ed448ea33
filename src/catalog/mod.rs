//! The metadata model: one snapshot of a source database's catalog.
//!
//! The same types are the wire contract of the external metadata service
//! (`POST {EXTERNAL_METADATA_URL}/api/metadata`): the original service's
//! `{"schemas":[{"name","tables":[{"name","columns":[{"name","type","nullable"}]}]}]}`,
//! extended with optional fields. Every field beyond that original shape has a default, so a
//! service that only speaks the original contract is still understood.

use serde::{Deserialize, Serialize};

/// Everything a sync reads from one source database.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseInfo>,
    pub schemas: Vec<Schema>,
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
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForeignKeyTarget {
    pub schema: String,
    pub table: String,
    pub columns: Vec<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
}

/// Counts of what a snapshot holds, kept with each sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStats {
    pub schemas: u64,
    pub tables: u64,
    pub columns: u64,
    pub constraints: u64,
    pub indexes: u64,
}

impl Snapshot {
    pub fn stats(&self) -> SnapshotStats {
        let tables = || self.schemas.iter().flat_map(|s| &s.tables);
        SnapshotStats {
            schemas: self.schemas.len() as u64,
            tables: tables().count() as u64,
            columns: tables().map(|t| t.columns.len() as u64).sum(),
            constraints: tables().map(|t| t.constraints.len() as u64).sum(),
            indexes: tables().map(|t| t.indexes.len() as u64).sum(),
        }
    }

    /// Checks what PostgreSQL itself guarantees of a catalog, so that a broken external
    /// service's payload is refused as a whole instead of being half-written.
    pub fn validate(&self) -> Result<(), String> {
        fn name(kind: &str, n: &str) -> Result<(), String> {
            if n.is_empty() {
                return Err(format!("{kind} with an empty name"));
            }
            if n.contains('\0') {
                return Err(format!("{kind} name contains a NUL byte"));
            }
            if n.len() > 1024 {
                return Err(format!("{kind} name longer than 1024 bytes"));
            }
            Ok(())
        }
        let mut schemas = std::collections::HashSet::new();
        for schema in &self.schemas {
            name("schema", &schema.name)?;
            if !schemas.insert(schema.name.as_str()) {
                return Err(format!("schema {:?} appears twice", schema.name));
            }
            let mut tables = std::collections::HashSet::new();
            for table in &schema.tables {
                name("table", &table.name)?;
                if !tables.insert(table.name.as_str()) {
                    return Err(format!(
                        "table {:?}.{:?} appears twice",
                        schema.name, table.name
                    ));
                }
                let mut columns = std::collections::HashSet::new();
                let mut ordinals = std::collections::HashSet::new();
                for (i, column) in table.columns.iter().enumerate() {
                    name("column", &column.name)?;
                    if column.data_type.is_empty() || column.data_type.contains('\0') {
                        return Err(format!(
                            "column {:?} of {:?}.{:?} has an invalid type",
                            column.name, schema.name, table.name
                        ));
                    }
                    if !columns.insert(column.name.as_str())
                        || !ordinals.insert(column.ordinal.unwrap_or(i as i32 + 1))
                    {
                        return Err(format!(
                            "column {:?} of {:?}.{:?} appears twice",
                            column.name, schema.name, table.name
                        ));
                    }
                }
                let mut constraints = std::collections::HashSet::new();
                for c in &table.constraints {
                    name("constraint", &c.name)?;
                    if !constraints.insert(c.name.as_str()) {
                        return Err(format!("constraint {:?} appears twice", c.name));
                    }
                }
                let mut indexes = std::collections::HashSet::new();
                for i in &table.indexes {
                    name("index", &i.name)?;
                    if !indexes.insert(i.name.as_str()) {
                        return Err(format!("index {:?} appears twice", i.name));
                    }
                }
            }
        }
        Ok(())
    }
}

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
