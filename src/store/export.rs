//! A catalog's snapshot read back from the store as the model (`catalog::Snapshot`), whole or
//! one schema of it, for what is rendered from the model: the DDL export.
//!
//! Relations are read as the detail reads serve them ([`reads::relation_details`]: each
//! relation's document with its column list), in chunks, and parsed back; schema objects
//! from their tables, one query each; the database-wide objects with the catalog. Extensions'
//! members are left out: `CREATE EXTENSION` makes them.

use std::collections::HashMap;

use serde::Deserialize;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::details::StoredPolicy;
use super::reads::{self, DetailKey, DetailParts};
use crate::catalog::{
    Column, ColumnRef, Constraint, ConstraintKind, DatabaseInfo, Extension, ForeignKeyTarget,
    Function, Index, ObjectType, Privilege, QualifiedName, RelationKind, RelationUse, Schema,
    SchemaObject, Sequence, Snapshot, Table, Trigger, TypeAttribute, TypeDef, TypeKind,
};
use crate::ids::SyncId;

/// Relations read per detail query.
const CHUNK: usize = 500;

/// The snapshot stored as `catalog_id` (a catalog's own or a past state's copy of it, the state
/// `at` left), or of its schema `schema` only, with the database facts of `catalog` (its
/// latest).
pub async fn snapshot(
    conn: &mut PgConnection,
    catalog: Uuid,
    catalog_id: Uuid,
    at: Option<SyncId>,
    schema: Option<&str>,
) -> sqlx::Result<Snapshot> {
    let database = sqlx::query_scalar!(r#"SELECT database FROM catalogs WHERE id = $1"#, catalog)
        .fetch_optional(&mut *conn)
        .await?
        .flatten()
        .and_then(|d| serde_json::from_value::<DatabaseInfo>(d).ok());
    let rows = sqlx::query!(
        r#"SELECT name, owner, comment FROM catalog_schemas
           WHERE catalog_id = $1 AND ($2::text IS NULL OR name = $2) ORDER BY name"#,
        catalog_id,
        schema
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut schemas: Vec<Schema> = rows
        .into_iter()
        .map(|r| Schema {
            name: r.name,
            owner: r.owner,
            comment: r.comment,
            ..Schema::default()
        })
        .collect();
    let index: HashMap<String, usize> = schemas
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), i))
        .collect();
    let position = |name: &str| index.get(name).copied();

    let types = sqlx::query!(
        r#"SELECT schema_name, name, kind, owner, comment, labels, base_type, not_null,
                  default_expr, checks, attributes, range_options
           FROM catalog_types
           WHERE catalog_id = $1 AND ($2::text IS NULL OR schema_name = $2)
             AND extension IS NULL
           ORDER BY schema_name, name"#,
        catalog_id,
        schema
    )
    .fetch_all(&mut *conn)
    .await?;
    for t in types {
        let Some(i) = position(&t.schema_name) else {
            continue;
        };
        let kind = TypeKind::parse(&t.kind).unwrap_or(TypeKind::Composite);
        let attributes: Vec<TypeAttribute> = t
            .attributes
            .and_then(|a| serde_json::from_value(a).ok())
            .unwrap_or_default();
        schemas[i].types.push(TypeDef {
            name: t.name,
            kind,
            owner: t.owner,
            comment: t.comment,
            labels: t.labels.unwrap_or_default(),
            base_type: t.base_type,
            not_null: t.not_null,
            default: t.default_expr,
            checks: t.checks.unwrap_or_default(),
            attributes,
            range_options: t.range_options,
            extension: None,
        });
    }

    let functions = sqlx::query!(
        r#"SELECT schema_name, name, owner, arguments, result, language, kind, comment,
                  definition
           FROM catalog_functions
           WHERE catalog_id = $1 AND ($2::text IS NULL OR schema_name = $2)
             AND extension IS NULL
           ORDER BY schema_name, name, arguments"#,
        catalog_id,
        schema
    )
    .fetch_all(&mut *conn)
    .await?;
    for f in functions {
        if let Some(i) = position(&f.schema_name) {
            schemas[i].functions.push(Function {
                name: f.name,
                owner: f.owner,
                arguments: f.arguments,
                result: f.result,
                language: f.language,
                kind: f.kind,
                comment: f.comment,
                definition: f.definition,
                // The DDL export needs only the definition.
                uses: Vec::new(),
                extension: None,
            });
        }
    }

    let extensions = sqlx::query!(
        r#"SELECT schema_name, name, version FROM catalog_extensions
           WHERE catalog_id = $1 AND ($2::text IS NULL OR schema_name = $2)
           ORDER BY schema_name, name"#,
        catalog_id,
        schema
    )
    .fetch_all(&mut *conn)
    .await?;
    for x in extensions {
        if let Some(i) = position(&x.schema_name) {
            // The DDL names an extension, not the objects `CREATE EXTENSION` makes.
            schemas[i].extensions.push(Extension {
                name: x.name,
                version: x.version,
                members: Vec::new(),
            });
        }
    }

    // The privileges of the schemas, their sequences, functions and types, in ACL order.
    type PrivilegeRow = (String, String, String, String, String, String, bool);
    let privileges: Vec<PrivilegeRow> = sqlx::query_as(
        r#"SELECT schema_name, object_type, object, grantee, grantor, privilege, grantable
           FROM catalog_schema_privileges
           WHERE catalog_id = $1 AND ($2::text IS NULL OR schema_name = $2)
           ORDER BY schema_name, object_type, object, grantor, grantee, privilege"#,
    )
    .bind(catalog_id)
    .bind(schema)
    .fetch_all(&mut *conn)
    .await?;
    for (schema_name, object_type, object, grantee, grantor, privilege, grantable) in privileges {
        let (Some(i), Some(object_type)) =
            (position(&schema_name), ObjectType::parse(&object_type))
        else {
            continue;
        };
        schemas[i].privileges.push(Privilege {
            object_type,
            object,
            column: None,
            grantee,
            grantor,
            privilege,
            grantable,
        });
    }

    let objects: Vec<(String, Json<SchemaObject>)> = sqlx::query_as(
        r#"SELECT schema_name, body FROM catalog_schema_objects
           WHERE catalog_id = $1 AND ($2::text IS NULL OR schema_name = $2)
             AND extension IS NULL
           ORDER BY schema_name, kind, relation_name, name"#,
    )
    .bind(catalog_id)
    .bind(schema)
    .fetch_all(&mut *conn)
    .await?;
    for (schema_name, object) in objects {
        if let Some(i) = position(&schema_name) {
            schemas[i].objects.push(object.0);
        }
    }

    let keys: Vec<DetailKey> = sqlx::query!(
        r#"SELECT schema_name, name FROM catalog_relations
           WHERE catalog_id = $1 AND ($2::text IS NULL OR schema_name = $2)
             AND extension IS NULL
           ORDER BY schema_name, name"#,
        catalog_id,
        schema
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| DetailKey {
        catalog_id,
        schema: r.schema_name,
        name: r.name,
    })
    .collect();
    for chunk in keys.chunks(CHUNK) {
        let details = reads::relation_details(conn, chunk).await?;
        for (key, detail) in chunk.iter().zip(details) {
            let Some(detail) = detail else { continue };
            let document = detail.finish("", DetailParts::ALL);
            let stored: StoredRelation =
                serde_json::from_str(&document).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            if let Some(i) = position(&key.schema) {
                schemas[i].tables.push(stored.into_table());
            }
        }
    }

    // A sequence's owner is stored as `schema.table` text: it is matched with the relations
    // (whose names may hold dots themselves) rather than split.
    let sequences = sqlx::query!(
        r#"SELECT schema_name, name, owner, data_type, start_value, increment, min_value,
                  max_value, cache, cycle, owned_by_table, owned_by_column
           FROM catalog_sequences
           WHERE catalog_id = $1 AND ($2::text IS NULL OR schema_name = $2)
             AND extension IS NULL
           ORDER BY schema_name, name"#,
        catalog_id,
        schema
    )
    .fetch_all(&mut *conn)
    .await?;
    for q in sequences {
        let Some(i) = position(&q.schema_name) else {
            continue;
        };
        let owned_by = match (q.owned_by_table, q.owned_by_column) {
            (Some(table), Some(column)) => owner_of(&schemas, &table, column),
            _ => None,
        };
        schemas[i].sequences.push(Sequence {
            name: q.name,
            owner: q.owner,
            data_type: q.data_type,
            start: q.start_value,
            increment: q.increment,
            min: q.min_value,
            max: q.max_value,
            cache: q.cache,
            cycle: q.cycle,
            owned_by,
            extension: None,
        });
    }
    // The database-wide objects and access facts (default privileges) are kept with the
    // catalog, versioned: a whole database's export has them as the state left them.
    let (objects, access) = match schema {
        None => (
            super::object_reads::database_objects(&mut *conn, catalog, at)
                .await?
                .unwrap_or_default(),
            super::access_reads::access_facts(&mut *conn, catalog, at).await?,
        ),
        Some(_) => (Vec::new(), None),
    };
    Ok(Snapshot {
        database,
        schemas,
        access,
        objects,
    })
}

