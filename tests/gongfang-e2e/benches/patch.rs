//! Time from a submitted patch to its verdict for the demo service (the Open Data Portal), on
//! real Docker: the pipeline `gongfang up` runs, here in-process, takes the published fix
//! through its isolated build and three staged rounds of put, get and check to `deployed`, a
//! rollback to version 0 to `deployed`, and a patch that breaks listing datasets to `refused`.
//! Beside it, in the same run, the isolated build of the same patched folder alone.
//!
//! Run with `cargo bench -p gongfang-e2e --bench patch` (root and Docker; without Docker it says
//! so and exits). It runs a drill of its own, `bench-patch` on 10.87.N.0/24, and removes it at
//! the end, also after a failure.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use gongfang::checker_runner::SandboxRunner;
use gongfang::patches::{Fixed, Pipeline, SourceLimits, SourceTree};
use gongfang::prepare::{self, Toolchain};
use gongfang::scenario_file;
use gongfang_core::patch::{NewPatch, PatchKind, PatchStatus};
use gongfang_core::scenario::{ImageSource, Ipv4Net, PatchRules};
use gongfang_core::{FlagCodec, ServiceId, TeamId};
use gongfang_docker::{Backend, BuildLimits, Engine, Orchestrator, Settings};
use gongfang_sandbox::{ActionLimits, Sandbox, SandboxConfig};
use gongfang_store::Store;
use gongfang_test_programs::components;
use gongfang_test_support::TestDb;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};
use tokio::runtime::Runtime;
use tokio::sync::{broadcast, watch};

const DRILL: &str = "bench-patch";
const ROUNDS: u32 = 3;
/// The longest a patch should take to its verdict.
const TARGET: Duration = Duration::from_secs(60);
/// Past this, a patch without a verdict fails the benchmark.
const DEADLINE: Duration = Duration::from_secs(600);
/// Every patch is team 1's, of the only service.
const TEAM: TeamId = TeamId(1);
const SERVICE: ServiceId = ServiceId(1);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository folder")
}

fn app_py() -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(repo().join("challenges/opendata/service/app.py"))?)
}

/// Two departments whose Open Data Portal takes submitted patches. The engine does not run, so
/// ticks only have to outlast the benchmark (the builder's 60 s do).
fn scenario_file(dir: &Path) -> anyhow::Result<PathBuf> {
    let portal = service("opendata")
        .build_from(&repo().join("challenges/opendata/service"))
        .checker(components::OPENDATA_CHECKER)
        .flag_stores(2)
        .limits(0.5, "256MiB")
        .submitted_patches("/var/lib/opendata", &["run.sh", "patch-live.sh"]);
    let drill = ScenarioBuilder::new(DRILL)
        .team(team(1, "ddb").network("10.87.1.0/24"))
        .team(team(2, "crd").network("10.87.2.0/24"))
        .service(portal);
    let path = dir.join("scenario.toml");
    std::fs::write(&path, drill.toml())?;
    Ok(path)
}

/// `diff` (of app.py) with a last hunk adding a comment that names `stamp` after app.py's last
/// line. Every patch a team sends differs, so the engine's build cache never holds its layers:
/// a stamp per patch keeps that true here.
fn stamped(diff: &str, stamp: &str) -> anyhow::Result<String> {
    let app = app_py()?;
    let (n, last) = (app.lines().count(), app.lines().last().context("app.py is empty")?);
    Ok(format!("{diff}@@ -{n},1 +{n},2 @@\n-{last}\n+{last}\n+# {stamp}\n"))
}

/// A patch that breaks listing datasets: the route moves, and the checker's `get` fails.
fn broken() -> anyhow::Result<String> {
    let route = r#"            ("GET", "/api/datasets"): self.api_list_datasets,"#;
    let line = app_py()?.lines().position(|l| l == route).context("the datasets route is in app.py")? + 1;
    let moved = route.replace("/api/datasets", "/api/dataset-list");
    Ok(format!("--- a/app.py\n+++ b/app.py\n@@ -{line},1 +{line},1 @@\n-{route}\n+{moved}\n"))
}

/// Removes the drill's containers, networks, volumes, images and firewall rules when dropped,
/// also when the benchmark panics.
struct Teardown<'a> {
    runtime: &'a Runtime,
    orchestrator: Orchestrator<Engine>,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.runtime.block_on(self.orchestrator.down(DRILL)) {
            eprintln!("cannot remove drill {DRILL}: {e}");
        }
    }
}

/// Seconds per patch of each kind, in the order measured.
#[derive(Default)]
struct Times {
    fix: Vec<f64>,
    rollback: Vec<f64>,
    broken: Vec<f64>,
    build: Vec<f64>,
}

