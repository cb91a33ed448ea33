//! The dashboard's actions: sync a catalog again, cancel or retry a sync, pause or resume a
//! schedule. Each is a form posted to `/ui/...` that does what its API twin does, needs the
//! same scope, and answers by sending the browser back to the catalog's page.
//!
//! A browser signed in with the dashboard's cookie sends it with any form, also one another
//! site posts; so every form carries a token that only a page of this dashboard holds: the
//! caller's name and the time, sealed under `CREDENTIALS_KEY` (which every API process has).
//! A form without a valid token, or one the browser says comes from another site, is refused.

use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequest, Request, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use maud::{Markup, html};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::page;
use crate::access::{Caller, Scope};
use crate::api::authorize::Operations;
use crate::api::extract::{PathParams, parse_id};
use crate::api::{AppState, schedules, syncs};
use crate::error::ApiError;

/// The form field that carries the token.
const CSRF_FIELD: &str = "csrf";
/// How long a page's forms stay valid.
const CSRF_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The actions, each at its path with the name the audit log gives it.
const ACTIONS: [(&str, &str); 5] = [
    ("/ui/catalogs/{id}/sync", "ui_resync_catalog"),
    ("/ui/catalogs/{id}/schedule/pause", "ui_pause_schedule"),
    ("/ui/catalogs/{id}/schedule/resume", "ui_resume_schedule"),
    ("/ui/syncs/{id}/cancel", "ui_cancel_sync"),
    ("/ui/syncs/{id}/retry", "ui_retry_sync"),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(ACTIONS[0].0, post(resync))
        .route(ACTIONS[1].0, post(pause))
        .route(ACTIONS[2].0, post(resume))
        .route(ACTIONS[3].0, post(cancel))
        .route(ACTIONS[4].0, post(retry))
}

/// Every action needs `sync`, as its API twin does.
pub fn describe(operations: &mut Operations) {
    for (path, name) in ACTIONS {
        operations.add(Method::POST, path, name, Some(Scope::Sync));
    }
}

/// A button that posts an action, for a caller allowed to; nothing for one who is not.
pub fn button(state: &AppState, caller: &Caller, action: &str, label: &str) -> Markup {
    if !caller.allows(Scope::Sync) {
        return html! {};
    }
    html! {
        form.action method="post" action=(action) {
            input type="hidden" name=(CSRF_FIELD) value=(csrf_token(state, caller));
            button type="submit" { (label) }
        }
    }
}

fn csrf_token(state: &AppState, caller: &Caller) -> String {
    let claim = format!(
        "{}|{}",
        caller.name().unwrap_or_default(),
        Utc::now().timestamp()
    );
    state
        .key
        .seal(&SecretString::from(claim), CSRF_FIELD.as_bytes())
}

/// A posted form that carries this caller's recent token and does not come from another site;
/// the rejection is the page that says why nothing was done.
pub struct CheckedForm;

impl FromRequest<AppState> for CheckedForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let caller = request.extensions().get::<Caller>().cloned();
        let headers = request.headers().clone();
        let body = String::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match caller {
            Some(caller) => check_form(state, &caller, &headers, &body).map(|()| CheckedForm),
            None => Err(ApiError::Unauthorized),
        }
        .map_err(|e| answer(Err(e)))
    }
}

/// Refuses a form without this caller's recent token, or from another site.
fn check_form(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: &str,
) -> Result<(), ApiError> {
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    let token = form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned());
    let claim = token.and_then(|t| state.key.open(&t, CSRF_FIELD.as_bytes()).ok());
    let valid = claim.is_some_and(|claim| {
        let (name, at) = claim.expose_secret().rsplit_once('|').unwrap_or_default();
        let age = at.parse::<i64>().map(|at| Utc::now().timestamp() - at);
        name == caller.name().unwrap_or_default()
            && age.is_ok_and(|age| (0..=CSRF_LIFETIME.as_secs() as i64).contains(&age))
    });
    match !cross_site && valid {
        true => Ok(()),
        false => Err(ApiError::FormRefused),
    }
}

/// An action's answer: back to the catalog's page, or a page saying why it was not done.
fn answer(done: Result<Uuid, ApiError>) -> Response {
    match done {
        Ok(catalog) => {
            let to = format!("/ui/catalogs/{catalog}");
            (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
        }
        Err(e) => {
            let body = html! {
                h1 { "Not done" }
                p.error { (e.to_string()) }
                p { a href="/ui" { "Back to the overview" } }
            };
            (e.status(), page("Not done", body)).into_response()
        }
    }
}

async fn resync(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
    _: CheckedForm,
) -> Response {
    answer(
        async {
            let catalog = parse_id("catalog_id", &id)?;
            let request = syncs::resync_request(&state, &caller, catalog).await?;
            state.enqueuer.enqueue(request).await?;
            Ok(catalog)
        }
        .await,
    )
}

async fn set_paused(state: AppState, caller: Caller, id: String, paused: bool) -> Response {
    answer(
        async {
            let catalog = parse_id("catalog_id", &id)?;
            crate::api::authorize::reach(&caller, catalog)?;
            schedules::set_paused(&state, catalog, paused).await?;
            Ok(catalog)
        }
        .await,
    )
}

async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
    _: CheckedForm,
) -> Response {
    set_paused(state, caller, id, true).await
}

async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
    _: CheckedForm,
) -> Response {
    set_paused(state, caller, id, false).await
}

async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
    _: CheckedForm,
) -> Response {
    answer(
        async {
            let sync = syncs::cancel(&state, &caller, parse_id("sync_id", &id)?).await?;
            // The dashboard lists catalogs' syncs; a whole-server sync has no page to go back to.
            sync.catalog_id
                .ok_or_else(|| ApiError::NotFound("a whole-server sync has no catalog".into()))
        }
        .await,
    )
}

async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
    _: CheckedForm,
) -> Response {
    answer(
        async {
            let request = syncs::retry_request(&state, &caller, parse_id("sync_id", &id)?).await?;
            Ok(state.enqueuer.enqueue(request).await?.catalog_id)
        }
        .await,
    )
}
