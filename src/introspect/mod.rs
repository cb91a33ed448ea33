//! Reading a source database's catalog straight from `pg_catalog`.
//!
//! Like `pg_dump` (since PostgreSQL 15), introspection runs bulk queries, one per object kind,
//! inside one read-only REPEATABLE READ transaction so all of them see the same snapshot.
//! What comes before the relations (schemas, types, functions, the relations' list and links)
//! is read in one query per kind; the relations' parts (relations, columns, keys, triggers)
//! in one query per kind and batch of relations (the oids travel as one array), handed to the
//! writer batch by batch.

mod access;
mod assemble;
mod definitions;
mod printing;
mod queries;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgConnection;
use sqlx::postgres::types::Oid;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use assemble::{ColumnTypes, Keys};
use printing::Printer;

use crate::join::{Cancelled, join_task};

use crate::catalog::{
    Access, BATCH_RELATIONS, DatabaseInfo, DatabaseObject, Head, Piece, Relation, RelationUse,
    SchemaFilter,
};

/// Options for one introspection run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bounds every catalog query on the source.
    pub statement_timeout: Duration,
    /// Which schemas to read.
    pub schemas: SchemaFilter,
    /// How many relations a batch holds at most.
    pub batch_relations: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            statement_timeout: Duration::from_secs(60),
            schemas: SchemaFilter::default(),
            batch_relations: BATCH_RELATIONS,
        }
    }
}

/// Why a read of the catalog failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Query(#[from] sqlx::Error),
    #[error("the source exported an unexpected snapshot id {0:?}")]
    SnapshotId(String),
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    #[error("reading {what} took longer than {after:?}")]
    TimedOut { what: &'static str, after: Duration },
    /// The writer stopped taking pieces: it failed, and says why.
    #[error("the writer stopped taking the catalog")]
    WriterGone,
}

/// What a read learns last.
#[derive(Debug)]
pub struct Read {
    pub database: DatabaseInfo,
    /// The [`probe`] of the catalog state the read saw, taken in the same transaction: a
    /// change committed on the source after the read moves the probe a later sync compares
    /// with this one.
    pub probe: String,
    /// The roles the snapshot names, default privileges, and what could not be read.
    pub access: Access,
    /// Publications, event triggers, foreign data wrappers and servers.
    pub objects: Vec<DatabaseObject>,
}

/// Reads the whole catalog of the database `conn` is connected to into `out`, as a head and
/// the relations in batches of `options.batch_relations`, and returns what comes last (the end
/// piece is the caller's to send). `helper`, a second connection to the same database, runs
/// half of the queries at the same time in the same snapshot (exported from `conn`'s
/// transaction, as `pg_dump -j` does). Sending waits while the writer is busy: the read goes
/// at the writer's pace and holds a batch or two at a time.
///
/// The number of statements grows by one batch's worth per batch of relations, not per object.
pub async fn introspect(
    conn: &mut PgConnection,
    helper: &mut PgConnection,
    options: &Options,
    out: &mpsc::Sender<Piece>,
) -> Result<Read, ReadError> {
    let step = |what| Step {
        what,
        limit: options.statement_timeout * 2,
    };
    let started = std::time::Instant::now();
    let Start {
        database,
        head,
        oids,
        batch,
        default_privileges,
        objects,
    } = step("its schemas")
        .bounded(start(conn, helper, options))
        .await?;
    send(out, Piece::Head(head)).await?;
    let head_ms = started.elapsed().as_millis() as u64;

    let mut batch = batch;
    // A batch is assembled on a blocking thread while the next one is read.
    let mut assembling = None;
    for oids in oids.chunks(options.batch_relations.max(1)) {
        let rows = step("its relations")
            .bounded(batch.read(conn, helper, oids))
            .await?;
        if let Some(done) = assembling.replace(batch.assemble(rows)) {
            send(out, Piece::Relations(join_task(done).await?)).await?;
        }
    }
    if let Some(done) = assembling {
        send(out, Piece::Relations(join_task(done).await?)).await?;
    }
    let relations_ms = started.elapsed().as_millis() as u64;

    // The size on the helper while the main connection takes the roles and the probe (of
    // those roles).
    let (size, probe, roles) = step("its size")
        .bounded(async {
            let size = async {
                let size: Option<i64> = sqlx::query_scalar(queries::DATABASE_SIZE)
                    .fetch_one(&mut *helper)
                    .await?;
                sqlx::raw_sql("COMMIT").execute(&mut *helper).await?;
                Ok::<_, sqlx::Error>(size)
            };
            let rest = async {
                let roles = access::roles(conn, batch.readable, &batch.roles).await?;
                let names: Vec<String> = roles.iter().map(|r| r.name.clone()).collect();
                let probe = probe(conn, &names).await?;
                sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
                Ok::<_, sqlx::Error>((probe, roles))
            };
            let (size, (probe, roles)) = tokio::try_join!(size, rest)?;
            Ok::<_, ReadError>((size, probe, roles))
        })
        .await?;
    tracing::debug!(
        head_ms,
        relations_ms,
        read_ms = started.elapsed().as_millis() as u64,
        relations = oids.len(),
        "catalog read"
    );
    Ok(Read {
        database: DatabaseInfo {
            name: database.name,
            server_version: database.server_version,
            encoding: database.encoding,
            size_bytes: size,
            access_warnings: batch.readable.warnings(),
        },
        probe,
        access: Access {
            roles,
            default_privileges,
        },
        objects,
    })
}

