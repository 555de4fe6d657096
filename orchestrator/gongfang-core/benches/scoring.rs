//! How long scoring takes at scale: one tick of 500 teams × 10 services with ~20 captures per
//! team, per formula, by the engine's scorer (which forgets flags once they expire) and by one
//! that keeps every flag, next to recomputing a whole 100-tick drill from its events; then one
//! tick of 100 to 1,000 teams, to show how the cost grows with the field.
//!
//! Run with `cargo bench -p gongfang-core --bench scoring`. Prints the median over the timed
//! ticks, each closed by a scorer that lives through the drill as the engine's does; no assertions.
//! Times are the thread's CPU time (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, which resolves
//! nanoseconds, where `/proc/thread-self/schedstat` advances in scheduler ticks), so a busy
//! machine does not inflate them; where that clock is missing, wall-clock time.

use std::hint::black_box;
use std::time::{Duration, Instant};

use gongfang_core::scenario::{Role, ScoringFormula};
use gongfang_core::scoring::{Capture, ScoredService, ScoredTeam, Scorer, ServiceVerdict, TickEvents, recompute};
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick, Verdict};

const TEAMS: u16 = 500;
const FIELDS: [u16; 4] = [100, 250, 500, 1_000];
const SERVICES: u8 = 10;
const STORES: u8 = 2;
const CAPTURES_PER_TEAM: u64 = 20;
const LIFETIME: u32 = 5;
const TICKS: u32 = 100;
/// Ticks timed in the scaling table, after the same 50 warm-up ticks.
const RUNS: usize = 21;

/// splitmix64: reproducible games without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

type Game = (Vec<ScoredTeam>, Vec<ScoredService>, Vec<TickEvents>);

fn game(n_teams: u16, n_ticks: u32) -> Game {
    let teams: Vec<ScoredTeam> =
        (1..=n_teams).map(|id| ScoredTeam { id: TeamId(id), role: Role::Both, nop: id == n_teams }).collect();
    let services: Vec<ScoredService> =
        (1..=SERVICES).map(|id| ScoredService { id: ServiceId(id), flag_stores: STORES }).collect();
    let mut rng = Rng(42);
    let mut seen = std::collections::HashSet::new();
    let ticks = (0..n_ticks)
        .map(|t| {
            let mut verdicts = Vec::new();
            for team in &teams {
                for s in &services {
                    let verdict = if rng.below(10) < 8 { Verdict::Ok } else { Verdict::ALL[rng.below(5) as usize] };
                    verdicts.push(ServiceVerdict { team: team.id, service: s.id, verdict });
                }
            }
            let mut captures = Vec::new();
            // Attacks concentrate on the weaker half of the field, so flags get many captures.
            for a in teams.iter().filter(|t| !t.nop) {
                for _ in 0..CAPTURES_PER_TEAM {
                    let victim = TeamId(1 + (n_teams / 2) + rng.below(u64::from(n_teams / 2)) as u16);
                    let c = Capture {
                        attacker: a.id,
                        victim,
                        service: ServiceId(1 + rng.below(u64::from(SERVICES)) as u8),
                        store: StoreIdx(rng.below(u64::from(STORES)) as u8),
                        planted: Tick(t.saturating_sub(rng.below(u64::from(LIFETIME)) as u32)),
                        submitted: Tick(t),
                    };
                    if victim != a.id && seen.insert((c.attacker, c.victim, c.service, c.store, c.planted)) {
                        captures.push(c);
                    }
                }
            }
            TickEvents { tick: Tick(t), verdicts, captures }
        })
        .collect();
    (teams, services, ticks)
}

/// A stopwatch over the calling thread's CPU time, falling back to the wall clock.
struct Stopwatch {
    cpu: Option<u64>,
    wall: Instant,
}

fn thread_cpu_ns() -> Option<u64> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    u64::try_from(t.tv_sec()).ok()?.checked_mul(1_000_000_000)?.checked_add(u64::try_from(t.tv_nsec()).ok()?)
}

impl Stopwatch {
    fn start() -> Stopwatch {
        Stopwatch { cpu: thread_cpu_ns(), wall: Instant::now() }
    }

    fn elapsed(&self) -> Duration {
        match (self.cpu, thread_cpu_ns()) {
            (Some(a), Some(b)) => Duration::from_nanos(b - a),
            _ => self.wall.elapsed(),
        }
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What one tick costs a long-lived scorer, as in the engine: each of the ticks after the first
/// `warm` closed and timed one after the other; their median.
fn per_tick(formula: ScoringFormula, game: &Game, warm: usize, forget: bool) -> Duration {
    let (teams, services, ticks) = game;
    let mut scorer = Scorer::new(formula, teams, services).unwrap();
    if forget {
        scorer = scorer.with_flag_lifetime(LIFETIME);
    }
    for t in &ticks[..warm] {
        scorer.close_tick(t).unwrap();
    }
    median(
        ticks[warm..]
            .iter()
            .map(|t| {
                let start = Stopwatch::start();
                black_box(scorer.close_tick(t).unwrap());
                start.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let full = game(TEAMS, TICKS);
    let captures: usize = full.2.iter().map(|t| t.captures.len()).sum();
    println!(
        "game: {TEAMS} teams × {SERVICES} services, {TICKS} ticks, {} captures/tick on average, flags live {LIFETIME} ticks",
        captures / full.2.len()
    );
    // Ticks 50 to 99 of a drill: flags have history, captures move buckets.
    let warm = 50usize;
    for formula in [ScoringFormula::Faust, ScoringFormula::Forcad, ScoringFormula::Saarctf] {
        let forgets = per_tick(formula, &full, warm, true);
        let keeps = per_tick(formula, &full, warm, false);
        let all = median(
            (0..5)
                .map(|_| {
                    let start = Stopwatch::start();
                    black_box(recompute(formula, &full.0, &full.1, &full.2).unwrap());
                    start.elapsed()
                })
                .collect(),
        );
        println!(
            "{formula:?}: one tick {:.2} ms (target ≤ 5 ms); keeping every flag {:.2} ms = {:.2}×; \
             recompute {TICKS} ticks {:.1} ms = {:.1}× one tick",
            ms(forgets),
            ms(keeps),
            keeps.as_secs_f64() / forgets.as_secs_f64(),
            ms(all),
            all.as_secs_f64() / forgets.as_secs_f64()
        );
    }
    println!("FAUST, one tick by the size of the field ({SERVICES} services, ~{CAPTURES_PER_TEAM} captures per team):");
    for n in FIELDS {
        let g = game(n, (warm + RUNS) as u32);
        let t = per_tick(ScoringFormula::Faust, &g, warm, true);
        println!("  {n:>5} teams: {:.2} ms, {:.2} µs per team", ms(t), t.as_secs_f64() * 1e6 / f64::from(n));
    }
}
