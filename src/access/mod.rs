//! Access control: who may call the API and what for ([`tokens`]), and which source hosts a
//! sync may connect to ([`sources`]).

pub mod sources;
pub mod tokens;

pub use sources::{SourcePolicy, Subject, address_literal};
pub use tokens::{ApiTokens, Caller, Scope};