/// The column `column` of the relation stored as `schema.table` text, if the snapshot read
/// holds it.
fn owner_of(schemas: &[Schema], qualified: &str, column: String) -> Option<ColumnRef> {
    schemas.iter().find_map(|s| {
        let table = qualified.strip_prefix(s.name.as_str())?.strip_prefix('.')?;
        s.tables.iter().any(|t| t.name == table).then(|| ColumnRef {
            schema: s.name.clone(),
            table: table.to_owned(),
            column: column.clone(),
        })
    })
}

/// A relation's detail document as served (see `store::details`), parsed back.
#[derive(Deserialize)]
struct StoredRelation {
    name: String,
    kind: RelationKind,
    owner: Option<String>,
    comment: Option<String>,
    row_estimate: Option<i64>,
    total_bytes: Option<i64>,
    unlogged: bool,
    rls_enabled: bool,
    #[serde(default)]
    rls_forced: bool,
    definition: Option<String>,
    partition_key: Option<String>,
    parent_schema: Option<String>,
    parent_name: Option<String>,
    partition_bound: Option<String>,
    #[serde(default)]
    columns: Vec<Column>,
    #[serde(default)]
    constraints: Vec<StoredConstraint>,
    #[serde(default)]
    indexes: Vec<Index>,
    #[serde(default)]
    triggers: Vec<Trigger>,
    #[serde(default)]
    depends_on: Vec<RelationUse>,
    #[serde(default)]
    privileges: Vec<StoredGrant>,
    #[serde(default)]
    policies: Vec<StoredPolicy>,
}

