//! Deliveries of events to subscriptions, and the jobs of the webhook queue that make them.
//!
//! A delivery is created with its first job in one transaction: with the sync that raised
//! its event (the outbox), or by a request (a test event, a redelivery). Each attempt that
//! fails and may be retried ends its job and writes the next one, due after the backoff.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{FromRow, PgExecutor};
use ulid::Ulid;
use uuid::Uuid;

use super::Tx;
use super::webhooks::Subscriber;
use crate::ids::{CatalogId, DeliveryId, EventId, WebhookId};

/// The payload of a job of the webhook queue: one attempt of a delivery.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct DeliveryJob {
    pub delivery_id: DeliveryId,
    /// The attempts the delivery had made when this job was written. A job run again after
    /// its attempt was recorded (its worker died before apalis heard of it) finds more and
    /// does nothing, so that one retry never becomes two chains of them.
    #[serde(default)]
    pub after_attempts: i32,
}

/// The webhook queue of the sync queue `queue`: deliveries go through the same store and
/// workers as syncs, in a queue of their own so that neither waits behind the other.
pub fn queue_name(queue: &str) -> String {
    format!("{queue}.webhooks")
}

/// How many times apalis may hand one delivery job to a worker (it does again only when a
/// worker died or released it); a failed attempt is retried by a new job, not by apalis.
const JOB_MAX_DELIVERIES: i32 = 25;

/// Inserts the apalis jobs of `deliveries`, which have made `after_attempts` attempts, due at
/// `run_at`.
async fn push_jobs(
    db: impl PgExecutor<'_>,
    queue: &str,
    deliveries: &[Uuid],
    after_attempts: i32,
    run_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    let ids: Vec<String> = deliveries
        .iter()
        .map(|_| Ulid::generate().to_string())
        .collect();
    let jobs: Vec<Vec<u8>> = deliveries
        .iter()
        .map(|&d| {
            serde_json::to_vec(&DeliveryJob {
                delivery_id: d.into(),
                after_attempts,
            })
            .expect("a delivery job serializes")
        })
        .collect();
    sqlx::query(
        "INSERT INTO apalis.jobs (id, job_type, job, status, attempts, max_attempts, run_at,
                                  priority, metadata)
         SELECT j.id, $1, j.job, 'Pending', 0, $2, $3, 0, ''::hstore
         FROM UNNEST($4::text[], $5::bytea[]) AS j(id, job)",
    )
    .bind(queue)
    .bind(JOB_MAX_DELIVERIES)
    .bind(run_at)
    .bind(&ids)
    .bind(&jobs)
    .execute(db)
    .await?;
    Ok(())
}

/// Creates one delivery of `event` per subscriber, each with the subscriber's next sequence
/// number for `catalog`, and their jobs, due now.
pub async fn create(
    tx: &mut Tx<'_>,
    queue: &str,
    event: EventId,
    catalog: Option<CatalogId>,
    subscribers: &[Subscriber],
) -> sqlx::Result<Vec<DeliveryId>> {
    if subscribers.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = subscribers.iter().map(|_| Uuid::now_v7()).collect();
    let webhooks: Vec<Uuid> = subscribers.iter().map(|s| s.id).collect();
    let breaking_only: Vec<bool> = subscribers.iter().map(|s| s.breaking_only).collect();
    sqlx::query(
        "WITH numbered AS (
             INSERT INTO webhook_sequences AS s (webhook_id, catalog_id, last)
             SELECT w, coalesce($3, '00000000-0000-0000-0000-000000000000'::uuid), 1
             FROM UNNEST($2::uuid[]) AS w
             ON CONFLICT (webhook_id, catalog_id) DO UPDATE SET last = s.last + 1
             RETURNING webhook_id, last
         )
         INSERT INTO webhook_deliveries (id, webhook_id, event_id, sequence, breaking_only)
         SELECT d.id, d.webhook_id, $1, n.last, d.breaking_only
         FROM UNNEST($4::uuid[], $2::uuid[], $5::bool[]) AS d(id, webhook_id, breaking_only)
         JOIN numbered n USING (webhook_id)",
    )
    .bind(event)
    .bind(&webhooks)
    .bind(catalog)
    .bind(&ids)
    .bind(&breaking_only)
    .execute(&mut **tx)
    .await?;
    push_jobs(&mut **tx, queue, &ids, 0, Utc::now()).await?;
    Ok(ids.into_iter().map(DeliveryId::from).collect())
}

/// Stores an event; its id is the `webhook-id` of its deliveries.
pub async fn insert_event(
    tx: &mut Tx<'_>,
    id: EventId,
    kind: &str,
    catalog: Option<CatalogId>,
    sync: Option<Uuid>,
    payload: &Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO webhook_events (id, type, catalog_id, sync_id, payload)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(kind)
    .bind(catalog)
    .bind(sync)
    .bind(payload)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A new delivery of an earlier delivery's event to the same subscription, with the same
/// sequence number (a receiver sees the same `webhook-id` and body again), due now. `None`
/// when there is no such delivery of that subscription.
pub async fn redeliver(
    tx: &mut Tx<'_>,
    queue: &str,
    webhook: WebhookId,
    of: DeliveryId,
) -> sqlx::Result<Option<Created>> {
    let id = Uuid::now_v7();
    let event: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, sequence, breaking_only)
         SELECT $1, webhook_id, event_id, sequence, breaking_only
         FROM webhook_deliveries WHERE id = $2 AND webhook_id = $3
         RETURNING event_id",
    )
    .bind(id)
    .bind(of)
    .bind(webhook)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(event) = event else {
        return Ok(None);
    };
    push_jobs(&mut **tx, queue, &[id], 0, Utc::now()).await?;
    Ok(Some(Created {
        event: event.into(),
        delivery: id.into(),
    }))
}

