//! The arithmetic of each formula, from a team × service's integer counts to points.

use super::{Cell, ScoredService, ScoredTeam, TeamScore, TickScores};
use crate::scenario::ScoringFormula;

/// ForcAD: every team starts each service with this rating.
pub const FORCAD_DEFAULT_SCORE: f64 = 2500.0;
/// ForcAD: the higher, the more a flag is worth and the less ratings matter.
pub const FORCAD_GAME_HARDNESS: f64 = 10.0;
/// ForcAD: whether an attacker may win more than its victim loses (a victim never drops below 0).
pub const FORCAD_INFLATION: bool = true;
/// saarCTF ranks teams by total rounded to this step, so that totals which are equal on paper
/// but differ in the last bits of a float still share a rank.
pub const RANK_PRECISION: f64 = 1e-6;

/// The score of one team × service from its running state.
pub(super) fn cell_score(
    formula: ScoringFormula,
    cell: &Cell,
    team: &ScoredTeam,
    service: &ScoredService,
    n_teams: usize,
) -> TeamScore {
    match formula {
        ScoringFormula::Faust => faust(cell, n_teams),
        ScoringFormula::Saarctf => saarctf(cell, service),
        ScoringFormula::Forcad => forcad(cell, team),
    }
}

/// Points per item of each histogram of a cell, by key.
pub(super) struct Weights {
    pub by_captures: fn(u32) -> f64,
    pub lost: fn((u32, u32)) -> f64,
}

pub(super) fn weights(formula: ScoringFormula) -> Weights {
    match formula {
        ScoringFormula::Faust | ScoringFormula::Forcad => {
            Weights { by_captures: |k| 1.0 / f64::from(k), lost: |(k, _)| f64::from(k).powf(0.75) }
        }
        ScoringFormula::Saarctf => Weights {
            by_captures: |k| 1.0 / f64::from(k).sqrt(),
            lost: |(k, a)| (f64::from(k) / f64::from(a)).powf(0.3) * f64::from(a).sqrt(),
        },
    }
}

/// attack = flags + Σ 1/captures; defence = −Σ captures^0.75; SLA = up ticks × √teams.
fn faust(cell: &Cell, n_teams: usize) -> TeamScore {
    let attack = cell.captured as f64 + cell.by_captures.sum();
    let sla = cell.passed as f64 * (n_teams as f64).sqrt();
    TeamScore::new(attack, 0.0 - cell.lost.sum(), sla)
}

/// attack = Σ (1 + √(1/captures) + √(1/victim rank)) / stores;
/// defence = −Σ (captures/active)^0.3 × √active / stores (over flags planted while up);
/// SLA = Σ over up ticks of √active.
fn saarctf(cell: &Cell, service: &ScoredService) -> TeamScore {
    let stores = f64::from(service.flag_stores.max(1));
    let attack = cell.captured as f64 + cell.by_captures.sum() + cell.rank_points;
    TeamScore::new(attack / stores, (0.0 - cell.lost.sum()) / stores, cell.sla_points)
}

/// ForcAD shows rating × SLA fraction per service; split into the rating's parts.
fn forcad(cell: &Cell, team: &ScoredTeam) -> TeamScore {
    if !team.role.defends() {
        // No service to keep up: the team's points are what it won.
        return TeamScore::new(cell.gained, cell.lost_points, 0.0);
    }
    let fraction = if cell.checks == 0 { 1.0 } else { cell.passed as f64 / cell.checks as f64 };
    TeamScore::new(cell.gained * fraction, cell.lost_points * fraction, FORCAD_DEFAULT_SCORE * fraction)
}

/// ForcAD's points for one capture, from both teams' ratings on that service: the attacker's
/// gain and the victim's (negative) change.
pub(super) fn forcad_delta(attacker: f64, victim: f64) -> (f64, f64) {
    let scale = 50.0 * FORCAD_GAME_HARDNESS.sqrt();
    let norm = FORCAD_GAME_HARDNESS.ln().ln() / 12.0;
    let gain = scale / (1.0 + ((attacker.sqrt() - victim.sqrt()) * norm).exp());
    let loss = -victim.min(gain);
    let gain = if FORCAD_INFLATION { gain } else { gain.min(-loss) };
    (gain, loss)
}

/// Competition ranks (1 = best, equal totals share a rank), by team index.
pub(super) fn ranks(scores: &TickScores) -> Vec<u32> {
    let keys: Vec<i64> = scores.teams.iter().map(|t| (t.score.total / RANK_PRECISION).round() as i64).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    keys.iter().map(|k| 1 + sorted.partition_point(|s| s > k) as u32).collect()
}
