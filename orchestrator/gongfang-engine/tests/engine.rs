//! The engine over a real SQLite store in simulated time, with an in-test checker runner that
//! plays a flag-keeping service whose failures (and patches, for the exploit replay) the test
//! switches on per tick.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use gongfang_core::event::GameEvent;
use gongfang_core::scenario::Scenario;
use gongfang_core::{Action, ActionOutcome, DrillId, FlagCodec, ServiceId, Target, TeamId, Tick, Verdict};
use gongfang_engine::{ActionRequest, CheckerRunner, Engine, EngineConfig, FlagArgs, ManualClock};
use gongfang_store::Store;
use gongfang_test_support::TestDb;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};
use tokio::sync::broadcast;

/// What the simulated services do wrong, by (team, tick).
#[derive(Default)]
struct Faults {
    down: HashSet<(u16, u32)>,
    garbage: HashSet<(u16, u32)>,
    /// Loses every flag at the start of this tick.
    wipe: HashSet<(u16, u32)>,
    /// Patched from this tick on: the reference exploit captures nothing.
    patched_from: HashMap<u16, u32>,
}

#[derive(Clone, Default)]
struct SimulatedServices {
    flags: Arc<Mutex<HashMap<u16, HashSet<String>>>>,
    faults: Arc<Faults>,
    /// The team of every action run, in order.
    runs: Arc<Mutex<Vec<u16>>>,
}

impl CheckerRunner for SimulatedServices {
    async fn run(&self, r: ActionRequest) -> ActionOutcome {
        let ok = |msg: &str| ActionOutcome::new(r.action, Verdict::Ok, msg);
        let bad = |verdict, msg: &str| ActionOutcome::new(r.action, verdict, msg);
        let key = (r.ctx.team.0, r.ctx.tick.0);
        self.runs.lock().unwrap().push(r.ctx.team.0);
        if self.faults.down.contains(&key) {
            return bad(Verdict::Down, "connection refused");
        }
        if self.faults.garbage.contains(&key) {
            return bad(Verdict::Mumble, "unexpected answer to LIST");
        }
        let mut flags = self.flags.lock().unwrap();
        let team_flags = flags.entry(r.ctx.team.0).or_default();
        if self.faults.wipe.contains(&key) {
            team_flags.clear();
        }
        match (r.action, r.flag.clone()) {
            (Action::Put, Some(FlagArgs { flag, store, .. })) => {
                team_flags.insert(flag);
                ActionOutcome {
                    flag_id: Some(format!("user-{}-{}", r.ctx.tick.0, store.0)),
                    state: Some(vec![7]),
                    ..ok("")
                }
            }
            (Action::Get, Some(FlagArgs { flag, state, .. })) => {
                assert_eq!(state, vec![7], "get receives the state put returned");
                if team_flags.contains(&flag) { ok("") } else { bad(Verdict::Corrupt, "flag not found") }
            }
            (Action::Check, None) => ok(""),
            (Action::Exploit, Some(FlagArgs { flag, flag_id, .. })) => {
                assert!(flag_id.starts_with("user-"), "exploit receives the flag id put published: {flag_id}");
                let patched = self.faults.patched_from.get(&r.ctx.team.0).is_some_and(|from| r.ctx.tick.0 >= *from);
                let flags = if patched || !team_flags.contains(&flag) { Vec::new() } else { vec![flag] };
                ActionOutcome { flags, ..ok("") }
            }
            (action, args) => panic!("the engine asked for {action} with {args:?}"),
        }
    }
}

fn scenario() -> Arc<Scenario> {
    let scenario = ScenarioBuilder::new("engine-test")
        .duration("10m")
        .flag_lifetime(3)
        .secret("engine-test-secret-0123456789")
        .team(team(1, "alpha"))
        .team(team(2, "bravo"))
        .service(service("notes").flag_stores(2));
    Arc::new(scenario.build())
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
}

/// The drill's codec, keyed by the secret, the slug and a drill id. The id is fixed rather
/// than the database's, so runs on two databases (straight and restarted) are the same drill.
fn codec(s: &Scenario) -> FlagCodec {
    let drill = DrillId::from_bytes([0x5a; DrillId::LEN]);
    FlagCodec::for_drill(&s.drill.flag_prefix, b"engine-test-secret-0123456789", &s.drill.slug, drill)
}

