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
//! The catalog comes as pieces (a head with the schemas, batches of relations, an end), which
//! are compared and encoded on a blocking thread as they come: each piece's rows go into one
//! binary `COPY` per table ([`copy`]) while the next piece is read. Memory holds a few pieces,
//! never the whole catalog; what a write keeps for the whole catalog is the stored units'
//! hashes, the links between relations and the column types.

mod copy;
mod family;
mod plan;
mod rows;
pub mod versions;

use std::collections::BTreeSet;
use std::time::Instant;

use serde_json::json;
use tokio::sync::mpsc;

use family::Family;
pub use plan::Names;
use plan::{Action, Plan, Refreshed, Stored};
use rows::{Context, Unit, UnitHasher};

use super::progress::{Phase, Progress};
use super::{Tx, changes, column_types::ColumnTypes};
use crate::catalog::{End, Links, Piece, SnapshotStats};
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
    /// The objects of the whole snapshot.
    pub counts: SnapshotStats,
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
    /// The read stopped before the catalog's end: the reader says why.
    #[error("the read of the catalog ended before its end")]
    ReadEnded,
    #[error("encoding the snapshot was cancelled")]
    Cancelled(#[from] Cancelled),
}

/// Writes the catalog read into `pieces` as the catalog's current snapshot, read by
/// `sync_id`. The caller holds [`lock_catalog`], which gave `state`, and commits.
///
/// The pieces are compared and encoded on a blocking thread as they come, and each piece's
/// [`Step`] applied here while the next is read and encoded: the read, the encoding and the
/// store's work overlap, and no more than a few pieces are in memory at once.
pub async fn write(
    tx: &mut Tx<'_>,
    catalog_id: CatalogId,
    sync_id: SyncId,
    state: &CatalogState,
    pieces: mpsc::Receiver<Piece>,
    progress: &Progress,
) -> Result<Written, WriteError> {
    let started = Instant::now();
    let ms = |t: Instant| t.elapsed().as_millis() as u64;
    // Rows are only ever committed with a sync's success, which stamps `synced_at`.
    let recording = state.has_snapshot;
    let stored = match recording {
        true => Stored::load(tx, catalog_id).await?,
        false => Stored::default(),
    };
    // A snapshot written before access metadata (or the other object kinds) was read has no
    // access facts (no database objects); a later one has them, empty where the source gives
    // none. Those kinds are not compared against it.
    let mut previous = changes::Previous {
        access: false,
        other_objects: false,
    };
    let mut stored_objects = None;
    if recording {
        changes::prepare(tx).await?;
        let (access, objects): (bool, Option<sqlx::types::Json<Vec<serde_json::Value>>>) =
            sqlx::query_as("SELECT access IS NOT NULL, objects FROM catalogs WHERE id = $1")
                .bind(catalog_id)
                .fetch_one(&mut **tx)
                .await?;
        previous.access = access;
        previous.other_objects = objects.is_some();
        stored_objects = objects.map(|o| o.0);
    }
    versions::mark_writer(tx, sync_id).await?;
    let loaded_ms = ms(started);
    let phase = match recording {
        true => Phase::Comparing,
        false => Phase::Writing,
    };
    let (steps_sent, mut steps) = mpsc::channel(1);
    let encoder = {
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || {
            Encoder {
                catalog: catalog_id,
                stored,
                steps: steps_sent,
                progress,
                types: ColumnTypes::default(),
                names: BTreeSet::new(),
                counts: SnapshotStats::default(),
                written: SnapshotStats::default(),
            }
            .run(pieces, phase)
        })
    };
    let mut touched = Names::default();
    let mut touched_schemas: Vec<String> = Vec::new();
    let mut unchanged = true;
    while let Some(Step {
        plan,
        families,
        mut parts,
        relations,
    }) = steps.recv().await
    {
        unchanged &= plan.deleted_schemas.is_empty()
            && plan.deleted_relations.is_empty()
            && families.is_empty();
        if recording {
            versions::retire(tx, catalog_id, sync_id, &plan).await?;
        }
        if recording && !plan.deleted_relations.is_empty() {
            changes::set_aside(tx, catalog_id, &plan.deleted_relations).await?;
        }
        if recording && !plan.deleted_schemas.is_empty() {
            changes::set_aside_schemas(tx, catalog_id, &plan.deleted_schemas).await?;
        }
        delete_units(tx, catalog_id, &plan, recording).await?;
        refresh_statistics(tx, catalog_id, &plan.refreshed).await?;
        for family in families {
            if !copy::copy_table(tx, family.copy_statement(), &mut parts).await? {
                break; // the encoder stopped: its join says why
            }
        }
        touched.extend(&plan.touched_relations());
        touched_schemas.extend(plan.touched_schemas().cloned());
        progress.advance(relations);
    }
    let Some(encoded) = join_task(encoder).await? else {
        return Err(WriteError::ReadEnded);
    };
    let copied_ms = ms(started);
    if encoded.written.tables > 0 {
        super::column_types::insert(tx, &encoded.types).await?;
    }
    super::search::insert_names(tx, &encoded.names).await?;
    let changes = match recording {
        true if !touched.is_empty() || !touched_schemas.is_empty() => Some(
            changes::record(
                tx,
                catalog_id,
                sync_id,
                &touched,
                &touched_schemas,
                previous,
            )
            .await?,
        ),
        true => Some(0),
        false => None,
    };
    let database_changes = match stored_objects {
        Some(stored) => {
            let current = &encoded.end.objects;
            changes::record_database_objects(tx, catalog_id, sync_id, stored, current).await?
        }
        None => 0,
    };
    unchanged &= database_changes == 0;
    let changes = changes.map(|n| n + database_changes);
    let recorded_ms = ms(started);
    mark_synced(tx, catalog_id, sync_id, &encoded.end).await?;
    tracing::debug!(
        loaded_ms,
        copied_ms,
        recorded_ms,
        written_ms = ms(started),
        relations_written = encoded.written.tables,
        "snapshot written"
    );
    Ok(Written {
        unchanged,
        counts: encoded.counts,
        written: encoded.written,
        changes,
    })
}

