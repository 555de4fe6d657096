//! What the checkers do in one tick, and how their results make the tick's verdict.
//!
//! Pure and seeded: the same scenario, seed and tick always give the same plan, so a restarted
//! engine redoes exactly the actions it was doing, and tests can assert the plan.

use std::time::Duration;

use serde::Serialize;

use crate::action::{Action, FlagRef};
use crate::ids::{ServiceId, StoreIdx, TeamId, Tick};
use crate::verdict::Verdict;

/// An action with its target and when in the tick it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlannedAction {
    pub team: TeamId,
    pub service: ServiceId,
    /// `check`, `put`, `get`, or `exploit` (the reference exploit's replay).
    pub action: Action,
    /// The flag `put` plants, `get` reads back or `exploit` goes for; `None` for `check`.
    pub flag: Option<FlagRef>,
    /// Delay from the start of the tick.
    #[serde(with = "millis")]
    pub offset: Duration,
}

/// The shape of one team × service's work in a tick.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The scenario's secret-derived seed: the plan is unpredictable to teams.
    pub seed: u64,
    pub tick: Tick,
    pub teams: &'a [TeamId],
    /// Each service with its number of flag stores.
    pub services: &'a [(ServiceId, u8)],
    pub flag_lifetime: u32,
    /// Actions start within `[0, window)` so that, with the checker timeout, all of them end
    /// before the tick closes.
    pub window: Duration,
    /// How many older (not newest) planted flags to read back per store each tick.
    pub older_gets: usize,
    /// The services whose reference exploit is replayed each tick (their checkers have one).
    pub replay: &'a [ServiceId],
}

/// Every action of a tick, ordered by start offset.
///
/// Per team × service: a `put` per store; a `get` per store of the newest earlier flag
/// (tick − 1) and of `older_gets` flags sampled from the rest of the lifetime; one `check`;
/// and for a service in `replay`, an `exploit` per store going for the newest earlier flag.
/// `get`s read flags of earlier ticks only, so their order against this tick's `put` does
/// not matter.
pub fn plan_tick(input: &PlanInput<'_>) -> Vec<PlannedAction> {
    let mut out = Vec::new();
    let window_ms = input.window.as_millis().max(1) as u64;
    for &team in input.teams {
        for &(service, stores) in input.services {
            let mut rng = SplitMix::new(
                input.seed ^ (u64::from(input.tick.0) << 32) ^ (u64::from(team.0) << 8) ^ u64::from(service.0),
            );
            let at = |rng: &mut SplitMix| Duration::from_millis(rng.below(window_ms));
            out.push(PlannedAction { team, service, action: Action::Check, flag: None, offset: at(&mut rng) });
            for s in 0..stores {
                let store = StoreIdx(s);
                out.push(PlannedAction {
                    team,
                    service,
                    action: Action::Put,
                    flag: Some(FlagRef { store, planted: input.tick }),
                    offset: at(&mut rng),
                });
                let oldest = input.tick.0.saturating_sub(input.flag_lifetime.saturating_sub(1));
                if input.tick.0 > oldest {
                    let newest = Tick(input.tick.0 - 1);
                    out.push(PlannedAction {
                        team,
                        service,
                        action: Action::Get,
                        flag: Some(FlagRef { store, planted: newest }),
                        offset: at(&mut rng),
                    });
                    if input.replay.contains(&service) {
                        out.push(PlannedAction {
                            team,
                            service,
                            action: Action::Exploit,
                            flag: Some(FlagRef { store, planted: newest }),
                            offset: at(&mut rng),
                        });
                    }
                    // Older flags: sample distinct ticks in [oldest, newest).
                    let mut older: Vec<u32> = (oldest..newest.0).collect();
                    for _ in 0..input.older_gets.min(older.len()) {
                        let pick = older.swap_remove(rng.below(older.len() as u64) as usize);
                        out.push(PlannedAction {
                            team,
                            service,
                            action: Action::Get,
                            flag: Some(FlagRef { store, planted: Tick(pick) }),
                            offset: at(&mut rng),
                        });
                    }
                }
            }
        }
    }
    out.sort_by_key(|a| (a.offset, a.team, a.service));
    out
}

/// The public message of a result the engine records, instead of a check, for each service of
/// a team organisers took out of the drill: the service counts as down for that tick.
pub const OUT_OF_THE_DRILL: &str = "Team taken out of the drill by the organisers / 隊伍已被主辦單位移出演練";

/// The tick's verdict for one team × service from its actions' `(verdict, public message)`:
/// the worst, with that action's message (the first such on ties). No results at all (the
/// engine could not run any) is `CheckerError`: our failure, never the team's.
pub fn tick_verdict<'a>(results: impl IntoIterator<Item = (Verdict, &'a str)>) -> (Verdict, String) {
    results
        .into_iter()
        .fold(None::<(Verdict, &str)>, |worst, r| match worst {
            Some(w) if w.0.worst(r.0) == w.0 => Some(w),
            _ => Some(r),
        })
        .map_or((Verdict::CheckerError, "no checker result for this tick".to_owned()), |(v, m)| (v, m.to_owned()))
}

