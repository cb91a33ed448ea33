//! A catalog's snapshot in the store, and the one way it is written.
//!
//! A write runs in the transaction that marks its sync succeeded, so readers see the old
//! snapshot or the new one, never a mix, and nothing of it before the commit. It is
//! incremental: every schema and relation (a *unit*, see [`rows`]) is stored with the hash of
//! its rows, and a write compares each unit's hash with the stored one ([`plan`]); it deletes
//! the changed and removed units, copies in the changed and added ones, records the change
//! history of the touched relations, and refreshes the statistics of the others in place. A
//! first snapshot is the case where every unit is added. An unchanged one writes nothing but
//! statistics.
//!
//! The rows are encoded on a blocking thread, table after table, and streamed into one binary
//! `COPY` per table ([`copy`]) while the store writes the parts before.

mod copy;
mod plan;
mod rows;

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};

pub use plan::Names;
use plan::{Action, Plan, Stored};
use rows::{Context, Family, Unit, UnitHasher};

use super::syncs::{Phase, Progress};
use super::{Tx, changes, column_types::ColumnTypes, details::Links};
use crate::catalog::{Snapshot, SnapshotStats};
use crate::ids::{CatalogId, SyncId};
use crate::join::{Cancelled, join_task};

/// What [`lock_catalog`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locked {
    /// The catalog was deleted meanwhile.
    Gone,
    Catalog(CatalogState),
}

/// A catalog's state as a write finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogState {
    /// Whether a snapshot was ever written: the first one is the change history's baseline.
    pub has_snapshot: bool,
}

/// Takes the catalog's row lock: two snapshot writes of one catalog never interleave. It is a
/// `NO KEY UPDATE` lock, which new syncs of the catalog (whose foreign key takes `KEY SHARE`)
/// do not wait for: a request to sync a catalog whose snapshot is being written is answered at
/// once.
///
/// It also turns JIT compilation off for the rest of the transaction: the change history
/// compares rows in temporary tables, which have no statistics, and the planner's guesses would
/// otherwise compile queries that run in milliseconds.
pub async fn lock_catalog(tx: &mut Tx<'_>, catalog_id: CatalogId) -> sqlx::Result<Locked> {
    let found = sqlx::query_scalar!(
        r#"SELECT synced_at IS NOT NULL AS "has_snapshot!" FROM catalogs,
                  set_config('jit', 'off', true)
           WHERE id = $1 FOR NO KEY UPDATE OF catalogs"#,
        catalog_id.uuid()
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match found {
        None => Locked::Gone,
        Some(has_snapshot) => Locked::Catalog(CatalogState { has_snapshot }),
    })
}

/// For a source whose probe has not moved since the last read: the catalog is current as of
/// now. Returns false (and changes nothing) when the stored probe is no longer `probe`.
pub async fn confirm_unchanged(
    tx: &mut Tx<'_>,
    catalog_id: CatalogId,
    probe: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        r#"UPDATE catalogs SET synced_at = now() WHERE id = $1 AND source_probe = $2"#,
        catalog_id.uuid(),
        probe
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What a [`write`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Whether the snapshot was the stored one but for its statistics: nothing was written.
    pub unchanged: bool,
    /// What was written: the objects of the added and changed schemas and relations.
    pub written: SnapshotStats,
    /// Changes recorded in the history; none for a catalog's first snapshot (the baseline).
    pub changes: Option<u64>,
}

/// Why a write did not complete.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error("encoding the snapshot was cancelled")]
    Cancelled(#[from] Cancelled),
}

/// Writes `snapshot` as the catalog's current one, read by `sync_id` at the source probe
/// `probe`. The caller holds [`lock_catalog`], which gave `state`, and commits.
pub async fn write(
    tx: &mut Tx<'_>,
    catalog_id: CatalogId,
    sync_id: SyncId,
    state: &CatalogState,
    snapshot: Arc<Snapshot>,
    probe: Option<&str>,
    progress: &Progress,
) -> Result<Written, WriteError> {
    let started = Instant::now();
    let ms = |t: Instant| t.elapsed().as_millis() as u64;
    // Rows are only ever committed with a sync's success, which stamps `synced_at`.
    let stored = match state.has_snapshot {
        true => Stored::load(tx, catalog_id).await?,
        false => Stored::default(),
    };
    let loaded_ms = ms(started);
    let relations = snapshot.schemas.iter().map(|s| s.tables.len() as u64).sum();
    progress.start(Phase::Comparing, Some(relations));
    let (plan_sent, plan_received) = oneshot::channel();
    let (parts, mut received) = mpsc::channel(2);
    let encoder = {
        let snapshot = snapshot.clone();
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || {
            encode(catalog_id, &snapshot, stored, plan_sent, parts, &progress)
        })
    };
    // The encoder hands the plan over before the rows; it only drops it by panicking.
    let Ok(plan) = plan_received.await else {
        join_task(encoder).await?;
        unreachable!("the encoder ended without a plan");
    };
    let planned_ms = ms(started);
    let touched = plan.touched_relations();
    let recording = state.has_snapshot && !touched.is_empty();
    if recording {
        changes::set_aside(tx, catalog_id, &plan.deleted_relations).await?;
    }
    delete_units(tx, catalog_id, &plan, recording).await?;
    let deleted_ms = ms(started);
    progress.start(Phase::Writing, Some(plan.written_relations.len() as u64));
    for family in Family::ALL {
        if !copy::copy_table(tx, family.copy_statement(), &mut received).await? {
            break; // the encoder stopped: its join says why
        }
    }
    drop(received);
    let types = join_task(encoder).await?;
    if !plan.written_relations.is_empty() {
        super::column_types::insert(tx, &types).await?;
    }
    let copied_ms = ms(started);
    let changes = match recording {
        true => Some(changes::record(tx, catalog_id, sync_id, &touched).await?),
        false if state.has_snapshot => Some(0),
        false => None,
    };
    let recorded_ms = ms(started);
    refresh_statistics(tx, catalog_id, &snapshot, &plan).await?;
    mark_synced(tx, catalog_id, &snapshot, probe).await?;
    tracing::debug!(
        loaded_ms,
        planned_ms,
        deleted_ms,
        copied_ms,
        recorded_ms,
        written_ms = ms(started),
        relations_written = plan.written_relations.len(),
        "snapshot written"
    );
    Ok(Written {
        unchanged: plan.is_empty(),
        written: written_counts(&snapshot, &plan),
        changes,
    })
}

