//! Assembling a snapshot from the rows the catalog queries read: schemas, relations and their
//! columns and keys first ([`skeleton`], while the rest is still read), then triggers, lineage,
//! types, sequences, functions and the database's facts ([`assemble_rest`]).

use std::collections::HashMap;

use sqlx::postgres::types::Oid;

use super::queries;
use crate::catalog::{
    Column, ColumnRef, Constraint, ConstraintKind, DatabaseInfo, ForeignKeyTarget, Function, Index,
    QualifiedName, RelationKind, Schema, Sequence, Snapshot, Table, Trigger, TypeAttribute,
    TypeDef, TypeKind,
};

/// Everything but the relations, their columns and keys (see [`skeleton`]), before assembly.
pub struct Rest {
    pub database: queries::DatabaseRow,
    pub size_bytes: Option<i64>,
    pub types: Vec<queries::TypeRow>,
    pub sequences: Vec<queries::SequenceRow>,
    pub functions: Vec<queries::FunctionRow>,
    pub triggers: Vec<queries::TriggerRow>,
    pub dependencies: Vec<queries::DependencyRow>,
}

/// The relations' indexes and constraints, with the indexes' definitions (in `indexes` order).
pub struct Keys {
    pub constraints: Vec<queries::ConstraintRow>,
    pub indexes: Vec<queries::IndexRow>,
    pub index_definitions: Vec<String>,
}

/// The types and collations of the columns, each read once.
pub struct ColumnTypes {
    pub types: HashMap<(Oid, i32), queries::ColumnTypeRow>,
    pub collations: HashMap<Oid, String>,
}

fn foreign_key_action(code: Option<String>) -> Option<String> {
    let action = match code?.as_str() {
        "a" => "no action",
        "r" => "restrict",
        "c" => "cascade",
        "n" => "set null",
        "d" => "set default",
        _ => return None,
    };
    Some(action.into())
}

/// Names of the columns `attnums` of the table at `pos` (its columns are in attnum order);
/// unknown numbers (0 for expressions) give empty names.
fn column_names(schemas: &[Schema], (si, ti): (usize, usize), attnums: &[i16]) -> Vec<String> {
    let columns = &schemas[si].tables[ti].columns;
    attnums
        .iter()
        .map(|&n| {
            columns
                .binary_search_by_key(&i32::from(n), |c| c.ordinal.unwrap_or_default())
                .map(|i| columns[i].name.clone())
                .unwrap_or_default()
        })
        .collect()
}

/// Where each schema and relation of a snapshot being assembled is, by oid.
pub struct Positions {
    schemas: HashMap<Oid, usize>,
    /// (schema index, table index).
    tables: HashMap<Oid, (usize, usize)>,
}

