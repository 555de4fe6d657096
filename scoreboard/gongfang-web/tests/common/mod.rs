//! What every scoreboard test starts from: a test's SQLite database (`gongfang-test-support`)
//! filled with a two-tick game through the store's own methods, and the real server on a
//! loopback port.
// Each test file uses a part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, TimeZone, Utc};
use gongfang_core::Action;
use gongfang_core::CheckResult;
use gongfang_core::NewSubmission;
use gongfang_core::PlantedFlag;
use gongfang_core::ScoreRow;
use gongfang_core::TeamConnection;
use gongfang_core::clock::{DrillClock, Phase};
use gongfang_core::event::GameEvent;
use gongfang_core::scenario::{Role, Scenario};
use gongfang_core::scoring::Capture;
use gongfang_core::scoring::TeamScore;
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick, Verdict};
use gongfang_store::Store;
use gongfang_test_support::TestDb;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};
use gongfang_web::{ServiceEndpoint, WebSettings, WebState};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;

/// Longest any single wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(20);

pub const DDB: TeamId = TeamId(1);
pub const CRD: TeamId = TeamId(2);
pub const NOP: TeamId = TeamId(3);
pub const RED: TeamId = TeamId(4);
pub const OPENDATA: ServiceId = ServiceId(1);
pub const KV: ServiceId = ServiceId(2);
pub const DEFENDERS: [TeamId; 3] = [DDB, CRD, NOP];

/// Two ministries and the NOP team defending an open-data portal and a key-value registry,
/// and a red team attacking them.
pub fn drill() -> ScenarioBuilder {
    ScenarioBuilder::new("webtest")
        .name("Scoreboard Test Drill", "計分板測試演練")
        .duration("8h")
        .checker_timeout("15s")
        .flag_lifetime(3)
        .secret("scoreboard-test-secret-not-for-drills")
        .team(team(1, "ddb").name("Digital Development Bureau", "數字發展局"))
        .team(team(2, "crd").name("Civic Records Department", "公民紀錄處"))
        .team(team(3, "nop").name("NOP Team", "NOP 隊伍").role(Role::Defender).nop())
        .team(team(4, "red").name("Red Team Security", "紅隊網絡安全").role(Role::Attacker))
        .service(
            service("opendata")
                .name("Open Data Portal", "開放數據平台")
                .image("gongfang/opendata:test")
                .checker("opendata.wasm")
                .flag_stores(2),
        )
        .service(
            service("kv")
                .name("Key-Value Registry", "鍵值登記系統")
                .image("gongfang/kv:test")
                .ports(&[7000, 7001])
                .checker("kv.wasm"),
        )
}

pub fn scenario() -> Scenario {
    drill().build()
}

/// When tick 0 of the test drill starts.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0).unwrap()
}

pub fn at(seconds: i64) -> DateTime<Utc> {
    start() + chrono::Duration::seconds(seconds)
}

/// The clock as the engine would publish it while `tick` runs.
pub fn clock_at(tick: u32) -> DrillClock {
    DrillClock {
        phase: Phase::Running,
        tick: Some(Tick(tick)),
        tick_started_at: Some(at(60 * i64::from(tick))),
        tick_length: Duration::from_secs(60),
        drill_starts_at: Some(start()),
        drill_ends_at: Some(at(8 * 3600)),
    }
}

/// The clock before the first tick: tick 0 starts at `starts_at`.
pub fn not_started(starts_at: DateTime<Utc>) -> DrillClock {
    DrillClock {
        phase: Phase::NotStarted,
        tick: None,
        tick_started_at: None,
        tick_length: Duration::from_secs(60),
        drill_starts_at: Some(starts_at),
        drill_ends_at: Some(starts_at + chrono::Duration::hours(8)),
    }
}

/// ddb connected half a minute ago on both configs, crd seen ten minutes ago, red issued
/// configs it never used; the NOP team has none.
pub fn gateway_poll(now: DateTime<Utc>) -> Vec<TeamConnection> {
    vec![
        TeamConnection {
            team: DDB,
            peers_issued: 2,
            peers_connected: 2,
            last_handshake: Some(now - chrono::Duration::seconds(30)),
        },
        TeamConnection {
            team: CRD,
            peers_issued: 1,
            peers_connected: 1,
            last_handshake: Some(now - chrono::Duration::minutes(10)),
        },
        TeamConnection { team: RED, peers_issued: 3, peers_connected: 0, last_handshake: None },
    ]
}

/// Where each defender's services listen, as the binary would pass them in.
pub fn endpoints() -> Vec<ServiceEndpoint> {
    let mut out = Vec::new();
    for team in DEFENDERS {
        out.push(ServiceEndpoint { team, service: OPENDATA, host: format!("10.60.{}.2", team.0), ports: vec![8080] });
        out.push(ServiceEndpoint { team, service: KV, host: format!("10.60.{}.3", team.0), ports: vec![7000, 7001] });
    }
    out
}

