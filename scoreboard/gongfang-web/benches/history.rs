//! What the drill's past costs the scoreboard at the end of a long drill: 1,800 scored ticks of
//! 500 teams × 10 services, on SQLite. For `/api/history`, `/api/history/TEAM` and
//! `/api/scoreboard?tick=N`: the answer's size, plain and gzipped; its build from the store,
//! cold (the first request after a start) and after one more tick closes (what every tick
//! costs); and the requests served per second from memory over keep-alive HTTP on loopback by
//! 32 clients that take gzip as browsers do, against the requests per second a cold build per
//! request would allow (the alternative the caches replace). Load generator and server share
//! the machine.
//!
//! Run with `cargo bench -p gongfang-web --bench history` (a few minutes, most of it filling
//! the store).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use chrono::{TimeZone, Utc};
use gongfang_core::clock::{DrillClock, Phase};
use gongfang_core::event::GameEvent;
use gongfang_core::scoring::TeamScore;
use gongfang_core::{Action, CheckResult, ScoreRow, ServiceId, TeamId, Tick, Verdict};
use gongfang_store::Store;
use gongfang_test_support::TestDb;
use gongfang_test_support::http::read_response;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};
use gongfang_web::{WebSettings, WebState};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinSet;

const TEAMS: u16 = 500;
const SERVICES: u8 = 10;
const TICKS: u32 = 1_800;
const CLIENTS: usize = 32;
const LOAD: Duration = Duration::from_secs(3);
/// The team whose status series is asked for; every team's results of the replayed tick are
/// stored too, so its past board has a full grid.
const TEAM: TeamId = TeamId(7);
const REPLAYED: Tick = Tick(900);

fn at(tick: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap() + chrono::Duration::seconds(120 * i64::from(tick))
}

fn result(tick: u32, team: TeamId, service: u8) -> CheckResult {
    let verdict = if (tick + u32::from(service)).is_multiple_of(17) { Verdict::Down } else { Verdict::Ok };
    CheckResult {
        tick: Tick(tick),
        team,
        service: ServiceId(service),
        action: Action::Check,
        store: None,
        verdict,
        message: if verdict == Verdict::Ok { String::new() } else { "connection refused".into() },
        log: String::new(),
        duration_ms: 40,
        recorded_at: at(tick),
        fault: None,
    }
}

/// Stores tick `t` as the engine would: results, closed, every team's scores, scored.
async fn play(store: &Store, t: u32) -> Result<()> {
    store.open_tick(Tick(t), at(t)).await?;
    let teams: Vec<TeamId> = if Tick(t) == REPLAYED { (1..=TEAMS).map(TeamId).collect() } else { vec![TEAM] };
    let results: Vec<CheckResult> =
        teams.iter().flat_map(|&team| (1..=SERVICES).map(move |s| result(t, team, s))).collect();
    store.record_tick_results(&[], &results).await?;
    store.close_tick(Tick(t), at(t)).await?;
    let rows: Vec<ScoreRow> = (1..=TEAMS)
        .map(|team| {
            let f = f64::from(t) * f64::from(team % 37 + 1);
            let score = TeamScore { attack: f * 0.5, defence: -f * 0.1, sla: f * 0.25, total: f * 0.65 };
            ScoreRow { tick: Tick(t), team: TeamId(team), score }
        })
        .collect();
    store.upsert_scores(&rows).await?;
    store.mark_tick_scored(Tick(t), at(t)).await?;
    Ok(())
}

/// One request over a kept-alive connection, taking gzip as browsers do; the answer's body
/// length as sent.
async fn ask(stream: &mut TcpStream, path: &str) -> Result<usize> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAccept-Encoding: gzip\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let response = read_response(stream).await?;
    ensure!(response.status == 200, "GET {path}: {}", response.status);
    Ok(response.body.len())
}