/// The first part of a snapshot: its schemas, with their relations and the relations'
/// columns, constraints and indexes.
pub fn skeleton(
    schemas: Vec<queries::SchemaRow>,
    relations: Vec<queries::RelationRow>,
    columns: Vec<queries::ColumnRow>,
    column_types: &ColumnTypes,
    keys: Keys,
) -> (Vec<Schema>, Positions) {
    let mut positions = Positions {
        schemas: HashMap::with_capacity(schemas.len()),
        tables: HashMap::with_capacity(relations.len()),
    };
    let mut schemas: Vec<Schema> = schemas
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            positions.schemas.insert(s.oid, i);
            Schema {
                name: s.name,
                owner: s.owner,
                comment: s.comment,
                ..Schema::default()
            }
        })
        .collect();

    for r in relations {
        let Some(&si) = positions.schemas.get(&r.schema_oid) else {
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
        positions.tables.insert(r.oid, (si, tables.len()));
        tables.push(Table {
            name: r.name,
            kind,
            owner: r.owner,
            comment: r.comment,
            row_estimate: r.row_estimate,
            total_bytes: r.total_bytes,
            unlogged: r.unlogged,
            rls_enabled: r.rls_enabled,
            partition_key: r.partition_key,
            definition: r.definition,
            partition_of: r
                .parent_schema
                .zip(r.parent_name)
                .map(|(schema, name)| QualifiedName { schema, name }),
            partition_bound: r.partition_bound,
            ..Table::default()
        });
    }

    let ColumnTypes { types, collations } = column_types;
    // A big catalog has a handful of distinct column types: found by a binary search in a
    // sorted list, where hashing each of 200,000 columns' (oid, modifier) cost more.
    let mut types: Vec<(Oid, i32, &queries::ColumnTypeRow)> =
        types.iter().map(|(&(oid, m), t)| (oid, m, t)).collect();
    types.sort_unstable_by_key(|&(oid, m, _)| (oid.0, m));
    let type_of = |oid: Oid, modifier: i32| {
        types
            .binary_search_by_key(&(oid.0, modifier), |&(o, m, _)| (o.0, m))
            .ok()
            .map(|i| types[i].2)
    };
    // Each table's columns come together (sorted by table): its table is looked up, and its
    // list allocated, once.
    let groups: Vec<(Oid, usize)> = columns
        .chunk_by(|a, b| a.table_oid == b.table_oid)
        .map(|group| (group[0].table_oid, group.len()))
        .collect();
    let mut columns = columns.into_iter();
    for (oid, count) in groups {
        let group = columns.by_ref().take(count);
        let Some(&(si, ti)) = positions.tables.get(&oid) else {
            group.for_each(drop);
            continue;
        };
        let list = &mut schemas[si].tables[ti].columns;
        list.reserve_exact(count);
        list.extend(group.map(|c| {
            let ty = type_of(c.type_oid, c.type_modifier);
            column(c, ty, collations)
        }));
    }
    add_keys(&mut schemas, &positions, keys);
    (schemas, positions)
}

/// A column of the snapshot from its row and its type's (`None` when the type is unknown).
fn column(
    c: queries::ColumnRow,
    ty: Option<&queries::ColumnTypeRow>,
    collations: &HashMap<Oid, String>,
) -> Column {
    // Every column's type is in the same snapshot; "???" is what format_type prints for an
    // unknown one.
    Column {
        name: c.name,
        data_type: ty.map_or_else(|| "???".to_owned(), |t| t.data_type.clone()),
        // A NOT NULL domain makes its columns NOT NULL.
        nullable: !(c.not_null || ty.is_some_and(|t| t.domain_not_null)),
        ordinal: Some(c.ordinal),
        default: c.default_expr,
        comment: c.comment,
        type_schema: ty.map(|t| t.type_schema.clone()),
        type_name: ty.map(|t| t.type_name.clone()),
        is_array: ty.is_some_and(|t| t.is_array),
        identity: c.identity,
        generated: c.generated,
        // Shown where it differs from the type's own.
        collation: ty
            .filter(|t| t.collation_oid != c.collation_oid)
            .and_then(|_| collations.get(&c.collation_oid).cloned()),
    }
}

/// Adds the relations' constraints and indexes to a [`skeleton`].
fn add_keys(schemas: &mut [Schema], positions: &Positions, keys: Keys) {
    let table = |oid: &Oid| positions.tables.get(oid).copied();
    for c in keys.constraints {
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
        let columns = column_names(schemas, (si, ti), &c.keys);
        let ref_columns = c
            .ref_columns
            .or_else(|| table(&c.ref_oid).map(|target| column_names(schemas, target, &c.ref_keys)));
        let references = match (c.ref_schema, c.ref_table, ref_columns) {
            (Some(schema), Some(table), Some(columns)) if kind == ConstraintKind::ForeignKey => {
                Some(ForeignKeyTarget {
                    schema,
                    table,
                    columns,
                    on_update: foreign_key_action(c.on_update),
                    on_delete: foreign_key_action(c.on_delete),
                })
            }
            _ => None,
        };
        schemas[si].tables[ti].constraints.push(Constraint {
            name: c.name,
            kind,
            columns,
            definition: c.definition,
            references,
            deferrable: c.deferrable,
            initially_deferred: c.initially_deferred,
        });
    }
    for (i, definition) in keys.indexes.into_iter().zip(keys.index_definitions) {
        let Some((si, ti)) = table(&i.table_oid) else {
            continue;
        };
        let key_count = (i.key_count.max(0) as usize).min(i.keys.len());
        let (key_attnums, include_attnums) = i.keys.split_at(key_count);
        let mut columns = column_names(schemas, (si, ti), key_attnums);
        if let Some(expressions) = i.expressions {
            // Expression keys (attnum 0) take pg_get_indexdef's text, in key order.
            for ((name, attnum), expression) in columns.iter_mut().zip(key_attnums).zip(expressions)
            {
                if *attnum == 0 {
                    *name = expression;
                }
            }
        }
        let include = column_names(schemas, (si, ti), include_attnums);
        schemas[si].tables[ti].indexes.push(Index {
            name: i.name,
            columns,
            include,
            unique: i.is_unique,
            primary: i.is_primary,
            method: Some(i.method),
            predicate: i.predicate,
            definition: Some(definition),
        });
    }
}

