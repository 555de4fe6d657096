//! A running drill: the engine, both flag submission servers and the scoreboard web, wired
//! over one store and one event channel, until a shutdown signal. `gongfang up` and
//! `gongfang serve` are thin shells around [`run`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use gongfang_core::clock::Phase;
use gongfang_core::clock::{DrillClock, Schedule};
use gongfang_core::event::GameEvent;
use gongfang_core::scenario::{Ipv4Net, Scenario};
use gongfang_core::{FlagCodec, Secret, ServiceId, Target, TeamConnection, TeamId, Tick};
use gongfang_docker::{Orchestrator, Plan};
use gongfang_engine::{Engine, EngineConfig, SystemClock};
use gongfang_sandbox::{ActionLimits, Sandbox, SandboxConfig};
use gongfang_store::lease::{self, LeaseClaim};
use gongfang_store::{Store, StoreError};
use gongfang_submission::SubmissionState;
use gongfang_web::{ServiceEndpoint, WebSettings, WebState};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

use crate::checker_runner::{CheckerRuntime, SandboxRunner};
use crate::limits::ConnectionCaps;
use crate::patches::Pipeline;

/// Where each defending team's services answer: (team, service) -> address and ports.
pub type Addresses = BTreeMap<(TeamId, ServiceId), Target>;

/// What a running drill needs beyond the scenario.
pub struct DrillConfig {
    pub scenario: Arc<Scenario>,
    /// The scenario's secret, resolved.
    pub secret: Secret<Vec<u8>>,
    pub store: Store,
    pub addresses: Addresses,
    /// The scoreboard web and `PUT /flags`.
    pub web: TcpListener,
    /// The FAUST-protocol flag submission.
    pub submit_tcp: TcpListener,
    /// Where compiled checkers are cached between runs.
    pub checker_cache: Option<PathBuf>,
    /// Where judges read the teams' service logs from.
    pub logs: Arc<dyn gongfang_reports::LogSource>,
    /// Teams' WireGuard access, when the scenario has `[vpn]` and its gateway runs.
    pub vpn: Option<VpnAccess>,
    /// The container engine that builds, stages and deploys submitted patches, when the drill
    /// runs its containers and a service takes patches.
    pub patch_builds: Option<PatchBuilds>,
    /// The certificate the web port is served with over HTTPS; plain HTTP without one.
    pub tls: Option<gongfang_web::Tls>,
    /// Whether browser session cookies say `Secure`: the port speaks HTTPS, itself or behind
    /// a proxy.
    pub secure_cookies: bool,
    /// Where judges' evidence images are served from, when on a host name of their own.
    pub evidence_origin: Option<gongfang_reports::EvidenceOrigin>,
    /// Restarts and resets teams' services for the organisers (the container engine, when
    /// the drill runs containers).
    pub service_control: Arc<dyn gongfang_reports::ServiceControl>,
    /// Issues teams' fresh VPN configs from their portal (the gateway, when one runs).
    pub vpn_configs: Arc<dyn gongfang_reports::VpnAccess>,
    /// Adds teams to the running drill from the console (its scenario file grown, the drill
    /// started again), when the drill runs from a file it may grow.
    pub team_admission: Arc<dyn gongfang_reports::TeamAdmission>,
}

/// What submitted patches are built and deployed with.
#[derive(Debug)]
pub struct PatchBuilds {
    pub orchestrator: Orchestrator<gongfang_docker::Engine>,
    /// The drill's plan as the scenario makes it (every team on the organisers' images).
    pub plan: Plan,
}

