//! Gongfang's domain model: the words every other crate speaks.
//!
//! Pure by design: no IO, no async, no clock. Whatever needs the outside world
//! (reading a scenario's files, the time of day) is passed in by the caller.

pub mod event;
pub mod flag;
pub mod ids;
pub mod plan;
pub mod report;
pub mod scenario;
pub mod scoring;
pub mod verdict;

pub use flag::{FlagCodec, FlagError, FlagInfo};
pub use ids::{ServiceId, StoreIdx, TeamId, Tick};
pub use verdict::Verdict;
