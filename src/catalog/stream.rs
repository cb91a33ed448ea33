//! A catalog as a read hands it to the writer: a [`Head`], the relations in batches, and an
//! [`End`], one [`Piece`] at a time through a bounded channel, so that neither side holds more
//! than a few batches of the catalog at once.

use super::{Access, DatabaseInfo, DatabaseObject, Links, Schema, Snapshot, Table};

/// How many relations a batch holds at most unless configured otherwise
/// (`SYNC_BATCH_RELATIONS`).
pub const BATCH_RELATIONS: usize = 2_500;

/// One piece of a catalog read, in the order [`Head`], batches of relations, [`End`].
#[derive(Debug)]
pub enum Piece {
    Head(Head),
    Relations(Vec<Relation>),
    End(End),
}

/// Everything but the relations, and what the relations' details show of each other.
#[derive(Debug)]
pub struct Head {
    /// The schemas, with their types, sequences and functions; their `tables` are empty.
    pub schemas: Vec<Schema>,
    /// How many relations the batches hold in all.
    pub relations: u64,
    pub links: Links,
}

/// A relation with the name of its schema.
#[derive(Debug)]
pub struct Relation {
    pub schema: String,
    pub table: Table,
}

/// What a read knows last: the database's facts, and the probe of the catalog state it read
/// (where the source has one).
#[derive(Debug, Default)]
pub struct End {
    pub database: Option<DatabaseInfo>,
    pub probe: Option<String>,
    /// Roles and default privileges, where the source reads them.
    pub access: Option<Access>,
    /// Publications, event triggers, foreign data wrappers and servers.
    pub objects: Vec<DatabaseObject>,
}

impl Snapshot {
    /// The snapshot as pieces: a head, batches of at most `size` relations, and an end with
    /// `probe`.
    pub fn into_pieces(self, probe: Option<String>, size: usize) -> Vec<Piece> {
        let links = Links::of(&self);
        let relations = self.schemas.iter().map(|s| s.tables.len() as u64).sum();
        let mut batches = vec![];
        let mut batch = Vec::new();
        let mut schemas = self.schemas;
        for s in &mut schemas {
            for table in std::mem::take(&mut s.tables) {
                batch.push(Relation {
                    schema: s.name.clone(),
                    table,
                });
                if batch.len() >= size {
                    batches.push(Piece::Relations(std::mem::take(&mut batch)));
                }
            }
        }
        if !batch.is_empty() {
            batches.push(Piece::Relations(batch));
        }
        let head = Piece::Head(Head {
            schemas,
            relations,
            links,
        });
        let end = Piece::End(End {
            database: self.database,
            probe,
            access: self.access,
            objects: self.objects,
        });
        std::iter::once(head)
            .chain(batches)
            .chain(std::iter::once(end))
            .collect()
    }
}

impl Snapshot {
    /// Gathers pieces back into one snapshot, for what must answer a whole document (a
    /// metadata service). Relations whose schema no head named are left out.
    pub fn from_pieces(pieces: impl IntoIterator<Item = Piece>) -> Snapshot {
        let mut snapshot = Snapshot::default();
        let mut positions = std::collections::HashMap::new();
        for piece in pieces {
            match piece {
                Piece::Head(head) => {
                    for (i, schema) in head.schemas.iter().enumerate() {
                        positions.insert(schema.name.clone(), i);
                    }
                    snapshot.schemas = head.schemas;
                }
                Piece::Relations(batch) => {
                    for Relation { schema, table } in batch {
                        if let Some(&i) = positions.get(&schema) {
                            snapshot.schemas[i].tables.push(table);
                        }
                    }
                }
                Piece::End(end) => {
                    snapshot.database = end.database;
                    snapshot.access = end.access;
                    snapshot.objects = end.objects;
                }
            }
        }
        snapshot
    }
}
