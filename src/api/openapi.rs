//! The OpenAPI 3.1 document, served at `GET /openapi.json`. Every documented route is
//! registered from its annotated handler (utoipa-axum's `routes!`), so the document and the
//! router are built from the same code and cannot drift; the test suite fuzzes the running API
//! against it.

use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToSchema};

use super::syncs::SyncView;
use crate::error::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pg-catalog-sync",
        description = "Keeps a live, queryable copy of the catalog metadata of PostgreSQL databases. \
            POST /sync queues a sync; workers read the source's catalog; the read endpoints serve it."
    ),
    components(schemas(ErrorBody, WaitOutcome)),
    modifiers(&BearerAuth),
    security(("bearer" = ["read"])),
    tags(
        (name = "syncs", description = "Start, follow, cancel and retry syncs"),
        (name = "catalogs", description = "Catalogs, their history and schedules"),
        (name = "objects", description = "What a catalog holds"),
        (name = "search", description = "Names and comments across catalogs"),
        (name = "health", description = "Liveness and readiness"),
        (name = "audit", description = "Who did what"),
        (name = "webhooks", description = "Schema-change events pushed to receivers"),
    )
)]
pub struct ApiDoc;

/// `Authorization: Bearer <token>`, required when the API runs with `API_TOKENS`. Each
/// operation lists the scope it needs: `read`, `sync` or `admin` (which implies the others).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The errors any read can answer with.
#[derive(IntoResponses)]
#[allow(dead_code)] // only its documentation is used
pub enum ReadErrors {
    /// A parameter is invalid; `error.field` names it.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// `API_TOKENS` is set and the request has no valid bearer token.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token lacks the operation's scope (`error.scope` names it), or is limited to other
    /// catalogs.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Nothing there (the message says what is missing).
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The store is unavailable; retry shortly.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The errors of a request with a JSON body, besides those of a read.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BodyErrors {
    /// The body is larger than `MAX_BODY_BYTES`.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not `application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
}

/// The answers of `?wait=` when the sync did not succeed: the error, and the sync as it is.
#[derive(Serialize, ToSchema)]
pub struct WaitOutcome {
    pub error: ErrorDetail,
    pub sync: SyncView,
}

/// How a `?wait=` request ends when the sync did not succeed in time.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum WaitResponses {
    /// With `?wait=`: the sync succeeded.
    #[response(status = 200)]
    Succeeded(SyncView),
    /// The sync is not in a state the request can act on; with `?wait=`, the sync was
    /// cancelled (`error.code` is `cancelled`, and `sync` holds it).
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// With `?wait=`: the sync failed because of the source (`error.code` is `source_failed`).
    #[response(status = 502)]
    Failed(WaitOutcome),
    /// With `?wait=`: the wait ended first; the sync goes on (`Location` says where).
    #[response(status = 504)]
    Pending(WaitOutcome),
}

/// The pagination parameters every list takes.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    /// Items per page.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<i64>,
    /// The opaque cursor from the previous page's `Link` header.
    cursor: Option<String>,
}

/// `?sync=` or `?as_of=`: read the catalog as a past sync left it (one of the two).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PastParams {
    /// A succeeded sync of the catalog that retention keeps: the state it left.
    sync: Option<uuid::Uuid>,
    /// The state left by the last succeeded sync that finished at or before this time.
    as_of: Option<chrono::DateTime<chrono::Utc>>,
}

/// `?wait=`: how long to wait for the sync to end.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct WaitParam {
    /// A duration such as `30s`, `500ms` or `1m`, at most 60 s.
    wait: Option<String>,
}

/// The `{id}` of a catalog.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct CatalogId {
    /// The catalog's id.
    id: uuid::Uuid,
}

/// The `{id}` of a sync.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct SyncId {
    /// The sync's id.
    id: uuid::Uuid,
}

/// The `schema` filter of the schema-scoped lists.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SchemaParam {
    /// Only this schema.
    schema: Option<String>,
}

/// Whether a list shows the objects extensions own, marked with `extension`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ExtensionMembersParam {
    /// `true`: extensions' members too, each marked with its `extension` (default `false`,
    /// as `pg_dump` leaves them out).
    include_extension_objects: Option<bool>,
}

/// The document as served.
pub fn document(openapi: utoipa::openapi::OpenApi) -> String {
    openapi.to_json().expect("the OpenAPI document serializes")
}
