//! Reading a source database's catalog straight from `pg_catalog`.
//!
//! Like `pg_dump` (since PostgreSQL 15), introspection runs a fixed handful of bulk queries, one
//! per object kind, each covering every relation of the included schemas at once (the schema
//! oids travel as one array), inside one read-only REPEATABLE READ transaction so all of them
//! see the same snapshot. The number of queries does not grow with the number of tables.

mod assemble;
mod printing;
mod queries;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::TryStreamExt;
use sqlx::postgres::types::Oid;
use sqlx::{Connection, PgConnection};
use tokio::sync::oneshot;
use tokio_util::task::AbortOnDropHandle;

use crate::join::{Cancelled, join_task};

use assemble::{ColumnTypes, Keys, Rest, assemble_rest, skeleton};
use printing::Printer;

use crate::catalog::{SchemaFilter, Snapshot};

/// Options for one introspection run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Bounds every catalog query on the source.
    pub statement_timeout: Duration,
    /// Which schemas to read.
    pub schemas: SchemaFilter,
}

/// Why a read of the catalog failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Query(#[from] sqlx::Error),
    #[error("the source exported an unexpected snapshot id {0:?}")]
    SnapshotId(String),
    #[error("the helper connection's read ended without its rows")]
    HelperEnded,
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

/// A catalog as one read saw it.
#[derive(Debug)]
pub struct Read {
    pub snapshot: Snapshot,
    /// The [`probe`] of the catalog state the snapshot was read from, taken in the same
    /// transaction: a change committed on the source after the read moves the probe a later
    /// sync compares with this one.
    pub probe: String,
}

/// Reads the whole catalog of the database `conn` is connected to. With a `helper`
/// connection to the same database, the heaviest queries run on it at the same time, in the
/// same snapshot (exported from `conn`'s transaction, as `pg_dump -j` does), in a task of its
/// own, so that decoding the main connection's rows never holds up the helper's next query.
/// The helper is closed at the end.
pub async fn introspect(
    conn: &mut PgConnection,
    helper: Option<PgConnection>,
    options: &Options,
) -> Result<Read, ReadError> {
    let timeout = format!("{}ms", options.statement_timeout.as_millis().max(1));
    // Begun by hand rather than as a `Transaction`, which would end with this function.
    sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *conn)
        .await?;
    let tx = conn;
    // SET LOCAL takes no bind parameters; set_config(.., true) is its bindable form.
    // Parallel workers start with empty catalog caches, which the per-row catalog functions
    // (pg_get_constraintdef, pg_get_expr) then fill again: serial plans run these queries in
    // about half the time, and two connections already share the source's CPUs.
    sqlx::query(READ_SETTINGS)
        .bind(&timeout)
        .execute(&mut *tx)
        .await?;

    let started = std::time::Instant::now();
    let database: queries::DatabaseRow = sqlx::query_as(queries::DATABASE)
        .fetch_one(&mut *tx)
        .await?;
    let schemas: Vec<queries::SchemaRow> = sqlx::query_as(queries::SCHEMAS)
        .bind(options.schemas.include.as_deref())
        .bind(&options.schemas.exclude)
        .fetch_all(&mut *tx)
        .await?;
    let oids: Vec<Oid> = schemas.iter().map(|s| s.oid).collect();
    let heavy = HeavyQueries {
        oids: oids.clone(),
        indexes: match database.version_num >= 150_000 {
            true => queries::INDEXES,
            false => queries::INDEXES_BEFORE_15,
        },
        constraints: match database.version_num >= 170_000 {
            true => queries::CONSTRAINTS_SERVER_PRINTED,
            false => queries::CONSTRAINTS,
        },
        started,
    };
    let mut heavy = match helper {
        Some(helper) => {
            let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
                .fetch_one(&mut *tx)
                .await?;
            // The id comes from the server itself (hex digits and dashes) and cannot be bound.
            if !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                return Err(ReadError::SnapshotId(id));
            }
            let timeout = timeout.clone();
            let (rows, rows_read) = oneshot::channel();
            let task = AbortOnDropHandle::new(tokio::spawn(async move {
                heavy.read_on_helper(helper, &id, &timeout, rows).await
            }));
            Heavy::OnHelper(HelperRead {
                task,
                rows: rows_read,
            })
        }
        None => Heavy::Here(heavy),
    };
    let oids = &oids;

    macro_rules! all {
        ($conn:expr, $sql:expr) => {
            sqlx::query_as($sql).bind(oids).fetch_all(&mut *$conn).await
        };
    }
    // The columns cost about as much as the relations, the indexes, the constraints and the
    // database's size together: those run on the helper when there is one.
    let prelude = started.elapsed();
    let printing: queries::PrintingRow = sqlx::query_as(queries::PRINTING)
        .bind(oids)
        .fetch_one(&mut *tx)
        .await?;
    let printer = Printer {
        keywords: printing.keywords.into_iter().collect::<HashSet<_>>(),
        quote_all: printing.quote_all,
        default_opclasses: printing
            .opclasses
            .into_iter()
            .zip(printing.opclass_types)
            .collect(),
    };
    let columns = read_columns(tx, oids, printing.column_slots).await?;
    let column_types = column_types(tx, &columns).await?;
    let columns_done = started.elapsed();
    let HeavyRows {
        relations,
        indexes,
        mut constraints,
    } = heavy.rows(tx).await?;
    let rows_done = started.elapsed();
    let columns_of = columns_by_table(&columns);
    let index_definitions =
        index_definitions(tx, &printer, &schemas, &relations, &columns_of, &indexes).await?;
    constraint_definitions(tx, &printer, &columns_of, &indexes, &mut constraints).await?;
    drop(columns_of);
    let keys = Keys {
        constraints,
        indexes,
        index_definitions,
    };
    let keys_done = started.elapsed();

    // The relations, their columns and keys are assembled on a blocking thread while the
    // rest is read.
    let assembling = tokio::task::spawn_blocking(move || {
        let (schemas, positions) = skeleton(schemas, relations, columns, &column_types, keys);
        let snapshot = Snapshot {
            database: None,
            schemas,
        };
        (snapshot, positions)
    });
    let types: Vec<queries::TypeRow> = all!(tx, queries::TYPES)?;
    let sequences: Vec<queries::SequenceRow> = all!(tx, queries::SEQUENCES)?;
    let functions: Vec<queries::FunctionRow> = all!(tx, queries::FUNCTIONS)?;
    let triggers: Vec<queries::TriggerRow> = all!(tx, queries::TRIGGERS)?;
    let dependencies: Vec<queries::DependencyRow> = all!(tx, queries::DEPENDENCIES)?;
    let main_done = started.elapsed();
    let tail = heavy.tail(tx).await?;
    sqlx::raw_sql("COMMIT").execute(&mut *tx).await?;
    let read = started.elapsed();
    let (mut snapshot, positions) = join_task(assembling).await?;
    assemble_rest(
        &mut snapshot,
        &positions,
        Rest {
            database,
            size_bytes: tail.size,
            types,
            sequences,
            functions,
            triggers,
            dependencies,
        },
    );
    tracing::debug!(
        prelude_ms = prelude.as_millis() as u64,
        columns_ms = columns_done.as_millis() as u64,
        relations_ms = rows_done.as_millis() as u64,
        keys_ms = keys_done.as_millis() as u64,
        main_ms = main_done.as_millis() as u64,
        helper_ms = tail.done.as_millis() as u64,
        read_ms = read.as_millis() as u64,
        assembled_ms = started.elapsed().as_millis() as u64,
        "catalog read"
    );
    Ok(Read {
        snapshot,
        probe: tail.probe,
    })
}

