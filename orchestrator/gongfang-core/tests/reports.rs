//! Reports as the domain sees them: which drafts pass, every rule that refuses one, and how
//! ruled points join flag points, replayed exactly from the stored rulings.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use gongfang_core::report::{
    CheckedReport, Filing, Finding, ReportDraft, ReportError, ReportKind, ReportProblem, RulingStage, check_appeal,
    check_report,
};
use gongfang_core::scenario::{
    self, PatchRules, PatchScoring, ReportRules, ReportScoring, Role, RulePreset, Scenario, ScoringFormula,
};
use gongfang_core::scoring::{
    Award, Capture, DefendedTicks, LinkedEvent, ReportPoints, ReportTally, RuledFinding, ScoredService, ScoredTeam,
    Scorer, ScoringError, ServiceVerdict, Standings, TickEvents, recompute_standings, standings,
};
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick, Verdict};

fn redblue() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../challenges/redblue/scenario.toml");
    let src = std::fs::read_to_string(&path).unwrap();
    scenario::parse(&src, &path, &scenario::AssumeEverythingExists).unwrap()
}

fn started() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0).unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    started() + chrono::Duration::minutes(minutes)
}

const RED: TeamId = TeamId(1);
const BLUE: TeamId = TeamId(11);

fn attack() -> ReportDraft {
    ReportDraft {
        kind: "attack".into(),
        target_team: Some("ddb".into()),
        service: Some("opendata".into()),
        from: Some(at(30)),
        to: Some(at(45)),
        technique: "default admin password on the registry's admin port".into(),
        attack_id: Some("T1078.001".into()),
        description: "Logged in as admin/admin and read every key.".into(),
        evidence: Some("$ nc 10.60.11.2 7000\nGET flag\n".into()),
        ..Default::default()
    }
}

fn defence() -> ReportDraft {
    ReportDraft {
        kind: "defence".into(),
        service: Some("opendata".into()),
        from: Some(at(30)),
        to: Some(at(50)),
        technique: "blocked a brute-force on the admin port".into(),
        attack_id: Some("T1110".into()),
        description: "fail2ban banned 10.60.1.9 after 20 failed logins.".into(),
        traced_address: Some("10.60.1.9".into()),
        traced_team: Some("red-firm".into()),
        ..Default::default()
    }
}

fn file(
    s: &Scenario,
    filer: TeamId,
    draft: &ReportDraft,
    now: DateTime<Utc>,
) -> Result<CheckedReport, Vec<ReportProblem>> {
    check_report(draft, &Filing { scenario: s, filer, now, started: Some(started()), extended: Duration::ZERO })
}

/// The problems of a refused draft, as (field, code) pairs.
fn refused(s: &Scenario, filer: TeamId, draft: &ReportDraft, now: DateTime<Utc>) -> Vec<(&'static str, &'static str)> {
    file(s, filer, draft, now).expect_err("the draft was accepted").iter().map(|p| (p.field, p.error.code())).collect()
}

/// Every tick's standings under the FAUST formula, with patching not scored.
fn recompute(ticks: &[TickEvents], rules: &ReportRules, awards: &[Award]) -> Result<Vec<Standings>, ScoringError> {
    recompute_standings(ScoringFormula::Faust, &teams(), &services(), ticks, rules, awards, &PatchRules::default(), &[])
}

#[test]
fn good_reports_resolve_their_slugs() {
    let s = redblue();
    let a = file(&s, RED, &attack(), at(60)).unwrap();
    assert_eq!((a.kind, a.target_team, a.service), (ReportKind::Attack, Some(BLUE), ServiceId(1)));
    assert_eq!(a.attack_id.as_ref().map(|t| t.as_str()), Some("T1078.001"));
    let d = file(&s, BLUE, &defence(), at(60)).unwrap();
    assert_eq!((d.kind, d.target_team, d.traced_team), (ReportKind::Defence, None, Some(RED)));
    assert_eq!(d.traced_address, Some("10.60.1.9".parse().unwrap()));
}

