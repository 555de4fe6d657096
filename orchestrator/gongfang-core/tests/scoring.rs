//! Scoring as organisers and auditors rely on it: hand-worked games for each formula, role
//! awareness, rejected events, and the promise that recomputing from stored events gives the
//! stored scores exactly.

use gongfang_core::scenario::{Role, ScoringFormula};
use gongfang_core::scoring::{
    Capture, ScoredService, ScoredTeam, Scorer, ScoringError, ServiceVerdict, TeamScore, TickEvents, TickScores, rank,
    recompute,
};
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick, Verdict};
use proptest::prelude::*;

const EPS: f64 = 1e-9;

fn team(id: u16, role: Role) -> ScoredTeam {
    ScoredTeam { id: TeamId(id), role, nop: false }
}

fn svc(id: u8, flag_stores: u8) -> ScoredService {
    ScoredService { id: ServiceId(id), flag_stores }
}

fn verdict(team: u16, service: u8, verdict: Verdict) -> ServiceVerdict {
    ServiceVerdict { team: TeamId(team), service: ServiceId(service), verdict }
}

fn cap(attacker: u16, victim: u16, service: u8, planted: u32, submitted: u32) -> Capture {
    Capture {
        attacker: TeamId(attacker),
        victim: TeamId(victim),
        service: ServiceId(service),
        store: StoreIdx(0),
        planted: Tick(planted),
        submitted: Tick(submitted),
    }
}

fn tick(t: u32, verdicts: Vec<ServiceVerdict>, captures: Vec<Capture>) -> TickEvents {
    TickEvents { tick: Tick(t), verdicts, captures }
}

fn play(
    formula: ScoringFormula,
    teams: &[ScoredTeam],
    services: &[ScoredService],
    ticks: &[TickEvents],
) -> Vec<TickScores> {
    let mut scorer = Scorer::new(formula, teams, services).unwrap();
    ticks.iter().map(|t| scorer.close_tick(t).unwrap()).collect()
}

#[track_caller]
fn assert_score(scores: &TickScores, team: u16, attack: f64, defence: f64, sla: f64) {
    let got = scores.team(TeamId(team)).unwrap().score;
    let want = TeamScore { attack, defence, sla, total: attack + defence + sla };
    for (name, g, w) in [
        ("attack", got.attack, want.attack),
        ("defence", got.defence, want.defence),
        ("sla", got.sla, want.sla),
        ("total", got.total, want.total),
    ] {
        assert!((g - w).abs() < EPS, "tick {} team {team} {name}: got {g}, want {w}", scores.tick);
    }
}

/// FAUST, three symmetric teams, one service with one flag store; √3 = 1.7320508075688772.
///
/// Tick 0: 1 up, 2 up, 3 down. Team 1 captures team 2's tick-0 flag (1 capture).
///   team 1: attack 1 + 1/1 = 2, SLA 1 × √3            → 3.7320508
///   team 2: defence −1^0.75 = −1, SLA √3               → 0.7320508
///   team 3: nothing                                    → 0
/// Tick 1: 1 up, 2 mumble, 3 checker error (not its fault: counts as up).
///   Team 3 captures team 2's tick-0 flag (now 2 captures) and team 1's tick-1 flag.
///   team 1: attack 1 + 1/2 = 1.5 (its tick-0 capture lost value), defence −1, SLA 2√3 → 3.9641016
///   team 2: defence −2^0.75 = −1.6817928, SLA √3 (one up tick)                       → 0.0502580
///   team 3: attack (1 + 1/2) + (1 + 1/1) = 3.5, SLA √3                                 → 5.2320508
#[test]
fn faust_hand_computed() {
    use Verdict::*;
    let teams = [team(1, Role::Both), team(2, Role::Both), team(3, Role::Both)];
    let ticks = [
        tick(0, vec![verdict(1, 1, Ok), verdict(2, 1, Ok), verdict(3, 1, Down)], vec![cap(1, 2, 1, 0, 0)]),
        tick(
            1,
            vec![verdict(1, 1, Ok), verdict(2, 1, Mumble), verdict(3, 1, CheckerError)],
            vec![cap(3, 2, 1, 0, 1), cap(3, 1, 1, 1, 1)],
        ),
    ];
    let s = play(ScoringFormula::Faust, &teams, &[svc(1, 1)], &ticks);
    let r3 = 3f64.sqrt();
    assert_score(&s[0], 1, 2.0, 0.0, r3);
    assert_score(&s[0], 2, 0.0, -1.0, r3);
    assert_score(&s[0], 3, 0.0, 0.0, 0.0);
    assert_score(&s[1], 1, 1.5, -1.0, 2.0 * r3);
    assert_score(&s[1], 2, 0.0, -(2f64.powf(0.75)), r3);
    assert_score(&s[1], 3, 3.5, 0.0, r3);
    assert!((s[1].team(TeamId(1)).unwrap().score.total - 3.964_101_615_137_754_4).abs() < EPS);
    assert!((s[1].team(TeamId(2)).unwrap().score.total - 0.050_257_977_061_448_19).abs() < EPS);
    assert_eq!(s[1].ranking(), vec![TeamId(3), TeamId(1), TeamId(2)]);
}

