//! The seam between the engine and whatever runs checkers (the wasm sandbox in a drill).

use std::future::Future;
use std::time::Duration;

use gongfang_core::{Action, ActionCtx, ActionOutcome, ServiceId, StoreIdx, Target};

/// One checker action against one team's service.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    pub service: ServiceId,
    /// The team, the tick and the seed: deterministic per (tick, team, service, action), so a
    /// replayed action sends the same data.
    pub ctx: ActionCtx,
    pub target: Target,
    pub action: Action,
    /// `put`, `get` and `exploit`: the flag and where it goes; `None` for `check`.
    pub flag: Option<FlagArgs>,
    /// The scenario's checker timeout; the runner must give up by then.
    pub timeout: Duration,
}

/// The flag a `put` plants, a `get` reads back or an `exploit` goes for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagArgs {
    pub store: StoreIdx,
    pub flag: String,
    /// `get`: the private state `put` returned (empty for `put`).
    pub state: Vec<u8>,
    /// `exploit`: the public flag id `put` published (empty otherwise).
    pub flag_id: String,
}

/// Runs checker actions. Implemented over the wasm sandbox by the binary; by tests as they
/// need. A runner never fails: its own failures are `checker-error` outcomes.
pub trait CheckerRunner: Send + Sync + 'static {
    fn run(&self, request: ActionRequest) -> impl Future<Output = ActionOutcome> + Send;
}
