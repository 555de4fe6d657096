//! The scenario's sections: `[drill]`, `[submission]`, `[[team]]`, `[[service]]` and
//! `[reports]`, each read into its part of the model with the keys it allows.

use std::time::Duration;

use super::fields::PathKind;
use super::rules::RULE_KEYS;
use super::units::show;
use super::{Tab, Walker};
use crate::ids::{ServiceId, TeamId};
use crate::scenario::model::*;

pub(super) const TOP_KEYS: &[&str] = &["drill", "submission", "team", "service", "reports", "logs", "vpn", "patches"];
pub(super) const DRILL_KEYS: &[&str] = &[
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
    "demo",
    "debrief_names",
];
pub(super) const SUBMISSION_KEYS: &[&str] = &["identify", "rate_limit", "max_connections"];
pub(super) const TEAM_KEYS: &[&str] = &["id", "slug", "name", "name_zh", "role", "network", "nop"];
pub(super) const SERVICE_KEYS: &[&str] = &[
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
    "code",
    "data",
    "fixed",
];
pub(super) const REPORT_KEYS: &[&str] = &[
    "enabled",
    "attack_max_points",
    "defence_max_points",
    "scoring",
    "report_weight",
    "max_window",
    "filing_grace",
    "appeal_window",
    "max_evidence",
    "max_reports_per_team",
    "max_evidence_per_team",
    "max_concurrent_uploads",
    "judges",
    "disagreement_points",
];
/// Most points one report may be worth: generous, yet far from overflowing any sum.
pub(super) const MAX_REPORT_POINTS: u32 = 1_000_000;
/// How far apart two judges' points may be and still agree, unless the scenario says.
const DEFAULT_DISAGREEMENT_POINTS: u32 = 20;
/// Highest `max_reports_per_team`: far more than judges could ever read in a drill.
const MAX_REPORTS_PER_TEAM: u32 = 100_000;
/// Highest `max_evidence_per_team`.
const MAX_EVIDENCE_PER_TEAM: u64 = 64 << 30;
/// Highest `max_concurrent_uploads`: each upload holds a connection and a database writer.
const MAX_CONCURRENT_UPLOADS: u32 = 16;