/// Session settings of an introspection transaction: its statement timeout (`$1`), no
/// parallel workers (whose empty catalog caches the per-row printing functions would fill
/// again), memory enough to sort a big catalog's columns without spilling to disk, and no JIT
/// compilation: the planner's estimates for a big catalog pass `jit_above_cost`, and compiling
/// these queries costs more than running them.
const READ_SETTINGS: &str = "SELECT set_config('statement_timeout', $1, true), \
                                  set_config('max_parallel_workers_per_gather', '0', true), \
                                  set_config('work_mem', '64MB', true), \
                                  set_config('jit', 'off', true)";

/// The queries that run on the helper connection when there is one.
struct HeavyQueries {
    oids: Vec<Oid>,
    indexes: &'static str,
    constraints: &'static str,
    started: std::time::Instant,
}

/// What [`HeavyQueries`] read but the size.
struct HeavyRows {
    relations: Vec<queries::RelationRow>,
    indexes: Vec<queries::IndexRow>,
    constraints: Vec<queries::ConstraintRow>,
}

/// What the heavy queries read last: the database's size and the catalog's probe, and when
/// they were done (since the read started).
struct Tail {
    size: Option<i64>,
    probe: String,
    done: Duration,
}

impl HeavyQueries {
    async fn rows(&self, conn: &mut PgConnection) -> Result<HeavyRows, sqlx::Error> {
        let relations = sqlx::query_as(queries::RELATIONS)
            .bind(&self.oids)
            .fetch_all(&mut *conn)
            .await?;
        let indexes = sqlx::query_as(self.indexes)
            .bind(&self.oids)
            .fetch_all(&mut *conn)
            .await?;
        let constraints = sqlx::query_as(self.constraints)
            .bind(&self.oids)
            .fetch_all(&mut *conn)
            .await?;
        Ok(HeavyRows {
            relations,
            indexes,
            constraints,
        })
    }

