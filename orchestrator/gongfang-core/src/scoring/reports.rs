//! Report points on top of flag points: a team's standing is its flag score (from
//! [`Scorer`](super::Scorer)) combined with the points of its ruled-valid reports, as the
//! scenario's `[reports]` table says.
//!
//! Exactness: report points are integers, summed per team in any order with the same result;
//! the only floating-point steps are one multiplication by the weight and one addition to the
//! flag score, in a fixed order. A ruling counts from the tick it was made in, so replaying the
//! stored ticks and rulings gives every tick's standings bit for bit.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::rules::{AttackFinding, DefenceFinding, LinkedEvent, score_rules};
use super::{ScoredService, ScoredTeam, Scorer, ScoringError, TeamScore, TickEvents, TickScores};
use crate::ids::{ServiceId, TeamId, Tick};
use crate::report::{Finding, ReportKind, RulingStage};
use crate::scenario::{PatchRules, PatchScoring, ReportRules, RulePreset, ScoringFormula};

/// A ruling's effect on the score: what the report is worth after it (0 when ruled invalid).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Award {
    pub report: i64,
    /// The filing team.
    pub team: TeamId,
    pub kind: ReportKind,
    pub stage: RulingStage,
    /// The judges' points; 0 under the rule-based preset, whose tables score the finding.
    pub points: u32,
    /// The tick during which the ruling was made; it counts from that tick's standings on.
    pub tick: Tick,
    /// Under the rule-based preset, what a valid ruling found, with what the report says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<RuledFinding>,
}

/// A valid ruling's finding under the rule-based preset, with the report's facts it is scored
/// by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RuledFinding {
    pub finding: Finding,
    /// When the report says the attack happened or the team acted (its window's start).
    pub stated: DateTime<Utc>,
    /// The defending unit an attack report names (none for a defence report).
    pub unit: Option<TeamId>,
}

/// A team's points from ruled-valid reports, by kind (before the weight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReportPoints {
    pub attack: u64,
    /// Under the rule-based preset, with the bonus of the team's defence results.
    pub defence: u64,
    /// Under the rule-based preset, what ruled attack results cost the team's systems;
    /// otherwise 0.
    #[serde(default)]
    pub lost: u64,
}

impl ReportPoints {
    /// attack + defence − lost.
    pub fn total(self) -> i64 {
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        signed(self.attack).saturating_add(signed(self.defence)).saturating_sub(signed(self.lost))
    }

    fn slot(&mut self, kind: ReportKind) -> &mut u64 {
        match kind {
            ReportKind::Attack => &mut self.attack,
            ReportKind::Defence => &mut self.defence,
        }
    }
}

/// The latest ruling of every report, and each team's report points. An appeal ruling
/// replaces the first ruling's points (or finding).
///
/// Under the rule-based preset ([`ReportTally::for_drill`]) every ruling (or batch of them,
/// [`ReportTally::apply_all`]) scores the valid findings so far again with [`score_rules`]: a finding whose stated time comes first takes
/// the first repeat and the caps first, whenever it is ruled. A defence result counts once the
/// attack result it answers is ruled valid (one that answers an attack ruled invalid never
/// does); invalid findings score nothing and are left out.
#[derive(Debug, Clone, Default)]
pub struct ReportTally {
    /// Per report: filing team, kind, latest stage, points.
    reports: BTreeMap<i64, (TeamId, ReportKind, RulingStage, u32)>,
    teams: BTreeMap<TeamId, ReportPoints>,
    rules: Option<RulesTally>,
}

/// What each ruled report is worth, by report id.
type ReportWorth = BTreeMap<i64, u32>;

/// The rule-based preset's part of a tally: the tables, the drill's teams and every report's
/// latest ruling.
#[derive(Debug, Clone)]
struct RulesTally {
    preset: RulePreset,
    teams: Vec<ScoredTeam>,
    rulings: BTreeMap<i64, Award>,
}

