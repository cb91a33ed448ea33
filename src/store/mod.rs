//! The store: this service's own PostgreSQL database. All SQL lives here, one module per
//! table family; functions that must be atomic take a transaction and leave the commit to
//! the caller.

pub mod access_reads;
pub mod audit;
pub mod blast_radius;
pub mod catalogs;
pub mod changes;
pub mod column_types;
pub mod deliveries;
pub mod dependents;
pub mod details;
pub mod diagrams;
pub mod diff;
pub mod export;
pub mod jobs;
pub mod object_reads;
pub mod outbox;
pub mod progress;
pub mod reads;
pub mod schedules;
pub mod search;
pub mod server_syncs;
pub mod snapshot;
pub mod states;
pub mod syncs;
pub mod webhooks;

use sqlx::{Postgres, Transaction};

pub type Tx<'a> = Transaction<'a, Postgres>;
