//! What a relation's detail shows of other relations: its partitions and the views that read
//! it. Both come from the other relations' rows, so they are known for the whole catalog
//! before its relations are: a read gathers them first, with one small query each.

use std::collections::HashMap;

use serde::Serialize;

use super::{QualifiedName, Snapshot};

/// A partition as its parent's detail shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    pub schema: String,
    pub name: String,
    pub partition_bound: Option<String>,
}

/// A view that reads a relation, as the relation's detail shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Dependent {
    pub schema: String,
    pub name: String,
}

/// Every relation's partitions and dependent views, by schema and name. Once
/// [`finished`](Links::finish), both lists are sorted and free of duplicates.
#[derive(Debug, Default)]
pub struct Links {
    partitions: HashMap<String, HashMap<String, Vec<Partition>>>,
    dependents: HashMap<String, HashMap<String, Vec<Dependent>>>,
}

impl Links {
    /// The links of a whole snapshot.
    pub fn of(snapshot: &Snapshot) -> Self {
        let mut links = Links::default();
        for s in &snapshot.schemas {
            for t in &s.tables {
                if let Some(parent) = &t.partition_of {
                    links.add_partition(
                        parent,
                        Partition {
                            schema: s.name.clone(),
                            name: t.name.clone(),
                            partition_bound: t.partition_bound.clone(),
                        },
                    );
                }
                for target in &t.depends_on {
                    let target = QualifiedName {
                        schema: target.schema.clone(),
                        name: target.name.clone(),
                    };
                    links.add_dependent(
                        &target,
                        Dependent {
                            schema: s.name.clone(),
                            name: t.name.clone(),
                        },
                    );
                }
            }
        }
        links.finish()
    }

    pub fn add_partition(&mut self, parent: &QualifiedName, partition: Partition) {
        entry(&mut self.partitions, parent).push(partition);
    }

    pub fn add_dependent(&mut self, target: &QualifiedName, view: Dependent) {
        entry(&mut self.dependents, target).push(view);
    }

    /// Sorts both lists and drops duplicates.
    pub fn finish(mut self) -> Self {
        for partitions in self.partitions.values_mut().flat_map(|m| m.values_mut()) {
            partitions.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
        }
        for dependents in self.dependents.values_mut().flat_map(|m| m.values_mut()) {
            dependents.sort();
            dependents.dedup();
        }
        self
    }

    pub fn partitions(&self, schema: &str, name: &str) -> &[Partition] {
        lookup(&self.partitions, schema, name)
    }

    pub fn dependents(&self, schema: &str, name: &str) -> &[Dependent] {
        lookup(&self.dependents, schema, name)
    }

    /// Feeds `out` what the detail of `schema.name` shows of other relations, so that a
    /// relation whose partitions or dependent views change is written again.
    pub fn digest_into(&self, schema: &str, name: &str, out: &mut Vec<u8>) {
        let mut part = |value: Option<&str>| match value {
            Some(v) => {
                out.extend_from_slice(&(v.len() as u32).to_be_bytes());
                out.extend_from_slice(v.as_bytes());
            }
            None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
        };
        for p in self.partitions(schema, name) {
            [
                Some(&*p.schema),
                Some(&*p.name),
                p.partition_bound.as_deref(),
            ]
            .into_iter()
            .for_each(&mut part);
        }
        part(None);
        for d in self.dependents(schema, name) {
            [Some(&*d.schema), Some(&*d.name)]
                .into_iter()
                .for_each(&mut part);
        }
    }
}

fn entry<'a, T>(
    map: &'a mut HashMap<String, HashMap<String, Vec<T>>>,
    of: &QualifiedName,
) -> &'a mut Vec<T> {
    map.entry(of.schema.clone())
        .or_default()
        .entry(of.name.clone())
        .or_default()
}

fn lookup<'a, T>(
    map: &'a HashMap<String, HashMap<String, Vec<T>>>,
    schema: &str,
    name: &str,
) -> &'a [T] {
    map.get(schema)
        .and_then(|m| m.get(name))
        .map_or(&[], Vec::as_slice)
}
