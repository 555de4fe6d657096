//! One tick of a 500-team × 10-service drill: the engine dispatching every `put`, `get` and
//! `check` through real wasm checkers in the sandbox to a local key-value stub service, and
//! storing every result in SQLite, timed from opening the tick to its scores being stored.
//! Beside it, in the same run, the same checker as a Python script spawned per action (what
//! Python-based platforms do), measured on a sample and scaled to the tick's action count at
//! the same parallelism; and the same ticks again with every service's reference exploit
//! replayed against every team (the exploit replay), to show what it adds.
//!
//! Run with `cargo bench -p gongfang-e2e --bench tick`. With `TICK_BENCH_SCALING=1` it then
//! plays the same three ticks (no replay) with 100, 250, 500 and 1,000 teams × 10 services and
//! prints how the time per action grows with the drill.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use gongfang::checker_runner::SandboxRunner;
use gongfang_core::scenario::Scenario;
use gongfang_core::{Exposure, FlagCodec, ServiceId, Target, TeamId, Tick, Verdict};
use gongfang_engine::{Engine, EngineConfig, ManualClock};
use gongfang_sandbox::{Sandbox, SandboxConfig};
use gongfang_test_programs::{KvService, components};
use gongfang_test_support::TestDb;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};
use tokio::sync::broadcast;

const TEAMS: u16 = 500;
/// Field sizes of the scaling table (`TICK_BENCH_SCALING=1`).
const SCALING_TEAMS: [u16; 4] = [100, 250, 500, 1000];
const SERVICES: u8 = 10;
const PYTHON_SAMPLE: usize = 200;
const CONCURRENCY: usize = 64;

fn scenario(teams: u16) -> Scenario {
    let mut scenario = ScenarioBuilder::new("bench").secret("tick-benchmark-secret-0123456789");
    for i in 1..=teams {
        let (a, b) = (100 + i / 250, i % 250);
        scenario = scenario.team(team(i, &format!("t{i}")).network(&format!("10.{a}.{b}.0/24")));
    }
    for j in 1..=SERVICES {
        scenario =
            scenario.service(service(&format!("s{j}")).image("kv:latest").ports(&[7000]).checker(components::GOOD));
    }
    scenario.build()
}

/// Plays ticks 0, 1 and 2 on a fresh database, with each service's reference exploit
/// replayed when `replay`; each tick's time and the last tick's number of checker actions.
async fn play(
    s: &Arc<Scenario>,
    runner: SandboxRunner,
    addrs: &HashMap<(TeamId, ServiceId), SocketAddr>,
    replay: bool,
) -> anyhow::Result<(Vec<std::time::Duration>, usize)> {
    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    store.sync_scenario(s).await?;
    let start = Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap();
    let codec = FlagCodec::for_drill(
        &s.drill.flag_prefix,
        b"tick-benchmark-secret-0123456789",
        &s.drill.slug,
        store.drill_id().await?,
    );
    let mut cfg = EngineConfig::new(s.clone(), codec, start);
    cfg.max_concurrency = CONCURRENCY;
    if replay {
        cfg.replay = s.services.iter().map(|service| service.id).collect();
    }
    let addrs = addrs.clone();
    let targets = move |team: TeamId, service: ServiceId| {
        addrs.get(&(team, service)).map(|a| Target { address: a.ip(), ports: vec![a.port()] })
    };
    let (events, _) = broadcast::channel(1 << 16);
    let mut engine =
        Engine::resume(cfg, ManualClock::starting_at(start), runner, store.clone(), targets, events).await?;
    let mut times = Vec::new();
    let mut actions = 0;
    for t in 0..3 {
        let started = Instant::now();
        let report = engine.play_tick(Tick(t)).await?;
        times.push(started.elapsed());
        let results = store.check_results(Tick(t), None).await?;
        if let Some(bad) = results.iter().find(|r| r.verdict != Verdict::Ok) {
            let count = results.iter().filter(|r| r.verdict != Verdict::Ok).count();
            anyhow::bail!("tick {t}: {count} actions not ok, e.g. {bad:?}{}", conntrack_hint());
        }
        anyhow::ensure!(report.verdicts.values().all(|(v, _)| *v == Verdict::Ok), "every service ok in tick {t}");
        let replays = store.exploit_replays(Tick(t), Tick(t), None).await?;
        if replay && t > 0 {
            // The stub keeps every flag: the reference exploit must find each one.
            anyhow::ensure!(
                replays.len() == s.teams.len() * usize::from(SERVICES)
                    && replays.iter().all(|r| r.exposure == Exposure::Exploitable),
                "tick {t}: {} replays, not all exploitable",
                replays.len()
            );
        }
        actions = results.len() + replays.len();
        println!(
            "tick {t}{}: {} actions in {:.2} s",
            if replay { " with replay" } else { "" },
            actions,
            times[t as usize].as_secs_f64()
        );
    }
    Ok((times, actions))
}

/// Where Docker's firewall rules track connections, every loopback connection of the
/// benchmark takes a place in the kernel's conntrack table for two minutes after it closes; a
/// full table drops new connections, which the checkers report as `down`. Says so when full.
fn conntrack_hint() -> String {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/netfilter/{name}")).ok()?.trim().parse::<u64>().ok()
    };
    match (read("nf_conntrack_count"), read("nf_conntrack_max")) {
        (Some(count), Some(max)) if count * 10 >= max * 9 => format!(
            "\nthe kernel's conntrack table is full ({count} of {max}): wait two minutes between runs, \
             or raise it with `sysctl -w net.netfilter.nf_conntrack_max=2097152`"
        ),
        _ => String::new(),
    }
}

