//! The rule-based preset (`[reports] scoring = "rules"`): ruled attack and defence results
//! scored by the scenario's tables ([`RulePreset`]), each with what it scored and why.
//!
//! Attack results, in order of the attack time they state, then of filing, then of report id:
//!
//! 1. an invalid one scores nothing and is no repeat;
//! 2. the n-th valid finding of one weakness in one unit (by any red team) scores the n-th
//!    repeat factor of its type's points (0 past the list), rounded down: its *base*;
//! 3. the base is cut to what the type's cap for that unit (`max_per_unit`) and the unit's
//!    points (`unit_points`) have left, all red teams together;
//! 4. what is left is multiplied by the unit's multiplier (100 % unless a key unit), rounded
//!    down: the red team's points and what the attack cost the unit.
//!
//! Defence results, in order of the time they state, then of filing, then of report id; each
//! answers an attack on the filing team's own systems, a ruled attack result or a recorded
//! capture (which counts as `capture_points` × the team's multiplier):
//!
//! 1. an invalid one, or one answering an attack ruled invalid, scores nothing;
//! 2. each criterion counts only what it adds over the team's best earlier score on the same
//!    attack, so splitting one response into several reports gains nothing;
//! 3. the share is cut to what `max_defence_share` leaves for the team on that attack; the
//!    points are that share of the attack's cost, rounded down; the bonus is cut to what
//!    `max_bonus` leaves for the team;
//! 4. a result that earns something counts towards the team's `max_counted_defences`; once the
//!    team has that many, its later results score nothing.
//!
//! Pure and exact: integers only, rounded down at the two steps named, and a canonical order
//! that makes the result the same however the findings are listed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Capture, ScoredTeam, ScoringError};
use crate::ids::{ServiceId, StoreIdx, TeamId, Tick};
use crate::report::ReportKind;
use crate::scenario::RulePreset;

/// A ruled attack result, as the judges record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackFinding {
    pub report: i64,
    /// The red team that filed it.
    pub team: TeamId,
    /// The defending unit (team) attacked.
    pub unit: TeamId,
    /// The slug of its attack type (`[[reports.attack_type]]`).
    pub attack_type: String,
    /// Which weakness it is: the judges' key, the same for every finding of that weakness in
    /// the unit (compared exactly).
    pub weakness: String,
    /// When the report says the attack happened.
    pub stated: DateTime<Utc>,
    /// Its place in the order reports were filed.
    pub filed: u64,
    pub valid: bool,
}

/// The attack event a defence result answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LinkedEvent {
    /// A ruled attack result, by its report id.
    Attack { report: i64 },
    /// A recorded capture of one of the defending team's flags.
    Capture(Capture),
}

/// A ruled defence result, as the judges record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefenceFinding {
    pub report: i64,
    /// The blue team that filed it.
    pub team: TeamId,
    /// The attack it answers.
    pub link: LinkedEvent,
    /// The judges' share on each criterion of the rubric, in percent of the attack's cost, at
    /// most the criterion's `max_share`; criteria left out score 0.
    pub rubric: BTreeMap<String, u32>,
    /// Bonus points the judges gave it, bounded per team by `max_bonus`.
    pub bonus: u32,
    /// When the report says the team acted.
    pub stated: DateTime<Utc>,
    /// Its place in the order reports were filed.
    pub filed: u64,
    pub valid: bool,
}

crate::named_enum! {
    /// Why an attack result scored less than its type's points.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum AttackNote {
        /// Ruled invalid: scores nothing and is no repeat.
        Invalid = "invalid",
        /// A repeat of its weakness in its unit past the list of repeat factors.
        PastRepeats = "past-repeats",
        /// Cut to what its type's cap for the unit had left.
        TypeCap = "type-cap",
        /// Cut to what the unit's points had left.
        UnitPoints = "unit-points",
    }
}

