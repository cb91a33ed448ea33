//! The relations' part of the export: tables with their columns, partitions, views, keys,
//! indexes and triggers.

use std::collections::HashSet;
use std::fmt::Write;

use super::order::{Index, dependency_order};
use super::privileges::role;
use super::quote::{ident, qualified};
use super::{Ddl, Rel, sequence_parameters};
use crate::catalog::{Column, ConstraintKind, RelationKind, Table};

impl<'a> Ddl<'a> {
    pub(super) fn tables(&mut self) {
        let tables: Vec<Rel<'a>> = self
            .relations
            .iter()
            .copied()
            .filter(|r| {
                matches!(
                    r.table.kind,
                    RelationKind::Table
                        | RelationKind::PartitionedTable
                        | RelationKind::ForeignTable
                )
            })
            .collect();
        if tables.is_empty() {
            return;
        }
        self.section("Tables");
        for r in &tables {
            let t = r.table;
            if t.kind == RelationKind::ForeignTable {
                self.line(format!(
                    "-- foreign table {}: its server is not part of the snapshot",
                    r.name()
                ));
                continue;
            }
            // A column's position is kept: where the source's columns skip one (a dropped
            // column's), a stand-in takes it and is dropped at once, as pg_dump's binary
            // upgrade mode does.
            let mut columns = Vec::new();
            let mut dropped = Vec::new();
            let mut next = 1;
            for (ordinal, c) in numbered_columns(t) {
                while next < ordinal {
                    let stand_in = ident(&format!("pg_catalog_sync_dropped_{next}"));
                    columns.push(format!("    {stand_in} integer"));
                    dropped.push(format!("DROP COLUMN {stand_in}"));
                    next += 1;
                }
                columns.push(format!("    {}", self.column(r.schema, &t.name, c)));
                next = ordinal + 1;
            }
            let mut sql = format!(
                "CREATE {}TABLE {} (\n{}\n)",
                if t.unlogged { "UNLOGGED " } else { "" },
                r.name(),
                columns.join(",\n")
            );
            if let Some(key) = &t.partition_key {
                let _ = write!(sql, " PARTITION BY {key}");
            }
            sql.push(';');
            self.line(sql);
            if !dropped.is_empty() {
                self.line(format!("ALTER TABLE {} {};", r.name(), dropped.join(", ")));
            }
            if t.rls_enabled {
                self.line(format!(
                    "ALTER TABLE {} ENABLE ROW LEVEL SECURITY;",
                    r.name()
                ));
            }
        }
        for r in &tables {
            if let (Some(parent), Some(bound)) = (&r.table.partition_of, &r.table.partition_bound) {
                self.line(format!(
                    "ALTER TABLE {} ATTACH PARTITION {} {bound};",
                    qualified(&parent.schema, &parent.name),
                    r.name()
                ));
            }
        }
    }

    /// A column's definition in its table's `CREATE TABLE`.
    fn column(&self, schema: &str, table: &str, c: &Column) -> String {
        let mut sql = format!("{} {}", ident(&c.name), c.data_type);
        if let Some(collation) = &c.collation {
            // A collation of the snapshot's schemas is named qualified (and quoted) already.
            let collation = match self.collations.contains(collation.as_str()) {
                true => collation.clone(),
                false => ident(collation),
            };
            let _ = write!(sql, " COLLATE {collation}");
        }
        if let Some(expression) = &c.generated {
            let _ = write!(sql, " GENERATED ALWAYS AS ({expression}) STORED");
        }
        if let Some(default) = &c.default {
            let _ = write!(sql, " DEFAULT {default}");
        }
        if !c.nullable && c.identity.is_none() {
            sql.push_str(" NOT NULL");
        }
        if let Some(identity) = &c.identity {
            let kind = match identity.as_str() {
                "always" => "ALWAYS",
                _ => "BY DEFAULT",
            };
            let _ = write!(sql, " GENERATED {kind} AS IDENTITY");
            // The sequence takes the column's type.
            if let Some(&(s, q)) = self.by_owner.get(&(schema, table, c.name.as_str())) {
                let _ = write!(
                    sql,
                    " (SEQUENCE NAME {}{})",
                    qualified(s, &q.name),
                    sequence_parameters(q)
                );
            }
        }
        sql
    }

    /// Views and materialized views, each after the relations it reads.
    pub(super) fn views(&mut self) {
        let views: Vec<Rel<'a>> = self
            .relations
            .iter()
            .copied()
            .filter(|r| {
                matches!(
                    r.table.kind,
                    RelationKind::View | RelationKind::MaterializedView
                )
            })
            .collect();
        if views.is_empty() {
            return;
        }
        self.section("Views");
        let index = Index::new(views.iter().map(|r| (r.schema, r.table.name.as_str())));
        let order = dependency_order(views.len(), |i| {
            views[i]
                .table
                .depends_on
                .iter()
                .filter_map(|d| {
                    index
                        .referred(&qualified(&d.schema, &d.name))
                        .first()
                        .copied()
                })
                .collect()
        });
        for i in order {
            let r = views[i];
            let definition = r.table.definition.as_deref().unwrap_or("");
            let definition = definition.trim_end().trim_end_matches(';');
            let sql = match r.table.kind {
                RelationKind::MaterializedView => format!(
                    "CREATE MATERIALIZED VIEW {} AS\n{definition}\n  WITH NO DATA;",
                    r.name()
                ),
                _ => format!("CREATE VIEW {} AS\n{definition};", r.name()),
            };
            self.line(sql);
        }
    }