async fn engine(store: &Store, runner: SimulatedServices) -> Engine<ManualClock, SimulatedServices> {
    engine_with(store, runner, Vec::new()).await
}

async fn engine_with(
    store: &Store,
    runner: SimulatedServices,
    replay: Vec<ServiceId>,
) -> Engine<ManualClock, SimulatedServices> {
    let s = scenario();
    store.sync_scenario(&s).await.unwrap();
    let mut cfg = EngineConfig::new(s.clone(), codec(&s), start());
    cfg.max_concurrency = 8;
    cfg.replay = replay;
    let (events, _) = broadcast::channel(1024);
    let targets =
        |_: TeamId, _: ServiceId| Some(Target { address: IpAddr::V4(Ipv4Addr::LOCALHOST), ports: vec![8080] });
    Engine::resume(cfg, ManualClock::starting_at(start()), runner, store.clone(), targets, events).await.unwrap()
}

#[tokio::test]
async fn verdicts_follow_the_service_tick_by_tick() {
    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    let faults = Faults {
        down: [(2, 3), (2, 4), (2, 5)].into(),
        garbage: [(1, 7)].into(),
        wipe: [(1, 5)].into(),
        ..Default::default()
    };
    let runner = SimulatedServices { faults: Arc::new(faults), ..Default::default() };
    let mut engine = engine(&store, runner).await;
    let mut table = Vec::new();
    for t in 0..9 {
        let report = engine.play_tick(Tick(t)).await.unwrap();
        let v = |team| report.verdicts[&(TeamId(team), ServiceId(1))].0.as_str();
        table.push(format!("{t}: {} {}", v(1), v(2)));
    }
    assert_eq!(
        table,
        [
            "0: ok ok",
            "1: ok ok",
            "2: ok ok",
            "3: ok down",
            "4: ok down",
            "5: corrupt down",
            "6: corrupt ok",
            "7: mumble ok",
            "8: ok ok",
        ],
        "team 1 loses its flags in tick 5 (the gets of ticks 5 and 6 still ask for them) and answers garbage in tick 7; team 2 is down in ticks 3 to 5"
    );
    // Tick 6's gets ask for tick 5's flag (planted after the wipe: present) and a sampled
    // older one (tick 4's or earlier, wiped): corrupt. By tick 8, all flags in the lifetime
    // were planted after the wipe.
    let scores = store.scores_for_tick(Tick(8)).await.unwrap();
    let sla = |team| scores.iter().find(|r| r.team == TeamId(team)).unwrap().score.sla;
    assert_eq!(sla(1), sla(2), "each team failed three of nine ticks");
    assert!(sla(1) > 0.0);
    assert_eq!(store.list_ticks().await.unwrap().iter().filter(|t| t.is_scored()).count(), 9);
}

#[tokio::test]
async fn a_disabled_team_is_not_checked_until_it_is_brought_back() {
    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    let runner = SimulatedServices::default();
    let mut engine = engine(&store, runner.clone()).await;
    let checked = |report: &gongfang_engine::TickReport| {
        let mut teams: Vec<u16> = report.verdicts.keys().map(|(team, _)| team.0).collect();
        teams.sort_unstable();
        teams.dedup();
        teams
    };
    assert_eq!(checked(&engine.play_tick(Tick(0)).await.unwrap()), [1, 2]);
    store.set_team_disabled("bravo", true, start()).await.unwrap();
    let runs = runner.runs.clone();
    let before = runs.lock().unwrap().iter().filter(|team| **team == 2).count();
    let out = engine.play_tick(Tick(1)).await.unwrap();
    assert_eq!(checked(&out), [1, 2]);
    assert_eq!(runs.lock().unwrap().iter().filter(|team| **team == 2).count(), before, "no checker ran against bravo");
    let verdict = &out.verdicts[&(TeamId(2), ServiceId(1))];
    assert_eq!(
        (verdict.0, verdict.1.as_str()),
        (Verdict::Down, gongfang_core::plan::OUT_OF_THE_DRILL),
        "down, saying why"
    );
    assert_eq!(store.check_results(Tick(1), Some(TeamId(2))).await.unwrap().len(), 1, "one stored result per service");
    let scores = store.scores_for_tick(Tick(1)).await.unwrap();
    let sla = |team| scores.iter().find(|r| r.team == TeamId(team)).unwrap().score.sla;
    assert!(sla(1) > sla(2), "bravo earns no SLA while out");
    store.set_team_disabled("bravo", false, start()).await.unwrap();
    engine.play_tick(Tick(2)).await.unwrap();
    assert!(
        runs.lock().unwrap().iter().filter(|team| **team == 2).count() > before,
        "bravo is checked again once back"
    );
    engine.rescore().await.unwrap();
    let again = store.scores_for_tick(Tick(1)).await.unwrap();
    assert_eq!(again, scores, "a rescore from the stored results scores the disabled tick the same");
}

