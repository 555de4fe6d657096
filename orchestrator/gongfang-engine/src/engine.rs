//! The tick loop: open, dispatch the plan, judge, close, score, publish; and resume after a
//! crash from what the store holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gongfang_core::event::GameEvent;
use gongfang_core::plan::{Action, PlanInput, plan_tick, tick_at, tick_verdict};
use gongfang_core::scenario::Scenario;
use gongfang_core::scoring::{Capture, ScoredService, ScoredTeam, Scorer, ScoringError, ServiceVerdict, TickEvents, TickScores};
use gongfang_core::{FlagCodec, FlagInfo, ServiceId, TeamId, Tick, Verdict};
use gongfang_store::{CheckAction, CheckResult, PlantedFlag, ScoreRow, Store, StoreError};
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::task::JoinSet;
use tracing::{info, instrument, warn};

use crate::clock::Clock;
use crate::runner::{ActionKind, ActionOutcome, ActionRequest, CheckerRunner, Target};

/// Extra time past the checker timeout before the engine itself gives up on an action, so the
/// runner's own timeout (which can say more) normally fires first.
const RUNNER_GRACE: Duration = Duration::from_secs(2);

/// Why the engine stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("stored events cannot be scored: {0}")]
    Scoring(#[from] ScoringError),
}

/// How the engine runs a drill.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub scenario: Arc<Scenario>,
    /// The scenario's secret (flags and seeds derive from it).
    pub secret: Vec<u8>,
    /// When tick 0 starts.
    pub start: DateTime<Utc>,
    /// Most checker actions running at once.
    pub max_concurrency: usize,
    /// Older flags read back per store and tick, besides the newest.
    pub older_gets: usize,
}

/// What one closed tick came to, for callers that drive the engine tick by tick.
#[derive(Debug, Clone, PartialEq)]
pub struct TickReport {
    pub tick: Tick,
    /// Final verdict and public message per defending team × service.
    pub verdicts: Verdicts,
    pub scores: TickScores,
}

type Targets = dyn Fn(TeamId, ServiceId) -> Option<Target> + Send + Sync;

/// The game engine of one drill.
pub struct Engine<C: Clock, R: CheckerRunner> {
    cfg: EngineConfig,
    codec: FlagCodec,
    seed: u64,
    clock: Arc<C>,
    runner: Arc<R>,
    store: Store,
    targets: Arc<Targets>,
    events: broadcast::Sender<GameEvent>,
    current: watch::Sender<Option<Tick>>,
    scorer: Scorer,
    last_verdicts: HashMap<(TeamId, ServiceId), Verdict>,
}

impl<C: Clock, R: CheckerRunner> std::fmt::Debug for Engine<C, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("drill", &self.cfg.scenario.drill.slug).field("next_tick", &self.scorer.next_tick()).finish_non_exhaustive()
    }
}

impl<C: Clock, R: CheckerRunner> Engine<C, R> {
    /// An engine that continues the drill the store holds: every tick already scored is
    /// replayed into the scorer, so scoring continues exactly where it stopped.
    pub async fn resume(
        cfg: EngineConfig,
        clock: C,
        runner: R,
        store: Store,
        targets: impl Fn(TeamId, ServiceId) -> Option<Target> + Send + Sync + 'static,
        events: broadcast::Sender<GameEvent>,
    ) -> Result<Self, EngineError> {
        let codec = FlagCodec::new(&cfg.scenario.drill.flag_prefix, &cfg.secret);
        let seed = codec.derive_seed(b"tick plan");
        let s = &cfg.scenario;
        let teams: Vec<ScoredTeam> = s.teams.iter().map(ScoredTeam::from).collect();
        let services: Vec<ScoredService> = s.services.iter().map(ScoredService::from).collect();
        let mut scorer = Scorer::new(s.drill.scoring, &teams, &services)?;
        let mut last_verdicts = HashMap::new();
        for record in store.list_ticks().await? {
            if !record.is_scored() {
                break;
            }
            let (events, _) = stored_events(&store, s, record.tick).await?;
            for v in &events.verdicts {
                last_verdicts.insert((v.team, v.service), v.verdict);
            }
            scorer.close_tick(&events)?;
        }
        let next = scorer.next_tick();
        info!(drill = %s.drill.slug, next_tick = next.0, "engine ready");
        Ok(Engine {
            cfg,
            codec,
            seed,
            clock: Arc::new(clock),
            runner: Arc::new(runner),
            store,
            targets: Arc::new(targets),
            events,
            current: watch::Sender::new(None),
            scorer,
            last_verdicts,
        })
    }

    /// The running tick, for the submission servers (`None` before the start and after the end).
    pub fn current_tick(&self) -> watch::Receiver<Option<Tick>> {
        self.current.subscribe()
    }

    /// The tick the engine will close next.
    pub fn next_tick(&self) -> Tick {
        self.scorer.next_tick()
    }

    fn tick_start(&self, tick: Tick) -> DateTime<Utc> {
        self.cfg.start + chrono::Duration::from_std(self.cfg.scenario.drill.tick * tick.0).expect("tick fits")
    }

