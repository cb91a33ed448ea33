//! Deterministic synthetic catalogs: `synthetic:<schemas>x<tables>x<columns>`.

use pg_catalog_sync::catalog::{
    Column, Constraint, ConstraintKind, Index, Schema, Snapshot, Table,
};

const TYPES: [&str; 5] = [
    "integer",
    "text",
    "timestamp with time zone",
    "numeric(12,2)",
    "boolean",
];
const MAX_TABLES: u64 = 100_000;

#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub schemas: u32,
    pub tables: u32,
    pub columns: u32,
}

pub fn parse_size(spec: &str) -> Result<Size, String> {
    let parts: Vec<u32> = spec
        .split('x')
        .map(|p| p.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            format!("synthetic size must be <schemas>x<tables>x<columns>, got {spec:?}")
        })?;
    let [schemas, tables, columns] = parts[..] else {
        return Err(format!(
            "synthetic size must be <schemas>x<tables>x<columns>, got {spec:?}"
        ));
    };
    if u64::from(schemas) * u64::from(tables) > MAX_TABLES || columns > 1600 || columns == 0 {
        return Err(format!(
            "synthetic catalogs go up to {MAX_TABLES} tables of 1 to 1600 columns"
        ));
    }
    Ok(Size {
        schemas,
        tables,
        columns,
    })
}

/// The catalog: schema `s{i}`, tables `t{j}`, columns `id` (the primary key) then `c{k}`.
pub fn catalog(dbname: &str, size: Size) -> Snapshot {
    let schemas = (0..size.schemas)
        .map(|s| Schema {
            name: format!("s{s}"),
            owner: Some("postgres".into()),
            comment: None,
            tables: (0..size.tables).map(|t| table(t, size.columns)).collect(),
            ..Schema::default()
        })
        .collect();
    Snapshot {
        database: Some(pg_catalog_sync::catalog::DatabaseInfo {
            name: dbname.to_owned(),
            server_version: Some("synthetic".into()),
            encoding: Some("UTF8".into()),
            size_bytes: None,
            access_warnings: Vec::new(),
        }),
        schemas,
        access: None,
        objects: Vec::new(),
    }
}

fn table(t: u32, columns: u32) -> Table {
    let name = format!("t{t}");
    let columns: Vec<Column> = (0..columns)
        .map(|c| Column {
            name: if c == 0 { "id".into() } else { format!("c{c}") },
            data_type: if c == 0 {
                "bigint".into()
            } else {
                TYPES[(c as usize + t as usize) % TYPES.len()].into()
            },
            nullable: c != 0,
            ordinal: Some(c as i32 + 1),
            default: None,
            comment: (c == 0).then(|| format!("key of {name}")),
            ..Column::default()
        })
        .collect();
    Table {
        constraints: vec![Constraint {
            name: format!("{name}_pkey"),
            kind: ConstraintKind::PrimaryKey,
            columns: vec!["id".into()],
            definition: Some("PRIMARY KEY (id)".into()),
            references: None,
            deferrable: false,
            initially_deferred: false,
        }],
        indexes: vec![Index {
            name: format!("{name}_pkey"),
            columns: vec!["id".into()],
            unique: true,
            primary: true,
            method: Some("btree".into()),
            predicate: None,
            include: Vec::new(),
            expression_columns: Vec::new(),
            definition: None,
        }],
        columns,
        name,
        ..Table::default()
    }
}
