//! Who may do what. Authentication runs before routing (401 for an unknown token, whatever the
//! path); once a request is routed, its operation's scope and the token's catalogs decide
//! (403), and every mutating request is written to the audit log with its outcome.
//!
//! Each documented operation's scope comes from its security requirement in the OpenAPI
//! document, so what clients read there is what the API enforces.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header::AUTHORIZATION};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use super::{AppState, REQUEST_ID};
use crate::access::{Caller, Scope};
use crate::error::ApiError;
use crate::store::audit::NewEntry;

/// Paths anyone may call, with or without a token.
const OPEN_PATHS: [&str; 4] = ["/health", "/ready", "/openapi.json", "/ui/login"];

/// What the audit log calls a route, and the scope it needs (`None`: open to anyone).
#[derive(Debug, Clone)]
pub struct Operation {
    pub name: String,
    pub scope: Option<Scope>,
}

/// Every route's operation, by method and route pattern.
#[derive(Debug, Default)]
pub struct Operations(HashMap<(Method, String), Operation>);

impl Operations {
    /// The operations of an OpenAPI document: each one's `operationId`, and the scope its
    /// `bearer` requirement lists (the document's default when it has none of its own; an
    /// empty requirement, `{}`, makes it open).
    pub fn from_document(document: &str) -> Self {
        let doc: Value = serde_json::from_str(document).expect("the OpenAPI document is JSON");
        let default = scope_of(&doc["security"]).flatten();
        let mut operations = Self::default();
        let paths = doc["paths"].as_object().into_iter().flatten();
        for (path, item) in paths {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let Ok(method) = method.to_ascii_uppercase().parse::<Method>() else {
                    continue;
                };
                let name = operation["operationId"].as_str().unwrap_or(path).to_owned();
                let scope = scope_of(&operation["security"]).unwrap_or(default);
                operations.add(method, path, &name, scope);
            }
        }
        operations
    }

    /// Adds a route the document does not describe (the dashboard's).
    pub fn add(&mut self, method: Method, path: &str, name: &str, scope: Option<Scope>) {
        let operation = Operation {
            name: name.to_owned(),
            scope,
        };
        self.0.insert((method, path.to_owned()), operation);
    }

    /// The operation of a routed request. A route no one described needs `read` to be read
    /// and `admin` for anything else: a forgotten route fails closed.
    fn of(&self, method: &Method, path: &str) -> Operation {
        if let Some(operation) = self.0.get(&(method.clone(), path.to_owned())) {
            return operation.clone();
        }
        let scope = match *method {
            Method::GET | Method::HEAD => Scope::Read,
            _ => Scope::Admin,
        };
        Operation {
            name: format!("{method} {path}"),
            scope: Some(scope),
        }
    }
}

/// `Some(None)` for an open requirement (`[{}]`), `Some(scope)` for a `bearer` one (`read`
/// when it lists no scope), `None` when the operation states none.
fn scope_of(security: &Value) -> Option<Option<Scope>> {
    let requirements = security.as_array()?;
    if requirements
        .iter()
        .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
    {
        return Some(None);
    }
    let scopes = requirements.iter().find_map(|r| r["bearer"].as_array())?;
    let scope = scopes
        .iter()
        .filter_map(|s| s.as_str().and_then(Scope::parse))
        .next()
        .unwrap_or(Scope::Read);
    Some(Some(scope))
}

/// Finds the caller of every request: the token's (bearer header, or the dashboard's cookie),
/// or anyone on an API without tokens. Without a valid token only the open paths answer: the
/// API says 401, the dashboard sends the browser to its sign-in page.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match &state.tokens {
        None => Some(Caller::anyone()),
        Some(tokens) => {
            let headers = request.headers();
            let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
            tokens
                .authenticate(authorization)
                .or_else(|| crate::ui::cookie_token(headers).and_then(|t| tokens.caller(t)))
        }
    };
    let path = request.uri().path();
    match caller {
        Some(caller) => {
            request.extensions_mut().insert(caller);
        }
        None if OPEN_PATHS.contains(&path) => {}
        None if path == "/ui" || path.starts_with("/ui/") => {
            return Redirect::to("/ui/login").into_response();
        }
        None => return ApiError::Unauthorized.into_response(),
    }
    next.run(request).await
}

/// What [`authorize`] needs besides the app.
#[derive(Clone)]
pub struct Guard {
    pub state: AppState,
    pub operations: Arc<Operations>,
}

