//! The scoreboard's data: ranking, status grid and first bloods, read from the store.
//!
//! [`load`] builds a [`Board`] from a handful of queries; the state caches it (see
//! `state.rs`) so thousands of spectators refreshing at a tick's close cost one load.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use gongfang_core::ScoreRow;
use gongfang_core::plan::tick_verdict;
use gongfang_core::scenario::{PatchScoring, Role, Scenario};
use gongfang_core::scoring::{DefendedTicks, ReportTally, ScoredTeam, TeamScore, TeamTick, TickScores, standings};
use gongfang_core::{Exposure, ServiceId, TeamId, Tick, Verdict};
use gongfang_store::{BoardFreeze, Store};
use serde::Serialize;

use crate::clock::ClockView;
use crate::error::WebError;

/// Everything `/api/scoreboard` shows except the clock, which changes on its own.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Board {
    pub drill: DrillView,
    /// The latest tick whose scores are stored; the ranking is as of this tick.
    pub tick: Option<Tick>,
    /// The latest closed tick; the status grid shows its verdicts.
    pub status_tick: Option<Tick>,
    /// The latest tick opened, closed or not.
    #[serde(skip)]
    pub latest_tick: Option<Tick>,
    pub services: Vec<ServiceView>,
    /// Best first.
    pub teams: Vec<TeamView>,
    /// The first capture of each service, by service id.
    pub first_bloods: Vec<FirstBloodView>,
    /// Set while organisers have the public board frozen.
    pub freeze: Option<FreezeView>,
}

/// The public board's freeze, as the board shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FreezeView {
    /// The last tick the public board shows.
    pub through: Tick,
    pub at: DateTime<Utc>,
    /// Whether this board is the live one (organisers and judges) rather than the frozen one.
    pub live: bool,
}

/// Which board to load: the live one (knowing whether the public one is frozen), the public
/// one as it stood when it was frozen, or any earlier one for a replay.
#[derive(Debug, Clone)]
pub(crate) enum Cut {
    Live(Option<BoardFreeze>),
    Frozen(BoardFreeze),
    Past(Past),
}

/// The board as it stood after tick `through` (`/api/scoreboard?tick=N`).
#[derive(Debug, Clone)]
pub(crate) struct Past {
    pub through: Tick,
    /// Set when the board is asked for by a spectator while the public board is frozen: only
    /// the adjustments made before the freeze count.
    pub freeze: Option<BoardFreeze>,
    /// The first capture of each service as the live board knows it: those up to `through` are
    /// the past board's (a first blood is the earliest capture, so none is missed).
    pub first_bloods: Vec<FirstBloodView>,
}

impl Cut {
    /// The last tick this board may show.
    fn limit(&self) -> Option<Tick> {
        match self {
            Cut::Live(_) => None,
            Cut::Frozen(f) => Some(f.through),
            Cut::Past(p) => Some(p.through),
        }
    }

    fn view(&self) -> Option<FreezeView> {
        match self {
            Cut::Live(f) => f.map(|f| FreezeView { through: f.through, at: f.at, live: true }),
            Cut::Frozen(f) => Some(FreezeView { through: f.through, at: f.at, live: false }),
            Cut::Past(_) => None,
        }
    }