#[tokio::test]
async fn results_marked_defective_are_scored_again_and_cost_the_team_nothing() {
    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    let faults = Faults { down: [(2, 3), (2, 4)].into(), ..Default::default() };
    let runner = SimulatedServices { faults: Arc::new(faults), ..Default::default() };
    let mut engine = engine(&store, runner.clone()).await;
    for t in 0..6 {
        engine.play_tick(Tick(t)).await.unwrap();
    }
    let sla = |rows: &[gongfang_core::ScoreRow], team: u16| {
        rows.iter().find(|r| r.team == TeamId(team)).expect("a score row per team").score.sla
    };
    let before = store.scores_for_tick(Tick(5)).await.unwrap();
    assert!(sla(&before, 2) < sla(&before, 1), "bravo was down in ticks 3 and 4: {before:?}");
    let early = store.scores_for_tick(Tick(2)).await.unwrap();

    let marks = store.defective_watch();
    let mark = |t: u32| store.mark_defective(Tick(t), TeamId(2), ServiceId(1), "checker bug", "account olga", start());
    assert!(mark(3).await.unwrap(), "tick 3 marked");
    assert!(!mark(3).await.unwrap(), "a result is marked once");
    assert!(marks.has_changed().unwrap(), "the engine's watch is told");
    engine.rescore().await.unwrap();
    let one = store.scores_for_tick(Tick(5)).await.unwrap();
    assert!(sla(&one, 2) > sla(&before, 2), "tick 3 no longer costs bravo: {one:?}");
    assert!(sla(&one, 2) < sla(&one, 1), "tick 4 still does");
    assert_eq!(store.scores_for_tick(Tick(2)).await.unwrap(), early, "ticks before the marks are unchanged");
    assert_eq!(engine.next_tick(), Tick(6), "the engine goes on from the same tick");

    // Marked while no engine runs: the next engine to resume applies it.
    drop(engine);
    assert!(mark(4).await.unwrap(), "tick 4 marked");
    let mut restarted = engine_with(&store, runner, Vec::new()).await;
    let after = store.scores_for_tick(Tick(5)).await.unwrap();
    assert_eq!(sla(&after, 2), sla(&after, 1), "with both down ticks marked, bravo lost nothing");
    assert_eq!(restarted.next_tick(), Tick(6));
    restarted.play_tick(Tick(6)).await.unwrap();
    let tick6 = store.scores_for_tick(Tick(6)).await.unwrap();
    assert_eq!(sla(&tick6, 2), sla(&tick6, 1), "and scoring goes on from the recomputed scores");
    let audit = store.list_audit(None, 10).await.unwrap();
    let marked: Vec<_> = audit.iter().filter(|a| a.action == "result.defective").map(|a| a.actor.as_str()).collect();
    assert_eq!(marked, ["account olga", "account olga"], "each mark is audited under its account, once");
}

