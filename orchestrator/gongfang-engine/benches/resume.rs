//! How long a restarted engine takes to be ready at the end of a long drill: 1,800 scored
//! ticks (60 hours at 120 s) of 500 teams × 10 services on SQLite, flags living 5 ticks.
//! `Engine::resume` from the scorer's snapshot, against the same resume when the snapshot is
//! passed over (as when results were marked defective meanwhile) and every tick is scored
//! again from the stored events: the way every restart went before snapshots.
//!
//! The store is filled as the engine fills it, through the store's own methods: per tick one
//! `check` result per team × service (a real drill stores about four, which makes the full
//! replay slower still, not the snapshot), `CAPTURES` accepted captures spread over the flags
//! still alive, every team's scores, the tick marked scored, and the scorer's snapshot.
//!
//! Run with `cargo bench -p gongfang-engine --bench resume` (about ten minutes, a third of it
//! filling the store). `RESUME_BENCH_TICKS=N` plays a shorter drill.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use gongfang_core::scoring::{Capture, ScoredService, ScoredTeam, Scorer, ServiceVerdict, TickEvents};
use gongfang_core::{
    Action, ActionOutcome, CheckResult, DrillId, FlagCodec, NewSubmission, ScoreRow, ServiceId, StoreIdx, Target,
    TeamId, Tick, Verdict,
};
use gongfang_engine::{ActionRequest, CheckerRunner, Engine, EngineConfig, ManualClock};
use gongfang_store::{ScorerSnapshot, Store, SubmissionOutcome, marks_digest};
use gongfang_test_support::TestDb;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::broadcast;

const TEAMS: u16 = 500;
const SERVICES: u8 = 10;
const LIFETIME: u32 = 5;
/// Accepted captures per tick: each attacker steals four live flags.
const CAPTURES: usize = 2_000;
const RUNS: usize = 5;

/// Never asked: resuming runs no checker.
struct NoChecks;

impl CheckerRunner for NoChecks {
    async fn run(&self, r: ActionRequest) -> ActionOutcome {
        unreachable!("resuming ran an action: {:?}", r.action)
    }
}

