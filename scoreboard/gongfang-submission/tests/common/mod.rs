//! The submission servers for tests: on a test's database (`gongfang-test-support`), the
//! scenario synced, tokens issued, and the TCP and HTTP servers bound to port 0.
#![allow(dead_code)]

pub mod fixture;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gongfang_core::clock::{DrillClock, Phase};
use gongfang_core::event::GameEvent;
use gongfang_core::scenario::Scenario;
use gongfang_core::{TeamId, Tick};
use gongfang_store::Store;
use gongfang_submission::{Settings, SubmissionState};
use gongfang_test_support::TestDb;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, oneshot, watch};

/// A running submission server.
pub struct App {
    pub tcp: SocketAddr,
    pub http: SocketAddr,
    pub store: Store,
    pub state: SubmissionState,
    pub clock: watch::Sender<DrillClock>,
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
    let store = db.store.clone();
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
    let (clock, clock_rx) = watch::channel(DrillClock::running(NOW, Duration::from_secs(60)));
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
    // The peer's address reaches the routes (for the failure back-off), as the web server provides it.
    let router = router.into_make_service_with_connect_info::<SocketAddr>();
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

    /// Connects from `source` (port chosen by the system): any 127.0.0.x works on Linux,
    /// where the whole loopback /8 is local, so address mode can be tested with many sources.
    pub async fn connect_from(addr: SocketAddr, source: std::net::Ipv4Addr) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((source, 0))).unwrap();
        let stream = socket.connect(addr).await.unwrap();
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

/// All stored submissions as (attacker, flag), oldest first.
pub async fn stored(store: &Store, upto: Tick) -> Vec<(TeamId, String)> {
    let mut rows = Vec::new();
    for t in 0..=upto.0 {
        for s in store.submissions_in_tick(Tick(t)).await.unwrap() {
            rows.push((s.submission.capture.attacker, s.submission.flag));
        }
    }
    rows
}
