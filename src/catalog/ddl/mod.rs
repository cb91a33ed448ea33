//! The DDL export: SQL that recreates a snapshot's objects in an empty database, what
//! `pg_dump --schema-only` prints for them, in an order where each object comes after what
//! it needs.
//!
//! The order: schemas, extensions, types (enums, then domains, ranges and composite types,
//! each after the types it names), sequences, functions and aggregates, tables (columns, defaults,
//! identity, generated columns), partitions attached, functions whose signature names a
//! relation's row type, views and materialized views (each after what it reads), constraints
//! (keys, then checks), indexes, foreign keys, triggers, sequence ownership, comments. A
//! partition's keys, indexes and foreign keys come before its parent's, which then attach
//! them instead of making their own.
//!
//! What the snapshot prints with the server's functions (view, index, constraint, trigger and
//! function definitions, defaults, types) is used as printed: the server left out the schema
//! of the names on the source's search path, so the export sets `search_path` to `public`
//! first. Function bodies are not checked while created (`check_function_bodies = false`, as
//! pg_dump sets it), so a function may name a table created later.
//!
//! Not exported, because the snapshot does not hold them: owners and privileges, row security
//! policies, operators, casts, collations, rules, foreign servers (a foreign table is named
//! in a comment), statistics objects, publications, and the comments on constraints, indexes
//! and triggers.

mod order;
pub mod quote;

use std::collections::HashSet;
use std::fmt::Write;

use super::{
    ConstraintKind, Function, RelationKind, Schema, Sequence, Snapshot, Table, TypeDef, TypeKind,
};
use order::{Index, dependency_order};
use quote::{ident, literal, qualified};

/// The SQL that recreates `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    Ddl::new(snapshot).render()
}

/// A relation with its schema's name.
#[derive(Clone, Copy)]
struct Rel<'a> {
    schema: &'a str,
    table: &'a Table,
}

impl Rel<'_> {
    fn name(&self) -> String {
        qualified(self.schema, &self.table.name)
    }
}

struct Ddl<'a> {
    snapshot: &'a Snapshot,
    out: String,
    relations: Vec<Rel<'a>>,
}

impl<'a> Ddl<'a> {
    fn new(snapshot: &'a Snapshot) -> Self {
        let relations = snapshot
            .schemas
            .iter()
            .flat_map(|s| {
                s.tables.iter().map(|table| Rel {
                    schema: &s.name,
                    table,
                })
            })
            .collect();
        Self {
            snapshot,
            out: String::new(),
            relations,
        }
    }

    fn line(&mut self, statement: impl AsRef<str>) {
        self.out.push_str(statement.as_ref());
        self.out.push('\n');
    }

    fn section(&mut self, title: &str) {
        let _ = write!(self.out, "\n-- {title}\n\n");
    }

    fn render(mut self) -> String {
        let database = self.snapshot.database.as_ref().map(|d| d.name.as_str());
        self.line(format!(
            "-- Schema of {} as pg-catalog-sync holds it",
            database.unwrap_or("a catalog")
        ));
        self.line("SET statement_timeout = 0;");
        self.line("SET client_encoding = 'UTF8';");
        self.line("SET standard_conforming_strings = on;");
        self.line("SET check_function_bodies = false;");
        self.line("SET client_min_messages = warning;");
        self.line(format!(
            "SELECT pg_catalog.set_config('search_path', {}, false);",
            literal(order::SEARCH_PATH)
        ));
        let schemas = &self.snapshot.schemas;
        self.section("Schemas and extensions");
        for s in schemas {
            // Every database starts with `public`.
            if s.name != "public" {
                self.line(format!("CREATE SCHEMA {};", ident(&s.name)));
            }
        }
        for s in schemas {
            for x in &s.extensions {
                self.line(format!(
                    "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {};",
                    ident(&x.name),
                    ident(&s.name)
                ));
            }
        }
        self.types();
        self.sequences();
        let late = self.late_functions();
        self.functions(|f| !late.contains(&(f as *const Function)));
        self.tables();
        self.functions(|f| late.contains(&(f as *const Function)));
        self.views();
        self.keys();
        self.triggers();
        self.sequence_ownership();
        self.comments();
        self.out
    }

