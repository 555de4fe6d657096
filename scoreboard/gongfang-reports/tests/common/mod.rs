//! The report routes for tests: on a test's database (`gongfang-test-support`), the red/blue
//! example scenario synced, tokens issued, two judges, and the routes served on 127.0.0.1:0.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use gongfang_core::AccountRole;
use gongfang_core::TeamId;
use gongfang_core::event::GameEvent;
use gongfang_core::scenario::{self, Scenario};
use gongfang_reports::{Now, ReportsState};
use gongfang_store::{DrillState, Store};
use gongfang_test_support::TestDb;
use gongfang_test_support::browser::{Cdp, PAGE_READY, click, fill, submit, target_dir};
use gongfang_test_support::http::Response;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot};

pub const RED_FIRM: TeamId = TeamId(1);
pub const RED_ACADEMY: TeamId = TeamId(2);
pub const DDB: TeamId = TeamId(11);
pub const CRD: TeamId = TeamId(12);
pub const CHRA: TeamId = TeamId(13);
pub const ANA: (&str, &str) = ("ana", "correct horse battery staple");
pub const BO: (&str, &str) = ("bo", "purple monkey dishwasher");

/// When tick 0 of the test drill started.
pub fn started() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0).unwrap()
}

/// `minutes` after the start.
pub fn at(minutes: i64) -> DateTime<Utc> {
    started() + chrono::Duration::minutes(minutes)
}

/// A clock the test sets.
#[derive(Debug)]
pub struct TestClock(pub Mutex<DateTime<Utc>>);

impl Now for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// The shipped red/blue example scenario.
pub fn redblue() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../challenges/redblue/scenario.toml");
    let src = std::fs::read_to_string(&path).unwrap();
    scenario::parse(&src, &path, &scenario::AssumeEverythingExists).unwrap_or_else(|p| panic!("{p}"))
}

/// A running report server.
pub struct App {
    pub addr: SocketAddr,
    pub store: Store,
    pub scenario: Arc<Scenario>,
    pub clock: Arc<TestClock>,
    pub events: broadcast::Receiver<GameEvent>,
    pub tokens: HashMap<TeamId, String>,
    stop: Option<oneshot::Sender<()>>,
    _db: TestDb,
}

impl App {
    pub fn token(&self, team: TeamId) -> String {
        self.tokens[&team].clone()
    }

    pub fn set_now(&self, t: DateTime<Utc>) {
        *self.clock.0.lock().unwrap() = t;
    }

    pub async fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        gongfang_test_support::http::request(self.addr, method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the routes over the test's database with the red/blue scenario.
pub async fn spawn(db: TestDb) -> App {
    spawn_with(db, |_| {}).await
}

/// Starts the routes with the red/blue scenario as `change` leaves it.
pub async fn spawn_with(db: TestDb, change: impl FnOnce(&mut Scenario)) -> App {
    spawn_configured(db, change, |state| state).await
}

/// Starts the routes with the red/blue scenario as `change` leaves it, and their state as
/// `configure` makes it.
pub async fn spawn_configured(
    db: TestDb,
    change: impl FnOnce(&mut Scenario),
    configure: impl FnOnce(ReportsState) -> ReportsState,
) -> App {
    spawn_at(db, change, |state, _| configure(state)).await
}

/// Starts the routes as [`spawn_configured`] does, `configure` told the address they will be
/// served on.
pub async fn spawn_at(
    db: TestDb,
    change: impl FnOnce(&mut Scenario),
    configure: impl FnOnce(ReportsState, SocketAddr) -> ReportsState,
) -> App {
    let store = db.store.clone();
    let mut scenario = redblue();
    change(&mut scenario);
    let scenario = Arc::new(scenario);
    store.sync_scenario(&scenario).await.unwrap();
    let mut tokens = HashMap::new();
    for team in &scenario.teams {
        tokens.insert(team.id, store.issue_token(&team.slug).await.unwrap().token.expose().to_owned());
    }
    store.create_account(ANA.0, AccountRole::Judge, ANA.1).await.unwrap();
    store.create_account(BO.0, AccountRole::Judge, BO.1).await.unwrap();
    store.create_account("olga", AccountRole::Organiser, "organiser password").await.unwrap();
    store
        .set_drill_state(DrillState { paused: false, current_tick: None, started_at: Some(started()) }, started())
        .await
        .unwrap();
    let clock = Arc::new(TestClock(Mutex::new(at(60))));
    let (tx, events) = broadcast::channel(64);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = configure(ReportsState::new(store.clone(), scenario.clone(), tx).with_clock(clock.clone()), addr);
    let app = gongfang_reports::router(state);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        // The peer's address reaches the routes, as the scoreboard's server provides it.
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async {
                stopped.await.ok();
            })
            .await
            .unwrap();
    });
    App { addr, store, scenario, clock, events, tokens, stop: Some(stop), _db: db }
}

/// `X-Team-Token` of a team.
pub fn team_auth(app: &App, team: TeamId) -> (&'static str, String) {
    ("X-Team-Token", app.token(team))
}

/// Logs `judge` in and answers the `Authorization: Bearer` header of the new session.
pub async fn judge_auth(app: &App, judge: (&str, &str)) -> (&'static str, String) {
    let basic = basic(judge.0, judge.1);
    let login = app.request("POST", "/api/judge/login", &[(basic.0, &basic.1)], b"").await;
    assert_eq!(login.status, 200, "{} could not log in: {}", judge.0, login.text());
    let token = login.json().unwrap()["token"].as_str().unwrap().to_owned();
    ("Authorization", format!("Bearer {token}"))
}

/// HTTP basic credentials.
pub fn basic(name: &str, password: &str) -> (&'static str, String) {
    use base64::Engine;
    (
        "Authorization",
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"))),
    )
}

/// A multipart/form-data body: parts of (name, file name, content type, bytes).
pub fn multipart(parts: &[(&str, Option<&str>, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "gongfang-test-boundary-7d1c";
    let mut body = Vec::new();
    for (name, file, ct, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n").as_bytes()),
        }
        body.extend_from_slice(format!("Content-Type: {ct}\r\n\r\n").as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Logs `judge` in on a fresh page of the workbench in `lang` and opens report `id`.
pub async fn open_as(cdp: &mut Cdp, app: &App, judge: (&str, &str), lang: &str, id: i64) -> anyhow::Result<()> {
    cdp.open_isolated_page().await?;
    cdp.navigate(&format!("http://{}/judge?lang={lang}", app.addr)).await?;
    cdp.wait_for("the page is ready", PAGE_READY).await?;
    cdp.eval(&fill("login-name", judge.0)).await?;
    cdp.eval(&fill("login-password", judge.1)).await?;
    cdp.eval(&submit("login-form")).await?;
    cdp.wait_for("the report in the queue", &format!("!!document.querySelector('button[data-open=\"{id}\"]')")).await?;
    cdp.eval(&click(&format!("button[data-open=\"{id}\"]"))).await?;
    cdp.wait_for("the report", &format!("document.getElementById('report-area').dataset.report === '{id}'")).await?;
    Ok(())
}

pub async fn shot(cdp: &mut Cdp, name: &str) -> anyhow::Result<()> {
    let file = cdp.screenshot(&target_dir().join("screenshots").join(format!("{name}.png"))).await?;
    eprintln!("screenshot: {}", file.display());
    Ok(())
}