/// Adds the rest of the catalog to a [`skeleton`]: triggers, lineage, types, sequences,
/// functions and the database's facts.
pub fn assemble_rest(snapshot: &mut Snapshot, positions: &Positions, rows: Rest) {
    let schemas = &mut snapshot.schemas;
    let schema_pos = &positions.schemas;
    let table = |oid: &Oid| positions.tables.get(oid).copied();
    for t in rows.triggers {
        let Some((si, ti)) = table(&t.table_oid) else {
            continue;
        };
        schemas[si].tables[ti].triggers.push(Trigger {
            name: t.name,
            timing: t.timing,
            events: t.events,
            for_each: t.for_each,
            function: t.function,
            enabled: t.enabled,
            definition: t.definition,
        });
    }
    for d in rows.dependencies {
        let Some((si, ti)) = table(&d.view_oid) else {
            continue;
        };
        schemas[si].tables[ti].depends_on.push(QualifiedName {
            schema: d.ref_schema,
            name: d.ref_name,
        });
    }
    for t in rows.types {
        let Some(&si) = schema_pos.get(&t.schema_oid) else {
            continue;
        };
        let kind = match t.typtype.as_str() {
            "e" => TypeKind::Enum,
            "d" => TypeKind::Domain,
            _ => TypeKind::Composite,
        };
        schemas[si].types.push(TypeDef {
            name: t.name,
            kind,
            owner: t.owner,
            comment: t.comment,
            labels: t.labels,
            base_type: t.base_type,
            not_null: t.not_null,
            default: t.default_expr,
            checks: t.checks,
            attributes: t
                .attribute_names
                .into_iter()
                .zip(t.attribute_types)
                .map(|(name, data_type)| TypeAttribute { name, data_type })
                .collect(),
        });
    }
    for q in rows.sequences {
        let Some(&si) = schema_pos.get(&q.schema_oid) else {
            continue;
        };
        let owned_by = match (q.owned_by_schema, q.owned_by_table, q.owned_by_column) {
            (Some(schema), Some(table), Some(column)) => Some(ColumnRef {
                schema,
                table,
                column,
            }),
            _ => None,
        };
        schemas[si].sequences.push(Sequence {
            name: q.name,
            data_type: q.data_type,
            start: q.start_value,
            increment: q.increment,
            min: q.min_value,
            max: q.max_value,
            cache: q.cache,
            cycle: q.cycle,
            owned_by,
        });
    }
    for f in rows.functions {
        let Some(&si) = schema_pos.get(&f.schema_oid) else {
            continue;
        };
        schemas[si].functions.push(Function {
            name: f.name,
            arguments: f.arguments,
            result: f.result,
            language: f.language,
            kind: f.kind,
            comment: f.comment,
        });
    }

    let database = rows.database;
    snapshot.database = Some(DatabaseInfo {
        name: database.name,
        server_version: database.server_version,
        encoding: database.encoding,
        size_bytes: rows.size_bytes,
    });
}
