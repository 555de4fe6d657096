//! `gongfang up [SCENARIO]` and `gongfang serve SCENARIO`: run a drill on this machine.
//!
//! `up` does everything: with no scenario it runs the demo drill (`challenges/opendata`); for
//! a scenario built on this repository's material it first builds the checkers and the demo's
//! base image when they are missing; it builds the scenario's
//! images, starts the teams' containers, then the engine, the submission servers and the
//! scoreboard, and prints where everything is. `serve` runs the same platform against
//! services someone else started (the addresses are the same pure function of the scenario).
//! Ctrl-C stops the platform cleanly; the containers keep running (and keep their flags), so
//! running the command again resumes the same drill. `gongfang down` removes them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::Utc;
use gongfang::drill::{self, Addresses, DrillConfig};
use gongfang::judge_logs::DockerLogs;
use gongfang::scenario_file;
use gongfang_core::scenario::{AssumeEverythingExists, ImageSource, Scenario};
use gongfang_docker::{Backend, Engine, Orchestrator, Plan, Runtime, Settings};
use gongfang_engine::Target;
use gongfang_store::Store;
use serde_json::json;
use tokio::net::TcpListener;

/// The demo drill, relative to the repository's root.
const DEMO_SCENARIO: &str = "challenges/opendata/scenario.toml";
/// The base image the demo's service is built on, and how to make it.
const DEMO_BASE_IMAGE: &str = "gongfang/python:bookworm";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario file. `up` without one runs the demo drill from the repository.
    pub scenario: Option<PathBuf>,
    /// Database URL; by default a SQLite file named after the drill in the current folder,
    /// so running the command again resumes the same drill.
    #[arg(long, env = "GONGFANG_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where the scoreboard and `PUT /flags` listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub web: SocketAddr,
    /// Where the FAUST-protocol flag submission listens.
    #[arg(long, default_value = "127.0.0.1:31337")]
    pub submit: SocketAddr,
    /// Where compiled checkers are cached (default: `.gongfang-cache` in the current folder).
    #[arg(long)]
    pub checker_cache: Option<PathBuf>,
}

/// Runs `up` (`containers`) or `serve`.
pub fn run(args: Args, containers: bool) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_async(args, containers))
}

