//! Change history: what a sync changed against the catalog's previous snapshot.
//!
//! A snapshot rewrite first moves the previous rows of the compared tables into temporary
//! tables (dropped at commit), writes the new snapshot, then compares the two in the store with
//! one statement per object kind: nothing travels to the worker and back.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{AssertSqlSafe, PgExecutor};
use uuid::Uuid;

use super::Tx;

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
    /// The table its rows are stored in, when `table` is a view over it.
    stored_in: Option<&'static str>,
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
        ],
        stored_in: None,
    },
    Compared {
        object: "column",
        table: "catalog_columns",
        relation: "relation_name",
        name: "name",
        ignored: &["catalog_id", "schema_name", "relation_name", "name"],
        stored_in: Some("catalog_column_lists"),
    },
    Compared {
        object: "constraint",
        table: "catalog_constraints",
        relation: "relation_name",
        name: "name",
        ignored: &["catalog_id", "schema_name", "relation_name", "name"],
        stored_in: None,
    },
    Compared {
        object: "index",
        table: "catalog_indexes",
        relation: "relation_name",
        name: "name",
        ignored: &["catalog_id", "schema_name", "relation_name", "name"],
        stored_in: None,
    },
];

/// Moves the catalog's current rows of the compared tables aside (into temporary tables that
/// live until the transaction ends), leaving those tables empty for the new snapshot.
pub async fn set_aside_previous(tx: &mut Tx<'_>, catalog_id: Uuid) -> sqlx::Result<()> {
    for c in &COMPARED {
        let table = c.table;
        // Every name in these statements is one of the constants above.
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TEMP TABLE previous_{table} (LIKE {table}) ON COMMIT DROP"
        )))
        .execute(&mut **tx)
        .await?;
        let statements = match c.stored_in {
            None => vec![format!(
                "WITH gone AS (DELETE FROM {table} WHERE catalog_id = $1 RETURNING *)
                 INSERT INTO previous_{table} SELECT * FROM gone"
            )],
            Some(stored_in) => vec![
                format!("INSERT INTO previous_{table} SELECT * FROM {table} WHERE catalog_id = $1"),
                format!("DELETE FROM {stored_in} WHERE catalog_id = $1"),
            ],
        };
        for sql in statements {
            sqlx::query(AssertSqlSafe(sql))
                .bind(catalog_id)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// Records what the new snapshot changed against the rows [`set_aside_previous`] kept, as
/// changes of `sync_id`. Returns how many.
pub async fn record(tx: &mut Tx<'_>, catalog_id: Uuid, sync_id: Uuid) -> sqlx::Result<u64> {
    let mut recorded = 0;
    for c in &COMPARED {
        let Compared {
            object,
            table,
            relation,
            name,
            ..
        } = c;
        // Altered objects keep only the attributes that differ, on each side.
        let only_changed = |a: &str, b: &str| {
            format!(
                "(SELECT jsonb_object_agg(key, value) FROM jsonb_each({a}.j) \
                  WHERE {b}.j -> key IS DISTINCT FROM value)"
            )
        };
        let sql = format!(
            "INSERT INTO catalog_changes
                 (catalog_id, sync_id, object, action, schema_name, relation_name, name, before, after)
             SELECT $1, $2, '{object}',
                    CASE WHEN o.j IS NULL THEN 'added' WHEN n.j IS NULL THEN 'removed' ELSE 'altered' END,
                    coalesce(o.s, n.s), coalesce(o.r, n.r), nullif(coalesce(o.nm, n.nm), ''),
                    CASE WHEN n.j IS NULL THEN o.j WHEN o.j IS NOT NULL THEN {before} END,
                    CASE WHEN o.j IS NULL THEN n.j WHEN n.j IS NOT NULL THEN {after} END
             FROM (SELECT schema_name AS s, {relation} AS r, {name} AS nm, to_jsonb(t) - $3::text[] AS j
                   FROM previous_{table} t) o
             FULL JOIN (SELECT schema_name AS s, {relation} AS r, {name} AS nm, to_jsonb(t) - $3::text[] AS j
                        FROM {table} t WHERE catalog_id = $1) n
               ON o.s = n.s AND o.r = n.r AND o.nm = n.nm
             WHERE o.j IS DISTINCT FROM n.j
             ORDER BY 6, 7, 8",
            before = only_changed("o", "n"),
            after = only_changed("n", "o"),
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(catalog_id)
            .bind(sync_id)
            .bind(c.ignored)
            .execute(&mut **tx)
            .await?;
        recorded += done.rows_affected();
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
    catalog_id: Uuid,
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
        catalog_id,
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
    sync_id: Uuid,
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
        sync_id,
        after_id,
        limit
    )
    .fetch_all(db)
    .await
}
