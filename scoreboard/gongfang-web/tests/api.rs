//! The JSON endpoints against a real store and a real listening server: `/api/scoreboard`,
//! `/api/attack-info` and `/attack.json`, the page's assets, and the error table.

mod common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use common::*;
use gongfang_core::NewSubmission;
use gongfang_core::event::GameEvent;
use gongfang_core::scenario::PatchScoring;
use gongfang_core::scoring::Capture;
use gongfang_core::{
    Action, CheckResult, ExploitReplay, Exposure, FaultKind, ServiceId, StoreIdx, TeamId, Tick, Verdict,
};
use gongfang_test_support::http::get;
use gongfang_web::WebSettings;
use serde_json::{Value, json};

fn team<'a>(board: &'a Value, slug: &str) -> &'a Value {
    board["teams"].as_array().unwrap().iter().find(|t| t["slug"] == slug).unwrap_or_else(|| panic!("no team {slug}"))
}

fn cell<'a>(board: &'a Value, slug: &str, service: u64) -> &'a Value {
    team(board, slug)["services"].as_array().unwrap().iter().find(|c| c["service"] == service).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoreboard_shows_the_latest_scored_tick() -> Result<()> {
    let app = App::start(64, WebSettings::default()).await?;
    let answer = get(app.addr, "/api/scoreboard").await?;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let board = answer.json()?;

    assert_eq!(board["tick"], 1, "tick 2 is running, tick 1 is the last scored");
    assert_eq!(board["status_tick"], 1);
    let order: Vec<&str> = board["teams"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap()).collect();
    // ddb 8, red 3.5, then crd and nop both at 2: the lower team id first.
    assert_eq!(order, ["ddb", "red", "crd", "nop"]);
    let ranks: Vec<u64> = board["teams"].as_array().unwrap().iter().map(|t| t["rank"].as_u64().unwrap()).collect();
    assert_eq!(ranks, [1, 2, 3, 4]);
    assert_eq!(team(&board, "ddb")["total"], 8.0);
    assert_eq!(team(&board, "crd")["defence"], -2.0);

    // The worst action decides, with its message; a checker error alone stays a checker error.
    assert_eq!(cell(&board, "ddb", 1)["verdict"], "corrupt");
    assert_eq!(cell(&board, "ddb", 1)["message"], "dataset from tick 0 is missing");
    assert_eq!(cell(&board, "nop", 1)["verdict"], "checker-error");
    assert_eq!(cell(&board, "crd", 2)["verdict"], "down");
    // Tick 2's `mumble` is not final yet.
    assert_eq!(cell(&board, "ddb", 2)["verdict"], "ok");
    assert_eq!(team(&board, "red")["services"], json!([]), "an attacker has no services");

    assert_eq!(
        board["first_bloods"],
        json!([
            {"service": 1, "attacker": 1, "victim": 2, "tick": 1, "at": "2026-11-21T01:01:15Z"},
            {"service": 2, "attacker": 4, "victim": 2, "tick": 1, "at": "2026-11-21T01:01:10Z"},
        ])
    );
    assert_eq!(board["clock"]["tick"], 2);
    assert_eq!(board["clock"]["next_tick_at"], "2026-11-21T01:03:00Z");

    insta::assert_json_snapshot!("scoreboard", without_now(board));
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_info_lists_defenders_addresses_status_and_flag_ids() -> Result<()> {
    let app = App::start(64, WebSettings::default()).await?;
    let answer = get(app.addr, "/api/attack-info").await?;
    assert_eq!(answer.status, 200);
    let info = answer.json()?;
    let same = get(app.addr, "/attack.json").await?;
    assert_eq!(same.json()?, info, "/attack.json is the same document");

    let slugs: Vec<&str> = info["teams"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["ddb", "crd", "nop"], "the red team defends nothing, so it is no target");
    let nop = &info["teams"][2];
    assert_eq!(nop["nop"], true);
    let crd_kv = &info["teams"][1]["services"]["kv"];
    assert_eq!(crd_kv["up"], false);
    assert_eq!(crd_kv["verdict"], "down");
    assert_eq!(crd_kv["addresses"], json!(["10.60.2.3:7000", "10.60.2.3:7001"]));
    assert_eq!(info["teams"][0]["services"]["kv"]["up"], true);
    // Lifetime 3 at tick 2: flags of ticks 0, 1 and 2 are still accepted.
    assert_eq!(info["flag_ticks"], json!({"from": 0, "to": 2}));
    assert_eq!(
        info["teams"][0]["services"]["opendata"]["flag_ids"]["2"],
        json!({"0": "user-2-1-1-0", "1": "user-2-1-1-1"})
    );
    insta::assert_json_snapshot!("attack_info", info);

    // Three ticks later, tick 0's and 1's flags have expired and are no longer listed.
    app.clock.send_replace(clock_at(5));
    let later = get(app.addr, "/api/attack-info").await?.json()?;
    assert_eq!(later["flag_ticks"], json!({"from": 3, "to": 5}));
    assert_eq!(later["teams"][0]["services"]["opendata"]["flag_ids"], json!({}));
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_info_is_built_once_per_change_and_shared_by_every_request() -> Result<()> {
    // A long max_age, so only events and the clock can make the cache stale.
    let settings = WebSettings { max_age: Duration::from_secs(3600), ..WebSettings::default() };
    let app = App::start(64, settings).await?;
    let first = get(app.addr, "/attack.json").await?;
    assert_eq!(first.status, 200);
    assert_eq!(app.state.attack_info_builds(), 1);

    // A stampede of exploit scripts within one tick: the same bytes, and no second build.
    let answers = futures::future::try_join_all(
        (0..64).map(|i| get(app.addr, if i % 2 == 0 { "/attack.json" } else { "/api/attack-info" })),
    )
    .await?;
    for answer in &answers {
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert_eq!(answer.header("cache-control"), Some("no-store"));
        assert_eq!(answer.body, first.body);
    }
    assert_eq!(app.state.attack_info_builds(), 1, "every request was answered from the cache");

    // The engine closes and scores tick 2 and plants tick 3's flags; until it says so, the
    // cached answer stands.
    close_tick_two(&app.store).await?;
    plant(&app.store, 3).await?;
    assert_eq!(get(app.addr, "/attack.json").await?.body, first.body);
    assert_eq!(app.state.attack_info_builds(), 1);

    // Tick 2's scores are announced: its verdicts show (ddb's kv was `mumble`).
    app.events.send(GameEvent::ScoresUpdated { tick: Tick(2) })?;
    let scored = eventually("attack info to show tick 2's verdicts", || async {
        let info = get(app.addr, "/attack.json").await?.json()?;
        Ok((info["teams"][0]["services"]["kv"]["verdict"] == "mumble").then_some(info))
    })
    .await?;
    assert_eq!(scored["teams"][0]["services"]["kv"]["up"], false);
    assert_eq!(scored["flag_ticks"], json!({"from": 0, "to": 2}), "the clock still says tick 2");
    let builds = app.state.attack_info_builds();
    assert_eq!(get(app.addr, "/api/attack-info").await?.json()?, scored);
    assert_eq!(app.state.attack_info_builds(), builds);

    // Tick 3 opens: its flag ids are listed from the next request on.
    app.clock.send_replace(clock_at(3));
    app.events.send(GameEvent::TickOpened { tick: Tick(3) })?;
    let next = get(app.addr, "/attack.json").await?.json()?;
    assert_eq!(next["flag_ticks"], json!({"from": 1, "to": 3}));
    assert_eq!(
        next["teams"][0]["services"]["opendata"]["flag_ids"]["3"],
        json!({"0": "user-3-1-1-0", "1": "user-3-1-1-1"})
    );
    assert_eq!(next["teams"][0]["services"]["opendata"]["flag_ids"].get("0"), None, "tick 0 expired");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoreboard_follows_the_store_when_events_say_it_changed() -> Result<()> {
    let app = App::start(64, WebSettings::default()).await?;
    let before = get(app.addr, "/api/scoreboard").await?.json()?;
    assert_eq!(before["tick"], 1);

    close_tick_two(&app.store).await?;
    // A later capture of kv, which already has its first blood.
    app.store
        .insert_submissions(&[NewSubmission {
            capture: Capture {
                attacker: TeamId(2),
                victim: TeamId(1),
                service: ServiceId(2),
                store: StoreIdx(0),
                planted: Tick(2),
                submitted: Tick(3),
            },
            flag: "GONGFANG{t2-team1-svc2-store0}".into(),
            submitted_at: at(185),
        }])
        .await?;
    app.events.send(GameEvent::TickClosed { tick: Tick(2) })?;
    app.events.send(GameEvent::ScoresUpdated { tick: Tick(2) })?;

    let after = eventually("the scoreboard to show tick 2", || async {
        let board = get(app.addr, "/api/scoreboard").await?.json()?;
        Ok((board["tick"] == 2).then_some(board))
    })
    .await?;
    assert_eq!(team(&after, "ddb")["total"], 21.0);
    assert_eq!(cell(&after, "ddb", 2)["verdict"], "mumble");
    // The kv first blood stays red's (tick 1); the later capture is no first blood.
    assert_eq!(after["first_bloods"][1]["attacker"], 4);
    app.stop().await
}

/// Replays of `team`'s opendata in `tick`, one per flag store, all showing `exposure`.
async fn replayed(app: &App, tick: u32, team: TeamId, exposure: Exposure) -> Result<()> {
    let replays: Vec<ExploitReplay> = (0..2)
        .map(|store| ExploitReplay {
            tick: Tick(tick),
            team,
            service: OPENDATA,
            store: StoreIdx(store),
            exposure,
            message: String::new(),
            recorded_at: at(i64::from(tick) * 60 + 30),
        })
        .collect();
    Ok(app.store.record_exploit_replays(&replays).await?)
}

/// With `[patches] scoring = "defended-ticks"` the board adds points for every scored tick a
/// service was `ok` while its replay captured nothing, counts each tick once as the drill goes
/// on, and says so for the page's column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoreboard_counts_defended_ticks_as_ticks_are_scored() -> Result<()> {
    let mut scenario = scenario();
    scenario.patches.scoring = PatchScoring::DefendedTicks;
    scenario.patches.points = 5.0;
    let app = App::start_with(Arc::new(scenario), 64, WebSettings::default()).await?;
    // Tick 0: ddb's opendata ok and held (defended). Tick 1: it lost a flag (corrupt), nop's
    // checker failed, crd's held but is exploitable in the other store: none defended.
    replayed(&app, 0, DDB, Exposure::NotExploitable).await?;
    replayed(&app, 1, DDB, Exposure::NotExploitable).await?;
    replayed(&app, 1, NOP, Exposure::NotExploitable).await?;
    replayed(&app, 1, CRD, Exposure::Exploitable).await?;
    app.events.send(GameEvent::ScoresUpdated { tick: Tick(1) })?;
    let board = eventually("the board with tick 1's replays", || async {
        let board = get(app.addr, "/api/scoreboard").await?.json()?;
        Ok((team(&board, "ddb")["defended_ticks"] == 1).then_some(board))
    })
    .await?;
    assert_eq!(board["drill"]["patch_scoring"], "defended-ticks");
    let ddb = team(&board, "ddb");
    assert_eq!(ddb["patching"], 5.0);
    let parts =
        ["attack", "defence", "sla", "reports", "patching"].iter().map(|k| ddb[*k].as_f64().unwrap()).sum::<f64>();
    assert_eq!(ddb["total"].as_f64().unwrap(), parts);
    assert_eq!(
        (team(&board, "nop")["patching"].clone(), team(&board, "crd")["patching"].clone()),
        (json!(0.0), json!(0.0))
    );

    // Tick 2 (everything ok but ddb's kv): ddb's and crd's opendata held.
    close_tick_two(&app.store).await?;
    replayed(&app, 2, DDB, Exposure::NotExploitable).await?;
    replayed(&app, 2, CRD, Exposure::NotExploitable).await?;
    app.events.send(GameEvent::ScoresUpdated { tick: Tick(2) })?;
    let board = eventually("the board to show tick 2", || async {
        let board = get(app.addr, "/api/scoreboard").await?.json()?;
        Ok((board["tick"] == 2).then_some(board))
    })
    .await?;
    assert_eq!(
        (team(&board, "ddb")["defended_ticks"].clone(), team(&board, "ddb")["patching"].clone()),
        (json!(2), json!(10.0))
    );
    assert_eq!(team(&board, "crd")["patching"], 5.0);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_and_assets_are_served_from_the_binary() -> Result<()> {
    let app = App::start(64, WebSettings::default()).await?;
    let page = get(app.addr, "/").await?;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let html = String::from_utf8(page.body)?;
    assert!(html.contains(r#"<script src="/static/app.js" defer></script>"#));
    assert!(!html.contains("http://") && !html.contains("https://"), "no external resources");
    assert!(
        page.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("content-security-policy") && v.contains("'self'"))
    );
    let script = get(app.addr, "/static/app.js").await?;
    assert_eq!(script.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert!(String::from_utf8(script.body)?.contains("/api/scoreboard"));
    let style = get(app.addr, "/static/app.css").await?;
    assert_eq!(style.status, 200);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_may_connect_only_to_its_own_origin() -> Result<()> {
    let app = App::start(64, WebSettings::default()).await?;
    let page = get(app.addr, "/").await?;
    let csp = page.header("content-security-policy").expect("the page has a CSP").to_owned();
    let connect: Vec<&str> = csp
        .split(';')
        .map(str::trim)
        .filter_map(|d| d.strip_prefix("connect-src "))
        .flat_map(str::split_whitespace)
        .collect();
    // `'self'` already allows the same-origin websocket; `ws:`/`wss:` would allow any host.
    assert_eq!(connect, ["'self'"], "{csp}");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_answers_say_nosniff() -> Result<()> {
    let app = App::start(64, WebSettings::default()).await?;
    for path in ["/api/scoreboard", "/api/attack-info", "/attack.json", "/api/nothing-here", "/"] {
        let answer = get(app.addr, path).await?;
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"), "{path}: {}", answer.status);
    }
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_answer_with_a_stable_code() -> Result<()> {
    let app = App::start(64, WebSettings::default()).await?;
    let missing = get(app.addr, "/api/nothing-here").await?;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()?["error"]["code"], "not_found");

    // A database that went away: nothing is cached yet, so the read fails.
    app.store.clone().close().await?;
    let down = get(app.addr, "/api/scoreboard").await?;
    assert_eq!(down.status, 503);
    let body = down.json()?;
    assert_eq!(body["error"]["code"], "store_unavailable");
    assert!(body["error"]["message"].as_str().unwrap().contains("try again"));
    let attack = get(app.addr, "/api/attack-info").await?;
    assert_eq!(attack.status, 503);
    app.stop().await
}

/// The value of the sample `name` with every label of `labels`, as a number.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .and_then(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
}

async fn scrape(app: &App, auth: &str) -> Result<prometheus_parse::Scrape> {
    let answer =
        gongfang_test_support::http::request(app.addr, "GET", "/metrics", &[("Authorization", auth)], b"").await?;
    anyhow::ensure!(answer.status == 200, "GET /metrics: {} {}", answer.status, answer.text());
    anyhow::ensure!(
        answer.header("content-type").is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "Prometheus' text format: {:?}",
        answer.header("content-type")
    );
    let lines = answer.text().lines().map(|l| Ok(l.to_owned())).collect::<Vec<std::io::Result<String>>>();
    Ok(prometheus_parse::Scrape::parse(lines.into_iter())?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_game_for_organisers_only() -> Result<()> {
    use anyhow::{Context, ensure};
    use gongfang_core::AccountRole;
    let app = App::start(64, WebSettings::default()).await?;
    let now = chrono::Utc::now();
    let olga = app.store.create_account("olga", AccountRole::Organiser, "a long passphrase for olga").await?;
    let obi = app.store.create_account("obi", AccountRole::Observer, "a long passphrase for obi").await?;
    let olga = format!("Bearer {}", app.store.issue_api_token(&olga.name, now).await?.context("a token")?.expose());
    let obi = format!("Bearer {}", app.store.issue_api_token(&obi.name, now).await?.context("a token")?.expose());

    let anonymous = get(app.addr, "/metrics").await?;
    ensure!(anonymous.status == 401 && anonymous.header("www-authenticate").is_some(), "{}", anonymous.text());
    let wrong =
        gongfang_test_support::http::request(app.addr, "GET", "/metrics", &[("Authorization", "Bearer nope")], b"")
            .await?;
    ensure!(wrong.status == 401, "a wrong token: {}", wrong.text());
    let observer =
        gongfang_test_support::http::request(app.addr, "GET", "/metrics", &[("Authorization", obi.as_str())], b"")
            .await?;
    ensure!(observer.status == 403 && observer.json()?["error"]["code"] == "organisers_only", "{}", observer.text());

    let before = scrape(&app, &olga).await?;
    ensure!(sample(&before, "gongfang_ticks_closed_total", &[]) == Some(0.0), "nothing counted yet: {before:?}");
    ensure!(sample(&before, "gongfang_current_tick", &[]) == Some(2.0), "the clock's tick");

    // Tick 2 closes as the engine closes it, with two checker failures of crd's opendata (one
    // ran out of time, one crashed), and a flag of crd's kv is captured.
    for (fault, action) in [(FaultKind::Timeout, Action::Put), (FaultKind::Crash, Action::Get)] {
        app.store
            .record_check(&CheckResult {
                tick: Tick(2),
                team: CRD,
                service: OPENDATA,
                action,
                store: Some(StoreIdx(0)),
                verdict: Verdict::CheckerError,
                message: "the checker failed; this does not count against you".into(),
                log: format!("checker-error: {fault}"),
                duration_ms: 15_000,
                recorded_at: Utc::now(),
                fault: Some(fault),
            })
            .await?;
    }
    close_tick_two(&app.store).await?;
    app.events.send(GameEvent::TickClosed { tick: Tick(2) })?;
    app.events.send(GameEvent::FlagCaptured {
        tick: Tick(3),
        attacker: RED,
        victim: CRD,
        service: KV,
        store: StoreIdx(0),
        planted: Tick(2),
    })?;
    let after = eventually("the closed tick counted", || async {
        let m = scrape(&app, &olga).await?;
        Ok((sample(&m, "gongfang_flags_captured_total", &[("service", "kv")]) == Some(1.0)).then_some(m))
    })
    .await?;
    ensure!(sample(&after, "gongfang_ticks_closed_total", &[]) == Some(1.0), "{after:?}");
    ensure!(sample(&after, "gongfang_tick_duration_seconds_count", &[]) == Some(1.0), "one tick's duration: {after:?}");
    let mumbles = [("service", "kv"), ("action", "check"), ("verdict", "mumble")];
    ensure!(sample(&after, "gongfang_checker_actions_total", &mumbles) == Some(1.0), "ddb's mumble: {after:?}");
    let oks = sample(&after, "gongfang_checker_actions_total", &[("verdict", "ok")]);
    ensure!(oks.is_some_and(|n| n >= 1.0), "the ok actions of tick 2: {after:?}");
    for fault in ["timeout", "crash"] {
        let labels = [("service", "opendata"), ("fault", fault)];
        ensure!(sample(&after, "gongfang_checker_faults_total", &labels) == Some(1.0), "one {fault}: {after:?}");
    }
    ensure!(sample(&after, "gongfang_checker_faults_total", &[("fault", "limit")]).is_none(), "no limit hit");
    ensure!(sample(&after, "gongfang_websocket_clients", &[]) == Some(0.0), "no board open");

    // A database failure anywhere in the process counts: a read on a database closed under it.
    let failures = |m: &prometheus_parse::Scrape| sample(m, "gongfang_store_errors_total", &[]).unwrap_or(f64::NAN);
    let before = failures(&after);
    let dir = tempfile::tempdir()?;
    let other =
        gongfang_store::Store::connect_and_migrate(&format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display()))
            .await?;
    other.clone().close().await?;
    ensure!(other.list_teams().await.is_err(), "a closed database answers nothing");
    let failed = scrape(&app, &olga).await?;
    ensure!(failures(&failed) > before, "the failure is counted: {before} -> {}", failures(&failed));
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_and_readiness_follows_the_database() -> Result<()> {
    let app = App::start(64, WebSettings::default()).await?;
    let health = get(app.addr, "/healthz").await?;
    assert_eq!((health.status, health.text()), (200, "ok\n".to_owned()));
    let ready = get(app.addr, "/readyz").await?;
    assert_eq!((ready.status, ready.text()), (200, "ready\n".to_owned()));
    assert_eq!(ready.header("cache-control"), Some("no-store"));

    // The database gone: not ready (once the last answer, at most a second old, has passed),
    // while the process still answers.
    app.store.clone().close().await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ready = get(app.addr, "/readyz").await?;
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(ready.text().starts_with("the database does not answer"), "{}", ready.text());
    assert_eq!(get(app.addr, "/healthz").await?.status, 200);
    app.stop().await
}
