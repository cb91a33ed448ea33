//! The current snapshot of each catalog: schemas, relations, columns, constraints, indexes.
//!
//! A sync replaces the whole snapshot in one transaction (delete, then one bulk insert per
//! table), so readers see either the old or the new snapshot, never a mix.

use serde::Serialize;
use serde_json::json;
use sqlx::PgExecutor;
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
    }
    sqlx::query!(
        r#"INSERT INTO catalog_relations (catalog_id, schema_name, name, kind, owner, comment,
               row_estimate, definition, parent_schema, parent_name, partition_bound, column_count)
           SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
               $7::int8[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int4[])"#,
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
        }
    }
    sqlx::query!(
        r#"INSERT INTO catalog_columns (catalog_id, schema_name, relation_name, ordinal, name,
               data_type, nullable, default_expr, comment)
           SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::int4[], $5::text[], $6::text[],
               $7::bool[], $8::text[], $9::text[])"#,
        catalog_id,
        &c.schema,
        &c.relation,
        &c.ordinal,
        &c.name,
        &c.data_type,
        &c.nullable,
        &c.default as &[Option<String>],
        &c.comment as &[Option<String>],
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
                })
            })
        })
        .collect();
    sqlx::query!(
        r#"INSERT INTO catalog_constraints (catalog_id, schema_name, relation_name, name, kind,
               columns, definition, ref_schema, ref_table, ref_columns)
           SELECT $1, r.schema_name, r.relation_name, r.name, r.kind, r.columns, r.definition,
                  r.ref_schema, r.ref_table, r.ref_columns
           FROM jsonb_to_recordset($2::jsonb) AS r(schema_name text, relation_name text, name text,
               kind text, columns text[], definition text, ref_schema text, ref_table text,
               ref_columns text[])"#,
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
                })
            })
        })
        .collect();
    sqlx::query!(
        r#"INSERT INTO catalog_indexes (catalog_id, schema_name, relation_name, name, columns,
               is_unique, is_primary, method, predicate, definition)
           SELECT $1, r.schema_name, r.relation_name, r.name, r.columns, r.is_unique,
                  r.is_primary, r.method, r.predicate, r.definition
           FROM jsonb_to_recordset($2::jsonb) AS r(schema_name text, relation_name text, name text,
               columns text[], is_unique boolean, is_primary boolean, method text, predicate text,
               definition text)"#,
        catalog_id,
        serde_json::Value::Array(indexes),
    )
    .execute(&mut **tx)
    .await?;

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
}

#[derive(Debug, Clone, Serialize)]
pub struct SchemaRow {
    pub id: i64,
    pub catalog_id: Uuid,
    pub name: String,
    pub owner: Option<String>,
    pub comment: Option<String>,
}

pub async fn schemas(db: impl PgExecutor<'_>, catalog_id: Uuid) -> sqlx::Result<Vec<SchemaRow>> {
    sqlx::query_as!(
        SchemaRow,
        r#"SELECT id, catalog_id, name, owner, comment
           FROM catalog_schemas WHERE catalog_id = $1 ORDER BY name"#,
        catalog_id
    )
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, Serialize)]
pub struct RelationRow {
    pub schema: String,
    pub name: String,
    pub kind: String,
    pub owner: Option<String>,
    pub comment: Option<String>,
    pub row_estimate: Option<i64>,
    pub column_count: i32,
    pub definition: Option<String>,
    pub parent_schema: Option<String>,
    pub parent_name: Option<String>,
    pub partition_bound: Option<String>,
}

/// One page of a catalog's relations in (schema, name) order, optionally of one schema.
pub async fn relations(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: Option<&str>,
    after: Option<(String, String)>,
    limit: i64,
) -> sqlx::Result<Vec<RelationRow>> {
    let (after_schema, after_name) = after.unzip();
    sqlx::query_as!(
        RelationRow,
        r#"SELECT schema_name AS schema, name, kind, owner, comment, row_estimate, column_count,
                  definition, parent_schema, parent_name, partition_bound
           FROM catalog_relations
           WHERE catalog_id = $1
             AND ($2::text IS NULL OR schema_name = $2)
             AND ($3::text IS NULL OR (schema_name, name) > ($3, $4::text))
           ORDER BY schema_name, name
           LIMIT $5"#,
        catalog_id,
        schema,
        after_schema,
        after_name,
        limit
    )
    .fetch_all(db)
    .await
}

pub async fn relation(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: &str,
    name: &str,
) -> sqlx::Result<Option<RelationRow>> {
    sqlx::query_as!(
        RelationRow,
        r#"SELECT schema_name AS schema, name, kind, owner, comment, row_estimate, column_count,
                  definition, parent_schema, parent_name, partition_bound
           FROM catalog_relations
           WHERE catalog_id = $1 AND schema_name = $2 AND name = $3"#,
        catalog_id,
        schema,
        name
    )
    .fetch_optional(db)
    .await
}

pub async fn schema_exists(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: &str,
) -> sqlx::Result<bool> {
    let found = sqlx::query_scalar!(
        r#"SELECT 1 AS "one!" FROM catalog_schemas WHERE catalog_id = $1 AND name = $2"#,
        catalog_id,
        schema
    )
    .fetch_optional(db)
    .await?;
    Ok(found.is_some())
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnRow {
    pub name: String,
    pub ordinal: i32,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    pub default: Option<String>,
    pub comment: Option<String>,
}

pub async fn columns(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: &str,
    relation: &str,
) -> sqlx::Result<Vec<ColumnRow>> {
    sqlx::query_as!(
        ColumnRow,
        r#"SELECT name, ordinal, data_type, nullable, default_expr AS default, comment
           FROM catalog_columns
           WHERE catalog_id = $1 AND schema_name = $2 AND relation_name = $3
           ORDER BY ordinal"#,
        catalog_id,
        schema,
        relation
    )
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, Serialize)]
pub struct ConstraintRow {
    pub name: String,
    pub kind: String,
    pub columns: Vec<String>,
    pub definition: Option<String>,
    pub ref_schema: Option<String>,
    pub ref_table: Option<String>,
    pub ref_columns: Option<Vec<String>>,
}

pub async fn constraints(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: &str,
    relation: &str,
) -> sqlx::Result<Vec<ConstraintRow>> {
    sqlx::query_as!(
        ConstraintRow,
        r#"SELECT name, kind, columns, definition, ref_schema, ref_table, ref_columns
           FROM catalog_constraints
           WHERE catalog_id = $1 AND schema_name = $2 AND relation_name = $3
           ORDER BY name"#,
        catalog_id,
        schema,
        relation
    )
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexRow {
    pub name: String,
    pub columns: Vec<String>,
    pub unique: bool,
    pub primary: bool,
    pub method: Option<String>,
    pub predicate: Option<String>,
    pub definition: Option<String>,
}

pub async fn indexes(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: &str,
    relation: &str,
) -> sqlx::Result<Vec<IndexRow>> {
    sqlx::query_as!(
        IndexRow,
        r#"SELECT name, columns, is_unique AS unique, is_primary AS primary, method, predicate,
                  definition
           FROM catalog_indexes
           WHERE catalog_id = $1 AND schema_name = $2 AND relation_name = $3
           ORDER BY name"#,
        catalog_id,
        schema,
        relation
    )
    .fetch_all(db)
    .await
}
