//! The tick loop: open, dispatch the plan, judge, close, score, publish; and resume after a
//! crash from what the store holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gongfang_core::event::GameEvent;
use gongfang_core::plan::{OUT_OF_THE_DRILL, PlanInput, PlannedAction, plan_tick, tick_at, tick_verdict};
use gongfang_core::scenario::Scenario;
use gongfang_core::scoring::{ScoredService, ScoredTeam, Scorer, ScoringError, ServiceVerdict, TickEvents, TickScores};
use gongfang_core::{
    Action, ActionCtx, ActionOutcome, CheckResult, CheckerFault, ExploitReplay, Exposure, FlagCodec, FlagInfo, FlagRef,
    PlantedFlag, ScoreRow, ServiceId, Target, TeamId, Tick, Verdict,
};
use gongfang_store::{DefectiveCells, ScorerSnapshot, Store, StoreError, TickRecord, marks_digest};
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::task::JoinSet;
use tracing::{info, instrument, warn};

use crate::clock::Clock;
use crate::runner::{ActionRequest, CheckerRunner, FlagArgs};

/// Extra time past the checker timeout before the engine itself gives up on an action, so the
/// runner's own timeout (which can say more) normally fires first.
const RUNNER_GRACE: Duration = Duration::from_secs(2);

/// Longest the engine holds finished action results before storing them, so attack info
/// (flag ids) and organisers' views follow a tick while it runs.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

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
    /// The drill's flag codec, keyed by its secret, slug and drill id (flags and seeds derive
    /// from it); the submission servers must check flags with the same one.
    pub codec: FlagCodec,
    /// When tick 0 starts.
    pub start: DateTime<Utc>,
    /// Most checker actions running at once.
    pub max_concurrency: usize,
    /// Older flags read back per store and tick, besides the newest.
    pub older_gets: usize,
    /// Services whose reference exploit is replayed against every defending team each tick
    /// (their checkers have an `exploit`).
    pub replay: Vec<ServiceId>,
    /// Action results stored per database write (at least every second while a tick runs).
    pub write_batch: usize,
    /// Told of each step of a tick's life; crash tests stop the process at chosen steps.
    pub hook: StepHook,
}

impl EngineConfig {
    /// A configuration with the usual limits: 64 actions at once, one older flag read back
    /// per store, no exploit replay, results stored 500 at a time, no step observer.
    pub fn new(scenario: Arc<Scenario>, codec: FlagCodec, start: DateTime<Utc>) -> EngineConfig {
        EngineConfig {
            scenario,
            codec,
            start,
            max_concurrency: 64,
            older_gets: 1,
            replay: Vec::new(),
            write_batch: 500,
            hook: StepHook::default(),
        }
    }
}

/// Steps in a tick's life after which the engine's state is durable, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A batch of the open tick's action results (and planted flags) was stored; `stored`
    /// counts the tick's results stored so far.
    ResultsStored { tick: Tick, stored: usize },
    /// The tick was closed: its verdicts are final, its scores not yet stored.
    Closed { tick: Tick },
    /// The tick's scores were stored; the tick is not yet marked scored.
    ScoresStored { tick: Tick },
}

/// An observer of [`Step`]s. The default observes nothing.
#[derive(Clone, Default)]
pub struct StepHook(Option<Arc<dyn Fn(Step) + Send + Sync>>);

impl StepHook {
    pub fn new(f: impl Fn(Step) + Send + Sync + 'static) -> StepHook {
        StepHook(Some(Arc::new(f)))
    }

    fn notify(&self, step: Step) {
        if let Some(f) = &self.0 {
            f(step);
        }
    }
}

impl std::fmt::Debug for StepHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "StepHook(set)" } else { "StepHook(none)" })
    }
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
    /// Results organisers marked defective: scored as `checker-error`.
    defective: DefectiveCells,
    /// [`marks_digest`] of `defective`, stored with every scorer snapshot.
    defective_digest: String,
    /// Changes when an organiser marks a result defective: every tick is scored again.
    marks: watch::Receiver<u64>,
    /// The paused flag as last announced on the event feed, to announce each pause and resume
    /// once, whether the engine saw it at a tick start or the moment an organiser set it.
    announced_paused: Arc<AtomicBool>,
}

