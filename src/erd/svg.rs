//! The SVG rendering of a [`Diagram`]: each relation a box of its columns (key columns first
//! marked `PK`, `FK`, `UK`), each foreign key a curve from the referencing column's row to the
//! referenced column's, placed by [`super::layout`]. Text is in a monospace font, so the boxes'
//! widths are known without measuring it.

use std::fmt::Write;

use super::layout::{self, Link, Point, Size};
use super::text::{field_type, kind_note, node_title};
use super::{Diagram, Field, Node, xml_escape};

/// Rows a box shows at most: key columns and referenced ones always, others up to this.
pub const MAX_ROWS: usize = 24;
const ROW: f64 = 18.0;
const HEADER: f64 = 26.0;
/// Width of a character of the 12 px monospace font (0.6 em).
const CHAR: f64 = 7.2;
const MARKERS: f64 = 44.0;
const PAD: f64 = 8.0;
const MARGIN: f64 = 16.0;
/// Longest name and type shown in full; longer ones end in an ellipsis (the whole name is in
/// the box's tooltip).
const LONGEST_NAME: usize = 36;
const LONGEST_TYPE: usize = 34;

const STYLE: &str = "\
.erd-table rect.erd-box{fill:#fff;stroke:#8a94a6}\
.erd-table rect.erd-head{fill:#dbe4f3;stroke:#8a94a6}\
.erd-outside rect.erd-head{fill:#eef0f4}\
.erd text{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;fill:#1d2330}\
.erd text.erd-title{font-weight:700}\
.erd text.erd-key{fill:#9a3412;font-weight:700}\
.erd text.erd-type,.erd text.erd-more,.erd tspan.erd-kind{fill:#6b7280}\
.erd path.erd-edge{fill:none;stroke:#64748b;stroke-width:1.3}\
.erd path.erd-optional{stroke-dasharray:5 3}\
.erd path.erd-partition{fill:none;stroke:#94a3b8;stroke-width:1.3;stroke-dasharray:1 3}\
.erd-focus rect.erd-box,.erd-focus rect.erd-head{stroke:#1d4ed8;stroke-width:2}\
.erd a:hover rect.erd-head{fill:#c3d3ee}";

/// What a box shows of a node: its rows (indexes into its columns) and how many are left out.
struct Shown {
    rows: Vec<usize>,
    hidden: usize,
    size: Size,
}

impl Shown {
    fn of(node: &Node, home: Option<&str>) -> Self {
        let key = |f: &Field| f.primary || f.foreign || f.unique || f.referenced;
        let mut rows: Vec<usize> = (0..node.columns.len())
            .filter(|&i| key(&node.columns[i]))
            .collect();
        let others: Vec<usize> = (0..node.columns.len())
            .filter(|&i| !key(&node.columns[i]))
            .collect();
        let room = MAX_ROWS.saturating_sub(rows.len());
        let hidden = others.len().saturating_sub(room);
        rows.extend(others.into_iter().take(room));
        // Keys first (primary, then in column order), as a person looks for them.
        rows.sort_by_key(|&i| (!node.columns[i].primary, !key(&node.columns[i]), i));
        let title = chars(&shortened(&shown_name(node, home), 2 * LONGEST_NAME)) as f64 * CHAR
            + chars(kind_note(node)) as f64 * CHAR
            + 2.0 * PAD;
        let widest_row = rows
            .iter()
            .map(|&i| {
                let f = &node.columns[i];
                let name = chars(&f.name).min(LONGEST_NAME + 1);
                let ty = chars(&field_type(f)).min(LONGEST_TYPE + 1);
                MARKERS + (name + ty) as f64 * CHAR + 3.0 * PAD
            })
            .fold(0.0, f64::max);
        let lines = rows.len() + usize::from(hidden > 0);
        Self {
            size: Size {
                width: title.max(widest_row).max(150.0).ceil(),
                height: HEADER + lines as f64 * ROW + 4.0,
            },
            rows,
            hidden,
        }
    }

