//! Change history: what a sync changed against the catalog's previous snapshot.
//!
//! A write moves the stored rows of the units it deletes (changed or gone) into temporary
//! tables (dropped at commit) as it writes the new rows, then compares the two for the units
//! it touched, in the store, with one statement per object kind: the cost follows
//! the size of the change, not of the catalog, and nothing travels to the worker and back.
//! The same statements compare two catalogs' snapshots for a diff ([`compare_catalogs`]), so
//! the history and the diff say the same things the same way ([`Change`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{AssertSqlSafe, PgExecutor};
use uuid::Uuid;

use super::Tx;
use super::snapshot::Names;
use crate::catalog::classify::{Classification, classify};
use crate::ids::{CatalogId, SyncId};
use kinds::{COMPARED, Compared};

mod database;
mod kinds;

pub use database::record_database_objects;

/// Whether a write sets the rows of `table` aside (rather than deleting them) when their unit
/// changes.
pub fn is_compared(table: &str) -> bool {
    COMPARED.iter().any(|c| c.table == table)
}

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
    sqlx::query(
        "CREATE TEMP TABLE previous_catalog_dependencies (LIKE catalog_dependencies) ON COMMIT DROP",
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves the stored rows of the compared tables of the schemas `schemas` aside, into the
/// temporary tables [`prepare`] made.
pub async fn set_aside_schemas(
    tx: &mut Tx<'_>,
    catalog_id: CatalogId,
    schemas: &[String],
) -> sqlx::Result<()> {
    for c in COMPARED.iter().filter(|c| c.of_schemas) {
        let table = c.table;
        sqlx::query(AssertSqlSafe(format!(
            "WITH gone AS (
                 DELETE FROM {table} WHERE catalog_id = $1 AND schema_name = ANY($2) RETURNING *
             )
             INSERT INTO previous_{table} SELECT * FROM gone"
        )))
        .bind(catalog_id)
        .bind(schemas)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Moves the stored rows of the compared tables of the relations `deleted` aside, into the
/// temporary tables [`prepare`] made, and copies their view lineage there (for the blast
/// radius of changes: `store::blast_radius`).
pub async fn set_aside(
    tx: &mut Tx<'_>,
    catalog_id: CatalogId,
    deleted: &Names,
) -> sqlx::Result<()> {
    for c in COMPARED.iter().filter(|c| !c.of_schemas) {
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
    sqlx::query(
        "INSERT INTO previous_catalog_dependencies
         SELECT t.* FROM catalog_dependencies t
         JOIN UNNEST($2::text[], $3::text[]) AS d(s, n)
           ON t.schema_name = d.s AND t.relation_name = d.n
         WHERE t.catalog_id = $1",
    )
    .bind(catalog_id)
    .bind(&deleted.schemas)
    .bind(&deleted.names)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Where the two sides of a comparison come from.
#[derive(Clone, Copy)]
enum Sides {
    /// A write: the rows [`set_aside`] kept against the catalog's (`$1`) new rows of the
    /// relations touched (`$4`, `$5`) or, for a schema's objects, the schemas touched (`$6`).
    Write,
    /// Two catalogs' snapshots as stored now: `$1`'s against `$2`'s.
    Catalogs,
}

/// What a row of one catalog holds that another catalog's row of the same definition does
/// not: set to NULL on both sides of a comparison of catalogs, so that equal definitions are
/// equal rows, which compare cheaply and are left out before any JSON is made.
const UNTIED: &str = r#"{"catalog_id": null, "content_hash": null, "row_estimate": null, "total_bytes": null, "written_by": null}"#;

/// The rows of `c`'s table on one side of a comparison, as a row source of the table's row
/// type: the earlier side (`previous`) or the later one. An extension's relations are not
/// compared on either side (their extension's version and members are): a table added to an
/// extension is removed from the schema author's objects.
fn side_rows(c: &Compared, sides: Sides, previous: bool) -> String {
    let (table, relation) = (c.table, c.relation);
    let own = |relations: &str, catalog: &str| match (c.of_schemas, table) {
        (true, _) => String::new(),
        (false, "catalog_relations") => " AND t.extension IS NULL".to_owned(),
        (false, _) => format!(
            " AND NOT EXISTS (SELECT 1 FROM {relations} x
                              WHERE {catalog} x.schema_name = t.schema_name
                                AND x.name = t.{relation} AND x.extension IS NOT NULL)"
        ),
    };
    match (sides, previous) {
        (Sides::Write, true) => format!(
            "(SELECT t.* FROM previous_{table} t WHERE true{})",
            own("previous_catalog_relations", "")
        ),
        (Sides::Write, false) if c.of_schemas => format!(
            "(SELECT t.* FROM {table} t WHERE t.catalog_id = $1 AND t.schema_name = ANY($6))"
        ),
        (Sides::Write, false) => format!(
            "(SELECT t.* FROM {table} t
              JOIN UNNEST($4::text[], $5::text[]) AS d(s, n)
                ON t.schema_name = d.s AND t.{relation} = d.n
              WHERE t.catalog_id = $1{})",
            own("catalog_relations", "x.catalog_id = $1 AND")
        ),
        (Sides::Catalogs, previous) => {
            let catalog = if previous { "$1" } else { "$2" };
            format!(
                "(SELECT u.* FROM {table} t
                  CROSS JOIN LATERAL jsonb_populate_record(t, '{UNTIED}') u
                  WHERE t.catalog_id = {catalog}{})",
                own(
                    "catalog_relations",
                    &format!("x.catalog_id = {catalog} AND")
                )
            )
        }
    }
}

/// The relations whose column lists differ between the two sides (added and removed ones
/// too): only their columns are compared one by one.
fn changed_column_lists(sides: Sides) -> String {
    let lists = &COMPARED[1];
    format!(
        "changed_lists AS (
             SELECT coalesce(o.schema_name, n.schema_name) AS s,
                    coalesce(o.relation_name, n.relation_name) AS r
             FROM {previous} o
             FULL JOIN {current} n
               ON o.schema_name = n.schema_name AND o.relation_name = n.relation_name
             WHERE ROW(o.*) IS DISTINCT FROM ROW(n.*)
         ),",
        previous = side_rows(lists, sides, true),
        current = side_rows(lists, sides, false),
    )
}

