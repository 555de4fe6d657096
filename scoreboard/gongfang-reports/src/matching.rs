//! What the platform recorded around a report's window, shown to judges beside it: captures of
//! the target's flags by the filing team (or of the filer's flags, for a defence report),
//! changes of the service's checker verdict, the service's container logs, and a suggested
//! match saying how well the records back the report.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use gongfang_core::plan::tick_verdict;
use gongfang_core::report::ReportKind;
use gongfang_core::scoring::LinkedEvent;
use gongfang_core::{TeamId, Tick, Verdict};
use gongfang_store::reports::ReportRecord;
use serde::Serialize;

use crate::error::ReportsError;
use crate::logs::LogLine;
use crate::state::ReportsState;
use crate::view::{service_slug, team_slug};

/// The records around one report.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    /// The span searched: the report's window widened by a margin of ticks on either side.
    pub searched_from: DateTime<Utc>,
    pub searched_to: DateTime<Utc>,
    pub captures: Vec<CaptureView>,
    /// More captures were recorded in the span than the [`MAX_CAPTURES`] shown (the oldest).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub captures_truncated: bool,
    pub verdict_changes: Vec<VerdictChange>,
    pub logs: Vec<LogLine>,
    /// Why there are no logs, when the log source failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs_error: Option<String>,
    /// When the searched span starts before the oldest log line still kept: since when lines
    /// are kept, and a sentence saying so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs_kept_from: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs_notice: Option<String>,
    pub suggestion: Suggestion,
}

/// An accepted flag submission.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureView {
    pub attacker: String,
    pub victim: String,
    pub service: String,
    pub store: u8,
    pub tick_planted: Tick,
    pub tick_submitted: Tick,
    pub submitted_at: DateTime<Utc>,
    /// A suggested match: submitted within the report's own window (not only the margin).
    pub suggested: bool,
    /// The capture as a defence finding links it (`finding.link` of a ruling under the
    /// rule-based preset).
    pub link: LinkedEvent,
}

/// Most captures shown beside one report: enough to judge by, bounded however busy the drill.
pub const MAX_CAPTURES: u64 = 200;

/// The service's tick verdict changed.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictChange {
    pub tick: Tick,
    /// When the tick's first checker result was recorded.
    pub at: DateTime<Utc>,
    /// `None`: no earlier tick was recorded.
    pub from: Option<Verdict>,
    pub to: Verdict,
    /// The public message of the action that decided the verdict.
    pub message: String,
    /// A suggested match: the failure the suggestion cites.
    pub suggested: bool,
}

/// How well the records back a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strength {
    /// Captures of the very flags the report is about: objective evidence.
    Strong,
    /// No capture, but the service failed in the window.
    Weak,
    /// Nothing recorded that backs the report.
    None,
}

/// The platform's suggestion to the judge, with why.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    pub strength: Strength,
    pub summary: String,
}

fn widen(t: DateTime<Utc>, ticks: u32, tick: std::time::Duration, later: bool) -> DateTime<Utc> {
    let d = chrono::Duration::from_std(tick * ticks).unwrap_or(chrono::Duration::zero());
    if later { t + d } else { t - d }
}

