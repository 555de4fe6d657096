//! Backups of a running drill: a copy taken while the engine plays ticks and teams' flags
//! arrive over the TCP submission server restores and resumes (the ticks, scores and
//! acknowledged flags it holds are the original's, a flag acknowledged before it began is
//! a duplicate when submitted again, and the engine closes further ticks on it); and
//! `gongfang backup` itself on a real file: a 0600 copy that is a valid drill, and its refusals.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use gongfang_core::clock::DrillClock;
use gongfang_core::scenario::{Identify, Scenario};
use gongfang_core::{Action, ActionOutcome, FlagCodec, FlagInfo, ServiceId, StoreIdx, Target, TeamId, Tick, Verdict};
use gongfang_engine::{ActionRequest, CheckerRunner, Engine, EngineConfig, ManualClock};
use gongfang_store::Store;
use gongfang_submission::SubmissionState;
use gongfang_submission::tcp::TOKEN_GREETING;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;

const SECRET: &str = "backup-test-secret-0123456789abcdef";
const STORES: u8 = 3;
const TEAMS: u16 = 3;
const TIMEOUT: Duration = Duration::from_secs(60);

fn scenario() -> Scenario {
    let teams = (1..=TEAMS).map(|i| team(i, &format!("team{i}")));
    teams
        .fold(
            ScenarioBuilder::new("backup-test").duration("200m").flag_lifetime(200).secret(SECRET),
            ScenarioBuilder::team,
        )
        .submission(Identify::Token, None, 16)
        .service(service("notes").flag_stores(STORES))
        .build()
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap()
}

/// Services that always work, each action taking a few milliseconds, so ticks pass at a pace
/// the backup and the attackers overlap with.
struct Steady;

impl CheckerRunner for Steady {
    async fn run(&self, r: ActionRequest) -> ActionOutcome {
        tokio::time::sleep(Duration::from_millis(15)).await;
        let outcome = ActionOutcome::new(r.action, Verdict::Ok, "");
        match (r.action, &r.flag) {
            (Action::Put, Some(f)) => ActionOutcome {
                flag_id: Some(format!("user-{}-{}", r.ctx.team.0, f.store.0)),
                state: Some(vec![f.store.0]),
                ..outcome
            },
            _ => outcome,
        }
    }
}

/// A drill playing on `store`: the engine (simulated time, real checker pacing) and the TCP
/// submission server, sharing the engine's tick through the clock the servers read.
struct Drill {
    current: watch::Receiver<Option<Tick>>,
    submit: SocketAddr,
    tokens: HashMap<TeamId, String>,
    stop_engine: oneshot::Sender<()>,
    engine: JoinHandle<()>,
    stop_submission: oneshot::Sender<()>,
    submission: JoinHandle<()>,
    state: SubmissionState,
}