/// The encoding thread: compares the snapshot with `stored`, hands the plan over, then sends
/// the rows of the written units, table after table, computing each unit's hash from its rows
/// as they are encoded. Returns the column types to insert.
fn encode(
    catalog: CatalogId,
    snapshot: &Snapshot,
    stored: Stored,
    plan_sent: oneshot::Sender<Plan>,
    parts: mpsc::Sender<copy::Part>,
    progress: &Progress,
) -> super::column_types::TypeRows {
    let cx = Context {
        catalog: catalog.uuid(),
        types: ColumnTypes::of(snapshot),
        links: Links::of(snapshot),
    };
    let plan = Plan::new(snapshot, &cx, stored, progress);
    let schemas = snapshot.schemas.iter().map(Unit::Schema);
    let relations = snapshot.schemas.iter().flat_map(|s| {
        s.tables.iter().map(|table| Unit::Relation {
            schema: &s.name,
            table,
        })
    });
    let written: Vec<Unit> = schemas
        .zip(plan.schemas.iter().copied())
        .chain(relations.zip(plan.relations.iter().map(|a| *a == Action::Write)))
        .filter_map(|(unit, written)| written.then_some(unit))
        .collect();
    if plan_sent.send(plan).is_err() {
        return Default::default();
    }
    let mut hashers = vec![UnitHasher::default(); written.len()];
    let mut hashes = vec![None; written.len()];
    let mut scratch = copy::CopyData::default();
    let mut parts = copy::Parts::new(parts);
    for family in Family::ALL {
        for (i, unit) in written.iter().enumerate() {
            if family.holds_units() && family.of_relations() == unit.is_relation() {
                let hasher = std::mem::take(&mut hashers[i]);
                hashes[i] = Some(hasher.finish(&cx, *unit, &mut scratch));
            }
            let out = parts.rows();
            let start = out.len();
            rows::encode(family, out, &cx, *unit, hashes[i].as_ref());
            if family != Family::Details && !family.holds_units() {
                hashers[i].add(&out.0[start..]);
            }
            if family == Family::Details && unit.is_relation() {
                progress.advance(1);
            }
            if !parts.flush() {
                return Default::default();
            }
        }
        if !parts.end() {
            return Default::default();
        }
    }
    cx.types.rows()
}