#[test]
fn roles_decide_the_kind() {
    let s = redblue();
    assert_eq!(refused(&s, BLUE, &attack(), at(60)), vec![("kind", "kind_not_for_role"), ("target_team", "own_team")]);
    let mut d = defence();
    d.traced_team = None;
    assert_eq!(refused(&s, RED, &d, at(60)), vec![("kind", "kind_not_for_role")]);
    let e = file(&s, RED, &d, at(60)).unwrap_err().remove(0).error;
    assert!(e.to_string().contains("role `attacker` cannot file defence reports"), "{e}");
}

#[test]
fn targets_must_be_real_defending_teams() {
    let s = redblue();
    let mut r = attack();
    r.target_team = Some("nobody".into());
    assert_eq!(refused(&s, RED, &r, at(60)), vec![("target_team", "unknown_team")]);
    r.target_team = Some("red-academy".into());
    assert_eq!(refused(&s, RED, &r, at(60)), vec![("target_team", "target_not_defending")]);
    r.target_team = None;
    r.service = Some("mail".into());
    assert_eq!(refused(&s, RED, &r, at(60)), vec![("target_team", "missing_field"), ("service", "unknown_service")]);
    let mut d = defence();
    d.traced_team = Some("chra".into());
    d.traced_address = Some("somewhere".into());
    d.target_team = Some("crd".into());
    assert_eq!(
        refused(&s, BLUE, &d, at(60)),
        vec![
            ("target_team", "not_for_kind"),
            ("traced_address", "bad_address"),
            ("traced_team", "traced_not_attacking")
        ]
    );
    let mut a = attack();
    a.traced_team = Some("crd".into());
    assert_eq!(refused(&s, RED, &a, at(60)), vec![("traced_team", "not_for_kind")]);
}

#[test]
fn time_windows() {
    let s = redblue();
    let mut r = attack();
    // A window ending an hour from now: not yet happened.
    r.to = Some(at(120));
    let problems = file(&s, RED, &r, at(60)).unwrap_err();
    assert_eq!(problems[0].error.code(), "window_in_future");
    assert!(problems[0].error.to_string().contains("report only what has happened"));
    // A clock a few seconds fast is fine.
    r.to = Some(at(60) + chrono::Duration::seconds(30));
    assert!(file(&s, RED, &r, at(60)).is_ok());
    r.from = Some(at(50));
    r.to = Some(at(40));
    assert_eq!(refused(&s, RED, &r, at(60)), vec![("to", "window_reversed")]);
    r.from = Some(at(-5));
    r.to = Some(at(10));
    assert_eq!(refused(&s, RED, &r, at(60)), vec![("from", "window_before_start")]);
    r.from = Some(at(10));
    r.to = Some(at(10 + 6 * 60 + 1));
    assert_eq!(refused(&s, RED, &r, at(24 * 60)), vec![("to", "window_too_long")]);
    r.from = None;
    assert_eq!(refused(&s, RED, &r, at(60)), vec![("from", "missing_field")]);
    // Filing closes two hours after the 60-hour drill.
    let r = attack();
    assert!(file(&s, RED, &r, at(62 * 60)).is_ok());
    assert_eq!(refused(&s, RED, &r, at(62 * 60 + 1)), vec![("", "filing_closed")]);
    let not_started =
        check_report(&r, &Filing { scenario: &s, filer: RED, now: at(60), started: None, extended: Duration::ZERO });
    assert_eq!(not_started.unwrap_err()[0].error, ReportError::NotStarted);
}

#[test]
fn attack_ids_are_checked() {
    let s = redblue();
    let mut r = attack();
    r.attack_id = Some("T9999".into());
    assert_eq!(refused(&s, RED, &r, at(60)), vec![("attack_id", "unknown_technique")]);
    r.attack_id = Some("1190".into());
    assert_eq!(refused(&s, RED, &r, at(60)), vec![("attack_id", "technique_syntax")]);
    r.attack_id = Some("  ".into());
    assert!(file(&s, RED, &r, at(60)).unwrap().attack_id.is_none(), "a blank id is no id");
}

