//! Two judges per report, over real HTTP with the real store (SQLite, and PostgreSQL when
//! configured): each judge's score stays hidden from the other judges until both have scored
//! and from the team always; agreeing scores rule the report, disagreeing ones wait for a third
//! judge who scored neither; only a ruling is published on the event feed. Observers and
//! organisers read the reports' anonymised counts, and observers reach no report or evidence.
//! In headless Chromium, in both languages: two judges score one report blind on the workbench
//! and see it disputed, and one grades a team's answer to an inject; screenshots under
//! `target/screenshots/`.

mod common;

use anyhow::{Context as _, ensure};
use gongfang_core::event::GameEvent;
use gongfang_core::report::{ReportKind, RulingStage};
use gongfang_core::scenario::JudgePanel;
use gongfang_test_support::TestDb;
use gongfang_test_support::browser::{Browser, Cdp, chromium_or_skip, click, fill, submit};
use gongfang_test_support::http::Response;
use serde_json::{Value, json};

use common::*;

gongfang_test_support::backend_tests!(
    setup = two_judges;
    scores_stay_blind_until_both_are_in,
    agreeing_scores_rule_with_their_mean,
    observers_count_reports_without_seeing_them,
);

const JSON: (&str, &str) = ("Content-Type", "application/json");
const CY: (&str, &str) = ("cy", "harbour ferry lantern");

/// The red/blue drill with two judges per report, their scores agreeing within 10 points.
async fn two_judges(db: TestDb) -> App {
    let app = spawn_with(db, |s| s.reports.panel = JudgePanel::BlindPair { max_difference: 10 }).await;
    app.store.create_account(CY.0, gongfang_core::AccountRole::Judge, CY.1).await.unwrap();
    app
}

async fn file(app: &App) -> anyhow::Result<i64> {
    file_as(app, RED_FIRM).await
}

async fn file_as(app: &App, team: gongfang_core::TeamId) -> anyhow::Result<i64> {
    let report = json!({
        "kind": "attack",
        "target_team": "ddb",
        "service": "opendata",
        "from": at(35),
        "to": at(45),
        "technique": "the data steward's default password",
        "description": "Logged in as the steward and downloaded the draft datasets.",
        "evidence": "POST /login steward/steward -> 302",
    });
    let auth = team_auth(app, team);
    let r = app.request("POST", "/api/reports", &[(auth.0, &auth.1), JSON], report.to_string().as_bytes()).await;
    ensure!(r.status == 201, "{}", r.text());
    r.json()?["id"].as_i64().context("an id")
}

async fn score(app: &App, judge: &(&str, String), id: i64, body: Value) -> Response {
    let path = format!("/api/judge/reports/{id}/ruling");
    app.request("POST", &path, &[(judge.0, &judge.1), JSON], body.to_string().as_bytes()).await
}

async fn judge_view(app: &App, judge: &(&str, String), id: i64) -> anyhow::Result<Value> {
    let r = app.request("GET", &format!("/api/judge/reports/{id}"), &[(judge.0, &judge.1)], b"").await;
    ensure!(r.status == 200, "{}", r.text());
    Ok(r.json()?["report"].clone())
}

async fn team_view(app: &App, id: i64) -> anyhow::Result<Value> {
    let auth = team_auth(app, RED_FIRM);
    let r = app.request("GET", &format!("/api/reports/{id}"), &[(auth.0, &auth.1)], b"").await;
    ensure!(r.status == 200, "{}", r.text());
    r.json()
}

