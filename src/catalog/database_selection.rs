//! Which databases of a server a whole-server sync covers.

use serde::{Deserialize, Serialize};

/// The databases a whole-server sync covers: every connectable, non-template database the
/// user may connect to, or only `include`, minus `exclude` (exact names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DatabaseSelection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// What discovery made of a server's databases under a selection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selected {
    /// The databases to sync, in name order.
    pub databases: Vec<String>,
    /// Names `include` asked for that the server did not offer (absent, a template, not
    /// connectable, or without CONNECT for the user), in name order.
    pub missing: Vec<String>,
}

impl DatabaseSelection {
    pub fn admits(&self, dbname: &str) -> bool {
        self.include
            .as_ref()
            .is_none_or(|i| i.iter().any(|d| d == dbname))
            && !self.exclude.iter().any(|d| d == dbname)
    }

    /// Applies the selection to the databases the server offers.
    pub fn select(&self, offered: &[String]) -> Selected {
        let mut databases: Vec<String> =
            offered.iter().filter(|d| self.admits(d)).cloned().collect();
        databases.sort();
        databases.dedup();
        let mut missing: Vec<String> = self
            .include
            .iter()
            .flatten()
            .filter(|d| self.admits(d) && !offered.contains(d))
            .cloned()
            .collect();
        missing.sort();
        missing.dedup();
        Selected { databases, missing }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn include_and_exclude_are_exact_names_and_absent_includes_are_missing() {
        let offered = names(&["app", "postgres", "reports"]);
        let all = DatabaseSelection::default().select(&offered);
        assert_eq!(all.databases, offered);
        assert!(all.missing.is_empty());

        let some = DatabaseSelection {
            include: Some(names(&["reports", "ghost", "app", "App"])),
            exclude: names(&["app"]),
        };
        let selected = some.select(&offered);
        assert_eq!(selected.databases, names(&["reports"]));
        assert_eq!(selected.missing, names(&["App", "ghost"]));
    }
}
