//! The JSON shapes of reports: what the filing team sees (rulings without the judge's name,
//! no judges' scores) and what a judge sees (everything, except, while a report waits for its
//! second blind score, another judge's score).

use chrono::{DateTime, Utc};
use gongfang_core::report::{Finding, ReasonCode, ReportStatus};
use gongfang_core::report::{RulingStage, appeal_deadline};
use gongfang_core::scenario::Scenario;
use gongfang_core::scoring::{ReportTally, ScoredTeam};
use gongfang_core::{ServiceId, TeamId};
use gongfang_store::reports::{EvidenceInfo, ReportRecord, Ruling, Score};
use serde::Serialize;

use gongfang_store::Store;

use crate::ReportsError;

/// What ruled reports are worth now: the judges' points, or under the rule-based preset what
/// each finding scores by the scenario's tables, given every ruling so far (a later ruling of
/// an earlier-stated finding can change it).
#[derive(Debug)]
pub(crate) enum Worth {
    Judged,
    Tables(Box<ReportTally>),
}

impl Worth {
    /// The judges' points, or every stored ruling scored by the preset's tables.
    pub(crate) async fn read(store: &Store, s: &Scenario) -> Result<Worth, ReportsError> {
        if s.reports.rule_preset().is_none() {
            return Ok(Worth::Judged);
        }
        let teams: Vec<ScoredTeam> = s.teams.iter().map(ScoredTeam::from).collect();
        let mut tally = ReportTally::for_drill(&s.reports, &teams);
        let mut awards = store.report_awards().await?;
        awards.sort_by_key(|a| (a.tick, a.report, a.stage));
        tally
            .apply_all(&awards)
            .map_err(|e| ReportsError::Inconsistent(format!("the stored rulings cannot be scored: {e}")))?;
        Ok(Worth::Tables(Box::new(tally)))
    }

    /// What a drill's report is worth now (0 until ruled valid).
    pub(crate) fn of(&self, r: &ReportRecord) -> u32 {
        match self {
            Worth::Judged => r.points(),
            Worth::Tables(tally) => tally.report_points(r.id).unwrap_or(0),
        }
    }
}

/// Who a view is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    Team,
    /// A judge, by account id: blind scores are shown to the judge who made them only.
    Judge(i64),
}

/// A report as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReportView {
    pub id: i64,
    /// The filing team's slug.
    pub team: String,
    pub kind: &'static str,
    pub target_team: Option<String>,
    pub service: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub technique: String,
    pub attack_id: Option<String>,
    pub description: String,
    pub evidence_text: String,
    pub traced_address: Option<String>,
    pub traced_team: Option<String>,
    pub filed_at: DateTime<Utc>,
    /// `pending`, `disputed` (judges only; the team sees `pending`), `ruled`, `appealed` or
    /// `final` (a ruling whose appeal window has closed is final).
    pub status: &'static str,
    /// What the report is worth now.
    pub points: u32,
    pub evidence: Vec<EvidenceView>,
    pub rulings: Vec<RulingView>,
    pub appeal: Option<AppealView>,
    /// Until when the first ruling may be appealed (once ruled).
    pub appeal_deadline: Option<DateTime<Utc>>,
    /// Whether the filing team may appeal now.
    pub can_appeal: bool,
    /// For judges, in a two-judge drill: the blind scores this judge may see (while the report
    /// is pending, only their own; once both have scored, both).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<ScoreView>,
    /// For judges: how many other judges' scores are hidden until the report has both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden_scores: Option<usize>,
}

/// A judge's blind score.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreView {
    pub judge: String,
    pub valid: bool,
    pub points: u32,
    pub reason: String,
    pub reason_codes: Vec<ReasonCode>,
    pub scored_at: DateTime<Utc>,
    /// Under the rule-based preset, what this judge found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<Finding>,
}

/// An evidence file, without its bytes.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceView {
    pub id: i64,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    /// Where to download it (same authentication as the report).
    pub url: String,
    /// For judges: where the workbench shows it (inline only if its bytes are a PNG or JPEG).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_url: Option<String>,
}

/// A ruling.
#[derive(Debug, Clone, Serialize)]
pub struct RulingView {
    pub stage: RulingStage,
    pub valid: bool,
    pub points: u32,
    pub reason: String,
    /// The reason codes (`duplicate`, `out-of-scope`, …), each once; empty for older rulings.
    pub reason_codes: Vec<ReasonCode>,
    pub ruled_at: DateTime<Utc>,
    /// Under the rule-based preset, what was found: the preset's tables score it, given every
    /// other finding (the board and the export show the points).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<Finding>,
    /// The judge; shown to judges only, so the panel rules without pressure from teams.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge: Option<String>,
}

