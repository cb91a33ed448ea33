//! Diffs: what differs between two states of catalogs, in the change history's shape.
//!
//! Two syncs of one catalog are compared by composing the history the syncs between them
//! recorded; two catalogs by comparing their stored snapshots as a write compares a catalog's
//! old rows with its new ones ([`super::changes::compare_catalogs`]).

use std::collections::HashMap;

use serde_json::{Map, Value};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::changes::{Change, ChangeRow};
use crate::ids::{CatalogId, SyncId};

/// What an id names: a catalog (its snapshot as stored now), or a sync of one (the catalog's
/// state after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Catalog(CatalogId),
    Sync { id: SyncId, catalog: CatalogId },
}

impl State {
    pub fn catalog(self) -> CatalogId {
        match self {
            State::Catalog(id) | State::Sync { catalog: id, .. } => id,
        }
    }
}

/// What `id` names, if anything: a catalog, a sync, or a sync that retention deleted but
/// whose changes the history still holds.
pub async fn resolve(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<State>> {
    // A whole-server sync has no catalog, so names no state of one.
    let found: Option<(String, Uuid)> = sqlx::query_as(
        "SELECT kind, catalog_id FROM (
             SELECT 'catalog' AS kind, id AS catalog_id FROM catalogs WHERE id = $1
             UNION ALL
             SELECT 'sync', catalog_id FROM syncs WHERE id = $1 AND catalog_id IS NOT NULL
             UNION ALL
             (SELECT 'sync', catalog_id FROM catalog_changes WHERE sync_id = $1 LIMIT 1)
         ) found
         LIMIT 1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    let found = found.map(|(kind, catalog_id)| Found { kind, catalog_id });
    Ok(found.map(|f| match f.kind.as_str() {
        "catalog" => State::Catalog(f.catalog_id.into()),
        _ => State::Sync {
            id: id.into(),
            catalog: f.catalog_id.into(),
        },
    }))
}

struct Found {
    kind: String,
    catalog_id: Uuid,
}

/// One object's changes composed, as they are applied in order.
struct Composite {
    object: String,
    /// Whether the object existed before the first change, and after the last.
    existed: bool,
    exists: bool,
    /// The attributes the object had before the first change, as far as the changes show them;
    /// all of them once `before_complete` (a removal shows the whole object).
    before: Map<String, Value>,
    before_complete: bool,
    /// The attributes it has after the last change: all of them once it was added, else those
    /// that changed.
    after: Map<String, Value>,
}

fn attributes(side: Option<Value>) -> Map<String, Value> {
    match side {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

impl Composite {
    fn start(change: &Change) -> Self {
        let existed = change.action != "added";
        Self {
            object: change.object.clone(),
            existed,
            exists: existed,
            before: Map::new(),
            // An object that did not exist has nothing to know about.
            before_complete: !existed,
            after: Map::new(),
        }
    }

    /// Keeps the attributes of `before` not known yet: the first value seen is the original.
    fn learn_before(&mut self, before: Option<Value>) {
        if self.before_complete {
            return;
        }
        for (k, v) in attributes(before) {
            self.before.entry(k).or_insert(v);
        }
    }

    fn apply(&mut self, change: Change) {
        match change.action.as_str() {
            "added" => {
                self.exists = true;
                self.after = attributes(change.after);
            }
            "removed" => {
                self.learn_before(change.before);
                self.before_complete = true;
                self.exists = false;
                self.after.clear();
            }
            _ => {
                self.learn_before(change.before);
                self.after.extend(attributes(change.after));
            }
        }
    }

    /// The one change the composite makes, if any: (action, before, after).
    fn finish(self) -> Option<(&'static str, Option<Value>, Option<Value>)> {
        match (self.existed, self.exists) {
            (false, false) => None,
            (false, true) => Some(("added", None, Some(Value::Object(self.after)))),
            (true, false) => Some(("removed", Some(Value::Object(self.before)), None)),
            (true, true) => {
                let mut keys: Vec<&String> = self.before.keys().chain(self.after.keys()).collect();
                keys.sort();
                keys.dedup();
                let value = |side: &Map<String, Value>, k: &str| {
                    side.get(k).cloned().unwrap_or(Value::Null)
                };
                let (mut before, mut after) = (Map::new(), Map::new());
                for k in keys {
                    let (b, a) = (value(&self.before, k), value(&self.after, k));
                    if b != a {
                        before.insert(k.clone(), b);
                        after.insert(k.clone(), a);
                    }
                }
                (!before.is_empty()).then_some((
                    "altered",
                    Some(Value::Object(before)),
                    Some(Value::Object(after)),
                ))
            }
        }
    }
}

/// Composes changes recorded in order into the changes from the state before the first to the
/// state after the last: for each object, its first `before` and its last `after`. An object
/// added then removed disappears, as does one altered back to what it was; altered attributes
/// merge. Sorted as the history records a sync's changes.
pub fn compose(rows: Vec<ChangeRow>) -> Vec<Change> {
    type Key = (String, String, String, Option<String>);
    let mut composites: HashMap<Key, Composite> = HashMap::new();
    for row in rows {
        let c = row.change;
        let key = (
            c.object.clone(),
            c.schema.clone(),
            c.relation.clone(),
            c.name.clone(),
        );
        composites
            .entry(key)
            .or_insert_with(|| Composite::start(&c))
            .apply(c);
    }
    let mut changes: Vec<Change> = composites
        .into_iter()
        .filter_map(|((_, schema, relation, name), composite)| {
            let object = composite.object.clone();
            let (action, before, after) = composite.finish()?;
            Some(Change::new(
                object,
                action.to_owned(),
                schema,
                relation,
                name,
                before,
                after,
            ))
        })
        .collect();
    sort(&mut changes);
    changes
}

/// The changes that undo `changes`: added and removed swap, and so do before and after.
pub fn invert(changes: Vec<Change>) -> Vec<Change> {
    changes
        .into_iter()
        .map(|c| {
            let action = match c.action.as_str() {
                "added" => "removed".to_owned(),
                "removed" => "added".to_owned(),
                _ => c.action,
            };
            Change::new(
                c.object, action, c.schema, c.relation, c.name, c.after, c.before,
            )
        })
        .collect()
}

/// Sorts changes as the history records a sync's: by kind, then schema, relation and name.
pub fn sort(changes: &mut [Change]) {
    changes.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::classify::Classification;
    use serde_json::json;

    fn row(action: &str, name: &str, before: Value, after: Value) -> ChangeRow {
        let side = |v: Value| (!v.is_null()).then_some(v);
        ChangeRow {
            id: 0,
            sync_id: Uuid::nil(),
            changed_at: chrono::Utc::now(),
            change: Change::new(
                "column".into(),
                action.into(),
                "public".into(),
                "t".into(),
                Some(name.into()),
                side(before),
                side(after),
            ),
        }
    }

    fn summary(changes: &[Change]) -> Vec<(String, String, Value, Value)> {
        let side = |v: &Option<Value>| v.clone().unwrap_or(Value::Null);
        changes
            .iter()
            .map(|c| {
                let name = c.name.clone().unwrap();
                (c.action.clone(), name, side(&c.before), side(&c.after))
            })
            .collect()
    }

    #[test]
    fn altered_attributes_merge_first_before_last_after() {
        let composed = compose(vec![
            row(
                "altered",
                "a",
                json!({"data_type": "integer"}),
                json!({"data_type": "bigint"}),
            ),
            row(
                "altered",
                "a",
                json!({"nullable": true}),
                json!({"nullable": false}),
            ),
            row(
                "altered",
                "a",
                json!({"data_type": "bigint"}),
                json!({"data_type": "numeric"}),
            ),
        ]);
        assert_eq!(
            summary(&composed),
            [(
                "altered".into(),
                "a".into(),
                json!({"data_type": "integer", "nullable": true}),
                json!({"data_type": "numeric", "nullable": false}),
            )]
        );
        assert_eq!(composed[0].classification, Classification::Breaking);
    }

    #[test]
    fn added_then_removed_disappears_and_altered_back_disappears() {
        let column = json!({"data_type": "text", "nullable": true});
        let composed = compose(vec![
            row("added", "a", Value::Null, column.clone()),
            row("removed", "a", column, Value::Null),
            row(
                "altered",
                "b",
                json!({"comment": null}),
                json!({"comment": "x"}),
            ),
            row(
                "altered",
                "b",
                json!({"comment": "x"}),
                json!({"comment": null}),
            ),
        ]);
        assert_eq!(composed, []);
    }

    #[test]
    fn added_then_altered_is_added_as_it_ends() {
        let composed = compose(vec![
            row(
                "added",
                "a",
                Value::Null,
                json!({"data_type": "text", "nullable": true}),
            ),
            row(
                "altered",
                "a",
                json!({"nullable": true}),
                json!({"nullable": false}),
            ),
        ]);
        assert_eq!(
            summary(&composed),
            [(
                "added".into(),
                "a".into(),
                Value::Null,
                json!({"data_type": "text", "nullable": false}),
            )]
        );
    }

    #[test]
    fn altered_then_removed_is_removed_as_it_was() {
        let composed = compose(vec![
            row(
                "altered",
                "a",
                json!({"nullable": true}),
                json!({"nullable": false}),
            ),
            row(
                "removed",
                "a",
                json!({"data_type": "text", "nullable": false}),
                Value::Null,
            ),
        ]);
        assert_eq!(
            summary(&composed),
            [(
                "removed".into(),
                "a".into(),
                json!({"data_type": "text", "nullable": true}),
                Value::Null,
            )]
        );
    }

    #[test]
    fn removed_then_added_is_altered_where_it_differs() {
        let composed = compose(vec![
            row(
                "removed",
                "a",
                json!({"data_type": "text", "nullable": true}),
                Value::Null,
            ),
            row(
                "added",
                "a",
                Value::Null,
                json!({"data_type": "integer", "nullable": true}),
            ),
        ]);
        assert_eq!(
            summary(&composed),
            [(
                "altered".into(),
                "a".into(),
                json!({"data_type": "text"}),
                json!({"data_type": "integer"}),
            )]
        );
    }

    #[test]
    fn inverting_swaps_actions_and_sides_and_classifies_again() {
        let added = compose(vec![row(
            "added",
            "a",
            Value::Null,
            json!({"nullable": true}),
        )]);
        assert_eq!(added[0].classification, Classification::NonBreaking);
        let inverted = invert(added);
        assert_eq!(
            summary(&inverted),
            [(
                "removed".into(),
                "a".into(),
                json!({"nullable": true}),
                Value::Null
            )]
        );
        assert_eq!(inverted[0].classification, Classification::Breaking);
    }
}
