//! Injects over real HTTP with the real store (SQLite, and PostgreSQL when configured): an
//! organiser posts a task with a deadline and a rubric for the blue teams; only they see it and
//! answer, once each, an answer after the deadline marked late; a judge grades each answer once
//! within the rubric; organisers follow the counts; every step is audited under who made it.

mod common;

use anyhow::{Context as _, ensure};
use gongfang_core::AccountRole;
use gongfang_test_support::http::Response;
use serde_json::{Value, json};

use common::*;

gongfang_test_support::backend_tests!(
    setup = common::spawn;
    injects_are_posted_answered_late_or_not_and_graded,
);

const JSON: (&str, &str) = ("Content-Type", "application/json");

async fn bearer(app: &App, account: &str) -> anyhow::Result<(&'static str, String)> {
    let token = app.store.issue_api_token(account, at(0)).await?.context("the account exists")?;
    Ok(("Authorization", format!("Bearer {}", token.expose())))
}

async fn send(app: &App, who: &(&str, String), method: &str, path: &str, body: &Value) -> Response {
    app.request(method, path, &[(who.0, &who.1), JSON], body.to_string().as_bytes()).await
}

fn notification(deadline: i64) -> Value {
    json!({
        "title": "Incident notification",
        "title_zh": "事故通報",
        "body": "File your notification of the consent gateway breach to the Digital Policy Office.",
        "audience": "defenders",
        "deadline": at(deadline),
        "rubric": [
            {"name": "timeliness", "name_zh": "時效", "max_points": 10},
            {"name": "completeness", "max_points": 20},
        ],
    })
}

