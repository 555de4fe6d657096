//! Reports on real databases (SQLite always, PostgreSQL when configured): filing with
//! evidence, the judges' queue, rulings, the one appeal, audit lines and score awards.

mod common;

use std::time::Duration as StdDuration;

use anyhow::{Context, ensure};
use chrono::{DateTime, Duration, TimeZone, Utc};
use gongfang_core::AccountRole;
use gongfang_core::Action;
use gongfang_core::CheckResult;
use gongfang_core::NewSubmission;
use gongfang_core::report::ReportStatus;
use gongfang_core::report::{CheckedReport, Decision, ReportError, ReportKind, RulingStage, TechniqueId, TimeWindow};
use gongfang_core::scenario::{JudgePanel, ReportRules};
use gongfang_core::scoring::Award;
use gongfang_core::scoring::Capture;
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick, Verdict};
use gongfang_store::StoreError;
use gongfang_store::reports::NewEvidence;

use common::{TestDb, scenario};

gongfang_test_support::backend_tests!(
    filed_reports_keep_evidence_and_stay_with_their_team,
    lifecycle_filed_ruled_appealed_final,
    rulings_are_refused_when_they_break_a_rule,
    appeals_are_refused_when_they_break_a_rule,
    two_judges_racing_rule_once,
    two_judges_score_blind_and_a_third_decides,
    two_judges_scoring_at_once_both_count,
    records_around_a_window,
    a_ruling_made_while_the_board_is_frozen_counts_after_the_freeze,
);

const RED: TeamId = TeamId(1);
const RED_TWO: TeamId = TeamId(2);
const BLUE: TeamId = TeamId(3);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
}

fn rules() -> ReportRules {
    ReportRules {
        enabled: true,
        attack_max_points: 50,
        defence_max_points: 20,
        appeal_window: StdDuration::from_secs(3600),
        ..ReportRules::default()
    }
}

fn attack_on_blue() -> CheckedReport {
    CheckedReport {
        kind: ReportKind::Attack,
        target_team: Some(BLUE),
        service: ServiceId(1),
        window: TimeWindow { from: t0(), to: t0() + Duration::minutes(10) },
        technique: "SQL injection in the search form".into(),
        attack_id: Some(TechniqueId::parse("T1190").unwrap()),
        description: "union select on /search dumps the notes table".into(),
        evidence: "GET /search?q=' union select ...".into(),
        traced_address: None,
        traced_team: None,
    }
}

fn decision(valid: bool, points: u32, reason: &str) -> Decision {
    Decision { valid, points, reason: reason.into(), reason_codes: Vec::new(), finding: None }
}

async fn ready(db: &TestDb) -> anyhow::Result<()> {
    db.store.sync_scenario(&scenario()).await?;
    Ok(())
}

