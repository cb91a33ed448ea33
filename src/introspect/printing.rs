//! Index definitions printed here the way the source's `pg_get_indexdef` prints them.
//!
//! On a big catalog `pg_get_indexdef` costs more than every other catalog query together (about
//! 0.6 s of a 10,000-table source's 1.2 s): each call looks the index, its table, its access
//! method and every key column up in the server's caches. A plain index's definition follows
//! from the rows already read, so only the others (expressions, predicates, storage options,
//! non-default operator classes, collations or orderings) ask the server.

use std::collections::{HashMap, HashSet};

use sqlx::postgres::types::Oid;

use super::queries::{ColumnRow, IndexRow};

/// What the server's printing depends on, read from the source itself.
pub struct Printer {
    /// Keywords that `quote_ident` quotes: every category but the unreserved one.
    pub keywords: HashSet<String>,
    /// The `quote_all_identifiers` setting.
    pub quote_all: bool,
    /// Default operator classes, with the type each is the default for.
    pub default_opclasses: HashMap<Oid, Oid>,
}

impl Printer {
    /// PostgreSQL's `quote_identifier`: quoted unless it is lower case letters, digits and
    /// underscores not starting with a digit, and not a keyword that needs quoting.
    pub fn quote_identifier(&self, name: &str) -> String {
        let plain = !self.quote_all
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !self.keywords.contains(name);
        if plain {
            name.to_owned()
        } else {
            format!("\"{}\"", name.replace('"', "\"\""))
        }
    }

    /// `pg_get_indexdef(index)` of a plain index (`index.plain`) on table `schema.table`, whose
    /// columns are `columns` (in attnum order); `None` when the index has something this does
    /// not print (a non-default operator class, collation or ordering).
    pub fn index_definition(
        &self,
        index: &IndexRow,
        schema: &str,
        table: &str,
        columns: &[ColumnRow],
    ) -> Option<String> {
        if !index.plain {
            return None;
        }
        let column = |attnum: i16| {
            columns
                .binary_search_by_key(&i32::from(attnum), |c| c.ordinal)
                .ok()
                .map(|i| &columns[i])
        };
        let key_count = usize::try_from(index.key_count).ok()?;
        let mut keys = Vec::with_capacity(key_count);
        let mut include = Vec::new();
        for (position, &attnum) in index.keys.iter().enumerate() {
            let c = column(attnum)?;
            if position < key_count {
                let opclass = *index.opclasses.get(position)?;
                let collation = *index.collations.get(position)?;
                let default_opclass = self.default_opclasses.get(&opclass) == Some(&c.type_oid);
                let default_collation = collation == Oid(0) || collation == c.collation_oid;
                let default_order = index.options.get(position) == Some(&0);
                if !(default_opclass && default_collation && default_order) {
                    return None;
                }
                keys.push(self.quote_identifier(&c.name));
            } else {
                include.push(self.quote_identifier(&c.name));
            }
        }
        let mut definition = format!(
            "CREATE {}INDEX {} ON {}.{} USING {} ({})",
            if index.is_unique { "UNIQUE " } else { "" },
            self.quote_identifier(&index.name),
            self.quote_identifier(schema),
            self.quote_identifier(table),
            self.quote_identifier(&index.method),
            keys.join(", ")
        );
        if !include.is_empty() {
            definition.push_str(&format!(" INCLUDE ({})", include.join(", ")));
        }
        Some(definition)
    }
}
