//! The drill's past on the scoreboard: `/api/scoreboard?tick=N` answers the board as it stood
//! after tick N, `/api/history` every team's total after each scored tick, `/api/history/TEAM`
//! one team's verdict per service and tick; each follows new ticks, rescores and adjustments,
//! and a frozen board stays frozen on all three for spectators (organisers keep the live past).

mod common;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use chrono::Utc;
use common::*;
use gongfang_core::event::GameEvent;
use gongfang_core::scoring::TeamScore;
use gongfang_core::wire::SESSION_COOKIE;
use gongfang_core::{AccountRole, ScoreRow, Tick};
use gongfang_test_support::http::request;
use gongfang_web::WebSettings;
use serde_json::Value;

async fn get_json(app: &App, path: &str, headers: &[(&str, &str)]) -> Result<(u16, Value)> {
    let response = request(app.addr, "GET", path, headers, b"").await?;
    Ok((response.status, response.json()?))
}

async fn ok_json(app: &App, path: &str, headers: &[(&str, &str)]) -> Result<Value> {
    let (status, body) = get_json(app, path, headers).await?;
    ensure!(status == 200, "GET {path}: {status} {body}");
    Ok(body)
}

fn total(board: &Value, slug: &str) -> f64 {
    board["teams"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["slug"] == slug))
        .map_or(f64::NAN, |t| t["total"].as_f64().unwrap_or(f64::NAN))
}

fn cell(board: &Value, team: &str, service: u64) -> Value {
    let team = board["teams"].as_array().and_then(|t| t.iter().find(|t| t["slug"] == team));
    let cell = team.and_then(|t| t["services"].as_array()?.iter().find(|c| c["service"] == service).cloned());
    cell.map_or(Value::Null, |c| c["verdict"].clone())
}

/// A team's totals in `/api/history`.
fn series(history: &Value, slug: &str) -> Vec<f64> {
    history["teams"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["slug"] == slug))
        .and_then(|t| t["totals"].as_array().map(|v| v.iter().filter_map(Value::as_f64).collect()))
        .unwrap_or_default()
}

