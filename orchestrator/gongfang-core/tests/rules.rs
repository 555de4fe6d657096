//! The rule-based preset (`[reports] scoring = "rules"`) as organisers and judges rely on it:
//! its tables read from the scenario with defaults and clear refusals, the worked example of
//! `docs/reports.md` computed by hand, and properties over random drills: the order findings
//! are stored or listed in never matters, every cap holds, and scores recompute exactly from the
//! stored findings.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use gongfang_core::report::ReportKind;
use gongfang_core::scenario::{self, AttackType, Criterion, KeyUnit, Names, ReportScoring, Role, RulePreset, Scenario};
use gongfang_core::scoring::{
    AttackFinding, AttackNote, Capture, DefenceFinding, DefenceNote, LinkedEvent, RulesScores, ScoredTeam,
    ScoringError, score_rules,
};
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick};
use proptest::prelude::*;

/// Two red teams and two blue teams; the `[reports]` table is appended by each test.
const BASE: &str = r#"[drill]
slug = "rules"
name = "Rules"
duration = "60h"
tick = "120s"
secret_env = "GONGFANG_SECRET"

[[team]]
id = 1
slug = "red-a"
name = "Red Team A"
role = "attacker"
network = "10.60.1.0/24"

[[team]]
id = 2
slug = "red-b"
name = "Red Team B"
role = "attacker"
network = "10.60.2.0/24"

[[team]]
id = 11
slug = "ddb"
name = "Digital Development Bureau"
role = "defender"
network = "10.60.11.0/24"

[[team]]
id = 12
slug = "emd"
name = "Environmental Monitoring Department"
role = "defender"
network = "10.60.12.0/24"

[[service]]
slug = "opendata"
name = "Open Data Portal"
image = "opendata:latest"
ports = [8080]
checker = "opendata.wasm"
"#;

fn parsed(reports: &str) -> Result<Scenario, String> {
    let src = format!("{BASE}\n{reports}");
    scenario::parse(&src, Path::new("rules.toml"), &scenario::AssumeEverythingExists).map_err(|p| p.to_string())
}

fn errors(reports: &str) -> String {
    match parsed(reports) {
        Ok(_) => panic!("accepted:\n{reports}"),
        Err(e) => e,
    }
}

const RED_A: TeamId = TeamId(1);
const RED_B: TeamId = TeamId(2);
const DDB: TeamId = TeamId(11);
const EMD: TeamId = TeamId(12);

// ---------------------------------------------------------------------------------------------
// The scenario's tables

#[test]
fn scoring_rules_without_tables_gets_the_example_tables() {
    let s = parsed("[reports]\nscoring = \"rules\"\n").unwrap();
    assert_eq!(s.reports.scoring, ReportScoring::Rules);
    let p = s.reports.preset.as_ref().expect("a preset with scoring = \"rules\"");
    assert_eq!(p, &RulePreset::default());
    let types: Vec<(&str, u32, u32)> =
        p.attack_types.iter().map(|t| (t.slug.as_str(), t.points, t.max_per_unit)).collect();
    assert_eq!(
        types,
        [
            ("perimeter-breach", 100, 200),
            ("target-control", 300, 600),
            ("data-access", 200, 400),
            ("attack-path", 150, 300),
            ("other-system", 50, 200)
        ]
    );
    assert_eq!(p.attack_types[0].name.zh, "邊界突破");
    assert_eq!(p.repeat_factors, [100, 70, 40]);
    assert_eq!(p.unit_points, 1000);
    assert!(p.key_units.is_empty());
    assert_eq!(p.rubric.len(), 9);
    assert_eq!(p.rubric.iter().map(|c| c.max_share).sum::<u32>(), 100);
    assert_eq!((p.max_defence_share, p.max_counted_defences, p.max_bonus, p.capture_points), (80, 20, 100, 100));
    assert!(s.is_red_blue(), "ranked like red-blue");
    assert!(ReportScoring::Rules.ranks_sides() && ReportScoring::RedBlue.ranks_sides());
    assert!(!ReportScoring::Formula.ranks_sides());
}

#[test]
fn other_scorings_have_no_preset() {
    for scoring in ["formula", "red-blue"] {
        let s = parsed(&format!("[reports]\nscoring = \"{scoring}\"\n")).unwrap();
        assert_eq!(s.reports.preset, None, "{scoring}");
    }
    assert_eq!(parsed("").unwrap().reports.preset, None, "no [reports]");
}