/// ForcAD, a red team (attacker only) against a blue team (defender only), one service.
/// Defaults: rating 2500, hardness 10 → scale = 50√10 = 158.1138830, norm = ln(ln 10)/12 =
/// 0.0695027; a capture is worth scale / (1 + e^((√A − √V)·norm)).
///
/// Tick 0: blue up. Red captures blue's flag: equal ratings → 158.1138830 / 2 = 79.0569415.
///   red:  attack 79.0569415, no SLA (no services)      → 79.0569415
///   blue: defence −79.0569415, SLA 2500 × 1/1          → 2420.9430585
/// Tick 1: blue down. Red captures blue's tick-1 flag: √2579.0569415 − √2420.9430585 = 1.5813366,
///   gain = 158.1138830 / (1 + e^(1.5813366 × 0.0695027)) = 74.7168473.
///   red:  attack 79.0569415 + 74.7168473 = 153.7737888
///   blue: SLA fraction 1/2: defence −153.7737888 / 2 = −76.8868944, SLA 1250 → 1173.1131056
#[test]
fn forcad_hand_computed() {
    let teams = [team(1, Role::Attacker), team(2, Role::Defender)];
    let ticks = [
        tick(0, vec![verdict(2, 1, Verdict::Ok)], vec![cap(1, 2, 1, 0, 0)]),
        tick(1, vec![verdict(2, 1, Verdict::Down)], vec![cap(1, 2, 1, 1, 1)]),
    ];
    let s = play(ScoringFormula::Forcad, &teams, &[svc(1, 1)], &ticks);
    let first = 79.056_941_504_209_49;
    let second = 74.716_847_289_818_13;
    assert_score(&s[0], 1, first, 0.0, 0.0);
    assert_score(&s[0], 2, 0.0, -first, 2500.0);
    assert_score(&s[1], 1, first + second, 0.0, 0.0);
    assert_score(&s[1], 2, 0.0, -(first + second) / 2.0, 1250.0);
    assert!((s[1].team(TeamId(2)).unwrap().score.total - 1_173.113_105_602_986_3).abs() < EPS);
}

/// saarCTF, two symmetric teams and a red team, one service with one flag store.
///
/// Tick 0: 1 up, 2 up → 2 active teams, each up service earns √2.
///   Team 1 captures team 2's tick-0 flag. Tick 0 flags value the victim at rank 3 (all teams):
///   1 + √(1/1) + √(1/3) = 2.5773503. Team 2 loses (1/2)^0.3 × √2 = 2^0.2 = 1.1486984.
///   team 1: 2.5773503 + 1.4142136 = 3.9915638; team 2: 1.4142136 − 1.1486984 = 0.2655152.
///   Ranks after tick 0: team 1 first, team 2 second, team 3 third.
/// Tick 1: 1 up, 2 down → 1 active team, team 1 earns √1 = 1.
///   Team 3 captures team 2's tick-0 flag (2 captures now: worth 1 + √(1/2) + √(1/3) = 2.2844571
///   to each capturer) and team 1's tick-1 flag (1 capture, team 1 was ranked 1st: 1 + 1 + 1 = 3).
///   team 1: attack 2.2844571, defence −(1/1)^0.3 × √1 = −1, SLA √2 + 1           → 3.6986706
///   team 2: defence −(2/2)^0.3 × √2 = −√2, SLA √2                                 → 0
///   team 3: attack 2.2844571 + 3 = 5.2844571                                       → 5.2844571
#[test]
fn saarctf_hand_computed() {
    use Verdict::*;
    let teams = [team(1, Role::Both), team(2, Role::Both), team(3, Role::Attacker)];
    let ticks = [
        tick(0, vec![verdict(1, 1, Ok), verdict(2, 1, Ok)], vec![cap(1, 2, 1, 0, 0)]),
        tick(1, vec![verdict(1, 1, Ok), verdict(2, 1, Down)], vec![cap(3, 2, 1, 0, 1), cap(3, 1, 1, 1, 1)]),
    ];
    let s = play(ScoringFormula::Saarctf, &teams, &[svc(1, 1)], &ticks);
    let r2 = 2f64.sqrt();
    let first = 2.0 + 1.0 / 3f64.sqrt();
    let shared = 1.0 + 0.5f64.sqrt() + 1.0 / 3f64.sqrt();
    assert_score(&s[0], 1, first, 0.0, r2);
    assert_score(&s[0], 2, 0.0, -(2f64.powf(0.2)), r2);
    assert_score(&s[0], 3, 0.0, 0.0, 0.0);
    assert_score(&s[1], 1, shared, -1.0, r2 + 1.0);
    assert_score(&s[1], 2, 0.0, -r2, r2);
    assert_score(&s[1], 3, shared + 3.0, 0.0, 0.0);
    assert!((s[1].team(TeamId(1)).unwrap().score.total - 3.698_670_612_749_268).abs() < EPS);
}