#[tokio::test]
async fn the_reference_exploit_is_replayed_each_tick_and_sees_a_patch() {
    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    // Team 1 patches before tick 3; team 2 is down in tick 2.
    let faults = Faults { down: [(2, 2)].into(), patched_from: [(1, 3)].into(), ..Default::default() };
    let runner = SimulatedServices { faults: Arc::new(faults), ..Default::default() };
    let mut engine = engine_with(&store, runner, vec![ServiceId(1)]).await;
    let mut verdicts = Vec::new();
    for t in 0..5 {
        let report = engine.play_tick(Tick(t)).await.unwrap();
        verdicts.push(report.verdicts[&(TeamId(1), ServiceId(1))].0);
    }
    let replays = store.exploit_replays(Tick(0), Tick(4), None).await.unwrap();
    let mut table: Vec<String> = Vec::new();
    for t in 0..5 {
        let row = |team: u16| {
            let of: Vec<&str> = replays
                .iter()
                .filter(|r| r.tick == Tick(t) && r.team == TeamId(team))
                .map(|r| r.exposure.as_str())
                .collect();
            of.join("+")
        };
        table.push(format!("{t}: {} | {}", row(1), row(2)));
    }
    assert_eq!(
        table,
        [
            "0:  | ",
            "1: exploitable+exploitable | exploitable+exploitable",
            "2: exploitable+exploitable | unknown+unknown",
            "3: not-exploitable+not-exploitable | ",
            "4: not-exploitable+not-exploitable | exploitable+exploitable",
        ],
        "one replay per store from tick 1 on; a down service is unknown, a patched one not exploitable; \
         team 2 was down when tick 2's flags were planted, so tick 3 has none of its flags to go for"
    );
    assert!(verdicts.iter().all(|v| *v == Verdict::Ok), "the replay never changes a verdict: {verdicts:?}");
    let mut actions = HashSet::new();
    for t in 0..5 {
        actions.extend(store.check_results(Tick(t), None).await.unwrap().into_iter().map(|r| r.action));
    }
    assert!(!actions.contains(&Action::Exploit), "replays are kept apart from the checker results");
    let one = store.exploit_replays(Tick(4), Tick(4), Some(TeamId(2))).await.unwrap();
    assert_eq!(one.len(), 2);
    assert!(one.iter().all(|r| r.team == TeamId(2) && r.tick == Tick(4)));
}

#[tokio::test]
async fn a_restarted_engine_continues_and_scores_like_an_uninterrupted_one() {
    let faults = || Arc::new(Faults { down: [(1, 2)].into(), ..Default::default() });

    let straight_db = TestDb::sqlite().await;
    let straight = straight_db.store.clone();
    let mut e = engine(&straight, SimulatedServices { faults: faults(), ..Default::default() }).await;
    for t in 0..6 {
        e.play_tick(Tick(t)).await.unwrap();
    }

    let resumed_db = TestDb::sqlite().await;
    let resumed = resumed_db.store.clone();
    let services = SimulatedServices { faults: faults(), ..Default::default() };
    let mut e = engine(&resumed, services.clone()).await;
    for t in 0..3 {
        e.play_tick(Tick(t)).await.unwrap();
    }
    drop(e);
    let mut e = engine(&resumed, services).await;
    assert_eq!(e.next_tick(), Tick(3), "the restarted engine knows where the drill is");
    for t in 3..6 {
        e.play_tick(Tick(t)).await.unwrap();
    }
    let a = straight.list_scores().await.unwrap();
    let b = resumed.list_scores().await.unwrap();
    assert_eq!(a.len(), 12);
    assert_eq!(a, b);
}

/// After every scored tick the scorer's state is stored; a restarted engine continues from it
/// rather than scoring the stored ticks again, unless it was taken with other results marked
/// defective or cannot be read.
#[tokio::test]
async fn a_restarted_engine_continues_from_the_scorers_snapshot_when_it_fits() {
    let drill = |down: &[(u16, u32)]| SimulatedServices {
        faults: Arc::new(Faults { down: down.iter().copied().collect(), ..Default::default() }),
        ..Default::default()
    };
    let sla =
        |rows: &[gongfang_core::ScoreRow], team: u16| rows.iter().find(|r| r.team == TeamId(team)).unwrap().score.sla;
    // Four ticks of three drills: alpha is down in tick 2 of `downed` only.
    let (downed_db, plain_db, stale_db) = (TestDb::sqlite().await, TestDb::sqlite().await, TestDb::sqlite().await);
    let mut runs = Vec::new();
    for (db, down) in [(&downed_db, &[(1u16, 2u32)][..]), (&plain_db, &[]), (&stale_db, &[])] {
        let services = drill(down);
        let mut e = engine(&db.store, services.clone()).await;
        for t in 0..4 {
            e.play_tick(Tick(t)).await.unwrap();
        }
        runs.push(services);
    }
    let downed = downed_db.store.scorer_snapshot().await.unwrap().expect("a snapshot after every scored tick");
    assert_eq!(downed.tick, Tick(3));
    assert_eq!(downed.marks, gongfang_store::marks_digest(&Default::default()));

    // `plain` given `downed`'s snapshot: the restarted engine takes alpha's lost SLA from it,
    // which none of `plain`'s stored ticks hold.
    plain_db.store.save_scorer_snapshot(&downed).await.unwrap();
    let mut e = engine(&plain_db.store, runs[1].clone()).await;
    assert_eq!(e.next_tick(), Tick(4));
    e.play_tick(Tick(4)).await.unwrap();
    let continued = plain_db.store.scores_for_tick(Tick(4)).await.unwrap();
    let mut straight = engine(&downed_db.store, runs[0].clone()).await;
    straight.play_tick(Tick(4)).await.unwrap();
    assert_eq!(continued, downed_db.store.scores_for_tick(Tick(4)).await.unwrap(), "continued from the snapshot");
    assert!(sla(&continued, 1) < sla(&continued, 2));

    // Taken with other marks, or unreadable: passed over, and every stored tick is scored.
    for state in [downed.state.clone(), b"no scorer here".to_vec()] {
        let marks = if state == downed.state { "marks of another time".to_owned() } else { downed.marks.clone() };
        stale_db
            .store
            .save_scorer_snapshot(&gongfang_store::ScorerSnapshot { marks, state, ..downed.clone() })
            .await
            .unwrap();
        let e = engine(&stale_db.store, runs[2].clone()).await;
        assert_eq!(e.next_tick(), Tick(4));
        drop(e);
    }
    let mut e = engine(&stale_db.store, runs[2].clone()).await;
    e.play_tick(Tick(4)).await.unwrap();
    let rescored = stale_db.store.scores_for_tick(Tick(4)).await.unwrap();
    assert_eq!(sla(&rescored, 1), sla(&rescored, 2), "scored from its own stored ticks: {rescored:?}");
    assert_eq!(stale_db.store.scorer_snapshot().await.unwrap().unwrap().tick, Tick(4), "and snapshotted again");
}