    /// The relations, partitions before their parents (deepest first): a parent's key, index
    /// or foreign key then attaches its partitions' instead of making new ones.
    fn partitions_first(&self) -> Vec<Rel<'a>> {
        let depth = |r: &Rel<'_>| {
            let mut depth = 0;
            let mut parent = r.table.partition_of.as_ref();
            while let Some(p) = parent {
                depth += 1;
                parent = self
                    .relation(&p.schema, &p.name)
                    .and_then(|o| o.table.partition_of.as_ref());
                if depth > 32 {
                    break;
                }
            }
            depth
        };
        let mut relations = self.relations.clone();
        relations.sort_by_key(|r| std::cmp::Reverse(depth(r)));
        relations
    }

    /// The keys and checks, the indexes and the foreign keys of the relations. Keys come right
    /// after the tables: a view that groups by a key and selects the key's table's other
    /// columns needs it. Indexes come after the views (a materialized view has some), foreign
    /// keys last (they need the keys or unique indexes they reference).
    pub(super) fn keys(&self) -> Keys {
        let relations = self.partitions_first();
        let mut keys = Vec::new();
        let mut checks = Vec::new();
        let mut indexes = Vec::new();
        let mut foreign = Vec::new();
        for r in &relations {
            let t = r.table;
            for k in &t.constraints {
                let Some(definition) = &k.definition else {
                    continue;
                };
                let sql = format!(
                    "ALTER TABLE {} ADD CONSTRAINT {} {definition};",
                    r.name(),
                    ident(&k.name)
                );
                match k.kind {
                    ConstraintKind::PrimaryKey
                    | ConstraintKind::Unique
                    | ConstraintKind::Exclusion => keys.push(sql),
                    ConstraintKind::Check => checks.push(sql),
                    ConstraintKind::ForeignKey => foreign.push(sql),
                }
            }
            // A key's index is made by its constraint.
            let constraint_indexes: HashSet<&str> = t
                .constraints
                .iter()
                .filter(|k| k.kind != ConstraintKind::Check && k.kind != ConstraintKind::ForeignKey)
                .map(|k| k.name.as_str())
                .collect();
            for i in &t.indexes {
                if constraint_indexes.contains(i.name.as_str()) {
                    continue;
                }
                if let Some(definition) = &i.definition {
                    indexes.push(format!("{definition};"));
                }
            }
        }
        Keys {
            keys: [keys, checks].concat(),
            indexes,
            foreign,
        }
    }

    /// Triggers; a partition's trigger that its parent has too is the parent's clone, made
    /// by the parent's.
    pub(super) fn triggers(&mut self) {
        let mut lines = Vec::new();
        for r in &self.relations {
            let parent =
                (r.table.partition_of.as_ref()).and_then(|p| self.relation(&p.schema, &p.name));
            for g in &r.table.triggers {
                let cloned =
                    parent.is_some_and(|p| p.table.triggers.iter().any(|pg| pg.name == g.name));
                if cloned {
                    continue;
                }
                lines.push(format!("{};", g.definition.trim_end()));
                if !g.enabled {
                    lines.push(format!(
                        "ALTER TABLE {} DISABLE TRIGGER {};",
                        r.name(),
                        ident(&g.name)
                    ));
                }
            }
        }
        self.lines("Triggers", lines);
    }

    /// Each relation's row-level security switches and policies. The roles a policy applies
    /// to must exist where the export is loaded, as with pg_dump's output.
    pub(super) fn row_security(&mut self) {
        let mut lines = Vec::new();
        for r in &self.relations {
            let t = r.table;
            if t.rls_enabled {
                lines.push(format!(
                    "ALTER TABLE {} ENABLE ROW LEVEL SECURITY;",
                    r.name()
                ));
            }
            if t.rls_forced {
                lines.push(format!(
                    "ALTER TABLE {} FORCE ROW LEVEL SECURITY;",
                    r.name()
                ));
            }
            for p in &t.policies {
                let roles: Vec<String> = p.roles.iter().map(|r| role(r)).collect();
                let mut policy = format!(
                    "CREATE POLICY {} ON {} AS {} FOR {} TO {}",
                    ident(&p.name),
                    r.name(),
                    p.kind().to_uppercase(),
                    p.command,
                    roles.join(", ")
                );
                if let Some(using) = &p.using {
                    let _ = write!(policy, " USING ({using})");
                }
                if let Some(check) = &p.with_check {
                    let _ = write!(policy, " WITH CHECK ({check})");
                }
                lines.push(format!("{policy};"));
            }
        }
        self.lines("Row security", lines);
    }
}

/// The statements of [`Ddl::keys`], by section.
pub(super) struct Keys {
    pub keys: Vec<String>,
    pub indexes: Vec<String>,
    pub foreign: Vec<String>,
}

/// A table's columns in ordinal order, with their ordinals (their list order where a source
/// left them out).
pub(super) fn numbered_columns(t: &Table) -> Vec<(i32, &Column)> {
    let mut columns: Vec<(i32, &Column)> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.ordinal.unwrap_or(i as i32 + 1), c))
        .collect();
    columns.sort_by_key(|(ordinal, _)| *ordinal);
    columns
}

/// A table's columns in ordinal order.
pub(super) fn sorted_columns(t: &Table) -> Vec<&Column> {
    numbered_columns(t).into_iter().map(|(_, c)| c).collect()
}
