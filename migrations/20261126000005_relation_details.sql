-- Each relation's detail document, written with its snapshot (src/store/details.rs), so that
-- reading one is a primary-key lookup instead of seven lookups and a JSON assembly. The
-- statistics and the href are not in it: the reader adds them.
CREATE TABLE catalog_relation_details (
    catalog_id  uuid NOT NULL,
    schema_name text NOT NULL,
    name        text NOT NULL,
    detail      text NOT NULL,
    PRIMARY KEY (catalog_id, schema_name, name)
);

-- lz4 compresses these documents twice as fast as the default pglz; servers built without it
-- keep the default.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE catalog_relation_details ALTER COLUMN detail SET COMPRESSION lz4';
EXCEPTION WHEN OTHERS THEN
    NULL;
END
$$;

-- The documents of the catalogs already in the store, built the way reads built them so far.
INSERT INTO catalog_relation_details (catalog_id, schema_name, name, detail)
SELECT r.catalog_id, r.schema_name, r.name, json_build_object(
             'schema', r.schema_name, 'name', r.name, 'kind', r.kind, 'owner', r.owner,
             'comment', r.comment,
             'unlogged', r.unlogged, 'rls_enabled', r.rls_enabled, 'column_count', r.column_count,
             'definition', r.definition, 'partition_key', r.partition_key,
             'parent_schema', r.parent_schema, 'parent_name', r.parent_name,
             'partition_bound', r.partition_bound,
             'columns', coalesce((
                SELECT json_agg(json_build_object(
                         'name', c.name, 'ordinal', c.ordinal, 'type', c.data_type,
                         'nullable', c.nullable, 'default', c.default_expr, 'comment', c.comment,
                         'type_schema', c.type_schema, 'type_name', c.type_name,
                         'is_array', c.is_array, 'identity', c.identity, 'generated', c.generated,
                         'collation', c.collation_name) ORDER BY c.ordinal)
                FROM catalog_columns c
                WHERE c.catalog_id = r.catalog_id AND c.schema_name = r.schema_name
                  AND c.relation_name = r.name), '[]'),
             'primary_key', coalesce((
                SELECT to_json(k.columns) FROM catalog_constraints k
                WHERE k.catalog_id = r.catalog_id AND k.schema_name = r.schema_name
                  AND k.relation_name = r.name AND k.kind = 'primary_key'
                LIMIT 1), '[]'),
             'constraints', coalesce((
                SELECT json_agg(json_build_object(
                         'name', k.name, 'kind', k.kind, 'columns', k.columns,
                         'definition', k.definition, 'ref_schema', k.ref_schema,
                         'ref_table', k.ref_table, 'ref_columns', k.ref_columns,
                         'on_update', k.on_update, 'on_delete', k.on_delete,
                         'deferrable', k.is_deferrable, 'initially_deferred', k.is_deferred)
                       ORDER BY k.name)
                FROM catalog_constraints k
                WHERE k.catalog_id = r.catalog_id AND k.schema_name = r.schema_name
                  AND k.relation_name = r.name), '[]'),
             'indexes', coalesce((
                SELECT json_agg(json_build_object(
                         'name', i.name, 'columns', i.columns, 'include', i.include_columns,
                         'unique', i.is_unique, 'primary', i.is_primary, 'method', i.method,
                         'predicate', i.predicate, 'definition', i.definition) ORDER BY i.name)
                FROM catalog_indexes i
                WHERE i.catalog_id = r.catalog_id AND i.schema_name = r.schema_name
                  AND i.relation_name = r.name), '[]'),
             'triggers', coalesce((
                SELECT json_agg(json_build_object(
                         'name', t.name, 'timing', t.timing, 'events', t.events,
                         'for_each', t.for_each, 'function', t.function, 'enabled', t.enabled,
                         'definition', t.definition) ORDER BY t.name)
                FROM catalog_triggers t
                WHERE t.catalog_id = r.catalog_id AND t.schema_name = r.schema_name
                  AND t.relation_name = r.name), '[]'),
             'partitions', coalesce((
                SELECT json_agg(json_build_object(
                         'schema', p.schema_name, 'name', p.name,
                         'partition_bound', p.partition_bound) ORDER BY p.schema_name, p.name)
                FROM catalog_relations p
                WHERE p.catalog_id = r.catalog_id AND p.parent_schema = r.schema_name
                  AND p.parent_name = r.name), '[]'),
             'depends_on', coalesce((
                SELECT json_agg(json_build_object('schema', d.ref_schema, 'name', d.ref_name)
                                ORDER BY d.ref_schema, d.ref_name)
                FROM catalog_dependencies d
                WHERE d.catalog_id = r.catalog_id AND d.schema_name = r.schema_name
                  AND d.relation_name = r.name), '[]'),
             'dependent_views', coalesce((
                SELECT json_agg(json_build_object('schema', d.schema_name, 'name', d.relation_name)
                                ORDER BY d.schema_name, d.relation_name)
                FROM catalog_dependencies d
                WHERE d.catalog_id = r.catalog_id AND d.ref_schema = r.schema_name
                  AND d.ref_name = r.name), '[]')
           )::text
           FROM catalog_relations r;