/// A capture older than the scenario's flag lifetime (stored while the scenario gave flags a
/// longer life) does not stop the drill: the engine scores with every flag kept, as before.
#[tokio::test]
async fn a_capture_older_than_the_flag_lifetime_is_scored_without_forgetting_flags() {
    let db = TestDb::sqlite().await;
    let services = SimulatedServices::default();
    let mut e = engine(&db.store, services.clone()).await;
    for t in 0..6 {
        e.play_tick(Tick(t)).await.unwrap();
    }
    drop(e);
    // Bravo's tick-1 flag, captured by alpha in tick 5: four ticks old, the lifetime is 3.
    let old = gongfang_core::NewSubmission {
        capture: gongfang_core::scoring::Capture {
            attacker: TeamId(1),
            victim: TeamId(2),
            service: ServiceId(1),
            store: gongfang_core::StoreIdx(0),
            planted: Tick(1),
            submitted: Tick(5),
        },
        flag: "FLAG_of_a_longer_life".into(),
        submitted_at: start(),
    };
    db.store.insert_submissions(&[old]).await.unwrap();
    // Every stored tick is scored again (the snapshot was taken before the capture was stored).
    let stale = db.store.scorer_snapshot().await.unwrap().unwrap();
    let other = gongfang_store::ScorerSnapshot { marks: "marks of another time".into(), ..stale };
    db.store.save_scorer_snapshot(&other).await.unwrap();
    let mut e = engine(&db.store, services).await;
    assert_eq!(e.next_tick(), Tick(6));
    let report = e.play_tick(Tick(6)).await.unwrap();
    let alpha = report.scores.team(TeamId(1)).unwrap().score;
    let bravo = report.scores.team(TeamId(2)).unwrap().score;
    assert!(alpha.attack > 0.0 && bravo.defence < 0.0, "the old capture counts: {alpha:?} {bravo:?}");
}

/// The simulated services, with an organiser who extends the drill by three minutes while
/// tick 8 runs.
#[derive(Clone)]
struct ExtendedInTick8 {
    services: SimulatedServices,
    store: Store,
    done: Arc<std::sync::atomic::AtomicBool>,
}

impl CheckerRunner for ExtendedInTick8 {
    async fn run(&self, r: ActionRequest) -> ActionOutcome {
        if r.ctx.tick == Tick(8) && !self.done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.store.extend_drill(Duration::from_secs(180), start()).await.unwrap();
        }
        self.services.run(r).await
    }
}

