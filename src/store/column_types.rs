//! The dictionary of column types (`column_types`): a column's type (as `format_type` prints
//! it, with the type's schema and name) is stored once for every catalog, and a column list
//! holds its columns' keys. A 10,000-table catalog has 200,000 columns of a handful of types.
//!
//! A key is the type's own digest ([`key`]), the same in every catalog and snapshot, so that
//! writers know it without asking the store and the change history compares lists as whole
//! rows. The migration that made the dictionary computes keys the same way in SQL
//! (`column_type_key`); a test compares the two.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use sha2::Digest;
use sqlx::PgConnection;
use uuid::Uuid;

use super::Tx;
use crate::catalog::Column;

/// The key of a column type: the first 16 bytes of the SHA-256 of its three parts, each as
/// its length in characters, a colon and the value (a dash for none), separated by bars.
pub fn key(data_type: &str, type_schema: Option<&str>, type_name: Option<&str>) -> Uuid {
    let mut hasher = sha2::Sha256::new();
    for (i, value) in [Some(data_type), type_schema, type_name]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            hasher.update("|");
        }
        match value {
            Some(v) => {
                hasher.update(v.chars().count().to_string());
                hasher.update(":");
                hasher.update(v);
            }
            None => hasher.update("-"),
        }
    }
    let digest = hasher.finalize();
    Uuid::from_bytes(digest[..16].try_into().expect("a SHA-256 has 32 bytes"))
}

/// The column types a write meets and their keys, gathered as relations come ([`Self::learn`]).
/// Per type name: each (schema, name) it goes with, and its key; names are looked up without
/// building a key to look them up with, and a catalog has few types, so the lists are short.
#[derive(Debug, Default)]
pub struct ColumnTypes {
    keys: HashMap<String, Vec<SchemaNameKey>>,
}

/// A type's schema and name, and its key.
type SchemaNameKey = (Option<String>, Option<String>, Uuid);

impl ColumnTypes {
    /// Learns the types of `columns`.
    pub fn learn<'a>(&mut self, columns: impl IntoIterator<Item = &'a Column>) {
        for c in columns {
            let (schema, name) = (c.type_schema.as_deref(), c.type_name.as_deref());
            let same = match self.keys.get_mut(c.data_type.as_str()) {
                Some(same) => same,
                None => self.keys.entry(c.data_type.clone()).or_default(),
            };
            if !same
                .iter()
                .any(|(s, n, _)| s.as_deref() == schema && n.as_deref() == name)
            {
                let key = key(&c.data_type, schema, name);
                same.push((schema.map(str::to_owned), name.map(str::to_owned), key));
            }
        }
    }

    /// The key of `column`'s type (computed here when its type was not learnt).
    pub fn key_of(&self, column: &Column) -> Uuid {
        let (schema, name) = (column.type_schema.as_deref(), column.type_name.as_deref());
        self.keys
            .get(column.data_type.as_str())
            .and_then(|same| {
                same.iter()
                    .find(|(s, n, _)| s.as_deref() == schema && n.as_deref() == name)
            })
            .map(|(.., key)| *key)
            .unwrap_or_else(|| key(&column.data_type, schema, name))
    }

    /// The dictionary's rows for the types learnt, to insert, in key order: two writes that
    /// insert the same new types then take their keys' locks in the same order, and cannot
    /// deadlock.
    pub fn rows(&self) -> TypeRows {
        let mut types: Vec<_> = self
            .keys
            .iter()
            .flat_map(|(data_type, same)| same.iter().map(move |(s, n, k)| (*k, data_type, s, n)))
            .collect();
        types.sort_unstable_by_key(|&(key, ..)| key);
        let mut rows = TypeRows::default();
        for (key, data_type, schema, name) in types {
            rows.keys.push(key);
            rows.data_types.push(data_type.clone());
            rows.type_schemas.push(schema.clone());
            rows.type_names.push(name.clone());
        }
        rows
    }
}

/// Rows of `column_types`, as parallel arrays.
#[derive(Debug, Default)]
pub struct TypeRows {
    pub keys: Vec<Uuid>,
    pub data_types: Vec<String>,
    pub type_schemas: Vec<Option<String>>,
    pub type_names: Vec<Option<String>>,
}

/// Adds the types the dictionary does not hold yet. Inserting a type no one has stored before
/// locks its key until `tx` ends, which only another write of the same new type waits for.
pub async fn insert(tx: &mut Tx<'_>, rows: &TypeRows) -> sqlx::Result<()> {
    if rows.keys.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        r#"INSERT INTO column_types (key, data_type, type_schema, type_name)
           SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[])
           ON CONFLICT (key) DO NOTHING"#,
        &rows.keys,
        &rows.data_types,
        &rows.type_schemas as &[Option<String>],
        &rows.type_names as &[Option<String>],
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A column type as the dictionary holds it.
#[derive(Debug, PartialEq, Eq)]
pub struct Named {
    pub data_type: String,
    pub type_schema: Option<String>,
    pub type_name: Option<String>,
}

/// Every type this process has read, by key. Entries never change and a key is its type's own
/// digest, the same in every store, so a type once read stays for good; there are few.
static NAMED: LazyLock<RwLock<HashMap<Uuid, Arc<Named>>>> = LazyLock::new(Default::default);

/// The types of `keys`, from this process's memory, where a type once read stays, and the ones
/// it does not know yet in one query: a table detail then costs the store no join.
pub async fn named(
    conn: &mut PgConnection,
    keys: impl Iterator<Item = Uuid>,
) -> sqlx::Result<HashMap<Uuid, Arc<Named>>> {
    let mut found = HashMap::new();
    let mut missing = Vec::new();
    {
        let known = NAMED
            .read()
            .expect("the type names' lock is never poisoned");
        for key in keys {
            if found.contains_key(&key) || missing.contains(&key) {
                continue;
            }
            match known.get(&key) {
                Some(named) => {
                    found.insert(key, named.clone());
                }
                None => missing.push(key),
            }
        }
    }
    if missing.is_empty() {
        return Ok(found);
    }
    let rows = sqlx::query!(
        r#"SELECT key, data_type, type_schema, type_name FROM column_types
           WHERE key = ANY($1)"#,
        &missing
    )
    .fetch_all(conn)
    .await?;
    let mut known = NAMED
        .write()
        .expect("the type names' lock is never poisoned");
    for row in rows {
        let named = known
            .entry(row.key)
            .or_insert_with(|| {
                Arc::new(Named {
                    data_type: row.data_type,
                    type_schema: row.type_schema,
                    type_name: row.type_name,
                })
            })
            .clone();
        found.insert(row.key, named);
    }
    Ok(found)
}
