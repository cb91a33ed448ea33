//! Search across catalogs: schemas, relations and columns whose names or comments match a
//! query, ranked, and the dictionary of names (`search_names`) the snapshot writes fill.
//!
//! A search first matches the query against the dictionary, which holds each name once
//! whatever the number of catalogs and tables that have it (trigram index on `lower(name)`),
//! and ranks the names: an exact match (case-insensitive), then names that start with the
//! query, then names that contain it, then names merely similar to it (trigram similarity of at
//! least 0.3); within each class by similarity. Names of equal class and similarity form a
//! *group*, whose occurrences are looked up by exact name (B-tree on relations and schemas, GIN
//! on a column list's names) and listed in (catalog, schema, relation, name, kind) order. Each
//! group is one statement with a limit: a name that occurs 200,000 times costs what a page of
//! it costs. Comment matches come after every name match: comments that contain the query
//! (case-insensitive, for queries of three characters or more; typos are only forgiven in
//! names, as a comment's many words would match a typo of one in most comments), ranked by word
//! similarity; an object whose name matched is not listed again for its comment.

use serde::{Deserialize, Serialize};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::Tx;
use super::reads::like_pattern;

/// Adds names to the dictionary: the names of the units a snapshot write wrote, in order, so
/// that two writes adding the same new names take their locks in the same order.
pub async fn insert_names(tx: &mut Tx<'_>, names: &[String]) -> sqlx::Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        r#"INSERT INTO search_names (name) SELECT * FROM unnest($1::text[])
           ON CONFLICT (name) DO NOTHING"#,
        names
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How a name matches the query, best first.
pub const EXACT: i32 = 0;
pub const PREFIX: i32 = 1;
pub const CONTAINS: i32 = 2;
pub const SIMILAR: i32 = 3;
/// The class of comment matches, after every name match.
pub const COMMENTS: i32 = 4;

/// Where a page starts in the ranking: a group, by its class and score, and how many of its
/// results come before the page. The comments are one group (`COMMENTS`, score 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub class: i32,
    pub score: f64,
    pub skip: i64,
}

impl Position {
    pub const START: Self = Self {
        class: EXACT,
        score: f64::INFINITY,
        skip: 0,
    };

    /// Whether the group of `class` and `score` ranks before this position's group.
    fn comes_after(&self, class: i32, score: f64) -> bool {
        (self.class, -self.score) > (class, -score)
    }
}

/// What to search for and where.
pub struct Query<'a> {
    /// The query as the client sent it, trimmed; matched in lower case.
    pub q: &'a str,
    pub catalog: Option<Uuid>,
    /// `schema`, `column`, or a relation kind (`table`, `view`, ...).
    pub kind: Option<&'a str>,
    /// The catalogs the caller reaches; `None` for all.
    pub only: Option<&'a [Uuid]>,
}

/// One object found.
#[derive(Debug, Clone)]
pub struct Hit {
    pub catalog_id: Uuid,
    pub host: String,
    pub port: i32,
    pub dbname: String,
    pub kind: String,
    pub schema: String,
    /// The relation of a column.
    pub relation: Option<String>,
    pub name: String,
    pub comment: Option<String>,
    /// Whether the name matched (else the comment).
    pub name_matched: bool,
    pub score: f64,
    /// Where the hit is in the ranking: the next page after it starts at `skip + 1`.
    pub position: Position,
}

/// A [`Hit`] from a row of a name or a comment query: their records are of different types
/// with the same fields.
macro_rules! hit {
    ($r:ident, $name_matched:expr, $score:expr) => {
        Hit {
            score: $score,
            catalog_id: $r.catalog_id,
            host: $r.host,
            port: $r.port,
            dbname: $r.dbname,
            kind: $r.kind,
            schema: $r.schema,
            relation: $r.relation,
            name: $r.name,
            comment: $r.comment,
            name_matched: $name_matched,
            position: Position::START,
        }
    };
}

