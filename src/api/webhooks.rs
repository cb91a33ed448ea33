//! Webhook subscriptions and their deliveries: `POST /webhooks` subscribes a URL to events of
//! some catalogs (or all); deliveries can be listed, inspected, made again, or tested. All of
//! it needs the `admin` scope: a subscription sends catalog metadata wherever it points.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::extract::{JsonObject, PathParams, QueryParams, only_fields, parse_id};
use super::openapi::{BodyErrors, PageParams, ReadErrors};
use super::pagination::{PageRequest, page_response};
use super::webhook_request::{self, FIELDS, Settings};
use crate::access::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::events::EventType;
use crate::ids::{DeliveryId, WebhookId};
use crate::store::deliveries::{self, Created, DeliveryRow};
use crate::store::outbox;
use crate::store::webhooks::{self, Subscriber, Subscription, WebhookRow};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, patch_webhook, delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(redeliver))
        .routes(routes!(test_webhook))
}

/// The `{id}` of a subscription.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct WebhookPath {
    /// The subscription's id.
    id: Uuid,
}

/// A subscription and one of its deliveries.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct DeliveryPath {
    /// The subscription's id.
    id: Uuid,
    /// The delivery's id.
    delivery_id: Uuid,
}

/// The body of `POST /webhooks`; `PATCH` takes any of these fields, and `enabled`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // the handlers read the body field by field, to name the one at fault
struct WebhookRequest {
    /// Where events are POSTed: http or https, at a host the allow-list admits.
    #[schema(max_length = 2048)]
    url: String,
    /// `whsec_` and 24 to 64 bytes in base64; made when left out, and shown once.
    secret: Option<String>,
    /// `"all"`, or the catalog ids whose events are sent.
    #[schema(value_type = Value)]
    catalogs: Value,
    /// Some of `schema.changed`, `sync.succeeded`, `sync.failed`.
    events: Vec<EventType>,
    /// Only `schema.changed` events with a breaking change, and only their breaking changes.
    breaking_only: Option<bool>,
    #[schema(max_length = 256)]
    description: Option<String>,
    /// `PATCH` only: false stops deliveries; true resumes them and clears the failure count.
    enabled: Option<bool>,
}

/// A subscription as the API shows it; its secret only in the answer that created it.
#[derive(Serialize, utoipa::ToSchema)]
struct WebhookView {
    id: Uuid,
    url: String,
    /// `"all"`, or the catalog ids.
    #[schema(value_type = Value)]
    catalogs: Value,
    events: Vec<String>,
    breaking_only: bool,
    description: Option<String>,
    enabled: bool,
    disabled_at: Option<DateTime<Utc>>,
    /// Why deliveries stopped: by request, a 410 Gone, or too many failed attempts in a row.
    disabled_reason: Option<String>,
    /// Failed delivery attempts since the last success.
    consecutive_failures: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The signing secret: in the answer to `POST /webhooks` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl From<WebhookRow> for WebhookView {
    fn from(w: WebhookRow) -> Self {
        Self {
            id: w.id,
            url: w.url,
            catalogs: w.catalogs.map_or_else(|| json!("all"), |ids| json!(ids)),
            events: w.events,
            breaking_only: w.breaking_only,
            description: w.description,
            enabled: w.disabled_at.is_none(),
            disabled_at: w.disabled_at,
            disabled_reason: w.disabled_reason,
            consecutive_failures: w.consecutive_failures,
            created_at: w.created_at,
            updated_at: w.updated_at,
            secret: None,
        }
    }
}

fn subscription(s: &Settings) -> Subscription<'_> {
    Subscription {
        url: &s.url,
        catalogs: s.catalogs.as_deref(),
        events: &s.events,
        breaking_only: s.breaking_only,
        description: s.description.as_deref(),
    }
}

async fn find(state: &AppState, raw: &str) -> Result<WebhookRow, ApiError> {
    let id = parse_id("id", raw)?;
    webhooks::get(&state.pool, id.into())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no webhook {id}")))
}

