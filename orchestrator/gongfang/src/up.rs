//! `gongfang up [SCENARIO]` and `gongfang serve SCENARIO`: run a drill on this machine.
//!
//! `up` does everything: with no scenario it runs the demo drill (`challenges/demo`: the whole
//! challenge pack for three teams); it first runs `gongfang prepare` (checkers, base images,
//! service images; see [`prepare`]), starts the teams' containers, then the engine, the
//! submission servers and the scoreboard,
//! prints where everything is and writes the same as JSON (`--summary`, for scripts and tests;
//! `docs/running-a-drill.md` describes it). `serve` runs the same platform against services
//! someone else started (the addresses are the same pure function of the scenario).
//! Ctrl-C stops the platform cleanly; the containers keep running (and keep their flags), so
//! running the command again resumes the same drill. `gongfang down` removes them. When the
//! organisers add teams from the console, the scenario file grows and the drill starts again
//! in the same process with it, its ports kept bound.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::Utc;
use gongfang::drill::{self, Addresses, DrillConfig};
use gongfang::judge_logs::DockerLogs;
use gongfang::prepare::{self, Toolchain};
use gongfang::scenario_file;
use gongfang::service_control::ContainerControl;
use gongfang_core::Target;
use gongfang_core::patch::{DeployCause, Deployment};
use gongfang_core::scenario::{PatchMode, Scenario};
use gongfang_core::wire::TEAM_TOKEN_HEADER;
use gongfang_docker::{Backend, Engine, Orchestrator, Plan, Settings};
use gongfang_store::redact_url;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::migrate::DatabaseArgs;
use crate::summary;

/// The demo drill, relative to the repository's root.
const DEMO_SCENARIO: &str = "challenges/demo/scenario.toml";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario file. `up` without one runs the demo drill from the repository.
    pub scenario: Option<PathBuf>,
    /// The drill's database; running the command again on it resumes the same drill.
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Where the scoreboard and `PUT /flags` listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub web: SocketAddr,
    /// Serve the scoreboard's port (the page, every API, `PUT /flags`, the websocket) over
    /// HTTPS with this certificate chain, in PEM; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert, in PEM (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mark browser session cookies `Secure` without --tls-cert: the drill is served to
    /// browsers through a reverse proxy that speaks HTTPS (on by itself with --tls-cert).
    #[arg(long)]
    pub secure_cookies: bool,
    /// Serve evidence images to judges from this origin of their own (a second host name of
    /// this server, such as https://evidence.drill.example), through short-lived signed links.
    #[arg(long, value_name = "URL", value_parser = gongfang_reports::EvidenceOrigin::parse)]
    pub evidence_origin: Option<gongfang_reports::EvidenceOrigin>,
    /// Where the FAUST-protocol flag submission listens.
    #[arg(long, default_value = "127.0.0.1:31337")]
    pub submit: SocketAddr,
    /// Where compiled checkers are cached (default: `.gongfang-cache` in the current folder).
    #[arg(long)]
    pub checker_cache: Option<PathBuf>,
    /// Where to write what is running, as JSON (addresses, ports, teams' services, the tokens
    /// file), once everything listens; removed when the command stops.
    #[arg(long, value_name = "FILE", default_value = "gongfang-up.json")]
    pub summary: PathBuf,
    /// Where newly issued team tokens are kept, as JSON readable by the owner only.
    #[arg(long, value_name = "FILE", default_value = "gongfang-tokens.json")]
    pub tokens_file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct PrepareArgs {
    /// The scenario file; without one, the demo drill from the repository.
    pub scenario: Option<PathBuf>,
}

/// Runs `prepare`.
pub fn prepare(args: PrepareArgs) -> anyhow::Result<ExitCode> {
    let path = match args.scenario {
        Some(path) => path,
        None => demo_scenario()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let engine = Engine::connect(Backend::Docker)?;
        prepare::prepare(&path, &Toolchain::from_env(), &engine, &mut std::io::stdout()).await?;
        println!("ready: `gongfang up {}` runs it", path.display());
        Ok(ExitCode::SUCCESS)
    })
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
    // Before anything starts: a certificate that cannot be used stops the command here.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(gongfang_web::Tls::from_pem_files(cert, key)?),
        _ => None,
    };
    // Bound once: while the drill starts again with teams added from the console, connections
    // wait in the ports' queues instead of being refused.
    let web = bind(args.web).with_context(|| format!("cannot listen on {} for the scoreboard", args.web))?;
    let submit = bind(args.submit).with_context(|| format!("cannot listen on {} for flag submission", args.submit))?;
    let mut stops = Stops { interrupted: None, reload: Arc::new(Notify::new()) };
    loop {
        let listeners = (tokio_listener(&web)?, tokio_listener(&submit)?);
        match run_once(&args, containers, &path, tls.clone(), listeners, &mut stops).await? {
            Stopped::Interrupted => return Ok(ExitCode::SUCCESS),
            Stopped::Reload => {
                println!("\nteams were added to {}: starting the drill again with them\n", path.display())
            }
        }
    }
}

