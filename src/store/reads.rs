//! Reads of a catalog's current snapshot, as the API serves them. Every list is keyset-paged
//! in a stable order, and every read is served by an index.

use serde::Serialize;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use super::{column_types, details};

/// Escapes LIKE wildcards so `q` matches literally, as a substring.
pub fn like_pattern(q: &str) -> String {
    let escaped = q
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    /// The extension that owns it (listed only on request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

/// Relations the dashboard lists on one catalog page at most.
pub const MAX_UI_RELATIONS: i64 = 2000;

/// Filters of the relation list.
#[derive(Debug, Clone, Default)]
pub struct RelationFilter<'a> {
    pub schema: Option<&'a str>,
    pub kind: Option<&'a str>,
    /// Substring of the name, case-insensitive.
    pub q: Option<&'a str>,
    pub members: Members,
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
                  parent_name, partition_bound, extension
           FROM catalog_relations
           WHERE catalog_id = $1
             AND ($2::text IS NULL OR schema_name = $2)
             AND ($3::text IS NULL OR kind = $3)
             AND ($4::text IS NULL OR name ILIKE $4)
             AND ($5::text IS NULL OR (schema_name, name) > ($5, $6::text))
             AND ($8 OR extension IS NULL)
           ORDER BY schema_name, name
           LIMIT $7"#,
        catalog_id,
        filter.schema,
        filter.kind,
        pattern,
        after_schema,
        after_name,
        limit,
        filter.members.with_extensions()
    )
    .fetch_all(db)
    .await
}

/// Which heavy parts of a relation's detail to include.
#[derive(Debug, Clone, Copy)]
pub struct DetailParts {
    pub columns: bool,
    pub constraints: bool,
    pub indexes: bool,
    pub triggers: bool,
    pub partitions: bool,
    pub lineage: bool,
    pub access: bool,
}

impl DetailParts {
    /// The whole document.
    pub const ALL: Self = Self {
        columns: true,
        constraints: true,
        indexes: true,
        triggers: true,
        partitions: true,
        lineage: true,
        access: true,
    };

    /// The document without the keys of the parts left out. The whole document, the common
    /// case, passes through untouched.
    fn keep_only(self, detail: String) -> String {
        let left_out: Vec<&str> = [
            (self.columns || self.constraints, &["primary_key"][..]),
            (self.columns, &["columns"][..]),
            (self.constraints, &["constraints"][..]),
            (self.indexes, &["indexes"][..]),
            (self.triggers, &["triggers"][..]),
            (self.partitions, &["partitions"][..]),
            (self.lineage, &["depends_on", "dependent_views"][..]),
            (self.access, &["privileges", "policies"][..]),
        ]
        .into_iter()
        .filter(|(kept, _)| !kept)
        .flat_map(|(_, keys)| keys.iter().copied())
        .collect();
        if left_out.is_empty() {
            return detail;
        }
        let Ok(mut document) =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&detail)
        else {
            return detail;
        };
        for key in left_out {
            document.remove(key);
        }
        serde_json::Value::Object(document).to_string()
    }
}

/// Which relation's detail to read.
#[derive(Debug, Clone)]
pub struct DetailKey {
    pub catalog_id: Uuid,
    pub schema: String,
    pub name: String,
}

/// A relation's detail document as its snapshot wrote it (see [`super::details`]), with its
/// columns and the statistics as they are now.
#[derive(Debug, Clone)]
pub struct StoredDetail {
    pub detail: String,
    /// The `columns` member, rendered from the relation's column list; `None` for a document
    /// that holds its columns itself (written by an earlier version).
    pub columns: Option<String>,
    pub row_estimate: Option<i64>,
    pub total_bytes: Option<i64>,
}

impl StoredDetail {
    /// The document as served: the `href` given and the statistics in front, narrowed to
    /// `parts`.
    pub fn finish(&self, href: &str, parts: DetailParts) -> String {
        let columns = self.columns.as_deref().filter(|_| parts.columns);
        let detail = details::with_live_fields(
            &self.detail,
            columns,
            href,
            self.row_estimate,
            self.total_bytes,
        );
        parts.keep_only(detail)
    }
}

