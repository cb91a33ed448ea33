//! Entity-relationship diagrams of a catalog (see [`crate::erd`]): a schema's tables, or one
//! table and its foreign-key neighbours, as Mermaid, Graphviz dot or SVG.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::catalogs::ensure_catalog;
use super::extract::{PathParams, QueryParams, parse_id};
use super::openapi::{CatalogId, PastParams, ReadErrors};
use super::past::{self, Snapshot};
use crate::catalog::{MAX_NAME_BYTES, QualifiedName};
use crate::erd::{self, Diagram, Outside};
use crate::error::ApiError;
use crate::store::diagrams::{self, DRAWN_KINDS, Selection};
use crate::store::reads;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_erd))
}

/// Relations an SVG diagram lays out at most; the text formats have no limit.
pub const MAX_SVG_TABLES: usize = 1000;

/// What a diagram shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every table of every schema.
    Catalog,
    /// Every table of a schema, and the relations of other schemas they reference.
    Schema(String),
    /// A table, the tables it references and those referencing it.
    Focus(QualifiedName),
}

impl Scope {
    /// The scope `schema` and `table` (`schema.table`) ask for. In `table`, a schema or table
    /// name holding a dot is written in double quotes, as in SQL (`"a.b".c`); with `schema`
    /// given, a `table` of that schema may also be its name alone.
    pub fn parse(schema: Option<&str>, table: Option<&str>) -> Result<Self, ApiError> {
        // A qualified name: two names, a dot, and quotes (doubled inside) around either.
        let longest_table = 4 * MAX_NAME_BYTES + 5;
        for (field, value, longest, what) in [
            ("schema", schema, MAX_NAME_BYTES, "a name"),
            ("table", table, longest_table, "a qualified name"),
        ] {
            if let Some(v) = value
                && (v.len() > longest || v.contains('\0') || v.is_empty())
            {
                return Err(ApiError::validation(
                    field,
                    format!("must be {what} of 1 to {longest} bytes without NUL"),
                ));
            }
        }
        let Some(table) = table else {
            return Ok(schema.map_or(Self::Catalog, |s| Self::Schema(s.to_owned())));
        };
        let focus = match split_qualified(table) {
            Some((s, name)) => QualifiedName { schema: s, name },
            None => match schema {
                Some(s) => QualifiedName {
                    schema: s.to_owned(),
                    name: unquote(table).unwrap_or_else(|| table.to_owned()),
                },
                None => {
                    return Err(ApiError::validation(
                        "table",
                        "must be schema.table (quote a name holding a dot: \"a.b\".c)",
                    ));
                }
            },
        };
        if let Some(s) = schema
            && s != focus.schema
        {
            return Err(ApiError::validation(
                "table",
                format!("must be a table of schema {s:?}, the `schema` given"),
            ));
        }
        Ok(Self::Focus(focus))
    }
}

/// The `table` parameter naming `schema.name`: each part in double quotes when it holds a dot
/// or starts with a quote, else as it is.
pub fn table_param(schema: &str, name: &str) -> String {
    let part = |s: &str| match s.contains('.') || s.starts_with('"') {
        true => format!("\"{}\"", s.replace('"', "\"\"")),
        false => s.to_owned(),
    };
    format!("{}.{}", part(schema), part(name))
}

/// `schema.table`, either part possibly in double quotes (with `""` for a quote).
fn split_qualified(s: &str) -> Option<(String, String)> {
    let (schema, rest) = match s.strip_prefix('"') {
        Some(_) => {
            let end = quoted_end(s)?;
            (unquote(&s[..end])?, s[end..].strip_prefix('.')?)
        }
        None => {
            let (schema, rest) = s.split_once('.')?;
            (schema.to_owned(), rest)
        }
    };
    let name = if rest.starts_with('"') {
        unquote(rest)?
    } else {
        rest.to_owned()
    };
    (!schema.is_empty() && !name.is_empty()).then_some((schema, name))
}