/// What the store does with one piece: the plan's deletions and refreshes, then one `COPY`
/// per table of `families` (none when the piece writes no unit), fed from `parts`. Once done,
/// the piece's `relations` count as done in the sync's progress.
struct Step {
    plan: Plan,
    families: &'static [Family],
    parts: mpsc::Receiver<copy::Part>,
    relations: u64,
}

/// What the encoder found in the whole catalog.
struct Encoded {
    /// The column types of the catalog, to insert into the dictionary.
    types: super::column_types::TypeRows,
    /// The names of the written schemas, relations and columns, in order, for search.
    names: Vec<String>,
    end: End,
    counts: SnapshotStats,
    written: SnapshotStats,
}

/// The encoding thread's state.
struct Encoder {
    catalog: CatalogId,
    stored: Stored,
    steps: mpsc::Sender<Step>,
    progress: Progress,
    types: ColumnTypes,
    names: BTreeSet<String>,
    counts: SnapshotStats,
    written: SnapshotStats,
}

impl Encoder {
    /// Turns each piece into a [`Step`]: compares its units with the stored ones, hands the
    /// plan over, then encodes the written units' rows table after table, computing each
    /// unit's hash from its rows as they are encoded. At the end, the stored units the read
    /// did not meet are deleted. `None` when the read ended early or the writer stopped.
    fn run(mut self, mut pieces: mpsc::Receiver<Piece>, phase: Phase) -> Option<Encoded> {
        let Some(Piece::Head(head)) = pieces.blocking_recv() else {
            return None;
        };
        self.progress.start(phase, Some(head.relations));
        let links = head.links;
        let mut plan = Plan::default();
        let cx = Context::new(self.catalog, &self.types, &links);
        let writes = self.stored.plan_schemas(&head.schemas, &cx, &mut plan);
        let mut units = Vec::new();
        for (schema, written) in head.schemas.iter().zip(writes) {
            self.counts.add_schema(schema);
            if written {
                self.written.add_schema(schema);
                self.names.insert(schema.name.clone());
                units.push(Unit::Schema(schema));
            }
        }
        self.step(plan, &Family::OF_SCHEMAS, &units, &links, 0)?;
        loop {
            match pieces.blocking_recv()? {
                Piece::Relations(batch) => {
                    self.types
                        .learn(batch.iter().flat_map(|r| &r.table.columns));
                    let mut plan = Plan::default();
                    let cx = Context::new(self.catalog, &self.types, &links);
                    let actions = self.stored.plan_relations(&batch, &cx, &mut plan);
                    let mut units = Vec::new();
                    for (relation, action) in batch.iter().zip(actions) {
                        self.counts.add_relation(&relation.table);
                        if action == Action::Write {
                            self.written.add_relation(&relation.table);
                            let table = &relation.table;
                            // Search finds the schema author's relations only.
                            if table.extension.is_none() {
                                self.names.insert(table.name.clone());
                                self.names
                                    .extend(table.columns.iter().map(|c| c.name.clone()));
                            }
                            units.push(Unit::Relation {
                                schema: &relation.schema,
                                table: &relation.table,
                            });
                        }
                    }
                    let relations = batch.len() as u64;
                    self.step(plan, &Family::OF_RELATIONS, &units, &links, relations)?;
                }
                Piece::End(end) => {
                    let removed = std::mem::take(&mut self.stored).into_removed();
                    self.step(removed, &[], &[], &links, 0)?;
                    return Some(Encoded {
                        types: self.types.rows(),
                        names: std::mem::take(&mut self.names).into_iter().collect(),
                        end,
                        counts: self.counts,
                        written: self.written,
                    });
                }
                Piece::Head(_) => return None,
            }
        }
    }

