//! Reads a scenario's TOML into the typed model, reporting every mistake at once.
//!
//! The walk is by hand over toml's spanned document rather than through serde, because serde
//! stops at the first error and an organiser fixing a file wants the whole list, each with its
//! line, column and a hint.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::model::*;
use super::problem::{Collector, Problems, did_you_mean};
use crate::ids::{ServiceId, TeamId};

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

const TOP_KEYS: &[&str] = &["drill", "submission", "team", "service", "reports"];
const DRILL_KEYS: &[&str] = &[
    "slug",
    "name",
    "name_zh",
    "start",
    "end",
    "duration",
    "tick",
    "checker_timeout",
    "flag_lifetime",
    "flag_prefix",
    "secret",
    "secret_env",
    "secret_file",
    "scoring",
];
const SUBMISSION_KEYS: &[&str] = &["identify", "rate_limit", "max_connections"];
const TEAM_KEYS: &[&str] = &["id", "slug", "name", "name_zh", "role", "network", "nop"];
const SERVICE_KEYS: &[&str] = &[
    "slug",
    "name",
    "name_zh",
    "image",
    "build",
    "ports",
    "checker",
    "flag_stores",
    "cpus",
    "memory",
    "pids",
    "patch_mode",
];
const REPORT_KEYS: &[&str] = &[
    "enabled",
    "attack_max_points",
    "defence_max_points",
    "scoring",
    "report_weight",
    "max_window",
    "filing_grace",
    "appeal_window",
    "max_evidence",
];
/// Most points one report may be worth: generous, yet far from overflowing any sum.
const MAX_REPORT_POINTS: u32 = 1_000_000;
const IDENTIFY_NAMES: [&str; 2] = ["address", "token"];
const PATCH_MODE_NAMES: [&str; 2] = ["vulnbox", "submit"];

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
        let reports = match self.table_at(&top, "reports", false) {
            Some(t) => self.reports(&t),
            None => Some(ReportRules::default()),
        };
        self.cross_checks(&teams, &services);
        let drill = drill?;
        let submission = submission?;
        let teams = teams.into_iter().map(|(t, _)| t).collect::<Option<Vec<_>>>()?;
        let services = services.into_iter().map(|(s, _)| s).collect::<Option<Vec<_>>>()?;
        let reports = reports?;
        Some(Scenario { drill, submission, teams, services, reports })
    }

    // ---- sections -------------------------------------------------------------------------

    fn drill(&mut self, t: &Tab<'_, '_>) -> Option<Drill> {
        self.unknown_keys(t, DRILL_KEYS, "keys");
        let slug = self.slug(t, "slug", true);
        let name = self.string(t, "name", true, "a display name, e.g. name = \"Cyber Drill 2026\"");
        let name_zh = self.string(t, "name_zh", false, "");
        let start = self.datetime(t, "start");
        let end = self.datetime(t, "end");
        let duration = self.duration(t, "duration", None);
        let tick = self.duration(t, "tick", Some(Duration::from_secs(60)));
        let checker_timeout = self.duration(t, "checker_timeout", None);
        let flag_lifetime = self.int(t, "flag_lifetime", Some(5), 1..=1000);
        let flag_prefix = self.flag_prefix(t);
        let secret = self.secret(t);
        let scoring = self
            .choice(t, "scoring", &ScoringFormula::NAMES, Some("faust"))
            .map(|s| ScoringFormula::from_name(&s).expect("choice returns a listed name"));

        // How long: `duration`, or `end` after `start`.
        let duration = match (duration.flatten(), t.get("duration"), t.get("end")) {
            (Some(d), Some(_), Some(end_v)) => {
                self.c.error(
                    &end_v.span(),
                    format!("{} sets both `duration` and `end`", t.name),
                    Some("keep one of them".into()),
                );
                Some(d)
            }
            (Some(d), Some(_), None) => Some(d),
            (None, Some(_), _) => None, // already reported
            (None, None, Some(end_v)) => match (start.flatten(), end.flatten()) {
                (Some(s), Some(e)) if e > s => Some((e - s).to_std().expect("positive")),
                (Some(_), Some(_)) => {
                    self.c.error(&end_v.span(), "`end` is not after `start`", Some("set end later than start".into()));
                    None
                }
                (None, Some(_)) if t.get("start").is_none() => {
                    self.c.error(
                        &end_v.span(),
                        "`end` needs a `start`",
                        Some("add start = 2026-11-21T09:00:00+08:00, or use duration = \"60h\" instead".into()),
                    );
                    None
                }
                _ => None,
            },
            _ => {
                self.c.error(
                    &t.at,
                    format!("{} says neither how long the drill runs nor when it ends", t.name),
                    Some("add duration = \"60h\" (or start and end)".into()),
                );
                None
            }
        };

        let tick = tick.flatten();
        if let Some(tk) = tick
            && tk < Duration::from_secs(1)
            && let Some(v) = t.get("tick")
        {
            self.c.error(
                &v.span(),
                "`tick` is shorter than one second",
                Some("use at least \"10s\"; 60s to 180s is usual".into()),
            );
        }
        let checker_timeout = match (checker_timeout.flatten(), tick) {
            (Some(ct), Some(tk)) if ct >= tk => {
                let v = t.get("checker_timeout").expect("parsed from the table");
                self.c.error(
                    &v.span(),
                    format!("`checker_timeout` ({}) is not shorter than `tick` ({})", show(ct), show(tk)),
                    Some(
                        "every checker action must finish within its tick: make tick longer or checker_timeout shorter"
                            .into(),
                    ),
                );
                None
            }
            (Some(ct), _) => Some(ct),
            (None, Some(tk)) if t.get("checker_timeout").is_none() => Some(tk / 3),
            _ => None,
        };

        let name = name.flatten()?;
        Some(Drill {
            slug: slug.flatten()?,
            name: Names { zh: name_zh.flatten().unwrap_or_else(|| name.clone()), en: name },
            start: start.flatten(),
            duration: duration?,
            tick: tick?,
            checker_timeout: checker_timeout?,
            flag_lifetime: flag_lifetime?,
            flag_prefix: flag_prefix?,
            secret: secret?,
            scoring: scoring?,
        })
    }

    fn submission(&mut self, t: &Tab<'_, '_>) -> Option<Submission> {
        self.unknown_keys(t, SUBMISSION_KEYS, "keys");
        let identify = self.choice(t, "identify", &IDENTIFY_NAMES, Some("address"));
        let rate_limit = match t.get("rate_limit") {
            None => Some(None),
            Some(_) => self.int(t, "rate_limit", None, 1..=1_000_000).map(Some),
        };
        let max_connections = self.int(t, "max_connections", Some(16), 1..=10_000);
        Some(Submission {
            identify: if identify? == "token" { Identify::Token } else { Identify::Address },
            rate_limit: rate_limit?,
            max_connections: max_connections?,
        })
    }

    fn team(&mut self, t: &Tab<'_, '_>, _index: usize) -> Option<Team> {
        self.unknown_keys(t, TEAM_KEYS, "keys");
        let id = self.int(t, "id", None, 1..=u32::from(u16::MAX));
        let slug = self.slug(t, "slug", true);
        let name = self.string(t, "name", true, "the team's display name, e.g. name = \"Ministry of Digital Affairs\"");
        let name_zh = self.string(t, "name_zh", false, "");
        let role = self.choice(t, "role", &Role::NAMES, Some("both")).map(|r| Role::from_name(&r).expect("listed"));
        let network = self.network(t);
        let nop = self.boolean(t, "nop", false);
        if let (Some(Role::Attacker), Some(true)) = (role, nop) {
            let at = t.get("nop").map_or(t.at.clone(), |v| v.span());
            self.c.error(
                &at,
                "a NOP team must defend, but this team's role is `attacker`",
                Some("set role = \"defender\" (or \"both\"), or remove nop".into()),
            );
        }
        let name = name.flatten()?;
        Some(Team {
            id: TeamId(u16::try_from(id?).expect("range-checked")),
            slug: slug.flatten()?,
            name: Names { zh: name_zh.flatten().unwrap_or_else(|| name.clone()), en: name },
            role: role?,
            network: network?,
            nop: nop?,
        })
    }

    fn service(&mut self, t: &Tab<'_, '_>, index: usize) -> Option<Service> {
        self.unknown_keys(t, SERVICE_KEYS, "keys");
        let slug = self.slug(t, "slug", true);
        let name = self.string(t, "name", true, "the service's display name, e.g. name = \"Open Data Portal\"");
        let name_zh = self.string(t, "name_zh", false, "");
        let source = self.image_source(t);
        let ports = self.ports(t);
        let checker = self.path(t, "checker", PathKind::File);
        let flag_stores = self.int(t, "flag_stores", Some(1), 1..=16);
        let cpus = self.cpus(t);
        let memory = self.memory(t);
        let pids = self.int(t, "pids", Some(256), 16..=65_536);
        let patch_mode = self.choice(t, "patch_mode", &PATCH_MODE_NAMES, Some("vulnbox"));
        let name = name.flatten()?;
        Some(Service {
            id: ServiceId(u8::try_from(index + 1).ok()?),
            slug: slug.flatten()?,
            name: Names { zh: name_zh.flatten().unwrap_or_else(|| name.clone()), en: name },
            source: source?,
            ports: ports?,
            checker: checker?,
            flag_stores: u8::try_from(flag_stores?).expect("range-checked"),
            limits: Limits { cpus: cpus?, memory_bytes: memory?, pids: pids? },
            patch_mode: if patch_mode? == "submit" { PatchMode::Submit } else { PatchMode::Vulnbox },
        })
    }

    /// The `[reports]` table: present means reports are on unless `enabled = false`.
    fn reports(&mut self, t: &Tab<'_, '_>) -> Option<ReportRules> {
        self.unknown_keys(t, REPORT_KEYS, "keys");
        let d = ReportRules::default();
        let enabled = self.boolean(t, "enabled", true);
        let attack_max = self.int(t, "attack_max_points", Some(d.attack_max_points), 0..=MAX_REPORT_POINTS);
        let defence_max = self.int(t, "defence_max_points", Some(d.defence_max_points), 0..=MAX_REPORT_POINTS);
        let scoring = self
            .choice(t, "scoring", &ReportScoring::NAMES, Some(d.scoring.as_str()))
            .map(|s| ReportScoring::from_name(&s).expect("choice returns a listed name"));
        let weight = self.report_weight(t, d.weight);
        let max_window = self.duration(t, "max_window", Some(d.max_window));
        let filing_grace = self.duration(t, "filing_grace", Some(d.filing_grace));
        let appeal_window = self.duration(t, "appeal_window", Some(d.appeal_window));
        let max_evidence = self.evidence_limit(t, d.max_evidence_bytes);

        if let (Some(true), Some(0), Some(0)) = (enabled, attack_max, defence_max) {
            let at = t.get("defence_max_points").map_or(t.at.clone(), |v| v.span());
            self.c.error(
                &at,
                "reports are on, but both `attack_max_points` and `defence_max_points` are 0, so no report can earn points",
                Some("give at least one kind a maximum above 0, or set enabled = false".into()),
            );
        }
        if let (Some(false), Some(ReportScoring::RedBlue)) = (enabled, scoring) {
            let at = t.get("scoring").map_or(t.at.clone(), |v| v.span());
            self.c.error(
                &at,
                "scoring = \"red-blue\" ranks teams on reports, but reports are off (enabled = false)",
                Some("set enabled = true, or use scoring = \"formula\"".into()),
            );
        }
        Some(ReportRules {
            enabled: enabled?,
            attack_max_points: attack_max?,
            defence_max_points: defence_max?,
            scoring: scoring?,
            weight: weight?,
            max_window: max_window.flatten()?,
            filing_grace: filing_grace.flatten()?,
            appeal_window: appeal_window.flatten()?,
            max_evidence_bytes: max_evidence?,
        })
    }

    /// Checks that span teams or services: duplicates, overlaps, the mix of roles.
    fn cross_checks(&mut self, teams: &[(Option<Team>, Range<usize>)], services: &[(Option<Service>, Range<usize>)]) {
        let mut ids: HashMap<TeamId, usize> = HashMap::new();
        let mut slugs: HashMap<&str, usize> = HashMap::new();
        let mut nets: Vec<(Ipv4Net, usize)> = Vec::new();
        for (team, at) in teams {
            let Some(team) = team else { continue };
            if let Some(first) = ids.insert(team.id, at.start) {
                let line = self.c.line_of(first);
                self.c.error(
                    at,
                    format!("duplicate team id {}", team.id),
                    Some(format!("team id {} is already used on line {line}; give each team its own id", team.id)),
                );
            }
            if let Some(first) = slugs.insert(&team.slug, at.start) {
                let line = self.c.line_of(first);
                self.c.error(
                    at,
                    format!("duplicate team slug `{}`", team.slug),
                    Some(format!("`{}` is already used on line {line}; slugs must be unique", team.slug)),
                );
            }
            if let Some((other, first)) = nets.iter().find(|(n, _)| n.overlaps(team.network)) {
                let line = self.c.line_of(*first);
                self.c.error(
                    at,
                    format!("team `{}`'s network {} overlaps {} (line {line})", team.slug, team.network, other),
                    Some("give every team its own, non-overlapping network, e.g. 10.60.<id>.0/24".into()),
                );
            }
            nets.push((team.network, at.start));
        }
        let mut service_slugs: HashMap<&str, usize> = HashMap::new();
        for (service, at) in services {
            let Some(service) = service else { continue };
            if let Some(first) = service_slugs.insert(&service.slug, at.start) {
                let line = self.c.line_of(first);
                self.c.error(
                    at,
                    format!("duplicate service slug `{}`", service.slug),
                    Some(format!("`{}` is already used on line {line}; slugs must be unique", service.slug)),
                );
            }
        }
        if services.len() > usize::from(u8::MAX) {
            self.c.error(&services[255].1, "more than 255 services", Some("split the drill".into()));
        }
        let known: Vec<&Team> = teams.iter().filter_map(|(t, _)| t.as_ref()).collect();
        if !known.is_empty() && known.len() == teams.len() {
            let at = teams[0].1.clone();
            if !known.iter().any(|t| t.role.defends()) {
                self.c.error(
                    &at,
                    "no team defends: every team's role is `attacker`",
                    Some("give at least one team role = \"defender\" or \"both\"".into()),
                );
            }
            if !known.iter().any(|t| t.role.attacks() && !t.nop) {
                self.c.error(
                    &at,
                    "no team attacks: every team is a defender or the NOP team",
                    Some("give at least one team role = \"attacker\" or \"both\"".into()),
                );
            }
        }
    }

    // ---- structure ------------------------------------------------------------------------

    fn unknown_keys(&mut self, t: &Tab<'_, '_>, known: &[&str], what: &str) {
        for (key, _) in t.table.iter() {
            let k: &str = key.get_ref();
            if known.contains(&k) {
                continue;
            }
            let help = match did_you_mean(k, known) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("the {what} allowed here are: {}", known.join(", ")),
            };
            self.c.error(&key.span(), format!("unknown key `{k}` in {}", t.name), Some(help));
        }
    }

    fn table_at<'t, 'i>(&mut self, parent: &Tab<'t, 'i>, key: &str, required: bool) -> Option<Tab<'t, 'i>> {
        let Some(v) = parent.get(key) else {
            if required {
                self.c.error(&parent.at, format!("missing section [{key}]"), Some(format!("add a [{key}] table")));
            }
            return None;
        };
        match v.get_ref() {
            DeValue::Table(table) => {
                Some(Tab { table, at: self.key_span(parent, key).unwrap_or(v.span()), name: format!("[{key}]") })
            }
            other => {
                self.c.error(
                    &v.span(),
                    format!("`{key}` must be a table, found {}", other.type_str()),
                    Some(format!("write it as a [{key}] section")),
                );
                None
            }
        }
    }

    /// Reads an array of tables (`[[team]]`), returning each entry with where it starts.
    fn list<T>(
        &mut self,
        top: &Tab<'_, '_>,
        key: &str,
        help: &str,
        mut read: impl FnMut(&mut Self, &Tab<'_, '_>, usize) -> Option<T>,
    ) -> Vec<(Option<T>, Range<usize>)>
    where
        Self: Sized,
    {
        let Some(v) = top.get(key) else {
            self.c.error(&top.at, format!("no [[{key}]] entries"), Some(help.to_owned()));
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            self.c.error(
                &v.span(),
                format!("`{key}` must be an array of tables"),
                Some(format!("write each entry as a [[{key}]] section")),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = item.span();
            match item.get_ref() {
                DeValue::Table(table) => {
                    let tab = Tab { table, at: at.clone(), name: format!("[[{key}]] #{}", i + 1) };
                    out.push((read(self, &tab, i), at));
                }
                other => {
                    self.c.error(
                        &at,
                        format!("each `{key}` entry must be a table, found {}", other.type_str()),
                        Some(format!("write each entry as a [[{key}]] section")),
                    );
                    out.push((None, at));
                }
            }
        }
        out
    }

    fn key_span(&self, t: &Tab<'_, '_>, key: &str) -> Option<Range<usize>> {
        t.table.iter().find(|(k, _)| k.get_ref() == key).map(|(k, _)| k.span())
    }

    // ---- scalar readers: Some(value), or None after reporting ------------------------------
    // Optional keys return Some(None) when absent.

    fn missing(&mut self, t: &Tab<'_, '_>, key: &str, example: &str) {
        let help = if example.is_empty() { format!("add `{key} = …`") } else { format!("add {example}") };
        self.c.error(&t.at, format!("missing key `{key}` in {}", t.name), Some(help));
    }

    fn wrong_type(&mut self, v: &Val<'_>, key: &str, expected: &str, help: Option<String>) {
        self.c.error(&v.span(), format!("`{key}` must be {expected}, found {}", v.get_ref().type_str()), help);
    }

    fn string(&mut self, t: &Tab<'_, '_>, key: &str, required: bool, example: &str) -> Option<Option<String>> {
        match t.get(key) {
            None if required => {
                self.missing(t, key, example);
                None
            }
            None => Some(None),
            Some(v) => match v.get_ref().as_str() {
                Some(s) if s.trim().is_empty() => {
                    self.c.error(
                        &v.span(),
                        format!("`{key}` is empty"),
                        Some(format!("give `{key}` a value, or remove it")),
                    );
                    None
                }
                Some(s) => Some(Some(s.to_owned())),
                None => {
                    let help = (!example.is_empty()).then(|| format!("write it as {example}"));
                    self.wrong_type(v, key, "a string", help);
                    None
                }
            },
        }
    }

    fn slug(&mut self, t: &Tab<'_, '_>, key: &str, required: bool) -> Option<Option<String>> {
        let s = self.string(t, key, required, "slug = \"short-name\"")?;
        if let Some(s) = &s {
            let ok = s.len() <= 32
                && s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                let v = t.get(key).expect("read above");
                self.c.error(
                    &v.span(),
                    format!("`{key}` \"{s}\" is not a valid slug"),
                    Some(
                        "use 1 to 32 lowercase letters, digits and '-', starting with a letter, e.g. \"open-data\""
                            .into(),
                    ),
                );
                return None;
            }
        }
        Some(s)
    }

    fn int(
        &mut self,
        t: &Tab<'_, '_>,
        key: &str,
        default: Option<u32>,
        range: std::ops::RangeInclusive<u32>,
    ) -> Option<u32> {
        let Some(v) = t.get(key) else {
            if default.is_none() {
                self.missing(t, key, &format!("`{key} = {}`", range.start()));
            }
            return default;
        };
        let Some(i) = v.get_ref().as_integer() else {
            self.wrong_type(
                v,
                key,
                "an integer",
                Some(format!("write a number without quotes, e.g. {key} = {}", range.start())),
            );
            return None;
        };
        match u32::from_str_radix(i.as_str(), i.radix()).ok().filter(|n| range.contains(n)) {
            Some(n) => Some(n),
            None => {
                self.c.error(&v.span(), format!("`{key}` must be between {} and {}", range.start(), range.end()), None);
                None
            }
        }
    }

    fn boolean(&mut self, t: &Tab<'_, '_>, key: &str, default: bool) -> Option<bool> {
        match t.get(key) {
            None => Some(default),
            Some(v) => v.get_ref().as_bool().or_else(|| {
                self.wrong_type(
                    v,
                    key,
                    "true or false",
                    Some(format!("write {key} = true or {key} = false, without quotes")),
                );
                None
            }),
        }
    }

    fn choice(&mut self, t: &Tab<'_, '_>, key: &str, names: &[&str], default: Option<&str>) -> Option<String> {
        let s = self.string(t, key, default.is_none(), "")?;
        let Some(s) = s else { return default.map(str::to_owned) };
        if names.contains(&s.as_str()) {
            return Some(s);
        }
        let v = t.get(key).expect("read above");
        let help = match did_you_mean(&s, names) {
            Some(n) => format!("did you mean \"{n}\"?"),
            None => format!("use one of: {}", names.join(", ")),
        };
        self.c.error(&v.span(), format!("unknown {key} \"{s}\""), Some(help));
        None
    }

    fn duration(&mut self, t: &Tab<'_, '_>, key: &str, default: Option<Duration>) -> Option<Option<Duration>> {
        let Some(s) = self.string(t, key, false, &format!("{key} = \"90s\""))? else { return Some(default) };
        match parse_duration(&s) {
            Some(d) if !d.is_zero() => Some(Some(d)),
            _ => {
                let v = t.get(key).expect("read above");
                self.c.error(
                    &v.span(),
                    format!("`{key}` \"{s}\" is not a duration"),
                    Some("write a number with a unit: ms, s, m or h, e.g. \"90s\", \"2m\", \"60h\", \"1h30m\"".into()),
                );
                None
            }
        }
    }

    fn datetime(&mut self, t: &Tab<'_, '_>, key: &str) -> Option<Option<DateTime<Utc>>> {
        let Some(v) = t.get(key) else { return Some(None) };
        let text = match v.get_ref() {
            DeValue::Datetime(d) => d.to_string(),
            DeValue::String(s) => s.to_string(),
            _ => {
                self.wrong_type(
                    v,
                    key,
                    "a date and time",
                    Some(format!("write it like {key} = 2026-11-21T09:00:00+08:00")),
                );
                return None;
            }
        };
        match DateTime::parse_from_rfc3339(&text) {
            Ok(d) => Some(Some(d.with_timezone(&Utc))),
            Err(_) => {
                self.c.error(
                    &v.span(),
                    format!("`{key}` {text} is not a date and time with a time zone"),
                    Some(format!("write it like {key} = 2026-11-21T09:00:00+08:00")),
                );
                None
            }
        }
    }

    fn flag_prefix(&mut self, t: &Tab<'_, '_>) -> Option<String> {
        let s = self.string(t, "flag_prefix", false, "")?.unwrap_or_else(|| "GONGFANG".into());
        let ok =
            (1..=16).contains(&s.len()) && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            let v = t.get("flag_prefix").expect("only a given prefix can be wrong");
            self.c.error(
                &v.span(),
                format!("`flag_prefix` \"{s}\" is not a valid flag prefix"),
                Some("use 1 to 16 uppercase letters, digits or '_', e.g. \"GONGFANG\"".into()),
            );
            return None;
        }
        Some(s)
    }

    fn secret(&mut self, t: &Tab<'_, '_>) -> Option<SecretSource> {
        let given: Vec<&str> =
            ["secret", "secret_env", "secret_file"].into_iter().filter(|k| t.get(k).is_some()).collect();
        match given.as_slice() {
            [] => {
                self.c.error(
                    &t.at,
                    format!("{} has no flag secret", t.name),
                    Some("add secret_env = \"GONGFANG_SECRET\" or secret_file = \"secret.txt\" (an inline secret = \"…\" is for demos only)".into()),
                );
                None
            }
            [key] => {
                let s = self.string(t, key, true, "")??;
                let v = t.get(key).expect("given");
                match *key {
                    "secret" if s.len() < 16 => {
                        self.c.error(
                            &v.span(),
                            "`secret` is shorter than 16 characters",
                            Some("use a long random string, e.g. from `openssl rand -hex 32`".into()),
                        );
                        None
                    }
                    "secret" => Some(SecretSource::Inline(s)),
                    "secret_env" if !self.probe.env_var_set(&s) => {
                        self.c.error(
                            &v.span(),
                            format!("environment variable {s} is not set"),
                            Some(format!("export {s}=<a long random string> before running, or use secret_file")),
                        );
                        None
                    }
                    "secret_env" => Some(SecretSource::Env(s)),
                    _ => {
                        let path = self.base.join(&s);
                        if self.probe.is_file(&path) {
                            Some(SecretSource::File(path))
                        } else {
                            self.c.error(
                                &v.span(),
                                format!("secret file `{s}` does not exist"),
                                Some(
                                    "create it (relative paths start from the scenario's folder) or fix the path"
                                        .to_owned(),
                                ),
                            );
                            None
                        }
                    }
                }
            }
            _ => {
                let v = t.get(given[1]).expect("given");
                self.c.error(
                    &v.span(),
                    format!("the secret is given more than once ({})", given.join(", ")),
                    Some("keep exactly one of secret, secret_env, secret_file".into()),
                );
                None
            }
        }
    }

    fn network(&mut self, t: &Tab<'_, '_>) -> Option<Ipv4Net> {
        let s = self.string(t, "network", true, "network = \"10.60.1.0/24\"")??;
        match Ipv4Net::parse(&s) {
            Ok(n) if n.prefix <= 29 => Some(n),
            Ok(_) => {
                self.c.error(
                    &t.get("network").expect("read").span(),
                    format!("network {s} is too small for services"),
                    Some("use a /29 or larger, e.g. a /24".into()),
                );
                None
            }
            Err(why) => {
                self.c.error(
                    &t.get("network").expect("read").span(),
                    format!("`network` is not valid: {why}"),
                    Some("write it in CIDR notation, e.g. \"10.60.1.0/24\"".into()),
                );
                None
            }
        }
    }

    fn image_source(&mut self, t: &Tab<'_, '_>) -> Option<ImageSource> {
        match (t.get("image"), t.get("build")) {
            (Some(_), Some(b)) => {
                self.c.error(
                    &b.span(),
                    format!("{} sets both `image` and `build`", t.name),
                    Some("keep `image` for a local image or `build` for a build folder, not both".into()),
                );
                None
            }
            (Some(_), None) => self.string(t, "image", true, "")?.map(ImageSource::Image),
            (None, Some(_)) => self.path(t, "build", PathKind::Dir).map(ImageSource::Build),
            (None, None) => {
                self.c.error(
                    &t.at,
                    format!("{} has no `image` or `build`", t.name),
                    Some("add build = \"path/to/service\" (a folder with a Dockerfile) or image = \"name:tag\"".into()),
                );
                None
            }
        }
    }

    fn path(&mut self, t: &Tab<'_, '_>, key: &str, kind: PathKind) -> Option<PathBuf> {
        let example = match kind {
            PathKind::File => format!("{key} = \"checker/checker.wasm\""),
            PathKind::Dir => format!("{key} = \"service\""),
        };
        let s = self.string(t, key, true, &example)??;
        let path = self.base.join(&s);
        let exists = match kind {
            PathKind::File => self.probe.is_file(&path),
            PathKind::Dir => self.probe.is_dir(&path),
        };
        if !exists {
            let what = match kind {
                PathKind::File => "file",
                PathKind::Dir => "folder",
            };
            let help = match (key, kind) {
                ("checker", _) => "build the checker first (cargo build --release --target wasm32-wasip2) or fix the path; relative paths start from the scenario's folder".to_owned(),
                _ => "fix the path; relative paths start from the scenario's folder".to_owned(),
            };
            self.c.error(&t.get(key).expect("read").span(), format!("{key} {what} `{s}` does not exist"), Some(help));
            return None;
        }
        Some(path)
    }

    fn ports(&mut self, t: &Tab<'_, '_>) -> Option<Vec<u16>> {
        let Some(v) = t.get("ports") else {
            self.missing(t, "ports", "ports = [8080]");
            return None;
        };
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(v, "ports", "an array of port numbers", Some("write it like ports = [8080]".into()));
            return None;
        };
        if items.is_empty() {
            self.c.error(
                &v.span(),
                "`ports` is empty",
                Some("list the ports attackers and the checker use, e.g. ports = [8080]".into()),
            );
            return None;
        }
        let mut ports = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            let port = item
                .get_ref()
                .as_integer()
                .and_then(|i| u16::from_str_radix(i.as_str(), i.radix()).ok())
                .filter(|p| *p > 0);
            match port {
                Some(p) if ports.contains(&p) => {
                    self.c.error(&item.span(), format!("port {p} is listed twice"), None);
                    ok = false;
                }
                Some(p) => ports.push(p),
                None => {
                    self.c.error(&item.span(), "not a port number", Some("ports are integers from 1 to 65535".into()));
                    ok = false;
                }
            }
        }
        ok.then_some(ports)
    }

    fn cpus(&mut self, t: &Tab<'_, '_>) -> Option<f64> {
        let Some(v) = t.get("cpus") else { return Some(1.0) };
        let n = match v.get_ref() {
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n as f64),
            _ => {
                self.wrong_type(v, "cpus", "a number", Some("write it without quotes, e.g. cpus = 0.5".into()));
                return None;
            }
        };
        match n.filter(|n| *n > 0.0 && *n <= 64.0) {
            Some(n) => Some(n),
            None => {
                self.c.error(&v.span(), "`cpus` must be more than 0 and at most 64", Some("e.g. cpus = 0.5".into()));
                None
            }
        }
    }

    fn report_weight(&mut self, t: &Tab<'_, '_>, default: f64) -> Option<f64> {
        let Some(v) = t.get("report_weight") else { return Some(default) };
        let n = match v.get_ref() {
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n as f64),
            _ => {
                self.wrong_type(
                    v,
                    "report_weight",
                    "a number",
                    Some("write it without quotes, e.g. report_weight = 1.5".into()),
                );
                return None;
            }
        };
        match n.filter(|n| n.is_finite() && *n > 0.0 && *n <= 1000.0) {
            Some(n) => Some(n),
            None => {
                self.c.error(
                    &v.span(),
                    "`report_weight` must be more than 0 and at most 1000",
                    Some(
                        "1 adds report points as they are; to leave reports out of the score, set enabled = false"
                            .into(),
                    ),
                );
                None
            }
        }
    }

    fn evidence_limit(&mut self, t: &Tab<'_, '_>, default: u64) -> Option<u64> {
        let Some(s) = self.string(t, "max_evidence", false, "max_evidence = \"16MiB\"")? else { return Some(default) };
        match parse_bytes(&s).filter(|b| (1 << 10..=1 << 30).contains(b)) {
            Some(b) => Some(b),
            None => {
                self.c.error(
                    &t.get("max_evidence").expect("read").span(),
                    format!("`max_evidence` \"{s}\" is not a size between 1KiB and 1GiB"),
                    Some("write a number with a unit: KiB, MiB or GiB, e.g. \"16MiB\"".into()),
                );
                None
            }
        }
    }

    fn memory(&mut self, t: &Tab<'_, '_>) -> Option<u64> {
        let Some(s) = self.string(t, "memory", false, "")? else { return Some(512 << 20) };
        match parse_bytes(&s).filter(|b| *b >= 8 << 20) {
            Some(b) => Some(b),
            None => {
                self.c.error(
                    &t.get("memory").expect("read").span(),
                    format!("`memory` \"{s}\" is not a size of at least 8MiB"),
                    Some("write a number with a unit: KiB, MiB or GiB, e.g. \"256MiB\"".into()),
                );
                None
            }
        }
    }
}

#[derive(Clone, Copy)]
enum PathKind {
    File,
    Dir,
}

/// Parses `90s`, `2m`, `1h30m`, `500ms`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        };
        total = total.checked_add(part)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// Parses `256MiB`, `1GiB`, `512KiB` (also `M`, `G`, `K`, and plain bytes).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..digits].parse().ok()?;
    let unit: u64 = match s[digits..].trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// A duration the way the scenario file writes it.
fn show(d: Duration) -> String {
    if d.subsec_millis() != 0 || d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("60"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("5 minutes"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("256MiB"), Some(256 << 20));
        assert_eq!(parse_bytes("1G"), Some(1 << 30));
        assert_eq!(parse_bytes("lots"), None);
    }
}