#[test]
fn saarctf_divides_flag_points_by_flag_stores() {
    let teams = [team(1, Role::Attacker), team(2, Role::Defender)];
    let mut c = cap(1, 2, 1, 0, 0);
    c.store = StoreIdx(1);
    let ticks = [tick(0, vec![verdict(2, 1, Verdict::Ok)], vec![c])];
    let s = play(ScoringFormula::Saarctf, &teams, &[svc(1, 2)], &ticks);
    // Victim at rank 2 (two teams) in tick 0: (1 + 1 + √(1/2)) / 2 stores.
    assert_score(&s[0], 1, (2.0 + 0.5f64.sqrt()) / 2.0, 0.0, 0.0);
    // One active team: (1/1)^0.3 × √1 / 2 stores; SLA √1.
    assert_score(&s[0], 2, 0.0, -0.5, 1.0);
}

#[test]
fn nop_flags_earn_nothing_but_faust_still_counts_the_loss() {
    let nop = ScoredTeam { id: TeamId(9), role: Role::Defender, nop: true };
    let teams = [team(1, Role::Attacker), nop];
    let ticks = [tick(0, vec![verdict(9, 1, Verdict::Ok)], vec![cap(1, 9, 1, 0, 0)])];
    let faust = play(ScoringFormula::Faust, &teams, &[svc(1, 1)], &ticks);
    assert_score(&faust[0], 1, 0.0, 0.0, 0.0);
    assert_score(&faust[0], 9, 0.0, -1.0, 2f64.sqrt());
    let forcad = play(ScoringFormula::Forcad, &teams, &[svc(1, 1)], &ticks);
    assert_score(&forcad[0], 1, 0.0, 0.0, 0.0);
    assert_score(&forcad[0], 9, 0.0, 0.0, 2500.0);
}

#[test]
fn roles_decide_which_terms_a_team_has() {
    use Verdict::*;
    let teams = [team(1, Role::Attacker), team(2, Role::Defender), team(3, Role::Both)];
    let ticks = [tick(
        0,
        vec![verdict(2, 1, Ok), verdict(3, 1, Ok)],
        vec![cap(1, 2, 1, 0, 0), cap(1, 3, 1, 0, 0), cap(3, 2, 1, 0, 0)],
    )];
    for formula in [ScoringFormula::Faust, ScoringFormula::Forcad, ScoringFormula::Saarctf] {
        let s = play(formula, &teams, &[svc(1, 1)], &ticks);
        let red = s[0].team(TeamId(1)).unwrap().score;
        let blue = s[0].team(TeamId(2)).unwrap().score;
        let both = s[0].team(TeamId(3)).unwrap().score;
        assert!(red.attack > 0.0 && red.defence == 0.0 && red.sla == 0.0, "{formula:?}: {red:?}");
        assert!(blue.attack == 0.0 && blue.defence < 0.0 && blue.sla > 0.0, "{formula:?}: {blue:?}");
        assert!(both.attack > 0.0 && both.defence < 0.0 && both.sla > 0.0, "{formula:?}: {both:?}");
        // Nothing lost shows as 0, not -0, in the scoreboard's JSON.
        let red_service = s[0].team(TeamId(1)).unwrap().services[0].score;
        assert_eq!(serde_json::to_string(&red_service.defence).unwrap(), "0.0", "{formula:?}");
    }
    // An attacker-only team has no services, so a verdict for it is a mistake upstream.
    let mut scorer = Scorer::new(ScoringFormula::Faust, &teams, &[svc(1, 1)]).unwrap();
    let err = scorer.close_tick(&tick(0, vec![verdict(1, 1, Ok)], vec![])).unwrap_err();
    assert_eq!(err, ScoringError::VerdictForAttacker { tick: Tick(0), team: TeamId(1) });
}

