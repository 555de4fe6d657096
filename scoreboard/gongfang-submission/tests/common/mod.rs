//! Test harness: a real store (SQLite file or a fresh PostgreSQL database), migrations, the
//! scenario synced, tokens issued, and the TCP and HTTP servers bound to port 0.
#![allow(dead_code)]

pub mod fixture;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gongfang_core::event::GameEvent;
use gongfang_core::scenario::Scenario;
use gongfang_core::{TeamId, Tick};
use gongfang_store::Store;
use gongfang_submission::{GameClock, Phase, Settings, SubmissionState};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, oneshot, watch};

/// A database for one test; dropping it keeps nothing behind for SQLite (temp dir).
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

pub fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("drill.db").display());
    TestDb { url, _dir: Some(dir) }
}

/// A fresh PostgreSQL database, or `None` (after saying why) when no server is configured.
pub async fn postgres_db(test: &str) -> Option<TestDb> {
    let Ok(base) = std::env::var("GONGFANG_TEST_POSTGRES_URL") else {
        if std::env::var("GONGFANG_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!("GONGFANG_REQUIRE_POSTGRES=1 but GONGFANG_TEST_POSTGRES_URL is not set");
        }
        eprintln!("skipping {test} on PostgreSQL: set GONGFANG_TEST_POSTGRES_URL to run it");
        return None;
    };
    use sea_orm::ConnectionTrait;
    let name = format!(
        "gf_sub_{}_{}_{}",
        test,
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000
    );
    let admin = sea_orm::Database::connect(&base).await.expect("connect to GONGFANG_TEST_POSTGRES_URL");
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    admin.close().await.unwrap();
    Some(TestDb { url: with_database(&base, &name), _dir: None })
}

/// `url` pointing at database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("URL has a scheme");
    let (authority, query) = match rest.split_once('/') {
        Some((a, tail)) => (a, tail.split_once('?').map(|(_, q)| q)),
        None => (rest.split('?').next().unwrap(), rest.split_once('?').map(|(_, q)| q)),
    };
    match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

/// A running submission server.
pub struct App {
    pub tcp: SocketAddr,
    pub http: SocketAddr,
    pub store: Store,
    pub state: SubmissionState,
    pub clock: watch::Sender<GameClock>,
    pub events: broadcast::Receiver<GameEvent>,
    pub tokens: HashMap<TeamId, String>,
    stop: Option<oneshot::Sender<()>>,
    tcp_task: Option<tokio::task::JoinHandle<()>>,
}

impl App {
    /// Stops accepting, lets connections finish, and waits for the TCP server to return.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.tcp_task.take() {
            task.await.unwrap();
        }
    }

    pub fn set_phase(&self, phase: Phase) {
        self.clock.send_modify(|c| c.phase = phase);
    }
}

pub const NOW: Tick = Tick(10);

pub async fn spawn(db: &TestDb, scenario: Scenario, settings: Settings) -> App {
    let store = Store::connect_and_migrate(&db.url).await.unwrap();
    store.sync_scenario(&scenario).await.unwrap();
    let mut tokens = HashMap::new();
    if scenario.submission.identify == gongfang_core::scenario::Identify::Token {
        for team in &scenario.teams {
            let issued = store.issue_token(&team.slug).await.unwrap();
            tokens.insert(team.id, issued.token.expose().to_owned());
        }
    } else {
        // HTTP always identifies by token; two teams are enough for the HTTP tests.
        for team in scenario.teams.iter().filter(|t| t.id == fixture::ALPHA || t.id == fixture::BRAVO) {
            let issued = store.issue_token(&team.slug).await.unwrap();
            tokens.insert(team.id, issued.token.expose().to_owned());
        }
    }
    let (clock, clock_rx) = watch::channel(GameClock::running(NOW));
    let (events_tx, events) = broadcast::channel(100_000);
    let (state, _writer) =
        SubmissionState::start(&scenario, fixture::codec(), Arc::new(store.clone()), clock_rx, events_tx, settings)
            .await
            .unwrap();
    let tcp_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp = tcp_listener.local_addr().unwrap();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let tcp_state = state.clone();
    let tcp_task = tokio::spawn(async move {
        gongfang_submission::tcp::serve(tcp_listener, tcp_state, async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
    });
    let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = http_listener.local_addr().unwrap();
    let router = gongfang_submission::http::router(state.clone());
    tokio::spawn(async move { axum::serve(http_listener, router).await.unwrap() });
    App { tcp, http, store, state, clock, events, tokens, stop: Some(stop), tcp_task: Some(tcp_task) }
}

/// A line-protocol client.
pub struct Client {
    pub reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    pub writer: tokio::net::tcp::OwnedWriteHalf,
}

const TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (r, w) = stream.into_split();
        Client { reader: BufReader::new(r), writer: w }
    }

    /// The next line without its newline; `None` at end of stream.
    pub async fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        let n = tokio::time::timeout(TIMEOUT, self.reader.read_line(&mut line)).await.expect("server answers").unwrap();
        (n > 0).then(|| line.trim_end_matches('\n').to_owned())
    }

    /// Lines up to and including the empty line that ends the banner.
    pub async fn banner(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await.expect("banner before end of stream");
            let done = line.is_empty();
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    /// Everything until the server closes.
    pub async fn rest(&mut self) -> String {
        let mut s = Vec::new();
        tokio::time::timeout(TIMEOUT, self.reader.read_to_end(&mut s)).await.expect("server closes").unwrap();
        String::from_utf8_lossy(&s).into_owned()
    }
}

/// A minimal HTTP/1.1 request over a fresh connection; returns status, headers and body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    // The server may answer (413) before reading a large body; ignore a reset while writing.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut raw)).await.expect("server answers");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// All stored submissions as (attacker, flag), oldest first.
pub async fn stored(store: &Store, upto: Tick) -> Vec<(TeamId, String)> {
    let mut rows = Vec::new();
    for t in 0..=upto.0 {
        for s in store.submissions_in_tick(Tick(t)).await.unwrap() {
            rows.push((s.submission.attacker, s.submission.flag));
        }
    }
    rows
}
