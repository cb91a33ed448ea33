//! Waiting for syncs to end: one LISTEN connection per API process fans the store's
//! `pgcs_sync_finished` notifications out to every waiting request.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::error::ApiError;
use crate::store::syncs::{self, SyncRow};

const CHANNEL: &str = "pgcs_sync_finished";
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
    pub fn start(pool: PgPool) -> Self {
        let (sender, _) = broadcast::channel(1024);
        let events = sender.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(200);
            loop {
                match listen(&pool, &events).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, ?delay, "sync notifications lost; listening again")
                    }
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
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
            let sync = syncs::get(pool, sync_id).await?;
            let ended = sync.as_ref().is_none_or(|s| syncs::is_terminal(&s.status));
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

async fn listen(pool: &PgPool, events: &broadcast::Sender<Uuid>) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    loop {
        let notification = listener.recv().await?;
        if let Ok(id) = notification.payload().parse::<Uuid>() {
            // No subscriber is fine: nobody is waiting.
            let _ = events.send(id);
        }
    }
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