#[test]
fn every_table_can_be_set() {
    let s = parsed(
        r#"[reports]
scoring = "rules"
repeat_factors = [100, 50, 50]
unit_points = 800
max_defence_share = 60
max_counted_defences = 5
max_bonus = 0
capture_points = 40

[[reports.attack_type]]
slug = "weak-password"
name = "Weak password"
points = 80
max_per_unit = 160

[[reports.rubric]]
slug = "detection"
name = "Detection"
name_zh = "偵測"
max_share = 40

[[reports.rubric]]
slug = "tracing"
name = "Tracing the attacker"
name_zh = "追蹤攻擊者"
max_share = 40

[reports.key_units]
emd = 200
ddb = 150
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let p = s.reports.preset.unwrap();
    let names = |en: &str, zh: &str| Names { en: en.into(), zh: zh.into() };
    assert_eq!(
        p,
        RulePreset {
            attack_types: vec![AttackType {
                slug: "weak-password".into(),
                // No name_zh: the English name stands in, as for teams and services.
                name: names("Weak password", "Weak password"),
                points: 80,
                max_per_unit: 160,
            }],
            key_units: vec![KeyUnit { team: DDB, multiplier: 150 }, KeyUnit { team: EMD, multiplier: 200 }],
            repeat_factors: vec![100, 50, 50],
            unit_points: 800,
            rubric: vec![
                Criterion { slug: "detection".into(), name: names("Detection", "偵測"), max_share: 40 },
                Criterion {
                    slug: "tracing".into(), name: names("Tracing the attacker", "追蹤攻擊者"), max_share: 40
                },
            ],
            max_defence_share: 60,
            max_counted_defences: 5,
            max_bonus: 0,
            capture_points: 40,
        }
    );
    assert_eq!((p.multiplier(EMD), p.multiplier(DDB), p.multiplier(RED_A)), (200, 150, 100));
    assert_eq!((p.repeat_factor(1), p.repeat_factor(3), p.repeat_factor(4), p.repeat_factor(0)), (100, 50, 0, 0));
}

#[test]
fn bad_values_are_refused_with_how_to_fix_them() {
    insta::assert_snapshot!(errors(
        r#"[reports]
scoring = "rules"
repeat_factors = [100, 0, 70, 80, "40%"]
unit_points = 0
max_defence_share = 120
max_counted_defences = "all"
max_bonus = -5

[[reports.attack_type]]
slug = "breach"
name = "Breach"
points = 100
max_per_unit = 50

[[reports.attack_type]]
slug = "breach"
name = "Another breach"
points = 10
max_per_unit = 10
weight = 2

[[reports.attack_type]]
slug = "Data Access"
points = 0
max_per_unit = 10

[[reports.rubric]]
slug = "detection"
name = "Detection"
max_share = 0

[reports.key_units]
ddb = 0
emd = "150"
red-a = 150
dbd = 120
"#
    ));
}

#[test]
fn wrong_shapes_are_refused() {
    insta::assert_snapshot!(errors(
        r#"[reports]
scoring = "rules"
attack_type = "breach"
key_units = 150
repeat_factors = "100, 70, 40"
rubric = []
"#
    ));
}

#[test]
fn the_preset_tables_need_scoring_rules() {
    insta::assert_snapshot!(errors(
        r#"[reports]
scoring = "red-blue"
unit_points = 500
repeat_factors = [100, 50]

[reports.key_units]
ddb = 150
"#
    ));
}

#[test]
fn scoring_rules_needs_reports_on() {
    insta::assert_snapshot!(errors("[reports]\nenabled = false\nscoring = \"rules\"\n"));
}

#[test]
fn a_wrong_scoring_still_has_the_tables_checked() {
    let e = errors("[reports]\nscoring = \"rule\"\nunit_points = 0\n");
    assert!(e.contains("unknown scoring \"rule\"") && e.contains("did you mean \"rules\"?"), "{e}");
    assert!(e.contains("`unit_points` must be between 1 and 1000000"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// The worked example of docs/reports.md

/// The worked example's `[reports]` table, as `docs/reports.md` shows it.
const WORKED_EXAMPLE: &str = r#"[reports]
scoring = "rules"
unit_points = 500
max_counted_defences = 2
max_bonus = 30

[[reports.attack_type]]
slug = "perimeter-breach"
name = "Perimeter breach"
name_zh = "邊界突破"
points = 100
max_per_unit = 200

[[reports.attack_type]]
slug = "target-control"
name = "Control of a target system"
name_zh = "取得目標系統控制權"
points = 300
max_per_unit = 600

[reports.key_units]
ddb = 150
"#;

/// 21 November 2026, Hong Kong time.
fn hkt(hour: u32, minute: u32) -> DateTime<Utc> {
    FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, 11, 21, hour, minute, 0)
        .unwrap()
        .with_timezone(&Utc)
}

#[allow(clippy::too_many_arguments)]
fn attack(
    report: i64,
    team: TeamId,
    unit: TeamId,
    kind: &str,
    weakness: &str,
    stated: DateTime<Utc>,
    filed: u64,
    valid: bool,
) -> AttackFinding {
    AttackFinding { report, team, unit, attack_type: kind.into(), weakness: weakness.into(), stated, filed, valid }
}

fn rubric(scores: &[(&str, u32)]) -> BTreeMap<String, u32> {
    scores.iter().map(|(c, s)| (c.to_string(), *s)).collect()
}

fn defence(
    report: i64,
    team: TeamId,
    link: LinkedEvent,
    scores: &[(&str, u32)],
    bonus: u32,
    stated: DateTime<Utc>,
) -> DefenceFinding {
    DefenceFinding { report, team, link, rubric: rubric(scores), bonus, stated, filed: report as u64, valid: true }
}

fn answers(report: i64) -> LinkedEvent {
    LinkedEvent::Attack { report }
}

fn capture(attacker: TeamId, victim: TeamId, tick: u32) -> Capture {
    Capture { attacker, victim, service: ServiceId(1), store: StoreIdx(0), planted: Tick(tick), submitted: Tick(tick) }
}

struct Example {
    scenario: Scenario,
    attacks: Vec<AttackFinding>,
    defences: Vec<DefenceFinding>,
}

fn worked_example() -> Example {
    let scenario = parsed(WORKED_EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    let attacks = vec![
        attack(1, RED_A, EMD, "perimeter-breach", "weak-password:vpn", hkt(10, 0), 1, true),
        // Filed after report 1, but it says the attack came first: it is the first finding.
        attack(2, RED_B, EMD, "perimeter-breach", "weak-password:vpn", hkt(9, 30), 2, true),
        attack(3, RED_A, EMD, "perimeter-breach", "captcha-bypass:portal", hkt(11, 0), 3, true),
        attack(4, RED_B, EMD, "target-control", "misconfiguration:admin", hkt(12, 0), 4, true),
        attack(5, RED_A, EMD, "target-control", "default-password:database", hkt(13, 0), 5, true),
        attack(6, RED_A, DDB, "target-control", "misconfiguration:admin", hkt(12, 30), 6, true),
        attack(7, RED_B, DDB, "perimeter-breach", "weak-password:vpn", hkt(12, 10), 7, false),
    ];
    let defences = vec![
        defence(
            10,
            EMD,
            answers(4),
            &[("detection-timeliness", 10), ("detection-tooling", 10), ("analysis", 10), ("response", 15)],
            0,
            hkt(12, 5),
        ),
        defence(
            11,
            EMD,
            answers(4),
            &[
                ("detection-timeliness", 10),
                ("detection-coverage", 10),
                ("response", 15),
                ("notification", 10),
                ("coordination", 10),
                ("tracing", 15),
            ],
            20,
            hkt(12, 40),
        ),
        defence(12, EMD, answers(2), &[("detection-timeliness", 10)], 0, hkt(13, 0)),
        defence(
            13,
            DDB,
            answers(6),
            &[("detection-timeliness", 10), ("response", 15), ("notification", 10), ("tracing", 15)],
            40,
            hkt(12, 45),
        ),
        defence(
            14,
            DDB,
            LinkedEvent::Capture(capture(RED_B, DDB, 30)),
            &[("detection-timeliness", 10), ("detection-tooling", 10)],
            0,
            hkt(14, 0),
        ),
        defence(15, DDB, answers(7), &[("detection-timeliness", 10)], 0, hkt(12, 20)),
    ];
    Example { scenario, attacks, defences }
}

fn scored_teams(s: &Scenario) -> Vec<ScoredTeam> {
    s.teams.iter().map(ScoredTeam::from).collect()
}

fn score(e: &Example) -> RulesScores {
    let preset = e.scenario.reports.preset.as_ref().unwrap();
    score_rules(preset, &scored_teams(&e.scenario), &e.attacks, &e.defences).unwrap()
}

/// The worked example, by hand (base = points × factor, cut to what the type's cap and the
/// unit's points leave, × the unit's multiplier):
///
/// | # | stated | red | unit | type | repeat | base | type left | unit left | counted | × | points |
/// |---|---|---|---|---|---|---|---|---|---|---|---|
/// | 2 | 09:30 | red-b | emd | perimeter | 1st: 100 % | 100 | 200 | 500 | 100 | 100 % | 100 |
/// | 1 | 10:00 | red-a | emd | perimeter | 2nd: 70 % | 70 | 100 | 400 | 70 | 100 % | 70 |
/// | 3 | 11:00 | red-a | emd | perimeter | 1st | 100 | 30 | 330 | 30 (type cap) | 100 % | 30 |
/// | 4 | 12:00 | red-b | emd | control | 1st | 300 | 600 | 300 | 300 | 100 % | 300 |
/// | 7 | 12:10 | red-b | ddb | — invalid | | | | | | | 0 |
/// | 6 | 12:30 | red-a | ddb | control | 1st (another unit) | 300 | 600 | 500 | 300 | 150 % | 450 |
/// | 5 | 13:00 | red-a | emd | control | 1st | 300 | 300 | 0 | 0 (unit exhausted) | 100 % | 0 |
///
/// Defence (share = what the rubric adds over the team's earlier answers to the same attack, cut
/// to what 80 % leaves; points = cost × share):
///
/// - 10 (emd, 12:05, answers 4, cost 300): 10+10+10+15 = 45 % → 135.
/// - 15 (ddb, 12:20, answers 7): ruled invalid, so nothing; it does not count.
/// - 11 (emd, 12:40, answers 4): judged 70 %, of which timeliness 10 and response 15 were
///   scored already: new 45 %, cut to the 35 % left → 105; bonus 20.
/// - 13 (ddb, 12:45, answers 6, cost 450): 50 % → 225; bonus 40 cut to 30.
/// - 12 (emd, 13:00): emd has 2 counted results already → nothing.
/// - 14 (ddb, 14:00, a capture of ddb's flag: 100 × 150 % = 150): 20 % → 30.
#[test]
fn worked_example_by_hand() {
    let e = worked_example();
    let s = score(&e);
    let order: Vec<i64> = s.attacks.iter().map(|a| a.report).collect();
    assert_eq!(order, [2, 1, 3, 4, 7, 6, 5], "by stated time");

    let row = |r: i64| {
        let a = s.attack(r).unwrap();
        (a.repeat, a.factor, a.base, a.type_left, a.unit_left, a.counted, a.multiplier, a.points, a.notes.clone())
    };
    assert_eq!(row(2), (1, 100, 100, 200, 500, 100, 100, 100, vec![]));
    assert_eq!(row(1), (2, 70, 70, 100, 400, 70, 100, 70, vec![]));
    assert_eq!(row(3), (1, 100, 100, 30, 330, 30, 100, 30, vec![AttackNote::TypeCap]));
    assert_eq!(row(4), (1, 100, 300, 600, 300, 300, 100, 300, vec![]));
    assert_eq!(row(7), (0, 0, 0, 200, 500, 0, 150, 0, vec![AttackNote::Invalid]));
    assert_eq!(row(6), (1, 100, 300, 600, 500, 300, 150, 450, vec![]));
    assert_eq!(row(5), (1, 100, 300, 300, 0, 0, 100, 0, vec![AttackNote::UnitPoints]));

    let order: Vec<i64> = s.defences.iter().map(|d| d.report).collect();
    assert_eq!(order, [10, 15, 11, 13, 12, 14]);
    let row = |r: i64| {
        let d = s.defence(r).unwrap();
        (d.cost, d.judged, d.new, d.share_left, d.share, d.points, d.bonus, d.counted, d.notes.clone())
    };
    use DefenceNote::*;
    assert_eq!(row(10), (300, 45, 45, 80, 45, 135, 0, true, vec![]));
    assert_eq!(row(15), (0, 10, 0, 0, 0, 0, 0, false, vec![AttackInvalid]));
    assert_eq!(row(11), (300, 70, 45, 35, 35, 105, 20, true, vec![CriteriaScored, ShareCap]));
    assert_eq!(row(13), (450, 50, 50, 80, 50, 225, 30, true, vec![BonusCap]));
    assert_eq!(row(12), (100, 10, 10, 80, 0, 0, 0, false, vec![CountCap]));
    assert_eq!(row(14), (150, 20, 20, 80, 20, 30, 0, true, vec![]));

    let team = |id| {
        let t = s.team(id).unwrap();
        (t.attack, t.defence, t.bonus, t.cost, t.unit_points, t.counted_defences, t.total())
    };
    assert_eq!(team(RED_A), (550, 0, 0, 0, 0, 0, 550));
    assert_eq!(team(RED_B), (400, 0, 0, 0, 0, 0, 400));
    assert_eq!(team(DDB), (0, 255, 30, 450, 750, 2, -165));
    assert_eq!(team(EMD), (0, 240, 20, 500, 500, 2, -240));
}

/// The worked example's tables (attacks, defences, teams; a blank line between), as
/// `docs/reports.md` prints them.
fn example_tables(e: &Example, s: &RulesScores) -> String {
    let slug = |id: TeamId| e.scenario.team(id).unwrap().slug.clone();
    let time =
        |t: DateTime<Utc>| t.with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap()).format("%H:%M").to_string();
    let notes = |n: Vec<String>| if n.is_empty() { "—".to_owned() } else { n.join(", ") };
    let mut out = String::from(
        "| report | stated | red team | unit | type | weakness | repeat | factor | base | type left | unit left | counted | multiplier | points | notes |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for a in &s.attacks {
        let f = e.attacks.iter().find(|f| f.report == a.report).unwrap();
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} % | {} | {} | {} | {} | {} % | **{}** | {} |\n",
            a.report,
            time(f.stated),
            slug(a.team),
            slug(a.unit),
            a.attack_type,
            f.weakness,
            a.repeat,
            a.factor,
            a.base,
            a.type_left,
            a.unit_left,
            a.counted,
            a.multiplier,
            a.points,
            notes(a.notes.iter().map(|n| format!("`{n}`")).collect())
        );
    }
    out += "\n| report | stated | blue team | answers | cost | judged | new | share left | share | points | bonus | counted | notes |\n\
            |---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for d in &s.defences {
        let f = e.defences.iter().find(|f| f.report == d.report).unwrap();
        let link = match d.link {
            LinkedEvent::Attack { report } => format!("report {report}"),
            LinkedEvent::Capture(c) => format!("{}'s capture, tick {}", slug(c.attacker), c.planted.0),
        };
        out += &format!(
            "| {} | {} | {} | {} | {} | {} % | {} % | {} % | {} % | **{}** | {} of {} | {} | {} |\n",
            d.report,
            time(f.stated),
            slug(d.team),
            link,
            d.cost,
            d.judged,
            d.new,
            d.share_left,
            d.share,
            d.points,
            d.bonus,
            f.bonus,
            if d.counted { "yes" } else { "no" },
            notes(d.notes.iter().map(|n| format!("`{n}`")).collect())
        );
    }
    out += "\n| team | attack | defence | bonus | cost | unit points | counted defences | total |\n\
            |---|---|---|---|---|---|---|---|\n";
    for t in &s.teams {
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | **{}** |\n",
            slug(t.team),
            t.attack,
            t.defence,
            t.bonus,
            t.cost,
            t.unit_points,
            t.counted_defences,
            t.total()
        );
    }
    out
}

