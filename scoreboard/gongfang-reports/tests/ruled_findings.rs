//! The rule-based preset end to end, over real HTTP with the real store (SQLite, and PostgreSQL
//! when configured), on the shipped red/blue scenario with `scoring = "rules"` and two judges
//! per report: red teams file one attack result of each type against two blue units (one
//! weakness found twice), blue teams file defence results linked to them; two judges score each
//! blind, a third decides where their findings differ, one appeal is ruled; the drill's export
//! ranks red among red and blue among blue exactly as computed by hand below, and recomputes
//! to the same standings from its own events. The rulings' errors are checked on the way. In
//! headless Chromium, in both languages, judges record an attack's and a defence's finding on
//! the workbench; screenshots under `target/screenshots/`.

mod common;

use anyhow::{Context as _, ensure};
use gongfang_core::export::FinalStanding;
use gongfang_core::scenario::{JudgePanel, KeyUnit, ReportScoring, RulePreset};
use gongfang_core::{AccountRole, TeamId, Tick};
use gongfang_test_support::TestDb;
use gongfang_test_support::browser::{Browser, Cdp, chromium_or_skip, click, fill, submit};
use gongfang_test_support::http::Response;
use serde_json::{Value, json};

use common::*;

gongfang_test_support::backend_tests!(
    setup = rules_drill;
    red_and_blue_rank_by_the_preset_tables,
    bad_findings_are_refused_and_nothing_is_ruled,
);

const JSON: (&str, &str) = ("Content-Type", "application/json");
const CY: (&str, &str) = ("cy", "harbour ferry lantern");

/// The red/blue drill scored by the preset's default tables, the Digital Development Bureau a
/// key unit worth 150 %, two judges per report (and Cy, a third judge).
async fn rules_drill(db: TestDb) -> App {
    let app = spawn_with(db, |s| {
        s.reports.scoring = ReportScoring::Rules;
        s.reports.panel = JudgePanel::BlindPair { max_difference: 10 };
        s.reports.preset =
            Some(RulePreset { key_units: vec![KeyUnit { team: DDB, multiplier: 150 }], ..RulePreset::default() });
    })
    .await;
    app.store.create_account(CY.0, AccountRole::Judge, CY.1).await.unwrap();
    app
}

async fn file(app: &App, team: TeamId, report: Value) -> anyhow::Result<i64> {
    let auth = team_auth(app, team);
    let r = app.request("POST", "/api/reports", &[(auth.0, &auth.1), JSON], report.to_string().as_bytes()).await;
    ensure!(r.status == 201, "{}", r.text());
    r.json()?["id"].as_i64().context("an id")
}

/// An attack report on `unit`, stated to have happened `minute` minutes into the drill.
fn attack(unit: &str, minute: i64, what: &str) -> Value {
    json!({
        "kind": "attack",
        "target_team": unit,
        "service": "opendata",
        "from": at(minute),
        "to": at(minute + 5),
        "technique": what,
        "description": format!("{what}: steps and output in the evidence."),
        "evidence": "$ curl -s http://10.60.11.2:7000/ ...",
    })
}

fn defence(minute: i64, what: &str) -> Value {
    json!({
        "kind": "defence",
        "service": "opendata",
        "from": at(minute),
        "to": at(minute + 5),
        "technique": what,
        "description": format!("{what}: timeline and logs in the evidence."),
        "evidence": "Sep 01 10:42 sshd: blocked 10.60.1.9",
    })
}

async fn rule(app: &App, judge: &(&str, String), id: i64, stage: &str, body: Value) -> Response {
    let path = format!("/api/judge/reports/{id}/{stage}");
    app.request("POST", &path, &[(judge.0, &judge.1), JSON], body.to_string().as_bytes()).await
}

fn found(attack_type: &str, weakness: &str) -> Value {
    json!({ "valid": true, "finding": { "kind": "attack", "attack_type": attack_type, "weakness": weakness } })
}

fn answers(report: i64, rubric: Value, bonus: u32) -> Value {
    json!({
        "valid": true,
        "finding": { "kind": "defence", "link": { "kind": "attack", "report": report }, "rubric": rubric, "bonus": bonus },
    })
}