async fn injects_are_posted_answered_late_or_not_and_graded(app: App) -> anyhow::Result<()> {
    let olga = bearer(&app, "olga").await?;
    app.store.create_account("oscar", AccountRole::Observer, "observer password").await?;
    let oscar = bearer(&app, "oscar").await?;
    let ana = judge_auth(&app, ANA).await;
    let (ddb, crd, red) = (team_auth(&app, DDB), team_auth(&app, CRD), team_auth(&app, RED_FIRM));

    // Posting: organisers only, a deadline ahead, a rubric within bounds.
    let past = send(&app, &olga, "POST", "/api/admin/injects", &notification(30)).await;
    ensure!(
        past.status == 422 && past.code() == "invalid_inject" && past.text().contains("has passed"),
        "{}",
        past.text()
    );
    let mut no_rubric = notification(90);
    no_rubric["rubric"] = json!([]);
    let r = send(&app, &olga, "POST", "/api/admin/injects", &no_rubric).await;
    ensure!(r.status == 422 && r.text().contains("rubric"), "{}", r.text());
    for who in [&oscar, &ana] {
        let r = send(&app, who, "POST", "/api/admin/injects", &notification(90)).await;
        ensure!(matches!(r.status, 401 | 403), "only organisers post: {} {}", r.status, r.text());
    }
    let posted = send(&app, &olga, "POST", "/api/admin/injects", &notification(90)).await;
    ensure!(posted.status == 201, "{}", posted.text());
    let posted = posted.json()?;
    let id = posted["id"].as_i64().context("an id")?;
    ensure!(posted["max_points"] == 30 && posted["title_zh"] == "事故通報", "{posted}");

    // Blue teams see it; a red team neither sees nor answers it.
    let list = app.request("GET", "/api/portal/injects", &[(ddb.0, &ddb.1)], b"").await.json()?;
    ensure!(list.as_array().map(Vec::len) == Some(1) && list[0]["answer"].is_null(), "{list}");
    ensure!(list[0].get("posted_by").is_none(), "teams do not see who posted it: {list}");
    let reds = app.request("GET", "/api/portal/injects", &[(red.0, &red.1)], b"").await.json()?;
    ensure!(reds == json!([]), "{reds}");
    let path = format!("/api/portal/injects/{id}/answer");
    let r = send(&app, &red, "POST", &path, &json!({"text": "we attack"})).await;
    ensure!(r.status == 404 && r.code() == "unknown_inject", "{}", r.text());

    // On time, once; an empty answer is refused and stores nothing.
    let r = send(&app, &ddb, "POST", &path, &json!({"text": "  "})).await;
    ensure!(r.status == 422 && r.text().contains("`text` is empty"), "{}", r.text());
    let on_time =
        send(&app, &ddb, "POST", &path, &json!({"text": "Notified at 01:55: breach of the consent gateway."})).await;
    ensure!(on_time.status == 201 && on_time.json()?["late"] == false, "{}", on_time.text());
    let again = send(&app, &ddb, "POST", &path, &json!({"text": "a second try"})).await;
    ensure!(again.status == 409 && again.code() == "wrong_state", "{}", again.text());
    // After the deadline: accepted, marked late.
    app.set_now(at(120));
    let late = send(&app, &crd, "POST", &path, &json!({"text": "Notified at 03:00."})).await;
    ensure!(late.status == 201 && late.json()?["late"] == true, "{}", late.text());

    // Judges read every answer and grade each once, within the rubric.
    let judged = app.request("GET", "/api/judge/injects", &[(ana.0, &ana.1)], b"").await.json()?;
    let answers = judged[0]["answers"].as_array().context("answers")?;
    let teams: Vec<&str> = answers.iter().filter_map(|a| a["team"].as_str()).collect();
    ensure!(teams == ["ddb", "crd"] && answers[1]["late"] == true, "{judged}");
    let grade_path = format!("/api/judge/injects/{id}/grade");
    for (body, code, says) in [
        (json!({"team": "ddb", "points": {"timeliness": 11}}), "invalid_inject", "at most 10"),
        (json!({"team": "ddb", "points": {"style": 1}}), "invalid_inject", "no criterion `style`"),
        (json!({"team": "chra", "points": {"timeliness": 1}}), "unknown_inject", "has not answered"),
        (json!({"team": "nobody", "points": {}}), "unknown_team", "nobody"),
    ] {
        let r = send(&app, &ana, "POST", &grade_path, &body).await;
        ensure!(r.code() == code && r.text().contains(says), "{body}: {} {}", r.status, r.text());
    }
    let r = send(&app, &olga, "POST", &grade_path, &json!({"team": "ddb", "points": {"timeliness": 1}})).await;
    ensure!(r.status == 401 || r.status == 403, "an organiser does not grade: {} {}", r.status, r.text());
    let body =
        json!({"team": "ddb", "points": {"timeliness": 10, "completeness": 15}, "reason": "on time, no impact figure"});
    let graded = send(&app, &ana, "POST", &grade_path, &body).await;
    ensure!(graded.status == 200, "{}", graded.text());
    ensure!(graded.json()?["grade"]["total"] == 25 && graded.json()?["grade"]["judge"] == "ana", "{}", graded.text());
    let twice = send(&app, &ana, "POST", &grade_path, &body).await;
    ensure!(twice.status == 409 && twice.code() == "wrong_state", "{}", twice.text());
    let own = app.request("GET", "/api/portal/injects", &[(ddb.0, &ddb.1)], b"").await.json()?;
    let grade = &own[0]["answer"]["grade"];
    ensure!(grade["total"] == 25 && grade["reason"] == "on time, no impact figure" && grade.get("judge").is_none());

    // Organisers and observers follow the counts, without the answers' texts.
    for who in [&olga, &oscar] {
        let r = app.request("GET", "/api/admin/injects", &[(who.0, &who.1)], b"").await;
        ensure!(r.status == 200 && !r.text().contains("Notified at"), "{}", r.text());
        let p = &r.json()?[0];
        ensure!(p["asked"] == 3 && p["answered"] == 2 && p["late"] == 1 && p["graded"] == 1, "{p}");
    }
    let audit = app.store.list_audit(None, 100).await?;
    let lines: Vec<(&str, &str)> = audit.iter().map(|a| (a.actor.as_str(), a.action.as_str())).collect();
    let injects: Vec<(&str, &str)> = lines.into_iter().filter(|(_, a)| a.starts_with("inject.")).collect();
    ensure!(
        injects
            == [
                ("account olga", "inject.post"),
                ("team:11", "inject.answer"),
                ("team:12", "inject.answer"),
                ("account ana", "inject.grade"),
            ],
        "{injects:?}"
    );
    app.stop().await;
    Ok(())
}