/// Sends a patch of team 1's service and waits for its verdict, which must be `want`; the
/// seconds from sending to the verdict.
async fn verdict(store: &Store, rules: &PatchRules, patch: NewPatch, want: PatchStatus) -> anyhow::Result<f64> {
    let started = Instant::now();
    let kind = patch.kind;
    let id = match store.submit_patch(&patch, rules, Utc::now()).await? {
        Ok(record) => record.id,
        Err(refused) => anyhow::bail!("the queue took no {kind:?} patch: {refused:?}"),
    };
    loop {
        let record = store.patch(id).await?.context("the patch is stored")?;
        if record.status.is_decided() {
            let seconds = started.elapsed().as_secs_f64();
            assert_eq!(record.status, want, "{kind:?} patch {id}: {}", record.message);
            return Ok(seconds);
        }
        anyhow::ensure!(started.elapsed() < DEADLINE, "{kind:?} patch {id} still {:?}", record.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn bench(orchestrator: Orchestrator<Engine>) -> anyhow::Result<Times> {
    // A run stopped half-way leaves its drill behind.
    orchestrator.down(DRILL).await?;
    let engine = orchestrator.runtime();
    let dir = tempfile::tempdir()?;
    let path = scenario_file(dir.path())?;
    println!("preparing the checker and images, starting drill {DRILL} ...");
    let scenario = Arc::new(prepare::prepare(&path, &Toolchain::from_env(), engine, &mut std::io::sink()).await?);
    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    store.sync_scenario(&scenario).await?;
    orchestrator.up(&scenario).await?;

    // Wired as a running drill wires it (drill.rs), without the engine.
    let limits = ActionLimits { timeout: scenario.drill.checker_timeout, ..ActionLimits::default() };
    let sandbox = Sandbox::new(SandboxConfig { limits, ..SandboxConfig::default() })?;
    let secret = scenario_file::resolve_secret(&scenario.drill)?;
    let drill_id = store.drill_id().await?;
    let staging = format!("{DRILL}/staging");
    let (stop, stopped) = watch::channel(false);
    let pipeline = Pipeline {
        scenario: scenario.clone(),
        store: store.clone(),
        orchestrator: orchestrator.clone(),
        plan: orchestrator.plan(&scenario)?,
        runner: SandboxRunner::load(&sandbox, &scenario)?,
        codec: FlagCodec::for_drill(&scenario.drill.flag_prefix, secret.expose(), &staging, drill_id),
        events: broadcast::channel(16).0,
    };
    pipeline.prepare().await?;
    let task = tokio::spawn(pipeline.run(stopped));

    let service = &scenario.services[0];
    let ImageSource::Build(folder) = &service.source else { anyhow::bail!("the demo service has a build folder") };
    let rules = &scenario.patches;
    let fix = std::fs::read_to_string(repo().join("challenges/opendata/patch/fix.patch"))?;
    let broken = broken()?;
    let run = Utc::now().timestamp_millis();
    let patch =
        |kind, body: String, target| NewPatch { team: TEAM, service: SERVICE, kind, body: body.into_bytes(), target };
    let mut times = Times::default();
    for round in 1..=ROUNDS {
        // The alternative: the same patched folder, built alone with the pipeline's limits.
        let tree = SourceTree::from_dir(folder)?.apply_diff(
            stamped(&fix, &format!("bench {run}: build alone, round {round}"))?.as_bytes(),
            &Fixed::new(service.fixed.clone()),
            SourceLimits { max_bytes: rules.max_source, max_files: rules.max_files },
        )?;
        let labels = HashMap::from([(gongfang_docker::labels::DRILL.to_owned(), DRILL.to_owned())]);
        let limits =
            BuildLimits { memory_bytes: rules.build_memory, cpus: rules.build_cpus, timeout: rules.build_timeout };
        let tag = format!("gongfang/{DRILL}-opendata:build-alone-{round}");
        let started = Instant::now();
        gongfang_docker::image::build_isolated(engine, &tag, tree.to_tar(), labels, limits).await?;
        let build = started.elapsed().as_secs_f64();

        let body = stamped(&fix, &format!("bench {run}: fix, round {round}"))?;
        let fixed = verdict(&store, rules, patch(PatchKind::Diff, body, None), PatchStatus::Deployed).await?;
        let back = patch(PatchKind::Rollback, String::new(), Some(0));
        let rolled_back = verdict(&store, rules, back, PatchStatus::Deployed).await?;
        let body = stamped(&broken, &format!("bench {run}: broken, round {round}"))?;
        let refused = verdict(&store, rules, patch(PatchKind::Diff, body, None), PatchStatus::Refused).await?;
        println!(
            "round {round}: build alone {build:.2} s; fix deployed {fixed:.2} s, rolled back {rolled_back:.2} s, broken refused {refused:.2} s"
        );
        times.build.push(build);
        times.fix.push(fixed);
        times.rollback.push(rolled_back);
        times.broken.push(refused);
    }
    let _ = stop.send(true);
    task.await?;
    Ok(times)
}

/// Median and maximum.
fn summary(times: &[f64]) -> (f64, f64) {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    ((sorted[(n - 1) / 2] + sorted[n / 2]) / 2.0, sorted[n - 1])
}

fn main() -> anyhow::Result<()> {
    let docker = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output();
    if !docker.is_ok_and(|o| o.status.success()) {
        println!("skipping the patch benchmark: no Docker engine answers");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // Staging networks of the drill's own: those of the default pool are other drills' too.
    let staging_pool = Ipv4Net { addr: Ipv4Addr::new(10, 87, 250, 0), prefix: 24 };
    let settings = Settings { staging_pool, ..Settings::default() };
    let orchestrator = runtime.block_on(async { Engine::connect(Backend::Docker) })?;
    let orchestrator = Orchestrator::new(orchestrator, settings);
    let _teardown = Teardown { runtime: &runtime, orchestrator: orchestrator.clone() };
    let times = runtime.block_on(bench(orchestrator))?;

    let (build, _) = summary(&times.build);
    println!();
    println!(
        "submitted patch to verdict, demo service, {ROUNDS} rounds (median, max; against the build alone and the target)"
    );
    let rows = [
        ("build alone (same patched folder)", &times.build),
        ("fix -> deployed", &times.fix),
        ("rollback to v0 -> deployed", &times.rollback),
        ("broken -> refused", &times.broken),
    ];
    for (what, times) in rows {
        let (median, max) = summary(times);
        println!(
            "  {what:<36} {median:>7.2} s {max:>7.2} s   {:>5.2}x the build   {:>5.2}x the {} s target",
            median / build,
            median / TARGET.as_secs_f64(),
            TARGET.as_secs()
        );
    }
    Ok(())
}
