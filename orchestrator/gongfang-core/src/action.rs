//! What a checker does to one team's service and what came of it: the words the engine, the
//! sandbox, the store and the organisers' tools share.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use crate::ids::{StoreIdx, TeamId, Tick};
use crate::verdict::Verdict;

crate::named_enum! {
    /// The four things a checker does.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Action {
        /// Exercise the service's normal features.
        Check = "check",
        /// Plant this tick's flag in a flag store.
        Put = "put",
        /// Read back a flag planted in an earlier tick.
        Get = "get",
        /// Steal a flag the way an attacker would (the reference exploit).
        Exploit = "exploit",
    }
}

/// Which flag an action plants, reads back or attacks: its flag store and the tick it was
/// (or is being) planted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct FlagRef {
    pub store: StoreIdx,
    pub planted: Tick,
}

/// The service under test: its address and the ports the checker may connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub address: IpAddr,
    pub ports: Vec<u16>,
}

impl Target {
    /// A target with one port.
    pub fn from_addr(addr: SocketAddr) -> Target {
        Target { address: addr.ip(), ports: vec![addr.port()] }
    }
}

/// Who and when an action is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionCtx {
    pub team: TeamId,
    pub tick: Tick,
    /// Seeds the checker's random data; the same seed replays the same traffic.
    pub seed: u64,
}

/// Why an action ended as `checker-error`: always our side (the checker or the platform),
/// never the team's service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckerFault {
    /// The guest trapped (a panic, an `unreachable`, a failed host call).
    Trap { message: String },
    /// The action ran past its wall-clock limit.
    Timeout { limit: Duration },
    /// The guest's own code ran past its CPU budget.
    CpuLimit { limit: Duration },
    /// The guest tried to grow its memory past the limit.
    MemoryLimit { limit: usize },
    /// The guest wrote more private log than allowed.
    LogLimit { limit: usize },
    /// A message, flag id, state or flag list in the result is over its limit.
    ResultTooLarge { what: &'static str, size: usize, limit: usize },
    /// The guest tried to use a network address outside its target.
    ForbiddenNetwork { addr: SocketAddr, usage: String },
    /// The guest held more sockets at once than allowed.
    SocketLimit { limit: usize },
    /// The guest held more host resources (sockets, streams, pollables, …) at once than its
    /// resource table allows.
    ResourceLimit { limit: usize },
    /// The component could not be instantiated.
    Instantiate { message: String },
    /// `exploit` was asked of a checker that has none.
    NoExploit,
    /// The platform could not run the action at all (no checker, no address, no answer).
    Platform { message: String },
}

crate::named_enum! {
    /// What kind of failure a checker's fault was, as stored with its result and counted in
    /// `/metrics`: the distinction organisers act on (a slow service or checker, a broken
    /// checker, a checker over its limits, the platform itself).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum FaultKind {
        /// Past its wall-clock or CPU time limit.
        Timeout = "timeout",
        /// The checker trapped, could not start, or lacks the function asked for.
        Crash = "crash",
        /// Over a memory, log, result, socket or resource limit, or outside its network.
        Limit = "limit",
        /// The platform could not run it.
        Platform = "platform",
    }
}

impl CheckerFault {
    /// The kind of failure this is.
    pub fn kind(&self) -> FaultKind {
        match self {
            CheckerFault::Timeout { .. } | CheckerFault::CpuLimit { .. } => FaultKind::Timeout,
            CheckerFault::Trap { .. } | CheckerFault::Instantiate { .. } | CheckerFault::NoExploit => FaultKind::Crash,
            CheckerFault::MemoryLimit { .. }
            | CheckerFault::LogLimit { .. }
            | CheckerFault::ResultTooLarge { .. }
            | CheckerFault::ForbiddenNetwork { .. }
            | CheckerFault::SocketLimit { .. }
            | CheckerFault::ResourceLimit { .. } => FaultKind::Limit,
            CheckerFault::Platform { .. } => FaultKind::Platform,
        }
    }
}

