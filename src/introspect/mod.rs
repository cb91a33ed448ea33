//! Reading a source database's catalog straight from `pg_catalog`.
//!
//! Like `pg_dump` (since PostgreSQL 15), introspection runs a fixed handful of bulk queries, one
//! per object kind, each covering every relation of the included schemas at once (the schema
//! oids travel as one array), inside one read-only REPEATABLE READ transaction so all of them
//! see the same snapshot. The number of queries does not grow with the number of tables.

mod printing;
mod queries;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::TryStreamExt;
use sqlx::postgres::types::Oid;
use sqlx::{Connection, PgConnection};
use tokio::sync::oneshot;
use tokio_util::task::AbortOnDropHandle;

use crate::join::{Cancelled, join_blocking};

use printing::Printer;

use crate::catalog::{
    Column, ColumnRef, Constraint, ConstraintKind, DatabaseInfo, ForeignKeyTarget, Function, Index,
    QualifiedName, RelationKind, Schema, SchemaFilter, Sequence, Snapshot, Table, Trigger,
    TypeAttribute, TypeDef, TypeKind,
};

/// Options for one introspection run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Bounds every catalog query on the source.
    pub statement_timeout: Duration,
    /// Which schemas to read.
    pub schemas: SchemaFilter,
}

/// Everything but the relations, their columns and keys (see [`skeleton`]), before assembly.
struct Rest {
    database: queries::DatabaseRow,
    size_bytes: Option<i64>,
    types: Vec<queries::TypeRow>,
    sequences: Vec<queries::SequenceRow>,
    functions: Vec<queries::FunctionRow>,
    triggers: Vec<queries::TriggerRow>,
    dependencies: Vec<queries::DependencyRow>,
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
    let (mut snapshot, positions) = join_blocking(assembling).await?;
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
/// parallel workers, memory enough to sort 200,000 columns without spilling to disk (with
/// the default 4 MB, the columns query wrote a 35 MB sort file and ran 10% longer), and no JIT
/// compilation: the planner's estimates for a big catalog pass `jit_above_cost`, and on the
/// 10,000-table source compiling the indexes query took longer than running it did (167-182 ms
/// with JIT, 104-124 ms without, in psql).
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

/// The relations' indexes and constraints, with the indexes' definitions (in `indexes` order).
struct Keys {
    constraints: Vec<queries::ConstraintRow>,
    indexes: Vec<queries::IndexRow>,
    index_definitions: Vec<String>,
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

/// How the helper's read ended: its result, or a panic (resumed here) or cancellation.
fn ended(
    joined: Result<Result<Tail, sqlx::Error>, tokio::task::JoinError>,
) -> Result<Tail, ReadError> {
    match joined {
        Ok(read) => Ok(read?),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(ReadError::Cancelled(Cancelled)),
    }
}

impl Heavy {
    async fn rows(&mut self, tx: &mut PgConnection) -> Result<HeavyRows, ReadError> {
        match self {
            Heavy::OnHelper(h) => match (&mut h.rows).await {
                Ok(rows) => Ok(rows),
                // The helper failed before it read them: its end says why.
                Err(_) => Err(match ended((&mut h.task).await) {
                    Ok(_) => ReadError::HelperEnded,
                    Err(e) => e,
                }),
            },
            Heavy::Here(queries) => Ok(queries.rows(tx).await?),
        }
    }

    async fn tail(self, tx: &mut PgConnection) -> Result<Tail, ReadError> {
        match self {
            Heavy::OnHelper(h) => ended(h.task.await),
            Heavy::Here(queries) => Ok(queries.tail(tx).await?),
        }
    }
}

/// The columns of the relations of the schemas `oids`, grouped by relation in attnum order,
/// collected into one vector of `slots` rows (more when the count was short).
///
/// The server sends them in the physical order of `pg_attribute`, which is mostly that order
/// already (a table's attributes are written together when it is created): on the 10,000-table
/// source, two rows out of 200,000 were out of place. So a sorted list is left as it is and any
/// other is sorted stably, which takes such runs as they come; the unstable sort swapped the
/// rows around wholesale whatever their order.
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

/// The types and collations of the columns, each read once.
struct ColumnTypes {
    types: HashMap<(Oid, i32), queries::ColumnTypeRow>,
    collations: HashMap<Oid, String>,
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

fn foreign_key_action(code: Option<String>) -> Option<String> {
    let action = match code?.as_str() {
        "a" => "no action",
        "r" => "restrict",
        "c" => "cascade",
        "n" => "set null",
        "d" => "set default",
        _ => return None,
    };
    Some(action.into())
}

/// Names of the columns `attnums` of the table at `pos` (its columns are in attnum order);
/// unknown numbers (0 for expressions) give empty names.
fn column_names(schemas: &[Schema], (si, ti): (usize, usize), attnums: &[i16]) -> Vec<String> {
    let columns = &schemas[si].tables[ti].columns;
    attnums
        .iter()
        .map(|&n| {
            columns
                .binary_search_by_key(&i32::from(n), |c| c.ordinal.unwrap_or_default())
                .map(|i| columns[i].name.clone())
                .unwrap_or_default()
        })
        .collect()
}

/// Where each schema and relation of a snapshot being assembled is, by oid.
struct Positions {
    schemas: HashMap<Oid, usize>,
    /// (schema index, table index).
    tables: HashMap<Oid, (usize, usize)>,
}

/// The first part of a snapshot: its schemas, with their relations and the relations'
/// columns, constraints and indexes.
fn skeleton(
    schemas: Vec<queries::SchemaRow>,
    relations: Vec<queries::RelationRow>,
    columns: Vec<queries::ColumnRow>,
    column_types: &ColumnTypes,
    keys: Keys,
) -> (Vec<Schema>, Positions) {
    let mut positions = Positions {
        schemas: HashMap::with_capacity(schemas.len()),
        tables: HashMap::with_capacity(relations.len()),
    };
    let mut schemas: Vec<Schema> = schemas
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            positions.schemas.insert(s.oid, i);
            Schema {
                name: s.name,
                owner: s.owner,
                comment: s.comment,
                ..Schema::default()
            }
        })
        .collect();