crate::named_enum! {
    /// Why a defence result scored less than the judges' rubric and bonus.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum DefenceNote {
        /// Ruled invalid.
        Invalid = "invalid",
        /// The attack result it answers was ruled invalid, so there is no attack to answer.
        AttackInvalid = "attack-invalid",
        /// The attack it answers cost nothing, so no share of it is worth anything.
        AttackCostNothing = "attack-cost-nothing",
        /// Some of its rubric had been scored already by the team's earlier results on the
        /// same attack.
        CriteriaScored = "criteria-scored",
        /// Cut to what the share cap had left for the team on this attack.
        ShareCap = "share-cap",
        /// Bonus cut to what the team's bonus bound had left.
        BonusCap = "bonus-cap",
        /// The team already had its most counted defence results.
        CountCap = "count-cap",
    }
}

/// What one attack result scored, step by step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttackScore {
    pub report: i64,
    pub team: TeamId,
    pub unit: TeamId,
    pub attack_type: String,
    /// The n-th valid finding of its weakness in its unit, from 1; 0 when invalid.
    pub repeat: u32,
    /// The repeat's factor, in percent.
    pub factor: u32,
    /// The type's points × factor / 100, rounded down.
    pub base: u64,
    /// What the type's cap for the unit had left before it (before the multiplier).
    pub type_left: u64,
    /// What the unit's points had left before it (before the multiplier).
    pub unit_left: u64,
    /// The base cut to both: min(base, type_left, unit_left).
    pub counted: u64,
    /// The unit's multiplier, in percent.
    pub multiplier: u32,
    /// counted × multiplier / 100, rounded down: the red team's points and the unit's cost.
    pub points: u64,
    /// Empty when it scored its base in full; else each reason, in [`AttackNote`] order.
    pub notes: Vec<AttackNote>,
}

/// What one defence result scored, step by step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefenceScore {
    pub report: i64,
    pub team: TeamId,
    pub link: LinkedEvent,
    /// What the attack it answers cost the team: the attack result's points, or for a capture
    /// `capture_points` × the team's multiplier / 100; 0 when that attack was ruled invalid.
    pub cost: u64,
    /// The sum of the judges' rubric, in percent.
    pub judged: u32,
    /// Of that, what the team's earlier results on the same attack had not scored.
    pub new: u32,
    /// What the share cap had left for the team on this attack before it.
    pub share_left: u32,
    /// The share it earned: min(new, share_left); 0 when it does not count.
    pub share: u32,
    /// cost × share / 100, rounded down.
    pub points: u64,
    /// The bonus it earned.
    pub bonus: u64,
    /// Whether it counts towards the team's `max_counted_defences` (it earned something).
    pub counted: bool,
    /// Empty when it scored its rubric and bonus in full; else each reason, in
    /// [`DefenceNote`] order.
    pub notes: Vec<DefenceNote>,
}

/// One team's points under the preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RulesTeam {
    pub team: TeamId,
    /// The points of its attack results.
    pub attack: u64,
    /// The points of its defence results.
    pub defence: u64,
    /// The bonus of its defence results, at most `max_bonus`.
    pub bonus: u64,
    /// What ruled attack results cost its systems.
    pub cost: u64,
    /// What its systems hold: `unit_points` × its multiplier / 100 (0 for a team that defends
    /// nothing); `cost` never exceeds it.
    pub unit_points: u64,
    /// How many of its defence results scored, at most `max_counted_defences`.
    pub counted_defences: u32,
}

impl RulesTeam {
    /// attack + defence + bonus − cost: a red team's attack points; a blue team's defence
    /// points and bonus less what attacks cost it.
    pub fn total(&self) -> i64 {
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        signed(self.attack) + signed(self.defence) + signed(self.bonus) - signed(self.cost)
    }
}

/// Every team's points and every finding's breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RulesScores {
    /// In team id order, every team given.
    pub teams: Vec<RulesTeam>,
    /// In the order they were scored: stated time, filing order, report id.
    pub attacks: Vec<AttackScore>,
    /// In the order they were scored: stated time, filing order, report id.
    pub defences: Vec<DefenceScore>,
}

impl RulesScores {
    pub fn team(&self, id: TeamId) -> Option<&RulesTeam> {
        self.teams.binary_search_by_key(&id, |t| t.team).ok().map(|i| &self.teams[i])
    }

