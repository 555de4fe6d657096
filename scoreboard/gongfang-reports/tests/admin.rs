//! The organisers' live API over real HTTP with the real store (SQLite always, PostgreSQL when
//! configured): only an organiser's own API token changes the drill; observers read, judges and
//! teams are refused; a revoked token stops at once; wrong tokens count in the back-off; every
//! change is audited under the token's account; announcements in two languages are stored and
//! reach the live feed; a team taken out of the drill is locked out until it is brought back.

mod common;

use anyhow::ensure;
use gongfang_core::AccountRole;
use gongfang_core::event::GameEvent;
use serde_json::json;

use common::*;

gongfang_test_support::backend_tests!(
    setup = common::spawn;
    an_organisers_token_pauses_and_resumes_at_once_and_is_audited,
    observers_judges_and_teams_change_nothing,
    a_revoked_token_stops_and_wrong_tokens_are_backed_off,
    bilingual_announcements_are_stored_and_live,
    the_end_moves_later_until_it_has_passed,
    organisers_mark_a_scored_result_defective,
    a_drill_without_containers_says_it_cannot_restart,
    organisers_read_the_checker_log_teams_do_not,
    organisers_freeze_the_public_board_and_lift_the_freeze,
    organisers_adjust_a_score_with_a_reason,
    organisers_list_teams_and_give_one_a_new_token,
    organisers_take_a_team_out_of_the_drill_and_bring_it_back,
    a_drill_that_cannot_grow_says_so,
);

/// A drill whose services an in-test control restarts and resets, recording each call.
mod with_containers {
    use super::*;

    gongfang_test_support::backend_tests!(
        setup = spawn_with_control;
        organisers_restart_and_reset_a_teams_service,
    );
}

/// A drill that grows: an in-test admission that takes every file but one with a bad row,
/// recording what it was given (the real one grows the scenario file: `gongfang up`'s test).
mod growing {
    use super::*;

    gongfang_test_support::backend_tests!(
        setup = spawn_with_admission;
        organisers_add_teams_to_the_running_drill,
    );
}

#[derive(Default)]
struct RecordedAdmission(std::sync::Mutex<Vec<String>>);

impl gongfang_reports::TeamAdmission for RecordedAdmission {
    fn admit<'a>(&'a self, csv: &'a str) -> gongfang_reports::AdmissionFuture<'a> {
        Box::pin(async move {
            if csv.contains("Bad Slug") {
                return Err(gongfang_reports::AdmissionRefusal::Invalid(
                    "line 2: slug `Bad Slug` may only hold …".into(),
                ));
            }
            self.0.lock().unwrap().push(csv.to_owned());
            Ok(gongfang_reports::Admitted { added: vec!["wsd".to_owned()], teams: 9 })
        })
    }
}

async fn spawn_with_admission(db: gongfang_test_support::TestDb) -> App {
    spawn_configured(db, |_| {}, |state| state.with_team_admission(std::sync::Arc::new(RecordedAdmission::default())))
        .await
}

async fn a_drill_that_cannot_grow_says_so(app: App) -> anyhow::Result<()> {
    let olga = api_auth(&app, "olga").await;
    let body = serde_json::json!({ "csv": "slug,name\nwsd,Water Supplies Records Office\n" }).to_string();
    let r = app.request("POST", "/api/admin/teams/import", &[(olga.0, &olga.1), JSON], body.as_bytes()).await;
    ensure!(r.status == 409 && r.text().contains("gongfang team import"), "{} {}", r.status, r.text());
    Ok(())
}

async fn organisers_add_teams_to_the_running_drill(app: App) -> anyhow::Result<()> {
    let olga = api_auth(&app, "olga").await;
    app.store.create_account("oscar", AccountRole::Observer, "observer password").await?;
    let oscar = api_auth(&app, "oscar").await;
    let body = serde_json::json!({ "csv": "slug,name\nwsd,Water Supplies Records Office\n" }).to_string();
    let r = app.request("POST", "/api/admin/teams/import", &[(oscar.0, &oscar.1), JSON], body.as_bytes()).await;
    ensure!(r.status == 403, "an observer adds no team: {}", r.text());
    let team = team_auth(&app, DDB);
    let r = app.request("POST", "/api/admin/teams/import", &[(team.0, &team.1), JSON], body.as_bytes()).await;
    ensure!(r.status == 401, "nor does a team: {}", r.text());
    let bad = serde_json::json!({ "csv": "slug,name\nBad Slug,x\n" }).to_string();
    let r = app.request("POST", "/api/admin/teams/import", &[(olga.0, &olga.1), JSON], bad.as_bytes()).await;
    ensure!(r.status == 400 && r.text().contains("no team was added") && r.text().contains("line 2"), "{}", r.text());
    let huge = serde_json::json!({ "csv": "x".repeat(gongfang_reports::MAX_IMPORT_BYTES + 1) }).to_string();
    let r = app.request("POST", "/api/admin/teams/import", &[(olga.0, &olga.1), JSON], huge.as_bytes()).await;
    ensure!(r.status == 400 || r.status == 413, "an import too large is refused: {} {}", r.status, r.text());
    ensure!(
        !app.store.list_audit(None, 50).await?.iter().any(|a| a.action == "team.import"),
        "refusals are not audited as imports"
    );

    let r = app.request("POST", "/api/admin/teams/import", &[(olga.0, &olga.1), JSON], body.as_bytes()).await;
    ensure!(r.status == 200, "{}", r.text());
    let answer = r.json()?;
    ensure!(answer["added"] == serde_json::json!(["wsd"]) && answer["teams"] == 9, "{answer}");
    ensure!(answer["note"].as_str().is_some_and(|n| n.contains("credential pack")), "{answer}");
    let audit = app.store.list_audit(None, 50).await?;
    let imported: Vec<_> =
        audit.iter().filter(|a| a.action == "team.import").map(|a| (a.actor.as_str(), a.detail.clone())).collect();
    ensure!(
        imported == [("account olga", serde_json::json!({ "teams": ["wsd"] }))],
        "audited under the account: {imported:?}"
    );
    Ok(())
}