#[test]
fn text_fields_are_required_and_bounded() {
    let s = redblue();
    let mut r = attack();
    r.kind = "attak".into();
    r.technique = " ".into();
    r.description = "x".repeat(20_001);
    assert_eq!(
        refused(&s, RED, &r, at(60)),
        vec![("kind", "unknown_kind"), ("technique", "missing_field"), ("description", "too_long")]
    );
}

#[test]
fn reports_off_or_a_kind_off() {
    let mut s = redblue();
    s.reports.defence_max_points = 0;
    assert_eq!(refused(&s, BLUE, &defence(), at(60)), vec![("kind", "kind_off")]);
    s.reports.enabled = false;
    assert_eq!(refused(&s, RED, &attack(), at(60)), vec![("", "reports_off")]);
}

#[test]
fn appeals_close() {
    let rules = ReportRules { appeal_window: Duration::from_secs(3600), ..ReportRules::default() };
    assert_eq!(check_appeal(at(0), at(60), "the exploit is in the pcap", &rules), Ok(()));
    assert!(matches!(check_appeal(at(0), at(61), "late", &rules), Err(ReportError::AppealClosed { .. })));
    assert_eq!(check_appeal(at(0), at(1), "", &rules), Err(ReportError::Missing("reason")));
}

// ---- scoring ------------------------------------------------------------------------------

fn teams() -> Vec<ScoredTeam> {
    vec![
        ScoredTeam { id: RED, role: Role::Attacker, nop: false },
        ScoredTeam { id: BLUE, role: Role::Defender, nop: false },
    ]
}

fn services() -> Vec<ScoredService> {
    vec![ScoredService { id: ServiceId(1), flag_stores: 1 }]
}

/// Tick t: blue's service is up; in tick 1 red captures blue's tick-0 flag.
fn ticks(n: u32) -> Vec<TickEvents> {
    (0..n)
        .map(|t| TickEvents {
            tick: Tick(t),
            verdicts: vec![ServiceVerdict { team: BLUE, service: ServiceId(1), verdict: Verdict::Ok }],
            captures: if t == 1 {
                vec![Capture {
                    attacker: RED,
                    victim: BLUE,
                    service: ServiceId(1),
                    store: StoreIdx(0),
                    planted: Tick(0),
                    submitted: Tick(1),
                }]
            } else {
                vec![]
            },
        })
        .collect()
}

fn award(report: i64, team: TeamId, kind: ReportKind, stage: RulingStage, points: u32, tick: u32) -> Award {
    Award { report, team, kind, stage, points, tick: Tick(tick), finding: None }
}

/// FAUST, two teams: a capture is worth 1 + 1/1 = 2 to red and costs blue 1^0.75 = 1;
/// blue's SLA is √2 per up tick.
#[test]
fn red_blue_counts_captures_availability_and_reports() {
    let rules = ReportRules { enabled: true, scoring: ReportScoring::RedBlue, weight: 0.5, ..ReportRules::default() };
    let awards = [
        award(1, RED, ReportKind::Attack, RulingStage::First, 40, 1),
        award(2, BLUE, ReportKind::Defence, RulingStage::First, 30, 2),
        award(3, BLUE, ReportKind::Defence, RulingStage::First, 0, 2),
    ];
    let s = recompute(&ticks(3), &rules, &awards).unwrap();
    let red = |t: usize| *s[t].team(RED).unwrap();
    let blue = |t: usize| *s[t].team(BLUE).unwrap();
    let sla = 2f64.sqrt();
    assert_eq!(red(0).total, 0.0);
    assert_eq!((red(1).reports.attack, red(1).report_score, red(1).total), (40, 20.0, 2.0 + 20.0));
    assert_eq!(blue(1).total, 2.0 * sla - 1.0, "two ticks up, one flag lost");
    assert_eq!((blue(2).reports.defence, blue(2).total), (30, 3.0 * sla - 1.0 + 15.0));
    assert_eq!(s[2].ranking(), vec![RED, BLUE]);
    // Each side is ranked among itself.
    assert_eq!(s[2].ranking_of(|t| t == RED), vec![RED]);
    assert_eq!(s[2].ranking_of(|t| t == BLUE), vec![BLUE]);
}