    /// Which organisers' adjustments count: those made by a time, those counting at a tick.
    fn adjustments(&self) -> (Option<DateTime<Utc>>, Option<Tick>) {
        match self {
            Cut::Live(_) => (None, None),
            Cut::Frozen(f) => (Some(f.at), None),
            Cut::Past(p) => (p.freeze.map(|f| f.at), Some(p.through)),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DrillView {
    pub slug: String,
    pub name: String,
    pub name_zh: String,
    pub flag_lifetime: u32,
    /// How patching counts (`[patches] scoring`): the board shows a patching column unless
    /// `none`.
    pub patch_scoring: PatchScoring,
    /// A red-team / blue-team drill: red teams are ranked among red teams (`red_rank`) and
    /// blue teams among blue teams (`blue_rank`), and the board shows two rankings.
    pub red_blue: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServiceView {
    pub id: ServiceId,
    pub slug: String,
    pub name: String,
    pub name_zh: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TeamView {
    pub id: TeamId,
    pub slug: String,
    pub name: String,
    pub name_zh: String,
    pub role: Role,
    pub nop: bool,
    /// 1 = best; every team has its own rank, ties broken by team id.
    pub rank: u32,
    /// In a red/blue drill, the team's place among the teams that attack (attackers and
    /// `both`), 1 = best; absent for a team that does not attack, and in symmetric drills.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub red_rank: Option<u32>,
    /// In a red/blue drill, the team's place among the teams that defend (defenders, `both`
    /// and NOP teams).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blue_rank: Option<u32>,
    pub attack: f64,
    pub defence: f64,
    pub sla: f64,
    /// Points of ruled-valid reports as counted in `total` (weighted); 0 without reports.
    pub reports: f64,
    /// Patching points as counted in `total` (`[patches] scoring`); 0 when patching is not scored.
    pub patching: f64,
    /// Ticks one of its services was `ok` while the reference exploit captured nothing, per service.
    pub defended_ticks: u64,
    /// Points organisers added (or took) by hand, as counted in `total`.
    pub adjustment: f64,
    /// What the team is ranked by: the flag formula's total (attack, defence and SLA) plus
    /// `reports`, `patching` and `adjustment`.
    pub total: f64,
    /// The status of each service in [`Board::status_tick`]; empty for teams without services.
    pub services: Vec<CellView>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CellView {
    pub service: ServiceId,
    /// `None` until a tick has closed.
    pub verdict: Option<Verdict>,
    /// The checker's public message for the verdict.
    pub message: String,
    /// What the reference exploit's replay showed in that tick, over the flag stores:
    /// `exploitable` if any store fell, else `unknown` if any is unknown, else
    /// `not-exploitable`; `None` without a replay (no exploit, or nothing planted to go for).
    pub exploit: Option<Exposure>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct FirstBloodView {
    pub service: ServiceId,
    pub attacker: TeamId,
    pub victim: TeamId,
    pub tick: Tick,
    pub at: DateTime<Utc>,
}

/// `/api/scoreboard`'s body: the board and the clock.
#[derive(Debug, Serialize)]
pub(crate) struct Scoreboard<'a> {
    #[serde(flatten)]
    pub board: &'a Board,
    pub clock: ClockView,
}

/// The websocket's first message (and the answer to a lag): the scoreboard with a type tag.
#[derive(Debug, Serialize)]
pub(crate) struct Snapshot<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(flatten)]
    pub scoreboard: Scoreboard<'a>,
}

/// What the board reads from the store tick by tick and keeps between loads, so a tick that is
/// final is read once.
#[derive(Debug, Default)]
pub(crate) struct Scans {
    first_bloods: FirstBloodScan,
    defended: DefendedScan,
}

/// Each team's defended ticks (`[patches] scoring = "defended-ticks"`), counted from the stored
/// replays and results of scored ticks, which are final.
#[derive(Debug, Default)]
struct DefendedScan {
    /// Every tick up to this one is counted.
    counted: Option<Tick>,
    counts: DefendedTicks,
}

impl DefendedScan {
    async fn update(&mut self, store: &Store, upto: Tick) -> Result<DefendedTicks, WebError> {
        let from = self.counted.map_or(0, |t| t.0 + 1);
        if from <= upto.0 {
            for (_, team, _) in store.defended_cells(Tick(from), upto).await? {
                *self.counts.entry(team).or_default() += 1;
            }
            self.counted = Some(upto);
        }
        Ok(self.counts.clone())
    }
}

/// Which services have been captured, scanned from the stored submissions tick by tick.
///
/// Ticks well in the past cannot gain submissions, so their findings are kept and never read
/// again; only the last two ticks are re-read on each load.
#[derive(Debug, Default)]
pub(crate) struct FirstBloodScan {
    /// Every tick up to this one is scanned for good.
    settled: Option<Tick>,
    /// First bloods found in settled ticks.
    found: BTreeMap<ServiceId, FirstBloodView>,
}

impl FirstBloodScan {
    /// First bloods of `services` in submissions up to tick `upto`; ticks up to `settle`
    /// are remembered as final.
    async fn update(
        &mut self,
        store: &Store,
        services: &[ServiceId],
        upto: Tick,
        settle: Option<Tick>,
    ) -> Result<Vec<FirstBloodView>, WebError> {
        let mut found = self.found.clone();
        let start = self.settled.map_or(0, |t| t.0 + 1);
        for t in start..=upto.0 {
            if services.iter().all(|s| found.contains_key(s)) {
                break;
            }
            let tick = Tick(t);
            for s in store.submissions_in_tick(tick).await? {
                let (c, at) = (s.submission.capture, s.submission.submitted_at);
                if services.contains(&c.service) {
                    found.entry(c.service).or_insert(FirstBloodView {
                        service: c.service,
                        attacker: c.attacker,
                        victim: c.victim,
                        tick: c.submitted,
                        at,
                    });
                }
            }
            if settle.is_some_and(|settle| tick <= settle) {
                self.found.clone_from(&found);
                self.settled = Some(tick);
            }
        }
        Ok(found.into_values().collect())
    }
}

/// The one of two replays' exposures a service's cell shows: a store that fell makes it
/// exploitable, one not known makes it unknown.
fn worse_exposure(a: Exposure, b: Exposure) -> Exposure {
    let rank = |e: Exposure| match e {
        Exposure::Exploitable => 2,
        Exposure::Unknown => 1,
        Exposure::NotExploitable => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Reads the board from the store. `current` is the clock's running tick, which may be one
/// ahead of the latest stored tick (the engine moves submissions to the next tick when it
/// closes one, before it opens the next). A frozen `cut` shows nothing after its tick: no
/// later scores, verdicts, first bloods or rulings.
pub(crate) async fn load(
    store: &Store,
    scenario: &Scenario,
    current: Option<Tick>,
    scans: &mut Scans,
    cut: Cut,
) -> Result<Board, WebError> {
    let limit = cut.limit();
    let shown = |t: Tick| limit.is_none_or(|limit| t <= limit);
    let teams = store.list_teams().await?;
    let ticks = store.list_ticks().await?;
    let latest_tick = ticks.last().map(|t| t.tick);
    let tick = ticks.iter().rev().filter(|t| shown(t.tick)).find(|t| t.is_scored()).map(|t| t.tick);
    let status_tick = ticks.iter().rev().filter(|t| shown(t.tick)).find(|t| t.is_closed()).map(|t| t.tick);

    let scores: HashMap<TeamId, ScoreRow> = match tick {
        Some(t) => store.scores_for_tick(t).await?.into_iter().map(|r| (r.team, r)).collect(),
        None => HashMap::new(),
    };
    let results = match status_tick {
        Some(t) => store.check_results(t, None).await?,
        None => Vec::new(),
    };
    let mut by_cell: HashMap<(TeamId, ServiceId), Vec<(Verdict, &str)>> = HashMap::new();
    for r in &results {
        by_cell.entry((r.team, r.service)).or_default().push((r.verdict, r.message.as_str()));
    }
    let mut exposures: HashMap<(TeamId, ServiceId), Exposure> = HashMap::new();
    if let Some(t) = status_tick {
        for r in store.exploit_replays(t, t, None).await? {
            let cell = exposures.entry((r.team, r.service)).or_insert(r.exposure);
            *cell = worse_exposure(*cell, r.exposure);
        }
    }

    let service_ids: Vec<ServiceId> = scenario.services.iter().map(|s| s.id).collect();
    let scan_to = match (latest_tick, current) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let first_bloods = match (scan_to, &cut) {
        (_, Cut::Past(past)) => past.first_bloods.iter().filter(|b| b.tick <= past.through).cloned().collect(),
        // Every tick up to a freeze has closed: what it holds is final.
        (Some(upto), Cut::Frozen(f)) => {
            let upto = upto.min(f.through);
            scans.first_bloods.update(store, &service_ids, upto, Some(upto)).await?
        }
        (Some(upto), Cut::Live(_)) => {
            let settle = latest_tick.and_then(|t| t.0.checked_sub(2)).map(Tick);
            scans.first_bloods.update(store, &service_ids, upto, settle).await?
        }
        (None, _) => Vec::new(),
    };

    // One ordering rule for the whole platform: the core's, total first, ties by team id.
    let scored: Vec<TeamTick> = teams
        .iter()
        .map(|t| {
            let row = scores.get(&t.team.id);
            let score = row.map_or(TeamScore::default(), |r| r.score);
            TeamTick { team: t.team.id, score, services: Vec::new() }
        })
        .collect();
    // Report points count from the ruling on, on top of the stored flag scores.
    let scored_teams: Vec<ScoredTeam> = scenario.teams.iter().map(ScoredTeam::from).collect();
    let mut tally = ReportTally::for_drill(&scenario.reports, &scored_teams);
    if scenario.reports.enabled {
        let awards = store.report_awards().await?;
        tally.apply_all(awards.iter().filter(|a| shown(a.tick))).map_err(|e| WebError::Inconsistent(e.to_string()))?;
    }
    // Defended ticks count up to the latest scored tick, like the flag scores; a past board
    // counts them afresh (the scan keeps only the latest count).
    let defended = match (scenario.patches.scoring, tick) {
        (PatchScoring::DefendedTicks, Some(upto)) if matches!(cut, Cut::Past(_)) => {
            DefendedScan::default().update(store, upto).await?
        }
        (PatchScoring::DefendedTicks, Some(upto)) => scans.defended.update(store, upto).await?,
        _ => DefendedTicks::new(),
    };
    let flags = TickScores { tick: tick.unwrap_or(Tick(0)), teams: scored.clone() };
    let mut standings = standings(&scenario.reports, &scenario.patches, &flags, &tally, &defended);
    // Organisers' adjustments by hand; a frozen board shows those made before the freeze, a
    // past one those counting at its tick.
    let (made_by, counted_at) = cut.adjustments();
    standings.adjust(&store.adjustment_totals(made_by, counted_at).await?);
    let places = |order: Vec<TeamId>| -> HashMap<TeamId, u32> {
        order.into_iter().enumerate().map(|(i, id)| (id, i as u32 + 1)).collect()
    };
    let position = places(standings.ranking());
    // A red/blue drill ranks each side among itself.
    let red_blue = scenario.is_red_blue();
    let role = |id: TeamId| scenario.team(id).map(|t| t.role);
    let (red, blue) = if red_blue {
        (
            places(standings.ranking_of(|id| role(id).is_some_and(Role::attacks))),
            places(standings.ranking_of(|id| role(id).is_some_and(Role::defends))),
        )
    } else {
        Default::default()
    };

    let mut views: Vec<TeamView> = teams
        .into_iter()
        .zip(scored)
        .map(|(record, s)| {
            let team = record.team;
            let services = if team.role.defends() {
                service_ids
                    .iter()
                    .map(|&service| match status_tick {
                        Some(_) => {
                            let (verdict, message) =
                                tick_verdict(by_cell.remove(&(team.id, service)).unwrap_or_default());
                            let exploit = exposures.get(&(team.id, service)).copied();
                            CellView { service, verdict: Some(verdict), message, exploit }
                        }
                        None => CellView { service, verdict: None, message: String::new(), exploit: None },
                    })
                    .collect()
            } else {
                Vec::new()
            };
            TeamView {
                rank: position[&team.id],
                red_rank: red.get(&team.id).copied(),
                blue_rank: blue.get(&team.id).copied(),
                id: team.id,
                slug: team.slug,
                name: team.name.en,
                name_zh: team.name.zh,
                role: team.role,
                nop: team.nop,
                attack: s.score.attack,
                defence: s.score.defence,
                sla: s.score.sla,
                reports: standings.team(team.id).map_or(0.0, |st| st.report_score),
                patching: standings.team(team.id).map_or(0.0, |st| st.patch_score),
                defended_ticks: standings.team(team.id).map_or(0, |st| st.defended_ticks),
                adjustment: standings.team(team.id).map_or(0.0, |st| st.adjustment),
                total: standings.team(team.id).map_or(s.score.total, |st| st.total),
                services,
            }
        })
        .collect();
    views.sort_by_key(|t| t.rank);

    Ok(Board {
        drill: DrillView {
            slug: scenario.drill.slug.clone(),
            name: scenario.drill.name.en.clone(),
            name_zh: scenario.drill.name.zh.clone(),
            flag_lifetime: scenario.drill.flag_lifetime,
            patch_scoring: scenario.patches.scoring,
            red_blue,
        },
        tick,
        status_tick,
        latest_tick,
        services: scenario
            .services
            .iter()
            .map(|s| ServiceView {
                id: s.id,
                slug: s.slug.clone(),
                name: s.name.en.clone(),
                name_zh: s.name.zh.clone(),
            })
            .collect(),
        teams: views,
        first_bloods,
        freeze: cut.view(),
    })
}