/// Restarts every service it is asked to, and fails every reset as an engine without the
/// image would.
struct FixedControl;

impl gongfang_reports::ServiceControl for FixedControl {
    fn restart<'a>(
        &'a self,
        team: &'a gongfang_core::scenario::Team,
        service: &'a gongfang_core::scenario::Service,
    ) -> gongfang_reports::ControlFuture<'a> {
        Box::pin(async move { Ok(vec![format!("gf-redblue-{}-{}", team.slug, service.slug)]) })
    }

    fn reset<'a>(
        &'a self,
        team: &'a gongfang_core::scenario::Team,
        service: &'a gongfang_core::scenario::Service,
    ) -> gongfang_reports::ControlFuture<'a> {
        let _ = (team, service);
        Box::pin(async { Err("no such image: opendata:latest".to_owned()) })
    }
}

async fn spawn_with_control(db: gongfang_test_support::TestDb) -> App {
    spawn_configured(db, |_| {}, |state| state.with_service_control(std::sync::Arc::new(FixedControl))).await
}

/// An `Authorization` header with `account`'s new API token.
async fn api_auth(app: &App, account: &str) -> (&'static str, String) {
    let token = app.store.issue_api_token(account, at(0)).await.unwrap().expect("the account exists");
    ("Authorization", format!("Bearer {}", token.expose()))
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

async fn an_organisers_token_pauses_and_resumes_at_once_and_is_audited(app: App) -> anyhow::Result<()> {
    let olga = api_auth(&app, "olga").await;
    let watch = app.store.paused_watch();
    let r = app.request("POST", "/api/admin/pause", &[(olga.0, &olga.1), JSON], br#"{"reason":"fire drill"}"#).await;
    ensure!(r.status == 200, "{}", r.text());
    ensure!(r.json()?["changed"] == true, "{}", r.text());
    // Set in the store and told to this process's watchers before the answer.
    ensure!(*watch.borrow(), "the engine's watch sees the pause when the answer arrives");
    ensure!(app.store.drill_state().await?.paused, "the flag is stored");

    let again = app.request("POST", "/api/admin/pause", &[(olga.0, &olga.1)], b"").await;
    ensure!(
        again.status == 200 && again.json()?["changed"] == false,
        "pausing twice changes nothing: {}",
        again.text()
    );
    let state = app.request("GET", "/api/admin/drill", &[(olga.0, &olga.1)], b"").await;
    ensure!(state.json()?["paused"] == true && state.json()?["account"] == "olga", "{}", state.text());

    let r = app.request("POST", "/api/admin/resume", &[(olga.0, &olga.1), JSON], b"{}").await;
    ensure!(r.status == 200 && r.json()?["changed"] == true, "{}", r.text());
    ensure!(!*watch.borrow() && !app.store.drill_state().await?.paused, "resumed");

    let bad = app.request("POST", "/api/admin/pause", &[(olga.0, &olga.1), JSON], br#"{"why":"x"}"#).await;
    ensure!(bad.status == 400 && bad.text().contains("unknown field"), "{}", bad.text());
    ensure!(!app.store.drill_state().await?.paused, "a refused request changes nothing");

    let audit: Vec<(String, String, String)> =
        app.store.list_audit(None, 10).await?.into_iter().map(|a| (a.actor, a.action, a.detail.to_string())).collect();
    ensure!(
        audit
            == [
                ("account olga".to_owned(), "drill.pause".to_owned(), r#"{"reason":"fire drill"}"#.to_owned()),
                ("account olga".to_owned(), "drill.resume".to_owned(), r#"{"reason":""}"#.to_owned()),
            ],
        "one line per change, under the token's account: {audit:?}"
    );
    Ok(())
}

async fn observers_judges_and_teams_change_nothing(app: App) -> anyhow::Result<()> {
    app.store.create_account("oscar", AccountRole::Observer, "observer password").await?;
    let oscar = api_auth(&app, "oscar").await;
    let ana = api_auth(&app, ANA.0).await;
    let team = team_auth(&app, gongfang_core::TeamId(1));
    for (who, auth) in [("observer", &oscar), ("judge", &ana)] {
        for path in ["/api/admin/pause", "/api/admin/resume"] {
            let r = app.request("POST", path, &[(auth.0, &auth.1)], b"").await;
            ensure!(r.status == 403, "{who} {path}: {}", r.text());
            ensure!(r.json()?["error"]["code"] == "organisers_only", "{}", r.text());
        }
        let r = app.request("POST", "/api/admin/announce", &[(auth.0, &auth.1), JSON], br#"{"title":"hello"}"#).await;
        ensure!(r.status == 403, "{who} announce: {}", r.text());
    }
    // An observer reads the drill's state; a judge does not.
    let r = app.request("GET", "/api/admin/drill", &[(oscar.0, &oscar.1)], b"").await;
    ensure!(r.status == 200 && r.json()?["role"] == "observer", "{}", r.text());
    let r = app.request("GET", "/api/admin/drill", &[(ana.0, &ana.1)], b"").await;
    ensure!(r.status == 403, "{}", r.text());
    // A team token is not an API token.
    let r = app.request("POST", "/api/admin/pause", &[(team.0, &team.1)], b"").await;
    ensure!(r.status == 401 && r.json()?["error"]["code"] == "unauthenticated", "{}", r.text());
    let r = app.request("POST", "/api/admin/pause", &[("Authorization", &format!("Bearer {}", team.1))], b"").await;
    ensure!(r.status == 401 && r.json()?["error"]["code"] == "bad_api_token", "{}", r.text());

    ensure!(!app.store.drill_state().await?.paused, "nobody paused the drill");
    ensure!(app.store.list_announcements(10).await?.is_empty(), "nobody announced");
    ensure!(app.store.list_audit(None, 10).await?.is_empty(), "nothing to audit");
    Ok(())
}

async fn a_revoked_token_stops_and_wrong_tokens_are_backed_off(app: App) -> anyhow::Result<()> {
    let old = api_auth(&app, "olga").await;
    let new = api_auth(&app, "olga").await;
    let r = app.request("GET", "/api/admin/drill", &[(old.0, &old.1)], b"").await;
    ensure!(r.status == 401, "a replaced token stops working: {}", r.text());
    let r = app.request("GET", "/api/admin/drill", &[(new.0, &new.1)], b"").await;
    ensure!(r.status == 200, "{}", r.text());
    ensure!(app.store.revoke_api_token("olga").await?, "olga had a token");
    let r = app.request("POST", "/api/admin/pause", &[(new.0, &new.1)], b"").await;
    ensure!(r.status == 401 && r.header("www-authenticate").is_some(), "a revoked token stops at once: {}", r.text());

    // The two wrong tokens above and eighteen more: the next is refused unchecked.
    let wrong = format!("Bearer gfo_{}", "0".repeat(64));
    let mut statuses = Vec::new();
    for _ in 0..19 {
        statuses.push(app.request("POST", "/api/admin/pause", &[("Authorization", &wrong)], b"").await.status);
    }
    ensure!(statuses[..18].iter().all(|s| *s == 401), "{statuses:?}");
    ensure!(statuses[18] == 429, "the 21st wrong credential is backed off: {statuses:?}");
    ensure!(!app.store.drill_state().await?.paused, "nothing changed");
    Ok(())
}

async fn bilingual_announcements_are_stored_and_live(mut app: App) -> anyhow::Result<()> {
    let olga = api_auth(&app, "olga").await;
    let sent = json!({
        "title": "Lunch break",
        "body": "Checks go on.",
        "title_zh": "午膳時間",
        "body_zh": "檢查照常進行。",
    });
    let r = app.request("POST", "/api/admin/announce", &[(olga.0, &olga.1), JSON], sent.to_string().as_bytes()).await;
    ensure!(r.status == 201, "{}", r.text());
    let id = r.json()?["id"].as_i64().unwrap();
    let event = app.events.try_recv()?;
    ensure!(
        event == GameEvent::Announcement { id, title: "Lunch break".into(), title_zh: Some("午膳時間".into()) },
        "{event:?}"
    );
    let answer = r.json()?;
    ensure!(answer["body_zh"] == "檢查照常進行。" && answer.get("author").is_none(), "{answer}");
    let stored = app.store.list_announcements(10).await?;
    ensure!(stored[0].text.body_zh.as_deref() == Some("檢查照常進行。"), "{stored:?}");
    ensure!(stored[0].author == "account olga", "stored under the token's account: {stored:?}");
    let audit = app.store.list_audit(None, 10).await?;
    ensure!(audit[0].actor == "account olga" && audit[0].action == "announcement.post", "{audit:?}");

    let untitled = app.request("POST", "/api/admin/announce", &[(olga.0, &olga.1), JSON], br#"{"title":" "}"#).await;
    ensure!(untitled.status == 400 && untitled.text().contains("needs a `title`"), "{}", untitled.text());
    let huge = json!({ "title": "x", "body": "y".repeat(70_000) }).to_string();
    let r = app.request("POST", "/api/admin/announce", &[(olga.0, &olga.1), JSON], huge.as_bytes()).await;
    ensure!(r.status == 413, "{}", r.text());
    ensure!(app.store.list_announcements(10).await?.len() == 1, "refused announcements are not stored");
    Ok(())
}

async fn the_end_moves_later_until_it_has_passed(mut app: App) -> anyhow::Result<()> {
    let olga = api_auth(&app, "olga").await;
    let planned = app.scenario.drill.duration;
    let r = app
        .request("POST", "/api/admin/extend", &[(olga.0, &olga.1), JSON], br#"{"minutes":30,"reason":"outage"}"#)
        .await;
    ensure!(r.status == 200, "{}", r.text());
    let want_end = started() + chrono::Duration::from_std(planned)? + chrono::Duration::minutes(30);
    ensure!(r.json()?["extended_secs"] == 1800, "{}", r.text());
    ensure!(
        r.json()?["ends_at"].as_str().map(|s| s.parse::<chrono::DateTime<chrono::Utc>>()) == Some(Ok(want_end)),
        "{}",
        r.text()
    );
    ensure!(app.events.try_recv()? == GameEvent::Extended { total_secs: 1800 }, "the clock is told");
    let state = app.request("GET", "/api/admin/drill", &[(olga.0, &olga.1)], b"").await.json()?;
    ensure!(state["extended_secs"] == 1800, "{state}");
    let audit = app.store.list_audit(None, 10).await?;
    ensure!(audit[0].actor == "account olga" && audit[0].action == "drill.extend", "{audit:?}");
    ensure!(audit[0].detail["minutes"] == 30 && audit[0].detail["reason"] == "outage", "{audit:?}");

    for bad in [&br#"{"minutes":0}"#[..], br#"{"minutes":1441}"#, br#"{"minutes":-5}"#, br#"{}"#] {
        let r = app.request("POST", "/api/admin/extend", &[(olga.0, &olga.1), JSON], bad).await;
        ensure!(r.status == 400, "{}: {}", String::from_utf8_lossy(bad), r.text());
    }
    app.store.create_account("oscar", AccountRole::Observer, "observer password").await?;
    let oscar = api_auth(&app, "oscar").await;
    let r = app.request("POST", "/api/admin/extend", &[(oscar.0, &oscar.1), JSON], br#"{"minutes":5}"#).await;
    ensure!(r.status == 403, "{}", r.text());

    // Once the extended end has passed, it stays where it is.
    app.set_now(want_end + chrono::Duration::seconds(1));
    let r = app.request("POST", "/api/admin/extend", &[(olga.0, &olga.1), JSON], br#"{"minutes":5}"#).await;
    ensure!(r.status == 409 && r.json()?["error"]["code"] == "drill_over", "{}", r.text());
    ensure!(app.store.drill_extension().await?.as_secs() == 1800, "refusals change nothing");
    Ok(())
}

async fn organisers_mark_a_scored_result_defective(app: App) -> anyhow::Result<()> {
    let olga = api_auth(&app, "olga").await;
    app.store.create_account("oscar", AccountRole::Observer, "observer password").await?;
    let oscar = api_auth(&app, "oscar").await;
    app.store.open_tick(gongfang_core::Tick(0), at(1)).await?;
    app.store.close_tick(gongfang_core::Tick(0), at(2)).await?;
    app.store.mark_tick_scored(gongfang_core::Tick(0), at(2)).await?;
    app.store.open_tick(gongfang_core::Tick(1), at(3)).await?;
    let service = app.scenario.services[0].slug.clone();
    let mark = |tick: u32, team: &str, reason: &str| {
        json!({ "tick": tick, "team": team, "service": service, "reason": reason }).to_string()
    };
    let marks = app.store.defective_watch();

    let r =
        app.request("POST", "/api/admin/defective", &[(oscar.0, &oscar.1), JSON], mark(0, "ddb", "x").as_bytes()).await;
    ensure!(r.status == 403 && r.json()?["error"]["code"] == "organisers_only", "{}", r.text());
    for (body, says) in [
        (mark(1, "ddb", "checker bug"), "has not been scored"),
        (mark(0, "red-firm", "checker bug"), "not a defending team"),
        (mark(0, "ddb", "  "), "say why"),
        (json!({ "tick": 0, "team": "ddb", "service": "nope", "reason": "r" }).to_string(), "not a service"),
    ] {
        let r = app.request("POST", "/api/admin/defective", &[(olga.0, &olga.1), JSON], body.as_bytes()).await;
        ensure!(r.status == 400 && r.text().contains(says), "{body}: {}", r.text());
    }
    ensure!(app.store.defective_results().await?.is_empty(), "no refused request marked anything");
    ensure!(!marks.has_changed()?, "nor told the engine");

    let r = app
        .request("POST", "/api/admin/defective", &[(olga.0, &olga.1), JSON], mark(0, "ddb", "checker bug").as_bytes())
        .await;
    ensure!(r.status == 200 && r.json()?["marked"] == true, "{}", r.text());
    ensure!(r.json()?["defect"]["marked_by"] == "account olga", "{}", r.text());
    ensure!(marks.has_changed()?, "the engine is told to score again");
    let r = app
        .request("POST", "/api/admin/defective", &[(olga.0, &olga.1), JSON], mark(0, "ddb", "again").as_bytes())
        .await;
    ensure!(r.status == 200 && r.json()?["marked"] == false, "marked once: {}", r.text());
    ensure!(r.json()?["defect"]["reason"] == "checker bug", "the first mark stays: {}", r.text());

    let list = app.request("GET", "/api/admin/defective", &[(oscar.0, &oscar.1)], b"").await;
    ensure!(list.status == 200 && list.json()?.as_array().map(Vec::len) == Some(1), "{}", list.text());
    let audit = app.store.list_audit(None, 10).await?;
    let marked: Vec<_> = audit.iter().filter(|a| a.action == "result.defective").map(|a| a.actor.clone()).collect();
    ensure!(marked == ["account olga"], "{audit:?}");
    Ok(())
}

async fn organisers_restart_and_reset_a_teams_service(app: App) -> anyhow::Result<()> {
    let olga = api_auth(&app, "olga").await;
    app.store.create_account("oscar", AccountRole::Observer, "observer password").await?;
    let oscar = api_auth(&app, "oscar").await;
    let service = app.scenario.services[0].slug.clone();
    let body = |team: &str, action: &str| {
        json!({ "team": team, "service": service, "action": action, "reason": "stuck" }).to_string()
    };

    let r = app
        .request("POST", "/api/admin/service", &[(oscar.0, &oscar.1), JSON], body("ddb", "restart").as_bytes())
        .await;
    ensure!(r.status == 403, "an observer restarts nothing: {}", r.text());
    for (sent, says) in
        [(body("ddb", "reboot"), "`restart` or `reset`"), (body("red-firm", "restart"), "not a defending team")]
    {
        let r = app.request("POST", "/api/admin/service", &[(olga.0, &olga.1), JSON], sent.as_bytes()).await;
        ensure!(r.status == 400 && r.text().contains(says), "{sent}: {}", r.text());
    }
    ensure!(app.store.list_audit(None, 10).await?.is_empty(), "refused requests reach no container");

    let r =
        app.request("POST", "/api/admin/service", &[(olga.0, &olga.1), JSON], body("ddb", "restart").as_bytes()).await;
    ensure!(r.status == 200, "{}", r.text());
    ensure!(r.json()?["containers"][0] == format!("gf-redblue-ddb-{service}"), "{}", r.text());
    let r =
        app.request("POST", "/api/admin/service", &[(olga.0, &olga.1), JSON], body("crd", "reset").as_bytes()).await;
    ensure!(r.status == 502 && r.json()?["error"]["code"] == "service_control_failed", "{}", r.text());
    ensure!(r.text().contains("no such image"), "the engine's reason is told: {}", r.text());

    let audit = app.store.list_audit(None, 10).await?;
    let lines: Vec<_> = audit.iter().map(|a| (a.actor.as_str(), a.action.as_str(), a.detail["team"].clone())).collect();
    ensure!(
        lines
            == [
                ("account olga", "service.restart", json!("ddb")),
                ("account olga", "service.reset", json!("crd")),
                ("account olga", "service.reset.failed", json!("crd")),
            ],
        "every attempt is audited under the account, and a failure with its reason: {lines:?}"
    );
    ensure!(audit[2].detail["error"].as_str().is_some_and(|e| e.contains("no such image")), "{:?}", audit[2]);
    Ok(())
}

async fn a_drill_without_containers_says_it_cannot_restart(app: App) -> anyhow::Result<()> {
    let olga = api_auth(&app, "olga").await;
    let body = json!({ "team": "ddb", "service": app.scenario.services[0].slug, "action": "restart" }).to_string();
    let r = app.request("POST", "/api/admin/service", &[(olga.0, &olga.1), JSON], body.as_bytes()).await;
    ensure!(r.status == 502 && r.text().contains("runs no containers"), "{}", r.text());
    Ok(())
}

async fn organisers_read_the_checker_log_teams_do_not(app: App) -> anyhow::Result<()> {
    let olga = api_auth(&app, "olga").await;
    let service = app.scenario.services[0].clone();
    app.store.open_tick(gongfang_core::Tick(0), at(1)).await?;
    let result = gongfang_core::CheckResult {
        tick: gongfang_core::Tick(0),
        team: DDB,
        service: service.id,
        action: gongfang_core::Action::Check,
        store: None,
        verdict: gongfang_core::Verdict::Mumble,
        message: "Login failed / 登入失敗".to_owned(),
        log: "POST /login answered 500 after 2 retries".to_owned(),
        duration_ms: 40,
        recorded_at: at(1),
        fault: None,
    };
    app.store.record_check(&result).await?;
    app.store.close_tick(gongfang_core::Tick(0), at(2)).await?;
    let path = format!("/api/admin/checker-log?team=ddb&service={}", service.slug);
    let r = app.request("GET", &path, &[(olga.0, &olga.1)], b"").await;
    ensure!(r.status == 200 && r.json()?["tick"] == 0, "the latest closed tick by default: {}", r.text());
    let action = &r.json()?["actions"][0];
    ensure!(
        action["log"] == "POST /login answered 500 after 2 retries" && action["verdict"] == "mumble",
        "{}",
        r.text()
    );
    let team = team_auth(&app, DDB);
    let r = app.request("GET", &path, &[(team.0, &team.1)], b"").await;
    ensure!(r.status == 401, "a team token is no organiser's credential: {}", r.text());
    let r = app.request("GET", &format!("{path}&tick=x"), &[(olga.0, &olga.1)], b"").await;
    ensure!(r.status == 400 && r.text().contains("tick number"), "{}", r.text());
    let r = app.request("GET", "/api/admin/checker-log?team=red-firm&service=x", &[(olga.0, &olga.1)], b"").await;
    ensure!(r.status == 400 && r.text().contains("not a defending team"), "{}", r.text());
    Ok(())
}

async fn organisers_freeze_the_public_board_and_lift_the_freeze(mut app: App) -> anyhow::Result<()> {
    let olga = api_auth(&app, "olga").await;
    app.store.create_account("oscar", AccountRole::Observer, "observer password").await?;
    let oscar = api_auth(&app, "oscar").await;
    let freeze = |frozen: bool| json!({ "frozen": frozen, "reason": "last hour" }).to_string();

    let r = app.request("POST", "/api/admin/freeze", &[(olga.0, &olga.1), JSON], freeze(true).as_bytes()).await;
    ensure!(r.status == 409 && r.text().contains("no tick has been scored"), "before any score: {}", r.text());
    for tick in 0..2 {
        let t = gongfang_core::Tick(tick);
        app.store.open_tick(t, at(i64::from(tick) * 10 + 1)).await?;
        app.store.close_tick(t, at(i64::from(tick) * 10 + 2)).await?;
        app.store.mark_tick_scored(t, at(i64::from(tick) * 10 + 2)).await?;
    }
    app.store.open_tick(gongfang_core::Tick(2), at(21)).await?;

    let r = app.request("POST", "/api/admin/freeze", &[(oscar.0, &oscar.1), JSON], freeze(true).as_bytes()).await;
    ensure!(r.status == 403 && r.json()?["error"]["code"] == "organisers_only", "an observer: {}", r.text());
    let r = app.request("POST", "/api/admin/freeze", &[(olga.0, &olga.1), JSON], br#"{"frozen":"yes"}"#).await;
    ensure!(r.status == 400, "a bad body: {}", r.text());
    ensure!(app.store.board_freeze().await?.is_none(), "nothing refused froze the board");

    let r = app.request("POST", "/api/admin/freeze", &[(olga.0, &olga.1), JSON], freeze(true).as_bytes()).await;
    ensure!(r.status == 200 && r.json()?["frozen_through"] == 1 && r.json()?["changed"] == true, "{}", r.text());
    ensure!(app.events.try_recv()? == GameEvent::BoardFrozen { through: Some(gongfang_core::Tick(1)) });
    let r = app.request("POST", "/api/admin/freeze", &[(olga.0, &olga.1), JSON], freeze(true).as_bytes()).await;
    ensure!(r.status == 200 && r.json()?["changed"] == false, "frozen once: {}", r.text());
    let r = app.request("GET", "/api/admin/drill", &[(oscar.0, &oscar.1)], b"").await;
    ensure!(r.json()?["frozen_through"] == 1, "the drill's state shows the freeze: {}", r.text());

    let r = app.request("POST", "/api/admin/freeze", &[(olga.0, &olga.1), JSON], freeze(false).as_bytes()).await;
    ensure!(r.status == 200 && r.json()?["frozen_through"].is_null(), "{}", r.text());
    ensure!(app.events.try_recv()? == GameEvent::BoardFrozen { through: None });
    ensure!(app.store.board_freeze().await?.is_none(), "the freeze is lifted");
    let audit: Vec<(String, String)> =
        app.store.list_audit(None, 10).await?.into_iter().map(|a| (a.actor, a.action)).collect();
    let expected = [("account olga", "board.freeze"), ("account olga", "board.unfreeze")];
    ensure!(
        audit.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect::<Vec<_>>() == expected,
        "each change once, under the account: {audit:?}"
    );
    Ok(())
}

async fn organisers_adjust_a_score_with_a_reason(mut app: App) -> anyhow::Result<()> {
    let olga = api_auth(&app, "olga").await;
    app.store.create_account("oscar", AccountRole::Observer, "observer password").await?;
    let oscar = api_auth(&app, "oscar").await;
    let adjust = |team: &str, points: serde_json::Value, reason: &str| {
        json!({ "team": team, "points": points, "reason": reason }).to_string()
    };

    let r = post(&app, &oscar, adjust("ddb", json!(5), "bonus")).await;
    ensure!(r.status == 403 && r.json()?["error"]["code"] == "organisers_only", "an observer: {}", r.text());
    for (body, says) in [
        (adjust("nope", json!(5), "bonus"), "not a team"),
        (adjust("ddb", json!(0), "bonus"), "other than 0"),
        (adjust("ddb", json!(1e9), "bonus"), "other than 0"),
        (adjust("ddb", json!(-5), "   "), "say why"),
        (json!({ "team": "ddb", "points": 5 }).to_string(), "reason"),
    ] {
        let r = post(&app, &olga, body.clone()).await;
        ensure!(r.status == 400 && r.text().contains(says), "{body}: {}", r.text());
    }
    ensure!(app.store.score_adjustments().await?.is_empty(), "nothing refused was stored");

    let r = post(&app, &olga, adjust("ddb", json!(-12.5), "attacked the scoring server")).await;
    ensure!(r.status == 201, "{}", r.text());
    let made = r.json()?;
    ensure!(made["team"] == "ddb" && made["points"] == -12.5 && made["made_by"] == "account olga", "{made}");
    let told = app.events.try_recv()?;
    ensure!(told == GameEvent::ScoreAdjusted { team: DDB, points: -12.5 }, "the board is told: {told:?}");
    let r = post(&app, &olga, adjust("ddb", json!(2.5), "helped another team's service back up")).await;
    ensure!(r.status == 201, "{}", r.text());
    let totals = app.store.adjustment_totals(None, None).await?;
    ensure!(totals.get(&DDB) == Some(&-10.0), "the sum: {totals:?}");

    let list = app.request("GET", "/api/admin/adjustments", &[(oscar.0, &oscar.1)], b"").await;
    ensure!(list.status == 200 && list.json()?.as_array().map(Vec::len) == Some(2), "{}", list.text());
    let audit = app.store.list_audit(None, 10).await?;
    let adjusted: Vec<_> = audit.iter().filter(|a| a.action == "score.adjust").map(|a| a.actor.as_str()).collect();
    ensure!(adjusted == ["account olga", "account olga"], "{audit:?}");
    Ok(())
}

async fn post(app: &App, auth: &(&'static str, String), body: String) -> gongfang_test_support::http::Response {
    app.request("POST", "/api/admin/adjustments", &[(auth.0, &auth.1), JSON], body.as_bytes()).await
}

async fn organisers_list_teams_and_give_one_a_new_token(app: App) -> anyhow::Result<()> {
    let olga = api_auth(&app, "olga").await;
    app.store.create_account("oscar", AccountRole::Observer, "observer password").await?;
    let oscar = api_auth(&app, "oscar").await;
    let list = app.request("GET", "/api/admin/teams", &[(oscar.0, &oscar.1)], b"").await;
    ensure!(list.status == 200, "{}", list.text());
    let slugs: Vec<String> =
        list.json()?.as_array().into_iter().flatten().filter_map(|t| t["slug"].as_str().map(str::to_owned)).collect();
    ensure!(slugs.len() == app.scenario.teams.len() && slugs.contains(&"ddb".to_owned()), "every team: {slugs:?}");

    let old = team_auth(&app, DDB);
    let body = br#"{"team":"ddb","reason":"token lost"}"#;
    let r = app.request("POST", "/api/admin/teams/token", &[(oscar.0, &oscar.1), JSON], body).await;
    ensure!(r.status == 403, "an observer issues no token: {}", r.text());
    let r = app.request("POST", "/api/admin/teams/token", &[(olga.0, &olga.1), JSON], br#"{"team":"nope"}"#).await;
    ensure!(r.status == 400 && r.text().contains("not a team"), "{}", r.text());
    let r = app.request("GET", "/api/reports", &[(old.0, &old.1)], b"").await;
    ensure!(r.status == 200, "the old token works until the new one is issued: {}", r.text());

    let r = app.request("POST", "/api/admin/teams/token", &[(olga.0, &olga.1), JSON], body).await;
    ensure!(r.status == 200 && r.json()?["team"] == "ddb", "{}", r.text());
    let token = r.json()?["token"].as_str().unwrap_or_default().to_owned();
    ensure!(token.len() >= 32 && token != old.1, "a new token: {}", r.text());
    let r = app.request("GET", "/api/reports", &[(old.0, &old.1)], b"").await;
    ensure!(r.status == 401, "the old token stops at once: {}", r.text());
    let r = app.request("GET", "/api/reports", &[("X-Team-Token", &token)], b"").await;
    ensure!(r.status == 200, "the new one works: {}", r.text());
    let audit = app.store.list_audit(None, 10).await?;
    let rotated: Vec<_> = audit.iter().filter(|a| a.action == "team.token.rotate").map(|a| a.actor.as_str()).collect();
    ensure!(rotated == ["account olga"], "audited under the account: {audit:?}");
    ensure!(!audit.iter().any(|a| a.detail.to_string().contains(&token)), "the token is never in the audit log");
    Ok(())
}

async fn organisers_take_a_team_out_of_the_drill_and_bring_it_back(app: App) -> anyhow::Result<()> {
    let olga = api_auth(&app, "olga").await;
    app.store.create_account("oscar", AccountRole::Observer, "observer password").await?;
    let oscar = api_auth(&app, "oscar").await;
    let team = team_auth(&app, DDB);
    let login = format!(r#"{{"team_token":"{}"}}"#, team.1);
    let r = app.request("POST", "/api/session", &[JSON], login.as_bytes()).await;
    ensure!(r.status == 200, "the team logs in while it plays: {}", r.text());
    let session = r.header("set-cookie").and_then(|c| c.split(';').next()).unwrap_or_default().to_owned();

    let out = br#"{"team":"ddb","disabled":true,"reason":"attacked the platform's own gateway"}"#;
    let r = app.request("POST", "/api/admin/teams/disable", &[(oscar.0, &oscar.1), JSON], out).await;
    ensure!(r.status == 403, "an observer takes no team out: {}", r.text());
    let no_reason = br#"{"team":"ddb","disabled":true}"#;
    let r = app.request("POST", "/api/admin/teams/disable", &[(olga.0, &olga.1), JSON], no_reason).await;
    ensure!(r.status == 400 && r.text().contains("reason"), "a reason is required: {}", r.text());
    ensure!(app.store.disabled_teams().await?.is_empty(), "a refused request changes nothing");

    let r = app.request("POST", "/api/admin/teams/disable", &[(olga.0, &olga.1), JSON], out).await;
    ensure!(r.status == 200 && r.json()?["disabled_at"].is_string(), "{}", r.text());
    ensure!(app.store.disabled_teams().await? == [DDB], "stored");
    let r = app.request("POST", "/api/admin/teams/disable", &[(olga.0, &olga.1), JSON], out).await;
    ensure!(r.status == 200, "asking again answers the team as it is: {}", r.text());
    let r = app.request("GET", "/api/reports", &[(team.0, &team.1)], b"").await;
    ensure!(
        r.status == 403 && r.json()?["error"]["code"] == "team_disabled",
        "the token is refused, saying why: {}",
        r.text()
    );
    let r = app.request("POST", "/api/session", &[JSON], login.as_bytes()).await;
    ensure!(r.status == 403 && r.text().contains("out of the drill"), "no new login: {}", r.text());
    let r = app.request("GET", "/api/portal", &[("Cookie", &session)], b"").await;
    ensure!(r.status == 401, "the team's open session ended: {}", r.text());
    let list = app.request("GET", "/api/admin/teams", &[(oscar.0, &oscar.1)], b"").await;
    let listed = list.json()?;
    let ddb = listed.as_array().into_iter().flatten().find(|t| t["slug"] == "ddb").cloned().unwrap_or_default();
    ensure!(ddb["disabled_at"].is_string(), "the console sees it out: {ddb}");
    let checklist = app.request("GET", "/api/admin/checklist", &[(oscar.0, &oscar.1)], b"").await.json()?;
    let rows = checklist["rows"].as_array().cloned().unwrap_or_default();
    let out: Vec<_> = rows.iter().filter(|r| r["out_of_drill"] == true).map(|r| r["team_slug"].clone()).collect();
    ensure!(!out.is_empty() && out.iter().all(|slug| slug == "ddb"), "the checklist marks its rows: {checklist}");
    ensure!(checklist["playing"] == rows.len() - out.len(), "and counts the others only: {checklist}");

    let back = br#"{"team":"ddb","disabled":false}"#;
    let r = app.request("POST", "/api/admin/teams/disable", &[(olga.0, &olga.1), JSON], back).await;
    ensure!(r.status == 200 && r.json()?.get("disabled_at").is_none(), "{}", r.text());
    let r = app.request("GET", "/api/reports", &[(team.0, &team.1)], b"").await;
    ensure!(r.status == 200, "the same token works again: {}", r.text());
    let audit = app.store.list_audit(None, 20).await?;
    let changes: Vec<_> = audit
        .iter()
        .filter(|a| a.action.starts_with("team.") && a.action != "team.token.rotate")
        .map(|a| (a.action.as_str(), a.actor.as_str()))
        .collect();
    ensure!(
        changes.len() == 2 && changes.iter().all(|(_, actor)| *actor == "account olga"),
        "both changes audited under the account, the repeated one not: {changes:?}"
    );
    Ok(())
}