    pub fn attack(&self, report: i64) -> Option<&AttackScore> {
        self.attacks.iter().find(|a| a.report == report)
    }

    pub fn defence(&self, report: i64) -> Option<&DefenceScore> {
        self.defences.iter().find(|d| d.report == report)
    }
}

/// A linked event as an ordered key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum EventKey {
    Attack(i64),
    Capture(TeamId, TeamId, ServiceId, StoreIdx, Tick, Tick),
}

impl From<LinkedEvent> for EventKey {
    fn from(link: LinkedEvent) -> EventKey {
        match link {
            LinkedEvent::Attack { report } => EventKey::Attack(report),
            LinkedEvent::Capture(c) => {
                EventKey::Capture(c.attacker, c.victim, c.service, c.store, c.planted, c.submitted)
            }
        }
    }
}

/// One team's answers to one attack so far.
#[derive(Debug, Default)]
struct Answered<'a> {
    /// The best share scored on each criterion.
    best: BTreeMap<&'a str, u32>,
    /// The share earned, all results together.
    share: u32,
}

/// Scores ruled attack and defence results by the preset's tables (see the module's text).
///
/// `teams` are the drill's teams; findings that cannot have been ruled in it (an unknown team
/// or attack type, a role that may not file the kind, a rubric above its maxima, a defence of
/// an attack on another team, a report id listed twice) are an error, and nothing is scored.
pub fn score_rules(
    preset: &RulePreset,
    teams: &[ScoredTeam],
    attacks: &[AttackFinding],
    defences: &[DefenceFinding],
) -> Result<RulesScores, ScoringError> {
    let teams = check(preset, teams, attacks, defences)?;
    let attack_scores = score_attacks(preset, attacks);
    let defence_scores = score_defences(preset, defences, &attack_scores);

    let mut totals: BTreeMap<TeamId, RulesTeam> = teams
        .values()
        .map(|t| {
            let unit_points = if t.role.defends() {
                u64::from(preset.unit_points) * u64::from(preset.multiplier(t.id)) / 100
            } else {
                0
            };
            let zero =
                RulesTeam { team: t.id, attack: 0, defence: 0, bonus: 0, cost: 0, unit_points, counted_defences: 0 };
            (t.id, zero)
        })
        .collect();
    fn total(totals: &mut BTreeMap<TeamId, RulesTeam>, id: TeamId) -> &mut RulesTeam {
        totals.get_mut(&id).expect("teams are checked")
    }
    for a in &attack_scores {
        total(&mut totals, a.team).attack += a.points;
        total(&mut totals, a.unit).cost += a.points;
    }
    for d in &defence_scores {
        let t = total(&mut totals, d.team);
        t.defence += d.points;
        t.bonus += d.bonus;
        t.counted_defences += u32::from(d.counted);
    }
    Ok(RulesScores { teams: totals.into_values().collect(), attacks: attack_scores, defences: defence_scores })
}

