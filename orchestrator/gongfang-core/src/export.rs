//! The drill's export: its final standings and its whole event log (ticks, verdicts, captures,
//! flag scores, rulings, adjustments, defended cells), enough to recompute every score
//! elsewhere ([`Export::recompute`] does it from the document alone). `gongfang export` writes
//! it as JSON, as CSV files, or as CTFtime's scoreboard feed.
//!
//! The same drill always gives the same bytes: every list is in a fixed order (ticks, then team
//! and service ids), numbers are printed in their shortest exact form, and nothing says when the
//! export was made.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ServiceId, TeamId, Tick};
use crate::scenario::{PatchRules, PatchScoring, ReportRules, ReportScoring, Role, RulePreset, ScoringFormula};
use crate::scoring::{
    Adjustments, Award, Capture, ReportPoints, ReportTally, ScoredService, ScoredTeam, ScoringError, ServiceVerdict,
    Standings, TeamScore, TickEvents, recompute_standings,
};
use crate::verdict::Verdict;

/// The export's format and version, its first field.
pub const FORMAT: &str = "gongfang-export/1";

/// One drill's export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// [`FORMAT`].
    pub format: String,
    pub drill: ExportedDrill,
    /// By id.
    pub teams: Vec<ExportedTeam>,
    /// By id; a tick's verdict letters follow this order.
    pub services: Vec<ExportedService>,
    /// Every scored tick, in order.
    pub ticks: Vec<ExportedTick>,
    /// Every ruling on a report, by tick, then report, then stage (first, appeal).
    pub rulings: Vec<Award>,
    /// Every organisers' adjustment, in the order they were made.
    pub adjustments: Vec<ExportedAdjustment>,
    /// After the last scored tick, best first.
    pub standings: Vec<FinalStanding>,
}

/// What scoring needs to know about the drill, with its names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedDrill {
    pub slug: String,
    pub name: String,
    pub name_zh: String,
    /// The flag formula.
    pub scoring: ScoringFormula,
    pub flag_lifetime: u32,
    pub tick_seconds: u64,
    /// Whether teams file reports, how report points count, and their weight.
    pub reports_enabled: bool,
    pub report_scoring: ReportScoring,
    pub report_weight: f64,
    /// With `report_scoring = "rules"`, the preset's tables the findings are scored by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_preset: Option<RulePreset>,
    /// How patching counts, and the points per defended tick.
    pub patch_scoring: PatchScoring,
    pub patch_points: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedTeam {
    pub id: TeamId,
    pub slug: String,
    pub name: String,
    pub name_zh: String,
    pub role: Role,
    pub nop: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedService {
    pub id: ServiceId,
    pub slug: String,
    pub name: String,
    pub name_zh: String,
    pub flag_stores: u8,
}

/// One scored tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedTick {
    pub tick: Tick,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub scored_at: Option<DateTime<Utc>>,
    /// Each defending team's verdicts, a letter per service in service order
    /// ([`Verdict::letter`]): the worst of the tick's checker results, as scoring saw them.
    pub verdicts: Vec<TeamVerdicts>,
    /// Cells organisers marked defective: scored as `checker-error` whatever their letter.
    pub defective: Vec<Cell>,
    /// Flags accepted during the tick.
    pub captures: Vec<Capture>,
    /// Cells whose service was `ok` while its reference exploit captured nothing (patching
    /// points, `patch_scoring = "defended-ticks"`).
    pub defended: Vec<Cell>,
    /// Every team's flag score after the tick, as the engine stored it.
    pub scores: Vec<TeamScoreRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamVerdicts {
    pub team: TeamId,
    pub verdicts: String,
}

/// One team's service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cell {
    pub team: TeamId,
    pub service: ServiceId,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TeamScoreRow {
    pub team: TeamId,
    #[serde(flatten)]
    pub score: TeamScore,
}

/// Points an organiser added (or took), counted from `tick` on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedAdjustment {
    pub team: TeamId,
    pub points: f64,
    pub tick: Tick,
    pub reason: String,
    pub made_by: String,
    pub made_at: DateTime<Utc>,
}

/// A team's place after the last scored tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalStanding {
    /// 1 = best, among all teams; ties broken by team id.
    pub rank: u32,
    /// In a red/blue drill, the place among the teams that attack.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub red_rank: Option<u32>,
    /// In a red/blue drill, the place among the teams that defend.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub blue_rank: Option<u32>,
    pub team: TeamId,
    pub slug: String,
    pub attack: f64,
    pub defence: f64,
    pub sla: f64,
    /// Points of ruled-valid reports, before the weight.
    pub report_points: ReportPoints,
    /// Report points as counted in the total.
    pub reports: f64,
    pub defended_ticks: u64,
    pub patching: f64,
    pub adjustment: f64,
    pub total: f64,
}