/// Two blue units under the same attacks: one takes its service down to lose nothing, the other
/// keeps it up and loses a flag now and then. Availability is part of a blue team's score, so
/// the one that keeps serving ranks above the one that hides.
#[test]
fn a_blue_team_that_takes_its_service_down_ranks_below_one_that_keeps_it_up() {
    const DOWN: TeamId = TeamId(12);
    let teams = vec![
        ScoredTeam { id: RED, role: Role::Attacker, nop: false },
        ScoredTeam { id: BLUE, role: Role::Defender, nop: false },
        ScoredTeam { id: DOWN, role: Role::Defender, nop: false },
    ];
    let capture = |t: u32| Capture {
        attacker: RED,
        victim: BLUE,
        service: ServiceId(1),
        store: StoreIdx(0),
        planted: Tick(t - 1),
        submitted: Tick(t),
    };
    let events: Vec<TickEvents> = (0..12)
        .map(|t| TickEvents {
            tick: Tick(t),
            verdicts: vec![
                ServiceVerdict { team: BLUE, service: ServiceId(1), verdict: Verdict::Ok },
                ServiceVerdict { team: DOWN, service: ServiceId(1), verdict: Verdict::Down },
            ],
            // Every third tick the red team gets one of the serving team's flags.
            captures: if t % 3 == 1 { vec![capture(t)] } else { vec![] },
        })
        .collect();
    let rules = ReportRules { enabled: true, scoring: ReportScoring::RedBlue, ..ReportRules::default() };
    for formula in [ScoringFormula::Faust, ScoringFormula::Forcad, ScoringFormula::Saarctf] {
        let s = recompute_standings(formula, &teams, &services(), &events, &rules, &[], &PatchRules::default(), &[])
            .unwrap();
        let last = s.last().unwrap();
        let blue = last.ranking_of(|t| t != RED);
        assert_eq!(blue, vec![BLUE, DOWN], "{formula:?}: {last:?}");
        assert!(last.team(BLUE).unwrap().flags.defence < 0.0, "{formula:?}: it did lose flags");
        assert_eq!(last.team(DOWN).unwrap().flags.defence, 0.0, "{formula:?}: the hidden one lost none");
    }
}

#[test]
fn formula_mode_adds_weighted_reports_to_the_whole_formula() {
    let rules = ReportRules { enabled: true, scoring: ReportScoring::Formula, weight: 2.0, ..ReportRules::default() };
    let awards = [award(7, BLUE, ReportKind::Defence, RulingStage::First, 5, 0)];
    let s = recompute(&ticks(1), &rules, &awards).unwrap();
    let blue = s[0].team(BLUE).unwrap();
    assert_eq!(blue.total, 2f64.sqrt() + 10.0);
    // Reports off: the same rulings count for nothing.
    let off = ReportRules { enabled: false, ..rules };
    let s = recompute(&ticks(1), &off, &awards).unwrap();
    assert_eq!(s[0].team(BLUE).unwrap().total, 2f64.sqrt());
}

