//! The way a submitted patch takes to a team's live service: queued, applied to the source the
//! team runs now, built in isolation, staged on the team's staging network where the checker
//! plays several rounds of `put`, `get` and `check` and tries the reference exploit, deployed
//! when every round passed, and rolled back by itself when the live checker finds the new
//! version answering wrongly right after.
//!
//! One task takes patches from the store's queue, at most `[patches] max_builds` at once and
//! one per team; the queue lives in the database, so a restart picks up where it stopped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gongfang_core::event::GameEvent;
use gongfang_core::flag::FlagInfo;
use gongfang_core::patch::{DeployCause, Deployment, PatchKind, PatchRecord, PatchStatus};
use gongfang_core::scenario::{ImageSource, PatchMode, Scenario, Service, Team};
use gongfang_core::{Action, ActionCtx, Exposure, FlagCodec, ServiceId, StoreIdx, Target, TeamId, Tick, Verdict};
use gongfang_docker::{BuildLimits, Engine, Orchestrator, Plan};
use gongfang_engine::{ActionRequest, CheckerRunner, FlagArgs};
use gongfang_store::{PatchOutcome, Store};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::source::{Fixed, PatchError, SourceLimits, SourceTree};
use crate::checker_runner::SandboxRunner;

/// How often the queue is looked at when nothing else wakes the task.
const POLL: Duration = Duration::from_millis(500);
/// Who deployments and automatic rollbacks are audited under.
const ACTOR: &str = "gongfang patches";

/// The image tag of a version of a team's service.
pub fn image_tag(drill: &str, service: &str, team: &str, version: u32) -> String {
    format!("gongfang/{drill}-{service}:{team}-v{version}")
}

/// What the pipeline works with.
#[derive(Debug)]
pub struct Pipeline {
    pub scenario: Arc<Scenario>,
    pub store: Store,
    pub orchestrator: Orchestrator<Engine>,
    /// The drill's plan as the scenario makes it: every team on the organisers' images.
    pub plan: Plan,
    pub runner: SandboxRunner,
    /// Mints the flags staging plants: under a key of its own, so they are never valid
    /// submissions.
    pub codec: FlagCodec,
    pub events: broadcast::Sender<GameEvent>,
}

/// A deployment the live checker has not judged yet.
#[derive(Debug, Clone)]
struct Watch {
    team: TeamId,
    service: ServiceId,
    patch: i64,
    deployed_at: DateTime<Utc>,
    previous: u32,
    /// Ticks after the deployment judged so far that said neither `ok` nor `mumble`.
    undecided: u32,
}

/// How many ticks after a deployment the live checker may leave undecided (the service down
/// while it starts, a checker error) before the deployment stops being watched.
const WATCHED_TICKS: u32 = 3;

