//! Test programs for the checker sandbox: the fixture checkers' component paths (built from
//! `sandbox/guests` by this crate's build script), a tiny key-value service for them to check,
//! and a decoy listener that counts connections it should never get.

pub mod service;

/// Paths of the built fixture components and of the challenges' checkers.
pub mod components {
    include!(concat!(env!("OUT_DIR"), "/components.rs"));
}

pub use service::{Decoy, KvService};
