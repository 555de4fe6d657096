//! The Open Data Portal demo challenge (`challenges/opendata`) as the platform will use it:
//! its wasm checker, run in the real sandbox against the real Python service started as a
//! local process, judges a working service `ok`, lost data `corrupt` and a dead service
//! `down`; both reference exploits (the checker's `exploit` export and the team-style
//! `exploit.py`) steal both flag stores; and after `patch/fix.patch` they steal nothing while
//! the checker still says `ok`.
//!
//! Needs `python3`; skips with a notice without it, unless `GONGFANG_REQUIRE_DOCKER=1` (as in
//! CI), which makes a missing interpreter a failure.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use gongfang_core::scenario::{Identify, ImageSource, Probe, Role};
use gongfang_core::{ActionCtx, ActionOutcome, Target, Verdict};
use gongfang_core::{FlagCodec, FlagInfo, ServiceId, StoreIdx, TeamId, Tick};
use gongfang_sandbox::{Checker, Sandbox, SandboxConfig};
use gongfang_test_programs::components;

const TEAM: u16 = 2;

fn challenge_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../challenges/opendata")
}

/// Whether the tests can run here; `false` (with a notice) means skip.
fn python_available() -> bool {
    let found = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("GONGFANG_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
            panic!("GONGFANG_REQUIRE_DOCKER=1 but python3 is not installed; the opendata service needs it");
        }
        eprintln!(
            "SKIPPED: python3 is not installed; the opendata service needs it (GONGFANG_REQUIRE_DOCKER=1 makes this a failure)"
        );
    }
    found
}

/// The portal running as a local process on a free port, with its data in a temporary folder.
struct Service {
    child: Child,
    addr: SocketAddr,
    data: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Starts `app.py` from `service_dir` and waits until it says where it listens.
    fn start(service_dir: &Path) -> Service {
        let dir = tempfile::tempdir().expect("temporary folder");
        let data = dir.path().join("data");
        let log = dir.path().join("service.log");
        let mut child = Command::new("python3")
            .arg(service_dir.join("app.py"))
            .args(["--host", "127.0.0.1", "--port", "0", "--data"])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("service log"))
            .spawn()
            .expect("start python3 app.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let addr = line.trim().strip_prefix("listening on http://").and_then(|a| a.parse().ok()).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("the service did not start: {line:?}\n{}", std::fs::read_to_string(&log).unwrap_or_default())
        });
        Service { child, addr, data, log, _dir: dir }
    }

    fn target(&self) -> Target {
        Target::from_addr(self.addr)
    }

    /// The end of the service's request log, for failure messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

fn load_checker() -> Checker {
    let sandbox =
        Sandbox::new(SandboxConfig { max_concurrent_actions: 4, ..SandboxConfig::default() }).expect("sandbox");
    sandbox.load(components::OPENDATA_CHECKER).expect("load the opendata checker")
}

fn codec() -> FlagCodec {
    FlagCodec::for_drill(
        "GONGFANG",
        b"opendata-test-secret-not-a-drill",
        "opendata-test",
        gongfang_core::DrillId::from_bytes([1; 16]),
    )
}

fn flag(tick: u32, store: u8) -> String {
    codec().mint(FlagInfo { tick: Tick(tick), team: TeamId(TEAM), service: ServiceId(1), store: StoreIdx(store) })
}

fn ctx(tick: u32, action: &str) -> ActionCtx {
    ActionCtx {
        team: TeamId(TEAM),
        tick: Tick(tick),
        seed: codec().derive_seed(format!("{TEAM}:{tick}:{action}").as_bytes()),
    }
}

fn expect(outcome: &ActionOutcome, verdict: Verdict, service: &Service) {
    assert_eq!(
        outcome.verdict,
        verdict,
        "{} gave {:?}: {:?}\nlog: {:#?}\nservice log:\n{}",
        outcome.action,
        outcome.verdict,
        outcome.public_message,
        outcome.private_log,
        service.log_tail()
    );
}

/// A flag planted in one store: what `get` and the exploits need.
struct Planted {
    store: u8,
    flag: String,
    flag_id: String,
    state: Vec<u8>,
}

async fn plant(checker: &Checker, service: &Service, tick: u32, store: u8) -> Planted {
    let flag = flag(tick, store);
    let put = checker.put(&service.target(), &ctx(tick, &format!("put:{store}")), StoreIdx(store), &flag).await;
    expect(&put, Verdict::Ok, service);
    Planted {
        store,
        flag,
        flag_id: put.flag_id.expect("put returns a flag id"),
        state: put.state.expect("put returns state"),
    }
}

async fn get(checker: &Checker, service: &Service, tick: u32, planted: &Planted) -> ActionOutcome {
    let ctx = ctx(tick, &format!("get:{}", planted.store));
    checker.get(&service.target(), &ctx, StoreIdx(planted.store), &planted.flag, &planted.state).await
}

