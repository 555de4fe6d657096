//! Report points on the scoreboard: the shared two-tick game with a `[reports]` table, reports
//! filed and ruled through the store as the judges' API does, the `ReportRuled` event on the
//! feed, and `/api/scoreboard` showing each team's weighted report points in its total and
//! rank, exactly as the scenario's `report_weight` and `scoring` say.

mod common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, ensure};
use common::*;
use gongfang_core::AccountRole;
use gongfang_core::event::GameEvent;
use gongfang_core::report::{CheckedReport, Decision, ReportKind, RulingStage, TimeWindow};
use gongfang_core::scenario::Scenario;
use gongfang_core::{ServiceId, TeamId};
use gongfang_store::Account;
use gongfang_test_support::http::get;
use gongfang_web::WebSettings;
use serde_json::Value;

/// The shared test game with reports worth 2.5 flag points each, on top of the full formula.
fn with_reports(scoring: &str) -> Scenario {
    let scoring = format!("{scoring:?}");
    let s = drill()
        .reports(&[
            ("attack_max_points", "50"),
            ("defence_max_points", "40"),
            ("scoring", &scoring),
            ("report_weight", "2.5"),
        ])
        .build();
    assert!(s.reports.enabled && s.reports.weight == 2.5, "{:?}", s.reports);
    s
}

/// A running scoreboard over `scenario` (the common `App` runs the report-less one), filled
/// with the common game, tick 2 running.
struct Board {
    app: App,
    scenario: Arc<Scenario>,
}

impl std::ops::Deref for Board {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

impl Board {
    async fn start(scenario: Scenario, settings: WebSettings) -> Result<Board> {
        let scenario = Arc::new(scenario);
        Ok(Board { app: App::start_with(scenario.clone(), 64, settings).await?, scenario })
    }

    async fn scoreboard(&self) -> Result<Value> {
        let answer = get(self.addr, "/api/scoreboard").await?;
        ensure!(answer.status == 200, "status {}", answer.status);
        Ok(without_now(answer.json()?))
    }

    async fn judge(&self, name: &str) -> Result<Account> {
        Ok(self.store.create_account(name, AccountRole::Judge, "a long enough judge password").await?)
    }

    /// Files `report` for `team` and rules it as `decision` says, publishing the ruling as the
    /// judges' API does; returns the report's id.
    async fn file_and_rule(
        &self,
        team: TeamId,
        report: &CheckedReport,
        judge: &Account,
        decision: &Decision,
    ) -> Result<i64> {
        let filed = self.store.file_report(team, report, &[], at(125)).await?;
        let ruled = self.store.rule_report(filed.id, judge, decision, &self.scenario.reports, at(130)).await?;
        self.publish(filed.id, team, report.kind, RulingStage::First, decision)?;
        ensure!(ruled.points() == decision.points, "{ruled:?}");
        Ok(filed.id)
    }

    fn publish(&self, report: i64, team: TeamId, kind: ReportKind, stage: RulingStage, d: &Decision) -> Result<()> {
        let event = GameEvent::ReportRuled { report, team, kind, stage, valid: d.valid, points: d.points };
        self.events.send(event).map_err(|_| anyhow::anyhow!("nobody listens to the event feed"))?;
        Ok(())
    }