impl Drill {
    async fn start(store: &Store, scenario: &Scenario, codec: &FlagCodec) -> Drill {
        let cfg = EngineConfig::new(Arc::new(scenario.clone()), codec.clone(), start());
        let targets =
            |_: TeamId, _: ServiceId| Some(Target { address: IpAddr::V4(Ipv4Addr::LOCALHOST), ports: vec![1] });
        let (events, _) = broadcast::channel(4096);
        let engine =
            Engine::resume(cfg, ManualClock::starting_at(start()), Steady, store.clone(), targets, events.clone())
                .await
                .unwrap();
        let current = engine.current_tick();
        let tick = scenario.drill.tick;
        let (clock_tx, clock_rx) = watch::channel(DrillClock::running(engine.next_tick(), tick));
        let mut follow = current.clone();
        tokio::spawn(async move {
            loop {
                if let Some(t) = *follow.borrow_and_update() {
                    clock_tx.send_replace(DrillClock::running(t, tick));
                }
                if follow.changed().await.is_err() {
                    return;
                }
            }
        });
        let (stop_engine, stopped) = oneshot::channel::<()>();
        let engine = tokio::spawn(async move {
            engine
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        let mut tokens = HashMap::new();
        for t in &scenario.teams {
            tokens.insert(t.id, store.issue_token(&t.slug).await.unwrap().token.expose().to_owned());
        }
        let (state, _writer) = SubmissionState::start(
            scenario,
            codec.clone(),
            Arc::new(store.clone()),
            clock_rx,
            events,
            gongfang_submission::Settings::default(),
        )
        .await
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let submit = listener.local_addr().unwrap();
        let (stop_submission, stop_rx) = oneshot::channel::<()>();
        let served = state.clone();
        let submission = tokio::spawn(async move {
            gongfang_submission::tcp::serve(listener, served, async {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
        });
        Drill { current, submit, tokens, stop_engine, engine, stop_submission, submission, state }
    }

    /// Waits until the engine runs `tick` or a later one.
    async fn reach(&mut self, tick: u32) {
        tokio::time::timeout(TIMEOUT, self.current.wait_for(|t| t.is_some_and(|t| t.0 >= tick)))
            .await
            .expect("the engine reaches the tick")
            .expect("the engine runs");
    }

    async fn stop(self) {
        let _ = self.stop_engine.send(());
        self.engine.await.unwrap();
        let _ = self.stop_submission.send(());
        self.submission.await.unwrap();
        self.state.close();
    }
}

/// A team's connection to the TCP submission server, past the token greeting.
struct Attacker {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Attacker {
    async fn connect(addr: SocketAddr, token: &str) -> Attacker {
        let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut a = Attacker { reader: BufReader::new(r), writer: w };
        assert_eq!(a.line().await, TOKEN_GREETING);
        a.writer.write_all(format!("{token}\n").as_bytes()).await.unwrap();
        while !a.line().await.is_empty() {}
        a
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        let n = tokio::time::timeout(TIMEOUT, self.reader.read_line(&mut line)).await.expect("an answer").unwrap();
        assert!(n > 0, "the server closed the connection");
        line.trim_end_matches('\n').to_owned()
    }

    /// Submits `flags` (pipelined) and returns each one's answer code, in order.
    async fn submit(&mut self, flags: &[String]) -> Vec<String> {
        let mut bytes = flags.join("\n").into_bytes();
        bytes.push(b'\n');
        self.writer.write_all(&bytes).await.unwrap();
        let mut codes = Vec::new();
        for flag in flags {
            let line = self.line().await;
            let rest = line.strip_prefix(flag.as_str()).and_then(|r| r.strip_prefix(' ')).expect("FLAG CODE message");
            codes.push(rest.split(' ').next().unwrap().to_owned());
        }
        codes
    }
}

/// Every flag the other teams' services got at `tick`.
fn flags_of(codec: &FlagCodec, attacker: u16, tick: u32) -> Vec<String> {
    (1..=TEAMS)
        .filter(|&victim| victim != attacker)
        .flat_map(|victim| {
            (0..STORES).map(move |store| FlagInfo {
                tick: Tick(tick),
                team: TeamId(victim),
                service: ServiceId(1),
                store: StoreIdx(store),
            })
        })
        .map(|info| codec.mint(info))
        .collect()
}

/// Stored submissions, (attacker, flag) → how many rows hold it.
async fn stored_flags(store: &Store, through: u32) -> HashMap<(u16, String), usize> {
    let mut flags = HashMap::new();
    for t in 0..=through {
        for s in store.submissions_in_tick(Tick(t)).await.unwrap() {
            *flags.entry((s.submission.capture.attacker.0, s.submission.flag)).or_default() += 1;
        }
    }
    flags
}

fn latest_closed(ticks: &[gongfang_store::TickRecord]) -> Option<Tick> {
    ticks.iter().filter(|t| t.is_closed()).map(|t| t.tick).max()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_mid_drill_restores_and_resumes_where_it_was_taken() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("drill.db").display());
    let store = Store::connect_and_migrate(&url).await.unwrap();
    let scenario = scenario();
    store.sync_scenario(&scenario).await.unwrap();
    let drill_id = store.drill_id().await.unwrap();
    let codec = FlagCodec::for_drill(&scenario.drill.flag_prefix, SECRET.as_bytes(), &scenario.drill.slug, drill_id);
    let mut drill = Drill::start(&store, &scenario, &codec).await;

    // Every team attacks the others each tick, submitting the flags of the tick before.
    let acked: Arc<Mutex<Vec<(u16, String)>>> = Arc::default();
    let (stop_attacks, attacks_stopped) = watch::channel(false);
    let mut attackers = Vec::new();
    for attacker in 1..=TEAMS {
        let mut conn = Attacker::connect(drill.submit, &drill.tokens[&TeamId(attacker)]).await;
        let (codec, acked, mut current, mut stopped) =
            (codec.clone(), acked.clone(), drill.current.clone(), attacks_stopped.clone());
        attackers.push(tokio::spawn(async move {
            let mut next = 1;
            while !*stopped.borrow() {
                let now = current.borrow_and_update().map_or(0, |t| t.0);
                for tick in next..now {
                    let flags = flags_of(&codec, attacker, tick);
                    let codes = conn.submit(&flags).await;
                    for (flag, code) in flags.into_iter().zip(codes) {
                        assert_eq!(code, "OK", "a fresh flag of tick {tick} is accepted");
                        acked.lock().unwrap().push((attacker, flag));
                    }
                }
                next = next.max(now);
                tokio::select! {
                    _ = current.changed() => {}
                    _ = stopped.changed() => {}
                }
            }
        }));
    }

    drill.reach(8).await;
    // What the copy must hold: every flag answered OK before the backup begins.
    let acked_before: Vec<(u16, String)> = acked.lock().unwrap().clone();
    let closed_before = latest_closed(&store.list_ticks().await.unwrap()).expect("ticks closed before the backup");
    assert!(acked_before.len() >= 5 * 2 * STORES as usize, "attacks were acknowledged: {}", acked_before.len());
    let copy_path = dir.path().join("copy.db");
    // Small steps, so the copy spans many of the drill's commits.
    let summary = store.backup_in_steps(&copy_path, 4).await.unwrap();
    let during = acked.lock().unwrap().len() - acked_before.len();
    drill.reach(closed_before.0 + 6).await;
    let _ = stop_attacks.send(true);
    for a in attackers {
        a.await.unwrap();
    }
    drill.stop().await;
    eprintln!("backup: {summary:?}; {} flags acknowledged before it, {during} while it ran", acked_before.len());
    assert_eq!(std::fs::metadata(&copy_path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&copy_path).unwrap().len(), summary.bytes);
    let mut beside: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    beside.sort();
    assert!(
        beside.iter().all(|name| name.starts_with("drill.db") || name == "copy.db"),
        "nothing but the copy is left beside it: {beside:?}"
    );

    // The copy is the original as it stood at one moment.
    let original_ticks = store.list_ticks().await.unwrap();
    let original_scores = store.list_scores().await.unwrap();
    let original_last = latest_closed(&original_ticks).unwrap();
    let copy = Store::connect_and_migrate(&format!("sqlite://{}", copy_path.display())).await.unwrap();
    let copy_ticks = copy.list_ticks().await.unwrap();
    let copy_last = latest_closed(&copy_ticks);
    assert_eq!(copy_last, summary.latest_closed_tick, "the summary names the copy's latest closed tick");
    let copy_last = copy_last.unwrap();
    assert!(copy_last >= closed_before, "the copy holds what was closed before it began");
    assert!(original_last > copy_last, "the original played on after the copy ({original_last} vs {copy_last})");
    for t in &copy_ticks {
        let o = original_ticks.iter().find(|o| o.tick == t.tick).expect("the original has the copy's tick");
        assert_eq!(o.opened_at, t.opened_at, "tick {} opened at the same moment", t.tick);
        if t.is_closed() {
            assert_eq!(o.closed_at, t.closed_at, "tick {} closed at the same moment", t.tick);
        }
        if t.scored_at.is_some() {
            assert_eq!(o.scored_at, t.scored_at);
        }
    }
    let copy_scores = copy.list_scores().await.unwrap();
    assert!(!copy_scores.is_empty());
    for row in &copy_scores {
        let o = original_scores.iter().find(|o| (o.tick, o.team) == (row.tick, row.team));
        assert_eq!(o, Some(row), "the copy's score of team {} at tick {} is the original's", row.team, row.tick);
    }
    let original_flags = stored_flags(&store, original_last.0 + 1).await;
    let copy_flags = stored_flags(&copy, original_last.0 + 1).await;
    assert!(copy_flags.keys().all(|f| original_flags.contains_key(f)), "the copy holds only flags the original has");
    for acked in &acked_before {
        assert_eq!(copy_flags.get(acked), Some(&1), "a flag acknowledged before the backup is in the copy, once");
    }
    assert!(copy_flags.len() < original_flags.len(), "flags acknowledged after the copy are not in it");
    store.close().await.unwrap();

    // Restored: the drill started on the copy goes on from the copied tick.
    let count_before = copy.count_submissions().await.unwrap();
    let mut restored = Drill::start(&copy, &scenario, &codec).await;
    restored.reach(copy_last.0 + 1).await;
    let mut again = Attacker::connect(restored.submit, &restored.tokens[&TeamId(2)]).await;
    let theirs: Vec<String> = acked_before.iter().filter(|(a, _)| *a == 2).map(|(_, f)| f.clone()).collect();
    assert!(!theirs.is_empty());
    let codes = again.submit(&theirs).await;
    assert!(codes.iter().all(|c| c == "DUP"), "a flag acknowledged before the backup is a duplicate: {codes:?}");
    restored.reach(copy_last.0 + 5).await;
    drop(again);
    restored.stop().await;
    assert_eq!(copy.count_submissions().await.unwrap(), count_before, "no flag counted twice");
    let resumed = copy.list_ticks().await.unwrap();
    let resumed_last = latest_closed(&resumed).unwrap();
    assert!(resumed_last.0 >= copy_last.0 + 3, "the resumed engine closed further ticks: {resumed_last}");
    let closed: Vec<u32> = resumed.iter().filter(|t| t.is_closed()).map(|t| t.tick.0).collect();
    assert_eq!(closed, (0..=resumed_last.0).collect::<Vec<_>>(), "every tick closed once, none skipped");
    let scored: HashSet<u32> = copy.list_scores().await.unwrap().iter().map(|r| r.tick.0).collect();
    // A tick is scored before the next one plays; the engine may have stopped before scoring its last.
    assert!((copy_last.0 + 1..resumed_last.0).all(|t| scored.contains(&t)), "the resumed ticks are scored");
    copy.close().await.unwrap();
}

// ---- the command ----

fn gongfang(dir: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gongfang"))
        .current_dir(dir)
        .args(args)
        .env("GONGFANG_LOG", "warn")
        .env("GONGFANG_DATABASE_URL", url)
        .output()
        .expect("run gongfang")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn the_command_writes_a_private_copy_that_is_the_drill_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("drill.db").display());
    let store = Store::connect_and_migrate(&url).await.unwrap();
    let scenario = scenario();
    store.sync_scenario(&scenario).await.unwrap();
    store.open_tick(Tick(0), start()).await.unwrap();
    store.close_tick(Tick(0), start() + chrono::Duration::seconds(60)).await.unwrap();

    // Written while the drill's database is open in this process, as it is in a running drill.
    let out = gongfang(dir.path(), &url, &["backup", "--out", "backups/first.db"]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "a missing folder is an error: {stdout}");
    assert!(stderr.contains("cannot write the backup backups/first.db") && stderr.contains("No such file"), "{stderr}");
    assert_eq!(stderr.matches("No such file").count(), 1, "the cause is said once: {stderr}");
    std::fs::create_dir(dir.path().join("backups")).unwrap();
    let out = gongfang(dir.path(), &url, &["backup", "--out", "backups/first.db"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("backups/first.db") && stdout.contains("through tick 0"), "{stdout}");
    assert!(stdout.contains("docs/operations.md"), "{stdout}");
    let copy_path = dir.path().join("backups/first.db");
    assert_eq!(std::fs::metadata(&copy_path).unwrap().permissions().mode() & 0o777, 0o600, "it holds the keys");
    let files: Vec<_> =
        std::fs::read_dir(dir.path().join("backups")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, vec![std::ffi::OsString::from("first.db")], "no temporary file is left");

    let copy = Store::connect(&format!("sqlite://{}", copy_path.display())).await.unwrap();
    assert_eq!(copy.drill_id().await.unwrap(), store.drill_id().await.unwrap());
    let slugs = |teams: Vec<gongfang_store::TeamRecord>| teams.into_iter().map(|t| t.team.slug).collect::<Vec<_>>();
    assert_eq!(slugs(copy.list_teams().await.unwrap()), slugs(store.list_teams().await.unwrap()));
    assert_eq!(copy.list_ticks().await.unwrap(), store.list_ticks().await.unwrap());
    copy.close().await.unwrap();

    // Never over an existing file, which stays as it was.
    let before = std::fs::read(&copy_path).unwrap();
    let out = gongfang(dir.path(), &url, &["backup", "--out", "backups/first.db"]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("already exists") && stderr.contains("--out"), "{stderr}");
    assert_eq!(std::fs::read(&copy_path).unwrap(), before);
    store.close().await.unwrap();
}

#[test]
fn the_command_refuses_postgres_a_missing_file_and_a_database_without_a_drill() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("copy.db");
    let out_arg = out_file.to_str().unwrap();

    let out = gongfang(dir.path(), "postgres://gf:hunter2@127.0.0.1:1/gf", &["backup", "--out", out_arg]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("SQLite drills only") && stderr.contains("pg_dump -Fc"), "{stderr}");
    assert!(stderr.contains("pg_restore") && stderr.contains("docs/operations.md"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password is never shown: {stderr}");

    let missing = dir.path().join("nowhere.db");
    let url = format!("sqlite://{}?mode=rwc", missing.display());
    let out = gongfang(dir.path(), &url, &["backup", "--out", out_arg]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("does not exist") && stderr.contains("--database-url"), "{stderr}");
    assert!(!missing.exists(), "a missing database is not created");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let empty = dir.path().join("empty.db");
    let url = format!("sqlite://{}?mode=rwc", empty.display());
    runtime.block_on(async { Store::connect_and_migrate(&url).await.unwrap().close().await.unwrap() });
    let out = gongfang(dir.path(), &url, &["backup", "--out", out_arg]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("holds no drill"), "{stderr}");

    let out = gongfang(dir.path(), "sqlite::memory:", &["backup", "--out", out_arg]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("in-memory"), "{stderr}");
    assert!(!out_file.exists(), "no refusal leaves a file");
}

#[tokio::test]
async fn the_store_copies_sqlite_only_and_never_over_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("copy.db");
    if let Some(db) = gongfang_test_support::TestDb::postgres().await {
        let refused = db.store.backup_to(&out).await.unwrap_err();
        assert!(matches!(refused, gongfang_store::StoreError::BackupNotSqlite), "{refused}");
        assert!(!out.exists());
    }
    let db = gongfang_test_support::TestDb::sqlite().await;
    std::fs::write(&out, b"an older backup").unwrap();
    let refused = db.store.backup_to(&out).await.unwrap_err();
    assert!(matches!(refused, gongfang_store::StoreError::BackupExists(_)), "{refused}");
    assert_eq!(std::fs::read(&out).unwrap(), b"an older backup");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
}
