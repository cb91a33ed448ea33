//! The transactional outbox: the events a sync raises, and one delivery (with its job) per
//! matching subscription, written in the transaction that ends the sync. No event exists
//! without its sync's outcome committed, and no outcome commits without its events.
//!
//! With no subscription to an event, raising it costs one indexed query and writes nothing.

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use super::Tx;
use super::blast_radius::{self, Target};
use super::changes;
use super::deliveries;
use super::syncs::SyncStats;
use super::webhooks::{self, Subscriber};
use crate::events::{self, EventType};
use crate::ids::{CatalogId, EventId, SyncId};

/// The most changes one `schema.changed` event carries; past it the event says how many there
/// were and where the whole list is (`changes_url`).
pub const MAX_EVENT_CHANGES: i64 = 1_000;

/// Raises the events of a succeeded sync: `sync.succeeded`, and `schema.changed` when it
/// recorded changes.
pub async fn sync_succeeded(
    tx: &mut Tx<'_>,
    queue: &str,
    catalog: CatalogId,
    sync: SyncId,
    stats: &SyncStats,
) -> sqlx::Result<()> {
    let changed = stats.changes.unwrap_or(0) > 0;
    let kinds: &[EventType] = match changed {
        true => &[EventType::SyncSucceeded, EventType::SchemaChanged],
        false => &[EventType::SyncSucceeded],
    };
    let found = webhooks::subscribers(&mut **tx, kinds, catalog).await?;
    let subscribers = found.to(EventType::SyncSucceeded);
    if !subscribers.is_empty() {
        let data = json!({
            "catalog_id": catalog,
            "sync_id": sync,
            "source": source(tx, catalog).await?,
            "stats": stats,
        });
        raise(
            tx,
            queue,
            EventType::SyncSucceeded,
            catalog,
            sync,
            data,
            &subscribers,
        )
        .await?;
    }
    let subscribers = found.to(EventType::SchemaChanged);
    if changed && !subscribers.is_empty() {
        schema_changed(tx, queue, catalog, sync, subscribers).await?;
    }
    Ok(())
}

/// Raises `sync.failed` for a sync that failed for good.
pub async fn sync_failed(
    tx: &mut Tx<'_>,
    queue: &str,
    catalog: CatalogId,
    sync: SyncId,
    error: &str,
) -> sqlx::Result<()> {
    let subscribers = webhooks::subscribers(&mut **tx, &[EventType::SyncFailed], catalog)
        .await?
        .to(EventType::SyncFailed);
    if subscribers.is_empty() {
        return Ok(());
    }
    let data = json!({
        "catalog_id": catalog,
        "sync_id": sync,
        "source": source(tx, catalog).await?,
        "error": error,
    });
    raise(
        tx,
        queue,
        EventType::SyncFailed,
        catalog,
        sync,
        data,
        &subscribers,
    )
    .await
}

/// `schema.changed`: the sync's recorded changes, each classified and with its blast radius.
/// Subscribers that want breaking changes only get no event when none is breaking.
async fn schema_changed(
    tx: &mut Tx<'_>,
    queue: &str,
    catalog: CatalogId,
    sync: SyncId,
    mut subscribers: Vec<Subscriber>,
) -> sqlx::Result<()> {
    let recorded = changes::list_for_sync(&mut **tx, sync, None, MAX_EVENT_CHANGES + 1).await?;
    let truncated = recorded.len() as i64 > MAX_EVENT_CHANGES;
    let recorded = &recorded[..recorded.len().min(MAX_EVENT_CHANGES as usize)];
    // Only relations and columns have dependents the snapshot knows of.
    let (wanted, targets): (Vec<usize>, Vec<Target>) = recorded
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let column = match r.change.object.as_str() {
                "relation" => None,
                "column" => r.change.name.as_deref(),
                _ => return None,
            };
            let target = Target {
                schema: &r.change.schema,
                relation: &r.change.relation,
                column,
            };
            Some((i, target))
        })
        .unzip();
    let found = blast_radius::dependents(tx, catalog, &targets).await?;
    let mut radius: Vec<Vec<Value>> = vec![Vec::new(); recorded.len()];
    for (i, dependents) in wanted.into_iter().zip(found) {
        radius[i] = dependents;
    }
    let items: Vec<Value> = recorded
        .iter()
        .zip(radius)
        .map(|(r, dependents)| {
            let mut item = serde_json::to_value(&r.change).expect("a change serializes");
            item["blast_radius"] = Value::Array(dependents);
            item
        })
        .collect();
    let breaking = items.iter().any(events::is_breaking);
    if !breaking {
        subscribers.retain(|s| !s.breaking_only);
        if subscribers.is_empty() {
            return Ok(());
        }
    }
    let total = changes::count_for_sync(&mut **tx, sync).await?;
    let data = json!({
        "catalog_id": catalog,
        "sync_id": sync,
        "source": source(tx, catalog).await?,
        "breaking": breaking,
        "changes_total": total,
        "truncated": truncated,
        "changes_url": format!("/syncs/{sync}/changes"),
        "changes": items,
    });
    raise(
        tx,
        queue,
        EventType::SchemaChanged,
        catalog,
        sync,
        data,
        &subscribers,
    )
    .await
}

/// Stores the event and its deliveries (with their jobs).
async fn raise(
    tx: &mut Tx<'_>,
    queue: &str,
    kind: EventType,
    catalog: CatalogId,
    sync: SyncId,
    data: Value,
    subscribers: &[Subscriber],
) -> sqlx::Result<()> {
    let id = EventId::from(Uuid::now_v7());
    let payload = events::envelope(kind, Utc::now(), data);
    deliveries::insert_event(
        tx,
        id,
        kind.as_str(),
        Some(catalog),
        Some(sync.uuid()),
        &payload,
    )
    .await?;
    deliveries::create(tx, queue, id, Some(catalog), subscribers).await?;
    Ok(())
}

/// The source of a catalog, as events name it.
async fn source(tx: &mut Tx<'_>, catalog: CatalogId) -> sqlx::Result<Value> {
    let row: Option<(String, i32, String)> =
        sqlx::query_as("SELECT host, port, dbname FROM catalogs WHERE id = $1")
            .bind(catalog)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.map_or(
        Value::Null,
        |(host, port, dbname)| json!({"host": host, "port": port, "dbname": dbname}),
    ))
}

/// A test event for one subscription, due now: `webhook.test`, whatever its events.
pub async fn test_event(
    tx: &mut Tx<'_>,
    queue: &str,
    subscriber: Subscriber,
) -> sqlx::Result<deliveries::Created> {
    let id = EventId::from(Uuid::now_v7());
    let payload = events::envelope(
        EventType::Test,
        Utc::now(),
        json!({"webhook_id": subscriber.id, "message": "a test event from pg-catalog-sync"}),
    );
    deliveries::insert_event(tx, id, EventType::Test.as_str(), None, None, &payload).await?;
    let delivery = deliveries::create(tx, queue, id, None, &[subscriber]).await?;
    Ok(deliveries::Created {
        event: id,
        delivery: delivery[0],
    })
}
