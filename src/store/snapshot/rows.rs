//! How one unit's rows are encoded for each of the store tables a snapshot is written to.
//!
//! A snapshot is stored in two kinds of unit: a schema (its row, types, sequences, functions,
//! extensions, privileges, and its other objects: rules, collations, extended statistics, text
//! search configurations) and a relation (its row, column list, constraints, indexes,
//! triggers, view dependencies, privileges, policies and detail document). A unit is written and deleted as a whole, in every
//! table of its kind, and its content hash is the digest of exactly the rows it is stored as.

use sha2::Digest;
use uuid::Uuid;

use super::copy::CopyData;
use super::family::Family;
use crate::catalog::{Column, Links, RelationUse, Schema, Table};
use crate::ids::CatalogId;
use crate::store::column_types::ColumnTypes;
use crate::store::details;

/// A unit's content hash: the first 16 bytes of a SHA-256.
pub type ContentHash = [u8; 16];

/// What every encoder needs besides the unit itself.
pub struct Context<'a> {
    pub catalog: Uuid,
    pub types: &'a ColumnTypes,
    pub links: &'a Links,
}

impl<'a> Context<'a> {
    pub fn new(catalog: CatalogId, types: &'a ColumnTypes, links: &'a Links) -> Self {
        Self {
            catalog: catalog.uuid(),
            types,
            links,
        }
    }
}

/// One unit of a snapshot, with the hash it is stored with (none while it is hashed).
#[derive(Clone, Copy)]
pub enum Unit<'a> {
    Schema(&'a Schema),
    Relation { schema: &'a str, table: &'a Table },
}

/// Encodes `unit`'s rows of `family` (none when the family is of the other kind of unit).
pub fn encode(
    family: Family,
    out: &mut CopyData,
    cx: &Context<'_>,
    unit: Unit<'_>,
    hash: Option<&ContentHash>,
) {
    match (unit, family.of_relations()) {
        (Unit::Schema(schema), false) => schema_rows(family, out, &cx.catalog, schema, hash),
        (Unit::Relation { schema, table }, true) => {
            relation_rows(family, out, cx, schema, table, hash)
        }
        _ => {}
    }
}

/// A unit's content hash: the digest of its rows in every table of its kind but the detail
/// documents (which only repeat the rows, and the links that are digested instead), in
/// [`Family::ALL`] order, leaving out the hash itself and the statistics that move with the
/// data. It is fed the unit's rows as they are encoded (see [`content_hash`]), and finished
/// with the unit's own row.
#[derive(Clone, Default)]
pub struct UnitHasher(sha2::Sha256);

impl UnitHasher {
    /// Digests the unit's encoded rows of a table that does not hold the units' own rows.
    pub fn add(&mut self, encoded: &[u8]) {
        self.0.update(encoded);
    }

    /// Digests the unit's own row (without hash and statistics) and its links: the hash.
    pub fn finish(
        mut self,
        cx: &Context<'_>,
        unit: Unit<'_>,
        scratch: &mut CopyData,
    ) -> ContentHash {
        scratch.0.clear();
        for family in [Family::Schemas, Family::Relations] {
            encode(family, scratch, cx, unit, None);
        }
        if let Unit::Relation { schema, table } = unit {
            cx.links.digest_into(schema, &table.name, &mut scratch.0);
        }
        self.0.update(&scratch.0);
        let digest = self.0.finalize();
        digest[..16].try_into().expect("a SHA-256 has 32 bytes")
    }
}

/// The content hash of `unit` (see [`UnitHasher`]), from its rows encoded for this alone.
pub fn content_hash(cx: &Context<'_>, unit: Unit<'_>, scratch: &mut CopyData) -> ContentHash {
    let mut hasher = UnitHasher::default();
    for family in Family::ALL {
        if family != Family::Details && !family.holds_units() {
            scratch.0.clear();
            encode(family, scratch, cx, unit, None);
            hasher.add(&scratch.0);
        }
    }
    hasher.finish(cx, unit, scratch)
}

fn hash_field(out: &mut CopyData, hash: Option<&ContentHash>) {
    out.field(hash.map(|h| &h[..]));
}