#[test]
fn the_guide_shows_the_worked_example_as_computed() {
    let guide = include_str!("../../../docs/reports.md");
    let e = worked_example();
    assert!(guide.contains(&format!("```toml\n{WORKED_EXAMPLE}```")), "docs/reports.md lost the example's table");
    let tables = example_tables(&e, &score(&e));
    for table in tables.split("\n\n") {
        assert!(guide.contains(table), "docs/reports.md shows other numbers; the computed table is:\n{table}");
    }
}

// ---------------------------------------------------------------------------------------------
// Single rules, by hand

fn defaults() -> (RulePreset, Vec<ScoredTeam>) {
    let team = |id, role| ScoredTeam { id: TeamId(id), role, nop: false };
    let teams =
        vec![team(1, Role::Attacker), team(2, Role::Attacker), team(11, Role::Defender), team(12, Role::Defender)];
    (RulePreset::default(), teams)
}

#[test]
fn repeats_decay_and_then_score_nothing() {
    let (preset, teams) = defaults();
    let found = |report, minute, valid| {
        attack(
            report,
            if report % 2 == 0 { RED_A } else { RED_B },
            DDB,
            "data-access",
            "sqli:search",
            hkt(10, minute),
            0,
            valid,
        )
    };
    // An invalid finding in between is no repeat.
    let attacks = [found(1, 0, true), found(2, 5, false), found(3, 10, true), found(4, 20, true), found(5, 30, true)];
    let s = score_rules(&preset, &teams, &attacks, &[]).unwrap();
    let got: Vec<(u32, u64)> =
        [1, 3, 4, 5].map(|r| s.attack(r).unwrap()).iter().map(|a| (a.repeat, a.points)).collect();
    // data-access: 200 points, 400 per unit: 200, 140, then 40 % is 80 but only 60 is left.
    assert_eq!(got, [(1, 200), (2, 140), (3, 60), (4, 0)]);
    assert_eq!(s.attack(4).unwrap().notes, [AttackNote::TypeCap]);
    assert_eq!(s.attack(5).unwrap().notes, [AttackNote::PastRepeats]);
    assert_eq!(s.attack(2).unwrap().notes, [AttackNote::Invalid]);
}