/// Checks every finding against the teams and the tables, in report id order (so the error
/// named is the same however the findings are listed); returns the teams by id.
fn check(
    preset: &RulePreset,
    teams: &[ScoredTeam],
    attacks: &[AttackFinding],
    defences: &[DefenceFinding],
) -> Result<BTreeMap<TeamId, ScoredTeam>, ScoringError> {
    let mut by_id = BTreeMap::new();
    for t in teams {
        if by_id.insert(t.id, *t).is_some() {
            return Err(ScoringError::DuplicateTeam(t.id));
        }
    }
    let mut reports: Vec<i64> = attacks.iter().map(|a| a.report).chain(defences.iter().map(|d| d.report)).collect();
    reports.sort_unstable();
    if let Some(w) = reports.windows(2).find(|w| w[0] == w[1]) {
        return Err(ScoringError::DuplicateReport { report: w[0] });
    }
    let team = |report: i64, id: TeamId| by_id.get(&id).ok_or(ScoringError::UnknownReportTeam { report, team: id });
    let mut attacks: Vec<&AttackFinding> = attacks.iter().collect();
    attacks.sort_by_key(|a| a.report);
    let mut defences: Vec<&DefenceFinding> = defences.iter().collect();
    defences.sort_by_key(|d| d.report);

    let mut units = BTreeMap::new();
    for a in attacks {
        let filer = team(a.report, a.team)?;
        if !ReportKind::Attack.allowed_for(filer.role) || filer.nop {
            return Err(ScoringError::ReportNotForRole { report: a.report, team: a.team, kind: ReportKind::Attack });
        }
        if !team(a.report, a.unit)?.role.defends() {
            return Err(ScoringError::NotAUnit { report: a.report, team: a.unit });
        }
        if a.unit == a.team {
            return Err(ScoringError::AttackOnOwnTeam { report: a.report });
        }
        if preset.attack_type(&a.attack_type).is_none() {
            return Err(ScoringError::UnknownAttackType { report: a.report, attack_type: a.attack_type.clone() });
        }
        units.insert(a.report, a.unit);
    }

    for d in defences {
        let filer = team(d.report, d.team)?;
        if !ReportKind::Defence.allowed_for(filer.role) {
            return Err(ScoringError::ReportNotForRole { report: d.report, team: d.team, kind: ReportKind::Defence });
        }
        for (criterion, &share) in &d.rubric {
            let Some(c) = preset.criterion(criterion) else {
                return Err(ScoringError::UnknownCriterion { report: d.report, criterion: criterion.clone() });
            };
            if share > c.max_share {
                return Err(ScoringError::ShareAboveMax {
                    report: d.report,
                    criterion: criterion.clone(),
                    share,
                    max: c.max_share,
                });
            }
        }
        let victim = match d.link {
            LinkedEvent::Attack { report } => {
                *units.get(&report).ok_or(ScoringError::UnknownLinkedAttack { report: d.report, linked: report })?
            }
            LinkedEvent::Capture(c) => {
                team(d.report, c.attacker)?;
                if c.attacker == c.victim {
                    return Err(ScoringError::AttackOnOwnTeam { report: d.report });
                }
                c.victim
            }
        };
        if victim != d.team {
            return Err(ScoringError::LinkedElsewhere { report: d.report, victim });
        }
    }
    Ok(by_id)
}

/// Scores attack results in canonical order. The findings are checked.
fn score_attacks(preset: &RulePreset, attacks: &[AttackFinding]) -> Vec<AttackScore> {
    let mut order: Vec<&AttackFinding> = attacks.iter().collect();
    order.sort_by_key(|a| (a.stated, a.filed, a.report));
    // Valid findings so far per (unit, weakness); base points counted per (unit, type) and unit.
    let mut repeats: BTreeMap<(TeamId, &str), u32> = BTreeMap::new();
    let mut by_type: BTreeMap<(TeamId, &str), u64> = BTreeMap::new();
    let mut by_unit: BTreeMap<TeamId, u64> = BTreeMap::new();
    let mut out = Vec::with_capacity(order.len());
    for a in order {
        let kind = preset.attack_type(&a.attack_type).expect("attack types are checked");
        let type_used = by_type.entry((a.unit, kind.slug.as_str())).or_default();
        let unit_used = by_unit.entry(a.unit).or_default();
        let type_left = u64::from(kind.max_per_unit).saturating_sub(*type_used);
        let unit_left = u64::from(preset.unit_points).saturating_sub(*unit_used);
        let multiplier = preset.multiplier(a.unit);
        let mut score = AttackScore {
            report: a.report,
            team: a.team,
            unit: a.unit,
            attack_type: kind.slug.clone(),
            repeat: 0,
            factor: 0,
            base: 0,
            type_left,
            unit_left,
            counted: 0,
            multiplier,
            points: 0,
            notes: Vec::new(),
        };
        if !a.valid {
            score.notes.push(AttackNote::Invalid);
            out.push(score);
            continue;
        }
        let repeat = repeats.entry((a.unit, a.weakness.as_str())).or_default();
        *repeat += 1;
        score.repeat = *repeat;
        score.factor = preset.repeat_factor(*repeat);
        score.base = u64::from(kind.points) * u64::from(score.factor) / 100;
        score.counted = score.base.min(type_left).min(unit_left);
        score.points = score.counted * u64::from(multiplier) / 100;
        if score.factor == 0 {
            score.notes.push(AttackNote::PastRepeats);
        } else if score.counted < score.base {
            // The cap (or caps) that cut it.
            if type_left == score.counted {
                score.notes.push(AttackNote::TypeCap);
            }
            if unit_left == score.counted {
                score.notes.push(AttackNote::UnitPoints);
            }
        }
        *type_used += score.counted;
        *unit_used += score.counted;
        out.push(score);
    }
    out
}

