//! One test per checker fixture, run in the real sandbox against a real TCP service: the good
//! checker's verdicts follow the service's health, and every hostile checker ends in
//! `checker-error` while the host keeps serving the next action.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gongfang_core::{ActionCtx, ActionOutcome, CheckerFault, StoreIdx, Target, TeamId, Tick, Verdict};
use gongfang_sandbox::{ActionLimits, Checker, Sandbox, SandboxConfig};
use gongfang_test_programs::components;
use gongfang_test_programs::{Decoy, KvService};

const LIMITS: ActionLimits = ActionLimits {
    timeout: Duration::from_secs(3),
    cpu_time: Duration::from_millis(500),
    memory_bytes: 32 << 20,
    max_log_bytes: 64 << 10,
    max_message_bytes: 1024,
    max_state_bytes: 64 << 10,
    max_flags: 100,
    max_sockets: 32,
    max_resources: 256,
};

/// One sandbox for the whole test binary, as the platform has one per process: hostile
/// checkers running in it must not disturb the next action.
fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        Sandbox::new(SandboxConfig {
            cache_dir: None,
            max_concurrent_actions: 16,
            epoch_tick: Duration::from_millis(10),
            limits: LIMITS,
        })
        .expect("sandbox")
    })
}

fn load(path: &str) -> Checker {
    sandbox().load(path).unwrap_or_else(|e| panic!("load {path}: {e}"))
}

fn ctx() -> ActionCtx {
    ActionCtx { team: TeamId(3), tick: Tick(7), seed: 0x5eed }
}

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn service() -> KvService {
    KvService::start(SocketAddr::new(LOCALHOST, 0)).await.expect("start the test service")
}

/// The next action on the same sandbox works: the good checker's `check` is `ok`.
async fn assert_host_healthy(service: &KvService) {
    let outcome = load(components::GOOD).check(&Target::from_addr(service.addr()), &ctx()).await;
    assert_eq!(outcome.verdict, Verdict::Ok, "host unhealthy after a hostile checker: {outcome:#?}");
}

thread_local! {
    static CAPTURE: RefCell<Option<Arc<Mutex<Vec<u8>>>>> = const { RefCell::new(None) };
}

/// What the platform's `tracing` lines written on this thread say, from [`capture_log`] on.
/// A test's runtime is single-threaded, so its actions log on its thread and other tests'
/// lines are not mixed in. One global subscriber serves every test: per-thread subscribers
/// miss events whose interest another thread cached first.
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

fn capture_log() -> CapturedLog {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(|| ThreadLog).finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test binary");
    });
    let buffer = Arc::new(Mutex::new(Vec::new()));
    CAPTURE.with(|c| *c.borrow_mut() = Some(Arc::clone(&buffer)));
    CapturedLog(buffer)
}

impl CapturedLog {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).lines().map(str::to_owned).collect()
    }
}

/// Writes into this thread's capture buffer, if it has one.
struct ThreadLog;

