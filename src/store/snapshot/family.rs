//! The store tables a snapshot is written to ([`Family`]): their names, the columns that name
//! a row's unit, and the `COPY` statement each is written with, in the column order the
//! encoders of `rows` write.

/// One store table of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Schemas,
    Types,
    Sequences,
    Functions,
    Extensions,
    SchemaPrivileges,
    SchemaObjects,
    Relations,
    ColumnLists,
    Constraints,
    Indexes,
    Triggers,
    Dependencies,
    Privileges,
    Policies,
    Details,
}

impl Family {
    /// Every table, in the order a write copies them and a unit's hash digests them: a unit's
    /// own row (which carries the hash) comes after the unit's other rows.
    pub const ALL: [Family; 16] = [
        Family::Types,
        Family::Sequences,
        Family::Functions,
        Family::Extensions,
        Family::SchemaPrivileges,
        Family::SchemaObjects,
        Family::Schemas,
        Family::ColumnLists,
        Family::Constraints,
        Family::Indexes,
        Family::Triggers,
        Family::Dependencies,
        Family::Privileges,
        Family::Policies,
        Family::Relations,
        Family::Details,
    ];

    /// The tables of a schema unit, in [`Family::ALL`] order.
    pub const OF_SCHEMAS: [Family; 7] = [
        Family::Types,
        Family::Sequences,
        Family::Functions,
        Family::Extensions,
        Family::SchemaPrivileges,
        Family::SchemaObjects,
        Family::Schemas,
    ];

    /// The tables of a relation unit, in [`Family::ALL`] order.
    pub const OF_RELATIONS: [Family; 9] = [
        Family::ColumnLists,
        Family::Constraints,
        Family::Indexes,
        Family::Triggers,
        Family::Dependencies,
        Family::Privileges,
        Family::Policies,
        Family::Relations,
        Family::Details,
    ];

    /// Whether the table holds the units' own rows, which carry their hashes.
    pub fn holds_units(self) -> bool {
        matches!(self, Family::Schemas | Family::Relations)
    }

    /// Whether the table holds rows of relations (else of schemas).
    pub fn of_relations(self) -> bool {
        !matches!(
            self,
            Family::Schemas
                | Family::Types
                | Family::Sequences
                | Family::Functions
                | Family::Extensions
                | Family::SchemaPrivileges
                | Family::SchemaObjects
        )
    }

    pub fn table(self) -> &'static str {
        match self {
            Family::Schemas => "catalog_schemas",
            Family::Types => "catalog_types",
            Family::Sequences => "catalog_sequences",
            Family::Functions => "catalog_functions",
            Family::Extensions => "catalog_extensions",
            Family::Relations => "catalog_relations",
            Family::ColumnLists => "catalog_column_lists",
            Family::Constraints => "catalog_constraints",
            Family::Indexes => "catalog_indexes",
            Family::Triggers => "catalog_triggers",
            Family::Dependencies => "catalog_dependencies",
            Family::Details => "catalog_relation_details",
            Family::SchemaPrivileges => "catalog_schema_privileges",
            Family::SchemaObjects => "catalog_schema_objects",
            Family::Privileges => "catalog_privileges",
            Family::Policies => "catalog_policies",
        }
    }

    /// The columns that name a row's unit: its schema, and for a relation's row its relation.
    pub fn unit_columns(self) -> (&'static str, Option<&'static str>) {
        match self {
            Family::Schemas => ("name", None),
            Family::Types
            | Family::Sequences
            | Family::Functions
            | Family::Extensions
            | Family::SchemaPrivileges
            | Family::SchemaObjects => ("schema_name", None),
            Family::Relations | Family::Details => ("schema_name", Some("name")),
            _ => ("schema_name", Some("relation_name")),
        }
    }

    /// The `COPY` statement, in the column order of [`encode`].
    pub fn copy_statement(self) -> &'static str {
        match self {
            Family::Schemas => {
                "COPY catalog_schemas (catalog_id, name, owner, comment, content_hash) \
                 FROM STDIN (FORMAT binary)"
            }
            Family::Types => {
                "COPY catalog_types (catalog_id, schema_name, name, kind, owner, comment, labels, \
                 base_type, not_null, default_expr, checks, attributes, range_options, extension) \
                 FROM STDIN (FORMAT binary)"
            }
            Family::Sequences => {
                "COPY catalog_sequences (catalog_id, schema_name, name, data_type, start_value, \
                 increment, min_value, max_value, cache, cycle, owned_by_table, owned_by_column, \
                 extension, owner) FROM STDIN (FORMAT binary)"
            }
            Family::Functions => {
                "COPY catalog_functions (catalog_id, schema_name, name, arguments, result, \
                 language, kind, comment, definition, uses, extension, owner) \
                 FROM STDIN (FORMAT binary)"
            }
            Family::Extensions => {
                "COPY catalog_extensions (catalog_id, schema_name, name, version, members) \
                 FROM STDIN (FORMAT binary)"
            }
            Family::Relations => {
                "COPY catalog_relations (catalog_id, schema_name, name, kind, owner, comment, \
                 definition, parent_schema, parent_name, partition_bound, column_count, unlogged, \
                 rls_enabled, partition_key, rls_forced, extension, content_hash, \
                 row_estimate, total_bytes) \
                 FROM STDIN (FORMAT binary)"
            }
            Family::ColumnLists => {
                "COPY catalog_column_lists (catalog_id, schema_name, relation_name, ordinals, \
                 names, type_keys, nullable, default_exprs, comments, is_array, identities, \
                 generated, collation_names) FROM STDIN (FORMAT binary)"
            }
            Family::Constraints => {
                "COPY catalog_constraints (catalog_id, schema_name, relation_name, name, kind, \
                 columns, definition, ref_schema, ref_table, ref_columns, on_update, on_delete, \
                 is_deferrable, is_deferred) FROM STDIN (FORMAT binary)"
            }
            Family::Indexes => {
                "COPY catalog_indexes (catalog_id, schema_name, relation_name, name, columns, \
                 include_columns, is_unique, is_primary, method, predicate, definition, \
                 expression_columns) FROM STDIN (FORMAT binary)"
            }
            Family::Triggers => {
                "COPY catalog_triggers (catalog_id, schema_name, relation_name, name, timing, \
                 events, for_each, function, enabled, definition, columns) \
                 FROM STDIN (FORMAT binary)"
            }
            Family::Dependencies => {
                "COPY catalog_dependencies (catalog_id, schema_name, relation_name, ref_schema, \
                 ref_name, ref_columns) FROM STDIN (FORMAT binary)"
            }
            Family::SchemaObjects => {
                "COPY catalog_schema_objects (catalog_id, schema_name, kind, relation_name, \
                 name, body, extension) FROM STDIN (FORMAT binary)"
            }
            Family::SchemaPrivileges => {
                "COPY catalog_schema_privileges (catalog_id, schema_name, object_type, object, \
                 grantee, grantor, privilege, grantable) FROM STDIN (FORMAT binary)"
            }
            Family::Privileges => {
                "COPY catalog_privileges (catalog_id, schema_name, relation_name, object_type, \
                 column_name, grantee, grantor, privilege, grantable) FROM STDIN (FORMAT binary)"
            }
            Family::Policies => {
                "COPY catalog_policies (catalog_id, schema_name, relation_name, name, permissive, \
                 command, roles, using_expr, with_check, columns) FROM STDIN (FORMAT binary)"
            }
            Family::Details => {
                "COPY catalog_relation_details (catalog_id, schema_name, name, detail, \
                 columns_inside) FROM STDIN (FORMAT binary)"
            }
        }
    }
}