#[test]
fn ranking_breaks_ties_by_team_id() {
    let teams = [team(3, Role::Both), team(1, Role::Both), team(2, Role::Both)];
    let ticks = [tick(0, vec![verdict(1, 1, Verdict::Ok), verdict(3, 1, Verdict::Ok)], vec![])];
    let s = play(ScoringFormula::Faust, &teams, &[svc(1, 1)], &ticks);
    assert_eq!(s[0].teams.iter().map(|t| t.team).collect::<Vec<_>>(), vec![TeamId(1), TeamId(2), TeamId(3)]);
    assert_eq!(s[0].ranking(), vec![TeamId(1), TeamId(3), TeamId(2)]);
    assert_eq!(rank(&s[0].teams[1..]), vec![TeamId(3), TeamId(2)]);
}

#[test]
fn impossible_events_are_rejected_and_change_nothing() {
    let teams = [team(1, Role::Both), team(2, Role::Both), team(3, Role::Defender)];
    let services = [svc(1, 1)];
    let mut scorer = Scorer::new(ScoringFormula::Faust, &teams, &services).unwrap();
    let t0 = Tick(0);
    let mut bad_store = cap(1, 2, 1, 0, 0);
    bad_store.store = StoreIdx(1);
    let cases = [
        (tick(1, vec![], vec![]), ScoringError::TickOutOfOrder { expected: t0, got: Tick(1) }),
        (tick(0, vec![verdict(7, 1, Verdict::Ok)], vec![]), ScoringError::UnknownTeam { tick: t0, team: TeamId(7) }),
        (
            tick(0, vec![verdict(1, 4, Verdict::Ok)], vec![]),
            ScoringError::UnknownService { tick: t0, service: ServiceId(4) },
        ),
        (
            tick(0, vec![verdict(1, 1, Verdict::Ok), verdict(1, 1, Verdict::Down)], vec![]),
            ScoringError::DuplicateVerdict { tick: t0, team: TeamId(1), service: ServiceId(1) },
        ),
        (tick(0, vec![], vec![cap(3, 1, 1, 0, 0)]), ScoringError::NotAnAttacker { tick: t0, team: TeamId(3) }),
        (tick(0, vec![], vec![cap(1, 1, 1, 0, 0)]), ScoringError::SelfCapture { tick: t0, team: TeamId(1) }),
        (
            tick(0, vec![], vec![bad_store]),
            ScoringError::NoSuchStore { tick: t0, service: ServiceId(1), store: StoreIdx(1) },
        ),
        (tick(0, vec![], vec![cap(1, 2, 1, 0, 3)]), ScoringError::WrongTick { tick: t0, submitted: Tick(3) }),
        (tick(0, vec![], vec![cap(1, 2, 1, 2, 0)]), ScoringError::PlantedLater { tick: t0, planted: Tick(2) }),
        (
            tick(0, vec![], vec![cap(1, 2, 1, 0, 0), cap(1, 2, 1, 0, 0)]),
            ScoringError::DuplicateCapture { tick: t0, attacker: TeamId(1), victim: TeamId(2) },
        ),
    ];
    for (events, want) in cases {
        assert_eq!(scorer.close_tick(&events).unwrap_err(), want);
        assert_eq!(scorer.next_tick(), t0);
    }
    let good = scorer.close_tick(&tick(0, vec![verdict(2, 1, Verdict::Ok)], vec![cap(1, 2, 1, 0, 0)])).unwrap();
    assert_eq!(
        good,
        play(
            ScoringFormula::Faust,
            &teams,
            &services,
            &[tick(0, vec![verdict(2, 1, Verdict::Ok)], vec![cap(1, 2, 1, 0, 0)])]
        )[0]
    );
    // The same flag again in a later tick is still a duplicate.
    let again = scorer.close_tick(&tick(1, vec![], vec![cap(1, 2, 1, 0, 1)])).unwrap_err();
    assert_eq!(again, ScoringError::DuplicateCapture { tick: Tick(1), attacker: TeamId(1), victim: TeamId(2) });
    assert_eq!(
        Scorer::new(ScoringFormula::Faust, &[team(1, Role::Both), team(1, Role::Both)], &services).unwrap_err(),
        ScoringError::DuplicateTeam(TeamId(1))
    );
}

// ---------------------------------------------------------------------------------------------
// Random games: recomputation and an independent, deliberately naive reading of each formula.

/// A small deterministic generator, so a failing seed replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Game {
    teams: Vec<ScoredTeam>,
    services: Vec<ScoredService>,
    ticks: Vec<TickEvents>,
}