fn at(tick: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap() + chrono::Duration::seconds(120 * i64::from(tick))
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?.block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let ticks: u32 = std::env::var("RESUME_BENCH_TICKS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_800);
    let mut drill = ScenarioBuilder::new("resume-bench")
        .duration(&format!("{}s", 120 * u64::from(ticks) + 120))
        .tick("120s")
        .flag_lifetime(LIFETIME)
        .secret("resume-bench-secret-0123456789");
    for id in 1..=TEAMS {
        drill = drill.team(team(id, &format!("t{id}")).network(&format!("10.{}.{}.0/24", 100 + id / 250, id % 250)));
    }
    for s in 1..=SERVICES {
        drill = drill
            .service(service(&format!("s{s}")).image("svc:latest").ports(&[7000]).flag_stores(2).checker("c.wasm"));
    }
    let scenario = Arc::new(drill.build());
    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    store.sync_scenario(&scenario).await?;

    let filling = Instant::now();
    let teams: Vec<ScoredTeam> = scenario.teams.iter().map(ScoredTeam::from).collect();
    let services: Vec<ScoredService> = scenario.services.iter().map(ScoredService::from).collect();
    let mut scorer = Scorer::new(scenario.drill.scoring, &teams, &services)?.with_flag_lifetime(LIFETIME);
    let mut rng = StdRng::seed_from_u64(7);
    for t in 0..ticks {
        fill_tick(&store, &mut scorer, &mut rng, t).await?;
    }
    store
        .save_scorer_snapshot(&ScorerSnapshot {
            tick: Tick(ticks - 1),
            marks: marks_digest(&Default::default()),
            state: scorer.snapshot(),
            taken_at: at(ticks),
        })
        .await?;
    let snapshot = store.scorer_snapshot().await?.expect("saved above");
    println!(
        "filled {ticks} ticks of {TEAMS} teams × {SERVICES} services ({CAPTURES} captures a tick) in {:.0} s; \
         snapshot {:.2} MB",
        filling.elapsed().as_secs_f64(),
        snapshot.state.len() as f64 / 1e6
    );

    let resume = |store: Store| {
        let scenario = scenario.clone();
        async move {
            let drill = DrillId::from_bytes([0x5a; DrillId::LEN]);
            let codec = FlagCodec::for_drill("FLAG_", b"resume-bench-secret-0123456789", "resume-bench", drill);
            let cfg = EngineConfig::new(scenario, codec, at(0));
            let (events, _) = broadcast::channel(16);
            let targets =
                |_: TeamId, _: ServiceId| Some(Target { address: IpAddr::V4(Ipv4Addr::LOCALHOST), ports: vec![7000] });
            let started = Instant::now();
            let engine =
                Engine::resume(cfg, ManualClock::starting_at(at(ticks)), NoChecks, store, targets, events).await?;
            let took = started.elapsed();
            anyhow::ensure!(engine.next_tick() == Tick(ticks), "resumed at {} instead of {ticks}", engine.next_tick());
            anyhow::Ok(took)
        }
    };
    let mut from_snapshot = Vec::new();
    for _ in 0..RUNS {
        from_snapshot.push(resume(store.clone()).await?);
    }
    // The same snapshot, taken "with other marks": passed over, every tick scored again.
    store.save_scorer_snapshot(&ScorerSnapshot { marks: "other marks".into(), ..snapshot.clone() }).await?;
    let mut replayed = Vec::new();
    for _ in 0..RUNS {
        replayed.push(resume(store.clone()).await?);
    }
    let (snap, full) = (summary(&mut from_snapshot), summary(&mut replayed));
    println!("resume from the scorer's snapshot: {snap} (target ≤ 2 s)");
    println!("resume replaying every tick:       {full}");
    println!("ratio (medians): {:.0}×", replayed[RUNS / 2].as_secs_f64() / from_snapshot[RUNS / 2].as_secs_f64());
    Ok(())
}

/// Stores tick `t` as the engine would and scores it.
async fn fill_tick(store: &Store, scorer: &mut Scorer, rng: &mut StdRng, t: u32) -> anyhow::Result<()> {
    store.open_tick(Tick(t), at(t)).await?;
    let mut results = Vec::with_capacity(usize::from(TEAMS) * usize::from(SERVICES));
    let mut verdicts = Vec::with_capacity(results.capacity());
    for team in 1..=TEAMS {
        for service in 1..=SERVICES {
            let verdict = if rng.random_ratio(8, 10) { Verdict::Ok } else { Verdict::ALL[rng.random_range(0..5)] };
            results.push(CheckResult {
                tick: Tick(t),
                team: TeamId(team),
                service: ServiceId(service),
                action: Action::Check,
                store: None,
                verdict,
                message: if verdict == Verdict::Ok { String::new() } else { "no answer".into() },
                log: String::new(),
                duration_ms: 40,
                recorded_at: at(t),
                fault: None,
            });
            verdicts.push(ServiceVerdict { team: TeamId(team), service: ServiceId(service), verdict });
        }
    }
    store.record_tick_results(&[], &results).await?;

    let mut captures = Vec::with_capacity(CAPTURES);
    let mut seen = std::collections::HashSet::new();
    while captures.len() < CAPTURES {
        let attacker = TeamId(rng.random_range(1..=TEAMS));
        let victim = TeamId(rng.random_range(1..=TEAMS));
        let capture = Capture {
            attacker,
            victim,
            service: ServiceId(rng.random_range(1..=SERVICES)),
            store: StoreIdx(rng.random_range(0..2)),
            planted: Tick(t.saturating_sub(rng.random_range(0..LIFETIME))),
            submitted: Tick(t),
        };
        // Each flag once per attacker, ever: the ones of earlier ticks are told apart by tick.
        if attacker != victim && seen.insert((attacker, victim, capture.service, capture.store, capture.planted)) {
            captures.push(capture);
        }
    }
    let rows: Vec<NewSubmission> = captures
        .iter()
        .map(|c| NewSubmission {
            capture: *c,
            flag: format!("FLAG_{}_{}_{}_{}", c.planted.0, c.victim.0, c.service.0, c.store.0),
            submitted_at: at(t),
        })
        .collect();
    let fresh = store.insert_submissions(&rows).await?;
    let events = TickEvents {
        tick: Tick(t),
        verdicts,
        captures: captures
            .into_iter()
            .zip(fresh)
            .filter(|(_, outcome)| *outcome == SubmissionOutcome::New)
            .map(|(c, _)| c)
            .collect(),
    };
    store.close_tick(Tick(t), at(t)).await?;
    let scores = scorer.close_tick(&events)?;
    let rows: Vec<ScoreRow> =
        scores.teams.iter().map(|s| ScoreRow { tick: Tick(t), team: s.team, score: s.score }).collect();
    store.upsert_scores(&rows).await?;
    store.mark_tick_scored(Tick(t), at(t)).await?;
    Ok(())
}

/// "median (min–max) of N runs", sorting `runs`.
fn summary(runs: &mut [Duration]) -> String {
    runs.sort();
    format!(
        "median {:.3} s ({:.3}–{:.3} s) of {} runs",
        runs[runs.len() / 2].as_secs_f64(),
        runs[0].as_secs_f64(),
        runs[runs.len() - 1].as_secs_f64(),
        runs.len()
    )
}