/// Where the quoted identifier `s` starts with ends (just past its closing quote).
fn quoted_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            if bytes.get(i + 1) == Some(&b'"') {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// The name a whole quoted identifier stands for.
fn unquote(s: &str) -> Option<String> {
    (s.len() >= 2 && s.starts_with('"') && quoted_end(s) == Some(s.len()))
        .then(|| s[1..s.len() - 1].replace("\"\"", "\""))
}

/// A diagram, and the schema its boxes are named in (names of others are qualified).
pub struct Drawn {
    pub diagram: Diagram,
    pub home: Option<String>,
}

/// The diagram of `scope` in `catalog`: 404 for an unknown catalog, 400 naming the parameter
/// for an unknown schema or table.
pub async fn draw(state: &AppState, at: &Snapshot, scope: &Scope) -> Result<Drawn, ApiError> {
    ensure_catalog(state, at.catalog).await?;
    let (catalog, stored_as) = (at.catalog, at.stored_as);
    let mut conn = state.pool.acquire().await?;
    match scope {
        Scope::Catalog => {
            let tables = diagrams::tables(&mut conn, stored_as, Selection::Catalog).await?;
            Ok(Drawn {
                diagram: Diagram::new(
                    tables.into_iter().map(|t| (t.schema, t.table)).collect(),
                    Outside::Draw,
                ),
                home: None,
            })
        }
        Scope::Schema(schema) => {
            if !reads::schema_exists(&mut *conn, stored_as, schema).await? {
                return Err(ApiError::validation(
                    "schema",
                    format!("no schema {schema:?} in catalog {catalog}"),
                ));
            }
            let tables = diagrams::tables(&mut conn, stored_as, Selection::Schema(schema)).await?;
            Ok(Drawn {
                diagram: Diagram::new(
                    tables.into_iter().map(|t| (t.schema, t.table)).collect(),
                    Outside::Draw,
                ),
                home: Some(schema.clone()),
            })
        }
        Scope::Focus(focus) => {
            let mut wanted = diagrams::neighbours(&mut conn, stored_as, focus).await?;
            wanted.push(focus.clone());
            let tables =
                diagrams::tables(&mut conn, stored_as, Selection::Relations(&wanted)).await?;
            if !tables
                .iter()
                .any(|t| t.schema == focus.schema && t.table.name == focus.name)
            {
                let kinds: Vec<&str> = DRAWN_KINDS.iter().map(|k| k.as_str()).collect();
                return Err(ApiError::validation(
                    "table",
                    format!(
                        "no relation {:?}.{:?} of a kind a diagram draws ({}) in catalog {catalog}",
                        focus.schema,
                        focus.name,
                        kinds.join(", ")
                    ),
                ));
            }
            let mut diagram = Diagram::new(
                tables.into_iter().map(|t| (t.schema, t.table)).collect(),
                Outside::Omit,
            );
            diagram.focus_on(&focus.schema, &focus.name);
            Ok(Drawn {
                diagram,
                home: Some(focus.schema.clone()),
            })
        }
    }
}

/// The SVG of a drawn diagram, laid out on a blocking thread; 400 naming `field` when it has
/// more than [`MAX_SVG_TABLES`] relations. `link` gives a box's address.
pub async fn svg(
    drawn: Drawn,
    field: &str,
    link: impl Fn(&erd::Node) -> Option<String> + Send + 'static,
) -> Result<String, ApiError> {
    let count = drawn.diagram.nodes.len();
    if count > MAX_SVG_TABLES {
        return Err(ApiError::validation(
            field,
            format!(
                "the diagram has {count} relations, more than the {MAX_SVG_TABLES} an SVG lays out: \
                 narrow it with `schema` or `table`, or ask for format=dot or mermaid"
            ),
        ));
    }
    tokio::task::spawn_blocking(move || {
        erd::svg::render(&drawn.diagram, drawn.home.as_deref(), link)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("laying out a diagram: {e}")))
}

/// The formats of `GET /catalogs/{id}/erd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Mermaid,
    Dot,
    Svg,
}

/// What a diagram shows, and how.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // only its documentation is used
struct ErdParams {
    /// `svg` (the default), `mermaid` (an `erDiagram`) or `dot` (Graphviz).
    format: Option<String>,
    /// Only this schema's tables (and the relations of other schemas they reference).
    schema: Option<String>,
    /// `schema.table`: that table and its foreign-key neighbours, one hop each way (quote a
    /// name holding a dot as in SQL: `"a.b".c`).
    table: Option<String>,
}

