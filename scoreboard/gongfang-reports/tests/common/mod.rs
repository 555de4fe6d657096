//! Test harness: the real store (a SQLite file, or a fresh PostgreSQL database when
//! `GONGFANG_TEST_POSTGRES_URL` is set), migrations, the red/blue example scenario synced,
//! tokens issued, two judges, and the report routes served on 127.0.0.1:0. Requests go over
//! real TCP with a small HTTP/1.1 client.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use gongfang_core::TeamId;
use gongfang_core::event::GameEvent;
use gongfang_core::scenario::{self, Scenario};
use gongfang_reports::{Now, ReportsState};
use gongfang_store::{AccountRole, DrillState, Store};
use rand::Rng;
use sea_orm::ConnectionTrait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, oneshot};

pub const POSTGRES_URL_VAR: &str = "GONGFANG_TEST_POSTGRES_URL";
pub const REQUIRE_POSTGRES_VAR: &str = "GONGFANG_REQUIRE_POSTGRES";

pub const RED_FIRM: TeamId = TeamId(1);
pub const RED_ACADEMY: TeamId = TeamId(2);
pub const MODA: TeamId = TeamId(11);
pub const MOI: TeamId = TeamId(12);
pub const NHI: TeamId = TeamId(13);
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
}

impl App {
    pub fn token(&self, team: TeamId) -> String {
        self.tokens[&team].clone()
    }

    pub fn set_now(&self, t: DateTime<Utc>) {
        *self.clock.0.lock().unwrap() = t;
    }

    pub async fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        request(self.addr, method, path, headers, body).await
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the routes over `url`'s database with the red/blue scenario.
pub async fn spawn(url: &str) -> App {
    let store = Store::connect_and_migrate(url).await.expect("open and migrate");
    let scenario = Arc::new(redblue());
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
    let state = ReportsState::new(store.clone(), scenario.clone(), tx).with_clock(clock.clone());
    let app = gongfang_reports::router(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                stopped.await.ok();
            })
            .await
            .unwrap();
    });
    App { addr, store, scenario, clock, events, tokens, stop: Some(stop) }
}

/// Runs `body` against a fresh SQLite file.
pub async fn with_sqlite<F, Fut>(body: F)
where
    F: FnOnce(App) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("drill.db").display());
    let app = spawn(&url).await;
    finish(tokio::spawn(body(app)).await);
}

/// Runs `body` against a database made for it on the PostgreSQL server, or skips.
pub async fn with_postgres<F, Fut>(body: F)
where
    F: FnOnce(App) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
        if std::env::var(REQUIRE_POSTGRES_VAR).as_deref() == Ok("1") {
            panic!("{POSTGRES_URL_VAR} is not set but {REQUIRE_POSTGRES_VAR}=1: PostgreSQL tests must run");
        }
        eprintln!("SKIPPED: PostgreSQL test; set {POSTGRES_URL_VAR}=postgres://USER@HOST:PORT/postgres to run it");
        return;
    };
    let name = format!("gongfang_reports_{:016x}", rand::rng().random::<u64>());
    let admin = sea_orm::Database::connect(admin_url.as_str()).await.unwrap();
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
    let app = spawn(&with_database(&admin_url, &name)).await;
    let result = tokio::spawn(body(app)).await;
    admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
    admin.close().await.ok();
    finish(result);
}

fn finish(result: Result<anyhow::Result<()>, tokio::task::JoinError>) {
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("test failed: {e:#}"),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("test task failed: {e}"),
    }
}

fn with_database(admin_url: &str, db: &str) -> String {
    let (base, query) = admin_url.split_once('?').map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// Generates `sqlite::NAME` and `postgres::NAME` tests running `async fn NAME(App)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        pub mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::with_sqlite(super::$name).await;
                }
            )*
        }
        pub mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::common::with_postgres(super::$name).await;
                }
            )*
        }
    };
}

/// A response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The stable error code of an error response.
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection.
pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    read_response(&mut stream).await
}

/// Reads one response (the connection is closed by the server after it).
pub async fn read_response(stream: &mut TcpStream) -> Resp {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut buf).await.expect("read response head");
        assert!(n > 0, "connection closed before a response: {:?}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))).collect();
    let mut body = raw[head_end + 4..].to_vec();
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse::<usize>().unwrap());
    match length {
        Some(n) => {
            while body.len() < n {
                let got = stream.read(&mut buf).await.expect("read response body");
                assert!(got > 0, "connection closed inside the body");
                body.extend_from_slice(&buf[..got]);
            }
            body.truncate(n);
        }
        None => {
            stream.read_to_end(&mut body).await.ok();
        }
    }
    Resp { status, headers, body }
}

/// `X-Team-Token` of a team.
pub fn team_auth(app: &App, team: TeamId) -> (&'static str, String) {
    ("X-Team-Token", app.token(team))
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