impl std::io::Write for ThreadLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(buffer) = c.borrow().as_ref() {
                buffer.lock().expect("log lock").extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_checker_error(outcome: &ActionOutcome) -> &CheckerFault {
    assert_eq!(outcome.verdict, Verdict::CheckerError, "{outcome:#?}");
    assert!(!outcome.verdict.is_teams_fault());
    outcome.fault.as_ref().expect("a checker-error has a fault")
}

#[tokio::test]
async fn good_checker_is_ok_against_a_working_service_and_its_exploit_captures_the_flag() {
    let service = service().await;
    let checker = load(components::GOOD);
    let info = checker.info().await.expect("info");
    assert_eq!((info.service.as_str(), info.flag_stores, info.has_exploit), ("kv", 1, true));
    let target = Target::from_addr(service.addr());

    let check = checker.check(&target, &ctx()).await;
    assert_eq!(check.verdict, Verdict::Ok, "{check:#?}");

    let flag = "FLAG{good-checker-test-flag-0001}";
    let put = checker.put(&target, &ctx(), StoreIdx(0), flag).await;
    assert_eq!(put.verdict, Verdict::Ok, "{put:#?}");
    let flag_id = put.flag_id.clone().expect("put returns a flag id");
    let state = put.state.clone().expect("put returns state");
    assert!(!flag_id.is_empty());
    assert!(put.private_log.iter().any(|l| l.contains(&flag_id)), "put logs where it planted: {put:#?}");

    let get = checker.get(&target, &ctx(), StoreIdx(0), flag, &state).await;
    assert_eq!(get.verdict, Verdict::Ok, "{get:#?}");

    let exploit = checker.exploit(&target, &ctx(), StoreIdx(0), &flag_id).await;
    assert_eq!(exploit.verdict, Verdict::Ok, "{exploit:#?}");
    assert_eq!(exploit.flags, vec![flag.to_owned()]);
}

#[tokio::test]
async fn good_checker_says_corrupt_when_the_flag_is_gone() {
    let service = service().await;
    let checker = load(components::GOOD);
    let target = Target::from_addr(service.addr());
    let flag = "FLAG{this-one-will-vanish-000000}";
    let put = checker.put(&target, &ctx(), StoreIdx(0), flag).await;
    assert_eq!(put.verdict, Verdict::Ok, "{put:#?}");
    assert!(!service.is_empty());

    service.drop_all_values();
    let get = checker.get(&target, &ctx(), StoreIdx(0), flag, put.state.as_deref().unwrap_or_default()).await;
    assert_eq!(get.verdict, Verdict::Corrupt, "{get:#?}");
    assert_eq!(get.public_message, "a flag is missing");
    assert_eq!(get.fault, None);
}

#[tokio::test]
async fn good_checker_says_mumble_when_the_service_answers_garbage() {
    let service = service().await;
    service.answer_garbage(true);
    let outcome = load(components::GOOD).check(&Target::from_addr(service.addr()), &ctx()).await;
    assert_eq!(outcome.verdict, Verdict::Mumble, "{outcome:#?}");
    assert_eq!(outcome.public_message, "storing a value does not work");
    assert!(
        outcome.private_log.iter().any(|l| l.contains("DEADBEEF")),
        "the raw answer is in the private log: {outcome:#?}"
    );
}

#[tokio::test]
async fn good_checker_says_down_when_the_service_is_stopped() {
    let mut service = service().await;
    let target = Target::from_addr(service.addr());
    service.stop().await;
    let outcome = load(components::GOOD).check(&target, &ctx()).await;
    assert_eq!(outcome.verdict, Verdict::Down, "{outcome:#?}");
    assert!(outcome.public_message.contains("refuses connections"), "{outcome:#?}");
}

#[tokio::test]
async fn busy_loop_is_stopped_by_the_cpu_budget() {
    let service = service().await;
    let outcome = load(components::BUSY_LOOP).check(&Target::from_addr(service.addr()), &ctx()).await;
    let fault = assert_checker_error(&outcome);
    assert_eq!(*fault, CheckerFault::CpuLimit { limit: LIMITS.cpu_time });
    assert_host_healthy(&service).await;
}

#[tokio::test]
async fn memory_bomb_is_stopped_at_the_memory_limit() {
    let service = service().await;
    let outcome = load(components::MEMORY_BOMB).check(&Target::from_addr(service.addr()), &ctx()).await;
    let fault = assert_checker_error(&outcome);
    assert_eq!(*fault, CheckerFault::MemoryLimit { limit: LIMITS.memory_bytes });
    assert_host_healthy(&service).await;
}

#[tokio::test]
async fn forbidden_address_never_reaches_the_decoy() {
    // The target is 127.0.0.1:P; the decoy listens on the neighbouring address, same port,
    // where the fixture tries to go.
    let (service, decoy) = loop {
        let service = service().await;
        let decoy_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), service.addr().port());
        if let Ok(decoy) = Decoy::bind(decoy_addr).await {
            break (service, decoy);
        }
    };
    let outcome = load(components::FORBIDDEN_ADDRESS).check(&Target::from_addr(service.addr()), &ctx()).await;
    let fault = assert_checker_error(&outcome);
    assert_eq!(*fault, CheckerFault::ForbiddenNetwork { addr: decoy.addr(), usage: "TcpConnect".into() });
    assert!(outcome.private_log.iter().any(|l| l == "name lookup allowed=false"), "{outcome:#?}");
    assert!(outcome.private_log.iter().any(|l| l == "udp allowed=false"), "{outcome:#?}");
    assert_host_healthy(&service).await;
    assert_eq!(decoy.accepted(), 0, "the checker reached the decoy");
}

#[tokio::test]
async fn wrong_port_on_the_target_never_reaches_the_decoy() {
    let (service, decoy) = loop {
        let service = service().await;
        let Some(next) = service.addr().port().checked_add(1) else { continue };
        if let Ok(decoy) = Decoy::bind(SocketAddr::new(LOCALHOST, next)).await {
            break (service, decoy);
        }
    };
    let outcome = load(components::WRONG_PORT).check(&Target::from_addr(service.addr()), &ctx()).await;
    let fault = assert_checker_error(&outcome);
    assert_eq!(*fault, CheckerFault::ForbiddenNetwork { addr: decoy.addr(), usage: "TcpConnect".into() });
    assert_host_healthy(&service).await;
    assert_eq!(decoy.accepted(), 0, "the checker reached the decoy");
}