async fn scores_stay_blind_until_both_are_in(mut app: App) -> anyhow::Result<()> {
    let id = file(&app).await?;
    let (ana, bo, cy) = (judge_auth(&app, ANA).await, judge_auth(&app, BO).await, judge_auth(&app, CY).await);
    let setup = app.request("GET", "/api/judge/workbench", &[(ana.0, &ana.1)], b"").await.json()?;
    ensure!(setup["judges"] == 2 && setup["disagreement_points"] == 10 && setup["judge"] == "ana", "{setup}");

    let first =
        score(&app, &ana, id, json!({"valid": true, "points": 40, "reason": "steward login in the logs"})).await;
    ensure!(first.status == 200, "{}", first.text());
    let first = first.json()?;
    ensure!(first["status"] == "pending" && first["rulings"] == json!([]), "a first score rules nothing: {first}");
    ensure!(first["scores"][0]["judge"] == "ana" && first["scores"][0]["points"] == 40, "{first}");
    ensure!(app.events.try_recv().is_err(), "a blind score was published on the event feed");

    // Bo does not see Ana's score, only that one exists, on the report and in the queue.
    let bos = judge_view(&app, &bo, id).await?;
    ensure!(bos.get("scores").is_none() && bos["hidden_scores"] == 1, "{bos}");
    ensure!(!bos.to_string().contains("steward login in the logs"), "Ana's reason leaked: {bos}");
    let queue = app.request("GET", "/api/judge/workbench/queue", &[(bo.0, &bo.1)], b"").await;
    ensure!(!queue.text().contains("steward login in the logs") && queue.text().contains("\"hidden_scores\":1"));
    ensure!(score(&app, &ana, id, json!({"valid": true, "points": 41})).await.code() == "same_judge");

    // Bo's score disagrees (invalid): the report waits for a third judge, and both scores show.
    let second = score(&app, &bo, id, json!({"valid": false, "reason": "no proof of download"})).await.json()?;
    ensure!(second["status"] == "disputed" && second["scores"].as_array().map(Vec::len) == Some(2), "{second}");
    ensure!(app.events.try_recv().is_err(), "a dispute was published on the event feed");
    let anas = judge_view(&app, &ana, id).await?;
    ensure!(anas["scores"][1]["reason"] == "no proof of download" && anas["hidden_scores"] == 0, "{anas}");
    let team = team_view(&app, id).await?;
    // The team sees its report waiting, nothing of the panel's disagreement.
    ensure!(team["status"] == "pending" && team.get("scores").is_none() && team.get("hidden_scores").is_none());
    ensure!(!team.to_string().contains("no proof of download"), "the team saw a score: {team}");

    let refused = score(&app, &bo, id, json!({"valid": true, "points": 5})).await;
    ensure!(refused.status == 409 && refused.code() == "same_judge", "{}", refused.text());
    ensure!(refused.text().contains("a third judge, who scored neither side, decides"), "{}", refused.text());
    let decided = score(&app, &cy, id, json!({"valid": true, "points": 25, "reason": "the pcap shows it"})).await;
    ensure!(decided.status == 200, "{}", decided.text());
    ensure!(decided.json()?["status"] == "ruled" && decided.json()?["points"] == 25, "{}", decided.text());
    let event = app.events.try_recv()?;
    let want = GameEvent::ReportRuled {
        report: id,
        team: RED_FIRM,
        kind: ReportKind::Attack,
        stage: RulingStage::First,
        valid: true,
        points: 25,
    };
    ensure!(event == want, "{event:?}");
    let team = team_view(&app, id).await?;
    ensure!(team["points"] == 25 && team["rulings"][0].get("judge").is_none() && team.get("scores").is_none());
    app.stop().await;
    Ok(())
}