impl RulesTally {
    /// Scores the latest rulings by the tables: each team's points and each report's.
    fn score(&self) -> Result<(BTreeMap<TeamId, ReportPoints>, ReportWorth), ScoringError> {
        let mut attacks = Vec::new();
        let mut defences = Vec::new();
        for a in self.rulings.values() {
            let Some(RuledFinding { finding, stated, unit }) = &a.finding else { continue };
            let filed = u64::try_from(a.report).unwrap_or(0);
            match (finding, unit) {
                (Finding::Attack { attack_type, weakness }, Some(unit)) => attacks.push(AttackFinding {
                    report: a.report,
                    team: a.team,
                    unit: *unit,
                    attack_type: attack_type.clone(),
                    weakness: weakness.trim().to_owned(),
                    stated: *stated,
                    filed,
                    valid: true,
                }),
                (Finding::Attack { .. }, None) => {
                    return Err(ScoringError::NotAUnit { report: a.report, team: a.team });
                }
                (Finding::Defence { link, rubric, bonus }, _) => defences.push(DefenceFinding {
                    report: a.report,
                    team: a.team,
                    link: *link,
                    rubric: rubric.clone(),
                    bonus: *bonus,
                    stated: *stated,
                    filed,
                    valid: true,
                }),
            }
        }
        // A defence of an attack not (yet) ruled valid has nothing to answer.
        let ruled: BTreeSet<i64> = attacks.iter().map(|a| a.report).collect();
        defences.retain(|d| match d.link {
            LinkedEvent::Attack { report } => ruled.contains(&report),
            LinkedEvent::Capture(_) => true,
        });
        let scored = score_rules(&self.preset, &self.teams, &attacks, &defences)?;
        let teams = scored
            .teams
            .iter()
            .map(|t| (t.team, ReportPoints { attack: t.attack, defence: t.defence + t.bonus, lost: t.cost }))
            .collect();
        let worth = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        let reports = scored
            .attacks
            .iter()
            .map(|a| (a.report, worth(a.points)))
            .chain(scored.defences.iter().map(|d| (d.report, worth(d.points + d.bonus))))
            .collect();
        Ok((teams, reports))
    }
}

impl ReportTally {
    /// A tally of the judges' points.
    pub fn new() -> ReportTally {
        ReportTally::default()
    }

    /// The tally a drill's rulings are counted in: by the rule-based preset's tables with
    /// `scoring = "rules"` (`teams` are the drill's), else the judges' points.
    pub fn for_drill(rules: &ReportRules, teams: &[ScoredTeam]) -> ReportTally {
        let rules = rules.rule_preset().map(|preset| RulesTally {
            preset: preset.clone(),
            teams: teams.to_vec(),
            rulings: BTreeMap::new(),
        });
        ReportTally { rules, ..ReportTally::default() }
    }

    /// Applies one ruling. A report's first ruling must come before its appeal ruling, and
    /// each at most once; on error nothing changes.
    pub fn apply(&mut self, a: &Award) -> Result<(), ScoringError> {
        self.apply_all([a])
    }

