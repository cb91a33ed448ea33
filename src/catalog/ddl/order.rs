//! The order objects are created in where one names another: the names a type's text refers
//! to, and a dependency-first order of a list.

use std::collections::{HashMap, HashSet};

/// The schema whose objects the snapshot's texts name without their schema: the printing
/// functions leave out a schema on the source's search path, which is `public` (the export
/// sets it so).
pub const SEARCH_PATH: &str = "public";

/// The names `text` (a type as `format_type` prints it, a function's arguments or result)
/// refers to, as (schema, name): `a.b` as `(a, b)`, a bare `b` as `(public, b)`. Every
/// identifier is taken as a possible name; a caller matches them against the names it knows.
pub fn names_in(text: &str) -> Vec<(String, String)> {
    let mut tokens: Vec<Option<String>> = Vec::new(); // None is a dot
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            let mut name = String::new();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        name.push('"');
                        continue;
                    }
                    break;
                }
                name.push(c);
            }
            tokens.push(Some(name));
        } else if c.is_alphabetic() || c == '_' {
            let mut name = c.to_lowercase().collect::<String>();
            while let Some(&c) = chars.peek() {
                if !(c.is_alphanumeric() || c == '_' || c == '$') {
                    break;
                }
                name.extend(c.to_lowercase());
                chars.next();
            }
            tokens.push(Some(name));
        } else if c == '.' {
            tokens.push(None);
        } else if c == '\'' {
            // A literal (a default's text) names nothing.
            for c in chars.by_ref() {
                if c == '\'' {
                    break;
                }
            }
        }
    }
    let mut names = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match (&tokens[i], tokens.get(i + 1), tokens.get(i + 2)) {
            (Some(schema), Some(None), Some(Some(name))) => {
                names.push((schema.clone(), name.clone()));
                i += 3;
            }
            (Some(name), ..) => {
                names.push((SEARCH_PATH.to_owned(), name.clone()));
                i += 1;
            }
            (None, ..) => i += 1,
        }
    }
    names
}

/// The positions of `items` in an order where each comes after those it depends on
/// (`depends(i)`: positions), otherwise in their given order; a cycle is broken where it is met.
pub fn dependency_order(count: usize, depends: impl Fn(usize) -> Vec<usize>) -> Vec<usize> {
    fn visit(
        i: usize,
        depends: &dyn Fn(usize) -> Vec<usize>,
        state: &mut [u8],
        order: &mut Vec<usize>,
    ) {
        if state[i] != 0 {
            return; // done, or on the path: a cycle
        }
        state[i] = 1;
        for d in depends(i) {
            if d != i {
                visit(d, depends, state, order);
            }
        }
        state[i] = 2;
        order.push(i);
    }
    let mut state = vec![0u8; count];
    let mut order = Vec::with_capacity(count);
    for i in 0..count {
        visit(i, &depends, &mut state, &mut order);
    }
    order
}

/// Positions of named things, to resolve the names [`names_in`] finds.
pub struct Index<'a> {
    positions: HashMap<(&'a str, &'a str), usize>,
}

impl<'a> Index<'a> {
    pub fn new(names: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let positions = names
            .into_iter()
            .enumerate()
            .map(|(i, key)| (key, i))
            .collect();
        Self { positions }
    }

    /// The positions of the known names `text` refers to.
    pub fn referred(&self, text: &str) -> Vec<usize> {
        let found: HashSet<usize> = names_in(text)
            .iter()
            .filter_map(|(s, n)| self.positions.get(&(s.as_str(), n.as_str())).copied())
            .collect();
        let mut found: Vec<usize> = found.into_iter().collect();
        found.sort_unstable();
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_qualified_quoted_or_bare() {
        let pairs = |t: &str| names_in(t);
        assert_eq!(
            pairs("public.mpaa_rating[]"),
            vec![("public".into(), "mpaa_rating".into())]
        );
        assert_eq!(
            pairs("\"My Schema\".\"T\"\"x\"(3)"),
            vec![("My Schema".into(), "T\"x".into())]
        );
        assert_eq!(
            pairs("SETOF customer"),
            vec![
                ("public".into(), "setof".into()),
                ("public".into(), "customer".into())
            ]
        );
        assert!(pairs("'a.b'::text").iter().all(|(_, n)| n == "text"));
    }

    #[test]
    fn what_is_depended_on_comes_first() {
        // 0 needs 2, 2 needs 1.
        let deps = [vec![2], vec![], vec![1]];
        assert_eq!(dependency_order(3, |i| deps[i].clone()), vec![1, 2, 0]);
        // A cycle still yields each once.
        let cycle = [vec![1], vec![0]];
        assert_eq!(dependency_order(2, |i| cycle[i].clone()), vec![1, 0]);
    }
}