/// Deletes the stored rows of the changed and removed units from every table of their kind;
/// the compared tables' rows of the relations were set aside already when `set_aside`.
async fn delete_units(
    tx: &mut Tx<'_>,
    catalog_id: CatalogId,
    plan: &Plan,
    set_aside: bool,
) -> sqlx::Result<()> {
    for family in Family::ALL {
        let compared = matches!(
            family,
            Family::Relations | Family::ColumnLists | Family::Constraints | Family::Indexes
        );
        if compared && set_aside {
            continue;
        }
        let table = family.table();
        // Every name in these statements is a constant of `Family`.
        match family.unit_columns() {
            (schema, Some(relation)) if !plan.deleted_relations.is_empty() => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} t USING UNNEST($2::text[], $3::text[]) AS d(s, n)
                     WHERE t.catalog_id = $1 AND t.{schema} = d.s AND t.{relation} = d.n"
                )))
                .bind(catalog_id)
                .bind(&plan.deleted_relations.schemas)
                .bind(&plan.deleted_relations.names)
                .execute(&mut **tx)
                .await?;
            }
            (schema, None) if !plan.deleted_schemas.is_empty() => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE catalog_id = $1 AND {schema} = ANY($2)"
                )))
                .bind(catalog_id)
                .bind(&plan.deleted_schemas)
                .execute(&mut **tx)
                .await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The objects of the units `plan` writes.
fn written_counts(snapshot: &Snapshot, plan: &Plan) -> SnapshotStats {
    let mut counts = SnapshotStats::default();
    for (s, _) in snapshot
        .schemas
        .iter()
        .zip(&plan.schemas)
        .filter(|(_, w)| **w)
    {
        counts.schemas += 1;
        counts.types += s.types.len() as u64;
        counts.sequences += s.sequences.len() as u64;
        counts.functions += s.functions.len() as u64;
    }
    let relations = snapshot.schemas.iter().flat_map(|s| &s.tables);
    for (t, _) in relations
        .zip(&plan.relations)
        .filter(|(_, a)| **a == Action::Write)
    {
        counts.tables += 1;
        counts.columns += t.columns.len() as u64;
        counts.constraints += t.constraints.len() as u64;
        counts.indexes += t.indexes.len() as u64;
        counts.triggers += t.triggers.len() as u64;
    }
    counts
}

/// Refreshes the statistics that move with the data (row estimates, sizes) of the relations
/// the write kept whose figures changed.
async fn refresh_statistics(
    tx: &mut Tx<'_>,
    catalog_id: CatalogId,
    snapshot: &Snapshot,
    plan: &Plan,
) -> sqlx::Result<()> {
    let (mut schema, mut name, mut rows, mut bytes) = (vec![], vec![], vec![], vec![]);
    let relations = snapshot
        .schemas
        .iter()
        .flat_map(|s| s.tables.iter().map(move |t| (s.name.as_str(), t)));
    for ((s, t), action) in relations.zip(&plan.relations) {
        if *action == Action::Refresh {
            schema.push(s);
            name.push(t.name.as_str());
            rows.push(t.row_estimate);
            bytes.push(t.total_bytes);
        }
    }
    if schema.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        r#"UPDATE catalog_relations r SET row_estimate = u.rows, total_bytes = u.bytes
           FROM UNNEST($2::text[], $3::text[], $4::int8[], $5::int8[]) AS u(schema_name, name, rows, bytes)
           WHERE r.catalog_id = $1 AND r.schema_name = u.schema_name AND r.name = u.name"#,
        catalog_id.uuid(),
        &schema as &[&str],
        &name as &[&str],
        &rows as &[Option<i64>],
        &bytes as &[Option<i64>],
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stamps the catalog with the snapshot's time, database facts and source probe.
async fn mark_synced(
    tx: &mut Tx<'_>,
    catalog_id: CatalogId,
    snapshot: &Snapshot,
    probe: Option<&str>,
) -> sqlx::Result<()> {
    let database = snapshot.database.as_ref().map(|d| json!(d));
    sqlx::query!(
        r#"UPDATE catalogs SET synced_at = now(), database = $2, source_probe = $3
           WHERE id = $1"#,
        catalog_id.uuid(),
        database,
        probe
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes a catalog with everything it owns: its snapshot, its syncs and their attempts.
/// Waits for a snapshot write in progress (the catalog's row lock); a job still queued for one
/// of its syncs finds the sync gone and ends. False when there was no such catalog.
pub async fn delete_catalog(tx: &mut Tx<'_>, catalog_id: CatalogId) -> sqlx::Result<bool> {
    // The strongest row lock: it waits for a snapshot write, and new syncs wait for it.
    let found = sqlx::query_scalar!(
        r#"SELECT 1 AS "one!" FROM catalogs WHERE id = $1 FOR UPDATE"#,
        catalog_id.uuid()
    )
    .fetch_optional(&mut **tx)
    .await?;
    if found.is_none() {
        return Ok(false);
    }
    // The snapshot tables carry no foreign key to cascade.
    for family in Family::ALL {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {} WHERE catalog_id = $1",
            family.table()
        )))
        .bind(catalog_id)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query!(r#"DELETE FROM catalogs WHERE id = $1"#, catalog_id.uuid())
        .execute(&mut **tx)
        .await?;
    Ok(true)
}