#[test]
fn equal_stated_times_go_by_filing_order() {
    let (preset, teams) = defaults();
    let same = hkt(9, 0);
    let attacks = [
        attack(8, RED_A, EMD, "perimeter-breach", "weak-password:vpn", same, 2, true),
        attack(9, RED_B, EMD, "perimeter-breach", "weak-password:vpn", same, 1, true),
    ];
    let s = score_rules(&preset, &teams, &attacks, &[]).unwrap();
    assert_eq!((s.attack(9).unwrap().points, s.attack(8).unwrap().points), (100, 70), "filed first, counted first");
    assert_eq!((s.team(RED_B).unwrap().attack, s.team(RED_A).unwrap().attack), (100, 70));
}

#[test]
fn splitting_a_defence_into_several_reports_gains_nothing() {
    let (preset, teams) = defaults();
    let attacks = [attack(1, RED_A, DDB, "target-control", "rce:upload", hkt(9, 0), 1, true)];
    let whole =
        [defence(2, DDB, answers(1), &[("detection-timeliness", 10), ("analysis", 10), ("tracing", 15)], 0, hkt(9, 5))];
    let split = [
        defence(2, DDB, answers(1), &[("detection-timeliness", 10)], 0, hkt(9, 5)),
        defence(3, DDB, answers(1), &[("detection-timeliness", 10), ("analysis", 10)], 0, hkt(9, 6)),
        defence(4, DDB, answers(1), &[("analysis", 5), ("tracing", 15)], 0, hkt(9, 7)),
    ];
    let one = score_rules(&preset, &teams, &attacks, &whole).unwrap();
    let three = score_rules(&preset, &teams, &attacks, &split).unwrap();
    assert_eq!(one.team(DDB).unwrap().defence, 105, "35 % of 300");
    assert_eq!(three.team(DDB).unwrap().defence, 105);
    assert_eq!(three.defence(4).unwrap().notes, [DefenceNote::CriteriaScored]);
}

