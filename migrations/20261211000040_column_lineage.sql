-- Column-exact lineage, for impact analysis (`.../dependents`) and the blast radius of
-- changes: what each view, SQL-standard function body, index expression, trigger and policy
-- reads, as the source's pg_depend records it. Rows stored before this migration have none:
-- a view's lineage then counts as reading its relations whole until the next sync.

-- The columns a view reads of the relation; NULL: the whole relation.
ALTER TABLE catalog_dependencies ADD COLUMN ref_columns text[];

-- A SQL-standard body's reads: [{"schema", "name", "columns"}], "columns" null for the whole
-- relation; NULL for a function without such a body.
ALTER TABLE catalog_functions ADD COLUMN uses jsonb;

-- The columns an index's key expressions and predicate read.
ALTER TABLE catalog_indexes ADD COLUMN expression_columns text[];

-- The columns of a trigger's UPDATE OF list and of its WHEN condition.
ALTER TABLE catalog_triggers ADD COLUMN columns text[];

-- The columns a policy's expressions read.
ALTER TABLE catalog_policies ADD COLUMN columns text[];