/// What the start of a read finds: the head to send, the relations to read in batches, and
/// what reading them takes.
struct Start {
    database: queries::DatabaseRow,
    head: Head,
    oids: Vec<Oid>,
    batch: Batch,
    default_privileges: Vec<crate::catalog::access::DefaultPrivilege>,
    objects: Vec<DatabaseObject>,
}

/// Begins the read and reads everything before the relations: the schemas with their types,
/// sequences and functions on `helper` while `conn` reads the relations' list and links.
async fn start(
    conn: &mut PgConnection,
    helper: &mut PgConnection,
    options: &Options,
) -> Result<Start, ReadError> {
    let timeout = format!("{}ms", options.statement_timeout.as_millis().max(1));
    begin(conn, helper, &timeout).await?;
    let database: queries::DatabaseRow = sqlx::query_as(queries::DATABASE)
        .fetch_one(&mut *conn)
        .await?;
    let schemas: Vec<queries::SchemaRow> = sqlx::query_as(queries::SCHEMAS)
        .bind(options.schemas.include.as_deref())
        .bind(&options.schemas.exclude)
        .fetch_all(&mut *conn)
        .await?;
    let schema_oids: Vec<Oid> = schemas.iter().map(|s| s.oid).collect();
    let schema_oids = &schema_oids;
    let readable = access::Readable::of(&database);
    // Each query of what comes before the relations takes the schemas' oids.
    macro_rules! all {
        ($conn:expr, $sql:expr) => {
            sqlx::query_as($sql)
                .bind(schema_oids)
                .fetch_all(&mut *$conn)
        };
    }
    let main = async {
        let printing: queries::PrintingRow = sqlx::query_as(queries::PRINTING)
            .fetch_one(&mut *conn)
            .await?;
        let oids: Vec<Oid> = sqlx::query_scalar(queries::RELATION_OIDS)
            .bind(schema_oids)
            .fetch_all(&mut *conn)
            .await?;
        let partitions: Vec<queries::PartitionRow> = all!(conn, queries::PARTITIONS).await?;
        let dependencies: Vec<queries::DependencyRow> = all!(conn, queries::DEPENDENCIES).await?;
        let privileges = access::schema_privileges(conn, readable, schema_oids).await?;
        let defaults = access::default_privileges(conn, readable, schema_oids).await?;
        let objects: Vec<queries::DatabaseObjectRow> = match readable.database_objects {
            false => Vec::new(),
            true => {
                let sql = match database.version_num >= 150_000 {
                    true => queries::DATABASE_OBJECTS,
                    false => queries::DATABASE_OBJECTS_BEFORE_15,
                };
                sqlx::query_as(sql).fetch_all(&mut *conn).await?
            }
        };
        Ok::<_, sqlx::Error>((
            printing,
            oids,
            partitions,
            dependencies,
            (privileges, defaults),
            objects,
        ))
    };
    let side = async {
        let types: Vec<queries::TypeRow> = all!(helper, queries::TYPES).await?;
        let sequences: Vec<queries::SequenceRow> = all!(helper, queries::SEQUENCES).await?;
        let functions = match database.version_num >= 140_000 {
            true => queries::FUNCTIONS,
            false => queries::FUNCTIONS_BEFORE_14,
        };
        let functions: Vec<queries::FunctionRow> = all!(helper, functions).await?;
        let extensions: Vec<queries::ExtensionRow> = all!(helper, queries::EXTENSIONS).await?;
        let others: Vec<queries::SchemaObjectRow> = match readable.schema_objects {
            false => Vec::new(),
            true => all!(helper, queries::SCHEMA_OBJECTS).await?,
        };
        Ok::<_, sqlx::Error>((types, sequences, functions, extensions, others))
    };
    let (
        (printing, oids, partitions, dependencies, (privileges, default_privileges), objects),
        (types, sequences, functions, extensions, others),
    ) = tokio::try_join!(main, side)?;

    let links = assemble::links(partitions, &dependencies);
    let (mut schemas, names) = assemble::schemas(schemas, types, sequences, functions, extensions);
    assemble::add_other_objects(&mut schemas, &names, others);
    access::add_schema_privileges(&mut schemas, &names, privileges);
    let mut roles = access::RoleNames::default();
    roles.add_schemas(&schemas);
    roles.add_default_privileges(&default_privileges);
    let mut depends_on: HashMap<Oid, Vec<RelationUse>> = HashMap::new();
    for d in dependencies {
        depends_on.entry(d.view_oid).or_default().push(RelationUse {
            schema: d.ref_schema,
            name: d.ref_name,
            columns: d.ref_columns,
        });
    }
    let batch = Batch {
        printer: Printer {
            keywords: printing.keywords.into_iter().collect::<HashSet<_>>(),
            quote_all: printing.quote_all,
            default_opclasses: printing
                .opclasses
                .into_iter()
                .zip(printing.opclass_types)
                .collect(),
        },
        names: Arc::new(names),
        depends_on: Arc::new(depends_on),
        types: Arc::default(),
        version_num: database.version_num,
        readable,
        roles,
    };
    Ok(Start {
        head: Head {
            schemas,
            relations: oids.len() as u64,
            links,
        },
        database,
        oids,
        batch,
        default_privileges,
        objects: assemble::database_objects(objects),
    })
}

