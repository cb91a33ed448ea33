//! The diagram page: a schema's entity-relationship diagram, drawn by the server as SVG and
//! embedded in the page, its boxes linking to the table pages; `?table=` shows one table with
//! its foreign-key neighbours. A schema of more than [`WHOLE_SCHEMA_TABLES`] tables is not
//! drawn whole: the page offers its tables to focus on (the API still exports it whole).

use axum::extract::State;
use maud::{Markup, PreEscaped, html};

use super::{page, segment, table_href};
use crate::api::AppState;
use crate::api::diagrams::{self, Scope, table_param};
use crate::api::extract::{PathParams, QueryParams, parse_id};
use crate::api::past::Snapshot;
use crate::error::ApiError;

/// Tables a page draws a whole schema with at most; past it, a page draws one table and its
/// neighbours at a time.
pub const WHOLE_SCHEMA_TABLES: usize = 100;

/// The page of a schema's diagram, or of one table's neighbourhood.
pub(super) async fn diagram_page(
    State(state): State<AppState>,
    PathParams((id, schema)): PathParams<(String, String)>,
    query: QueryParams,
) -> Result<Markup, ApiError> {
    query.only(&["table"])?;
    let catalog = parse_id("catalog_id", &id)?;
    let focus = query.get("table");
    let scope = Scope::parse(Some(&schema), focus)?;
    let drawn = diagrams::draw(&state, &Snapshot::current(catalog), &scope).await?;
    // The schema's tables to focus on: the drawn ones of this schema (for a focus, its
    // neighbours in it).
    let tables: Vec<String> = drawn
        .diagram
        .nodes
        .iter()
        .filter(|n| !n.outside && n.schema == schema)
        .map(|n| n.name.clone())
        .collect();
    let count = drawn.diagram.table_count();
    let whole = focus.is_none() && count > WHOLE_SCHEMA_TABLES;
    let svg = match whole {
        true => None,
        false => Some(
            diagrams::svg(drawn, "table", move |node| {
                Some(table_href(catalog, &node.schema, &node.name))
            })
            .await?,
        ),
    };
    let page_path = format!(
        "/ui/catalogs/{catalog}/schemas/{}/diagram",
        segment(&schema)
    );
    let export = |format: &str| {
        let mut params = form_urlencoded::Serializer::new(String::new());
        params.append_pair("format", format);
        match (&scope, focus) {
            (Scope::Focus(f), Some(_)) => {
                params.append_pair("table", &table_param(&f.schema, &f.name))
            }
            _ => params.append_pair("schema", &schema),
        };
        format!("/catalogs/{catalog}/erd?{}", params.finish())
    };
    let focus_href = |name: &str| {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("table", &table_param(&schema, name))
            .finish();
        format!("{page_path}?{query}")
    };
    let title = match &scope {
        Scope::Focus(f) => format!("{}.{} and its neighbours", f.schema, f.name),
        _ => format!("Schema {schema}"),
    };
    let body = html! {
        nav.crumbs {
            a href="/ui" { "Overview" } " / "
            a href={ "/ui/catalogs/" (catalog) } { "catalog" } " / "
            @if focus.is_some() { a href=(page_path) { (schema) " diagram" } } @else { (schema) " diagram" }
        }
        h1 { (title) }
        div.line {
            (count) " tables · export as "
            a href=(export("svg")) { "SVG" } ", " a href=(export("mermaid")) { "Mermaid" } ", "
            a href=(export("dot")) { "Graphviz dot" }
            @if let Scope::Focus(f) = &scope {
                " · " a href=(table_href(catalog, &f.schema, &f.name)) { "table page" }
            }
        }
        @if whole {
            p id="too-big" {
                "This schema has " (count) " tables, more than the " (WHOLE_SCHEMA_TABLES)
                " a page draws at once: pick a table to see it with the tables it references and those referencing it."
            }
            ul.focus-list {
                @for name in &tables { li { a href=(focus_href(name)) { (name) } } }
            }
        } @else {
            form.search method="get" action=(page_path) {
                label { "Focus on " select name="table" {
                    @for name in &tables {
                        @let value = table_param(&schema, name);
                        option value=(value) selected[focus == Some(value.as_str())] { (name) }
                    }
                } }
                " " button type="submit" { "Show" }
            }
            @if let Some(svg) = &svg {
                div.diagram id="diagram" { (PreEscaped(svg)) }
            }
        }
    };
    Ok(page(&title, body))
}
