//! The harness every scoreboard test uses: a real store in a fresh SQLite file, filled with a
//! two-tick game through the store's own methods, and the real server on a loopback port.
// Each test file uses a part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use chrono::{DateTime, TimeZone, Utc};
use gongfang_core::event::GameEvent;
use gongfang_core::scenario::{AssumeEverythingExists, Scenario};
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick, Verdict};
use gongfang_store::{CheckAction, CheckResult, NewSubmission, PlantedFlag, ScoreRow, Store};
use gongfang_web::{ClockPhase, DrillClock, ServiceEndpoint, WebSettings, WebState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;

/// Longest any single wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(20);

pub const SCENARIO: &str = r#"
[drill]
slug = "webtest"
name = "Scoreboard Test Drill"
name_zh = "計分板測試演練"
duration = "8h"
tick = "60s"
checker_timeout = "15s"
flag_lifetime = 3
secret = "scoreboard-test-secret-not-for-drills"

[[team]]
id = 1
slug = "moda"
name = "Ministry of Digital Affairs"
name_zh = "數位發展部"
network = "10.60.1.0/24"

[[team]]
id = 2
slug = "moi"
name = "Ministry of the Interior"
name_zh = "內政部"
network = "10.60.2.0/24"

[[team]]
id = 3
slug = "nop"
name = "NOP Team"
name_zh = "NOP 隊伍"
role = "defender"
network = "10.60.3.0/24"
nop = true

[[team]]
id = 4
slug = "red"
name = "Red Team Security"
name_zh = "紅隊資安"
role = "attacker"
network = "10.60.4.0/24"

[[service]]
slug = "opendata"
name = "Open Data Portal"
name_zh = "開放資料平臺"
image = "gongfang/opendata:test"
ports = [8080]
checker = "opendata.wasm"
flag_stores = 2

[[service]]
slug = "kv"
name = "Key-Value Registry"
name_zh = "鍵值登記系統"
image = "gongfang/kv:test"
ports = [7000, 7001]
checker = "kv.wasm"
"#;

pub const MODA: TeamId = TeamId(1);
pub const MOI: TeamId = TeamId(2);
pub const NOP: TeamId = TeamId(3);
pub const RED: TeamId = TeamId(4);
pub const OPENDATA: ServiceId = ServiceId(1);
pub const KV: ServiceId = ServiceId(2);
pub const DEFENDERS: [TeamId; 3] = [MODA, MOI, NOP];

pub fn scenario() -> Scenario {
    gongfang_core::scenario::parse(SCENARIO, Path::new("scenario.toml"), &AssumeEverythingExists)
        .unwrap_or_else(|problems| panic!("test scenario is invalid: {problems:?}"))
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
        phase: ClockPhase::Running,
        tick: Some(Tick(tick)),
        tick_started_at: Some(at(60 * i64::from(tick))),
        tick_length: Duration::from_secs(60),
        drill_starts_at: Some(start()),
        drill_ends_at: Some(at(8 * 3600)),
    }
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

fn check(
    tick: u32,
    team: TeamId,
    service: ServiceId,
    action: CheckAction,
    verdict: Verdict,
    message: &str,
) -> CheckResult {
    CheckResult {
        tick: Tick(tick),
        team,
        service,
        action,
        store: (action != CheckAction::Check).then_some(StoreIdx(0)),
        verdict,
        message: message.to_owned(),
        log: format!("private log of {action} for team {team}"),
        duration_ms: 120,
        recorded_at: at(60 * i64::from(tick) + 20),
    }
}

fn stores(service: ServiceId) -> u8 {
    if service == OPENDATA { 2 } else { 1 }
}

/// Plants a flag with a flag id in every defender's every store in `tick`.
async fn plant(store: &Store, tick: u32) -> Result<()> {
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
            store.record_check(&check(tick, team, service, CheckAction::Put, Verdict::Ok, "")).await?;
            store
                .record_check(&check(tick, team, service, CheckAction::Check, Verdict::Ok, "all features work"))
                .await?;
            for (t, s, verdict, message) in broken {
                if *t == team && *s == service {
                    store.record_check(&check(tick, team, service, CheckAction::Get, *verdict, message)).await?;
                }
            }
        }
    }
    Ok(())
}

fn score(tick: u32, team: TeamId, attack: f64, defence: f64, sla: f64) -> ScoreRow {
    ScoreRow { tick: Tick(tick), team, attack, defence, sla, total: attack + defence + sla }
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
        attacker,
        flag: format!("GONGFANG{{t{planted}-team{victim}-svc{service}-store0}}"),
        victim,
        service,
        store: StoreIdx(0),
        tick_planted: Tick(planted),
        tick_submitted: Tick(submitted),
        submitted_at: at(second),
    }
}

