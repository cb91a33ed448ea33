//! Change history: what a sync changed against the catalog's previous snapshot.
//!
//! A write moves the stored rows of the relations it deletes (changed or gone) into temporary
//! tables (dropped at commit) as it writes the new rows, then compares the two for the
//! relations it touched, in the store, with one statement per object kind: the cost follows
//! the size of the change, not of the catalog, and nothing travels to the worker and back.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{AssertSqlSafe, PgExecutor};
use uuid::Uuid;

use super::Tx;
use super::snapshot::Names;
use crate::ids::{CatalogId, SyncId};

/// One kind of compared object: its snapshot table and how its rows are named.
struct Compared {
    object: &'static str,
    table: &'static str,
    /// The expressions naming a row: relation, then the object within it ('' for a relation).
    relation: &'static str,
    name: &'static str,
    /// Attributes that are not part of the object's definition: keys, and statistics that move
    /// with the data.
    ignored: &'static [&'static str],
}

const COMPARED: [Compared; 4] = [
    Compared {
        object: "relation",
        table: "catalog_relations",
        relation: "name",
        name: "''",
        ignored: &[
            "catalog_id",
            "schema_name",
            "name",
            "row_estimate",
            "total_bytes",
            "column_count",
            "content_hash",
        ],
    },
    Compared {
        object: "column",
        // A relation's columns are stored as one list (see `compared_rows`).
        table: "catalog_column_lists",
        relation: "relation_name",
        name: "name",
        ignored: &["catalog_id", "schema_name", "relation_name", "name"],
    },
    Compared {
        object: "constraint",
        table: "catalog_constraints",
        relation: "relation_name",
        name: "name",
        ignored: &["catalog_id", "schema_name", "relation_name", "name"],
    },
    Compared {
        object: "index",
        table: "catalog_indexes",
        relation: "relation_name",
        name: "name",
        ignored: &["catalog_id", "schema_name", "relation_name", "name"],
    },
];

/// Creates the temporary tables [`set_aside`] moves rows into; they are dropped at commit.
pub async fn prepare(tx: &mut Tx<'_>) -> sqlx::Result<()> {
    for c in &COMPARED {
        let table = c.table;
        // Every name in these statements is one of the constants above.
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TEMP TABLE previous_{table} (LIKE {table}) ON COMMIT DROP"
        )))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Moves the stored rows of the compared tables of the relations `deleted` aside, into the
/// temporary tables [`prepare`] made.
pub async fn set_aside(
    tx: &mut Tx<'_>,
    catalog_id: CatalogId,
    deleted: &Names,
) -> sqlx::Result<()> {
    for c in &COMPARED {
        let (table, relation) = (c.table, c.relation);
        sqlx::query(AssertSqlSafe(format!(
            "WITH gone AS (
                 DELETE FROM {table} t USING UNNEST($2::text[], $3::text[]) AS d(s, n)
                 WHERE t.catalog_id = $1 AND t.schema_name = d.s AND t.{relation} = d.n
                 RETURNING t.*
             )
             INSERT INTO previous_{table} SELECT * FROM gone"
        )))
        .bind(catalog_id)
        .bind(&deleted.schemas)
        .bind(&deleted.names)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The relations whose column lists differ between the set-aside rows and the new ones (added
/// and removed ones too): only their columns are compared one by one.
const CHANGED_COLUMN_LISTS: &str = "
    changed_lists AS (
        SELECT coalesce(o.schema_name, n.schema_name) AS s,
               coalesce(o.relation_name, n.relation_name) AS r
        FROM previous_catalog_column_lists o
        FULL JOIN (SELECT l.* FROM catalog_column_lists l
                   JOIN UNNEST($4::text[], $5::text[]) AS d(s, n)
                     ON l.schema_name = d.s AND l.relation_name = d.n
                   WHERE l.catalog_id = $1) n
          ON o.schema_name = n.schema_name AND o.relation_name = n.relation_name
        WHERE ROW(o.*) IS DISTINCT FROM ROW(n.*)
    ),";

/// The rows of `c` that are compared: the set-aside ones (`previous`) or the catalog's
/// current ones. Columns are unnested from the lists of the relations whose lists changed.
fn compared_rows(c: &Compared, previous: bool) -> String {
    let table = c.table;
    let rows = match previous {
        true => format!("previous_{table}"),
        false => format!(
            "(SELECT t.* FROM {table} t
              JOIN UNNEST($4::text[], $5::text[]) AS d(s, n)
                ON t.schema_name = d.s AND t.{relation} = d.n
              WHERE t.catalog_id = $1)",
            relation = c.relation
        ),
    };
    match c.object {
        "column" => format!(
            "(SELECT l.catalog_id, l.schema_name, l.relation_name, c.*
              FROM {rows} l
              JOIN changed_lists x ON x.s = l.schema_name AND x.r = l.relation_name
              CROSS JOIN LATERAL column_list_columns(ROW(l.*)::catalog_column_lists) c)"
        ),
        _ => rows,
    }
}