#[tokio::test]
async fn an_extension_while_the_drill_runs_plays_more_ticks() {
    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    let s = scenario();
    store.sync_scenario(&s).await.unwrap();
    let (events, _) = broadcast::channel(1024);
    let targets =
        |_: TeamId, _: ServiceId| Some(Target { address: IpAddr::V4(Ipv4Addr::LOCALHOST), ports: vec![8080] });
    let runner =
        ExtendedInTick8 { services: SimulatedServices::default(), store: store.clone(), done: Default::default() };
    let cfg = EngineConfig::new(s.clone(), codec(&s), start());
    let e =
        Engine::resume(cfg, ManualClock::starting_at(start()), runner, store.clone(), targets, events).await.unwrap();
    tokio::time::timeout(Duration::from_secs(120), e.run(std::future::pending())).await.unwrap().unwrap();
    let scored = store.list_ticks().await.unwrap();
    assert_eq!(scored.len(), 13, "10 ticks of the scenario and 3 of the extension");
    assert!(scored.iter().all(|t| t.is_scored()));
    assert!(!store.check_results(Tick(12), None).await.unwrap().is_empty(), "the last extra tick was checked");
}

#[tokio::test]
async fn run_plays_the_whole_drill_in_simulated_time() {
    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    let e = engine(&store, SimulatedServices::default()).await;
    let ticks = e.current_tick();
    tokio::time::timeout(Duration::from_secs(120), e.run(std::future::pending())).await.unwrap().unwrap();
    assert_eq!(*ticks.borrow(), None, "no tick runs after the end");
    let scored = store.list_ticks().await.unwrap();
    assert_eq!(scored.len(), 10, "a 10 minute drill of 60 s ticks has 10 ticks");
    assert!(scored.iter().all(|t| t.is_scored()));
    let last = store.scores_for_tick(Tick(9)).await.unwrap();
    assert!(last.iter().all(|r| r.score.sla > 0.0 && r.score.attack == 0.0));
}

#[tokio::test]
async fn a_paused_drill_runs_no_checks_and_costs_no_sla() {
    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    let s = scenario();
    store.sync_scenario(&s).await.unwrap();
    let cfg = EngineConfig::new(s.clone(), codec(&s), start());
    let (events, mut feed) = broadcast::channel(1024);
    let targets =
        |_: TeamId, _: ServiceId| Some(Target { address: IpAddr::V4(Ipv4Addr::LOCALHOST), ports: vec![8080] });
    let runner = SimulatedServices::default();
    let mut e =
        Engine::resume(cfg, ManualClock::starting_at(start()), runner, store.clone(), targets, events).await.unwrap();
    let mut state = store.drill_state().await.unwrap();
    for t in 0..6 {
        // An organiser pauses before tick 2 and resumes before tick 4.
        if t == 2 || t == 4 {
            state.paused = t == 2;
            store.set_drill_state(state, start()).await.unwrap();
        }
        let report = e.play_tick(Tick(t)).await.unwrap();
        let verdict = report.verdicts[&(TeamId(1), ServiceId(1))].0;
        let want = if (2..4).contains(&t) { Verdict::CheckerError } else { Verdict::Ok };
        assert_eq!(verdict, want, "tick {t}");
        let checks = store.check_results(Tick(t), None).await.unwrap();
        assert_eq!(checks.is_empty(), (2..4).contains(&t), "tick {t}: checks run only while not paused");
    }
    let mut announced = Vec::new();
    while let Ok(event) = feed.try_recv() {
        if matches!(event, GameEvent::Paused | GameEvent::Resumed) {
            announced.push(event);
        }
    }
    assert_eq!(announced, [GameEvent::Paused, GameEvent::Resumed], "pause and resume announced once each");
    // Paused ticks count as `checker-error`, i.e. as ok for SLA: nobody lost anything.
    let scores = store.scores_for_tick(Tick(5)).await.unwrap();
    let sla: Vec<f64> = scores.iter().map(|r| r.score.sla).collect();
    assert_eq!(sla[0], sla[1]);
    let unpaused = store.scores_for_tick(Tick(1)).await.unwrap()[0].score.sla / 2.0;
    assert_eq!(sla[0], unpaused * 6.0, "six ticks of SLA, paused ones included");
}

/// The engine's configuration holds the flag key and the scenario (with its inline secret):
/// printing it, as a `{:?}` in a log line would, shows neither.
#[test]
fn the_configuration_prints_no_secret() {
    let s = scenario();
    let printed = format!("{:?}", EngineConfig::new(s.clone(), codec(&s), start()));
    assert!(printed.contains("engine-test"), "the configuration should still say which drill: {printed}");
    assert!(!printed.contains("engine-test-secret"), "the secret leaked: {printed}");
    assert!(printed.contains("<redacted>"), "the key should show as redacted: {printed}");
}
