//! Reads of a catalog's current snapshot, as the API serves them. Every list is keyset-paged
//! in a stable order, and every read is served by an index.

use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

/// Escapes LIKE wildcards so `q` matches literally, as a substring.
pub fn like_pattern(q: &str) -> String {
    let escaped = q
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[derive(Debug, Clone, Serialize)]
pub struct SchemaRow {
    pub id: i64,
    pub catalog_id: Uuid,
    pub name: String,
    pub owner: Option<String>,
    pub comment: Option<String>,
}

/// A catalog's schemas in name order, after `after` when given.
pub async fn schemas(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<SchemaRow>> {
    sqlx::query_as!(
        SchemaRow,
        r#"SELECT id, catalog_id, name, owner, comment
           FROM catalog_schemas
           WHERE catalog_id = $1 AND ($2::text IS NULL OR name > $2)
           ORDER BY name
           LIMIT $3"#,
        catalog_id,
        after,
        limit
    )
    .fetch_all(db)
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
pub struct RelationRow {
    pub schema: String,
    pub name: String,
    pub kind: String,
    pub owner: Option<String>,
    pub comment: Option<String>,
    pub row_estimate: Option<i64>,
    pub total_bytes: Option<i64>,
    pub unlogged: bool,
    pub rls_enabled: bool,
    pub column_count: i32,
    pub definition: Option<String>,
    pub partition_key: Option<String>,
    pub parent_schema: Option<String>,
    pub parent_name: Option<String>,
    pub partition_bound: Option<String>,
}

/// Filters of the relation list.
#[derive(Debug, Clone, Default)]
pub struct RelationFilter<'a> {
    pub schema: Option<&'a str>,
    pub kind: Option<&'a str>,
    /// Substring of the name, case-insensitive.
    pub q: Option<&'a str>,
}

/// One page of a catalog's relations in (schema, name) order.
pub async fn relations(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    filter: &RelationFilter<'_>,
    after: Option<(String, String)>,
    limit: i64,
) -> sqlx::Result<Vec<RelationRow>> {
    let (after_schema, after_name) = after.unzip();
    let pattern = filter.q.map(like_pattern);
    sqlx::query_as!(
        RelationRow,
        r#"SELECT schema_name AS schema, name, kind, owner, comment, row_estimate, total_bytes,
                  unlogged, rls_enabled, column_count, definition, partition_key, parent_schema,
                  parent_name, partition_bound
           FROM catalog_relations
           WHERE catalog_id = $1
             AND ($2::text IS NULL OR schema_name = $2)
             AND ($3::text IS NULL OR kind = $3)
             AND ($4::text IS NULL OR name ILIKE $4)
             AND ($5::text IS NULL OR (schema_name, name) > ($5, $6::text))
           ORDER BY schema_name, name
           LIMIT $7"#,
        catalog_id,
        filter.schema,
        filter.kind,
        pattern,
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
        r#"SELECT schema_name AS schema, name, kind, owner, comment, row_estimate, total_bytes,
                  unlogged, rls_enabled, column_count, definition, partition_key, parent_schema,
                  parent_name, partition_bound
           FROM catalog_relations
           WHERE catalog_id = $1 AND schema_name = $2 AND name = $3"#,
        catalog_id,
        schema,
        name
    )
    .fetch_optional(db)
    .await
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
    pub type_schema: Option<String>,
    pub type_name: Option<String>,
    pub is_array: bool,
    pub identity: Option<String>,
    pub generated: Option<String>,
    pub collation: Option<String>,
}

pub async fn columns(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: &str,
    relation: &str,
) -> sqlx::Result<Vec<ColumnRow>> {
    sqlx::query_as!(
        ColumnRow,
        r#"SELECT name, ordinal, data_type, nullable, default_expr AS default, comment,
                  type_schema, type_name, is_array, identity, generated, collation_name AS collation
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

/// A column found by name anywhere in a catalog.
#[derive(Debug, Clone, Serialize)]
pub struct FoundColumn {
    pub schema: String,
    pub table: String,
    pub name: String,
    pub ordinal: i32,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

/// Columns whose name contains `q` (case-insensitive), in (schema, table, ordinal) order.
pub async fn find_columns(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    q: Option<&str>,
    after: Option<(String, String, i32)>,
    limit: i64,
) -> sqlx::Result<Vec<FoundColumn>> {
    let (after_schema, after_table, after_ordinal) = match after {
        Some((s, t, o)) => (Some(s), Some(t), Some(o)),
        None => (None, None, None),
    };
    let pattern = q.map(like_pattern);
    sqlx::query_as!(
        FoundColumn,
        r#"SELECT schema_name AS schema, relation_name AS table, name, ordinal, data_type, nullable
           FROM catalog_columns
           WHERE catalog_id = $1
             AND ($2::text IS NULL OR name ILIKE $2)
             AND ($3::text IS NULL OR (schema_name, relation_name, ordinal) > ($3, $4::text, $5::int4))
           ORDER BY schema_name, relation_name, ordinal
           LIMIT $6"#,
        catalog_id,
        pattern,
        after_schema,
        after_table,
        after_ordinal,
        limit
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
    pub on_update: Option<String>,
    pub on_delete: Option<String>,
    pub deferrable: bool,
    pub initially_deferred: bool,
}

pub async fn constraints(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: &str,
    relation: &str,
) -> sqlx::Result<Vec<ConstraintRow>> {
    sqlx::query_as!(
        ConstraintRow,
        r#"SELECT name, kind, columns, definition, ref_schema, ref_table, ref_columns, on_update,
                  on_delete, is_deferrable AS deferrable, is_deferred AS initially_deferred
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
    pub include: Vec<String>,
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
        r#"SELECT name, columns, include_columns AS include, is_unique AS unique,
                  is_primary AS primary, method, predicate, definition
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

#[derive(Debug, Clone, Serialize)]
pub struct TriggerRow {
    pub name: String,
    pub timing: String,
    pub events: Vec<String>,
    pub for_each: String,
    pub function: String,
    pub enabled: bool,
    pub definition: String,
}

pub async fn triggers(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: &str,
    relation: &str,
) -> sqlx::Result<Vec<TriggerRow>> {
    sqlx::query_as!(
        TriggerRow,
        r#"SELECT name, timing, events, for_each, function, enabled, definition
           FROM catalog_triggers
           WHERE catalog_id = $1 AND schema_name = $2 AND relation_name = $3
           ORDER BY name"#,
        catalog_id,
        schema,
        relation
    )
    .fetch_all(db)
    .await
}

/// A relation named in another's detail (partitions, lineage).
#[derive(Debug, Clone, Serialize)]
pub struct RelationRef {
    pub schema: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_bound: Option<String>,
}

pub async fn partitions(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: &str,
    relation: &str,
) -> sqlx::Result<Vec<RelationRef>> {
    sqlx::query_as!(
        RelationRef,
        r#"SELECT schema_name AS schema, name, partition_bound
           FROM catalog_relations
           WHERE catalog_id = $1 AND parent_schema = $2 AND parent_name = $3
           ORDER BY schema_name, name"#,
        catalog_id,
        schema,
        relation
    )
    .fetch_all(db)
    .await
}

/// What the view `schema.relation` reads.
pub async fn depends_on(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: &str,
    relation: &str,
) -> sqlx::Result<Vec<RelationRef>> {
    sqlx::query_as!(
        RelationRef,
        r#"SELECT ref_schema AS schema, ref_name AS name, NULL::text AS partition_bound
           FROM catalog_dependencies
           WHERE catalog_id = $1 AND schema_name = $2 AND relation_name = $3
           ORDER BY ref_schema, ref_name"#,
        catalog_id,
        schema,
        relation
    )
    .fetch_all(db)
    .await
}

/// The views that read `schema.relation`.
pub async fn dependents(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: &str,
    relation: &str,
) -> sqlx::Result<Vec<RelationRef>> {
    sqlx::query_as!(
        RelationRef,
        r#"SELECT schema_name AS schema, relation_name AS name, NULL::text AS partition_bound
           FROM catalog_dependencies
           WHERE catalog_id = $1 AND ref_schema = $2 AND ref_name = $3
           ORDER BY schema_name, relation_name"#,
        catalog_id,
        schema,
        relation
    )
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, Serialize)]
pub struct TypeRow {
    pub schema: String,
    pub name: String,
    pub kind: String,
    pub owner: Option<String>,
    pub comment: Option<String>,
    pub labels: Option<Vec<String>>,
    pub base_type: Option<String>,
    pub not_null: bool,
    pub default: Option<String>,
    pub checks: Option<Vec<String>>,
    pub attributes: Option<serde_json::Value>,
}

pub async fn types(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: Option<&str>,
    after: Option<(String, String)>,
    limit: i64,
) -> sqlx::Result<Vec<TypeRow>> {
    let (after_schema, after_name) = after.unzip();
    sqlx::query_as!(
        TypeRow,
        r#"SELECT schema_name AS schema, name, kind, owner, comment, labels, base_type, not_null,
                  default_expr AS default, checks, attributes
           FROM catalog_types
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

#[derive(Debug, Clone, Serialize)]
pub struct SequenceRow {
    pub schema: String,
    pub name: String,
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
    pub owned_by_table: Option<String>,
    pub owned_by_column: Option<String>,
}

pub async fn sequences(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: Option<&str>,
    after: Option<(String, String)>,
    limit: i64,
) -> sqlx::Result<Vec<SequenceRow>> {
    let (after_schema, after_name) = after.unzip();
    sqlx::query_as!(
        SequenceRow,
        r#"SELECT schema_name AS schema, name, data_type, start_value AS start, increment,
                  min_value AS min, max_value AS max, cache, cycle, owned_by_table, owned_by_column
           FROM catalog_sequences
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

#[derive(Debug, Clone, Serialize)]
pub struct FunctionRow {
    pub schema: String,
    pub name: String,
    pub arguments: String,
    pub result: Option<String>,
    pub language: String,
    pub kind: String,
    pub comment: Option<String>,
}

pub async fn functions(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: Option<&str>,
    after: Option<(String, String, String)>,
    limit: i64,
) -> sqlx::Result<Vec<FunctionRow>> {
    let (after_schema, after_name, after_args) = match after {
        Some((s, n, a)) => (Some(s), Some(n), Some(a)),
        None => (None, None, None),
    };
    sqlx::query_as!(
        FunctionRow,
        r#"SELECT schema_name AS schema, name, arguments, result, language, kind, comment
           FROM catalog_functions
           WHERE catalog_id = $1
             AND ($2::text IS NULL OR schema_name = $2)
             AND ($3::text IS NULL OR (schema_name, name, arguments) > ($3, $4::text, $5::text))
           ORDER BY schema_name, name, arguments
           LIMIT $6"#,
        catalog_id,
        schema,
        after_schema,
        after_name,
        after_args,
        limit
    )
    .fetch_all(db)
    .await
}
