//! Gongfang's domain model: the words every other crate speaks.
//!
//! Pure by design: no IO, no async, no clock. Whatever needs the outside world
//! (reading a scenario's files, the time of day) is passed in by the caller.

pub mod account;
pub mod action;
pub mod admission;
pub mod clock;
pub mod event;
pub mod export;
pub mod flag;
pub mod ids;
pub mod inject;
pub mod names;
pub mod patch;
pub mod plan;
pub mod record;
pub mod replay;
pub mod report;
pub mod scenario;
pub mod scoring;
pub mod secret;
pub mod shell_key;
pub mod throttle;
pub mod verdict;
pub mod wire;

pub use account::AccountRole;
pub use action::{Action, ActionCtx, ActionOutcome, CheckerFault, FaultKind, FlagRef, Target};
pub use flag::{DrillId, FlagCodec, FlagError, FlagInfo};
pub use ids::{ServiceId, StoreIdx, TeamId, Tick};
pub use names::UnknownName;
pub use patch::{DeployCause, Deployment, NewPatch, PatchKind, PatchRecord, PatchStatus};
pub use record::{CheckResult, NewSubmission, PlantedFlag, ScoreRow, TeamConnection};
pub use replay::{ExploitReplay, Exposure};
pub use secret::Secret;
pub use verdict::Verdict;
