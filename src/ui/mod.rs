//! The web dashboard at `/ui`: catalogs with their latest status, queue depth, recent syncs
//! with their errors, a catalog browser (schemas, tables, columns, constraints, indexes, and
//! each schema's entity-relationship diagram) and the change history. Server-rendered HTML
//! (maud escapes every value; diagrams are SVG drawn by the server); no JavaScript.

use axum::Router;
use axum::extract::State;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::access::Scope;
use crate::api::AppState;
use crate::api::authorize::Operations;
use crate::api::extract::QueryParams;
use crate::store::progress;
use crate::store::syncs::SyncStatus;

mod actions;
mod diagram;
mod pages;
mod search;
mod webhooks;

/// The cookie a browser keeps the API token in when `API_TOKENS` is set (see `/ui/login`).
pub const TOKEN_COOKIE: &str = "pgcs_token";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(pages::overview))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/catalogs/{id}", get(pages::catalog_page))
        .route(
            "/ui/catalogs/{id}/tables/{schema}/{table}",
            get(pages::table_page),
        )
        .route(
            "/ui/catalogs/{id}/schemas/{schema}/diagram",
            get(diagram::diagram_page),
        )
        .route("/ui/audit", get(pages::audit_page))
        .route("/ui/webhooks", get(webhooks::webhooks_page))
        .route("/ui/search", get(search::search_page))
        .merge(actions::routes())
}

/// The dashboard's operations besides its pages (which need `read`): signing in is open, the
/// audit log and webhooks need `admin`, each action what its API twin needs.
pub fn describe(operations: &mut Operations) {
    operations.add(Method::GET, "/ui/login", "sign_in_form", None);
    operations.add(Method::POST, "/ui/login", "sign_in", None);
    operations.add(Method::GET, "/ui/audit", "ui_audit", Some(Scope::Admin));
    operations.add(
        Method::GET,
        "/ui/webhooks",
        "ui_webhooks",
        Some(Scope::Admin),
    );
    actions::describe(operations);
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:10px 24px}header a{color:#fff;text-decoration:none;font-weight:600}
main{padding:16px 24px;max-width:1200px}h1{font-size:22px;margin:8px 0 16px}h2{font-size:17px;margin:24px 0 8px}
table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:8px}
th,td{text-align:left;padding:5px 10px;border-bottom:1px solid #e3e6eb;vertical-align:top}
th{background:#eef0f4;font-weight:600}code{font:12px ui-monospace,monospace}
.status{padding:1px 8px;border-radius:10px;font-size:12px;background:#e3e6eb}
.succeeded{background:#d6f5df}.failed{background:#fbd9d9}.running,.retrying{background:#fff1c7}
.queued{background:#dde9ff}.cancelled{background:#e8e8e8}.error{color:#a11}.muted{color:#6b7280}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;padding:10px 16px;border:1px solid #e3e6eb;border-radius:6px}
.card b{display:block;font-size:20px}nav.crumbs{margin-bottom:8px}
.progress{white-space:nowrap;font-size:12px}.progress progress{width:120px;vertical-align:middle;margin:0 6px}
form.search{margin:8px 0 16px}form.search input{width:320px;padding:3px 6px}
div.line{margin:0 0 8px}div.diagram{overflow:auto;max-height:85vh;background:#fff;border:1px solid #e3e6eb}main:has(div.diagram){max-width:none}
ul.focus-list{columns:4;font-size:13px}form.action{display:inline;margin-left:8px}form.action button{font-size:12px;padding:1px 8px}
"#;

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · pg-catalog-sync" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { a href="/ui" { "pg-catalog-sync" } }
                main { (body) }
            }
        }
    }
}

fn status_badge(status: Option<SyncStatus>) -> Markup {
    let status = status.map_or("never synced", SyncStatus::as_str);
    html! { span class={ "status " (status) } { (status) } }
}

/// A progress bar with the phase and the relations done of the total (while the source is read,
/// the total is unknown: a bar without a value, which a browser shows as busy).
fn progress_bar(report: &progress::ProgressReport) -> Markup {
    let phase = match report.phase {
        progress::Phase::Reading => "reading",
        progress::Phase::Comparing => "comparing",
        progress::Phase::Writing => "writing",
        progress::Phase::Waiting => "waiting for the source host",
    };
    let done = report.relations_done;
    html! {
        span.progress {
            @match report.relations_total {
                Some(total) => {
                    // Nothing to do is done (and a progress element's max must be positive).
                    @let (value, max) = if total == 0 { (1, 1) } else { (done.min(total), total) };
                    progress value=(value) max=(max) { (done) "/" (total) }
                    span.phase { (phase) " " (done) "/" (total) }
                }
                None => {
                    progress { (phase) }
                    span.phase { (phase) }
                }
            }
        }
    }
}

fn time(t: Option<DateTime<Utc>>) -> Markup {
    match t {
        Some(t) => html! { time datetime=(t.to_rfc3339()) { (t.format("%Y-%m-%d %H:%M:%S UTC")) } },
        None => html! { span.muted { "-" } },
    }
}

fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The address of a table's page.
pub fn table_href(catalog: uuid::Uuid, schema: &str, name: &str) -> String {
    format!(
        "/ui/catalogs/{catalog}/tables/{}/{}",
        segment(schema),
        segment(name)
    )
}

/// With `API_TOKENS` set, a browser signs in once: the token goes into an HttpOnly cookie.
async fn login_form(query: QueryParams) -> Markup {
    let failed = query.get("failed").is_some();
    page(
        "Sign in",
        html! {
            h1 { "Sign in" }
            @if failed { p.error { "That token is not valid." } }
            form method="post" action="/ui/login" {
                label { "API token " input type="password" name="token" autofocus; }
                " " button type="submit" { "Sign in" }
            }
        },
    )
}

async fn login(State(state): State<AppState>, body: String) -> Response {
    let token = form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let valid = state
        .tokens
        .as_ref()
        .is_none_or(|t| t.caller(&token).is_some());
    let target = if valid { "/ui" } else { "/ui/login?failed=1" };
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, target)]).into_response();
    if valid && state.tokens.is_some() {
        let cookie = format!("{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(SET_COOKIE, value);
        }
    }
    response
}

/// The token a browser keeps in its cookie, if any.
pub fn cookie_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == TOKEN_COOKIE)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use progress::{Phase, ProgressReport};

    fn shown(phase: Phase, done: u64, total: Option<u64>) -> String {
        progress_bar(&ProgressReport {
            phase,
            relations_done: done,
            relations_total: total,
        })
        .into_string()
    }

    #[test]
    fn a_progress_bar_shows_the_phase_and_the_relations_done_of_the_total() {
        assert_eq!(
            shown(Phase::Writing, 4200, Some(10002)),
            r#"<span class="progress"><progress value="4200" max="10002">4200/10002</progress><span class="phase">writing 4200/10002</span></span>"#
        );
        assert_eq!(
            shown(Phase::Comparing, 0, Some(3)),
            r#"<span class="progress"><progress value="0" max="3">0/3</progress><span class="phase">comparing 0/3</span></span>"#
        );
        // While the source is read the total is unknown: a bar without a value (busy).
        assert_eq!(
            shown(Phase::Reading, 0, None),
            r#"<span class="progress"><progress>reading</progress><span class="phase">reading</span></span>"#
        );
        // Nothing to write is all written: a full bar.
        assert_eq!(
            shown(Phase::Writing, 0, Some(0)),
            r#"<span class="progress"><progress value="1" max="1">0/0</progress><span class="phase">writing 0/0</span></span>"#
        );
    }
}
