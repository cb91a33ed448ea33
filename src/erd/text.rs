//! The text renderings of a [`Diagram`]: Mermaid's `erDiagram` and Graphviz dot. Nodes are
//! named `t0`, `t1`, ... in both; names only appear in quoted labels, escaped.

use std::fmt::Write;

use super::{Diagram, Edge, Field, Node, xml_escape};
use crate::catalog::RelationKind;

/// Mermaid's `erDiagram`: an entity per node (aliased with its qualified name), an attribute per
/// column, a relationship per foreign key, labelled with the constraint's name.
///
/// Mermaid's attribute types and names are words of letters, digits, `_`, `-`, `(`, `)`, `[`
/// and `]`: other characters become `_`, and a column whose name does not survive that
/// carries its real name in the attribute's comment.
pub fn mermaid(diagram: &Diagram) -> String {
    let mut out = String::from("erDiagram\n");
    for (i, node) in diagram.nodes.iter().enumerate() {
        let _ = writeln!(out, "    t{i}[\"{}\"] {{", mermaid_text(&node_title(node)));
        for field in &node.columns {
            let data_type = match field.data_type.as_str() {
                "" => "unknown",
                t => t,
            };
            let _ = write!(
                out,
                "        {} {}",
                mermaid_word(data_type),
                mermaid_word(&field.name)
            );
            let markers = field.markers();
            if !markers.is_empty() {
                let _ = write!(out, " {}", markers.join(", "));
            }
            if mermaid_word(&field.name) != field.name {
                let _ = write!(out, " \"{}\"", mermaid_text(&field.name));
            }
            out.push('\n');
        }
        out.push_str("    }\n");
    }
    for edge in &diagram.edges {
        let many = if edge.one_to_one { "|o" } else { "}o" };
        let one = if edge.optional { "o|" } else { "||" };
        let _ = writeln!(
            out,
            "    t{} {many}--{one} t{} : \"{}\"",
            edge.from,
            edge.to,
            mermaid_text(&edge_label(diagram, edge))
        );
    }
    for &(parent, partition) in &diagram.partitions {
        let _ = writeln!(out, "    t{partition} }}|..|| t{parent} : \"partition of\"");
    }
    out
}

/// Graphviz dot: a node per relation with an HTML-like table label (a port per column on each
/// side), an edge per foreign key from the referencing columns to the referenced ones.
pub fn dot(diagram: &Diagram) -> String {
    let mut out = String::from(
        "digraph erd {\n    graph [rankdir=LR, nodesep=0.4, ranksep=1.2];\n    \
         node [shape=plaintext, fontname=\"Helvetica\", fontsize=11];\n    \
         edge [arrowhead=normal, arrowtail=crow, dir=both, fontsize=9, color=\"#64748b\"];\n",
    );
    for (i, node) in diagram.nodes.iter().enumerate() {
        let _ = write!(
            out,
            "    t{i} [label=<<TABLE BORDER=\"0\" CELLBORDER=\"1\" CELLSPACING=\"0\" \
             CELLPADDING=\"3\"><TR><TD COLSPAN=\"3\" BGCOLOR=\"{}\"><B>{}</B></TD></TR>",
            if node.outside { "#eef0f4" } else { "#dbe4f3" },
            xml_escape(&node_title(node))
        );
        for (c, field) in node.columns.iter().enumerate() {
            let _ = write!(
                out,
                "<TR><TD PORT=\"c{c}w\">{}</TD><TD ALIGN=\"LEFT\">{}</TD>\
                 <TD ALIGN=\"LEFT\" PORT=\"c{c}e\">{}</TD></TR>",
                field.markers().join(" "),
                xml_escape(&field.name),
                xml_escape(&field_type(field))
            );
        }
        out.push_str("</TABLE>>];\n");
    }
    for edge in &diagram.edges {
        let from = edge.from_columns.first().copied().unwrap_or(0);
        let to = edge.to_columns.first().copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "    t{}:c{from}e:e -> t{}:c{to}w:w [label=\"{}\"{}];",
            edge.from,
            edge.to,
            dot_string(&edge_label(diagram, edge)),
            if edge.optional { ", style=dashed" } else { "" }
        );
    }
    for &(parent, partition) in &diagram.partitions {
        let _ = writeln!(
            out,
            "    t{partition} -> t{parent} [style=dotted, arrowhead=onormal, arrowtail=none];"
        );
    }
    out.push_str("}\n");
    out
}

