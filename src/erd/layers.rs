//! The steps of [`super::layout`] inside one component: breaking cycles, giving boxes
//! columns, ordering each column and placing the boxes in height.

use std::collections::HashMap;

use super::layout::{COLUMN_GAP, PASSAGE, ROW_GAP, Size};

/// Ordering sweeps at most.
const SWEEPS: usize = 12;

/// The graph without the edges that close a cycle, turned around (a depth-first search's back
/// edges), so that it has none.
pub(super) fn break_cycles(next: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = next.len();
    // 0: not seen, 1: on the stack, 2: done.
    let mut state = vec![0u8; n];
    let mut acyclic: Vec<Vec<usize>> = vec![Vec::new(); n];
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some((v, i)) = stack.pop() {
            if let Some(&w) = next[v].get(i) {
                stack.push((v, i + 1));
                match state[w] {
                    0 => {
                        acyclic[v].push(w);
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => {
                        if !acyclic[w].contains(&v) {
                            acyclic[w].push(v);
                        }
                    }
                    _ => acyclic[v].push(w),
                }
            } else {
                state[v] = 2;
            }
        }
    }
    acyclic
}

/// Each node's column in an acyclic graph: every edge goes to a column further right.
pub(super) fn columns(next: &[Vec<usize>]) -> Vec<usize> {
    let n = next.len();
    // rank: the longest path to a node without successors.
    let mut rank = vec![usize::MAX; n];
    for start in 0..n {
        let mut stack = vec![(start, false)];
        while let Some((v, expanded)) = stack.pop() {
            if rank[v] != usize::MAX {
                continue;
            }
            if expanded {
                rank[v] = next[v].iter().map(|&w| rank[w] + 1).max().unwrap_or(0);
            } else {
                stack.push((v, true));
                stack.extend(
                    next[v]
                        .iter()
                        .filter(|&&w| rank[w] == usize::MAX)
                        .map(|&w| (w, false)),
                );
            }
        }
    }
    let top = rank.iter().copied().max().unwrap_or(0);
    let mut column: Vec<usize> = rank.iter().map(|r| top - r).collect();
    // A box that references nothing stands just right of the boxes referencing it, not in the
    // last column; one that nothing references, just left of the nearest box it references.
    let mut previous: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (v, targets) in next.iter().enumerate() {
        for &w in targets {
            previous[w].push(v);
        }
    }
    for v in 0..n {
        if next[v].is_empty()
            && let Some(farthest) = previous[v].iter().map(|&u| column[u]).max()
        {
            column[v] = farthest + 1;
        }
    }
    for v in 0..n {
        if previous[v].is_empty()
            && let Some(nearest) = next[v].iter().map(|&w| column[w]).min()
        {
            column[v] = nearest - 1;
        }
    }
    let first = column.iter().copied().min().unwrap_or(0);
    column.iter().map(|c| c - first).collect()
}

/// Columns no taller than about the square of the boxes' area (at least [`MIN_WRAP`]): a
/// box that nothing references moves from a column too tall to one further left with room,
/// at most [`MAX_WRAP`] columns away, so a schema of many tables referencing a few is not a
/// column thousands of boxes tall. Its links then pass the columns between.
pub(super) fn wrap(column: Vec<usize>, next: &[Vec<usize>], sizes: &[Size]) -> Vec<usize> {
    let n = column.len();
    let area: f64 = sizes
        .iter()
        .map(|s| (s.width + COLUMN_GAP) * (s.height + ROW_GAP))
        .sum();
    let limit = (area.sqrt() * 0.8).max(MIN_WRAP);
    let mut column: Vec<i64> = column.into_iter().map(|c| c as i64).collect();
    let mut referenced = vec![false; n];
    next.iter().flatten().for_each(|&w| referenced[w] = true);
    // Each column's height: its boxes, and the links passing it.
    let mut load: HashMap<i64, f64> = HashMap::new();
    let passage = PASSAGE + ROW_GAP / 3.0;
    for v in 0..n {
        *load.entry(column[v]).or_default() += sizes[v].height + ROW_GAP;
        for &w in &next[v] {
            for c in column[v] + 1..column[w] {
                *load.entry(c).or_default() += passage;
            }
        }
    }
    let mut columns: Vec<i64> = load.keys().copied().collect();
    columns.sort_unstable();
    for c in columns.into_iter().rev() {
        for v in (0..n).rev() {
            if load[&c] <= limit {
                break;
            }
            if column[v] != c || referenced[v] || next[v].is_empty() {
                continue;
            }
            let room = |d: i64, load: &HashMap<i64, f64>| {
                load.get(&d).copied().unwrap_or(0.0) + sizes[v].height + ROW_GAP <= limit
            };
            let Some(to) = (1..=MAX_WRAP).map(|k| c - k).find(|&d| room(d, &load)) else {
                continue;
            };
            let passing = passage * next[v].len() as f64;
            *load.get_mut(&c).expect("a column's load") -= sizes[v].height + ROW_GAP - passing;
            *load.entry(to).or_default() += sizes[v].height + ROW_GAP;
            for d in to + 1..c {
                *load.entry(d).or_default() += passing;
            }
            column[v] = to;
        }
    }
    let first = column.iter().copied().min().unwrap_or(0);
    column.into_iter().map(|c| (c - first) as usize).collect()
}

/// The shortest column [`wrap`] keeps.
const MIN_WRAP: f64 = 1600.0;
/// How far left [`wrap`] moves a box at most.
const MAX_WRAP: i64 = 4;

