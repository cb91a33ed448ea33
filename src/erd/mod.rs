//! Entity-relationship diagrams of a catalog's relations: tables with their columns (primary,
//! unique and foreign keys marked) as nodes, foreign keys as edges from the referencing columns
//! to the referenced ones. A [`Diagram`] is built from the model's [`Table`]s and rendered as
//! Mermaid (`erDiagram`), Graphviz dot (HTML-like labels) or SVG laid out here
//! ([`layout`], [`svg`]). Names can hold any character: every renderer escapes them for its
//! own syntax.

mod layers;
pub mod layout;
pub mod svg;
mod text;

use std::collections::HashMap;

use crate::catalog::{ConstraintKind, QualifiedName, RelationKind, Table};

pub use text::{dot, mermaid};

/// A diagram: its nodes in (schema, name) byte order, its edges, and which nodes are
/// partitions of which (both drawn).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagram {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// (parent, partition) pairs.
    pub partitions: Vec<(usize, usize)>,
    /// The node a diagram of one table's neighbourhood is about.
    pub focus: Option<usize>,
}

/// A relation, drawn as a box of its columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub schema: String,
    pub name: String,
    pub kind: RelationKind,
    /// For a partition: its parent.
    pub partition_of: Option<QualifiedName>,
    pub columns: Vec<Field>,
    /// A relation outside what was asked for (another schema's), that a foreign key of a drawn
    /// one references: only its referenced columns are known, and it is drawn without a link.
    pub outside: bool,
}

/// A column of a node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Field {
    pub name: String,
    /// As `format_type` prints it; empty for a column of a node [`Node::outside`].
    pub data_type: String,
    pub nullable: bool,
    pub primary: bool,
    pub unique: bool,
    /// Part of a foreign key of its table.
    pub foreign: bool,
    /// Referenced by a foreign key drawn.
    pub referenced: bool,
}

impl Field {
    /// The key markers: `PK`, `FK`, `UK`, comma-separated.
    pub fn markers(&self) -> Vec<&'static str> {
        let mut markers = Vec::new();
        if self.primary {
            markers.push("PK");
        }
        if self.foreign {
            markers.push("FK");
        }
        if self.unique && !self.primary {
            markers.push("UK");
        }
        markers
    }
}

/// A foreign key: from the referencing node's columns to the referenced node's.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// The constraint's name.
    pub name: String,
    pub from: usize,
    /// Indexes into the referencing node's columns, in key order.
    pub from_columns: Vec<usize>,
    pub to: usize,
    /// Indexes into the referenced node's columns, in key order.
    pub to_columns: Vec<usize>,
    /// Some referencing column is nullable: a row may reference nothing.
    pub optional: bool,
    /// The referencing columns are a primary or unique key: one row at most per referenced row.
    pub one_to_one: bool,
}

/// What to do with a foreign key to a relation outside the tables given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    /// Draw the referenced relation as a node of its own, with only the referenced columns.
    Draw,
    /// Leave the foreign key out.
    Omit,
}

impl Node {
    /// `schema.name`, as a person reads it.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    fn column(&mut self, name: &str) -> usize {
        match self.columns.iter().position(|c| c.name == name) {
            Some(i) => i,
            None => {
                self.columns.push(Field {
                    name: name.to_owned(),
                    nullable: true,
                    ..Field::default()
                });
                self.columns.len() - 1
            }
        }
    }
}