fn schema_rows(
    family: Family,
    out: &mut CopyData,
    catalog: &Uuid,
    s: &Schema,
    hash: Option<&ContentHash>,
) {
    match family {
        Family::Schemas => {
            out.tuple(5);
            out.uuid(catalog);
            out.text(Some(&s.name));
            out.text(s.owner.as_deref());
            out.text(s.comment.as_deref());
            hash_field(out, hash);
        }
        Family::Types => {
            for t in &s.types {
                out.tuple(14);
                out.uuid(catalog);
                out.text(Some(&s.name));
                out.text(Some(&t.name));
                out.text(Some(t.kind.as_str()));
                out.text(t.owner.as_deref());
                out.text(t.comment.as_deref());
                out.text_array(Some(&t.labels));
                out.text(t.base_type.as_deref());
                out.boolean(t.not_null);
                out.text(t.default.as_deref());
                out.text_array(Some(&t.checks));
                let attributes =
                    serde_json::to_string(&t.attributes).expect("type attributes serialize");
                out.jsonb(&attributes);
                out.text(t.range_options.as_deref());
                out.text(t.extension.as_deref());
            }
        }
        Family::Sequences => {
            for q in &s.sequences {
                out.tuple(14);
                out.uuid(catalog);
                out.text(Some(&s.name));
                out.text(Some(&q.name));
                out.text(Some(&q.data_type));
                for value in [q.start, q.increment, q.min, q.max, q.cache] {
                    out.int8(Some(value));
                }
                out.boolean(q.cycle);
                let owner = q.owned_by.as_ref();
                let table = owner.map(|o| format!("{}.{}", o.schema, o.table));
                out.text(table.as_deref());
                out.text(owner.map(|o| o.column.as_str()));
                out.text(q.extension.as_deref());
                out.text(q.owner.as_deref());
            }
        }
        Family::Functions => {
            for f in &s.functions {
                out.tuple(12);
                out.uuid(catalog);
                out.text(Some(&s.name));
                out.text(Some(&f.name));
                out.text(Some(&f.arguments));
                out.text(f.result.as_deref());
                out.text(Some(&f.language));
                out.text(Some(&f.kind));
                out.text(f.comment.as_deref());
                out.text(f.definition.as_deref());
                match f.uses.is_empty() {
                    true => out.field(None),
                    false => {
                        let uses = serde_json::to_string(&f.uses).expect("relation uses serialize");
                        out.jsonb(&uses);
                    }
                }
                out.text(f.extension.as_deref());
                out.text(f.owner.as_deref());
            }
        }
        Family::Extensions => {
            for x in &s.extensions {
                out.tuple(5);
                out.uuid(catalog);
                out.text(Some(&s.name));
                out.text(Some(&x.name));
                out.text(x.version.as_deref());
                let members = serde_json::to_string(&x.members).expect("members serialize");
                out.jsonb(&members);
            }
        }
        Family::SchemaObjects => {
            for o in &s.objects {
                out.tuple(7);
                out.uuid(catalog);
                out.text(Some(&s.name));
                out.text(Some(o.kind().as_str()));
                out.text(Some(o.relation().unwrap_or_default()));
                out.text(Some(o.name()));
                let body = serde_json::to_string(o).expect("objects serialize");
                out.jsonb(&body);
                out.text(o.extension());
            }
        }
        Family::SchemaPrivileges => {
            for p in &s.privileges {
                out.tuple(8);
                out.uuid(catalog);
                out.text(Some(&s.name));
                out.text(Some(p.object_type.as_str()));
                out.text(Some(&p.object));
                out.text(Some(&p.grantee));
                out.text(Some(&p.grantor));
                out.text(Some(&p.privilege));
                out.boolean(p.grantable);
            }
        }
        _ => {}
    }
}