/// Why an export cannot be recomputed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("this is not a Gongfang export of format {FORMAT} (it says {0:?})")]
    Format(String),
    #[error("tick {tick}: team {team}'s verdicts {letters:?} are not one letter per service ({services})")]
    Verdicts { tick: Tick, team: TeamId, letters: String, services: usize },
    #[error("the export's events cannot be scored: {0}")]
    Scoring(#[from] ScoringError),
}

impl ExportedDrill {
    fn report_rules(&self) -> ReportRules {
        ReportRules {
            enabled: self.reports_enabled,
            scoring: self.report_scoring,
            weight: self.report_weight,
            preset: self.rule_preset.clone(),
            ..ReportRules::default()
        }
    }

    fn patch_rules(&self) -> PatchRules {
        PatchRules { scoring: self.patch_scoring, points: self.patch_points, ..PatchRules::default() }
    }
}

impl Export {
    /// What each ruled report is worth after every ruling in the export: the judges' points,
    /// or under the rule-based preset what its finding scores by the tables.
    pub fn report_worth(&self) -> Result<BTreeMap<i64, u32>, ExportError> {
        let teams: Vec<ScoredTeam> =
            self.teams.iter().map(|t| ScoredTeam { id: t.id, role: t.role, nop: t.nop }).collect();
        let mut tally = ReportTally::for_drill(&self.drill.report_rules(), &teams);
        let mut rulings: Vec<&Award> = self.rulings.iter().collect();
        rulings.sort_by_key(|a| (a.tick, a.report, a.stage));
        tally.apply_all(rulings)?;
        Ok(self.rulings.iter().filter_map(|a| Some((a.report, tally.report_points(a.report)?))).collect())
    }

    /// The standings recomputed from the export's events alone: the flag formula over every
    /// tick's verdicts (defective cells as `checker-error`) and captures, the rulings in the
    /// tick they were made (those made after the last tick in it), the defended cells, then
    /// every adjustment. They equal
    /// [`Export::standings`] for an export of a drill scored by Gongfang.
    pub fn recompute(&self) -> Result<Vec<FinalStanding>, ExportError> {
        if self.format != FORMAT {
            return Err(ExportError::Format(self.format.clone()));
        }
        let teams: Vec<ScoredTeam> =
            self.teams.iter().map(|t| ScoredTeam { id: t.id, role: t.role, nop: t.nop }).collect();
        let services: Vec<ScoredService> =
            self.services.iter().map(|s| ScoredService { id: s.id, flag_stores: s.flag_stores }).collect();
        let mut ticks = Vec::with_capacity(self.ticks.len());
        let mut defended = Vec::new();
        for t in &self.ticks {
            let mut verdicts = Vec::new();
            for row in &t.verdicts {
                let letters: Vec<Option<Verdict>> = row.verdicts.chars().map(Verdict::from_letter).collect();
                if letters.len() != services.len() || letters.iter().any(Option::is_none) {
                    return Err(ExportError::Verdicts {
                        tick: t.tick,
                        team: row.team,
                        letters: row.verdicts.clone(),
                        services: services.len(),
                    });
                }
                for (service, verdict) in self.services.iter().zip(letters.into_iter().flatten()) {
                    let cell = Cell { team: row.team, service: service.id };
                    let verdict = if t.defective.contains(&cell) { Verdict::CheckerError } else { verdict };
                    verdicts.push(ServiceVerdict { team: row.team, service: service.id, verdict });
                }
            }
            defended.extend(t.defended.iter().map(|c| (t.tick, c.team, c.service)));
            ticks.push(TickEvents { tick: t.tick, verdicts, captures: t.captures.clone() });
        }
        // Rulings made after the last scored tick (judges rule after the drill ends) count in
        // the final standings, as on the board.
        let last_tick = self.ticks.last().map(|t| t.tick);
        let rulings: Vec<Award> = self
            .rulings
            .iter()
            .map(|a| Award { tick: last_tick.map_or(a.tick, |l| a.tick.min(l)), ..a.clone() })
            .collect();
        let all = recompute_standings(
            self.drill.scoring,
            &teams,
            &services,
            &ticks,
            &self.drill.report_rules(),
            &rulings,
            &self.drill.patch_rules(),
            &defended,
        )?;
        let Some(mut last) = all.into_iter().next_back() else { return Ok(Vec::new()) };
        let mut adjustments = Adjustments::new();
        for a in &self.adjustments {
            *adjustments.entry(a.team).or_default() += a.points;
        }
        last.adjust(&adjustments);
        let red_blue = self.drill.reports_enabled && self.drill.report_scoring.ranks_sides();
        Ok(final_standings(&last, &self.teams, red_blue))
    }

