//! Reads a scenario's TOML into the typed model, reporting every mistake at once.
//!
//! The walk is by hand over toml's spanned document rather than through serde, because serde
//! stops at the first error and an organiser fixing a file wants the whole list, each with its
//! line, column and a hint. One [`Walker`] carries the problems found so far; its methods are
//! spread over the files below by what they read:
//!
//! - `sections`: the `[drill]`, `[submission]`, `[[team]]`, `[[service]]` and `[reports]` tables;
//! - `rules`: the rule-based preset's tables in `[reports]` (`scoring = "rules"`);
//! - `logs`: the `[logs]` table (how much of the service containers' output is kept);
//! - `vpn`: the `[vpn]` table (teams' WireGuard access);
//! - `patches`: the `[patches]` table (submitted patches, their builds and scoring) and a
//!   service's `fixed` files;
//! - `checks`: rules across entries (duplicate ids and slugs, overlapping networks, roles);
//! - `tables`: tables and arrays of tables, unknown keys;
//! - `values`: plain values (strings, slugs, integers, booleans, choices, durations, times);
//! - `fields`: values with rules of their own (secret, network, paths, ports, limits);
//! - `units`: the duration and size notations (`1h30m`, `256MiB`).

mod checks;
mod fields;
mod logs;
mod patches;
mod rules;
mod sections;
mod tables;
mod units;
mod values;
mod vpn;

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::model::*;
use super::problem::{Collector, Problems};
use sections::TOP_KEYS;

pub use units::{parse_bytes, parse_duration};

/// What validation needs to know about the world outside the file. The caller decides how to
/// answer (the real file system and environment in the binary, fixed answers in tests).
pub trait Probe {
    /// Whether `path` is an existing file.
    fn is_file(&self, path: &Path) -> bool;
    /// Whether `path` is an existing folder.
    fn is_dir(&self, path: &Path) -> bool;
    /// Whether the environment variable `name` is set and not empty.
    fn env_var_set(&self, name: &str) -> bool;
}

/// A probe that says every file, folder and variable exists: for tests and tools that only
/// need the model.
#[derive(Debug, Clone, Copy, Default)]
pub struct AssumeEverythingExists;

impl Probe for AssumeEverythingExists {
    fn is_file(&self, _: &Path) -> bool {
        true
    }
    fn is_dir(&self, _: &Path) -> bool {
        true
    }
    fn env_var_set(&self, _: &str) -> bool {
        true
    }
}

/// Parses and validates a scenario.
///
/// `file` is the path the user gave (used in messages, and its folder resolves the relative
/// paths inside the scenario). Returns every problem found, in file order.
pub fn parse(src: &str, file: &Path, probe: &dyn Probe) -> Result<Scenario, Problems> {
    let file_name = file.display().to_string();
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut c = Collector::new(src);

    let (root, syntax_errors) = DeTable::parse_recoverable(src);
    if !syntax_errors.is_empty() {
        for e in syntax_errors {
            c.error(&e.span().unwrap_or(0..0), format!("invalid TOML: {}", e.message()), None);
        }
        return Err(c.finish(&file_name));
    }
    let root_span = root.span();
    let root = root.into_inner();
    let mut w = Walker { c, base, probe };
    let scenario = w.scenario(&root, &root_span);
    match scenario {
        Some(s) if w.c.is_empty() => Ok(s),
        _ => Err(w.c.finish(&file_name)),
    }
}

type Val<'i> = Spanned<DeValue<'i>>;

struct Walker<'s, 'p> {
    c: Collector<'s>,
    base: PathBuf,
    probe: &'p dyn Probe,
}

/// One TOML table being read, with where it is and how to name it in messages.
struct Tab<'t, 'i> {
    table: &'t DeTable<'i>,
    /// Where to point when a key is missing: the table's header.
    at: Range<usize>,
    /// How messages name the table, e.g. `[drill]` or `[[team]] #2`.
    name: String,
}

impl<'t, 'i> Tab<'t, 'i> {
    fn get(&self, key: &str) -> Option<&'t Val<'i>> {
        self.table.get(key)
    }
}

impl Walker<'_, '_> {
    fn scenario(&mut self, root: &DeTable<'_>, root_span: &Range<usize>) -> Option<Scenario> {
        let top = Tab { table: root, at: root_span.start..root_span.start, name: "the top level".into() };
        self.unknown_keys(&top, TOP_KEYS, "sections");

        let drill = match self.table_at(&top, "drill", true) {
            Some(t) => self.drill(&t),
            None => None,
        };
        let submission = match self.table_at(&top, "submission", false) {
            Some(t) => self.submission(&t),
            None => Some(Submission { identify: Identify::Address, rate_limit: None, max_connections: 16 }),
        };
        let teams = self.list(&top, "team", "add a team: [[team]] with id, slug, name, network", Self::team);
        let services = self.list(
            &top,
            "service",
            "add a service: [[service]] with slug, name, image or build, ports, checker",
            Self::service,
        );
        let read: Vec<Team> = teams.iter().filter_map(|(t, _)| t.clone()).collect();
        let reports = match self.table_at(&top, "reports", false) {
            Some(t) => self.reports(&t, &read, teams.len()),
            None => Some(ReportRules::default()),
        };
        let logs = match self.table_at(&top, "logs", false) {
            Some(t) => self.logs(&t),
            None => Some(LogRules::default()),
        };
        let patches = match self.table_at(&top, "patches", false) {
            Some(t) => self.patches(&t),
            None => Some(PatchRules::default()),
        };
        let vpn = match self.table_at(&top, "vpn", false) {
            Some(t) => self.vpn(&t, &read, teams.len(), reports.as_ref()).map(Some),
            None => Some(None),
        };
        self.cross_checks(&teams, &services);
        let drill = drill?;
        let submission = submission?;
        let teams = teams.into_iter().map(|(t, _)| t).collect::<Option<Vec<_>>>()?;
        let services = services.into_iter().map(|(s, _)| s).collect::<Option<Vec<_>>>()?;
        let reports = reports?;
        let logs = logs?;
        let vpn = vpn?;
        let patches = patches?;
        Some(Scenario { drill, submission, teams, services, reports, logs, vpn, patches })
    }
}

/// What the parser's tests share: the minimal valid scenario with `extra` appended, parsed with
/// every file taken to exist; its problems as text when it is invalid.
#[cfg(test)]
fn parsed(extra: &str) -> Result<Scenario, String> {
    const MINIMAL: &str = include_str!("../../../tests/scenarios/valid_minimal.toml");
    parse(&format!("{MINIMAL}\n{extra}"), Path::new("scenario.toml"), &AssumeEverythingExists)
        .map_err(|p| p.to_string())
}
