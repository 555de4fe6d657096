//! The seam between the engine and whatever runs checkers (the wasm sandbox in a drill).

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick, Verdict};

/// Where a team's service answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub address: IpAddr,
    pub ports: Vec<u16>,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    Check,
    Put { store: StoreIdx, flag: String },
    Get { store: StoreIdx, flag: String, state: Vec<u8> },
}

/// One checker action against one team's service.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    pub service: ServiceId,
    pub team: TeamId,
    pub tick: Tick,
    /// Deterministic per (tick, team, service, action): a replayed action sends the same data.
    pub seed: u64,
    pub target: Target,
    pub kind: ActionKind,
    /// The scenario's checker timeout; the runner must give up by then.
    pub timeout: Duration,
}

/// What came of an action. A runner never fails: its own failures are `CheckerError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOutcome {
    pub verdict: Verdict,
    pub public_message: String,
    pub private_log: Vec<String>,
    /// From `put`: the public hint for attackers.
    pub flag_id: Option<String>,
    /// From `put`: the private state for `get`.
    pub state: Option<Vec<u8>>,
}

impl ActionOutcome {
    /// An outcome that blames the platform, not the team.
    pub fn checker_error(why: impl Into<String>) -> ActionOutcome {
        ActionOutcome {
            verdict: Verdict::CheckerError,
            public_message: "the checker failed; this does not count against you".into(),
            private_log: vec![why.into()],
            flag_id: None,
            state: None,
        }
    }
}

/// Runs checker actions. Implemented over the wasm sandbox by the binary; by tests as they
/// need.
pub trait CheckerRunner: Send + Sync + 'static {
    fn run(&self, request: ActionRequest) -> impl Future<Output = ActionOutcome> + Send;
}
