//! Scenario validation as an organiser meets it: every broken file under `scenarios/broken`
//! must produce exactly the error text in its snapshot, and the shipped examples must parse.

use std::path::{Path, PathBuf};

use std::time::Duration;

use gongfang_core::scenario::{
    self, Identify, ImageSource, JudgePanel, Probe, ReportRules, ReportScoring, Role, ScoringFormula, SecretSource,
};

/// Files exist unless their path says `missing`; only `GONGFANG_SECRET` is set.
struct TestProbe;

impl Probe for TestProbe {
    fn is_file(&self, path: &Path) -> bool {
        !path.to_string_lossy().contains("missing")
    }
    fn is_dir(&self, path: &Path) -> bool {
        !path.to_string_lossy().contains("missing")
    }
    fn env_var_set(&self, name: &str) -> bool {
        name == "GONGFANG_SECRET"
    }
}

fn errors_of(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/broken").join(name);
    let src = std::fs::read_to_string(&path).unwrap();
    let shown = PathBuf::from("broken").join(name);
    match scenario::parse(&src, &shown, &TestProbe) {
        Ok(_) => panic!("{name} was accepted"),
        Err(problems) => problems.to_string(),
    }
}

macro_rules! broken {
    ($($test:ident => $file:literal,)*) => {$(
        #[test]
        fn $test() {
            insta::assert_snapshot!(errors_of($file));
        }
    )*};
}

broken! {
    syntax_error => "syntax_error.toml",
    unknown_keys => "unknown_keys.toml",
    duplicate_team_slug => "duplicate_team_slug.toml",
    duplicate_team_id => "duplicate_team_id.toml",
    tick_shorter_than_timeout => "tick_shorter_than_timeout.toml",
    missing_checker => "missing_checker.toml",
    overlapping_networks => "overlapping_networks.toml",
    missing_keys => "missing_keys.toml",
    wrong_types => "wrong_types.toml",
    bad_values => "bad_values.toml",
    no_secret => "no_secret.toml",
    secret_env_unset => "secret_env_unset.toml",
    secret_twice => "secret_twice.toml",
    no_attacker => "no_attacker.toml",
    no_defender => "no_defender.toml",
    end_before_start => "end_before_start.toml",
    start_without_zone => "start_without_zone.toml",
    bad_slug_and_network => "bad_slug_and_network.toml",
    empty => "empty.toml",
    wrong_shapes => "wrong_shapes.toml",
    only_nop_attacks => "only_nop_attacks.toml",
    bad_reports => "bad_reports.toml",
    reports_worth_nothing => "reports_worth_nothing.toml",
    red_blue_without_reports => "red_blue_without_reports.toml",
    reports_not_a_table => "reports_not_a_table.toml",
    bad_report_limits => "bad_report_limits.toml",
    team_evidence_below_report => "team_evidence_below_report.toml",
    inline_secret_not_demo => "inline_secret_not_demo.toml",
    short_demo_secret => "short_demo_secret.toml",
    demo_not_a_boolean => "demo_not_a_boolean.toml",
    vpn_range_too_small => "vpn_range_too_small.toml",
    bad_vpn => "bad_vpn.toml",
}

#[test]
fn every_broken_file_has_a_test() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/broken");
    let files = std::fs::read_dir(dir).unwrap().count();
    let source = include_str!("scenarios.rs");
    assert_eq!(files, source.matches(".toml\",\n").count(), "add a broken! line for each file");
}