fn check(tick: u32, team: TeamId, service: ServiceId, action: Action, verdict: Verdict, message: &str) -> CheckResult {
    CheckResult {
        tick: Tick(tick),
        team,
        service,
        action,
        store: (action != Action::Check).then_some(StoreIdx(0)),
        verdict,
        message: message.to_owned(),
        log: format!("private log of {action} for team {team}"),
        duration_ms: 120,
        recorded_at: at(60 * i64::from(tick) + 20),
        fault: None,
    }
}

fn stores(service: ServiceId) -> u8 {
    if service == OPENDATA { 2 } else { 1 }
}

/// Plants a flag with a flag id in every defender's every store in `tick`.
pub async fn plant(store: &Store, tick: u32) -> Result<()> {
    for team in DEFENDERS {
        for service in [OPENDATA, KV] {
            for s in 0..stores(service) {
                store
                    .record_flag(&PlantedFlag {
                        tick: Tick(tick),
                        team,
                        service,
                        store: StoreIdx(s),
                        flag: format!("GONGFANG{{t{tick}-team{team}-svc{service}-store{s}}}"),
                        flag_id: Some(format!("user-{tick}-{team}-{service}-{s}")),
                        state: None,
                        planted_at: at(60 * i64::from(tick) + 10),
                    })
                    .await?;
            }
        }
    }
    Ok(())
}

/// Records an all-`ok` round of checks for every defender × service in `tick`, except the
/// cells named in `broken` (which get their verdict and message on one extra action).
async fn checks(store: &Store, tick: u32, broken: &[(TeamId, ServiceId, Verdict, &str)]) -> Result<()> {
    for team in DEFENDERS {
        for service in [OPENDATA, KV] {
            store.record_check(&check(tick, team, service, Action::Put, Verdict::Ok, "")).await?;
            store.record_check(&check(tick, team, service, Action::Check, Verdict::Ok, "all features work")).await?;
            for (t, s, verdict, message) in broken {
                if *t == team && *s == service {
                    store.record_check(&check(tick, team, service, Action::Get, *verdict, message)).await?;
                }
            }
        }
    }
    Ok(())
}

/// Closes `tick` a second before its end and stores its scores as (team, attack, defence, sla).
async fn close_and_score(store: &Store, tick: u32, scores: &[(TeamId, f64, f64, f64)]) -> Result<()> {
    let end = at(60 * i64::from(tick) + 59);
    store.close_tick(Tick(tick), end).await?;
    let rows: Vec<ScoreRow> = scores
        .iter()
        .map(|&(team, attack, defence, sla)| ScoreRow {
            tick: Tick(tick),
            team,
            score: TeamScore { attack, defence, sla, total: attack + defence + sla },
        })
        .collect();
    store.upsert_scores(&rows).await?;
    store.mark_tick_scored(Tick(tick), end).await?;
    Ok(())
}

fn capture(
    attacker: TeamId,
    victim: TeamId,
    service: ServiceId,
    planted: u32,
    submitted: u32,
    second: i64,
) -> NewSubmission {
    NewSubmission {
        capture: Capture {
            attacker,
            victim,
            service,
            store: StoreIdx(0),
            planted: Tick(planted),
            submitted: Tick(submitted),
        },
        flag: format!("GONGFANG{{t{planted}-team{victim}-svc{service}-store0}}"),
        submitted_at: at(second),
    }
}

/// A two-tick game, and tick 2 running:
/// - tick 0: all ok except crd's kv, down; scored.
/// - tick 1: ddb's opendata corrupt and also a checker error on it (corrupt wins); crd's kv
///   still down; nop's opendata has a checker error only. Red captures crd's kv flag (first blood
///   of kv) and ddb captures crd's opendata flag (first blood of opendata), then red too. Scored:
///   crd and nop tie on total.
/// - tick 2: open, with a `mumble` result that must not show until it closes.
pub async fn fill(store: &Store, scenario: &Scenario) -> Result<()> {
    store.sync_scenario(scenario).await?;

    store.open_tick(Tick(0), at(0)).await?;
    plant(store, 0).await?;
    checks(store, 0, &[(CRD, KV, Verdict::Down, "connection refused on port 7000")]).await?;
    close_and_score(
        store,
        0,
        &[(DDB, 0.0, 0.0, 4.0), (CRD, 0.0, 0.0, 2.0), (NOP, 0.0, 0.0, 4.0), (RED, 0.0, 0.0, 0.0)],
    )
    .await?;

    store.open_tick(Tick(1), at(60)).await?;
    plant(store, 1).await?;
    checks(
        store,
        1,
        &[
            (DDB, OPENDATA, Verdict::CheckerError, "checker could not log in"),
            (DDB, OPENDATA, Verdict::Corrupt, "dataset from tick 0 is missing"),
            (CRD, KV, Verdict::Down, "timeout after 15 s"),
            (NOP, OPENDATA, Verdict::CheckerError, "internal checker error"),
        ],
    )
    .await?;
    store.insert_submissions(&[capture(RED, CRD, KV, 0, 1, 70)]).await?;
    store.insert_submissions(&[capture(DDB, CRD, OPENDATA, 0, 1, 75)]).await?;
    store.insert_submissions(&[capture(RED, CRD, OPENDATA, 0, 1, 80)]).await?;
    close_and_score(
        store,
        1,
        &[(DDB, 2.0, 0.0, 6.0), (CRD, 0.0, -2.0, 4.0), (NOP, 0.0, 0.0, 2.0), (RED, 3.5, 0.0, 0.0)],
    )
    .await?;

    store.open_tick(Tick(2), at(120)).await?;
    plant(store, 2).await?;
    store.record_check(&check(2, DDB, KV, Action::Check, Verdict::Mumble, "wrong answer to GET")).await?;
    Ok(())
}

