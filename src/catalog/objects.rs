//! The object kinds beyond relations, types, sequences and functions: a schema's rewrite
//! rules, collations, extended statistics and text search configurations, and the database's
//! publications, event triggers, foreign data wrappers and foreign servers.
//!
//! Each is served as it is stored: the JSON of its variant, tagged with its `kind`.

use serde::{Deserialize, Serialize};

/// An object of a schema's unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SchemaObject {
    Rule(Rule),
    Collation(Collation),
    Statistics(Statistics),
    TextSearchConfiguration(TextSearchConfiguration),
}

/// The kinds of [`SchemaObject`], as the store and the API name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaObjectKind {
    Rule,
    Collation,
    Statistics,
    TextSearchConfiguration,
}

impl SchemaObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaObjectKind::Rule => "rule",
            SchemaObjectKind::Collation => "collation",
            SchemaObjectKind::Statistics => "statistics",
            SchemaObjectKind::TextSearchConfiguration => "text_search_configuration",
        }
    }
}

impl SchemaObject {
    pub fn kind(&self) -> SchemaObjectKind {
        match self {
            SchemaObject::Rule(_) => SchemaObjectKind::Rule,
            SchemaObject::Collation(_) => SchemaObjectKind::Collation,
            SchemaObject::Statistics(_) => SchemaObjectKind::Statistics,
            SchemaObject::TextSearchConfiguration(_) => SchemaObjectKind::TextSearchConfiguration,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            SchemaObject::Rule(o) => &o.name,
            SchemaObject::Collation(o) => &o.name,
            SchemaObject::Statistics(o) => &o.name,
            SchemaObject::TextSearchConfiguration(o) => &o.name,
        }
    }

    /// The extension that owns it, if any (a rule's is its relation's).
    pub fn extension(&self) -> Option<&str> {
        match self {
            SchemaObject::Rule(o) => o.extension.as_deref(),
            SchemaObject::Collation(o) => o.extension.as_deref(),
            SchemaObject::Statistics(o) => o.extension.as_deref(),
            SchemaObject::TextSearchConfiguration(o) => o.extension.as_deref(),
        }
    }

    /// The relation the object is on, where its name is only unique per relation (a rule's).
    pub fn relation(&self) -> Option<&str> {
        match self {
            SchemaObject::Rule(o) => Some(&o.table),
            _ => None,
        }
    }
}

/// A rewrite rule (`CREATE RULE`) on a table or view; a view's own `_RETURN` rule is its
/// definition, not a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rule {
    pub name: String,
    pub table: String,
    /// `SELECT`, `UPDATE`, `INSERT` or `DELETE`.
    pub event: String,
    pub instead: bool,
    /// `origin`, `always`, `replica` or `disabled` (`ALTER TABLE ... ENABLE RULE`).
    pub enabled: String,
    /// `pg_get_ruledef`'s `CREATE RULE` statement.
    pub definition: String,
    /// The extension that owns its relation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Collation {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// `libc`, `icu` or `default`.
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lc_collate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lc_ctype: Option<String>,
    /// The ICU locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    pub deterministic: bool,
    /// The encoding it is for; `None` for any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// The extension that owns it: such an object is not the schema author's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

/// An extended statistics object (`CREATE STATISTICS`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Statistics {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The relation it is on, schema-qualified where it is in another schema.
    pub table: String,
    /// Some of `ndistinct`, `dependencies`, `mcv`, `expressions`.
    pub kinds: Vec<String>,
    /// The columns it covers, in column order (its expressions are in `definition`).
    pub columns: Vec<String>,
    /// `pg_get_statisticsobjdef`'s `CREATE STATISTICS` statement.
    pub definition: String,
    /// The extension that owns it: such an object is not the schema author's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TextSearchConfiguration {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The parser, schema-qualified.
    pub parser: String,
    /// For each token type the configuration maps, its dictionaries in order.
    pub mappings: Vec<TokenMapping>,
    /// The extension that owns it: such an object is not the schema author's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenMapping {
    pub token: String,
    pub dictionaries: Vec<String>,
}