/// A two-tick game, and tick 2 running:
/// - tick 0: all ok except moi's kv, down; scored.
/// - tick 1: moda's opendata corrupt and also a checker error on it (corrupt wins); moi's kv
///   still down; nop's opendata has a checker error only. Red captures moi's kv flag (first blood
///   of kv) and moda captures moi's opendata flag (first blood of opendata), then red too. Scored:
///   moi and nop tie on total.
/// - tick 2: open, with a `mumble` result that must not show until it closes.
pub async fn fill(store: &Store, scenario: &Scenario) -> Result<()> {
    store.sync_scenario(scenario).await?;

    store.open_tick(Tick(0), at(0)).await?;
    plant(store, 0).await?;
    checks(store, 0, &[(MOI, KV, Verdict::Down, "connection refused on port 7000")]).await?;
    store.close_tick(Tick(0), at(59)).await?;
    store
        .upsert_scores(&[
            score(0, MODA, 0.0, 0.0, 4.0),
            score(0, MOI, 0.0, 0.0, 2.0),
            score(0, NOP, 0.0, 0.0, 4.0),
            score(0, RED, 0.0, 0.0, 0.0),
        ])
        .await?;
    store.mark_tick_scored(Tick(0), at(59)).await?;

    store.open_tick(Tick(1), at(60)).await?;
    plant(store, 1).await?;
    checks(
        store,
        1,
        &[
            (MODA, OPENDATA, Verdict::CheckerError, "checker could not log in"),
            (MODA, OPENDATA, Verdict::Corrupt, "dataset from tick 0 is missing"),
            (MOI, KV, Verdict::Down, "timeout after 15 s"),
            (NOP, OPENDATA, Verdict::CheckerError, "internal checker error"),
        ],
    )
    .await?;
    store.insert_submissions(&[capture(RED, MOI, KV, 0, 1, 70)]).await?;
    store.insert_submissions(&[capture(MODA, MOI, OPENDATA, 0, 1, 75)]).await?;
    store.insert_submissions(&[capture(RED, MOI, OPENDATA, 0, 1, 80)]).await?;
    store.close_tick(Tick(1), at(119)).await?;
    store
        .upsert_scores(&[
            score(1, MODA, 2.0, 0.0, 6.0),
            score(1, MOI, 0.0, -2.0, 4.0),
            score(1, NOP, 0.0, 0.0, 2.0),
            score(1, RED, 3.5, 0.0, 0.0),
        ])
        .await?;
    store.mark_tick_scored(Tick(1), at(119)).await?;

    store.open_tick(Tick(2), at(120)).await?;
    plant(store, 2).await?;
    store.record_check(&check(2, MODA, KV, CheckAction::Check, Verdict::Mumble, "wrong answer to GET")).await?;
    Ok(())
}

/// Closes tick 2 as the engine would (moda's kv `mumble`, everything else ok), scores it with
/// moda far ahead, and opens tick 3. Publishes nothing: the caller decides which events to send.
pub async fn close_tick_two(store: &Store) -> Result<()> {
    checks(store, 2, &[]).await?;
    store.close_tick(Tick(2), at(179)).await?;
    store
        .upsert_scores(&[
            score(2, MODA, 12.0, 0.0, 9.0),
            score(2, MOI, 0.0, -2.0, 6.0),
            score(2, NOP, 0.0, 0.0, 4.0),
            score(2, RED, 3.5, 0.0, 0.0),
        ])
        .await?;
    store.mark_tick_scored(Tick(2), at(179)).await?;
    store.open_tick(Tick(3), at(180)).await?;
    Ok(())
}

/// A running scoreboard on a loopback port, with the handles a test drives it by.
pub struct App {
    pub addr: SocketAddr,
    pub store: Store,
    pub events: broadcast::Sender<GameEvent>,
    pub clock: watch::Sender<DrillClock>,
    shutdown: Option<oneshot::Sender<()>>,
    pub server: JoinHandle<Result<(), gongfang_web::WebError>>,
    _dir: tempfile::TempDir,
}

impl App {
    /// A filled store, a broadcast channel of `capacity`, the clock at tick 2, and the server.
    pub async fn start(capacity: usize, settings: WebSettings) -> Result<App> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("db.sqlite").display());
        let store = Store::connect_and_migrate(&url).await?;
        let scenario = Arc::new(scenario());
        fill(&store, &scenario).await?;
        let (events, _) = broadcast::channel(capacity);
        let (clock, clock_rx) = watch::channel(clock_at(2));
        let state = WebState::new(scenario, store.clone(), events.clone(), clock_rx, endpoints(), settings);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(gongfang_web::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Ok(App { addr, store, events, clock, shutdown: Some(stop), server, _dir: dir })
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

/// An HTTP answer, as far as these tests care.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| format!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A plain HTTP/1.1 GET over a fresh connection: the workspace has no HTTP client, and the
/// point is to hit the real listening socket.
pub async fn get(addr: SocketAddr, path: &str) -> Result<Answer> {
    tokio::time::timeout(WAIT, async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        parse_answer(&raw)
    })
    .await
    .context("HTTP request timed out")?
}

fn parse_answer(raw: &[u8]) -> Result<Answer> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").context("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split])?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().context("no status line")?;
    let status: u16 = status_line.split(' ').nth(1).context("no status code")?.parse()?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(Answer { status, headers, body })
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").context("chunk size line")?;
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end])?.trim(), 16)?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        ensure!(raw.len() >= size + 2, "truncated chunk");
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
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