/// One stub service per team × service, as in a drill (5,000 listeners on loopback for 500
/// teams).
async fn start_stubs(teams: u16) -> anyhow::Result<HashMap<(TeamId, ServiceId), KvService>> {
    let mut stubs = HashMap::new();
    for team in 1..=teams {
        for service in 1..=SERVICES {
            let stub = KvService::start(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await?;
            stubs.insert((TeamId(team), ServiceId(service)), stub);
        }
    }
    Ok(stubs)
}

fn addresses(stubs: &HashMap<(TeamId, ServiceId), KvService>) -> HashMap<(TeamId, ServiceId), SocketAddr> {
    stubs.iter().map(|(k, v)| (*k, v.addr())).collect()
}

/// Ticks 0–2 (no replay) at each size of [`SCALING_TEAMS`]: the last tick's time and its time
/// per action.
fn scaling(runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for teams in SCALING_TEAMS {
        let (tick, actions) = runtime.block_on(async {
            let stubs = start_stubs(teams).await?;
            let s = Arc::new(scenario(teams));
            let sandbox =
                Sandbox::new(SandboxConfig { max_concurrent_actions: CONCURRENCY as u32, ..Default::default() })?;
            let runner = SandboxRunner::load(&sandbox, &s)?;
            let (times, actions) = play(&s, runner, &addresses(&stubs), false).await?;
            anyhow::Ok((*times.last().expect("three ticks"), actions))
        })?;
        rows.push((teams, actions, tick));
    }
    println!();
    println!("how the tick grows with the drill (tick 2: put, two gets and a check per team x service)");
    println!("  {:>6} {:>9} {:>9} {:>13}", "teams", "actions", "tick", "per action");
    for (teams, actions, tick) in rows {
        println!(
            "  {teams:>6} {actions:>9} {:>7.2} s {:>10.1} µs",
            tick.as_secs_f64(),
            tick.as_secs_f64() * 1e6 / actions as f64
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // As `gongfang` does: errors capture no backtrace unless `RUST_LIB_BACKTRACE` says so.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("RUST_LIB_BACKTRACE", "0");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (wasm_times, actions, replay_times, replay_actions, stubs) = runtime.block_on(async {
        let stubs = start_stubs(TEAMS).await?;
        let addrs = addresses(&stubs);
        let s = Arc::new(scenario(TEAMS));
        let sandbox = Sandbox::new(SandboxConfig { max_concurrent_actions: CONCURRENCY as u32, ..Default::default() })?;
        let runner = SandboxRunner::load(&sandbox, &s)?;
        let (times, actions) = play(&s, runner.clone(), &addrs, false).await?;
        // The same ticks again, with the reference exploit replayed against every service.
        let (replay_times, replay_actions) = play(&s, runner, &addrs, true).await?;
        anyhow::Ok((times, actions, replay_times, replay_actions, stubs))
    })?;

    // The Python alternative, against the same stub, one process per action.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches").join("kv_checker.py");
    let found = Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output()?;
    anyhow::ensure!(found.status.success(), "python3 is needed for this benchmark");
    let python3 = String::from_utf8(found.stdout)?.trim().to_owned();
    let addr = stubs[&(TeamId(1), ServiceId(1))].addr();
    let started = Instant::now();
    for i in 0..PYTHON_SAMPLE {
        let action = ["put", "get", "check"][i % 3];
        let key = format!("bench-{}", i - i % 3);
        let status = Command::new(&python3)
            .arg(&script)
            .args([
                addr.ip().to_string(),
                addr.port().to_string(),
                action.to_owned(),
                key,
                "GONGFANG{value}".to_owned(),
            ])
            .stdin(Stdio::null())
            .status()?;
        anyhow::ensure!(status.code() == Some(101), "python checker failed on {action}: {status}");
    }
    let per_action = started.elapsed() / PYTHON_SAMPLE as u32;
    // Spread over both cores, as a platform running checkers in parallel would.
    let python_tick = per_action.mul_f64(actions as f64 / 2.0);
    let wasm_tick = *wasm_times.last().unwrap();
    println!();
    println!("one tick of {TEAMS} teams x {SERVICES} services ({actions} checker actions, results stored in SQLite)");
    println!("  engine + wasm sandbox:        {:>8.2} s", wasm_tick.as_secs_f64());
    println!(
        "  python3 process per action:  {:>8.2} s (scaled from {PYTHON_SAMPLE} actions at {:.1} ms each, 2 in parallel)",
        python_tick.as_secs_f64(),
        per_action.as_secs_f64() * 1e3
    );
    println!("  ratio: {:.1}x faster; target ≤ 10 s per tick", python_tick.as_secs_f64() / wasm_tick.as_secs_f64());
    let replay_tick = *replay_times.last().unwrap();
    println!();
    println!("the same tick with the reference exploit replayed against every service ({replay_actions} actions)");
    println!("  engine + wasm sandbox:        {:>8.2} s", replay_tick.as_secs_f64());
    println!(
        "  replay adds {:+.1} % to the tick; target ≤ 30 %",
        (replay_tick.as_secs_f64() / wasm_tick.as_secs_f64() - 1.0) * 100.0
    );
    drop(stubs);
    if std::env::var_os("TICK_BENCH_SCALING").is_some_and(|v| v == "1") {
        scaling(&runtime)?;
    }
    drop(runtime);
    Ok(())
}
