//! The public scoreboard frozen by organisers: spectators (and teams) see the board as it stood
//! after the freeze's tick on every public path (`/api/scoreboard`, `/api/attack-info`, the
//! websocket), while organisers and judges, by their console session or API token, keep the
//! live board. Lifting the freeze shows the live scores to everyone at once.

mod common;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use chrono::Utc;
use common::*;
use gongfang_core::event::GameEvent;
use gongfang_core::wire::SESSION_COOKIE;
use gongfang_core::{AccountRole, StoreIdx, Tick};
use gongfang_test_support::http::{get, request};
use gongfang_web::WebSettings;
use serde_json::Value;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SESSION: Duration = Duration::from_secs(3600);

/// A websocket to the app, sending `header` (name, value) with the upgrade if given.
async fn connect(app: &App, header: Option<(&str, &str)>) -> Result<Client> {
    let mut req = app.ws_url().into_client_request()?;
    if let Some((name, value)) = header {
        req.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())?,
            tokio_tungstenite::tungstenite::http::HeaderValue::from_str(value)?,
        );
    }
    let (socket, _) = tokio::time::timeout(WAIT, connect_async(req)).await.context("connect timed out")??;
    Ok(socket)
}

async fn board(app: &App, headers: &[(&str, &str)]) -> Result<Value> {
    let response = request(app.addr, "GET", "/api/scoreboard", headers, b"").await?;
    ensure!(response.status == 200, "GET /api/scoreboard: {}", response.status);
    response.json()
}

fn total(board: &Value, slug: &str) -> f64 {
    board["teams"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["slug"] == slug))
        .map_or(f64::NAN, |t| t["total"].as_f64().unwrap_or(f64::NAN))
}

