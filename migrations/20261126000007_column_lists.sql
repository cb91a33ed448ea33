-- A relation's columns are stored as one row of arrays (its column list) instead of a row per
-- column. A 10,000-table catalog has 200,000 columns: as rows, each one cost an entry in the
-- primary key's B-tree and its own WAL record, which made the columns most of a big
-- snapshot's write. As 10,000 lists they take a third of the time to write and half the space.
--
-- `catalog_columns` stays, as a view with the same columns as the table it replaces, for
-- column search and the change history. The arrays of one list are parallel (element i of each
-- is column i); an optional attribute's array is NULL when no column has it, and `unnest`
-- pads it with NULLs.
CREATE TABLE catalog_column_lists (
    catalog_id       uuid    NOT NULL,
    schema_name      text    NOT NULL,
    relation_name    text    NOT NULL,
    ordinals         int4[]  NOT NULL,
    names            text[]  NOT NULL,
    data_types       text[]  NOT NULL,
    nullable         bool[]  NOT NULL,
    default_exprs    text[],
    comments         text[],
    type_schemas     text[],
    type_names       text[],
    is_array         bool[]  NOT NULL,
    identities       text[],
    generated        text[],
    collation_names  text[],
    PRIMARY KEY (catalog_id, schema_name, relation_name)
);

INSERT INTO catalog_column_lists
SELECT catalog_id, schema_name, relation_name,
       array_agg(ordinal ORDER BY ordinal), array_agg(name ORDER BY ordinal),
       array_agg(data_type ORDER BY ordinal), array_agg(nullable ORDER BY ordinal),
       array_agg(default_expr ORDER BY ordinal), array_agg(comment ORDER BY ordinal),
       array_agg(type_schema ORDER BY ordinal), array_agg(type_name ORDER BY ordinal),
       array_agg(is_array ORDER BY ordinal), array_agg(identity ORDER BY ordinal),
       array_agg(generated ORDER BY ordinal), array_agg(collation_name ORDER BY ordinal)
FROM catalog_columns
GROUP BY catalog_id, schema_name, relation_name;

DROP TABLE catalog_columns;

-- A column list's columns, in order: what the view and the change history unnest a list with.
-- A plain SQL function, so the planner inlines it into the query that calls it.
CREATE FUNCTION column_list_columns(l catalog_column_lists)
RETURNS TABLE (ordinal int4, name text, data_type text, nullable boolean, default_expr text,
               comment text, type_schema text, type_name text, is_array boolean, identity text,
               generated text, collation_name text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT * FROM unnest(l.ordinals, l.names, l.data_types, l.nullable, l.default_exprs,
                         l.comments, l.type_schemas, l.type_names, l.is_array, l.identities,
                         l.generated, l.collation_names)
$$;

CREATE VIEW catalog_columns AS
SELECT l.catalog_id, l.schema_name, l.relation_name, c.ordinal, c.name, c.data_type,
       c.nullable, c.default_expr, c.comment, c.type_schema, c.type_name, c.is_array,
       c.identity, c.generated, c.collation_name
FROM catalog_column_lists l
CROSS JOIN LATERAL column_list_columns(l) c;
