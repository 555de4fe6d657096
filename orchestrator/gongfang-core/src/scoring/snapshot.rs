//! A scorer's whole running state as bytes, so a restarted engine continues from the last
//! closed tick instead of scoring every tick of the drill again.
//!
//! The bytes are postcard (floats as their exact bits, so the continued scores are the same,
//! bit for bit, as those of a scorer that never stopped). They name the formula, flag
//! lifetime, teams and services they were taken with; [`Scorer::restore`] refuses them for
//! any other drill shape, and the caller scores every tick again instead.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{Cell, FlagMap, FlagState, Histogram, ScoredService, ScoredTeam, Scorer, TickFacts};
use crate::ids::Tick;
use crate::scenario::ScoringFormula;

/// Changes whenever the layout below does; older snapshots are then refused.
const VERSION: u32 = 1;

/// Why a snapshot cannot continue a drill.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("the snapshot cannot be read: {0}")]
    Unreadable(String),
    #[error("the snapshot has layout version {found}; this build reads version {VERSION}")]
    Version { found: u32 },
    #[error("the snapshot was taken with another {0} than the drill has now")]
    OtherDrill(&'static str),
    #[error("the snapshot is inconsistent: {0}")]
    Inconsistent(&'static str),
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    formula: ScoringFormula,
    flag_lifetime: Option<u32>,
    teams: Vec<ScoredTeam>,
    services: Vec<ScoredService>,
    next_tick: u32,
    ranks: Vec<u32>,
    cells: Vec<CellState>,
    window_start: u32,
    window: Vec<FactsState>,
}

#[derive(Serialize, Deserialize)]
struct CellState {
    captured: u64,
    by_captures: Vec<(u32, u64)>,
    rank_points: f64,
    lost: Vec<((u32, u32), u64)>,
    sla_points: f64,
    rating: f64,
    gained: f64,
    lost_points: f64,
    checks: u64,
    passed: u64,
}

#[derive(Serialize, Deserialize)]
struct FactsState {
    ok: Vec<bool>,
    active: u32,
    ranks_before: Vec<u32>,
    /// By slot, in slot order.
    flags: Vec<(u64, FlagState)>,
}

impl<K: Ord + Copy> Histogram<K> {
    fn counts(&self) -> Vec<(K, u64)> {
        self.entries.iter().map(|&(k, n, _)| (k, n)).collect()
    }

    /// Refills from `counts`, recomputing each key's weight as [`Histogram::bump`] did.
    fn refill(&mut self, counts: Vec<(K, u64)>) -> Result<(), SnapshotError> {
        if counts.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(SnapshotError::Inconsistent("a histogram is out of order"));
        }
        self.entries = counts.into_iter().map(|(k, n)| (k, n, (self.weight)(k))).collect();
        Ok(())
    }
}

impl Scorer {
    /// The scorer's state after its latest closed tick, to [`Scorer::restore`] later.
    pub fn snapshot(&self) -> Vec<u8> {
        let snapshot = Snapshot {
            version: VERSION,
            formula: self.formula,
            flag_lifetime: self.flag_lifetime,
            teams: self.teams.clone(),
            services: self.services.clone(),
            next_tick: self.next_tick.0,
            ranks: self.ranks.clone(),
            cells: self
                .cells
                .iter()
                .map(|c| CellState {
                    captured: c.captured,
                    by_captures: c.by_captures.counts(),
                    rank_points: c.rank_points,
                    lost: c.lost.counts(),
                    sla_points: c.sla_points,
                    rating: c.rating,
                    gained: c.gained,
                    lost_points: c.lost_points,
                    checks: c.checks,
                    passed: c.passed,
                })
                .collect(),
            window_start: self.window_start,
            window: self
                .window
                .iter()
                .map(|f| {
                    let mut flags: Vec<(u64, FlagState)> = f.flags.iter().map(|(&k, v)| (k, v.clone())).collect();
                    flags.sort_unstable_by_key(|f| f.0);
                    FactsState { ok: f.ok.clone(), active: f.active, ranks_before: f.ranks_before.clone(), flags }
                })
                .collect(),
        };
        postcard::to_allocvec(&snapshot).expect("a snapshot serialises")
    }

    /// The scorer a [`Scorer::snapshot`] was taken of, for the drill `self` was made for
    /// (a fresh scorer with the drill's formula, teams, services and flag lifetime). Refuses
    /// a snapshot of another drill shape or one that does not hold together.
    pub fn restore(self, bytes: &[u8]) -> Result<Scorer, SnapshotError> {
        let s: Snapshot = postcard::from_bytes(bytes).map_err(|e| SnapshotError::Unreadable(e.to_string()))?;
        if s.version != VERSION {
            return Err(SnapshotError::Version { found: s.version });
        }
        if s.formula != self.formula {
            return Err(SnapshotError::OtherDrill("scoring formula"));
        }
        if s.flag_lifetime != self.flag_lifetime {
            return Err(SnapshotError::OtherDrill("flag lifetime"));
        }
        if s.teams != self.teams {
            return Err(SnapshotError::OtherDrill("set of teams"));
        }
        if s.services != self.services {
            return Err(SnapshotError::OtherDrill("set of services"));
        }
        let (n_teams, n_cells) = (self.teams.len(), self.cells.len());
        if s.cells.len() != n_cells || s.ranks.len() != n_teams {
            return Err(SnapshotError::Inconsistent("its tables do not fit the teams and services"));
        }
        let closed = u64::from(s.window_start) + s.window.len() as u64;
        let complete = self.flag_lifetime.is_some() || s.window_start == 0;
        if closed != u64::from(s.next_tick) || !complete {
            return Err(SnapshotError::Inconsistent("its closed ticks do not add up"));
        }
        let mut scorer = self;
        for (cell, state) in scorer.cells.iter_mut().zip(s.cells) {
            *cell = Cell {
                captured: state.captured,
                rank_points: state.rank_points,
                sla_points: state.sla_points,
                rating: state.rating,
                gained: state.gained,
                lost_points: state.lost_points,
                checks: state.checks,
                passed: state.passed,
                ..cell.clone()
            };
            cell.by_captures.refill(state.by_captures)?;
            cell.lost.refill(state.lost)?;
        }
        let mut window = VecDeque::with_capacity(s.window.len());
        for f in s.window {
            if f.ok.len() != n_cells || f.ranks_before.len() != n_teams {
                return Err(SnapshotError::Inconsistent("a tick's facts do not fit the teams and services"));
            }
            let flags: FlagMap = f.flags.into_iter().collect();
            window.push_back(TickFacts { ok: f.ok, active: f.active, ranks_before: f.ranks_before, flags });
        }
        scorer.next_tick = Tick(s.next_tick);
        scorer.ranks = s.ranks;
        scorer.window = window;
        scorer.window_start = s.window_start;
        Ok(scorer)
    }
}
