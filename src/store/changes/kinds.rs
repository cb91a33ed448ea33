//! The kinds of object the change history compares: each one's snapshot table, how its rows
//! are named, and which of their attributes are not part of a definition.

/// One kind of compared object: its snapshot table and how its rows are named.
pub(super) struct Compared {
    pub object: &'static str,
    /// Where the table holds several kinds of object: the column naming each row's kind, which
    /// the history records as its object (else `object`).
    pub kind_column: Option<&'static str>,
    /// Where a row holds its object as one JSON document: that column, whose attributes are
    /// compared (else the row's columns are).
    pub document: Option<&'static str>,
    pub table: &'static str,
    /// Whether its rows belong to a schema's unit (types, sequences, functions, privileges on
    /// them) rather than a relation's: they are set aside and compared by schema.
    pub of_schemas: bool,
    /// The expressions naming a row: relation, then the object within it ('' for a relation).
    /// A schema's object is named as a relation is (a function with its arguments).
    pub relation: &'static str,
    pub name: &'static str,
    /// Attributes that are not part of the object's definition: keys, and statistics that move
    /// with the data.
    pub ignored: &'static [&'static str],
    /// Whether rows name the extension that owns them (`extension`): extensions' members are
    /// not compared, as they are in no list (their extension's version and members are).
    pub of_extensions: bool,
    /// Attributes read since a later version: an earlier row stored without one (NULL) is not
    /// compared on it, so that the first write after an upgrade records no change for it.
    pub read_later: &'static [&'static str],
}

/// The defaults of [`Compared`]'s optional fields.
const ONE_KIND: Compared = Compared {
    object: "",
    kind_column: None,
    document: None,
    table: "",
    of_schemas: false,
    relation: "",
    name: "",
    ignored: &[],
    of_extensions: false,
    read_later: &[],
};

pub(super) const COMPARED: [Compared; 13] = [
    Compared {
        object: "relation",
        table: "catalog_relations",
        of_schemas: false,
        relation: "name",
        name: "''",
        ignored: &[
            "catalog_id",
            "schema_name",
            "name",
            "row_estimate",
            "total_bytes",
            "column_count",
            "content_hash",
            "written_by",
        ],
        ..ONE_KIND
    },
    Compared {
        object: "column",
        // A relation's columns are stored as one list (see `compared_rows`).
        table: "catalog_column_lists",
        of_schemas: false,
        relation: "relation_name",
        name: "name",
        ignored: &["catalog_id", "schema_name", "relation_name", "name"],
        ..ONE_KIND
    },
    Compared {
        object: "constraint",
        table: "catalog_constraints",
        of_schemas: false,
        relation: "relation_name",
        name: "name",
        ignored: &["catalog_id", "schema_name", "relation_name", "name"],
        ..ONE_KIND
    },
    Compared {
        object: "index",
        table: "catalog_indexes",
        of_schemas: false,
        relation: "relation_name",
        name: "name",
        // What its expressions read follows from its definition.
        ignored: &[
            "catalog_id",
            "schema_name",
            "relation_name",
            "name",
            "expression_columns",
        ],
        ..ONE_KIND
    },
    Compared {
        object: "trigger",
        table: "catalog_triggers",
        of_schemas: false,
        relation: "relation_name",
        name: "name",
        // What its UPDATE OF list and WHEN condition read follows from its definition.
        ignored: &[
            "catalog_id",
            "schema_name",
            "relation_name",
            "name",
            "columns",
        ],
        ..ONE_KIND
    },
    Compared {
        object: "privilege",
        table: "catalog_privileges",
        of_schemas: false,
        relation: "relation_name",
        // One ACL entry: what, on which column, to whom, by whom; e.g. `UPDATE (email) to
        // reporting by owner`. Only its grant option can be altered.
        name: "privilege || coalesce(' (' || column_name || ')', '') || ' to ' || grantee \
               || ' by ' || grantor",
        ignored: &["catalog_id", "schema_name", "relation_name"],
        ..ONE_KIND
    },
    Compared {
        object: "policy",
        table: "catalog_policies",
        of_schemas: false,
        relation: "relation_name",
        name: "name",
        // What its expressions read follows from them.
        ignored: &[
            "catalog_id",
            "schema_name",
            "relation_name",
            "name",
            "columns",
        ],
        ..ONE_KIND
    },
    Compared {
        object: "type",
        table: "catalog_types",
        of_schemas: true,
        relation: "name",
        name: "''",
        ignored: &["catalog_id", "schema_name", "name"],
        of_extensions: true,
        ..ONE_KIND
    },
    Compared {
        object: "sequence",
        table: "catalog_sequences",
        of_schemas: true,
        relation: "name",
        name: "''",
        ignored: &["catalog_id", "schema_name", "name"],
        of_extensions: true,
        read_later: &["owner"],
        ..ONE_KIND
    },
    Compared {
        object: "function",
        table: "catalog_functions",
        of_schemas: true,
        relation: "name || '(' || arguments || ')'",
        name: "''",
        // What its body reads follows from its definition.
        ignored: &["catalog_id", "schema_name", "name", "uses"],
        of_extensions: true,
        read_later: &["owner"],
        ..ONE_KIND
    },
    Compared {
        // An installed extension: its version. What it owns follows from its version.
        object: "extension",
        table: "catalog_extensions",
        of_schemas: true,
        relation: "name",
        name: "''",
        ignored: &["catalog_id", "schema_name", "name", "members"],
        ..ONE_KIND
    },
    Compared {
        // The privileges of a schema (named by itself), a sequence, a function or a type.
        object: "privilege",
        table: "catalog_schema_privileges",
        of_schemas: true,
        relation: "object",
        name: "privilege || ' to ' || grantee || ' by ' || grantor",
        ignored: &["catalog_id", "schema_name", "object"],
        ..ONE_KIND
    },
    Compared {
        // Rules (named within their relation), collations, extended statistics and text
        // search configurations, each compared by the attributes of its document.
        object: "schema_object",
        kind_column: Some("kind"),
        document: Some("body"),
        table: "catalog_schema_objects",
        of_schemas: true,
        relation: "CASE relation_name WHEN '' THEN name ELSE relation_name END",
        name: "CASE relation_name WHEN '' THEN '' ELSE name END",
        ignored: &["kind", "name", "table"],
        of_extensions: true,
        ..ONE_KIND
    },
];