    async fn tail(&self, conn: &mut PgConnection) -> Result<Tail, sqlx::Error> {
        let size = sqlx::query_scalar(queries::DATABASE_SIZE)
            .fetch_one(&mut *conn)
            .await?;
        let probe = probe(conn).await?;
        Ok(Tail {
            size,
            probe,
            done: self.started.elapsed(),
        })
    }

    /// [`Self::rows`] (sent on to `rows` as soon as read), then the [`Tail`], on `helper` in
    /// the snapshot `snapshot_id`; closes `helper` at the end.
    async fn read_on_helper(
        self,
        mut helper: PgConnection,
        snapshot_id: &str,
        timeout: &str,
        rows: oneshot::Sender<HeavyRows>,
    ) -> Result<Tail, sqlx::Error> {
        let read = async {
            let mut side = helper.begin().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *side)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SET TRANSACTION SNAPSHOT '{snapshot_id}'"
            )))
            .execute(&mut *side)
            .await?;
            sqlx::query(READ_SETTINGS)
                .bind(timeout)
                .execute(&mut *side)
                .await?;
            // Nobody takes them any more when the main connection's read failed.
            let _ = rows.send(self.rows(&mut side).await?);
            let tail = self.tail(&mut side).await?;
            side.commit().await?;
            Ok(tail)
        };
        let read = read.await;
        let _ = helper.close().await;
        read
    }
}

/// Where [`HeavyQueries`] run.
enum Heavy {
    OnHelper(HelperRead),
    /// On the main connection.
    Here(HeavyQueries),
}

/// [`HeavyQueries`] running on the helper, which hands its rows over as soon as it has them.
struct HelperRead {
    task: AbortOnDropHandle<Result<Tail, sqlx::Error>>,
    rows: oneshot::Receiver<HeavyRows>,
}

impl Heavy {
    async fn rows(&mut self, tx: &mut PgConnection) -> Result<HeavyRows, ReadError> {
        match self {
            Heavy::OnHelper(h) => match (&mut h.rows).await {
                Ok(rows) => Ok(rows),
                // The helper failed before it read them: its end says why.
                Err(_) => Err(match join_task(&mut h.task).await? {
                    Ok(_) => ReadError::HelperEnded,
                    Err(e) => e.into(),
                }),
            },
            Heavy::Here(queries) => Ok(queries.rows(tx).await?),
        }
    }

    async fn tail(self, tx: &mut PgConnection) -> Result<Tail, ReadError> {
        match self {
            Heavy::OnHelper(h) => Ok(join_task(h.task).await??),
            Heavy::Here(queries) => Ok(queries.tail(tx).await?),
        }
    }
}

/// The columns of the relations of the schemas `oids`, grouped by relation in attnum order,
/// collected into one vector of `slots` rows (more when the count was short).
///
/// The server sends them in the physical order of `pg_attribute`, which is mostly that order
/// already (a table's attributes are written together when it is created). So a sorted list
/// is left as it is and any other is sorted stably, which takes such runs as they come.
async fn read_columns(
    tx: &mut PgConnection,
    oids: &[Oid],
    slots: i64,
) -> Result<Vec<queries::ColumnRow>, sqlx::Error> {
    let mut columns = Vec::with_capacity(usize::try_from(slots).unwrap_or(0));
    let mut rows = sqlx::query_as(queries::COLUMNS).bind(oids).fetch(&mut *tx);
    while let Some(row) = rows.try_next().await? {
        columns.push(row);
    }
    drop(rows);
    let key = |c: &queries::ColumnRow| (c.table_oid.0, c.ordinal);
    if !columns.is_sorted_by_key(key) {
        columns.sort_by_key(key);
    }
    Ok(columns)
}

async fn column_types(
    tx: &mut PgConnection,
    columns: &[queries::ColumnRow],
) -> Result<ColumnTypes, sqlx::Error> {
    let pairs: HashSet<(Oid, i32)> = columns
        .iter()
        .map(|c| (c.type_oid, c.type_modifier))
        .collect();
    let (oids, modifiers): (Vec<Oid>, Vec<i32>) = pairs.into_iter().unzip();
    let types: Vec<queries::ColumnTypeRow> = sqlx::query_as(queries::COLUMN_TYPES)
        .bind(&oids)
        .bind(&modifiers)
        .fetch_all(&mut *tx)
        .await?;
    let collations: HashSet<Oid> = columns
        .iter()
        .map(|c| c.collation_oid)
        .filter(|&oid| oid != Oid(0))
        .collect();
    let collations: Vec<Oid> = collations.into_iter().collect();
    let collations: Vec<(Oid, String)> = sqlx::query_as(queries::COLLATIONS)
        .bind(&collations)
        .fetch_all(&mut *tx)
        .await?;
    Ok(ColumnTypes {
        types: types
            .into_iter()
            .map(|t| ((t.oid, t.modifier), t))
            .collect(),
        collations: collations.into_iter().collect(),
    })
}

