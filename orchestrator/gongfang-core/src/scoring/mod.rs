//! Scores from game events: FAUST CTF's, ForcAD's and saarCTF's formulas, tick by tick.
//!
//! The engine feeds each closed tick's final verdicts and accepted captures to a [`Scorer`] and
//! stores the [`TickScores`] it returns. An audit or a replay feeds the stored events to
//! [`recompute`] and gets the very same numbers back, bit for bit: every running quantity is
//! either an integer count or is accumulated in one fixed order, and the events of a tick are
//! put in a canonical order before they are applied, so the order a store returns rows in does
//! not matter.
//!
//! Whose fault a verdict is matters: `CheckerError` is our failure, so it counts as `ok` for
//! SLA (FAUST likewise never charges a team for ticks its checker failed to judge).
//!
//! Roles: an attacker-only team has no services, so it gets no SLA and no defence terms (a
//! verdict for it is an error); a defender-only team submits no flags, so its score is its
//! defence and SLA. The formulas themselves are described in `docs/scoring.md`.
//!
//! Reports: [`standings`] adds judges' points to the flag score; [`score_rules`] scores ruled
//! attack and defence results by the rule-based preset's tables (`docs/reports.md`).

mod formulas;
mod reports;
mod rules;
mod snapshot;

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

use crate::ids::{ServiceId, StoreIdx, TeamId, Tick};
use crate::report::ReportKind;
use crate::scenario::{Role, ScoringFormula, Service, Team};
use crate::verdict::Verdict;

pub use formulas::{FORCAD_DEFAULT_SCORE, FORCAD_GAME_HARDNESS, FORCAD_INFLATION, RANK_PRECISION};
pub use reports::{
    Adjustments, Award, DefendedTicks, ReportPoints, ReportTally, RuledFinding, Standing, Standings,
    recompute_standings, standings,
};
pub use rules::{
    AttackFinding, AttackNote, AttackScore, DefenceFinding, DefenceNote, DefenceScore, LinkedEvent, RulesScores,
    RulesTeam, score_rules,
};
pub use snapshot::SnapshotError;

/// What scoring needs to know about a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScoredTeam {
    pub id: TeamId,
    pub role: Role,
    /// The NOP team's flags are worth nothing to attackers.
    pub nop: bool,
}

impl From<&Team> for ScoredTeam {
    fn from(t: &Team) -> Self {
        ScoredTeam { id: t.id, role: t.role, nop: t.nop }
    }
}

/// What scoring needs to know about a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScoredService {
    pub id: ServiceId,
    /// saarCTF divides a service's flag points by this, so a service is worth the same however
    /// many flag stores it has.
    pub flag_stores: u8,
}

impl From<&Service> for ScoredService {
    fn from(s: &Service) -> Self {
        ScoredService { id: s.id, flag_stores: s.flag_stores }
    }
}

/// The final verdict of one team's service for one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceVerdict {
    pub team: TeamId,
    pub service: ServiceId,
    pub verdict: Verdict,
}

/// An accepted flag submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Capture {
    pub attacker: TeamId,
    pub victim: TeamId,
    pub service: ServiceId,
    pub store: StoreIdx,
    /// The tick the flag was planted in.
    pub planted: Tick,
    /// The tick the submission was accepted in; must be the tick being closed.
    pub submitted: Tick,
}

/// Everything that happened in one tick, as the store holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickEvents {
    pub tick: Tick,
    /// One per defending team × service; a missing one earns no SLA for that tick.
    pub verdicts: Vec<ServiceVerdict>,
    pub captures: Vec<Capture>,
}

/// A team's cumulative score, up to and including a tick. `total = attack + defence + sla`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TeamScore {
    pub attack: f64,
    /// Zero or negative.
    pub defence: f64,
    pub sla: f64,
    pub total: f64,
}

impl TeamScore {
    fn new(attack: f64, defence: f64, sla: f64) -> TeamScore {
        TeamScore { attack, defence, sla, total: attack + defence + sla }
    }
}