/// The details of `keys`, in their order, with a primary-key lookup each of the document, the
/// statistics and the column list, in one statement; `None` for an unknown relation. The
/// columns' types are named from their keys ([`column_types::named`]).
///
/// Each key's rows are looked up in a `LATERAL` subquery that the planner cannot flatten into a
/// join (`LIMIT 1`; the key is the primary key): as a join, right after a big catalog's write
/// and before the tables are analyzed, the planner may choose to read all of
/// `catalog_relations` for every batch.
pub async fn relation_details(
    conn: &mut PgConnection,
    keys: &[DetailKey],
) -> sqlx::Result<Vec<Option<StoredDetail>>> {
    let catalogs: Vec<Uuid> = keys.iter().map(|k| k.catalog_id).collect();
    let schemas: Vec<&str> = keys.iter().map(|k| k.schema.as_str()).collect();
    let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    let rows = sqlx::query!(
        r#"SELECT k.i AS "i!", d.detail AS "detail!", d.columns_inside AS "columns_inside!",
                  r.row_estimate, r.total_bytes,
                  l.ordinals AS "ordinals?", l.names AS "names?", l.type_keys AS "type_keys?",
                  l.nullable AS "nullable?",
                  l.default_exprs AS "default_exprs: Vec<Option<String>>",
                  l.comments AS "comments: Vec<Option<String>>",
                  l.is_array AS "is_array?",
                  l.identities AS "identities: Vec<Option<String>>",
                  l.generated AS "generated: Vec<Option<String>>",
                  l.collation_names AS "collation_names: Vec<Option<String>>"
           FROM UNNEST($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY
                AS k(catalog_id, schema_name, name, i)
           CROSS JOIN LATERAL (
               SELECT d.detail, d.columns_inside FROM catalog_relation_details d
               WHERE d.catalog_id = k.catalog_id AND d.schema_name = k.schema_name
                 AND d.name = k.name
               LIMIT 1
           ) d
           CROSS JOIN LATERAL (
               SELECT r.row_estimate, r.total_bytes FROM catalog_relations r
               WHERE r.catalog_id = k.catalog_id AND r.schema_name = k.schema_name
                 AND r.name = k.name
               LIMIT 1
           ) r
           LEFT JOIN LATERAL (
               SELECT l.* FROM catalog_column_lists l
               WHERE NOT d.columns_inside AND l.catalog_id = k.catalog_id
                 AND l.schema_name = k.schema_name AND l.relation_name = k.name
               LIMIT 1
           ) l ON true"#,
        &catalogs,
        &schemas as &[&str],
        &names as &[&str],
    )
    .fetch_all(&mut *conn)
    .await?;
    let types = column_types::named(
        conn,
        rows.iter()
            .flat_map(|r| r.type_keys.iter().flatten().copied()),
    )
    .await?;
    let mut found = vec![None; keys.len()];
    for row in rows {
        // A relation without columns has no list.
        let columns = (!row.columns_inside).then(|| {
            details::columns_member(&details::StoredColumns {
                ordinals: row.ordinals.unwrap_or_default(),
                names: row.names.unwrap_or_default(),
                types: row
                    .type_keys
                    .unwrap_or_default()
                    .iter()
                    .map(|key| types.get(key).cloned())
                    .collect(),
                nullable: row.nullable.unwrap_or_default(),
                default_exprs: row.default_exprs,
                comments: row.comments,
                is_array: row.is_array.unwrap_or_default(),
                identities: row.identities,
                generated: row.generated,
                collation_names: row.collation_names,
            })
        });
        found[row.i as usize - 1] = Some(StoredDetail {
            detail: row.detail,
            columns,
            row_estimate: row.row_estimate,
            total_bytes: row.total_bytes,
        });
    }
    Ok(found)
}

/// One relation's detail (see [`relation_details`]), as served.
pub async fn relation_detail(
    pool: &PgPool,
    catalog_id: Uuid,
    schema: &str,
    name: &str,
    href: &str,
    parts: DetailParts,
) -> sqlx::Result<Option<String>> {
    let key = DetailKey {
        catalog_id,
        schema: schema.to_owned(),
        name: name.to_owned(),
    };
    let mut conn = pool.acquire().await?;
    let found = relation_details(&mut conn, &[key]).await?.pop().flatten();
    Ok(found.map(|d| d.finish(href, parts)))
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
///
/// Columns are stored as one list per relation. The lists are read in key order and at most
/// `limit + 1` of them are unnested: a list holds at least one column, and when there is a `q`,
/// only lists where it occurs in the names joined by U+0001 are read, so each has at least
/// one match (unless `q` itself contains U+0001, which then filters no list out); the first
/// list may hold only columns before the cursor, hence the one more. A search that matches
/// nothing tests each list's joined names instead of unnesting every column. Extensions'
/// relations' columns are read with `members` only.
pub async fn find_columns(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    q: Option<&str>,
    members: Members,
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
        r#"SELECT l.schema_name AS "schema!", l.relation_name AS "table!", c.name AS "name!",
                  c.ordinal AS "ordinal!", c.data_type AS "data_type!", c.nullable AS "nullable!"
           FROM (SELECT * FROM catalog_column_lists cl
                 WHERE catalog_id = $1
                   -- '' sorts before every name.
                   AND (schema_name, relation_name) >= (coalesce($3, ''), coalesce($4::text, ''))
                   AND ($2::text IS NULL OR strpos($2, chr(1)) > 0
                        OR array_to_string(names, chr(1)) ILIKE $2)
                   AND ($7 OR NOT EXISTS (
                       SELECT 1 FROM catalog_relations r
                       WHERE r.catalog_id = $1 AND r.schema_name = cl.schema_name
                         AND r.name = cl.relation_name AND r.extension IS NOT NULL))
                 ORDER BY schema_name, relation_name
                 LIMIT $6::int8 + 1) l
           CROSS JOIN LATERAL column_list_columns(l) c
           WHERE ($2::text IS NULL OR c.name ILIKE $2)
             AND ($3::text IS NULL
                  OR (l.schema_name, l.relation_name, c.ordinal) > ($3, $4::text, $5::int4))
           ORDER BY l.schema_name, l.relation_name, c.ordinal
           LIMIT $6"#,
        catalog_id,
        pattern,
        after_schema,
        after_table,
        after_ordinal,
        limit,
        members.with_extensions()
    )
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    /// The extension that owns it (listed only on request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

/// Which objects a list shows: the schema author's own, or extensions' members as well.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Members {
    #[default]
    Own,
    WithExtensions,
}

impl Members {
    pub fn with_extensions(self) -> bool {
        self == Members::WithExtensions
    }

    /// The value of a list's `include_extension_objects` parameter that asks for these
    /// members (none for the default).
    pub fn param(self) -> Option<&'static str> {
        self.with_extensions().then_some("true")
    }
}