/// A privilege on the relation or one of its columns, as the detail document shows it.
#[derive(Deserialize)]
struct StoredGrant {
    object_type: ObjectType,
    column: Option<String>,
    grantee: String,
    grantor: String,
    privilege: String,
    grantable: bool,
}

#[derive(Deserialize)]
struct StoredConstraint {
    name: String,
    kind: ConstraintKind,
    columns: Vec<String>,
    definition: Option<String>,
    ref_schema: Option<String>,
    ref_table: Option<String>,
    ref_columns: Option<Vec<String>>,
    on_update: Option<String>,
    on_delete: Option<String>,
    deferrable: bool,
    initially_deferred: bool,
}

impl StoredRelation {
    fn into_table(self) -> Table {
        let constraints = self
            .constraints
            .into_iter()
            .map(|k| Constraint {
                references: match (k.ref_schema, k.ref_table, k.ref_columns) {
                    (Some(schema), Some(table), Some(columns)) => Some(ForeignKeyTarget {
                        schema,
                        table,
                        columns,
                        on_update: k.on_update,
                        on_delete: k.on_delete,
                    }),
                    _ => None,
                },
                name: k.name,
                kind: k.kind,
                columns: k.columns,
                definition: k.definition,
                deferrable: k.deferrable,
                initially_deferred: k.initially_deferred,
            })
            .collect();
        let privileges = (self.privileges.into_iter())
            .map(|p| Privilege {
                object_type: p.object_type,
                object: self.name.clone(),
                column: p.column,
                grantee: p.grantee,
                grantor: p.grantor,
                privilege: p.privilege,
                grantable: p.grantable,
            })
            .collect();
        Table {
            name: self.name,
            kind: self.kind,
            owner: self.owner,
            comment: self.comment,
            row_estimate: self.row_estimate,
            total_bytes: self.total_bytes,
            unlogged: self.unlogged,
            rls_enabled: self.rls_enabled,
            rls_forced: self.rls_forced,
            partition_key: self.partition_key,
            definition: self.definition,
            partition_of: self
                .parent_schema
                .zip(self.parent_name)
                .map(|(schema, name)| QualifiedName { schema, name }),
            partition_bound: self.partition_bound,
            columns: self.columns,
            constraints,
            indexes: self.indexes,
            triggers: self.triggers,
            depends_on: self.depends_on,
            privileges,
            policies: (self.policies.into_iter())
                .map(StoredPolicy::into_policy)
                .collect(),
            // The export reads the schema author's relations only.
            extension: None,
        }
    }
}