async fn exploit(checker: &Checker, service: &Service, tick: u32, planted: &Planted) -> ActionOutcome {
    let ctx = ctx(tick, &format!("exploit:{}", planted.store));
    checker.exploit(&service.target(), &ctx, StoreIdx(planted.store), &planted.flag_id).await
}

/// Runs `exploit/exploit.py` against the service; its standard output, one flag a line.
fn exploit_script(service: &Service, extra: &[&str]) -> Vec<String> {
    let out = Command::new("python3")
        .arg(challenge_dir().join("exploit/exploit.py"))
        .arg(service.addr.ip().to_string())
        .arg(service.addr.port().to_string())
        .args(extra)
        .output()
        .expect("run exploit.py");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exploit.py failed: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8 output").lines().map(str::to_owned).collect()
}

/// Writes attack info in the FAUST shape (service → team → tick → flag ids) and returns its
/// `file://` URL, which `exploit.py --attack-info` reads like an HTTP one.
fn attack_info(dir: &Path, planted: &[&Planted]) -> String {
    let ids: Vec<&str> = planted.iter().map(|p| p.flag_id.as_str()).collect();
    let info = serde_json::json!({
        "teams": [{"id": TEAM, "address": "127.0.0.1"}],
        "flag_ids": {"opendata": {TEAM.to_string(): {"1": ids}}},
    });
    let path = dir.join("attack.json");
    std::fs::write(&path, info.to_string()).expect("write attack info");
    format!("file://{}", path.display())
}

#[tokio::test]
async fn the_checker_judges_a_working_portal_ok_and_its_exploits_steal_both_stores() {
    if !python_available() {
        return;
    }
    let service = Service::start(&challenge_dir().join("service"));
    let checker = load_checker();
    let info = checker.info().await.expect("info");
    assert_eq!((info.service.as_str(), info.flag_stores, info.has_exploit), ("opendata", 2, true));

    // Seeded traffic takes different paths through the portal from tick to tick.
    for tick in 1..=6 {
        let check = checker.check(&service.target(), &ctx(tick, "check")).await;
        expect(&check, Verdict::Ok, &service);
    }

    let dataset = plant(&checker, &service, 7, 0).await;
    let note = plant(&checker, &service, 7, 1).await;
    assert!(dataset.flag_id.parse::<u64>().is_ok(), "store 0's flag id is a dataset number: {:?}", dataset.flag_id);
    assert!(
        !note.flag_id.is_empty() && !note.flag_id.contains(&note.flag),
        "store 1's flag id is a user name: {:?}",
        note.flag_id
    );
    for planted in [&dataset, &note] {
        expect(&get(&checker, &service, 8, planted).await, Verdict::Ok, &service);

        let altered = Planted {
            flag: flag(99, planted.store),
            store: planted.store,
            flag_id: String::new(),
            state: planted.state.clone(),
        };
        let wrong = get(&checker, &service, 8, &altered).await;
        expect(&wrong, Verdict::Corrupt, &service);

        let stolen = exploit(&checker, &service, 8, planted).await;
        expect(&stolen, Verdict::Ok, &service);
        assert_eq!(stolen.flags, vec![planted.flag.clone()], "store {} exploit", planted.store);
    }

    // The team-style script, with flag ids from attack info and with a blind id sweep.
    let dir = tempfile::tempdir().expect("temporary folder");
    let url = attack_info(dir.path(), &[&dataset, &note]);
    let flags = exploit_script(&service, &["--attack-info", &url, "--team", &TEAM.to_string()]);
    assert!(flags.contains(&dataset.flag) && flags.contains(&note.flag), "exploit.py printed {flags:?}");
    let swept = exploit_script(&service, &[]);
    assert!(swept.contains(&dataset.flag), "the id sweep finds the private dataset: {swept:?}");
    assert!(!swept.contains(&note.flag), "notes need the user names from attack info: {swept:?}");
}

#[tokio::test]
async fn lost_data_is_corrupt_and_a_dead_portal_is_down() {
    if !python_available() {
        return;
    }
    let mut service = Service::start(&challenge_dir().join("service"));
    let checker = load_checker();
    let dataset = plant(&checker, &service, 1, 0).await;
    let note = plant(&checker, &service, 1, 1).await;

    // A team that wipes its data (or restarts with a fresh /tmp) loses the planted flags, but
    // the portal itself keeps working.
    std::fs::remove_dir_all(&service.data).expect("delete the service's data");
    for planted in [&dataset, &note] {
        let lost = get(&checker, &service, 2, planted).await;
        expect(&lost, Verdict::Corrupt, &service);
        assert!(lost.public_message.contains("missing / "), "short and bilingual: {:?}", lost.public_message);
    }
    expect(&checker.check(&service.target(), &ctx(2, "check")).await, Verdict::Ok, &service);

    service.kill();
    let check = checker.check(&service.target(), &ctx(3, "check")).await;
    expect(&check, Verdict::Down, &service);
    let put = checker.put(&service.target(), &ctx(3, "put:0"), StoreIdx(0), &flag(3, 0)).await;
    expect(&put, Verdict::Down, &service);
}