/// The order of the items in each column with the fewest crossings that the sweeps found.
pub(super) fn arrange(
    mut order: Vec<Vec<usize>>,
    lefts: &[Vec<usize>],
    rights: &[Vec<usize>],
    segments: &[(usize, usize)],
    column_of: &[usize],
) -> Vec<Vec<usize>> {
    let mut position = vec![0.0; column_of.len()];
    let place = |order: &[Vec<usize>], position: &mut [f64]| {
        for column in order {
            for (p, &item) in column.iter().enumerate() {
                position[item] = p as f64;
            }
        }
    };
    place(&order, &mut position);
    let mut best = order.clone();
    let mut fewest = crossings(segments, &position, column_of);
    for sweep in 0..SWEEPS {
        if fewest == 0 {
            break;
        }
        let rightwards = sweep % 2 == 0;
        let columns: Vec<usize> = if rightwards {
            (1..order.len()).collect()
        } else {
            (0..order.len().saturating_sub(1)).rev().collect()
        };
        for c in columns {
            let neighbours = if rightwards { lefts } else { rights };
            let mut keyed: Vec<(f64, usize)> = order[c]
                .iter()
                .map(|&item| {
                    let ns = &neighbours[item];
                    let key = if ns.is_empty() {
                        position[item]
                    } else {
                        ns.iter().map(|&n| position[n]).sum::<f64>() / ns.len() as f64
                    };
                    (key, item)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            order[c] = keyed.into_iter().map(|(_, item)| item).collect();
            for (p, &item) in order[c].iter().enumerate() {
                position[item] = p as f64;
            }
        }
        let now = crossings(segments, &position, column_of);
        if now < fewest {
            fewest = now;
            best = order.clone();
        }
    }
    best
}

/// How many pairs of segments between the same two columns cross.
fn crossings(segments: &[(usize, usize)], position: &[f64], column_of: &[usize]) -> usize {
    let mut by_gap: HashMap<usize, Vec<(f64, f64)>> = HashMap::new();
    for &(l, r) in segments {
        by_gap
            .entry(column_of[l])
            .or_default()
            .push((position[l], position[r]));
    }
    let mut count = 0;
    for mut gap in by_gap.into_values() {
        gap.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        // Pairs out of order on the right (quadratic, but gaps are small for any schema
        // drawn whole).
        for i in 0..gap.len() {
            for j in i + 1..gap.len() {
                if gap[i].0 < gap[j].0 && gap[i].1 > gap[j].1 {
                    count += 1;
                }
            }
        }
    }
    count
}

/// Each item's top, in its column's order: stacked, then moved towards its neighbours'
/// middles, keeping the gaps.
pub(super) fn heights(
    order: &[Vec<usize>],
    height: &[f64],
    boxes: usize,
    lefts: &[Vec<usize>],
    rights: &[Vec<usize>],
) -> Vec<f64> {
    let mut top = vec![0.0; height.len()];
    // Placeholders (after the boxes) need less room around them.
    let gap = |item: usize| {
        if item >= boxes {
            ROW_GAP / 3.0
        } else {
            ROW_GAP
        }
    };
    for column in order {
        let mut y = 0.0;
        for &item in column {
            top[item] = y;
            y += height[item] + gap(item);
        }
    }
    for round in 0..8 {
        let columns: Vec<usize> = if round % 2 == 0 {
            (0..order.len()).collect()
        } else {
            (0..order.len()).rev().collect()
        };
        for c in columns {
            // Each item wants its middle at the mean of its neighbours' middles; the column
            // keeps its order and gaps. With each item's top measured from where stacking
            // would put it, that is an isotonic regression: pool adjacent violators.
            let mut offset = 0.0;
            let mut targets = Vec::with_capacity(order[c].len());
            for &item in &order[c] {
                let ns: Vec<usize> = lefts[item].iter().chain(&rights[item]).copied().collect();
                let wanted = if ns.is_empty() {
                    top[item]
                } else {
                    ns.iter().map(|&n| top[n] + height[n] / 2.0).sum::<f64>() / ns.len() as f64
                        - height[item] / 2.0
                };
                targets.push(wanted - offset);
                offset += height[item] + gap(item);
            }
            let mut offset = 0.0;
            for (&item, z) in order[c].iter().zip(isotonic(&targets)) {
                top[item] = z + offset;
                offset += height[item] + gap(item);
            }
        }
    }
    let lowest = top.iter().copied().fold(f64::INFINITY, f64::min);
    if lowest.is_finite() {
        top.iter_mut().for_each(|t| *t -= lowest);
    }
    top
}

/// The nondecreasing sequence closest to `targets` (least squares): runs that decrease are
/// pooled into their mean.
fn isotonic(targets: &[f64]) -> Vec<f64> {
    // (sum, count) of each pooled run.
    let mut runs: Vec<(f64, usize)> = Vec::new();
    for &t in targets {
        runs.push((t, 1));
        while let [.., (s1, n1), (s2, n2)] = runs[..] {
            if s1 / n1 as f64 <= s2 / n2 as f64 {
                break;
            }
            runs.pop();
            *runs.last_mut().expect("two runs") = (s1 + s2, n1 + n2);
        }
    }
    runs.iter()
        .flat_map(|&(s, n)| std::iter::repeat_n(s / n as f64, n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::isotonic;

    #[test]
    fn decreasing_runs_are_pooled_into_their_mean() {
        assert_eq!(isotonic(&[1.0, 3.0, 2.0, 5.0]), [1.0, 2.5, 2.5, 5.0]);
        assert_eq!(isotonic(&[4.0, 2.0, 0.0]), [2.0, 2.0, 2.0]);
        assert_eq!(isotonic(&[]), Vec::<f64>::new());
    }
}