    /// The height inside the box of column `field`'s row (its header's when not shown).
    fn anchor(&self, field: Option<&usize>) -> f64 {
        match field.and_then(|f| self.rows.iter().position(|r| r == f)) {
            Some(row) => HEADER + row as f64 * ROW + ROW / 2.0,
            None => HEADER / 2.0,
        }
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// A node's name as its box shows it: alone in the `home` schema, else qualified.
fn shown_name(node: &Node, home: Option<&str>) -> String {
    match home {
        Some(home) if home == node.schema && !node.outside => node.name.clone(),
        _ => node.qualified(),
    }
}

/// `s` cut to `most` characters, with an ellipsis when cut.
fn shortened(s: &str, most: usize) -> String {
    if chars(s) <= most {
        return s.to_owned();
    }
    let mut cut: String = s.chars().take(most - 1).collect();
    cut.push('…');
    cut
}

/// The diagram as a standalone SVG document. Boxes of relations in `home` are titled with
/// their names alone; `link` gives the address a box links to, if any.
pub fn render(
    diagram: &Diagram,
    home: Option<&str>,
    link: impl Fn(&Node) -> Option<String>,
) -> String {
    let shown: Vec<Shown> = diagram.nodes.iter().map(|n| Shown::of(n, home)).collect();
    let sizes: Vec<Size> = shown.iter().map(|s| s.size).collect();
    // Foreign keys, then a parent to each of its partitions (which puts the parent left of
    // its partitions, next to them, rather than far right, where nothing references it).
    let links: Vec<Link> = diagram
        .edges
        .iter()
        .map(|e| Link {
            from: e.from,
            from_y: shown[e.from].anchor(e.from_columns.first()),
            to: e.to,
            to_y: shown[e.to].anchor(e.to_columns.first()),
        })
        .chain(diagram.partitions.iter().map(|&(parent, partition)| Link {
            from: parent,
            from_y: HEADER / 2.0,
            to: partition,
            to_y: HEADER / 2.0,
        }))
        .collect();
    let placed = layout::layout(&sizes, &links);
    let (width, height) = (
        (placed.width + 2.0 * MARGIN).ceil(),
        (placed.height + 2.0 * MARGIN).ceil(),
    );
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"erd\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" \
         aria-label=\"Entity-relationship diagram of {} relations\">\
         <style>{STYLE}</style><defs><marker id=\"erd-arrow\" viewBox=\"0 0 10 10\" refX=\"10\" \
         refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto\">\
         <path d=\"M0,0L10,5L0,10z\" fill=\"#64748b\"/></marker></defs>\
         <g transform=\"translate({MARGIN},{MARGIN})\">",
        diagram.nodes.len()
    );
    out.push_str("<g class=\"erd-edges\">");
    for (edge, route) in diagram.edges.iter().zip(&placed.routes) {
        let class = if edge.optional {
            "erd-edge erd-optional"
        } else {
            "erd-edge"
        };
        let _ = write!(
            out,
            "<path class=\"{class}\" d=\"{}\" marker-end=\"url(#erd-arrow)\"><title>{}</title></path>",
            path(route),
            xml_escape(&format!(
                "{}: {} → {}",
                edge.name,
                diagram.nodes[edge.from].qualified(),
                diagram.nodes[edge.to].qualified()
            ))
        );
    }
    let partition_routes = &placed.routes[diagram.edges.len()..];
    for (&(parent, partition), route) in diagram.partitions.iter().zip(partition_routes) {
        let _ = write!(
            out,
            "<path class=\"erd-partition\" d=\"{}\"><title>{}</title></path>",
            path(route),
            xml_escape(&format!(
                "{} is a partition of {}",
                diagram.nodes[partition].qualified(),
                diagram.nodes[parent].qualified()
            ))
        );
    }
    out.push_str("</g>");
    for (i, ((node, shown), rect)) in diagram
        .nodes
        .iter()
        .zip(&shown)
        .zip(&placed.boxes)
        .enumerate()
    {
        let href = link(node).filter(|_| !node.outside);
        let class = match (node.outside, diagram.focus == Some(i)) {
            (true, _) => "erd-table erd-outside",
            (false, true) => "erd-table erd-focus",
            (false, false) => "erd-table",
        };
        let _ = write!(
            out,
            "<g class=\"{class}\" data-table=\"{}\" transform=\"translate({},{})\">",
            xml_escape(&node.qualified()),
            rect.x,
            rect.y
        );
        if let Some(href) = &href {
            let _ = write!(out, "<a href=\"{}\">", xml_escape(href));
        }
        let w = rect.width;
        let _ = write!(
            out,
            "<title>{}</title><rect class=\"erd-box\" width=\"{w}\" height=\"{}\" rx=\"4\"/>\
             <rect class=\"erd-head\" width=\"{w}\" height=\"{HEADER}\" rx=\"4\"/>",
            xml_escape(&node_title(node)),
            rect.height
        );
        let _ = write!(
            out,
            "<text class=\"erd-title\" x=\"{PAD}\" y=\"17\">{}<tspan class=\"erd-kind\">{}</tspan></text>",
            xml_escape(&shortened(&shown_name(node, home), 2 * LONGEST_NAME)),
            kind_note(node)
        );
        for (row, &i) in shown.rows.iter().enumerate() {
            let f = &node.columns[i];
            let y = HEADER + row as f64 * ROW + 13.0;
            let _ = write!(
                out,
                "<text class=\"erd-key\" x=\"{PAD}\" y=\"{y}\">{}</text>\
                 <text class=\"erd-column\" x=\"{}\" y=\"{y}\">{}</text>\
                 <text class=\"erd-type\" x=\"{}\" y=\"{y}\" text-anchor=\"end\">{}</text>",
                f.markers().join(" "),
                PAD + MARKERS,
                xml_escape(&shortened(&f.name, LONGEST_NAME)),
                w - PAD,
                xml_escape(&shortened(&field_type(f), LONGEST_TYPE))
            );
        }
        if shown.hidden > 0 {
            let y = HEADER + shown.rows.len() as f64 * ROW + 13.0;
            let _ = write!(
                out,
                "<text class=\"erd-more\" x=\"{}\" y=\"{y}\">… {} more columns</text>",
                PAD + MARKERS,
                shown.hidden
            );
        }
        if href.is_some() {
            out.push_str("</a>");
        }
        out.push_str("</g>");
    }
    out.push_str("</g></svg>");
    out
}

/// A route as a path of curves leaving and arriving horizontally.
fn path(route: &[Point]) -> String {
    let mut d = String::new();
    let Some(first) = route.first() else {
        return d;
    };
    let _ = write!(d, "M{:.1},{:.1}", first.x, first.y);
    for pair in route.windows(2) {
        let (p, q) = (pair[0], pair[1]);
        let mx = (p.x + q.x) / 2.0;
        let _ = write!(
            d,
            "C{mx:.1},{:.1} {mx:.1},{:.1} {:.1},{:.1}",
            p.y, q.y, q.x, q.y
        );
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erd::Outside;
    use crate::erd::tests::shop;

    #[test]
    fn boxes_link_their_pages_and_escape_their_names() {
        let mut tables = shop();
        tables[1].1.name = "<script>&'\"".into();
        let diagram = Diagram::new(tables, Outside::Draw);
        let svg = render(&diagram, Some("shop"), |n| {
            Some(format!("/t?name={}&x=1", n.name))
        });
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;&amp;&#39;&quot;"), "{svg}");
        assert!(svg.contains("<a href=\"/t?name=orders&amp;x=1\">"), "{svg}");
        // The other schema's relation is qualified and not linked.
        assert!(svg.contains(">billing.accounts<"), "{svg}");
        assert_eq!(svg.matches("<a href").count(), 2, "{svg}");
        assert_eq!(svg.matches("<path class=\"erd-edge").count(), 2);
    }

    #[test]
    fn an_empty_diagram_is_an_empty_picture() {
        let svg = render(&Diagram::default(), None, |_| None);
        assert!(svg.contains("width=\"32\" height=\"32\""), "{svg}");
        assert!(!svg.contains("<g class=\"erd-table"));
    }

    #[test]
    fn wide_tables_show_their_keys_and_count_the_rest() {
        let mut tables = shop();
        for i in 0..40 {
            tables[0].1.columns.push(crate::catalog::Column {
                name: format!("extra_{i}"),
                data_type: "text".into(),
                nullable: true,
                ..Default::default()
            });
        }
        let diagram = Diagram::new(tables, Outside::Omit);
        let orders = Shown::of(&diagram.nodes[1], None);
        assert_eq!(orders.rows.len(), MAX_ROWS);
        assert_eq!(orders.hidden, 3 + 40 - MAX_ROWS);
        assert_eq!(&orders.rows[..3], &[0, 1, 2]);
        let svg = render(&diagram, None, |_| None);
        assert!(svg.contains(&format!("… {} more columns", 43 - MAX_ROWS)));
    }
}
