//! The Hong Kong e-government challenge pack (`challenges/`) on real Docker, one test per
//! service: its image is built from its folder and run hardened as the platform runs it; its
//! checker, in the real sandbox, plays 20 ticks back to back (every flag store planted each
//! tick, every flag still alive read back, the service checked) and must say `ok` to every
//! action; the checker's exploit and each team-style exploit script capture the flags of the
//! store their vulnerability leaks; `gongfang checker test` passes against the container. Then,
//! for each vulnerability, the service is built again with that vulnerability's patch applied:
//! 10 more ticks stay `ok`, and neither the checker's exploit for its store nor its script
//! captures anything. The memory each container uses after its 20 ticks is printed (the
//! challenges' READMEs keep the figures).
//!
//! Run one service's tests with `cargo test -p gongfang-e2e --test pack NAME`. Needs Docker,
//! root (the base images are made with debootstrap the first time), python3 and `patch`;
//! skipped with a notice without Docker unless `GONGFANG_REQUIRE_DOCKER=1`.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use gongfang_core::{ActionCtx, ActionOutcome, DrillId, FlagCodec, FlagInfo, Target, Verdict};
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick};
use gongfang_docker::{Backend, Engine};
use gongfang_sandbox::{Checker, Sandbox, SandboxConfig};
use gongfang_test_programs::components;

/// A service of the pack: its folder under `challenges/`, its checker, its vulnerabilities.
struct Challenge {
    name: &'static str,
    checker: &'static str,
    vulnerabilities: &'static [Vulnerability],
}

/// A vulnerability: its exploit is `exploit/NAME.py`, its fix `patch/NAME.patch`.
struct Vulnerability {
    name: &'static str,
    /// The flag store it leaks.
    store: u8,
    /// Whether the checker's `exploit` for that store goes through it (a store may fall to
    /// more than one; the checker's reference attack uses one of them).
    checker: bool,
}

const fn vulnerability(name: &'static str, store: u8, checker: bool) -> Vulnerability {
    Vulnerability { name, store, checker }
}

const OPENDATA: Challenge = Challenge {
    name: "opendata",
    checker: components::OPENDATA_CHECKER,
    vulnerabilities: &[
        vulnerability("default-admin", 0, false),
        vulnerability("download-idor", 0, true),
        vulnerability("export-traversal", 1, true),
    ],
};
const CITIZENID: Challenge = Challenge {
    name: "citizenid",
    checker: components::CITIZENID_CHECKER,
    vulnerabilities: &[vulnerability("alg-none", 0, true), vulnerability("debug-endpoint", 1, true)],
};
const CONSENT: Challenge = Challenge {
    name: "consent",
    checker: components::CONSENT_CHECKER,
    vulnerabilities: &[vulnerability("default-client", 1, true), vulnerability("exchange-scope", 0, true)],
};
const BIZSIGN: Challenge = Challenge {
    name: "bizsign",
    checker: components::BIZSIGN_CHECKER,
    vulnerabilities: &[vulnerability("default-pin", 0, true), vulnerability("share-link-key", 1, true)],
};

/// Ticks played against the vanilla service, and against each patched one.
const TICKS: u32 = 20;
const PATCHED_TICKS: u32 = 10;
/// How many ticks a planted flag is read back, as the demo scenario's `flag_lifetime`.
const FLAG_LIFETIME: u32 = 5;
/// The defending team the checker plays against.
const TEAM: u16 = 2;
/// The port every service of the pack listens on in its container.
const PORT: u16 = 8080;
/// What every container and image of these tests carries, so a failed run is cleaned up by
/// `docker rm -f $(docker ps -aq --filter label=gongfang.test=pack)`.
const LABEL: &str = "gongfang.test=pack";