impl fmt::Display for CheckerFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckerFault::Trap { message } => write!(f, "checker trapped: {message}"),
            CheckerFault::Timeout { limit } => write!(f, "checker ran longer than {limit:?}"),
            CheckerFault::CpuLimit { limit } => write!(f, "checker used more than {limit:?} of CPU time"),
            CheckerFault::MemoryLimit { limit } => write!(f, "checker exceeded its memory limit of {limit} bytes"),
            CheckerFault::LogLimit { limit } => write!(f, "checker wrote more than {limit} bytes of log"),
            CheckerFault::ResultTooLarge { what, size, limit } => {
                write!(f, "checker returned a {what} of {size}, over the limit of {limit}")
            }
            CheckerFault::ForbiddenNetwork { addr, usage } => {
                write!(f, "checker tried to reach {addr} ({usage}), outside its target")
            }
            CheckerFault::SocketLimit { limit } => write!(f, "checker held more than {limit} sockets at once"),
            CheckerFault::ResourceLimit { limit } => {
                write!(f, "checker held more than {limit} host resources at once")
            }
            CheckerFault::Instantiate { message } => write!(f, "checker could not start: {message}"),
            CheckerFault::NoExploit => write!(f, "checker has no exploit"),
            CheckerFault::Platform { message } => write!(f, "the platform could not run the checker: {message}"),
        }
    }
}

/// What the team is told when the checker, not its service, failed.
pub const CHECKER_ERROR_MESSAGE: &str = "the checker failed; this does not count against you";

/// What one action concluded. A runner never fails: its own failures are `checker-error`
/// outcomes with the [`CheckerFault`] that explains them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOutcome {
    pub action: Action,
    pub verdict: Verdict,
    /// Shown to the team. For `checker-error` it says only that the checker failed.
    pub public_message: String,
    /// Organisers only: the checker's log lines, then the verdict's private lines, then the
    /// fault when there was one.
    pub private_log: Vec<String>,
    /// `put`: the public flag id.
    pub flag_id: Option<String>,
    /// `put`: the private state for `get`.
    pub state: Option<Vec<u8>>,
    /// `exploit`: the captured flags.
    pub flags: Vec<String>,
    /// Wall-clock time of the whole action.
    pub duration: Duration,
    /// Why the verdict is `checker-error`, when it is.
    pub fault: Option<CheckerFault>,
}

impl ActionOutcome {
    /// An outcome with a verdict and a public message and nothing else, for runners that
    /// fill in the rest (`flag_id` and `state` of a `put`) themselves.
    pub fn new(action: Action, verdict: Verdict, public_message: impl Into<String>) -> ActionOutcome {
        ActionOutcome {
            action,
            verdict,
            public_message: public_message.into(),
            private_log: Vec::new(),
            flag_id: None,
            state: None,
            flags: Vec::new(),
            duration: Duration::ZERO,
            fault: None,
        }
    }

    /// An outcome that blames the platform or the checker, never the team. Keeps whatever
    /// private log came before the fault.
    pub fn checker_error(action: Action, fault: CheckerFault, mut private_log: Vec<String>) -> ActionOutcome {
        private_log.push(format!("checker-error: {fault}"));
        ActionOutcome {
            action,
            verdict: Verdict::CheckerError,
            public_message: CHECKER_ERROR_MESSAGE.to_owned(),
            private_log,
            flag_id: None,
            state: None,
            flags: Vec::new(),
            duration: Duration::ZERO,
            fault: Some(fault),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checker_error_never_blames_the_team_and_keeps_the_log() {
        let fault = CheckerFault::Timeout { limit: Duration::from_secs(5) };
        let outcome = ActionOutcome::checker_error(Action::Get, fault.clone(), vec!["connected".into()]);
        assert_eq!(outcome.verdict, Verdict::CheckerError);
        assert!(!outcome.verdict.is_teams_fault());
        assert_eq!(outcome.private_log, ["connected", "checker-error: checker ran longer than 5s"]);
        assert_eq!(outcome.fault, Some(fault));
    }
}