/// A listening socket for the servers, which each start of the drill takes a handle of.
fn bind(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn tokio_listener(listener: &std::net::TcpListener) -> anyhow::Result<TcpListener> {
    Ok(TcpListener::from_std(listener.try_clone()?)?)
}

/// What stops a run of the drill: Ctrl-C (caught once the platform first starts), or teams
/// added from the console.
struct Stops {
    interrupted: Option<Arc<Notify>>,
    reload: Arc<Notify>,
}

/// Why a run of the drill stopped.
enum Stopped {
    /// Ctrl-C, or the drill is over: the command ends.
    Interrupted,
    /// Teams were added: the drill starts again with them.
    Reload,
}

impl Stops {
    /// Ctrl-C from now on, caught instead of killing the process.
    fn interrupted(&mut self) -> anyhow::Result<Arc<Notify>> {
        if let Some(interrupted) = &self.interrupted {
            return Ok(interrupted.clone());
        }
        let interrupted = Arc::new(Notify::new());
        let mut signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let told = interrupted.clone();
        tokio::spawn(async move {
            while signal.recv().await.is_some() {
                told.notify_one();
            }
        });
        self.interrupted = Some(interrupted.clone());
        Ok(interrupted)
    }
}

/// Starts the drill of the scenario at `path` and runs it until Ctrl-C, its end, or teams
/// added from the console.
async fn run_once(
    args: &Args,
    containers: bool,
    path: &Path,
    tls: Option<gongfang_web::Tls>,
    (web, submit): (TcpListener, TcpListener),
    stops: &mut Stops,
) -> anyhow::Result<Stopped> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    // One engine connection: preparing images, the containers (`up`) and the judges' view of
    // their logs.
    let docker = match Engine::connect(Backend::Docker) {
        Ok(engine) => Some(engine),
        Err(e) if !containers => {
            tracing::warn!(error = %e, "no Docker engine: judges will see no service logs");
            None
        }
        Err(e) => return Err(e.into()),
    };
    let scenario = match &docker {
        Some(engine) if containers => {
            let scenario = prepare::prepare(path, &Toolchain::from_env(), engine, &mut std::io::stdout()).await?;
            println!();
            Arc::new(scenario)
        }
        _ => Arc::new(scenario_file::load(path)?),
    };
    let secret = scenario_file::resolve_secret(&scenario.drill)?;
    let slug = scenario.drill.slug.clone();
    let url = args.db.database_url.clone();
    let store = args.db.open().await?;
    println!("database {}", redact_url(&url));
    store.sync_scenario(&scenario).await?;

    let settings = Settings::default();
    let mut plan = gongfang_docker::plan(&scenario, &settings)?;
    // Judges read the teams' service logs from Docker when there is one.
    let logs: Arc<dyn gongfang_reports::LogSource> = match &docker {
        Some(engine) => Arc::new(DockerLogs::new(engine, &slug)),
        None => Arc::new(gongfang_reports::NoLogs),
    };
    // Defenders' shells open the containers through the same engine.
    let shell_engine = docker.clone();
    let mut patch_builds = None;
    let mut service_control: Arc<dyn gongfang_reports::ServiceControl> = Arc::new(gongfang_reports::NoServiceControl);
    if let (true, Some(engine)) = (containers, docker) {
        // Organisers restart and reset teams' services on the scenario's own plan.
        let control = Orchestrator::new(engine.clone(), settings.clone());
        service_control = Arc::new(ContainerControl::new(control, scenario.clone()));
        let orchestrator = Orchestrator::new(engine, settings);
        println!("starting the teams' containers ...");
        // Teams' services run the versions their patches deployed; the pipeline works from the
        // scenario's own plan.
        let scenario_plan = plan.clone();
        run_deployed_versions(&scenario, &store, orchestrator.runtime(), &mut plan).await?;
        let images = orchestrator.images(&plan).await?;
        let report = orchestrator.apply(&plan, &images).await?;
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
        if scenario.services.iter().any(|s| s.patch_mode == PatchMode::Submit) {
            patch_builds = Some(drill::PatchBuilds { orchestrator, plan: scenario_plan });
        }
    }
    let addresses = addresses(&scenario, &plan);
    // Ctrl-C is caught from here on, so one pressed while the platform starts stops it (and
    // removes the gateway) instead of killing the process. Then teams' WireGuard access, while
    // the platform runs.
    let interrupted = stops.interrupted()?;
    let gateway = crate::vpn::start_gateway(&scenario, &store).await?;

    let web_addr = web.local_addr()?;
    let submit_addr = submit.local_addr()?;
    let (vpn, peer_rules, shells) = match &gateway {
        Some(_) => {
            let (access, attacks) = crate::vpn::access(&scenario, &store, web_addr, submit_addr).await?;
            let ports = vec![web_addr.port(), submit_addr.port()];
            let rules = crate::vpn::guard_gateway(&scenario, &addresses, ports, attacks, &store).await?;
            let shells = match (&shell_engine, &scenario.vpn) {
                (Some(engine), Some(vpn_rules)) => {
                    let entries = gongfang::shell::bind_entries(&scenario, vpn_rules, &access.blocks, &plan).await?;
                    let host_key = gongfang::shell::host_key(&store.vpn_gateway_key().await?);
                    Some(gongfang::shell::serve(entries, host_key, store.clone(), engine.clone()))
                }
                _ => None,
            };
            (Some(access), Some(rules), shells)
        }
        None => (None, None, None),
    };
    // Teams download fresh VPN configs from their portal while the gateway runs.
    let vpn_configs: Arc<dyn gongfang_reports::VpnAccess> = match &gateway {
        Some(_) => Arc::new(crate::vpn::GatewayConfigs::new(scenario.clone(), store.clone())),
        None => Arc::new(gongfang_reports::NoVpnAccess),
    };
    // Organisers add teams from the console to a drill run from a file of theirs; the demo's
    // scenario is the repository's own.
    let team_admission: Arc<dyn gongfang_reports::TeamAdmission> = match &args.scenario {
        Some(file) => Arc::new(crate::team_import::LiveImport::new(file.clone(), stops.reload.clone())),
        None => Arc::new(gongfang_reports::NoTeamAdmission),
    };
    // Who is behind each anonymised connection, for judges and organisers.
    let translations = match &gateway {
        Some(_) => crate::vpn_log::translations_log(&scenario, store.clone())
            .await
            .context("starting the WireGuard gateway's translation log")?,
        None => None,
    };

    println!();
    println!("drill {} ({})", scenario.drill.name.en, slug);
    println!("scoreboard:        {scheme}://{web_addr}/");
    println!("flag submission:   nc {} {}   (FAUST protocol)", submit_addr.ip(), submit_addr.port());
    println!("                   PUT {scheme}://{web_addr}/flags   (header {TEAM_TOKEN_HEADER}, JSON list of flags)");
    println!("attack info:       {scheme}://{web_addr}/api/attack-info");
    if let (Some(gateway), Some(vpn)) = (&gateway, &scenario.vpn) {
        println!(
            "WireGuard gateway: {} ({}), UDP {}; inside the tunnel at {}",
            gateway.interface(),
            gateway.backend(),
            vpn.endpoint(),
            vpn.gateway
        );
        println!(
            "                   teams reach the scoreboard at {scheme}://{}:{} and submit at {} {} through it",
            vpn.gateway,
            web_addr.port(),
            vpn.gateway,
            submit_addr.port()
        );
        println!("                   `gongfang vpn config TEAM --out DIR --scenario FILE` writes a team's configs");
        if shells.is_some() {
            println!(
                "                   defenders' shells: ssh -i TEAM-1.ssh -p PORT SERVICE@{} (each team's PORT below)",
                vpn.gateway
            );
        }
    }
    println!();
    let mut issued_now = BTreeMap::new();
    for team in &scenario.teams {
        // A token stored before tokens were keyed does not work any more: issue a new one.
        let holds_token = store.team_by_slug(&team.slug).await?.is_some_and(|t| t.has_token);
        let token = if holds_token {
            "(issued before; `gongfang team token` issues a new one)".to_owned()
        } else {
            let issued = store.issue_token(&team.slug).await?;
            store.append_audit(Utc::now(), "gongfang up", "team.token", &json!({ "team": team.slug })).await?;
            issued_now.insert(team.slug.clone(), issued.token.expose().to_owned());
            issued.token.expose().to_owned()
        };
        println!("team {} {:<12} token {token}", team.id, team.slug);
        if let (Some(_), Some(vpn), Some(position)) =
            (&shells, &scenario.vpn, scenario.teams.iter().position(|t| t.slug == team.slug))
            && let Some(port) = vpn.shell_port_of(position)
            && team.role.defends()
        {
            println!("    shell entry  {}:{port}", vpn.gateway);
        }
        for service in &scenario.services {
            if let Some(t) = addresses.get(&(team.id, service.id)) {
                let ports: Vec<String> = t.ports.iter().map(u16::to_string).collect();
                println!("    {:<12} {}:{}", service.slug, t.address, ports.join(","));
            }
        }
    }
    let tokens_file = summary::write_tokens(&args.tokens_file, &slug, &issued_now)?;
    let running = summary::Summary {
        scenario: &scenario,
        database: &redact_url(&url),
        web: web_addr,
        scheme,
        submit: submit_addr,
        tokens_file: &tokens_file,
        addresses: &addresses,
        plan: containers.then_some(&plan),
    };
    let summary_file = summary::SummaryFile::write(&args.summary, &running.to_json())?;
    println!();
    println!("summary (JSON):    {}", summary_file.path().display());
    println!("team tokens:       {}", tokens_file.display());
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
        vpn,
        patch_builds,
        secure_cookies: args.secure_cookies || tls.is_some(),
        evidence_origin: args.evidence_origin.clone(),
        service_control,
        vpn_configs,
        team_admission,
        tls,
    };
    let reloading = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let shutdown = {
        let (reload, reloading) = (stops.reload.clone(), reloading.clone());
        async move {
            tokio::select! {
                () = interrupted.notified() => {}
                () = reload.notified() => reloading.store(true, std::sync::atomic::Ordering::SeqCst),
            }
        }
    };
    let result = drill::run(cfg, shutdown).await;
    drop(shells);
    if let Some(log) = translations {
        log.abort();
    }
    if let Some(rules) = peer_rules {
        rules.remove().await;
    }
    if let Some(gateway) = gateway {
        crate::vpn::stop_gateway(gateway).await;
    }
    drop(summary_file);
    result?;
    store.close().await?;
    if reloading.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(Stopped::Reload);
    }
    println!("stopped; run the same command again to resume the drill");
    Ok(Stopped::Interrupted)
}