/// A group of dictionary names of one class and score.
struct Group {
    class: i32,
    score: f64,
    names: Vec<String>,
    /// Whether a name of the group is among the most common column names in the store's
    /// statistics: see [`occurrences`].
    common: bool,
}

/// Up to `limit` hits from `from` on, in rank order.
///
/// The statements run in one transaction that plans each of them for its parameters
/// (`plan_cache_mode`: a generic plan cannot tell a name in every table from a rare one), reads
/// the tables through their indexes (`enable_seqscan`; see [`occurrences`]) and sets the
/// threshold of pg_trgm's `%`: a name matches with a similarity of 0.3 (a letter missing from
/// an eight-letter word scores 0.55).
pub async fn search(
    pool: &PgPool,
    query: &Query<'_>,
    from: Position,
    limit: i64,
) -> sqlx::Result<Vec<Hit>> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        r#"SELECT set_config('plan_cache_mode', 'force_custom_plan', true) AS plans,
                  set_config('enable_seqscan', 'off', true) AS scans,
                  set_config('pg_trgm.similarity_threshold', '0.3', true) AS names"#
    )
    .fetch_one(&mut *tx)
    .await?;
    let hits = ranked(&mut tx, query, from, limit).await?;
    tx.commit().await?;
    Ok(hits)
}

async fn ranked(
    tx: &mut Tx<'_>,
    query: &Query<'_>,
    from: Position,
    limit: i64,
) -> sqlx::Result<Vec<Hit>> {
    let pattern = like_pattern(query.q);
    let only = query.only.map(<[Uuid]>::to_vec);
    let mut hits = Vec::new();
    if from.class < COMMENTS {
        for group in groups(&mut **tx, query.q, &pattern).await? {
            if from.comes_after(group.class, group.score) {
                continue;
            }
            let skip = match (group.class, group.score) == (from.class, from.score) {
                true => from.skip,
                false => 0,
            };
            let take = limit - hits.len() as i64;
            let rows = occurrences(&mut **tx, &group, query, only.as_deref(), skip, take).await?;
            hits.extend(rows.into_iter().enumerate().map(|(i, row)| Hit {
                name_matched: true,
                score: group.score,
                position: Position {
                    class: group.class,
                    score: group.score,
                    skip: skip + i as i64,
                },
                ..row
            }));
            if hits.len() as i64 >= limit {
                return Ok(hits);
            }
        }
    }
    // A trigram index finds what holds a query of three characters or more; a shorter one
    // would have every comment read.
    if query.q.chars().count() < 3 {
        return Ok(hits);
    }
    let skip = match from.class {
        COMMENTS => from.skip,
        _ => 0,
    };
    let take = limit - hits.len() as i64;
    let rows = comments(&mut **tx, query, &pattern, only.as_deref(), skip, take).await?;
    hits.extend(rows.into_iter().enumerate().map(|(i, row)| Hit {
        position: Position {
            class: COMMENTS,
            score: 0.0,
            skip: skip + i as i64,
        },
        ..row
    }));
    Ok(hits)
}

/// The dictionary's names that match `q`, in groups of one class and score, best first.
async fn groups(db: impl PgExecutor<'_>, q: &str, pattern: &str) -> sqlx::Result<Vec<Group>> {
    let terms = sqlx::query!(
        r#"SELECT name AS "name!", class AS "class!", score AS "score!",
                  name = ANY(coalesce((
                      SELECT most_common_elems::text::text[] FROM pg_stats
                      WHERE schemaname = current_schema()
                        AND tablename = 'catalog_column_lists' AND attname = 'names'
                  ), '{}')) AS "common!"
           FROM (SELECT name,
                        CASE WHEN lower(name) = q THEN 0
                             WHEN starts_with(lower(name), q) THEN 1
                             WHEN strpos(lower(name), q) > 0 THEN 2
                             ELSE 3 END AS class,
                        round(similarity(lower(name), q)::numeric, 3)::float8 AS score
                 FROM search_names, lower($1) AS q
                 WHERE lower(name) LIKE lower($2) OR lower(name) % q) t
           ORDER BY class, score DESC, name"#,
        q,
        pattern
    )
    .fetch_all(db)
    .await?;
    let mut groups: Vec<Group> = Vec::new();
    for t in terms {
        match groups.last_mut() {
            Some(g) if g.class == t.class && g.score == t.score => {
                g.names.push(t.name);
                g.common |= t.common;
            }
            _ => groups.push(Group {
                class: t.class,
                score: t.score,
                names: vec![t.name],
                common: t.common,
            }),
        }
    }
    Ok(groups)
}