/// An object of the whole database. A foreign data wrapper an extension owns is not one (as
/// `pg_dump` leaves it out), but its servers show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DatabaseObject {
    Publication(Publication),
    EventTrigger(EventTrigger),
    ForeignDataWrapper(ForeignDataWrapper),
    ForeignServer(ForeignServer),
}

/// The kinds of [`DatabaseObject`], as the store and the API name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseObjectKind {
    Publication,
    EventTrigger,
    ForeignDataWrapper,
    ForeignServer,
}

impl DatabaseObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseObjectKind::Publication => "publication",
            DatabaseObjectKind::EventTrigger => "event_trigger",
            DatabaseObjectKind::ForeignDataWrapper => "foreign_data_wrapper",
            DatabaseObjectKind::ForeignServer => "foreign_server",
        }
    }
}

impl DatabaseObject {
    pub fn kind(&self) -> DatabaseObjectKind {
        match self {
            DatabaseObject::Publication(_) => DatabaseObjectKind::Publication,
            DatabaseObject::EventTrigger(_) => DatabaseObjectKind::EventTrigger,
            DatabaseObject::ForeignDataWrapper(_) => DatabaseObjectKind::ForeignDataWrapper,
            DatabaseObject::ForeignServer(_) => DatabaseObjectKind::ForeignServer,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            DatabaseObject::Publication(o) => &o.name,
            DatabaseObject::EventTrigger(o) => &o.name,
            DatabaseObject::ForeignDataWrapper(o) => &o.name,
            DatabaseObject::ForeignServer(o) => &o.name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Publication {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// `FOR ALL TABLES`.
    pub all_tables: bool,
    /// Some of `insert`, `update`, `delete`, `truncate`.
    pub operations: Vec<String>,
    /// `publish_via_partition_root`.
    pub via_root: bool,
    /// The tables named one by one, each with its column list and row filter.
    pub tables: Vec<PublishedTable>,
    /// The schemas published whole (`FOR TABLES IN SCHEMA`).
    pub schemas: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublishedTable {
    pub schema: String,
    pub table: String,
    /// The columns published; `None` for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// The `WHERE` expression rows must satisfy to be published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_filter: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventTrigger {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// `ddl_command_start`, `ddl_command_end`, `sql_drop` or `table_rewrite`.
    pub event: String,
    /// The function it runs, schema-qualified.
    pub function: String,
    /// `origin`, `always`, `replica` or `disabled`.
    pub enabled: String,
    /// The command tags it fires for (`WHEN TAG IN`); empty for all.
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ForeignDataWrapper {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator: Option<String>,
    /// `name=value` as the catalog stores them.
    pub options: Vec<String>,
}

/// A foreign server (user mappings are never read: they hold credentials).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ForeignServer {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Its wrapper, also where an extension owns it (`postgres_fdw`'s).
    pub wrapper: ForeignDataWrapper,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `name=value` as the catalog stores them.
    pub options: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_tagged_with_their_kind() {
        let rule = SchemaObject::Rule(Rule {
            name: "r".into(),
            table: "t".into(),
            event: "INSERT".into(),
            instead: true,
            enabled: "origin".into(),
            definition: "CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING".into(),
            extension: None,
        });
        let json = serde_json::to_value(&rule).unwrap();
        assert_eq!(json["kind"], rule.kind().as_str());
        assert_eq!(serde_json::from_value::<SchemaObject>(json).unwrap(), rule);
        let server = DatabaseObject::ForeignServer(ForeignServer {
            name: "s".into(),
            owner: None,
            wrapper: ForeignDataWrapper {
                name: "w".into(),
                owner: None,
                handler: None,
                validator: None,
                options: vec![],
            },
            server_type: None,
            version: None,
            options: vec!["host=x".into()],
        });
        let json = serde_json::to_value(&server).unwrap();
        assert_eq!(json["kind"], "foreign_server");
        assert_eq!(
            serde_json::from_value::<DatabaseObject>(json).unwrap(),
            server
        );
    }
}
