//! pg-catalog-sync: keeps a live, queryable copy of the catalog metadata of PostgreSQL databases.
//!
//! The library holds everything the three binaries share: the metadata model ([`catalog`]),
//! reading a source's `pg_catalog` ([`introspect`]), fetching metadata from a source
//! ([`source`]), the store ([`store`]), the job queue and its handler ([`queue`]), and the HTTP
//! API ([`api`]). The binaries only parse configuration and wire these together.

pub mod access;
pub mod api;
pub mod catalog;
pub mod cli;
pub mod coalesce;
pub mod config;
pub mod crypto;
pub mod db;
pub mod duration;
pub mod erd;
pub mod error;
pub mod events;
pub mod ids;
pub mod introspect;
pub mod join;
pub mod monitoring;
pub mod period;
pub mod queue;
pub mod shutdown;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod ui;