#[test]
fn an_appeal_ruling_replaces_the_first() {
    let mut tally = ReportTally::new();
    tally.apply(&award(1, RED, ReportKind::Attack, RulingStage::First, 0, 0)).unwrap();
    tally.apply(&award(2, RED, ReportKind::Attack, RulingStage::First, 10, 0)).unwrap();
    assert_eq!(tally.points(RED).attack, 10);
    tally.apply(&award(1, RED, ReportKind::Attack, RulingStage::Appeal, 25, 1)).unwrap();
    assert_eq!(tally.points(RED).attack, 35);
    assert_eq!(tally.report_points(1), Some(25));
    assert_eq!(
        tally.apply(&award(1, RED, ReportKind::Attack, RulingStage::Appeal, 5, 2)),
        Err(ScoringError::DuplicateRuling { report: 1 })
    );
    assert_eq!(
        tally.apply(&award(9, RED, ReportKind::Attack, RulingStage::Appeal, 5, 2)),
        Err(ScoringError::AppealBeforeRuling { report: 9 })
    );
    assert_eq!(
        tally.apply(&award(2, BLUE, ReportKind::Attack, RulingStage::Appeal, 5, 2)),
        Err(ScoringError::RulingsDisagree { report: 2 })
    );
    assert_eq!(tally.points(RED).attack, 35, "refused rulings change nothing");
}

#[test]
fn replay_is_exact_whatever_order_rulings_are_stored_in() {
    let rules = ReportRules { enabled: true, scoring: ReportScoring::RedBlue, weight: 0.3, ..ReportRules::default() };
    let mut awards = Vec::new();
    for i in 0..60i64 {
        let (team, kind) = if i % 3 == 0 { (BLUE, ReportKind::Defence) } else { (RED, ReportKind::Attack) };
        let tick = u32::try_from(i % 7).unwrap();
        awards.push(award(i, team, kind, RulingStage::First, u32::try_from(i * 7 % 41).unwrap(), tick));
        if i % 4 == 0 {
            awards.push(award(i, team, kind, RulingStage::Appeal, u32::try_from(i % 13).unwrap(), tick + 1));
        }
    }
    let events = ticks(9);
    // Live: close each tick, apply that tick's rulings as they were made, combine.
    let mut scorer = Scorer::new(ScoringFormula::Faust, &teams(), &services()).unwrap();
    let mut tally = ReportTally::new();
    let mut live = Vec::new();
    for ev in &events {
        let flags = scorer.close_tick(ev).unwrap();
        for a in awards.iter().filter(|a| a.tick == ev.tick) {
            tally.apply(a).unwrap();
        }
        live.push(standings(&rules, &PatchRules::default(), &flags, &tally, &DefendedTicks::new()));
    }
    let mut shuffled = awards.clone();
    shuffled.reverse();
    shuffled.rotate_left(17);
    let replayed = recompute(&events, &rules, &shuffled).unwrap();
    assert_eq!(replayed, live);
    let last = replayed.last().unwrap().team(RED).unwrap();
    assert_eq!(last.total.to_bits(), (last.flags.attack + last.flags.defence + last.report_score).to_bits());
}

#[test]
fn rulings_for_unknown_teams_are_refused() {
    let rules = ReportRules { enabled: true, ..ReportRules::default() };
    let awards = [award(1, TeamId(99), ReportKind::Attack, RulingStage::First, 1, 0)];
    assert_eq!(
        recompute(&ticks(1), &rules, &awards),
        Err(ScoringError::UnknownReportTeam { report: 1, team: TeamId(99) })
    );
}

/// Defended ticks count from the tick they were in, times the scenario's points, and only when
/// patching is scored.
#[test]
fn patching_points_count_defended_ticks_from_their_tick_on() {
    let rules = ReportRules::default();
    let scored = PatchRules { scoring: PatchScoring::DefendedTicks, points: 10.0, ..PatchRules::default() };
    let cells = [(Tick(2), BLUE, ServiceId(1)), (Tick(0), BLUE, ServiceId(1))];
    let s = recompute_standings(ScoringFormula::Faust, &teams(), &services(), &ticks(3), &rules, &[], &scored, &cells)
        .unwrap();
    let blue = |tick: usize| *s[tick].team(BLUE).unwrap();
    assert_eq!((blue(0).defended_ticks, blue(1).defended_ticks, blue(2).defended_ticks), (1, 1, 2));
    assert_eq!(blue(2).patch_score, 20.0);
    assert_eq!(blue(2).total, blue(2).flags.total + 20.0);
    let unscored = recompute_standings(
        ScoringFormula::Faust,
        &teams(),
        &services(),
        &ticks(3),
        &rules,
        &[],
        &PatchRules::default(),
        &cells,
    )
    .unwrap();
    let blue = unscored[2].team(BLUE).unwrap();
    assert_eq!((blue.defended_ticks, blue.patch_score, blue.total), (2, 0.0, blue.flags.total));
}

