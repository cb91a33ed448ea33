//! The current snapshot of each catalog: schemas, relations, columns, constraints, indexes.
//!
//! A sync replaces the whole snapshot in one transaction (delete, then one bulk insert per
//! table), so readers see either the old or the new snapshot, never a mix.

use serde_json::json;
use uuid::Uuid;

use super::Tx;
use crate::catalog::Snapshot;

/// Takes the catalog's row lock: two snapshot writes of one catalog never interleave.
pub async fn lock_catalog(tx: &mut Tx<'_>, catalog_id: Uuid) -> sqlx::Result<bool> {
    let found = sqlx::query_scalar!(
        r#"SELECT id FROM catalogs WHERE id = $1 FOR UPDATE"#,
        catalog_id
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}

/// Replaces the catalog's snapshot with `snapshot`. The caller holds [`lock_catalog`].
pub async fn replace(tx: &mut Tx<'_>, catalog_id: Uuid, snapshot: &Snapshot) -> sqlx::Result<()> {
    for delete in [
        "DELETE FROM catalog_dependencies WHERE catalog_id = $1",
        "DELETE FROM catalog_triggers WHERE catalog_id = $1",
        "DELETE FROM catalog_functions WHERE catalog_id = $1",
        "DELETE FROM catalog_sequences WHERE catalog_id = $1",
        "DELETE FROM catalog_types WHERE catalog_id = $1",
        "DELETE FROM catalog_indexes WHERE catalog_id = $1",
        "DELETE FROM catalog_constraints WHERE catalog_id = $1",
        "DELETE FROM catalog_columns WHERE catalog_id = $1",
        "DELETE FROM catalog_relations WHERE catalog_id = $1",
        "DELETE FROM catalog_schemas WHERE catalog_id = $1",
    ] {
        sqlx::query(delete)
            .bind(catalog_id)
            .execute(&mut **tx)
            .await?;
    }

    let schemas = &snapshot.schemas;
    sqlx::query!(
        r#"INSERT INTO catalog_schemas (catalog_id, name, owner, comment)
           SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[])"#,
        catalog_id,
        &schemas.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        &schemas.iter().map(|s| s.owner.clone()).collect::<Vec<_>>() as &[Option<String>],
        &schemas
            .iter()
            .map(|s| s.comment.clone())
            .collect::<Vec<_>>() as &[Option<String>],
    )
    .execute(&mut **tx)
    .await?;

    let tables: Vec<_> = schemas
        .iter()
        .flat_map(|s| s.tables.iter().map(move |t| (s.name.as_str(), t)))
        .collect();
    let mut r = RelationColumns::default();
    for (schema, t) in &tables {
        r.schema.push(schema.to_string());
        r.name.push(t.name.clone());
        r.kind.push(t.kind.as_str().to_string());
        r.owner.push(t.owner.clone());
        r.comment.push(t.comment.clone());
        r.row_estimate.push(t.row_estimate);
        r.definition.push(t.definition.clone());
        r.parent_schema
            .push(t.partition_of.as_ref().map(|p| p.schema.clone()));
        r.parent_name
            .push(t.partition_of.as_ref().map(|p| p.name.clone()));
        r.partition_bound.push(t.partition_bound.clone());
        r.column_count.push(t.columns.len() as i32);
        r.total_bytes.push(t.total_bytes);
        r.unlogged.push(t.unlogged);
        r.rls_enabled.push(t.rls_enabled);
        r.partition_key.push(t.partition_key.clone());
    }
    sqlx::query!(
        r#"INSERT INTO catalog_relations (catalog_id, schema_name, name, kind, owner, comment,
               row_estimate, definition, parent_schema, parent_name, partition_bound, column_count,
               total_bytes, unlogged, rls_enabled, partition_key)
           SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
               $7::int8[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int4[],
               $13::int8[], $14::bool[], $15::bool[], $16::text[])"#,
        catalog_id,
        &r.schema,
        &r.name,
        &r.kind,
        &r.owner as &[Option<String>],
        &r.comment as &[Option<String>],
        &r.row_estimate as &[Option<i64>],
        &r.definition as &[Option<String>],
        &r.parent_schema as &[Option<String>],
        &r.parent_name as &[Option<String>],
        &r.partition_bound as &[Option<String>],
        &r.column_count,
        &r.total_bytes as &[Option<i64>],
        &r.unlogged,
        &r.rls_enabled,
        &r.partition_key as &[Option<String>],
    )
    .execute(&mut **tx)
    .await?;

    let mut c = ColumnColumns::default();
    for (schema, t) in &tables {
        for (i, col) in t.columns.iter().enumerate() {
            c.schema.push(schema.to_string());
            c.relation.push(t.name.clone());
            c.ordinal.push(col.ordinal.unwrap_or(i as i32 + 1));
            c.name.push(col.name.clone());
            c.data_type.push(col.data_type.clone());
            c.nullable.push(col.nullable);
            c.default.push(col.default.clone());
            c.comment.push(col.comment.clone());
            c.type_schema.push(col.type_schema.clone());
            c.type_name.push(col.type_name.clone());
            c.is_array.push(col.is_array);
            c.identity.push(col.identity.clone());
            c.generated.push(col.generated.clone());
            c.collation.push(col.collation.clone());
        }
    }
    sqlx::query!(
        r#"INSERT INTO catalog_columns (catalog_id, schema_name, relation_name, ordinal, name,
               data_type, nullable, default_expr, comment, type_schema, type_name, is_array,
               identity, generated, collation_name)
           SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::int4[], $5::text[], $6::text[],
               $7::bool[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bool[],
               $13::text[], $14::text[], $15::text[])"#,
        catalog_id,
        &c.schema,
        &c.relation,
        &c.ordinal,
        &c.name,
        &c.data_type,
        &c.nullable,
        &c.default as &[Option<String>],
        &c.comment as &[Option<String>],
        &c.type_schema as &[Option<String>],
        &c.type_name as &[Option<String>],
        &c.is_array,
        &c.identity as &[Option<String>],
        &c.generated as &[Option<String>],
        &c.collation as &[Option<String>],
    )
    .execute(&mut **tx)
    .await?;

    // Constraints and indexes carry column lists (arrays per row), which UNNEST cannot take as
    // a ragged 2-D array; one jsonb document per table kind does the same in one statement.
    let constraints: Vec<_> = tables
        .iter()
        .flat_map(|(schema, t)| {
            t.constraints.iter().map(move |con| {
                json!({
                    "schema_name": schema, "relation_name": t.name, "name": con.name,
                    "kind": con.kind.as_str(), "columns": con.columns, "definition": con.definition,
                    "ref_schema": con.references.as_ref().map(|r| &r.schema),
                    "ref_table": con.references.as_ref().map(|r| &r.table),
                    "ref_columns": con.references.as_ref().map(|r| &r.columns),
                    "on_update": con.references.as_ref().and_then(|r| r.on_update.as_ref()),
                    "on_delete": con.references.as_ref().and_then(|r| r.on_delete.as_ref()),
                    "is_deferrable": con.deferrable, "is_deferred": con.initially_deferred,
                })
            })
        })
        .collect();
    sqlx::query!(
        r#"INSERT INTO catalog_constraints (catalog_id, schema_name, relation_name, name, kind,
               columns, definition, ref_schema, ref_table, ref_columns, on_update, on_delete,
               is_deferrable, is_deferred)
           SELECT $1, r.schema_name, r.relation_name, r.name, r.kind, r.columns, r.definition,
                  r.ref_schema, r.ref_table, r.ref_columns, r.on_update, r.on_delete,
                  r.is_deferrable, r.is_deferred
           FROM jsonb_to_recordset($2::jsonb) AS r(schema_name text, relation_name text, name text,
               kind text, columns text[], definition text, ref_schema text, ref_table text,
               ref_columns text[], on_update text, on_delete text, is_deferrable boolean,
               is_deferred boolean)"#,
        catalog_id,
        serde_json::Value::Array(constraints),
    )
    .execute(&mut **tx)
    .await?;

    let indexes: Vec<_> = tables
        .iter()
        .flat_map(|(schema, t)| {
            t.indexes.iter().map(move |i| {
                json!({
                    "schema_name": schema, "relation_name": t.name, "name": i.name,
                    "columns": i.columns, "is_unique": i.unique, "is_primary": i.primary,
                    "method": i.method, "predicate": i.predicate, "definition": i.definition,
                    "include_columns": i.include,
                })
            })
        })
        .collect();
    sqlx::query!(
        r#"INSERT INTO catalog_indexes (catalog_id, schema_name, relation_name, name, columns,
               is_unique, is_primary, method, predicate, definition, include_columns)
           SELECT $1, r.schema_name, r.relation_name, r.name, r.columns, r.is_unique,
                  r.is_primary, r.method, r.predicate, r.definition, r.include_columns
           FROM jsonb_to_recordset($2::jsonb) AS r(schema_name text, relation_name text, name text,
               columns text[], is_unique boolean, is_primary boolean, method text, predicate text,
               definition text, include_columns text[])"#,
        catalog_id,
        serde_json::Value::Array(indexes),
    )
    .execute(&mut **tx)
    .await?;

    replace_schema_objects(tx, catalog_id, snapshot).await?;
    replace_triggers_and_dependencies(tx, catalog_id, &tables).await?;

    let database = snapshot.database.as_ref().map(|d| json!(d));
    sqlx::query!(
        r#"UPDATE catalogs SET synced_at = now(), database = $2 WHERE id = $1"#,
        catalog_id,
        database
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Types, sequences and functions: one jsonb document per kind.
async fn replace_schema_objects(
    tx: &mut Tx<'_>,
    catalog_id: Uuid,
    snapshot: &Snapshot,
) -> sqlx::Result<()> {
    let schemas = &snapshot.schemas;
    let types: Vec<_> = schemas
        .iter()
        .flat_map(|s| {
            s.types.iter().map(move |t| {
                json!({
                    "schema_name": s.name, "name": t.name, "kind": t.kind.as_str(), "owner": t.owner,
                    "comment": t.comment, "labels": t.labels, "base_type": t.base_type,
                    "not_null": t.not_null, "default_expr": t.default, "checks": t.checks,
                    "attributes": t.attributes,
                })
            })
        })
        .collect();
    sqlx::query!(
        r#"INSERT INTO catalog_types (catalog_id, schema_name, name, kind, owner, comment, labels,
               base_type, not_null, default_expr, checks, attributes)
           SELECT $1, r.schema_name, r.name, r.kind, r.owner, r.comment, r.labels, r.base_type,
                  r.not_null, r.default_expr, r.checks, r.attributes
           FROM jsonb_to_recordset($2::jsonb) AS r(schema_name text, name text, kind text,
               owner text, comment text, labels text[], base_type text, not_null boolean,
               default_expr text, checks text[], attributes jsonb)"#,
        catalog_id,
        serde_json::Value::Array(types),
    )
    .execute(&mut **tx)
    .await?;

    let sequences: Vec<_> = schemas
        .iter()
        .flat_map(|s| {
            s.sequences.iter().map(move |q| {
                json!({
                    "schema_name": s.name, "name": q.name, "data_type": q.data_type,
                    "start_value": q.start, "increment": q.increment, "min_value": q.min,
                    "max_value": q.max, "cache": q.cache, "cycle": q.cycle,
                    "owned_by_table": q.owned_by.as_ref().map(|o| format!("{}.{}", o.schema, o.table)),
                    "owned_by_column": q.owned_by.as_ref().map(|o| &o.column),
                })
            })
        })
        .collect();
    sqlx::query!(
        r#"INSERT INTO catalog_sequences (catalog_id, schema_name, name, data_type, start_value,
               increment, min_value, max_value, cache, cycle, owned_by_table, owned_by_column)
           SELECT $1, r.schema_name, r.name, r.data_type, r.start_value, r.increment, r.min_value,
                  r.max_value, r.cache, r.cycle, r.owned_by_table, r.owned_by_column
           FROM jsonb_to_recordset($2::jsonb) AS r(schema_name text, name text, data_type text,
               start_value bigint, increment bigint, min_value bigint, max_value bigint,
               cache bigint, cycle boolean, owned_by_table text, owned_by_column text)"#,
        catalog_id,
        serde_json::Value::Array(sequences),
    )
    .execute(&mut **tx)
    .await?;

    let functions: Vec<_> = schemas
        .iter()
        .flat_map(|s| {
            s.functions.iter().map(move |f| {
                json!({
                    "schema_name": s.name, "name": f.name, "arguments": f.arguments,
                    "result": f.result, "language": f.language, "kind": f.kind, "comment": f.comment,
                })
            })
        })
        .collect();
    sqlx::query!(
        r#"INSERT INTO catalog_functions (catalog_id, schema_name, name, arguments, result,
               language, kind, comment)
           SELECT $1, r.schema_name, r.name, r.arguments, r.result, r.language, r.kind, r.comment
           FROM jsonb_to_recordset($2::jsonb) AS r(schema_name text, name text, arguments text,
               result text, language text, kind text, comment text)"#,
        catalog_id,
        serde_json::Value::Array(functions),
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn replace_triggers_and_dependencies(
    tx: &mut Tx<'_>,
    catalog_id: Uuid,
    tables: &[(&str, &crate::catalog::Table)],
) -> sqlx::Result<()> {
    let triggers: Vec<_> = tables
        .iter()
        .flat_map(|(schema, t)| {
            t.triggers.iter().map(move |g| {
                json!({
                    "schema_name": schema, "relation_name": t.name, "name": g.name,
                    "timing": g.timing, "events": g.events, "for_each": g.for_each,
                    "function": g.function, "enabled": g.enabled, "definition": g.definition,
                })
            })
        })
        .collect();
    sqlx::query!(
        r#"INSERT INTO catalog_triggers (catalog_id, schema_name, relation_name, name, timing,
               events, for_each, function, enabled, definition)
           SELECT $1, r.schema_name, r.relation_name, r.name, r.timing, r.events, r.for_each,
                  r.function, r.enabled, r.definition
           FROM jsonb_to_recordset($2::jsonb) AS r(schema_name text, relation_name text, name text,
               timing text, events text[], for_each text, function text, enabled boolean,
               definition text)"#,
        catalog_id,
        serde_json::Value::Array(triggers),
    )
    .execute(&mut **tx)
    .await?;

    let (mut schema, mut relation, mut ref_schema, mut ref_name) = (vec![], vec![], vec![], vec![]);
    for (s, t) in tables {
        for d in &t.depends_on {
            schema.push(s.to_string());
            relation.push(t.name.clone());
            ref_schema.push(d.schema.clone());
            ref_name.push(d.name.clone());
        }
    }
    sqlx::query!(
        r#"INSERT INTO catalog_dependencies (catalog_id, schema_name, relation_name, ref_schema, ref_name)
           SELECT DISTINCT $1::uuid, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[])"#,
        catalog_id,
        &schema,
        &relation,
        &ref_schema,
        &ref_name,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Default)]
struct RelationColumns {
    schema: Vec<String>,
    name: Vec<String>,
    kind: Vec<String>,
    owner: Vec<Option<String>>,
    comment: Vec<Option<String>>,
    row_estimate: Vec<Option<i64>>,
    definition: Vec<Option<String>>,
    parent_schema: Vec<Option<String>>,
    parent_name: Vec<Option<String>>,
    partition_bound: Vec<Option<String>>,
    column_count: Vec<i32>,
    total_bytes: Vec<Option<i64>>,
    unlogged: Vec<bool>,
    rls_enabled: Vec<bool>,
    partition_key: Vec<Option<String>>,
}

#[derive(Default)]
struct ColumnColumns {
    schema: Vec<String>,
    relation: Vec<String>,
    ordinal: Vec<i32>,
    name: Vec<String>,
    data_type: Vec<String>,
    nullable: Vec<bool>,
    default: Vec<Option<String>>,
    comment: Vec<Option<String>>,
    type_schema: Vec<Option<String>>,
    type_name: Vec<Option<String>>,
    is_array: Vec<bool>,
    identity: Vec<Option<String>>,
    generated: Vec<Option<String>>,
    collation: Vec<Option<String>>,
}