/// Where the group's names occur, in (catalog, schema, relation, name, kind) order: `take` of
/// them after the first `skip`. Each kind is read in its key order with a limit, so a name that
/// occurs in every table reads no more than the page, and a rare name is found through the name
/// indexes instead. The statistics of a column list's names only know the common names: they
/// guess any other name in 1 list of 200, which makes a limited walk of the lists in key order
/// look cheap for a name no list has, and a group of 100 rare names look like half the lists.
/// So the column lists are read with a limit only for a common name, and otherwise through the
/// index of names, never by a whole scan.
async fn occurrences(
    db: impl PgExecutor<'_>,
    group: &Group,
    query: &Query<'_>,
    only: Option<&[Uuid]>,
    skip: i64,
    take: i64,
) -> sqlx::Result<Vec<Hit>> {
    let rows = sqlx::query!(
        r#"SELECT m.catalog_id AS "catalog_id!", m.kind AS "kind!", m.schema AS "schema!",
                  m.relation, m.name AS "name!", m.comment,
                  c.host AS "host!", c.port AS "port!", c.dbname AS "dbname!"
           FROM (
               (SELECT s.catalog_id, 'schema' AS kind, s.name AS schema, NULL::text AS relation,
                       s.name, s.comment
                FROM catalog_schemas s
                WHERE s.name = ANY($1) AND ($2::text IS NULL OR $2 = 'schema')
                  AND ($3::uuid IS NULL OR s.catalog_id = $3)
                  AND ($4::uuid[] IS NULL OR s.catalog_id = ANY($4))
                ORDER BY s.catalog_id, s.name
                LIMIT $5::int8 + $6)
               UNION ALL
               (SELECT r.catalog_id, r.kind, r.schema_name, NULL, r.name, r.comment
                FROM catalog_relations r
                WHERE r.name = ANY($1) AND ($2::text IS NULL OR r.kind = $2)
                  AND r.extension IS NULL
                  AND ($3::uuid IS NULL OR r.catalog_id = $3)
                  AND ($4::uuid[] IS NULL OR r.catalog_id = ANY($4))
                ORDER BY r.catalog_id, r.schema_name, r.name
                LIMIT $5::int8 + $6)
               UNION ALL
               (SELECT l.catalog_id, 'column', l.schema_name, l.relation_name, col.name,
                       col.comment
                FROM catalog_column_lists l
                CROSS JOIN LATERAL unnest(l.names, l.comments) AS col (name, comment)
                WHERE l.names && $1 AND col.name = ANY($1)
                  AND ($2::text IS NULL OR $2 = 'column')
                  AND ($3::uuid IS NULL OR l.catalog_id = $3)
                  AND ($4::uuid[] IS NULL OR l.catalog_id = ANY($4))
                  AND NOT EXISTS (SELECT 1 FROM catalog_relations x
                                  WHERE x.catalog_id = l.catalog_id
                                    AND x.schema_name = l.schema_name
                                    AND x.name = l.relation_name AND x.extension IS NOT NULL)
                ORDER BY l.catalog_id, l.schema_name, l.relation_name, col.name
                LIMIT CASE WHEN $7 THEN $5::int8 + $6 END)
           ) m
           JOIN catalogs c ON c.id = m.catalog_id
           ORDER BY m.catalog_id, m.schema, coalesce(m.relation, ''), m.name, m.kind
           OFFSET $5 LIMIT $6"#,
        &group.names,
        query.kind,
        query.catalog,
        only,
        skip,
        take,
        group.common
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| hit!(r, true, 0.0)).collect())
}