/// What the drill does for teams connected over WireGuard.
pub struct VpnAccess {
    /// The scoreboard (with `PUT /flags`) and the TCP submission on the gateway's tunnel
    /// address, where teams' peers reach them; `None` where the main listener already takes
    /// every address of the host.
    pub web: Option<TcpListener>,
    pub submit_tcp: Option<TcpListener>,
    /// Each team's block of tunnel addresses: in address mode a submission from one is that
    /// team's.
    pub blocks: Vec<(Ipv4Net, TeamId)>,
    /// Each team's connection as the gateway last showed it, for the scoreboard.
    pub connections: watch::Receiver<Vec<TeamConnection>>,
    /// Set to whether attacks are open: only while the drill runs, not before its start,
    /// during a pause or after its end.
    pub attacks_open: watch::Sender<bool>,
}

impl std::fmt::Debug for VpnAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VpnAccess")
            .field("web", &self.web.as_ref().and_then(|l| l.local_addr().ok()))
            .field("submit_tcp", &self.submit_tcp.as_ref().and_then(|l| l.local_addr().ok()))
            .field("blocks", &self.blocks.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DrillConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("DrillConfig")
            .field("drill", &self.scenario.drill.slug)
            .field("web", &self.web.local_addr().ok())
            .field("submit_tcp", &self.submit_tcp.local_addr().ok())
            .finish_non_exhaustive()
    }
}

/// The moment tick 0 starts: the scenario's start, else the one stored when this drill first
/// ran, else now (stored, so a restart continues the same drill).
pub async fn start_time(scenario: &Scenario, store: &Store) -> anyhow::Result<DateTime<Utc>> {
    if let Some(start) = scenario.drill.start {
        return Ok(start);
    }
    let mut state = store.drill_state().await?;
    if let Some(started) = state.started_at {
        return Ok(started);
    }
    let now = Utc::now();
    state.started_at = Some(now);
    store.set_drill_state(state, now).await?;
    Ok(now)
}

