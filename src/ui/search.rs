//! The dashboard's search: a box on the overview, and `/ui/search?q=` listing what
//! `GET /search` finds, with links to the catalog and table pages.

use axum::extract::State;
use maud::{Markup, html};

use super::{page, segment};
use crate::access::Caller;
use crate::api::AppState;
use crate::api::extract::QueryParams;
use crate::api::pagination::encode_cursor;
use crate::api::search::{Matched, SearchHit, SearchRequest, next_position};
use crate::error::ApiError;

/// The search box, holding `q`.
pub(super) fn search_box(q: &str) -> Markup {
    html! {
        form.search method="get" action="/ui/search" {
            input type="search" name="q" value=(q) placeholder="Search names and comments" maxlength="200";
            " " button type="submit" { "Search" }
        }
    }
}

/// What a search finds, a page at a time; without a query, only the box.
pub(super) async fn search_page(
    State(state): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> Result<Markup, ApiError> {
    if query.get("q").is_none_or(|q| q.trim().is_empty()) {
        let body = html! {
            nav.crumbs { a href="/ui" { "Overview" } " / Search" }
            (search_box(""))
        };
        return Ok(page("Search", body));
    }
    let request = SearchRequest::from_query(&query)?;
    let mut hits = request.run(&state, &caller).await?;
    let next = match hits.len() as i64 > request.page.limit {
        true => {
            hits.truncate(request.page.limit as usize);
            hits.last().map(|h| next_link(&request, h))
        }
        false => None,
    };
    let body = html! {
        nav.crumbs { a href="/ui" { "Overview" } " / Search" }
        (search_box(&request.q))
        @if hits.is_empty() {
            p.muted { "Nothing matches." }
        } @else {
            table id="search-results" {
                thead { tr { th { "Kind" } th { "Name" } th { "Where" } th { "Source" } th { "Matched" } th { "Score" } th { "Comment" } } }
                tbody {
                    @for h in &hits {
                        tr {
                            td { (h.kind) }
                            td { a href=(object_href(h)) { (h.name) } }
                            td { code { (h.schema) @if let Some(r) = &h.relation { "." (r) } } }
                            td { a href={ "/ui/catalogs/" (h.catalog_id) } { (h.source) } }
                            td { @match h.matched { Matched::Name => "name", Matched::Comment => "comment" } }
                            td { (format!("{:.3}", h.score)) }
                            td { (h.comment.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            @if let Some(next) = next { p { a rel="next" href=(next) { "More results" } } }
        }
    };
    Ok(page(&format!("Search: {}", request.q), body))
}

/// Where an object is shown: a relation's page (a column's relation's), or its catalog's.
fn object_href(h: &SearchHit) -> String {
    let catalog = format!("/ui/catalogs/{}", h.catalog_id);
    match (h.kind.as_str(), &h.relation) {
        ("schema", _) => catalog,
        ("column", Some(relation)) => {
            format!(
                "{catalog}/tables/{}/{}",
                segment(&h.schema),
                segment(relation)
            )
        }
        _ => format!(
            "{catalog}/tables/{}/{}",
            segment(&h.schema),
            segment(&h.name)
        ),
    }
}

/// The link to the page after `last`.
fn next_link(request: &SearchRequest, last: &SearchHit) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in request.params() {
        query.append_pair(k, &v);
    }
    query.append_pair("limit", &request.page.limit.to_string());
    query.append_pair("cursor", &encode_cursor(&next_position(last)));
    format!("/ui/search?{}", query.finish())
}