#[tokio::test]
async fn socket_flood_is_stopped_at_the_socket_limit() {
    let service = service().await;
    let outcome = load(components::SOCKET_FLOOD).check(&Target::from_addr(service.addr()), &ctx()).await;
    let fault = assert_checker_error(&outcome);
    assert_eq!(*fault, CheckerFault::SocketLimit { limit: LIMITS.max_sockets });
    assert!(
        !outcome.private_log.iter().any(|l| l.starts_with("holding")),
        "the checker was stopped, not refused: {outcome:#?}"
    );
    assert_host_healthy(&service).await;
    // Its sockets went with its store: the next hoarder gets the same allowance, no less.
    let again = load(components::SOCKET_FLOOD).check(&Target::from_addr(service.addr()), &ctx()).await;
    assert_eq!(again.fault, Some(CheckerFault::SocketLimit { limit: LIMITS.max_sockets }));
}

#[tokio::test]
async fn handle_flood_is_stopped_at_the_resource_table_limit() {
    let service = service().await;
    let outcome =
        load(components::SOCKET_FLOOD).put(&Target::from_addr(service.addr()), &ctx(), StoreIdx(0), "FLAG{x}").await;
    let fault = assert_checker_error(&outcome);
    assert_eq!(*fault, CheckerFault::ResourceLimit { limit: LIMITS.max_resources });
    assert_eq!(outcome.flag_id, None);
    assert_host_healthy(&service).await;
}

#[tokio::test]
async fn forbidden_connects_in_a_loop_are_one_fault_and_one_log_line() {
    let (service, decoy) = loop {
        let service = service().await;
        let decoy_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), service.addr().port());
        if let Ok(decoy) = Decoy::bind(decoy_addr).await {
            break (service, decoy);
        }
    };
    let target = Target::from_addr(service.addr());
    let captured = capture_log();
    let outcome = load(components::SOCKET_FLOOD).get(&target, &ctx(), StoreIdx(0), "FLAG{x}", b"").await;
    let fault = assert_checker_error(&outcome);
    // The first attempt is the fault; the 499 after it add nothing.
    assert_eq!(*fault, CheckerFault::ForbiddenNetwork { addr: decoy.addr(), usage: "TcpConnect".into() });
    // Every attempt was refused and none ended the action early: sockets dropped after each
    // attempt do not count against the socket limit.
    assert!(outcome.private_log.iter().any(|l| l == "500 of 500 attempts refused"), "{outcome:#?}");
    let decoy_text = decoy.addr().to_string();
    let wrong_port = SocketAddr::new(LOCALHOST, service.addr().port().wrapping_add(1)).to_string();
    let about: Vec<_> =
        outcome.private_log.iter().filter(|l| l.contains(&decoy_text) || l.contains(&wrong_port)).collect();
    assert_eq!(about.len(), 1, "one line about the forbidden addresses: {outcome:#?}");
    assert!(about[0].starts_with("checker-error: "), "{about:?}");
    // The platform's own log says it once per action too, not once per attempt.
    let logged: Vec<_> =
        captured.lines().into_iter().filter(|l| l.contains(&decoy_text) || l.contains(&wrong_port)).collect();
    assert_eq!(logged.len(), 1, "one platform log line about the forbidden addresses: {logged:#?}");
    assert!(logged[0].contains("WARN"), "{logged:?}");
    assert_eq!(decoy.accepted(), 0, "the checker reached the decoy");
    assert_host_healthy(&service).await;
}

#[tokio::test]
async fn blocking_read_is_stopped_by_the_wall_clock_timeout() {
    let service = service().await;
    let outcome = load(components::BLOCK_READ).check(&Target::from_addr(service.addr()), &ctx()).await;
    let fault = assert_checker_error(&outcome);
    assert_eq!(*fault, CheckerFault::Timeout { limit: LIMITS.timeout });
    assert!(outcome.duration >= LIMITS.timeout);
    assert!(service.connections() >= 1, "the fixture did connect and wait");
    assert_host_healthy(&service).await;
}

#[tokio::test]
async fn log_flood_is_stopped_at_the_log_limit() {
    let service = service().await;
    let outcome = load(components::LOG_FLOOD).check(&Target::from_addr(service.addr()), &ctx()).await;
    let fault = assert_checker_error(&outcome);
    assert_eq!(*fault, CheckerFault::LogLimit { limit: LIMITS.max_log_bytes });
    let kept: usize = outcome.private_log.iter().map(|l| l.len()).sum();
    assert!(kept <= LIMITS.max_log_bytes + 200, "kept {kept} bytes of log");
    assert_host_healthy(&service).await;
}

