//! The current snapshot of each catalog: schemas, relations, columns, constraints, indexes.
//!
//! A sync replaces the whole snapshot in one transaction (delete, then one bulk insert or
//! `COPY` per table), so readers see either the old or the new snapshot, never a mix. A
//! relation's columns are one row of arrays (`catalog_column_lists`). A big snapshot's
//! detail documents are staged beside it on a second connection and moved in by that
//! transaction.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::json;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;
use uuid::Uuid;

use super::column_types::{self, ColumnTypes};
use super::{Tx, changes, details};
use crate::catalog::{Column, Snapshot, Table};

/// What [`lock_catalog`] found.
pub enum Locked {
    /// The catalog was deleted meanwhile.
    Gone,
    /// The catalog, with the fingerprint of its current snapshot and the source probe it was
    /// read at (if any).
    Catalog {
        fingerprint: Option<String>,
        source_probe: Option<String>,
    },
}

/// Takes the catalog's row lock: two snapshot writes of one catalog never interleave. It is a
/// `NO KEY UPDATE` lock, which new syncs of the catalog (whose foreign key takes `KEY SHARE`)
/// do not wait for: a request to sync a catalog whose snapshot is being written is answered at
/// once, and does not hold up the other requests written in the same transaction.
///
/// It also turns JIT compilation off for the rest of the transaction. A big catalog's write
/// compares tens of thousands of rows in temporary tables, which have no statistics: the
/// planner's estimates went past `jit_above_cost`, and compiling the column comparison took
/// 0.92 s of the 1.06 s it ran (`auto_explain`), where it needs 0.14 s without.
pub async fn lock_catalog(tx: &mut Tx<'_>, catalog_id: Uuid) -> sqlx::Result<Locked> {
    sqlx::query("SET LOCAL jit = off")
        .execute(&mut **tx)
        .await?;
    let found = sqlx::query!(
        r#"SELECT fingerprint, source_probe FROM catalogs WHERE id = $1 FOR NO KEY UPDATE"#,
        catalog_id
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match found {
        None => Locked::Gone,
        Some(row) => Locked::Catalog {
            fingerprint: row.fingerprint,
            source_probe: row.source_probe,
        },
    })
}