/// One service's share of a team's score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServiceScore {
    pub service: ServiceId,
    pub score: TeamScore,
}

/// A team's score after a tick, with its per-service breakdown (in service id order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamTick {
    pub team: TeamId,
    pub score: TeamScore,
    pub services: Vec<ServiceScore>,
}

/// Every team's score after a tick, in team id order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickScores {
    pub tick: Tick,
    pub teams: Vec<TeamTick>,
}

impl TickScores {
    pub fn team(&self, id: TeamId) -> Option<&TeamTick> {
        self.teams.binary_search_by_key(&id, |t| t.team).ok().map(|i| &self.teams[i])
    }

    /// All teams, best first (see [`rank`]).
    pub fn ranking(&self) -> Vec<TeamId> {
        rank(&self.teams)
    }
}

/// Orders teams by total, highest first; equal totals keep team id order.
///
/// Red and blue teams of a drill are usually shown in separate tables: filter the slice first.
pub fn rank(teams: &[TeamTick]) -> Vec<TeamId> {
    let mut order: Vec<&TeamTick> = teams.iter().collect();
    order.sort_by(|a, b| b.score.total.total_cmp(&a.score.total).then(a.team.cmp(&b.team)));
    order.into_iter().map(|t| t.team).collect()
}

/// Events that cannot have happened in the scenario being scored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoringError {
    #[error("team {0} is listed twice")]
    DuplicateTeam(TeamId),
    #[error("service {0} is listed twice")]
    DuplicateService(ServiceId),
    #[error("tick {got} was closed out of order; tick {expected} is next")]
    TickOutOfOrder { expected: Tick, got: Tick },
    #[error("tick {tick}: team {team} is not in the scenario")]
    UnknownTeam { tick: Tick, team: TeamId },
    #[error("tick {tick}: service {service} is not in the scenario")]
    UnknownService { tick: Tick, service: ServiceId },
    #[error("tick {tick}: team {team} runs no services (role attacker) but has a verdict")]
    VerdictForAttacker { tick: Tick, team: TeamId },
    #[error("tick {tick}: team {team} has two verdicts for service {service}")]
    DuplicateVerdict { tick: Tick, team: TeamId, service: ServiceId },
    #[error("tick {tick}: team {team} may not submit flags")]
    NotAnAttacker { tick: Tick, team: TeamId },
    #[error("tick {tick}: team {team} runs no services, so it has no flags to lose")]
    NotADefender { tick: Tick, team: TeamId },
    #[error("tick {tick}: team {team} captured its own flag")]
    SelfCapture { tick: Tick, team: TeamId },
    #[error("tick {tick}: service {service} has no flag store {store}")]
    NoSuchStore { tick: Tick, service: ServiceId, store: StoreIdx },
    #[error("tick {tick}: a capture submitted in tick {submitted} belongs to another tick")]
    WrongTick { tick: Tick, submitted: Tick },
    #[error("tick {tick}: a flag planted in tick {planted} cannot be captured yet")]
    PlantedLater { tick: Tick, planted: Tick },
    #[error("tick {tick}: a flag planted in tick {planted} had expired (flags live {lifetime} ticks)")]
    Expired { tick: Tick, planted: Tick, lifetime: u32 },
    #[error("tick {tick}: team {attacker} captured the same flag of team {victim} twice")]
    DuplicateCapture { tick: Tick, attacker: TeamId, victim: TeamId },
    #[error("report {report}: an appeal ruling comes before the report's first ruling")]
    AppealBeforeRuling { report: i64 },
    #[error("report {report} is ruled twice at the same stage")]
    DuplicateRuling { report: i64 },
    #[error("report {report}: its rulings disagree about the filing team or the kind")]
    RulingsDisagree { report: i64 },
    #[error("report {report}: team {team} is not in the scenario")]
    UnknownReportTeam { report: i64, team: TeamId },
    #[error("report {report} is listed twice")]
    DuplicateReport { report: i64 },
    #[error("report {report}: team {team} may not file {kind} reports")]
    ReportNotForRole { report: i64, team: TeamId, kind: ReportKind },
    #[error("report {report}: team {team} defends no systems, so it is no unit to attack")]
    NotAUnit { report: i64, team: TeamId },
    #[error("report {report}: the attack is on the attacking team's own systems")]
    AttackOnOwnTeam { report: i64 },
    #[error("report {report}: the scenario has no attack type `{attack_type}`")]
    UnknownAttackType { report: i64, attack_type: String },
    #[error("report {report}: the scenario's rubric has no criterion `{criterion}`")]
    UnknownCriterion { report: i64, criterion: String },
    #[error("report {report}: {share} % on `{criterion}` is above its largest share, {max} %")]
    ShareAboveMax { report: i64, criterion: String, share: u32, max: u32 },
    #[error("report {report} answers report {linked}, which is no attack result")]
    UnknownLinkedAttack { report: i64, linked: i64 },
    #[error("report {report} answers an attack on team {victim}, not one on the filing team")]
    LinkedElsewhere { report: i64, victim: TeamId },
}

