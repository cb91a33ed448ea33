//! Counts of what a snapshot holds: the schema author's own objects, as the lists show them.

use serde::{Deserialize, Serialize};

use super::{Schema, Snapshot, Table};

/// Counts of what a snapshot holds, kept with each sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStats {
    pub schemas: u64,
    pub tables: u64,
    pub columns: u64,
    pub constraints: u64,
    pub indexes: u64,
    pub types: u64,
    pub sequences: u64,
    pub functions: u64,
    pub triggers: u64,
}

impl SnapshotStats {
    /// Counts `schema`'s own objects, not its extensions' (its relations are counted one by
    /// one).
    pub fn add_schema(&mut self, schema: &Schema) {
        self.schemas += 1;
        self.types += schema
            .types
            .iter()
            .filter(|t| t.extension.is_none())
            .count() as u64;
        self.sequences += schema.sequences.len() as u64;
        self.functions += schema
            .functions
            .iter()
            .filter(|f| f.extension.is_none())
            .count() as u64;
    }

    /// Counts a relation and its objects, unless an extension owns it.
    pub fn add_relation(&mut self, table: &Table) {
        if table.extension.is_some() {
            return;
        }
        self.tables += 1;
        self.columns += table.columns.len() as u64;
        self.constraints += table.constraints.len() as u64;
        self.indexes += table.indexes.len() as u64;
        self.triggers += table.triggers.len() as u64;
    }
}

impl Snapshot {
    pub fn stats(&self) -> SnapshotStats {
        let mut stats = SnapshotStats::default();
        for s in &self.schemas {
            stats.add_schema(s);
            s.tables.iter().for_each(|t| stats.add_relation(t));
        }
        stats
    }
}
