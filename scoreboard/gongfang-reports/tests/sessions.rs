//! Browser sessions over real HTTP with the real store (SQLite always, PostgreSQL when
//! configured): a team logs in to its portal with its token and an account to the console
//! with its password; the session is an HttpOnly, SameSite=Strict cookie; a change made with
//! the cookie but without the session's CSRF token is refused; a team sees only its own
//! portal; an observer changes nothing; the sixth wrong password in a minute is answered 429;
//! logins, logouts and changes are audited under the logged-in account.

mod common;

use anyhow::{Context, ensure};
use gongfang_core::AccountRole;
use gongfang_reports::Settings;
use gongfang_test_support::http::Response;

use common::*;

gongfang_test_support::backend_tests!(
    setup = common::spawn;
    a_team_logs_in_with_its_token_and_sees_only_its_own_portal,
    a_change_without_the_csrf_token_is_refused,
    an_organisers_console_session_pauses_and_is_audited,
    an_observer_reads_the_console_and_changes_nothing,
    the_sixth_wrong_password_in_a_minute_is_answered_429,
    rotating_the_team_token_ends_the_teams_sessions,
    logging_out_ends_the_session,
    a_session_expires_after_its_time,
);

/// A drill that serves HTTPS (itself or behind a proxy).
mod secure {
    use super::*;

    gongfang_test_support::backend_tests!(
        setup = secure_spawn;
        cookies_say_secure_when_the_drill_serves_https,
    );
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

async fn secure_spawn(db: gongfang_test_support::TestDb) -> App {
    spawn_configured(db, |_| {}, |state| state.with_settings(Settings { secure_cookies: true, ..Settings::default() }))
        .await
}

/// A logged-in browser: its cookie and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
    login: Response,
}

impl Browser {
    fn cookie(&self) -> (&'static str, &str) {
        ("Cookie", &self.cookie)
    }

    fn csrf(&self) -> (&'static str, &str) {
        ("X-CSRF-Token", &self.csrf)
    }
}

async fn log_in(app: &App, body: &str) -> anyhow::Result<Browser> {
    let login = app.request("POST", "/api/session", &[JSON], body.as_bytes()).await;
    ensure!(login.status == 200, "login refused: {}", login.text());
    let set = login.header("set-cookie").context("a login sets a cookie")?.to_owned();
    let cookie = set.split(';').next().unwrap_or_default().to_owned();
    let csrf = login.json()?["csrf"].as_str().context("the login answers a CSRF token")?.to_owned();
    Ok(Browser { cookie, csrf, login })
}

async fn team_login(app: &App, team: gongfang_core::TeamId) -> anyhow::Result<Browser> {
    log_in(app, &serde_json::json!({ "team_token": app.token(team) }).to_string()).await
}

async fn a_team_logs_in_with_its_token_and_sees_only_its_own_portal(app: App) -> anyhow::Result<()> {
    let ddb = team_login(&app, DDB).await?;
    let set = ddb.login.header("set-cookie").unwrap_or_default();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        ensure!(set.contains(attribute), "the cookie says {attribute}: {set}");
    }
    ensure!(!set.contains("Secure"), "no Secure over plain HTTP unless configured: {set}");
    ensure!(ddb.login.json()?["role"] == "team" && ddb.login.json()?["name"] == "ddb", "{}", ddb.login.text());
    ensure!(!ddb.login.text().contains(&app.token(DDB)), "the answer does not repeat the token");

    let me = app.request("GET", "/api/session", &[ddb.cookie()], b"").await;
    ensure!(me.status == 200 && me.json()?["csrf"] == ddb.csrf.as_str(), "{}", me.text());

    let portal = app.request("GET", "/api/portal", &[ddb.cookie()], b"").await;
    ensure!(portal.status == 200, "{}", portal.text());
    let view = portal.json()?;
    ensure!(view["team"]["slug"] == "ddb" && view["team"]["id"] == DDB.0, "{}", portal.text());
    ensure!(view["services"].as_array().is_some_and(|s| !s.is_empty()), "{}", portal.text());

    // A report of another team, and one of DDB's own, filed with their tokens.
    let crd = team_auth(&app, CRD);
    let report = serde_json::json!({
        "kind": "defence", "service": app.scenario.services[0].slug, "from": at(10), "to": at(20),
        "technique": "log review", "description": "we saw a scan",
    });
    let filed = app.request("POST", "/api/reports", &[(crd.0, &crd.1), JSON], report.to_string().as_bytes()).await;
    ensure!(filed.status == 201, "{}", filed.text());
    let crd_report = filed.json()?["id"].as_i64().context("report id")?;

    // The portal's own session files and lists reports, and only its own.
    let mut headers = vec![ddb.cookie(), ddb.csrf(), JSON];
    let filed = app.request("POST", "/api/reports", &headers, report.to_string().as_bytes()).await;
    ensure!(filed.status == 201, "the portal files a report with its session: {}", filed.text());
    ensure!(filed.json()?["team"] == "ddb", "{}", filed.text());
    headers.truncate(1);
    let list = app.request("GET", "/api/reports", &headers, b"").await;
    let teams: Vec<_> = list.json()?.as_array().context("a list")?.iter().map(|r| r["team"].clone()).collect();
    ensure!(teams == [serde_json::json!("ddb")], "a team lists only its own reports: {}", list.text());
    let other = app.request("GET", &format!("/api/reports/{crd_report}"), &headers, b"").await;
    ensure!(other.status == 404, "another team's report does not exist for it: {}", other.text());

    // The team named in a query or body is never used: there is no way to ask for another's portal.
    let other = app.request("GET", "/api/portal?team=crd", &headers, b"").await;
    ensure!(other.json()?["team"]["slug"] == "ddb", "{}", other.text());

    // A team's session opens no judge's or organiser's route.
    let queue = app.request("GET", "/api/judge/queue", &headers, b"").await;
    ensure!(queue.status == 403, "{}", queue.text());
    let drill = app.request("GET", "/api/admin/drill", &headers, b"").await;
    ensure!(drill.status == 403 && drill.json()?["error"]["code"] == "organisers_only", "{}", drill.text());

    let audit = app.store.list_audit(None, 50).await?;
    ensure!(
        audit.iter().any(|a| a.actor == "team ddb" && a.action == "session.login"),
        "the login is audited under the team: {audit:?}"
    );
    Ok(())
}