/// Closes tick 2 as the engine would (ddb's kv `mumble`, everything else ok), scores it with
/// ddb far ahead, and opens tick 3. Publishes nothing: the caller decides which events to send.
pub async fn close_tick_two(store: &Store) -> Result<()> {
    checks(store, 2, &[]).await?;
    close_and_score(
        store,
        2,
        &[(DDB, 12.0, 0.0, 9.0), (CRD, 0.0, -2.0, 6.0), (NOP, 0.0, 0.0, 4.0), (RED, 3.5, 0.0, 0.0)],
    )
    .await?;
    store.open_tick(Tick(3), at(180)).await?;
    Ok(())
}

/// A running scoreboard on a loopback port, with the handles a test drives it by.
pub struct App {
    pub addr: SocketAddr,
    pub store: Store,
    pub events: broadcast::Sender<GameEvent>,
    pub clock: watch::Sender<DrillClock>,
    /// The server's state, to look at what it counts.
    pub state: WebState,
    shutdown: Option<oneshot::Sender<()>>,
    pub server: JoinHandle<Result<(), gongfang_web::WebError>>,
    _db: TestDb,
}

impl App {
    /// A filled store, a broadcast channel of `capacity`, the clock at tick 2, and the server.
    pub async fn start(capacity: usize, settings: WebSettings) -> Result<App> {
        App::start_with(Arc::new(scenario()), capacity, settings).await
    }

    /// [`App::start`] with another scenario of the same teams and services.
    pub async fn start_with(scenario: Arc<Scenario>, capacity: usize, settings: WebSettings) -> Result<App> {
        App::launch(scenario, capacity, settings, clock_at(2), None, None).await
    }

    /// [`App::start`] served over HTTPS with `tls`.
    pub async fn start_https(tls: gongfang_web::Tls, settings: WebSettings) -> Result<App> {
        App::launch(Arc::new(scenario()), 64, settings, clock_at(2), None, Some(tls)).await
    }

    /// [`App::start`] with the clock at `clock`, for a drill with a VPN whose teams'
    /// connections are read from `connections`, or without one.
    pub async fn start_at(clock: DrillClock, connections: Option<watch::Receiver<Vec<TeamConnection>>>) -> Result<App> {
        App::launch(Arc::new(scenario()), 64, WebSettings::default(), clock, connections, None).await
    }

    async fn launch(
        scenario: Arc<Scenario>,
        capacity: usize,
        settings: WebSettings,
        clock: DrillClock,
        connections: Option<watch::Receiver<Vec<TeamConnection>>>,
        tls: Option<gongfang_web::Tls>,
    ) -> Result<App> {
        let db = TestDb::sqlite().await;
        let store = db.store.clone();
        fill(&store, &scenario).await?;
        let (events, _) = broadcast::channel(capacity);
        let (clock, clock_rx) = watch::channel(clock);
        let mut state = WebState::new(scenario, store.clone(), events.clone(), clock_rx, endpoints(), settings);
        if let Some(connections) = connections {
            state = state.with_connections(connections);
        }
        if let Some(tls) = tls {
            state = state.with_tls(tls);
        }
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(gongfang_web::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Ok(App { addr, store, events, clock, state, shutdown: Some(stop), server, _db: db })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Asks the server to stop; returns its result.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, &mut self.server).await.context("server did not stop")???;
        Ok(())
    }
}

/// A websocket client of the live feed.
pub type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message as JSON (pings and pongs skipped).
pub async fn next_json(client: &mut Client) -> Result<serde_json::Value> {
    use futures::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(WAIT, client.next())
            .await
            .context("no message in time")?
            .context("socket ended")??;
        match message {
            Message::Text(text) => return Ok(serde_json::from_str(&text)?),
            Message::Close(frame) => bail!("socket closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// `value` without the fields that change with the wall clock, for snapshots and comparisons.
pub fn without_now(mut value: serde_json::Value) -> serde_json::Value {
    let clock = value.get_mut("clock").and_then(|c| c.as_object_mut()).expect("a scoreboard has a clock");
    assert!(clock.remove("now").is_some(), "clock has no `now`: {clock:?}");
    value
}

/// Polls `check` until it returns `Some` or `WAIT` passes.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
