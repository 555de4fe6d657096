//! Crash safety: the engine runs as a separate process and is killed with SIGKILL at chosen
//! steps of a tick (while results are being stored, between closing a tick and storing its
//! scores, between storing scores and marking the tick scored). Restarted each time, it must
//! end the drill with exactly the scores, results and flags of a run that was never killed.
//!
//! The engine process is this test binary itself, running the ignored test `engine_process`.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use gongfang_core::NewSubmission;
use gongfang_core::scenario::Scenario;
use gongfang_core::scoring::Capture;
use gongfang_core::{
    Action, ActionOutcome, CheckResult, DrillId, FlagCodec, FlagInfo, PlantedFlag, ServiceId, StoreIdx, Target, TeamId,
    Tick, Verdict,
};
use gongfang_engine::{ActionRequest, CheckerRunner, Engine, EngineConfig, ManualClock, Step, StepHook};
use gongfang_store::Store;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};
use tokio::sync::broadcast;

const SECRET: &str = "crash-test-secret-0123456789abcdef";
const ENV_DB: &str = "GONGFANG_CRASH_TEST_DB";
const ENV_AT: &str = "GONGFANG_CRASH_TEST_AT";
const REACHED: &str = "GONGFANG-CRASH-POINT-REACHED";
const OVER: &str = "GONGFANG-DRILL-OVER";
const TICKS: u32 = 10;

fn scenario() -> Arc<Scenario> {
    let scenario = ScenarioBuilder::new("crash-test")
        .duration("10m")
        .flag_lifetime(3)
        .secret(SECRET)
        .team(team(1, "alpha"))
        .team(team(2, "bravo"))
        .team(team(3, "charlie"))
        .service(service("notes").flag_stores(2))
        .service(service("permits").ports(&[8081]));
    Arc::new(scenario.build())
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
}

/// Services whose behaviour is a function of (team, service, tick) alone, so a replayed tick
/// gives the same results; and attackers that capture team 1's flags at every `check` of it.
struct Deterministic {
    store: Store,
    codec: FlagCodec,
}

impl CheckerRunner for Deterministic {
    async fn run(&self, r: ActionRequest) -> ActionOutcome {
        let (team, tick) = (r.ctx.team, r.ctx.tick);
        let verdict = match (team.0, r.service.0, tick.0) {
            (2, 1, 4..=5) => Verdict::Down,
            (3, 2, 6) => Verdict::Mumble,
            (1, 1, 8) if r.action == Action::Get => Verdict::Corrupt,
            _ => Verdict::Ok,
        };
        let outcome = ActionOutcome::new(r.action, verdict, "");
        match (r.action, &r.flag) {
            (Action::Put, Some(f)) if verdict == Verdict::Ok => ActionOutcome {
                flag_id: Some(format!("user-{}-{}-{}", team.0, tick.0, f.store.0)),
                state: Some(vec![f.store.0]),
                ..outcome
            },
            (Action::Check, _) if (team.0, r.service.0) == (1, 1) && tick.0 >= 1 => {
                let planted = Tick(tick.0 - 1);
                let flag = self.codec.mint(FlagInfo {
                    tick: planted,
                    team: TeamId(1),
                    service: ServiceId(1),
                    store: StoreIdx(0),
                });
                let rows: Vec<NewSubmission> = [2u16, 3]
                    .iter()
                    .filter(|&&attacker| attacker == 2 || tick.0.is_multiple_of(2))
                    .map(|&attacker| NewSubmission {
                        capture: Capture {
                            attacker: TeamId(attacker),
                            victim: TeamId(1),
                            service: ServiceId(1),
                            store: StoreIdx(0),
                            planted,
                            submitted: tick,
                        },
                        flag: flag.clone(),
                        submitted_at: start(),
                    })
                    .collect();
                self.store.insert_submissions(&rows).await.expect("store the captures");
                outcome
            }
            _ => outcome,
        }
    }
}

/// Parses `results:T`, `closed:T` or `scores:T` into a test for the step to stop at.
fn crash_point(spec: String) -> impl Fn(Step) -> bool + Send + Sync + 'static {
    let (kind, tick) = spec.split_once(':').expect("KIND:TICK");
    let tick = Tick(tick.parse().expect("a tick number"));
    let kind = kind.to_owned();
    move |step| match (kind.as_str(), step) {
        ("results", Step::ResultsStored { tick: t, .. }) => t == tick,
        ("closed", Step::Closed { tick: t }) => t == tick,
        ("scores", Step::ScoresStored { tick: t }) => t == tick,
        _ => false,
    }
}

/// The engine process. Runs the drill to its end, or to the crash point named in the
/// environment, where it says so and waits to be killed.
#[test]
#[ignore = "the engine process of the kill -9 test, which starts it itself"]
fn engine_process() {
    let db = std::env::var(ENV_DB).expect("the kill -9 test sets the database");
    let at = std::env::var(ENV_AT).ok().map(crash_point);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let store = Store::connect_and_migrate(&format!("sqlite://{db}?mode=rwc")).await.unwrap();
        let s = scenario();
        store.sync_scenario(&s).await.unwrap();
        // One drill id for both databases (the clean run's and the crashed one's), so they
        // are the same drill and mint the same flags; `gongfang up` reads it from the store.
        let drill = DrillId::from_bytes([0xc4; DrillId::LEN]);
        let codec = FlagCodec::for_drill(&s.drill.flag_prefix, SECRET.as_bytes(), &s.drill.slug, drill);
        let mut cfg = EngineConfig::new(s.clone(), codec.clone(), start());
        // Small batches, so a tick is stored in several writes and can be killed between them.
        cfg.write_batch = 3;
        cfg.max_concurrency = 4;
        if let Some(at) = at {
            cfg.hook = StepHook::new(move |step| {
                if at(step) {
                    println!("{REACHED} {step:?}");
                    loop {
                        std::thread::sleep(Duration::from_secs(3600));
                    }
                }
            });
        }
        let runner = Deterministic { store: store.clone(), codec };
        let targets =
            |_: TeamId, _: ServiceId| Some(Target { address: IpAddr::V4(Ipv4Addr::LOCALHOST), ports: vec![8080] });
        let (events, _) = broadcast::channel(1024);
        // A restarted process starts its clock at the drill's start again; the engine skips
        // to the first tick the store has not scored.
        let engine =
            Engine::resume(cfg, ManualClock::starting_at(start()), runner, store, targets, events).await.unwrap();
        engine.run(std::future::pending()).await.unwrap();
        println!("{OVER}");
    });
}