async fn a_change_without_the_csrf_token_is_refused(app: App) -> anyhow::Result<()> {
    let olga = log_in(&app, r#"{"name":"olga","password":"organiser password"}"#).await?;
    let r = app.request("POST", "/api/admin/pause", &[olga.cookie(), JSON], b"{}").await;
    ensure!(r.status == 403 && r.json()?["error"]["code"] == "csrf_missing", "{}", r.text());
    let wrong = ("X-CSRF-Token", "0".repeat(64));
    let r = app.request("POST", "/api/admin/pause", &[olga.cookie(), (wrong.0, &wrong.1), JSON], b"{}").await;
    ensure!(r.status == 403 && r.json()?["error"]["code"] == "csrf_mismatch", "{}", r.text());
    // Another session's CSRF token is no better.
    let other = log_in(&app, r#"{"name":"olga","password":"organiser password"}"#).await?;
    let r = app.request("POST", "/api/admin/pause", &[olga.cookie(), other.csrf(), JSON], b"{}").await;
    ensure!(r.status == 403 && r.json()?["error"]["code"] == "csrf_mismatch", "{}", r.text());
    ensure!(!app.store.drill_state().await?.paused, "no refused form paused the drill");

    let ddb = team_login(&app, DDB).await?;
    for (method, path) in [("POST", "/api/portal/token"), ("POST", "/api/reports"), ("DELETE", "/api/session")] {
        let r = app.request(method, path, &[ddb.cookie(), JSON], b"{}").await;
        ensure!(r.status == 403 && r.json()?["error"]["code"] == "csrf_missing", "{method} {path}: {}", r.text());
    }
    let still = app.request("GET", "/api/portal", &[ddb.cookie()], b"").await;
    ensure!(still.status == 200, "the refused logout left the session open: {}", still.text());
    ensure!(app.store.verify_token(&app.token(DDB)).await? == Some(DDB), "the token was not rotated");

    // With its token the change goes through.
    let r = app.request("POST", "/api/admin/pause", &[olga.cookie(), olga.csrf(), JSON], b"{}").await;
    ensure!(r.status == 200 && r.json()?["changed"] == true, "{}", r.text());
    Ok(())
}

async fn an_organisers_console_session_pauses_and_is_audited(app: App) -> anyhow::Result<()> {
    let olga = log_in(&app, r#"{"name":" olga ","password":"organiser password"}"#).await?;
    ensure!(olga.login.json()?["role"] == "organiser", "{}", olga.login.text());
    let watch = app.store.paused_watch();
    let headers = [olga.cookie(), olga.csrf(), JSON];
    let r = app.request("POST", "/api/admin/pause", &headers, br#"{"reason":"typhoon signal 8"}"#).await;
    ensure!(r.status == 200, "{}", r.text());
    ensure!(*watch.borrow(), "the engine's watch sees the pause when the answer arrives");
    let r = app
        .request("POST", "/api/admin/announce", &headers, r#"{"title":"Paused","title_zh":"暫停"}"#.as_bytes())
        .await;
    ensure!(r.status == 201, "{}", r.text());

    let page = app.request("GET", "/api/admin/audit?actor=account%20olga&action=drill", &[olga.cookie()], b"").await;
    ensure!(page.status == 200, "{}", page.text());
    let entries = page.json()?["entries"].clone();
    let actions: Vec<_> = entries.as_array().context("entries")?.iter().map(|e| e["action"].clone()).collect();
    ensure!(actions == [serde_json::json!("drill.pause")], "filtered by actor and action family: {}", page.text());
    ensure!(entries[0]["detail"]["reason"] == "typhoon signal 8", "{}", page.text());

    let all = app.request("GET", "/api/admin/audit?limit=2", &[olga.cookie()], b"").await;
    let page = all.json()?;
    ensure!(page["entries"].as_array().map(Vec::len) == Some(2), "{}", all.text());
    ensure!(page["entries"][0]["action"] == "announcement.post", "newest first: {}", all.text());
    let before = page["next_before"].as_i64().context("a full page says where the next starts")?;
    let older = app.request("GET", &format!("/api/admin/audit?limit=2&before={before}"), &[olga.cookie()], b"").await;
    ensure!(older.json()?["entries"][0]["action"] == "session.login", "{}", older.text());

    let bad = app.request("GET", "/api/admin/audit?limit=0", &[olga.cookie()], b"").await;
    ensure!(bad.status == 400 && bad.text().contains("from 1 to"), "{}", bad.text());

    let checklist = app.request("GET", "/api/admin/checklist", &[olga.cookie()], b"").await;
    ensure!(checklist.status == 200, "{}", checklist.text());
    let defenders = app.scenario.teams.iter().filter(|t| t.role.defends()).count();
    let rows = checklist.json()?["rows"].as_array().map(Vec::len);
    ensure!(
        rows == Some(defenders * app.scenario.services.len()),
        "one row per defender and service: {}",
        checklist.text()
    );
    Ok(())
}

async fn an_observer_reads_the_console_and_changes_nothing(app: App) -> anyhow::Result<()> {
    app.store.create_account("oscar", AccountRole::Observer, "observer password").await?;
    let oscar = log_in(&app, r#"{"name":"oscar","password":"observer password"}"#).await?;
    ensure!(oscar.login.json()?["role"] == "observer", "{}", oscar.login.text());
    let headers = [oscar.cookie(), oscar.csrf(), JSON];
    for (path, body) in [
        ("/api/admin/pause", "{}"),
        ("/api/admin/resume", "{}"),
        ("/api/admin/extend", r#"{"minutes":10}"#),
        ("/api/admin/announce", r#"{"title":"hello"}"#),
    ] {
        let r = app.request("POST", path, &headers, body.as_bytes()).await;
        ensure!(r.status == 403 && r.json()?["error"]["code"] == "organisers_only", "{path}: {}", r.text());
    }
    for path in ["/api/admin/drill", "/api/admin/checklist", "/api/admin/audit"] {
        let r = app.request("GET", path, &[oscar.cookie()], b"").await;
        ensure!(r.status == 200, "an observer reads {path}: {}", r.text());
    }
    ensure!(!app.store.drill_state().await?.paused, "nobody paused the drill");
    ensure!(app.store.list_announcements(10).await?.is_empty(), "nobody announced");
    ensure!(app.store.drill_extension().await?.is_zero(), "nobody extended the drill");
    let changes: Vec<_> =
        app.store.list_audit(None, 50).await?.into_iter().filter(|a| !a.action.starts_with("session.")).collect();
    ensure!(changes.is_empty(), "nothing but the login to audit: {changes:?}");
    Ok(())
}

async fn the_sixth_wrong_password_in_a_minute_is_answered_429(app: App) -> anyhow::Result<()> {
    let wrong = br#"{"name":"olga","password":"not it"}"#;
    for attempt in 1..=5 {
        let r = app.request("POST", "/api/session", &[JSON], wrong).await;
        ensure!(r.status == 401 && r.json()?["error"]["code"] == "bad_credentials", "attempt {attempt}: {}", r.text());
        ensure!(r.header("www-authenticate").is_none(), "no browser dialog for a page's login");
    }
    let sixth = app.request("POST", "/api/session", &[JSON], wrong).await;
    ensure!(sixth.status == 429, "the sixth wrong password is refused unchecked: {}", sixth.text());
    ensure!(sixth.header("retry-after").is_some(), "it says when to come back");
    let right =
        app.request("POST", "/api/session", &[JSON], br#"{"name":"olga","password":"organiser password"}"#).await;
    ensure!(right.status == 429, "even the right password waits out the back-off: {}", right.text());
    // Another account is not held back by olga's.
    let ana = app
        .request("POST", "/api/session", &[JSON], format!(r#"{{"name":"ana","password":"{}"}}"#, ANA.1).as_bytes())
        .await;
    ensure!(ana.status == 200 && ana.json()?["role"] == "judge", "{}", ana.text());

    let r = app.request("POST", "/api/session", &[JSON], br#"{"team_token":"x","name":"olga"}"#).await;
    ensure!(r.status == 400 && r.text().contains("team_token"), "a login of neither kind says both: {}", r.text());
    Ok(())
}

async fn rotating_the_team_token_ends_the_teams_sessions(app: App) -> anyhow::Result<()> {
    let ddb = team_login(&app, DDB).await?;
    let second = team_login(&app, DDB).await?;
    let r = app.request("POST", "/api/portal/token", &[ddb.cookie(), ddb.csrf()], b"").await;
    ensure!(r.status == 200, "{}", r.text());
    let token = r.json()?["token"].as_str().context("the new token")?.to_owned();
    ensure!(app.store.verify_token(&token).await? == Some(DDB), "the new token works");
    ensure!(app.store.verify_token(&app.token(DDB)).await?.is_none(), "the old token stopped");
    for session in [&ddb, &second] {
        let r = app.request("GET", "/api/portal", &[session.cookie()], b"").await;
        ensure!(r.status == 401 && r.json()?["error"]["code"] == "bad_session", "{}", r.text());
    }
    let audit = app.store.list_audit(None, 50).await?;
    ensure!(audit.iter().any(|a| a.actor == "team ddb" && a.action == "team.token.rotate"), "{audit:?}");
    ensure!(!audit.iter().any(|a| a.detail.to_string().contains(&token)), "the token is never audited");
    Ok(())
}

async fn logging_out_ends_the_session(app: App) -> anyhow::Result<()> {
    let olga = log_in(&app, r#"{"name":"olga","password":"organiser password"}"#).await?;
    let r = app.request("DELETE", "/api/session", &[olga.cookie(), olga.csrf()], b"").await;
    ensure!(r.status == 204, "{}", r.text());
    let cleared = r.header("set-cookie").unwrap_or_default();
    ensure!(cleared.contains("Max-Age=0"), "the cookie is cleared: {cleared}");
    for headers in [&[olga.cookie()][..], &[]] {
        let r = app.request("GET", "/api/session", headers, b"").await;
        ensure!(r.status == 200 && r.json()?["role"].is_null(), "nobody is logged in: {}", r.text());
    }
    let r = app.request("GET", "/api/admin/drill", &[olga.cookie()], b"").await;
    ensure!(r.status == 401 && r.json()?["error"]["code"] == "bad_session", "{}", r.text());
    let r = app.request("DELETE", "/api/session", &[], b"").await;
    ensure!(r.status == 401 && r.json()?["error"]["code"] == "not_logged_in", "{}", r.text());
    let audit = app.store.list_audit(None, 50).await?;
    ensure!(audit.iter().any(|a| a.actor == "account olga" && a.action == "session.logout"), "{audit:?}");
    Ok(())
}

async fn cookies_say_secure_when_the_drill_serves_https(app: App) -> anyhow::Result<()> {
    let ddb = team_login(&app, DDB).await?;
    let set = ddb.login.header("set-cookie").unwrap_or_default();
    ensure!(set.contains("; Secure") && set.contains("HttpOnly"), "{set}");
    Ok(())
}

async fn a_session_expires_after_its_time(app: App) -> anyhow::Result<()> {
    let ddb = team_login(&app, DDB).await?;
    let olga = log_in(&app, r#"{"name":"olga","password":"organiser password"}"#).await?;
    app.set_now(at(60 + 12 * 60 - 1));
    let r = app.request("GET", "/api/portal", &[ddb.cookie()], b"").await;
    ensure!(r.status == 200, "a minute before the end the session works: {}", r.text());
    app.set_now(at(60 + 12 * 60 + 1));
    let r = app.request("GET", "/api/portal", &[ddb.cookie()], b"").await;
    ensure!(r.status == 401 && r.json()?["error"]["code"] == "bad_session", "after 12 hours it is over: {}", r.text());
    let r = app.request("GET", "/api/admin/drill", &[olga.cookie()], b"").await;
    ensure!(r.status == 401 && r.json()?["error"]["code"] == "bad_session", "{}", r.text());
    let r = app.request("GET", "/api/session", &[olga.cookie()], b"").await;
    ensure!(r.json()?["role"].is_null(), "an expired session is nobody: {}", r.text());
    let cleared = r.header("set-cookie").unwrap_or_default();
    ensure!(cleared.contains("Max-Age=0"), "the browser is told to forget the dead cookie: {cleared}");
    Ok(())
}