/// For a source whose probe has not moved since the last read: the catalog is current as of
/// now. Returns false (and changes nothing) when the stored probe is no longer `probe`.
pub async fn confirm_unchanged(
    tx: &mut Tx<'_>,
    catalog_id: Uuid,
    probe: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        r#"UPDATE catalogs SET synced_at = now() WHERE id = $1 AND source_probe = $2"#,
        catalog_id,
        probe
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// For an unchanged snapshot: refreshes only the statistics that move with the data (row
/// estimates, sizes), touching just the relations whose figures changed.
pub async fn refresh_statistics(
    tx: &mut Tx<'_>,
    catalog_id: Uuid,
    snapshot: &Snapshot,
    probe: Option<&str>,
) -> sqlx::Result<()> {
    let (mut schema, mut name, mut rows, mut bytes) = (vec![], vec![], vec![], vec![]);
    for s in &snapshot.schemas {
        for t in &s.tables {
            schema.push(s.name.as_str());
            name.push(t.name.as_str());
            rows.push(t.row_estimate);
            bytes.push(t.total_bytes);
        }
    }
    sqlx::query!(
        r#"UPDATE catalog_relations r SET row_estimate = u.rows, total_bytes = u.bytes
           FROM UNNEST($2::text[], $3::text[], $4::int8[], $5::int8[]) AS u(schema_name, name, rows, bytes)
           WHERE r.catalog_id = $1 AND r.schema_name = u.schema_name AND r.name = u.name
             AND (r.row_estimate IS DISTINCT FROM u.rows OR r.total_bytes IS DISTINCT FROM u.bytes)"#,
        catalog_id,
        &schema as &[&str],
        &name as &[&str],
        &rows as &[Option<i64>],
        &bytes as &[Option<i64>],
    )
    .execute(&mut **tx)
    .await?;
    mark_synced(tx, catalog_id, snapshot, None, probe).await
}

/// Stamps the catalog with the snapshot's time, database facts and (for a rewrite) fingerprint.
async fn mark_synced(
    tx: &mut Tx<'_>,
    catalog_id: Uuid,
    snapshot: &Snapshot,
    fingerprint: Option<&str>,
    probe: Option<&str>,
) -> sqlx::Result<()> {
    let database = snapshot.database.as_ref().map(|d| json!(d));
    sqlx::query!(
        r#"UPDATE catalogs
           SET synced_at = now(), database = $2, fingerprint = coalesce($3, fingerprint),
               source_probe = $4
           WHERE id = $1"#,
        catalog_id,
        database,
        fingerprint,
        probe
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Replaces the `pending` fingerprint a snapshot was committed with by its computed one, unless
/// another write replaced the snapshot meanwhile (its own fingerprint then stays).
pub async fn settle_fingerprint(
    pool: &PgPool,
    catalog_id: Uuid,
    pending: &str,
    fingerprint: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE catalogs SET fingerprint = $3 WHERE id = $1 AND fingerprint = $2",
        catalog_id,
        pending,
        fingerprint
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Replaces the `pending` source probe a snapshot was committed with by the probe taken after
/// the commit, unless another write replaced the snapshot meanwhile (its own probe then stays).
pub async fn settle_probe(
    pool: &PgPool,
    catalog_id: Uuid,
    pending: &str,
    probe: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE catalogs SET source_probe = $3 WHERE id = $1 AND source_probe = $2",
        catalog_id,
        pending,
        probe
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// A snapshot as a sync writes it. Its fingerprint may still be computed on another thread
/// while the rows are written: it is only stored at the end.
pub struct Written<'a, F: Future<Output = sqlx::Result<String>>> {
    pub snapshot: &'a Arc<Snapshot>,
    pub fingerprint: F,
    /// Whether it takes the bulk paths ([`is_big`]), decided once by the caller.
    pub big: bool,
    /// The source probe it was read at, or the `pending:` mark of one taken after the commit
    /// ([`settle_probe`]); none when the source has no probe.
    pub probe: Option<&'a str>,
    /// Its detail documents, and where they stand.
    pub documents: DetailDocuments,
}

/// A snapshot's detail documents, as [`replace`] gets them.
pub enum DetailDocuments {
    /// Not started: the write builds them.
    ToBuild,
    /// Being built ([`documents`]): the write inserts them.
    Building(Documents),
    /// Committed already, beside a first snapshot's early write ([`write_documents_beside`]).
    WrittenBeside,
}

/// A snapshot's detail documents, being built (on a blocking thread for a big one).
pub struct Documents(Parts<DetailPart>);

/// Starts building the detail documents of `snapshot`, for [`Written::documents`]: a caller
/// with time to wait before the write (for an [`EarlyWrite`] to finish, say) has them all
/// built meanwhile (13 MB for 10,000 tables; at most two parts wait in the usual write). With
/// two parts built ahead, the rest were built after the early write, at about 65 ms a part on
/// a machine busy with the fingerprint and the store (statement log), which was most of the
/// write after it.
pub fn documents(big: bool, snapshot: Arc<Snapshot>) -> Documents {
    Documents(detail_parts(big, DOCUMENTS_AHEAD, snapshot))
}

/// How many parts of the documents [`documents`] builds ahead: more than a 10,000-table
/// catalog has.
const DOCUMENTS_AHEAD: usize = 8;

/// What a catalog held when [`replace`] writes its snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    /// No snapshot: this is its first.
    Nothing,
    /// No snapshot, and this one's relations, columns and keys are written already
    /// ([`write_early`]).
    EarlyRows,
    /// A snapshot, which this one replaces and is compared with.
    Snapshot,
}

/// Replaces the catalog's snapshot with `new`, written by `sync_id`. The caller holds
/// [`lock_catalog`]. Returns how many changes against the previous snapshot the sync recorded
/// (none for a catalog's first snapshot, which is the baseline).
///
/// Every table is written with `UNNEST` inserts over arrays that borrow the snapshot's strings
/// (per-row lists, constraint and index columns, travel as array literals); a big snapshot's
/// column lists, constraints and indexes go in with `COPY`. What takes the worker real CPU
/// time to prepare (the `COPY` data, the detail documents) is built on blocking threads while
/// the store works (see [`in_parts`]), and a big snapshot's documents are staged on a second
/// connection from `pool`.
pub async fn replace(
    tx: &mut Tx<'_>,
    pool: &PgPool,
    catalog_id: Uuid,
    sync_id: Uuid,
    new: Written<'_, impl Future<Output = sqlx::Result<String>>>,
    before: Before,
) -> sqlx::Result<Option<u64>> {
    let had_snapshot = before == Before::Snapshot;
    let rows = async {
        let started = std::time::Instant::now();
        let ms = |t: std::time::Instant| t.elapsed().as_millis() as u64;
        // A catalog's first snapshot has nothing to delete or compare with.
        if had_snapshot {
            changes::set_aside_previous(tx, catalog_id).await?;
            delete_rows(tx, catalog_id).await?;
        }
        let set_aside_ms = ms(started);
        // A first snapshot's documents may be left over from an earlier write of it that
        // failed after writing them beside its rows ([`write_documents_beside`]).
        let inserts_documents = !matches!(new.documents, DetailDocuments::WrittenBeside);
        if !had_snapshot && inserts_documents {
            clear_leftover_documents(tx, catalog_id).await?;
        }
        let early = before == Before::EarlyRows;
        let documents = match new.documents {
            DetailDocuments::ToBuild => detail_parts(new.big, 2, new.snapshot.clone()),
            DetailDocuments::Building(documents) => documents.0,
            // Committed already: none is left to insert (an empty part list costs no statement).
            DetailDocuments::WrittenBeside => Parts::Ready(VecDeque::new()),
        };
        replace_rows(
            tx,
            pool,
            catalog_id,
            new.snapshot,
            new.big,
            early,
            documents,
        )
        .await?;
        let written_ms = ms(started);
        let recorded = match had_snapshot {
            true => Some(changes::record(tx, catalog_id, sync_id).await?),
            false => None,
        };
        tracing::debug!(
            set_aside_ms,
            written_ms,
            recorded_ms = ms(started),
            "snapshot replaced"
        );
        Ok::<_, sqlx::Error>(recorded)
    };
    let (recorded, fingerprint) = tokio::join!(rows, new.fingerprint);
    let (recorded, fingerprint) = (recorded?, fingerprint?);
    mark_synced(tx, catalog_id, new.snapshot, Some(&fingerprint), new.probe).await?;
    Ok(recorded)
}

/// Deletes every snapshot row of a catalog (the tables carry no foreign key to cascade).
async fn delete_rows(tx: &mut Tx<'_>, catalog_id: Uuid) -> sqlx::Result<()> {
    for delete in DELETES {
        sqlx::query(delete)
            .bind(catalog_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Deletes a catalog with everything it owns: its snapshot, its syncs and their attempts.
/// Waits for a snapshot write in progress (the catalog's row lock); a job still queued for one
/// of its syncs finds the sync gone and ends. False when there was no such catalog.
pub async fn delete_catalog(tx: &mut Tx<'_>, catalog_id: Uuid) -> sqlx::Result<bool> {
    // The strongest row lock: it waits for a snapshot write, and new syncs wait for it.
    let found = sqlx::query_scalar!(
        r#"SELECT 1 AS "one!" FROM catalogs WHERE id = $1 FOR UPDATE"#,
        catalog_id
    )
    .fetch_optional(&mut **tx)
    .await?;
    if found.is_none() {
        return Ok(false);
    }
    delete_rows(tx, catalog_id).await?;
    sqlx::query!(
        "DELETE FROM catalog_relation_details_staged WHERE catalog_id = $1",
        catalog_id
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(r#"DELETE FROM catalogs WHERE id = $1"#, catalog_id)
        .execute(&mut **tx)
        .await?;
    Ok(true)
}

const DELETES: [&str; 11] = [
    "DELETE FROM catalog_relation_details WHERE catalog_id = $1",
    "DELETE FROM catalog_dependencies WHERE catalog_id = $1",
    "DELETE FROM catalog_triggers WHERE catalog_id = $1",
    "DELETE FROM catalog_functions WHERE catalog_id = $1",
    "DELETE FROM catalog_sequences WHERE catalog_id = $1",
    "DELETE FROM catalog_types WHERE catalog_id = $1",
    "DELETE FROM catalog_indexes WHERE catalog_id = $1",
    "DELETE FROM catalog_constraints WHERE catalog_id = $1",
    "DELETE FROM catalog_column_lists WHERE catalog_id = $1",
    "DELETE FROM catalog_relations WHERE catalog_id = $1",
    "DELETE FROM catalog_schemas WHERE catalog_id = $1",
];

/// Inserts every row of the snapshot (but the relations, their columns and keys when they are
/// `relations_written` already, see [`write_early`]); empty kinds cost no statement.
///
/// The detail documents are built while the rows before them are written. A big snapshot's
/// documents (about 13 MB for 10,000 tables) are staged at the same time on a second
/// connection from `pool` and moved in at the end (see [`stage_details`]); a small snapshot's,
/// or a big one's when no second connection comes in time, are inserted after the rows.
async fn replace_rows(
    tx: &mut Tx<'_>,
    pool: &PgPool,
    catalog_id: Uuid,
    snapshot: &Arc<Snapshot>,
    big: bool,
    relations_written: bool,
    parts: Parts<DetailPart>,
) -> sqlx::Result<()> {
    // Staging pays when the documents go in while the rows do; with the bulk of the rows
    // written early there is nothing to overlap, and moving them in would only add to the
    // write.
    let documents = match big && !relations_written {
        true => Details::Staging(AbortOnDropHandle::new(tokio::spawn(stage_details(
            pool.clone(),
            catalog_id,
            parts,
        )))),
        false => Details::Inline(parts),
    };
    let schemas = &snapshot.schemas;
    if !schemas.is_empty() {
        sqlx::query!(
            r#"INSERT INTO catalog_schemas (catalog_id, name, owner, comment)
               SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[])"#,
            catalog_id,
            &schemas.iter().map(|s| s.name.as_str()).collect::<Vec<_>>() as &[&str],
            &schemas
                .iter()
                .map(|s| s.owner.as_deref())
                .collect::<Vec<_>>() as &[Option<&str>],
            &schemas
                .iter()
                .map(|s| s.comment.as_deref())
                .collect::<Vec<_>>() as &[Option<&str>],
        )
        .execute(&mut **tx)
        .await?;
    }

    let tables: Vec<(&str, &Table)> = schemas
        .iter()
        .flat_map(|s| s.tables.iter().map(move |t| (s.name.as_str(), t)))
        .collect();
    let started = std::time::Instant::now();
    let ms = |t: std::time::Instant| t.elapsed().as_millis() as u64;
    if !relations_written {
        insert_relations(tx, catalog_id, big, snapshot, &tables).await?;
    }
    let relations_ms = ms(started);
    if !relations_written {
        insert_columns(tx, catalog_id, big, snapshot, &tables).await?;
    }
    let columns_ms = ms(started);
    if !relations_written {
        insert_constraints(tx, catalog_id, big, snapshot, &tables).await?;
    }
    let constraints_ms = ms(started);
    if !relations_written {
        insert_indexes(tx, catalog_id, big, snapshot, &tables).await?;
    }
    let indexes_ms = ms(started);
    replace_schema_objects(tx, catalog_id, snapshot).await?;
    replace_triggers_and_dependencies(tx, catalog_id, &tables).await?;
    let rows_ms = ms(started);
    let documents = match documents {
        Details::Inline(parts) => Staged::No(parts),
        Details::Staging(staging) => match staging.await {
            Ok(staged) => staged?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {
                return Err(sqlx::Error::Protocol(
                    "staging the detail documents was cancelled".into(),
                ));
            }
        },
    };
    match documents {
        Staged::No(parts) => insert_details(tx, catalog_id, parts).await?,
        Staged::Under(generation) => publish_staged_details(tx, catalog_id, generation).await?,
    }
    tracing::debug!(
        relations_ms,
        columns_ms,
        constraints_ms,
        indexes_ms,
        rows_ms,
        details_ms = ms(started),
        "snapshot rows written"
    );
    Ok(())
}

/// Builds `part`s on a blocking thread, each handed over as soon as it is complete, while the
/// caller writes the ones before it: the store and the worker then work at the same time, on
/// two cores. At most `ahead` finished parts wait, which bounds the memory they take. The
/// builder stops when the receiver is dropped (the write failed).
///
/// A small snapshot's parts are built at once, in place: a thread hand-off would cost more
/// than it saves.
///
/// `build` hands each part to the function it gets, and returns early when that returns false.
fn in_parts<T: Send + 'static>(
    big: bool,
    ahead: usize,
    build: impl FnOnce(&mut dyn FnMut(T) -> bool) + Send + 'static,
) -> Parts<T> {
    if !big {
        let mut ready = VecDeque::new();
        build(&mut |part| {
            ready.push_back(part);
            true
        });
        return Parts::Ready(ready);
    }
    let (sender, receiver) = mpsc::channel(ahead);
    let builder =
        tokio::task::spawn_blocking(move || build(&mut |part| sender.blocking_send(part).is_ok()));
    Parts::Building { receiver, builder }
}

/// What [`in_parts`] builds.
enum Parts<T> {
    Ready(VecDeque<T>),
    Building {
        receiver: mpsc::Receiver<T>,
        builder: tokio::task::JoinHandle<()>,
    },
    /// Built elsewhere, by a builder whose end (or panic) its owner sees (see [`write_early`]).
    Receiving(mpsc::Receiver<T>),
}

impl<T> Parts<T> {
    /// The next part; `None` once the builder is done. A builder that panicked panics here
    /// instead of ending the parts early, which would leave rows out.
    async fn next(&mut self) -> Option<T> {
        let (receiver, builder) = match self {
            Self::Ready(ready) => return ready.pop_front(),
            Self::Receiving(receiver) => return receiver.recv().await,
            Self::Building { receiver, builder } => (receiver, builder),
        };
        if let Some(part) = receiver.recv().await {
            return Some(part);
        }
        let built = builder.await;
        *self = Self::Ready(VecDeque::new()); // a finished builder is not awaited twice
        if let Err(e) = built
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
        None
    }
}

/// Whether a snapshot is big enough for the bulk paths: `COPY` for its column lists,
/// constraints and indexes, and parts (and the fingerprint) built on other threads.
pub(crate) fn is_big(snapshot: &Snapshot) -> bool {
    let columns: usize = snapshot
        .schemas
        .iter()
        .flat_map(|s| &s.tables)
        .map(|t| t.columns.len())
        .sum();
    columns >= COPY_COLUMNS_FROM
}

/// A part of the detail documents: about [`DETAIL_PART_BYTES`] of them.
#[derive(Default)]
struct DetailPart {
    schema: Vec<String>,
    name: Vec<String>,
    detail: Vec<String>,
}

/// The detail documents of a 10,000-table catalog are about 13 MB: they go in parts of about
/// 4 MB, so that neither the worker nor the store holds them all at once.
const DETAIL_PART_BYTES: usize = 4 << 20;

/// Each relation's detail document (see [`details`]), in parts.
fn detail_parts(big: bool, ahead: usize, snapshot: Arc<Snapshot>) -> Parts<DetailPart> {
    in_parts(big, ahead, move |parts| {
        let mut documents = details::build(&snapshot).peekable();
        while documents.peek().is_some() {
            let (mut part, mut bytes) = (DetailPart::default(), 0);
            while bytes < DETAIL_PART_BYTES {
                let Some(d) = documents.next() else { break };
                bytes += d.detail.len();
                part.schema.push(d.schema.to_owned());
                part.name.push(d.name.to_owned());
                part.detail.push(d.detail);
            }
            if !parts(part) {
                return;
            }
        }
    })
}

/// How a snapshot's detail documents reach the store.
enum Details {
    /// Inserted by the snapshot's transaction after its rows.
    Inline(Parts<DetailPart>),
    /// Being staged on a second connection (the task is aborted if the write fails first).
    Staging(AbortOnDropHandle<sqlx::Result<Staged>>),
}

/// What [`stage_details`] did.
enum Staged {
    /// Committed under this generation, to be published.
    Under(Uuid),
    /// Not staged (no second connection came in time): the parts, for the snapshot's own
    /// transaction to insert.
    No(Parts<DetailPart>),
}

/// How long staging waits for a second connection: long enough to open one, short enough
/// not to matter when every connection is busy (the documents then go in after the rows).
const STAGING_CONNECTION_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Writes the documents on a second connection, in a transaction of its own, into
/// `catalog_relation_details_staged` under a new generation, returned once committed: the
/// snapshot's transaction then moves them into place ([`publish_staged_details`]), so they
/// become visible with the snapshot and not before. The store writes them on a second core
/// while the first writes the rows. Leftovers of a write of this catalog that failed after its
/// staging committed go first (one writer per catalog holds its row lock).
async fn stage_details(
    pool: PgPool,
    catalog_id: Uuid,
    mut parts: Parts<DetailPart>,
) -> sqlx::Result<Staged> {
    use sqlx::Connection;
    let Ok(Ok(mut conn)) = tokio::time::timeout(STAGING_CONNECTION_WAIT, pool.acquire()).await
    else {
        return Ok(Staged::No(parts));
    };
    let generation = Uuid::now_v7();
    let mut tx = conn.begin().await?;
    sqlx::query!(
        "DELETE FROM catalog_relation_details_staged WHERE catalog_id = $1",
        catalog_id
    )
    .execute(&mut *tx)
    .await?;
    while let Some(part) = parts.next().await {
        sqlx::query!(
            r#"INSERT INTO catalog_relation_details_staged
                   (catalog_id, generation, schema_name, name, detail, columns_inside)
               SELECT $1, $2, *, false FROM UNNEST($3::text[], $4::text[], $5::text[])"#,
            catalog_id,
            generation,
            &part.schema,
            &part.name,
            &part.detail,
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Staged::Under(generation))
}

/// Moves the staged documents of `generation` into `catalog_relation_details`, inside the
/// snapshot's transaction. They were compressed when staged and are copied as they are.
async fn publish_staged_details(
    tx: &mut Tx<'_>,
    catalog_id: Uuid,
    generation: Uuid,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"WITH staged AS (
               DELETE FROM catalog_relation_details_staged
               WHERE catalog_id = $1 AND generation = $2
               RETURNING schema_name, name, detail, columns_inside
           )
           INSERT INTO catalog_relation_details
               (catalog_id, schema_name, name, detail, columns_inside)
           SELECT $1, schema_name, name, detail, columns_inside FROM staged"#,
        catalog_id,
        generation
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes a first snapshot's detail documents on a second connection, in a transaction of its
/// own, straight into `catalog_relation_details`, while its [`EarlyWrite`] (which holds the
/// catalog's lock) copies the rows in: the store takes them on a second core. Before, they went
/// in after the rows, in the snapshot's transaction: 145-168 ms at the end of a 10,000-table
/// catalog's first sync, with one core idle.
///
/// Committed before the snapshot, they are still not seen before it: a document is only read
/// with its relation's row (`store::reads::relation_details`), which the snapshot's commit
/// makes visible. Should the snapshot's write fail after they committed, they stay unread
/// until the catalog's next first write deletes them ([`clear_leftover_documents`]), or its
/// deletion does. The transaction holds the catalog's row with `FOR KEY SHARE`, which the
/// early write's lock lets through and a deletion waits for, so the documents of a deleted
/// catalog are never left behind.
///
/// Gives the documents back when no second connection came in time: the snapshot's
/// transaction then inserts them after its rows.
pub fn write_documents_beside(
    pool: &PgPool,
    catalog_id: Uuid,
    documents: Documents,
) -> DocumentsBeside {
    let pool = pool.clone();
    DocumentsBeside(AbortOnDropHandle::new(tokio::spawn(async move {
        use sqlx::Connection;
        let Ok(Ok(mut conn)) = tokio::time::timeout(STAGING_CONNECTION_WAIT, pool.acquire()).await
        else {
            return Ok(Some(documents));
        };
        let mut tx = conn.begin().await?;
        let catalog: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM catalogs WHERE id = $1 FOR KEY SHARE")
                .bind(catalog_id)
                .fetch_optional(&mut *tx)
                .await?;
        if catalog.is_none() {
            // The early write holds the catalog, which cannot be deleted meanwhile.
            return Err(sqlx::Error::Protocol("the catalog was deleted".into()));
        }
        let started = std::time::Instant::now();
        clear_leftover_documents(&mut tx, catalog_id).await?;
        let cleared_ms = started.elapsed().as_millis() as u64;
        insert_details(&mut tx, catalog_id, documents.0).await?;
        tx.commit().await?;
        tracing::debug!(
            cleared_ms,
            beside_ms = started.elapsed().as_millis() as u64,
            "detail documents written beside"
        );
        Ok(None)
    })))
}

/// A first snapshot's detail documents being written beside its early write (see
/// [`write_documents_beside`]). Dropping it stops the write.
pub struct DocumentsBeside(AbortOnDropHandle<sqlx::Result<Option<Documents>>>);

impl DocumentsBeside {
    /// `None` once the documents are committed; the documents themselves when they were not
    /// written, for the snapshot's transaction to insert.
    pub async fn finish(self) -> sqlx::Result<Option<Documents>> {
        match self.0.await {
            Ok(written) => written,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(sqlx::Error::Protocol(
                "writing the detail documents was cancelled".into(),
            )),
        }
    }
}

/// Deletes the detail documents that a failed first write of the catalog left behind (see
/// [`write_documents_beside`]), once any such write still going has ended: every transaction
/// that writes a first snapshot's documents takes the same transaction-level advisory lock
/// first, so that a write whose task was stopped cannot commit them after this has looked.
async fn clear_leftover_documents(tx: &mut Tx<'_>, catalog_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(DOCUMENTS_LOCK_CLASS)
        .bind(catalog_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM catalog_relation_details WHERE catalog_id = $1")
        .bind(catalog_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The first key of [`clear_leftover_documents`]'s advisory locks (the second is a hash of the
/// catalog's id): "pgcs" in ASCII, so as not to meet another application's locks.
const DOCUMENTS_LOCK_CLASS: i32 = 0x7067_6373;

/// Writes the detail documents: a big snapshot's (built in parts on another thread) with one
/// `COPY`, a small one's with one `UNNEST` insert per part.
///
/// A small snapshot's are not copied: an insert is one round trip, a `COPY` two (its start,
/// then the data). And with sqlx-core 0.9.0 as released, which leaves Nagle's algorithm on, the
/// end of a `COPY` (a small message written after the data) waited about 40 ms for the
/// server's delayed ACK, which doubled the time of a small catalog's sync (the patch:
/// `vendor/README.md`).
async fn insert_details(
    tx: &mut Tx<'_>,
    catalog_id: Uuid,
    mut parts: Parts<DetailPart>,
) -> sqlx::Result<()> {
    if !matches!(parts, Parts::Ready(_)) {
        let mut copy = tx.copy_in_raw(COPY_DETAILS).await?;
        copy.send(CopyData::HEADER).await?;
        while let Some(part) = parts.next().await {
            let mut data = CopyData::default();
            let rows = part.schema.iter().zip(&part.name).zip(&part.detail);
            for ((schema, name), detail) in rows {
                data.tuple(5);
                data.uuid(&catalog_id);
                data.text(Some(schema));
                data.text(Some(name));
                data.text(Some(detail));
                data.boolean(false);
            }
            copy.send(data.0).await?;
        }
        copy.send(&CopyData::TRAILER[..]).await?;
        copy.finish().await?;
        return Ok(());
    }
    while let Some(part) = parts.next().await {
        sqlx::query!(
            r#"INSERT INTO catalog_relation_details
                   (catalog_id, schema_name, name, detail, columns_inside)
               SELECT $1, *, false FROM UNNEST($2::text[], $3::text[], $4::text[])"#,
            catalog_id,
            &part.schema,
            &part.name,
            &part.detail,
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A PostgreSQL array literal (`{"a","b\"c"}`), for a per-row list inside an UNNEST insert.
pub(crate) fn array_literal(items: &[String]) -> String {
    literal(items.iter().map(|i| Some(i.as_str())), true)
}

/// A PostgreSQL array literal of `items`, `NULL` for `None`. Quoted elements have `"` and `\`
/// escaped; unquoted ones (numbers, booleans) are written as they are.
fn literal<'a>(items: impl Iterator<Item = Option<&'a str>>, quoted: bool) -> String {
    let mut out = String::from("{");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            None => out.push_str("NULL"),
            Some(item) if quoted => {
                out.push('"');
                for ch in item.chars() {
                    if ch == '"' || ch == '\\' {
                        out.push('\\');
                    }
                    out.push(ch);
                }
                out.push('"');
            }
            Some(item) => out.push_str(item),
        }
    }
    out.push('}');
    out
}

/// A big snapshot's relations go in with `COPY`, as its other bulk tables do (and as
/// [`write_early`] writes them); a small snapshot's with one `UNNEST` insert.
async fn insert_relations(
    tx: &mut Tx<'_>,
    catalog_id: Uuid,
    big: bool,
    snapshot: &Arc<Snapshot>,
    tables: &[(&str, &Table)],
) -> sqlx::Result<()> {
    if big {
        return copy_in(
            tx,
            COPY_RELATIONS,
            copy_parts(catalog_id, snapshot.clone(), relation_row),
        )
        .await;
    }
    let mut r = RelationColumns::default();
    for (schema, t) in tables {
        r.schema.push(schema);
        r.name.push(&t.name);
        r.kind.push(t.kind.as_str());
        r.owner.push(t.owner.as_deref());
        r.comment.push(t.comment.as_deref());
        r.row_estimate.push(t.row_estimate);
        r.definition.push(t.definition.as_deref());
        r.parent_schema
            .push(t.partition_of.as_ref().map(|p| p.schema.as_str()));
        r.parent_name
            .push(t.partition_of.as_ref().map(|p| p.name.as_str()));
        r.partition_bound.push(t.partition_bound.as_deref());
        r.column_count.push(t.columns.len() as i32);
        r.total_bytes.push(t.total_bytes);
        r.unlogged.push(t.unlogged);
        r.rls_enabled.push(t.rls_enabled);
        r.partition_key.push(t.partition_key.as_deref());
    }
    if !r.schema.is_empty() {
        sqlx::query!(
            r#"INSERT INTO catalog_relations (catalog_id, schema_name, name, kind, owner, comment,
                   row_estimate, definition, parent_schema, parent_name, partition_bound, column_count,
                   total_bytes, unlogged, rls_enabled, partition_key)
               SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                   $7::int8[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int4[],
                   $13::int8[], $14::bool[], $15::bool[], $16::text[])"#,
            catalog_id,
            &r.schema as &[&str],
            &r.name as &[&str],
            &r.kind as &[&str],
            &r.owner as &[Option<&str>],
            &r.comment as &[Option<&str>],
            &r.row_estimate as &[Option<i64>],
            &r.definition as &[Option<&str>],
            &r.parent_schema as &[Option<&str>],
            &r.parent_name as &[Option<&str>],
            &r.partition_bound as &[Option<&str>],
            &r.column_count,
            &r.total_bytes as &[Option<i64>],
            &r.unlogged,
            &r.rls_enabled,
            &r.partition_key as &[Option<&str>],
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Below this many columns, one `UNNEST` insert per table; from it, `COPY` (see [`is_big`]).
const COPY_COLUMNS_FROM: usize = 5_000;

/// The column lists of a big snapshot (one row of arrays per relation, see
/// `catalog_column_lists`) go in with `COPY`, the fastest way into PostgreSQL: they are most
/// of its data (200,000 columns for 10,000 tables). A small snapshot's go in with one `UNNEST`
/// insert, one round trip where a `COPY` takes two (see [`insert_details`]).
async fn insert_columns(
    tx: &mut Tx<'_>,
    catalog_id: Uuid,
    big: bool,
    snapshot: &Arc<Snapshot>,
    tables: &[(&str, &Table)],
) -> sqlx::Result<()> {
    if !big {
        return insert_few_columns(tx, catalog_id, snapshot, tables).await;
    }
    // The thread that builds the lists' data finds their types, and hands them over last.
    let (types_found, types_received) = tokio::sync::oneshot::channel();
    let snapshot = snapshot.clone();
    let parts = in_parts(true, 2, move |parts| {
        let types = ColumnTypes::of(&snapshot);
        if copy_data(catalog_id, &snapshot, &types, column_list_row, parts) {
            let _ = types_found.send(types.rows());
        }
    });
    copy_in(tx, COPY_COLUMN_LISTS, parts).await?;
    insert_handed_over_types(tx, types_received).await
}

/// Inserts the column types that the builder of the column lists' `COPY` data hands over after
/// its last part. None arrive when it stopped early, which fails the write.
async fn insert_handed_over_types(
    tx: &mut Tx<'_>,
    types: tokio::sync::oneshot::Receiver<column_types::TypeRows>,
) -> sqlx::Result<()> {
    let types = types
        .await
        .map_err(|_| sqlx::Error::Protocol("the column types were not handed over".into()))?;
    column_types::insert(tx, &types).await
}

/// Runs `statement`, a `COPY ... FROM STDIN`, with `parts` as its data.
async fn copy_in(
    tx: &mut Tx<'_>,
    statement: &'static str,
    mut parts: Parts<Vec<u8>>,
) -> sqlx::Result<()> {
    let mut copy = tx.copy_in_raw(statement).await?;
    while let Some(part) = parts.next().await {
        copy.send(part).await?;
    }
    copy.finish().await?;
    Ok(())
}

/// A `COPY` is sent in parts of about this many bytes.
const COPY_PART_BYTES: usize = 1 << 20;

/// The `COPY` data of a snapshot table, in parts: `rows` writes one relation's rows (given the
/// catalog id, the schema's name and the relation).
fn copy_parts(catalog_id: Uuid, snapshot: Arc<Snapshot>, rows: CopyRows) -> Parts<Vec<u8>> {
    in_parts(true, 2, move |parts| {
        let types = ColumnTypes::of(&snapshot);
        copy_data(catalog_id, &snapshot, &types, rows, parts);
    })
}

/// Writes a relation's rows of one snapshot table (given the catalog id, the snapshot's column
/// types and the schema's name) in `COPY`'s binary format.
type CopyRows = fn(&mut CopyData, &Uuid, &ColumnTypes, &str, &Table);

/// Hands `parts` the `COPY` data of `rows` for each relation of `snapshot`, in parts of about
/// [`COPY_PART_BYTES`]; false when `parts` stopped taking them.
fn copy_data(
    catalog_id: Uuid,
    snapshot: &Snapshot,
    types: &ColumnTypes,
    rows: CopyRows,
    parts: &mut dyn FnMut(Vec<u8>) -> bool,
) -> bool {
    let mut data = CopyData::default();
    data.0.extend_from_slice(CopyData::HEADER);
    for s in &snapshot.schemas {
        for t in &s.tables {
            rows(&mut data, &catalog_id, types, &s.name, t);
            if data.0.len() >= COPY_PART_BYTES && !parts(std::mem::take(&mut data).0) {
                return false;
            }
        }
    }
    data.0.extend_from_slice(&CopyData::TRAILER);
    parts(data.0)
}

/// A relation's row of `catalog_relations`.
fn relation_row(out: &mut CopyData, catalog: &Uuid, _: &ColumnTypes, schema: &str, t: &Table) {
    let parent = t.partition_of.as_ref();
    out.tuple(16);
    out.uuid(catalog);
    out.text(Some(schema));
    out.text(Some(&t.name));
    out.text(Some(t.kind.as_str()));
    out.text(t.owner.as_deref());
    out.text(t.comment.as_deref());
    out.int8(t.row_estimate);
    out.text(t.definition.as_deref());
    out.text(parent.map(|p| p.schema.as_str()));
    out.text(parent.map(|p| p.name.as_str()));
    out.text(t.partition_bound.as_deref());
    out.int4(t.columns.len() as i32);
    out.int8(t.total_bytes);
    out.boolean(t.unlogged);
    out.boolean(t.rls_enabled);
    out.text(t.partition_key.as_deref());
}

const COPY_DETAILS: &str = "COPY catalog_relation_details (catalog_id, schema_name, name, \
     detail, columns_inside) FROM STDIN (FORMAT binary)";

const COPY_RELATIONS: &str = "COPY catalog_relations (catalog_id, schema_name, name, kind, \
     owner, comment, row_estimate, definition, parent_schema, parent_name, partition_bound, \
     column_count, total_bytes, unlogged, rls_enabled, partition_key) FROM STDIN (FORMAT binary)";

const COPY_CONSTRAINTS: &str = "COPY catalog_constraints (catalog_id, schema_name, \
     relation_name, name, kind, columns, definition, ref_schema, ref_table, ref_columns, \
     on_update, on_delete, is_deferrable, is_deferred) FROM STDIN (FORMAT binary)";

const COPY_INDEXES: &str = "COPY catalog_indexes (catalog_id, schema_name, relation_name, \
     name, columns, include_columns, is_unique, is_primary, method, predicate, definition) \
     FROM STDIN (FORMAT binary)";

const COPY_COLUMN_LISTS: &str = "COPY catalog_column_lists (catalog_id, schema_name, \
     relation_name, ordinals, names, type_keys, nullable, default_exprs, comments, is_array, \
     identities, generated, collation_names) FROM STDIN (FORMAT binary)";

/// Starts writing a catalog's first snapshot while the source is still being read: `Early`
/// (the hook [`crate::introspect::introspect`] calls with the relations, their columns and
/// keys, as soon as it has them) builds their `COPY` data, and a task of its own opens the
/// snapshot's transaction, takes the catalog's lock and copies them in. The store then writes
/// while the source is read, where it waited for the whole read before; the rest of the
/// snapshot (detail documents, types, triggers, ...) follows the read in the same transaction.
///
/// Only a big snapshot (see [`is_big`]) of a catalog without one is written early; otherwise
/// [`EarlyWrite::finish`] gives no transaction, and the write goes the usual way.
pub fn write_early(pool: &PgPool, catalog_id: Uuid) -> (crate::introspect::Early, EarlyWrite) {
    const TABLES: [(&str, CopyRows, usize); 4] = [
        (COPY_RELATIONS, relation_row, 2),
        (COPY_COLUMN_LISTS, column_list_row, 2),
        // The keys' data (about 8 MB for 10,000 tables) is taken whole, so that the read, which
        // waits for the hook, does not wait for the columns' `COPY` to end.
        (COPY_CONSTRAINTS, constraint_rows, 64),
        (COPY_INDEXES, index_rows, 64),
    ];
    let (decided, decision) = tokio::sync::oneshot::channel::<bool>();
    let (locked, locked_received) = tokio::sync::oneshot::channel::<()>();
    let (mut senders, mut receivers) = (Vec::new(), Vec::new());
    for (.., capacity) in TABLES {
        let (sender, receiver) = mpsc::channel::<Vec<u8>>(capacity);
        senders.push(sender);
        receivers.push(receiver);
    }
    // The types the column lists use, found while their data is built.
    let (types_found, types_received) = tokio::sync::oneshot::channel();
    let hook: crate::introspect::Early = Box::new(move |snapshot: &Snapshot| {
        let early = is_big(snapshot);
        if decided.send(early).is_err() || !early {
            return;
        }
        let types = ColumnTypes::of(snapshot);
        for ((_, rows, _), sender) in TABLES.iter().zip(senders) {
            // Each table's channel closes when its sender is dropped: the end of its `COPY`.
            let sent = copy_data(catalog_id, snapshot, &types, *rows, &mut |part| {
                sender.blocking_send(part).is_ok()
            });
            if !sent {
                return; // the write stopped taking them
            }
        }
        let _ = types_found.send(types.rows());
    });
    let pool = pool.clone();
    let task = tokio::spawn(async move {
        if decision.await != Ok(true) {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let mut tx = pool.begin().await?;
        match lock_catalog(&mut tx, catalog_id).await? {
            Locked::Catalog {
                fingerprint: None, ..
            } => {}
            _ => {
                // It has a snapshot (or is gone): the usual way decides, once the lock is free.
                tx.rollback().await?;
                return Ok(None);
            }
        }
        let _ = locked.send(());
        let locked_ms = started.elapsed().as_millis() as u64;
        let mut copied_ms = Vec::new();
        for ((statement, ..), parts) in TABLES.iter().zip(receivers) {
            copy_in(&mut tx, statement, Parts::Receiving(parts)).await?;
            copied_ms.push(started.elapsed().as_millis() as u64);
        }
        // The hook hands the types over after its last part.
        insert_handed_over_types(&mut tx, types_received).await?;
        tracing::debug!(
            locked_ms,
            ?copied_ms,
            early_ms = started.elapsed().as_millis() as u64,
            "relations, columns and keys written early"
        );
        Ok(Some(tx))
    });
    let write = EarlyWrite {
        task: AbortOnDropHandle::new(task),
        locked: locked_received,
    };
    (hook, write)
}

/// A first snapshot's relations, columns and keys being written (see [`write_early`]).
/// Dropping it stops the write and rolls it back.
pub struct EarlyWrite {
    task: AbortOnDropHandle<sqlx::Result<Option<Tx<'static>>>>,
    /// Sent once the write holds the catalog's lock and found no snapshot.
    locked: tokio::sync::oneshot::Receiver<()>,
}

impl EarlyWrite {
    /// Whether the write holds the catalog's lock, the catalog having no snapshot: then it
    /// writes its rows, and [`Self::finish`] gives its transaction unless it fails. False when
    /// nothing is written early, or the write failed before taking the lock.
    pub async fn locked(&mut self) -> bool {
        (&mut self.locked).await.is_ok()
    }

    /// The snapshot's transaction, holding the catalog's lock, with the relations, their
    /// columns and keys written; `None` when nothing was written early. Call it only once the
    /// read that was given the hook succeeded: that the read called it at each stage, and it
    /// returned, is what says every part was sent.
    pub async fn finish(self) -> sqlx::Result<Option<Tx<'static>>> {
        match self.task.await {
            Ok(written) => written,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(sqlx::Error::Protocol(
                "writing the snapshot early was cancelled".into(),
            )),
        }
    }
}

/// A relation's row of `catalog_column_lists` (none for a relation without columns), in the
/// binary format: its arrays go as they are, where the text format had the store parse an
/// array literal for each, quoted and escaped (COPY of 200,000 columns as 10,000 lists in
/// psql: 126-129 ms binary, 161-178 ms text). Its columns' types go as their keys in
/// `column_types`.
fn column_list_row(
    out: &mut CopyData,
    catalog: &Uuid,
    types: &ColumnTypes,
    schema: &str,
    t: &Table,
) {
    let columns = &t.columns;
    if columns.is_empty() {
        return;
    }
    out.tuple(13);
    out.uuid(catalog);
    out.text(Some(schema));
    out.text(Some(&t.name));
    let ordinals = columns
        .iter()
        .enumerate()
        .map(|(i, c)| Some(c.ordinal.unwrap_or(i as i32 + 1).to_be_bytes()));
    out.array(CopyData::INT4, ordinals);
    let texts = |out: &mut CopyData, f: fn(&Column) -> &str| {
        out.array(
            CopyData::TEXT,
            columns.iter().map(|c| Some(f(c).as_bytes())),
        );
    };
    let optional = |out: &mut CopyData, f: fn(&Column) -> Option<&str>| match columns
        .iter()
        .any(|c| f(c).is_some())
    {
        true => out.array(
            CopyData::TEXT,
            columns.iter().map(|c| f(c).map(str::as_bytes)),
        ),
        false => out.field(None),
    };
    let flags = |out: &mut CopyData, f: fn(&Column) -> bool| {
        out.array(
            CopyData::BOOL,
            columns.iter().map(|c| Some([u8::from(f(c))])),
        );
    };
    texts(out, |c| &c.name);
    out.array(
        CopyData::UUID,
        columns.iter().map(|c| Some(types.key_of(c).into_bytes())),
    );
    flags(out, |c| c.nullable);
    optional(out, |c| c.default.as_deref());
    optional(out, |c| c.comment.as_deref());
    flags(out, |c| c.is_array);
    optional(out, |c| c.identity.as_deref());
    optional(out, |c| c.generated.as_deref());
    optional(out, |c| c.collation.as_deref());
}

/// The column lists and the types they use, in one statement.
async fn insert_few_columns(
    tx: &mut Tx<'_>,
    catalog_id: Uuid,
    snapshot: &Snapshot,
    tables: &[(&str, &Table)],
) -> sqlx::Result<()> {
    let types = ColumnTypes::of(snapshot);
    let mut c = ColumnListColumns::default();
    for (schema, t) in tables {
        let Some(list) = ColumnList::of(t, &types) else {
            continue;
        };
        c.schema.push(schema);
        c.relation.push(&t.name);
        c.ordinals.push(list.ordinals);
        c.names.push(list.names);
        c.type_keys.push(list.type_keys);
        c.nullable.push(list.nullable);
        c.default_exprs.push(list.default_exprs);
        c.comments.push(list.comments);
        c.is_array.push(list.is_array);
        c.identities.push(list.identities);
        c.generated.push(list.generated);
        c.collation_names.push(list.collation_names);
    }
    if c.schema.is_empty() {
        return Ok(());
    }
    // See `column_types::insert`.
    let types = types.rows();
    sqlx::query!(
        r#"WITH types AS (
               INSERT INTO column_types (key, data_type, type_schema, type_name)
               SELECT * FROM UNNEST($14::uuid[], $15::text[], $16::text[], $17::text[])
               ON CONFLICT (key) DO NOTHING
           )
           INSERT INTO catalog_column_lists (catalog_id, schema_name, relation_name, ordinals,
               names, type_keys, nullable, default_exprs, comments, is_array, identities,
               generated, collation_names)
           SELECT $1, s, r, o::int4[], n::text[], k::uuid[], nl::bool[], de::text[], c::text[],
                  ia::bool[], i::text[], g::text[], co::text[]
           FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                       $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                       $13::text[])
                AS x(s, r, o, n, k, nl, de, c, ia, i, g, co)"#,
        catalog_id,
        &c.schema as &[&str],
        &c.relation as &[&str],
        &c.ordinals as &[String],
        &c.names as &[String],
        &c.type_keys as &[String],
        &c.nullable as &[String],
        &c.default_exprs as &[Option<String>],
        &c.comments as &[Option<String>],
        &c.is_array as &[String],
        &c.identities as &[Option<String>],
        &c.generated as &[Option<String>],
        &c.collation_names as &[Option<String>],
        &types.keys,
        &types.data_types,
        &types.type_schemas as &[Option<String>],
        &types.type_names as &[Option<String>],
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A relation's columns as the array literals of its `catalog_column_lists` row: element i of
/// each is column i. An optional attribute that no column has is `None` (a NULL array).
struct ColumnList {
    ordinals: String,
    names: String,
    type_keys: String,
    nullable: String,
    default_exprs: Option<String>,
    comments: Option<String>,
    is_array: String,
    identities: Option<String>,
    generated: Option<String>,
    collation_names: Option<String>,
}

impl ColumnList {
    /// `None` for a relation without columns, which has no list.
    fn of(table: &Table, types: &ColumnTypes) -> Option<Self> {
        let columns = &table.columns;
        if columns.is_empty() {
            return None;
        }
        let texts = |f: fn(&Column) -> &str| literal(columns.iter().map(|c| Some(f(c))), true);
        let optional = |f: fn(&Column) -> Option<&str>| {
            columns
                .iter()
                .any(|c| f(c).is_some())
                .then(|| literal(columns.iter().map(f), true))
        };
        let flags = |f: fn(&Column) -> bool| {
            literal(
                columns.iter().map(|c| Some(if f(c) { "t" } else { "f" })),
                false,
            )
        };
        let ordinals: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| c.ordinal.unwrap_or(i as i32 + 1).to_string())
            .collect();
        let type_keys: Vec<String> = columns
            .iter()
            .map(|c| types.key_of(c).to_string())
            .collect();
        Some(Self {
            ordinals: literal(ordinals.iter().map(|o| Some(o.as_str())), false),
            names: texts(|c| &c.name),
            type_keys: literal(type_keys.iter().map(|k| Some(k.as_str())), false),
            nullable: flags(|c| c.nullable),
            default_exprs: optional(|c| c.default.as_deref()),
            comments: optional(|c| c.comment.as_deref()),
            is_array: flags(|c| c.is_array),
            identities: optional(|c| c.identity.as_deref()),
            generated: optional(|c| c.generated.as_deref()),
            collation_names: optional(|c| c.collation.as_deref()),
        })
    }
}

/// One array per column of `catalog_column_lists`, for an `UNNEST` insert: each relation's
/// lists travel as array literals.
#[derive(Default)]
struct ColumnListColumns<'a> {
    schema: Vec<&'a str>,
    relation: Vec<&'a str>,
    ordinals: Vec<String>,
    names: Vec<String>,
    type_keys: Vec<String>,
    nullable: Vec<String>,
    default_exprs: Vec<Option<String>>,
    comments: Vec<Option<String>>,
    is_array: Vec<String>,
    identities: Vec<Option<String>>,
    generated: Vec<Option<String>>,
    collation_names: Vec<Option<String>>,
}

/// Rows in `COPY`'s binary format (`FORMAT binary`): a header, then per row its field count
/// and each field as a length (-1 for NULL) and the value in the type's binary form, then a
/// trailer. Values go as they are, with nothing to quote or escape, and arrays as arrays: the
/// store parses nothing (the column lists' arrays in the text format cost it a fifth more,
/// and the worker quoting and escaping them).
#[derive(Default)]
struct CopyData(Vec<u8>);

impl CopyData {
    const HEADER: &'static [u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
    const TRAILER: [u8; 2] = (-1i16).to_be_bytes();
    /// Element type oids of the arrays written.
    const BOOL: u32 = 16;
    const INT4: u32 = 23;
    const TEXT: u32 = 25;
    const UUID: u32 = 2950;

    fn tuple(&mut self, fields: i16) {
        self.0.extend_from_slice(&fields.to_be_bytes());
    }

    fn field(&mut self, value: Option<&[u8]>) {
        match value {
            Some(value) => {
                self.0
                    .extend_from_slice(&(value.len() as i32).to_be_bytes());
                self.0.extend_from_slice(value);
            }
            None => self.0.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }

    fn uuid(&mut self, value: &Uuid) {
        self.field(Some(value.as_bytes()));
    }

    fn text(&mut self, value: Option<&str>) {
        self.field(value.map(str::as_bytes));
    }

    fn int4(&mut self, value: i32) {
        self.field(Some(&value.to_be_bytes()));
    }

    fn int8(&mut self, value: Option<i64>) {
        self.field(value.map(i64::to_be_bytes).as_ref().map(|b| &b[..]));
    }

    fn boolean(&mut self, value: bool) {
        self.field(Some(&[u8::from(value)]));
    }

    fn text_array(&mut self, items: Option<&[String]>) {
        match items {
            Some(items) => self.array(Self::TEXT, items.iter().map(|i| Some(i.as_bytes()))),
            None => self.field(None),
        }
    }

    /// A one-dimensional array of `element_type`, lower bound 1.
    fn array<T: AsRef<[u8]>>(
        &mut self,
        element_type: u32,
        items: impl ExactSizeIterator<Item = Option<T>> + Clone,
    ) {
        let start = self.0.len();
        self.0.extend_from_slice(&[0; 4]); // the field's length, known at the end
        let has_null = items.clone().any(|i| i.is_none());
        for word in [
            1,
            i32::from(has_null),
            element_type as i32,
            items.len() as i32,
            1,
        ] {
            self.0.extend_from_slice(&word.to_be_bytes());
        }
        for item in items {
            self.field(item.as_ref().map(AsRef::as_ref));
        }
        let length = (self.0.len() - start - 4) as i32;
        self.0[start..start + 4].copy_from_slice(&length.to_be_bytes());
    }
}

/// A big snapshot's constraints (20,000 for 10,000 tables) go in with `COPY`, their data built
/// on a blocking thread; a small snapshot's with one `UNNEST` insert.
async fn insert_constraints(
    tx: &mut Tx<'_>,
    catalog_id: Uuid,
    big: bool,
    snapshot: &Arc<Snapshot>,
    tables: &[(&str, &Table)],
) -> sqlx::Result<()> {
    if big {
        return copy_in(
            tx,
            COPY_CONSTRAINTS,
            copy_parts(catalog_id, snapshot.clone(), constraint_rows),
        )
        .await;
    }
    let (mut schema, mut relation, mut name, mut kind, mut columns, mut definition) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut ref_schema, mut ref_table, mut ref_columns, mut on_update, mut on_delete) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut deferrable, mut deferred) = (vec![], vec![]);
    for (s, t) in tables {
        for k in &t.constraints {
            let target = k.references.as_ref();
            schema.push(*s);
            relation.push(t.name.as_str());
            name.push(k.name.as_str());
            kind.push(k.kind.as_str());
            columns.push(array_literal(&k.columns));
            definition.push(k.definition.as_deref());
            ref_schema.push(target.map(|r| r.schema.as_str()));
            ref_table.push(target.map(|r| r.table.as_str()));
            ref_columns.push(target.map(|r| array_literal(&r.columns)));
            on_update.push(target.and_then(|r| r.on_update.as_deref()));
            on_delete.push(target.and_then(|r| r.on_delete.as_deref()));
            deferrable.push(k.deferrable);
            deferred.push(k.initially_deferred);
        }
    }
    if !schema.is_empty() {
        sqlx::query!(
            r#"INSERT INTO catalog_constraints (catalog_id, schema_name, relation_name, name, kind,
                   columns, definition, ref_schema, ref_table, ref_columns, on_update, on_delete,
                   is_deferrable, is_deferred)
               SELECT $1, u.s, u.r, u.n, u.k, u.c::text[], u.d, u.rs, u.rt, u.rc::text[], u.ou, u.od,
                      u.df, u.dd
               FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                   $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bool[],
                   $14::bool[]) AS u(s, r, n, k, c, d, rs, rt, rc, ou, od, df, dd)"#,
            catalog_id,
            &schema as &[&str],
            &relation as &[&str],
            &name as &[&str],
            &kind as &[&str],
            &columns,
            &definition as &[Option<&str>],
            &ref_schema as &[Option<&str>],
            &ref_table as &[Option<&str>],
            &ref_columns as &[Option<String>],
            &on_update as &[Option<&str>],
            &on_delete as &[Option<&str>],
            &deferrable,
            &deferred,
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A relation's rows of `catalog_constraints`.
fn constraint_rows(out: &mut CopyData, catalog: &Uuid, _: &ColumnTypes, schema: &str, t: &Table) {
    for k in &t.constraints {
        let target = k.references.as_ref();
        out.tuple(14);
        out.uuid(catalog);
        out.text(Some(schema));
        out.text(Some(&t.name));
        out.text(Some(&k.name));
        out.text(Some(k.kind.as_str()));
        out.text_array(Some(&k.columns));
        out.text(k.definition.as_deref());
        out.text(target.map(|r| r.schema.as_str()));
        out.text(target.map(|r| r.table.as_str()));
        out.text_array(target.map(|r| r.columns.as_slice()));
        out.text(target.and_then(|r| r.on_update.as_deref()));
        out.text(target.and_then(|r| r.on_delete.as_deref()));
        out.boolean(k.deferrable);
        out.boolean(k.initially_deferred);
    }
}

/// Like [`insert_constraints`]: `COPY` for a big snapshot, one `UNNEST` insert for a small one.
async fn insert_indexes(
    tx: &mut Tx<'_>,
    catalog_id: Uuid,
    big: bool,
    snapshot: &Arc<Snapshot>,
    tables: &[(&str, &Table)],
) -> sqlx::Result<()> {
    if big {
        return copy_in(
            tx,
            COPY_INDEXES,
            copy_parts(catalog_id, snapshot.clone(), index_rows),
        )
        .await;
    }
    let (mut schema, mut relation, mut name, mut columns, mut include) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut unique, mut primary, mut method, mut predicate, mut definition) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (s, t) in tables {
        for i in &t.indexes {
            schema.push(*s);
            relation.push(t.name.as_str());
            name.push(i.name.as_str());
            columns.push(array_literal(&i.columns));
            include.push(array_literal(&i.include));
            unique.push(i.unique);
            primary.push(i.primary);
            method.push(i.method.as_deref());
            predicate.push(i.predicate.as_deref());
            definition.push(i.definition.as_deref());
        }
    }
    if !schema.is_empty() {
        sqlx::query!(
            r#"INSERT INTO catalog_indexes (catalog_id, schema_name, relation_name, name, columns,
                   include_columns, is_unique, is_primary, method, predicate, definition)
               SELECT $1, u.s, u.r, u.n, u.c::text[], u.i::text[], u.uq, u.pk, u.m, u.p, u.d
               FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bool[],
                   $8::bool[], $9::text[], $10::text[], $11::text[]) AS u(s, r, n, c, i, uq, pk, m, p, d)"#,
            catalog_id,
            &schema as &[&str],
            &relation as &[&str],
            &name as &[&str],
            &columns,
            &include,
            &unique,
            &primary,
            &method as &[Option<&str>],
            &predicate as &[Option<&str>],
            &definition as &[Option<&str>],
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A relation's rows of `catalog_indexes`.
fn index_rows(out: &mut CopyData, catalog: &Uuid, _: &ColumnTypes, schema: &str, t: &Table) {
    for i in &t.indexes {
        out.tuple(11);
        out.uuid(catalog);
        out.text(Some(schema));
        out.text(Some(&t.name));
        out.text(Some(&i.name));
        out.text_array(Some(&i.columns));
        out.text_array(Some(&i.include));
        out.boolean(i.unique);
        out.boolean(i.primary);
        out.text(i.method.as_deref());
        out.text(i.predicate.as_deref());
        out.text(i.definition.as_deref());
    }
}

/// Types, sequences and functions: one jsonb document per kind.
async fn replace_schema_objects(
    tx: &mut Tx<'_>,
    catalog_id: Uuid,
    snapshot: &Snapshot,
) -> sqlx::Result<()> {
    let schemas = &snapshot.schemas;
    let types: Vec<_> = schemas
        .iter()
        .flat_map(|s| {
            s.types.iter().map(move |t| {
                json!({
                    "schema_name": s.name, "name": t.name, "kind": t.kind.as_str(), "owner": t.owner,
                    "comment": t.comment, "labels": t.labels, "base_type": t.base_type,
                    "not_null": t.not_null, "default_expr": t.default, "checks": t.checks,
                    "attributes": t.attributes,
                })
            })
        })
        .collect();
    if !types.is_empty() {
        sqlx::query!(
            r#"INSERT INTO catalog_types (catalog_id, schema_name, name, kind, owner, comment, labels,
                   base_type, not_null, default_expr, checks, attributes)
               SELECT $1, r.schema_name, r.name, r.kind, r.owner, r.comment, r.labels, r.base_type,
                      r.not_null, r.default_expr, r.checks, r.attributes
               FROM jsonb_to_recordset($2::jsonb) AS r(schema_name text, name text, kind text,
                   owner text, comment text, labels text[], base_type text, not_null boolean,
                   default_expr text, checks text[], attributes jsonb)"#,
            catalog_id,
            serde_json::Value::Array(types),
        )
        .execute(&mut **tx)
        .await?;
    }

    let sequences: Vec<_> = schemas
        .iter()
        .flat_map(|s| {
            s.sequences.iter().map(move |q| {
                json!({
                    "schema_name": s.name, "name": q.name, "data_type": q.data_type,
                    "start_value": q.start, "increment": q.increment, "min_value": q.min,
                    "max_value": q.max, "cache": q.cache, "cycle": q.cycle,
                    "owned_by_table": q.owned_by.as_ref().map(|o| format!("{}.{}", o.schema, o.table)),
                    "owned_by_column": q.owned_by.as_ref().map(|o| &o.column),
                })
            })
        })
        .collect();
    if !sequences.is_empty() {
        sqlx::query!(
            r#"INSERT INTO catalog_sequences (catalog_id, schema_name, name, data_type, start_value,
                   increment, min_value, max_value, cache, cycle, owned_by_table, owned_by_column)
               SELECT $1, r.schema_name, r.name, r.data_type, r.start_value, r.increment, r.min_value,
                      r.max_value, r.cache, r.cycle, r.owned_by_table, r.owned_by_column
               FROM jsonb_to_recordset($2::jsonb) AS r(schema_name text, name text, data_type text,
                   start_value bigint, increment bigint, min_value bigint, max_value bigint,
                   cache bigint, cycle boolean, owned_by_table text, owned_by_column text)"#,
            catalog_id,
            serde_json::Value::Array(sequences),
        )
        .execute(&mut **tx)
        .await?;
    }

    let functions: Vec<_> = schemas
        .iter()
        .flat_map(|s| {
            s.functions.iter().map(move |f| {
                json!({
                    "schema_name": s.name, "name": f.name, "arguments": f.arguments,
                    "result": f.result, "language": f.language, "kind": f.kind, "comment": f.comment,
                })
            })
        })
        .collect();
    if !functions.is_empty() {
        sqlx::query!(
            r#"INSERT INTO catalog_functions (catalog_id, schema_name, name, arguments, result,
                   language, kind, comment)
               SELECT $1, r.schema_name, r.name, r.arguments, r.result, r.language, r.kind, r.comment
               FROM jsonb_to_recordset($2::jsonb) AS r(schema_name text, name text, arguments text,
                   result text, language text, kind text, comment text)"#,
            catalog_id,
            serde_json::Value::Array(functions),
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn replace_triggers_and_dependencies(
    tx: &mut Tx<'_>,
    catalog_id: Uuid,
    tables: &[(&str, &Table)],
) -> sqlx::Result<()> {
    let triggers: Vec<_> = tables
        .iter()
        .flat_map(|(schema, t)| {
            t.triggers.iter().map(move |g| {
                json!({
                    "schema_name": schema, "relation_name": t.name, "name": g.name,
                    "timing": g.timing, "events": g.events, "for_each": g.for_each,
                    "function": g.function, "enabled": g.enabled, "definition": g.definition,
                })
            })
        })
        .collect();
    if !triggers.is_empty() {
        sqlx::query!(
            r#"INSERT INTO catalog_triggers (catalog_id, schema_name, relation_name, name, timing,
                   events, for_each, function, enabled, definition)
               SELECT $1, r.schema_name, r.relation_name, r.name, r.timing, r.events, r.for_each,
                      r.function, r.enabled, r.definition
               FROM jsonb_to_recordset($2::jsonb) AS r(schema_name text, relation_name text, name text,
                   timing text, events text[], for_each text, function text, enabled boolean,
                   definition text)"#,
            catalog_id,
            serde_json::Value::Array(triggers),
        )
        .execute(&mut **tx)
        .await?;
    }

    let (mut schema, mut relation, mut ref_schema, mut ref_name) = (vec![], vec![], vec![], vec![]);
    for (s, t) in tables {
        for d in &t.depends_on {
            schema.push(s.to_string());
            relation.push(t.name.clone());
            ref_schema.push(d.schema.clone());
            ref_name.push(d.name.clone());
        }
    }
    if !schema.is_empty() {
        sqlx::query!(
            r#"INSERT INTO catalog_dependencies (catalog_id, schema_name, relation_name, ref_schema, ref_name)
               SELECT DISTINCT $1::uuid, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[])"#,
            catalog_id,
            &schema,
            &relation,
            &ref_schema,
            &ref_name,
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[derive(Default)]
struct RelationColumns<'a> {
    schema: Vec<&'a str>,
    name: Vec<&'a str>,
    kind: Vec<&'a str>,
    owner: Vec<Option<&'a str>>,
    comment: Vec<Option<&'a str>>,
    row_estimate: Vec<Option<i64>>,
    definition: Vec<Option<&'a str>>,
    parent_schema: Vec<Option<&'a str>>,
    parent_name: Vec<Option<&'a str>>,
    partition_bound: Vec<Option<&'a str>>,
    column_count: Vec<i32>,
    total_bytes: Vec<Option<i64>>,
    unlogged: Vec<bool>,
    rls_enabled: Vec<bool>,
    partition_key: Vec<Option<&'a str>>,
}

#[cfg(test)]
mod tests {
    use super::{CopyData, array_literal, literal};

    #[test]
    fn copy_data_writes_lengths_nulls_and_arrays() {
        let mut row = CopyData::default();
        row.tuple(4);
        row.text(Some("a\tb"));
        row.text(None);
        row.int8(Some(-2));
        row.array(CopyData::TEXT, [Some("x"), None].into_iter());
        let mut expected: Vec<u8> =
            vec![0, 4, 0, 0, 0, 3, b'a', b'\t', b'b', 0xff, 0xff, 0xff, 0xff];
        expected.extend_from_slice(&[0, 0, 0, 8]);
        expected.extend_from_slice(&(-2i64).to_be_bytes());
        // length, ndim 1, has nulls, text, 2 elements from 1, "x", NULL
        expected.extend_from_slice(&[0, 0, 0, 29, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 25]);
        expected.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, b'x']);
        expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(row.0, expected);
    }

    #[test]
    fn array_literals_quote_every_element() {
        let items = vec![
            "a".to_owned(),
            "b\"c".to_owned(),
            "d\\e".to_owned(),
            "{x,y}".to_owned(),
            String::new(),
        ];
        assert_eq!(array_literal(&items), r#"{"a","b\"c","d\\e","{x,y}",""}"#);
        assert_eq!(array_literal(&[]), "{}");
    }

    #[test]
    fn literals_write_null_and_leave_numbers_unquoted() {
        let texts = [Some("NULL"), None, Some("a,b")];
        assert_eq!(literal(texts.into_iter(), true), r#"{"NULL",NULL,"a,b"}"#);
        assert_eq!(
            literal([Some("1"), Some("20")].into_iter(), false),
            "{1,20}"
        );
    }
}