/// Gathers what the platform recorded around `r`'s window.
pub(crate) async fn context(state: &ReportsState, r: &ReportRecord) -> Result<Context, ReportsError> {
    let s = state.scenario();
    let c = &r.report;
    let tick = s.drill.tick;
    let margin = state.settings().match_margin_ticks;
    let searched_from = widen(c.window.from, margin, tick, false);
    let searched_to = widen(c.window.to, margin, tick, true);
    // Whose service and flags matter, and whose captures.
    let (owner, attacker): (TeamId, Option<TeamId>) = match c.kind {
        ReportKind::Attack => (c.target_team.unwrap_or(r.team), Some(r.team)),
        ReportKind::Defence => (r.team, c.traced_team),
    };
    let store = state.store();
    let (found, captures_truncated) =
        store.captures_in_window(attacker, owner, c.service, searched_from, searched_to, MAX_CAPTURES).await?;
    let captures: Vec<CaptureView> = found
        .into_iter()
        .map(|x| {
            let x = x.submission;
            CaptureView {
                attacker: team_slug(s, x.capture.attacker),
                victim: team_slug(s, x.capture.victim),
                service: service_slug(s, x.capture.service),
                store: x.capture.store.0,
                tick_planted: x.capture.planted,
                tick_submitted: x.capture.submitted,
                submitted_at: x.submitted_at,
                suggested: c.window.from <= x.submitted_at && x.submitted_at <= c.window.to,
                link: LinkedEvent::Capture(x.capture),
            }
        })
        .collect();

    // One extra tick before the span, to know what the first verdict changed from.
    let results =
        store.check_results_between(owner, c.service, widen(searched_from, 1, tick, false), searched_to).await?;
    let mut by_tick: BTreeMap<Tick, Vec<&gongfang_core::CheckResult>> = BTreeMap::new();
    for x in &results {
        by_tick.entry(x.tick).or_default().push(x);
    }
    let mut verdict_changes = Vec::new();
    let mut previous: Option<Verdict> = None;
    for (tick, list) in &by_tick {
        let (verdict, message) = tick_verdict(list.iter().map(|x| (x.verdict, x.message.as_str())));
        let at = list.iter().map(|x| x.recorded_at).min().unwrap_or(searched_from);
        let changed = previous.is_none_or(|p| p != verdict) && !(previous.is_none() && verdict == Verdict::Ok);
        if changed && at >= searched_from {
            verdict_changes.push(VerdictChange {
                tick: *tick,
                at,
                from: previous,
                to: verdict,
                message,
                suggested: false,
            });
        }
        previous = Some(verdict);
    }

    let (mut logs, mut logs_error, mut logs_kept_from, mut logs_notice) = (Vec::new(), None, None, None);
    if let (Some(team), Some(service)) = (s.team(owner), s.service(c.service)) {
        match state.inner.logs.logs(team, service, searched_from, searched_to, state.settings().max_log_lines).await {
            Ok(window) => {
                logs = window.lines;
                logs.truncate(state.settings().max_log_lines);
                (logs_kept_from, logs_notice) = (window.kept_from, window.notice);
            }
            Err(e) => logs_error = Some(e),
        }
    }

    let suggestion = suggest(state, r, owner, &captures, &verdict_changes);
    if suggestion.strength == Strength::Weak
        && let Some(fail) = verdict_changes.iter_mut().find(|v| v.to.is_teams_fault())
    {
        fail.suggested = true;
    }
    Ok(Context {
        searched_from,
        searched_to,
        captures,
        captures_truncated,
        verdict_changes,
        logs,
        logs_error,
        logs_kept_from,
        logs_notice,
        suggestion,
    })
}

fn suggest(
    state: &ReportsState,
    r: &ReportRecord,
    owner: TeamId,
    captures: &[CaptureView],
    changes: &[VerdictChange],
) -> Suggestion {
    let s = state.scenario();
    let c = &r.report;
    let (owner_slug, service) = (team_slug(s, owner), service_slug(s, c.service));
    let by = match (c.kind, c.traced_team) {
        (ReportKind::Attack, _) => format!(" by {}", team_slug(s, r.team)),
        (ReportKind::Defence, Some(t)) => format!(" by {}", team_slug(s, t)),
        (ReportKind::Defence, None) => String::new(),
    };
    if let (Some(first), Some(last)) = (captures.first(), captures.last()) {
        let n = captures.len();
        let meaning = match c.kind {
            ReportKind::Attack => "the capture backs the reported break-in",
            ReportKind::Defence => "an attack did happen; check that the report detected or blocked it",
        };
        return Suggestion {
            strength: Strength::Strong,
            summary: format!(
                "{n} capture{} of {owner_slug}'s {service} flags{by} between {} and {}: {meaning}",
                if n == 1 { "" } else { "s" },
                first.submitted_at.to_rfc3339(),
                last.submitted_at.to_rfc3339(),
            ),
        };
    }
    if let Some(fail) = changes.iter().find(|v| v.to.is_teams_fault()) {
        return Suggestion {
            strength: Strength::Weak,
            summary: format!(
                "no capture{by} recorded, but {owner_slug}'s {service} went {} in tick {} ({})",
                fail.to.as_str(),
                fail.tick,
                fail.at.to_rfc3339()
            ),
        };
    }
    Suggestion {
        strength: Strength::None,
        summary: format!(
            "nothing recorded backs this report: no capture of {owner_slug}'s {service} flags{by} and no service failure around the window"
        ),
    }
}