impl<C: Clock, R: CheckerRunner> std::fmt::Debug for Engine<C, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("drill", &self.cfg.scenario.drill.slug)
            .field("next_tick", &self.scorer.next_tick())
            .finish_non_exhaustive()
    }
}

impl<C: Clock, R: CheckerRunner> Engine<C, R> {
    /// An engine that continues the drill the store holds, scoring exactly where it stopped:
    /// from the scorer's stored snapshot when it was taken with the results marked defective
    /// as they are now, replaying only the ticks scored after it; otherwise by replaying
    /// every scored tick.
    pub async fn resume(
        cfg: EngineConfig,
        clock: C,
        runner: R,
        store: Store,
        targets: impl Fn(TeamId, ServiceId) -> Option<Target> + Send + Sync + 'static,
        events: broadcast::Sender<GameEvent>,
    ) -> Result<Self, EngineError> {
        let codec = cfg.codec.clone();
        let seed = codec.derive_seed(b"tick plan");
        let s = &cfg.scenario;
        let mut marks = store.defective_watch();
        marks.mark_unchanged();
        let defective = store.defective_cells().await?;
        let defective_digest = marks_digest(&defective);
        let ticks = store.list_ticks().await?;
        let snapshot = usable_snapshot(&store, s, &ticks, &defective_digest).await?;
        // Marks made while no engine ran (after the drill's end, or while it was stopped)
        // are applied now: the stored scores become what the replay computed. Without marks
        // the stored rows are already those, and none are kept. The ticks replayed after a
        // snapshot are few; their rows are written again whatever the marks.
        let keep_rows = snapshot.is_some() || !defective.is_empty();
        let (scorer, last_verdicts, rows) = replay_scored(&store, s, &ticks, &defective, keep_rows, snapshot).await?;
        if keep_rows {
            store.upsert_scores(&rows).await?;
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
            defective,
            defective_digest,
            marks,
            announced_paused: Arc::new(AtomicBool::new(false)),
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
        // A pause set in this process (the organisers' API) is announced at once, not at the
        // next tick start; the actions already planned see the same watch and stop.
        let _announcer = AbortOnDrop(tokio::spawn(announce_pauses(
            self.store.paused_watch(),
            self.events.clone(),
            self.announced_paused.clone(),
        )));
        loop {
            // Between ticks: results marked defective since the last step are scored now.
            if self.marks.has_changed().unwrap_or(false) {
                self.marks.mark_unchanged();
                // A failure leaves the old scores and is tried again at the next step; the
                // drill plays on either way.
                if let Err(error) = self.rescore().await {
                    tracing::error!(%error, "scoring again after a result was marked defective failed; retrying");
                    self.marks.mark_changed();
                }
            }
            let step = async {
                let now = self.clock.now();
                if now < self.cfg.start {
                    self.clock.sleep_until(self.cfg.start).await;
                    return Ok(true);
                }
                let elapsed = (now - self.cfg.start).to_std().unwrap_or_default();
                let drill = &self.cfg.scenario.drill;
                // Organisers may move the end later while the drill runs.
                let duration = drill.duration.saturating_add(self.store.drill_extension().await?);
                let due = tick_at(elapsed, drill.tick, duration);
                let next = self.scorer.next_tick();
                let last = Tick(u32::try_from(duration.as_millis() / drill.tick.as_millis()).unwrap_or(u32::MAX));
                match due {
                    // Ticks that passed while the engine was away are closed now.
                    Some(due) if next < due => self.close_missed(next).await.map(|_| true),
                    // The store is ahead of the clock (it was set back): wait for the next tick.
                    Some(due) if next > due => {
                        self.clock.sleep_until(self.tick_start(next)).await;
                        Ok(true)
                    }
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

    /// Scores every closed tick again from the stored events, with the results marked
    /// defective as they are now, and stores the scores that changed (every tick's row is
    /// written again; they are upserts). The scorer then continues from the same tick.
    #[instrument(skip(self))]
    pub async fn rescore(&mut self) -> Result<(), EngineError> {
        let s = self.cfg.scenario.clone();
        self.defective = self.store.defective_cells().await?;
        self.defective_digest = marks_digest(&self.defective);
        let ticks = self.store.list_ticks().await?;
        let (scorer, _, rows) = replay_scored(&self.store, &s, &ticks, &self.defective, true, None).await?;
        self.store.upsert_scores(&rows).await?;
        self.scorer = scorer;
        self.save_snapshot().await;
        if let Some(last) = rows.last() {
            info!(through = last.tick.0, defective = self.defective.len(), "scores recomputed");
            let _ = self.events.send(GameEvent::Rescored { through: last.tick });
        }
        Ok(())
    }

    /// Opens, plays, closes and scores one tick.
    #[instrument(skip(self), fields(tick = tick.0))]
    pub async fn play_tick(&mut self, tick: Tick) -> Result<TickReport, EngineError> {
        // The stored flag: another process may have set it while no drill answered its call.
        let paused = self.store.sync_paused().await?;
        announce_pause(&self.events, &self.announced_paused, paused);
        if paused {
            info!("drill paused: tick passes without checks");
            return self.close_missed(tick).await;
        }
        match self.store.tick(tick).await? {
            // Closed before a crash, not yet scored: only the scoring is left to do.
            Some(record) if record.is_closed() => return self.close_tick(tick).await,
            // Opened before a crash: play it again from the start, replacing its results.
            Some(_) => {
                let dropped = self.store.discard_open_tick_results(tick).await?;
                info!(dropped, "replaying a tick interrupted by a restart");
            }
            None => {}
        }
        let started = Instant::now();
        self.store.open_tick(tick, self.clock.now()).await?;
        self.current.send_replace(Some(tick));
        let _ = self.events.send(GameEvent::TickOpened { tick });

        let s = self.cfg.scenario.clone();
        // Teams organisers took out of the drill are not checked. Each of their services is
        // stored as down for the tick, with why: they earn no SLA meanwhile, the board says so,
        // and a rescore from the stored results scores them the same.
        let disabled = self.store.disabled_teams().await?;
        let defenders: Vec<TeamId> = s.defenders().map(|t| t.id).filter(|id| !disabled.contains(id)).collect();
        let mut batch = ResultBatch::default();
        for team in s.defenders().filter(|t| disabled.contains(&t.id)) {
            for service in &s.services {
                batch.results.push(CheckResult {
                    tick,
                    team: team.id,
                    service: service.id,
                    action: Action::Check,
                    store: None,
                    verdict: Verdict::Down,
                    message: OUT_OF_THE_DRILL.to_owned(),
                    log: String::new(),
                    duration_ms: 0,
                    recorded_at: self.clock.now(),
                    fault: None,
                });
            }
        }
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
            replay: &self.cfg.replay,
        });

        // Every flag a `get` of this tick may read, fetched once.
        let planted: HashMap<FlagSlot, PlantedFlag> = match tick.0.checked_sub(1) {
            None => HashMap::new(),
            Some(last) => self
                .store
                .planted_flags(Tick(tick.0.saturating_sub(s.drill.flag_lifetime)), Tick(last))
                .await?
                .into_iter()
                .map(|f| ((f.tick, f.team, f.service, f.store), f))
                .collect(),
        };
        let planted = Arc::new(planted);
        let semaphore = Arc::new(Semaphore::new(self.cfg.max_concurrency.max(1)));
        let mut tasks = JoinSet::new();
        let tick_start = self.tick_start(tick);
        for planned in plan {
            let ctx = ActionContext {
                clock: self.clock.clone(),
                runner: self.runner.clone(),
                planted: planted.clone(),
                targets: self.targets.clone(),
                codec: self.codec.clone(),
                semaphore: semaphore.clone(),
                timeout: s.drill.checker_timeout,
                seed: self.seed,
                paused: self.store.paused_watch(),
            };
            let at = tick_start + chrono::Duration::from_std(planned.offset).expect("offset fits");
            tasks.spawn(async move {
                ctx.clock.sleep_until(at).await;
                ctx.perform(tick, planned).await
            });
        }
        let mut flush = tokio::time::interval(FLUSH_INTERVAL);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                done = tasks.join_next() => match done {
                    None => break,
                    Some(Ok(Some(Done::Checked(result, flag)))) => {
                        batch.results.push(result);
                        batch.flags.extend(flag);
                        if batch.results.len() >= self.cfg.write_batch.max(1) {
                            self.store_results(tick, &mut batch).await?;
                        }
                    }
                    Some(Ok(Some(Done::Replayed(replay)))) => batch.replays.push(replay),
                    Some(Ok(None)) => {}
                    Some(Err(join)) => warn!(error = %join, "a checker action task failed"),
                },
                _ = flush.tick() => self.store_results(tick, &mut batch).await?,
            }
        }
        self.store_results(tick, &mut batch).await?;
        let report = self.close_tick(tick).await?;
        info!(elapsed_ms = started.elapsed().as_millis() as u64, "tick closed");
        Ok(report)
    }

    /// Stores what the batch holds, in one transaction.
    async fn store_results(&self, tick: Tick, batch: &mut ResultBatch) -> Result<(), EngineError> {
        if !batch.replays.is_empty() {
            self.store.record_exploit_replays(&batch.replays).await?;
            batch.replays.clear();
        }
        if batch.results.is_empty() {
            return Ok(());
        }
        self.store.record_tick_results(&batch.flags, &batch.results).await?;
        batch.stored += batch.results.len();
        batch.flags.clear();
        batch.results.clear();
        self.cfg.hook.notify(Step::ResultsStored { tick, stored: batch.stored });
        Ok(())
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
        self.cfg.hook.notify(Step::Closed { tick });
        let (events, verdicts) = stored_events(&self.store, &s, tick, &self.defective).await?;
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
        let rows: Vec<ScoreRow> =
            scores.teams.iter().map(|t| ScoreRow { tick, team: t.team, score: t.score }).collect();
        // Scores are a function of the stored events, so writing them again after a crash
        // between these two steps stores the same numbers: closed and scored exactly once.
        self.store.upsert_scores(&rows).await?;
        self.cfg.hook.notify(Step::ScoresStored { tick });
        self.store.mark_tick_scored(tick, self.clock.now()).await?;
        let _ = self.events.send(GameEvent::ScoresUpdated { tick });
        self.save_snapshot().await;
        Ok(TickReport { tick, verdicts, scores })
    }

    /// Stores the scorer's state after its latest tick. A failure costs only time at the next
    /// restart (more ticks to replay), so the drill plays on.
    async fn save_snapshot(&self) {
        let Some(tick) = self.scorer.next_tick().0.checked_sub(1) else { return };
        let snapshot = ScorerSnapshot {
            tick: Tick(tick),
            marks: self.defective_digest.clone(),
            state: self.scorer.snapshot(),
            taken_at: self.clock.now(),
        };
        if let Err(error) = self.store.save_scorer_snapshot(&snapshot).await {
            warn!(%error, tick, "storing the scorer's snapshot failed; a restart will replay more ticks");
        }
    }
}

fn scored_teams(s: &Scenario) -> Vec<ScoredTeam> {
    s.teams.iter().map(ScoredTeam::from).collect()
}

fn scored_services(s: &Scenario) -> Vec<ScoredService> {
    s.services.iter().map(ScoredService::from).collect()
}

/// A fresh scorer for the drill, forgetting flags once the scenario's lifetime is over.
fn new_scorer(s: &Scenario) -> Result<Scorer, ScoringError> {
    let scorer = Scorer::new(s.drill.scoring, &scored_teams(s), &scored_services(s))?;
    Ok(scorer.with_flag_lifetime(s.drill.flag_lifetime))
}

/// The scorer of the stored snapshot, if there is one the drill can continue from: taken with
/// the results marked defective as they are now, for the drill's teams, services and scoring,
/// and no later than the last scored tick.
async fn usable_snapshot(
    store: &Store,
    s: &Scenario,
    ticks: &[TickRecord],
    marks: &str,
) -> Result<Option<Scorer>, EngineError> {
    let Some(snapshot) = store.scorer_snapshot().await? else { return Ok(None) };
    if snapshot.marks != marks {
        info!(
            tick = snapshot.tick.0,
            "results were marked defective since the scorer's snapshot: every tick is scored again"
        );
        return Ok(None);
    }
    let scored = ticks.iter().take_while(|t| t.is_scored()).count();
    if snapshot.tick.0 as usize >= scored {
        warn!(
            tick = snapshot.tick.0,
            scored, "the scorer's snapshot is past the scored ticks; every tick is scored again"
        );
        return Ok(None);
    }
    match new_scorer(s)?.restore(&snapshot.state) {
        Ok(scorer) => {
            info!(tick = snapshot.tick.0, "continuing from the scorer's snapshot");
            Ok(Some(scorer))
        }
        Err(error) => {
            warn!(%error, tick = snapshot.tick.0, "the scorer's snapshot cannot be used; every tick is scored again");
            Ok(None)
        }
    }
}

/// Where a planted flag sits: planted in tick, team, service, flag store.
type FlagSlot = (Tick, TeamId, ServiceId, gongfang_core::StoreIdx);

/// Finished action results not yet stored.
#[derive(Default)]
struct ResultBatch {
    flags: Vec<PlantedFlag>,
    results: Vec<CheckResult>,
    replays: Vec<ExploitReplay>,
    /// Results of the tick stored so far.
    stored: usize,
}

/// Final verdict and public message per defending team × service.
type Verdicts = HashMap<(TeamId, ServiceId), (Verdict, String)>;

/// The scored ticks replayed from the store into `from` (a restored snapshot), or into a new
/// scorer when there is none: the scorer ready for the next tick, the last verdict of each
/// team × service, and (when `keep_rows`) the replayed ticks' score rows, which for a long
/// drill of many teams are many.
async fn replay_scored(
    store: &Store,
    s: &Scenario,
    ticks: &[TickRecord],
    defective: &DefectiveCells,
    keep_rows: bool,
    from: Option<Scorer>,
) -> Result<Replayed, EngineError> {
    let Some(scorer) = from else {
        return match replay_into(store, s, ticks, defective, keep_rows, new_scorer(s)?).await {
            // Accepted while the scenario gave flags a longer life: score as before lifetimes.
            Err(EngineError::Scoring(ScoringError::Expired { tick, planted, lifetime })) => {
                warn!(
                    tick = tick.0,
                    planted = planted.0,
                    lifetime,
                    "a stored capture is older than the scenario's flag lifetime (was it shortened?); \
                     the scorer keeps every flag from now on"
                );
                let unbounded = Scorer::new(s.drill.scoring, &scored_teams(s), &scored_services(s))?;
                replay_into(store, s, ticks, defective, keep_rows, unbounded).await
            }
            other => other,
        };
    };
    replay_into(store, s, ticks, defective, keep_rows, scorer).await
}

/// A scorer, its last verdicts and, when asked for, the score rows of the ticks it replayed.
type Replayed = (Scorer, HashMap<(TeamId, ServiceId), Verdict>, Vec<ScoreRow>);

/// Feeds `scorer` every scored tick of `ticks` it has not closed yet.
async fn replay_into(
    store: &Store,
    s: &Scenario,
    ticks: &[TickRecord],
    defective: &DefectiveCells,
    keep_rows: bool,
    mut scorer: Scorer,
) -> Result<Replayed, EngineError> {
    let mut last_verdicts = HashMap::new();
    let mut rows = Vec::new();
    let mut last_scored = None;
    for record in ticks {
        if !record.is_scored() {
            break;
        }
        last_scored = Some(record.tick);
        if record.tick < scorer.next_tick() {
            continue;
        }
        let (events, _) = stored_events(store, s, record.tick, defective).await?;
        for v in &events.verdicts {
            last_verdicts.insert((v.team, v.service), v.verdict);
        }
        let scores = scorer.close_tick(&events)?;
        if keep_rows {
            rows.extend(scores.teams.iter().map(|t| ScoreRow { tick: record.tick, team: t.team, score: t.score }));
        }
    }
    // Continued from a snapshot of the last scored tick: its verdicts are the latest. (Every
    // scored tick has one for each defending team's service.)
    if let Some(tick) = last_scored
        && last_verdicts.is_empty()
    {
        let (verdicts, _) = stored_verdicts(store, s, tick, defective).await?;
        last_verdicts.extend(verdicts.iter().map(|v| ((v.team, v.service), v.verdict)));
    }
    Ok((scorer, last_verdicts, rows))
}

/// A tick's verdicts and captures as the store holds them: what scoring sees, both live and
/// when replaying after a restart. The tick's results are read once and grouped once; a
/// result organisers marked defective counts as `checker-error`, which costs the team nothing.
async fn stored_events(
    store: &Store,
    s: &Scenario,
    tick: Tick,
    defective: &DefectiveCells,
) -> Result<(TickEvents, Verdicts), EngineError> {
    let (verdicts, judged) = stored_verdicts(store, s, tick, defective).await?;
    let captures = store.submissions_in_tick(tick).await?.into_iter().map(|s| s.submission.capture).collect();
    Ok((TickEvents { tick, verdicts, captures }, judged))
}

/// A tick's verdict for every defending team × service, from its stored results, with the
/// public message that goes with each.
async fn stored_verdicts(
    store: &Store,
    s: &Scenario,
    tick: Tick,
    defective: &DefectiveCells,
) -> Result<(Vec<ServiceVerdict>, Verdicts), EngineError> {
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
            let (mut verdict, message) = tick_verdict(by_cell.remove(&cell).unwrap_or_default());
            if defective.contains(&(tick, team.id, service.id)) {
                verdict = Verdict::CheckerError;
            }
            verdicts.push(ServiceVerdict { team: team.id, service: service.id, verdict });
            judged.insert(cell, (verdict, message));
        }
    }
    Ok((verdicts, judged))
}