fn random_game(seed: u64, n_teams: u16, n_services: u8, n_ticks: u32, lifetime: u32) -> Game {
    let mut rng = Rng(seed);
    let roles = [Role::Attacker, Role::Defender, Role::Both];
    let mut teams: Vec<ScoredTeam> =
        (1..=n_teams).map(|id| team(id * 3 % 17 + 1, roles[rng.below(3) as usize])).collect();
    teams[0].role = Role::Both;
    teams[1].role = Role::Defender;
    if n_teams > 2 && rng.below(2) == 0 {
        teams[1].nop = true;
    }
    let services: Vec<ScoredService> = (1..=n_services).map(|id| svc(id, 1 + rng.below(3) as u8)).collect();
    let mut seen = std::collections::HashSet::new();
    let mut ticks = Vec::new();
    for t in 0..n_ticks {
        let mut verdicts = Vec::new();
        for tm in teams.iter().filter(|t| t.role.defends()) {
            for s in &services {
                let pick = rng.below(7) as usize;
                if pick < Verdict::ALL.len() {
                    // Skew towards ok so SLA terms are rich.
                    let v = if rng.below(2) == 0 { Verdict::Ok } else { Verdict::ALL[pick] };
                    verdicts.push(ServiceVerdict { team: tm.id, service: s.id, verdict: v });
                }
            }
        }
        let mut captures = Vec::new();
        for a in teams.iter().filter(|t| t.role.attacks() && !t.nop) {
            for _ in 0..rng.below(6) {
                let victims: Vec<&ScoredTeam> = teams.iter().filter(|v| v.role.defends() && v.id != a.id).collect();
                let v = victims[rng.below(victims.len() as u64) as usize];
                let s = services[rng.below(services.len() as u64) as usize];
                let planted = t.saturating_sub(rng.below(u64::from(lifetime)) as u32);
                let c = Capture {
                    attacker: a.id,
                    victim: v.id,
                    service: s.id,
                    store: StoreIdx(rng.below(u64::from(s.flag_stores)) as u8),
                    planted: Tick(planted),
                    submitted: Tick(t),
                };
                if seen.insert((c.attacker, c.victim, c.service, c.store, c.planted)) {
                    captures.push(c);
                }
            }
        }
        ticks.push(TickEvents { tick: Tick(t), verdicts, captures });
    }
    Game { teams, services, ticks }
}

fn up(v: Verdict) -> bool {
    !v.is_teams_fault()
}

type Flag = (TeamId, ServiceId, StoreIdx, Tick);

fn flag_of(c: &Capture) -> Flag {
    (c.victim, c.service, c.store, c.planted)
}

