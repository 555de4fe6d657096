//! Anonymised statistics of the drill's reports (`GET /api/admin/report-stats`), for observers
//! and organisers: how many attack and defence results were filed, where each stands, how many
//! were ruled valid and what they earned, per service and per hour of filing, and how long
//! judges take to rule. Counts only: no team, no report's content, no evidence, no judge.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use gongfang_core::report::{ReportKind, ReportStatus, RulingStage};
use gongfang_core::scenario::{JudgePanel, Scenario};
use gongfang_store::reports::ReportRecord;
use serde::Serialize;

use crate::console;
use crate::error::ReportsError;
use crate::portal::Names;
use crate::state::ReportsState;
use crate::view::Worth;

/// The statistics of one kind of report.
#[derive(Debug, Default, Serialize)]
pub(crate) struct KindStats {
    filed: u32,
    /// Waiting for a (first) ruling: no judge, or one of two, has scored it.
    pending: u32,
    /// Two judges disagreed; waiting for a third.
    disputed: u32,
    /// Ruled (first ruling or appeal) valid, and invalid.
    valid: u32,
    invalid: u32,
    /// Reports the filing team appealed, and of those, whose appeal is ruled.
    appealed: u32,
    appeals_ruled: u32,
    /// Points the ruled-valid reports are worth now (before the scenario's report weight).
    points: u64,
    /// How many different teams filed one.
    teams_filing: u32,
    /// Median minutes from filing to the first ruling, over the ruled reports.
    median_minutes_to_ruling: Option<i64>,
}

/// One service's reports.
#[derive(Debug, Serialize)]
pub(crate) struct ServiceStats {
    service: String,
    name: Names,
    attack_filed: u32,
    attack_valid: u32,
    defence_filed: u32,
    defence_valid: u32,
}

/// Reports filed in one hour (UTC, from `from`).
#[derive(Debug, Serialize)]
pub(crate) struct HourStats {
    from: DateTime<Utc>,
    attack: u32,
    defence: u32,
}

/// What `GET /api/admin/report-stats` answers.
#[derive(Debug, Serialize)]
pub(crate) struct ReportStats {
    /// Judges per report: 1, or 2 scoring blind.
    judges: u8,
    attack: KindStats,
    defence: KindStats,
    /// Every service of the scenario, in its order.
    services: Vec<ServiceStats>,
    /// Every hour in which a report was filed, oldest first.
    hours: Vec<HourStats>,
}

/// Counts `reports` (every report of the drill) for the scenario `s`.
pub(crate) fn report_stats(s: &Scenario, reports: &[ReportRecord], worth: &Worth) -> ReportStats {
    let mut kinds: BTreeMap<ReportKind, (KindStats, BTreeSet<u16>, Vec<i64>)> = BTreeMap::new();
    let mut services: Vec<ServiceStats> = s
        .services
        .iter()
        .map(|x| ServiceStats {
            service: x.slug.clone(),
            name: Names::from(&x.name),
            attack_filed: 0,
            attack_valid: 0,
            defence_filed: 0,
            defence_valid: 0,
        })
        .collect();
    let mut hours: BTreeMap<DateTime<Utc>, HourStats> = BTreeMap::new();
    for r in reports {
        let kind = r.report.kind;
        let (stats, teams, waits) = kinds.entry(kind).or_default();
        stats.filed += 1;
        teams.insert(r.team.0);
        let valid = r.latest_ruling().map(|x| x.decision.valid);
        match (r.status, valid) {
            (ReportStatus::Pending, _) => stats.pending += 1,
            (ReportStatus::Disputed, _) => stats.disputed += 1,
            (_, Some(true)) => stats.valid += 1,
            (_, _) => stats.invalid += 1,
        }
        if r.appeal.is_some() {
            stats.appealed += 1;
        }
        if r.ruling(RulingStage::Appeal).is_some() {
            stats.appeals_ruled += 1;
        }
        stats.points += u64::from(worth.of(r));
        if let Some(first) = r.ruling(RulingStage::First) {
            waits.push((first.ruled_at - r.filed_at).num_minutes());
        }
        // The rows are the scenario's services, in its order.
        if let Some(row) = s.services.iter().position(|x| x.id == r.report.service).map(|i| &mut services[i]) {
            let valid = u32::from(valid == Some(true));
            match kind {
                ReportKind::Attack => {
                    (row.attack_filed, row.attack_valid) = (row.attack_filed + 1, row.attack_valid + valid)
                }
                ReportKind::Defence => {
                    (row.defence_filed, row.defence_valid) = (row.defence_filed + 1, row.defence_valid + valid)
                }
            }
        }
        let hour = r.filed_at.duration_trunc(TimeDelta::hours(1)).unwrap_or(r.filed_at);
        let slot = hours.entry(hour).or_insert(HourStats { from: hour, attack: 0, defence: 0 });
        match kind {
            ReportKind::Attack => slot.attack += 1,
            ReportKind::Defence => slot.defence += 1,
        }
    }
    let mut take = |kind| {
        let (mut stats, teams, mut waits) = kinds.remove(&kind).unwrap_or_default();
        stats.teams_filing = u32::try_from(teams.len()).unwrap_or(u32::MAX);
        waits.sort_unstable();
        stats.median_minutes_to_ruling = waits.get(waits.len() / 2).copied();
        stats
    };
    ReportStats {
        judges: match s.reports.panel {
            JudgePanel::One => 1,
            JudgePanel::BlindPair { .. } => 2,
        },
        attack: take(ReportKind::Attack),
        defence: take(ReportKind::Defence),
        services,
        hours: hours.into_values().collect(),
    }
}

/// `GET /api/admin/report-stats`: organisers and observers.
pub(crate) async fn stats(
    State(state): State<ReportsState>,
    headers: HeaderMap,
) -> Result<Json<ReportStats>, ReportsError> {
    console::reader(&state, &headers).await?;
    let reports = state.store().list_reports(None).await?;
    let worth = Worth::read(state.store(), state.scenario()).await?;
    Ok(Json(report_stats(state.scenario(), &reports, &worth)))
}
