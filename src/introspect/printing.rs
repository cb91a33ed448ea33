//! Index and constraint definitions printed here the way the source's `pg_get_indexdef` and
//! `pg_get_constraintdef` print them.
//!
//! On a big catalog `pg_get_indexdef` costs more than every other catalog query together: each
//! call looks the index, its table, its access method and every key column up in the server's
//! caches. A plain index's definition follows
//! from the rows already read, so only the others (expressions, predicates, storage options,
//! non-default operator classes, collations or orderings) ask the server. The same goes for
//! `pg_get_constraintdef` and key, unique and foreign-key constraints, whose text follows from
//! the rows.

use std::collections::{HashMap, HashSet};

use sqlx::postgres::types::Oid;

use super::queries::{ColumnRow, ConstraintRow, IndexRow};

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
        let column = |attnum: i16| column(columns, attnum);
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

    /// `pg_get_constraintdef(constraint)` of a key, unique or foreign-key constraint the server
    /// left to the worker to print. `columns` are its table's (in attnum order), `index` the
    /// index behind a key or unique constraint, and `referenced` the columns of a foreign key's
    /// table when it is in the catalog (else the row names them). `None` when something it
    /// needs is missing: the server then prints it.
    pub fn constraint_definition(
        &self,
        constraint: &ConstraintRow,
        columns: &[ColumnRow],
        index: Option<&IndexRow>,
        referenced: Option<&[ColumnRow]>,
    ) -> Option<String> {
        let c = constraint;
        let names = |columns: &[ColumnRow], attnums: &[i16]| -> Option<String> {
            let names = attnums
                .iter()
                .map(|&attnum| Some(self.quote_identifier(&column(columns, attnum)?.name)))
                .collect::<Option<Vec<_>>>()?;
            Some(names.join(", "))
        };
        let mut definition = match c.contype.as_str() {
            kind @ ("p" | "u") => {
                let index = index?;
                let mut text = String::from(if kind == "p" {
                    "PRIMARY KEY "
                } else {
                    "UNIQUE "
                });
                if kind == "u" && index.nulls_not_distinct {
                    text.push_str("NULLS NOT DISTINCT ");
                }
                text.push_str(&format!("({})", names(columns, &c.keys)?));
                let key_count = usize::try_from(index.key_count).ok()?;
                if let Some(include) = index.keys.get(key_count..).filter(|i| !i.is_empty()) {
                    text.push_str(&format!(" INCLUDE ({})", names(columns, include)?));
                }
                text
            }
            "f" => {
                let table = self.quote_identifier(c.ref_table.as_deref()?);
                let target = match c.ref_visible? {
                    true => table,
                    false => format!(
                        "{}.{table}",
                        self.quote_identifier(c.ref_schema.as_deref()?)
                    ),
                };
                let target_columns = match (referenced, &c.ref_columns) {
                    (Some(referenced), _) => names(referenced, &c.ref_keys)?,
                    (None, Some(named)) => named
                        .iter()
                        .map(|n| self.quote_identifier(n))
                        .collect::<Vec<_>>()
                        .join(", "),
                    (None, None) => return None,
                };
                let mut text = format!(
                    "FOREIGN KEY ({}) REFERENCES {target}({target_columns})",
                    names(columns, &c.keys)?
                );
                text.push_str(match c.match_type.as_deref()? {
                    "s" => "",
                    "f" => " MATCH FULL",
                    "p" => " MATCH PARTIAL",
                    _ => return None,
                });
                for (clause, action) in [("UPDATE", &c.on_update), ("DELETE", &c.on_delete)] {
                    let action = match action.as_deref()? {
                        "a" => continue,
                        "r" => "RESTRICT",
                        "c" => "CASCADE",
                        // SET NULL and SET DEFAULT on delete may name columns: server-printed.
                        "n" if clause == "UPDATE" => "SET NULL",
                        "d" if clause == "UPDATE" => "SET DEFAULT",
                        _ => return None,
                    };
                    text.push_str(&format!(" ON {clause} {action}"));
                }
                text
            }
            _ => return None,
        };
        if c.deferrable {
            definition.push_str(" DEFERRABLE");
        }
        if c.initially_deferred {
            definition.push_str(" INITIALLY DEFERRED");
        }
        if !c.validated {
            definition.push_str(" NOT VALID");
        }
        Some(definition)
    }
}

/// The column `attnum` of `columns` (in attnum order).
fn column(columns: &[ColumnRow], attnum: i16) -> Option<&ColumnRow> {
    columns
        .binary_search_by_key(&i32::from(attnum), |c| c.ordinal)
        .ok()
        .map(|i| &columns[i])
}