/// A flag, by indices into the scorer's team and service lists. The derived order (victim,
/// service, store, planted tick) is the canonical order captures are applied in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct FlagKey {
    victim: u32,
    service: u32,
    store: u8,
    planted: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FlagState {
    /// Team indices, in the order the captures were applied.
    capturers: Vec<u32>,
    victim_nop: bool,
    /// saarCTF: the victim's rank before the tick the flag was planted in.
    victim_rank: u32,
    /// saarCTF: the number of active teams in the planting tick, if the victim's service was
    /// up then (a flag lost from a service that earned no SLA costs nothing).
    plant_active: Option<u32>,
}

/// Running state of one team × service. Histograms are keyed by integers so that the final
/// floating-point sums depend only on the counts, never on the order events arrived in.
#[derive(Debug, Clone)]
struct Cell {
    /// Flags captured (scored ones only).
    captured: u64,
    /// Captured flags by their current number of captures.
    by_captures: Histogram<u32>,
    /// saarCTF: Σ √(1/victim rank) over captured flags. A flag's rank never changes, so this
    /// is a running sum in canonical capture order, the same on every replay.
    rank_points: f64,
    /// Lost flags by (current captures, active teams at planting; 0 for FAUST).
    lost: Histogram<(u32, u32)>,
    /// saarCTF: Σ √active over up ticks, a running sum in tick order.
    sla_points: f64,
    /// ForcAD: rating and points won and lost. All formulas: ticks with a verdict, up ticks.
    rating: f64,
    gained: f64,
    lost_points: f64,
    checks: u64,
    passed: u64,
}

/// Counts by key, kept sorted by key, each with its key's weight (its points per item). The sum
/// runs in key order over `count × weight`, so it depends only on the counts; weights are
/// computed once per key, not every tick.
#[derive(Debug, Clone)]
struct Histogram<K> {
    entries: Vec<(K, u64, f64)>,
    weight: fn(K) -> f64,
}

impl<K: Ord + Copy> Histogram<K> {
    fn new(weight: fn(K) -> f64) -> Histogram<K> {
        Histogram { entries: Vec::new(), weight }
    }

    fn bump(&mut self, key: K) {
        match self.entries.binary_search_by(|e| e.0.cmp(&key)) {
            Ok(i) => self.entries[i].1 += 1,
            Err(i) => self.entries.insert(i, (key, 1, (self.weight)(key))),
        }
    }

    /// Takes one item off `key`. A key whose count drops to 0 keeps its entry: it adds +0.0 to
    /// the sum, which changes no bit of it, and counts move back and forth between the same
    /// few keys, so removing and inserting again would only shift the entries each time.
    fn unbump(&mut self, key: K) {
        if let Ok(i) = self.entries.binary_search_by(|e| e.0.cmp(&key)) {
            self.entries[i].1 -= 1;
        }
    }

    fn sum(&self) -> f64 {
        let mut total = 0.0;
        for &(_, n, w) in &self.entries {
            total += n as f64 * w;
        }
        total
    }
}

