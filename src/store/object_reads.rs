//! Reads of the object kinds beyond relations, types, sequences and functions: a schema's
//! rules, collations, extended statistics and text search configurations (rows of its unit),
//! its extensions, and the database's publications, event triggers and foreign servers (the
//! catalog's `objects` document, and its versions a later write replaced).

use serde::de::DeserializeOwned;
use sqlx::PgExecutor;
use sqlx::types::Json;
use uuid::Uuid;

use crate::catalog::objects::SchemaObjectKind;
use crate::catalog::{DatabaseObject, Extension};
use crate::ids::SyncId;
use crate::store::reads::Members;

/// A schema object's place in its list: schema, relation ('' but for a rule), name.
pub type SchemaObjectCursor = (String, String, String);

/// The objects of `kind` in the catalog stored as `catalog_id`, in (schema, relation, name)
/// order, after `after`, at most `limit`: each with its schema, as `T` (the kind's model).
pub async fn schema_objects<T: DeserializeOwned + Send + Unpin + 'static>(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    kind: SchemaObjectKind,
    schema: Option<&str>,
    members: Members,
    after: Option<SchemaObjectCursor>,
    limit: i64,
) -> sqlx::Result<Vec<(SchemaObjectCursor, T)>> {
    let (after_schema, after_relation, after_name) = match after {
        Some((s, r, n)) => (Some(s), Some(r), Some(n)),
        None => (None, None, None),
    };
    let rows: Vec<(String, String, String, Json<T>)> = sqlx::query_as(
        r#"SELECT schema_name, relation_name, name, body
           FROM catalog_schema_objects
           WHERE catalog_id = $1 AND kind = $2
             AND ($3::text IS NULL OR schema_name = $3)
             AND ($4::text IS NULL
                  OR (schema_name, relation_name, name) > ($4, $5::text, $6::text))
             AND (extension IS NULL OR $8)
           ORDER BY schema_name, relation_name, name
           LIMIT $7"#,
    )
    .bind(catalog_id)
    .bind(kind.as_str())
    .bind(schema)
    .bind(after_schema)
    .bind(after_relation)
    .bind(after_name)
    .bind(limit)
    .bind(members.with_extensions())
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(s, r, n, body)| ((s, r, n), body.0))
        .collect())
}

/// An extension with its schema.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ExtensionItem {
    pub schema: String,
    #[serde(flatten)]
    pub extension: Extension,
}

/// The extensions of the catalog stored as `catalog_id`, in (schema, name) order.
pub async fn extensions(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    schema: Option<&str>,
    after: Option<(String, String)>,
    limit: i64,
) -> sqlx::Result<Vec<ExtensionItem>> {
    let (after_schema, after_name) = after.unzip();
    let rows: Vec<(String, String, Option<String>, Json<Vec<_>>)> = sqlx::query_as(
        r#"SELECT schema_name, name, version, members
           FROM catalog_extensions
           WHERE catalog_id = $1
             AND ($2::text IS NULL OR schema_name = $2)
             AND ($3::text IS NULL OR (schema_name, name) > ($3, $4::text))
           ORDER BY schema_name, name
           LIMIT $5"#,
    )
    .bind(catalog_id)
    .bind(schema)
    .bind(after_schema)
    .bind(after_name)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(schema, name, version, members)| ExtensionItem {
            schema,
            extension: Extension {
                name,
                version,
                members: members.0,
            },
        })
        .collect())
}

/// A whole-database document kept with the catalog rather than in a unit, versioned as the
/// units are: the stored document was written by the sync `{column}_written_by`, and each one
/// a later write replaced is kept in `catalog_retired_rows` as `catalogs.{column}`.
#[derive(Debug, Clone, Copy)]
pub enum CatalogDocument {
    /// Publications, event triggers, foreign data wrappers and servers.
    Objects,
    /// Roles and default privileges.
    Access,
}

impl CatalogDocument {
    /// The `catalogs` column that holds it.
    pub fn column(self) -> &'static str {
        match self {
            CatalogDocument::Objects => "objects",
            CatalogDocument::Access => "access",
        }
    }
}

/// The document of a catalog as its latest snapshot holds it or (`at`) as its sync left it:
/// the stored document if that sync or an earlier one wrote it, else the version kept when a
/// later write replaced it. `None` for an unknown catalog; `Some(None)` for a catalog never
/// synced with the document, or at a sync from before it was read.
pub async fn catalog_document<T: DeserializeOwned + Send + Unpin + 'static>(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    at: Option<SyncId>,
    document: CatalogDocument,
) -> sqlx::Result<Option<Option<T>>> {
    let column = document.column();
    // `column` is one of two constants.
    let found: Option<Option<Json<T>>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT coalesce(
             (SELECT c.{column}
              WHERE $2::uuid IS NULL OR c.{column}_written_by IS NULL
                 OR c.{column}_written_by <= $2),
             (SELECT a.row FROM catalog_retired_rows a
              WHERE a.catalog_id = c.id AND a.snapshot_table = 'catalogs.{column}'
                AND (a.written_by IS NULL OR a.written_by <= $2) AND a.retired_by > $2
              ORDER BY a.retired_by
              LIMIT 1))
         FROM catalogs c
         WHERE c.id = $1"
    )))
    .bind(catalog_id)
    .bind(at.map(|s| s.uuid()))
    .fetch_optional(db)
    .await?;
    Ok(found.map(|document| document.map(|d| d.0)))
}

/// The database-wide objects of a catalog, as its latest snapshot holds them or (`at`) as its
/// sync left them ([`catalog_document`]). `None` for an unknown catalog; none for a catalog
/// synced from a source that has none, never synced, or at a sync from before these objects
/// were read.
pub async fn database_objects(
    db: impl PgExecutor<'_>,
    catalog_id: Uuid,
    at: Option<SyncId>,
) -> sqlx::Result<Option<Vec<DatabaseObject>>> {
    let found = catalog_document(db, catalog_id, at, CatalogDocument::Objects).await?;
    Ok(found.map(Option::unwrap_or_default))
}
