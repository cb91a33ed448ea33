//! The definitions of a batch's indexes and constraints: printed by the worker where it can
//! (`printing`), asked of the server, in the read's snapshot, for the rest.

use std::collections::HashMap;

use sqlx::PgConnection;
use sqlx::postgres::types::Oid;

use super::printing::Printer;
use super::queries;

/// Every index's definition, in `indexes` order: printed here for plain indexes, asked of the
/// server (in the read's snapshot) for the others.
pub(super) async fn index_definitions(
    tx: &mut PgConnection,
    printer: &Printer,
    schema_names: &HashMap<Oid, String>,
    relations: &[queries::RelationRow],
    columns_of: &HashMap<Oid, &[queries::ColumnRow]>,
    indexes: &[queries::IndexRow],
) -> Result<Vec<String>, sqlx::Error> {
    let tables: HashMap<Oid, (&str, &str)> = relations
        .iter()
        .filter_map(|r| {
            Some((
                r.oid,
                (schema_names.get(&r.schema_oid)?.as_str(), r.name.as_str()),
            ))
        })
        .collect();
    let mut definitions: Vec<Option<String>> = indexes
        .iter()
        .map(|index| {
            let &(schema, table) = tables.get(&index.table_oid)?;
            let columns = columns_of
                .get(&index.table_oid)
                .copied()
                .unwrap_or_default();
            printer.index_definition(index, schema, table, columns)
        })
        .collect();
    let missing: Vec<Oid> = indexes
        .iter()
        .zip(&definitions)
        .filter(|(_, d)| d.is_none())
        .map(|(index, _)| index.oid)
        .collect();
    let printed = printed_by_server(tx, queries::INDEX_DEFINITIONS, &missing).await?;
    for (definition, index) in definitions.iter_mut().zip(indexes) {
        if definition.is_none() {
            *definition = printed.get(&index.oid).cloned();
        }
    }
    Ok(definitions
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// Fills in the definitions of the constraints the server left to the worker to print (see
/// [`queries::CONSTRAINTS`]); the server prints those the worker cannot, in the
/// introspection's snapshot.
pub(super) async fn constraint_definitions(
    tx: &mut PgConnection,
    printer: &Printer,
    columns_of: &HashMap<Oid, &[queries::ColumnRow]>,
    indexes: &[queries::IndexRow],
    constraints: &mut [queries::ConstraintRow],
) -> Result<(), sqlx::Error> {
    let index_of: HashMap<Oid, &queries::IndexRow> = indexes.iter().map(|i| (i.oid, i)).collect();
    let mut missing = Vec::new();
    for c in constraints.iter_mut().filter(|c| c.definition.is_none()) {
        let columns = columns_of.get(&c.table_oid).copied().unwrap_or_default();
        let index = index_of.get(&c.index_oid).copied();
        let referenced = columns_of.get(&c.ref_oid).copied();
        c.definition = printer.constraint_definition(c, columns, index, referenced);
        if c.definition.is_none() {
            missing.push(c.oid);
        }
    }
    let printed = printed_by_server(tx, queries::CONSTRAINT_DEFINITIONS, &missing).await?;
    for c in constraints.iter_mut().filter(|c| c.definition.is_none()) {
        c.definition = printed.get(&c.oid).cloned();
    }
    Ok(())
}

/// The definitions the server prints (`query`, given the oids as `$1`) of the objects `oids`,
/// by oid, in the introspection's snapshot; no query when there are none.
async fn printed_by_server(
    tx: &mut PgConnection,
    query: &'static str,
    oids: &[Oid],
) -> Result<HashMap<Oid, String>, sqlx::Error> {
    if oids.is_empty() {
        return Ok(HashMap::new());
    }
    let printed: Vec<(Oid, String)> = sqlx::query_as(query).bind(oids).fetch_all(tx).await?;
    Ok(printed.into_iter().collect())
}