#[test]
fn a_defence_of_an_attack_that_scored_nothing_earns_nothing_and_does_not_count() {
    let (mut preset, teams) = defaults();
    preset.max_counted_defences = 1;
    let attacks = [
        attack(1, RED_A, DDB, "other-system", "w", hkt(9, 0), 1, true),
        attack(2, RED_A, DDB, "other-system", "w", hkt(9, 1), 2, true),
        attack(3, RED_A, DDB, "other-system", "w", hkt(9, 2), 3, true),
        attack(4, RED_A, DDB, "other-system", "w", hkt(9, 3), 4, true),
    ];
    let defences = [
        defence(5, DDB, answers(4), &[("response", 15)], 0, hkt(9, 10)),
        defence(6, DDB, answers(1), &[("response", 15)], 0, hkt(9, 11)),
    ];
    let s = score_rules(&preset, &teams, &attacks, &defences).unwrap();
    let d = s.defence(5).unwrap();
    assert_eq!((d.cost, d.points, d.counted, d.notes.clone()), (0, 0, false, vec![DefenceNote::AttackCostNothing]));
    let d = s.defence(6).unwrap();
    assert_eq!((d.cost, d.points, d.counted), (50, 7, true), "15 % of 50, rounded down; the cap of 1 was still free");
}