#[test]
fn minimal_scenario_fills_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/valid_minimal.toml");
    let src = std::fs::read_to_string(&path).unwrap();
    let s = scenario::parse(&src, &path, &TestProbe).unwrap();
    assert_eq!(s.drill.flag_prefix, "GONGFANG");
    assert_eq!(s.drill.flag_lifetime, 5);
    assert_eq!(s.drill.tick.as_secs(), 60);
    assert_eq!(s.drill.checker_timeout.as_secs(), 20, "a third of the tick by default");
    assert_eq!(s.drill.scoring, ScoringFormula::Faust);
    assert_eq!(s.drill.name.zh, "Test", "the Chinese name falls back to the English one");
    assert_eq!(s.submission.identify, Identify::Address);
    assert!(s.teams.iter().all(|t| t.role == Role::Both && !t.nop));
    assert_eq!(s.services[0].limits.memory_bytes, 512 << 20);
    assert_eq!(s.services[0].checker, path.parent().unwrap().join("notes.wasm"));
    assert_eq!(s.reports, ReportRules::default(), "no [reports] table: reports off");
    assert!(!s.reports.enabled);
    assert!(!s.drill.demo, "a drill is real unless it says it is a demo");
    assert_eq!(s.drill.min_secret_len(), 32);
}

#[test]
fn a_demo_may_keep_its_secret_inline() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/valid_minimal.toml");
    let src = std::fs::read_to_string(&path)
        .unwrap()
        .replace("secret_env = \"GONGFANG_SECRET\"", "demo = true\nsecret = \"0123456789abcdef\"");
    let s = scenario::parse(&src, &path, &TestProbe).unwrap_or_else(|p| panic!("{p}"));
    assert!(s.drill.demo);
    assert!(matches!(&s.drill.secret, SecretSource::Inline(secret) if secret.expose() == "0123456789abcdef"));
    assert_eq!(s.drill.min_secret_len(), 16);
}

#[test]
fn every_shipped_scenario_with_an_inline_secret_is_a_demo() {
    for name in ["demo", "opendata", "redblue"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../challenges/{name}/scenario.toml"));
        let src = std::fs::read_to_string(&path).unwrap();
        let s = scenario::parse(&src, &path, &scenario::AssumeEverythingExists).unwrap_or_else(|p| panic!("{p}"));
        if matches!(s.drill.secret, SecretSource::Inline(_)) {
            assert!(s.drill.demo, "{name} keeps its secret inline and must say demo = true");
        }
    }
}

/// The four services of the Hong Kong e-government pack, as both shipped drills name them.
const PACK: [&str; 4] = ["opendata", "citizenid", "consent", "bizsign"];

#[test]
fn the_demo_runs_the_whole_pack_for_three_teams() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../challenges/demo/scenario.toml");
    let src = std::fs::read_to_string(&path).unwrap();
    // The checkers are outputs of the guests' build (the pack's tests run them); only the
    // model is under test here.
    let s = scenario::parse(&src, &path, &scenario::AssumeEverythingExists).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(s.drill.name.zh, "香港電子政府攻防演練示範");
    assert_eq!(s.teams.len(), 3);
    assert!(s.teams.iter().all(|t| t.role == Role::Both && !t.nop));
    assert_eq!(s.drill.tick, Duration::from_secs(30));
    assert_eq!(s.submission.identify, Identify::Token);
    assert_eq!(s.services.iter().map(|s| s.slug.as_str()).collect::<Vec<_>>(), PACK);
    for service in &s.services {
        let ImageSource::Build(folder) = &service.source else {
            panic!("{} is built: {:?}", service.slug, service.source)
        };
        assert!(folder.ends_with(format!("{}/service", service.slug)), "{}", folder.display());
        assert_eq!((service.flag_stores, service.ports.as_slice()), (2, &[8080][..]), "{}", service.slug);
    }
}

#[test]
fn redblue_example_parses_with_reports() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../challenges/redblue/scenario.toml");
    let src = std::fs::read_to_string(&path).unwrap();
    let s = scenario::parse(&src, &path, &scenario::AssumeEverythingExists).unwrap_or_else(|p| panic!("{p}"));
    let roles: Vec<Role> = s.teams.iter().map(|t| t.role).collect();
    assert!(roles.contains(&Role::Attacker) && roles.contains(&Role::Defender));
    assert!(!roles.contains(&Role::Both), "a red/blue drill has no symmetric teams");
    assert_eq!(s.services.iter().map(|s| s.slug.as_str()).collect::<Vec<_>>(), PACK, "blue teams defend the pack");
    let r = &s.reports;
    assert!(r.enabled);
    assert_eq!((r.attack_max_points, r.defence_max_points), (100, 60));
    assert_eq!(r.scoring, ReportScoring::RedBlue);
    assert_eq!(r.max_window, Duration::from_secs(6 * 3600));
    assert_eq!(r.appeal_window, Duration::from_secs(2 * 3600));
    assert_eq!(r.max_evidence_bytes, 16 << 20);
}