/// A service's verdict letters in `/api/history/TEAM`.
fn letters(history: &Value, service: &str) -> String {
    history["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["slug"] == service))
        .and_then(|s| s["verdicts"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_boards_the_score_series_and_a_teams_status_series_follow_the_game() -> Result<()> {
    let app = App::start(64, WebSettings::default()).await?;

    // Tick 0: everyone up but crd's kv; no capture yet.
    let zero = ok_json(&app, "/api/scoreboard?tick=0", &[]).await?;
    ensure!(zero["replay"] == 0 && zero["tick"] == 0 && zero["status_tick"] == 0, "tick 0's board: {zero}");
    ensure!(zero.get("clock").is_none(), "a past board has no clock: {zero}");
    ensure!(total(&zero, "ddb") == 4.0 && total(&zero, "crd") == 2.0, "tick 0's totals: {zero}");
    ensure!(cell(&zero, "crd", KV.0.into()) == "down" && cell(&zero, "ddb", OPENDATA.0.into()) == "ok");
    ensure!(zero["first_bloods"].as_array().is_some_and(Vec::is_empty), "no capture in tick 0: {zero}");
    ensure!(zero["teams"][0]["slug"] == "ddb", "ranked: {zero}");

    // Tick 1: the board as it is now.
    let one = ok_json(&app, "/api/scoreboard?tick=1", &[]).await?;
    let now = ok_json(&app, "/api/scoreboard", &[]).await?;
    ensure!(total(&one, "ddb") == 8.0 && total(&one, "red") == 3.5, "tick 1's totals: {one}");
    ensure!(cell(&one, "ddb", OPENDATA.0.into()) == "corrupt", "tick 1's verdicts: {one}");
    ensure!(one["first_bloods"] == now["first_bloods"] && one["teams"] == now["teams"], "tick 1 is the board now");

    // Ticks not scored, and not ticks at all.
    let (status, body) = get_json(&app, "/api/scoreboard?tick=2", &[]).await?;
    ensure!(status == 404 && body["error"]["code"] == "no_such_tick", "tick 2 is open: {status} {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    ensure!(message.contains("latest scored tick is 1"), "the answer says which ticks exist: {message}");
    for bad in ["abc", "-1", "1.5", "99999999999"] {
        let (status, body) = get_json(&app, &format!("/api/scoreboard?tick={bad}"), &[]).await?;
        ensure!(status == 400 && body["error"]["code"] == "bad_tick", "?tick={bad}: {status} {body}");
    }

    // The series: every scored tick, each team's total as the board ranked it.
    let history = ok_json(&app, "/api/history", &[]).await?;
    ensure!(history["through"] == 1 && history["ticks"] == serde_json::json!([0, 1]), "{history}");
    ensure!(history["sampled"] == false);
    ensure!(series(&history, "ddb") == [4.0, 8.0] && series(&history, "crd") == [2.0, 2.0], "{history}");
    ensure!(series(&history, "red") == [0.0, 3.5], "{history}");
    // Gzipped for a client that takes it, the same JSON inside.
    for path in ["/api/history", "/api/history/ddb", "/api/scoreboard?tick=1"] {
        let plain = request(app.addr, "GET", path, &[], b"").await?;
        let zipped = request(app.addr, "GET", path, &[("Accept-Encoding", "gzip, br")], b"").await?;
        ensure!(
            zipped.header("content-encoding") == Some("gzip") && plain.header("content-encoding").is_none(),
            "{path}"
        );
        ensure!(zipped.header("vary") == Some("accept-encoding"), "{path}: caches keep the two apart");
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(zipped.body.as_slice()), &mut inflated)?;
        ensure!(inflated == plain.body, "{path}: the gzipped answer is the plain one");
    }

    // A team's status: a letter per closed tick; tick 2's result so far is not shown.
    let ddb = ok_json(&app, "/api/history/ddb", &[]).await?;
    ensure!(ddb["through"] == 1 && ddb["team"]["slug"] == "ddb", "{ddb}");
    ensure!(letters(&ddb, "opendata") == "oc" && letters(&ddb, "kv") == "oo", "ddb: {ddb}");
    ensure!(ddb["legend"]["c"] == "corrupt" && ddb["legend"]["-"] == "not checked", "{ddb}");
    let crd = ok_json(&app, "/api/history/crd", &[]).await?;
    ensure!(letters(&crd, "kv") == "dd" && letters(&crd, "opendata") == "oo", "crd: {crd}");
    for (path, why) in [("/api/history/red", "an attacker has no services"), ("/api/history/nobody", "no such team")] {
        let (status, body) = get_json(&app, path, &[]).await?;
        ensure!(status == 404 && body["error"]["code"] == "no_such_team", "{why}: {status} {body}");
    }

    // Tick 2 closes and is scored: all three follow.
    close_tick_two(&app.store).await?;
    app.events.send(GameEvent::TickClosed { tick: Tick(2) })?;
    app.events.send(GameEvent::ScoresUpdated { tick: Tick(2) })?;
    let history = eventually("the series with tick 2", || async {
        let h = ok_json(&app, "/api/history", &[]).await?;
        Ok((h["through"] == 2).then_some(h))
    })
    .await?;
    ensure!(series(&history, "ddb") == [4.0, 8.0, 21.0], "{history}");
    let ddb = ok_json(&app, "/api/history/ddb", &[]).await?;
    ensure!(letters(&ddb, "kv") == "oom" && letters(&ddb, "opendata") == "oco", "ddb: {ddb}");
    ensure!(total(&ok_json(&app, "/api/scoreboard?tick=2", &[]).await?, "ddb") == 21.0);

    // A rescore changes past ticks: the past boards and the series show the new scores.
    let rescored =
        ScoreRow { tick: Tick(0), team: DDB, score: TeamScore { attack: 0.0, defence: 0.0, sla: 5.0, total: 5.0 } };
    app.store.upsert_scores(&[rescored]).await?;
    app.events.send(GameEvent::Rescored { through: Tick(2) })?;
    let zero = eventually("tick 0 rescored", || async {
        let b = ok_json(&app, "/api/scoreboard?tick=0", &[]).await?;
        Ok((total(&b, "ddb") == 5.0).then_some(b))
    })
    .await?;
    ensure!(zero["replay"] == 0);
    let history = ok_json(&app, "/api/history", &[]).await?;
    ensure!(series(&history, "ddb") == [5.0, 8.0, 21.0], "the series after the rescore: {history}");

    // An organiser's adjustment counts from its tick on.
    app.store
        .adjust_score(CRD, 10.0, "restored by hand after a platform fault", Tick(1), "account olga", Utc::now())
        .await?;
    app.events.send(GameEvent::ScoreAdjusted { team: CRD, points: 10.0 })?;
    let history = eventually("the series with the adjustment", || async {
        let h = ok_json(&app, "/api/history", &[]).await?;
        Ok((series(&h, "crd").get(1) == Some(&12.0)).then_some(h))
    })
    .await?;
    ensure!(series(&history, "crd") == [2.0, 12.0, 14.0], "from tick 1 on: {history}");
    ensure!(total(&ok_json(&app, "/api/scoreboard?tick=0", &[]).await?, "crd") == 2.0, "not before");
    ensure!(total(&ok_json(&app, "/api/scoreboard?tick=1", &[]).await?, "crd") == 12.0);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_board_stays_frozen_on_every_history_path() -> Result<()> {
    let app = App::start(64, WebSettings::default()).await?;
    let now = Utc::now();
    let organiser = app.store.create_account("olga", AccountRole::Organiser, "a long passphrase for olga").await?;
    let olga = format!(
        "{SESSION_COOKIE}={}",
        app.store.create_session(&organiser, Duration::from_secs(3600), now).await?.expose()
    );
    let team = format!(
        "{SESSION_COOKIE}={}",
        app.store.create_team_session(DDB, Duration::from_secs(3600), now).await?.expose()
    );
    // Warm the caches with the live past first: the freeze must not be served from them.
    ensure!(ok_json(&app, "/api/history", &[]).await?["through"] == 1);
    ensure!(ok_json(&app, "/api/history/ddb", &[]).await?["through"] == 1);

    app.store.set_board_freeze(Some(Tick(0)), Utc::now()).await?;
    app.events.send(GameEvent::BoardFrozen { through: Some(Tick(0)) })?;
    eventually("the frozen board", || async {
        Ok((ok_json(&app, "/api/scoreboard", &[]).await?["tick"] == 0).then_some(()))
    })
    .await?;

    for (who, headers) in [("a spectator", vec![]), ("a team", vec![("Cookie", team.as_str())])] {
        let (status, body) = get_json(&app, "/api/scoreboard?tick=1", &headers).await?;
        ensure!(status == 404 && body["error"]["code"] == "no_such_tick", "{who}: tick 1 is after the freeze: {body}");
        ensure!(body["error"]["message"].as_str().is_some_and(|m| m.contains("frozen")), "{who}: says why: {body}");
        ensure!(ok_json(&app, "/api/scoreboard?tick=0", &headers).await?["replay"] == 0, "{who}: tick 0 is shown");
        let history = ok_json(&app, "/api/history", &headers).await?;
        ensure!(history["through"] == 0 && history["ticks"] == serde_json::json!([0]), "{who}: {history}");
        let crd = ok_json(&app, "/api/history/crd", &headers).await?;
        ensure!(crd["through"] == 0 && letters(&crd, "kv") == "d", "{who}: {crd}");
    }

    let organiser = [("Cookie", olga.as_str())];
    let past = ok_json(&app, "/api/scoreboard?tick=1", &organiser).await?;
    ensure!(total(&past, "ddb") == 8.0, "an organiser replays tick 1: {past}");
    let history = ok_json(&app, "/api/history", &organiser).await?;
    ensure!(history["through"] == 1 && series(&history, "ddb") == [4.0, 8.0], "{history}");
    let ddb = ok_json(&app, "/api/history/ddb", &organiser).await?;
    ensure!(ddb["through"] == 1 && letters(&ddb, "opendata") == "oc", "{ddb}");

    // Lifted: everyone sees the whole past again.
    app.store.set_board_freeze(None, Utc::now()).await?;
    app.events.send(GameEvent::BoardFrozen { through: None })?;
    let history = eventually("the live series", || async {
        let h = ok_json(&app, "/api/history", &[]).await?;
        Ok((h["through"] == 1).then_some(h))
    })
    .await?;
    ensure!(series(&history, "ddb") == [4.0, 8.0]);
    ok_json(&app, "/api/scoreboard?tick=1", &[]).await.context("tick 1 for everyone")?;
    app.stop().await
}