/// Records what the new rows of the relations `touched` changed against the rows
/// [`set_aside`] kept, as changes of `sync_id`. Returns how many.
pub async fn record(
    tx: &mut Tx<'_>,
    catalog_id: CatalogId,
    sync_id: SyncId,
    touched: &Names,
) -> sqlx::Result<u64> {
    let mut recorded = 0;
    for c in &COMPARED {
        let started = std::time::Instant::now();
        let Compared {
            object,
            relation,
            name,
            ..
        } = c;
        // Altered objects keep only the attributes that differ, on each side.
        let only_changed = |a: &str, b: &str| {
            format!(
                "(SELECT jsonb_object_agg(key, value) FROM jsonb_each({a}) \
                  WHERE {b} -> key IS DISTINCT FROM value)"
            )
        };
        // Each side's rows, named by schema, relation and object, as the whole row `t`.
        let keyed = |rows: String| {
            format!("(SELECT schema_name AS s, {relation} AS r, {name} AS nm, t FROM {rows} t)")
        };
        // Whole rows are compared first, which is cheap; only the few that differ are turned
        // into JSON, and compared again without their ignored attributes (a relation whose
        // statistics alone moved is not a change).
        let sql = format!(
            "WITH {with}
             differing AS MATERIALIZED (
                 SELECT coalesce(o.s, n.s) AS s, coalesce(o.r, n.r) AS r,
                        coalesce(o.nm, n.nm) AS nm, o.t AS before, n.t AS after
                 FROM {previous} o
                 FULL JOIN {current} n ON o.s = n.s AND o.r = n.r AND o.nm = n.nm
                 WHERE o.t IS DISTINCT FROM n.t
             )
             INSERT INTO catalog_changes
                 (catalog_id, sync_id, object, action, schema_name, relation_name, name, before, after)
             SELECT $1, $2, '{object}',
                    CASE WHEN o_j IS NULL THEN 'added' WHEN n_j IS NULL THEN 'removed' ELSE 'altered' END,
                    s, r, nullif(nm, ''),
                    CASE WHEN n_j IS NULL THEN o_j WHEN o_j IS NOT NULL THEN {before} END,
                    CASE WHEN o_j IS NULL THEN n_j WHEN n_j IS NOT NULL THEN {after} END
             FROM (SELECT s, r, nm, to_jsonb(before) - $3::text[] AS o_j,
                          to_jsonb(after) - $3::text[] AS n_j
                   FROM differing) d
             WHERE o_j IS DISTINCT FROM n_j
             ORDER BY 6, 7, 8",
            with = if *object == "column" { CHANGED_COLUMN_LISTS } else { "" },
            previous = keyed(compared_rows(c, true)),
            current = keyed(compared_rows(c, false)),
            before = only_changed("o_j", "n_j"),
            after = only_changed("n_j", "o_j"),
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(catalog_id)
            .bind(sync_id)
            .bind(c.ignored)
            .bind(&touched.schemas)
            .bind(&touched.names)
            .execute(&mut **tx)
            .await?;
        recorded += done.rows_affected();
        tracing::debug!(
            object,
            ms = started.elapsed().as_millis() as u64,
            "compared"
        );
    }
    Ok(recorded)
}

/// One recorded change, as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChangeRow {
    pub id: i64,
    pub sync_id: Uuid,
    pub changed_at: DateTime<Utc>,
    pub object: String,
    pub action: String,
    pub schema: String,
    pub relation: String,
    pub name: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// A catalog's changes, newest first: those recorded at or after `since`, before the cursor
/// `before_id`.
pub async fn list_for_catalog(
    db: impl PgExecutor<'_>,
    catalog_id: CatalogId,
    since: Option<DateTime<Utc>>,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<ChangeRow>> {
    sqlx::query_as!(
        ChangeRow,
        r#"SELECT id, sync_id, changed_at, object, action, schema_name AS schema,
                  relation_name AS relation, name, before, after
           FROM catalog_changes
           WHERE catalog_id = $1
             AND ($2::timestamptz IS NULL OR changed_at >= $2)
             AND ($3::int8 IS NULL OR id < $3)
           ORDER BY id DESC
           LIMIT $4"#,
        catalog_id.uuid(),
        since,
        before_id,
        limit
    )
    .fetch_all(db)
    .await
}

/// The changes one sync recorded, in the order it recorded them, after the cursor `after_id`.
pub async fn list_for_sync(
    db: impl PgExecutor<'_>,
    sync_id: SyncId,
    after_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<ChangeRow>> {
    sqlx::query_as!(
        ChangeRow,
        r#"SELECT id, sync_id, changed_at, object, action, schema_name AS schema,
                  relation_name AS relation, name, before, after
           FROM catalog_changes
           WHERE sync_id = $1 AND ($2::int8 IS NULL OR id > $2)
           ORDER BY id
           LIMIT $3"#,
        sync_id.uuid(),
        after_id,
        limit
    )
    .fetch_all(db)
    .await
}