impl Diagram {
    /// The diagram of `tables` (each with its schema): a node per table, an edge per foreign
    /// key; a foreign key to a relation not given is drawn or left out as `outside` says.
    pub fn new(tables: Vec<(String, Table)>, outside: Outside) -> Self {
        let mut tables = tables;
        tables.sort_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
        tables.dedup_by(|a, b| a.0 == b.0 && a.1.name == b.1.name);
        let mut nodes: Vec<Node> = tables
            .iter()
            .map(|(schema, t)| Node {
                schema: schema.clone(),
                name: t.name.clone(),
                kind: t.kind,
                partition_of: t.partition_of.clone(),
                columns: t
                    .columns
                    .iter()
                    .map(|c| Field {
                        name: c.name.clone(),
                        data_type: c.data_type.clone(),
                        nullable: c.nullable,
                        ..Field::default()
                    })
                    .collect(),
                outside: false,
            })
            .collect();
        let mut index: HashMap<(String, String), usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| ((n.schema.clone(), n.name.clone()), i))
            .collect();
        let mut edges = Vec::new();
        for (from, (_, table)) in tables.iter().enumerate() {
            for c in &table.constraints {
                let columns: Vec<usize> = c.columns.iter().map(|n| nodes[from].column(n)).collect();
                match c.kind {
                    ConstraintKind::PrimaryKey => columns
                        .iter()
                        .for_each(|&i| nodes[from].columns[i].primary = true),
                    ConstraintKind::Unique => columns
                        .iter()
                        .for_each(|&i| nodes[from].columns[i].unique = true),
                    ConstraintKind::ForeignKey => columns
                        .iter()
                        .for_each(|&i| nodes[from].columns[i].foreign = true),
                    _ => {}
                }
            }
        }
        for (from, (_, table)) in tables.iter().enumerate() {
            for c in &table.constraints {
                let Some(target) = c
                    .references
                    .as_ref()
                    .filter(|_| c.kind == ConstraintKind::ForeignKey)
                else {
                    continue;
                };
                let key = (target.schema.clone(), target.table.clone());
                let to = match index.get(&key) {
                    Some(&to) => to,
                    None if outside == Outside::Omit => continue,
                    None => {
                        nodes.push(Node {
                            schema: target.schema.clone(),
                            name: target.table.clone(),
                            kind: RelationKind::Table,
                            partition_of: None,
                            columns: Vec::new(),
                            outside: true,
                        });
                        index.insert(key, nodes.len() - 1);
                        nodes.len() - 1
                    }
                };
                let from_columns: Vec<usize> =
                    c.columns.iter().map(|n| nodes[from].column(n)).collect();
                let to_columns: Vec<usize> =
                    target.columns.iter().map(|n| nodes[to].column(n)).collect();
                for &i in &to_columns {
                    nodes[to].columns[i].referenced = true;
                }
                let referencing = &nodes[from];
                let optional = from_columns
                    .iter()
                    .any(|&i| referencing.columns[i].nullable);
                let one_to_one = table.constraints.iter().any(|k| {
                    matches!(k.kind, ConstraintKind::PrimaryKey | ConstraintKind::Unique)
                        && !k.columns.is_empty()
                        && k.columns.iter().all(|n| c.columns.contains(n))
                });
                edges.push(Edge {
                    name: c.name.clone(),
                    from,
                    from_columns,
                    to,
                    to_columns,
                    optional,
                    one_to_one,
                });
            }
        }
        let partitions = nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let parent = n.partition_of.as_ref()?;
                let key = (parent.schema.clone(), parent.name.clone());
                Some((*index.get(&key)?, i))
            })
            .collect();
        Self {
            nodes,
            edges,
            partitions,
            focus: None,
        }
    }

    /// Marks the node of `schema.name` as the one the diagram is about.
    pub fn focus_on(&mut self, schema: &str, name: &str) {
        self.focus = self
            .nodes
            .iter()
            .position(|n| n.schema == schema && n.name == name && !n.outside);
    }

    /// How many of the nodes are relations asked for (not [`Node::outside`]).
    pub fn table_count(&self) -> usize {
        self.nodes.iter().filter(|n| !n.outside).count()
    }
}

