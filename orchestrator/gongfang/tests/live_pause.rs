//! `gongfang pause` against a running drill takes effect at once: the built binary calls the
//! organisers' API of a drill whose engine is in the middle of a tick, and the engine
//! dispatches no checker action after the answer, in that tick or any later one; and
//! `gongfang extend` moves its end through the same API. The engine,
//! the organisers' API and the store (SQLite) are the real ones; the checker runner is a slow
//! stand-in that records when each action reached it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use gongfang_core::event::GameEvent;
use gongfang_core::{AccountRole, Action, ActionOutcome, DrillId, FlagCodec, ServiceId, Target, TeamId, Verdict};
use gongfang_engine::{ActionRequest, CheckerRunner, Engine, EngineConfig, ManualClock};
use gongfang_reports::ReportsState;
use gongfang_store::Store;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};
use tokio::sync::broadcast;

/// Checks that take a while, each recording when it was dispatched.
#[derive(Clone, Default)]
struct SlowChecks {
    dispatched: Arc<Mutex<Vec<Instant>>>,
}

impl CheckerRunner for SlowChecks {
    async fn run(&self, r: ActionRequest) -> ActionOutcome {
        self.dispatched.lock().unwrap().push(Instant::now());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ok = ActionOutcome::new(r.action, Verdict::Ok, "");
        match r.action {
            Action::Put => ActionOutcome { flag_id: Some("note-1".into()), ..ok },
            _ => ok,
        }
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_the_engine_before_its_next_action() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("drill.db").display());
    let mut scenario = ScenarioBuilder::new("live-pause").duration("10m").secret("live-pause-secret-0123456789");
    for id in 1..=8 {
        scenario = scenario.team(team(id, &format!("team{id}")));
    }
    let scenario = Arc::new(scenario.service(service("notes")).service(service("kv")).build());
    let store = Store::connect_and_migrate(&url).await.unwrap();
    store.sync_scenario(&scenario).await.unwrap();
    store.create_account("olga", AccountRole::Organiser, "organiser password").await.unwrap();
    let token = store.issue_api_token("olga", Utc::now()).await.unwrap().unwrap();

    // The organisers' API, on the drill's store and event feed, as `gongfang up` serves it.
    let (events, mut feed) = broadcast::channel::<GameEvent>(1024);
    let api = gongfang_reports::router(ReportsState::new(store.clone(), scenario.clone(), events.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, api.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });

    // The engine, one action at a time, so a tick takes seconds.
    let drill = DrillId::from_bytes([0x17; DrillId::LEN]);
    let codec = FlagCodec::for_drill(&scenario.drill.flag_prefix, b"live-pause-secret-0123456789", "live-pause", drill);
    let mut cfg = EngineConfig::new(scenario.clone(), codec, start());
    cfg.max_concurrency = 1;
    let checks = SlowChecks::default();
    let targets =
        |_: TeamId, _: ServiceId| Some(Target { address: IpAddr::V4(Ipv4Addr::LOCALHOST), ports: vec![8080] });
    let engine = Engine::resume(cfg, ManualClock::starting_at(start()), checks.clone(), store.clone(), targets, events)
        .await
        .unwrap();
    let running = tokio::spawn(engine.run(std::future::pending()));

    while checks.dispatched.lock().unwrap().len() < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let server = format!("http://{addr}");
    let secret = token.expose().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_gongfang"))
            .args(["pause", "--server", &server, "--reason", "power cut in hall B"])
            .env("GONGFANG_TOKEN", secret)
            .env("GONGFANG_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let answered = Instant::now();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("now paused"), "{said}");

    // The drill runs out its ticks (paused ones pass without checks) and ends.
    tokio::time::timeout(Duration::from_secs(120), running).await.expect("the drill ends").unwrap().unwrap();
    let dispatched = checks.dispatched.lock().unwrap().clone();
    let late = dispatched.iter().filter(|at| **at > answered).count();
    assert_eq!(late, 0, "{late} of {} actions were dispatched after the pause was answered", dispatched.len());
    assert!(dispatched.len() < 16, "the first tick alone plans one action per team and service: {}", dispatched.len());

    let mut announced = Vec::new();
    while let Ok(event) = feed.try_recv() {
        if matches!(event, GameEvent::Paused | GameEvent::Resumed) {
            announced.push(event);
        }
    }
    assert_eq!(announced, [GameEvent::Paused], "the pause is announced once, on the live feed");
    // The same organiser moves the end later, through the same API.
    let server = format!("http://{addr}");
    let secret = token.expose().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_gongfang"))
            .args(["extend", "--server", &server, "--minutes", "15", "--reason", "lost time"])
            .env("GONGFANG_TOKEN", secret)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("15 min after"), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(store.drill_extension().await.unwrap(), Duration::from_secs(900));

    let audit = store.list_audit(None, 10).await.unwrap();
    let actions: Vec<(&str, &str)> = audit.iter().map(|a| (a.actor.as_str(), a.action.as_str())).collect();
    assert_eq!(actions, [("account olga", "drill.pause"), ("account olga", "drill.extend")]);
    assert_eq!(audit[0].detail["reason"], "power cut in hall B");
}
