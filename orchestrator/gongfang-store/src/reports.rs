//! Attack and defence reports: filing with evidence files, the judges' queue, rulings and the
//! single appeal, and the records judges compare a report with (captures, checker results).
//!
//! Evidence files are written while they stream in, one chunk of at most
//! [`EVIDENCE_CHUNK`] bytes per short transaction, as an *upload* that belongs to no report yet;
//! filing then links the uploads to the new report row in one short transaction. So however
//! large the evidence, no transaction holds the database's write lock (which flag submissions
//! wait on, on SQLite) for longer than one chunk takes. The per-team filing limits (reports
//! and evidence bytes over the drill) are checked in that filing transaction, with the team's
//! row locked on PostgreSQL (SQLite's write lock serialises filings anyway).
//!
//! Every change of a report's state is one transaction with a conditional update on its
//! status (and a unique (report, stage) key on rulings), so two judges racing on one report
//! cannot both rule it. In a two-judge drill a pending report collects blind scores first (one
//! per judge, a unique key decides); the second either agrees with the first and rules the
//! report, or disputes it for a third judge. Each score, ruling and appeal is written to the
//! audit log in the same transaction: there is no ruling without its audit line.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use gongfang_core::report::Finding;
use gongfang_core::report::ReportStatus;
use gongfang_core::report::{
    CheckedReport, Decision, PanelOutcome, ReasonCode, ReportKind, RulingStage, TechniqueId, TimeWindow, check_appeal,
    check_decision, combine_scores,
};
use gongfang_core::scenario::{JudgePanel, ReportRules};
use gongfang_core::scoring::{Award, LinkedEvent, RuledFinding};
use gongfang_core::{AccountRole, CheckResult, ServiceId, TeamId, Tick};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Select,
};
use sha2::{Digest, Sha256};

use crate::entity::{audit_log, check_results, drill_state, submissions, teams, ticks};
use crate::error::{Result, StoreError, corrupt};
use crate::ops::Account;
use crate::rows::{check_from_row, de, id32, submission_from_row, tick_i32};
use crate::{Store, StoredSubmission};

/// Entities of the report tables (`m20261122_000001_reports`). Private to this module.
#[allow(missing_debug_implementations)]
mod entity {
    pub mod reports {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "reports")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub team: i32,
            pub kind: String,
            pub target_team: Option<i32>,
            pub service: i32,
            pub window_from: DateTimeUtc,
            pub window_to: DateTimeUtc,
            pub technique: String,
            pub attack_id: Option<String>,
            pub description: String,
            pub evidence_text: String,
            pub traced_address: Option<String>,
            pub traced_team: Option<i32>,
            pub filed_at: DateTimeUtc,
            pub status: String,
            pub appeal_reason: Option<String>,
            pub appealed_at: Option<DateTimeUtc>,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod report_evidence {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "report_evidence")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub report: i32,
            pub file_name: String,
            pub content_type: String,
            pub size: i64,
            pub sha256: String,
            pub data: Vec<u8>,
            /// The upload holding the bytes in chunks; `None` for evidence filed before
            /// chunks existed, whose bytes are in `data`.
            pub upload: Option<i32>,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod evidence_uploads {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "evidence_uploads")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub team: i32,
            pub started_at: DateTimeUtc,
            pub size: i64,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod report_evidence_chunks {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "report_evidence_chunks")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub upload: i32,
            pub seq: i32,
            pub data: Vec<u8>,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod report_rulings {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "report_rulings")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub report: i32,
            pub stage: String,
            pub judge: String,
            pub judge_account: i32,
            pub valid: bool,
            pub points: i32,
            pub reason: String,
            pub reason_codes: String,
            pub tick: i32,
            pub ruled_at: DateTimeUtc,
            /// The finding as JSON, under the rule-based preset (`m20261221_000001`).
            pub finding: Option<String>,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod report_scores {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "report_scores")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub report: i32,
            pub judge: String,
            pub judge_account: i32,
            pub valid: bool,
            pub points: i32,
            pub reason: String,
            pub reason_codes: String,
            pub scored_at: DateTimeUtc,
            /// The finding as JSON, under the rule-based preset (`m20261221_000001`).
            pub finding: Option<String>,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entity::{evidence_uploads, report_evidence, report_evidence_chunks, report_rulings, report_scores, reports};

/// What the judges' queue holds: reports waiting for a score or ruling, a dispute waiting for
/// its third judge, and appeals.
const QUEUED: [ReportStatus; 3] = [ReportStatus::Pending, ReportStatus::Disputed, ReportStatus::Appealed];

/// Most bytes of evidence stored in one chunk row, and so written by one transaction.
pub const EVIDENCE_CHUNK: usize = 1 << 20;

/// An evidence file written to the store while it streamed in
/// ([`Store::begin_evidence_upload`], [`Store::write_evidence_chunk`]), waiting to be filed
/// with its report ([`Store::file_staged_report`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedEvidence {
    /// The upload holding the bytes.
    pub upload: i64,
    /// The file's name as uploaded, without any folder.
    pub file_name: String,
    pub content_type: String,
    /// Bytes written.
    pub size: u64,
    /// Hex SHA-256 of the bytes, computed as they streamed in.
    pub sha256: String,
}

/// What a team has filed so far: what the per-team filing limits are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FilingUsage {
    /// Reports filed.
    pub reports: u64,
    /// Bytes of evidence filed with them.
    pub evidence_bytes: u64,
    /// Bytes of uploads written but not (yet) filed with a report.
    pub staged_bytes: u64,
}

/// One page of reports, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPage {
    pub reports: Vec<ReportRecord>,
    /// The id to ask for the next page after; `None` on the last page.
    pub next: Option<i64>,
}

/// Which reports a judge lists: any of `statuses` (all when empty), of one filing team, of one
/// kind, filed within a span.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilter {
    pub statuses: Vec<ReportStatus>,
    pub team: Option<TeamId>,
    pub kind: Option<ReportKind>,
    /// Filed at or after.
    pub filed_from: Option<DateTime<Utc>>,
    /// Filed before.
    pub filed_until: Option<DateTime<Utc>>,
}

/// An evidence file as a team uploads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvidence {
    /// The file's name as uploaded, without any folder.
    pub file_name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// What is known about a stored evidence file, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceInfo {
    pub id: i64,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 of the bytes, computed when stored.
    pub sha256: String,
}

/// A stored evidence file with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub report: i64,
    pub info: EvidenceInfo,
    pub data: Vec<u8>,
}

/// A judge's ruling as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruling {
    pub stage: RulingStage,
    /// The judge's account name and id.
    pub judge: String,
    pub judge_id: i64,
    pub decision: Decision,
    /// The tick during which it was made (it counts in scores from that tick on).
    pub tick: Tick,
    pub ruled_at: DateTime<Utc>,
}