/// Replaces what no XML document may hold (control characters but tab, newline and carriage
/// return; U+FFFE, U+FFFF) with U+FFFD, and escapes markup: text for SVG, dot's HTML-like
/// labels and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push('\u{fffd}')
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Column, Constraint, ForeignKeyTarget};

    fn column(name: &str, nullable: bool) -> Column {
        Column {
            name: name.into(),
            data_type: "integer".into(),
            nullable,
            ..Column::default()
        }
    }

    fn key(name: &str, kind: ConstraintKind, columns: &[&str]) -> Constraint {
        Constraint {
            name: name.into(),
            kind,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            definition: None,
            references: None,
            deferrable: false,
            initially_deferred: false,
        }
    }

    fn foreign(name: &str, columns: &[&str], schema: &str, table: &str, to: &[&str]) -> Constraint {
        Constraint {
            references: Some(ForeignKeyTarget {
                schema: schema.into(),
                table: table.into(),
                columns: to.iter().map(|c| c.to_string()).collect(),
                on_update: None,
                on_delete: None,
            }),
            ..key(name, ConstraintKind::ForeignKey, columns)
        }
    }

    /// `shop.customers`, `shop.orders` (referencing customers and `billing.accounts`).
    pub(crate) fn shop() -> Vec<(String, Table)> {
        let customers = Table {
            name: "customers".into(),
            columns: vec![column("id", false), column("email", true)],
            constraints: vec![
                key("customers_pkey", ConstraintKind::PrimaryKey, &["id"]),
                key("customers_email_key", ConstraintKind::Unique, &["email"]),
            ],
            ..Table::default()
        };
        let orders = Table {
            name: "orders".into(),
            columns: vec![
                column("id", false),
                column("customer_id", true),
                column("account", false),
            ],
            constraints: vec![
                key("orders_pkey", ConstraintKind::PrimaryKey, &["id"]),
                foreign(
                    "orders_customer_fkey",
                    &["customer_id"],
                    "shop",
                    "customers",
                    &["id"],
                ),
                foreign(
                    "orders_account_fkey",
                    &["account"],
                    "billing",
                    "accounts",
                    &["no"],
                ),
            ],
            ..Table::default()
        };
        vec![("shop".into(), orders), ("shop".into(), customers)]
    }

    #[test]
    fn foreign_keys_become_edges_between_their_columns() {
        let diagram = Diagram::new(shop(), Outside::Draw);
        let names: Vec<String> = diagram.nodes.iter().map(Node::qualified).collect();
        assert_eq!(names, ["shop.customers", "shop.orders", "billing.accounts"]);
        assert!(diagram.nodes[2].outside);
        assert_eq!(diagram.nodes[2].columns[0].name, "no");
        assert_eq!(diagram.edges.len(), 2);
        let to_customers = &diagram.edges[0];
        assert_eq!((to_customers.from, to_customers.to), (1, 0));
        assert_eq!(to_customers.from_columns, [1]);
        assert_eq!(to_customers.to_columns, [0]);
        assert!(to_customers.optional && !to_customers.one_to_one);
        assert!(!diagram.edges[1].optional);
        let orders = &diagram.nodes[1];
        assert_eq!(orders.columns[0].markers(), ["PK"]);
        assert_eq!(orders.columns[1].markers(), ["FK"]);
        assert_eq!(diagram.nodes[0].columns[1].markers(), ["UK"]);
        assert!(diagram.nodes[0].columns[0].referenced);

        let diagram = Diagram::new(shop(), Outside::Omit);
        assert_eq!(diagram.nodes.len(), 2);
        assert_eq!(diagram.edges.len(), 1);
        assert_eq!(diagram.table_count(), 2);
    }

    #[test]
    fn partitions_are_tied_to_their_parents() {
        let parent = Table {
            name: "events".into(),
            kind: RelationKind::PartitionedTable,
            ..Table::default()
        };
        let partition = Table {
            name: "events_2026".into(),
            partition_of: Some(QualifiedName {
                schema: "s".into(),
                name: "events".into(),
            }),
            ..Table::default()
        };
        let mut diagram = Diagram::new(
            vec![("s".into(), partition), ("s".into(), parent)],
            Outside::Omit,
        );
        assert_eq!(diagram.partitions, [(0, 1)]);
        assert!(diagram.edges.is_empty());
        let text = super::mermaid(&diagram);
        assert!(text.contains("t0[\"s.events (partitioned)\"]"), "{text}");
        assert!(
            text.contains("    t1 }|..|| t0 : \"partition of\"\n"),
            "{text}"
        );
        assert!(super::dot(&diagram).contains("    t1 -> t0 [style=dotted"));
        diagram.focus_on("s", "events_2026");
        assert_eq!(diagram.focus, Some(1));
        let svg = super::svg::render(&diagram, Some("s"), |_| None);
        assert_eq!(svg.matches("<path class=\"erd-partition\"").count(), 1);
        assert!(svg.contains("class=\"erd-table erd-focus\" data-table=\"s.events_2026\""));
    }

    #[test]
    fn xml_escaping_leaves_no_markup_and_no_control_characters() {
        assert_eq!(
            xml_escape("a<b>&\"c'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;c&#39;\u{fffd} "
        );
    }
}
