//! Flag submission: teams hand in captured flags over TCP (the FAUST CTF / ENOWARS line
//! protocol, or ForcAD's token greeting) or HTTP (`PUT /flags`, as DestructiveFarm speaks it).
//!
//! Every line or JSON item goes through one pipeline:
//!
//! 1. [`classify`](crate::classify): game phase, the attacker's role, format and HMAC, expiry,
//!    own flag, NOP team. Pure and lock-free: no database, so invalid flags cost microseconds.
//! 2. Per-team queues feeding one group-commit writer ([`writer`]), which drains the queues
//!    round-robin (a flooding team cannot starve another), inserts a batch in one transaction
//!    (the unique (attacker, flag) constraint decides duplicates) and only then answers each
//!    waiting request. `OK` therefore always means "committed".
//!
//! Answers, with their codes and messages, are in one table: [`Answer`].

mod answer;
mod auth;
mod classify;
mod error;
pub mod http;
pub mod metrics;
mod sink;
mod state;
pub mod tcp;
mod writer;

pub use answer::{Answer, Code};
pub use error::SubmissionError;
pub use sink::{SinkFuture, SubmissionSink};
pub use state::{Settings, SubmissionState};