/// Each table's columns, by table oid (`columns` come grouped by table, in attnum order).
fn columns_by_table(columns: &[queries::ColumnRow]) -> HashMap<Oid, &[queries::ColumnRow]> {
    columns
        .chunk_by(|a, b| a.table_oid == b.table_oid)
        .map(|group| (group[0].table_oid, group))
        .collect()
}

/// Every index's definition, in `indexes` order: printed here for plain indexes, asked of the
/// server (in the introspection's snapshot) for the others.
async fn index_definitions(
    tx: &mut PgConnection,
    printer: &Printer,
    schemas: &[queries::SchemaRow],
    relations: &[queries::RelationRow],
    columns_of: &HashMap<Oid, &[queries::ColumnRow]>,
    indexes: &[queries::IndexRow],
) -> Result<Vec<String>, sqlx::Error> {
    let schema_names: HashMap<Oid, &str> =
        schemas.iter().map(|s| (s.oid, s.name.as_str())).collect();
    let tables: HashMap<Oid, (&str, &str)> = relations
        .iter()
        .filter_map(|r| Some((r.oid, (*schema_names.get(&r.schema_oid)?, r.name.as_str()))))
        .collect();
    let mut definitions: Vec<Option<String>> = indexes
        .iter()
        .map(|index| {
            let &(schema, table) = tables.get(&index.table_oid)?;
            let columns = columns_of
                .get(&index.table_oid)
                .copied()
                .unwrap_or_default();
            printer.index_definition(index, schema, table, columns)
        })
        .collect();
    let missing: Vec<Oid> = indexes
        .iter()
        .zip(&definitions)
        .filter(|(_, d)| d.is_none())
        .map(|(index, _)| index.oid)
        .collect();
    let printed = printed_by_server(tx, queries::INDEX_DEFINITIONS, &missing).await?;
    for (definition, index) in definitions.iter_mut().zip(indexes) {
        if definition.is_none() {
            *definition = printed.get(&index.oid).cloned();
        }
    }
    Ok(definitions
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// Fills in the definitions of the constraints the server left to the worker to print (see
/// [`queries::CONSTRAINTS`]); the server prints those the worker cannot, in the
/// introspection's snapshot.
async fn constraint_definitions(
    tx: &mut PgConnection,
    printer: &Printer,
    columns_of: &HashMap<Oid, &[queries::ColumnRow]>,
    indexes: &[queries::IndexRow],
    constraints: &mut [queries::ConstraintRow],
) -> Result<(), sqlx::Error> {
    let index_of: HashMap<Oid, &queries::IndexRow> = indexes.iter().map(|i| (i.oid, i)).collect();
    let mut missing = Vec::new();
    for c in constraints.iter_mut().filter(|c| c.definition.is_none()) {
        let columns = columns_of.get(&c.table_oid).copied().unwrap_or_default();
        let index = index_of.get(&c.index_oid).copied();
        let referenced = columns_of.get(&c.ref_oid).copied();
        c.definition = printer.constraint_definition(c, columns, index, referenced);
        if c.definition.is_none() {
            missing.push(c.oid);
        }
    }
    let printed = printed_by_server(tx, queries::CONSTRAINT_DEFINITIONS, &missing).await?;
    for c in constraints.iter_mut().filter(|c| c.definition.is_none()) {
        c.definition = printed.get(&c.oid).cloned();
    }
    Ok(())
}

/// The definitions the server prints (`query`, given the oids as `$1`) of the objects `oids`,
/// by oid, in the introspection's snapshot; no query when there are none.
async fn printed_by_server(
    tx: &mut PgConnection,
    query: &'static str,
    oids: &[Oid],
) -> Result<HashMap<Oid, String>, sqlx::Error> {
    if oids.is_empty() {
        return Ok(HashMap::new());
    }
    let printed: Vec<(Oid, String)> = sqlx::query_as(query).bind(oids).fetch_all(tx).await?;
    Ok(printed.into_iter().collect())
}

/// The probe of the source's current catalog state (see `queries::PROBE`).
pub async fn probe(conn: &mut PgConnection) -> Result<String, sqlx::Error> {
    sqlx::query_scalar(queries::PROBE).fetch_one(conn).await
}
