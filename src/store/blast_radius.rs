//! The blast radius of changes: the views and materialized views that read a changed relation
//! (transitively, each with the path that leads to it) and the foreign keys that reference it
//! (only those on a changed column, for a column).
//!
//! It runs in a sync's write transaction, after the history is recorded, and looks at both
//! sides of the write: the current rows and the rows the write set aside
//! (`changes::set_aside`). A view dropped with the column it read (`DROP ... CASCADE`) is in
//! the blast radius of that column. The first view of a chain reads the changed column
//! exactly (the lineage's `ref_columns`, as the source's `pg_depend` records them); beyond it,
//! a view reading an earlier one at all is in the radius, as `store::dependents` finds them.

use serde_json::Value;

use super::Tx;
use crate::ids::CatalogId;

/// A changed relation (`column` `None`) or column whose dependents are wanted.
pub struct Target<'a> {
    pub schema: &'a str,
    pub relation: &'a str,
    pub column: Option<&'a str>,
}

/// How deep a chain of views is followed.
const MAX_DEPTH: i32 = 32;

/// The dependents of each target, in target order: `{kind, schema, relation, name?, path}`
/// objects, `kind` one of `view`, `materialized_view` and `foreign_key` (`name` is the
/// constraint's), `path` the relations from the target to the dependent.
pub async fn dependents(
    tx: &mut Tx<'_>,
    catalog_id: CatalogId,
    targets: &[Target<'_>],
) -> sqlx::Result<Vec<Vec<Value>>> {
    let mut found = vec![Vec::new(); targets.len()];
    if targets.is_empty() {
        return Ok(found);
    }
    let index: Vec<i32> = (0..targets.len() as i32).collect();
    let schemas: Vec<&str> = targets.iter().map(|t| t.schema).collect();
    let relations: Vec<&str> = targets.iter().map(|t| t.relation).collect();
    let columns: Vec<Option<&str>> = targets.iter().map(|t| t.column).collect();
    let rows: Vec<(i32, Value)> = sqlx::query_as(
        "WITH RECURSIVE
         targets AS (
             SELECT * FROM UNNEST($2::int4[], $3::text[], $4::text[], $5::text[]) AS t(i, s, r, c)
         ),
         lineage AS (
             SELECT schema_name, relation_name, ref_schema, ref_name, ref_columns
             FROM catalog_dependencies WHERE catalog_id = $1
             UNION
             SELECT schema_name, relation_name, ref_schema, ref_name, ref_columns
             FROM previous_catalog_dependencies
         ),
         readers (i, s, r, path) AS (
             SELECT t.i, l.schema_name, l.relation_name,
                    jsonb_build_array(jsonb_build_object('schema', t.s, 'name', t.r),
                                      jsonb_build_object('schema', l.schema_name, 'name', l.relation_name))
             FROM targets t JOIN lineage l ON l.ref_schema = t.s AND l.ref_name = t.r
             WHERE t.c IS NULL OR l.ref_columns IS NULL OR t.c = ANY (l.ref_columns)
             UNION ALL
             SELECT v.i, l.schema_name, l.relation_name,
                    v.path || jsonb_build_object('schema', l.schema_name, 'name', l.relation_name)
             FROM readers v JOIN lineage l ON l.ref_schema = v.s AND l.ref_name = v.r
             WHERE jsonb_array_length(v.path) <= $6
               AND NOT v.path @> jsonb_build_array(
                       jsonb_build_object('schema', l.schema_name, 'name', l.relation_name))
         ),
         kinds AS (
             SELECT schema_name, name, kind FROM catalog_relations WHERE catalog_id = $1
             UNION
             SELECT schema_name, name, kind FROM previous_catalog_relations
         ),
         views AS (
             SELECT DISTINCT ON (v.i, v.s, v.r) v.i,
                    jsonb_build_object('kind', coalesce(k.kind, 'view'), 'schema', v.s,
                                       'relation', v.r, 'path', v.path) AS dependent
             FROM readers v
             LEFT JOIN LATERAL (SELECT kind FROM kinds WHERE schema_name = v.s AND name = v.r
                                LIMIT 1) k ON true
             ORDER BY v.i, v.s, v.r, jsonb_array_length(v.path)
         ),
         foreign_keys AS (
             SELECT DISTINCT t.i,
                    jsonb_build_object('kind', 'foreign_key', 'schema', f.schema_name,
                                       'relation', f.relation_name, 'name', f.name,
                                       'path', jsonb_build_array(
                                           jsonb_build_object('schema', t.s, 'name', t.r),
                                           jsonb_build_object('schema', f.schema_name,
                                                              'name', f.relation_name))) AS dependent
             FROM targets t
             JOIN (SELECT schema_name, relation_name, name, ref_schema, ref_table, ref_columns
                   FROM catalog_constraints WHERE catalog_id = $1 AND kind = 'foreign_key'
                   UNION
                   SELECT schema_name, relation_name, name, ref_schema, ref_table, ref_columns
                   FROM previous_catalog_constraints WHERE kind = 'foreign_key') f
               ON f.ref_schema = t.s AND f.ref_table = t.r
              AND (t.c IS NULL OR t.c = ANY (f.ref_columns))
         )
         SELECT i, dependent FROM views
         UNION ALL
         SELECT i, dependent FROM foreign_keys
         ORDER BY 1, 2",
    )
    .bind(catalog_id)
    .bind(&index)
    .bind(&schemas)
    .bind(&relations)
    .bind(&columns)
    .bind(MAX_DEPTH)
    .fetch_all(&mut **tx)
    .await?;
    for (i, dependent) in rows {
        found[i as usize].push(dependent);
    }
    Ok(found)
}