    /// Enums first (they name nothing), then domains and composites after what they name.
    fn types(&mut self) {
        let types: Vec<(&str, &TypeDef)> = self
            .snapshot
            .schemas
            .iter()
            .flat_map(|s| s.types.iter().map(move |t| (s.name.as_str(), t)))
            .collect();
        if types.is_empty() {
            return;
        }
        self.section("Types");
        let index = Index::new(types.iter().map(|(s, t)| (*s, t.name.as_str())));
        let named = |t: &TypeDef| -> String {
            let mut text = t.base_type.clone().unwrap_or_default();
            for a in &t.attributes {
                text.push(' ');
                text.push_str(&a.data_type);
            }
            text
        };
        let by_kind = |kind: TypeKind| move |(_, t): &&(&str, &TypeDef)| t.kind == kind;
        for (schema, t) in types.iter().filter(by_kind(TypeKind::Enum)) {
            let labels: Vec<String> = t.labels.iter().map(|l| literal(l)).collect();
            self.line(format!(
                "CREATE TYPE {} AS ENUM ({});",
                qualified(schema, &t.name),
                labels.join(", ")
            ));
        }
        let order = dependency_order(types.len(), |i| index.referred(&named(types[i].1)));
        for i in order {
            let (schema, t) = types[i];
            let name = qualified(schema, &t.name);
            match t.kind {
                TypeKind::Enum => {}
                TypeKind::Range => {
                    let mut options =
                        format!("SUBTYPE = {}", t.base_type.as_deref().unwrap_or("text"));
                    if let Some(more) = &t.range_options {
                        let _ = write!(options, ", {more}");
                    }
                    self.line(format!("CREATE TYPE {name} AS RANGE ({options});"));
                }
                TypeKind::Domain => {
                    let mut sql = format!(
                        "CREATE DOMAIN {name} AS {}",
                        t.base_type.as_deref().unwrap_or("text")
                    );
                    if let Some(default) = &t.default {
                        let _ = write!(sql, " DEFAULT {default}");
                    }
                    if t.not_null {
                        sql.push_str(" NOT NULL");
                    }
                    for check in &t.checks {
                        let _ = write!(sql, " {check}");
                    }
                    sql.push(';');
                    self.line(sql);
                }
                TypeKind::Composite => {
                    let attributes: Vec<String> = t
                        .attributes
                        .iter()
                        .map(|a| format!("{} {}", ident(&a.name), a.data_type))
                        .collect();
                    self.line(format!(
                        "CREATE TYPE {name} AS ({});",
                        attributes.join(", ")
                    ));
                }
            }
        }
    }

    /// Whether `sequence` is an identity column's, which the column makes.
    fn identity_column(&self, sequence: &Sequence) -> bool {
        let Some(owner) = &sequence.owned_by else {
            return false;
        };
        self.relations.iter().any(|r| {
            r.schema == owner.schema
                && r.table.name == owner.table
                && r.table
                    .columns
                    .iter()
                    .any(|c| c.name == owner.column && c.identity.is_some())
        })
    }

    fn sequences(&mut self) {
        let mut lines = Vec::new();
        for s in &self.snapshot.schemas {
            for q in &s.sequences {
                if !self.identity_column(q) {
                    lines.push(format!(
                        "CREATE SEQUENCE {}{};",
                        qualified(&s.name, &q.name),
                        sequence_options(q)
                    ));
                }
            }
        }
        if !lines.is_empty() {
            self.section("Sequences");
            lines.into_iter().for_each(|l| self.line(l));
        }
    }

    /// The functions whose arguments or result name a relation (its row type): they can only
    /// be created once the relations are.
    fn late_functions(&self) -> HashSet<*const Function> {
        let index = Index::new(
            self.relations
                .iter()
                .map(|r| (r.schema, r.table.name.as_str())),
        );
        self.snapshot
            .schemas
            .iter()
            .flat_map(|s| &s.functions)
            .filter(|f| {
                let signature = format!("{} {}", f.arguments, f.result.as_deref().unwrap_or(""));
                !index.referred(&signature).is_empty()
            })
            .map(|f| f as *const Function)
            .collect()
    }

    /// The functions `chosen` picks, aggregates last (they name their support functions).
    fn functions(&mut self, chosen: impl Fn(&Function) -> bool) {
        let schemas = &self.snapshot.schemas;
        let functions: Vec<(&Schema, &Function)> = schemas
            .iter()
            .flat_map(|s| s.functions.iter().map(move |f| (s, f)))
            .filter(|(_, f)| chosen(f))
            .collect();
        if functions.is_empty() {
            return;
        }
        self.section("Functions");
        for aggregates in [false, true] {
            for (s, f) in functions
                .iter()
                .filter(|(_, f)| (f.kind == "aggregate") == aggregates)
            {
                match &f.definition {
                    Some(definition) => self.line(format!("{};", definition.trim_end())),
                    None => self.line(format!(
                        "-- {} {}({}): its definition is not known",
                        f.kind,
                        qualified(&s.name, &f.name),
                        f.arguments
                    )),
                }
            }
        }
    }