async fn run_async(args: Args, containers: bool) -> anyhow::Result<ExitCode> {
    let path = match &args.scenario {
        Some(path) => path.clone(),
        None if containers => demo_scenario()?,
        None => bail!("`gongfang serve` needs a scenario file (`gongfang up` without one runs the demo)"),
    };
    if containers {
        prepare_repository_material(&path).await?;
    }
    let scenario = Arc::new(scenario_file::load(&path)?);
    let secret = scenario_file::resolve_secret(&scenario.drill.secret)?;
    let slug = scenario.drill.slug.clone();
    let url = args.database_url.clone().unwrap_or_else(|| format!("sqlite://gongfang-{slug}.db?mode=rwc"));
    let store = Store::connect_and_migrate(&url).await?;
    store.sync_scenario(&scenario).await?;

    let settings = Settings::default();
    let plan = gongfang_docker::plan(&scenario, &settings)?;
    // Judges read the teams' service logs from Docker when there is one.
    // One engine connection: the containers (`up`) and the judges' view of their logs.
    let docker = match Engine::connect(Backend::Docker) {
        Ok(engine) => Some(engine),
        Err(e) if !containers => {
            tracing::warn!(error = %e, "no Docker engine: judges will see no service logs");
            None
        }
        Err(e) => return Err(e.into()),
    };
    let logs: Arc<dyn gongfang_reports::LogSource> = match &docker {
        Some(engine) => Arc::new(DockerLogs::new(engine, &slug)),
        None => Arc::new(gongfang_reports::NoLogs),
    };
    if let (true, Some(engine)) = (containers, docker) {
        let orchestrator = Orchestrator::new(engine, settings);
        println!("building images and starting the teams' containers ...");
        let report = orchestrator.up(&scenario).await?;
        println!(
            "containers: {} created, {} recreated, {} kept; networks: {} created",
            report.created.len(),
            report.recreated.len(),
            report.adopted.len(),
            report.networks_created.len()
        );
        store
            .append_audit(
                Utc::now(),
                "gongfang up",
                "drill.up",
                &json!({ "created": report.created.len(), "recreated": report.recreated.len() }),
            )
            .await?;
    }
    let addresses = addresses(&scenario, &plan);

    let web = TcpListener::bind(args.web)
        .await
        .with_context(|| format!("cannot listen on {} for the scoreboard", args.web))?;
    let submit = TcpListener::bind(args.submit)
        .await
        .with_context(|| format!("cannot listen on {} for flag submission", args.submit))?;
    let web_addr = web.local_addr()?;
    let submit_addr = submit.local_addr()?;

    println!();
    println!("drill {} ({})", scenario.drill.name.en, slug);
    println!("scoreboard:        http://{web_addr}/");
    println!("flag submission:   nc {} {}   (FAUST protocol)", submit_addr.ip(), submit_addr.port());
    println!("                   PUT http://{web_addr}/flags   (header X-Team-Token, JSON list of flags)");
    println!("attack info:       http://{web_addr}/api/attack-info");
    println!();
    for team in &scenario.teams {
        let token = if store.token_hash(&team.slug).await?.is_some() {
            "(issued before; `gongfang team token` issues a new one)".to_owned()
        } else {
            let issued = store.issue_token(&team.slug).await?;
            store.append_audit(Utc::now(), "gongfang up", "team.token", &json!({ "team": team.slug })).await?;
            issued.token.expose().to_owned()
        };
        println!("team {} {:<12} token {token}", team.id, team.slug);
        for service in &scenario.services {
            if let Some(t) = addresses.get(&(team.id, service.id)) {
                let ports: Vec<String> = t.ports.iter().map(u16::to_string).collect();
                println!("    {:<12} {}:{}", service.slug, t.address, ports.join(","));
            }
        }
    }
    println!();
    println!(
        "Ctrl-C stops the platform; the containers keep running. `gongfang down --scenario {}` removes them.",
        path.display()
    );

    let cache = args.checker_cache.clone().unwrap_or_else(|| PathBuf::from(".gongfang-cache"));
    let cfg = DrillConfig {
        scenario,
        secret,
        store: store.clone(),
        addresses,
        web,
        submit_tcp: submit,
        checker_cache: Some(cache),
        logs,
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    drill::run(cfg, shutdown).await?;
    store.close().await?;
    println!("stopped; run the same command again to resume the drill");
    Ok(ExitCode::SUCCESS)
}

/// Where each defending team's services answer, from the orchestrator's plan.
fn addresses(scenario: &Scenario, plan: &Plan) -> Addresses {
    let mut out = Addresses::new();
    for instance in plan.instances.iter().filter(|i| i.component == "main") {
        let team = scenario.teams.iter().find(|t| t.slug == instance.team);
        let service = scenario.services.iter().find(|s| s.slug == instance.service);
        if let (Some(team), Some(service), Some(game)) = (team, service, &instance.game) {
            out.insert((team.id, service.id), Target { address: game.address.into(), ports: instance.ports.clone() });
        }
    }
    out
}

/// The demo scenario of the repository this command runs in.
fn demo_scenario() -> anyhow::Result<PathBuf> {
    let root = repository_root().context(
        "`gongfang up` without a scenario runs the demo drill from the repository: \
         run it inside the repository's folder, or name a scenario file",
    )?;
    Ok(root.join(DEMO_SCENARIO))
}

/// Makes what a scenario built on this repository's material needs and a fresh clone lacks:
/// checker components built from `sandbox/guests`, and the base image the demo service's
/// Dockerfile starts from. Anything else a scenario lacks is reported by its validation.
async fn prepare_repository_material(path: &Path) -> anyhow::Result<()> {
    let Ok(src) = std::fs::read_to_string(path) else { return Ok(()) };
    // Validation proper comes later and reports every problem; here only the paths matter.
    let Ok(scenario) = gongfang_core::scenario::parse(&src, path, &AssumeEverythingExists) else { return Ok(()) };
    let Some(root) = path
        .canonicalize()
        .ok()
        .and_then(|p| p.ancestors().find(|dir| dir.join("sandbox/guests/Cargo.toml").is_file()).map(Path::to_path_buf))
    else {
        return Ok(());
    };
    let guest_built = |c: &Path| c.to_string_lossy().contains("sandbox/guests/target/wasm32-wasip2/release/");
    if scenario.services.iter().any(|s| guest_built(&s.checker) && !s.checker.is_file()) {
        println!("building the checkers in sandbox/guests (wasm32-wasip2) ...");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(root.join("sandbox/guests/Cargo.toml"))
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .context("cannot run cargo to build the checkers")?;
        if !status.success() {
            bail!(
                "building the checkers failed ({status}); is the target installed? `rustup target add wasm32-wasip2`"
            );
        }
    }
    let needs_base = scenario.services.iter().any(|s| match &s.source {
        ImageSource::Build(dir) => std::fs::read_to_string(dir.join("Dockerfile"))
            .is_ok_and(|d| d.lines().any(|l| l.trim() == format!("FROM {DEMO_BASE_IMAGE}"))),
        ImageSource::Image(_) => false,
    });
    if needs_base && Engine::connect(Backend::Docker)?.image_id(DEMO_BASE_IMAGE).await?.is_none() {
        println!("building the base image {DEMO_BASE_IMAGE} with debootstrap (about a minute) ...");
        let status = Command::new("bash")
            .arg(root.join("infra/base-image/build.sh"))
            .args(["--tag", DEMO_BASE_IMAGE, "--include=python3"])
            .status()
            .context("cannot run infra/base-image/build.sh")?;
        if !status.success() {
            bail!("building {DEMO_BASE_IMAGE} failed ({status}); it needs root and the debootstrap package");
        }
    }
    Ok(())
}

/// The repository folder: the current folder or one above it that holds the demo scenario.
fn repository_root() -> Option<PathBuf> {
    let here = std::env::current_dir().ok()?;
    here.ancestors().find(|dir| dir.join(DEMO_SCENARIO).is_file()).map(Path::to_path_buf)
}
