//! Which units of a snapshot a write touches: each schema and relation is compared with the
//! stored one by content hash, and only the added, changed and removed ones are written.

use std::collections::HashMap;

use sqlx::PgConnection;

use super::copy::CopyData;
use super::rows::{self, ContentHash, Context, Unit};
use crate::catalog::Snapshot;
use crate::ids::CatalogId;
use crate::store::syncs::Progress;

/// The content hashes a catalog's stored snapshot holds, by unit, with each relation's
/// statistics.
#[derive(Debug, Default)]
pub struct Stored {
    schemas: HashMap<String, Option<ContentHash>>,
    relations: HashMap<(String, String), StoredRelation>,
}

#[derive(Debug)]
struct StoredRelation {
    hash: Option<ContentHash>,
    statistics: Statistics,
}

/// The statistics of a relation that move with its data, refreshed in place.
type Statistics = (Option<i64>, Option<i64>);

impl Stored {
    pub async fn load(conn: &mut PgConnection, catalog_id: CatalogId) -> sqlx::Result<Self> {
        let schemas = sqlx::query!(
            "SELECT name, content_hash FROM catalog_schemas WHERE catalog_id = $1",
            catalog_id.uuid()
        )
        .fetch_all(&mut *conn)
        .await?;
        let relations = sqlx::query!(
            r#"SELECT schema_name, name, content_hash, row_estimate, total_bytes
               FROM catalog_relations WHERE catalog_id = $1"#,
            catalog_id.uuid()
        )
        .fetch_all(&mut *conn)
        .await?;
        Ok(Self {
            schemas: schemas
                .into_iter()
                .map(|r| (r.name, r.content_hash.as_deref().and_then(hash_of)))
                .collect(),
            relations: relations
                .into_iter()
                .map(|r| {
                    let relation = StoredRelation {
                        hash: r.content_hash.as_deref().and_then(hash_of),
                        statistics: (r.row_estimate, r.total_bytes),
                    };
                    ((r.schema_name, r.name), relation)
                })
                .collect(),
        })
    }
}

/// A stored hash of another length (none is) compares as changed.
fn hash_of(bytes: &[u8]) -> Option<ContentHash> {
    bytes.try_into().ok()
}

/// Units named by schema and relation, as parallel arrays for `UNNEST`.
#[derive(Debug, Default, Clone)]
pub struct Names {
    pub schemas: Vec<String>,
    pub names: Vec<String>,
}

impl Names {
    fn push(&mut self, schema: &str, name: &str) {
        self.schemas.push(schema.to_owned());
        self.names.push(name.to_owned());
    }

    pub fn len(&self) -> usize {
        self.schemas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.schemas.is_empty()
    }
}

/// What a write does with a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stored as it is.
    Keep,
    /// Stored as it is but for its statistics, which are refreshed in place.
    Refresh,
    /// Written: added or changed.
    Write,
}

/// What a write does with each unit. Only stored units are hashed to be compared: a unit that
/// is not stored is written, and its hash computed as its rows are encoded.
#[derive(Debug, Default)]
pub struct Plan {
    /// For each schema of the snapshot, in order: whether it is written.
    pub schemas: Vec<bool>,
    /// For each relation of the snapshot, in schema then relation order.
    pub relations: Vec<Action>,
    /// Stored schemas to delete: changed or gone.
    pub deleted_schemas: Vec<String>,
    /// Stored relations to delete: changed or gone.
    pub deleted_relations: Names,
    /// Relations written: added or changed.
    pub written_relations: Names,
}

impl Plan {
    /// Compares every unit of `snapshot` with `stored`, counting the relations compared.
    pub fn new(
        snapshot: &Snapshot,
        cx: &Context<'_>,
        mut stored: Stored,
        progress: &Progress,
    ) -> Self {
        let mut plan = Plan::default();
        let mut scratch = CopyData::default();
        let mut hash = |unit| rows::content_hash(cx, unit, &mut scratch);
        for schema in &snapshot.schemas {
            let written = match stored.schemas.remove(&schema.name) {
                Some(old) if old == Some(hash(Unit::Schema(schema))) => false,
                Some(_) => {
                    plan.deleted_schemas.push(schema.name.clone());
                    true
                }
                None => true,
            };
            plan.schemas.push(written);
            for table in &schema.tables {
                let unit = Unit::Relation {
                    schema: &schema.name,
                    table,
                };
                let key = (schema.name.clone(), table.name.clone());
                let action = match stored.relations.remove(&key) {
                    Some(old) if old.hash == Some(hash(unit)) => {
                        match old.statistics == (table.row_estimate, table.total_bytes) {
                            true => Action::Keep,
                            false => Action::Refresh,
                        }
                    }
                    Some(_) => {
                        plan.deleted_relations.push(&schema.name, &table.name);
                        Action::Write
                    }
                    None => Action::Write,
                };
                if action == Action::Write {
                    plan.written_relations.push(&schema.name, &table.name);
                }
                plan.relations.push(action);
                progress.advance(1);
            }
        }
        plan.deleted_schemas.extend(stored.schemas.into_keys());
        for (schema, name) in stored.relations.into_keys() {
            plan.deleted_relations.push(&schema, &name);
        }
        plan
    }

    /// Whether the write leaves every unit as it is stored.
    pub fn is_empty(&self) -> bool {
        self.deleted_schemas.is_empty()
            && self.deleted_relations.is_empty()
            && !self.schemas.contains(&true)
            && self.written_relations.is_empty()
    }

    /// The relations whose rows change: written or deleted (a changed one is both).
    pub fn touched_relations(&self) -> Names {
        let mut touched = self.written_relations.clone();
        let written: std::collections::HashSet<(&str, &str)> = self
            .written_relations
            .schemas
            .iter()
            .zip(&self.written_relations.names)
            .map(|(s, n)| (s.as_str(), n.as_str()))
            .collect();
        let deleted = &self.deleted_relations;
        for (s, n) in deleted.schemas.iter().zip(&deleted.names) {
            if !written.contains(&(s.as_str(), n.as_str())) {
                touched.push(s, n);
            }
        }
        touched
    }
}
