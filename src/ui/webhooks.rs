//! The webhooks page (admins only): subscriptions with their state, and recent deliveries.

use axum::extract::State;
use maud::{Markup, html};

use super::{page, time};
use crate::api::AppState;
use crate::error::ApiError;
use crate::store::{deliveries, webhooks};

/// Deliveries the page shows.
const RECENT_DELIVERIES: i64 = 100;

pub(super) async fn webhooks_page(State(state): State<AppState>) -> Result<Markup, ApiError> {
    let subscriptions = webhooks::list(&state.pool, None, 1000).await?;
    let recent = deliveries::recent(&state.pool, RECENT_DELIVERIES).await?;
    let url_of = |id: uuid::Uuid| {
        subscriptions
            .iter()
            .find(|w| w.id == id)
            .map_or("", |w| w.url.as_str())
    };
    let body = html! {
        nav.crumbs { a href="/ui" { "Overview" } " / Webhooks" }
        h1 { "Webhooks" }
        h2 { "Subscriptions" }
        @if subscriptions.is_empty() {
            p.muted { "No subscriptions: create one with " code { "POST /webhooks" } "." }
        } @else {
            table id="webhooks" {
                thead { tr { th { "URL" } th { "Events" } th { "Catalogs" } th { "State" } th { "Failures in a row" } th { "Created" } } }
                tbody {
                    @for w in &subscriptions {
                        tr {
                            td { code { (w.url) } @if let Some(d) = &w.description { div.muted { (d) } } }
                            td { (w.events.join(", ")) @if w.breaking_only { div.muted { "breaking only" } } }
                            td {
                                @match &w.catalogs {
                                    None => { "all" }
                                    Some(ids) => { (ids.len()) " catalogs" }
                                }
                            }
                            td {
                                @if w.disabled_at.is_none() {
                                    span.status.succeeded { "enabled" }
                                } @else {
                                    span.status.failed { "disabled" }
                                    div.error { (w.disabled_reason.as_deref().unwrap_or("by request")) }
                                }
                            }
                            td { (w.consecutive_failures) }
                            td { (time(Some(w.created_at))) }
                        }
                    }
                }
            }
        }
        h2 { "Recent deliveries" }
        table id="deliveries" {
            thead { tr { th { "Created" } th { "Event" } th { "To" } th { "Status" } th { "Attempts" } th { "Last answer" } th { "Next attempt" } } }
            tbody {
                @for d in &recent {
                    tr {
                        td { (time(Some(d.created_at))) }
                        td { (d.event_type) div.muted { "seq " (d.sequence) } }
                        td { code { (url_of(d.webhook_id)) } }
                        td { span class={ "status " (status_class(&d.status)) } { (d.status) } }
                        td { (d.attempts) }
                        td {
                            @if let Some(code) = d.last_status_code { (code) " " }
                            @if let Some(ms) = d.last_latency_ms { span.muted { (ms) " ms" } }
                            @if let Some(e) = &d.last_error { div.error { (e) } }
                        }
                        td { (time(d.next_attempt_at)) }
                    }
                }
            }
        }
    };
    Ok(page("Webhooks", body))
}

fn status_class(status: &str) -> &'static str {
    match status {
        "succeeded" => "succeeded",
        "failed" => "failed",
        "retrying" => "retrying",
        _ => "queued",
    }
}
