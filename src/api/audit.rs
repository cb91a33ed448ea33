//! The audit log: written by [`super::authorize`] for every mutating request, read at
//! `GET /audit` by admins.

use axum::extract::State;
use axum::response::Response;
use sqlx::PgPool;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::QueryParams;
use super::openapi::{PageParams, ReadErrors};
use super::pagination::{PageRequest, page_response};
use crate::coalesce::Coalescer;
use crate::error::ApiError;
use crate::store::audit::{self, Entry, Filter, NewEntry};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

/// Entries written per statement at most; concurrent requests share one.
const MAX_BATCH: usize = 64;

/// Writes audit entries, concurrent ones in one statement. A request waits for its entry to be
/// stored before it is answered, so an answered request is on record.
#[derive(Clone)]
pub struct AuditLog(Coalescer<NewEntry, ()>);

impl AuditLog {
    pub fn start(pool: PgPool) -> Self {
        Self(Coalescer::start(
            1,
            MAX_BATCH,
            move |entries: Vec<NewEntry>| {
                let pool = pool.clone();
                async move {
                    if let Err(e) = audit::insert(&pool, &entries).await {
                        // The request already happened; losing its record is logged loudly.
                        for entry in &entries {
                            tracing::error!(error = %e, ?entry, "writing an audit entry failed");
                        }
                    }
                    vec![(); entries.len()]
                }
            },
        ))
    }

    pub async fn record(&self, entry: NewEntry) {
        let _ = self.0.call(entry).await;
    }
}

/// The audit log, newest first: every mutating request with its token's name, the operation,
/// its target, the request id and the answer's status. `?token=` and `?action=` filter it.
#[utoipa::path(
    get, path = "/audit", tag = "audit",
    security(("bearer" = ["admin"])),
    params(PageParams,
        ("token" = Option<String>, Query, description = "Only this token's entries (its name)"),
        ("action" = Option<String>, Query, description = "Only this operation (`create_sync`, `delete_catalog`, ...)"),
    ),
    responses(
        (status = 200, description = "Entries, newest first", body = Vec<Entry>,
         headers(("link" = String, description = "The next page, when there is one"))),
        ReadErrors,
    )
)]
async fn list_audit(
    State(state): State<AppState>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["limit", "cursor", "token", "action"])?;
    let page = PageRequest::<i64>::from_query(&query)?;
    let filter = Filter {
        token: query.get("token").map(str::to_owned),
        action: query.get("action").map(str::to_owned),
        before: page.after,
    };
    let entries = audit::list(&state.pool, &filter, page.fetch_limit()).await?;
    let kept: Vec<(&str, &str)> = ["token", "action"]
        .into_iter()
        .filter_map(|k| query.get(k).map(|v| (k, v)))
        .collect();
    Ok(page_response(entries, &page, "/audit", &kept, |e| e.id))
}