async fn filed_reports_keep_evidence_and_stay_with_their_team(db: TestDb) -> anyhow::Result<()> {
    ready(&db).await?;
    let files = [
        NewEvidence {
            file_name: "shot.png".into(),
            content_type: "image/png".into(),
            data: vec![0x89, b'P', b'N', b'G'],
        },
        NewEvidence { file_name: "notes.txt".into(), content_type: "text/plain".into(), data: b"hello".to_vec() },
    ];
    let filed = db.store.file_report(RED, &attack_on_blue(), &files, t0() + Duration::minutes(20)).await?;
    ensure!(filed.status == ReportStatus::Pending && filed.rulings.is_empty(), "{filed:?}");
    ensure!(filed.report == attack_on_blue(), "the report changed on its way through the store");
    ensure!(filed.evidence.len() == 2 && filed.evidence[1].size == 5, "{:?}", filed.evidence);
    // sha256("hello")
    ensure!(filed.evidence[1].sha256 == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    let file = db.store.evidence(filed.id, filed.evidence[1].id).await?.context("evidence gone")?;
    ensure!(file.data == b"hello" && file.info.content_type == "text/plain");
    ensure!(db.store.evidence(filed.id + 1, filed.evidence[1].id).await?.is_none(), "evidence of another report id");

    let other = db.store.file_report(RED_TWO, &attack_on_blue(), &[], t0() + Duration::minutes(21)).await?;
    let mine = db.store.reports_of_team(RED).await?;
    ensure!(mine.iter().map(|r| r.id).collect::<Vec<_>>() == vec![filed.id], "own list: {mine:?}");
    ensure!(db.store.team_report(RED, filed.id).await?.id == filed.id);
    ensure!(matches!(db.store.team_report(RED, other.id).await, Err(StoreError::NotYourReport(id)) if id == other.id));
    ensure!(matches!(db.store.team_report(RED, 9_999).await, Err(StoreError::UnknownReport(9_999))));
    let queue: Vec<i64> = db.store.report_queue().await?.iter().map(|r| r.id).collect();
    ensure!(queue == vec![filed.id, other.id], "queue {queue:?}");
    ensure!(db.store.report_queue().await?[0].evidence.len() == 2, "the queue lists evidence");
    Ok(())
}

async fn lifecycle_filed_ruled_appealed_final(db: TestDb) -> anyhow::Result<()> {
    ready(&db).await?;
    db.store.open_tick(Tick(0), t0()).await?;
    db.store.open_tick(Tick(1), t0() + Duration::minutes(1)).await?;
    let ana = db.store.create_account("ana", AccountRole::Judge, "correct horse battery").await?;
    let bo = db.store.create_account("bo", AccountRole::Judge, "staple ribbon lamp").await?;
    let r = db.store.file_report(RED, &attack_on_blue(), &[], t0() + Duration::minutes(2)).await?;

    let ruled_at = t0() + Duration::minutes(5);
    let ruled = db.store.rule_report(r.id, &ana, &decision(false, 0, "no proof of access"), &rules(), ruled_at).await?;
    ensure!(ruled.status == ReportStatus::Ruled && ruled.points() == 0, "{ruled:?}");
    let first = ruled.ruling(RulingStage::First).context("no first ruling")?;
    ensure!(first.judge == "ana" && first.tick == Tick(1) && first.ruled_at == ruled_at, "{first:?}");
    ensure!(db.store.report_queue().await?.is_empty(), "a ruled report left the queue");

    db.store.open_tick(Tick(2), t0() + Duration::minutes(6)).await?;
    let appealed =
        db.store.appeal_report(r.id, RED, "the dump is in the pcap", &rules(), t0() + Duration::minutes(30)).await?;
    ensure!(appealed.status == ReportStatus::Appealed, "{appealed:?}");
    ensure!(appealed.appeal.as_ref().map(|a| a.reason.as_str()) == Some("the dump is in the pcap"));
    ensure!(db.store.report_queue().await?.len() == 1, "an appealed report is back in the queue");

    let fin = db
        .store
        .rule_appeal(r.id, &bo, &decision(true, 35, "pcap confirms it"), &rules(), t0() + Duration::minutes(40))
        .await?;
    ensure!(fin.status == ReportStatus::Final && fin.points() == 35, "{fin:?}");
    ensure!(fin.rulings.len() == 2 && fin.latest_ruling().unwrap().judge == "bo");

    let awards = db.store.report_awards().await?;
    let want = vec![
        Award {
            report: r.id,
            team: RED,
            kind: ReportKind::Attack,
            stage: RulingStage::First,
            points: 0,
            tick: Tick(1),
            finding: None,
        },
        Award {
            report: r.id,
            team: RED,
            kind: ReportKind::Attack,
            stage: RulingStage::Appeal,
            points: 35,
            tick: Tick(2),
            finding: None,
        },
    ];
    ensure!(awards == want, "awards {awards:?}");

    let audit = db.store.list_audit(None, 100).await?;
    let lines: Vec<(&str, &str, DateTime<Utc>)> =
        audit.iter().map(|a| (a.actor.as_str(), a.action.as_str(), a.at)).collect();
    ensure!(
        lines
            == vec![
                ("account ana", "report.rule", ruled_at),
                ("team:1", "report.appeal", t0() + Duration::minutes(30)),
                ("account bo", "report.rule-appeal", t0() + Duration::minutes(40)),
            ],
        "audit {lines:?}"
    );
    ensure!(audit[0].detail["valid"] == false && audit[0].detail["reason"] == "no proof of access");
    ensure!(audit[2].detail["points"] == 35 && audit[2].detail["report"] == r.id, "{:?}", audit[2].detail);
    Ok(())
}

async fn rulings_are_refused_when_they_break_a_rule(db: TestDb) -> anyhow::Result<()> {
    ready(&db).await?;
    let ana = db.store.create_account("ana", AccountRole::Judge, "correct horse battery").await?;
    let org = db.store.create_account("olga", AccountRole::Organiser, "organiser password").await?;
    let r = db.store.file_report(RED, &attack_on_blue(), &[], t0()).await?;
    let at = t0() + Duration::minutes(5);
    let e = db.store.rule_report(r.id, &org, &decision(true, 1, ""), &rules(), at).await.unwrap_err();
    ensure!(matches!(e, StoreError::NotAJudge(ref n) if n == "olga"), "{e}");
    let e = db.store.rule_report(r.id, &ana, &decision(true, 51, ""), &rules(), at).await.unwrap_err();
    ensure!(matches!(e, StoreError::ReportRule(ReportError::PointsAboveMax { points: 51, max: 50, .. })), "{e}");
    let e = db.store.rule_report(r.id, &ana, &decision(false, 0, ""), &rules(), at).await.unwrap_err();
    ensure!(matches!(e, StoreError::ReportRule(ReportError::ReasonRequired)), "{e}");
    let e = db.store.rule_appeal(r.id, &ana, &decision(true, 1, ""), &rules(), at).await.unwrap_err();
    ensure!(matches!(e, StoreError::ReportState { status: "pending", .. }), "{e}");
    ensure!(db.store.list_audit(None, 10).await?.is_empty(), "a refused ruling was audited");
    ensure!(db.store.report(r.id).await?.unwrap().status == ReportStatus::Pending, "a refused ruling moved the report");

    db.store.rule_report(r.id, &ana, &decision(true, 50, ""), &rules(), at).await?;
    let e = db.store.rule_report(r.id, &ana, &decision(true, 10, ""), &rules(), at).await.unwrap_err();
    ensure!(matches!(e, StoreError::ReportState { status: "ruled", .. }), "{e}");
    ensure!(e.to_string().contains("only a pending or disputed report can be ruled"), "{e}");
    db.store.appeal_report(r.id, RED, "worth more", &rules(), at).await?;
    let e = db.store.rule_appeal(r.id, &ana, &decision(true, 10, ""), &rules(), at).await.unwrap_err();
    ensure!(matches!(e, StoreError::SameJudge { ref judge, .. } if judge == "ana"), "{e}");
    let e = db.store.rule_report(9_999, &ana, &decision(true, 1, ""), &rules(), at).await.unwrap_err();
    ensure!(matches!(e, StoreError::UnknownReport(9_999)), "{e}");
    ensure!(db.store.report_awards().await?.len() == 1, "refused rulings award nothing");
    Ok(())
}

async fn appeals_are_refused_when_they_break_a_rule(db: TestDb) -> anyhow::Result<()> {
    ready(&db).await?;
    let ana = db.store.create_account("ana", AccountRole::Judge, "correct horse battery").await?;
    let r = db.store.file_report(RED, &attack_on_blue(), &[], t0()).await?;
    let e = db.store.appeal_report(r.id, RED, "too early", &rules(), t0()).await.unwrap_err();
    ensure!(matches!(e, StoreError::ReportState { status: "pending", .. }), "{e}");
    let ruled_at = t0() + Duration::minutes(5);
    db.store.rule_report(r.id, &ana, &decision(false, 0, "duplicate of #1"), &rules(), ruled_at).await?;
    let e = db.store.appeal_report(r.id, RED_TWO, "not ours", &rules(), ruled_at).await.unwrap_err();
    ensure!(matches!(e, StoreError::NotYourReport(_)), "{e}");
    let late = ruled_at + Duration::minutes(61);
    let e = db.store.appeal_report(r.id, RED, "late", &rules(), late).await.unwrap_err();
    ensure!(matches!(e, StoreError::ReportRule(ReportError::AppealClosed { .. })), "{e}");
    let e = db.store.appeal_report(r.id, RED, "  ", &rules(), ruled_at).await.unwrap_err();
    ensure!(matches!(e, StoreError::ReportRule(ReportError::Missing("reason"))), "{e}");
    db.store.appeal_report(r.id, RED, "it is not a duplicate", &rules(), ruled_at + Duration::minutes(60)).await?;
    let e = db.store.appeal_report(r.id, RED, "again", &rules(), ruled_at).await.unwrap_err();
    ensure!(matches!(e, StoreError::ReportState { status: "appealed", .. }), "{e}");
    let audit = db.store.list_audit(None, 10).await?;
    ensure!(audit.iter().filter(|a| a.action == "report.appeal").count() == 1, "{audit:?}");
    Ok(())
}

async fn two_judges_racing_rule_once(db: TestDb) -> anyhow::Result<()> {
    ready(&db).await?;
    let ana = db.store.create_account("ana", AccountRole::Judge, "correct horse battery").await?;
    let bo = db.store.create_account("bo", AccountRole::Judge, "staple ribbon lamp").await?;
    let r = db.store.file_report(RED, &attack_on_blue(), &[], t0()).await?;
    let (s1, s2) = (db.store.clone(), db.store.clone());
    let (id, rules1, rules2) = (r.id, rules(), rules());
    let a = tokio::spawn(async move { s1.rule_report(id, &ana, &decision(true, 10, ""), &rules1, t0()).await });
    let b = tokio::spawn(async move { s2.rule_report(id, &bo, &decision(true, 20, ""), &rules2, t0()).await });
    let results = [a.await?, b.await?];
    ensure!(results.iter().filter(|r| r.is_ok()).count() == 1, "{results:?}");
    ensure!(db.store.report_awards().await?.len() == 1);
    ensure!(db.store.list_audit(None, 10).await?.len() == 1, "only the ruling that counted is audited");
    Ok(())
}

fn two_judges() -> ReportRules {
    ReportRules { panel: JudgePanel::BlindPair { max_difference: 10 }, ..rules() }
}

async fn two_judges_score_blind_and_a_third_decides(db: TestDb) -> anyhow::Result<()> {
    ready(&db).await?;
    db.store.open_tick(Tick(0), t0()).await?;
    let judge =
        |name: &'static str, password: &'static str| db.store.create_account(name, AccountRole::Judge, password);
    let ana = judge("ana", "correct horse battery").await?;
    let bo = judge("bo", "staple ribbon lamp").await?;
    let cy = judge("cy", "harbour ferry lantern").await?;
    let di = judge("di", "typhoon signal eight").await?;
    let rules = two_judges();
    let at = |m: i64| t0() + Duration::minutes(m);

    // Agreeing scores rule the report with their mean, by both.
    let agreed = db.store.file_report(RED, &attack_on_blue(), &[], at(1)).await?;
    let one = db.store.rule_report(agreed.id, &ana, &decision(true, 30, "seen in the logs"), &rules, at(2)).await?;
    ensure!(one.status == ReportStatus::Pending && one.rulings.is_empty() && one.scores.len() == 1, "{one:?}");
    ensure!(db.store.report_awards().await?.is_empty(), "one score awarded points");
    let e = db.store.rule_report(agreed.id, &ana, &decision(true, 31, ""), &rules, at(3)).await.unwrap_err();
    ensure!(matches!(e, StoreError::SameJudge { did: "already scored", .. }), "{e}");
    ensure!(e.to_string().contains("a second judge scores it blind"), "{e}");
    let both = db.store.rule_report(agreed.id, &bo, &decision(true, 39, "capture at 09:01"), &rules, at(4)).await?;
    ensure!(both.status == ReportStatus::Ruled && both.points() == 34, "{both:?}");
    let ruling = both.ruling(RulingStage::First).context("no ruling")?;
    ensure!(ruling.judge == "ana + bo" && ruling.judge_id == bo.id, "{ruling:?}");
    ensure!(ruling.decision.reason == "seen in the logs\n\ncapture at 09:01", "{:?}", ruling.decision.reason);
    ensure!(both.scores.iter().map(|s| s.judge.as_str()).collect::<Vec<_>>() == ["ana", "bo"], "{both:?}");

    // Disagreeing scores (valid and not) wait for a third judge, in the queue.
    let split = db.store.file_report(RED, &attack_on_blue(), &[], at(5)).await?;
    db.store.rule_report(split.id, &ana, &decision(true, 40, ""), &rules, at(6)).await?;
    let disputed = db.store.rule_report(split.id, &bo, &decision(false, 0, "no capture"), &rules, at(7)).await?;
    ensure!(disputed.status == ReportStatus::Disputed && disputed.rulings.is_empty(), "{disputed:?}");
    ensure!(db.store.report_queue().await?.iter().any(|r| r.id == split.id), "a disputed report left the queue");
    for scorer in [&ana, &bo] {
        let e = db.store.rule_report(split.id, scorer, &decision(true, 5, ""), &rules, at(8)).await.unwrap_err();
        ensure!(matches!(e, StoreError::SameJudge { did: "scored", .. }), "{e}");
    }
    let decided = db.store.rule_report(split.id, &cy, &decision(true, 20, "the pcap shows it"), &rules, at(9)).await?;
    ensure!(decided.status == ReportStatus::Ruled && decided.points() == 20, "{decided:?}");
    ensure!(decided.ruling(RulingStage::First).is_some_and(|r| r.judge == "cy"), "{decided:?}");

    // The appeal goes to a judge who took no part in the first ruling.
    db.store.appeal_report(split.id, RED, "worth more", &rules, at(10)).await?;
    for (part, did) in [(&ana, "scored"), (&cy, "made the first ruling of")] {
        let e = db.store.rule_appeal(split.id, part, &decision(true, 45, ""), &rules, at(11)).await.unwrap_err();
        ensure!(matches!(e, StoreError::SameJudge { did: d, .. } if d == did), "{e}");
    }
    let fin = db.store.rule_appeal(split.id, &di, &decision(true, 45, "more than a foothold"), &rules, at(12)).await?;
    ensure!(fin.status == ReportStatus::Final && fin.points() == 45, "{fin:?}");

    let points: Vec<(i64, u32)> = db.store.report_awards().await?.iter().map(|a| (a.report, a.points)).collect();
    ensure!(points == [(agreed.id, 34), (split.id, 20), (split.id, 45)], "{points:?}");
    let audit = db.store.list_audit(None, 100).await?;
    let lines: Vec<(&str, &str)> = audit.iter().map(|a| (a.actor.as_str(), a.action.as_str())).collect();
    ensure!(
        lines
            == [
                ("account ana", "report.score"),
                ("account bo", "report.score"),
                ("account bo", "report.rule"),
                ("account ana", "report.score"),
                ("account bo", "report.score"),
                ("account bo", "report.dispute"),
                ("account cy", "report.rule"),
                ("team:1", "report.appeal"),
                ("account di", "report.rule-appeal"),
            ],
        "audit {lines:?}"
    );
    ensure!(audit[2].detail["panel"] == serde_json::json!(["ana", "bo"]) && audit[2].detail["points"] == 34);
    ensure!(audit[6].detail["decides_dispute"] == true, "{:?}", audit[6].detail);
    Ok(())
}

async fn two_judges_scoring_at_once_both_count(db: TestDb) -> anyhow::Result<()> {
    ready(&db).await?;
    let ana = db.store.create_account("ana", AccountRole::Judge, "correct horse battery").await?;
    let bo = db.store.create_account("bo", AccountRole::Judge, "staple ribbon lamp").await?;
    for round in 0..5 {
        let r = db.store.file_report(RED, &attack_on_blue(), &[], t0() + Duration::minutes(round)).await?;
        let (s1, s2, a, b) = (db.store.clone(), db.store.clone(), ana.clone(), bo.clone());
        let id = r.id;
        let one =
            tokio::spawn(async move { s1.rule_report(id, &a, &decision(true, 10, ""), &two_judges(), t0()).await });
        let two =
            tokio::spawn(async move { s2.rule_report(id, &b, &decision(true, 12, ""), &two_judges(), t0()).await });
        let results = [one.await?, two.await?];
        ensure!(results.iter().all(|r| r.is_ok()), "{results:?}");
        // Whichever came second saw the other's score: the report is ruled, never left pending
        // with two scores.
        let now = db.store.report(id).await?.context("gone")?;
        ensure!(now.status == ReportStatus::Ruled && now.scores.len() == 2 && now.points() == 11, "{now:?}");
    }
    Ok(())
}

async fn records_around_a_window(db: TestDb) -> anyhow::Result<()> {
    ready(&db).await?;
    let sub = |attacker: TeamId, flag: &str, service: u8, minutes: i64| NewSubmission {
        capture: Capture {
            attacker,
            victim: BLUE,
            service: ServiceId(service),
            store: StoreIdx(0),
            planted: Tick(0),
            submitted: Tick(1),
        },
        flag: flag.into(),
        submitted_at: t0() + Duration::minutes(minutes),
    };
    db.store
        .insert_submissions(&[
            sub(RED, "F1", 1, 5),
            sub(RED, "F2", 2, 5),
            sub(RED_TWO, "F3", 1, 6),
            sub(RED, "F4", 1, 30),
        ])
        .await?;
    let got =
        db.store.captures_between(Some(RED), BLUE, Some(ServiceId(1)), t0(), t0() + Duration::minutes(10)).await?;
    ensure!(got.iter().map(|s| s.submission.flag.as_str()).collect::<Vec<_>>() == vec!["F1"], "{got:?}");
    let any = db.store.captures_between(None, BLUE, None, t0(), t0() + Duration::minutes(10)).await?;
    ensure!(any.len() == 3, "{any:?}");
    ensure!(db.store.captures_between(Some(RED), TeamId(4), None, t0(), t0() + Duration::hours(1)).await?.is_empty());

    let check = |minutes: i64, verdict: Verdict| CheckResult {
        tick: Tick(u32::try_from(minutes).unwrap()),
        team: BLUE,
        service: ServiceId(1),
        action: Action::Check,
        store: None,
        verdict,
        message: String::new(),
        log: "private".into(),
        duration_ms: 3,
        recorded_at: t0() + Duration::minutes(minutes),
        fault: None,
    };
    db.store
        .record_tick_results(&[], &[check(1, Verdict::Ok), check(4, Verdict::Down), check(20, Verdict::Ok)])
        .await?;
    let got = db.store.check_results_between(BLUE, ServiceId(1), t0(), t0() + Duration::minutes(10)).await?;
    ensure!(got.iter().map(|c| c.verdict).collect::<Vec<_>>() == vec![Verdict::Ok, Verdict::Down], "{got:?}");
    Ok(())
}

/// After the drill's last tick, with the public board frozen at it, a ruling counts from the
/// tick after the freeze: every frozen view leaves it out, the live board counts it.
async fn a_ruling_made_while_the_board_is_frozen_counts_after_the_freeze(db: TestDb) -> anyhow::Result<()> {
    ready(&db).await?;
    db.store.open_tick(Tick(0), t0()).await?;
    db.store.open_tick(Tick(1), t0() + Duration::minutes(1)).await?;
    let ana = db.store.create_account("ana", AccountRole::Judge, "correct horse battery").await?;
    let early = db.store.file_report(RED, &attack_on_blue(), &[], t0() + Duration::minutes(2)).await?;
    let late = db.store.file_report(RED_TWO, &attack_on_blue(), &[], t0() + Duration::minutes(2)).await?;
    db.store.rule_report(early.id, &ana, &decision(true, 10, ""), &rules(), t0() + Duration::minutes(3)).await?;
    db.store.set_board_freeze(Some(Tick(1)), t0() + Duration::minutes(4)).await?;
    db.store.rule_report(late.id, &ana, &decision(true, 20, ""), &rules(), t0() + Duration::minutes(5)).await?;
    let ticks: Vec<(i64, Tick)> = db.store.report_awards().await?.iter().map(|a| (a.report, a.tick)).collect();
    ensure!(ticks == [(early.id, Tick(1)), (late.id, Tick(2))], "the later ruling counts after the freeze: {ticks:?}");
    Ok(())
}