/// The rows of `c` that are compared on one side. Columns are unnested from the lists of the
/// relations whose lists changed.
fn compared_rows(c: &Compared, sides: Sides, previous: bool) -> String {
    let rows = side_rows(c, sides, previous);
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

/// The common table expressions (from `WITH` on) that compare the rows of `c` on the two
/// `sides`, ending with `compared`: (action, s, r, name, before, after) of each object that
/// differs, `name` NULL for a relation. `$3` binds the ignored attributes.
fn comparison(c: &Compared, sides: Sides) -> String {
    let Compared { relation, name, .. } = c;
    let kind = match c.kind_column {
        Some(column) => column.to_owned(),
        None => format!("'{}'", c.object),
    };
    let attributes = |side: &str| match c.document {
        Some(column) => format!("(to_jsonb({side}) -> '{column}')"),
        None => format!("to_jsonb({side})"),
    };
    // Altered objects keep only the attributes that differ, on each side.
    let only_changed = |a: &str, b: &str| {
        format!(
            "(SELECT jsonb_object_agg(key, value) FROM jsonb_each({a}) \
              WHERE {b} -> key IS DISTINCT FROM value)"
        )
    };
    // Each side's rows, named by schema, relation and object, as the whole row `t`.
    let own = match c.of_extensions {
        true => "WHERE t.extension IS NULL",
        false => "",
    };
    let keyed = |rows: String| {
        format!(
            "(SELECT {kind} AS k, schema_name AS s, {relation} AS r, {name} AS nm, t \
              FROM {rows} t {own})"
        )
    };
    // What the earlier row lacks of the attributes read later is left out on both sides.
    let unknown = match c.read_later {
        [] => String::new(),
        later => format!(
            " - ARRAY(SELECT a FROM unnest('{{{}}}'::text[]) a
                       WHERE {} -> a = 'null'::jsonb)",
            later.join(","),
            attributes("before")
        ),
    };
    // Whole rows are compared first, which is cheap; only the few that differ are turned into
    // JSON, and compared again without their ignored attributes (a relation whose statistics
    // alone moved is not a change).
    format!(
        "WITH {with}
         differing AS MATERIALIZED (
             SELECT coalesce(o.k, n.k) AS k, coalesce(o.s, n.s) AS s, coalesce(o.r, n.r) AS r,
                    coalesce(o.nm, n.nm) AS nm, o.t AS before, n.t AS after
             FROM {previous} o
             FULL JOIN {current} n ON o.k = n.k AND o.s = n.s AND o.r = n.r AND o.nm = n.nm
             WHERE o.t IS DISTINCT FROM n.t
         ),
         compared AS (
             SELECT k, CASE WHEN o_j IS NULL THEN 'added' WHEN n_j IS NULL THEN 'removed'
                            ELSE 'altered' END AS action,
                    s, r, nullif(nm, '') AS name,
                    CASE WHEN n_j IS NULL THEN o_j WHEN o_j IS NOT NULL THEN {before} END AS before,
                    CASE WHEN o_j IS NULL THEN n_j WHEN n_j IS NOT NULL THEN {after} END AS after
             FROM (SELECT k, s, r, nm, {before_attributes} - $3::text[] {unknown} AS o_j,
                          {after_attributes} - $3::text[] {unknown} AS n_j
                   FROM differing) d
             WHERE o_j IS DISTINCT FROM n_j
         )",
        with = match c.object {
            "column" => changed_column_lists(sides),
            _ => String::new(),
        },
        previous = keyed(compared_rows(c, sides, true)),
        current = keyed(compared_rows(c, sides, false)),
        before = only_changed("o_j", "n_j"),
        after = only_changed("n_j", "o_j"),
        before_attributes = attributes("before"),
        after_attributes = attributes("after"),
    )
}

