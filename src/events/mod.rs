//! Events a sync raises for webhook subscribers, and how they are signed: the envelope
//! `{"type", "timestamp", "data"}` of the Standard Webhooks specification.

pub mod signature;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use signature::{SignatureError, SigningKey};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    /// A sync recorded changes to its catalog's schema.
    #[serde(rename = "schema.changed")]
    SchemaChanged,
    #[serde(rename = "sync.succeeded")]
    SyncSucceeded,
    /// A sync failed for good (after its retries, or with an error no retry fixes).
    #[serde(rename = "sync.failed")]
    SyncFailed,
    /// Sent by `POST /webhooks/{id}/test`, whatever the subscription's events.
    #[serde(rename = "webhook.test")]
    Test,
}

impl EventType {
    /// The events a subscription may ask for.
    pub const SUBSCRIBABLE: [EventType; 3] = [
        EventType::SchemaChanged,
        EventType::SyncSucceeded,
        EventType::SyncFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SchemaChanged => "schema.changed",
            Self::SyncSucceeded => "sync.succeeded",
            Self::SyncFailed => "sync.failed",
            Self::Test => "webhook.test",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::SchemaChanged,
            Self::SyncSucceeded,
            Self::SyncFailed,
            Self::Test,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// The stored body of an event: the envelope every subscriber receives.
pub fn envelope(kind: EventType, at: DateTime<Utc>, data: Value) -> Value {
    json!({
        "type": kind.as_str(),
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    })
}

/// The body one subscription receives: the event's envelope with the subscription's sequence
/// number for the catalog, and, for a `breaking_only` subscription, the breaking changes alone.
pub fn body_for(envelope: &Value, sequence: i64, breaking_only: bool) -> Vec<u8> {
    let mut body = envelope.clone();
    if let Some(data) = body.get_mut("data").and_then(Value::as_object_mut) {
        data.insert("sequence".into(), json!(sequence));
        if breaking_only && let Some(Value::Array(changes)) = data.get_mut("changes") {
            changes.retain(is_breaking);
        }
    }
    serde_json::to_vec(&body).expect("a JSON value serializes")
}

/// Whether a change of a `schema.changed` body is classified breaking.
pub fn is_breaking(change: &Value) -> bool {
    change.get("classification").and_then(Value::as_str) == Some("breaking")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_breaking_only_body_keeps_the_breaking_changes() {
        let event = envelope(
            EventType::SchemaChanged,
            Utc::now(),
            json!({"changes": [
                {"object": "column", "classification": "breaking"},
                {"object": "index", "classification": "non_breaking"},
            ]}),
        );
        let all: Value = serde_json::from_slice(&body_for(&event, 7, false)).unwrap();
        let breaking: Value = serde_json::from_slice(&body_for(&event, 7, true)).unwrap();
        assert_eq!(all["type"], "schema.changed");
        assert_eq!(all["data"]["sequence"], 7);
        assert_eq!(all["data"]["changes"].as_array().unwrap().len(), 2);
        assert_eq!(breaking["data"]["changes"].as_array().unwrap().len(), 1);
        assert_eq!(breaking["data"]["changes"][0]["object"], "column");
    }

    #[test]
    fn event_types_round_trip() {
        for t in [
            EventType::SchemaChanged,
            EventType::SyncSucceeded,
            EventType::SyncFailed,
            EventType::Test,
        ] {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
        }
        assert_eq!(EventType::parse("schema.dropped"), None);
    }
}