/// A node's title: its qualified name, and what kind of relation it is when not a table.
pub(super) fn node_title(node: &Node) -> String {
    format!("{}{}", node.qualified(), kind_note(node))
}

/// What kind of relation a node is, when not a plain table: ` (partitioned)`, ...
pub(super) fn kind_note(node: &Node) -> &'static str {
    match node.kind {
        RelationKind::PartitionedTable => " (partitioned)",
        RelationKind::ForeignTable => " (foreign)",
        _ if node.partition_of.is_some() => " (partition)",
        _ => "",
    }
}

/// A column's type as shown, with `NOT NULL` spelt as in SQL when it applies.
pub(super) fn field_type(field: &Field) -> String {
    match (field.data_type.as_str(), field.nullable) {
        ("", _) => String::new(),
        (t, true) => t.to_owned(),
        (t, false) => format!("{t} NOT NULL"),
    }
}

/// An edge's label: the constraint's name, with the columns when they are not the only key.
fn edge_label(diagram: &Diagram, edge: &Edge) -> String {
    let names = |node: usize, columns: &[usize]| {
        columns
            .iter()
            .map(|&c| diagram.nodes[node].columns[c].name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{} ({} → {})",
        edge.name,
        names(edge.from, &edge.from_columns),
        names(edge.to, &edge.to_columns)
    )
}

/// A word Mermaid accepts as an attribute's type or name.
fn mermaid_word(s: &str) -> String {
    let mut word: String = s
        .chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '-' | '(' | ')' | '[' | ']' => c,
            _ => '_',
        })
        .collect();
    // Key markers are keywords where a type or a name would stand.
    if !word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        || ["PK", "FK", "UK"].contains(&word.as_str())
    {
        word.insert(0, '_');
    }
    word
}

/// Text inside a Mermaid quoted string: quotes and markup as Mermaid's entity codes (`#quot;`),
/// control characters as spaces.
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text inside a dot quoted string: backslashes (which would start dot's escapes such as `\n`)
/// and quotes escaped, control characters as spaces.
fn dot_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erd::Outside;
    use crate::erd::tests::shop;

    #[test]
    fn mermaid_names_entities_by_number_and_quotes_names() {
        let text = mermaid(&Diagram::new(shop(), Outside::Draw));
        assert!(
            text.starts_with("erDiagram\n    t0[\"shop.customers\"] {\n"),
            "{text}"
        );
        assert!(text.contains("        integer id PK\n"), "{text}");
        assert!(text.contains("        integer email UK\n"), "{text}");
        assert!(text.contains("        integer customer_id FK\n"), "{text}");
        assert!(
            text.contains("    t1 }o--o| t0 : \"orders_customer_fkey (customer_id → id)\"\n"),
            "{text}"
        );
        assert!(
            text.contains("    t1 }o--|| t2 : \"orders_account_fkey"),
            "{text}"
        );
    }

    #[test]
    fn hostile_names_stay_inside_their_quotes() {
        let mut tables = shop();
        tables[0].1.name = "a\"b\n}<x>#".into();
        tables[0].1.columns[1].name = "weird \"col\" \\".into();
        tables[0].1.constraints[1].columns = vec!["weird \"col\" \\".into()];
        let diagram = Diagram::new(tables, Outside::Draw);
        let text = mermaid(&diagram);
        assert!(
            text.contains("t0[\"shop.a#quot;b }#lt;x#gt;#35;\"] {"),
            "{text}"
        );
        assert!(
            text.contains("integer weird__col___ FK \"weird #quot;col#quot; \\\""),
            "{text}"
        );
        let graph = dot(&diagram);
        assert!(
            graph.contains("<B>shop.a&quot;b }&lt;x&gt;#</B>"),
            "{graph}"
        );
        assert!(
            graph.contains(
                "[label=\"orders_customer_fkey (weird \\\"col\\\" \\\\ → id)\", style=dashed]"
            ),
            "{graph}"
        );
        assert_eq!(graph.matches("\n").count(), graph.lines().count());
        assert_eq!(mermaid_word("PK"), "_PK");
        assert_eq!(mermaid_word("1st"), "_1st");
    }
}