/// Subscribes a URL to events. The secret (made when left out) is in this answer only.
#[utoipa::path(
    post, path = "/webhooks", tag = "webhooks",
    security(("bearer" = ["admin"])),
    request_body = WebhookRequest,
    responses((status = 201, description = "The subscription, with its secret", body = WebhookView), ReadErrors, BodyErrors)
)]
async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    only_fields(&body, &FIELDS[..6], "")?;
    let settings = webhook_request::parse_new(&body, &state.webhook_policy, &caller)?;
    let secret = webhook_request::parse_secret(body.get("secret"))?;
    let id = WebhookId::from(Uuid::now_v7());
    let sealed = state.key.seal(&secret, id.as_bytes());
    let row = webhooks::create(&state.pool, id, &sealed, &subscription(&settings)).await?;
    let mut view = WebhookView::from(row);
    view.secret = Some(secret.expose_secret().to_owned());
    let location = format!("/webhooks/{id}");
    Ok((StatusCode::CREATED, [(LOCATION, location)], Json(view)).into_response())
}

/// The subscriptions, oldest first.
#[utoipa::path(
    get, path = "/webhooks", tag = "webhooks",
    security(("bearer" = ["admin"])),
    params(PageParams),
    responses((status = 200, description = "Subscriptions (`Link` for the next page)", body = Vec<WebhookView>), ReadErrors)
)]
async fn list_webhooks(
    State(state): State<AppState>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["limit", "cursor"])?;
    let page = PageRequest::<Uuid>::from_query(&query)?;
    let rows = webhooks::list(&state.pool, page.after, page.fetch_limit()).await?;
    let rows: Vec<WebhookView> = rows.into_iter().map(WebhookView::from).collect();
    Ok(page_response(rows, &page, "/webhooks", &[], |w| w.id))
}

#[utoipa::path(
    get, path = "/webhooks/{id}", tag = "webhooks",
    security(("bearer" = ["admin"])),
    params(WebhookPath),
    responses((status = 200, description = "The subscription", body = WebhookView), ReadErrors)
)]
async fn get_webhook(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(find(&state, &id).await?.into()))
}

/// Changes a subscription: any field of `POST`'s body but the secret, and `enabled`.
#[utoipa::path(
    patch, path = "/webhooks/{id}", tag = "webhooks",
    security(("bearer" = ["admin"])),
    params(WebhookPath),
    request_body = WebhookRequest,
    responses((status = 200, description = "The subscription", body = WebhookView), ReadErrors, BodyErrors)
)]
async fn patch_webhook(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(id): PathParams<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<WebhookView>, ApiError> {
    only_fields(&body, &FIELDS, "")?;
    let row = find(&state, &id).await?;
    let enabled = webhook_request::parse_bool(&body, "enabled")?;
    let current = Settings {
        url: row.url.clone(),
        catalogs: row.catalogs.clone(),
        events: row
            .events
            .iter()
            .filter_map(|e| EventType::parse(e))
            .collect(),
        breaking_only: row.breaking_only,
        description: row.description.clone(),
    };
    let settings = webhook_request::apply_patch(current, &body, &state.webhook_policy, &caller)?;
    let updated = webhooks::update(
        &state.pool,
        row.id.into(),
        &subscription(&settings),
        enabled,
    )
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no webhook {}", row.id)))?;
    Ok(Json(updated.into()))
}

/// Deletes a subscription with its deliveries (pending ones are not sent).
#[utoipa::path(
    delete, path = "/webhooks/{id}", tag = "webhooks",
    security(("bearer" = ["admin"])),
    params(WebhookPath),
    responses((status = 204, description = "Deleted"), ReadErrors)
)]
async fn delete_webhook(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    match webhooks::delete(&state.pool, id.into()).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::NotFound(format!("no webhook {id}"))),
    }
}

/// A subscription's deliveries, newest first: status, attempts, the last answer and latency,
/// and when a retrying one is tried next.
#[utoipa::path(
    get, path = "/webhooks/{id}/deliveries", tag = "webhooks",
    security(("bearer" = ["admin"])),
    params(WebhookPath, PageParams),
    responses((status = 200, description = "Deliveries (`Link` for the next page)", body = Vec<DeliveryRow>), ReadErrors)
)]
async fn list_deliveries(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    query.only(&["limit", "cursor"])?;
    let page = PageRequest::<Uuid>::from_query(&query)?;
    let row = find(&state, &id).await?;
    let rows = deliveries::list(&state.pool, row.id.into(), page.after, page.fetch_limit()).await?;
    let path = format!("/webhooks/{}/deliveries", row.id);
    Ok(page_response(rows, &page, &path, &[], |d| d.id))
}

