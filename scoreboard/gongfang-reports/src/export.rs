//! A drill's export read from its store: the final standings as the live board has them, and
//! every scored tick's verdicts, captures, defended cells and flag scores, every ruling and
//! every adjustment ([`gongfang_core::export`]). `gongfang export` writes it; the after-action
//! reports are read from it.

use std::collections::{BTreeMap, HashMap};

use gongfang_core::export::{
    Cell, Export, ExportedAdjustment, ExportedDrill, ExportedService, ExportedTeam, ExportedTick, FORMAT, TeamScoreRow,
    TeamVerdicts, final_standings,
};
use gongfang_core::plan::tick_verdict;
use gongfang_core::scenario::Scenario;
use gongfang_core::scoring::{
    Adjustments, DefendedTicks, ReportTally, ScoredTeam, TeamScore, TeamTick, TickScores, standings,
};
use gongfang_core::{ServiceId, TeamId, Verdict};
use gongfang_store::Store;

use crate::error::ReportsError;

/// Reads the export of the drill in `store`, played with `scenario`.
pub async fn build(store: &Store, scenario: &Scenario) -> Result<Export, ReportsError> {
    let mut teams: Vec<ExportedTeam> = scenario
        .teams
        .iter()
        .map(|t| ExportedTeam {
            id: t.id,
            slug: t.slug.clone(),
            name: t.name.en.clone(),
            name_zh: t.name.zh.clone(),
            role: t.role,
            nop: t.nop,
        })
        .collect();
    teams.sort_by_key(|t| t.id);
    let mut services: Vec<ExportedService> = scenario
        .services
        .iter()
        .map(|s| ExportedService {
            id: s.id,
            slug: s.slug.clone(),
            name: s.name.en.clone(),
            name_zh: s.name.zh.clone(),
            flag_stores: s.flag_stores,
        })
        .collect();
    services.sort_by_key(|s| s.id);
    let defenders: Vec<TeamId> = teams.iter().filter(|t| t.role.defends()).map(|t| t.id).collect();

    let defective = store.defective_cells().await?;
    let mut ticks = Vec::new();
    for record in store.list_ticks().await?.into_iter().filter(|t| t.is_scored()) {
        let tick = record.tick;
        let results = store.check_results(tick, None).await?;
        let mut cells: HashMap<(TeamId, ServiceId), Vec<(Verdict, &str)>> = HashMap::new();
        for r in &results {
            cells.entry((r.team, r.service)).or_default().push((r.verdict, r.message.as_str()));
        }
        let verdicts = defenders
            .iter()
            .map(|&team| TeamVerdicts {
                team,
                verdicts: services
                    .iter()
                    .map(|s| tick_verdict(cells.remove(&(team, s.id)).unwrap_or_default()).0.letter())
                    .collect(),
            })
            .collect();
        let mut marked: Vec<Cell> =
            defective.iter().filter(|(t, _, _)| *t == tick).map(|&(_, team, service)| Cell { team, service }).collect();
        marked.sort();
        let mut captures: Vec<_> =
            store.submissions_in_tick(tick).await?.into_iter().map(|s| s.submission.capture).collect();
        captures.sort_by_key(|c| (c.attacker, c.victim, c.service, c.store, c.planted));
        let mut defended: Vec<Cell> = store
            .defended_cells(tick, tick)
            .await?
            .into_iter()
            .map(|(_, team, service)| Cell { team, service })
            .collect();
        defended.sort();
        let mut scores: Vec<TeamScoreRow> = store
            .scores_for_tick(tick)
            .await?
            .into_iter()
            .map(|r| TeamScoreRow { team: r.team, score: r.score })
            .collect();
        scores.sort_by_key(|s| s.team);
        ticks.push(ExportedTick {
            tick,
            opened_at: record.opened_at,
            closed_at: record.closed_at,
            scored_at: record.scored_at,
            verdicts,
            defective: marked,
            captures,
            defended,
            scores,
        });
    }

    let mut rulings = store.report_awards().await?;
    rulings.sort_by_key(|a| (a.tick, a.report, a.stage));
    let adjustments: Vec<ExportedAdjustment> = store
        .score_adjustments()
        .await?
        .into_iter()
        .map(|a| ExportedAdjustment {
            team: a.team,
            points: a.points,
            tick: a.tick,
            reason: a.reason,
            made_by: a.made_by,
            made_at: a.made_at,
        })
        .collect();

    // The final standings as the live board has them: the last tick's stored flag scores,
    // every ruling, the defended ticks, every adjustment.
    let standings = match ticks.last() {
        Some(last) => {
            let stored: BTreeMap<TeamId, TeamScore> = last.scores.iter().map(|s| (s.team, s.score)).collect();
            let flags = TickScores {
                tick: last.tick,
                teams: teams
                    .iter()
                    .map(|t| TeamTick {
                        team: t.id,
                        score: stored.get(&t.id).copied().unwrap_or_default(),
                        services: Vec::new(),
                    })
                    .collect(),
            };
            let scored: Vec<ScoredTeam> =
                teams.iter().map(|t| ScoredTeam { id: t.id, role: t.role, nop: t.nop }).collect();
            let mut tally = ReportTally::for_drill(&scenario.reports, &scored);
            tally
                .apply_all(&rulings)
                .map_err(|e| ReportsError::Inconsistent(format!("the stored rulings cannot be scored: {e}")))?;
            let mut defended = DefendedTicks::new();
            for cell in ticks.iter().flat_map(|t| &t.defended) {
                *defended.entry(cell.team).or_default() += 1;
            }
            let mut by_hand = Adjustments::new();
            for a in &adjustments {
                *by_hand.entry(a.team).or_default() += a.points;
            }
            let mut board = standings(&scenario.reports, &scenario.patches, &flags, &tally, &defended);
            board.adjust(&by_hand);
            final_standings(&board, &teams, scenario.is_red_blue())
        }
        None => Vec::new(),
    };

    Ok(Export {
        format: FORMAT.to_owned(),
        drill: ExportedDrill {
            slug: scenario.drill.slug.clone(),
            name: scenario.drill.name.en.clone(),
            name_zh: scenario.drill.name.zh.clone(),
            scoring: scenario.drill.scoring,
            flag_lifetime: scenario.drill.flag_lifetime,
            tick_seconds: scenario.drill.tick.as_secs(),
            reports_enabled: scenario.reports.enabled,
            report_scoring: scenario.reports.scoring,
            report_weight: scenario.reports.weight,
            rule_preset: scenario.reports.rule_preset().cloned(),
            patch_scoring: scenario.patches.scoring,
            patch_points: scenario.patches.points,
        },
        teams,
        services,
        ticks,
        rulings,
        adjustments,
        standings,
    })
}
