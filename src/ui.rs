//! The web dashboard at `/ui`: catalogs with their latest status, queue depth, recent syncs
//! with their errors, a catalog browser (schemas, tables, columns, constraints, indexes) and
//! the change history. Server-rendered HTML (maud escapes every value); no JavaScript.

use axum::Router;
use axum::extract::State;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

use crate::access::Caller;
use crate::api::AppState;
use crate::api::authorize::Operations;
use crate::api::extract::{PathParams, QueryParams, parse_id};
use crate::error::ApiError;
use crate::source::format_source;
use crate::store::reads::{self, DetailParts, RelationFilter};
use crate::store::syncs::SyncStatus;
use crate::store::{catalogs, changes, jobs, schedules, syncs};

/// The cookie a browser keeps the API token in when `API_TOKENS` is set (see `/ui/login`).
pub const TOKEN_COOKIE: &str = "pgcs_token";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(overview))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/catalogs/{id}", get(catalog_page))
        .route("/ui/catalogs/{id}/tables/{schema}/{table}", get(table_page))
}

/// The dashboard's operations besides its pages (which need `read`): signing in is open.
pub fn describe(operations: &mut Operations) {
    operations.add(Method::GET, "/ui/login", "sign_in_form", None);
    operations.add(Method::POST, "/ui/login", "sign_in", None);
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
fn progress_bar(report: &syncs::ProgressReport) -> Markup {
    let phase = match report.phase {
        syncs::Phase::Reading => "reading",
        syncs::Phase::Comparing => "comparing",
        syncs::Phase::Writing => "writing",
        syncs::Phase::Waiting => "waiting for the source host",
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

/// Catalogs, queue depth, and the latest syncs with their errors.
async fn overview(State(state): State<AppState>, caller: Caller) -> Result<Markup, ApiError> {
    // Independent reads, on as many pooled connections at once.
    let (catalog_rows, by_status, jobs, mut recent) = tokio::try_join!(
        catalogs::list(&state.pool, caller.catalogs(), None, 500),
        syncs::status_counts(&state.pool),
        jobs::counts_by_state(&state.pool, &state.queue),
        syncs::recent(&state.pool, 25),
    )?;
    recent.retain(|s| caller.reaches(s.catalog_id.into()));
    let count = |s: &str| {
        by_status
            .iter()
            .find(|(k, _)| k.as_str() == s)
            .map_or(0, |(_, n)| *n)
    };
    let body = html! {
        h1 { "Overview" }
        h2 { "Queue" }
        div.cards {
            @for status in ["queued", "running", "retrying", "succeeded", "failed", "cancelled"] {
                div.card id={ "syncs-" (status) } { b { (count(status)) } (status) " syncs" }
            }
            @for (job_state, n) in &jobs {
                div.card { b { (n) } "jobs " (job_state) }
            }
        }
        h2 { "Catalogs" }
        @if catalog_rows.is_empty() {
            p.muted { "No catalog yet: start one with POST /sync." }
        } @else {
            table id="catalogs" {
                thead { tr { th { "Source" } th { "Latest sync" } th { "Synced at" } th { "Created" } } }
                tbody {
                    @for c in &catalog_rows {
                        tr {
                            td { a href={ "/ui/catalogs/" (c.id) } { (format_source(&c.host, c.port, &c.dbname)) } }
                            td { (status_badge(c.status)) }
                            td { (time(c.synced_at)) }
                            td { (time(Some(c.created_at))) }
                        }
                    }
                }
            }
        }
        h2 { "Recent syncs" }
        table id="recent-syncs" {
            thead { tr { th { "Sync" } th { "Source" } th { "Status" } th { "Attempts" } th { "Enqueued" } th { "Error" } } }
            tbody {
                @for s in &recent {
                    tr {
                        td { code { (s.id) } }
                        td { a href={ "/ui/catalogs/" (s.catalog_id) } { (format_source(&s.host, s.port, &s.dbname)) } }
                        td { (status_badge(Some(s.status))) }
                        td { (s.attempts) " / " (s.max_attempts) }
                        td { (time(Some(s.enqueued_at))) }
                        td.error { (s.last_error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    };
    Ok(page("Overview", body))
}

/// One catalog: its tables by schema, its syncs, its schedule and its change history.
async fn catalog_page(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Markup, ApiError> {
    let id = parse_id("catalog_id", &id)?;
    let all = RelationFilter::default();
    let (catalog, relations, history, schedule, recorded) = tokio::try_join!(
        catalogs::get(&state.pool, id),
        reads::relations(&state.pool, id, &all, None, reads::MAX_UI_RELATIONS),
        syncs::list_for_catalog(&state.pool, id.into(), None, 10),
        schedules::get(&state.pool, id),
        changes::list_for_catalog(&state.pool, id.into(), None, None, 100),
    )?;
    let catalog = catalog.ok_or_else(|| ApiError::NotFound(format!("no catalog {id}")))?;
    let source = format_source(&catalog.host, catalog.port, &catalog.dbname);
    let body = html! {
        nav.crumbs { a href="/ui" { "Overview" } " / " (source) }
        h1 { (source) }
        p {
            "Latest sync " (status_badge(catalog.status))
            @if let Some(report) = history.first().filter(|s| catalog.status == Some(s.status)).and_then(syncs::SyncRow::current_progress) {
                " " (progress_bar(&report))
            }
            " · synced at " (time(catalog.synced_at))
            @if let Some(s) = &schedule {
                @match (s.every_seconds, &s.cron) {
                    (Some(secs), _) => { " · re-synced every " (crate::duration::format(std::time::Duration::from_secs(secs.unsigned_abs()))) }
                    (None, Some(pattern)) => { " · re-synced on " code { (pattern) } " (UTC)" }
                    (None, None) => {}
                }
                ", next at " (time(Some(s.next_run_at)))
            }
        }
        h2 { "Tables" }
        @if relations.is_empty() {
            p.muted { "Nothing synced yet." }
        } @else {
            table id="tables" {
                thead { tr { th { "Schema" } th { "Name" } th { "Kind" } th { "Columns" } th { "Rows (est.)" } th { "Comment" } } }
                tbody {
                    @for r in &relations {
                        tr {
                            td { (r.schema) }
                            td { a href={ "/ui/catalogs/" (id) "/tables/" (segment(&r.schema)) "/" (segment(&r.name)) } { (r.name) } }
                            td { (r.kind) }
                            td { (r.column_count) }
                            td { (r.row_estimate.map(|n| n.to_string()).unwrap_or_default()) }
                            td { (r.comment.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            @if relations.len() as i64 == reads::MAX_UI_RELATIONS {
                p.muted { "The first " (reads::MAX_UI_RELATIONS) " relations; the API lists them all." }
            }
        }
        h2 { "Changes" }
        @if recorded.is_empty() {
            p.muted { "No change recorded: the first sync is the baseline." }
        } @else {
            table id="changes" {
                thead { tr { th { "When" } th { "Object" } th { "Change" } th { "Before" } th { "After" } } }
                tbody {
                    @for c in &recorded {
                        tr {
                            td { (time(Some(c.changed_at))) }
                            td { (c.object) " " code { (c.schema) "." (c.relation) @if let Some(n) = &c.name { "." (n) } } }
                            td { (c.action) }
                            td { code { (json_text(c.before.as_ref())) } }
                            td { code { (json_text(c.after.as_ref())) } }
                        }
                    }
                }
            }
        }
        h2 { "Syncs" }
        table id="syncs" {
            thead { tr { th { "Sync" } th { "Status" } th { "Attempts" } th { "Enqueued" } th { "Finished" } th { "Error" } } }
            tbody {
                @for s in &history {
                    tr {
                        td { code { (s.id) } }
                        td {
                            (status_badge(Some(s.status)))
                            @if let Some(report) = s.current_progress() { " " (progress_bar(&report)) }
                        }
                        td { (s.attempts) " / " (s.max_attempts) }
                        td { (time(Some(s.enqueued_at))) }
                        td { (time(s.finished_at)) }
                        td.error { (s.last_error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    };
    Ok(page(&source, body))
}

fn json_text(v: Option<&Value>) -> String {
    v.map(Value::to_string).unwrap_or_default()
}

/// One table or view: its columns, constraints and indexes.
async fn table_page(
    State(state): State<AppState>,
    PathParams((id, schema, table)): PathParams<(String, String, String)>,
) -> Result<Markup, ApiError> {
    let id = parse_id("catalog_id", &id)?;
    let parts = DetailParts {
        columns: true,
        constraints: true,
        indexes: true,
        triggers: false,
        partitions: false,
        lineage: false,
    };
    let detail = reads::relation_detail(&state.pool, id, &schema, &table, "", parts)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("no relation {schema:?}.{table:?} in catalog {id}"))
        })?;
    let detail: Value = serde_json::from_str(&detail).map_err(|e| ApiError::Internal(e.into()))?;
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    let list = |key: &str| detail[key].as_array().cloned().unwrap_or_default();
    let body = html! {
        nav.crumbs {
            a href="/ui" { "Overview" } " / "
            a href={ "/ui/catalogs/" (id) } { "catalog" } " / "
            (schema) "." (table)
        }
        h1 { (schema) "." (table) " " span.muted { (text(&detail["kind"])) } }
        @if let Some(comment) = detail["comment"].as_str() { p { (comment) } }
        @if let Some(definition) = detail["definition"].as_str() { pre { code { (definition) } } }
        h2 { "Columns" }
        table id="columns" {
            thead { tr { th { "#" } th { "Name" } th { "Type" } th { "Nullable" } th { "Default" } th { "Comment" } } }
            tbody {
                @for c in list("columns") {
                    tr {
                        td { (text(&c["ordinal"])) }
                        td { (text(&c["name"])) }
                        td { code { (text(&c["type"])) } }
                        td { @if c["nullable"] == true { "yes" } @else { "NOT NULL" } }
                        td { code { (text(&c["default"])) } }
                        td { (text(&c["comment"])) }
                    }
                }
            }
        }
        h2 { "Constraints" }
        table id="constraints" {
            thead { tr { th { "Name" } th { "Kind" } th { "Columns" } th { "Definition" } } }
            tbody {
                @for c in list("constraints") {
                    tr { td { (text(&c["name"])) } td { (text(&c["kind"])) } td { (text(&c["columns"])) } td { code { (text(&c["definition"])) } } }
                }
            }
        }
        h2 { "Indexes" }
        table id="indexes" {
            thead { tr { th { "Name" } th { "Columns" } th { "Unique" } th { "Definition" } } }
            tbody {
                @for i in list("indexes") {
                    tr {
                        td { (text(&i["name"])) }
                        td { (text(&i["columns"])) }
                        td { @if i["unique"] == true { "unique" } }
                        td { code { (text(&i["definition"])) } }
                    }
                }
            }
        }
    };
    Ok(page(&format!("{schema}.{table}"), body))
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
    use syncs::{Phase, ProgressReport};

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
