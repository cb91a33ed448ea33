//! The DDL export: SQL that recreates a snapshot's objects in an empty database, what
//! `pg_dump --schema-only` prints for them, in an order where each object comes after what
//! it needs.
//!
//! The order: schemas, extensions, collations, types (enums, then domains, ranges and
//! composite types, each after the types it names), sequences, functions and aggregates, text
//! search configurations, tables (columns, defaults, identity, generated columns), partitions
//! attached, keys and checks, functions whose signature names a relation's row type, views
//! and materialized views (each after what it reads), rules, indexes, extended statistics,
//! foreign keys, triggers, row-level security (switches and policies), sequence ownership,
//! comments, owners, privileges, default privileges, and the database-wide foreign data
//! wrappers and servers, publications and event triggers (last, so that none fires while the
//! script loads). A partition's keys, indexes and foreign keys come before its parent's, which
//! then attach them instead of making their own.
//!
//! What the snapshot prints with the server's functions (view, index, constraint, trigger and
//! function definitions, defaults, types) is used as printed: the server left out the schema
//! of the names on the source's search path, so the export sets `search_path` to `public`
//! first. Function bodies are not checked while created (`check_function_bodies = false`, as
//! pg_dump sets it), so a function may name a table created later.
//!
//! Not exported: the owners of sequences, functions and database-wide objects, user mappings,
//! foreign tables (named in a comment), and, because the snapshot does not hold them,
//! operators, casts, and the comments on constraints, indexes and triggers.

mod database_objects;
mod order;
mod privileges;
pub mod quote;
mod relations;
mod schema_objects;

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use super::{Function, RelationKind, Schema, Sequence, Snapshot, Table, TypeDef, TypeKind};
use order::{Index, dependency_order};
use quote::{ident, literal, qualified};
use relations::{Keys, sorted_columns};

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

/// A sequence with its schema's name.
type Seq<'a> = (&'a str, &'a Sequence);

struct Ddl<'a> {
    snapshot: &'a Snapshot,
    out: String,
    relations: Vec<Rel<'a>>,
    /// The relations by (schema, name).
    by_name: HashMap<(&'a str, &'a str), Rel<'a>>,
    /// The sequences by the (schema, table, column) that owns them.
    by_owner: HashMap<(&'a str, &'a str, &'a str), Seq<'a>>,
    /// The snapshot's own collations, qualified and quoted as columns name them.
    collations: HashSet<String>,
}

impl<'a> Ddl<'a> {
    fn new(snapshot: &'a Snapshot) -> Self {
        let relations: Vec<Rel<'a>> = snapshot
            .schemas
            .iter()
            .flat_map(|s| {
                s.tables.iter().map(|table| Rel {
                    schema: &s.name,
                    table,
                })
            })
            .collect();
        let by_name = relations
            .iter()
            .map(|r| ((r.schema, r.table.name.as_str()), *r))
            .collect();
        let by_owner = snapshot
            .schemas
            .iter()
            .flat_map(|s| s.sequences.iter().map(move |q| (s.name.as_str(), q)))
            .filter_map(|(s, q)| {
                let o = q.owned_by.as_ref()?;
                let key = (o.schema.as_str(), o.table.as_str(), o.column.as_str());
                Some((key, (s, q)))
            })
            .collect();
        Self {
            snapshot,
            out: String::new(),
            relations,
            by_name,
            by_owner,
            collations: schema_objects::qualified_collations(snapshot),
        }
    }

    /// The relation `schema.name`, if the snapshot holds it.
    fn relation(&self, schema: &str, name: &str) -> Option<Rel<'a>> {
        self.by_name.get(&(schema, name)).copied()
    }

    fn line(&mut self, statement: impl AsRef<str>) {
        self.out.push_str(statement.as_ref());
        self.out.push('\n');
    }

    fn section(&mut self, title: &str) {
        let _ = write!(self.out, "\n-- {title}\n\n");
    }

    /// A section of `lines`, if there are any.
    fn lines(&mut self, title: &str, lines: Vec<String>) {
        if !lines.is_empty() {
            self.section(title);
            lines.into_iter().for_each(|l| self.line(l));
        }
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
        for collation in schema_objects::collations(self.snapshot) {
            self.line(collation);
        }
        self.types();
        self.sequences();
        let late = self.late_functions();
        self.functions(|s, f| !late.contains(&(s, f.name.as_str(), f.arguments.as_str())));
        let configurations = schema_objects::text_search_configurations(self.snapshot);
        self.lines("Text search configurations", configurations);
        self.tables();
        let Keys {
            keys,
            indexes,
            foreign,
        } = self.keys();
        self.lines("Keys and checks", keys);
        self.functions(|s, f| late.contains(&(s, f.name.as_str(), f.arguments.as_str())));
        self.views();
        self.lines("Rules", schema_objects::rules(self.snapshot));
        self.lines("Indexes", indexes);
        self.lines(
            "Extended statistics",
            schema_objects::statistics(self.snapshot),
        );
        self.lines("Foreign keys", foreign);
        self.triggers();
        self.row_security();
        self.sequence_ownership();
        self.comments();
        self.lines("Owners", privileges::owners(self.snapshot));
        self.lines("Privileges", privileges::grants(self.snapshot));
        self.lines(
            "Default privileges",
            privileges::default_privileges(self.snapshot),
        );
        self.lines(
            "Database objects",
            database_objects::database_objects(self.snapshot),
        );
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
        self.relation(&owner.schema, &owner.table).is_some_and(|r| {
            r.table
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
        self.lines("Sequences", lines);
    }

    /// The functions (schema, name, arguments) whose arguments or result name a relation (its
    /// row type): they can only be created once the relations are.
    fn late_functions(&self) -> HashSet<(&'a str, &'a str, &'a str)> {
        let index = Index::new(
            self.relations
                .iter()
                .map(|r| (r.schema, r.table.name.as_str())),
        );
        self.snapshot
            .schemas
            .iter()
            .flat_map(|s| s.functions.iter().map(move |f| (s.name.as_str(), f)))
            .filter(|(_, f)| {
                let signature = format!("{} {}", f.arguments, f.result.as_deref().unwrap_or(""));
                !index.referred(&signature).is_empty()
            })
            .map(|(s, f)| (s, f.name.as_str(), f.arguments.as_str()))
            .collect()
    }

    /// The functions `chosen` picks (given each one's schema), aggregates last (they name their
    /// support functions).
    fn functions(&mut self, chosen: impl Fn(&str, &Function) -> bool) {
        let schemas = &self.snapshot.schemas;
        let functions: Vec<(&Schema, &Function)> = schemas
            .iter()
            .flat_map(|s| s.functions.iter().map(move |f| (s, f)))
            .filter(|(s, f)| chosen(&s.name, f))
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
        self.lines("Sequence ownership", lines);
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
        self.lines("Comments", lines);
    }
}

/// A sequence's options as `CREATE SEQUENCE` takes them, each with a leading space.
fn sequence_options(q: &Sequence) -> String {
    format!(" AS {}{}", q.data_type, sequence_parameters(q))
}

/// A sequence's options but its type, each with a leading space.
pub(super) fn sequence_parameters(q: &Sequence) -> String {
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
