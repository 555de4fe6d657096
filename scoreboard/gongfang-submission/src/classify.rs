//! The pure part of the pipeline: everything that can be decided without the database.
//!
//! Order matters and follows FAUST CTF: game phase and the attacker's role first (they say
//! nothing about the flag), then format and HMAC, a tick not yet played, expiry, own flag, NOP
//! team. What survives is
//! a capture candidate, which only the unique constraint can tell from a duplicate.

use std::collections::HashMap;

use gongfang_core::scenario::{Role, Scenario};
use gongfang_core::{FlagCodec, FlagInfo, TeamId};

use crate::answer::Answer;
use gongfang_core::clock::{DrillClock, Phase};

/// What the classifier needs to know about a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TeamFacts {
    pub role: Role,
    pub nop: bool,
}

/// Decides answers from the scenario alone. Shared read-only by every connection.
#[derive(Debug)]
pub(crate) struct Classifier {
    codec: FlagCodec,
    lifetime: u32,
    teams: HashMap<TeamId, TeamFacts>,
}

/// The classifier's decision on one submitted line or item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Classified {
    /// Decided without the database.
    Final(Answer),
    /// A valid flag of another team; storage decides between accepted and duplicate.
    Capture(FlagInfo),
}

impl Classifier {
    pub fn new(scenario: &Scenario, codec: FlagCodec) -> Classifier {
        let teams = scenario.teams.iter().map(|t| (t.id, TeamFacts { role: t.role, nop: t.nop })).collect();
        Classifier { codec, lifetime: scenario.drill.flag_lifetime, teams }
    }

    pub fn team(&self, id: TeamId) -> Option<TeamFacts> {
        self.teams.get(&id).copied()
    }

    /// Whether `attacker` may submit at all now: the answer for every flag if not.
    pub fn gate(&self, attacker: TeamId, clock: DrillClock) -> Option<Answer> {
        match clock.phase {
            Phase::NotStarted => return Some(Answer::NotStarted),
            Phase::Paused => return Some(Answer::Paused),
            Phase::Over => return Some(Answer::Over),
            Phase::Running => {}
        }
        match self.team(attacker) {
            Some(facts) if facts.role.attacks() => None,
            _ => Some(Answer::NotAttacker),
        }
    }

    /// Classifies one flag (already stripped of its line ending) submitted by `attacker`.
    pub fn classify(&self, attacker: TeamId, flag: &[u8], clock: DrillClock) -> Classified {
        if let Some(answer) = self.gate(attacker, clock) {
            return Classified::Final(answer);
        }
        // Flags are ASCII; anything else (invalid UTF-8, NUL bytes) is simply not a flag.
        let Ok(flag) = std::str::from_utf8(flag) else { return Classified::Final(Answer::Invalid) };
        let Ok(info) = self.codec.parse(flag) else { return Classified::Final(Answer::Invalid) };
        // No checker has planted a flag of a later tick: only someone holding the key can
        // have made it, so it is refused whatever it says.
        if info.tick > clock.current_tick() {
            return Classified::Final(Answer::Invalid);
        }
        if info.is_expired(clock.current_tick(), self.lifetime) {
            return Classified::Final(Answer::Old);
        }
        if info.team == attacker {
            return Classified::Final(Answer::Own);
        }
        match self.team(info.team) {
            // A correctly signed flag of a team the scenario no longer has, or of an attacker
            // with no services: nothing a checker planted.
            None => Classified::Final(Answer::Invalid),
            Some(victim) if !victim.role.defends() => Classified::Final(Answer::Invalid),
            Some(victim) if victim.nop => Classified::Final(Answer::Nop),
            Some(_) => Classified::Capture(info),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gongfang_core::{DrillId, FlagInfo, ServiceId, StoreIdx, Tick};
    use gongfang_test_support::scenario::{ScenarioBuilder, service, team};

    use super::*;

    fn classifier() -> (Classifier, FlagCodec) {
        let scenario = ScenarioBuilder::new("classify")
            .team(team(1, "alpha"))
            .team(team(2, "bravo"))
            .service(service("notes"))
            .build();
        let codec = FlagCodec::for_drill(
            "GONGFANG",
            b"classifier test secret, 32 bytes!",
            "classify",
            DrillId::from_bytes([3; 16]),
        );
        (Classifier::new(&scenario, codec.clone()), codec)
    }

    fn bravo_flag(codec: &FlagCodec, tick: u32) -> String {
        codec.mint(FlagInfo { tick: Tick(tick), team: TeamId(2), service: ServiceId(1), store: StoreIdx(0) })
    }

    #[test]
    fn a_flag_of_a_tick_not_yet_played_is_invalid() {
        let (c, codec) = classifier();
        let now = DrillClock::running(Tick(10), Duration::from_secs(60));
        let answer = |tick| c.classify(TeamId(1), bravo_flag(&codec, tick).as_bytes(), now);
        assert_eq!(answer(11), Classified::Final(Answer::Invalid));
        assert_eq!(answer(u32::MAX), Classified::Final(Answer::Invalid));
        // The running tick's flags and older live ones are captures; expired ones are old.
        assert!(matches!(answer(10), Classified::Capture(info) if info.tick == Tick(10)));
        assert!(matches!(answer(6), Classified::Capture(_)));
        assert_eq!(answer(5), Classified::Final(Answer::Old));
    }

    #[test]
    fn a_flag_of_another_drill_is_invalid() {
        let (c, _) = classifier();
        let rehearsal = FlagCodec::for_drill(
            "GONGFANG",
            b"classifier test secret, 32 bytes!",
            "classify",
            DrillId::from_bytes([4; 16]),
        );
        let now = DrillClock::running(Tick(10), Duration::from_secs(60));
        assert_eq!(
            c.classify(TeamId(1), bravo_flag(&rehearsal, 10).as_bytes(), now),
            Classified::Final(Answer::Invalid)
        );
    }
}