    for r in relations {
        let Some(&si) = positions.schemas.get(&r.schema_oid) else {
            continue;
        };
        let kind = match r.relkind.as_str() {
            "p" => RelationKind::PartitionedTable,
            "v" => RelationKind::View,
            "m" => RelationKind::MaterializedView,
            "f" => RelationKind::ForeignTable,
            _ => RelationKind::Table,
        };
        let tables = &mut schemas[si].tables;
        positions.tables.insert(r.oid, (si, tables.len()));
        tables.push(Table {
            name: r.name,
            kind,
            owner: r.owner,
            comment: r.comment,
            row_estimate: r.row_estimate,
            total_bytes: r.total_bytes,
            unlogged: r.unlogged,
            rls_enabled: r.rls_enabled,
            partition_key: r.partition_key,
            definition: r.definition,
            partition_of: r
                .parent_schema
                .zip(r.parent_name)
                .map(|(schema, name)| QualifiedName { schema, name }),
            partition_bound: r.partition_bound,
            ..Table::default()
        });
    }

    let ColumnTypes { types, collations } = column_types;
    // A big catalog has a handful of distinct column types: found by a binary search in a
    // sorted list, where hashing each of 200,000 columns' (oid, modifier) cost more.
    let mut types: Vec<(Oid, i32, &queries::ColumnTypeRow)> =
        types.iter().map(|(&(oid, m), t)| (oid, m, t)).collect();
    types.sort_unstable_by_key(|&(oid, m, _)| (oid.0, m));
    let type_of = |oid: Oid, modifier: i32| {
        types
            .binary_search_by_key(&(oid.0, modifier), |&(o, m, _)| (o.0, m))
            .ok()
            .map(|i| types[i].2)
    };
    // Each table's columns come together (sorted by table): its table is looked up, and its
    // list allocated, once.
    let groups: Vec<(Oid, usize)> = columns
        .chunk_by(|a, b| a.table_oid == b.table_oid)
        .map(|group| (group[0].table_oid, group.len()))
        .collect();
    let mut columns = columns.into_iter();
    for (oid, count) in groups {
        let group = columns.by_ref().take(count);
        let Some(&(si, ti)) = positions.tables.get(&oid) else {
            group.for_each(drop);
            continue;
        };
        let list = &mut schemas[si].tables[ti].columns;
        list.reserve_exact(count);
        list.extend(group.map(|c| {
            let ty = type_of(c.type_oid, c.type_modifier);
            column(c, ty, collations)
        }));
    }
    add_keys(&mut schemas, &positions, keys);
    (schemas, positions)
}

/// A column of the snapshot from its row and its type's (`None` when the type is unknown).
fn column(
    c: queries::ColumnRow,
    ty: Option<&queries::ColumnTypeRow>,
    collations: &HashMap<Oid, String>,
) -> Column {
    // Every column's type is in the same snapshot; "???" is what format_type prints for an
    // unknown one.
    Column {
        name: c.name,
        data_type: ty.map_or_else(|| "???".to_owned(), |t| t.data_type.clone()),
        // A NOT NULL domain makes its columns NOT NULL.
        nullable: !(c.not_null || ty.is_some_and(|t| t.domain_not_null)),
        ordinal: Some(c.ordinal),
        default: c.default_expr,
        comment: c.comment,
        type_schema: ty.map(|t| t.type_schema.clone()),
        type_name: ty.map(|t| t.type_name.clone()),
        is_array: ty.is_some_and(|t| t.is_array),
        identity: c.identity,
        generated: c.generated,
        // Shown where it differs from the type's own.
        collation: ty
            .filter(|t| t.collation_oid != c.collation_oid)
            .and_then(|_| collations.get(&c.collation_oid).cloned()),
    }
}

/// Adds the relations' constraints and indexes to a [`skeleton`].
fn add_keys(schemas: &mut [Schema], positions: &Positions, keys: Keys) {
    let table = |oid: &Oid| positions.tables.get(oid).copied();
    for c in keys.constraints {
        let Some((si, ti)) = table(&c.table_oid) else {
            continue;
        };
        let kind = match c.contype.as_str() {
            "p" => ConstraintKind::PrimaryKey,
            "u" => ConstraintKind::Unique,
            "f" => ConstraintKind::ForeignKey,
            "x" => ConstraintKind::Exclusion,
            _ => ConstraintKind::Check,
        };
        let columns = column_names(schemas, (si, ti), &c.keys);
        let ref_columns = c
            .ref_columns
            .or_else(|| table(&c.ref_oid).map(|target| column_names(schemas, target, &c.ref_keys)));
        let references = match (c.ref_schema, c.ref_table, ref_columns) {
            (Some(schema), Some(table), Some(columns)) if kind == ConstraintKind::ForeignKey => {
                Some(ForeignKeyTarget {
                    schema,
                    table,
                    columns,
                    on_update: foreign_key_action(c.on_update),
                    on_delete: foreign_key_action(c.on_delete),
                })
            }
            _ => None,
        };
        schemas[si].tables[ti].constraints.push(Constraint {
            name: c.name,
            kind,
            columns,
            definition: c.definition,
            references,
            deferrable: c.deferrable,
            initially_deferred: c.initially_deferred,
        });
    }
    for (i, definition) in keys.indexes.into_iter().zip(keys.index_definitions) {
        let Some((si, ti)) = table(&i.table_oid) else {
            continue;
        };
        let key_count = (i.key_count.max(0) as usize).min(i.keys.len());
        let (key_attnums, include_attnums) = i.keys.split_at(key_count);
        let mut columns = column_names(schemas, (si, ti), key_attnums);
        if let Some(expressions) = i.expressions {
            // Expression keys (attnum 0) take pg_get_indexdef's text, in key order.
            for ((name, attnum), expression) in columns.iter_mut().zip(key_attnums).zip(expressions)
            {
                if *attnum == 0 {
                    *name = expression;
                }
            }
        }
        let include = column_names(schemas, (si, ti), include_attnums);
        schemas[si].tables[ti].indexes.push(Index {
            name: i.name,
            columns,
            include,
            unique: i.is_unique,
            primary: i.is_primary,
            method: Some(i.method),
            predicate: i.predicate,
            definition: Some(definition),
        });
    }
}

/// Adds the rest of the catalog to a [`skeleton`]: triggers, lineage, types, sequences,
/// functions and the database's facts.
fn assemble_rest(snapshot: &mut Snapshot, positions: &Positions, rows: Rest) {
    let schemas = &mut snapshot.schemas;
    let schema_pos = &positions.schemas;
    let table = |oid: &Oid| positions.tables.get(oid).copied();
    for t in rows.triggers {
        let Some((si, ti)) = table(&t.table_oid) else {
            continue;
        };
        schemas[si].tables[ti].triggers.push(Trigger {
            name: t.name,
            timing: t.timing,
            events: t.events,
            for_each: t.for_each,
            function: t.function,
            enabled: t.enabled,
            definition: t.definition,
        });
    }
    for d in rows.dependencies {
        let Some((si, ti)) = table(&d.view_oid) else {
            continue;
        };
        schemas[si].tables[ti].depends_on.push(QualifiedName {
            schema: d.ref_schema,
            name: d.ref_name,
        });
    }
    for t in rows.types {
        let Some(&si) = schema_pos.get(&t.schema_oid) else {
            continue;
        };
        let kind = match t.typtype.as_str() {
            "e" => TypeKind::Enum,
            "d" => TypeKind::Domain,
            _ => TypeKind::Composite,
        };
        schemas[si].types.push(TypeDef {
            name: t.name,
            kind,
            owner: t.owner,
            comment: t.comment,
            labels: t.labels,
            base_type: t.base_type,
            not_null: t.not_null,
            default: t.default_expr,
            checks: t.checks,
            attributes: t
                .attribute_names
                .into_iter()
                .zip(t.attribute_types)
                .map(|(name, data_type)| TypeAttribute { name, data_type })
                .collect(),
        });
    }
    for q in rows.sequences {
        let Some(&si) = schema_pos.get(&q.schema_oid) else {
            continue;
        };
        let owned_by = match (q.owned_by_schema, q.owned_by_table, q.owned_by_column) {
            (Some(schema), Some(table), Some(column)) => Some(ColumnRef {
                schema,
                table,
                column,
            }),
            _ => None,
        };
        schemas[si].sequences.push(Sequence {
            name: q.name,
            data_type: q.data_type,
            start: q.start_value,
            increment: q.increment,
            min: q.min_value,
            max: q.max_value,
            cache: q.cache,
            cycle: q.cycle,
            owned_by,
        });
    }
    for f in rows.functions {
        let Some(&si) = schema_pos.get(&f.schema_oid) else {
            continue;
        };
        schemas[si].functions.push(Function {
            name: f.name,
            arguments: f.arguments,
            result: f.result,
            language: f.language,
            kind: f.kind,
            comment: f.comment,
        });
    }

    let database = rows.database;
    snapshot.database = Some(DatabaseInfo {
        name: database.name,
        server_version: database.server_version,
        encoding: database.encoding,
        size_bytes: rows.size_bytes,
    });
}