impl Pipeline {
    /// Works through the queue until `stop`: at most `max_builds` patches at once, one per
    /// team, the next taken from the team served longest ago (so one team's queue cannot hold
    /// the slots), and each closed tick judges the deployments waiting for it. Call
    /// [`Pipeline::prepare`] first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mut events = this.events.subscribe();
        let mut jobs: JoinSet<(TeamId, Done)> = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, (TeamId, i64)> = HashMap::new();
        let mut served: HashMap<TeamId, std::time::Instant> = HashMap::new();
        let mut watches: Vec<Watch> = Vec::new();
        let max = this.scenario.patches.max_builds as usize;
        loop {
            while running.len() < max {
                let busy: Vec<TeamId> = running.values().map(|(team, _)| *team).collect();
                let heads = match this.store.queue_heads(&busy).await {
                    Ok(heads) => heads,
                    Err(e) => {
                        warn!(error = %e, "cannot read the patch queue");
                        break;
                    }
                };
                let Some(patch) = heads.into_iter().min_by_key(|p| (served.get(&p.team).copied(), p.id)) else { break };
                served.insert(patch.team, std::time::Instant::now());
                let (team, id) = (patch.team, patch.id);
                let this = this.clone();
                let task = jobs.spawn(async move { (patch.team, this.take(patch).await) });
                running.insert(task.id(), (team, id));
            }
            tokio::select! {
                Some(done) = jobs.join_next_with_id() => match done {
                    Ok((task, (team, done))) => {
                        running.remove(&task);
                        if let Done::Changed { service, watch } = done {
                            // Only the newest deployment of a service is watched.
                            watches.retain(|w| (w.team, w.service) != (team, service));
                            watches.extend(watch);
                        }
                    }
                    Err(e) => {
                        // A job that panicked: its patch failed, its team may send again.
                        if let Some((_, patch)) = running.remove(&e.id()) {
                            warn!(patch, error = %e, "a patch job failed");
                            let outcome = PatchOutcome {
                                status: PatchStatus::Failed,
                                message: "the platform failed while taking this patch; the live service is unchanged; send it again".into(),
                                checks: Vec::new(),
                                exploit: None,
                            };
                            this.decide(patch, &outcome).await;
                        }
                    }
                },
                event = events.recv() => match event {
                    Ok(GameEvent::TickClosed { tick }) => {
                        let busy: HashSet<TeamId> = running.values().map(|(team, _)| *team).collect();
                        watches = this.judge_deployments(tick, watches, &busy).await;
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = tokio::time::sleep(POLL) => {}
                () = stopped(&mut stop) => {
                    jobs.shutdown().await;
                    return;
                }
            }
        }
    }

    /// Stores each patchable service's build folder as version 0 (without `.git` and the
    /// checker, which teams must not read) and puts patches a stopped platform left half-way
    /// back in the queue. Until it has succeeded no patch is taken.
    pub async fn prepare(&self) -> anyhow::Result<()> {
        for service in self.patchable() {
            if let ImageSource::Build(dir) = &service.source {
                let mut tree = SourceTree::from_dir(dir)?;
                tree.remove(".git");
                if let Ok(checker) = service.checker.strip_prefix(dir) {
                    tree.remove(&checker.to_string_lossy());
                }
                self.store.put_source(service.id, &tree.to_tar(), true, Utc::now()).await?;
            }
        }
        let requeued = self.store.requeue_unfinished_patches().await?;
        if requeued > 0 {
            info!(requeued, "patches left half-way are queued again");
        }
        Ok(())
    }

    fn patchable(&self) -> impl Iterator<Item = &Service> {
        self.scenario.services.iter().filter(|s| s.patch_mode == PatchMode::Submit)
    }

    /// Takes one patch to its verdict; says whether the live service changed.
    async fn take(&self, patch: PatchRecord) -> Done {
        let (team, service) = match (self.scenario.team(patch.team), self.scenario.service(patch.service)) {
            (Some(t), Some(s)) => (t.clone(), s.clone()),
            _ => {
                let outcome = refusal("the team or the service is no longer in the scenario".into(), Vec::new(), None);
                self.decide(patch.id, &outcome).await;
                return Done::Unchanged;
            }
        };
        let result = match patch.kind {
            PatchKind::Rollback => self.roll_back(&patch, &team, &service).await,
            PatchKind::Diff | PatchKind::Tar => self.build_and_deploy(&patch, &team, &service).await,
        };
        match result {
            Ok((outcome, watch)) => {
                self.decide(patch.id, &outcome).await;
                match outcome.status {
                    PatchStatus::Deployed => Done::Changed { service: service.id, watch },
                    _ => Done::Unchanged,
                }
            }
            Err(e) => {
                warn!(patch = patch.id, team = team.slug, service = service.slug, error = %e, "patch failed");
                let outcome = PatchOutcome {
                    status: PatchStatus::Failed,
                    message: format!(
                        "the platform could not finish with this patch ({e}); the live service is unchanged; send it again"
                    ),
                    checks: Vec::new(),
                    exploit: None,
                };
                self.decide(patch.id, &outcome).await;
                Done::Unchanged
            }
        }
    }

    async fn decide(&self, id: i64, outcome: &PatchOutcome) {
        if let Err(e) = self.store.set_patch_outcome(id, outcome, Utc::now()).await {
            warn!(patch = id, error = %e, "cannot store a patch's verdict");
        }
    }

    async fn progress(&self, id: i64, status: PatchStatus, message: &str) -> anyhow::Result<()> {
        let outcome = PatchOutcome { status, message: message.to_owned(), checks: Vec::new(), exploit: None };
        Ok(self.store.set_patch_outcome(id, &outcome, Utc::now()).await?)
    }

    /// The version a team's service runs now.
    async fn current_version(&self, team: TeamId, service: ServiceId) -> anyhow::Result<u32> {
        Ok(self.store.deployments_of(team, service).await?.last().map_or(0, |d| d.version))
    }

    /// After a deployment that failed half-way (the old container may be gone), runs the version
    /// the store says runs again.
    async fn restore(&self, team: &Team, service: &Service) {
        let restored = async {
            let version = self.current_version(team.id, service.id).await?;
            let image = self.image_of(team, service, version)?;
            self.orchestrator.deploy(&self.plan, &team.slug, &service.slug, &image).await?;
            anyhow::Ok(())
        };
        if let Err(e) = restored.await {
            warn!(team = team.slug, service = service.slug, error = %e, "cannot run the service's version again");
        }
    }

    /// The image of a version: the scenario's own for version 0.
    fn image_of(&self, team: &Team, service: &Service, version: u32) -> anyhow::Result<String> {
        if version == 0 {
            let spec =
                self.plan.instance(&team.slug, &service.slug).ok_or_else(|| anyhow::anyhow!("not in the plan"))?;
            return Ok(spec.image.clone());
        }
        Ok(image_tag(&self.scenario.drill.slug, &service.slug, &team.slug, version))
    }

    async fn roll_back(
        &self,
        patch: &PatchRecord,
        team: &Team,
        service: &Service,
    ) -> anyhow::Result<(PatchOutcome, Option<Watch>)> {
        let image = self.image_of(team, service, patch.version)?;
        if gongfang_docker::Runtime::image_id(self.orchestrator.runtime(), &image).await?.is_none() {
            let message = format!(
                "version {} cannot run again: its image is gone (the drill was taken down since); send its patch again",
                patch.version
            );
            return Ok((refusal(message, Vec::new(), None), None));
        }
        if let Err(e) = self.orchestrator.deploy(&self.plan, &team.slug, &service.slug, &image).await {
            self.restore(team, service).await;
            let message = format!("version {} cannot run again: {e}; the live service is unchanged", patch.version);
            return Ok((refusal(message, Vec::new(), None), None));
        }
        let deployment = Deployment {
            team: team.id,
            service: service.id,
            version: patch.version,
            patch: Some(patch.id),
            cause: DeployCause::Rollback,
            at: Utc::now(),
        };
        self.store.record_deployment(&deployment, &format!("team {}", team.slug)).await?;
        let message = format!("version {} runs again; its data was kept", patch.version);
        Ok((PatchOutcome { status: PatchStatus::Deployed, message, checks: Vec::new(), exploit: None }, None))
    }

    async fn build_and_deploy(
        &self,
        patch: &PatchRecord,
        team: &Team,
        service: &Service,
    ) -> anyhow::Result<(PatchOutcome, Option<Watch>)> {
        let rules = &self.scenario.patches;
        let limits = SourceLimits { max_bytes: rules.max_source, max_files: rules.max_files };
        self.progress(patch.id, PatchStatus::Building, "applying the patch to the source the service runs now").await?;
        let previous = self.current_version(team.id, service.id).await?;
        let Some(sha) = self.store.version_source(team.id, service.id, previous).await? else {
            let message = "the service is not built from a build folder here, so nothing can be patched".to_owned();
            return Ok((refusal(message, Vec::new(), None), None));
        };
        let archive =
            self.store.source(service.id, &sha).await?.ok_or_else(|| anyhow::anyhow!("source {sha} is gone"))?;
        let body =
            self.store.patch_body(patch.id).await?.ok_or_else(|| anyhow::anyhow!("patch {} is gone", patch.id))?;
        let fixed = Fixed::new(self.fixed_of(service));
        let kind = patch.kind;
        // Unpacking and applying is CPU work, bounded but not short: off the async threads.
        let applied = tokio::task::spawn_blocking(move || {
            let current = SourceTree::from_tar(&archive, SourceLimits { max_bytes: u64::MAX, max_files: u32::MAX })?;
            let tree = match kind {
                PatchKind::Diff => current.apply_diff(&body, &fixed, limits),
                _ => current.apply_tar(&body, &fixed, limits),
            }?;
            Ok::<_, PatchError>(tree.to_tar())
        })
        .await?;
        let context = match applied {
            Ok(context) => context,
            Err(e) => return Ok((refusal(refused_because(&e, previous), Vec::new(), None), None)),
        };

        self.progress(patch.id, PatchStatus::Building, "building the patched image (no network)").await?;
        let tag = image_tag(&self.scenario.drill.slug, &service.slug, &team.slug, patch.version);
        let labels = HashMap::from([
            (gongfang_docker::labels::DRILL.to_owned(), self.scenario.drill.slug.clone()),
            (gongfang_docker::labels::TEAM.to_owned(), team.slug.clone()),
            (gongfang_docker::labels::SERVICE.to_owned(), service.slug.clone()),
        ]);
        let build =
            BuildLimits { memory_bytes: rules.build_memory, cpus: rules.build_cpus, timeout: rules.build_timeout };
        let engine = self.orchestrator.runtime();
        match gongfang_docker::image::build_isolated(engine, &tag, context.clone(), labels, build).await {
            Ok(_) => {}
            Err(gongfang_docker::Error::Build { message, .. }) => {
                let message =
                    format!("the patched image did not build; the live service is unchanged:\n{}", message.trim_end());
                return Ok((refusal(message, Vec::new(), None), None));
            }
            Err(gongfang_docker::Error::BuildTimeout { seconds, .. }) => {
                let message = format!(
                    "the build was stopped after {seconds} s (the limit); the live service is unchanged: make the build finish sooner"
                );
                return Ok((refusal(message, Vec::new(), None), None));
            }
            Err(e) => return Err(e.into()),
        }

        self.progress(patch.id, PatchStatus::Staging, "trying the patched service on the team's staging network")
            .await?;
        let staged = self.orchestrator.stage(&self.plan, &team.slug, &service.slug, &tag).await?;
        let trial = self.try_staged(team, service, &staged).await;
        if let Err(e) = self.orchestrator.unstage(&staged).await {
            warn!(error = %e, container = staged.name, "cannot remove a staged instance");
        }
        let Trial { passed, checks, exploit, failure, ours } = trial?;
        if !passed {
            // A refused image is not kept: nothing can run it.
            if let Err(e) = gongfang_docker::image::remove_image(engine, &tag).await {
                warn!(error = %e, tag, "cannot remove a refused patch's image");
            }
            let failure = failure.unwrap_or_default();
            if ours {
                let message = format!(
                    "the platform could not try this patch ({failure}); the live service is unchanged; send it again"
                );
                return Ok((PatchOutcome { status: PatchStatus::Failed, message, checks, exploit }, None));
            }
            let message = format!("refused: {failure}; the live service is unchanged");
            return Ok((refusal(message, checks, exploit), None));
        }

        if let Err(e) = self.orchestrator.deploy(&self.plan, &team.slug, &service.slug, &tag).await {
            self.restore(team, service).await;
            return Err(e.into());
        }
        let at = Utc::now();
        let deployment = Deployment {
            team: team.id,
            service: service.id,
            version: patch.version,
            patch: Some(patch.id),
            cause: DeployCause::Patch,
            at,
        };
        // The folder the service runs now: what the team downloads and its next diff applies to.
        let sha = self.store.put_source(service.id, &context, false, Utc::now()).await?;
        self.store.set_patch_source(patch.id, &sha).await?;
        self.store.record_deployment(&deployment, ACTOR).await?;
        let security = match exploit {
            Some(Exposure::NotExploitable) => "the reference exploit captured nothing from it",
            Some(Exposure::Exploitable) => "the reference exploit still captured a flag from it",
            Some(Exposure::Unknown) => "the reference exploit could not tell",
            None => "the service has no reference exploit",
        };
        let message = format!(
            "accepted and deployed as version {}: {} rounds of put, get and check passed; {security}; the service's data was kept",
            patch.version, self.scenario.patches.rounds
        );
        let watch =
            Watch { team: team.id, service: service.id, patch: patch.id, deployed_at: at, previous, undecided: 0 };
        Ok((PatchOutcome { status: PatchStatus::Deployed, message, checks, exploit }, Some(watch)))
    }

    /// The scenario's fixed files of a service, and its checker when it lies in the build folder.
    fn fixed_of(&self, service: &Service) -> Vec<String> {
        let mut fixed = service.fixed.clone();
        if let ImageSource::Build(dir) = &service.source
            && let Ok(rel) = service.checker.strip_prefix(dir)
        {
            fixed.push(rel.to_string_lossy().into_owned());
        }
        fixed
    }

    /// Waits for the staged instance to answer, then plays the checker's rounds against it and
    /// tries the reference exploit on the flags of the last round.
    async fn try_staged(
        &self,
        team: &Team,
        service: &Service,
        staged: &gongfang_docker::InstanceSpec,
    ) -> anyhow::Result<Trial> {
        let rules = &self.scenario.patches;
        let address =
            staged.game.as_ref().map(|g| g.address).ok_or_else(|| anyhow::anyhow!("staged without an address"))?;
        let target = Target { address: address.into(), ports: service.ports.clone() };
        let port = service.ports[0];
        if !answers(address, port, rules.start_timeout).await {
            let failure =
                format!("the patched service did not answer on port {port} within {} s", rules.start_timeout.as_secs());
            return Ok(Trial { passed: false, checks: Vec::new(), exploit: None, failure: Some(failure), ours: false });
        }
        let mut checks = Vec::new();
        let mut planted: BTreeMap<u8, (String, String)> = BTreeMap::new();
        for round in 0..rules.rounds {
            let ctx =
                ActionCtx { team: team.id, tick: Tick(round), seed: u64::from(round) << 16 ^ u64::from(team.id.0) };
            let mut steps: Vec<(Action, Option<FlagArgs>)> = Vec::new();
            for store in 0..service.flag_stores {
                let flag = self.codec.mint(FlagInfo {
                    tick: Tick(round),
                    team: team.id,
                    service: service.id,
                    store: StoreIdx(store),
                });
                steps.push((
                    Action::Put,
                    Some(FlagArgs { store: StoreIdx(store), flag, state: Vec::new(), flag_id: String::new() }),
                ));
            }
            let mut states: Vec<Vec<u8>> = Vec::new();
            for (action, flag) in steps.iter().cloned() {
                let outcome = self.act(service, ctx, &target, action, flag.clone()).await;
                note(&mut checks, round, action, &outcome.public_message);
                if outcome.verdict != Verdict::Ok {
                    return Ok(failed(checks, round, action, outcome.verdict, &outcome.public_message));
                }
                let flag = flag.expect("put has a flag");
                planted.insert(flag.store.0, (flag.flag.clone(), outcome.flag_id.clone().unwrap_or_default()));
                states.push(outcome.state.unwrap_or_default());
            }
            for ((_, flag), state) in steps.into_iter().zip(states) {
                let flag = flag.map(|f| FlagArgs { state, ..f });
                let outcome = self.act(service, ctx, &target, Action::Get, flag).await;
                note(&mut checks, round, Action::Get, &outcome.public_message);
                if outcome.verdict != Verdict::Ok {
                    return Ok(failed(checks, round, Action::Get, outcome.verdict, &outcome.public_message));
                }
            }
            let outcome = self.act(service, ctx, &target, Action::Check, None).await;
            note(&mut checks, round, Action::Check, &outcome.public_message);
            if outcome.verdict != Verdict::Ok {
                return Ok(failed(checks, round, Action::Check, outcome.verdict, &outcome.public_message));
            }
        }
        let mut exploit = None;
        if self.runner.has_exploit(service.id).await {
            let ctx = ActionCtx { team: team.id, tick: Tick(rules.rounds), seed: u64::from(team.id.0) };
            for (store, (flag, flag_id)) in &planted {
                let args = FlagArgs {
                    store: StoreIdx(*store),
                    flag: flag.clone(),
                    state: Vec::new(),
                    flag_id: flag_id.clone(),
                };
                let outcome = self.act(service, ctx, &target, Action::Exploit, Some(args)).await;
                let seen = Exposure::of(outcome.verdict, &outcome.flags, flag);
                exploit = Some(match (exploit, seen) {
                    (Some(Exposure::Exploitable), _) | (_, Exposure::Exploitable) => Exposure::Exploitable,
                    (Some(Exposure::Unknown), _) | (_, Exposure::Unknown) => Exposure::Unknown,
                    _ => Exposure::NotExploitable,
                });
            }
        }
        Ok(Trial { passed: true, checks, exploit, failure: None, ours: false })
    }

    async fn act(
        &self,
        service: &Service,
        ctx: ActionCtx,
        target: &Target,
        action: Action,
        flag: Option<FlagArgs>,
    ) -> gongfang_core::ActionOutcome {
        let request = ActionRequest {
            service: service.id,
            ctx,
            target: target.clone(),
            action,
            flag,
            timeout: self.scenario.drill.checker_timeout,
        };
        self.runner.run(request).await
    }

    /// After a tick closes: a deployment whose first decided tick (one that opened after it)
    /// the live checker found `mumble` is rolled back to the version before; one found `ok`
    /// stays. `down` never causes a rollback (an attacker can take a service down, and a
    /// rollback would be theirs to cause): a tick with `down`, `corrupt` or a checker error
    /// decides nothing, and the deployment is watched for up to [`WATCHED_TICKS`] such ticks
    /// (a service restarting slowly on a busy machine is `down` in its first tick).
    async fn judge_deployments(&self, tick: Tick, watches: Vec<Watch>, busy: &HashSet<TeamId>) -> Vec<Watch> {
        let opened = match self.store.tick(tick).await {
            Ok(Some(record)) => record.opened_at,
            Ok(None) => return watches,
            Err(e) => {
                warn!(error = %e, "cannot read a closed tick; deployments are judged at the next one");
                return watches;
            }
        };
        let mut waiting = Vec::new();
        for watch in watches {
            // A team's next patch may be deploying: its service is judged once that is done.
            if opened < watch.deployed_at || busy.contains(&watch.team) {
                waiting.push(watch);
                continue;
            }
            let results = match self.store.check_results(tick, Some(watch.team)).await {
                Ok(results) => results,
                Err(e) => {
                    warn!(error = %e, "cannot read a tick's results; the deployment is judged at the next one");
                    waiting.push(watch);
                    continue;
                }
            };
            let mine: Vec<_> = results.iter().filter(|r| r.service == watch.service).collect();
            let verdict = mine.iter().fold(Verdict::Ok, |v, r| v.worst(r.verdict));
            match verdict {
                Verdict::Mumble => {
                    let reason = mine
                        .iter()
                        .find(|r| r.verdict == Verdict::Mumble)
                        .map(|r| r.message.clone())
                        .unwrap_or_default();
                    if let Err(e) = self.auto_roll_back(&watch, tick, &reason).await {
                        warn!(error = %e, patch = watch.patch, "cannot roll a deployment back");
                    }
                }
                Verdict::Ok => {}
                _ if watch.undecided + 1 < WATCHED_TICKS => {
                    waiting.push(Watch { undecided: watch.undecided + 1, ..watch });
                }
                _ => {}
            }
        }
        waiting
    }

    async fn auto_roll_back(&self, watch: &Watch, tick: Tick, reason: &str) -> anyhow::Result<()> {
        let (Some(team), Some(service)) = (self.scenario.team(watch.team), self.scenario.service(watch.service)) else {
            return Ok(());
        };
        let image = self.image_of(team, service, watch.previous)?;
        self.orchestrator.deploy(&self.plan, &team.slug, &service.slug, &image).await?;
        let deployment = Deployment {
            team: team.id,
            service: service.id,
            version: watch.previous,
            patch: None,
            cause: DeployCause::AutoRollback,
            at: Utc::now(),
        };
        self.store.record_deployment(&deployment, ACTOR).await?;
        let message = format!(
            "rolled back to version {} after tick {tick}: the live checker found the service answering wrongly ({reason}); its data was kept",
            watch.previous
        );
        // What staging found stays with the patch.
        let staged = self.store.patch(watch.patch).await?;
        let (checks, exploit) = staged.map(|p| (p.checks, p.exploit)).unwrap_or_default();
        let outcome = PatchOutcome { status: PatchStatus::RolledBack, message, checks, exploit };
        self.store.set_patch_outcome(watch.patch, &outcome, Utc::now()).await?;
        info!(team = team.slug, service = service.slug, version = watch.previous, "rolled back");
        Ok(())
    }
}

/// What taking a patch did to the team's live service.
enum Done {
    Unchanged,
    /// It runs another version now; a new patch's deployment is to be watched.
    Changed {
        service: ServiceId,
        watch: Option<Watch>,
    },
}

/// What staging showed.
struct Trial {
    passed: bool,
    checks: Vec<String>,
    exploit: Option<Exposure>,
    failure: Option<String>,
    /// The failure was the platform's (the checker failed), not the patch's.
    ours: bool,
}

fn failed(checks: Vec<String>, round: u32, action: Action, verdict: Verdict, message: &str) -> Trial {
    if verdict == Verdict::CheckerError {
        let failure = format!("in round {}, the checker's `{action}` failed", round + 1);
        return Trial { passed: false, checks, exploit: None, failure: Some(failure), ours: true };
    }
    let said = if message.is_empty() { String::new() } else { format!(": {message}") };
    let failure = format!("in round {}, the checker's `{action}` found the service {verdict}{said}", round + 1);
    Trial { passed: false, checks, exploit: None, failure: Some(failure), ours: false }
}

fn note(checks: &mut Vec<String>, round: u32, action: Action, message: &str) {
    if !message.is_empty() {
        checks.push(format!("round {} {action}: {message}", round + 1));
    }
}

fn refusal(message: String, checks: Vec<String>, exploit: Option<Exposure>) -> PatchOutcome {
    PatchOutcome { status: PatchStatus::Refused, message, checks, exploit }
}

fn refused_because(e: &PatchError, version: u32) -> String {
    format!("refused: {e} (the service runs version {version}); the live service is unchanged")
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Whether something accepts TCP connections on `address:port` within `limit`.
async fn answers(address: std::net::Ipv4Addr, port: u16, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        let attempt = tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect((address, port)));
        if let Ok(Ok(_)) = attempt.await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