#[utoipa::path(
    get, path = "/webhooks/{id}/deliveries/{delivery_id}", tag = "webhooks",
    security(("bearer" = ["admin"])),
    params(DeliveryPath),
    responses((status = 200, description = "The delivery", body = DeliveryRow), ReadErrors)
)]
async fn get_delivery(
    State(state): State<AppState>,
    PathParams((id, delivery_id)): PathParams<(String, String)>,
) -> Result<Json<DeliveryRow>, ApiError> {
    let (webhook, delivery) = delivery_ids(&id, &delivery_id)?;
    deliveries::get(&state.pool, webhook, delivery)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no delivery {delivery} of webhook {webhook}")))
}

fn delivery_ids(id: &str, delivery_id: &str) -> Result<(WebhookId, DeliveryId), ApiError> {
    Ok((
        parse_id("id", id)?.into(),
        parse_id("delivery_id", delivery_id)?.into(),
    ))
}

/// What a request that sends something answers: the delivery it queued.
#[derive(Serialize, utoipa::ToSchema)]
struct Queued {
    delivery_id: Uuid,
    event_id: Uuid,
}

fn queued(webhook: Uuid, created: Created) -> Response {
    let location = format!("/webhooks/{webhook}/deliveries/{}", created.delivery);
    let body = Queued {
        delivery_id: created.delivery.uuid(),
        event_id: created.event.uuid(),
    };
    (StatusCode::ACCEPTED, [(LOCATION, location)], Json(body)).into_response()
}

fn refuse_disabled(row: &WebhookRow) -> Result<(), ApiError> {
    match &row.disabled_at {
        None => Ok(()),
        Some(_) => Err(ApiError::Conflict(format!(
            "the webhook is disabled ({}): enable it first (PATCH with \"enabled\": true)",
            row.disabled_reason.as_deref().unwrap_or("by request")
        ))),
    }
}

/// Sends a delivery's event again, as a new delivery with the same `webhook-id`, body and
/// sequence number (receivers deduplicate on the id).
#[utoipa::path(
    post, path = "/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "webhooks",
    security(("bearer" = ["admin"])),
    params(DeliveryPath),
    responses(
        (status = 202, description = "The new delivery is queued (`Location` shows it)", body = Queued),
        (status = 409, description = "The webhook is disabled", body = ErrorBody),
        ReadErrors
    )
)]
async fn redeliver(
    State(state): State<AppState>,
    PathParams((id, delivery_id)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let (webhook, delivery) = delivery_ids(&id, &delivery_id)?;
    let row = find(&state, &id).await?;
    refuse_disabled(&row)?;
    let mut tx = state.pool.begin().await?;
    let created = deliveries::redeliver(&mut tx, &state.webhook_queue, webhook, delivery)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("no delivery {delivery} of webhook {webhook}"))
        })?;
    tx.commit().await?;
    Ok(queued(row.id, created))
}

/// Sends a `webhook.test` event to the subscription, whatever its events.
#[utoipa::path(
    post, path = "/webhooks/{id}/test", tag = "webhooks",
    security(("bearer" = ["admin"])),
    params(WebhookPath),
    responses(
        (status = 202, description = "The test event's delivery is queued (`Location` shows it)", body = Queued),
        (status = 409, description = "The webhook is disabled", body = ErrorBody),
        ReadErrors
    )
)]
async fn test_webhook(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let row = find(&state, &id).await?;
    refuse_disabled(&row)?;
    let subscriber = Subscriber {
        id: row.id,
        breaking_only: false,
    };
    let mut tx = state.pool.begin().await?;
    let created = outbox::test_event(&mut tx, &state.webhook_queue, subscriber).await?;
    tx.commit().await?;
    Ok(queued(row.id, created))
}
