//! Shared harness of the engine-backed tests and the bring-up benchmark: finding the engine,
//! building the `FROM scratch` test service, scenarios as struct literals, a drill guard that
//! tears down by label even when a test fails, and a line client for the service.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gongfang_core::ids::{ServiceId, TeamId};
use gongfang_core::scenario::{
    Drill, Identify, ImageSource, Ipv4Net, Limits, Names, PatchMode, Role, Scenario, ScoringFormula, SecretSource,
    Service, Submission, Team,
};
use gongfang_docker::{Backend, Engine, Orchestrator, Settings};

/// The engine, or `None` (with a message) where there is none and none is required.
pub fn engine(backend: Backend) -> Option<Engine> {
    let required = std::env::var("GONGFANG_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
    let reason = match Engine::connect(backend) {
        Ok(engine) => {
            let ping = std::thread::scope(|s| {
                s.spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap()
                        .block_on(async { engine.docker().ping().await.map(|_| ()) })
                })
                .join()
                .unwrap()
            });
            match ping {
                Ok(()) => return Some(engine),
                Err(e) => format!("the Docker engine does not answer: {e}"),
            }
        }
        Err(e) => e.to_string(),
    };
    if required {
        panic!("GONGFANG_REQUIRE_DOCKER=1 but {reason}");
    }
    eprintln!("SKIPPED: no Docker engine here ({reason}); set GONGFANG_REQUIRE_DOCKER=1 to make this a failure");
    None
}

/// A build folder holding the static test service and a `FROM scratch` Dockerfile.
pub fn service_context() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/scratch-service");
        let dir = std::env::temp_dir().join(format!("gongfang-scratch-service-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("scratch-service");
        let musl = std::process::Command::new("rustc")
            .args(["--edition", "2021", "-O", "--target", "x86_64-unknown-linux-musl", "-o"])
            .arg(&out)
            .arg(src.join("main.rs"))
            .status()
            .is_ok_and(|s| s.success());
        if !musl {
            // No musl target installed: link glibc statically instead.
            let ok = std::process::Command::new("rustc")
                .args(["--edition", "2021", "-O", "-C", "target-feature=+crt-static", "-o"])
                .arg(&out)
                .arg(src.join("main.rs"))
                .status()
                .expect("rustc runs");
            assert!(ok.success(), "cannot build the static test service");
        }
        std::fs::copy(src.join("Dockerfile"), dir.join("Dockerfile")).unwrap();
        dir
    })
    .clone()
}

pub fn names(en: &str) -> Names {
    Names { en: en.to_owned(), zh: en.to_owned() }
}

pub fn team(id: u16, slug: &str, role: Role, network: &str) -> Team {
    Team {
        id: TeamId(id),
        slug: slug.to_owned(),
        name: names(slug),
        role,
        network: Ipv4Net::parse(network).unwrap(),
        nop: false,
    }
}

pub fn service(id: u8, slug: &str, source: ImageSource) -> Service {
    Service {
        id: ServiceId(id),
        slug: slug.to_owned(),
        name: names(slug),
        source,
        ports: vec![8080],
        checker: PathBuf::from("checker.wasm"),
        flag_stores: 1,
        limits: Limits { cpus: 0.25, memory_bytes: 64 << 20, pids: 64 },
        patch_mode: PatchMode::Vulnbox,
        code: None,
        data: None,
        fixed: Vec::new(),
    }
}

pub fn scenario(drill: &str, teams: Vec<Team>, services: Vec<Service>) -> Scenario {
    Scenario {
        drill: Drill {
            slug: drill.to_owned(),
            name: names(drill),
            start: None,
            duration: Duration::from_secs(3600),
            tick: Duration::from_secs(60),
            checker_timeout: Duration::from_secs(20),
            flag_lifetime: 5,
            flag_prefix: "GF".to_owned(),
            secret: SecretSource::Inline("test-secret-of-sufficient-length".into()),
            scoring: ScoringFormula::Faust,
            demo: true,
            debrief_names: false,
        },
        submission: Submission { identify: Identify::Address, rate_limit: None, max_connections: 16 },
        teams,
        services,
        reports: Default::default(),
        logs: Default::default(),
        vpn: None,
        patches: Default::default(),
    }
}

/// A drill slug no other run uses at the same time.
pub fn drill(name: &str) -> String {
    format!("it-{name}-{}", std::process::id())
}

/// Tears the drill down by label when dropped, also when the test panicked.
pub struct DrillGuard {
    pub drill: String,
    pub backend: Backend,
}

impl Drop for DrillGuard {
    fn drop(&mut self) {
        let (drill, backend) = (self.drill.clone(), self.backend);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let orch =
                Orchestrator::new(Engine::connect(backend).unwrap(), Settings { backend, ..Settings::default() });
            if let Err(e) = rt.block_on(orch.down(&drill)) {
                eprintln!("cleanup of {drill} failed: {e}");
            }
        })
        .join();
    }
}

/// Sends one command line to the test service and returns its answer, waiting up to
/// `patience` for the service to accept connections.
pub fn ask(ip: Ipv4Addr, command: &str, patience: Duration) -> String {
    let addr = SocketAddr::from((ip, 8080));
    let deadline = Instant::now() + patience;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.write_all(format!("{command}\n").as_bytes()).unwrap();
                let mut line = String::new();
                BufReader::new(s).read_line(&mut line).unwrap();
                return line.trim_end().to_owned();
            }
            Err(e) if Instant::now() > deadline => panic!("{addr} never accepted a connection: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Whether a TCP connection to `ip:8080` is accepted right now.
pub fn accepts(ip: Ipv4Addr) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((ip, 8080)), Duration::from_millis(500)).is_ok()
}