#[test]
fn findings_that_cannot_have_been_ruled_are_refused() {
    let (preset, teams) = defaults();
    let ok = attack(1, RED_A, DDB, "data-access", "w", hkt(9, 0), 1, true);
    let run = |attacks: &[AttackFinding], defences: &[DefenceFinding]| score_rules(&preset, &teams, attacks, defences);
    let e = run(&[AttackFinding { attack_type: "phishing".into(), ..ok.clone() }], &[]).unwrap_err();
    assert_eq!(e, ScoringError::UnknownAttackType { report: 1, attack_type: "phishing".into() });
    assert_eq!(
        run(&[AttackFinding { team: DDB, unit: EMD, ..ok.clone() }], &[]).unwrap_err(),
        ScoringError::ReportNotForRole { report: 1, team: DDB, kind: ReportKind::Attack }
    );
    assert_eq!(
        run(&[AttackFinding { unit: RED_B, ..ok.clone() }], &[]).unwrap_err(),
        ScoringError::NotAUnit { report: 1, team: RED_B }
    );
    assert_eq!(
        run(&[AttackFinding { unit: TeamId(99), ..ok.clone() }], &[]).unwrap_err(),
        ScoringError::UnknownReportTeam { report: 1, team: TeamId(99) }
    );
    let on_ddb = [ok.clone()];
    let answer = defence(2, EMD, answers(1), &[("response", 15)], 0, hkt(9, 5));
    assert_eq!(
        run(&on_ddb, std::slice::from_ref(&answer)).unwrap_err(),
        ScoringError::LinkedElsewhere { report: 2, victim: DDB },
        "emd cannot answer an attack on ddb"
    );
    assert_eq!(
        run(&on_ddb, &[DefenceFinding { link: answers(7), ..answer.clone() }]).unwrap_err(),
        ScoringError::UnknownLinkedAttack { report: 2, linked: 7 }
    );
    let too_much = DefenceFinding { team: DDB, rubric: rubric(&[("response", 16)]), ..answer.clone() };
    assert_eq!(
        run(&on_ddb, &[too_much]).unwrap_err(),
        ScoringError::ShareAboveMax { report: 2, criterion: "response".into(), share: 16, max: 15 }
    );
    let unknown = DefenceFinding { team: DDB, rubric: rubric(&[("luck", 1)]), ..answer.clone() };
    assert_eq!(
        run(&on_ddb, &[unknown]).unwrap_err(),
        ScoringError::UnknownCriterion { report: 2, criterion: "luck".into() }
    );
    assert_eq!(
        run(&on_ddb, &[DefenceFinding { report: 1, team: DDB, ..answer.clone() }]).unwrap_err(),
        ScoringError::DuplicateReport { report: 1 }
    );
    // Of several, the one named is the lowest report's, however they are listed.
    let bad_type = AttackFinding { attack_type: "phishing".into(), ..ok.clone() };
    let bad_unit = AttackFinding { report: 0, unit: RED_B, ..ok.clone() };
    for listed in [[bad_type.clone(), bad_unit.clone()], [bad_unit, bad_type]] {
        assert_eq!(run(&listed, &[]).unwrap_err(), ScoringError::NotAUnit { report: 0, team: RED_B });
    }
    let own = DefenceFinding { link: LinkedEvent::Capture(capture(EMD, EMD, 3)), ..answer };
    assert_eq!(run(&[], &[own]).unwrap_err(), ScoringError::AttackOnOwnTeam { report: 2 });
}

// ---------------------------------------------------------------------------------------------
// Properties over random drills

/// SplitMix64: a random drill from a seed, the same on every machine.
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
        self.next() % n.max(1)
    }

    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below(u64::from(hi - lo + 1)) as u32
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