async fn agreeing_scores_rule_with_their_mean(mut app: App) -> anyhow::Result<()> {
    let id = file(&app).await?;
    let (ana, bo) = (judge_auth(&app, ANA).await, judge_auth(&app, BO).await);
    let codes = |c: &[&str]| json!(c);
    let a = score(&app, &ana, id, json!({"valid": true, "points": 40, "reason_codes": codes(&["confirmed-by-logs"])}));
    ensure!(a.await.status == 200);
    let b =
        score(&app, &bo, id, json!({"valid": true, "points": 47, "reason_codes": codes(&["confirmed-by-capture"])}));
    let b = b.await.json()?;
    ensure!(b["status"] == "ruled" && b["points"] == 43, "the mean, rounded down: {b}");
    ensure!(b["rulings"][0]["judge"] == "ana + bo", "{b}");
    ensure!(b["rulings"][0]["reason_codes"] == codes(&["confirmed-by-capture", "confirmed-by-logs"]), "{b}");
    let event = app.events.try_recv()?;
    ensure!(matches!(event, GameEvent::ReportRuled { points: 43, valid: true, .. }), "{event:?}");
    // The team appeals; neither scorer may rule the appeal.
    let auth = team_auth(&app, RED_FIRM);
    let body = json!({"reason": "we also changed the steward's records"}).to_string();
    let path = format!("/api/reports/{id}/appeal");
    let appeal = app.request("POST", &path, &[(auth.0, &auth.1), JSON], body.as_bytes()).await;
    ensure!(appeal.status == 200, "{}", appeal.text());
    for judge in [&ana, &bo] {
        let path = format!("/api/judge/reports/{id}/appeal-ruling");
        let body = json!({"valid": true, "points": 50}).to_string();
        let r = app.request("POST", &path, &[(judge.0, &judge.1), JSON], body.as_bytes()).await;
        ensure!(r.status == 409 && r.code() == "same_judge", "{}", r.text());
    }
    app.stop().await;
    Ok(())
}