/// Objects whose comment contains `q`, best word similarity first: `take` after the first
/// `skip`. Objects whose name matches are left out: they are listed for their name.
async fn comments(
    db: impl PgExecutor<'_>,
    query: &Query<'_>,
    pattern: &str,
    only: Option<&[Uuid]>,
    skip: i64,
    take: i64,
) -> sqlx::Result<Vec<Hit>> {
    let rows = sqlx::query!(
        r#"SELECT m.catalog_id AS "catalog_id!", m.kind AS "kind!", m.schema AS "schema!",
                  m.relation, m.name AS "name!", m.comment,
                  k.score AS "score!",
                  c.host AS "host!", c.port AS "port!", c.dbname AS "dbname!"
           FROM lower($1) AS q, lower($2) AS pattern,
                LATERAL (
               SELECT s.catalog_id, 'schema' AS kind, s.name AS schema, NULL::text AS relation,
                      s.name, s.comment
               FROM catalog_schemas s
               WHERE s.comment IS NOT NULL
                 AND lower(s.comment) LIKE pattern
                 AND NOT (lower(s.name) LIKE pattern OR lower(s.name) % q)
                 AND ($3::text IS NULL OR $3 = 'schema')
                 AND ($4::uuid IS NULL OR s.catalog_id = $4)
                 AND ($5::uuid[] IS NULL OR s.catalog_id = ANY($5))
               UNION ALL
               SELECT r.catalog_id, r.kind, r.schema_name, NULL, r.name, r.comment
               FROM catalog_relations r
               WHERE r.comment IS NOT NULL
                 AND lower(r.comment) LIKE pattern
                 AND NOT (lower(r.name) LIKE pattern OR lower(r.name) % q)
                 AND r.extension IS NULL
                 AND ($3::text IS NULL OR r.kind = $3)
                 AND ($4::uuid IS NULL OR r.catalog_id = $4)
                 AND ($5::uuid[] IS NULL OR r.catalog_id = ANY($5))
               UNION ALL
               SELECT l.catalog_id, 'column', l.schema_name, l.relation_name, col.name,
                      col.comment
               FROM catalog_column_lists l
               CROSS JOIN LATERAL unnest(l.names, l.comments) AS col (name, comment)
               WHERE l.comments IS NOT NULL
                 AND search_comments(l.comments) LIKE pattern
                 AND lower(col.comment) LIKE pattern
                 AND NOT (lower(col.name) LIKE pattern OR lower(col.name) % q)
                 AND ($3::text IS NULL OR $3 = 'column')
                 AND ($4::uuid IS NULL OR l.catalog_id = $4)
                 AND ($5::uuid[] IS NULL OR l.catalog_id = ANY($5))
                 AND NOT EXISTS (SELECT 1 FROM catalog_relations x
                                 WHERE x.catalog_id = l.catalog_id
                                   AND x.schema_name = l.schema_name
                                   AND x.name = l.relation_name AND x.extension IS NOT NULL)
           ) m
           CROSS JOIN LATERAL (
               SELECT round(word_similarity(q, lower(m.comment))::numeric, 3)::float8 AS score
           ) k
           JOIN catalogs c ON c.id = m.catalog_id
           ORDER BY k.score DESC,
                    m.catalog_id, m.schema, coalesce(m.relation, ''), m.name, m.kind
           OFFSET $6 LIMIT $7"#,
        query.q,
        pattern,
        query.kind,
        query.catalog,
        only,
        skip,
        take
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| hit!(r, false, r.score)).collect())
}
