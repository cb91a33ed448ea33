//! The dashboard's pages: the overview, a catalog, a table.

use axum::extract::State;
use maud::{Markup, html};
use serde_json::Value;

use super::actions::button;
use super::{page, progress_bar, segment, status_badge, time};
use crate::access::{Caller, Scope};
use crate::api::AppState;
use crate::api::extract::{PathParams, parse_id};
use crate::error::ApiError;
use crate::source::format_source;
use crate::store::reads::{self, DetailParts, RelationFilter};
use crate::store::syncs::SyncStatus;
use crate::store::{audit, catalogs, changes, jobs, schedules, syncs};

/// Catalogs, queue depth, and the latest syncs with their errors.
pub(super) async fn overview(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Markup, ApiError> {
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
        (super::search::search_box(""))
        @if caller.allows(Scope::Admin) { p { a href="/ui/audit" { "Audit log" } " · " a href="/ui/webhooks" { "Webhooks" } } }
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
pub(super) async fn catalog_page(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Markup, ApiError> {
    let id = parse_id("catalog_id", &id)?;
    let all = RelationFilter::default();
    let (catalog, schemas, relations, history, schedule, recorded) = tokio::try_join!(
        catalogs::get(&state.pool, id),
        reads::schemas(&state.pool, id, None, 1000),
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
        div.line {
            "Latest sync " (status_badge(catalog.status))
            @if let Some(report) = history.first().filter(|s| catalog.status == Some(s.status)).and_then(syncs::SyncRow::current_progress) {
                " " (progress_bar(&report))
            }
            " · synced at " (time(catalog.synced_at))
            (button(&state, &caller, &format!("/ui/catalogs/{id}/sync"), "Sync now"))
        }
        @if let Some(s) = &schedule {
            div.line id="schedule" {
                @match (s.every_seconds, &s.cron) {
                    (Some(secs), _) => { "Re-synced every " (crate::duration::format(std::time::Duration::from_secs(secs.unsigned_abs()))) }
                    (None, Some(pattern)) => { "Re-synced on " code { (pattern) } " (UTC)" }
                    (None, None) => {}
                }
                @if s.paused_at.is_some() {
                    " · " span.status { "paused" }
                    (button(&state, &caller, &format!("/ui/catalogs/{id}/schedule/resume"), "Resume"))
                } @else {
                    ", next at " (time(Some(s.next_run_at)))
                    (button(&state, &caller, &format!("/ui/catalogs/{id}/schedule/pause"), "Pause"))
                }
            }
        }
        @if !schemas.is_empty() {
            div.line id="diagrams" {
                "Diagrams: "
                @for (i, s) in schemas.iter().enumerate() {
                    @if i > 0 { " · " }
                    a href={ "/ui/catalogs/" (id) "/schemas/" (segment(&s.name)) "/diagram" } { (s.name) }
                }
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
                    @for row in &recorded {
                        @let c = &row.change;
                        tr {
                            td { (time(Some(row.changed_at))) }
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
                            @if !s.status.is_terminal() {
                                (button(&state, &caller, &format!("/ui/syncs/{}/cancel", s.id), "Cancel"))
                            } @else if matches!(s.status, SyncStatus::Failed | SyncStatus::Cancelled) {
                                (button(&state, &caller, &format!("/ui/syncs/{}/retry", s.id), "Retry"))
                            }
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
pub(super) async fn table_page(
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
        access: false,
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
        @if crate::store::diagrams::DRAWN_KINDS.iter().any(|k| detail["kind"] == k.as_str()) {
            div.line {
                a href={ "/ui/catalogs/" (id) "/schemas/" (segment(&schema)) "/diagram?table=" (segment(&crate::api::diagrams::table_param(&schema, &table))) } { "Diagram with its neighbours" }
            }
        }
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

/// The audit log's latest entries (admins only).
pub(super) async fn audit_page(State(state): State<AppState>) -> Result<Markup, ApiError> {
    let entries = audit::list(&state.pool, &audit::Filter::default(), 200).await?;
    let body = html! {
        nav.crumbs { a href="/ui" { "Overview" } " / Audit log" }
        h1 { "Audit log" }
        table id="audit" {
            thead { tr { th { "When" } th { "Token" } th { "Action" } th { "Target" } th { "Status" } th { "Request" } } }
            tbody {
                @for e in &entries {
                    tr {
                        td { (time(Some(e.at))) }
                        td { (e.token.as_deref().unwrap_or("")) }
                        td { (e.action) }
                        td { code { (e.target) } }
                        td { (e.status) }
                        td { code { (e.request_id) } }
                    }
                }
            }
        }
    };
    Ok(page("Audit log", body))
}