/// Scores defence results in canonical order, against the attack results' scores. The
/// findings are checked.
fn score_defences(preset: &RulePreset, defences: &[DefenceFinding], attacks: &[AttackScore]) -> Vec<DefenceScore> {
    let attack_cost: BTreeMap<i64, (bool, u64)> =
        attacks.iter().map(|a| (a.report, (!a.notes.contains(&AttackNote::Invalid), a.points))).collect();
    let mut order: Vec<&DefenceFinding> = defences.iter().collect();
    order.sort_by_key(|d| (d.stated, d.filed, d.report));
    let mut answered: BTreeMap<(TeamId, EventKey), Answered<'_>> = BTreeMap::new();
    // Per team: results counted, bonus earned.
    let mut counted: BTreeMap<TeamId, (u32, u64)> = BTreeMap::new();
    let max_bonus = u64::from(preset.max_bonus);
    let mut out = Vec::with_capacity(order.len());
    for d in order {
        let (recognised, cost) = match d.link {
            LinkedEvent::Attack { report } => attack_cost[&report],
            LinkedEvent::Capture(c) => {
                (true, u64::from(preset.capture_points) * u64::from(preset.multiplier(c.victim)) / 100)
            }
        };
        let judged: u32 = d.rubric.values().sum();
        let mut score = DefenceScore {
            report: d.report,
            team: d.team,
            link: d.link,
            cost: if recognised { cost } else { 0 },
            judged,
            new: 0,
            share_left: 0,
            share: 0,
            points: 0,
            bonus: 0,
            counted: false,
            notes: Vec::new(),
        };
        if !d.valid || !recognised {
            score.notes.push(if d.valid { DefenceNote::AttackInvalid } else { DefenceNote::Invalid });
            out.push(score);
            continue;
        }
        let so_far = answered.entry((d.team, EventKey::from(d.link))).or_default();
        score.new =
            d.rubric.iter().map(|(c, &s)| s.saturating_sub(so_far.best.get(c.as_str()).copied().unwrap_or(0))).sum();
        score.share_left = preset.max_defence_share.saturating_sub(so_far.share);
        let (team_counted, team_bonus) = counted.entry(d.team).or_default();
        if cost == 0 {
            score.notes.push(DefenceNote::AttackCostNothing);
        }
        if score.new < judged {
            score.notes.push(DefenceNote::CriteriaScored);
        }
        if *team_counted >= preset.max_counted_defences {
            score.notes.push(DefenceNote::CountCap);
            out.push(score);
            continue;
        }
        let share = score.new.min(score.share_left);
        let points = cost * u64::from(share) / 100;
        let bonus = u64::from(d.bonus).min(max_bonus - *team_bonus);
        if share < score.new {
            score.notes.push(DefenceNote::ShareCap);
        }
        if bonus < u64::from(d.bonus) {
            score.notes.push(DefenceNote::BonusCap);
        }
        if points > 0 || bonus > 0 {
            score.share = share;
            score.points = points;
            score.bonus = bonus;
            score.counted = true;
            so_far.share += share;
            for (c, &s) in &d.rubric {
                let best = so_far.best.entry(c.as_str()).or_default();
                *best = (*best).max(s);
            }
            *team_counted += 1;
            *team_bonus += bonus;
        }
        score.notes.sort_unstable();
        out.push(score);
    }
    out
}