/// Runs the drill until it ends or `shutdown` resolves, then stops every part cleanly: the
/// engine between actions, the submission servers after answering what they accepted.
pub async fn run(cfg: DrillConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let DrillConfig {
        scenario,
        secret,
        store,
        addresses,
        web,
        submit_tcp,
        checker_cache,
        logs,
        vpn,
        patch_builds,
        tls,
        secure_cookies,
        evidence_origin,
        service_control,
        vpn_configs,
        team_admission,
    } = cfg;
    let start = start_time(&scenario, &store).await?;
    // Exactly one engine runs a drill: a second process on the same database stops here.
    let claim =
        LeaseClaim { holder: hex::encode(rand::random::<[u8; 16]>()), host: host_name(), pid: std::process::id() };
    match store.acquire_engine_lease(&claim, Utc::now(), lease::STALE_AFTER).await {
        // The engine before this one on this machine died without giving the lease up (a crash,
        // a kill): its process is gone, so nothing needs to wait for the lease to go stale.
        Err(StoreError::EngineRunning { holder: Some(h) }) if h.host == claim.host && !process_alive(h.pid) => {
            warn!(pid = h.pid, "the engine before this one died holding the lease; taking it over");
            store.acquire_engine_lease(&claim, Utc::now(), Duration::ZERO).await
        }
        other => other,
    }
    .context("cannot start the engine")?;
    // Renewed from now on: loading the checkers may take longer than the lease stays fresh.
    // Given up when this function returns, also early with an error.
    let (lease_stop, lease_stopped) = watch::channel(false);
    let lease_stop = GiveUpOnDrop(lease_stop);
    let mut lease_task = tokio::spawn(keep_lease(store.clone(), claim.holder.clone(), lease_stopped));
    let (events, _) = broadcast::channel::<GameEvent>(4096);

    let limits = ActionLimits { timeout: scenario.drill.checker_timeout, ..ActionLimits::default() };
    let sandbox = Sandbox::new(SandboxConfig { cache_dir: checker_cache, limits, ..SandboxConfig::default() })?;
    let checker_runtime = CheckerRuntime::new().context("cannot start the checkers' runtime")?;
    let runner =
        SandboxRunner::load(&sandbox, &scenario).context("cannot load the checkers")?.on(checker_runtime.handle());

    // One key for the engine (minting) and the submission servers (checking): derived from the
    // secret and this drill, so a rehearsal on another database never mints these flags.
    let drill_id = store.drill_id().await?;
    let codec = FlagCodec::for_drill(&scenario.drill.flag_prefix, secret.expose(), &scenario.drill.slug, drill_id);
    let mut engine_cfg = EngineConfig::new(scenario.clone(), codec.clone(), start);
    // Every service whose checker has a reference exploit has it replayed each tick.
    engine_cfg.replay = runner.with_exploit().await;
    let targets = {
        let addresses = addresses.clone();
        move |team: TeamId, service: ServiceId| addresses.get(&(team, service)).cloned()
    };
    // Staging plants flags under a key of its own: never a valid submission.
    let staging_codec = FlagCodec::for_drill(
        &scenario.drill.flag_prefix,
        secret.expose(),
        &format!("{}/staging", scenario.drill.slug),
        drill_id,
    );
    let patch_runner = runner.clone();
    let engine = Engine::resume(engine_cfg, SystemClock, runner, store.clone(), targets, events.clone()).await?;

    // The game clock both servers read: the engine's tick, and the organisers' pause. Until
    // the engine runs, it holds the tick the drill resumes at, so the submission servers load
    // the captures of flags that may still be resubmitted.
    let initial = DrillClock { tick: Some(engine.next_tick()), ..DrillClock::unscheduled(scenario.drill.tick) };
    let (clock_tx, clock_rx) = watch::channel(initial);
    let schedule = Schedule { start, tick_length: scenario.drill.tick, duration: scenario.drill.duration };
    let (stop_tx, stop_rx) = watch::channel(false);
    let (over_tx, over_rx) = watch::channel(false);
    let bridge = tokio::spawn(bridge_clock(
        engine.current_tick(),
        events.subscribe(),
        store.clone(),
        (clock_tx, schedule),
        over_rx,
        stop_rx.clone(),
    ));

    // Every connection is a file descriptor: the servers' caps fit under the process's limit,
    // shared by the loopback port and the gateway's where both listen.
    let listeners = 1 + usize::from(vpn.as_ref().is_some_and(|v| v.web.is_some() || v.submit_tcp.is_some()));
    let caps = ConnectionCaps::for_this_process().shared_by(listeners);
    info!(http = caps.http, websockets = caps.websockets, tcp = caps.tcp, "connection caps");
    let sink = Arc::new(store.clone());
    let (submission, writer) = SubmissionState::start(
        &scenario,
        codec,
        sink,
        clock_rx.clone(),
        events.clone(),
        gongfang_submission::Settings { max_connections: caps.tcp, ..gongfang_submission::Settings::default() },
    )
    .await?;
    // One failure back-off for every server: wrong credentials over TCP, PUT /flags and the
    // reports API count together per source address.
    let backoff = Arc::new(gongfang_core::throttle::Backoff::default());
    let mut submission = submission.with_backoff(backoff.clone());
    let (vpn_web, vpn_submit, connections) = match vpn {
        Some(VpnAccess { web, submit_tcp, blocks, connections, attacks_open }) => {
            submission = submission.with_vpn_addresses(blocks);
            tokio::spawn(open_attacks_while_running(clock_rx.clone(), attacks_open));
            (web, submit_tcp, Some(connections))
        }
        None => (None, None, None),
    };

    let endpoints = addresses
        .iter()
        .map(|(&(team, service), t)| ServiceEndpoint {
            team,
            service,
            host: t.address.to_string(),
            ports: t.ports.clone(),
        })
        .collect();
    let mut web_state =
        WebState::new(scenario.clone(), store.clone(), events.clone(), clock_rx, endpoints, web_settings(caps));
    if let Some(connections) = connections {
        web_state = web_state.with_connections(connections);
    }
    if let Some(tls) = tls {
        web_state = web_state.with_tls(tls);
    }
    // `/metrics` also says what the flag submission answered and how its commits went.
    web_state = web_state.with_more_metrics(Arc::new(gongfang_submission::metrics::render));
    let reports_settings =
        gongfang_reports::Settings { secure_cookies, evidence_origin, ..gongfang_reports::Settings::default() };
    let mut reports = gongfang_reports::ReportsState::new(store.clone(), scenario.clone(), events.clone())
        .with_settings(reports_settings)
        .with_service_control(service_control)
        .with_vpn_access(vpn_configs)
        .with_team_admission(team_admission)
        .with_logs(logs)
        .with_backoff(backoff);
    let mut pipeline = None;
    if let Some(PatchBuilds { orchestrator, plan }) = patch_builds {
        let patches = Pipeline {
            scenario: scenario.clone(),
            store: store.clone(),
            orchestrator,
            plan,
            runner: patch_runner,
            codec: staging_codec,
            events: events.clone(),
        };
        match patches.prepare().await {
            Ok(()) => {
                reports = reports.with_patch_builds();
                pipeline = Some(tokio::spawn(patches.run(stop_rx.clone())));
            }
            // Teams are told the drill builds no patches, rather than queue them for nothing.
            Err(e) => warn!(error = %e, "submitted patches are off: cannot store the services' build folders"),
        }
    }
    let extra = gongfang_submission::http::router(submission.clone()).merge(gongfang_reports::router(reports));
    let mut servers = tokio::task::JoinSet::new();
    // The same servers on the gateway's tunnel address, for the teams' peers.
    for listener in std::iter::once(web).chain(vpn_web) {
        let serve = gongfang_web::serve_with(listener, web_state.clone(), extra.clone(), wait_for(stop_rx.clone()));
        servers.spawn(async move { serve.await.map_err(anyhow::Error::from) });
    }
    for listener in std::iter::once(submit_tcp).chain(vpn_submit) {
        let serve = gongfang_submission::tcp::serve(listener, submission.clone(), wait_for(stop_rx.clone()));
        servers.spawn(async move { serve.await.map_err(anyhow::Error::from) });
    }

    let mut engine_task = tokio::spawn(engine.run(wait_for(stop_rx.clone())));
    tokio::pin!(shutdown);
    let mut lost_lease = None;
    let finished = tokio::select! {
        () = &mut shutdown => None,
        result = &mut engine_task => Some(result),
        // Another engine took the lease (this process stalled past it): stop, never score twice.
        lost = &mut lease_task => {
            lost_lease = Some(match lost {
                Ok(Err(e)) => e,
                Ok(Ok(())) => anyhow::anyhow!("the engine's lease ended before the engine"),
                Err(join) => anyhow::anyhow!("the engine's lease task failed: {join}"),
            });
            None
        }
    };
    if let Some(Ok(Ok(()))) = &finished {
        // The drill is over: flags are refused from now on, the scoreboard stays up.
        let _ = over_tx.send(true);
        info!("the drill is over; the scoreboard stays up until Ctrl-C");
        shutdown.await;
    }
    // An engine that failed stops everything: its error is returned below.
    info!("shutting down");
    let _ = stop_tx.send(true);
    let engine_result = match finished {
        Some(result) => result,
        None => engine_task.await,
    };
    submission.close();
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
    while servers.join_next().await.is_some() {}
    let _ = bridge.await;
    if let Some(pipeline) = pipeline {
        let _ = pipeline.await;
    }
    checker_runtime.shutdown().await;
    if let Some(lost) = lost_lease {
        return Err(lost);
    }
    drop(lease_stop);
    let _ = lease_task.await;
    match engine_result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
        Err(join) => Err(anyhow::anyhow!("the engine task failed: {join}")),
    }
}