#[tokio::test]
async fn the_patch_stops_both_exploits_and_the_checker_stays_ok() {
    if !python_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary folder");
    let patched = dir.path().join("service");
    std::fs::create_dir(&patched).expect("copy of the service");
    for file in ["app.py", "Dockerfile"] {
        std::fs::copy(challenge_dir().join("service").join(file), patched.join(file)).expect("copy the service");
    }
    let patch = challenge_dir().join("patch/fix.patch");
    let applied =
        match Command::new("patch").args(["-p1", "--forward", "-i"]).arg(&patch).current_dir(&patched).output() {
            Ok(out) => out,
            // Without `patch`, git applies the same unified diff.
            Err(_) => Command::new("git")
                .args(["apply", "-p1"])
                .arg(&patch)
                .current_dir(&patched)
                .output()
                .expect("run git apply"),
        };
    assert!(applied.status.success(), "fix.patch does not apply: {}", String::from_utf8_lossy(&applied.stderr));
    let original = std::fs::read_to_string(challenge_dir().join("service/app.py")).expect("app.py");
    assert_ne!(
        std::fs::read_to_string(patched.join("app.py")).expect("patched app.py"),
        original,
        "the patch changed app.py"
    );

    let service = Service::start(&patched);
    let checker = load_checker();
    for tick in 1..=4 {
        expect(&checker.check(&service.target(), &ctx(tick, "check")).await, Verdict::Ok, &service);
    }
    let dataset = plant(&checker, &service, 5, 0).await;
    let note = plant(&checker, &service, 5, 1).await;
    for planted in [&dataset, &note] {
        expect(&get(&checker, &service, 6, planted).await, Verdict::Ok, &service);
        let stolen = exploit(&checker, &service, 6, planted).await;
        expect(&stolen, Verdict::Ok, &service);
        assert!(stolen.flags.is_empty(), "store {} exploit still steals {:?}", planted.store, stolen.flags);
    }

    let url = attack_info(dir.path(), &[&dataset, &note]);
    let flags = exploit_script(&service, &["--attack-info", &url, "--team", &TEAM.to_string()]);
    assert!(flags.is_empty(), "exploit.py still steals {flags:?}");
    assert!(exploit_script(&service, &[]).is_empty(), "the id sweep still steals");
}

#[tokio::test]
async fn gongfang_checker_test_runs_the_challenge_checker() {
    if !python_available() {
        return;
    }
    let service = Service::start(&challenge_dir().join("service"));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gongfang"))
        .args(["checker", "test", components::OPENDATA_CHECKER, "--target", &service.addr.to_string(), "--rounds", "2"])
        .output()
        .await
        .expect("run gongfang checker test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}\nservice log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        service.log_tail()
    );
    assert!(stdout.contains("service \"opendata\": 2 flag store(s), with exploit"), "{stdout}");
    assert!(stdout.contains("14 action(s): 14 ok"), "{stdout}");
}

/// The real file system, except that the checker the scenario names (built by hand into
/// `sandbox/guests/target`) is the component this test build made from the same crate.
struct BuiltChecker;

impl Probe for BuiltChecker {
    fn is_file(&self, path: &Path) -> bool {
        let built = Path::new(components::OPENDATA_CHECKER);
        if path.file_name() == built.file_name() { built.is_file() } else { path.is_file() }
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn env_var_set(&self, name: &str) -> bool {
        std::env::var_os(name).is_some_and(|v| !v.is_empty())
    }
}

#[test]
fn the_demo_scenario_is_valid_and_points_at_this_challenge() {
    let file = challenge_dir().join("scenario.toml");
    let src = std::fs::read_to_string(&file).expect("scenario.toml");
    let scenario = gongfang_core::scenario::parse(&src, &file, &BuiltChecker).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(scenario.teams.len(), 3);
    assert!(scenario.teams.iter().all(|t| t.role == Role::Both && !t.nop), "three playing teams");
    assert_eq!(scenario.drill.tick, Duration::from_secs(30));
    assert_eq!(scenario.drill.flag_lifetime, 5);
    assert_eq!(scenario.submission.identify, Identify::Token);
    let [service] = scenario.services.as_slice() else { panic!("one service: {:?}", scenario.services) };
    assert_eq!((service.slug.as_str(), service.flag_stores, service.ports.as_slice()), ("opendata", 2, &[8080][..]));
    let ImageSource::Build(folder) = &service.source else { panic!("built from a folder: {:?}", service.source) };
    assert!(
        folder.join("Dockerfile").is_file() && folder.join("app.py").is_file(),
        "{} is the service folder",
        folder.display()
    );
    assert_eq!(service.checker.file_name(), Path::new(components::OPENDATA_CHECKER).file_name());
}
