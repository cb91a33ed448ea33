//! Reading a source database's catalog straight from `pg_catalog`.
//!
//! Like `pg_dump` (since PostgreSQL 15), introspection runs a fixed handful of bulk queries, one
//! per object kind, each covering every relation of the included schemas at once (the schema
//! oids travel as one array), inside one read-only REPEATABLE READ transaction so all of them
//! see the same snapshot. The number of queries does not grow with the number of tables.

mod queries;

use std::collections::HashMap;
use std::time::Duration;

use sqlx::postgres::types::Oid;
use sqlx::{Connection, PgConnection};

use crate::catalog::{
    Column, Constraint, ConstraintKind, DatabaseInfo, ForeignKeyTarget, Index, QualifiedName,
    RelationKind, Schema, Snapshot, Table,
};

/// Options for one introspection run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bounds every catalog query on the source.
    pub statement_timeout: Duration,
}

/// Reads the whole catalog of the database `conn` is connected to.
pub async fn introspect(
    conn: &mut PgConnection,
    options: &Options,
) -> Result<Snapshot, sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    // SET LOCAL takes no bind parameters; set_config(.., true) is its bindable form.
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(format!("{}ms", options.statement_timeout.as_millis()))
        .execute(&mut *tx)
        .await?;

    let database: queries::DatabaseRow = sqlx::query_as(queries::DATABASE)
        .fetch_one(&mut *tx)
        .await?;
    let schema_rows: Vec<queries::SchemaRow> =
        sqlx::query_as(queries::SCHEMAS).fetch_all(&mut *tx).await?;
    let schema_oids: Vec<Oid> = schema_rows.iter().map(|s| s.oid).collect();

    let relations: Vec<queries::RelationRow> = sqlx::query_as(queries::RELATIONS)
        .bind(&schema_oids)
        .fetch_all(&mut *tx)
        .await?;
    let columns: Vec<queries::ColumnRow> = sqlx::query_as(queries::COLUMNS)
        .bind(&schema_oids)
        .fetch_all(&mut *tx)
        .await?;
    let constraints: Vec<queries::ConstraintRow> = sqlx::query_as(queries::CONSTRAINTS)
        .bind(&schema_oids)
        .fetch_all(&mut *tx)
        .await?;
    let indexes: Vec<queries::IndexRow> = sqlx::query_as(queries::INDEXES)
        .bind(&schema_oids)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;

    Ok(assemble(
        database,
        schema_rows,
        relations,
        columns,
        constraints,
        indexes,
    ))
}

fn assemble(
    database: queries::DatabaseRow,
    schema_rows: Vec<queries::SchemaRow>,
    relations: Vec<queries::RelationRow>,
    columns: Vec<queries::ColumnRow>,
    constraints: Vec<queries::ConstraintRow>,
    indexes: Vec<queries::IndexRow>,
) -> Snapshot {
    let mut schema_pos: HashMap<Oid, usize> = HashMap::with_capacity(schema_rows.len());
    let mut schemas: Vec<Schema> = schema_rows
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            schema_pos.insert(s.oid, i);
            Schema {
                name: s.name,
                owner: s.owner,
                comment: s.comment,
                tables: Vec::new(),
            }
        })
        .collect();

    // (schema index, table index) of every relation, by oid.
    let mut table_pos: HashMap<Oid, (usize, usize)> = HashMap::with_capacity(relations.len());
    for r in relations {
        let Some(&si) = schema_pos.get(&r.schema_oid) else {
            continue;
        };
        let kind = match r.relkind.as_str() {
            "p" => RelationKind::PartitionedTable,
            "v" => RelationKind::View,
            "m" => RelationKind::MaterializedView,
            "f" => RelationKind::ForeignTable,
            _ => RelationKind::Table,
        };
        let tables = &mut schemas[si].tables;
        table_pos.insert(r.oid, (si, tables.len()));
        tables.push(Table {
            name: r.name,
            kind,
            owner: r.owner,
            comment: r.comment,
            row_estimate: r.row_estimate,
            definition: r.definition,
            partition_of: r
                .parent_schema
                .zip(r.parent_name)
                .map(|(schema, name)| QualifiedName { schema, name }),
            partition_bound: r.partition_bound,
            ..Table::default()
        });
    }

    let table = |oid: &Oid| table_pos.get(oid).copied();
    for c in columns {
        let Some((si, ti)) = table(&c.table_oid) else {
            continue;
        };
        schemas[si].tables[ti].columns.push(Column {
            name: c.name,
            data_type: c.data_type,
            nullable: c.nullable,
            ordinal: Some(c.ordinal),
            default: c.default_expr,
            comment: c.comment,
        });
    }
    for c in constraints {
        let Some((si, ti)) = table(&c.table_oid) else {
            continue;
        };
        let kind = match c.contype.as_str() {
            "p" => ConstraintKind::PrimaryKey,
            "u" => ConstraintKind::Unique,
            "f" => ConstraintKind::ForeignKey,
            "x" => ConstraintKind::Exclusion,
            _ => ConstraintKind::Check,
        };
        let references = match (c.ref_schema, c.ref_table, c.ref_columns) {
            (Some(schema), Some(table), Some(columns)) if kind == ConstraintKind::ForeignKey => {
                Some(ForeignKeyTarget {
                    schema,
                    table,
                    columns,
                })
            }
            _ => None,
        };
        schemas[si].tables[ti].constraints.push(Constraint {
            name: c.name,
            kind,
            columns: c.columns,
            definition: c.definition,
            references,
        });
    }
    for i in indexes {
        let Some((si, ti)) = table(&i.table_oid) else {
            continue;
        };
        schemas[si].tables[ti].indexes.push(Index {
            name: i.name,
            columns: i.columns,
            unique: i.is_unique,
            primary: i.is_primary,
            method: Some(i.method),
            predicate: i.predicate,
            definition: i.definition,
        });
    }

    Snapshot {
        database: Some(DatabaseInfo {
            name: database.name,
            server_version: database.server_version,
            encoding: database.encoding,
            size_bytes: database.size_bytes,
        }),
        schemas,
    }
}