/// Refuses a routed request whose token lacks the operation's scope or the catalog in its
/// path, and records every mutating request, refused or not, in the audit log (one without a
/// valid token never gets here: it has no name to record, and is answered 401 before routing).
pub async fn authorize(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let Some(pattern) = request.extensions().get::<MatchedPath>().cloned() else {
        return next.run(request).await;
    };
    let operation = guard.operations.of(&method, pattern.as_str());
    let Some(scope) = operation.scope else {
        return next.run(request).await;
    };
    let caller = request.extensions().get::<Caller>().cloned();
    let audited = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let refusal = match &caller {
        None => Some(ApiError::Unauthorized),
        Some(caller) if !caller.allows(scope) => Some(ApiError::MissingScope(scope)),
        Some(caller) => path_catalog(pattern.as_str(), request.uri().path())
            .filter(|id| !caller.reaches((*id).into()))
            .map(ApiError::CatalogNotAllowed),
    };
    let refusal = match (&refusal, &caller, &guard.state.rate_limit) {
        (None, Some(caller), Some(limit)) if audited => {
            let address = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip());
            limit.check(caller, address).err()
        }
        _ => refusal,
    };
    let entry = audited.then(|| NewEntry {
        token: caller.as_ref().and_then(|c| c.name()).map(str::to_owned),
        action: operation.name,
        method: method.to_string(),
        target: request.uri().path().to_owned(),
        request_id: request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        status: 0,
    });
    let response = match refusal {
        Some(refusal) => refusal.into_response(),
        None => next.run(request).await,
    };
    if let Some(mut entry) = entry {
        if let Some(AuditTarget(target)) = response.extensions().get::<AuditTarget>() {
            entry.target.clone_from(target);
        }
        entry.status = response.status().as_u16();
        guard.state.audit.record(entry).await;
    }
    response
}

/// The catalog id a route's path names (`/catalogs/{id}/...`, `/ui/catalogs/{id}/...`), when
/// it is a well-formed one: a malformed id is the handler's to refuse.
fn path_catalog(pattern: &str, path: &str) -> Option<uuid::Uuid> {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let position = pattern.windows(2).position(|w| w == ["catalogs", "{id}"])? + 1;
    path.split('/').nth(position)?.parse().ok()
}

/// Set on a response when the audit log should name another target than the request's path
/// (`POST /sync` names the catalog it queued a sync for).
#[derive(Debug, Clone)]
pub struct AuditTarget(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthorized)
    }
}

/// Refuses `catalog` to a caller limited to others.
pub fn reach(caller: &Caller, catalog: uuid::Uuid) -> Result<(), ApiError> {
    match caller.reaches(catalog.into()) {
        true => Ok(()),
        false => Err(ApiError::CatalogNotAllowed(catalog)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_of_a_path_is_found_by_the_pattern() {
        let id = uuid::Uuid::now_v7();
        let at = |pattern: &str, path: String| path_catalog(pattern, &path);
        assert_eq!(at("/catalogs/{id}", format!("/catalogs/{id}")), Some(id));
        assert_eq!(
            at(
                "/catalogs/{id}/tables/{schema}/{table}",
                format!("/catalogs/{id}/tables/a/b")
            ),
            Some(id)
        );
        assert_eq!(
            at("/ui/catalogs/{id}", format!("/ui/catalogs/{id}")),
            Some(id)
        );
        assert_eq!(at("/syncs/{id}", format!("/syncs/{id}")), None);
        assert_eq!(at("/catalogs/{id}", "/catalogs/nope".into()), None);
    }

    #[test]
    fn scopes_come_from_the_security_requirements() {
        let document = serde_json::json!({
            "security": [{"bearer": []}],
            "paths": {
                "/health": {"get": {"operationId": "health", "security": [{}]}},
                "/sync": {"post": {"operationId": "create_sync", "security": [{"bearer": ["sync"]}]}},
                "/things": {"get": {"operationId": "list_things"}},
            }
        });
        let operations = Operations::from_document(&document.to_string());
        let scope = |m: Method, p: &str| operations.of(&m, p).scope;
        assert_eq!(scope(Method::GET, "/health"), None);
        assert_eq!(scope(Method::POST, "/sync"), Some(Scope::Sync));
        assert_eq!(scope(Method::GET, "/things"), Some(Scope::Read));
        assert_eq!(operations.of(&Method::POST, "/sync").name, "create_sync");
        assert_eq!(scope(Method::DELETE, "/undescribed"), Some(Scope::Admin));
    }
}