/// Rules scoring over two red teams and one blue unit, with the preset's default tables.
fn rules() -> (ReportRules, Vec<ScoredTeam>) {
    let rules = ReportRules {
        enabled: true,
        scoring: ReportScoring::Rules,
        preset: Some(RulePreset::default()),
        ..ReportRules::default()
    };
    let mut teams = teams();
    teams.push(ScoredTeam { id: RED2, role: Role::Attacker, nop: false });
    (rules, teams)
}

const RED2: TeamId = TeamId(2);

/// A valid attack ruling on blue's systems: `weakness` of type `attack_type`, stated at `minute`.
fn found(report: i64, team: TeamId, stage: RulingStage, attack_type: &str, weakness: &str, minute: i64) -> Award {
    let finding = Finding::Attack { attack_type: attack_type.into(), weakness: weakness.into() };
    Award {
        finding: Some(RuledFinding { finding, stated: at(minute), unit: Some(BLUE) }),
        ..award(report, team, ReportKind::Attack, stage, 0, 0)
    }
}

/// A valid defence ruling answering attack report `attack`.
fn answered(report: i64, attack: i64, rubric: &[(&str, u32)], bonus: u32) -> Award {
    let rubric = rubric.iter().map(|(c, s)| ((*c).to_owned(), *s)).collect();
    let finding = Finding::Defence { link: LinkedEvent::Attack { report: attack }, rubric, bonus };
    Award {
        finding: Some(RuledFinding { finding, stated: at(30), unit: None }),
        ..award(report, BLUE, ReportKind::Defence, RulingStage::First, 0, 0)
    }
}

#[test]
fn a_rules_tally_scores_every_finding_by_the_tables_whenever_it_is_ruled() {
    let (rules, teams) = rules();
    let mut tally = ReportTally::for_drill(&rules, &teams);
    // A defence of an attack not yet ruled answers nothing yet.
    tally.apply(&answered(3, 1, &[("response", 15), ("analysis", 10)], 20)).unwrap();
    assert_eq!(tally.points(BLUE), ReportPoints::default());
    assert_eq!(tally.report_points(3), Some(0));
    // Red's breach (stated at minute 20) is ruled: 100 points, and the defence its 25 % plus bonus.
    tally.apply(&found(1, RED, RulingStage::First, "perimeter-breach", "vpn", 20)).unwrap();
    assert_eq!(tally.points(RED).attack, 100);
    assert_eq!(tally.points(BLUE), ReportPoints { attack: 0, defence: 25 + 20, lost: 100 });
    assert_eq!(tally.report_points(3), Some(45));
    // The second red team's finding of the same weakness is ruled later but stated earlier: it
    // takes the first finding's 100 % and the first drops to the repeat's 70 %.
    tally.apply(&found(2, RED2, RulingStage::First, "perimeter-breach", "vpn", 10)).unwrap();
    assert_eq!((tally.points(RED2).attack, tally.points(RED).attack), (100, 70));
    assert_eq!(tally.report_points(1), Some(70));
    assert_eq!(tally.points(BLUE), ReportPoints { attack: 0, defence: 17 + 20, lost: 170 });
    // An appeal finds red's a control of the target instead: 300, no repeat, and the defence
    // answers a costlier attack.
    tally.apply(&found(1, RED, RulingStage::Appeal, "target-control", "steward", 20)).unwrap();
    assert_eq!((tally.points(RED2).attack, tally.points(RED).attack), (100, 300));
    assert_eq!(tally.points(BLUE), ReportPoints { attack: 0, defence: 75 + 20, lost: 400 });
    assert_eq!(tally.points(BLUE).total(), 95 - 400);
    // A finding the tables cannot score is refused and changes nothing.
    let unknown = found(4, RED, RulingStage::First, "defacement", "home page", 40);
    assert_eq!(
        tally.apply(&unknown),
        Err(ScoringError::UnknownAttackType { report: 4, attack_type: "defacement".into() })
    );
    assert_eq!((tally.points(RED).attack, tally.report_points(4)), (300, None));
}

