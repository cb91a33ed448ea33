-- Who may do what in a snapshot: privileges (one ACL entry a row, as aclexplode gives it),
-- row-level security policies, and the database-wide roles and default privileges.

-- A relation's own and its columns' privileges: rows of the relation's unit.
CREATE TABLE catalog_privileges (
    catalog_id     uuid    NOT NULL,
    schema_name    text    NOT NULL,
    relation_name  text    NOT NULL,
    object_type    text    NOT NULL,       -- table, view, column
    column_name    text,                   -- for a column grant
    grantee        text    NOT NULL,       -- PUBLIC for every role
    grantor        text    NOT NULL,
    privilege      text    NOT NULL,
    grantable      boolean NOT NULL
);
CREATE INDEX catalog_privileges_unit ON catalog_privileges (catalog_id, schema_name, relation_name);

-- The privileges of a schema and of its sequences, functions and types: rows of the schema's
-- unit. `object` is the schema's own name for a schema, `name(arguments)` for a function.
CREATE TABLE catalog_schema_privileges (
    catalog_id     uuid    NOT NULL,
    schema_name    text    NOT NULL,
    object_type    text    NOT NULL,       -- schema, sequence, function, type
    object         text    NOT NULL,
    grantee        text    NOT NULL,
    grantor        text    NOT NULL,
    privilege      text    NOT NULL,
    grantable      boolean NOT NULL
);
CREATE INDEX catalog_schema_privileges_unit ON catalog_schema_privileges (catalog_id, schema_name);

-- Row-level security policies: rows of the relation's unit.
CREATE TABLE catalog_policies (
    catalog_id     uuid    NOT NULL,
    schema_name    text    NOT NULL,
    relation_name  text    NOT NULL,
    name           text    NOT NULL,
    permissive     boolean NOT NULL,
    command        text    NOT NULL,       -- ALL, SELECT, INSERT, UPDATE, DELETE
    roles          text[]  NOT NULL,
    using_expr     text,
    with_check     text,
    PRIMARY KEY (catalog_id, schema_name, relation_name, name)
);

ALTER TABLE catalog_relations ADD COLUMN rls_forced boolean NOT NULL DEFAULT false;

-- The roles a snapshot names, its default privileges, and what the source user could not
-- read: facts of the whole database, rewritten with every snapshot like `database`.
ALTER TABLE catalogs ADD COLUMN access jsonb;