pub async fn types(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: Option<&str>,
    members: Members,
    after: Option<(String, String)>,
    limit: i64,
) -> sqlx::Result<Vec<TypeRow>> {
    let (after_schema, after_name) = after.unzip();
    sqlx::query_as!(
        TypeRow,
        r#"SELECT schema_name AS schema, name, kind, owner, comment, labels, base_type, not_null,
                  default_expr AS default, checks, attributes, extension
           FROM catalog_types
           WHERE catalog_id = $1
             AND ($2::text IS NULL OR schema_name = $2)
             AND ($3::text IS NULL OR (schema_name, name) > ($3, $4::text))
             AND (extension IS NULL OR $6)
           ORDER BY schema_name, name
           LIMIT $5"#,
        catalog_id,
        schema,
        after_schema,
        after_name,
        limit,
        members.with_extensions()
    )
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SequenceRow {
    pub schema: String,
    pub name: String,
    pub owner: Option<String>,
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
    pub owned_by_table: Option<String>,
    pub owned_by_column: Option<String>,
    /// The extension that owns it (listed only on request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

pub async fn sequences(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: Option<&str>,
    members: Members,
    after: Option<(String, String)>,
    limit: i64,
) -> sqlx::Result<Vec<SequenceRow>> {
    let (after_schema, after_name) = after.unzip();
    sqlx::query_as!(
        SequenceRow,
        r#"SELECT schema_name AS schema, name, owner, data_type, start_value AS start, increment,
                  min_value AS min, max_value AS max, cache, cycle, owned_by_table, owned_by_column,
                  extension
           FROM catalog_sequences
           WHERE catalog_id = $1
             AND ($2::text IS NULL OR schema_name = $2)
             AND ($3::text IS NULL OR (schema_name, name) > ($3, $4::text))
             AND (extension IS NULL OR $6)
           ORDER BY schema_name, name
           LIMIT $5"#,
        catalog_id,
        schema,
        after_schema,
        after_name,
        limit,
        members.with_extensions()
    )
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FunctionRow {
    pub schema: String,
    pub name: String,
    pub owner: Option<String>,
    pub arguments: String,
    pub result: Option<String>,
    pub language: String,
    pub kind: String,
    pub comment: Option<String>,
    /// The extension that owns it (listed only on request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

pub async fn functions(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: Option<&str>,
    members: Members,
    after: Option<(String, String, String)>,
    limit: i64,
) -> sqlx::Result<Vec<FunctionRow>> {
    let (after_schema, after_name, after_args) = match after {
        Some((s, n, a)) => (Some(s), Some(n), Some(a)),
        None => (None, None, None),
    };
    sqlx::query_as!(
        FunctionRow,
        r#"SELECT schema_name AS schema, name, owner, arguments, result, language, kind, comment,
                  extension
           FROM catalog_functions
           WHERE catalog_id = $1
             AND ($2::text IS NULL OR schema_name = $2)
             AND ($3::text IS NULL OR (schema_name, name, arguments) > ($3, $4::text, $5::text))
             AND (extension IS NULL OR $7)
           ORDER BY schema_name, name, arguments
           LIMIT $6"#,
        catalog_id,
        schema,
        after_schema,
        after_name,
        after_args,
        limit,
        members.with_extensions()
    )
    .fetch_all(db)
    .await
}
