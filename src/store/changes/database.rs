//! The history of the database-wide objects (publications, event triggers, foreign data
//! wrappers and servers). They are kept with the catalog as one document (`catalogs.objects`),
//! few and small: the write compares the stored document with the new one object by object,
//! by kind and name, and records each difference as the units' comparisons do (an altered
//! object keeps only the attributes that differ, on each side).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::super::Tx;
use crate::catalog::DatabaseObject;
use crate::ids::{CatalogId, SyncId};

/// Records how `current` differs from `stored`, the catalog's database objects as the write
/// found them, as changes of `sync_id` (object: the kind; schema: ''; relation: the object's
/// name). Returns how many.
pub async fn record_database_objects(
    tx: &mut Tx<'_>,
    catalog_id: CatalogId,
    sync_id: SyncId,
    stored: Vec<Value>,
    current: &[DatabaseObject],
) -> sqlx::Result<u64> {
    let current = current
        .iter()
        .map(|o| serde_json::to_value(o).expect("objects serialize"));
    let changes = differences(keyed(stored), keyed(current));
    if changes.is_empty() {
        return Ok(0);
    }
    let (mut objects, mut actions, mut names) = (vec![], vec![], vec![]);
    let (mut before, mut after): (Vec<Option<Value>>, Vec<Option<Value>>) = (vec![], vec![]);
    for ((kind, name), action, was, is) in changes {
        objects.push(kind);
        actions.push(action);
        names.push(name);
        before.push(was);
        after.push(is);
    }
    let done = sqlx::query(
        "INSERT INTO catalog_changes
             (catalog_id, sync_id, object, action, schema_name, relation_name, name, before, after)
         SELECT $1, $2, o, a, '', n, NULL, b, f
         FROM UNNEST($3::text[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
              AS c(o, a, n, b, f)",
    )
    .bind(catalog_id)
    .bind(sync_id)
    .bind(&objects)
    .bind(&actions)
    .bind(&names)
    .bind(&before)
    .bind(&after)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// How the database objects of catalog `to` differ from those of `from`, as changes that
/// would turn `from` into `to`, in the order of kind and name. A catalog stored without the
/// document counts as having none.
pub(super) async fn compare(
    tx: &mut Tx<'_>,
    from: CatalogId,
    to: CatalogId,
) -> sqlx::Result<Vec<super::Change>> {
    let mut sides = Vec::new();
    for catalog in [from, to] {
        let stored: Option<Option<sqlx::types::Json<Vec<Value>>>> =
            sqlx::query_scalar("SELECT objects FROM catalogs WHERE id = $1")
                .bind(catalog)
                .fetch_optional(&mut **tx)
                .await?;
        sides.push(keyed(stored.flatten().map(|o| o.0).unwrap_or_default()));
    }
    let to = sides.pop().unwrap_or_default();
    let from = sides.pop().unwrap_or_default();
    Ok(differences(from, to)
        .into_iter()
        .map(|((kind, name), action, before, after)| {
            super::Change::new(
                kind,
                action.into(),
                String::new(),
                name,
                None,
                before,
                after,
            )
        })
        .collect())
}

/// Kind and name.
type Key = (String, String);

/// The objects by kind and name, each without those two.
fn keyed(objects: impl IntoIterator<Item = Value>) -> BTreeMap<Key, Map<String, Value>> {
    objects
        .into_iter()
        .filter_map(|object| {
            let Value::Object(mut attributes) = object else {
                return None;
            };
            let text = |v: Option<Value>| match v {
                Some(Value::String(s)) => Some(s),
                _ => None,
            };
            let kind = text(attributes.remove("kind"))?;
            let name = text(attributes.remove("name"))?;
            Some(((kind, name), attributes))
        })
        .collect()
}

/// Each object added, removed or altered: its key, the action, and what it was and is.
fn differences(
    before: BTreeMap<Key, Map<String, Value>>,
    mut after: BTreeMap<Key, Map<String, Value>>,
) -> Vec<(Key, &'static str, Option<Value>, Option<Value>)> {
    let mut changes = Vec::new();
    for (key, old) in before {
        match after.remove(&key) {
            None => changes.push((key, "removed", Some(Value::Object(old)), None)),
            Some(new) if new != old => {
                let differing = |a: &Map<String, Value>, b: &Map<String, Value>| {
                    let kept = a.iter().filter(|(k, v)| b.get(*k) != Some(*v));
                    Value::Object(kept.map(|(k, v)| (k.clone(), v.clone())).collect())
                };
                let (was, is) = (differing(&old, &new), differing(&new, &old));
                changes.push((key, "altered", Some(was), Some(is)));
            }
            Some(_) => {}
        }
    }
    for (key, new) in after {
        changes.push((key, "added", None, Some(Value::Object(new))));
    }
    changes.sort_by(|a, b| a.0.cmp(&b.0));
    changes
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn objects_are_added_removed_and_altered_by_kind_and_name() {
        let before = keyed([
            json!({"kind": "publication", "name": "p", "via_root": false, "tables": []}),
            json!({"kind": "event_trigger", "name": "gone", "event": "sql_drop"}),
        ]);
        let after = keyed([
            json!({"kind": "publication", "name": "p", "via_root": true, "tables": []}),
            json!({"kind": "foreign_server", "name": "s", "options": ["host=a"]}),
        ]);
        let changes = differences(before, after);
        let summary: Vec<_> = changes
            .iter()
            .map(|((kind, name), action, before, after)| {
                (
                    kind.as_str(),
                    name.as_str(),
                    *action,
                    before.clone(),
                    after.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "event_trigger",
                    "gone",
                    "removed",
                    Some(json!({"event": "sql_drop"})),
                    None
                ),
                (
                    "foreign_server",
                    "s",
                    "added",
                    None,
                    Some(json!({"options": ["host=a"]}))
                ),
                (
                    "publication",
                    "p",
                    "altered",
                    Some(json!({"via_root": false})),
                    Some(json!({"via_root": true}))
                ),
            ]
        );
    }
}