/// Straight from the definitions in docs/scoring.md, recomputed from scratch at every tick.
fn naive(formula: ScoringFormula, g: &Game) -> Vec<Vec<(TeamId, TeamScore)>> {
    let mut teams = g.teams.clone();
    teams.sort_by_key(|t| t.id);
    let n = teams.len() as f64;
    let is_nop = |id: TeamId| teams.iter().any(|t| t.id == id && t.nop);
    let stores = |s: ServiceId| f64::from(g.services.iter().find(|x| x.id == s).unwrap().flag_stores);
    let verdict_at = |t: usize, team: TeamId, s: ServiceId| {
        g.ticks[t].verdicts.iter().find(|v| v.team == team && v.service == s).map(|v| v.verdict)
    };
    let active: Vec<f64> = (0..g.ticks.len())
        .map(|t| {
            let a =
                teams.iter().filter(|tm| g.ticks[t].verdicts.iter().any(|v| v.team == tm.id && up(v.verdict))).count();
            a.max(1) as f64
        })
        .collect();
    let mut ratings: std::collections::HashMap<(TeamId, ServiceId), (f64, f64, f64)> = Default::default();
    let mut out: Vec<Vec<(TeamId, TeamScore)>> = Vec::new();
    for t in 0..g.ticks.len() {
        let past: Vec<&Capture> = g.ticks[..=t].iter().flat_map(|e| &e.captures).collect();
        let count = |f: Flag| past.iter().filter(|c| flag_of(c) == f).count() as f64;
        let rank_before = |victim: TeamId, planted: Tick| -> f64 {
            if planted.0 == 0 {
                return n;
            }
            let row = &out[planted.0 as usize - 1];
            let key = |s: &TeamScore| (s.total / 1e-6).round() as i64;
            let mine = key(&row.iter().find(|r| r.0 == victim).unwrap().1);
            1.0 + row.iter().filter(|r| key(&r.1) > mine).count() as f64
        };
        if formula == ScoringFormula::Forcad {
            let mut caps: Vec<&Capture> = g.ticks[t].captures.iter().filter(|c| !is_nop(c.victim)).collect();
            caps.sort_by_key(|c| (c.victim, c.service, c.store, c.planted, c.attacker));
            let hardness: f64 = 10.0;
            for c in caps {
                let a = ratings.get(&(c.attacker, c.service)).map_or(2500.0, |r| r.0);
                let v = ratings.get(&(c.victim, c.service)).map_or(2500.0, |r| r.0);
                let gain = 50.0 * hardness.sqrt() / (1.0 + ((a.sqrt() - v.sqrt()) * hardness.ln().ln() / 12.0).exp());
                let loss = gain.min(v);
                let ar = ratings.entry((c.attacker, c.service)).or_insert((2500.0, 0.0, 0.0));
                ar.0 += gain;
                ar.1 += gain;
                let vr = ratings.entry((c.victim, c.service)).or_insert((2500.0, 0.0, 0.0));
                vr.0 -= loss;
                vr.2 -= loss;
            }
        }
        let mut row = Vec::new();
        for tm in &teams {
            let mut sum = TeamScore::default();
            for s in &g.services {
                let (mut attack, mut defence, mut sla) = (0.0, 0.0, 0.0);
                let mine: Vec<&&Capture> = past.iter().filter(|c| c.attacker == tm.id && c.service == s.id).collect();
                let mut lost: Vec<Flag> =
                    past.iter().filter(|c| c.victim == tm.id && c.service == s.id).map(|c| flag_of(c)).collect();
                lost.sort();
                lost.dedup();
                let up_ticks: Vec<usize> = (0..=t).filter(|&u| verdict_at(u, tm.id, s.id).is_some_and(up)).collect();
                match formula {
                    ScoringFormula::Faust => {
                        for c in &mine {
                            if !is_nop(c.victim) {
                                attack += 1.0 + 1.0 / count(flag_of(c));
                            }
                        }
                        for f in &lost {
                            defence -= count(*f).powf(0.75);
                        }
                        sla = up_ticks.len() as f64 * n.sqrt();
                    }
                    ScoringFormula::Saarctf => {
                        for c in &mine {
                            if !is_nop(c.victim) {
                                let value = 1.0
                                    + (1.0 / count(flag_of(c))).sqrt()
                                    + (1.0 / rank_before(c.victim, c.planted)).sqrt();
                                attack += value / stores(s.id);
                            }
                        }
                        for f in &lost {
                            let p = f.3.0 as usize;
                            if !tm.nop && verdict_at(p, tm.id, s.id).is_some_and(up) {
                                defence -= (count(*f) / active[p]).powf(0.3) * active[p].sqrt() / stores(s.id);
                            }
                        }
                        sla = up_ticks.iter().map(|&u| active[u].sqrt()).sum();
                    }
                    ScoringFormula::Forcad => {
                        let (_, gained, lostp) = ratings.get(&(tm.id, s.id)).copied().unwrap_or((2500.0, 0.0, 0.0));
                        if tm.role.defends() {
                            let checks = (0..=t).filter(|&u| verdict_at(u, tm.id, s.id).is_some()).count();
                            let frac = if checks == 0 { 1.0 } else { up_ticks.len() as f64 / checks as f64 };
                            (attack, defence, sla) = (gained * frac, lostp * frac, 2500.0 * frac);
                        } else {
                            (attack, defence) = (gained, lostp);
                        }
                    }
                }
                sum.attack += attack;
                sum.defence += defence;
                sum.sla += sla;
            }
            sum.total = sum.attack + sum.defence + sum.sla;
            row.push((tm.id, sum));
        }
        out.push(row);
    }
    out
}