    /// Applies rulings in the order given, as [`ReportTally::apply`] does one by one, but
    /// scores them by the preset's tables once, after the last: replaying a whole drill's
    /// rulings costs one scoring, not one per ruling. On error nothing changes.
    pub fn apply_all<'a>(&mut self, awards: impl IntoIterator<Item = &'a Award>) -> Result<(), ScoringError> {
        let awards: Vec<&Award> = awards.into_iter().collect();
        if let ([one], None) = (awards.as_slice(), &self.rules) {
            // Refused before it changes anything: nothing to put back.
            return self.record(one);
        }
        let before = self.clone();
        let applied = awards.into_iter().try_for_each(|a| self.record(a)).and_then(|()| self.rescore());
        if applied.is_err() {
            *self = before;
        }
        applied
    }

    /// One ruling's place in the tally; under the preset its points wait for [`Self::rescore`].
    fn record(&mut self, a: &Award) -> Result<(), ScoringError> {
        let old = self.reports.get(&a.report).copied();
        match (old, a.stage) {
            (None, RulingStage::First) => {}
            (None, RulingStage::Appeal) => return Err(ScoringError::AppealBeforeRuling { report: a.report }),
            (Some((team, kind, RulingStage::First, _)), RulingStage::Appeal) if team == a.team && kind == a.kind => {}
            (Some((_, _, RulingStage::First, _)), RulingStage::Appeal) => {
                return Err(ScoringError::RulingsDisagree { report: a.report });
            }
            (Some(_), _) => return Err(ScoringError::DuplicateRuling { report: a.report }),
        }
        if let Some(rules) = &mut self.rules {
            rules.rulings.insert(a.report, a.clone());
            self.reports.insert(a.report, (a.team, a.kind, a.stage, 0));
            return Ok(());
        }
        let points = self.teams.entry(a.team).or_default();
        let slot = points.slot(a.kind);
        if let Some((_, _, _, before)) = old {
            *slot -= u64::from(before);
        }
        *slot += u64::from(a.points);
        self.reports.insert(a.report, (a.team, a.kind, a.stage, a.points));
        Ok(())
    }

    /// Under the preset, scores every latest ruling again: each team's points and each
    /// report's worth.
    fn rescore(&mut self) -> Result<(), ScoringError> {
        let Some(rules) = &self.rules else { return Ok(()) };
        let (teams, worth) = rules.score()?;
        self.teams = teams;
        for (report, entry) in &mut self.reports {
            entry.3 = worth.get(report).copied().unwrap_or(0);
        }
        Ok(())
    }

    /// A team's report points (zero for a team without rulings).
    pub fn points(&self, team: TeamId) -> ReportPoints {
        self.teams.get(&team).copied().unwrap_or_default()
    }

    /// What a report is worth now, if it has been ruled: its points, or under the rule-based
    /// preset what its finding scores by the tables (with a defence's bonus) given every
    /// ruling so far.
    pub fn report_points(&self, report: i64) -> Option<u32> {
        self.reports.get(&report).map(|r| r.3)
    }
}

/// One team's place on the board: flag score, report points, and the total they make.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Standing {
    pub team: TeamId,
    /// The flag formula's score.
    pub flags: TeamScore,
    /// Points of ruled-valid reports, before the weight.
    pub reports: ReportPoints,
    /// The report points counted in the total: weight × points (0 while reports are off).
    pub report_score: f64,
    /// Ticks one of the team's services was `ok` while the replay of its reference exploit
    /// captured nothing (counted per service), up to this tick.
    pub defended_ticks: u64,
    /// The patching points counted in the total: `[patches] points` × defended ticks with
    /// `scoring = "defended-ticks"`, else 0.
    pub patch_score: f64,
    /// Points organisers added (or took) by hand, counted in the total.
    #[serde(default)]
    pub adjustment: f64,
    /// What the team is ranked by.
    pub total: f64,
}

/// Every team's standing after a tick, in team id order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standings {
    pub tick: Tick,
    pub teams: Vec<Standing>,
}

impl Standings {
    pub fn team(&self, id: TeamId) -> Option<&Standing> {
        self.teams.binary_search_by_key(&id, |t| t.team).ok().map(|i| &self.teams[i])
    }

    /// Adds each team's manual adjustment to its total (teams without one keep theirs).
    pub fn adjust(&mut self, adjustments: &Adjustments) {
        for standing in &mut self.teams {
            if let Some(points) = adjustments.get(&standing.team) {
                standing.adjustment += points;
                standing.total += points;
            }
        }
    }

    /// All teams, best first; equal totals keep team id order.
    pub fn ranking(&self) -> Vec<TeamId> {
        self.ranking_of(|_| true)
    }