    /// Runs the drill until its end or until `shutdown` resolves. Safe to stop at any point:
    /// a later `resume` + `run` continues at the right tick.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), EngineError> {
        tokio::pin!(shutdown);
        loop {
            let step = async {
                let now = self.clock.now();
                if now < self.cfg.start {
                    self.clock.sleep_until(self.cfg.start).await;
                    return Ok(true);
                }
                let elapsed = (now - self.cfg.start).to_std().unwrap_or_default();
                let drill = &self.cfg.scenario.drill;
                let due = tick_at(elapsed, drill.tick, drill.duration);
                let next = self.scorer.next_tick();
                let last = Tick(u32::try_from(drill.duration.as_millis() / drill.tick.as_millis()).unwrap_or(u32::MAX));
                match due {
                    // Ticks that passed while the engine was away (or paused) are closed now.
                    Some(due) if next < due => self.close_missed(next).await.map(|_| true),
                    None if next < last => self.close_missed(next).await.map(|_| true),
                    None => Ok(false),
                    Some(due) => {
                        self.play_tick(due).await?;
                        self.clock.sleep_until(self.tick_start(due.next())).await;
                        Ok(true)
                    }
                }
            };
            tokio::select! {
                _ = &mut shutdown => {
                    info!("engine stopping");
                    return Ok(());
                }
                more = step => {
                    if !more? {
                        info!("drill over");
                        self.current.send_replace(None);
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Opens, plays, closes and scores one tick.
    #[instrument(skip(self), fields(tick = tick.0))]
    pub async fn play_tick(&mut self, tick: Tick) -> Result<TickReport, EngineError> {
        if self.store.drill_state().await?.paused {
            info!("drill paused: tick passes without checks");
            return self.close_missed(tick).await;
        }
        let started = Instant::now();
        self.store.open_tick(tick, self.clock.now()).await?;
        self.current.send_replace(Some(tick));
        let _ = self.events.send(GameEvent::TickOpened { tick });

        let s = self.cfg.scenario.clone();
        let defenders: Vec<TeamId> = s.defenders().map(|t| t.id).collect();
        let services: Vec<(ServiceId, u8)> = s.services.iter().map(|s| (s.id, s.flag_stores)).collect();
        let window = s.drill.tick.saturating_sub(s.drill.checker_timeout).max(Duration::from_millis(1));
        let plan = plan_tick(&PlanInput {
            seed: self.seed,
            tick,
            teams: &defenders,
            services: &services,
            flag_lifetime: s.drill.flag_lifetime,
            window,
            older_gets: self.cfg.older_gets,
        });

        let semaphore = Arc::new(Semaphore::new(self.cfg.max_concurrency.max(1)));
        let mut tasks = JoinSet::new();
        let tick_start = self.tick_start(tick);
        for planned in plan {
            let ctx = ActionContext {
                clock: self.clock.clone(),
                runner: self.runner.clone(),
                store: self.store.clone(),
                targets: self.targets.clone(),
                codec: self.codec.clone(),
                semaphore: semaphore.clone(),
                timeout: s.drill.checker_timeout,
                seed: self.seed,
            };
            let at = tick_start + chrono::Duration::from_std(planned.offset).expect("offset fits");
            tasks.spawn(async move {
                ctx.clock.sleep_until(at).await;
                ctx.perform(tick, planned.team, planned.service, planned.action).await
            });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tasks.abort_all();
                    return Err(e);
                }
                Err(join) => warn!(error = %join, "a checker action task failed"),
            }
        }
        let report = self.close_tick(tick).await?;
        info!(elapsed_ms = started.elapsed().as_millis() as u64, "tick closed");
        Ok(report)
    }

    /// Closes a tick in which no actions ran (the engine was down or the drill paused): every
    /// verdict it has is what was stored before, and a team × service with none gets
    /// `checker-error`, which costs nothing.
    async fn close_missed(&mut self, tick: Tick) -> Result<TickReport, EngineError> {
        if self.store.tick(tick).await?.is_none() {
            self.store.open_tick(tick, self.clock.now()).await?;
        }
        self.close_tick(tick).await
    }

    async fn close_tick(&mut self, tick: Tick) -> Result<TickReport, EngineError> {
        let s = self.cfg.scenario.clone();
        // Submissions from now on count for the next tick.
        self.current.send_replace(Some(tick.next()));
        self.store.close_tick(tick, self.clock.now()).await?;
        let (events, verdicts) = stored_events(&self.store, &s, tick).await?;
        for v in &events.verdicts {
            let previous = self.last_verdicts.insert((v.team, v.service), v.verdict);
            if previous != Some(v.verdict) {
                let _ = self.events.send(GameEvent::VerdictChanged {
                    tick,
                    team: v.team,
                    service: v.service,
                    from: previous,
                    to: v.verdict,
                    message: verdicts[&(v.team, v.service)].1.clone(),
                });
            }
        }
        let _ = self.events.send(GameEvent::TickClosed { tick });

        let scores = self.scorer.close_tick(&events)?;
        let rows: Vec<ScoreRow> = scores
            .teams
            .iter()
            .map(|t| ScoreRow {
                tick,
                team: t.team,
                attack: t.score.attack,
                defence: t.score.defence,
                sla: t.score.sla,
                total: t.score.total,
            })
            .collect();
        // Scores are a function of the stored events, so writing them again after a crash
        // between these two steps stores the same numbers: closed and scored exactly once.
        self.store.upsert_scores(&rows).await?;
        self.store.mark_tick_scored(tick, self.clock.now()).await?;
        let _ = self.events.send(GameEvent::ScoresUpdated { tick });
        Ok(TickReport { tick, verdicts, scores })
    }
}

/// Final verdict and public message per defending team × service.
type Verdicts = HashMap<(TeamId, ServiceId), (Verdict, String)>;

/// A tick's verdicts and captures as the store holds them: what scoring sees, both live and
/// when replaying after a restart. The tick's results are read once and grouped once.
async fn stored_events(store: &Store, s: &Scenario, tick: Tick) -> Result<(TickEvents, Verdicts), EngineError> {
    let results = store.check_results(tick, None).await?;
    let mut by_cell: HashMap<(TeamId, ServiceId), Vec<(Verdict, &str)>> = HashMap::new();
    for r in &results {
        by_cell.entry((r.team, r.service)).or_default().push((r.verdict, r.message.as_str()));
    }
    let mut verdicts = Vec::new();
    let mut judged = Verdicts::new();
    for team in s.defenders() {
        for service in &s.services {
            let cell = (team.id, service.id);
            let (verdict, message) = tick_verdict(by_cell.remove(&cell).unwrap_or_default());
            verdicts.push(ServiceVerdict { team: team.id, service: service.id, verdict });
            judged.insert(cell, (verdict, message));
        }
    }
    let captures = store
        .submissions_in_tick(tick)
        .await?
        .into_iter()
        .map(|s| Capture {
            attacker: s.submission.attacker,
            victim: s.submission.victim,
            service: s.submission.service,
            store: s.submission.store,
            planted: s.submission.tick_planted,
            submitted: s.submission.tick_submitted,
        })
        .collect();
    Ok((TickEvents { tick, verdicts, captures }, judged))
}

/// What one action task needs, cloned out of the engine so tasks run concurrently.
struct ActionContext<C: Clock, R: CheckerRunner> {
    clock: Arc<C>,
    runner: Arc<R>,
    store: Store,
    targets: Arc<Targets>,
    codec: FlagCodec,
    semaphore: Arc<Semaphore>,
    timeout: Duration,
    seed: u64,
}

impl<C: Clock, R: CheckerRunner> ActionContext<C, R> {
    async fn perform(self, tick: Tick, team: TeamId, service: ServiceId, action: Action) -> Result<(), EngineError> {
        let _permit = self.semaphore.acquire().await.expect("semaphore never closed");
        let (kind, store_idx) = match action {
            Action::Check => (ActionKind::Check, None),
            Action::Put { store } => {
                let flag = self.codec.mint(FlagInfo { tick, team, service, store });
                (ActionKind::Put { store, flag }, Some(store))
            }
            Action::Get { store, planted } => {
                // A flag whose put failed was never planted: there is nothing to read back.
                let Some(p) = self.store.planted_flag(planted, team, service, store).await? else {
                    return Ok(());
                };
                (ActionKind::Get { store, flag: p.flag, state: p.state.unwrap_or_default() }, Some(store))
            }
        };
        let started = Instant::now();
        let outcome = match (self.targets)(team, service) {
            None => ActionOutcome::checker_error(format!("no address known for team {team} service {service}")),
            Some(target) => {
                let label = format!("{}:{}:{}:{}:{:?}", tick.0, team.0, service.0, action.name(), store_idx.map(|s| s.0));
                let request = ActionRequest {
                    service,
                    team,
                    tick,
                    seed: self.seed ^ self.codec.derive_seed(label.as_bytes()),
                    target,
                    kind: kind.clone(),
                    timeout: self.timeout,
                };
                match tokio::time::timeout(self.timeout + RUNNER_GRACE, self.runner.run(request)).await {
                    Ok(outcome) => outcome,
                    Err(_) => ActionOutcome::checker_error("the runner did not return within the checker timeout"),
                }
            }
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        if let (ActionKind::Put { store, flag }, Verdict::Ok) = (&kind, outcome.verdict) {
            self.store
                .record_flag(&PlantedFlag {
                    tick,
                    team,
                    service,
                    store: *store,
                    flag: flag.clone(),
                    flag_id: outcome.flag_id.clone(),
                    state: outcome.state.clone(),
                    planted_at: self.clock.now(),
                })
                .await?;
        }
        self.store
            .record_check(&CheckResult {
                tick,
                team,
                service,
                action: match action {
                    Action::Check => CheckAction::Check,
                    Action::Put { .. } => CheckAction::Put,
                    Action::Get { .. } => CheckAction::Get,
                },
                store: store_idx,
                verdict: outcome.verdict,
                message: outcome.public_message,
                log: outcome.private_log.join("\n"),
                duration_ms,
                recorded_at: self.clock.now(),
            })
            .await?;
        Ok(())
    }
}