    fn tables(&mut self) {
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
    fn column(&self, schema: &str, table: &str, c: &super::Column) -> String {
        let mut sql = format!("{} {}", ident(&c.name), c.data_type);
        if let Some(collation) = &c.collation {
            let _ = write!(sql, " COLLATE {}", ident(collation));
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
            let sequence = self.snapshot.schemas.iter().find_map(|s| {
                s.sequences
                    .iter()
                    .find(|q| {
                        q.owned_by.as_ref().is_some_and(|o| {
                            o.schema == schema && o.table == table && o.column == c.name
                        })
                    })
                    .map(|q| (s.name.as_str(), q))
            });
            // The sequence takes the column's type.
            if let Some((s, q)) = sequence {
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
    fn views(&mut self) {
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
                    .relations
                    .iter()
                    .find(|o| o.schema == p.schema && o.table.name == p.name)
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

    /// Keys and checks, indexes, then foreign keys (which need the keys or unique indexes
    /// they reference).
    fn keys(&mut self) {
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
        for (title, lines) in [
            ("Keys and checks", [keys, checks].concat()),
            ("Indexes", indexes),
            ("Foreign keys", foreign),
        ] {
            if !lines.is_empty() {
                self.section(title);
                lines.into_iter().for_each(|l| self.line(l));
            }
        }
    }

    /// Triggers; a partition's trigger that its parent has too is the parent's clone, made
    /// by the parent's.
    fn triggers(&mut self) {
        let mut lines = Vec::new();
        for r in &self.relations {
            let parent = r.table.partition_of.as_ref().and_then(|p| {
                self.relations
                    .iter()
                    .find(|o| o.schema == p.schema && o.table.name == p.name)
            });
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
        if !lines.is_empty() {
            self.section("Triggers");
            lines.into_iter().for_each(|l| self.line(l));
        }
    }

    fn sequence_ownership(&mut self) {
        let mut lines = Vec::new();
        for s in &self.snapshot.schemas {
            for q in &s.sequences {
                if let Some(o) = &q.owned_by
                    && !self.identity_column(q)
                {
                    lines.push(format!(
                        "ALTER SEQUENCE {} OWNED BY {}.{};",
                        qualified(&s.name, &q.name),
                        qualified(&o.schema, &o.table),
                        ident(&o.column)
                    ));
                }
            }
        }
        if !lines.is_empty() {
            self.section("Sequence ownership");
            lines.into_iter().for_each(|l| self.line(l));
        }
    }

    fn comments(&mut self) {
        let mut lines = Vec::new();
        let mut comment = |what: String, text: &Option<String>| {
            if let Some(text) = text {
                lines.push(format!("COMMENT ON {what} IS {};", literal(text)));
            }
        };
        for s in &self.snapshot.schemas {
            comment(format!("SCHEMA {}", ident(&s.name)), &s.comment);
            for t in &s.types {
                let kind = match t.kind {
                    TypeKind::Domain => "DOMAIN",
                    _ => "TYPE",
                };
                comment(
                    format!("{kind} {}", qualified(&s.name, &t.name)),
                    &t.comment,
                );
            }
            for f in &s.functions {
                let kind = match f.kind.as_str() {
                    "aggregate" => "AGGREGATE",
                    "procedure" => "PROCEDURE",
                    _ => "FUNCTION",
                };
                comment(
                    format!("{kind} {}({})", qualified(&s.name, &f.name), f.arguments),
                    &f.comment,
                );
            }
        }
        for r in &self.relations {
            let t = r.table;
            let kind = match t.kind {
                RelationKind::View => "VIEW",
                RelationKind::MaterializedView => "MATERIALIZED VIEW",
                RelationKind::ForeignTable => continue,
                _ => "TABLE",
            };
            comment(format!("{kind} {}", r.name()), &t.comment);
            for c in sorted_columns(t) {
                comment(
                    format!("COLUMN {}.{}", r.name(), ident(&c.name)),
                    &c.comment,
                );
            }
        }
        if !lines.is_empty() {
            self.section("Comments");
            lines.into_iter().for_each(|l| self.line(l));
        }
    }
}

/// A table's columns in ordinal order, with their ordinals (their list order where a source
/// left them out).
fn numbered_columns(t: &Table) -> Vec<(i32, &super::Column)> {
    let mut columns: Vec<(i32, &super::Column)> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.ordinal.unwrap_or(i as i32 + 1), c))
        .collect();
    columns.sort_by_key(|(ordinal, _)| *ordinal);
    columns
}

/// A table's columns in ordinal order.
fn sorted_columns(t: &Table) -> Vec<&super::Column> {
    numbered_columns(t).into_iter().map(|(_, c)| c).collect()
}

/// A sequence's options as `CREATE SEQUENCE` takes them, each with a leading space.
fn sequence_options(q: &Sequence) -> String {
    format!(" AS {}{}", q.data_type, sequence_parameters(q))
}

/// A sequence's options but its type, each with a leading space.
fn sequence_parameters(q: &Sequence) -> String {
    format!(
        " START WITH {} INCREMENT BY {} MINVALUE {} MAXVALUE {} CACHE {}{}",
        q.start,
        q.increment,
        q.min,
        q.max,
        q.cache,
        if q.cycle { " CYCLE" } else { "" }
    )
}

#[cfg(test)]
mod tests;