/// One judge's blind score of a report, in a drill where two judges score each report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Score {
    /// The judge's account name and id.
    pub judge: String,
    pub judge_id: i64,
    pub decision: Decision,
    pub scored_at: DateTime<Utc>,
}

/// A team's appeal of the first ruling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appeal {
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// A stored report with its evidence list, rulings and appeal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRecord {
    pub id: i64,
    /// The filing team.
    pub team: TeamId,
    pub report: CheckedReport,
    pub filed_at: DateTime<Utc>,
    pub status: ReportStatus,
    pub evidence: Vec<EvidenceInfo>,
    /// The first ruling, then the appeal's, as made.
    pub rulings: Vec<Ruling>,
    pub appeal: Option<Appeal>,
    /// The judges' blind scores, in the order they were made (two-judge drills only).
    pub scores: Vec<Score>,
}

impl ReportRecord {
    pub fn ruling(&self, stage: RulingStage) -> Option<&Ruling> {
        self.rulings.iter().find(|r| r.stage == stage)
    }

    /// The ruling in force: the appeal's if there is one, else the first.
    pub fn latest_ruling(&self) -> Option<&Ruling> {
        self.ruling(RulingStage::Appeal).or_else(|| self.ruling(RulingStage::First))
    }

    /// What the report is worth now (0 until ruled valid).
    pub fn points(&self) -> u32 {
        self.latest_ruling().map_or(0, |r| r.decision.points)
    }

    /// Whether this judge scored the report blind.
    pub fn scored_by(&self, judge: i64) -> bool {
        self.scores.iter().any(|s| s.judge_id == judge)
    }
}

fn report_from_rows(
    r: reports::Model,
    evidence: Vec<report_evidence::Model>,
    rulings: Vec<report_rulings::Model>,
    scores: Vec<report_scores::Model>,
) -> Result<ReportRecord> {
    let key = r.id;
    let bad = |detail: String| corrupt("reports", key, detail);
    let kind = ReportKind::from_name(&r.kind).ok_or_else(|| bad(format!("unknown kind `{}`", r.kind)))?;
    let status = ReportStatus::from_name(&r.status).ok_or_else(|| bad(format!("unknown status `{}`", r.status)))?;
    let attack_id =
        r.attack_id.as_deref().map(|id| TechniqueId::parse(id).map_err(|e| bad(e.to_string()))).transpose()?;
    let traced_address = r
        .traced_address
        .as_deref()
        .map(|a| a.parse::<IpAddr>().map_err(|_| bad(format!("bad traced address `{a}`"))))
        .transpose()?;
    let service =
        u8::try_from(r.service).map(ServiceId).map_err(|_| bad(format!("service {} out of range", r.service)))?;
    let report = CheckedReport {
        kind,
        target_team: r.target_team.map(|t| de("reports", key, "team", t).map(TeamId)).transpose()?,
        service,
        window: TimeWindow { from: r.window_from, to: r.window_to },
        technique: r.technique,
        attack_id,
        description: r.description,
        evidence: r.evidence_text,
        traced_address,
        traced_team: r.traced_team.map(|t| de("reports", key, "team", t).map(TeamId)).transpose()?,
    };
    let evidence = evidence.into_iter().map(evidence_info).collect::<Result<Vec<_>>>()?;
    let mut rulings = rulings.into_iter().map(ruling_from_row).collect::<Result<Vec<_>>>()?;
    rulings.sort_by_key(|r| r.stage);
    let mut scores = scores.into_iter().map(score_from_row).collect::<Result<Vec<_>>>()?;
    scores.sort_by_key(|s| s.scored_at);
    let appeal = match (r.appeal_reason, r.appealed_at) {
        (Some(reason), Some(at)) => Some(Appeal { reason, at }),
        _ => None,
    };
    Ok(ReportRecord {
        id: i64::from(key),
        team: TeamId(de("reports", key, "team", r.team)?),
        report,
        filed_at: r.filed_at,
        status,
        evidence,
        rulings,
        appeal,
        scores,
    })
}

fn evidence_info(e: report_evidence::Model) -> Result<EvidenceInfo> {
    Ok(EvidenceInfo {
        id: i64::from(e.id),
        file_name: e.file_name,
        content_type: e.content_type,
        size: u64::try_from(e.size).map_err(|_| corrupt("report_evidence", e.id, "negative size"))?,
        sha256: e.sha256,
    })
}

fn ruling_from_row(r: report_rulings::Model) -> Result<Ruling> {
    let bad = |detail: String| corrupt("report_rulings", r.id, detail);
    Ok(Ruling {
        stage: RulingStage::from_name(&r.stage).ok_or_else(|| bad(format!("unknown stage `{}`", r.stage)))?,
        judge: r.judge.clone(),
        judge_id: i64::from(r.judge_account),
        decision: decision_from_row(r.valid, r.points, &r.reason, &r.reason_codes, r.finding.as_deref())
            .map_err(bad)?,
        tick: Tick(u32::try_from(r.tick).map_err(|_| bad("negative tick".into()))?),
        ruled_at: r.ruled_at,
    })
}

fn score_from_row(r: report_scores::Model) -> Result<Score> {
    let bad = |detail: String| corrupt("report_scores", r.id, detail);
    Ok(Score {
        judge: r.judge.clone(),
        judge_id: i64::from(r.judge_account),
        decision: decision_from_row(r.valid, r.points, &r.reason, &r.reason_codes, r.finding.as_deref())
            .map_err(bad)?,
        scored_at: r.scored_at,
    })
}

/// A ruling's or a score's decision from its row's columns.
fn decision_from_row(
    valid: bool,
    points: i32,
    reason: &str,
    codes: &str,
    finding: Option<&str>,
) -> std::result::Result<Decision, String> {
    Ok(Decision {
        valid,
        points: u32::try_from(points).map_err(|_| "negative points".to_owned())?,
        reason: reason.to_owned(),
        reason_codes: reason_codes_from_row(codes)?,
        finding: finding.map(serde_json::from_str).transpose().map_err(|e| format!("unreadable finding: {e}"))?,
    })
}

/// An audit entry with a decision's finding added, when it has one.
trait WithFinding {
    fn with_finding(self, decision: &Decision) -> Self;
}

impl WithFinding for serde_json::Value {
    fn with_finding(mut self, decision: &Decision) -> Self {
        if let (Some(f), Some(map)) = (&decision.finding, self.as_object_mut()) {
            map.insert("finding".into(), serde_json::to_value(f).unwrap_or_default());
        }
        self
    }
}

