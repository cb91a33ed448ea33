//! A layered layout of boxes joined by links, in the manner of Sugiyama's method, for
//! [`super::svg`]:
//!
//! 1. The boxes fall apart into connected components, each laid out on its own; the components
//!    are then packed in rows, the biggest first, so unrelated tables end as a grid at the end.
//! 2. In a component, links that close a cycle are turned around (depth-first search), and
//!    each box gets a column: referenced boxes to the right of those that reference them (by
//!    the longest chain of references), a box that references nothing just right of the boxes
//!    referencing it, and a box nothing references just left of the nearest box it references.
//! 3. A link spanning several columns passes through a placeholder in each column between, so
//!    it runs in the gaps between boxes instead of through them.
//! 4. The order in each column follows the mean position of each box's neighbours in the
//!    column before (then after), sweep after sweep, keeping the order with fewest crossings.
//! 5. Each box then moves towards the height of its neighbours, keeping the order and a gap.

use std::collections::HashMap;

use super::layers::{arrange, break_cycles, columns, heights, wrap};

/// How big a box is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    pub width: f64,
    pub height: f64,
}

/// A link from one box to another (or itself), leaving and arriving at these heights inside
/// the boxes (a column's row).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    pub from: usize,
    pub from_y: f64,
    pub to: usize,
    pub to_y: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl Rect {
    pub fn right(&self) -> f64 {
        self.x + self.width
    }

    /// Whether the two overlap (touching is not overlapping).
    pub fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.right()
            && other.x < self.right()
            && self.y < other.y + other.height
            && other.y < self.y + self.height
    }
}

/// Where each box goes and the points each link passes through, from its start on a box's
/// side to its end on the other's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    pub boxes: Vec<Rect>,
    pub routes: Vec<Vec<Point>>,
    pub width: f64,
    pub height: f64,
}

/// Space between columns, where the links run.
pub(super) const COLUMN_GAP: f64 = 110.0;
/// Space between boxes in a column.
pub(super) const ROW_GAP: f64 = 36.0;
/// Height a passing link takes in a column.
pub(super) const PASSAGE: f64 = 14.0;
/// Space between packed components.
const COMPONENT_GAP: f64 = 70.0;
/// How far a link to its own box loops out.
const LOOP: f64 = 26.0;

pub fn layout(sizes: &[Size], links: &[Link]) -> Layout {
    let components = components(sizes.len(), links);
    let mut laid: Vec<(Vec<usize>, Layout)> = components
        .into_iter()
        .map(|nodes| {
            let l = component(&nodes, sizes, links);
            (nodes, l)
        })
        .collect();
    // Rows as wide as the widest component, or a bit wider than square.
    let area: f64 = laid.iter().map(|(_, l)| l.width * l.height).sum();
    let widest = laid.iter().map(|(_, l)| l.width).fold(0.0, f64::max);
    let row_width = widest.max(area.sqrt() * 1.4).max(900.0);
    let mut result = Layout {
        boxes: vec![
            Rect {
                x: 0.0,
                y: 0.0,
                width: 0.0,
                height: 0.0
            };
            sizes.len()
        ],
        routes: vec![Vec::new(); links.len()],
        width: 0.0,
        height: 0.0,
    };
    let (mut x, mut y, mut row_height) = (0.0, 0.0, 0.0_f64);
    for (nodes, l) in laid.drain(..) {
        if x > 0.0 && x + l.width > row_width {
            (x, y) = (0.0, y + row_height + COMPONENT_GAP);
            row_height = 0.0;
        }
        for (i, &n) in nodes.iter().enumerate() {
            let b = l.boxes[i];
            result.boxes[n] = Rect {
                x: b.x + x,
                y: b.y + y,
                ..b
            };
        }
        let members: std::collections::HashSet<usize> = nodes.iter().copied().collect();
        for (i, link) in links.iter().enumerate() {
            if members.contains(&link.from) {
                result.routes[i] = l.routes[i]
                    .iter()
                    .map(|p| Point {
                        x: p.x + x,
                        y: p.y + y,
                    })
                    .collect();
            }
        }
        result.width = result.width.max(x + l.width);
        result.height = result.height.max(y + l.height);
        row_height = row_height.max(l.height);
        x += l.width + COMPONENT_GAP;
    }
    result
}

