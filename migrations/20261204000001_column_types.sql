-- A column's type (its printed name, the type's schema and name) is stored once, in a dictionary
-- that every catalog shares, and a column list holds its columns' keys in that dictionary
-- instead of three arrays of text. A 10,000-table catalog has 200,000 columns of a handful of
-- types: the three arrays were 600,000 elements, each received, copied and stored on its own,
-- about half of the column lists' `COPY` in the store (in psql, the same lists copied in 65-109
-- ms with one small array of type numbers, against 120-172 ms with the three arrays).
--
-- A key is the type's own digest (`column_type_key`, which the worker computes the same way),
-- so that the same type has the same key in every catalog and every snapshot: the change
-- history still compares column lists as whole rows, and writers need no round trip to learn
-- keys. Entries are never changed or deleted: an entry no list uses any more is a few bytes.
CREATE TABLE column_types (
    key          uuid PRIMARY KEY,
    data_type    text NOT NULL,
    type_schema  text,
    type_name    text
);

-- The first 16 bytes of the SHA-256 of the three values, each as its length in characters, a
-- colon and the value, or a dash for NULL, separated by bars. `src/store/snapshot.rs` computes
-- the same (`column_type_key`); a test compares the two.
CREATE FUNCTION column_type_key(data_type text, type_schema text, type_name text)
RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT encode(substr(sha256(convert_to(
               length(data_type) || ':' || data_type
               || '|' || coalesce(length(type_schema) || ':' || type_schema, '-')
               || '|' || coalesce(length(type_name) || ':' || type_name, '-'),
               'UTF8')), 1, 16), 'hex')::uuid
$$;

INSERT INTO column_types (key, data_type, type_schema, type_name)
SELECT DISTINCT column_type_key(u.d, u.s, u.n), u.d, u.s, u.n
FROM catalog_column_lists l,
     unnest(l.data_types, l.type_schemas, l.type_names) AS u(d, s, n)
ON CONFLICT (key) DO NOTHING;

DROP VIEW catalog_columns;
DROP FUNCTION column_list_columns(catalog_column_lists);

ALTER TABLE catalog_column_lists ADD COLUMN type_keys uuid[];
UPDATE catalog_column_lists l
SET type_keys = ARRAY(
    SELECT column_type_key(u.d, u.s, u.n)
    FROM unnest(l.data_types, l.type_schemas, l.type_names) WITH ORDINALITY AS u(d, s, n, i)
    ORDER BY u.i);
ALTER TABLE catalog_column_lists
    ALTER COLUMN type_keys SET NOT NULL,
    DROP COLUMN data_types,
    DROP COLUMN type_schemas,
    DROP COLUMN type_names;

-- A column list's columns, in order, with their types looked up: what the view, column search
-- and the change history unnest a list with. A plain SQL function, so the planner inlines it.
CREATE FUNCTION column_list_columns(l catalog_column_lists)
RETURNS TABLE (ordinal int4, name text, data_type text, nullable boolean, default_expr text,
               comment text, type_schema text, type_name text, is_array boolean, identity text,
               generated text, collation_name text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT u.ordinal, u.name, t.data_type, u.nullable, u.default_expr, u.comment,
           t.type_schema, t.type_name, u.is_array, u.identity, u.generated, u.collation_name
    FROM unnest(l.ordinals, l.names, l.type_keys, l.nullable, l.default_exprs, l.comments,
                l.is_array, l.identities, l.generated, l.collation_names) WITH ORDINALITY
         AS u(ordinal, name, type_key, nullable, default_expr, comment, is_array, identity,
              generated, collation_name, i)
    LEFT JOIN column_types t ON t.key = u.type_key
    ORDER BY u.i
$$;

CREATE VIEW catalog_columns AS
SELECT l.catalog_id, l.schema_name, l.relation_name, c.ordinal, c.name, c.data_type,
       c.nullable, c.default_expr, c.comment, c.type_schema, c.type_name, c.is_array,
       c.identity, c.generated, c.collation_name
FROM catalog_column_lists l
CROSS JOIN LATERAL column_list_columns(l) c;