/// Checks what a defence finding answers against what the drill recorded: an attack report on
/// the defending team (ruled or not yet), or an accepted capture of one of its flags.
async fn check_link(db: &impl ConnectionTrait, report: &ReportRecord, decision: &Decision) -> Result<()> {
    let Some(Finding::Defence { link, .. }) = &decision.finding else { return Ok(()) };
    let bad = |why: String| Err(StoreError::BadLink { report: report.id, why });
    match *link {
        LinkedEvent::Attack { report: linked } => {
            let Some(attack) = load(db, id32(linked)).await? else {
                return bad(format!("there is no report {linked}; link a ruled attack report or a capture"));
            };
            if attack.report.kind != ReportKind::Attack {
                return bad(format!("report {linked} is a defence report; link an attack report"));
            }
            if attack.report.target_team != Some(report.team) {
                return bad(format!("attack report {linked} is about another team's systems, not the filing team's"));
            }
        }
        LinkedEvent::Capture(c) => {
            if c.victim != report.team {
                return bad(format!("the capture is of team {}'s flag, not the filing team's", c.victim));
            }
            let found = submissions::Entity::find()
                .filter(submissions::Column::Attacker.eq(i32::from(c.attacker.0)))
                .filter(submissions::Column::Victim.eq(i32::from(c.victim.0)))
                .filter(submissions::Column::Service.eq(i32::from(c.service.0)))
                .filter(submissions::Column::Store.eq(i32::from(c.store.0)))
                .filter(submissions::Column::TickPlanted.eq(tick_i32(c.planted)))
                .filter(submissions::Column::TickSubmitted.eq(tick_i32(c.submitted)))
                .count(db)
                .await?;
            if found == 0 {
                return bad(format!(
                    "no capture of this team's flag by team {} on service {} (store {}, planted in tick {}, submitted in tick {}) was recorded",
                    c.attacker, c.service, c.store.0, c.planted.0, c.submitted.0
                ));
            }
        }
    }
    Ok(())
}

/// A decision's finding as its row stores it.
fn finding_row(decision: &Decision) -> Option<String> {
    decision.finding.as_ref().map(|f| serde_json::to_value(f).unwrap_or_default().to_string())
}

/// The codes a ruling row stores, comma-separated.
fn reason_codes_from_row(raw: &str) -> std::result::Result<Vec<ReasonCode>, String> {
    raw.split(',')
        .filter(|w| !w.is_empty())
        .map(|w| ReasonCode::from_name(w).ok_or_else(|| format!("unknown reason code `{w}`")))
        .collect()
}