struct Drill {
    preset: RulePreset,
    teams: Vec<ScoredTeam>,
    attacks: Vec<AttackFinding>,
    defences: Vec<DefenceFinding>,
}

/// Tables small enough that every cap binds now and then, findings that repeat weaknesses,
/// share stated times and filing places, and answer the same attacks more than once.
fn random_drill(seed: u64) -> Drill {
    let mut r = Rng(seed);
    let team = |id, role| ScoredTeam { id: TeamId(id), role, nop: false };
    let teams = vec![
        team(1, Role::Attacker),
        team(2, Role::Attacker),
        team(3, Role::Attacker),
        team(11, Role::Defender),
        team(12, Role::Defender),
        team(13, Role::Defender),
        team(21, Role::Both),
        team(22, Role::Both),
    ];
    let red: Vec<TeamId> = teams.iter().filter(|t| t.role.attacks()).map(|t| t.id).collect();
    let blue: Vec<TeamId> = teams.iter().filter(|t| t.role.defends()).map(|t| t.id).collect();
    let names = |s: &str| Names { en: s.into(), zh: s.into() };

    let attack_types: Vec<AttackType> = (0..r.range(1, 4))
        .map(|i| {
            let points = r.range(1, 300);
            AttackType { slug: format!("t{i}"), name: names("t"), points, max_per_unit: r.range(points, points * 4) }
        })
        .collect();
    let mut repeat_factors = vec![r.range(1, 100)];
    for _ in 0..r.below(4) {
        let last = *repeat_factors.last().unwrap();
        repeat_factors.push(r.range(1, last));
    }
    let mut key_units = Vec::new();
    for &team in &blue {
        if r.chance(40) {
            key_units.push(KeyUnit { team, multiplier: r.range(1, 300) });
        }
    }
    let rubric: Vec<Criterion> = (0..r.range(1, 5))
        .map(|i| Criterion { slug: format!("c{i}"), name: names("c"), max_share: r.range(1, 40) })
        .collect();
    let preset = RulePreset {
        attack_types,
        key_units,
        repeat_factors,
        unit_points: r.range(1, 1500),
        rubric,
        max_defence_share: r.range(1, 100),
        max_counted_defences: r.range(1, 5),
        max_bonus: r.range(0, 50),
        capture_points: r.range(0, 200),
    };

    let times: Vec<DateTime<Utc>> = (0..6).map(|i| hkt(9, i * 10)).collect();
    let mut attacks = Vec::new();
    for report in 1..=r.below(30) as i64 {
        let team = r.pick(&red);
        let units: Vec<TeamId> = blue.iter().copied().filter(|&u| u != team).collect();
        attacks.push(AttackFinding {
            report,
            team,
            unit: r.pick(&units),
            attack_type: preset.attack_types[r.below(preset.attack_types.len() as u64) as usize].slug.clone(),
            weakness: format!("w{}", r.below(3)),
            stated: r.pick(&times),
            filed: r.below(8),
            valid: r.chance(80),
        });
    }
    let mut defences = Vec::new();
    for report in 100..100 + r.below(30) as i64 {
        let team = r.pick(&blue);
        let on_team: Vec<i64> = attacks.iter().filter(|a| a.unit == team).map(|a| a.report).collect();
        let link = if !on_team.is_empty() && r.chance(70) {
            LinkedEvent::Attack { report: r.pick(&on_team) }
        } else {
            let attackers: Vec<TeamId> = red.iter().copied().filter(|&a| a != team).collect();
            LinkedEvent::Capture(capture(r.pick(&attackers), team, r.range(0, 2)))
        };
        let mut rubric = BTreeMap::new();
        for c in &preset.rubric {
            if r.chance(60) {
                rubric.insert(c.slug.clone(), r.range(0, c.max_share));
            }
        }
        defences.push(DefenceFinding {
            report,
            team,
            link,
            rubric,
            bonus: r.range(0, 40),
            stated: r.pick(&times),
            filed: r.below(8),
            valid: r.chance(85),
        });
    }
    Drill { preset, teams, attacks, defences }
}