/// FxHash-style hashing for flag keys. The keys are validated game events (a team cannot
/// choose them freely), so a keyed hash buys nothing here and SipHash costs a third of a tick.
#[derive(Debug, Default, Clone, Copy)]
struct FlagHasher(u64);

impl Hasher for FlagHasher {
    fn finish(&self) -> u64 {
        // Multiply-rotate leaves the low bits (the table index) poorly mixed for keys this
        // regular; a final avalanche (MurmurHash3's fmix64) spreads them.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl FlagKey {
    /// Where the flag sits among the flags of its planting tick.
    fn slot(self) -> u64 {
        (u64::from(self.victim) << 16) | (u64::from(self.service) << 8) | u64::from(self.store)
    }
}

/// The flags planted in one tick and captured so far, by [`FlagKey::slot`].
type FlagMap = HashMap<u64, FlagState, BuildHasherDefault<FlagHasher>>;

/// What scoring remembers of a closed tick while the flags planted in it can be captured.
#[derive(Debug, Clone)]
struct TickFacts {
    /// Which cells were up.
    ok: Vec<bool>,
    /// saarCTF: the number of active teams.
    active: u32,
    /// Ranks (1 = best) before the tick, by team index: saarCTF values a flag by its victim's
    /// rank before it was planted.
    ranks_before: Vec<u32>,
    flags: FlagMap,
}

/// Scores a drill tick by tick. Pure: the engine owns the clock and the store.
#[derive(Debug, Clone)]
pub struct Scorer {
    formula: ScoringFormula,
    teams: Vec<ScoredTeam>,
    services: Vec<ScoredService>,
    /// Index into `teams` by team id; [`NO_INDEX`] for ids the drill does not have.
    team_index: Vec<u32>,
    /// Index into `services` by service id; [`NO_INDEX`] likewise.
    service_index: Vec<u32>,
    next_tick: Tick,
    cells: Vec<Cell>,
    /// How many ticks a flag can be captured in, from its planting tick on; `None`: forever.
    flag_lifetime: Option<u32>,
    /// The closed ticks whose flags can still be captured, oldest first; the first is
    /// `window_start`. Older ticks are dropped: what their flags earned is in the cells.
    window: VecDeque<TickFacts>,
    window_start: u32,
    /// Ranks (1 = best) after the latest closed tick, by team index; before the first tick
    /// every team is last.
    ranks: Vec<u32>,
}

impl Scorer {
    /// A scorer for a drill that has not started; the first tick to close is tick 0.
    pub fn new(
        formula: ScoringFormula,
        teams: &[ScoredTeam],
        services: &[ScoredService],
    ) -> Result<Scorer, ScoringError> {
        let mut teams = teams.to_vec();
        teams.sort_by_key(|t| t.id);
        if let Some(w) = teams.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(ScoringError::DuplicateTeam(w[0].id));
        }
        let mut services = services.to_vec();
        services.sort_by_key(|s| s.id);
        if let Some(w) = services.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(ScoringError::DuplicateService(w[0].id));
        }
        let team_index = dense_index(teams.iter().map(|t| usize::from(t.id.0)));
        let service_index = dense_index(services.iter().map(|s| usize::from(s.id.0)));
        let start = Cell::new(formula);
        let n = teams.len();
        Ok(Scorer {
            formula,
            cells: vec![start; n * services.len()],
            teams,
            services,
            team_index,
            service_index,
            next_tick: Tick(0),
            flag_lifetime: None,
            window: VecDeque::new(),
            window_start: 0,
            ranks: vec![n as u32; n],
        })
    }

    /// A scorer for a drill whose flags can be submitted for `ticks` ticks from their planting
    /// tick on (the scenario's `flag_lifetime`): it forgets flags once they expire, so its
    /// memory and time per tick stay flat over a long drill, and refuses captures of expired
    /// flags ([`ScoringError::Expired`]). The scores are the same as without it.
    pub fn with_flag_lifetime(mut self, ticks: u32) -> Scorer {
        self.flag_lifetime = Some(ticks.max(1));
        self
    }

    pub fn formula(&self) -> ScoringFormula {
        self.formula
    }

    /// The tick [`Scorer::close_tick`] expects next.
    pub fn next_tick(&self) -> Tick {
        self.next_tick
    }

    fn cell_index(&self, team: u32, service: u32) -> usize {
        cell_at(self.services.len(), team, service)
    }

    /// Applies one closed tick and returns every team's cumulative score after it.
    ///
    /// On error nothing is applied and the same tick may be closed again with fixed events.
    pub fn close_tick(&mut self, events: &TickEvents) -> Result<TickScores, ScoringError> {
        let (verdicts, captures) = self.validate(events)?;
        let tick = events.tick;
        self.next_tick = tick.next();
        self.apply_verdicts(&verdicts);
        self.apply_captures(&captures);
        let scores = self.scores(tick);
        self.ranks = formulas::ranks(&scores);
        self.forget_expired();
        Ok(scores)
    }

    /// The facts of a closed tick still in the window.
    fn facts(&self, tick: u32) -> Option<&TickFacts> {
        self.window.get(tick.checked_sub(self.window_start)? as usize)
    }

    /// Drops the ticks whose flags can no longer be captured from the next tick on.
    fn forget_expired(&mut self) {
        let Some(lifetime) = self.flag_lifetime else { return };
        // A flag planted in tick p can be captured in ticks p ..= p + lifetime - 1.
        let oldest = (self.next_tick.0 + 1).saturating_sub(lifetime);
        while self.window_start < oldest && self.window.pop_front().is_some() {
            self.window_start += 1;
        }
    }

    /// Checks a tick against the scenario and the flags already captured, and returns its
    /// verdicts as (cell, up) and its captures as (flag, attacker), both in canonical order.
    #[allow(clippy::type_complexity)]
    fn validate(&self, ev: &TickEvents) -> Result<(Vec<(usize, bool)>, Vec<(FlagKey, u32)>), ScoringError> {
        let tick = ev.tick;
        if tick != self.next_tick {
            return Err(ScoringError::TickOutOfOrder { expected: self.next_tick, got: tick });
        }
        let known = |index: &[u32], id: usize| index.get(id).copied().filter(|&i| i != NO_INDEX);
        let team =
            |id: TeamId| known(&self.team_index, usize::from(id.0)).ok_or(ScoringError::UnknownTeam { tick, team: id });
        let service = |id: ServiceId| {
            known(&self.service_index, usize::from(id.0)).ok_or(ScoringError::UnknownService { tick, service: id })
        };

        let mut verdicts = Vec::with_capacity(ev.verdicts.len());
        for v in &ev.verdicts {
            let t = team(v.team)?;
            let s = service(v.service)?;
            if !self.teams[t as usize].role.defends() {
                return Err(ScoringError::VerdictForAttacker { tick, team: v.team });
            }
            verdicts.push((self.cell_index(t, s), !v.verdict.is_teams_fault()));
        }
        verdicts.sort_unstable();
        if let Some(w) = verdicts.windows(2).find(|w| w[0].0 == w[1].0) {
            let (t, s) = (w[0].0 / self.services.len(), w[0].0 % self.services.len());
            return Err(ScoringError::DuplicateVerdict { tick, team: self.teams[t].id, service: self.services[s].id });
        }

        let mut captures = Vec::with_capacity(ev.captures.len());
        for c in &ev.captures {
            let a = team(c.attacker)?;
            let v = team(c.victim)?;
            let s = service(c.service)?;
            let attacker = self.teams[a as usize];
            if !attacker.role.attacks() || attacker.nop {
                return Err(ScoringError::NotAnAttacker { tick, team: c.attacker });
            }
            if !self.teams[v as usize].role.defends() {
                return Err(ScoringError::NotADefender { tick, team: c.victim });
            }
            if a == v {
                return Err(ScoringError::SelfCapture { tick, team: c.attacker });
            }
            if c.store.0 >= self.services[s as usize].flag_stores {
                return Err(ScoringError::NoSuchStore { tick, service: c.service, store: c.store });
            }
            if c.submitted != tick {
                return Err(ScoringError::WrongTick { tick, submitted: c.submitted });
            }
            if c.planted > tick {
                return Err(ScoringError::PlantedLater { tick, planted: c.planted });
            }
            if let Some(lifetime) = self.flag_lifetime
                && u64::from(tick.0) >= u64::from(c.planted.0) + u64::from(lifetime)
            {
                return Err(ScoringError::Expired { tick, planted: c.planted, lifetime });
            }
            let key = FlagKey { victim: v, service: s, store: c.store.0, planted: c.planted.0 };
            // The current tick's facts are added when it is applied: none of its flags is
            // captured yet.
            let known = self.facts(key.planted).and_then(|f| f.flags.get(&key.slot()));
            if known.is_some_and(|f| f.capturers.contains(&a)) {
                return Err(ScoringError::DuplicateCapture { tick, attacker: c.attacker, victim: c.victim });
            }
            captures.push((key, a));
        }
        captures.sort_unstable();
        if let Some(w) = captures.windows(2).find(|w| w[0] == w[1]) {
            let (key, a) = w[0];
            return Err(ScoringError::DuplicateCapture {
                tick,
                attacker: self.teams[a as usize].id,
                victim: self.teams[key.victim as usize].id,
            });
        }
        Ok((verdicts, captures))
    }

    fn apply_verdicts(&mut self, verdicts: &[(usize, bool)]) {
        let mut ok = vec![false; self.cells.len()];
        let mut checked = vec![false; self.cells.len()];
        for &(cell, up) in verdicts {
            ok[cell] = up;
            checked[cell] = true;
        }
        // saarCTF: a team is active when at least one of its services is up.
        let n_services = self.services.len();
        let active = (0..self.teams.len())
            .filter(|&t| ok[t * n_services..(t + 1) * n_services].iter().any(|&u| u))
            .count()
            .max(1) as u32;
        let saar = self.formula == ScoringFormula::Saarctf;
        for (i, cell) in self.cells.iter_mut().enumerate() {
            if checked[i] {
                cell.checks += 1;
            }
            if ok[i] {
                cell.passed += 1;
                if saar {
                    cell.sla_points += f64::from(active).sqrt();
                }
            }
        }
        self.window.push_back(TickFacts { ok, active, ranks_before: self.ranks.clone(), flags: FlagMap::default() });
    }

    fn apply_captures(&mut self, captures: &[(FlagKey, u32)]) {
        let Scorer { formula, teams, services, cells, window, window_start, .. } = self;
        let n_services = services.len();
        let mut i = 0;
        let mut new = Vec::new();
        while i < captures.len() {
            let key = captures[i].0;
            let end = i + captures[i..].iter().take_while(|c| c.0 == key).count();
            new.clear();
            new.extend(captures[i..end].iter().map(|c| c.1));
            i = end;

            // Validation kept every capture inside the window.
            let TickFacts { ok, active, ranks_before, flags } = &mut window[(key.planted - *window_start) as usize];
            let flag = flags.entry(key.slot()).or_insert_with(|| FlagState {
                capturers: Vec::new(),
                victim_nop: teams[key.victim as usize].nop,
                victim_rank: ranks_before[key.victim as usize],
                plant_active: ok[cell_at(n_services, key.victim, key.service)].then_some(*active),
            });
            match formula {
                ScoringFormula::Faust | ScoringFormula::Saarctf => {
                    count_captures(cells, n_services, *formula == ScoringFormula::Saarctf, key, flag, &new)
                }
                ScoringFormula::Forcad => {
                    if !flag.victim_nop {
                        for &a in &new {
                            forcad_capture(cells, n_services, a, key);
                        }
                    }
                }
            }
            flag.capturers.extend_from_slice(&new);
        }
    }

    fn scores(&self, tick: Tick) -> TickScores {
        let n_teams = self.teams.len();
        let teams = self
            .teams
            .iter()
            .enumerate()
            .map(|(t, team)| {
                let services: Vec<ServiceScore> = self
                    .services
                    .iter()
                    .enumerate()
                    .map(|(s, service)| {
                        let cell = &self.cells[self.cell_index(t as u32, s as u32)];
                        let score = formulas::cell_score(self.formula, cell, team, service, n_teams);
                        ServiceScore { service: service.id, score }
                    })
                    .collect();
                let (mut attack, mut defence, mut sla) = (0.0, 0.0, 0.0);
                for s in &services {
                    attack += s.score.attack;
                    defence += s.score.defence;
                    sla += s.score.sla;
                }
                TeamTick { team: team.id, score: TeamScore::new(attack, defence, sla), services }
            })
            .collect();
        TickScores { tick, teams }
    }
}