/// A decision's codes' names, each once, in the list's order: as the audit log lists them.
fn reason_code_names(codes: &[ReasonCode]) -> Vec<String> {
    reason_codes_row(codes).split(',').filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

/// A decision's codes, each once, in the list's order.
fn reason_codes_row(codes: &[ReasonCode]) -> String {
    let mut codes = codes.to_vec();
    codes.sort();
    codes.dedup();
    codes.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")
}

fn seq_u32(seq: usize) -> u32 {
    u32::try_from(seq).unwrap_or(u32::MAX)
}

/// What `team` has filed, and what its unfiled uploads hold. Sizes are summed here, not in SQL:
/// the rows are few (the limits bound them) and SUM's type differs between the databases.
async fn usage(db: &impl ConnectionTrait, team: TeamId) -> Result<FilingUsage> {
    let team_reports = Query::select()
        .column(reports::Column::Id)
        .from(reports::Entity)
        .and_where(reports::Column::Team.eq(i32::from(team.0)))
        .to_owned();
    let reports = reports::Entity::find().filter(reports::Column::Team.eq(i32::from(team.0))).count(db).await?;
    let filed: Vec<i64> = report_evidence::Entity::find()
        .select_only()
        .column(report_evidence::Column::Size)
        .filter(report_evidence::Column::Report.in_subquery(team_reports))
        .into_tuple()
        .all(db)
        .await?;
    let staged: Vec<i64> = evidence_uploads::Entity::find()
        .select_only()
        .column(evidence_uploads::Column::Size)
        .filter(evidence_uploads::Column::Team.eq(i32::from(team.0)))
        .filter(
            evidence_uploads::Column::Id.not_in_subquery(
                Query::select()
                    .column(report_evidence::Column::Upload)
                    .from(report_evidence::Entity)
                    .and_where(report_evidence::Column::Upload.is_not_null())
                    .to_owned(),
            ),
        )
        .into_tuple()
        .all(db)
        .await?;
    let sum = |sizes: Vec<i64>| sizes.into_iter().map(|s| u64::try_from(s).unwrap_or(0)).sum();
    Ok(FilingUsage { reports, evidence_bytes: sum(filed), staged_bytes: sum(staged) })
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Stores a checked report and its evidence files, without the scenario's per-team filing
    /// limits: for tools and tests. Each file is written in chunks first, then the report row
    /// and its links in one short transaction.
    #[tracing::instrument(skip_all, fields(team = %team, kind = %report.kind, files = evidence.len()))]
    pub async fn file_report(
        &self,
        team: TeamId,
        report: &CheckedReport,
        evidence: &[NewEvidence],
        at: DateTime<Utc>,
    ) -> Result<ReportRecord> {
        let mut staged = Vec::with_capacity(evidence.len());
        let written = async {
            for file in evidence {
                let upload = self.begin_evidence_upload(team, at).await?;
                staged.push(StagedEvidence {
                    upload,
                    file_name: file.file_name.clone(),
                    content_type: file.content_type.clone(),
                    size: file.data.len() as u64,
                    sha256: sha256_hex(&file.data),
                });
                for (seq, chunk) in file.data.chunks(EVIDENCE_CHUNK).enumerate() {
                    self.write_evidence_chunk(upload, seq_u32(seq), chunk.to_vec()).await?;
                }
            }
            self.commit_filing(team, report, &staged, None, at).await
        }
        .await;
        if written.is_err() {
            self.discard_evidence_uploads(&staged.iter().map(|s| s.upload).collect::<Vec<_>>()).await?;
        }
        written
    }

    /// Files a checked report with evidence already written as uploads, within the scenario's
    /// per-team limits (`max_reports_per_team`, `max_evidence_per_team`): one short
    /// transaction. A filing over a limit stores nothing (the caller discards its uploads).
    #[tracing::instrument(skip_all, fields(team = %team, kind = %report.kind, files = evidence.len()))]
    pub async fn file_staged_report(
        &self,
        team: TeamId,
        report: &CheckedReport,
        evidence: &[StagedEvidence],
        rules: &ReportRules,
        at: DateTime<Utc>,
    ) -> Result<ReportRecord> {
        self.commit_filing(team, report, evidence, Some(rules), at).await
    }

    async fn commit_filing(
        &self,
        team: TeamId,
        report: &CheckedReport,
        evidence: &[StagedEvidence],
        limits: Option<&ReportRules>,
        at: DateTime<Utc>,
    ) -> Result<ReportRecord> {
        let txn = self.write_txn().await?;
        if let Some(rules) = limits {
            // Two filings of one team racing on PostgreSQL: the second waits here for the
            // first to commit, then counts its report. (SQLite has no row locks, and needs
            // none: its write transactions run one at a time.)
            teams::Entity::find_by_id(i32::from(team.0)).lock_exclusive().one(&txn).await?;
            let used = usage(&txn, team).await?;
            if used.reports >= u64::from(rules.max_reports_per_team) {
                return Err(StoreError::ReportLimit { team: team.0, limit: rules.max_reports_per_team });
            }
            let wanted: u64 = evidence.iter().map(|e| e.size).sum();
            let left = rules.max_evidence_bytes_per_team.saturating_sub(used.evidence_bytes);
            if wanted > left {
                return Err(StoreError::EvidenceBudget {
                    team: team.0,
                    limit: rules.max_evidence_bytes_per_team,
                    left,
                    wanted,
                });
            }
        }
        let row = reports::ActiveModel {
            team: Set(i32::from(team.0)),
            kind: Set(report.kind.as_str().to_owned()),
            target_team: Set(report.target_team.map(|t| i32::from(t.0))),
            service: Set(i32::from(report.service.0)),
            window_from: Set(report.window.from),
            window_to: Set(report.window.to),
            technique: Set(report.technique.clone()),
            attack_id: Set(report.attack_id.as_ref().map(|t| t.as_str().to_owned())),
            description: Set(report.description.clone()),
            evidence_text: Set(report.evidence.clone()),
            traced_address: Set(report.traced_address.map(|a| a.to_string())),
            traced_team: Set(report.traced_team.map(|t| i32::from(t.0))),
            filed_at: Set(at),
            status: Set(ReportStatus::Pending.as_str().to_owned()),
            appeal_reason: Set(None),
            appealed_at: Set(None),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        for file in evidence {
            // Only an upload of this team that no report holds yet can be filed.
            let upload = evidence_uploads::Entity::find_by_id(id32(file.upload))
                .filter(evidence_uploads::Column::Team.eq(i32::from(team.0)))
                .one(&txn)
                .await?
                .ok_or_else(|| corrupt("evidence_uploads", id32(file.upload), "not an upload of the filing team"))?;
            if u64::try_from(upload.size).ok() != Some(file.size) {
                return Err(corrupt(
                    "evidence_uploads",
                    upload.id,
                    format!("holds {} bytes, not {}", upload.size, file.size),
                ));
            }
            report_evidence::ActiveModel {
                report: Set(row.id),
                file_name: Set(file.file_name.clone()),
                content_type: Set(file.content_type.clone()),
                size: Set(upload.size),
                sha256: Set(file.sha256.clone()),
                data: Set(Vec::new()),
                upload: Set(Some(upload.id)),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
        }
        let record = load(&txn, row.id).await?.ok_or(StoreError::UnknownReport(i64::from(row.id)))?;
        txn.commit().await?;
        tracing::info!(report = record.id, "report filed");
        Ok(record)
    }

    /// Starts an evidence upload of `team`: its bytes follow through
    /// [`Store::write_evidence_chunk`].
    pub async fn begin_evidence_upload(&self, team: TeamId, at: DateTime<Utc>) -> Result<i64> {
        let row = evidence_uploads::ActiveModel {
            team: Set(i32::from(team.0)),
            started_at: Set(at),
            size: Set(0),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(i64::from(row.id))
    }

    /// Writes the `seq`th chunk (from 0, at most [`EVIDENCE_CHUNK`] bytes) of an upload, in a
    /// transaction of its own.
    pub async fn write_evidence_chunk(&self, upload: i64, seq: u32, data: Vec<u8>) -> Result<()> {
        let len = i64::try_from(data.len()).unwrap_or(i64::MAX);
        let txn = self.write_txn().await?;
        report_evidence_chunks::ActiveModel {
            upload: Set(id32(upload)),
            seq: Set(i32::try_from(seq).unwrap_or(i32::MAX)),
            data: Set(data),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        evidence_uploads::Entity::update_many()
            .col_expr(evidence_uploads::Column::Size, Expr::col(evidence_uploads::Column::Size).add(len))
            .filter(evidence_uploads::Column::Id.eq(id32(upload)))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Deletes uploads that will not be filed (a refused or broken filing) with their bytes.
    /// An upload already filed with a report is kept.
    pub async fn discard_evidence_uploads(&self, uploads: &[i64]) -> Result<()> {
        for &upload in uploads {
            let txn = self.write_txn().await?;
            let filed = report_evidence::Entity::find()
                .filter(report_evidence::Column::Upload.eq(id32(upload)))
                .one(&txn)
                .await?
                .is_some();
            if !filed {
                report_evidence_chunks::Entity::delete_many()
                    .filter(report_evidence_chunks::Column::Upload.eq(id32(upload)))
                    .exec(&txn)
                    .await?;
                evidence_uploads::Entity::delete_by_id(id32(upload)).exec(&txn).await?;
            }
            txn.commit().await?;
        }
        Ok(())
    }

    /// Deletes every upload of `team` that no report holds: what a filing cut off by a crash
    /// left behind. Call it only while none of the team's uploads is in progress. Returns how
    /// many were deleted.
    pub async fn discard_unfiled_evidence(&self, team: TeamId) -> Result<usize> {
        let unfiled: Vec<i32> = evidence_uploads::Entity::find()
            .select_only()
            .column(evidence_uploads::Column::Id)
            .filter(evidence_uploads::Column::Team.eq(i32::from(team.0)))
            .filter(
                evidence_uploads::Column::Id.not_in_subquery(
                    Query::select()
                        .column(report_evidence::Column::Upload)
                        .from(report_evidence::Entity)
                        .and_where(report_evidence::Column::Upload.is_not_null())
                        .to_owned(),
                ),
            )
            .into_tuple()
            .all(&self.db)
            .await?;
        self.discard_evidence_uploads(&unfiled.iter().map(|&u| i64::from(u)).collect::<Vec<_>>()).await?;
        Ok(unfiled.len())
    }

    /// How many reports and evidence bytes `team` has filed, and how many bytes its unfiled
    /// uploads hold.
    pub async fn filing_usage(&self, team: TeamId) -> Result<FilingUsage> {
        usage(&self.db, team).await
    }

    /// One report, whoever filed it.
    pub async fn report(&self, id: i64) -> Result<Option<ReportRecord>> {
        load(&self.db, id32(id)).await
    }

    /// One report, only if `team` filed it: `NotYourReport` otherwise.
    pub async fn team_report(&self, team: TeamId, id: i64) -> Result<ReportRecord> {
        let record = self.report(id).await?.ok_or(StoreError::UnknownReport(id))?;
        if record.team != team {
            return Err(StoreError::NotYourReport(id));
        }
        Ok(record)
    }

    /// Every report a team filed, newest first.
    pub async fn reports_of_team(&self, team: TeamId) -> Result<Vec<ReportRecord>> {
        let rows = reports::Entity::find()
            .filter(reports::Column::Team.eq(i32::from(team.0)))
            .order_by_desc(reports::Column::Id)
            .all(&self.db)
            .await?;
        self.with_details(rows).await
    }

    /// Every report, oldest first, optionally only those in one state: for organisers.
    pub async fn list_reports(&self, status: Option<ReportStatus>) -> Result<Vec<ReportRecord>> {
        let mut query = reports::Entity::find();
        if let Some(status) = status {
            query = query.filter(reports::Column::Status.eq(status.as_str()));
        }
        let rows = query.order_by_asc(reports::Column::Id).all(&self.db).await?;
        self.with_details(rows).await
    }

    /// A page of [`Store::list_reports`]: at most `limit` reports with ids above `after`.
    pub async fn list_reports_page(
        &self,
        status: Option<ReportStatus>,
        after: Option<i64>,
        limit: u64,
    ) -> Result<ReportPage> {
        let mut query = reports::Entity::find();
        if let Some(status) = status {
            query = query.filter(reports::Column::Status.eq(status.as_str()));
        }
        self.page(query, after, limit).await
    }

    /// A page of the reports `filter` selects, oldest first: the judges' workbench's queue.
    pub async fn filtered_reports_page(
        &self,
        filter: &ReportFilter,
        after: Option<i64>,
        limit: u64,
    ) -> Result<ReportPage> {
        let mut query = reports::Entity::find();
        if !filter.statuses.is_empty() {
            query = query.filter(reports::Column::Status.is_in(filter.statuses.iter().map(|s| s.as_str())));
        }
        if let Some(team) = filter.team {
            query = query.filter(reports::Column::Team.eq(i32::from(team.0)));
        }
        if let Some(kind) = filter.kind {
            query = query.filter(reports::Column::Kind.eq(kind.as_str()));
        }
        if let Some(from) = filter.filed_from {
            query = query.filter(reports::Column::FiledAt.gte(from));
        }
        if let Some(until) = filter.filed_until {
            query = query.filter(reports::Column::FiledAt.lt(until));
        }
        self.page(query, after, limit).await
    }

    /// A page of the judges' queue ([`Store::report_queue`]): at most `limit` reports with ids
    /// above `after`.
    pub async fn report_queue_page(&self, after: Option<i64>, limit: u64) -> Result<ReportPage> {
        let query = reports::Entity::find().filter(reports::Column::Status.is_in(QUEUED.map(ReportStatus::as_str)));
        self.page(query, after, limit).await
    }

    /// Keyset pagination on the report id: one row more than asked says whether a next page
    /// exists, and a page never skips or repeats a report as others are filed or ruled.
    async fn page(&self, query: Select<reports::Entity>, after: Option<i64>, limit: u64) -> Result<ReportPage> {
        let limit = Ord::max(limit, 1);
        let mut query = query;
        if let Some(after) = after {
            query = query.filter(reports::Column::Id.gt(id32(after)));
        }
        let mut rows = query.order_by_asc(reports::Column::Id).limit(limit + 1).all(&self.db).await?;
        let next = if rows.len() as u64 > limit {
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            rows.last().map(|r| i64::from(r.id))
        } else {
            None
        };
        Ok(ReportPage { reports: self.with_details(rows).await?, next })
    }

    /// The judges' queue: reports waiting for a first ruling or an appeal ruling, oldest first.
    pub async fn report_queue(&self) -> Result<Vec<ReportRecord>> {
        let rows = reports::Entity::find()
            .filter(reports::Column::Status.is_in(QUEUED.map(ReportStatus::as_str)))
            .order_by_asc(reports::Column::Id)
            .all(&self.db)
            .await?;
        self.with_details(rows).await
    }

    async fn with_details(&self, rows: Vec<reports::Model>) -> Result<Vec<ReportRecord>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
        let mut evidence = Vec::new();
        let mut rulings = Vec::new();
        let mut scores = Vec::new();
        // Bounded IN lists: far below either database's limit on bound parameters.
        for chunk in ids.chunks(500) {
            evidence.extend(evidence_infos(&self.db, chunk).await?);
            rulings.extend(
                report_rulings::Entity::find()
                    .filter(report_rulings::Column::Report.is_in(chunk.iter().copied()))
                    .all(&self.db)
                    .await?,
            );
            scores.extend(
                report_scores::Entity::find()
                    .filter(report_scores::Column::Report.is_in(chunk.iter().copied()))
                    .order_by_asc(report_scores::Column::Id)
                    .all(&self.db)
                    .await?,
            );
        }
        rows.into_iter()
            .map(|r| {
                let id = r.id;
                let ev = evidence.iter().filter(|e| e.report == id).cloned().collect();
                let ru = rulings.iter().filter(|x| x.report == id).cloned().collect();
                let sc = scores.iter().filter(|x| x.report == id).cloned().collect();
                report_from_rows(r, ev, ru, sc)
            })
            .collect()
    }

    /// A judge's first ruling of a pending report, checked against the scenario's maximum
    /// for its kind, and audited. The ruling counts from the current tick.
    #[tracing::instrument(skip_all, fields(report = id, judge = %judge.name))]
    pub async fn rule_report(
        &self,
        id: i64,
        judge: &Account,
        decision: &Decision,
        rules: &ReportRules,
        at: DateTime<Utc>,
    ) -> Result<ReportRecord> {
        self.rule(id, judge, decision, rules, at, RulingStage::First).await
    }

    /// A second judge's ruling of an appealed report; it replaces the first ruling's points
    /// and makes the report final. Audited.
    #[tracing::instrument(skip_all, fields(report = id, judge = %judge.name))]
    pub async fn rule_appeal(
        &self,
        id: i64,
        judge: &Account,
        decision: &Decision,
        rules: &ReportRules,
        at: DateTime<Utc>,
    ) -> Result<ReportRecord> {
        self.rule(id, judge, decision, rules, at, RulingStage::Appeal).await
    }

    async fn rule(
        &self,
        id: i64,
        judge: &Account,
        decision: &Decision,
        rules: &ReportRules,
        at: DateTime<Utc>,
        stage: RulingStage,
    ) -> Result<ReportRecord> {
        if judge.role != AccountRole::Judge {
            return Err(StoreError::NotAJudge(judge.name.clone()));
        }
        let txn = self.write_txn().await?;
        let before = load(&txn, id32(id)).await?.ok_or(StoreError::UnknownReport(id))?;
        check_decision(before.report.kind, decision, rules)?;
        check_link(&txn, &before, decision).await?;
        let (from, to, what) = match stage {
            RulingStage::First => {
                if let (JudgePanel::BlindPair { max_difference }, ReportStatus::Pending) = (rules.panel, before.status)
                {
                    return self.score(txn, id, judge, decision, max_difference, at).await;
                }
                if before.status == ReportStatus::Disputed && before.scored_by(judge.id) {
                    return Err(StoreError::SameJudge {
                        report: id,
                        judge: judge.name.clone(),
                        did: "scored",
                        next: "a third judge, who scored neither side, decides",
                    });
                }
                let from = if before.status == ReportStatus::Disputed {
                    ReportStatus::Disputed
                } else {
                    ReportStatus::Pending
                };
                (from, ReportStatus::Ruled, "only a pending or disputed report can be ruled")
            }
            RulingStage::Appeal => {
                let ruled = before.ruling(RulingStage::First).is_some_and(|f| f.judge_id == judge.id);
                if ruled || before.scored_by(judge.id) {
                    return Err(StoreError::SameJudge {
                        report: id,
                        judge: judge.name.clone(),
                        did: if ruled { "made the first ruling of" } else { "scored" },
                        next: "another judge must rule the appeal",
                    });
                }
                (ReportStatus::Appealed, ReportStatus::Final, "only an appealed report can have its appeal ruled")
            }
        };
        let moved = move_report(&txn, id, from, to).await?;
        if moved != 1 {
            return Err(StoreError::ReportState { report: id, status: before.status.as_str(), what });
        }
        let mut detail = serde_json::Map::new();
        if from == ReportStatus::Disputed {
            detail.insert("decides_dispute".into(), true.into());
        }
        let record = record_ruling(&txn, &before, stage, judge, &judge.name, decision, at, detail).await?;
        txn.commit().await?;
        tracing::info!(valid = decision.valid, points = decision.points, ?stage, "report ruled");
        Ok(record)
    }

    /// A judge's blind score of a pending report in a two-judge drill. The second judge's score
    /// either agrees with the first (the report is ruled, by both) or not (it is disputed, and
    /// a third judge decides). Audited, the score and what it led to, in one transaction.
    async fn score(
        &self,
        txn: DatabaseTransaction,
        id: i64,
        judge: &Account,
        decision: &Decision,
        max_difference: u32,
        at: DateTime<Utc>,
    ) -> Result<ReportRecord> {
        // Lock the report's row before reading its scores (on PostgreSQL; SQLite's write lock is
        // already held), so two judges scoring at once see each other's score.
        if move_report(&txn, id, ReportStatus::Pending, ReportStatus::Pending).await? != 1 {
            let status = load(&txn, id32(id)).await?.map_or("gone", |r| r.status.as_str());
            return Err(StoreError::ReportState { report: id, status, what: "only a pending report can be scored" });
        }
        let before = load(&txn, id32(id)).await?.ok_or(StoreError::UnknownReport(id))?;
        if before.scored_by(judge.id) {
            return Err(StoreError::SameJudge {
                report: id,
                judge: judge.name.clone(),
                did: "already scored",
                next: "a second judge scores it blind",
            });
        }
        report_scores::ActiveModel {
            report: Set(id32(id)),
            judge: Set(judge.name.clone()),
            judge_account: Set(id32(judge.id)),
            valid: Set(decision.valid),
            points: Set(i32::try_from(decision.points).unwrap_or(i32::MAX)),
            reason: Set(decision.reason.trim().to_owned()),
            reason_codes: Set(reason_codes_row(&decision.reason_codes)),
            scored_at: Set(at),
            finding: Set(finding_row(decision)),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        audit(
            &txn,
            at,
            &judge.actor(),
            "report.score",
            serde_json::json!({
                "report": id,
                "team": before.team.0,
                "kind": before.report.kind.as_str(),
                "valid": decision.valid,
                "points": decision.points,
                "reason": decision.reason.trim(),
                "reason_codes": reason_code_names(&decision.reason_codes),
                "judge_account": judge.id,
            })
            .with_finding(decision),
        )
        .await?;
        let record = if let [first] = before.scores.as_slice() {
            let panel = format!("{} + {}", first.judge, judge.name);
            match combine_scores(&first.decision, decision, max_difference) {
                PanelOutcome::Agreed(ruling) => {
                    move_report(&txn, id, ReportStatus::Pending, ReportStatus::Ruled).await?;
                    let mut detail = serde_json::Map::new();
                    detail.insert("panel".into(), serde_json::json!([first.judge, judge.name]));
                    let record =
                        record_ruling(&txn, &before, RulingStage::First, judge, &panel, &ruling, at, detail).await?;
                    tracing::info!(valid = ruling.valid, points = ruling.points, "report ruled by two judges");
                    record
                }
                PanelOutcome::Disputed => {
                    move_report(&txn, id, ReportStatus::Pending, ReportStatus::Disputed).await?;
                    audit(
                        &txn,
                        at,
                        &judge.actor(),
                        "report.dispute",
                        serde_json::json!({
                            "report": id,
                            "team": before.team.0,
                            "panel": [first.judge, judge.name],
                            "max_difference": max_difference,
                        }),
                    )
                    .await?;
                    tracing::info!("two judges disagree; a third decides");
                    load(&txn, id32(id)).await?.ok_or(StoreError::UnknownReport(id))?
                }
            }
        } else {
            load(&txn, id32(id)).await?.ok_or(StoreError::UnknownReport(id))?
        };
        txn.commit().await?;
        Ok(record)
    }

    /// The filing team's one appeal of a ruled report, while the scenario's appeal window is
    /// open. Audited with the team as the actor.
    #[tracing::instrument(skip_all, fields(report = id, team = %team))]
    pub async fn appeal_report(
        &self,
        id: i64,
        team: TeamId,
        reason: &str,
        rules: &ReportRules,
        at: DateTime<Utc>,
    ) -> Result<ReportRecord> {
        let txn = self.write_txn().await?;
        let before = load(&txn, id32(id)).await?.ok_or(StoreError::UnknownReport(id))?;
        if before.team != team {
            return Err(StoreError::NotYourReport(id));
        }
        let what = "only a ruled report can be appealed, and only once";
        let first = before.ruling(RulingStage::First).ok_or(StoreError::ReportState {
            report: id,
            status: before.status.as_str(),
            what,
        })?;
        if before.status != ReportStatus::Ruled {
            return Err(StoreError::ReportState { report: id, status: before.status.as_str(), what });
        }
        check_appeal(first.ruled_at, at, reason, rules)?;
        let moved = reports::Entity::update_many()
            .col_expr(reports::Column::Status, ReportStatus::Appealed.as_str().into())
            .col_expr(reports::Column::AppealReason, reason.trim().into())
            .col_expr(reports::Column::AppealedAt, at.into())
            .filter(reports::Column::Id.eq(id32(id)))
            .filter(reports::Column::Status.eq(ReportStatus::Ruled.as_str()))
            .exec(&txn)
            .await?;
        if moved.rows_affected != 1 {
            return Err(StoreError::ReportState { report: id, status: before.status.as_str(), what });
        }
        audit(
            &txn,
            at,
            &format!("team:{}", team.0),
            "report.appeal",
            serde_json::json!({ "report": id, "team": team.0, "reason": reason.trim() }),
        )
        .await?;
        let record = load(&txn, id32(id)).await?.ok_or(StoreError::UnknownReport(id))?;
        txn.commit().await?;
        Ok(record)
    }

    /// What is known about one evidence file of a report, without its bytes: read them with
    /// [`Store::evidence_chunk`].
    pub async fn evidence_info(&self, report: i64, evidence: i64) -> Result<Option<EvidenceInfo>> {
        let rows: Vec<EvidenceInfoRow> = report_evidence::Entity::find_by_id(id32(evidence))
            .select_only()
            .columns([
                report_evidence::Column::Id,
                report_evidence::Column::Report,
                report_evidence::Column::FileName,
                report_evidence::Column::ContentType,
                report_evidence::Column::Size,
                report_evidence::Column::Sha256,
                report_evidence::Column::Upload,
            ])
            .filter(report_evidence::Column::Report.eq(id32(report)))
            .into_tuple()
            .all(&self.db)
            .await?;
        rows.into_iter()
            .next()
            .map(|(id, report, file_name, content_type, size, sha256, upload)| {
                evidence_info(report_evidence::Model {
                    id,
                    report,
                    file_name,
                    content_type,
                    size,
                    sha256,
                    data: Vec::new(),
                    upload,
                })
            })
            .transpose()
    }

    /// The `seq`th piece (from 0) of an evidence file's bytes, at most [`EVIDENCE_CHUNK`] of
    /// them; `None` past the end. Read in order, the pieces are the file: a server can send a
    /// file of any size holding one piece at a time.
    pub async fn evidence_chunk(&self, report: i64, evidence: i64, seq: u32) -> Result<Option<Vec<u8>>> {
        let Some((upload,)) = report_evidence::Entity::find_by_id(id32(evidence))
            .select_only()
            .column(report_evidence::Column::Upload)
            .filter(report_evidence::Column::Report.eq(id32(report)))
            .into_tuple::<(Option<i32>,)>()
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        match upload {
            Some(upload) => Ok(report_evidence_chunks::Entity::find()
                .filter(report_evidence_chunks::Column::Upload.eq(upload))
                .filter(report_evidence_chunks::Column::Seq.eq(i32::try_from(seq).unwrap_or(i32::MAX)))
                .one(&self.db)
                .await?
                .map(|c| c.data)),
            // Evidence filed before chunks existed is one piece.
            None if seq == 0 => {
                Ok(report_evidence::Entity::find_by_id(id32(evidence)).one(&self.db).await?.map(|r| r.data))
            }
            None => Ok(None),
        }
    }

    /// One evidence file of a report, with its bytes.
    pub async fn evidence(&self, report: i64, evidence: i64) -> Result<Option<Evidence>> {
        let Some(row) = report_evidence::Entity::find_by_id(id32(evidence))
            .filter(report_evidence::Column::Report.eq(id32(report)))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let report = i64::from(row.report);
        let data = match row.upload {
            None => row.data.clone(),
            Some(upload) => {
                // Chunk by chunk, so the file is in memory once, as the answer.
                let mut data = Vec::with_capacity(usize::try_from(row.size).unwrap_or(0));
                let mut seq = 0;
                while let Some(chunk) = report_evidence_chunks::Entity::find()
                    .filter(report_evidence_chunks::Column::Upload.eq(upload))
                    .filter(report_evidence_chunks::Column::Seq.eq(seq))
                    .one(&self.db)
                    .await?
                {
                    data.extend_from_slice(&chunk.data);
                    seq += 1;
                }
                if data.len() as u64 != u64::try_from(row.size).unwrap_or(0) {
                    return Err(corrupt(
                        "report_evidence",
                        row.id,
                        format!("{} bytes in chunks, {} recorded", data.len(), row.size),
                    ));
                }
                data
            }
        };
        Ok(Some(Evidence { report, info: evidence_info(row)?, data }))
    }

    /// Every ruling as a score award, in the order made: what scoring adds to flag points
    /// (under the rule-based preset, each valid ruling's finding with the report's stated time
    /// and unit).
    pub async fn report_awards(&self) -> Result<Vec<Award>> {
        let rulings = report_rulings::Entity::find().order_by_asc(report_rulings::Column::Id).all(&self.db).await?;
        type Row = (i32, i32, String, Option<i32>, DateTime<Utc>);
        let reports: Vec<Row> = reports::Entity::find()
            .select_only()
            .columns([
                reports::Column::Id,
                reports::Column::Team,
                reports::Column::Kind,
                reports::Column::TargetTeam,
                reports::Column::WindowFrom,
            ])
            .order_by_asc(reports::Column::Id)
            .into_tuple()
            .all(&self.db)
            .await?;
        rulings
            .into_iter()
            .map(|r| {
                let (_, team, kind, target, stated) = reports
                    .binary_search_by_key(&r.report, |row| row.0)
                    .map(|i| &reports[i])
                    .map_err(|_| corrupt("report_rulings", r.id, "ruling of a missing report"))?;
                let kind = ReportKind::from_name(kind).ok_or_else(|| corrupt("reports", r.report, "unknown kind"))?;
                let team = TeamId(de("reports", r.report, "team", *team)?);
                let unit = target.map(|t| de("reports", r.report, "target_team", t).map(TeamId)).transpose()?;
                let report = i64::from(r.report);
                let ruling = ruling_from_row(r)?;
                let finding = ruling.decision.finding.map(|finding| RuledFinding { finding, stated: *stated, unit });
                Ok(Award {
                    report,
                    team,
                    kind,
                    stage: ruling.stage,
                    points: ruling.decision.points,
                    tick: ruling.tick,
                    finding,
                })
            })
            .collect()
    }

    /// Accepted submissions of `victim`'s flags submitted between `from` and `to` (both
    /// included), optionally only by `attacker` and of `service`, oldest first.
    pub async fn captures_between(
        &self,
        attacker: Option<TeamId>,
        victim: TeamId,
        service: Option<ServiceId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StoredSubmission>> {
        let mut query = submissions::Entity::find()
            .filter(submissions::Column::Victim.eq(i32::from(victim.0)))
            .filter(submissions::Column::SubmittedAt.between(from, to));
        if let Some(a) = attacker {
            query = query.filter(submissions::Column::Attacker.eq(i32::from(a.0)));
        }
        if let Some(s) = service {
            query = query.filter(submissions::Column::Service.eq(i32::from(s.0)));
        }
        let rows = query
            .order_by_asc(submissions::Column::SubmittedAt)
            .order_by_asc(submissions::Column::Id)
            .all(&self.db)
            .await?;
        rows.into_iter().map(submission_from_row).collect()
    }

    /// [`Store::captures_between`], at most `limit` of them (the oldest), and whether more
    /// were left out. With the (victim, service, submitted_at) index on SQLite and the BRIN
    /// index on `submitted_at` on PostgreSQL, it reads about as many rows as it returns.
    pub async fn captures_in_window(
        &self,
        attacker: Option<TeamId>,
        victim: TeamId,
        service: ServiceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u64,
    ) -> Result<(Vec<StoredSubmission>, bool)> {
        let mut query = submissions::Entity::find()
            .filter(submissions::Column::Victim.eq(i32::from(victim.0)))
            .filter(submissions::Column::Service.eq(i32::from(service.0)))
            .filter(submissions::Column::SubmittedAt.between(from, to));
        if let Some(a) = attacker {
            query = query.filter(submissions::Column::Attacker.eq(i32::from(a.0)));
        }
        let mut rows = query
            .order_by_asc(submissions::Column::SubmittedAt)
            .order_by_asc(submissions::Column::Id)
            .limit(limit.saturating_add(1))
            .all(&self.db)
            .await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok((rows.into_iter().map(submission_from_row).collect::<Result<_>>()?, more))
    }

    /// Checker results of one team × service recorded between `from` and `to` (both
    /// included), oldest first.
    pub async fn check_results_between(
        &self,
        team: TeamId,
        service: ServiceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<CheckResult>> {
        let rows = check_results::Entity::find()
            .filter(check_results::Column::Team.eq(i32::from(team.0)))
            .filter(check_results::Column::Service.eq(i32::from(service.0)))
            .filter(check_results::Column::RecordedAt.between(from, to))
            .order_by_asc(check_results::Column::RecordedAt)
            .order_by_asc(check_results::Column::Id)
            .all(&self.db)
            .await?;
        rows.into_iter().map(check_from_row).collect()
    }
}

/// Moves a report from one status to another if it is still in the first; how many rows moved
/// (0 or 1). Moving a report to the status it has locks its row on PostgreSQL.
async fn move_report(txn: &DatabaseTransaction, id: i64, from: ReportStatus, to: ReportStatus) -> Result<u64> {
    let moved = reports::Entity::update_many()
        .col_expr(reports::Column::Status, to.as_str().into())
        .filter(reports::Column::Id.eq(id32(id)))
        .filter(reports::Column::Status.eq(from.as_str()))
        .exec(txn)
        .await?;
    Ok(moved.rows_affected)
}

/// Stores a ruling of `report` made by `judge` (under the name `judge_name`: the judge's, or
/// the panel's) at the current tick, audits it with `detail` added, and reads the report back.
#[allow(clippy::too_many_arguments)]
async fn record_ruling(
    txn: &DatabaseTransaction,
    report: &ReportRecord,
    stage: RulingStage,
    judge: &Account,
    judge_name: &str,
    decision: &Decision,
    at: DateTime<Utc>,
    detail: serde_json::Map<String, serde_json::Value>,
) -> Result<ReportRecord> {
    let id = report.id;
    let tick = current_tick(txn).await?;
    report_rulings::ActiveModel {
        report: Set(id32(id)),
        stage: Set(stage.as_str().to_owned()),
        judge: Set(judge_name.to_owned()),
        judge_account: Set(id32(judge.id)),
        valid: Set(decision.valid),
        points: Set(i32::try_from(decision.points).unwrap_or(i32::MAX)),
        reason: Set(decision.reason.trim().to_owned()),
        reason_codes: Set(reason_codes_row(&decision.reason_codes)),
        tick: Set(tick_i32(tick)),
        ruled_at: Set(at),
        finding: Set(finding_row(decision)),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let action = match stage {
        RulingStage::First => "report.rule",
        RulingStage::Appeal => "report.rule-appeal",
    };
    let entry = serde_json::json!({
        "report": id,
        "team": report.team.0,
        "kind": report.report.kind.as_str(),
        "stage": stage.as_str(),
        "valid": decision.valid,
        "points": decision.points,
        "reason": decision.reason.trim(),
        "reason_codes": reason_code_names(&decision.reason_codes),
        "judge_account": judge.id,
        "tick": tick.0,
    });
    let mut entry = entry.with_finding(decision);
    if let Some(map) = entry.as_object_mut() {
        map.extend(detail);
    }
    audit(txn, at, &judge.actor(), action, entry).await?;
    load(txn, id32(id)).await?.ok_or(StoreError::UnknownReport(id))
}

/// A report with its evidence list, rulings and scores.
async fn load(db: &impl ConnectionTrait, id: i32) -> Result<Option<ReportRecord>> {
    let Some(row) = reports::Entity::find_by_id(id).one(db).await? else { return Ok(None) };
    let evidence = evidence_infos(db, &[id]).await?;
    let rulings = report_rulings::Entity::find().filter(report_rulings::Column::Report.eq(id)).all(db).await?;
    let scores = report_scores::Entity::find()
        .filter(report_scores::Column::Report.eq(id))
        .order_by_asc(report_scores::Column::Id)
        .all(db)
        .await?;
    report_from_rows(row, evidence, rulings, scores).map(Some)
}

/// The columns of an evidence row but its bytes: id, report, file name, content type, size,
/// SHA-256 and upload.
type EvidenceInfoRow = (i32, i32, String, String, i64, String, Option<i32>);

/// Evidence rows of some reports without their bytes (which can be megabytes each).
async fn evidence_infos(db: &impl ConnectionTrait, reports: &[i32]) -> Result<Vec<report_evidence::Model>> {
    let rows: Vec<EvidenceInfoRow> = report_evidence::Entity::find()
        .select_only()
        .columns([
            report_evidence::Column::Id,
            report_evidence::Column::Report,
            report_evidence::Column::FileName,
            report_evidence::Column::ContentType,
            report_evidence::Column::Size,
            report_evidence::Column::Sha256,
            report_evidence::Column::Upload,
        ])
        .filter(report_evidence::Column::Report.is_in(reports.iter().copied()))
        .order_by_asc(report_evidence::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, report, file_name, content_type, size, sha256, upload)| report_evidence::Model {
            id,
            report,
            file_name,
            content_type,
            size,
            sha256,
            data: Vec::new(),
            upload,
        })
        .collect())
}

/// The tick a ruling made now counts from: the latest opened tick, else the drill state's,
/// else tick 0 (a ruling before the drill starts counts from its first tick). While the public
/// board is frozen, never before the tick after the freeze's: every view that stops at the
/// freeze (the frozen board, its past, its series) then leaves the ruling out, also one made
/// after the drill's last tick, and the live board and the final standings count it.
async fn current_tick(txn: &DatabaseTransaction) -> Result<Tick> {
    let state = drill_state::Entity::find().one(txn).await?;
    let after_freeze = state.as_ref().and_then(|s| s.frozen_through).and_then(|t| u32::try_from(t).ok()).map(|t| t + 1);
    let tick = match ticks::Entity::find().order_by_desc(ticks::Column::Tick).one(txn).await? {
        Some(t) => u32::try_from(t.tick).map_err(|_| corrupt("ticks", t.tick, "negative tick"))?,
        None => state.and_then(|s| s.current_tick).and_then(|t| u32::try_from(t).ok()).unwrap_or(0),
    };
    Ok(Tick(after_freeze.map_or(tick, |after| std::cmp::max(tick, after))))
}

pub(crate) async fn audit(
    txn: &DatabaseTransaction,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    detail: serde_json::Value,
) -> Result<()> {
    audit_log::ActiveModel {
        at: Set(at),
        actor: Set(actor.to_owned()),
        action: Set(action.to_owned()),
        detail: Set(detail.to_string()),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(())
}