fn key(link: LinkedEvent) -> String {
    serde_json::to_string(&link).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_order_findings_come_in_does_not_matter(seed in any::<u64>(), shuffle in any::<u64>()) {
        let d = random_drill(seed);
        let scored = score_rules(&d.preset, &d.teams, &d.attacks, &d.defences).unwrap();
        let mut r = Rng(shuffle);
        let (mut teams, mut attacks, mut defences) = (d.teams.clone(), d.attacks.clone(), d.defences.clone());
        r.shuffle(&mut teams);
        r.shuffle(&mut attacks);
        r.shuffle(&mut defences);
        prop_assert_eq!(&scored, &score_rules(&d.preset, &teams, &attacks, &defences).unwrap());
        attacks.reverse();
        defences.reverse();
        prop_assert_eq!(&scored, &score_rules(&d.preset, &teams, &attacks, &defences).unwrap());
    }

    #[test]
    fn every_cap_holds(seed in any::<u64>()) {
        let d = random_drill(seed);
        let p = &d.preset;
        let s = score_rules(p, &d.teams, &d.attacks, &d.defences).unwrap();
        prop_assert_eq!(s.attacks.len(), d.attacks.len());
        prop_assert_eq!(s.defences.len(), d.defences.len());
        let scaled = |n: u32, unit: TeamId| u64::from(n) * u64::from(p.multiplier(unit)) / 100;

        let mut by_type: BTreeMap<(TeamId, &str), u64> = BTreeMap::new();
        let mut by_unit: BTreeMap<TeamId, u64> = BTreeMap::new();
        for a in &s.attacks {
            let kind = p.attack_type(&a.attack_type).unwrap();
            prop_assert!(a.points <= scaled(kind.points, a.unit), "{:?}", a);
            prop_assert!(a.counted <= a.base.min(a.type_left).min(a.unit_left));
            if a.notes.contains(&AttackNote::Invalid) {
                prop_assert_eq!(a.points, 0);
            }
            *by_type.entry((a.unit, kind.slug.as_str())).or_default() += a.points;
            *by_unit.entry(a.unit).or_default() += a.points;
        }
        for (&(unit, slug), &points) in &by_type {
            prop_assert!(points <= scaled(p.attack_type(slug).unwrap().max_per_unit, unit), "type cap of {slug} in {unit}");
        }
        for (&unit, &points) in &by_unit {
            prop_assert!(points <= scaled(p.unit_points, unit), "unit points of {unit}");
            prop_assert_eq!(points, s.team(unit).unwrap().cost);
            prop_assert!(s.team(unit).unwrap().cost <= s.team(unit).unwrap().unit_points);
        }

        let mut answered: BTreeMap<(TeamId, String), (u32, u64, u64)> = BTreeMap::new();
        for x in &s.defences {
            let e = answered.entry((x.team, key(x.link))).or_default();
            e.0 += x.share;
            e.1 += x.points;
            e.2 = x.cost;
            prop_assert!(x.share <= x.new.min(x.share_left));
            prop_assert!(x.counted || (x.points == 0 && x.bonus == 0));
        }
        for ((team, link), (share, points, cost)) in &answered {
            prop_assert!(*share <= p.max_defence_share, "share cap of {team} on {link}");
            prop_assert!(*points <= cost * u64::from(p.max_defence_share) / 100);
        }
        for t in &s.teams {
            let mine: Vec<_> = s.defences.iter().filter(|x| x.team == t.team).collect();
            prop_assert!(t.counted_defences <= p.max_counted_defences);
            prop_assert!(t.bonus <= u64::from(p.max_bonus));
            prop_assert_eq!(t.counted_defences as usize, mine.iter().filter(|x| x.counted).count());
            prop_assert_eq!(t.defence, mine.iter().map(|x| x.points).sum::<u64>());
            prop_assert_eq!(t.bonus, mine.iter().map(|x| x.bonus).sum::<u64>());
            prop_assert_eq!(t.attack, s.attacks.iter().filter(|a| a.team == t.team).map(|a| a.points).sum::<u64>());
        }
    }

    #[test]
    fn the_first_among_repeats_is_the_earliest_stated_then_the_first_filed(seed in any::<u64>()) {
        let d = random_drill(seed);
        let s = score_rules(&d.preset, &d.teams, &d.attacks, &d.defences).unwrap();
        // Per unit and weakness: each valid finding's place in the canonical order, and its repeat.
        type Found = (DateTime<Utc>, u64, i64, u32);
        let mut seen: BTreeMap<(TeamId, &str), Vec<Found>> = BTreeMap::new();
        for f in d.attacks.iter().filter(|f| f.valid) {
            let repeat = s.attack(f.report).unwrap().repeat;
            seen.entry((f.unit, f.weakness.as_str())).or_default().push((f.stated, f.filed, f.report, repeat));
        }
        for (_, mut found) in seen {
            found.sort();
            let repeats: Vec<u32> = found.iter().map(|f| f.3).collect();
            let expected: Vec<u32> = (1..=found.len() as u32).collect();
            prop_assert_eq!(repeats, expected);
        }
    }

    #[test]
    fn scores_recompute_from_the_stored_findings(seed in any::<u64>()) {
        let d = random_drill(seed);
        let live = score_rules(&d.preset, &d.teams, &d.attacks, &d.defences).unwrap();
        // What an audit reads back: the findings as stored, serialised and read again.
        let attacks: Vec<AttackFinding> = serde_json::from_str(&serde_json::to_string(&d.attacks).unwrap()).unwrap();
        let defences: Vec<DefenceFinding> =
            serde_json::from_str(&serde_json::to_string(&d.defences).unwrap()).unwrap();
        prop_assert_eq!(&attacks, &d.attacks);
        prop_assert_eq!(&defences, &d.defences);
        let again = score_rules(&d.preset, &d.teams, &attacks, &defences).unwrap();
        prop_assert_eq!(&live, &again);
        prop_assert_eq!(serde_json::to_string(&live).unwrap(), serde_json::to_string(&again).unwrap());
    }
}