impl Cell {
    fn new(formula: ScoringFormula) -> Cell {
        let w = formulas::weights(formula);
        Cell {
            captured: 0,
            by_captures: Histogram::new(w.by_captures),
            rank_points: 0.0,
            lost: Histogram::new(w.lost),
            sla_points: 0.0,
            rating: FORCAD_DEFAULT_SCORE,
            gained: 0.0,
            lost_points: 0.0,
            checks: 0,
            passed: 0,
        }
    }
}

/// Marks an id no team or service has in [`dense_index`]'s table.
const NO_INDEX: u32 = u32::MAX;

/// A table from ids (small integers) to their position in `ids`' order.
fn dense_index(ids: impl Iterator<Item = usize> + Clone) -> Vec<u32> {
    let mut index = vec![NO_INDEX; ids.clone().max().map_or(0, |m| m + 1)];
    for (i, id) in ids.enumerate() {
        index[id] = i as u32;
    }
    index
}

fn cell_at(n_services: usize, team: u32, service: u32) -> usize {
    team as usize * n_services + service as usize
}

/// FAUST and saarCTF: a flag's value depends on how many teams captured it, so every
/// earlier capturer's histogram moves along with the victim's.
fn count_captures(cells: &mut [Cell], n_services: usize, saar: bool, key: FlagKey, flag: &FlagState, new: &[u32]) {
    if saar && flag.victim_nop {
        return;
    }
    let before = flag.capturers.len() as u32;
    let after = before + new.len() as u32;
    if !flag.victim_nop {
        for &a in &flag.capturers {
            let c = &mut cells[cell_at(n_services, a, key.service)];
            c.by_captures.unbump(before);
            c.by_captures.bump(after);
        }
        for &a in new {
            let c = &mut cells[cell_at(n_services, a, key.service)];
            c.captured += 1;
            c.by_captures.bump(after);
            if saar {
                c.rank_points += 1.0 / f64::from(flag.victim_rank).sqrt();
            }
        }
    }
    let active = match (saar, flag.plant_active) {
        (false, _) => Some(0),
        (true, a) => a,
    };
    if let Some(a) = active {
        let c = &mut cells[cell_at(n_services, key.victim, key.service)];
        if before > 0 {
            c.lost.unbump((before, a));
        }
        c.lost.bump((after, a));
    }
}

/// ForcAD: ratings move with every capture, in the canonical order.
fn forcad_capture(cells: &mut [Cell], n_services: usize, attacker: u32, key: FlagKey) {
    let ai = cell_at(n_services, attacker, key.service);
    let vi = cell_at(n_services, key.victim, key.service);
    let (gain, loss) = formulas::forcad_delta(cells[ai].rating, cells[vi].rating);
    let a = &mut cells[ai];
    a.rating += gain;
    a.gained += gain;
    let v = &mut cells[vi];
    v.rating += loss;
    v.lost_points += loss;
}

/// Recomputes every tick's scores from the stored events, for audits and replays.
///
/// Gives exactly what the engine's [`Scorer`] returned tick by tick, whatever order the
/// events of a tick are listed in.
pub fn recompute(
    formula: ScoringFormula,
    teams: &[ScoredTeam],
    services: &[ScoredService],
    ticks: &[TickEvents],
) -> Result<Vec<TickScores>, ScoringError> {
    let mut scorer = Scorer::new(formula, teams, services)?;
    ticks.iter().map(|t| scorer.close_tick(t)).collect()
}