    async fn stop(self) -> Result<()> {
        self.app.stop().await
    }
}

fn attack(target: TeamId, service: ServiceId) -> CheckedReport {
    CheckedReport {
        kind: ReportKind::Attack,
        target_team: Some(target),
        service,
        window: TimeWindow { from: at(60), to: at(110) },
        technique: "weak admin password on the portal".into(),
        attack_id: None,
        description: "logged in as admin/admin and exported every dataset".into(),
        evidence: "POST /login user=admin pass=admin -> 302 /admin".into(),
        traced_address: None,
        traced_team: None,
    }
}

fn defence(service: ServiceId, traced: Option<TeamId>) -> CheckedReport {
    CheckedReport {
        kind: ReportKind::Defence,
        target_team: None,
        service,
        window: TimeWindow { from: at(60), to: at(110) },
        technique: "blocked a password spray at the reverse proxy".into(),
        attack_id: None,
        description: "rate limit on /login after 20 failures from one address".into(),
        evidence: "proxy log excerpt".into(),
        traced_address: None,
        traced_team: traced,
    }
}

fn valid(points: u32) -> Decision {
    Decision { valid: true, points, reason: "evidence confirms it".into(), reason_codes: Vec::new(), finding: None }
}

fn invalid() -> Decision {
    Decision {
        valid: false,
        points: 0,
        reason: "the evidence does not show access".into(),
        reason_codes: Vec::new(),
        finding: None,
    }
}

/// `(slug, rank, reports, total)` of every team, best first.
fn ranking(board: &Value) -> Vec<(String, u64, f64, f64)> {
    board["teams"]
        .as_array()
        .expect("a scoreboard lists teams")
        .iter()
        .map(|t| {
            (
                t["slug"].as_str().unwrap().to_owned(),
                t["rank"].as_u64().unwrap(),
                t["reports"].as_f64().unwrap(),
                t["total"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn row(slug: &str, rank: u64, reports: f64, total: f64) -> (String, u64, f64, f64) {
    (slug.to_owned(), rank, reports, total)
}

fn team<'a>(board: &'a Value, slug: &str) -> &'a Value {
    board["teams"].as_array().unwrap().iter().find(|t| t["slug"] == slug).unwrap_or_else(|| panic!("no team {slug}"))
}

/// The board as of tick 1 (the latest scored): ddb 8 (2 attack + 6 SLA), red 3.5, crd 2 and nop
/// 2 (tied, crd first by id), nobody with report points.
fn before() -> Vec<(String, u64, f64, f64)> {
    vec![row("ddb", 1, 0.0, 8.0), row("red", 2, 0.0, 3.5), row("crd", 3, 0.0, 2.0), row("nop", 4, 0.0, 2.0)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_ruling_adds_weighted_points_and_moves_the_team_up() -> Result<()> {
    // A cache that never expires on its own: only the ruling's event can refresh the board.
    let app = Board::start(
        with_reports("formula"),
        WebSettings { max_age: Duration::from_secs(3600), ..WebSettings::default() },
    )
    .await?;
    let start = app.scoreboard().await?;
    assert_eq!(ranking(&start), before());

    let ana = app.judge("ana").await?;
    let filed = app.store.file_report(RED, &attack(CRD, OPENDATA), &[], at(125)).await?;
    app.store.rule_report(filed.id, &ana, &valid(3), &app.scenario.reports, at(130)).await?;
    // Ruled in the store but not yet announced: the cached board still stands.
    assert_eq!(ranking(&app.scoreboard().await?), before(), "the board changed without an event");

    app.publish(filed.id, RED, ReportKind::Attack, RulingStage::First, &valid(3))?;
    let after = eventually("red's report points on the board", || async {
        let b = app.scoreboard().await?;
        Ok((team(&b, "red")["reports"].as_f64() != Some(0.0)).then_some(b))
    })
    .await?;
    // 3 points × 2.5 = 7.5 on top of red's 3.5: 11, ahead of ddb's 8.
    assert_eq!(
        ranking(&after),
        vec![row("red", 1, 7.5, 11.0), row("ddb", 2, 0.0, 8.0), row("crd", 3, 0.0, 2.0), row("nop", 4, 0.0, 2.0)]
    );
    // The flag scores behind the totals are untouched.
    for slug in ["ddb", "crd", "nop", "red"] {
        for part in ["attack", "defence", "sla"] {
            assert_eq!(team(&after, slug)[part], team(&start, slug)[part], "{slug}'s {part}");
        }
    }

    // Red appeals; a second judge lowers it to 1 point, which replaces the 3: red falls back.
    let bo = app.judge("bo").await?;
    app.store.appeal_report(filed.id, RED, "the export is in the evidence", &app.scenario.reports, at(140)).await?;
    app.store.rule_appeal(filed.id, &bo, &valid(1), &app.scenario.reports, at(150)).await?;
    app.publish(filed.id, RED, ReportKind::Attack, RulingStage::Appeal, &valid(1))?;
    let appealed = eventually("the appeal ruling on the board", || async {
        let b = app.scoreboard().await?;
        Ok((team(&b, "red")["reports"].as_f64() == Some(2.5)).then_some(b))
    })
    .await?;
    assert_eq!(
        ranking(&appealed),
        vec![row("ddb", 1, 0.0, 8.0), row("red", 2, 2.5, 6.0), row("crd", 3, 0.0, 2.0), row("nop", 4, 0.0, 2.0)]
    );

    // A defence report of nop's worth 1 point (2.5) breaks its tie with crd.
    app.file_and_rule(NOP, &defence(KV, Some(RED)), &ana, &valid(1)).await?;
    let untied = eventually("nop's report points on the board", || async {
        let b = app.scoreboard().await?;
        Ok((team(&b, "nop")["reports"].as_f64() == Some(2.5)).then_some(b))
    })
    .await?;
    assert_eq!(
        ranking(&untied),
        vec![row("ddb", 1, 0.0, 8.0), row("red", 2, 2.5, 6.0), row("nop", 3, 2.5, 4.5), row("crd", 4, 0.0, 2.0)]
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_ruling_changes_nothing() -> Result<()> {
    // No cache at all: every request reads the store, so "unchanged" means the ruling counted 0.
    let app = Board::start(with_reports("formula"), WebSettings { max_age: Duration::ZERO, ..WebSettings::default() })
        .await?;
    let start = app.scoreboard().await?;
    assert_eq!(ranking(&start), before());

    let ana = app.judge("ana").await?;
    app.file_and_rule(CRD, &defence(OPENDATA, Some(RED)), &ana, &invalid()).await?;
    app.file_and_rule(RED, &attack(NOP, KV), &ana, &invalid()).await?;
    let awards = app.store.report_awards().await?;
    ensure!(awards.len() == 2 && awards.iter().all(|a| a.points == 0), "both rulings are stored, worth 0: {awards:?}");

    let after = app.scoreboard().await?;
    assert_eq!(after, start, "an invalid ruling moved the board");
    app.stop().await
}

/// Each side's places: (slug, `red_rank` or `blue_rank`), best first.
fn side(board: &Value, key: &str) -> Vec<(String, u64)> {
    let mut places: Vec<(String, u64)> = board["teams"]
        .as_array()
        .expect("a scoreboard lists teams")
        .iter()
        .filter_map(|t| Some((t["slug"].as_str()?.to_owned(), t[key].as_u64()?)))
        .collect();
    places.sort_by_key(|(_, rank)| *rank);
    places
}

fn places(slugs: &[&str]) -> Vec<(String, u64)> {
    slugs.iter().zip(1..).map(|(slug, rank)| ((*slug).to_owned(), rank)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_blue_scoring_counts_availability_and_ranks_each_side_apart() -> Result<()> {
    let app = Board::start(
        with_reports("red-blue"),
        WebSettings { max_age: Duration::from_secs(3600), ..WebSettings::default() },
    )
    .await?;
    // Totals count captures, flags lost and availability, as in a symmetric drill (ddb 2 + 6
    // SLA); the teams that attack (ddb and crd attack and defend, red only attacks) are ranked
    // among themselves, and so are the teams that defend.
    let start = app.scoreboard().await?;
    assert_eq!(ranking(&start), before());
    assert_eq!(start["drill"]["red_blue"], true);
    assert_eq!(side(&start, "red_rank"), places(&["ddb", "red", "crd"]));
    assert_eq!(side(&start, "blue_rank"), places(&["ddb", "crd", "nop"]));
    assert!(team(&start, "red").get("blue_rank").is_none(), "a red team is in no blue ranking");

    // crd's defence report worth 2 points: 2 × 2.5 = 5, so 2 + 5 = 7, second on both sides.
    let judge = app.judge("ana").await?;
    app.file_and_rule(CRD, &defence(OPENDATA, Some(RED)), &judge, &valid(2)).await?;
    let after = eventually("crd's report points on the board", || async {
        let b = app.scoreboard().await?;
        Ok((team(&b, "crd")["reports"].as_f64() == Some(5.0)).then_some(b))
    })
    .await?;
    assert_eq!(
        ranking(&after),
        vec![row("ddb", 1, 0.0, 8.0), row("crd", 2, 5.0, 7.0), row("red", 3, 0.0, 3.5), row("nop", 4, 0.0, 2.0)]
    );
    assert_eq!(side(&after, "red_rank"), places(&["ddb", "crd", "red"]));
    assert_eq!(side(&after, "blue_rank"), places(&["ddb", "crd", "nop"]));
    app.stop().await
}
