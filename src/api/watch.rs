//! The store's notifications, on one LISTEN connection per API process: `pgcs_sync_finished`
//! wakes the requests waiting for a sync to end; `pgcs_catalog_changed` retires what the read
//! cache holds of that catalog.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::cache::ReadCache;
use crate::error::ApiError;
use crate::store::syncs::{self, SyncRow};

const SYNC_FINISHED: &str = "pgcs_sync_finished";
const CATALOG_CHANGED: &str = "pgcs_catalog_changed";
/// The longest wait a request may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// A waiting request re-reads the sync this often even without a notification, in case one
/// was missed while the listener reconnected.
const RECHECK: Duration = Duration::from_secs(5);

/// Hands out subscriptions to "sync ended" events.
#[derive(Clone)]
pub struct SyncWatcher {
    sender: broadcast::Sender<Uuid>,
}

impl SyncWatcher {
    /// Starts listening on `pool`'s database; reconnects by itself when the store comes back.
    pub fn start(pool: PgPool, cache: Arc<ReadCache>) -> Self {
        let (sender, _) = broadcast::channel(1024);
        let events = sender.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(200);
            loop {
                let heard = listen(&pool, &events, &cache).await;
                cache.deaf();
                if let Err(e) = heard {
                    tracing::warn!(error = %e, ?delay, "store notifications lost; listening again");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                } else {
                    delay = Duration::from_millis(200);
                }
            }
        });
        Self { sender }
    }

    /// Waits up to `wait` for the sync to end; returns it as it then is (`None`: unknown).
    pub async fn wait(
        &self,
        pool: &PgPool,
        sync_id: Uuid,
        wait: Duration,
    ) -> Result<Option<SyncRow>, ApiError> {
        // Subscribe before reading, so an end between the read and the wait is not missed.
        let mut events = self.sender.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let sync = syncs::get(pool, sync_id.into()).await?;
            let ended = sync.as_ref().is_none_or(|s| s.status.is_terminal());
            let now = tokio::time::Instant::now();
            if ended || now >= deadline {
                return Ok(sync);
            }
            let until = deadline.min(now + RECHECK);
            loop {
                match tokio::time::timeout_at(until, events.recv()).await {
                    Ok(Ok(id)) if id != sync_id => continue,
                    // This sync ended, events were dropped (lagged), or time to re-read.
                    _ => break,
                }
            }
        }
    }
}

/// Listens until the connection is lost (`Ok`) or cannot be made (`Err`).
async fn listen(
    pool: &PgPool,
    events: &broadcast::Sender<Uuid>,
    cache: &ReadCache,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([SYNC_FINISHED, CATALOG_CHANGED])
        .await?;
    cache.listening();
    // `try_recv` tells a lost connection (`None`) apart, where `recv` would reconnect silently
    // and hide the notifications missed meanwhile.
    while let Some(notification) = listener.try_recv().await? {
        let Ok(id) = notification.payload().parse::<Uuid>() else {
            continue;
        };
        if notification.channel() == CATALOG_CHANGED {
            cache.catalog_changed(id);
        } else {
            // No subscriber is fine: nobody is waiting.
            let _ = events.send(id);
        }
    }
    Ok(())
}

/// Parses `wait=30s` (also `500ms`, `2m`, or plain seconds), at most [`MAX_WAIT`].
pub fn parse_wait(raw: &str) -> Result<Duration, ApiError> {
    let invalid = || {
        ApiError::validation(
            "wait",
            format!(
                "must be a duration like 30s or 500ms, at most {}s",
                MAX_WAIT.as_secs()
            ),
        )
    };
    let wait = crate::duration::parse(raw.trim()).ok_or_else(invalid)?;
    if wait > MAX_WAIT {
        return Err(invalid());
    }
    Ok(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_parse_with_units_and_a_bound() {
        assert_eq!(parse_wait("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_wait("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_wait("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_wait("7").unwrap(), Duration::from_secs(7));
        for bad in ["", "s", "-1s", "2h", "61s", "1.5s", "10 s"] {
            assert!(parse_wait(bad).is_err(), "{bad}");
        }
    }
}