/// Requests per second `CLIENTS` keep-alive clients get for `path` in `LOAD`.
async fn served_per_second(addr: SocketAddr, path: &str) -> Result<f64> {
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..CLIENTS {
        let path = path.to_owned();
        clients.spawn(async move {
            let mut stream = TcpStream::connect(addr).await?;
            let mut n = 0u64;
            while started.elapsed() < LOAD {
                ask(&mut stream, &path).await?;
                n += 1;
            }
            anyhow::Ok(n)
        });
    }
    let mut total = 0;
    while let Some(n) = clients.join_next().await {
        total += n??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

async fn timed(addr: SocketAddr, path: &str) -> Result<(Duration, usize)> {
    let mut stream = TcpStream::connect(addr).await?;
    let started = Instant::now();
    let size = ask(&mut stream, path).await?;
    Ok((started.elapsed(), size))
}

fn main() -> Result<()> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?.block_on(bench())
}

async fn bench() -> Result<()> {
    let mut drill =
        ScenarioBuilder::new("history-bench").duration("60h").tick("120s").secret("history-bench-secret-0123456789");
    for id in 1..=TEAMS {
        drill = drill.team(team(id, &format!("t{id}")).network(&format!("10.{}.{}.0/24", 100 + id / 250, id % 250)));
    }
    for s in 1..=SERVICES {
        drill = drill.service(service(&format!("s{s}")).image("svc:latest").ports(&[7000]).checker("c.wasm"));
    }
    let scenario = Arc::new(drill.build());
    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    store.sync_scenario(&scenario).await?;
    let filling = Instant::now();
    for t in 0..TICKS {
        play(&store, t).await?;
    }
    eprintln!("filled {TICKS} ticks of {TEAMS} teams in {:.1} s", filling.elapsed().as_secs_f64());

    let (events, _) = broadcast::channel(1024);
    let clock = DrillClock {
        phase: Phase::Running,
        tick: Some(Tick(TICKS)),
        tick_started_at: Some(at(TICKS)),
        tick_length: Duration::from_secs(120),
        drill_starts_at: Some(at(0)),
        drill_ends_at: Some(at(TICKS + 100)),
    };
    let (_clock, clock) = watch::channel(clock);
    let state =
        WebState::new(scenario.clone(), store.clone(), events.clone(), clock, Vec::new(), WebSettings::default());
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(gongfang_web::serve(listener, state, async {
        let _ = stopped.await;
    }));
    // The live board first: every answer below starts from it, as in a running drill.
    timed(addr, "/api/scoreboard").await?;

    let paths = [
        ("/api/history".to_owned(), "every team's totals"),
        (format!("/api/history/t{}", TEAM.0), "one team's status"),
        (format!("/api/scoreboard?tick={}", REPLAYED.0), "a past board"),
    ];
    let mut cold = Vec::new();
    for (path, _) in &paths {
        cold.push(timed(addr, path).await?);
    }
    // One more tick closes: what each answer costs to bring up to date.
    play(&store, TICKS).await?;
    events.send(GameEvent::TickClosed { tick: Tick(TICKS) })?;
    events.send(GameEvent::ScoresUpdated { tick: Tick(TICKS) })?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    timed(addr, "/api/scoreboard").await?;
    let mut warm = Vec::new();
    for (path, _) in &paths {
        warm.push(timed(addr, path).await?);
    }
    let after = format!("/api/scoreboard?tick={TICKS}");
    let (newest, _) = timed(addr, &after).await?;

    println!(
        "drill: {TICKS} scored ticks, {TEAMS} teams × {SERVICES} services; {CLIENTS} keep-alive clients for {LOAD:?} each"
    );
    println!(
        "| answer | bytes (gzipped) | cold build | after a tick closes | served/s from memory | a cold build per request | ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, (path, what)) in paths.iter().enumerate() {
        let served = served_per_second(addr, path).await?;
        let (cold_time, size) = cold[i];
        let plain = gongfang_test_support::http::get(addr, path).await?.body.len();
        // A past board is final once built: a new one (of the tick just closed) is the build.
        let build = if i == 2 { newest } else { warm[i].0 };
        let uncached = 1.0 / cold_time.as_secs_f64();
        println!(
            "| {what} (`{path}`) | {plain} ({size}) | {:.1} ms | {:.1} ms | {served:.0} | {uncached:.0} | {:.0}× |",
            cold_time.as_secs_f64() * 1e3,
            build.as_secs_f64() * 1e3,
            served / uncached,
        );
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