/// Two judges score `id` blind with the same decision: it is ruled.
async fn both(app: &App, judges: [&(&str, String); 2], id: i64, body: Value) -> anyhow::Result<Value> {
    let first = rule(app, judges[0], id, "ruling", body.clone()).await;
    ensure!(first.status == 200 && first.json()?["status"] == "pending", "{}", first.text());
    let second = rule(app, judges[1], id, "ruling", body).await;
    ensure!(second.status == 200 && second.json()?["status"] == "ruled", "{}", second.text());
    second.json()
}

async fn red_and_blue_rank_by_the_preset_tables(app: App) -> anyhow::Result<()> {
    app.store.open_tick(Tick(0), at(0)).await?;
    app.set_now(at(100));
    let (ana, bo, cy) = (judge_auth(&app, ANA).await, judge_auth(&app, BO).await, judge_auth(&app, CY).await);
    let setup = app.request("GET", "/api/judge/workbench", &[(ana.0, &ana.1)], b"").await.json()?;
    ensure!(setup["rules"]["attack_types"].as_array().map(Vec::len) == Some(5), "the form's tables: {setup}");
    ensure!(setup["rules"]["rubric"][0]["slug"] == "detection-timeliness", "{setup}");

    // One attack result of each type against two blue units; the VPN's default password on
    // the DDB found by both red teams, the academy's stated later than the firm's, though
    // filed first.
    let repeat = file(&app, RED_ACADEMY, attack("ddb", 15, "VPN portal default password")).await?;
    let breach = file(&app, RED_FIRM, attack("ddb", 10, "VPN portal default password")).await?;
    let control = file(&app, RED_FIRM, attack("ddb", 20, "remote code execution on the data steward")).await?;
    let data = file(&app, RED_FIRM, attack("crd", 30, "public bucket of citizen records")).await?;
    let path = file(&app, RED_FIRM, attack("crd", 40, "jump host to the registry network")).await?;
    let other = file(&app, RED_FIRM, attack("crd", 50, "office printer admin page")).await?;

    both(&app, [&ana, &bo], repeat, found("perimeter-breach", "vpn-default-password")).await?;
    // The two judges' keys for the weakness differ only by spaces around it: they agree.
    ensure!(rule(&app, &bo, breach, "ruling", found("perimeter-breach", "vpn-default-password")).await.status == 200);
    let agreed = rule(&app, &ana, breach, "ruling", found("perimeter-breach", " vpn-default-password ")).await;
    ensure!(agreed.json()?["status"] == "ruled", "{}", agreed.text());
    both(&app, [&ana, &bo], control, found("target-control", "steward-rce")).await?;
    both(&app, [&ana, &bo], data, found("data-access", "open-bucket")).await?;
    // Ana and Bo disagree on the attack path's type: Cy, who scored neither, decides.
    ensure!(rule(&app, &ana, path, "ruling", found("attack-path", "jump-host")).await.status == 200);
    let disputed = rule(&app, &bo, path, "ruling", found("other-system", "jump-host")).await.json()?;
    ensure!(disputed["status"] == "disputed", "different attack types are a dispute: {disputed}");
    let decided = rule(&app, &cy, path, "ruling", found("attack-path", "jump-host")).await.json()?;
    ensure!(decided["status"] == "ruled" && decided["rulings"][0]["finding"]["attack_type"] == "attack-path");
    // The printer is ruled out of scope, appealed, and found valid by Cy on appeal.
    let out = json!({ "valid": false, "reason": "the printer is not a government system" });
    both(&app, [&ana, &bo], other, out).await?;
    let auth = team_auth(&app, RED_FIRM);
    let appeal = br#"{"reason": "the printer holds scanned identity cards; see evidence"}"#;
    let appealed =
        app.request("POST", &format!("/api/reports/{other}/appeal"), &[(auth.0, &auth.1), JSON], appeal).await;
    ensure!(appealed.json()?["status"] == "appealed", "{}", appealed.text());
    let fin = rule(&app, &cy, other, "appeal-ruling", found("other-system", "printer-admin")).await.json()?;
    ensure!(fin["status"] == "final", "{fin}");

    // Blue answers: the DDB the steward's takeover (the judges' rubrics differ within the
    // panel's reach: their mean counts), the CRD the bucket twice (the second adds tracing
    // only), the CRD the printer's (ruled after the appeal).
    let ddb = file(&app, DDB, defence(22, "detected and contained the steward takeover")).await?;
    let ana_rubric = json!({"detection-timeliness": 10, "response": 15, "analysis": 10});
    let bo_rubric = json!({"detection-timeliness": 10, "response": 10, "analysis": 10});
    ensure!(rule(&app, &ana, ddb, "ruling", answers(control, ana_rubric, 10)).await.status == 200);
    let mean = rule(&app, &bo, ddb, "ruling", answers(control, bo_rubric, 20)).await.json()?;
    ensure!(mean["status"] == "ruled", "{mean}");
    let finding = &mean["rulings"][0]["finding"];
    ensure!(finding["rubric"]["response"] == 12 && finding["bonus"] == 15, "the mean, rounded down: {mean}");
    let crd1 = file(&app, CRD, defence(31, "found the bucket open and closed it")).await?;
    both(&app, [&ana, &bo], crd1, answers(data, json!({"detection-coverage": 10, "notification": 10}), 0)).await?;
    let crd2 = file(&app, CRD, defence(33, "traced the bucket's reader")).await?;
    both(&app, [&ana, &bo], crd2, answers(data, json!({"detection-coverage": 10, "tracing": 15}), 0)).await?;

    app.store.close_tick(Tick(0), at(110)).await?;
    app.store.mark_tick_scored(Tick(0), at(110)).await?;
    let export = gongfang_reports::export::build(&app.store, &app.scenario).await?;

    // By hand, findings in stated order (DDB counts 150 %, its caps before the multiplier):
    //   firm breach   t10  perimeter 100 × 100 %          = 100 → 150 (DDB)
    //   academy       t15  perimeter 100 × 70 % (repeat)   =  70 → 105 (DDB)
    //   firm control  t20  target    300                   = 300 → 450 (DDB)
    //   firm data     t30  data      200                   = 200       (CRD)
    //   firm path     t40  path      150                   = 150       (CRD)
    //   firm printer  t50  other      50 (on appeal)       =  50       (CRD)
    // Red: firm 150 + 450 + 200 + 150 + 50 = 1000; academy 105.
    // DDB lost 705 and answered the takeover with (10 + 12 + 10) % of 450 = 144, bonus 15:
    //   159 − 705 = −546. CRD lost 400 and answered the bucket with 20 % then 15 % (coverage
    //   already scored) of 200 = 40 + 30: 70 − 400 = −330. CHRA: 0.
    let want = [
        (RED_FIRM, 1000, 0, 0, 1000.0, Some(1), None),
        (RED_ACADEMY, 105, 0, 0, 105.0, Some(2), None),
        (CHRA, 0, 0, 0, 0.0, None, Some(1)),
        (CRD, 0, 70, 400, -330.0, None, Some(2)),
        (DDB, 0, 159, 705, -546.0, None, Some(3)),
    ];
    let team = |id: TeamId| export.standings.iter().find(|s| s.team == id);
    for (id, attack, defence, lost, total, red, blue) in want {
        let s: &FinalStanding = team(id).with_context(|| format!("team {id} in the standings"))?;
        let points = (s.report_points.attack, s.report_points.defence, s.report_points.lost);
        ensure!(points == (attack, defence, lost), "team {id}: {points:?}, want {:?}", (attack, defence, lost));
        ensure!(s.total == total && s.red_rank == red && s.blue_rank == blue, "team {id}: {s:?}");
    }
    // Each report shows what its finding is worth now, to its team and everywhere else: the
    // academy's repeat 105, the firm's appealed printer 50, the DDB's defence 159.
    let auth = team_auth(&app, RED_ACADEMY);
    let seen = app.request("GET", &format!("/api/reports/{repeat}"), &[(auth.0, &auth.1)], b"").await.json()?;
    ensure!(seen["points"] == 105 && seen["rulings"][0]["points"] == 105, "{seen}");
    let shown = gongfang_reports::commands::show_report(&app.store, &app.scenario, other).await?;
    ensure!(shown.contains("worth now:   50 points") && shown.contains("blind score by ana"), "{shown}");
    ensure!(shown.contains(r#""attack_type":"other-system""#), "the appeal's finding: {shown}");
    let listed = gongfang_reports::commands::list_reports(&app.store, &app.scenario, Some("ruled")).await?;
    ensure!(listed.lines().any(|l| l.starts_with(&format!("{ddb:>5}")) && l.contains(" 159  ")), "{listed}");
    let debrief = gongfang_reports::after_action::build(&app.store, &app.scenario, &export, "red-firm").await?;
    let html = debrief.html(gongfang_reports::after_action::Lang::En);
    ensure!(html.contains("ruled valid, 450 points") && html.contains("ruled valid, 50 points"), "{html}");

    // From the export's own events the findings score the same. (The test stored no flag
    // scores for its tick, which the recomputation scores afresh: its SLA differs, not the
    // report points nor the ranks.)
    let reports = |s: &[FinalStanding]| -> Vec<_> {
        s.iter().map(|s| (s.team, s.report_points, s.reports, s.red_rank, s.blue_rank)).collect()
    };
    let again = export.recompute()?;
    ensure!(reports(&again) == reports(&export.standings), "recomputed: {again:?}\nexported: {:?}", export.standings);
    Ok(())
}

async fn bad_findings_are_refused_and_nothing_is_ruled(app: App) -> anyhow::Result<()> {
    app.store.open_tick(Tick(0), at(0)).await?;
    app.set_now(at(100));
    let ana = judge_auth(&app, ANA).await;
    let on_ddb = file(&app, RED_FIRM, attack("ddb", 10, "VPN portal default password")).await?;
    let on_crd = file(&app, RED_ACADEMY, attack("crd", 10, "public bucket")).await?;
    let answer = file(&app, DDB, defence(12, "blocked the VPN login")).await?;

    let cases = [
        (on_ddb, json!({"valid": true}), "finding_required", "`finding` with `attack_type` and `weakness`"),
        (
            on_ddb,
            json!({"valid": true, "points": 40, "finding": found("data-access", "x")["finding"]}),
            "points_under_rules",
            "send points = 0",
        ),
        (on_ddb, found("defacement", "x"), "unknown_attack_type", "use one of: perimeter-breach, target-control"),
        (on_ddb, found("data-access", "  "), "missing_field", "`weakness`"),
        (on_ddb, answers(on_ddb, json!({}), 0), "finding_kind", "send `kind = \"attack\"`"),
        (
            on_ddb,
            json!({"valid": false, "reason": "no", "finding": found("data-access", "x")["finding"]}),
            "finding_for_invalid",
            "leave `finding` out",
        ),
        (answer, answers(on_crd, json!({}), 0), "bad_link", "another team's systems"),
        (answer, answers(answer, json!({}), 0), "bad_link", "is a defence report"),
        (answer, answers(9999, json!({}), 0), "bad_link", "there is no report 9999"),
        (answer, answers(on_ddb, json!({"response": 16}), 0), "share_above_max", "above its largest share, 15 %"),
        (answer, answers(on_ddb, json!({"luck": 5}), 0), "unknown_criterion", "use one of: detection-timeliness"),
        (answer, answers(on_ddb, json!({}), 101), "bonus_above_max", "above the 100 points"),
    ];
    for (id, body, code, says) in cases {
        let r = rule(&app, &ana, id, "ruling", body.clone()).await;
        ensure!(r.status == 422 && r.code() == code, "{body}: {} {}", r.status, r.text());
        let message = r.json()?["error"]["message"].as_str().unwrap_or_default().to_owned();
        ensure!(message.contains(says), "{body}: `{message}` does not say `{says}`");
    }
    for id in [on_ddb, answer] {
        let report = app.store.report(id).await?.context("the report")?;
        ensure!(report.scores.is_empty() && report.rulings.is_empty(), "report {id} was scored: {report:?}");
    }
    // A capture the drill never recorded is no attack to answer.
    let capture =
        json!({"kind": "capture", "attacker": 1, "victim": 11, "service": 1, "store": 0, "planted": 0, "submitted": 0});
    let body = json!({"valid": true, "finding": {"kind": "defence", "link": capture}});
    let r = rule(&app, &ana, answer, "ruling", body).await;
    ensure!(r.status == 422 && r.code() == "bad_link" && r.text().contains("no capture"), "{}", r.text());
    Ok(())
}

async fn findings_on_the_workbench(cdp: &mut Cdp, app: &App, attack: i64, defence: i64) -> anyhow::Result<()> {
    // Ana, in English: an attack's form asks for its type and weakness, not for points.
    open_as(cdp, app, ANA, "en", attack).await?;
    let shown = cdp
        .eval("[document.getElementById('finding-attack').hidden, document.getElementById('finding-defence').hidden, document.getElementById('rule-points').parentElement.hidden]")
        .await?;
    ensure!(shown == json!([false, true, true]), "the attack's finding replaces points: {shown}");
    let types = cdp
        .eval("[...document.querySelectorAll('#rule-attack-type option')].map((o) => o.textContent).join('|')")
        .await?;
    ensure!(types.as_str().is_some_and(|t| t.contains("Control of a target system (300)")), "{types}");
    cdp.eval(&click("#rule-valid")).await?;
    cdp.eval(&fill("rule-attack-type", "target-control")).await?;
    cdp.eval(&fill("rule-weakness", "steward-rce")).await?;
    cdp.eval(&submit("ruling-form")).await?;
    cdp.wait_for("ana's score shown", "document.querySelectorAll('[data-score]').length === 1").await?;
    let mine = cdp.eval("document.querySelector('[data-score]').textContent").await?;
    ensure!(mine.as_str().is_some_and(|t| t.contains("Control of a target system, weakness steward-rce")), "{mine}");
    shot(cdp, "workbench-finding-attack-en").await?;

    // Bo, in Chinese: the defence answers the attack report by its number, on the rubric.
    open_as(cdp, app, BO, "zh-HK", defence).await?;
    let legend = cdp.eval("document.querySelector('#finding-defence legend').textContent").await?;
    ensure!(legend.as_str().is_some_and(|t| t.contains("評分表")), "{legend}");
    let criterion = cdp.eval("document.querySelector('label[for=\"rule-rubric-response\"]').textContent").await?;
    ensure!(criterion == "應變處理（最多 15%）", "{criterion}");
    cdp.eval(&click("#rule-valid")).await?;
    cdp.eval(&fill("rule-link", "report")).await?;
    cdp.eval(&fill("rule-link-report", &attack.to_string())).await?;
    cdp.eval(&fill("rule-rubric-detection-timeliness", "10")).await?;
    cdp.eval(&fill("rule-rubric-response", "15")).await?;
    cdp.eval(&fill("rule-bonus", "5")).await?;
    cdp.eval(&fill("rule-reason", "及時偵測並隔離受影響伺服器")).await?;
    cdp.eval(&submit("ruling-form")).await?;
    cdp.wait_for("bo's score shown", "document.querySelectorAll('[data-score]').length === 1").await?;
    let his = cdp.eval("document.querySelector('[data-score]').textContent").await?;
    ensure!(his.as_str().is_some_and(|t| t.contains(&format!("回應攻擊報告 {attack}"))), "{his}");
    shot(cdp, "workbench-finding-defence-zh-HK").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judges_record_findings_in_the_browser() -> anyhow::Result<()> {
    let Some(chromium) = chromium_or_skip()? else { return Ok(()) };
    let app = rules_drill(TestDb::sqlite().await).await;
    app.store.open_tick(Tick(0), at(0)).await?;
    app.set_now(at(100));
    let attack_id = file(&app, RED_FIRM, attack("ddb", 20, "remote code execution on the data steward")).await?;
    let defence_id = file(&app, DDB, defence(22, "detected and contained the steward takeover")).await?;
    let mut browser = Browser::launch(&chromium).await?;
    let outcome = findings_on_the_workbench(&mut browser.cdp, &app, attack_id, defence_id).await;
    let problems = std::mem::take(&mut browser.cdp.problems);
    browser.close().await?;
    outcome?;
    ensure!(problems.is_empty(), "the page reported problems: {problems:#?}");

    // The second judges agree over the API: both reports are ruled with the findings typed.
    let (ana, bo) = (judge_auth(&app, ANA).await, judge_auth(&app, BO).await);
    let ruled = rule(&app, &bo, attack_id, "ruling", found("target-control", "steward-rce")).await.json()?;
    ensure!(ruled["status"] == "ruled", "{ruled}");
    let rubric = json!({"detection-timeliness": 10, "response": 15});
    let ruled = rule(&app, &ana, defence_id, "ruling", answers(attack_id, rubric.clone(), 5)).await.json()?;
    ensure!(ruled["status"] == "ruled" && ruled["rulings"][0]["finding"]["rubric"] == rubric, "{ruled}");
    ensure!(ruled["rulings"][0]["reason"] == "及時偵測並隔離受影響伺服器", "{ruled}");
    app.stop().await;
    Ok(())
}
