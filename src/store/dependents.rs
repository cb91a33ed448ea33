//! Impact analysis: what depends on a relation or on one of its columns, in one stored
//! snapshot (a catalog's, or a past state's copy).
//!
//! Everything comes from what the snapshot stores of the source's `pg_depend`:
//!
//! - views and materialized views, from the lineage (`catalog_dependencies`): the first view
//!   of a chain reads the target column exactly (`ref_columns`; NULL, the whole relation,
//!   counts as reading every column). `pg_depend` does not say which of a view's output
//!   columns derive from which input column, so beyond the first view a view that reads an
//!   earlier one at all is a dependent;
//! - foreign keys referencing the target (and the target's own, on its column);
//! - the target's constraints (their columns), indexes (key, `INCLUDE` and expression
//!   columns), triggers (`UPDATE OF` and `WHEN` columns) and policies (the columns their
//!   expressions read);
//! - functions whose SQL-standard body reads the target (the column exactly) or one of its
//!   dependent views.
//!
//! Each dependent comes with the path that leads to it: the target, then the views between.

use serde::Serialize;
use sqlx::PgExecutor;
use sqlx::types::Json;
use uuid::Uuid;

use crate::catalog::DatabaseObject;

/// How deep a chain of views is followed (as the blast radius of changes does).
const MAX_DEPTH: i32 = 32;

/// What kind of object depends on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DependentKind {
    Constraint,
    ForeignKey,
    Function,
    Index,
    MaterializedView,
    Policy,
    /// A publication publishing the relation or column: one that names it (with no column
    /// list, or one holding the column), publishes its schema, or all tables. Publications
    /// are the database's (schema `""`), as of the snapshot read.
    Publication,
    Trigger,
    View,
}

impl DependentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DependentKind::Constraint => "constraint",
            DependentKind::ForeignKey => "foreign_key",
            DependentKind::Function => "function",
            DependentKind::Index => "index",
            DependentKind::MaterializedView => "materialized_view",
            DependentKind::Policy => "policy",
            DependentKind::Publication => "publication",
            DependentKind::Trigger => "trigger",
            DependentKind::View => "view",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        use DependentKind::*;
        [
            Constraint,
            ForeignKey,
            Function,
            Index,
            MaterializedView,
            Policy,
            Publication,
            Trigger,
            View,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One step of a dependent's path: a relation, and for the target of a column's analysis the
/// column (or, last on a foreign key's path, the referencing column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PathStep {
    pub schema: String,
    pub relation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

/// An object that depends on the target.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Dependent {
    pub kind: DependentKind,
    pub schema: String,
    /// The relation it is on (for a view, itself); none for a function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    /// Its name; a function's is `name(arguments)`.
    pub name: String,
    /// From the target to the relation the dependent is on or reads.
    pub path: Vec<PathStep>,
}

impl Dependent {
    /// Its place in a list: (kind, schema, relation or "", name).
    pub fn sort_key(&self) -> (String, String, String, String) {
        (
            self.kind.as_str().to_owned(),
            self.schema.clone(),
            self.relation.clone().unwrap_or_default(),
            self.name.clone(),
        )
    }
}

/// What the snapshot `stored_as` holds of the target: `None` without the relation,
/// `Some(false)` when it has no such column, `Some(true)` otherwise.
pub async fn target_exists(
    db: impl PgExecutor<'_>,
    stored_as: Uuid,
    schema: &str,
    relation: &str,
    column: Option<&str>,
) -> sqlx::Result<Option<bool>> {
    sqlx::query_scalar(
        "SELECT $4::text IS NULL OR coalesce($4 = ANY (l.names), false)
         FROM catalog_relations r
         LEFT JOIN catalog_column_lists l
                ON l.catalog_id = r.catalog_id AND l.schema_name = r.schema_name
               AND l.relation_name = r.name
         WHERE r.catalog_id = $1 AND r.schema_name = $2 AND r.name = $3",
    )
    .bind(stored_as)
    .bind(schema)
    .bind(relation)
    .bind(column)
    .fetch_optional(db)
    .await
}

/// The dependents of relation `schema`.`relation` (of its `column`, when given) in the
/// snapshot `stored_as`, whose database-wide objects are `objects` (kept apart from the
/// snapshot's units: see `object_reads::database_objects`), each once with its shortest path,
/// in [`Dependent::sort_key`] order.
pub async fn dependents(
    db: impl PgExecutor<'_>,
    stored_as: Uuid,
    objects: &[DatabaseObject],
    schema: &str,
    relation: &str,
    column: Option<&str>,
) -> sqlx::Result<Vec<Dependent>> {
    let rows: Vec<DependentRow> = sqlx::query_as(DEPENDENTS)
        .bind(stored_as)
        .bind(schema)
        .bind(relation)
        .bind(column)
        .bind(MAX_DEPTH)
        .bind(Json(objects))
        .fetch_all(db)
        .await?;
    let mut found: Vec<Dependent> = rows
        .into_iter()
        .filter_map(|row| {
            Some(Dependent {
                kind: DependentKind::parse(&row.kind)?,
                schema: row.schema,
                relation: row.relation,
                name: row.name,
                path: row.path.0,
            })
        })
        .collect();
    found.sort_by_cached_key(Dependent::sort_key);
    Ok(found)
}

#[derive(sqlx::FromRow)]
struct DependentRow {
    kind: String,
    schema: String,
    relation: Option<String>,
    name: String,
    path: Json<Vec<PathStep>>,
}

