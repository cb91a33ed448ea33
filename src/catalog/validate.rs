//! What a snapshot from a metadata service must satisfy before anything of it is written.

use super::{MAX_NAME_BYTES, Snapshot};

impl Snapshot {
    /// Checks what PostgreSQL itself guarantees of a catalog, so that a broken external
    /// service's payload is refused as a whole instead of being half-written.
    pub fn validate(&self) -> Result<(), String> {
        fn name(kind: &str, n: &str) -> Result<(), String> {
            if n.is_empty() {
                return Err(format!("{kind} with an empty name"));
            }
            if n.contains('\0') {
                return Err(format!("{kind} name contains a NUL byte"));
            }
            if n.len() > MAX_NAME_BYTES {
                return Err(format!("{kind} name longer than {MAX_NAME_BYTES} bytes"));
            }
            Ok(())
        }
        let mut schemas = std::collections::HashSet::new();
        for schema in &self.schemas {
            name("schema", &schema.name)?;
            if !schemas.insert(schema.name.as_str()) {
                return Err(format!("schema {:?} appears twice", schema.name));
            }
            let mut tables = std::collections::HashSet::new();
            for table in &schema.tables {
                name("table", &table.name)?;
                if !tables.insert(table.name.as_str()) {
                    return Err(format!(
                        "table {:?}.{:?} appears twice",
                        schema.name, table.name
                    ));
                }
                let mut columns = std::collections::HashSet::new();
                let mut ordinals = std::collections::HashSet::new();
                for (i, column) in table.columns.iter().enumerate() {
                    name("column", &column.name)?;
                    if column.data_type.is_empty() || column.data_type.contains('\0') {
                        return Err(format!(
                            "column {:?} of {:?}.{:?} has an invalid type",
                            column.name, schema.name, table.name
                        ));
                    }
                    if !columns.insert(column.name.as_str())
                        || !ordinals.insert(column.ordinal.unwrap_or(i as i32 + 1))
                    {
                        return Err(format!(
                            "column {:?} of {:?}.{:?} appears twice",
                            column.name, schema.name, table.name
                        ));
                    }
                }
                let mut constraints = std::collections::HashSet::new();
                for c in &table.constraints {
                    name("constraint", &c.name)?;
                    if !constraints.insert(c.name.as_str()) {
                        return Err(format!("constraint {:?} appears twice", c.name));
                    }
                }
                let mut indexes = std::collections::HashSet::new();
                for i in &table.indexes {
                    name("index", &i.name)?;
                    if !indexes.insert(i.name.as_str()) {
                        return Err(format!("index {:?} appears twice", i.name));
                    }
                }
                let mut triggers = std::collections::HashSet::new();
                for t in &table.triggers {
                    name("trigger", &t.name)?;
                    if !triggers.insert(t.name.as_str()) {
                        return Err(format!("trigger {:?} appears twice", t.name));
                    }
                }
            }
            let mut types = std::collections::HashSet::new();
            for t in &schema.types {
                name("type", &t.name)?;
                if !types.insert(t.name.as_str()) {
                    return Err(format!("type {:?}.{:?} appears twice", schema.name, t.name));
                }
            }
            let mut sequences = std::collections::HashSet::new();
            for q in &schema.sequences {
                name("sequence", &q.name)?;
                if !sequences.insert(q.name.as_str()) {
                    return Err(format!(
                        "sequence {:?}.{:?} appears twice",
                        schema.name, q.name
                    ));
                }
            }
            let mut functions = std::collections::HashSet::new();
            for f in &schema.functions {
                name("function", &f.name)?;
                if f.arguments.contains('\0')
                    || !functions.insert((f.name.as_str(), f.arguments.as_str()))
                {
                    return Err(format!(
                        "function {:?}.{:?}({}) is invalid or appears twice",
                        schema.name, f.name, f.arguments
                    ));
                }
            }
            for e in &schema.extensions {
                name("extension", &e.name)?;
            }
        }
        Ok(())
    }
}