/// A byte count in the unit it is most plainly written in.
fn show_size(bytes: u64) -> String {
    match bytes {
        b if b % (1 << 30) == 0 => format!("{}GiB", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

impl Walker<'_, '_> {
    pub(super) fn drill(&mut self, t: &Tab<'_, '_>) -> Option<Drill> {
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
        let demo = self.boolean(t, "demo", false);
        let debrief_names = self.boolean(t, "debrief_names", false);
        // A `demo` of the wrong type is reported already; judge the secret as a demo's.
        let secret = self.secret(t, demo.unwrap_or(true));
        let scoring = self
            .choice(t, "scoring", ScoringFormula::NAMES, Some("faust"))
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
            demo: demo?,
            debrief_names: debrief_names?,
        })
    }

    pub(super) fn submission(&mut self, t: &Tab<'_, '_>) -> Option<Submission> {
        self.unknown_keys(t, SUBMISSION_KEYS, "keys");
        let identify = self.choice(t, "identify", Identify::NAMES, Some(Identify::Address.as_str()));
        let rate_limit = match t.get("rate_limit") {
            None => Some(None),
            Some(_) => self.int(t, "rate_limit", None, 1..=1_000_000).map(Some),
        };
        let max_connections = self.int(t, "max_connections", Some(16), 1..=10_000);
        Some(Submission {
            identify: Identify::from_name(&identify?).expect("listed"),
            rate_limit: rate_limit?,
            max_connections: max_connections?,
        })
    }

    pub(super) fn team(&mut self, t: &Tab<'_, '_>, _index: usize) -> Option<Team> {
        self.unknown_keys(t, TEAM_KEYS, "keys");
        let id = self.int(t, "id", None, 1..=u32::from(u16::MAX));
        let slug = self.slug(t, "slug", true);
        let name = self.string(t, "name", true, "the team's display name, e.g. name = \"Digital Development Bureau\"");
        let name_zh = self.string(t, "name_zh", false, "");
        let role = self.choice(t, "role", Role::NAMES, Some("both")).map(|r| Role::from_name(&r).expect("listed"));
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

    pub(super) fn service(&mut self, t: &Tab<'_, '_>, index: usize) -> Option<Service> {
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
        let patch_mode = self
            .choice(t, "patch_mode", PatchMode::NAMES, Some(PatchMode::Vulnbox.as_str()))
            .map(|m| PatchMode::from_name(&m).expect("listed"));
        let code = self.container_folder(t, "code");
        let data = self.container_folder(t, "data");
        let fixed = self.fixed_files(t);
        if let (Some(Some(code)), Some(Some(data))) = (&code, &data) {
            let nested = |a: &str, b: &str| a == b || b.starts_with(&format!("{a}/"));
            if nested(code, data) || nested(data, code) {
                self.c.error(
                    &t.get("data").expect("read").span(),
                    format!("`code` {code} and `data` {data} overlap: each lives on a volume of its own"),
                    Some("give the code and the data folders apart from each other".into()),
                );
            }
        }
        if let (Some(PatchMode::Submit), Some(Some(_))) = (patch_mode, &code) {
            self.c.error(
                &t.get("code").expect("read").span(),
                "`code` is for patch_mode = \"vulnbox\", where defenders edit the code in place; a submitted patch replaces the image",
                Some("remove `code`, or set patch_mode = \"vulnbox\"".into()),
            );
        }
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
            patch_mode: patch_mode?,
            code: code?,
            data: data?,
            fixed: fixed?,
        })
    }

    /// The `[reports]` table: present means reports are on unless `enabled = false`. `teams`
    /// are the teams read so far, of `all_teams` entries (the preset's key units name them).
    pub(super) fn reports(&mut self, t: &Tab<'_, '_>, teams: &[Team], all_teams: usize) -> Option<ReportRules> {
        // The preset's keys are allowed here too; `rule_preset` refuses them without it.
        let known: Vec<&str> = REPORT_KEYS.iter().chain(RULE_KEYS).copied().collect();
        self.unknown_keys(t, &known, "keys");
        let d = ReportRules::default();
        let enabled = self.boolean(t, "enabled", true);
        let attack_max = self.int(t, "attack_max_points", Some(d.attack_max_points), 0..=MAX_REPORT_POINTS);
        let defence_max = self.int(t, "defence_max_points", Some(d.defence_max_points), 0..=MAX_REPORT_POINTS);
        let scoring = self
            .choice(t, "scoring", ReportScoring::NAMES, Some(d.scoring.as_str()))
            .map(|s| ReportScoring::from_name(&s).expect("choice returns a listed name"));
        let preset = self.rule_preset(t, scoring, teams, all_teams);
        let weight = self.report_weight(t, d.weight);
        let max_window = self.duration(t, "max_window", Some(d.max_window));
        let filing_grace = self.duration(t, "filing_grace", Some(d.filing_grace));
        let appeal_window = self.duration(t, "appeal_window", Some(d.appeal_window));
        let max_evidence = self.evidence_limit(t, d.max_evidence_bytes);
        let max_reports = self.int(t, "max_reports_per_team", Some(d.max_reports_per_team), 1..=MAX_REPORTS_PER_TEAM);
        let team_evidence = self.team_evidence_limit(t, d.max_evidence_bytes_per_team);
        let uploads = self.int(t, "max_concurrent_uploads", Some(d.max_concurrent_uploads), 1..=MAX_CONCURRENT_UPLOADS);
        let panel = self.judge_panel(t);
        if let (Some(per_report), Some(per_team)) = (max_evidence, team_evidence)
            && per_team < per_report
        {
            let at = t.get("max_evidence_per_team").map_or(t.at.clone(), |v| v.span());
            self.c.error(
                &at,
                format!(
                    "`max_evidence_per_team` ({}) is smaller than `max_evidence` ({}), so a team could never file one \
                     report with the evidence a report may carry",
                    show_size(per_team),
                    show_size(per_report)
                ),
                Some("raise `max_evidence_per_team` to at least `max_evidence`, or lower `max_evidence`".into()),
            );
        }

        if let (Some(true), Some(0), Some(0)) = (enabled, attack_max, defence_max) {
            let at = t.get("defence_max_points").map_or(t.at.clone(), |v| v.span());
            self.c.error(
                &at,
                "reports are on, but both `attack_max_points` and `defence_max_points` are 0, so no report can earn points",
                Some("give at least one kind a maximum above 0, or set enabled = false".into()),
            );
        }
        if let (Some(false), Some(scoring)) = (enabled, scoring)
            && scoring.ranks_sides()
        {
            let at = t.get("scoring").map_or(t.at.clone(), |v| v.span());
            self.c.error(
                &at,
                format!("scoring = \"{scoring}\" ranks teams on reports, but reports are off (enabled = false)"),
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
            max_reports_per_team: max_reports?,
            max_evidence_bytes_per_team: team_evidence?,
            max_concurrent_uploads: uploads?,
            preset: preset?,
            panel: panel?,
        })
    }

    /// `judges` (1, or 2 scoring blind) and, with two, `disagreement_points`: how far apart two
    /// valid scores may be and still agree.
    fn judge_panel(&mut self, t: &Tab<'_, '_>) -> Option<JudgePanel> {
        let judges = self.int_meaning(
            t,
            "judges",
            Some(1),
            1..=2,
            Some("1: one judge rules each report; 2: two judges score it blind and a third decides when they disagree"),
        )?;
        if judges == 1 {
            if let Some(v) = t.get("disagreement_points") {
                self.c.error(
                    &v.span(),
                    "`disagreement_points` only applies when two judges score each report, but `judges` is 1",
                    Some("set judges = 2, or remove disagreement_points".into()),
                );
                return None;
            }
            return Some(JudgePanel::One);
        }
        let max_difference =
            self.int(t, "disagreement_points", Some(DEFAULT_DISAGREEMENT_POINTS), 0..=MAX_REPORT_POINTS)?;
        Some(JudgePanel::BlindPair { max_difference })
    }

    /// `max_evidence_per_team`: a size, like `max_evidence`, but over a team's whole drill.
    fn team_evidence_limit(&mut self, t: &Tab<'_, '_>, default: u64) -> Option<u64> {
        let key = "max_evidence_per_team";
        let Some(s) = self.string(t, key, false, "max_evidence_per_team = \"512MiB\"")? else { return Some(default) };
        match super::units::parse_bytes(&s).filter(|b| (1 << 10..=MAX_EVIDENCE_PER_TEAM).contains(b)) {
            Some(b) => Some(b),
            None => {
                self.c.error(
                    &t.get(key).expect("read").span(),
                    format!("`{key}` \"{s}\" is not a size between 1KiB and 64GiB"),
                    Some("write a number with a unit: KiB, MiB or GiB, e.g. \"512MiB\"".into()),
                );
                None
            }
        }
    }
}
