//! Typed game events: what happened in the drill, for the web feed, metrics and audit.

use serde::{Deserialize, Serialize};

use crate::ids::{ServiceId, StoreIdx, TeamId, Tick};
use crate::report::{ReportKind, RulingStage};
use crate::verdict::Verdict;

/// One thing that happened in the game. Serialised with a `type` tag for the websocket feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GameEvent {
    /// A tick began.
    TickOpened { tick: Tick },
    /// A tick's actions all finished and its verdicts are final.
    TickClosed { tick: Tick },
    /// A team's service changed status at a tick close.
    VerdictChanged {
        tick: Tick,
        team: TeamId,
        service: ServiceId,
        from: Option<Verdict>,
        to: Verdict,
        /// The public message of the action that decided the verdict.
        message: String,
    },
    /// An attacker's submission of a victim's flag was accepted and stored.
    FlagCaptured {
        tick: Tick,
        attacker: TeamId,
        victim: TeamId,
        service: ServiceId,
        store: StoreIdx,
        /// The tick the captured flag was planted in.
        planted: Tick,
    },
    /// The first capture of any flag of a service in the drill.
    FirstBlood { tick: Tick, attacker: TeamId, victim: TeamId, service: ServiceId },
    /// Scores for a tick were computed and stored.
    ScoresUpdated { tick: Tick },
    /// Every tick up to `through` was scored again (organisers marked a result defective):
    /// scores of ticks already shown may have changed.
    Rescored { through: Tick },
    /// An organiser added `points` to a team's total by hand (negative: took them away).
    ScoreAdjusted { team: TeamId, points: f64 },
    /// The drill was paused by an organiser.
    Paused,
    /// The drill was resumed by an organiser.
    Resumed,
    /// An organiser moved the drill's end later: it now ends `total_secs` after the end its
    /// scenario gives.
    Extended { total_secs: u64 },
    /// Organisers froze the public scoreboard after tick `through` (`Some`), or lifted the
    /// freeze (`None`). While it holds, spectators see the drill as it stood then.
    BoardFrozen { through: Option<Tick> },
    /// An organiser posted an announcement.
    Announcement {
        id: i64,
        title: String,
        /// The title in Hong Kong Chinese, when the organisers gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title_zh: Option<String>,
    },
    /// A judge ruled on a report (or on its appeal). Only the fact and the points are public;
    /// the report's content stays with the filing team and the judges.
    ReportRuled {
        report: i64,
        /// The filing team.
        team: TeamId,
        kind: ReportKind,
        /// Whether this is the first ruling or the ruling on an appeal.
        stage: RulingStage,
        valid: bool,
        /// What the report is worth after this ruling.
        points: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_a_type_tag() {
        let e = GameEvent::FirstBlood { tick: Tick(3), attacker: TeamId(1), victim: TeamId(2), service: ServiceId(1) };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"type":"first_blood","tick":3,"attacker":1,"victim":2,"service":1}"#);
        assert_eq!(serde_json::from_str::<GameEvent>(&json).unwrap(), e);
    }
}