async fn observers_count_reports_without_seeing_them(app: App) -> anyhow::Result<()> {
    let (ana, bo, cy) = (judge_auth(&app, ANA).await, judge_auth(&app, BO).await, judge_auth(&app, CY).await);
    // Red firm's report: ruled valid (40 and 44 agree: 42). Red academy's: disputed. Then a
    // blue team's defence report with a screenshot, waiting.
    let valid = file_as(&app, RED_FIRM).await?;
    ensure!(score(&app, &ana, valid, json!({"valid": true, "points": 40})).await.status == 200);
    ensure!(score(&app, &bo, valid, json!({"valid": true, "points": 44})).await.status == 200);
    let split = file_as(&app, RED_ACADEMY).await?;
    ensure!(score(&app, &ana, split, json!({"valid": true, "points": 40})).await.status == 200);
    ensure!(score(&app, &cy, split, json!({"valid": false, "reason": "not shown"})).await.status == 200);
    let defence = json!({
        "kind": "defence",
        "service": "opendata",
        "from": at(35),
        "to": at(45),
        "technique": "blocked the steward account after a login from the red range",
        "description": "Our alert fired on a steward login from outside the office.",
        "evidence": "alert 4411 at 01:37",
    })
    .to_string();
    let png = b"\x89PNG\r\n\x1a\n-the-blue-teams-screenshot".to_vec();
    let (ct, body) = multipart(&[
        ("report", None, "application/json", defence.as_bytes()),
        ("evidence", Some("alert.png"), "image/png", &png),
    ]);
    let auth = team_auth(&app, DDB);
    let filed = app.request("POST", "/api/reports", &[(auth.0, &auth.1), ("Content-Type", &ct)], &body).await;
    ensure!(filed.status == 201, "{}", filed.text());
    let filed = filed.json()?;
    let evidence = filed["evidence"][0]["url"].as_str().context("an evidence url")?.to_owned();

    app.store.create_account("oscar", gongfang_core::AccountRole::Observer, "observer password").await?;
    let token = app.store.issue_api_token("oscar", at(0)).await?.context("oscar exists")?;
    let oscar = ("Authorization", format!("Bearer {}", token.expose()));
    let stats = app.request("GET", "/api/admin/report-stats", &[(oscar.0, &oscar.1)], b"").await;
    ensure!(stats.status == 200, "{}", stats.text());
    let text = stats.text();
    let s = stats.json()?;
    ensure!(s["judges"] == 2, "{s}");
    let attack = &s["attack"];
    ensure!(attack["filed"] == 2 && attack["valid"] == 1 && attack["disputed"] == 1 && attack["pending"] == 0, "{s}");
    ensure!(attack["points"] == 42 && attack["teams_filing"] == 2 && attack["median_minutes_to_ruling"] == 0, "{s}");
    let defence = &s["defence"];
    ensure!(defence["filed"] == 1 && defence["pending"] == 1 && defence["median_minutes_to_ruling"].is_null(), "{s}");
    let opendata =
        s["services"].as_array().and_then(|v| v.iter().find(|x| x["service"] == "opendata")).context("opendata")?;
    ensure!(opendata["attack_filed"] == 2 && opendata["attack_valid"] == 1 && opendata["defence_filed"] == 1, "{s}");
    ensure!(s["hours"].as_array().map(Vec::len) == Some(1) && s["hours"][0]["attack"] == 2, "{s}");
    // Anonymised: no team, no judge, nothing a report says.
    for secret in ["red-firm", "red-academy", "ddb", "Red", "ana", "steward", "alert", "not shown"] {
        ensure!(!text.contains(secret), "the statistics name `{secret}`: {text}");
    }
    // An observer reaches no report and no evidence; a team and a judge not the statistics.
    for path in [format!("/api/judge/reports/{valid}"), format!("/api/reports/{valid}"), evidence.clone()] {
        let r = app.request("GET", &path, &[(oscar.0, &oscar.1)], b"").await;
        ensure!(matches!(r.status, 401 | 403) && r.body != png, "{path}: {} {}", r.status, r.text());
    }
    // The audit log says who scored and ruled what: organisers read it whole, observers without
    // the reports' entries.
    let token = app.store.issue_api_token("olga", at(0)).await?.context("olga exists")?;
    let olga = ("Authorization", format!("Bearer {}", token.expose()));
    let organisers = app.request("GET", "/api/admin/audit?limit=500", &[(olga.0, &olga.1)], b"").await.text();
    let observers = app.request("GET", "/api/admin/audit?limit=500", &[(oscar.0, &oscar.1)], b"").await;
    ensure!(observers.status == 200, "{}", observers.text());
    ensure!(organisers.contains("\"report.score\"") && organisers.contains("\"report.dispute\""), "{organisers}");
    ensure!(!observers.text().contains("report."), "an observer read the reports' audit: {}", observers.text());
    let team = team_auth(&app, DDB);
    for who in [(team.0, team.1.as_str()), (ana.0, ana.1.as_str())] {
        let r = app.request("GET", "/api/admin/report-stats", &[who], b"").await;
        ensure!(matches!(r.status, 401 | 403), "{} {}", r.status, r.text());
    }
    app.stop().await;
    Ok(())
}

