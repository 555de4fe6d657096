//! `gongfang up [SCENARIO]` and `gongfang serve SCENARIO`: run a drill on this machine.
//!
//! `up` does everything: with no scenario it runs the demo drill (`challenges/opendata`),
//! building its checker and base image when they are missing; it builds the scenario's
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
use gongfang_core::scenario::Scenario;
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
        None if containers => prepare_demo().await?,
        None => bail!("`gongfang serve` needs a scenario file (`gongfang up` without one runs the demo)"),
    };
    let scenario = Arc::new(scenario_file::load(&path)?);
    let secret = scenario_file::resolve_secret(&scenario.drill.secret)?;
    let slug = scenario.drill.slug.clone();
    let url = args.database_url.clone().unwrap_or_else(|| format!("sqlite://gongfang-{slug}.db?mode=rwc"));
    let store = Store::connect_and_migrate(&url).await?;
    store.sync_scenario(&scenario).await?;

    let settings = Settings::default();
    let plan = gongfang_docker::plan(&scenario, &settings)?;
    // Judges read the teams' service logs from Docker when there is one.
    let logs: Arc<dyn gongfang_reports::LogSource> = match Engine::connect(Backend::Docker) {
        Ok(engine) => Arc::new(DockerLogs::new(&engine, &slug)),
        Err(e) if !containers => {
            tracing::warn!(error = %e, "no Docker engine: judges will see no service logs");
            Arc::new(gongfang_reports::NoLogs)
        }
        Err(e) => return Err(e.into()),
    };
    if containers {
        let orchestrator = Orchestrator::new(Engine::connect(Backend::Docker)?, settings);
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

/// Finds the demo scenario and makes what it needs that a fresh clone lacks: the checker
/// component and the service's base image.
async fn prepare_demo() -> anyhow::Result<PathBuf> {
    let root = repository_root().context(
        "`gongfang up` without a scenario runs the demo drill from the repository: \
         run it inside the repository's folder, or name a scenario file",
    )?;
    let scenario = root.join(DEMO_SCENARIO);
    let checker = root.join("sandbox/guests/target/wasm32-wasip2/release/opendata_checker.wasm");
    if !checker.is_file() {
        println!("building the demo's checker (wasm32-wasip2) ...");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(root.join("sandbox/guests/Cargo.toml"))
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .context("cannot run cargo to build the demo's checker")?;
        if !status.success() {
            bail!(
                "building the demo's checker failed ({status}); is the target installed? `rustup target add wasm32-wasip2`"
            );
        }
    }
    let engine = Engine::connect(Backend::Docker)?;
    if engine.image_id(DEMO_BASE_IMAGE).await?.is_none() {
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
    Ok(scenario)
}

/// The repository folder: the current folder or one above it that holds the demo scenario.
fn repository_root() -> Option<PathBuf> {
    let here = std::env::current_dir().ok()?;
    here.ancestors().find(|dir| dir.join(DEMO_SCENARIO).is_file()).map(Path::to_path_buf)
}
