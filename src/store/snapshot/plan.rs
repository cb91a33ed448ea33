//! Which units of a snapshot a write touches: each schema and relation is compared with the
//! stored one by content hash, and only the added, changed and removed ones are written.

use std::collections::HashMap;

use sqlx::PgConnection;

use super::copy::CopyData;
use super::rows::{self, ContentHash, Context, Unit};
use crate::catalog::{Relation, Schema};
use crate::ids::CatalogId;

/// The content hashes a catalog's stored snapshot holds, by unit, with each relation's
/// statistics. A write takes each unit it meets out of it: what is left at the end was
/// removed from the source.
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

    /// Compares `schemas` with the stored ones: for each, whether it is written; the stored
    /// ones that changed go to `plan`'s deletions.
    pub fn plan_schemas(
        &mut self,
        schemas: &[Schema],
        cx: &Context<'_>,
        plan: &mut Plan,
    ) -> Vec<bool> {
        let mut scratch = CopyData::default();
        schemas
            .iter()
            .map(|schema| match self.schemas.remove(&schema.name) {
                Some(old)
                    if old == Some(rows::content_hash(cx, Unit::Schema(schema), &mut scratch)) =>
                {
                    false
                }
                Some(_) => {
                    plan.deleted_schemas.push(schema.name.clone());
                    plan.written_schemas.push(schema.name.clone());
                    true
                }
                None => {
                    plan.written_schemas.push(schema.name.clone());
                    true
                }
            })
            .collect()
    }

    /// Compares `relations` with the stored ones: what is done with each. The stored ones that
    /// changed go to `plan`'s deletions, the written ones to its writes, and the kept ones
    /// whose statistics moved to its refreshes.
    pub fn plan_relations(
        &mut self,
        relations: &[Relation],
        cx: &Context<'_>,
        plan: &mut Plan,
    ) -> Vec<Action> {
        let mut scratch = CopyData::default();
        relations
            .iter()
            .map(|Relation { schema, table }| {
                let unit = Unit::Relation { schema, table };
                let key = (schema.clone(), table.name.clone());
                let action = match self.relations.remove(&key) {
                    Some(old) if old.hash == Some(rows::content_hash(cx, unit, &mut scratch)) => {
                        match old.statistics == (table.row_estimate, table.total_bytes) {
                            true => Action::Keep,
                            false => Action::Refresh,
                        }
                    }
                    Some(_) => {
                        plan.deleted_relations.push(schema, &table.name);
                        Action::Write
                    }
                    None => Action::Write,
                };
                match action {
                    Action::Write => plan.written_relations.push(schema, &table.name),
                    Action::Refresh => plan.refreshed.push(schema, table),
                    Action::Keep => {}
                }
                action
            })
            .collect()
    }

    /// The units the source no longer has (all that were not met), as deletions.
    pub fn into_removed(self) -> Plan {
        let mut plan = Plan {
            deleted_schemas: self.schemas.into_keys().collect(),
            ..Plan::default()
        };
        for (schema, name) in self.relations.into_keys() {
            plan.deleted_relations.push(&schema, &name);
        }
        plan
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
    pub fn push(&mut self, schema: &str, name: &str) {
        self.schemas.push(schema.to_owned());
        self.names.push(name.to_owned());
    }

    pub fn extend(&mut self, other: &Names) {
        self.schemas.extend_from_slice(&other.schemas);
        self.names.extend_from_slice(&other.names);
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

/// New statistics of kept relations, as parallel arrays for `UNNEST`.
#[derive(Debug, Default)]
pub struct Refreshed {
    pub relations: Names,
    pub rows: Vec<Option<i64>>,
    pub bytes: Vec<Option<i64>>,
}

impl Refreshed {
    fn push(&mut self, schema: &str, table: &crate::catalog::Table) {
        self.relations.push(schema, &table.name);
        self.rows.push(table.row_estimate);
        self.bytes.push(table.total_bytes);
    }
}

/// What a write does with the units of one piece of a catalog, besides copying in the
/// written ones. Only stored units are hashed to be compared: a unit that is not stored is
/// written, and its hash computed as its rows are encoded.
#[derive(Debug, Default)]
pub struct Plan {
    /// Stored schemas to delete: changed or gone.
    pub deleted_schemas: Vec<String>,
    /// Schemas written: added or changed.
    pub written_schemas: Vec<String>,
    /// Stored relations to delete: changed or gone.
    pub deleted_relations: Names,
    /// Relations written: added or changed.
    pub written_relations: Names,
    /// Kept relations whose statistics moved.
    pub refreshed: Refreshed,
}

impl Plan {
    /// The schemas whose rows change: written or deleted (a changed one is both).
    pub fn touched_schemas(&self) -> impl Iterator<Item = &String> {
        self.written_schemas.iter().chain(
            self.deleted_schemas
                .iter()
                .filter(|s| !self.written_schemas.contains(s)),
        )
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