/// What one finished action gives: a checker result (with the flag a successful `put`
/// planted), or an exploit replay, which is kept apart from the verdicts.
enum Done {
    Checked(CheckResult, Option<PlantedFlag>),
    Replayed(ExploitReplay),
}

/// What one action task needs, cloned out of the engine so tasks run concurrently.
struct ActionContext<C: Clock, R: CheckerRunner> {
    clock: Arc<C>,
    runner: Arc<R>,
    planted: Arc<HashMap<FlagSlot, PlantedFlag>>,
    targets: Arc<Targets>,
    codec: FlagCodec,
    semaphore: Arc<Semaphore>,
    timeout: Duration,
    seed: u64,
    /// The drill's paused flag: once it is set, no further action of the tick is dispatched.
    paused: watch::Receiver<bool>,
}

impl<C: Clock, R: CheckerRunner> ActionContext<C, R> {
    /// Runs one action; its result, and the flag it planted if it was a successful `put`, or
    /// the exploit's replay. `None` when there was nothing to do (a `get` or `exploit` of a flag
    /// that was never planted).
    async fn perform(self, tick: Tick, planned: PlannedAction) -> Option<Done> {
        let PlannedAction { team, service, action, flag, .. } = planned;
        let _permit = self.semaphore.acquire().await.expect("semaphore never closed");
        if *self.paused.borrow() {
            // Paused since the tick began: the action is not dispatched. Its cell's verdict
            // comes from what did run, or is `checker-error`, which costs nothing.
            return None;
        }
        let args = match (action, flag) {
            (Action::Put, Some(FlagRef { store, .. })) => {
                let flag = self.codec.mint(FlagInfo { tick, team, service, store });
                Some(FlagArgs { store, flag, state: Vec::new(), flag_id: String::new() })
            }
            (Action::Get, Some(FlagRef { store, planted })) => {
                // A flag whose put failed was never planted: there is nothing to read back.
                let p = self.planted.get(&(planted, team, service, store))?;
                Some(FlagArgs {
                    store,
                    flag: p.flag.clone(),
                    state: p.state.clone().unwrap_or_default(),
                    flag_id: String::new(),
                })
            }
            (Action::Exploit, Some(FlagRef { store, planted })) => {
                // Nothing planted, nothing to go for: the replay knows nothing this tick.
                let p = self.planted.get(&(planted, team, service, store))?;
                Some(FlagArgs {
                    store,
                    flag: p.flag.clone(),
                    state: Vec::new(),
                    flag_id: p.flag_id.clone().unwrap_or_default(),
                })
            }
            _ => None,
        };
        let store_idx = args.as_ref().map(|a| a.store);
        let started = Instant::now();
        let outcome = match (self.targets)(team, service) {
            None => platform_error(action, format!("no address known for team {team} service {service}")),
            Some(target) => {
                let label = format!("{}:{}:{}:{}:{:?}", tick.0, team.0, service.0, action, store_idx.map(|s| s.0));
                let request = ActionRequest {
                    service,
                    ctx: ActionCtx { team, tick, seed: self.seed ^ self.codec.derive_seed(label.as_bytes()) },
                    target,
                    action,
                    flag: args.clone(),
                    timeout: self.timeout,
                };
                match tokio::time::timeout(self.timeout + RUNNER_GRACE, self.runner.run(request)).await {
                    Ok(outcome) => outcome,
                    Err(_) => platform_error(action, "the runner did not return within the checker timeout"),
                }
            }
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        if let (Action::Exploit, Some(args)) = (action, &args) {
            return Some(Done::Replayed(ExploitReplay {
                tick,
                team,
                service,
                store: args.store,
                exposure: Exposure::of(outcome.verdict, &outcome.flags, &args.flag),
                message: outcome.public_message,
                recorded_at: self.clock.now(),
            }));
        }
        let planted = match (action, args, outcome.verdict) {
            (Action::Put, Some(FlagArgs { store, flag, .. }), Verdict::Ok) => Some(PlantedFlag {
                tick,
                team,
                service,
                store,
                flag,
                flag_id: outcome.flag_id.clone(),
                state: outcome.state.clone(),
                planted_at: self.clock.now(),
            }),
            _ => None,
        };
        let result = CheckResult {
            tick,
            team,
            service,
            action,
            store: store_idx,
            verdict: outcome.verdict,
            message: outcome.public_message,
            log: outcome.private_log.join("\n"),
            duration_ms,
            recorded_at: self.clock.now(),
            fault: outcome.fault.as_ref().map(CheckerFault::kind),
        };
        Some(Done::Checked(result, planted))
    }
}

/// An action the platform could not run: the checker is not to blame, and neither is the team.
fn platform_error(action: Action, message: impl Into<String>) -> ActionOutcome {
    ActionOutcome::checker_error(action, CheckerFault::Platform { message: message.into() }, Vec::new())
}

/// Announces `paused` on the event feed if it is not what was last announced.
fn announce_pause(events: &broadcast::Sender<GameEvent>, announced: &AtomicBool, paused: bool) {
    if announced.swap(paused, Ordering::SeqCst) != paused {
        let _ = events.send(if paused { GameEvent::Paused } else { GameEvent::Resumed });
    }
}

/// Announces every change of the paused flag this process sees, as it happens.
async fn announce_pauses(
    mut watch: watch::Receiver<bool>,
    events: broadcast::Sender<GameEvent>,
    announced: Arc<AtomicBool>,
) {
    loop {
        let paused = *watch.borrow_and_update();
        announce_pause(&events, &announced, paused);
        if watch.changed().await.is_err() {
            return;
        }
    }
}

/// Aborts a spawned task when dropped, so it ends with whatever spawned it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