/// Runs the engine process on `db`; with a crash point, kills it with SIGKILL once it is
/// there. Returns what it printed.
fn run_engine(db: &Path, crash_at: Option<&str>) -> Vec<String> {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["engine_process", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(ENV_DB, db)
        .env_remove(ENV_AT)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(at) = crash_at {
        command.env(ENV_AT, at);
    }
    let mut child = command.spawn().expect("start the engine process");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let reached = line.contains(REACHED);
                lines.push(line);
                if reached {
                    child.kill().expect("SIGKILL the engine");
                    child.wait().unwrap();
                    return lines;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("the engine process did not finish within 120 s; it printed {lines:?}");
            }
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "the engine process failed ({status}); it printed {lines:?}");
    assert!(crash_at.is_none(), "the engine never reached crash point {crash_at:?}; it printed {lines:?}");
    lines
}

async fn open(db: &Path) -> Store {
    Store::connect(&format!("sqlite://{}?mode=rw", db.display())).await.unwrap()
}

#[tokio::test]
async fn killed_at_every_step_the_drill_ends_as_if_never_killed() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.db");
    let crashed = dir.path().join("crashed.db");

    let out = run_engine(&clean, None);
    assert!(out.iter().any(|l| l.contains(OVER)), "{out:?}");

    // Killed while tick 3's results were being stored: the tick is open, partly stored.
    run_engine(&crashed, Some("results:3"));
    {
        let store = open(&crashed).await;
        let t3 = store.tick(Tick(3)).await.unwrap().expect("tick 3 was opened");
        assert!(!t3.is_closed(), "killed before tick 3 closed");
        let stored = store.check_results(Tick(3), None).await.unwrap().len();
        let all = open(&clean).await.check_results(Tick(3), None).await.unwrap().len();
        assert!(stored > 0 && stored < all, "tick 3 partly stored: {stored} of {all}");
    }
    // Killed after closing tick 5, before its scores were stored.
    run_engine(&crashed, Some("closed:5"));
    {
        let store = open(&crashed).await;
        let t5 = store.tick(Tick(5)).await.unwrap().unwrap();
        assert!(t5.is_closed() && !t5.is_scored());
        assert!(store.scores_for_tick(Tick(5)).await.unwrap().is_empty(), "no scores for tick 5 yet");
    }
    // Killed after storing tick 7's scores, before marking it scored.
    run_engine(&crashed, Some("scores:7"));
    {
        let store = open(&crashed).await;
        let t7 = store.tick(Tick(7)).await.unwrap().unwrap();
        assert!(t7.is_closed() && !t7.is_scored());
        assert!(!store.scores_for_tick(Tick(7)).await.unwrap().is_empty());
    }
    let out = run_engine(&crashed, None);
    assert!(out.iter().any(|l| l.contains(OVER)), "{out:?}");

    let (a, b) = (open(&clean).await, open(&crashed).await);
    let scores = a.list_scores().await.unwrap();
    assert_eq!(scores.len(), 3 * TICKS as usize, "one score row per team and tick");
    assert_eq!(b.list_scores().await.unwrap(), scores, "scores equal those of the uninterrupted run");
    let ticks = b.list_ticks().await.unwrap();
    assert_eq!(ticks.iter().map(|t| t.tick.0).collect::<Vec<_>>(), (0..TICKS).collect::<Vec<_>>());
    assert!(ticks.iter().all(|t| t.is_scored()), "every tick closed and scored");
    for t in 0..TICKS {
        let summary = |rs: Vec<CheckResult>| {
            let mut v: Vec<_> = rs.into_iter().map(|r| (r.team, r.service, r.action, r.store, r.verdict)).collect();
            v.sort_by_key(|x| format!("{x:?}"));
            v
        };
        let want = summary(a.check_results(Tick(t), None).await.unwrap());
        let got = summary(b.check_results(Tick(t), None).await.unwrap());
        assert_eq!(got, want, "tick {t}: the same results, none twice");
    }
    let flags = |fs: Vec<PlantedFlag>| {
        let mut v: Vec<_> = fs.into_iter().map(|f| (f.flag, f.flag_id, f.state)).collect();
        v.sort();
        v
    };
    let planted = flags(a.planted_flags(Tick(0), Tick(TICKS)).await.unwrap());
    // Three puts per team and tick, but for team 2's notes (two stores) down in ticks 4 and 5
    // and team 3's permits answering garbage in tick 6.
    assert_eq!(planted.len(), (3 * 3 * TICKS - 2 * 2 - 1) as usize, "every successful put planted once");
    assert_eq!(
        flags(b.planted_flags(Tick(0), Tick(TICKS)).await.unwrap()),
        planted,
        "re-minted flags equal the planted ones"
    );
    assert_eq!(b.count_submissions().await.unwrap(), a.count_submissions().await.unwrap());
}