/// The connected components, each in index order, the biggest first (then by first index).
fn components(n: usize, links: &[Link]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for l in links {
        let (a, b) = (root(&mut parent, l.from), root(&mut parent, l.to));
        if a != b {
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..n {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
    groups
}

/// One component's layout, at the origin: boxes in `nodes`' order, routes for every link of
/// the component (by link index; others empty).
fn component(nodes: &[usize], sizes: &[Size], links: &[Link]) -> Layout {
    let n = nodes.len();
    let local: HashMap<usize, usize> = nodes.iter().enumerate().map(|(i, &g)| (g, i)).collect();
    let mine: Vec<(usize, usize, usize)> = links
        .iter()
        .enumerate()
        .filter_map(|(i, l)| Some((i, *local.get(&l.from)?, *local.get(&l.to)?)))
        .collect();
    // Referencing -> referenced, without loops or repeats.
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(_, a, b) in &mine {
        if a != b && !next[a].contains(&b) {
            next[a].push(b);
        }
    }
    let next = break_cycles(&next);
    let box_sizes: Vec<Size> = nodes.iter().map(|&g| sizes[g]).collect();
    let columns = wrap(columns(&next), &next, &box_sizes);
    // Items: the boxes, then the placeholders of links spanning columns.
    let mut column_of: Vec<usize> = columns.clone();
    let mut height: Vec<f64> = nodes.iter().map(|&g| sizes[g].height).collect();
    let mut segments: Vec<(usize, usize)> = Vec::new(); // (left item, right item)
    let mut chains: HashMap<(usize, usize), Vec<usize>> = HashMap::new(); // left box, right box
    for &(_, a, b) in &mine {
        if a == b {
            continue;
        }
        let (left, right) = if columns[a] < columns[b] {
            (a, b)
        } else {
            (b, a)
        };
        if chains.contains_key(&(left, right)) {
            continue;
        }
        let mut chain = Vec::new();
        let mut previous = left;
        for c in columns[left] + 1..columns[right] {
            let item = column_of.len();
            column_of.push(c);
            height.push(PASSAGE);
            segments.push((previous, item));
            chain.push(item);
            previous = item;
        }
        segments.push((previous, right));
        chains.insert((left, right), chain);
    }
    let column_count = column_of.iter().max().map_or(0, |m| m + 1);
    let mut order: Vec<Vec<usize>> = vec![Vec::new(); column_count];
    for (item, &c) in column_of.iter().enumerate() {
        order[c].push(item);
    }
    let mut lefts: Vec<Vec<usize>> = vec![Vec::new(); column_of.len()];
    let mut rights: Vec<Vec<usize>> = vec![Vec::new(); column_of.len()];
    for &(l, r) in &segments {
        rights[l].push(r);
        lefts[r].push(l);
    }
    let order = arrange(order, &lefts, &rights, &segments, &column_of);
    let tops = heights(&order, &height, n, &lefts, &rights);
    // Columns' x.
    let mut widths = vec![20.0_f64; column_count];
    for (i, &g) in nodes.iter().enumerate() {
        widths[columns[i]] = widths[columns[i]].max(sizes[g].width);
    }
    let mut xs = vec![0.0; column_count];
    for c in 1..column_count {
        xs[c] = xs[c - 1] + widths[c - 1] + COLUMN_GAP;
    }
    let boxes: Vec<Rect> = nodes
        .iter()
        .enumerate()
        .map(|(i, &g)| Rect {
            x: xs[columns[i]],
            y: tops[i],
            width: sizes[g].width,
            height: sizes[g].height,
        })
        .collect();
    let mut routes = vec![Vec::new(); links.len()];
    for &(i, a, b) in &mine {
        let link = links[i];
        let (from, to) = (boxes[a], boxes[b]);
        let (start_y, end_y) = (from.y + link.from_y, to.y + link.to_y);
        if a == b {
            let x = from.right();
            routes[i] = vec![
                Point { x, y: start_y },
                Point {
                    x: x + LOOP,
                    y: start_y,
                },
                Point {
                    x: x + LOOP,
                    y: end_y,
                },
                Point { x, y: end_y },
            ];
            continue;
        }
        let rightwards = columns[a] < columns[b];
        let (left, right) = if rightwards { (a, b) } else { (b, a) };
        let mut passes: Vec<Point> = Vec::new();
        for &item in &chains[&(left, right)] {
            let c = column_of[item];
            let y = tops[item] + PASSAGE / 2.0;
            passes.push(Point { x: xs[c], y });
            passes.push(Point {
                x: xs[c] + widths[c],
                y,
            });
        }
        if !rightwards {
            passes.reverse();
        }
        let (start_x, end_x) = if rightwards {
            (from.right(), to.x)
        } else {
            (from.x, to.right())
        };
        let mut route = vec![Point {
            x: start_x,
            y: start_y,
        }];
        route.extend(passes);
        route.push(Point { x: end_x, y: end_y });
        routes[i] = route;
    }
    let mut width = xs[column_count - 1] + widths[column_count - 1];
    if mine.iter().any(|&(_, a, b)| a == b) {
        width += LOOP + 4.0;
    }
    let height = (0..column_of.len())
        .map(|i| tops[i] + height[i])
        .fold(0.0, f64::max);
    Layout {
        boxes,
        routes,
        width,
        height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxes(n: usize) -> Vec<Size> {
        (0..n)
            .map(|i| Size {
                width: 100.0 + i as f64,
                height: 40.0 + 10.0 * (i % 3) as f64,
            })
            .collect()
    }

    fn link(from: usize, to: usize) -> Link {
        Link {
            from,
            from_y: 10.0,
            to,
            to_y: 10.0,
        }
    }

    #[test]
    fn boxes_never_overlap_and_references_point_right() {
        // A chain, a cycle, a self-reference, a long link and unrelated boxes.
        let links = [
            link(0, 1),
            link(1, 2),
            link(2, 3),
            link(0, 3),
            link(4, 5),
            link(5, 4),
            link(6, 6),
            link(7, 2),
        ];
        let sizes = boxes(12);
        let l = layout(&sizes, &links);
        for (i, a) in l.boxes.iter().enumerate() {
            assert_eq!((a.width, a.height), (sizes[i].width, sizes[i].height));
            for b in &l.boxes[i + 1..] {
                assert!(!a.overlaps(b), "{a:?} {b:?}");
            }
            assert!(a.right() <= l.width && a.y + a.height <= l.height);
        }
        for (i, link) in links.iter().enumerate() {
            let route = &l.routes[i];
            assert!(route.len() >= 2, "{i}: {route:?}");
            let (from, to) = (l.boxes[link.from], l.boxes[link.to]);
            assert_eq!(route[0].y, from.y + 10.0);
            assert_eq!(route.last().unwrap().y, to.y + 10.0);
        }
        // Referenced boxes stand right of those referencing them.
        assert!(l.boxes[0].x < l.boxes[1].x && l.boxes[1].x < l.boxes[2].x);
        assert!(l.boxes[2].x < l.boxes[3].x && l.boxes[7].x < l.boxes[2].x);
        // The long link passes the middle columns in the gaps between boxes.
        let long = &l.routes[3];
        assert_eq!(long.len(), 6, "{long:?}");
        for p in &long[1..5] {
            let dot = Rect {
                x: p.x + 1.0,
                y: p.y - 1.0,
                width: 1.0,
                height: 2.0,
            };
            assert!(l.boxes.iter().all(|b| !b.overlaps(&dot)), "{p:?}");
        }
    }

    #[test]
    fn many_boxes_referencing_one_are_wrapped_into_columns() {
        let links: Vec<Link> = (1..61).map(|i| link(i, 0)).collect();
        let sizes = vec![
            Size {
                width: 200.0,
                height: 100.0
            };
            61
        ];
        let l = layout(&sizes, &links);
        // Stacked in one column, the 61 boxes would stand over 8,000 px tall.
        assert!(
            l.height < 4000.0 && l.width > 4.0 * 200.0,
            "{} x {}",
            l.width,
            l.height
        );
        for (i, a) in l.boxes.iter().enumerate() {
            assert!(l.boxes[i + 1..].iter().all(|b| !a.overlaps(b)));
            assert!(i == 0 || a.x < l.boxes[0].x, "references point right");
        }
    }

    #[test]
    fn crossings_are_undone() {
        // Two columns whose natural order crosses every link.
        let links = [
            link(0, 5),
            link(1, 4),
            link(2, 3),
            link(0, 6),
            link(1, 6),
            link(2, 6),
        ];
        let l = layout(&boxes(7), &links);
        assert!(l.boxes[0].y < l.boxes[1].y && l.boxes[1].y < l.boxes[2].y);
        assert!(l.boxes[5].y < l.boxes[4].y && l.boxes[4].y < l.boxes[3].y);
    }
}