/// An entity-relationship diagram: tables (ordinary, partitioned, foreign) with their columns,
/// key columns marked `PK`, `FK` and `UK`, and foreign keys as edges from the referencing
/// columns to the referenced ones. Of the whole catalog, of one `schema`, or of one `table`
/// and its neighbours. The SVG is laid out by the service (at most 1000 relations).
#[utoipa::path(
    get, path = "/catalogs/{id}/erd", tag = "objects",
    params(CatalogId, ErdParams, PastParams),
    responses(
        (status = 200, description = "The diagram: `image/svg+xml`, `text/vnd.mermaid` or `text/vnd.graphviz`", content(
            (String = "image/svg+xml"),
            (String = "text/vnd.mermaid"),
            (String = "text/vnd.graphviz"),
        )),
        ReadErrors
    ),
    security(("bearer" = ["read"]))
)]
async fn get_erd(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["format", "schema", "table", "sync", "as_of"])?;
    let catalog = parse_id("catalog_id", &id)?;
    let format = match query.get("format") {
        None | Some("svg") => Format::Svg,
        Some("mermaid") => Format::Mermaid,
        Some("dot") => Format::Dot,
        Some(other) => {
            return Err(ApiError::validation(
                "format",
                format!("unknown format {other:?}: expected mermaid, dot or svg"),
            ));
        }
    };
    let scope = Scope::parse(query.get("schema"), query.get("table"))?;
    let at = past::snapshot(&state, catalog, &query).await?;
    let drawn = draw(&state, &at, &scope).await?;
    let (content_type, body) = match format {
        Format::Mermaid => (
            "text/vnd.mermaid; charset=utf-8",
            erd::mermaid(&drawn.diagram),
        ),
        Format::Dot => ("text/vnd.graphviz; charset=utf-8", erd::dot(&drawn.diagram)),
        Format::Svg => {
            let field = if query.get("table").is_some() {
                "table"
            } else {
                "schema"
            };
            let body = svg(drawn, field, move |node| {
                Some(crate::ui::table_href(catalog, &node.schema, &node.name))
            })
            .await?;
            ("image/svg+xml", body)
        }
    };
    Ok(([(CONTENT_TYPE, content_type)], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn focus(schema: &str, name: &str) -> Scope {
        Scope::Focus(QualifiedName {
            schema: schema.into(),
            name: name.into(),
        })
    }

    #[test]
    fn a_table_is_named_with_its_schema_quoted_as_in_sql() {
        assert_eq!(Scope::parse(None, None).unwrap(), Scope::Catalog);
        assert_eq!(
            Scope::parse(Some("s"), None).unwrap(),
            Scope::Schema("s".into())
        );
        assert_eq!(
            Scope::parse(None, Some("public.film")).unwrap(),
            focus("public", "film")
        );
        assert_eq!(
            Scope::parse(None, Some("a.b.c")).unwrap(),
            focus("a", "b.c")
        );
        assert_eq!(
            Scope::parse(None, Some("\"a.b\".\"c\"\"d\"")).unwrap(),
            focus("a.b", "c\"d")
        );
        assert_eq!(
            Scope::parse(Some("a.b"), Some("c")).unwrap(),
            focus("a.b", "c")
        );
        assert_eq!(
            Scope::parse(Some("a.b"), Some("\"x.y\"")).unwrap(),
            focus("a.b", "x.y")
        );
        for (schema, name) in [("public", "film"), ("a.b", "c.d"), ("\"q", "x\"")] {
            assert_eq!(
                Scope::parse(None, Some(&table_param(schema, name))).unwrap(),
                focus(schema, name)
            );
        }
        let field = |r: Result<Scope, ApiError>| match r {
            Err(ApiError::Validation { field, .. }) => field,
            other => panic!("{:?}", other.map(|_| ())),
        };
        assert_eq!(field(Scope::parse(None, Some("film"))), "table");
        assert_eq!(field(Scope::parse(Some("s"), Some("t.x"))), "table");
        assert_eq!(field(Scope::parse(Some(""), None)), "schema");
    }
}