    /// The standings and the event log as CSV files (name, contents), one row per line with a
    /// header: `standings.csv`, `teams.csv`, `services.csv`, `verdicts.csv` (a row per cell),
    /// `captures.csv`, `scores.csv`, `rulings.csv`, `adjustments.csv`, `defended.csv`.
    pub fn csv_files(&self) -> Vec<(&'static str, String)> {
        let mut standings = Csv::new(&[
            "rank",
            "red_rank",
            "blue_rank",
            "team",
            "slug",
            "attack",
            "defence",
            "sla",
            "attack_report_points",
            "defence_report_points",
            "reports",
            "defended_ticks",
            "patching",
            "adjustment",
            "total",
        ]);
        for s in &self.standings {
            let opt = |r: Option<u32>| r.map(|r| r.to_string()).unwrap_or_default();
            standings.row(&[
                &s.rank.to_string(),
                &opt(s.red_rank),
                &opt(s.blue_rank),
                &s.team.0.to_string(),
                &s.slug,
                &s.attack.to_string(),
                &s.defence.to_string(),
                &s.sla.to_string(),
                &s.report_points.attack.to_string(),
                &s.report_points.defence.to_string(),
                &s.reports.to_string(),
                &s.defended_ticks.to_string(),
                &s.patching.to_string(),
                &s.adjustment.to_string(),
                &s.total.to_string(),
            ]);
        }
        let mut teams = Csv::new(&["id", "slug", "name", "name_zh", "role", "nop"]);
        for t in &self.teams {
            teams.row(&[&t.id.0.to_string(), &t.slug, &t.name, &t.name_zh, t.role.as_str(), &t.nop.to_string()]);
        }
        let mut services = Csv::new(&["id", "slug", "name", "name_zh", "flag_stores"]);
        for s in &self.services {
            services.row(&[&s.id.0.to_string(), &s.slug, &s.name, &s.name_zh, &s.flag_stores.to_string()]);
        }
        let mut verdicts = Csv::new(&["tick", "team", "service", "verdict", "defective"]);
        let mut captures = Csv::new(&["tick", "attacker", "victim", "service", "store", "planted"]);
        let mut scores = Csv::new(&["tick", "team", "attack", "defence", "sla", "total"]);
        let mut defended = Csv::new(&["tick", "team", "service"]);
        for t in &self.ticks {
            let tick = t.tick.0.to_string();
            for row in &t.verdicts {
                for (service, letter) in self.services.iter().zip(row.verdicts.chars()) {
                    let cell = Cell { team: row.team, service: service.id };
                    let verdict = Verdict::from_letter(letter).map_or("", Verdict::as_str);
                    let defective = t.defective.contains(&cell).to_string();
                    verdicts.row(&[&tick, &row.team.0.to_string(), &service.id.0.to_string(), verdict, &defective]);
                }
            }
            for c in &t.captures {
                captures.row(&[
                    &tick,
                    &c.attacker.0.to_string(),
                    &c.victim.0.to_string(),
                    &c.service.0.to_string(),
                    &c.store.0.to_string(),
                    &c.planted.0.to_string(),
                ]);
            }
            for s in &t.scores {
                let sc = s.score;
                let row = [sc.attack, sc.defence, sc.sla, sc.total].map(|x| x.to_string());
                scores.row(&[&tick, &s.team.0.to_string(), &row[0], &row[1], &row[2], &row[3]]);
            }
            for c in &t.defended {
                defended.row(&[&tick, &c.team.0.to_string(), &c.service.0.to_string()]);
            }
        }
        let mut rulings = Csv::new(&["tick", "report", "team", "kind", "stage", "points"]);
        for a in &self.rulings {
            rulings.row(&[
                &a.tick.0.to_string(),
                &a.report.to_string(),
                &a.team.0.to_string(),
                a.kind.as_str(),
                a.stage.as_str(),
                &a.points.to_string(),
            ]);
        }
        let mut adjustments = Csv::new(&["tick", "team", "points", "reason", "made_by", "made_at"]);
        for a in &self.adjustments {
            adjustments.row(&[
                &a.tick.0.to_string(),
                &a.team.0.to_string(),
                &a.points.to_string(),
                &a.reason,
                &a.made_by,
                &a.made_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ]);
        }
        vec![
            ("standings.csv", standings.0),
            ("teams.csv", teams.0),
            ("services.csv", services.0),
            ("verdicts.csv", verdicts.0),
            ("captures.csv", captures.0),
            ("scores.csv", scores.0),
            ("rulings.csv", rulings.0),
            ("adjustments.csv", adjustments.0),
            ("defended.csv", defended.0),
        ]
    }

