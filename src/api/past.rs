//! Reads of a catalog as a past sync left it: `?sync=<sync id>` or `?as_of=<timestamp>` on
//! the catalog's object reads. Each names a succeeded sync that retention keeps; the state
//! after it is read from its copy in the snapshot tables (`store::states`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::AppState;
use super::catalogs::ensure_catalog;
use super::extract::{QueryParams, parse_id};
use crate::error::ApiError;
use crate::ids::SyncId;
use crate::store::reads::SchemaRow;
use crate::store::states;
use crate::store::syncs::{self, SyncStatus};

/// The query parameters that choose a past state, accepted by every read that takes them.
pub const PARAMS: [&str; 2] = ["sync", "as_of"];

/// Which stored snapshot a read of catalog `catalog` serves.
pub struct Snapshot {
    pub catalog: Uuid,
    /// The id its rows are stored under: the catalog's own, or a past state's.
    pub stored_as: Uuid,
    /// The sync whose state is read, when it is not the current one.
    pub sync: Option<SyncId>,
}

impl Snapshot {
    /// The current snapshot: no query for it, a read proves the catalog exists.
    pub fn current(catalog: Uuid) -> Self {
        Self {
            catalog,
            stored_as: catalog,
            sync: None,
        }
    }

    /// `sync=<id>` for the links of a past state's pages and documents, so that they stay on
    /// the same state (an `as_of` is resolved once, to its sync).
    pub fn link_params(&self) -> Vec<(&'static str, String)> {
        self.sync
            .iter()
            .map(|s| ("sync", s.uuid().to_string()))
            .collect()
    }

    /// Schema rows read from a past state's copy, as its catalog's: they name the catalog, not
    /// the copy (their `id`s are the copy's rows').
    pub fn own(&self, mut rows: Vec<SchemaRow>) -> Vec<SchemaRow> {
        for row in &mut rows {
            row.catalog_id = self.catalog;
        }
        rows
    }

    /// `path`, with the query that keeps a link on this state.
    pub fn href(&self, path: String) -> String {
        match self.sync {
            Some(sync) => format!("{path}?sync={}", sync.uuid()),
            None => path,
        }
    }
}

/// The snapshot `query` asks for in `catalog`, copied for reading when it is a past one; the
/// errors are [`sync`]'s.
pub async fn snapshot(
    state: &AppState,
    catalog: Uuid,
    query: &QueryParams,
) -> Result<Snapshot, ApiError> {
    let Some(sync) = sync(state, catalog, query).await? else {
        return Ok(Snapshot::current(catalog));
    };
    let stored_as = states::readable(&state.pool, catalog.into(), sync)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no catalog {catalog}")))?;
    Ok(Snapshot {
        catalog,
        stored_as,
        sync: Some(sync),
    })
}

/// The past sync `query` names in `catalog` (`None`: the current state). 400 names `sync` or
/// `as_of` when malformed or both given, 404 for an unknown catalog or sync or no sync before
/// `as_of`, 409 for a sync that did not succeed (it wrote no snapshot).
pub async fn sync(
    state: &AppState,
    catalog: Uuid,
    query: &QueryParams,
) -> Result<Option<SyncId>, ApiError> {
    let sync = match (query.get("sync"), query.get("as_of")) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "as_of",
                "give sync or as_of, not both",
            ));
        }
        (Some(raw), None) => {
            let id = SyncId::from(parse_id("sync", raw)?);
            ensure_catalog(state, catalog).await?;
            let found = syncs::get(&state.pool, id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no sync {}", id.uuid())))?;
            if found.catalog_id != Some(catalog) {
                return Err(ApiError::validation(
                    "sync",
                    format!("sync {} is not a sync of catalog {catalog}", id.uuid()),
                ));
            }
            match found.status {
                SyncStatus::Succeeded => id,
                status => {
                    return Err(ApiError::Conflict(format!(
                        "sync {} is {status}: only a succeeded sync left a snapshot",
                        id.uuid()
                    )));
                }
            }
        }
        (None, Some(raw)) => {
            let at = DateTime::parse_from_rfc3339(raw)
                .map_err(|_| ApiError::validation("as_of", "must be an RFC 3339 timestamp"))?
                .with_timezone(&Utc);
            ensure_catalog(state, catalog).await?;
            states::sync_as_of(&state.pool, catalog.into(), at)
                .await?
                .ok_or_else(|| {
                    ApiError::NotFound(format!(
                        "catalog {catalog} had no snapshot at {}",
                        at.to_rfc3339()
                    ))
                })?
        }
    };
    Ok(Some(sync))
}
