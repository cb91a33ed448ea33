//! The past versions of a snapshot's units, for reads as of a sync.
//!
//! Every unit row records the sync that wrote it (`written_by`, the column's default from the
//! write's `pgcs.sync_id` setting). Before a write deletes a changed or removed unit, it keeps
//! the unit's rows in `catalog_retired_rows` with the sync that retires them ([`retire`]): a
//! version is valid from `written_by` (inclusive) to `retired_by` (exclusive). The state after
//! a sync `S` is then every current unit written by `S` or earlier, and every retired version
//! whose interval holds `S` ([`copy_state`]). Sync ids are UUID v7 and one catalog's syncs run
//! one at a time in the order they were queued, so comparing ids orders them.
//!
//! An unchanged unit costs nothing to keep: only what a write replaces is copied, once.

use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

use super::family::Family;
use super::plan::Plan;
use crate::ids::{CatalogId, SyncId};

/// Marks the transaction's rows as written by `sync` (the unit rows' `written_by` default).
pub async fn mark_writer(conn: &mut PgConnection, sync: SyncId) -> sqlx::Result<()> {
    sqlx::query("SELECT set_config('pgcs.sync_id', $1, true)")
        .bind(sync.uuid().to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// The unit table whose row carries `written_by` for `family`'s rows, and how a row of
/// `family` (aliased `t`) joins it (aliased `u`).
fn unit_join(family: Family) -> (&'static str, String) {
    match family.unit_columns() {
        (schema, Some(relation)) => (
            "catalog_relations",
            format!("u.schema_name = t.{schema} AND u.name = t.{relation}"),
        ),
        (schema, None) => ("catalog_schemas", format!("u.name = t.{schema}")),
    }
}

/// Keeps the stored rows of the units `plan` deletes (changed or removed) as versions retired
/// by `sync`. Runs before the deletion, in the write's transaction.
pub async fn retire(
    conn: &mut PgConnection,
    catalog_id: CatalogId,
    sync: SyncId,
    plan: &Plan,
) -> sqlx::Result<()> {
    for family in Family::ALL {
        let table = family.table();
        let (unit, join) = unit_join(family);
        // Every name in these statements is a constant of `Family`.
        let (filter, schemas, names) = match family.unit_columns() {
            (schema, Some(relation)) if !plan.deleted_relations.is_empty() => (
                format!(
                    "(t.{schema}, t.{relation}) IN (SELECT * FROM UNNEST($3::text[], $4::text[]))"
                ),
                &plan.deleted_relations.schemas,
                &plan.deleted_relations.names,
            ),
            (schema, None) if !plan.deleted_schemas.is_empty() => (
                format!("t.{schema} = ANY($3)"),
                &plan.deleted_schemas,
                &plan.deleted_schemas,
            ),
            _ => continue,
        };
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO catalog_retired_rows (catalog_id, retired_by, written_by, snapshot_table, row)
             SELECT $1, $2, u.written_by, '{table}', to_jsonb(t) - 'catalog_id'
             FROM {table} t JOIN {unit} u ON u.catalog_id = $1 AND {join}
             WHERE t.catalog_id = $1 AND {filter}"
        )))
        .bind(catalog_id)
        .bind(sync.uuid())
        .bind(schemas)
        .bind(names)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Copies the catalog's state after `sync` into the snapshot tables under the id `state`:
/// the current units written by `sync` or before, and the retired versions valid at `sync`.
/// The state's rows are then read as any catalog's are.
pub async fn copy_state(
    conn: &mut PgConnection,
    catalog_id: CatalogId,
    sync: SyncId,
    state: Uuid,
) -> sqlx::Result<()> {
    for family in Family::ALL {
        let table = family.table();
        let (unit, join) = unit_join(family);
        // Surrogate keys (identity columns) are left to their sequence.
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT quote_ident(attname) FROM pg_attribute
             WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
               AND attidentity = '' AND attgenerated = ''
             ORDER BY attnum",
        )
        .bind(table)
        .fetch_all(&mut *conn)
        .await?;
        let list = columns.join(", ");
        let values = |alias: &str| {
            columns
                .iter()
                .map(|c| match c.as_str() {
                    "catalog_id" => "$3".to_owned(),
                    c => format!("{alias}.{c}"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (current_values, retired_values) = (values("t"), values("r"));
        let current = format!(
            "INSERT INTO {table} ({list})
             SELECT {current_values} FROM {table} t
             WHERE t.catalog_id = $1 AND EXISTS (
                 SELECT 1 FROM {unit} u
                 WHERE u.catalog_id = $1 AND {join}
                   AND (u.written_by IS NULL OR u.written_by <= $2))"
        );
        let retired = format!(
            "INSERT INTO {table} ({list})
             SELECT {retired_values}
             FROM catalog_retired_rows a, jsonb_populate_record(NULL::{table}, a.row) r
             WHERE a.catalog_id = $1 AND a.snapshot_table = '{table}'
               AND (a.written_by IS NULL OR a.written_by <= $2) AND a.retired_by > $2"
        );
        for statement in [current, retired] {
            sqlx::query(AssertSqlSafe(statement))
                .bind(catalog_id)
                .bind(sync.uuid())
                .bind(state)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Deletes the rows stored under `catalog_id` from every snapshot table: a catalog's snapshot,
/// or a past state's copy.
pub async fn delete_rows(conn: &mut PgConnection, catalog_id: Uuid) -> sqlx::Result<()> {
    for family in Family::ALL {
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} WHERE catalog_id = $1",
            family.table()
        )))
        .bind(catalog_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Deletes the retired versions no retained sync can read any more: those in whose interval no
/// succeeded sync of their catalog falls.
pub async fn prune(conn: &mut PgConnection) -> sqlx::Result<u64> {
    let deleted = sqlx::query(
        "DELETE FROM catalog_retired_rows a
         WHERE NOT EXISTS (
             SELECT 1 FROM syncs s
             WHERE s.catalog_id = a.catalog_id AND s.status = 'succeeded'
               AND s.id < a.retired_by AND (a.written_by IS NULL OR s.id >= a.written_by))",
    )
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected())
}
