//! fundledger: an append-only, hash-chained, Ed25519-signed ledger for joint
//! AI startup funds, with double-entry accounting in exact decimals.
//!
//! See ARCHITECTURE.md for the module map and invariants, and schema/ for
//! the byte formats. This library never depends on clap; the binary in
//! src/main.rs (with src/cli.rs and src/commands/) is a thin layer over it.

mod batch_sign;
pub mod bundle;
pub mod canonical_json;
pub mod checkpoint;
pub mod country;
pub mod demo;
pub mod entry;
pub mod error;
pub mod event;
pub mod export;
pub mod history;
pub mod hledger;
pub mod import;
pub mod input;
pub mod keys;
pub mod ledger;
pub mod merkle;
pub mod money;
pub mod note;
pub mod policy;
pub mod proposal;
pub mod query;
pub mod report;
pub mod split;
pub mod state;
pub mod store;
pub mod verify;
pub mod xirr;

pub use error::{Error, ErrorKind, Result};