/// What an attempt needs: the delivery, its event and its subscription.
#[derive(Debug, Clone, FromRow)]
pub struct Sending {
    pub id: Uuid,
    pub status: String,
    pub attempts: i32,
    pub sequence: i64,
    pub breaking_only: bool,
    pub created_at: DateTime<Utc>,
    pub event_id: Uuid,
    pub event_type: String,
    pub payload: Value,
    pub webhook_id: Uuid,
    pub url: String,
    pub sealed_secret: String,
    pub disabled_reason: Option<String>,
    pub disabled: bool,
}

pub async fn for_sending(db: impl PgExecutor<'_>, id: DeliveryId) -> sqlx::Result<Option<Sending>> {
    sqlx::query_as(
        "SELECT d.id, d.status, d.attempts, d.sequence, d.breaking_only, d.created_at,
                e.id AS event_id, e.type AS event_type, e.payload,
                w.id AS webhook_id, w.url, w.sealed_secret, w.disabled_reason,
                w.disabled_at IS NOT NULL AS disabled
         FROM webhook_deliveries d
         JOIN webhook_events e ON e.id = d.event_id
         JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// What one attempt saw: the receiver's status code (none when no answer came), how long
/// it took, and what went wrong.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    pub status_code: Option<u16>,
    pub latency_ms: Option<i32>,
    pub error: Option<String>,
}

/// The state a delivery is left in after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Succeeded,
    /// Tried again at this time, by a new job.
    RetryAt(DateTime<Utc>),
    Failed,
}

/// Records the attempt that follows `made` earlier ones and what comes next; a retry's job is
/// written with it, so `tx` commits both or neither.
pub async fn record_attempt(
    tx: &mut Tx<'_>,
    queue: &str,
    id: DeliveryId,
    made: i32,
    attempt: &Attempt,
    next: Next,
) -> sqlx::Result<()> {
    let (status, next_at) = match next {
        Next::Succeeded => ("succeeded", None),
        Next::RetryAt(at) => ("retrying", Some(at)),
        Next::Failed => ("failed", None),
    };
    sqlx::query(
        "UPDATE webhook_deliveries
         SET status = $2, attempts = attempts + 1, last_status_code = $3, last_latency_ms = $4,
             last_error = $5, next_attempt_at = $6,
             finished_at = CASE WHEN $6::timestamptz IS NULL THEN now() END
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(attempt.status_code.map(|c| c as i16))
    .bind(attempt.latency_ms)
    .bind(attempt.error.as_deref())
    .bind(next_at)
    .execute(&mut **tx)
    .await?;
    if let Some(at) = next_at {
        push_jobs(&mut **tx, queue, &[id.uuid()], made + 1, at).await?;
    }
    Ok(())
}

/// Ends a delivery without an attempt (its subscription was disabled meanwhile).
pub async fn abandon(db: impl PgExecutor<'_>, id: DeliveryId, why: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE webhook_deliveries
         SET status = 'failed', last_error = $2, next_attempt_at = NULL, finished_at = now()
         WHERE id = $1 AND status IN ('pending', 'retrying')",
    )
    .bind(id)
    .bind(why)
    .execute(db)
    .await?;
    Ok(())
}

/// A delivery as the API shows it.
#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    /// `schema.changed`, `sync.succeeded`, `sync.failed` or `webhook.test`.
    pub event_type: String,
    pub catalog_id: Option<Uuid>,
    pub sync_id: Option<Uuid>,
    pub sequence: i64,
    /// `pending`, `retrying`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// The receiver's status code at the last attempt; null when it did not answer.
    pub last_status_code: Option<i16>,
    pub last_latency_ms: Option<i32>,
    pub last_error: Option<String>,
    /// When a retrying delivery's next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "d.id, d.webhook_id, d.event_id, e.type AS event_type, \
     e.catalog_id, e.sync_id, d.sequence, d.status, d.attempts, d.last_status_code, \
     d.last_latency_ms, d.last_error, d.next_attempt_at, d.created_at, d.finished_at";

/// A subscription's deliveries, newest first, before the cursor `before`.
pub async fn list(
    db: impl PgExecutor<'_>,
    webhook: WebhookId,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<DeliveryRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS}
         FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
         WHERE d.webhook_id = $1 AND ($2::uuid IS NULL OR d.id < $2)
         ORDER BY d.id DESC LIMIT $3"
    )))
    .bind(webhook)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn get(
    db: impl PgExecutor<'_>,
    webhook: WebhookId,
    id: DeliveryId,
) -> sqlx::Result<Option<DeliveryRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS}
         FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
         WHERE d.webhook_id = $1 AND d.id = $2"
    )))
    .bind(webhook)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The newest deliveries of every subscription (the dashboard's list).
pub async fn recent(db: impl PgExecutor<'_>, limit: i64) -> sqlx::Result<Vec<DeliveryRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS}
         FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
         ORDER BY d.id DESC LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Deletes events older than `age` whose deliveries have all ended (with those deliveries).
pub async fn prune(db: impl PgExecutor<'_>, age: std::time::Duration) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM webhook_events e
         WHERE e.created_at < now() - $1::interval
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                           WHERE d.event_id = e.id AND d.status IN ('pending', 'retrying'))",
    )
    .bind(sqlx::postgres::types::PgInterval::try_from(age).unwrap_or_default())
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// A delivery made by a request, and its event.
#[derive(Debug, Clone, Copy)]
pub struct Created {
    pub event: EventId,
    pub delivery: DeliveryId,
}