fn relation_rows(
    family: Family,
    out: &mut CopyData,
    cx: &Context<'_>,
    schema: &str,
    t: &Table,
    hash: Option<&ContentHash>,
) {
    let catalog = &cx.catalog;
    let head = |out: &mut CopyData, fields: i16| {
        out.tuple(fields);
        out.uuid(catalog);
        out.text(Some(schema));
        out.text(Some(&t.name));
    };
    match family {
        Family::Relations => {
            let parent = t.partition_of.as_ref();
            head(out, 19);
            out.text(Some(t.kind.as_str()));
            out.text(t.owner.as_deref());
            out.text(t.comment.as_deref());
            out.text(t.definition.as_deref());
            out.text(parent.map(|p| p.schema.as_str()));
            out.text(parent.map(|p| p.name.as_str()));
            out.text(t.partition_bound.as_deref());
            out.int4(t.columns.len() as i32);
            out.boolean(t.unlogged);
            out.boolean(t.rls_enabled);
            out.text(t.partition_key.as_deref());
            out.boolean(t.rls_forced);
            out.text(t.extension.as_deref());
            // The hash and the statistics come last: a hashed row leaves all three out.
            if hash.is_some() {
                hash_field(out, hash);
                out.int8(t.row_estimate);
                out.int8(t.total_bytes);
            }
        }
        Family::ColumnLists if !t.columns.is_empty() => {
            head(out, 13);
            column_list(out, cx.types, &t.columns);
        }
        Family::Constraints => {
            for k in &t.constraints {
                let target = k.references.as_ref();
                head(out, 14);
                out.text(Some(&k.name));
                out.text(Some(k.kind.as_str()));
                out.text_array(Some(&k.columns));
                out.text(k.definition.as_deref());
                out.text(target.map(|r| r.schema.as_str()));
                out.text(target.map(|r| r.table.as_str()));
                out.text_array(target.map(|r| r.columns.as_slice()));
                out.text(target.and_then(|r| r.on_update.as_deref()));
                out.text(target.and_then(|r| r.on_delete.as_deref()));
                out.boolean(k.deferrable);
                out.boolean(k.initially_deferred);
            }
        }
        Family::Indexes => {
            for i in &t.indexes {
                head(out, 12);
                out.text(Some(&i.name));
                out.text_array(Some(&i.columns));
                out.text_array(Some(&i.include));
                out.boolean(i.unique);
                out.boolean(i.primary);
                out.text(i.method.as_deref());
                out.text(i.predicate.as_deref());
                out.text(i.definition.as_deref());
                out.text_array(Some(&i.expression_columns));
            }
        }
        Family::Triggers => {
            for g in &t.triggers {
                head(out, 11);
                out.text(Some(&g.name));
                out.text(Some(&g.timing));
                out.text_array(Some(&g.events));
                out.text(Some(&g.for_each));
                out.text(Some(&g.function));
                out.boolean(g.enabled);
                out.text(Some(&g.definition));
                out.text_array(Some(&g.columns));
            }
        }
        Family::Dependencies => {
            // A source may name a relation more than once; the table holds each pair once.
            for d in RelationUse::merged(&t.depends_on) {
                head(out, 6);
                out.text(Some(&d.schema));
                out.text(Some(&d.name));
                out.text_array(d.columns.as_deref());
            }
        }
        Family::Privileges => {
            for p in &t.privileges {
                head(out, 9);
                out.text(Some(p.object_type.as_str()));
                out.text(p.column.as_deref());
                out.text(Some(&p.grantee));
                out.text(Some(&p.grantor));
                out.text(Some(&p.privilege));
                out.boolean(p.grantable);
            }
        }
        Family::Policies => {
            for p in &t.policies {
                head(out, 10);
                out.text(Some(&p.name));
                out.boolean(p.permissive);
                out.text(Some(&p.command));
                out.text_array(Some(&p.roles));
                out.text(p.using.as_deref());
                out.text(p.with_check.as_deref());
                out.text_array(Some(&p.columns));
            }
        }
        Family::Details => {
            head(out, 5);
            out.text(Some(&details::document(schema, t, cx.links)));
            out.boolean(false);
        }
        _ => {}
    }
}

/// A relation's column list: one array per attribute, element i of each for column i; an
/// optional attribute that no column has is NULL. Types go as their keys in `column_types`.
fn column_list(out: &mut CopyData, types: &ColumnTypes, columns: &[Column]) {
    let ordinals = columns
        .iter()
        .enumerate()
        .map(|(i, c)| Some(c.ordinal.unwrap_or(i as i32 + 1).to_be_bytes()));
    out.array(CopyData::INT4, ordinals);
    out.array(
        CopyData::TEXT,
        columns.iter().map(|c| Some(c.name.as_bytes())),
    );
    out.array(
        CopyData::UUID,
        columns.iter().map(|c| Some(types.key_of(c).into_bytes())),
    );
    let flags = |out: &mut CopyData, f: fn(&Column) -> bool| {
        out.array(
            CopyData::BOOL,
            columns.iter().map(|c| Some([u8::from(f(c))])),
        );
    };
    let optional = |out: &mut CopyData, f: fn(&Column) -> Option<&str>| match columns
        .iter()
        .any(|c| f(c).is_some())
    {
        true => out.array(
            CopyData::TEXT,
            columns.iter().map(|c| f(c).map(str::as_bytes)),
        ),
        false => out.field(None),
    };
    flags(out, |c| c.nullable);
    optional(out, |c| c.default.as_deref());
    optional(out, |c| c.comment.as_deref());
    flags(out, |c| c.is_array);
    optional(out, |c| c.identity.as_deref());
    optional(out, |c| c.generated.as_deref());
    optional(out, |c| c.collation.as_deref());
}
