//! The game's records: what the engine and the submission servers write and the scoreboard,
//! the judges and the scoring read. Plain data; the store keeps them.

use chrono::{DateTime, Utc};

use crate::action::Action;
use crate::ids::{ServiceId, StoreIdx, TeamId, Tick};
use crate::scoring::{Capture, TeamScore};
use crate::verdict::Verdict;

/// A flag the checker planted in a team's service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlantedFlag {
    pub tick: Tick,
    pub team: TeamId,
    pub service: ServiceId,
    pub store: StoreIdx,
    pub flag: String,
    /// The public hint attackers get (a user name, a document id, ...).
    pub flag_id: Option<String>,
    /// The checker's private state, handed back to `get`.
    pub state: Option<Vec<u8>>,
    pub planted_at: DateTime<Utc>,
}

/// One checker action's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub tick: Tick,
    pub team: TeamId,
    pub service: ServiceId,
    pub action: Action,
    /// The flag store acted on (`put` and `get`).
    pub store: Option<StoreIdx>,
    pub verdict: Verdict,
    /// Shown to the team.
    pub message: String,
    /// Shown to organisers only.
    pub log: String,
    pub duration_ms: u64,
    pub recorded_at: DateTime<Utc>,
    /// For a `checker-error`, what kind of failure it was (timeout, crash, …).
    pub fault: Option<crate::action::FaultKind>,
}

/// A validated flag submission, ready to store: the capture it scores as, the flag itself and
/// when it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubmission {
    pub capture: Capture,
    pub flag: String,
    pub submitted_at: DateTime<Utc>,
}

/// One team's cumulative points after one tick, as stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRow {
    pub tick: Tick,
    pub team: TeamId,
    pub score: TeamScore,
}

/// A team's WireGuard access as the drill's gateway last saw it: how many configs (peers) it
/// was issued, how many of them have shaken hands with the gateway, and when the latest did.
/// What `gongfang vpn status` prints and the scoreboard shows before the first tick.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TeamConnection {
    pub team: TeamId,
    pub peers_issued: u32,
    pub peers_connected: u32,
    pub last_handshake: Option<DateTime<Utc>>,
}