/// `$1` the snapshot, `$2`.`$3` the relation, `$4` the column or NULL, `$5` the depth cap, `$6`
/// the database-wide objects.
const DEPENDENTS: &str = r#"
WITH RECURSIVE
target AS (
    SELECT jsonb_strip_nulls(jsonb_build_object('schema', $2::text, 'relation', $3::text,
                                                'column', $4::text)) AS step
),
readers (s, r, path) AS (
    SELECT l.schema_name, l.relation_name,
           jsonb_build_array(t.step, jsonb_build_object('schema', l.schema_name,
                                                        'relation', l.relation_name))
    FROM catalog_dependencies l, target t
    WHERE l.catalog_id = $1 AND l.ref_schema = $2 AND l.ref_name = $3
      AND ($4::text IS NULL OR l.ref_columns IS NULL OR $4 = ANY (l.ref_columns))
    UNION ALL
    SELECT l.schema_name, l.relation_name,
           v.path || jsonb_build_object('schema', l.schema_name, 'relation', l.relation_name)
    FROM readers v
    JOIN catalog_dependencies l
      ON l.catalog_id = $1 AND l.ref_schema = v.s AND l.ref_name = v.r
    WHERE jsonb_array_length(v.path) <= $5
      AND NOT v.path @> jsonb_build_array(
              jsonb_build_object('schema', l.schema_name, 'relation', l.relation_name))
),
views AS (
    SELECT DISTINCT ON (v.s, v.r) v.s, v.r, v.path
    FROM readers v
    ORDER BY v.s, v.r, jsonb_array_length(v.path)
),
-- What a function's body may read to depend on the target: the target itself (its column
-- exactly) and every dependent view (whole).
read AS (
    SELECT $2::text AS s, $3::text AS r, jsonb_build_array(t.step) AS path, true AS exact
    FROM target t
    UNION ALL
    SELECT s, r, path, false FROM views
),
found (kind, schema, relation, name, path) AS (
    SELECT CASE k.kind WHEN 'materialized_view' THEN 'materialized_view' ELSE 'view' END,
           v.s, v.r, v.r, v.path
    FROM views v
    LEFT JOIN catalog_relations k ON k.catalog_id = $1 AND k.schema_name = v.s AND k.name = v.r
    UNION ALL
    SELECT 'foreign_key', f.schema_name, f.relation_name, f.name,
           jsonb_build_array(t.step, jsonb_strip_nulls(jsonb_build_object(
               'schema', f.schema_name, 'relation', f.relation_name,
               'column', f.columns[array_position(f.ref_columns, $4::text)])))
    FROM catalog_constraints f, target t
    WHERE f.catalog_id = $1 AND f.kind = 'foreign_key' AND f.ref_schema = $2
      AND f.ref_table = $3 AND ($4::text IS NULL OR $4 = ANY (f.ref_columns))
    UNION ALL
    SELECT CASE k.kind WHEN 'foreign_key' THEN 'foreign_key' ELSE 'constraint' END,
           k.schema_name, k.relation_name, k.name, jsonb_build_array(t.step)
    FROM catalog_constraints k, target t
    WHERE k.catalog_id = $1 AND k.schema_name = $2 AND k.relation_name = $3
      AND ($4::text IS NULL OR $4 = ANY (k.columns))
    UNION ALL
    SELECT 'index', i.schema_name, i.relation_name, i.name, jsonb_build_array(t.step)
    FROM catalog_indexes i, target t
    WHERE i.catalog_id = $1 AND i.schema_name = $2 AND i.relation_name = $3
      AND ($4::text IS NULL OR $4 = ANY (i.columns) OR $4 = ANY (i.include_columns)
           OR $4 = ANY (i.expression_columns))
    UNION ALL
    SELECT 'trigger', g.schema_name, g.relation_name, g.name, jsonb_build_array(t.step)
    FROM catalog_triggers g, target t
    WHERE g.catalog_id = $1 AND g.schema_name = $2 AND g.relation_name = $3
      AND ($4::text IS NULL OR $4 = ANY (g.columns))
    UNION ALL
    SELECT 'policy', p.schema_name, p.relation_name, p.name, jsonb_build_array(t.step)
    FROM catalog_policies p, target t
    WHERE p.catalog_id = $1 AND p.schema_name = $2 AND p.relation_name = $3
      AND ($4::text IS NULL OR $4 = ANY (p.columns))
    UNION ALL
    SELECT 'function', f.schema_name, NULL, f.name || '(' || f.arguments || ')', w.path
    FROM catalog_functions f
    CROSS JOIN LATERAL jsonb_array_elements(f.uses) u
    JOIN read w ON u->>'schema' = w.s AND u->>'name' = w.r
    WHERE f.catalog_id = $1 AND f.uses IS NOT NULL
      AND (NOT w.exact OR $4::text IS NULL
           OR jsonb_typeof(u->'columns') IS DISTINCT FROM 'array' OR u->'columns' ? $4)
    UNION ALL
    SELECT 'publication', '', NULL, p->>'name', jsonb_build_array(t.step)
    FROM jsonb_array_elements($6::jsonb) p
    CROSS JOIN target t
    WHERE p->>'kind' = 'publication'
      AND ((p->>'all_tables')::boolean OR p->'schemas' ? $2
           OR EXISTS (SELECT 1 FROM jsonb_array_elements(p->'tables') pt
                      WHERE pt->>'schema' = $2 AND pt->>'table' = $3
                        AND ($4::text IS NULL OR jsonb_typeof(pt->'columns') IS DISTINCT FROM 'array'
                             OR pt->'columns' ? $4)))
)
SELECT DISTINCT ON (kind, schema, relation, name) kind, schema, relation, name, path
FROM found
ORDER BY kind, schema, relation, name, jsonb_array_length(path)
"#;