/// Begins the read's transaction on `conn`, and on `helper` in the same snapshot.
async fn begin(
    conn: &mut PgConnection,
    helper: &mut PgConnection,
    timeout: &str,
) -> Result<(), ReadError> {
    sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *conn)
        .await?;
    // SET LOCAL takes no bind parameters; set_config(.., true) is its bindable form.
    sqlx::query(READ_SETTINGS)
        .bind(timeout)
        .execute(&mut *conn)
        .await?;
    let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut *conn)
        .await?;
    // The id comes from the server itself (hex digits and dashes) and cannot be bound.
    if !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(ReadError::SnapshotId(id));
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT '{id}'"
    )))
    .execute(&mut *helper)
    .await?;
    sqlx::query(READ_SETTINGS)
        .bind(timeout)
        .execute(&mut *helper)
        .await?;
    Ok(())
}

async fn send(out: &mpsc::Sender<Piece>, piece: Piece) -> Result<(), ReadError> {
    out.send(piece).await.map_err(|_| ReadError::WriterGone)
}

/// A step of the read, bounded in time as a whole, network included (the statement timeout
/// bounds each query on the server); the waits for the writer are not part of any step.
struct Step {
    what: &'static str,
    limit: Duration,
}

impl Step {
    async fn bounded<T>(
        self,
        step: impl Future<Output = Result<T, ReadError>>,
    ) -> Result<T, ReadError> {
        tokio::time::timeout(self.limit, step)
            .await
            .map_err(|_| ReadError::TimedOut {
                what: self.what,
                after: self.limit,
            })?
    }
}

/// What reading each batch of relations needs.
struct Batch {
    printer: Printer,
    names: Arc<HashMap<Oid, String>>,
    depends_on: Arc<HashMap<Oid, Vec<RelationUse>>>,
    /// The column types read so far: each is asked for once.
    types: Arc<ColumnTypes>,
    version_num: i32,
    readable: access::Readable,
    /// The roles met so far, whose attributes the end reads.
    roles: access::RoleNames,
}

impl Batch {
    /// The rows of the relations `oids` with their columns, keys and triggers: the columns on
    /// `conn`, the rest on `helper` at the same time; with every index's and constraint's
    /// definition.
    async fn read(
        &mut self,
        conn: &mut PgConnection,
        helper: &mut PgConnection,
        oids: &[Oid],
    ) -> Result<assemble::BatchRows, ReadError> {
        let indexes = match self.version_num >= 150_000 {
            true => queries::INDEXES,
            false => queries::INDEXES_BEFORE_15,
        };
        let constraints = match self.version_num >= 170_000 {
            true => queries::CONSTRAINTS_SERVER_PRINTED,
            false => queries::CONSTRAINTS,
        };
        let readable = self.readable;
        let main = async {
            let columns = read_columns(&mut *conn, oids).await?;
            add_column_types(&mut *conn, Arc::make_mut(&mut self.types), &columns).await?;
            Ok::<_, sqlx::Error>(columns)
        };
        let side = async {
            // Each query of a batch takes its relations' oids.
            macro_rules! of {
                ($sql:expr) => {
                    sqlx::query_as($sql).bind(oids).fetch_all(&mut *helper)
                };
            }
            let relations: Vec<queries::RelationRow> = of!(queries::RELATIONS).await?;
            let indexes: Vec<queries::IndexRow> = of!(indexes).await?;
            let constraints: Vec<queries::ConstraintRow> = of!(constraints).await?;
            let triggers: Vec<queries::TriggerRow> = of!(queries::TRIGGERS).await?;
            let access = access::relation_access(&mut *helper, readable, oids).await?;
            Ok::<_, sqlx::Error>((relations, indexes, constraints, triggers, access))
        };
        let (columns, (relations, indexes, mut constraints, triggers, (privileges, policies))) =
            tokio::try_join!(main, side)?;
        self.roles.add_batch(&relations, &privileges, &policies);
        let columns_of = columns_by_table(&columns);
        let index_definitions = definitions::index_definitions(
            conn,
            &self.printer,
            &self.names,
            &relations,
            &columns_of,
            &indexes,
        )
        .await?;
        definitions::constraint_definitions(
            conn,
            &self.printer,
            &columns_of,
            &indexes,
            &mut constraints,
        )
        .await?;
        drop(columns_of);
        let rows = assemble::BatchRows {
            relations,
            columns,
            keys: Keys {
                constraints,
                indexes,
                index_definitions,
            },
            triggers,
            privileges,
            policies,
        };
        Ok(rows)
    }

