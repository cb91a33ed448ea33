-- The remaining object kinds of a snapshot.

-- A schema's rewrite rules (of its relations, views' own rules left out), collations,
-- extended statistics and text search configurations: rows of the schema's unit. `kind` says
-- which; `relation_name` is the relation a rule is on ('' for the other kinds, whose names
-- are unique in their schema); `body` is the object as the API serves it.
CREATE TABLE catalog_schema_objects (
    catalog_id     uuid  NOT NULL,
    schema_name    text  NOT NULL,
    kind           text  NOT NULL,       -- rule, collation, statistics, text_search_configuration
    relation_name  text  NOT NULL,
    name           text  NOT NULL,
    body           jsonb NOT NULL,
    PRIMARY KEY (catalog_id, schema_name, kind, relation_name, name)
);

-- The objects an extension owns (`pg_depend` deptype 'e'), as `{type, schema, name}`: they are
-- left out of the other lists, as pg_dump leaves them out.
ALTER TABLE catalog_extensions ADD COLUMN members jsonb NOT NULL DEFAULT '[]';

-- The database-wide objects (publications, event triggers, foreign data wrappers and servers):
-- facts of the whole database, rewritten with every snapshot like `access`.
ALTER TABLE catalogs ADD COLUMN objects jsonb;