async fn blind_scores_and_an_inject_grade(cdp: &mut Cdp, app: &App, id: i64, inject: i64) -> anyhow::Result<()> {
    // Ana, in English: the form asks for her blind score; once given, it is gone and she waits.
    open_as(cdp, app, ANA, "en", id).await?;
    let form = cdp.eval("document.getElementById('ruling-form').dataset.form").await?;
    ensure!(form == "score", "the form asks for a blind score: {form}");
    let heading = cdp.eval("document.getElementById('rule-heading').textContent").await?;
    ensure!(heading == "Your blind score", "{heading}");
    cdp.eval(&click("#rule-valid")).await?;
    cdp.eval(&fill("rule-points", "40")).await?;
    cdp.eval(&fill("rule-reason", "the steward login is in the logs")).await?;
    cdp.eval(&submit("ruling-form")).await?;
    cdp.wait_for("ana's score shown", "document.querySelectorAll('[data-score]').length === 1").await?;
    ensure!(cdp.eval("document.getElementById('ruling-form').hidden").await? == true, "one score per judge");
    let note = cdp.eval("document.querySelector('[data-panel]').textContent").await?;
    ensure!(note.as_str().is_some_and(|n| n.contains("second judge")), "{note}");
    shot(cdp, "workbench-blind-score-en").await?;

    // Bo, in Chinese: Ana's score is held back; his own disagrees, and both then show.
    open_as(cdp, app, BO, "zh-HK", id).await?;
    ensure!(cdp.eval("document.querySelectorAll('[data-score]').length").await? == 0, "ana's score is hidden");
    let held = cdp.eval("document.querySelector('[data-panel]').textContent").await?;
    ensure!(held.as_str().is_some_and(|n| n.contains("另一位評判")), "{held}");
    ensure!(!cdp.eval("document.body.textContent").await?.to_string().contains("steward login"), "ana's reason leaked");
    cdp.eval(&click("#rule-invalid")).await?;
    cdp.eval(&fill("rule-reason", "沒有下載的證據")).await?;
    cdp.eval(&submit("ruling-form")).await?;
    cdp.wait_for("both scores shown", "document.querySelectorAll('[data-score]').length === 2").await?;
    let status = cdp.eval("document.querySelector('#report-facts').textContent").await?;
    ensure!(status.as_str().is_some_and(|s| s.contains("評分分歧")), "the report is disputed: {status}");
    shot(cdp, "workbench-disputed-zh-HK").await?;

    // Bo grades ddb's answer to the inject.
    let form = "document.querySelector('[data-grade-form=\"ddb\"]')";
    cdp.wait_for("the inject's answer to grade", &format!("!!{form}")).await?;
    cdp.eval(&fill(&format!("grade-{inject}-ddb-0"), "8")).await?;
    cdp.eval(&fill(&format!("grade-{inject}-ddb-1"), "15")).await?;
    cdp.eval(&fill(&format!("grade-{inject}-ddb-reason"), "準時，但欠影響評估")).await?;
    cdp.eval(&format!("{form}.requestSubmit() || true")).await?;
    let total = cdp
        .wait_for("the grade shown", "document.querySelector('[data-answer=\"ddb\"] [data-grade]')?.dataset.grade")
        .await?;
    ensure!(total == "23", "the grade's total: {total}");
    shot(cdp, "workbench-inject-zh-HK").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_judges_score_blind_and_grade_an_inject_in_the_browser() -> anyhow::Result<()> {
    let Some(chromium) = chromium_or_skip()? else { return Ok(()) };
    let app = two_judges(TestDb::sqlite().await).await;
    let id = file(&app).await?;
    let olga = app.store.account("olga").await?.context("olga exists")?;
    let task: gongfang_core::inject::InjectDraft = serde_json::from_value(json!({
        "title": "Incident notification",
        "title_zh": "事故通報",
        "body": "File your notification of the steward account breach.",
        "audience": "defenders",
        "deadline": at(90),
        "rubric": [{"name": "timeliness", "name_zh": "時效", "max_points": 10}, {"name": "completeness", "max_points": 20}],
    }))?;
    let posted = app.store.post_inject(&task, &olga, at(60)).await?;
    app.store.answer_inject(&posted, DDB, "Notified the office at 01:50.", at(61)).await?;
    let inject = posted.id;
    let mut browser = Browser::launch(&chromium).await?;
    let outcome = blind_scores_and_an_inject_grade(&mut browser.cdp, &app, id, inject).await;
    let problems = std::mem::take(&mut browser.cdp.problems);
    browser.close().await?;
    outcome?;
    ensure!(problems.is_empty(), "the page reported problems: {problems:#?}");
    let stored = app.store.report(id).await?.context("stored")?;
    ensure!(stored.status == gongfang_core::report::ReportStatus::Disputed && stored.scores.len() == 2, "{stored:?}");
    let answers = app.store.inject_answers(Some(DDB)).await?;
    let grade = answers[0].grade.as_ref().context("graded")?;
    ensure!(grade.grade.total() == 23 && grade.judge == "bo", "{grade:?}");
    app.stop().await;
    Ok(())
}
