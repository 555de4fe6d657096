//! The rule-based preset (`[reports] scoring = "rules"`) as organisers rely on it: its tables
//! read from the scenario with defaults and clear refusals.

use std::path::Path;

use gongfang_core::TeamId;
use gongfang_core::scenario::{self, AttackType, Criterion, KeyUnit, Names, ReportScoring, RulePreset, Scenario};

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