#[test]
fn rules_standings_count_each_ruling_from_its_tick_in_any_order() {
    let (rules, teams) = rules();
    let mut awards = vec![
        Award { tick: Tick(1), ..found(1, RED, RulingStage::First, "data-access", "bucket", 20) },
        Award { tick: Tick(2), ..found(2, RED2, RulingStage::First, "data-access", "bucket", 10) },
        Award { tick: Tick(2), ..answered(3, 2, &[("tracing", 15)], 0) },
    ];
    let run = |awards: &[Award]| {
        recompute_standings(
            ScoringFormula::Faust,
            &teams,
            &services(),
            &ticks(3),
            &rules,
            awards,
            &PatchRules::default(),
            &[],
        )
        .unwrap()
    };
    let forward = run(&awards);
    let reports = |s: &Standings, team: TeamId| s.team(team).unwrap().reports;
    assert_eq!(reports(&forward[0], RED), ReportPoints::default());
    assert_eq!(reports(&forward[1], RED).attack, 200);
    // In tick 2 the earlier-stated finding takes the first 200 and red's drops to 140.
    assert_eq!((reports(&forward[2], RED).attack, reports(&forward[2], RED2).attack), (140, 200));
    assert_eq!(reports(&forward[2], BLUE), ReportPoints { attack: 0, defence: 30, lost: 340 });
    let blue = forward[2].team(BLUE).unwrap();
    assert_eq!(blue.report_score, -310.0);
    awards.reverse();
    assert_eq!(run(&awards), forward, "the order rulings are listed in does not matter");
}

#[test]
fn a_batch_of_rulings_scores_as_they_do_one_by_one_and_a_refused_batch_changes_nothing() {
    let (rules, teams) = rules();
    let awards = [
        answered(3, 1, &[("response", 15)], 10),
        found(1, RED, RulingStage::First, "perimeter-breach", "vpn", 20),
        found(2, RED2, RulingStage::First, "perimeter-breach", "vpn", 10),
        found(1, RED, RulingStage::Appeal, "data-access", "bucket", 20),
    ];
    let mut one_by_one = ReportTally::for_drill(&rules, &teams);
    for a in &awards {
        one_by_one.apply(a).unwrap();
    }
    let mut batch = ReportTally::for_drill(&rules, &teams);
    batch.apply_all(&awards).unwrap();
    for team in [RED, RED2, BLUE] {
        assert_eq!(batch.points(team), one_by_one.points(team), "team {team}");
    }
    for report in 1..=3 {
        assert_eq!(batch.report_points(report), one_by_one.report_points(report), "report {report}");
    }
    assert_eq!(batch.points(BLUE), ReportPoints { attack: 0, defence: 30 + 10, lost: 300 });
    // A batch whose last ruling is refused leaves the tally as it was, its first rulings too.
    let refused = [
        found(4, RED, RulingStage::First, "target-control", "rce", 30),
        award(9, RED, ReportKind::Attack, RulingStage::Appeal, 0, 0),
    ];
    assert_eq!(batch.apply_all(&refused), Err(ScoringError::AppealBeforeRuling { report: 9 }));
    assert_eq!((batch.points(RED).attack, batch.report_points(4)), (200, None));
    let mut judged = ReportTally::new();
    let refused = [
        award(5, RED, ReportKind::Attack, RulingStage::First, 40, 0),
        award(5, RED, ReportKind::Attack, RulingStage::First, 40, 0),
    ];
    assert_eq!(judged.apply_all(&refused), Err(ScoringError::DuplicateRuling { report: 5 }));
    assert_eq!(judged.points(RED), ReportPoints::default());
}