    /// Assembles the relations of `rows` on a blocking thread.
    fn assemble(&self, rows: assemble::BatchRows) -> JoinHandle<Vec<Relation>> {
        let (names, depends_on, types) = (
            self.names.clone(),
            self.depends_on.clone(),
            self.types.clone(),
        );
        tokio::task::spawn_blocking(move || assemble::relations(&names, rows, &types, &depends_on))
    }
}

/// Session settings of an introspection transaction: its statement timeout (`$1`), no
/// parallel workers (whose empty catalog caches the per-row printing functions would fill
/// again), memory enough to sort a batch without spilling to disk, and no JIT compilation
/// (compiling these queries costs more than running them).
const READ_SETTINGS: &str = "SELECT set_config('statement_timeout', $1, true), \
                                  set_config('max_parallel_workers_per_gather', '0', true), \
                                  set_config('work_mem', '64MB', true), \
                                  set_config('jit', 'off', true)";

/// The columns of the relations `oids`, grouped by relation in attnum order: as the server
/// sends them when it reads them by index (a sorted list is left as it is), sorted otherwise.
async fn read_columns(
    conn: &mut PgConnection,
    oids: &[Oid],
) -> Result<Vec<queries::ColumnRow>, sqlx::Error> {
    let mut columns: Vec<queries::ColumnRow> = sqlx::query_as(queries::COLUMNS)
        .bind(oids)
        .fetch_all(&mut *conn)
        .await?;
    let key = |c: &queries::ColumnRow| (c.table_oid.0, c.ordinal);
    if !columns.is_sorted_by_key(key) {
        columns.sort_by_key(key);
    }
    Ok(columns)
}

/// Adds the types and collations of `columns` that `known` does not hold yet, read in one
/// query each (none when all are known).
async fn add_column_types(
    conn: &mut PgConnection,
    known: &mut ColumnTypes,
    columns: &[queries::ColumnRow],
) -> Result<(), sqlx::Error> {
    let pairs: HashSet<(Oid, i32)> = columns
        .iter()
        .map(|c| (c.type_oid, c.type_modifier))
        .filter(|pair| !known.types.contains_key(pair))
        .collect();
    if !pairs.is_empty() {
        let (oids, modifiers): (Vec<Oid>, Vec<i32>) = pairs.into_iter().unzip();
        let types: Vec<queries::ColumnTypeRow> = sqlx::query_as(queries::COLUMN_TYPES)
            .bind(&oids)
            .bind(&modifiers)
            .fetch_all(&mut *conn)
            .await?;
        known
            .types
            .extend(types.into_iter().map(|t| ((t.oid, t.modifier), t)));
    }
    let collations: HashSet<Oid> = columns
        .iter()
        .map(|c| c.collation_oid)
        .filter(|oid| *oid != Oid(0) && !known.collations.contains_key(oid))
        .collect();
    if !collations.is_empty() {
        let collations: Vec<Oid> = collations.into_iter().collect();
        let named: Vec<(Oid, String)> = sqlx::query_as(queries::COLLATIONS)
            .bind(&collations)
            .fetch_all(&mut *conn)
            .await?;
        known.collations.extend(named);
    }
    Ok(())
}

/// Each table's columns, by table oid (`columns` come grouped by table, in attnum order).
fn columns_by_table(columns: &[queries::ColumnRow]) -> HashMap<Oid, &[queries::ColumnRow]> {
    columns
        .chunk_by(|a, b| a.table_oid == b.table_oid)
        .map(|group| (group[0].table_oid, group))
        .collect()
}

/// The probe of the source's current catalog state, with the roles `roles` (see
/// `queries::PROBE`).
pub async fn probe(conn: &mut PgConnection, roles: &[String]) -> Result<String, sqlx::Error> {
    sqlx::query_scalar(queries::PROBE)
        .bind(roles)
        .fetch_one(conn)
        .await
}