fn capture() -> GameEvent {
    GameEvent::FlagCaptured {
        tick: Tick(2),
        attacker: RED,
        victim: DDB,
        service: KV,
        store: StoreIdx(0),
        planted: Tick(1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spectators_see_the_frozen_board_and_organisers_judges_and_observers_the_live_one() -> Result<()> {
    let app = App::start(64, WebSettings::default()).await?;
    let live = board(&app, &[]).await?;
    ensure!(live["tick"] == 1 && live["freeze"].is_null(), "before the freeze, the board is live: {live}");
    let live_info = get(app.addr, "/api/attack-info").await?.json()?;

    let now = Utc::now();
    let organiser = app.store.create_account("olga", AccountRole::Organiser, "a long passphrase for olga").await?;
    let judge = app.store.create_account("jude", AccountRole::Judge, "a long passphrase for jude").await?;
    let observer = app.store.create_account("obi", AccountRole::Observer, "a long passphrase for obi").await?;
    let olga = format!("{SESSION_COOKIE}={}", app.store.create_session(&organiser, SESSION, now).await?.expose());
    let obi = format!("{SESSION_COOKIE}={}", app.store.create_session(&observer, SESSION, now).await?.expose());
    let team = format!("{SESSION_COOKIE}={}", app.store.create_team_session(DDB, SESSION, now).await?.expose());
    let jude = format!("Bearer {}", app.store.issue_api_token(&judge.name, now).await?.context("a token")?.expose());

    // Spectators connected before the freeze.
    let mut spectator = connect(&app, None).await?;
    ensure!(next_json(&mut spectator).await?["freeze"].is_null(), "the first snapshot is live");

    let (freeze, changed) = app.store.set_board_freeze(Some(Tick(0)), now).await?;
    ensure!(changed && freeze.map(|f| f.through) == Some(Tick(0)), "the freeze is stored: {freeze:?}");
    app.events.send(GameEvent::BoardFrozen { through: Some(Tick(0)) })?;
    ensure!(next_json(&mut spectator).await?["type"] == "board_frozen", "the spectator is told of the freeze");
    let snapshot = next_json(&mut spectator).await?;
    ensure!(snapshot["type"] == "snapshot" && snapshot["tick"] == 0, "then gets the frozen board: {snapshot}");

    // The public board stands after tick 0: its scores, its verdicts, no first blood of tick 1.
    let public = board(&app, &[]).await?;
    ensure!(public["tick"] == 0 && public["status_tick"] == 0, "the frozen board's ticks: {public}");
    ensure!(public["freeze"]["through"] == 0 && public["freeze"]["live"] == false, "the freeze: {}", public["freeze"]);
    ensure!(public["first_bloods"].as_array().is_some_and(Vec::is_empty), "no first blood of a later tick");
    ensure!(
        total(&public, "ddb") == 4.0 && total(&live, "ddb") == 8.0,
        "ddb's frozen total: {}",
        total(&public, "ddb")
    );
    let seen = board(&app, &[("Cookie", team.as_str())]).await?;
    ensure!(seen["tick"] == 0, "a team sees the frozen board: tick {}", seen["tick"]);
    // Attack info keeps the current flag ids, but shows the verdicts of the frozen tick.
    let info = get(app.addr, "/api/attack-info").await?.json()?;
    let verdict = |info: &Value| info["teams"][0]["services"]["opendata"]["verdict"].clone();
    ensure!(verdict(&live_info) == "corrupt" && verdict(&info) == "ok", "frozen verdicts: {}", verdict(&info));
    ensure!(info["tick"] == live_info["tick"], "the flag ids are the current tick's");

    // Organisers and observers (console session) and judges (API token) see the live board.
    for (who, header) in [
        ("an organiser", ("Cookie", olga.as_str())),
        ("an observer", ("Cookie", obi.as_str())),
        ("a judge", ("Authorization", jude.as_str())),
    ] {
        let seen = board(&app, &[header]).await?;
        ensure!(seen["tick"] == 1, "{who} sees the live board: tick {}", seen["tick"]);
        ensure!(seen["freeze"]["live"] == true, "{who} is told the public board is frozen: {}", seen["freeze"]);
    }

    // The feed: spectators get no capture, organisers get everything.
    let mut organiser_feed = connect(&app, Some(("Cookie", &olga))).await?;
    let first = next_json(&mut organiser_feed).await?;
    ensure!(first["tick"] == 1 && first["freeze"]["live"] == true, "the organiser's snapshot is live: {first}");
    let mut late_spectator = connect(&app, Some(("Cookie", &team))).await?;
    ensure!(next_json(&mut late_spectator).await?["tick"] == 0, "a spectator connecting now gets the frozen board");
    app.events.send(capture())?;
    app.events.send(GameEvent::ScoresUpdated { tick: Tick(2) })?;
    app.events.send(GameEvent::Announcement { id: 1, title: "Last hour".into(), title_zh: None })?;
    for client in [&mut spectator, &mut late_spectator] {
        let next = next_json(client).await?;
        ensure!(next["type"] == "announcement", "a spectator skips captures and scores: {next}");
    }
    ensure!(next_json(&mut organiser_feed).await?["type"] == "flag_captured", "the organiser sees the capture");

    // Lifting the freeze shows the live board to everyone.
    let (freeze, changed) = app.store.set_board_freeze(None, Utc::now()).await?;
    ensure!(changed && freeze.is_none(), "the freeze is lifted");
    app.events.send(GameEvent::BoardFrozen { through: None })?;
    ensure!(next_json(&mut spectator).await?["type"] == "board_frozen", "told of the lifting");
    let snapshot = next_json(&mut spectator).await?;
    ensure!(snapshot["tick"] == 1 && snapshot["freeze"].is_null(), "the live board again: {snapshot}");
    app.events.send(capture())?;
    ensure!(next_json(&mut spectator).await?["type"] == "flag_captured", "captures flow again");
    ensure!(board(&app, &[]).await?["tick"] == 1, "the API is live again");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_freeze_keeps_the_first_tick() -> Result<()> {
    let app = App::start(64, WebSettings::default()).await?;
    let first = Utc::now();
    app.store.set_board_freeze(Some(Tick(0)), first).await?;
    let (freeze, changed) = app.store.set_board_freeze(Some(Tick(1)), Utc::now()).await?;
    ensure!(!changed, "freezing a frozen board changes nothing");
    let freeze = freeze.context("still frozen")?;
    ensure!(freeze.through == Tick(0) && freeze.at == app.store.board_freeze().await?.context("stored")?.at);
    app.stop().await
}

fn adjustment(board: &Value, slug: &str) -> f64 {
    board["teams"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["slug"] == slug))
        .map_or(f64::NAN, |t| t["adjustment"].as_f64().unwrap_or(f64::NAN))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjustments_count_in_the_total_and_a_frozen_board_has_only_the_earlier_ones() -> Result<()> {
    let app = App::start(64, WebSettings::default()).await?;
    let before = board(&app, &[]).await?;
    ensure!(before["teams"][0]["slug"] == "ddb" && total(&before, "crd") == 2.0, "ddb leads: {before}");

    app.store
        .adjust_score(CRD, 10.0, "restored by hand after a platform fault", Tick(1), "account olga", Utc::now())
        .await?;
    app.events.send(GameEvent::ScoreAdjusted { team: CRD, points: 10.0 })?;
    let adjusted = eventually("the adjusted board", || async {
        let b = board(&app, &[]).await?;
        Ok((total(&b, "crd") == 12.0).then_some(b))
    })
    .await?;
    ensure!(adjustment(&adjusted, "crd") == 10.0, "the adjustment is shown: {adjusted}");
    ensure!(adjusted["teams"][0]["slug"] == "crd" && adjusted["teams"][0]["rank"] == 1, "and ranks: {adjusted}");

    app.store.set_board_freeze(Some(Tick(0)), Utc::now()).await?;
    app.events.send(GameEvent::BoardFrozen { through: Some(Tick(0)) })?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.store.adjust_score(NOP, 100.0, "a late bonus", Tick(1), "account olga", Utc::now()).await?;
    app.events.send(GameEvent::ScoreAdjusted { team: NOP, points: 100.0 })?;
    let frozen = eventually("the frozen board", || async {
        let b = board(&app, &[]).await?;
        Ok((b["tick"] == 0).then_some(b))
    })
    .await?;
    ensure!(total(&frozen, "crd") == 12.0, "tick 0's 2 points and the earlier adjustment: {frozen}");
    ensure!(adjustment(&frozen, "nop") == 0.0 && total(&frozen, "nop") == 4.0, "not the later one: {frozen}");
    app.stop().await
}
