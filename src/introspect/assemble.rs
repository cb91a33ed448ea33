//! Assembling the pieces of a catalog from the rows the catalog queries read: the schemas with
//! their types, sequences, functions and extensions ([`schemas`]), the links between relations ([`links`]),
//! and each batch of relations with their columns, keys and triggers ([`relations`]).

use std::collections::HashMap;

use sqlx::postgres::types::Oid;

use super::queries;
use crate::catalog::{
    Column, ColumnRef, Constraint, ConstraintKind, DatabaseObject, Dependent, Extension,
    ForeignKeyTarget, Function, Index, Links, Partition, QualifiedName, Relation, RelationKind,
    RelationUse, Schema, SchemaObject, Sequence, Table, Trigger, TypeAttribute, TypeDef, TypeKind,
};

/// The relations' indexes and constraints, with the indexes' definitions (in `indexes` order).
pub struct Keys {
    pub constraints: Vec<queries::ConstraintRow>,
    pub indexes: Vec<queries::IndexRow>,
    pub index_definitions: Vec<String>,
}

/// The types and collations of the columns, each read once.
#[derive(Clone, Default)]
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

/// Names of the columns `attnums` of `table` (its columns are in attnum order); unknown
/// numbers (0 for expressions) give empty names.
fn column_names(table: &Table, attnums: &[i16]) -> Vec<String> {
    let columns = &table.columns;
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

/// The rows of one batch of relations.
pub struct BatchRows {
    pub relations: Vec<queries::RelationRow>,
    /// Grouped by relation, in attnum order.
    pub columns: Vec<queries::ColumnRow>,
    pub keys: Keys,
    pub triggers: Vec<queries::TriggerRow>,
    pub privileges: Vec<queries::PrivilegeRow>,
    pub policies: Vec<queries::PolicyRow>,
}

/// The schemas of a catalog, with their types, sequences and functions, and their names by
/// oid; their relations come in batches ([`relations`]).
pub fn schemas(
    rows: Vec<queries::SchemaRow>,
    types: Vec<queries::TypeRow>,
    sequences: Vec<queries::SequenceRow>,
    functions: Vec<queries::FunctionRow>,
    extensions: Vec<queries::ExtensionRow>,
) -> (Vec<Schema>, HashMap<Oid, String>) {
    let positions: HashMap<Oid, usize> = rows.iter().enumerate().map(|(i, s)| (s.oid, i)).collect();
    let names = rows.iter().map(|s| (s.oid, s.name.clone())).collect();
    let mut schemas: Vec<Schema> = rows
        .into_iter()
        .map(|s| Schema {
            name: s.name,
            owner: s.owner,
            comment: s.comment,
            ..Schema::default()
        })
        .collect();
    add_schema_objects(&mut schemas, &positions, types, sequences, functions);
    for x in extensions {
        if let Some(&si) = positions.get(&x.schema_oid) {
            schemas[si].extensions.push(Extension {
                name: x.name,
                version: x.version,
                members: x.members.0,
            });
        }
    }
    (schemas, names)
}

/// Adds the rules, collations, extended statistics and text search configurations `rows` to
/// their schemas (`names` by oid), in the order of kind, relation and name.
pub fn add_other_objects(
    schemas: &mut [Schema],
    names: &HashMap<Oid, String>,
    rows: Vec<queries::SchemaObjectRow>,
) {
    let positions: HashMap<&str, usize> = schemas
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut placed: Vec<(usize, SchemaObject)> = rows
        .into_iter()
        .filter_map(|row| {
            let position = positions.get(names.get(&row.schema_oid)?.as_str())?;
            Some((*position, row.body.0))
        })
        .collect();
    placed.sort_by(|(a, x), (b, y)| {
        (a, x.kind().as_str(), x.relation(), x.name()).cmp(&(
            b,
            y.kind().as_str(),
            y.relation(),
            y.name(),
        ))
    });
    for (position, object) in placed {
        schemas[position].objects.push(object);
    }
}

/// The database's publications, event triggers, foreign data wrappers and servers, in the
/// order of kind and name.
pub fn database_objects(rows: Vec<queries::DatabaseObjectRow>) -> Vec<DatabaseObject> {
    let mut objects: Vec<DatabaseObject> = rows.into_iter().map(|row| row.body.0).collect();
    objects.sort_by(|a, b| (a.kind().as_str(), a.name()).cmp(&(b.kind().as_str(), b.name())));
    objects
}

/// The links between the relations of a catalog: its partitions and what its views read.
pub fn links(
    partitions: Vec<queries::PartitionRow>,
    dependencies: &[queries::DependencyRow],
) -> Links {
    let mut links = Links::default();
    for p in partitions {
        let parent = QualifiedName {
            schema: p.parent_schema,
            name: p.parent_name,
        };
        links.add_partition(
            &parent,
            Partition {
                schema: p.schema,
                name: p.name,
                partition_bound: p.partition_bound,
            },
        );
    }
    for d in dependencies {
        let target = QualifiedName {
            schema: d.ref_schema.clone(),
            name: d.ref_name.clone(),
        };
        links.add_dependent(
            &target,
            Dependent {
                schema: d.view_schema.clone(),
                name: d.view_name.clone(),
            },
        );
    }
    links.finish()
}

/// One batch of relations, with their columns, keys, triggers and what they read
/// (`depends_on`, by view oid).
pub fn relations(
    schema_names: &HashMap<Oid, String>,
    rows: BatchRows,
    column_types: &ColumnTypes,
    depends_on: &HashMap<Oid, Vec<RelationUse>>,
) -> Vec<Relation> {
    let mut positions = HashMap::with_capacity(rows.relations.len());
    let mut relations = Vec::with_capacity(rows.relations.len());
    for r in rows.relations {
        let Some(schema) = schema_names.get(&r.schema_oid) else {
            continue;
        };
        let kind = match r.relkind.as_str() {
            "p" => RelationKind::PartitionedTable,
            "v" => RelationKind::View,
            "m" => RelationKind::MaterializedView,
            "f" => RelationKind::ForeignTable,
            _ => RelationKind::Table,
        };
        positions.insert(r.oid, relations.len());
        relations.push(Relation {
            schema: schema.clone(),
            table: Table {
                name: r.name,
                kind,
                owner: r.owner,
                comment: r.comment,
                row_estimate: r.row_estimate,
                total_bytes: r.total_bytes,
                unlogged: r.unlogged,
                rls_enabled: r.rls_enabled,
                rls_forced: r.rls_forced,
                partition_key: r.partition_key,
                definition: r.definition,
                partition_of: r
                    .parent_schema
                    .zip(r.parent_name)
                    .map(|(schema, name)| QualifiedName { schema, name }),
                partition_bound: r.partition_bound,
                depends_on: depends_on.get(&r.oid).cloned().unwrap_or_default(),
                extension: r.extension,
                ..Table::default()
            },
        });
    }

    let ColumnTypes { types, collations } = column_types;
    // Each table's columns come together: its table is looked up, and its list allocated, once.
    let groups: Vec<(Oid, usize)> = rows
        .columns
        .chunk_by(|a, b| a.table_oid == b.table_oid)
        .map(|group| (group[0].table_oid, group.len()))
        .collect();
    let mut columns = rows.columns.into_iter();
    for (oid, count) in groups {
        let group = columns.by_ref().take(count);
        let Some(&i) = positions.get(&oid) else {
            group.for_each(drop);
            continue;
        };
        let list = &mut relations[i].table.columns;
        list.reserve_exact(count);
        list.extend(group.map(|c| {
            let ty = types.get(&(c.type_oid, c.type_modifier));
            column(c, ty, collations)
        }));
    }
    add_keys(&mut relations, &positions, rows.keys);
    for t in rows.triggers {
        let Some(&i) = positions.get(&t.table_oid) else {
            continue;
        };
        relations[i].table.triggers.push(Trigger {
            name: t.name,
            timing: t.timing,
            events: t.events,
            for_each: t.for_each,
            function: t.function,
            enabled: t.enabled,
            definition: t.definition,
            columns: t.columns.unwrap_or_default(),
        });
    }
    super::access::add_relation_access(&mut relations, &positions, rows.privileges, rows.policies);
    relations
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

/// Adds the batch's constraints and indexes to its relations.
fn add_keys(relations: &mut [Relation], positions: &HashMap<Oid, usize>, keys: Keys) {
    let table = |oid: &Oid| positions.get(oid).copied();
    for c in keys.constraints {
        let Some(i) = table(&c.table_oid) else {
            continue;
        };
        let kind = match c.contype.as_str() {
            "p" => ConstraintKind::PrimaryKey,
            "u" => ConstraintKind::Unique,
            "f" => ConstraintKind::ForeignKey,
            "x" => ConstraintKind::Exclusion,
            _ => ConstraintKind::Check,
        };
        let columns = column_names(&relations[i].table, &c.keys);
        let ref_columns = c.ref_columns.or_else(|| {
            table(&c.ref_oid).map(|target| column_names(&relations[target].table, &c.ref_keys))
        });
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
        relations[i].table.constraints.push(Constraint {
            name: c.name,
            kind,
            columns,
            definition: c.definition,
            references,
            deferrable: c.deferrable,
            initially_deferred: c.initially_deferred,
        });
    }
    for (index, definition) in keys.indexes.into_iter().zip(keys.index_definitions) {
        let Some(i) = table(&index.table_oid) else {
            continue;
        };
        let key_count = (index.key_count.max(0) as usize).min(index.keys.len());
        let (key_attnums, include_attnums) = index.keys.split_at(key_count);
        let table = &relations[i].table;
        let mut columns = column_names(table, key_attnums);
        if let Some(expressions) = index.expressions {
            // Expression keys (attnum 0) take pg_get_indexdef's text, in key order.
            for ((name, attnum), expression) in columns.iter_mut().zip(key_attnums).zip(expressions)
            {
                if *attnum == 0 {
                    *name = expression;
                }
            }
        }
        let include = column_names(table, include_attnums);
        let expression_columns = index
            .expression_keys
            .map(|keys| column_names(table, &keys))
            .unwrap_or_default();
        relations[i].table.indexes.push(Index {
            name: index.name,
            columns,
            include,
            expression_columns,
            unique: index.is_unique,
            primary: index.is_primary,
            method: Some(index.method),
            predicate: index.predicate,
            definition: Some(definition),
        });
    }
}

/// Adds their types, sequences and functions to `schemas`, whose positions are by oid.
fn add_schema_objects(
    schemas: &mut [Schema],
    positions: &HashMap<Oid, usize>,
    types: Vec<queries::TypeRow>,
    sequences: Vec<queries::SequenceRow>,
    functions: Vec<queries::FunctionRow>,
) {
    for t in types {
        let Some(&si) = positions.get(&t.schema_oid) else {
            continue;
        };
        let kind = match t.typtype.as_str() {
            "e" => TypeKind::Enum,
            "d" => TypeKind::Domain,
            "r" => TypeKind::Range,
            _ => TypeKind::Composite,
        };
        schemas[si].types.push(TypeDef {
            name: t.name,
            kind,
            owner: t.owner,
            comment: t.comment,
            labels: t.labels,
            base_type: t.base_type,
            range_options: t.range_options,
            not_null: t.not_null,
            default: t.default_expr,
            checks: t.checks,
            attributes: t
                .attribute_names
                .into_iter()
                .zip(t.attribute_types)
                .map(|(name, data_type)| TypeAttribute { name, data_type })
                .collect(),
            extension: t.extension,
        });
    }
    for q in sequences {
        let Some(&si) = positions.get(&q.schema_oid) else {
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
            owner: q.owner,
            data_type: q.data_type,
            start: q.start_value,
            increment: q.increment,
            min: q.min_value,
            max: q.max_value,
            cache: q.cache,
            cycle: q.cycle,
            owned_by,
            extension: q.extension,
        });
    }
    for f in functions {
        let Some(&si) = positions.get(&f.schema_oid) else {
            continue;
        };
        schemas[si].functions.push(Function {
            name: f.name,
            owner: f.owner,
            arguments: f.arguments,
            result: f.result,
            language: f.language,
            kind: f.kind,
            comment: f.comment,
            definition: f.definition,
            uses: f.uses.map(|u| u.0).unwrap_or_default(),
            extension: f.extension,
        });
    }
}
