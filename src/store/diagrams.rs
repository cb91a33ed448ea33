//! Reads of what an entity-relationship diagram shows: a schema's tables (or a chosen few) with
//! their columns and their key constraints, as the model's [`Table`]s (see [`crate::erd`]).

use std::collections::HashMap;

use sqlx::PgConnection;
use uuid::Uuid;

use super::column_types;
use crate::catalog::{
    Column, Constraint, ConstraintKind, ForeignKeyTarget, QualifiedName, RelationKind, Table,
};

/// The relation kinds a diagram draws: those that hold rows and keys (views and materialized
/// views have no keys to draw).
pub const DRAWN_KINDS: [RelationKind; 3] = [
    RelationKind::Table,
    RelationKind::PartitionedTable,
    RelationKind::ForeignTable,
];

/// Which relations to read.
#[derive(Debug, Clone)]
pub enum Selection<'a> {
    /// Every drawn relation of the catalog.
    Catalog,
    /// Every drawn relation of a schema.
    Schema(&'a str),
    /// These relations, if they exist and are drawn.
    Relations(&'a [QualifiedName]),
}

/// A relation with its columns and its primary-key, unique and foreign-key constraints.
#[derive(Debug, Clone)]
pub struct DiagramTable {
    pub schema: String,
    pub table: Table,
}

/// The relations `selection` names, in (schema, name) order, each with its columns (in ordinal
/// order) and key constraints, in two statements and a lookup of the columns' types. A catalog
/// or a schema is drawn without its extensions' relations; named ones are drawn.
pub async fn tables(
    conn: &mut PgConnection,
    catalog_id: Uuid,
    selection: Selection<'_>,
) -> sqlx::Result<Vec<DiagramTable>> {
    let everything = matches!(selection, Selection::Catalog);
    let (schema, schemas, names) = match selection {
        Selection::Catalog => (None, Vec::new(), Vec::new()),
        Selection::Schema(schema) => (Some(schema), Vec::new(), Vec::new()),
        Selection::Relations(relations) => (
            None,
            relations.iter().map(|r| r.schema.as_str()).collect(),
            relations.iter().map(|r| r.name.as_str()).collect(),
        ),
    };
    let kinds: Vec<&str> = DRAWN_KINDS.iter().map(|k| k.as_str()).collect();
    let relations = sqlx::query!(
        r#"SELECT r.schema_name, r.name, r.kind, r.parent_schema, r.parent_name,
                  l.names AS "names?", l.type_keys AS "type_keys?", l.nullable AS "nullable?"
           FROM catalog_relations r
           LEFT JOIN catalog_column_lists l
             ON l.catalog_id = r.catalog_id AND l.schema_name = r.schema_name
            AND l.relation_name = r.name
           WHERE r.catalog_id = $1 AND r.kind = ANY($2::text[])
             AND ((r.extension IS NULL AND ($6 OR r.schema_name = $3))
                  OR (r.schema_name, r.name) IN (SELECT * FROM UNNEST($4::text[], $5::text[])))
           ORDER BY r.schema_name, r.name"#,
        catalog_id,
        &kinds as &[&str],
        schema,
        &schemas as &[&str],
        &names as &[&str],
        everything,
    )
    .fetch_all(&mut *conn)
    .await?;
    let constraints = sqlx::query!(
        r#"SELECT schema_name, relation_name, name, kind, columns, ref_schema, ref_table,
                  ref_columns
           FROM catalog_constraints
           WHERE catalog_id = $1 AND kind IN ('primary_key', 'unique', 'foreign_key')
             AND ($5 OR schema_name = $2
                  OR (schema_name, relation_name) IN (SELECT * FROM UNNEST($3::text[], $4::text[])))
           ORDER BY schema_name, relation_name, name"#,
        catalog_id,
        schema,
        &schemas as &[&str],
        &names as &[&str],
        everything,
    )
    .fetch_all(&mut *conn)
    .await?;
    let types = column_types::named(
        conn,
        relations
            .iter()
            .flat_map(|r| r.type_keys.iter().flatten().copied()),
    )
    .await?;
    let mut found: Vec<DiagramTable> = relations
        .into_iter()
        .map(|r| {
            let names = r.names.unwrap_or_default();
            let keys = r.type_keys.unwrap_or_default();
            let nullable = r.nullable.unwrap_or_default();
            let columns = names
                .into_iter()
                .enumerate()
                .map(|(i, name)| Column {
                    name,
                    data_type: keys
                        .get(i)
                        .and_then(|k| types.get(k))
                        .map_or_else(String::new, |t| t.data_type.clone()),
                    nullable: nullable.get(i).copied().unwrap_or(true),
                    ordinal: Some(i as i32 + 1),
                    ..Column::default()
                })
                .collect();
            let partition_of = r
                .parent_schema
                .zip(r.parent_name)
                .map(|(schema, name)| QualifiedName { schema, name });
            DiagramTable {
                schema: r.schema_name,
                table: Table {
                    name: r.name,
                    kind: RelationKind::parse(&r.kind).unwrap_or_default(),
                    partition_of,
                    columns,
                    ..Table::default()
                },
            }
        })
        .collect();
    let mut keys: HashMap<(String, String), Vec<Constraint>> = HashMap::new();
    for c in constraints {
        let Some(kind) = ConstraintKind::parse(&c.kind) else {
            continue;
        };
        let references = match (c.ref_schema, c.ref_table) {
            (Some(schema), Some(table)) if kind == ConstraintKind::ForeignKey => {
                Some(ForeignKeyTarget {
                    schema,
                    table,
                    columns: c.ref_columns.unwrap_or_default(),
                    on_update: None,
                    on_delete: None,
                })
            }
            _ => None,
        };
        keys.entry((c.schema_name, c.relation_name))
            .or_default()
            .push(Constraint {
                name: c.name,
                kind,
                columns: c.columns,
                definition: None,
                references,
                deferrable: false,
                initially_deferred: false,
            });
    }
    for t in &mut found {
        let key = (
            std::mem::take(&mut t.schema),
            std::mem::take(&mut t.table.name),
        );
        t.table.constraints = keys.remove(&key).unwrap_or_default();
        (t.schema, t.table.name) = key;
    }
    Ok(found)
}

/// The relations that `relation` references with a foreign key, and those that reference it
/// (itself included when it references itself), in (schema, name) order, without duplicates.
pub async fn neighbours(
    conn: &mut PgConnection,
    catalog_id: Uuid,
    relation: &QualifiedName,
) -> sqlx::Result<Vec<QualifiedName>> {
    let rows = sqlx::query!(
        r#"SELECT ref_schema AS "schema!", ref_table AS "name!"
           FROM catalog_constraints
           WHERE catalog_id = $1 AND schema_name = $2 AND relation_name = $3
             AND kind = 'foreign_key' AND ref_schema IS NOT NULL AND ref_table IS NOT NULL
           UNION
           SELECT schema_name, relation_name
           FROM catalog_constraints
           WHERE catalog_id = $1 AND kind = 'foreign_key' AND ref_schema = $2 AND ref_table = $3
           ORDER BY 1, 2"#,
        catalog_id,
        relation.schema,
        relation.name,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| QualifiedName {
            schema: r.schema,
            name: r.name,
        })
        .collect())
}