    /// Hands `plan` over, then the rows of `units` in every table of `families`; the step
    /// covers `relations` relations of the catalog. `None` when the writer stopped taking them.
    fn step(
        &self,
        plan: Plan,
        families: &'static [Family],
        units: &[Unit<'_>],
        links: &Links,
        relations: u64,
    ) -> Option<()> {
        let families = match units.is_empty() {
            true => &[],
            false => families,
        };
        let (parts, received) = mpsc::channel(2);
        let step = Step {
            plan,
            families,
            parts: received,
            relations,
        };
        self.steps.blocking_send(step).ok()?;
        let cx = Context::new(self.catalog, &self.types, links);
        let mut hashers = vec![UnitHasher::default(); units.len()];
        let mut hashes = vec![None; units.len()];
        let mut scratch = copy::CopyData::default();
        let mut parts = copy::Parts::new(parts);
        for &family in families {
            for (i, unit) in units.iter().enumerate() {
                if family.holds_units() {
                    let hasher = std::mem::take(&mut hashers[i]);
                    hashes[i] = Some(hasher.finish(&cx, *unit, &mut scratch));
                }
                let out = parts.rows();
                let start = out.len();
                rows::encode(family, out, &cx, *unit, hashes[i].as_ref());
                if family != Family::Details && !family.holds_units() {
                    hashers[i].add(&out.0[start..]);
                }
                parts.flush().then_some(())?;
            }
            parts.end().then_some(())?;
        }
        Some(())
    }
}

/// Deletes the stored rows of the changed and removed units from every table of their kind;
/// on a re-sync the compared tables' rows were set aside already (`changes::set_aside`).
async fn delete_units(
    tx: &mut Tx<'_>,
    catalog_id: CatalogId,
    plan: &Plan,
    set_aside: bool,
) -> sqlx::Result<()> {
    for family in Family::ALL {
        let table = family.table();
        if set_aside && changes::is_compared(table) {
            continue;
        }
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

/// Refreshes the statistics that move with the data (row estimates, sizes) of the relations
/// a write kept whose figures changed.
async fn refresh_statistics(
    tx: &mut Tx<'_>,
    catalog_id: CatalogId,
    refreshed: &Refreshed,
) -> sqlx::Result<()> {
    if refreshed.relations.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        r#"UPDATE catalog_relations r SET row_estimate = u.rows, total_bytes = u.bytes
           FROM UNNEST($2::text[], $3::text[], $4::int8[], $5::int8[]) AS u(schema_name, name, rows, bytes)
           WHERE r.catalog_id = $1 AND r.schema_name = u.schema_name AND r.name = u.name"#,
        catalog_id.uuid(),
        &refreshed.relations.schemas,
        &refreshed.relations.names,
        &refreshed.rows as &[Option<i64>],
        &refreshed.bytes as &[Option<i64>],
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stamps the catalog with the snapshot's time, database facts, access facts (roles and
/// default privileges) and objects (publications, event triggers, foreign data wrappers and
/// servers): the whole database's, so kept with the catalog rather than in a unit; and its
/// source probe.
async fn mark_synced(
    tx: &mut Tx<'_>,
    catalog_id: CatalogId,
    sync_id: SyncId,
    end: &End,
) -> sqlx::Result<()> {
    let database = end.database.as_ref().map(|d| json!(d));
    // Stored even when the source gives none, so that the next write knows this snapshot was
    // written with access metadata.
    let access = json!(end.access.clone().unwrap_or_default());
    let objects = json!(end.objects);
    // The database-wide objects and access facts are versioned as the units are
    // (`object_reads::CatalogDocument`): a document this write replaces is kept, valid from the
    // sync that wrote it until this one.
    sqlx::query(
        r#"WITH retired AS (
               INSERT INTO catalog_retired_rows
                   (catalog_id, retired_by, written_by, snapshot_table, row)
               SELECT id, $6, objects_written_by, 'catalogs.objects', objects FROM catalogs
               WHERE id = $1 AND objects IS NOT NULL AND objects IS DISTINCT FROM $5::jsonb
               UNION ALL
               SELECT id, $6, access_written_by, 'catalogs.access', access FROM catalogs
               WHERE id = $1 AND access IS NOT NULL AND access IS DISTINCT FROM $4::jsonb
           )
           UPDATE catalogs SET synced_at = now(), database = $2, source_probe = $3, access = $4,
                  objects = $5,
                  objects_written_by = CASE WHEN objects IS DISTINCT FROM $5::jsonb THEN $6
                                            ELSE objects_written_by END,
                  access_written_by = CASE WHEN access IS DISTINCT FROM $4::jsonb THEN $6
                                           ELSE access_written_by END
           WHERE id = $1"#,
    )
    .bind(catalog_id)
    .bind(database)
    .bind(end.probe.as_deref())
    .bind(access)
    .bind(objects)
    .bind(sync_id)
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
    // The snapshot tables carry no foreign key to cascade; nor do the past states' copies.
    let states: Vec<uuid::Uuid> =
        sqlx::query_scalar("DELETE FROM catalog_states WHERE catalog_id = $1 RETURNING id")
            .bind(catalog_id)
            .fetch_all(&mut **tx)
            .await?;
    for id in states.into_iter().chain([catalog_id.uuid()]) {
        versions::delete_rows(tx, id).await?;
    }
    sqlx::query("DELETE FROM catalog_retired_rows WHERE catalog_id = $1")
        .bind(catalog_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query!(r#"DELETE FROM catalogs WHERE id = $1"#, catalog_id.uuid())
        .execute(&mut **tx)
        .await?;
    Ok(true)
}