#[tokio::test]
async fn trapping_checker_is_a_checker_error() {
    let service = service().await;
    let checker = load(components::TRAP);
    let target = Target::from_addr(service.addr());
    let outcome = checker.check(&target, &ctx()).await;
    let CheckerFault::Trap { message } = assert_checker_error(&outcome) else {
        panic!("expected a trap: {outcome:#?}");
    };
    assert!(message.contains("unreachable"), "{message}");
    let put = checker.put(&target, &ctx(), StoreIdx(0), "FLAG{x}").await;
    assert!(matches!(assert_checker_error(&put), CheckerFault::Trap { .. }));
    assert_eq!(put.flag_id, None);
    assert_host_healthy(&service).await;
}

#[tokio::test]
async fn trivial_checker_has_no_exploit() {
    let checker = load(components::TRIVIAL);
    let target = Target { address: LOCALHOST, ports: vec![9] };
    assert_eq!(checker.check(&target, &ctx()).await.verdict, Verdict::Ok);
    let outcome = checker.exploit(&target, &ctx(), StoreIdx(0), "anything").await;
    assert_eq!(*assert_checker_error(&outcome), CheckerFault::NoExploit);
}

#[tokio::test]
async fn compiled_components_are_cached_on_disk_by_content_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config =
        SandboxConfig { cache_dir: Some(dir.path().to_owned()), max_concurrent_actions: 4, ..Default::default() };
    let sandbox = Sandbox::new(config.clone()).expect("sandbox");
    sandbox.load(components::TRIVIAL).expect("first load compiles");
    let entries =
        || -> Vec<_> { std::fs::read_dir(dir.path()).expect("cache dir").map(|e| e.expect("entry").path()).collect() };
    let cached = entries();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert_eq!(cached[0].extension().and_then(|e| e.to_str()), Some("cwasm"));

    // A second process (a fresh engine with the same settings) finds the same entry.
    let again = Sandbox::new(config.clone()).expect("sandbox").load(components::TRIVIAL).expect("load from cache");
    let target = Target { address: LOCALHOST, ports: vec![9] };
    assert_eq!(again.check(&target, &ctx()).await.verdict, Verdict::Ok);
    assert_eq!(entries(), cached);

    // A damaged entry is not trusted: it is compiled again and replaced.
    std::fs::write(&cached[0], b"not a compiled component").expect("damage the entry");
    let repaired = Sandbox::new(config).expect("sandbox").load(components::TRIVIAL).expect("recompile");
    assert_eq!(repaired.check(&target, &ctx()).await.verdict, Verdict::Ok);
    assert!(std::fs::metadata(&cached[0]).expect("entry").len() > 1000);

    // Another component gets its own entry.
    sandbox.load(components::GOOD).expect("load good");
    assert_eq!(entries().len(), 2);
}

#[tokio::test]
async fn a_file_that_is_not_a_component_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("checker.wasm");
    std::fs::write(&path, b"\0asm garbage").expect("write");
    let err = sandbox().load(&path).expect_err("garbage is not a component");
    assert!(err.to_string().contains("not a valid checker component"), "{err}");
}

/// A pool slot's memory is reset between actions, whether its pages go back to the kernel or
/// are kept resident and reset in place: with one slot, every action of the `residue` checker
/// runs in the memory the one before wrote (a static flag, a static buffer, 3 MiB grown with
/// `memory.grow`) and must find none of it. Its `check` also proves, within one action, that
/// each probe sees what was written.
#[tokio::test]
async fn an_action_finds_nothing_an_earlier_action_left_in_memory() {
    let sandbox = Sandbox::new(SandboxConfig {
        cache_dir: None,
        max_concurrent_actions: 1,
        epoch_tick: Duration::from_millis(10),
        limits: LIMITS,
    })
    .expect("sandbox");
    let checker = sandbox.load(components::RESIDUE).expect("load the residue checker");
    let target = Target { address: LOCALHOST, ports: vec![9] };
    for tick in 0..6 {
        let ctx = ActionCtx { team: TeamId(1), tick: Tick(tick), seed: u64::from(tick) };
        let outcome = match tick % 3 {
            0 => checker.check(&target, &ctx).await,
            1 => checker.put(&target, &ctx, StoreIdx(0), "FLAG{residue}").await,
            _ => checker.get(&target, &ctx, StoreIdx(0), "FLAG{residue}", b"FLAG{residue}").await,
        };
        assert_eq!(outcome.verdict, Verdict::Ok, "action {tick}: {outcome:#?}");
    }
}