#[test]
fn an_empty_reports_table_turns_reports_on_with_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/valid_minimal.toml");
    let src = std::fs::read_to_string(&path).unwrap() + "\n[reports]\n";
    let s = scenario::parse(&src, &path, &TestProbe).unwrap();
    assert_eq!(s.reports, ReportRules { enabled: true, ..ReportRules::default() });
    let src = src + "report_weight = 2\nmax_evidence = \"1MiB\"\nscoring = \"red-blue\"\n";
    let s = scenario::parse(&src, &path, &TestProbe).unwrap();
    assert_eq!(s.reports.weight, 2.0);
    assert_eq!(s.reports.max_evidence_bytes, 1 << 20);
    assert_eq!(s.reports.scoring, ReportScoring::RedBlue);
}

#[test]
fn filing_limits_have_defaults_and_can_be_set() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/valid_minimal.toml");
    let src = std::fs::read_to_string(&path).unwrap() + "\n[reports]\n";
    let s = scenario::parse(&src, &path, &TestProbe).unwrap();
    assert_eq!(s.reports.max_reports_per_team, 200);
    assert_eq!(s.reports.max_evidence_bytes_per_team, 512 << 20);
    assert_eq!(s.reports.max_concurrent_uploads, 2);
    let src = src + "max_reports_per_team = 30\nmax_evidence_per_team = \"2GiB\"\nmax_concurrent_uploads = 1\n";
    let s = scenario::parse(&src, &path, &TestProbe).unwrap();
    assert_eq!(s.reports.max_reports_per_team, 30);
    assert_eq!(s.reports.max_evidence_bytes_per_team, 2 << 30);
    assert_eq!(s.reports.max_concurrent_uploads, 1);
}

#[test]
fn two_judges_score_blind_with_a_disagreement_threshold() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/valid_minimal.toml");
    let src = std::fs::read_to_string(&path).unwrap() + "\n[reports]\n";
    let parse = |extra: &str| scenario::parse(&(src.clone() + extra), &path, &TestProbe);
    assert_eq!(parse("").unwrap().reports.panel, JudgePanel::One);
    assert_eq!(parse("judges = 2\n").unwrap().reports.panel, JudgePanel::BlindPair { max_difference: 20 });
    assert_eq!(
        parse("judges = 2\ndisagreement_points = 0\n").unwrap().reports.panel,
        JudgePanel::BlindPair { max_difference: 0 }
    );
    let three = parse("judges = 3\n").unwrap_err().to_string();
    assert!(three.contains("`judges` must be between 1 and 2") && three.contains("a third decides"), "{three}");
    let lone = parse("disagreement_points = 5\n").unwrap_err().to_string();
    assert!(lone.contains("`judges` is 1") && lone.contains("set judges = 2"), "{lone}");
    let bad = parse("judges = 2\ndisagreement_points = -1\n").unwrap_err().to_string();
    assert!(bad.contains("disagreement_points"), "{bad}");
}

#[test]
fn a_vpn_table_gives_teams_wireguard_access() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/valid_minimal.toml");
    let src = std::fs::read_to_string(&path).unwrap();
    assert_eq!(scenario::parse(&src, &path, &TestProbe).unwrap().vpn, None, "no [vpn]: no WireGuard access");
    let src = src + "\n[vpn]\nlisten = \"vpn.example.org:4500\"\nrange = \"10.80.0.0/16\"\npeers_per_team = 2\n";
    let vpn = scenario::parse(&src, &path, &TestProbe).unwrap().vpn.unwrap();
    assert_eq!(vpn.endpoint(), "vpn.example.org:4500");
    assert_eq!(vpn.gateway.to_string(), "10.80.0.1");
    assert_eq!(vpn.peers_per_team, 2);
    assert!(vpn.anonymise);
}