/// Puts the version each team's service last had deployed into the plan. A version whose
/// image is gone (removed by `down`, or by hand) is left out: that team runs the scenario's
/// own until it patches again, and the console says so.
async fn run_deployed_versions(
    scenario: &Scenario,
    store: &gongfang_store::Store,
    engine: &Engine,
    plan: &mut Plan,
) -> anyhow::Result<()> {
    use gongfang_docker::Runtime;
    for deployment in store.current_deployments().await?.into_iter().filter(|d| d.version > 0) {
        let (Some(team), Some(service)) = (scenario.team(deployment.team), scenario.service(deployment.service)) else {
            continue;
        };
        let tag = gongfang::patches::image_tag(&scenario.drill.slug, &service.slug, &team.slug, deployment.version);
        if engine.image_id(&tag).await?.is_some() {
            plan.use_image(&team.slug, &service.slug, &tag)?;
        } else {
            println!(
                "team {} runs {} as the scenario has it: the image of its version {} is gone",
                team.slug, service.slug, deployment.version
            );
            // What runs is version 0 now: its next diff applies to that, and it downloads that.
            let restart =
                Deployment { version: 0, patch: None, cause: DeployCause::Restart, at: Utc::now(), ..deployment };
            store.record_deployment(&restart, "gongfang up").await?;
        }
    }
    Ok(())
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

/// The repository folder: the current folder or one above it that holds the demo scenario.
fn repository_root() -> Option<PathBuf> {
    let here = std::env::current_dir().ok()?;
    here.ancestors().find(|dir| dir.join(DEMO_SCENARIO).is_file()).map(Path::to_path_buf)
}
