//! The operators' files name only what the platform exposes: every metric series the Grafana
//! dashboard (`infra/grafana/gongfang.json`) and the alerts in `docs/operations.md` query is
//! written by the scoreboard's or the flag submission's `/metrics` code, and is listed in the
//! scoreboard's reference of `/metrics`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository's root")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repository().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `gongfang_…` series named in `text`, without a histogram's `_bucket`, `_sum`, `_count`.
fn series(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("gongfang_") {
        // Not inside a longer word (a crate's name such as gongfang_core).
        if text[..at].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let name: String =
            text[at..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
        let name =
            ["_bucket", "_sum", "_count"].iter().fold(name, |n, end| n.strip_suffix(end).unwrap_or(&n).to_owned());
        out.insert(name);
    }
    out
}

#[test]
fn the_dashboard_and_the_alerts_query_series_the_platform_writes() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("infra/grafana/gongfang.json")).expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("the dashboard has panels");
    let mut queries = String::new();
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("panel without targets: {panel}"));
        assert!(!targets.is_empty(), "panel without a query: {}", panel["title"]);
        for target in targets {
            queries.push_str(target["expr"].as_str().expect("a query"));
            queries.push('\n');
        }
    }
    let operations = read("docs/operations.md");
    let alerts = &operations[operations.find("## Alerts").expect("docs/operations.md has its alerts")..];
    let asked: BTreeSet<String> = series(&queries).union(&series(alerts)).cloned().collect();
    assert!(asked.len() >= 10, "the dashboard and alerts cover the drill: {asked:?}");

    let written =
        read("scoreboard/gongfang-web/src/metrics.rs") + &read("scoreboard/gongfang-submission/src/metrics.rs");
    let reference = read("docs/scoreboard.md");
    for name in &asked {
        assert!(written.contains(&format!("\"{name}")), "{name} is queried but no /metrics code writes it");
        assert!(reference.contains(&format!("`{name}")), "{name} is not in docs/scoreboard.md's /metrics reference");
    }
}