/// The scoreboard's settings with connection caps that fit the open-file limit.
fn web_settings(caps: ConnectionCaps) -> WebSettings {
    WebSettings { max_http_connections: caps.http, max_connections: caps.websockets, ..WebSettings::default() }
}

/// Keeps `open` true exactly while the drill runs: the attack paths of the teams' WireGuard
/// access follow the phase, closed before the start, during a pause and after the end. Ends
/// when the clock's sender does.
async fn open_attacks_while_running(mut clock: watch::Receiver<DrillClock>, open: watch::Sender<bool>) {
    loop {
        let running = clock.borrow_and_update().phase == Phase::Running;
        open.send_if_modified(|o| std::mem::replace(o, running) != running);
        if clock.changed().await.is_err() {
            return;
        }
    }
}

/// Resolves once `stop` turns true.
/// Tells [`keep_lease`] to give the lease up when dropped.
struct GiveUpOnDrop(watch::Sender<bool>);

impl Drop for GiveUpOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// Renews the engine's lease until told to stop, then gives it up. An error when another
/// engine took it over: this process stalled past [`lease::STALE_AFTER`] and must stop.
async fn keep_lease(store: Store, holder: String, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut every = tokio::time::interval(lease::RENEW_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopped = wait_for(stop);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            () = &mut stopped => break,
            _ = every.tick() => match store.renew_engine_lease(&holder, Utc::now()).await {
                Ok(true) => {}
                Ok(false) => anyhow::bail!("another engine took over this drill's lease; this one stops"),
                // The database may be busy a moment; the lease stays fresh for several renewals.
                Err(e) => warn!(error = %e, "could not renew the engine's lease"),
            },
        }
    }
    if let Err(e) = store.release_engine_lease(&holder).await {
        warn!(error = %e, "could not give up the engine's lease; the next engine waits until it is stale");
    }
    Ok(())
}