    /// The final standings in CTFtime's scoreboard feed format: the services as tasks, and
    /// every team with its place and total.
    pub fn ctftime(&self) -> CtftimeFeed {
        let name = |id: TeamId| self.teams.iter().find(|t| t.id == id).map_or_else(String::new, |t| t.name.clone());
        CtftimeFeed {
            tasks: self.services.iter().map(|s| s.name.clone()).collect(),
            standings: self
                .standings
                .iter()
                .map(|s| CtftimeStanding { pos: s.rank, team: name(s.team), score: s.total })
                .collect(),
        }
    }
}

/// CTFtime's scoreboard feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtftimeFeed {
    pub tasks: Vec<String>,
    pub standings: Vec<CtftimeStanding>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtftimeStanding {
    pub pos: u32,
    pub team: String,
    pub score: f64,
}

/// The standings of the last tick as the export lists them, best first: ranked by total, ties
/// by team id; in a red/blue drill also each side among itself.
pub fn final_standings(standings: &Standings, teams: &[ExportedTeam], red_blue: bool) -> Vec<FinalStanding> {
    let role = |id: TeamId| teams.iter().find(|t| t.id == id).map(|t| t.role);
    let places = |order: Vec<TeamId>| -> BTreeMap<TeamId, u32> {
        order.into_iter().enumerate().map(|(i, id)| (id, i as u32 + 1)).collect()
    };
    let (red, blue) = if red_blue {
        (
            places(standings.ranking_of(|id| role(id).is_some_and(Role::attacks))),
            places(standings.ranking_of(|id| role(id).is_some_and(Role::defends))),
        )
    } else {
        Default::default()
    };
    standings
        .ranking()
        .into_iter()
        .enumerate()
        .filter_map(|(i, id)| {
            let s = standings.team(id)?;
            Some(FinalStanding {
                rank: i as u32 + 1,
                red_rank: red.get(&id).copied(),
                blue_rank: blue.get(&id).copied(),
                team: id,
                slug: teams.iter().find(|t| t.id == id).map_or_else(String::new, |t| t.slug.clone()),
                attack: s.flags.attack,
                defence: s.flags.defence,
                sla: s.flags.sla,
                report_points: s.reports,
                reports: s.report_score,
                defended_ticks: s.defended_ticks,
                patching: s.patch_score,
                adjustment: s.adjustment,
                total: s.total,
            })
        })
        .collect()
}

/// A CSV document being written: RFC 4180 quoting, and a text field a spreadsheet would take
/// for a formula (`=`, `+`, `-`, `@` first) starts with `'`.
struct Csv(String);

impl Csv {
    fn new(header: &[&str]) -> Csv {
        let mut csv = Csv(String::new());
        csv.row(header);
        csv
    }

    fn row(&mut self, fields: &[&str]) {
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            let numeric = field.parse::<f64>().is_ok();
            let formula = !numeric && field.starts_with(['=', '+', '-', '@', '\t', '\r']);
            let field = if formula { format!("'{field}") } else { (*field).to_owned() };
            if field.contains([',', '"', '\n', '\r']) {
                let _ = write!(self.0, "\"{}\"", field.replace('"', "\"\""));
            } else {
                self.0.push_str(&field);
            }
        }
        self.0.push_str("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let mut csv = Csv::new(&["a", "b"]);
        csv.row(&["plain, with comma", "say \"hi\""]);
        csv.row(&["=1+1", "-2.5"]);
        csv.row(&["line\nbreak", "@home"]);
        assert_eq!(
            csv.0,
            "a,b\r\n\"plain, with comma\",\"say \"\"hi\"\"\"\r\n'=1+1,-2.5\r\n\"line\nbreak\",'@home\r\n"
        );
    }

    #[test]
    fn an_export_of_another_format_is_refused() {
        let export = Export {
            format: "something-else/9".into(),
            drill: ExportedDrill {
                slug: "d".into(),
                name: "D".into(),
                name_zh: "D".into(),
                scoring: ScoringFormula::Faust,
                flag_lifetime: 5,
                tick_seconds: 60,
                reports_enabled: false,
                report_scoring: ReportScoring::Formula,
                report_weight: 1.0,
                rule_preset: None,
                patch_scoring: PatchScoring::None,
                patch_points: 0.0,
            },
            teams: Vec::new(),
            services: Vec::new(),
            ticks: Vec::new(),
            rulings: Vec::new(),
            adjustments: Vec::new(),
            standings: Vec::new(),
        };
        assert!(matches!(export.recompute(), Err(ExportError::Format(f)) if f == "something-else/9"));
    }
}