fn bits(s: &TeamScore) -> [u64; 4] {
    [s.attack.to_bits(), s.defence.to_bits(), s.sla.to_bits(), s.total.to_bits()]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= EPS * a.abs().max(b.abs()).max(1.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn recomputation_from_stored_events_equals_the_live_scores(
        seed in any::<u64>(),
        n_teams in 2u16..7,
        n_services in 1u8..4,
        n_ticks in 1u32..9,
        lifetime in 1u32..5,
        formula in prop::sample::select(vec![ScoringFormula::Faust, ScoringFormula::Forcad, ScoringFormula::Saarctf]),
    ) {
        let game = random_game(seed, n_teams, n_services, n_ticks, lifetime);
        let live = play(formula, &game.teams, &game.services, &game.ticks);

        // What an audit reads back: serialised, and rows in whatever order the store returns.
        let json = serde_json::to_string(&game.ticks).unwrap();
        let mut stored: Vec<TickEvents> = serde_json::from_str(&json).unwrap();
        let mut rng = Rng(seed ^ 0xA5A5);
        for t in &mut stored {
            for i in (1..t.verdicts.len()).rev() {
                t.verdicts.swap(i, rng.below(i as u64 + 1) as usize);
            }
            for i in (1..t.captures.len()).rev() {
                t.captures.swap(i, rng.below(i as u64 + 1) as usize);
            }
        }
        let mut teams = game.teams.clone();
        teams.reverse();
        let replayed = recompute(formula, &teams, &game.services, &stored).unwrap();
        prop_assert_eq!(live.len(), replayed.len());
        for (l, r) in live.iter().zip(&replayed) {
            prop_assert_eq!(l.teams.len(), r.teams.len());
            for (lt, rt) in l.teams.iter().zip(&r.teams) {
                prop_assert_eq!(lt.team, rt.team);
                prop_assert_eq!(bits(&lt.score), bits(&rt.score), "tick {} team {}", l.tick, lt.team);
                for (ls, rs) in lt.services.iter().zip(&rt.services) {
                    prop_assert_eq!(bits(&ls.score), bits(&rs.score));
                }
            }
        }

        let reference = naive(formula, &game);
        for (l, row) in live.iter().zip(&reference) {
            for (lt, (id, want)) in l.teams.iter().zip(row) {
                prop_assert_eq!(lt.team, *id);
                let got = lt.score;
                prop_assert!(
                    close(got.attack, want.attack) && close(got.defence, want.defence)
                        && close(got.sla, want.sla) && close(got.total, want.total),
                    "{:?} tick {} team {}: got {:?}, want {:?}", formula, l.tick, id, got, want
                );
            }
        }
    }
}

fn all_bits(s: &TickScores) -> Vec<[u64; 4]> {
    s.teams
        .iter()
        .flat_map(|t| std::iter::once(bits(&t.score)).chain(t.services.iter().map(|s| bits(&s.score))))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A scorer that forgets expired flags scores exactly as one that keeps them all, and a
    /// scorer restored from a snapshot taken after any tick continues exactly as the one that
    /// never stopped.
    #[test]
    fn forgetting_expired_flags_and_restoring_snapshots_change_no_score(
        seed in any::<u64>(),
        n_teams in 2u16..7,
        n_services in 1u8..4,
        n_ticks in 1u32..12,
        lifetime in 1u32..5,
        at in 0u32..12,
        formula in prop::sample::select(vec![ScoringFormula::Faust, ScoringFormula::Forcad, ScoringFormula::Saarctf]),
    ) {
        let game = random_game(seed, n_teams, n_services, n_ticks, lifetime);
        let live = play(formula, &game.teams, &game.services, &game.ticks);
        let fresh = || Scorer::new(formula, &game.teams, &game.services).unwrap().with_flag_lifetime(lifetime);

        let mut windowed = fresh();
        let mut restored = None;
        let at = at.min(n_ticks - 1) as usize;
        for (i, (t, want)) in game.ticks.iter().zip(&live).enumerate() {
            let got = windowed.close_tick(t).unwrap();
            prop_assert_eq!(all_bits(&got), all_bits(want), "tick {} with flags forgotten", i);
            if let Some(r) = &mut restored {
                let r: &mut Scorer = r;
                let got = r.close_tick(t).unwrap();
                prop_assert_eq!(all_bits(&got), all_bits(want), "tick {} after a restore", i);
            }
            if i == at {
                let bytes = windowed.snapshot();
                let back = fresh().restore(&bytes).unwrap();
                prop_assert_eq!(back.next_tick(), Tick(i as u32 + 1));
                prop_assert_eq!(back.snapshot(), bytes, "a restored scorer snapshots to the same bytes");
                restored = Some(back);
            }
        }
        let unbounded = Scorer::new(formula, &game.teams, &game.services).unwrap();
        let mut unbounded_after = unbounded.clone();
        for t in &game.ticks {
            unbounded_after.close_tick(t).unwrap();
        }
        let back = unbounded.restore(&unbounded_after.snapshot()).unwrap();
        prop_assert_eq!(back.snapshot(), unbounded_after.snapshot());
    }
}

#[test]
fn a_scorer_that_knows_the_flag_lifetime_refuses_expired_flags() {
    use Verdict::Ok;
    let teams = [team(1, Role::Both), team(2, Role::Both)];
    let up = |t| tick(t, vec![verdict(1, 1, Ok), verdict(2, 1, Ok)], vec![]);
    let mut scorer = Scorer::new(ScoringFormula::Faust, &teams, &[svc(1, 1)]).unwrap().with_flag_lifetime(2);
    scorer.close_tick(&up(0)).unwrap();
    scorer.close_tick(&up(1)).unwrap();
    // Planted in tick 0, lifetime 2: valid in ticks 0 and 1 only.
    let late = tick(2, vec![verdict(1, 1, Ok), verdict(2, 1, Ok)], vec![cap(1, 2, 1, 0, 2)]);
    assert_eq!(
        scorer.close_tick(&late).unwrap_err(),
        ScoringError::Expired { tick: Tick(2), planted: Tick(0), lifetime: 2 }
    );
    assert_eq!(scorer.next_tick(), Tick(2), "nothing of the refused tick was applied");
    let in_time = tick(2, vec![verdict(1, 1, Ok), verdict(2, 1, Ok)], vec![cap(1, 2, 1, 1, 2)]);
    assert_eq!(scorer.close_tick(&in_time).unwrap().team(TeamId(1)).unwrap().score.attack, 2.0);
    let after = tick(3, vec![verdict(1, 1, Ok), verdict(2, 1, Ok)], vec![cap(2, 1, 1, 1, 3)]);
    assert!(matches!(scorer.close_tick(&after), Err(ScoringError::Expired { .. })), "tick 1's flags expired in tick 3");
    // A scorer told no lifetime takes every capture, as before.
    let mut unbounded = Scorer::new(ScoringFormula::Faust, &teams, &[svc(1, 1)]).unwrap();
    for t in [up(0), up(1), late] {
        unbounded.close_tick(&t).unwrap();
    }
}

#[test]
fn snapshots_of_another_drill_or_garbage_are_refused() {
    use gongfang_core::scoring::SnapshotError;
    let teams = [team(1, Role::Both), team(2, Role::Both)];
    let services = [svc(1, 1)];
    let new = |f| Scorer::new(f, &teams, &services).unwrap().with_flag_lifetime(3);
    let mut scorer = new(ScoringFormula::Faust);
    scorer
        .close_tick(&tick(
            0,
            vec![verdict(1, 1, Verdict::Ok), verdict(2, 1, Verdict::Mumble)],
            vec![cap(1, 2, 1, 0, 0)],
        ))
        .unwrap();
    let bytes = scorer.snapshot();
    assert_eq!(new(ScoringFormula::Saarctf).restore(&bytes).unwrap_err(), SnapshotError::OtherDrill("scoring formula"));
    assert_eq!(
        Scorer::new(ScoringFormula::Faust, &teams, &services).unwrap().restore(&bytes).unwrap_err(),
        SnapshotError::OtherDrill("flag lifetime")
    );
    let three = [team(1, Role::Both), team(2, Role::Both), team(3, Role::Both)];
    assert_eq!(
        Scorer::new(ScoringFormula::Faust, &three, &services)
            .unwrap()
            .with_flag_lifetime(3)
            .restore(&bytes)
            .unwrap_err(),
        SnapshotError::OtherDrill("set of teams")
    );
    assert_eq!(
        Scorer::new(ScoringFormula::Faust, &teams, &[svc(1, 2)])
            .unwrap()
            .with_flag_lifetime(3)
            .restore(&bytes)
            .unwrap_err(),
        SnapshotError::OtherDrill("set of services")
    );
    assert!(matches!(new(ScoringFormula::Faust).restore(&bytes[..bytes.len() / 2]), Err(SnapshotError::Unreadable(_))));
    assert!(matches!(
        new(ScoringFormula::Faust).restore(b"not a snapshot"),
        Err(SnapshotError::Unreadable(_) | SnapshotError::Version { .. })
    ));
    let back = new(ScoringFormula::Faust).restore(&bytes).unwrap();
    assert_eq!(back.next_tick(), Tick(1));
}

/// A mid-size drill's per-tick table, for review when a formula changes on purpose.
fn table(formula: ScoringFormula) -> String {
    let game = random_game(7, 6, 2, 6, 3);
    let mut out = String::from("tick team       attack      defence          sla        total\n");
    for s in play(formula, &game.teams, &game.services, &game.ticks) {
        for t in &s.teams {
            let sc = t.score;
            out.push_str(&format!(
                "{:>4} {:>4} {:>12.6} {:>12.6} {:>12.6} {:>12.6}\n",
                s.tick.0, t.team.0, sc.attack, sc.defence, sc.sla, sc.total
            ));
        }
        let ranking: Vec<String> = s.ranking().iter().map(|t| t.0.to_string()).collect();
        out.push_str(&format!("     ranking: {}\n", ranking.join(" ")));
    }
    out
}

#[test]
fn mid_size_game_tables() {
    insta::assert_snapshot!("faust", table(ScoringFormula::Faust));
    insta::assert_snapshot!("forcad", table(ScoringFormula::Forcad));
    insta::assert_snapshot!("saarctf", table(ScoringFormula::Saarctf));
}
