//! Stored rows decoded into the game's records, and the column encodings they share: every
//! read of ticks, flags, checker results, submissions and scores goes through these, so a
//! row that does not fit its domain type is reported as corrupt the same way everywhere.

use std::fmt;

use gongfang_core::record::{CheckResult, NewSubmission, PlantedFlag, ScoreRow};
use gongfang_core::scoring::{Capture, TeamScore};
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick};

use crate::entity::{check_results, flags, scores, submissions, ticks};
use crate::error::{Result, corrupt};
use crate::game::{StoredSubmission, TickRecord};

/// A row id as its column holds it; an id beyond the column's range finds no row.
pub(crate) fn id32(id: i64) -> i32 {
    i32::try_from(id).unwrap_or(i32::MAX)
}

pub(crate) fn tick_i32(t: Tick) -> i32 {
    // Ticks count minutes of a drill at most; 2^31 of them is beyond any drill.
    i32::try_from(t.0).unwrap_or(i32::MAX)
}

pub(crate) fn de<T: TryFrom<i32>>(table: &'static str, key: impl fmt::Display, what: &str, v: i32) -> Result<T> {
    T::try_from(v).map_err(|_| corrupt(table, &key, format!("{what} {v} out of range")))
}

pub(crate) fn tick_from_row(r: ticks::Model) -> Result<TickRecord> {
    Ok(TickRecord {
        tick: Tick(de("ticks", r.tick, "tick", r.tick)?),
        opened_at: r.opened_at,
        closed_at: r.closed_at,
        scored_at: r.scored_at,
    })
}

pub(crate) fn flag_from_row(r: flags::Model) -> Result<PlantedFlag> {
    Ok(PlantedFlag {
        tick: Tick(de("flags", r.id, "tick", r.tick)?),
        team: TeamId(de("flags", r.id, "team", r.team)?),
        service: ServiceId(de("flags", r.id, "service", r.service)?),
        store: StoreIdx(de("flags", r.id, "store", r.store)?),
        flag: r.flag,
        flag_id: r.flag_id,
        state: r.state,
        planted_at: r.planted_at,
    })
}

pub(crate) fn check_from_row(r: check_results::Model) -> Result<CheckResult> {
    Ok(CheckResult {
        tick: Tick(de("check_results", r.id, "tick", r.tick)?),
        team: TeamId(de("check_results", r.id, "team", r.team)?),
        service: ServiceId(de("check_results", r.id, "service", r.service)?),
        action: r.action.parse().map_err(|e| corrupt("check_results", r.id, e))?,
        store: r.store.map(|s| de("check_results", r.id, "store", s).map(StoreIdx)).transpose()?,
        verdict: r.verdict.parse().map_err(|e| corrupt("check_results", r.id, e))?,
        message: r.message,
        log: r.log,
        duration_ms: u64::try_from(r.duration_ms).map_err(|_| corrupt("check_results", r.id, "negative duration"))?,
        recorded_at: r.recorded_at,
        fault: r.fault.map(|f| f.parse().map_err(|e| corrupt("check_results", r.id, e))).transpose()?,
    })
}

pub(crate) fn submission_from_row(r: submissions::Model) -> Result<StoredSubmission> {
    let key = r.id;
    Ok(StoredSubmission {
        id: i64::from(r.id),
        submission: NewSubmission {
            capture: Capture {
                attacker: TeamId(de("submissions", key, "attacker", r.attacker)?),
                victim: TeamId(de("submissions", key, "victim", r.victim)?),
                service: ServiceId(de("submissions", key, "service", r.service)?),
                store: StoreIdx(de("submissions", key, "store", r.store)?),
                planted: Tick(de("submissions", key, "tick_planted", r.tick_planted)?),
                submitted: Tick(de("submissions", key, "tick_submitted", r.tick_submitted)?),
            },
            flag: r.flag,
            submitted_at: r.submitted_at,
        },
    })
}

pub(crate) fn score_from_row(r: scores::Model) -> Result<ScoreRow> {
    let key = format!("({}, {})", r.tick, r.team);
    Ok(ScoreRow {
        tick: Tick(de("scores", &key, "tick", r.tick)?),
        team: TeamId(de("scores", &key, "team", r.team)?),
        score: TeamScore { attack: r.attack, defence: r.defence, sla: r.sla, total: r.total },
    })
}