/// The kinds a snapshot written before access metadata was read lacks.
const ACCESS_KINDS: [&str; 2] = ["privilege", "policy"];

/// The kinds compared only against a snapshot read with the other object kinds: those kinds,
/// and extensions, whose members were read from then on.
const OTHER_KINDS: [&str; 2] = ["schema_object", "extension"];

/// Which kinds of object the previous snapshot was read with. Against a snapshot written
/// before a kind was read, every such object would show as added: those kinds are not
/// compared.
#[derive(Debug, Clone, Copy)]
pub struct Previous {
    /// Privileges and policies.
    pub access: bool,
    /// Rules, collations, extended statistics, text search configurations, and the database's
    /// publications, event triggers, foreign data wrappers and servers.
    pub other_objects: bool,
}

impl Previous {
    fn compares(self, c: &Compared) -> bool {
        (self.access || !ACCESS_KINDS.contains(&c.object))
            && (self.other_objects || !OTHER_KINDS.contains(&c.object))
    }
}

/// Records what the new rows of the relations `touched` and of the schemas `schemas` changed
/// against the rows [`set_aside`] and [`set_aside_schemas`] kept, as changes of `sync_id`;
/// only the kinds `previous` was read with. Returns how many.
pub async fn record(
    tx: &mut Tx<'_>,
    catalog_id: CatalogId,
    sync_id: SyncId,
    touched: &Names,
    schemas: &[String],
    previous: Previous,
) -> sqlx::Result<u64> {
    let mut recorded = 0;
    let compared = COMPARED.iter().filter(|c| previous.compares(c));
    for c in compared {
        let nothing_touched = match c.of_schemas {
            true => schemas.is_empty(),
            false => touched.is_empty(),
        };
        if nothing_touched {
            continue;
        }
        let started = std::time::Instant::now();
        let object = c.object;
        let sql = format!(
            "{comparison}
             INSERT INTO catalog_changes
                 (catalog_id, sync_id, object, action, schema_name, relation_name, name, before, after)
             SELECT $1, $2, k, action, s, r, name, before, after
             FROM compared
             ORDER BY k, s, r, name",
            comparison = comparison(c, Sides::Write),
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(catalog_id)
            .bind(sync_id)
            .bind(c.ignored)
            .bind(&touched.schemas)
            .bind(&touched.names)
            .bind(schemas)
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

/// A row a comparison yields: object, action, schema, relation, name, before, after.
type ComparedRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<Value>,
    Option<Value>,
);

/// What differs between the snapshots of two catalogs as stored now, relations matched by
/// schema and name and their objects by name: the changes that would turn `from` into `to`,
/// compared exactly as a write compares a catalog's old rows with its new ones. In the order
/// the history records them: by kind, then schema, relation and name.
///
/// `tx` must be fresh: it reads both snapshots in one snapshot of the store.
pub async fn compare_catalogs(
    tx: &mut Tx<'_>,
    from: CatalogId,
    to: CatalogId,
) -> sqlx::Result<Vec<Change>> {
    sqlx::raw_sql(
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL jit = off",
    )
    .execute(&mut **tx)
    .await?;
    let mut changes = Vec::new();
    for c in &COMPARED {
        let sql = format!(
            "{comparison}
             SELECT k, action, s, r, name, before, after FROM compared ORDER BY k, s, r, name",
            comparison = comparison(c, Sides::Catalogs),
        );
        let rows: Vec<ComparedRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(from)
            .bind(to)
            .bind(c.ignored)
            .fetch_all(&mut **tx)
            .await?;
        changes.extend(rows.into_iter().map(
            |(object, action, schema, relation, name, before, after)| {
                Change::new(object, action, schema, relation, name, before, after)
            },
        ));
    }
    changes.extend(database::compare(tx, from, to).await?);
    Ok(changes)
}

/// One change to a catalog: what the history records, and what a diff answers.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Change {
    /// `relation`, `column`, `constraint`, `index`, `privilege`, `policy`, `type`, `sequence`,
    /// `function`, `rule`, `collation`, `statistics`, `text_search_configuration`, or a
    /// database-wide `publication`, `event_trigger`, `foreign_data_wrapper`, `foreign_server`
    /// (whose schema is '' and relation its name).
    pub object: String,
    /// `added`, `removed` or `altered`.
    pub action: String,
    pub schema: String,
    pub relation: String,
    /// The column, constraint, index or policy, or the privilege as `PRIVILEGE [(column)] to
    /// grantee by grantor`; null for a relation.
    pub name: Option<String>,
    /// Removed: what the object was. Altered: the attributes that changed, as they were.
    pub before: Option<Value>,
    /// Added: the object. Altered: the attributes that changed, as they are.
    pub after: Option<Value>,
    /// Whether the change can break the catalog's clients (see `catalog::classify`).
    pub classification: Classification,
}

impl Change {
    /// A change, classified.
    pub fn new(
        object: String,
        action: String,
        schema: String,
        relation: String,
        name: Option<String>,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Self {
        let classification = classify(&object, &action, before.as_ref(), after.as_ref());
        Self {
            object,
            action,
            schema,
            relation,
            name,
            before,
            after,
            classification,
        }
    }

    /// Where a change sorts in a list: by kind (as the history records them), then schema,
    /// relation and name.
    pub fn sort_key(&self) -> (usize, &str, &str, Option<&str>) {
        let kind = COMPARED
            .iter()
            .position(|c| c.object == self.object)
            .unwrap_or(COMPARED.len());
        (kind, &self.schema, &self.relation, self.name.as_deref())
    }
}

/// One recorded change, as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChangeRow {
    pub id: i64,
    pub sync_id: Uuid,
    pub changed_at: DateTime<Utc>,
    #[serde(flatten)]
    pub change: Change,
}

/// A [`ChangeRow`] from a row of a `query!` that selects the history's columns.
macro_rules! change_row {
    ($r:expr) => {{
        let r = $r;
        ChangeRow {
            id: r.id,
            sync_id: r.sync_id,
            changed_at: r.changed_at,
            change: Change::new(
                r.object, r.action, r.schema, r.relation, r.name, r.before, r.after,
            ),
        }
    }};
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
    let rows = sqlx::query!(
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
    .await?;
    Ok(rows.into_iter().map(|r| change_row!(r)).collect())
}

/// The changes one sync recorded, in the order it recorded them, after the cursor `after_id`.
pub async fn list_for_sync(
    db: impl PgExecutor<'_>,
    sync_id: SyncId,
    after_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<ChangeRow>> {
    let rows = sqlx::query!(
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
    .await?;
    Ok(rows.into_iter().map(|r| change_row!(r)).collect())
}

/// How many changes one sync recorded.
pub async fn count_for_sync(db: impl PgExecutor<'_>, sync_id: SyncId) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM catalog_changes WHERE sync_id = $1")
        .bind(sync_id)
        .fetch_one(db)
        .await
}

/// The changes the syncs of a catalog after `after` up to and including `upto` recorded, in
/// the order they recorded them. Sync ids are UUID v7, in the order the syncs were queued, and
/// the syncs of one catalog run one at a time, in that order.
pub async fn list_between_syncs(
    db: impl PgExecutor<'_>,
    catalog_id: CatalogId,
    after: SyncId,
    upto: SyncId,
) -> sqlx::Result<Vec<ChangeRow>> {
    let rows = sqlx::query!(
        r#"SELECT id, sync_id, changed_at, object, action, schema_name AS schema,
                  relation_name AS relation, name, before, after
           FROM catalog_changes
           WHERE catalog_id = $1 AND sync_id > $2 AND sync_id <= $3
           ORDER BY id"#,
        catalog_id.uuid(),
        after.uuid(),
        upto.uuid()
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| change_row!(r)).collect())
}