/// Which tick is running at `elapsed` since the drill's start, if any.
pub fn tick_at(elapsed: Duration, tick: Duration, duration: Duration) -> Option<Tick> {
    if elapsed >= duration || tick.is_zero() {
        return None;
    }
    u32::try_from(elapsed.as_millis() / tick.as_millis()).ok().map(Tick)
}

/// A tiny deterministic generator (SplitMix64): stable across versions and platforms, which
/// a general-purpose RNG crate does not promise.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(tick: u32, teams: &'a [TeamId], services: &'a [(ServiceId, u8)]) -> PlanInput<'a> {
        PlanInput {
            seed: 7,
            tick: Tick(tick),
            teams,
            services,
            flag_lifetime: 5,
            window: Duration::from_secs(40),
            older_gets: 1,
            replay: &[],
        }
    }

    #[test]
    fn first_tick_has_no_gets() {
        let teams = [TeamId(1)];
        let services = [(ServiceId(1), 2)];
        let plan = plan_tick(&input(0, &teams, &services));
        assert_eq!(plan.len(), 3, "one check and a put per store");
        assert!(plan.iter().all(|a| a.action != Action::Get));
    }

    #[test]
    fn later_ticks_read_the_newest_flag_and_sample_older_ones_within_the_lifetime() {
        let teams = [TeamId(1), TeamId(2)];
        let services = [(ServiceId(1), 2), (ServiceId(2), 1)];
        let plan = plan_tick(&input(10, &teams, &services));
        for team in teams {
            for (service, stores) in services {
                for s in 0..stores {
                    let gets: Vec<Tick> = plan
                        .iter()
                        .filter(|a| a.team == team && a.service == service)
                        .filter(|a| a.action == Action::Get)
                        .filter_map(|a| a.flag.filter(|f| f.store == StoreIdx(s)).map(|f| f.planted))
                        .collect();
                    assert_eq!(gets.len(), 2);
                    assert!(gets.contains(&Tick(9)), "newest always read");
                    assert!(gets.iter().all(|t| (6..=9).contains(&t.0)), "{gets:?} outside the lifetime");
                }
            }
        }
        assert!(plan.windows(2).all(|w| w[0].offset <= w[1].offset));
        assert!(plan.iter().all(|a| a.offset < Duration::from_secs(40)));
    }

    #[test]
    fn replayed_services_get_an_exploit_per_store_for_the_newest_flag() {
        let teams = [TeamId(1), TeamId(2)];
        let services = [(ServiceId(1), 2), (ServiceId(2), 1)];
        let replay = [ServiceId(1)];
        let first = plan_tick(&PlanInput { replay: &replay, ..input(0, &teams, &services) });
        assert!(first.iter().all(|a| a.action != Action::Exploit), "tick 0 has no flag to go for");
        let plan = plan_tick(&PlanInput { replay: &replay, ..input(10, &teams, &services) });
        let exploits: Vec<(TeamId, ServiceId, Option<FlagRef>)> =
            plan.iter().filter(|a| a.action == Action::Exploit).map(|a| (a.team, a.service, a.flag)).collect();
        assert_eq!(exploits.len(), 4, "two teams × two stores of service 1: {exploits:?}");
        assert!(exploits.iter().all(|(_, s, f)| *s == ServiceId(1) && f.is_some_and(|f| f.planted == Tick(9))));
        // Without replay, the plan is what it was: adding replay adds the exploits only.
        let without = plan_tick(&input(10, &teams, &services));
        assert_eq!(plan.len(), without.len() + 4);
    }

    #[test]
    fn plans_are_deterministic_and_spread() {
        let teams: Vec<TeamId> = (1..=20).map(TeamId).collect();
        let services = [(ServiceId(1), 1)];
        let a = plan_tick(&input(3, &teams, &services));
        assert_eq!(a, plan_tick(&input(3, &teams, &services)));
        assert_ne!(a, plan_tick(&input(4, &teams, &services)));
        let distinct: std::collections::HashSet<Duration> = a.iter().map(|p| p.offset).collect();
        assert!(distinct.len() > a.len() / 2, "offsets are spread over the window, not a burst");
    }

    #[test]
    fn verdict_is_the_worst_action_with_its_message() {
        assert_eq!(
            tick_verdict([(Verdict::Ok, ""), (Verdict::Corrupt, "flag gone"), (Verdict::CheckerError, "oops")]),
            (Verdict::Corrupt, "flag gone".into())
        );
        assert_eq!(tick_verdict([(Verdict::Ok, ""), (Verdict::CheckerError, "internal")]).0, Verdict::CheckerError);
        assert_eq!(
            tick_verdict([(Verdict::Down, "timeout"), (Verdict::Mumble, "bad")]),
            (Verdict::Down, "timeout".into())
        );
        assert_eq!(tick_verdict([(Verdict::Ok, "first"), (Verdict::Ok, "second")]).1, "first");
        assert_eq!(tick_verdict([]).0, Verdict::CheckerError);
    }

    #[test]
    fn tick_arithmetic() {
        let t = Duration::from_secs(60);
        let d = Duration::from_secs(600);
        assert_eq!(tick_at(Duration::ZERO, t, d), Some(Tick(0)));
        assert_eq!(tick_at(Duration::from_secs(119), t, d), Some(Tick(1)));
        assert_eq!(tick_at(Duration::from_secs(600), t, d), None);
    }
}