/// The base images are made once, whichever test gets there first.
static BASE_IMAGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opendata() -> anyhow::Result<()> {
    play(&OPENDATA).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn citizenid() -> anyhow::Result<()> {
    play(&CITIZENID).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent() -> anyhow::Result<()> {
    play(&CONSENT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bizsign() -> anyhow::Result<()> {
    play(&BIZSIGN).await
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository folder")
}

/// The organisers' binary, built by `cargo test --workspace` (or `cargo build -p gongfang`).
fn gongfang_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe.parent().and_then(Path::parent).context("the test binary has no target folder")?;
    let binary = profile_dir.join("gongfang");
    ensure!(binary.is_file(), "{} is missing: build it first with `cargo build -p gongfang`", binary.display());
    Ok(binary)
}

/// Whether a Docker engine answers; without one the tests skip, unless
/// `GONGFANG_REQUIRE_DOCKER=1` makes that a failure.
fn docker_ready() -> anyhow::Result<bool> {
    let answers = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !answers {
        if std::env::var("GONGFANG_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
            bail!("Docker is required (GONGFANG_REQUIRE_DOCKER=1) but not reachable");
        }
        eprintln!("skipping: no Docker engine");
    }
    Ok(answers)
}

/// Runs `program` and returns its standard output, failing with its standard error.
fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program).args(args).output().with_context(|| format!("run {program}"))?;
    ensure!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Makes the Debian base image the service's Dockerfile starts from, unless it is there, as
/// `gongfang prepare` does.
async fn base_image(service: &Path) -> anyhow::Result<()> {
    let dockerfile = std::fs::read_to_string(service.join("Dockerfile"))?;
    let from = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("FROM "))
        .map(str::trim)
        .context("the Dockerfile has no FROM line")?;
    let image = gongfang::prepare::known_base_image(from)
        .with_context(|| format!("{from} is not a base image prepare makes"))?;
    let _one_at_a_time = BASE_IMAGES.lock().await;
    if Command::new("docker").args(["image", "inspect", &image.tag]).output()?.status.success() {
        return Ok(());
    }
    let engine = Engine::connect(Backend::Docker)?;
    engine.build_base_image(&image).await.with_context(|| format!("make the base image {from}"))?;
    Ok(())
}

/// The images and containers one test made, removed when it ends however it ends.
struct Lab {
    name: &'static str,
    images: Vec<String>,
    containers: Vec<String>,
}

/// A running copy of the service.
struct Running {
    id: String,
    addr: SocketAddr,
}

impl Running {
    fn target(&self) -> Target {
        Target::from_addr(self.addr)
    }
}

impl Lab {
    fn new(name: &'static str) -> Lab {
        Lab { name, images: Vec::new(), containers: Vec::new() }
    }

    /// Builds the service folder `dir` into an image tagged for this test's `variant`.
    fn build(&mut self, variant: &str, dir: &Path) -> anyhow::Result<String> {
        let tag = format!("gongfang-pack-test/{}:{variant}", self.name);
        run("docker", &["build", "--quiet", "--label", LABEL, "-t", &tag, &dir.display().to_string()])?;
        self.images.push(tag.clone());
        Ok(tag)
    }

    /// Starts `image` hardened as the platform starts a team's service (read-only root, a
    /// small `/tmp`, no capabilities, an unprivileged user, memory, CPU and process limits),
    /// with its data on a volume of its own, and waits until its port answers.
    fn start(&mut self, image: &str) -> anyhow::Result<Running> {
        let data = format!("type=volume,dst=/var/lib/{},volume-label={LABEL}", self.name);
        let hardened = "--read-only --tmpfs /tmp:rw,noexec,nosuid,size=16m --user 65534:65534 --cap-drop ALL \
                        --security-opt no-new-privileges --memory 256m --cpus 0.5 --pids-limit 128";
        let mut args = vec!["run", "-d", "--label", LABEL];
        args.extend(hardened.split_whitespace());
        args.extend(["--mount", &data, image]);
        let id = run("docker", &args)?;
        self.containers.push(id.clone());
        let ip: IpAddr = run("docker", &["inspect", "--format", "{{.NetworkSettings.IPAddress}}", &id])?
            .parse()
            .context("the container's address")?;
        let addr = SocketAddr::new(ip, PORT);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
            if Instant::now() > deadline {
                bail!("{image} does not listen on {addr} after 30 s:\n{}", self.logs(&id));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(Running { id, addr })
    }

    fn logs(&self, id: &str) -> String {
        Command::new("docker")
            .args(["logs", "--tail", "40", id])
            .output()
            .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
            .unwrap_or_default()
    }

    /// The memory the container uses now, as `docker stats` counts it (without the page cache).
    fn memory(&self, running: &Running) -> anyhow::Result<String> {
        let usage = run("docker", &["stats", "--no-stream", "--format", "{{.MemUsage}}", &running.id])?;
        Ok(usage.split('/').next().unwrap_or_default().trim().to_owned())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for id in &self.containers {
            let _ = Command::new("docker").args(["rm", "-f", "-v", id]).output();
        }
        for tag in &self.images {
            let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
        }
    }
}

fn codec() -> FlagCodec {
    FlagCodec::for_drill("GONGFANG", b"pack-test-secret-not-for-a-drill", "pack-test", DrillId::from_bytes([7; 16]))
}

fn ctx(tick: u32, action: &str) -> ActionCtx {
    ActionCtx {
        team: TeamId(TEAM),
        tick: Tick(tick),
        seed: codec().derive_seed(format!("{TEAM}:{tick}:{action}").as_bytes()),
    }
}

/// A flag planted in one store at one tick.
struct Planted {
    tick: u32,
    store: u8,
    flag: String,
    flag_id: String,
    state: Vec<u8>,
}

/// Fails unless `outcome` is `ok`, showing what the checker said and the service's log.
fn expect_ok(lab: &Lab, running: &Running, outcome: &ActionOutcome) -> anyhow::Result<()> {
    ensure!(
        outcome.verdict == Verdict::Ok,
        "{} at {} was {:?}: {:?}\nprivate log: {:#?}\nservice log:\n{}",
        outcome.action,
        running.addr,
        outcome.verdict,
        outcome.public_message,
        outcome.private_log,
        lab.logs(&running.id)
    );
    Ok(())
}

/// Plays ticks `ticks` back to back: plants a flag in every store, reads back every flag
/// still alive and checks the service; every action must be `ok`. Returns what it planted.
async fn play_ticks(
    lab: &Lab,
    running: &Running,
    checker: &Checker,
    stores: u8,
    ticks: std::ops::RangeInclusive<u32>,
) -> anyhow::Result<Vec<Planted>> {
    let target = running.target();
    let mut planted: Vec<Planted> = Vec::new();
    let mut took = Vec::new();
    for tick in ticks {
        let started = Instant::now();
        for store in 0..stores {
            let flag = codec().mint(FlagInfo {
                tick: Tick(tick),
                team: TeamId(TEAM),
                service: ServiceId(1),
                store: StoreIdx(store),
            });
            let put = checker.put(&target, &ctx(tick, &format!("put:{store}")), StoreIdx(store), &flag).await;
            expect_ok(lab, running, &put)?;
            let flag_id = put.flag_id.clone().context("put returns a flag id")?;
            let state = put.state.clone().context("put returns a state")?;
            planted.push(Planted { tick, store, flag, flag_id, state });
        }
        for alive in planted.iter().filter(|p| p.tick + FLAG_LIFETIME > tick) {
            let ctx = ctx(tick, &format!("get:{}:{}", alive.store, alive.tick));
            let get = checker.get(&target, &ctx, StoreIdx(alive.store), &alive.flag, &alive.state).await;
            expect_ok(lab, running, &get)?;
        }
        expect_ok(lab, running, &checker.check(&target, &ctx(tick, "check")).await)?;
        took.push(started.elapsed());
    }
    took.sort();
    eprintln!(
        "pack: {}: a tick's actions, one after another, took {:?} (median) to {:?} (slowest)",
        lab.name,
        took[took.len() / 2],
        took[took.len() - 1]
    );
    Ok(planted)
}

/// The flags the checker's exploit captures from `store`, aimed at every flag id planted there.
async fn checker_exploit(
    lab: &Lab,
    running: &Running,
    checker: &Checker,
    planted: &[Planted],
    store: u8,
) -> anyhow::Result<Vec<String>> {
    let mut captured = Vec::new();
    for p in planted.iter().filter(|p| p.store == store).rev().take(3) {
        let ctx = ctx(p.tick, &format!("exploit:{store}"));
        let outcome = checker.exploit(&running.target(), &ctx, StoreIdx(store), &p.flag_id).await;
        expect_ok(lab, running, &outcome)?;
        captured.extend(outcome.flags);
    }
    Ok(captured)
}

/// Runs `exploit/VULNERABILITY.py` against the service with the flag ids of the three newest
/// flags of `store`; the flags it printed.
fn exploit_script(
    challenge: &Path,
    vulnerability: &str,
    running: &Running,
    planted: &[Planted],
    store: u8,
) -> anyhow::Result<Vec<String>> {
    let script = challenge.join("exploit").join(format!("{vulnerability}.py"));
    let ids: Vec<&str> =
        planted.iter().filter(|p| p.store == store).rev().take(3).map(|p| p.flag_id.as_str()).collect();
    let out = Command::new("python3")
        .arg(&script)
        .arg(running.addr.ip().to_string())
        .arg(PORT.to_string())
        .args(&ids)
        .output()
        .with_context(|| format!("run {}", script.display()))?;
    ensure!(out.status.success(), "{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?.lines().map(str::to_owned).collect())
}

/// The three newest flags planted in `store`: what an exploit aimed at their ids must find.
fn newest(planted: &[Planted], store: u8) -> Vec<&str> {
    planted.iter().filter(|p| p.store == store).rev().take(3).map(|p| p.flag.as_str()).collect()
}

/// Copies `service` into `into` and applies `patches` there one after another.
fn patched_copy(service: &Path, into: &Path, patches: &[PathBuf]) -> anyhow::Result<()> {
    run("cp", &["-a", &format!("{}/.", service.display()), &into.display().to_string()])?;
    for patch in patches {
        let applied = Command::new("patch")
            .args(["-p1", "--forward", "--batch", "-i"])
            .arg(patch)
            .current_dir(into)
            .output()
            .context("run patch")?;
        ensure!(
            applied.status.success(),
            "{} does not apply: {}",
            patch.display(),
            String::from_utf8_lossy(&applied.stdout)
        );
    }
    Ok(())
}

async fn play(challenge: &Challenge) -> anyhow::Result<()> {
    if !docker_ready()? {
        return Ok(());
    }
    let dir = repo().join("challenges").join(challenge.name);
    let service = dir.join("service");
    let patch = |vulnerability: &str| dir.join("patch").join(format!("{vulnerability}.patch"));
    base_image(&service).await?;

    let sandbox = Sandbox::new(SandboxConfig { max_concurrent_actions: 4, ..SandboxConfig::default() })?;
    let checker = sandbox.load(challenge.checker)?;
    let info = checker.info().await?;
    ensure!(info.service == challenge.name && info.has_exploit, "the checker says {info:?}");
    let stores = info.flag_stores;
    ensure!(stores >= 2, "{} has {stores} flag store(s); the pack asks for two or more", challenge.name);

    // The patches apply one by one, and all of them together, to the vanilla service.
    let scratch = tempfile::tempdir()?;
    let all: Vec<PathBuf> = challenge.vulnerabilities.iter().map(|v| patch(v.name)).collect();
    let together = scratch.path().join("all");
    std::fs::create_dir(&together)?;
    patched_copy(&service, &together, &all)?;

    let mut lab = Lab::new(challenge.name);
    let vanilla = lab.build("vanilla", &service)?;
    let running = lab.start(&vanilla)?;
    let planted = play_ticks(&lab, &running, &checker, stores, 1..=TICKS).await?;
    let memory = lab.memory(&running)?;
    eprintln!("pack: {} uses {memory} after {TICKS} ticks", challenge.name);

    // Every store falls to the checker's exploit, and each vulnerability to its script.
    for store in 0..stores {
        let captured = checker_exploit(&lab, &running, &checker, &planted, store).await?;
        for flag in newest(&planted, store) {
            ensure!(captured.iter().any(|c| c == flag), "the exploit of store {store} missed {flag}: {captured:?}");
        }
    }
    for Vulnerability { name, store, .. } in challenge.vulnerabilities {
        let printed = exploit_script(&dir, name, &running, &planted, *store)?;
        for flag in newest(&planted, *store) {
            ensure!(printed.iter().any(|c| c == flag), "{name}.py missed {flag} of store {store}: {printed:?}");
        }
    }

    let out = tokio::process::Command::new(gongfang_binary()?)
        .args(["checker", "test", challenge.checker, "--target", &running.addr.to_string(), "--rounds", "2"])
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "gongfang checker test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Each patch on its own: the checker stays `ok`, and its vulnerability yields nothing.
    for Vulnerability { name, store, checker: checker_uses_it } in challenge.vulnerabilities {
        let copy = scratch.path().join(name);
        std::fs::create_dir(&copy)?;
        patched_copy(&service, &copy, &[patch(name)])?;
        let image = lab.build(name, &copy)?;
        let running = lab.start(&image)?;
        let planted = play_ticks(&lab, &running, &checker, stores, 1..=PATCHED_TICKS).await?;
        if *checker_uses_it {
            let captured = checker_exploit(&lab, &running, &checker, &planted, *store).await?;
            ensure!(captured.is_empty(), "with {name}.patch the exploit of store {store} still captures {captured:?}");
        }
        let printed = exploit_script(&dir, name, &running, &planted, *store)?;
        ensure!(printed.is_empty(), "with {name}.patch, {name}.py still prints {printed:?}");
    }
    Ok(())
}
