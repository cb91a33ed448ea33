//! Webhook subscriptions: where events go, which ones, and whether deliveries still run.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

use crate::events::EventType;
use crate::ids::{CatalogId, WebhookId};

/// A subscription as stored; its secret stays sealed.
#[derive(Debug, Clone, FromRow)]
pub struct WebhookRow {
    pub id: Uuid,
    pub url: String,
    pub sealed_secret: String,
    /// `None`: every catalog.
    pub catalogs: Option<Vec<Uuid>>,
    pub events: Vec<String>,
    pub breaking_only: bool,
    pub description: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, url, sealed_secret, catalogs, events, breaking_only, description, \
                       disabled_at, disabled_reason, consecutive_failures, created_at, updated_at";

/// What a subscription asks for, as created or changed.
#[derive(Debug, Clone)]
pub struct Subscription<'a> {
    pub url: &'a str,
    pub catalogs: Option<&'a [Uuid]>,
    pub events: &'a [EventType],
    pub breaking_only: bool,
    pub description: Option<&'a str>,
}

fn event_names(events: &[EventType]) -> Vec<&'static str> {
    events.iter().map(|e| e.as_str()).collect()
}

pub async fn create(
    db: impl PgExecutor<'_>,
    id: WebhookId,
    sealed_secret: &str,
    s: &Subscription<'_>,
) -> sqlx::Result<WebhookRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhooks (id, url, sealed_secret, catalogs, events, breaking_only, description)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(s.url)
    .bind(sealed_secret)
    .bind(s.catalogs)
    .bind(event_names(s.events))
    .bind(s.breaking_only)
    .bind(s.description)
    .fetch_one(db)
    .await
}

/// Replaces what a subscription asks for; `enable` clears a disabled one's state and
/// failures, `disable` (a reason) stops its deliveries. `None` when it does not exist.
pub async fn update(
    db: impl PgExecutor<'_>,
    id: WebhookId,
    s: &Subscription<'_>,
    enabled: Option<bool>,
) -> sqlx::Result<Option<WebhookRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE webhooks
         SET url = $2, catalogs = $3, events = $4, breaking_only = $5, description = $6,
             disabled_at = CASE $7::bool WHEN true THEN NULL
                                         WHEN false THEN coalesce(disabled_at, now())
                                         ELSE disabled_at END,
             disabled_reason = CASE $7::bool WHEN true THEN NULL
                                             WHEN false THEN coalesce(disabled_reason, 'disabled by request')
                                             ELSE disabled_reason END,
             consecutive_failures = CASE WHEN $7::bool THEN 0 ELSE consecutive_failures END,
             updated_at = now()
         WHERE id = $1
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(s.url)
    .bind(s.catalogs)
    .bind(event_names(s.events))
    .bind(s.breaking_only)
    .bind(s.description)
    .bind(enabled)
    .fetch_optional(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, id: WebhookId) -> sqlx::Result<Option<WebhookRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhooks WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Subscriptions in id (creation) order, after the cursor `after`.
pub async fn list(
    db: impl PgExecutor<'_>,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<WebhookRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhooks
         WHERE $1::uuid IS NULL OR id > $1
         ORDER BY id LIMIT $2"
    )))
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Deletes a subscription with its deliveries; false when there was none.
pub async fn delete(db: impl PgExecutor<'_>, id: WebhookId) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// An enabled subscription to an event: its id, and whether it wants breaking changes only.
#[derive(Debug, Clone, Copy, FromRow)]
pub struct Subscriber {
    pub id: Uuid,
    pub breaking_only: bool,
}

/// The enabled subscriptions to any of `kinds` about `catalog`, with the events each wants:
/// one query for all the events a sync's end raises.
pub async fn subscribers(
    db: impl PgExecutor<'_>,
    kinds: &[EventType],
    catalog: CatalogId,
) -> sqlx::Result<Subscribers> {
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let rows: Vec<(Uuid, bool, Vec<String>)> = sqlx::query_as(
        "SELECT id, breaking_only, events FROM webhooks
         WHERE disabled_at IS NULL AND events && $1::text[]
           AND (catalogs IS NULL OR $2 = ANY (catalogs))
         ORDER BY id",
    )
    .bind(&names)
    .bind(catalog)
    .fetch_all(db)
    .await?;
    Ok(Subscribers(rows))
}

/// Subscriptions with the events they want, as [`subscribers`] found them.
pub struct Subscribers(Vec<(Uuid, bool, Vec<String>)>);

impl Subscribers {
    /// Those that want events of `kind`.
    pub fn to(&self, kind: EventType) -> Vec<Subscriber> {
        self.0
            .iter()
            .filter(|(_, _, events)| events.iter().any(|e| e == kind.as_str()))
            .map(|&(id, breaking_only, _)| Subscriber { id, breaking_only })
            .collect()
    }
}

/// A delivery reached the receiver: the subscription's run of failures ends.
pub async fn record_success(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE webhooks SET consecutive_failures = 0
         WHERE id = $1 AND consecutive_failures <> 0",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// A delivery attempt failed: counts it, and disables the subscription once `disable_after`
/// attempts in a row have failed. Returns whether the subscription is now disabled.
pub async fn record_failure(
    db: impl PgExecutor<'_>,
    id: Uuid,
    disable_after: i32,
) -> sqlx::Result<bool> {
    let disabled: Option<bool> = sqlx::query_scalar(
        "UPDATE webhooks
         SET consecutive_failures = consecutive_failures + 1,
             disabled_at = CASE WHEN consecutive_failures + 1 >= $2
                                THEN coalesce(disabled_at, now()) ELSE disabled_at END,
             disabled_reason = CASE WHEN consecutive_failures + 1 >= $2 AND disabled_at IS NULL
                                    THEN format('%s delivery attempts in a row failed', $2)
                                    ELSE disabled_reason END
         WHERE id = $1
         RETURNING disabled_at IS NOT NULL",
    )
    .bind(id)
    .bind(disable_after)
    .fetch_optional(db)
    .await?;
    Ok(disabled.unwrap_or(true))
}

/// Stops a subscription's deliveries, saying why.
pub async fn disable(db: impl PgExecutor<'_>, id: Uuid, reason: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE webhooks SET disabled_at = coalesce(disabled_at, now()), disabled_reason = $2
         WHERE id = $1",
    )
    .bind(id)
    .bind(reason)
    .execute(db)
    .await?;
    Ok(())
}