    /// The teams `member` takes, best first; equal totals keep team id order. A red/blue
    /// drill ranks its red teams among themselves and its blue teams among themselves
    /// ([`crate::scenario::Role::attacks`], [`crate::scenario::Role::defends`]).
    pub fn ranking_of(&self, member: impl Fn(TeamId) -> bool) -> Vec<TeamId> {
        let mut order: Vec<&Standing> = self.teams.iter().filter(|t| member(t.team)).collect();
        order.sort_by(|a, b| b.total.total_cmp(&a.total).then(a.team.cmp(&b.team)));
        order.into_iter().map(|t| t.team).collect()
    }
}

/// Each team's manual score adjustments, summed.
pub type Adjustments = BTreeMap<TeamId, f64>;

/// Each team's defended ticks so far (see [`crate::patch::defended_cells`]).
pub type DefendedTicks = BTreeMap<TeamId, u64>;

/// Combines a tick's flag scores with the report points ruled so far and the ticks defended:
/// total = attack + defence + SLA + weight × report points + patch points, in both report
/// modes (`red-blue` ranks red and blue teams apart, [`Standings::ranking_of`]; a blue team
/// that takes its service down earns no SLA, so one that keeps it up ranks above it). Patch
/// points are `[patches] points` × defended ticks, or 0 with `scoring = "none"`.
pub fn standings(
    rules: &ReportRules,
    patches: &PatchRules,
    flags: &TickScores,
    tally: &ReportTally,
    defended: &DefendedTicks,
) -> Standings {
    let teams = flags
        .teams
        .iter()
        .map(|t| {
            let reports = tally.points(t.team);
            let report_score = if rules.enabled { rules.weight * reports.total() as f64 } else { 0.0 };
            let defended_ticks = defended.get(&t.team).copied().unwrap_or(0);
            let patch_score = match patches.scoring {
                PatchScoring::None => 0.0,
                PatchScoring::DefendedTicks => patches.points * defended_ticks as f64,
            };
            Standing {
                team: t.team,
                flags: t.score,
                reports,
                report_score,
                defended_ticks,
                patch_score,
                adjustment: 0.0,
                total: t.score.total + report_score + patch_score,
            }
        })
        .collect();
    Standings { tick: flags.tick, teams }
}

/// Recomputes every closed tick's standings from the stored ticks, rulings and defended cells,
/// for audits and replays. Rulings are applied in the tick they were made in, in (report,
/// stage) order within a tick, so the order they are listed in does not matter. Rulings and
/// defended cells of ticks after the last one given appear in no standings.
#[allow(clippy::too_many_arguments)]
pub fn recompute_standings(
    formula: ScoringFormula,
    teams: &[ScoredTeam],
    services: &[ScoredService],
    ticks: &[TickEvents],
    rules: &ReportRules,
    awards: &[Award],
    patches: &PatchRules,
    defended_cells: &[(Tick, TeamId, ServiceId)],
) -> Result<Vec<Standings>, ScoringError> {
    let mut scorer = Scorer::new(formula, teams, services)?;
    if let Some(a) = awards.iter().find(|a| !teams.iter().any(|t| t.id == a.team)) {
        return Err(ScoringError::UnknownReportTeam { report: a.report, team: a.team });
    }
    let mut awards = awards.to_vec();
    awards.sort_by_key(|a| (a.tick, a.report, a.stage));
    let mut pending = awards.iter().peekable();
    let mut tally = ReportTally::for_drill(rules, teams);
    let mut cells = defended_cells.to_vec();
    cells.sort_unstable();
    let mut cells = cells.iter().peekable();
    let mut defended = DefendedTicks::new();
    let mut out = Vec::with_capacity(ticks.len());
    for events in ticks {
        let flags = scorer.close_tick(events)?;
        tally.apply_all(std::iter::from_fn(|| pending.next_if(|a| a.tick <= events.tick)))?;
        while let Some((_, team, _)) = cells.next_if(|c| c.0 <= events.tick) {
            *defended.entry(*team).or_default() += 1;
        }
        out.push(standings(rules, patches, &flags, &tally, &defended));
    }
    Ok(out)
}