/// Whether a process with this id runs on this machine.
fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// This machine's name, for the message a second engine gets.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".to_owned())
}

async fn wait_for(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Turns the engine's running tick, its pause announcements and the organisers' extensions
/// of the end into the [`DrillClock`] the submission servers and the scoreboard read. The
/// engine says each pause on the event feed; the clock follows what it does.
async fn bridge_clock(
    mut current: watch::Receiver<Option<Tick>>,
    mut events: broadcast::Receiver<GameEvent>,
    store: Store,
    (clock, mut schedule): (watch::Sender<DrillClock>, Schedule),
    mut over: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut engine_running = true;
    let mut paused = false;
    // The schedule comes with the scenario's duration; organisers' extensions count from it.
    let planned = schedule.duration;
    match store.drill_extension().await {
        Ok(extended) => schedule.duration = planned.saturating_add(extended),
        Err(e) => warn!(error = %e, "cannot read the drill's extension; showing the scenario's end"),
    }
    loop {
        let next = schedule.clock(*current.borrow(), paused, *over.borrow());
        clock.send_if_modified(|c| {
            let changed = *c != next;
            *c = next;
            changed
        });
        let is_over = *over.borrow();
        let mut resync = false;
        tokio::select! {
            event = events.recv() => match event {
                Ok(GameEvent::Paused) => paused = true,
                Ok(GameEvent::Resumed) => paused = false,
                Ok(GameEvent::Extended { total_secs }) => {
                    schedule.duration = planned.saturating_add(Duration::from_secs(total_secs));
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => resync = true,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            // The engine drops its end when the drill is over: stop listening, keep going.
            changed = current.changed(), if engine_running => engine_running = changed.is_ok(),
            changed = over.changed(), if !is_over => if changed.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        if resync {
            // Missed events: what the engine acts on is the stored flag and extension.
            match store.drill_state().await {
                Ok(state) => paused = state.paused,
                Err(e) => warn!(error = %e, "cannot read the drill state; keeping the last one"),
            }
            if let Ok(extended) = store.drill_extension().await {
                schedule.duration = planned.saturating_add(extended);
            }
        }
    }
}
