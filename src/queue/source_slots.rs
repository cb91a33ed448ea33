//! The limit on connections to one source host (`SOURCE_HOST_CONNECTIONS`), across every
//! worker sharing the store.
//!
//! A host has that many slots: advisory locks in the store, keyed by the host's name and the
//! slot's number. A sync takes the slots its read needs before it first connects to the source
//! and holds them until its attempt ends. The locks belong to a transaction kept open for that
//! time on a store connection of their own, so a worker that dies frees its slots with its
//! connection.

use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};

/// Connections a sync opens to its source at once: the read runs on two (see `introspect`).
pub const CONNECTIONS_PER_SYNC: u32 = 2;

/// The slots of every source host.
#[derive(Debug, Clone)]
pub struct SourceSlots {
    pool: PgPool,
    per_host: u32,
}

/// Slots taken; dropping them (ending their transaction) frees them.
pub struct Held(#[allow(dead_code)] Transaction<'static, Postgres>);

impl SourceSlots {
    /// `per_host` connections per host at most; at least [`CONNECTIONS_PER_SYNC`].
    pub fn new(pool: PgPool, per_host: u32) -> Self {
        Self {
            pool,
            per_host: per_host.max(CONNECTIONS_PER_SYNC),
        }
    }

    pub fn per_host(&self) -> u32 {
        self.per_host
    }

    /// Takes a sync's slots on `host` if that many are free, without waiting.
    pub async fn try_take(&self, host: &str) -> sqlx::Result<Option<Held>> {
        let mut tx = self.pool.begin().await?;
        // The limit stops the scan once enough slots are locked: the filter runs row by row as
        // the limit pulls them, so no more slots than needed are taken.
        let taken = sqlx::query_scalar!(
            r#"SELECT count(*) AS "taken!" FROM (
                   SELECT slot FROM generate_series(0, $2::int4 - 1) AS slot
                   WHERE pg_try_advisory_xact_lock($1, slot)
                   LIMIT $3
               ) s"#,
            host_key(host),
            self.per_host as i32,
            i64::from(CONNECTIONS_PER_SYNC),
        )
        .fetch_one(&mut *tx)
        .await?;
        if taken < i64::from(CONNECTIONS_PER_SYNC) {
            tx.rollback().await?; // frees what was taken
            return Ok(None);
        }
        Ok(Some(Held(tx)))
    }
}

/// The first half of a host's advisory lock key: its lowercased name, hashed.
fn host_key(host: &str) -> i32 {
    let digest = Sha256::digest(format!("pgcs-source-host:{}", host.to_ascii_lowercase()));
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}
