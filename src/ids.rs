//! Typed ids: a catalog's id and a sync's id are both UUIDs, and a function that takes both
//! cannot be handed them the wrong way round.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn uuid(self) -> Uuid {
                self.0
            }

            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self(s.parse()?))
            }
        }
    };
}

id_type!(
    /// A catalog: a UUID v5 of its source's host, port and database name.
    CatalogId
);
id_type!(
    /// A sync: a UUID v7.
    SyncId
);
id_type!(
    /// A webhook subscription: a UUID v7.
    WebhookId
);
id_type!(
    /// An event raised for webhooks, and the `webhook-id` receivers deduplicate on: a UUID v7.
    EventId
);
id_type!(
    /// One delivery of an event to one subscription: a UUID v7.
    DeliveryId
);