/// The team's appeal.
#[derive(Debug, Clone, Serialize)]
pub struct AppealView {
    pub reason: String,
    pub at: DateTime<Utc>,
}

pub(crate) fn team_slug(s: &Scenario, id: TeamId) -> String {
    s.team(id).map_or_else(|| format!("team-{}", id.0), |t| t.slug.clone())
}

pub(crate) fn service_slug(s: &Scenario, id: ServiceId) -> String {
    s.service(id).map_or_else(|| format!("service-{}", id.0), |t| t.slug.clone())
}

pub(crate) fn report_view(
    s: &Scenario,
    r: &ReportRecord,
    worth: &Worth,
    now: DateTime<Utc>,
    audience: Audience,
) -> ReportView {
    let deadline = r.ruling(RulingStage::First).map(|f| appeal_deadline(f.ruled_at, &s.reports));
    let window_open = deadline.is_some_and(|d| now <= d);
    let status = match (r.status, audience) {
        (ReportStatus::Ruled, _) if !window_open => "final",
        // How the judges' panel works is theirs: a team's report waits for its ruling.
        (ReportStatus::Disputed, Audience::Team) => ReportStatus::Pending.as_str(),
        (other, _) => other.as_str(),
    };
    let c = &r.report;
    let points = worth.of(r);
    let mut rulings: Vec<RulingView> = r.rulings.iter().map(|x| ruling_view(x, audience)).collect();
    // The ruling in force is worth what the report is; under the tables that is their score.
    if let (Worth::Tables(_), Some(last)) = (worth, rulings.last_mut()) {
        last.points = points;
    }
    ReportView {
        id: r.id,
        team: team_slug(s, r.team),
        kind: c.kind.as_str(),
        target_team: c.target_team.map(|t| team_slug(s, t)),
        service: service_slug(s, c.service),
        from: c.window.from,
        to: c.window.to,
        technique: c.technique.clone(),
        attack_id: c.attack_id.as_ref().map(|t| t.as_str().to_owned()),
        description: c.description.clone(),
        evidence_text: c.evidence.clone(),
        traced_address: c.traced_address.map(|a| a.to_string()),
        traced_team: c.traced_team.map(|t| team_slug(s, t)),
        filed_at: r.filed_at,
        status,
        points,
        evidence: r.evidence.iter().map(|e| evidence_view(r.id, e, audience)).collect(),
        rulings,
        appeal: r.appeal.as_ref().map(|a| AppealView { reason: a.reason.clone(), at: a.at }),
        appeal_deadline: deadline,
        can_appeal: r.status == ReportStatus::Ruled && window_open,
        scores: r.scores.iter().filter(|x| score_visible(r, x, audience)).map(score_view).collect(),
        hidden_scores: match audience {
            Audience::Team => None,
            Audience::Judge(_) => Some(r.scores.iter().filter(|x| !score_visible(r, x, audience)).count()),
        },
    }
}

/// Teams never see scores; a judge sees their own, and every score once the report is past
/// its blind scoring.
fn score_visible(r: &ReportRecord, score: &Score, audience: Audience) -> bool {
    match audience {
        Audience::Team => false,
        Audience::Judge(id) => r.status != ReportStatus::Pending || score.judge_id == id,
    }
}

fn score_view(s: &Score) -> ScoreView {
    ScoreView {
        judge: s.judge.clone(),
        valid: s.decision.valid,
        points: s.decision.points,
        reason: s.decision.reason.clone(),
        reason_codes: s.decision.reason_codes.clone(),
        scored_at: s.scored_at,
        finding: s.decision.finding.clone(),
    }
}

fn evidence_view(report: i64, e: &EvidenceInfo, audience: Audience) -> EvidenceView {
    EvidenceView {
        id: e.id,
        file_name: e.file_name.clone(),
        content_type: e.content_type.clone(),
        size: e.size,
        sha256: e.sha256.clone(),
        url: format!("/api/reports/{report}/evidence/{}", e.id),
        view_url: matches!(audience, Audience::Judge(_))
            .then(|| format!("/api/judge/reports/{report}/evidence/{}/view", e.id)),
    }
}

fn ruling_view(r: &Ruling, audience: Audience) -> RulingView {
    RulingView {
        stage: r.stage,
        valid: r.decision.valid,
        points: r.decision.points,
        reason: r.decision.reason.clone(),
        reason_codes: {
            let mut codes = r.decision.reason_codes.clone();
            codes.sort();
            codes.dedup();
            codes
        },
        ruled_at: r.ruled_at,
        finding: r.decision.finding.clone(),
        judge: matches!(audience, Audience::Judge(_)).then(|| r.judge.clone()),
    }
}
