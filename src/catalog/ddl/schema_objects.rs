//! The statements of a schema's other objects: collations (before the tables whose columns
//! use them), text search configurations (after the functions), extended statistics (after
//! the indexes) and rules (after the views, since a rule's actions may name any relation).

use std::collections::HashSet;

use super::super::Snapshot;
use super::super::objects::{Collation, SchemaObject};
use super::quote::{ident, literal, qualified};

/// The objects `pick` takes from every schema, as statements.
fn statements<'a>(
    snapshot: &'a Snapshot,
    pick: impl Fn(&'a str, &'a SchemaObject) -> Option<Vec<String>>,
) -> Vec<String> {
    snapshot
        .schemas
        .iter()
        .flat_map(|s| s.objects.iter().map(move |o| (s.name.as_str(), o)))
        .filter_map(|(schema, object)| pick(schema, object))
        .flatten()
        .collect()
}

/// `CREATE COLLATION` of each collation a provider can make again (not the database's
/// default provider's).
pub(super) fn collations(snapshot: &Snapshot) -> Vec<String> {
    statements(snapshot, |schema, object| match object {
        SchemaObject::Collation(c) if c.provider != "default" => Some(vec![format!(
            "CREATE COLLATION {} ({});",
            qualified(schema, &c.name),
            collation_options(c)
        )]),
        _ => None,
    })
}

/// The snapshot's collations as a column names them: qualified, quoted where needed.
pub(super) fn qualified_collations(snapshot: &Snapshot) -> HashSet<String> {
    let names = snapshot.schemas.iter().flat_map(|s| {
        s.objects.iter().filter_map(|o| match o {
            SchemaObject::Collation(c) => Some(qualified(&s.name, &c.name)),
            _ => None,
        })
    });
    names.collect()
}

fn collation_options(c: &Collation) -> String {
    let mut options = vec![format!("provider = {}", c.provider)];
    let mut add = |option: &str, value: &Option<String>| {
        if let Some(value) = value {
            options.push(format!("{option} = {}", literal(value)));
        }
    };
    match c.provider.as_str() {
        "icu" => add("locale", &c.locale),
        _ => {
            add("lc_collate", &c.lc_collate);
            add("lc_ctype", &c.lc_ctype);
        }
    }
    if !c.deterministic {
        options.push("deterministic = false".into());
    }
    options.join(", ")
}

/// Each text search configuration with its parser, then its token mappings.
pub(super) fn text_search_configurations(snapshot: &Snapshot) -> Vec<String> {
    statements(snapshot, |schema, object| {
        let SchemaObject::TextSearchConfiguration(c) = object else {
            return None;
        };
        let name = qualified(schema, &c.name);
        let mut lines = vec![format!(
            "CREATE TEXT SEARCH CONFIGURATION {name} (PARSER = {});",
            c.parser
        )];
        for m in &c.mappings {
            lines.push(format!(
                "ALTER TEXT SEARCH CONFIGURATION {name} ADD MAPPING FOR {} WITH {};",
                ident(&m.token),
                m.dictionaries.join(", ")
            ));
        }
        Some(lines)
    })
}

/// Each extended statistics object, as the server printed it.
pub(super) fn statistics(snapshot: &Snapshot) -> Vec<String> {
    statements(snapshot, |_, object| match object {
        SchemaObject::Statistics(s) => Some(vec![format!("{};", s.definition.trim_end())]),
        _ => None,
    })
}

/// Each rule, as the server printed it (with its semicolon), and whether it is disabled.
pub(super) fn rules(snapshot: &Snapshot) -> Vec<String> {
    statements(snapshot, |schema, object| {
        let SchemaObject::Rule(r) = object else {
            return None;
        };
        let mut lines = vec![r.definition.trim_end().to_owned()];
        let table = qualified(schema, &r.table);
        let state = match r.enabled.as_str() {
            "disabled" => Some("DISABLE RULE"),
            "always" => Some("ENABLE ALWAYS RULE"),
            "replica" => Some("ENABLE REPLICA RULE"),
            _ => None,
        };
        if let Some(state) = state {
            lines.push(format!("ALTER TABLE {table} {state} {};", ident(&r.name)));
        }
        Some(lines)
    })
}
