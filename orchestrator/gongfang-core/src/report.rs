//! Attack and defence reports: their kinds, MITRE ATT&CK technique ids, and the rules a report,
//! a ruling and an appeal must meet before anything is stored.
//!
//! Red teams file *attack* reports (what they broke, where, how), blue teams *defence* reports
//! (what they detected, blocked or traced). Everything here is pure: the caller passes in the
//! current time and when the drill started, and gets back either a checked report with ids
//! resolved, or every problem with the field it is about.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ServiceId, TeamId};
use crate::scenario::{ReportRules, Role, RulePreset, Scenario};
use crate::scoring::LinkedEvent;

/// The technique ids a report may name: ids only, one per line, `#` starts a comment.
const TECHNIQUE_LIST: &str = include_str!("report/enterprise_techniques.txt");

/// How far in the future a window's end may lie, for teams' clocks that run a little fast.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// Longest free-text technique.
pub const MAX_TECHNIQUE_CHARS: usize = 200;
/// Longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 20_000;
/// Longest text evidence.
pub const MAX_EVIDENCE_TEXT_CHARS: usize = 100_000;
/// Longest reason of a ruling or an appeal.
pub const MAX_REASON_CHARS: usize = 5_000;

crate::named_enum! {
    /// What a report is about.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum ReportKind {
        /// A red team's result: a target's service broken into.
        Attack = "attack",
        /// A blue team's result: an attack on its own service detected, blocked or traced.
        /// The US spelling is accepted too.
        Defence = "defence" | "defense",
    }
}

impl ReportKind {
    /// Whether a team of this role may file this kind: attack reports need a team that
    /// attacks, defence reports one that defends.
    pub fn allowed_for(self, role: Role) -> bool {
        match self {
            ReportKind::Attack => role.attacks(),
            ReportKind::Defence => role.defends(),
        }
    }

    /// Most points one valid report of this kind may earn under `rules`.
    pub fn max_points(self, rules: &ReportRules) -> u32 {
        match self {
            ReportKind::Attack => rules.attack_max_points,
            ReportKind::Defence => rules.defence_max_points,
        }
    }
}

/// A MITRE ATT&CK Enterprise technique id, `T1234` or `T1234.001`, known to Gongfang's list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TechniqueId(String);

impl TechniqueId {
    /// Checks the id's shape and that it is in the embedded list of enterprise techniques.
    pub fn parse(s: &str) -> Result<TechniqueId, ReportError> {
        let s = s.trim();
        if !technique_syntax_ok(s) {
            return Err(ReportError::TechniqueSyntax(s.to_owned()));
        }
        if known_techniques().binary_search(&s).is_err() {
            let parent = s.split_once('.').map(|(p, _)| p).filter(|p| known_techniques().binary_search(p).is_ok());
            return Err(ReportError::UnknownTechnique { id: s.to_owned(), parent: parent.map(str::to_owned) });
        }
        Ok(TechniqueId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The technique a sub-technique belongs to (itself for a technique).
    pub fn technique(&self) -> &str {
        self.0.split_once('.').map_or(&self.0, |(p, _)| p)
    }
}

impl fmt::Display for TechniqueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TechniqueId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TechniqueId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `T` and four digits, optionally `.` and three digits.
fn technique_syntax_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => b[0] == b'T' && digits(&b[1..5]),
        9 => b[0] == b'T' && digits(&b[1..5]) && b[5] == b'.' && digits(&b[6..9]),
        _ => false,
    }
}

/// Every id of the embedded list, sorted.
pub fn known_techniques() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        let mut ids: Vec<&str> =
            TECHNIQUE_LIST.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    })
}

/// The stretch of time a report is about, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Why a report, a ruling or an appeal is refused. Each message says how to put it right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("this drill takes no reports (the scenario has no [reports] table, or it is disabled)")]
    ReportsOff,
    #[error("unknown report kind `{0}`; use \"attack\" or \"defence\"")]
    UnknownKind(String),
    #[error("a team with role `{}` cannot file {kind} reports: attack reports are for teams that attack, defence reports for teams that defend", role.as_str())]
    KindNotForRole { kind: ReportKind, role: Role },
    #[error("this drill takes no {0} reports (its maximum points are 0)")]
    KindOff(ReportKind),
    #[error("`{0}` is required")]
    Missing(&'static str),
    #[error("`{field}` is longer than {max} characters; shorten it or attach the text as an evidence file")]
    TooLong { field: &'static str, max: usize },
    #[error("`{field}` is for {kind} reports only; remove it")]
    NotForKind { field: &'static str, kind: ReportKind },
    #[error("no team `{0}` in this drill; use a team slug from the scoreboard")]
    UnknownTeam(String),
    #[error("no service `{0}` in this drill; use a service slug from the scoreboard")]
    UnknownService(String),
    #[error("team `{0}` runs no services, so it cannot be the target of an attack")]
    TargetNotDefending(String),
    #[error("team `{0}` does not attack in this drill, so it cannot be the traced attacker")]
    TracedNotAttacking(String),
    #[error("a report cannot name the filing team itself as `{0}`")]
    OwnTeam(&'static str),
    #[error("`traced_address` `{0}` is not an IP address; write it like 10.60.3.7")]
    BadAddress(String),
    #[error("`{0}` is not an ATT&CK technique id; write it like T1190 or T1110.001")]
    TechniqueSyntax(String),
    #[error("{id} is not in Gongfang's list of ATT&CK Enterprise techniques; {}", match parent {
        Some(p) => format!("use its technique {p}, or describe it in `technique`"),
        None => "check the id, or describe the technique in `technique` and leave `attack_id` out".to_owned(),
    })]
    UnknownTechnique { id: String, parent: Option<String> },
    #[error("the window ends ({to}) before it starts ({from}); swap `from` and `to`")]
    WindowReversed { from: DateTime<Utc>, to: DateTime<Utc> },
    #[error("the window ends in the future ({to}, now {now}); report only what has happened")]
    WindowInFuture { to: DateTime<Utc>, now: DateTime<Utc> },
    #[error("the window starts ({from}) before the drill did ({start}); report only what happened during the drill")]
    WindowBeforeStart { from: DateTime<Utc>, start: DateTime<Utc> },
    #[error("the drill has not started yet; file reports once it runs")]
    NotStarted,
    #[error("the window is {}, longer than the {} one report may cover; narrow it or file one report per incident", hm(*length), hm(*max))]
    WindowTooLong { length: Duration, max: Duration },
    #[error("reports were due by {deadline}; filing is closed")]
    FilingClosed { deadline: DateTime<Utc> },
    #[error("{points} points is more than the {max} a valid {kind} report may earn; award at most {max}")]
    PointsAboveMax { points: u32, max: u32, kind: ReportKind },
    #[error("an invalid report earns no points; send points = 0 (or leave points out)")]
    PointsForInvalid,
    #[error("a ruling of `invalid` needs a reason the team can read")]
    ReasonRequired,
    #[error("appeals of this ruling were due by {deadline}; the ruling is final")]
    AppealClosed { deadline: DateTime<Utc> },
    #[error("under scoring = \"rules\" a valid {kind} ruling records its finding ({}); the preset's tables give the points", match kind {
        ReportKind::Attack => "`finding` with `attack_type` and `weakness`",
        ReportKind::Defence => "`finding` with the `link` to the attack it answers, its `rubric` shares and any `bonus`",
    })]
    FindingRequired { kind: ReportKind },
    #[error("an invalid ruling scores nothing; leave `finding` out")]
    FindingForInvalid,
    #[error("a finding is recorded only under scoring = \"rules\"; leave `finding` out and award points")]
    FindingWithoutRules,
    #[error("this is {kind} report, so its finding is a {kind} finding; send `kind = \"{kind}\"`")]
    FindingKind { kind: ReportKind },
    #[error(
        "under scoring = \"rules\" the preset's tables give the points; send points = 0 (or leave points out) with the finding"
    )]
    PointsUnderRules,
    #[error("the scenario has no attack type `{got}`; use one of: {known}")]
    UnknownAttackType { got: String, known: String },
    #[error("the scenario's rubric has no criterion `{got}`; use one of: {known}")]
    UnknownCriterion { got: String, known: String },
    #[error("{share} % on `{criterion}` is above its largest share, {max} %")]
    ShareAboveMax { criterion: String, share: u32, max: u32 },
    #[error("a bonus of {bonus} is above the {max} points one team's defence results may earn together")]
    BonusAboveMax { bonus: u32, max: u32 },
}

impl ReportError {
    /// A stable, machine-readable name of the problem, for APIs.
    pub fn code(&self) -> &'static str {
        match self {
            ReportError::ReportsOff => "reports_off",
            ReportError::UnknownKind(_) => "unknown_kind",
            ReportError::KindNotForRole { .. } => "kind_not_for_role",
            ReportError::KindOff(_) => "kind_off",
            ReportError::Missing(_) => "missing_field",
            ReportError::TooLong { .. } => "too_long",
            ReportError::NotForKind { .. } => "not_for_kind",
            ReportError::UnknownTeam(_) => "unknown_team",
            ReportError::UnknownService(_) => "unknown_service",
            ReportError::TargetNotDefending(_) => "target_not_defending",
            ReportError::TracedNotAttacking(_) => "traced_not_attacking",
            ReportError::OwnTeam(_) => "own_team",
            ReportError::BadAddress(_) => "bad_address",
            ReportError::TechniqueSyntax(_) => "technique_syntax",
            ReportError::UnknownTechnique { .. } => "unknown_technique",
            ReportError::WindowReversed { .. } => "window_reversed",
            ReportError::WindowInFuture { .. } => "window_in_future",
            ReportError::WindowBeforeStart { .. } => "window_before_start",
            ReportError::NotStarted => "not_started",
            ReportError::WindowTooLong { .. } => "window_too_long",
            ReportError::FilingClosed { .. } => "filing_closed",
            ReportError::PointsAboveMax { .. } => "points_above_max",
            ReportError::PointsForInvalid => "points_for_invalid",
            ReportError::ReasonRequired => "reason_required",
            ReportError::AppealClosed { .. } => "appeal_closed",
            ReportError::FindingRequired { .. } => "finding_required",
            ReportError::FindingForInvalid => "finding_for_invalid",
            ReportError::FindingWithoutRules => "finding_without_rules",
            ReportError::FindingKind { .. } => "finding_kind",
            ReportError::PointsUnderRules => "points_under_rules",
            ReportError::UnknownAttackType { .. } => "unknown_attack_type",
            ReportError::UnknownCriterion { .. } => "unknown_criterion",
            ReportError::ShareAboveMax { .. } => "share_above_max",
            ReportError::BonusAboveMax { .. } => "bonus_above_max",
        }
    }
}

fn hm(d: Duration) -> String {
    let m = d.as_secs() / 60;
    match (m / 60, m % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

/// One problem of a report, with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportProblem {
    /// The request field, e.g. `target_team` (empty when the problem is not one field's).
    pub field: &'static str,
    pub error: ReportError,
}

/// A report as a team sends it: teams and services by slug, everything unchecked.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportDraft {
    /// `attack` or `defence`.
    pub kind: String,
    /// Attack reports: the team whose service was broken into (its slug).
    #[serde(default)]
    pub target_team: Option<String>,
    /// The service attacked (attack) or affected (defence), by slug.
    #[serde(default)]
    pub service: Option<String>,
    /// When it happened: start and end of the window.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// The technique, in the team's words.
    #[serde(default)]
    pub technique: String,
    /// An optional ATT&CK Enterprise technique id, e.g. `T1190`.
    #[serde(default)]
    pub attack_id: Option<String>,
    #[serde(default)]
    pub description: String,
    /// Evidence as text (commands, requests, log lines); files come as attachments.
    #[serde(default)]
    pub evidence: Option<String>,
    /// Defence reports: the address the attack came from, if traced.
    #[serde(default)]
    pub traced_address: Option<String>,
    /// Defence reports: the attacking team, if traced (its slug).
    #[serde(default)]
    pub traced_team: Option<String>,
}

/// A report that met every rule, with teams and services resolved to ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckedReport {
    pub kind: ReportKind,
    pub target_team: Option<TeamId>,
    pub service: ServiceId,
    pub window: TimeWindow,
    pub technique: String,
    pub attack_id: Option<TechniqueId>,
    pub description: String,
    pub evidence: String,
    pub traced_address: Option<IpAddr>,
    pub traced_team: Option<TeamId>,
}

/// When and by whom a report is filed.
#[derive(Debug, Clone, Copy)]
pub struct Filing<'a> {
    pub scenario: &'a Scenario,
    pub filer: TeamId,
    pub now: DateTime<Utc>,
    /// When tick 0 started (`None`: the drill has not started).
    pub started: Option<DateTime<Utc>>,
    /// How much later than its scenario says the drill ends (organisers extended it).
    pub extended: Duration,
}

/// When the drill ends, given when it started and how long it was extended by.
pub fn drill_end(scenario: &Scenario, started: DateTime<Utc>, extended: Duration) -> DateTime<Utc> {
    add(started, scenario.drill.duration.saturating_add(extended))
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d).ok().and_then(|d| t.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Checks a draft against the scenario, the filing team's role and the time rules, and
/// resolves its slugs. Returns every problem at once, in field order.
pub fn check_report(draft: &ReportDraft, f: &Filing<'_>) -> Result<CheckedReport, Vec<ReportProblem>> {
    let rules = &f.scenario.reports;
    let mut problems = Vec::new();
    let mut fail = |field: &'static str, error: ReportError| problems.push(ReportProblem { field, error });
    if !rules.enabled {
        fail("", ReportError::ReportsOff);
        return Err(problems);
    }
    let filer = f.scenario.team(f.filer);

    let kind = ReportKind::from_name(draft.kind.trim());
    match (kind, filer) {
        (None, _) if draft.kind.trim().is_empty() => fail("kind", ReportError::Missing("kind")),
        (None, _) => fail("kind", ReportError::UnknownKind(draft.kind.clone())),
        (Some(k), Some(team)) if !k.allowed_for(team.role) => {
            fail("kind", ReportError::KindNotForRole { kind: k, role: team.role })
        }
        (Some(k), _) if k.max_points(rules) == 0 => fail("kind", ReportError::KindOff(k)),
        _ => {}
    }

    let team_by_slug = |slug: &str| f.scenario.teams.iter().find(|t| t.slug == slug.trim());
    let given = |o: &Option<String>| o.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);

    let mut target = None;
    match (kind, given(&draft.target_team)) {
        (Some(ReportKind::Attack), None) => fail("target_team", ReportError::Missing("target_team")),
        (Some(ReportKind::Attack), Some(slug)) => match team_by_slug(&slug) {
            None => fail("target_team", ReportError::UnknownTeam(slug)),
            Some(t) if t.id == f.filer => fail("target_team", ReportError::OwnTeam("target_team")),
            Some(t) if !t.role.defends() => fail("target_team", ReportError::TargetNotDefending(slug)),
            Some(t) => target = Some(t.id),
        },
        (Some(ReportKind::Defence), Some(_)) => {
            fail("target_team", ReportError::NotForKind { field: "target_team", kind: ReportKind::Attack })
        }
        _ => {}
    }

    let mut service = None;
    match given(&draft.service) {
        None => fail("service", ReportError::Missing("service")),
        Some(slug) => match f.scenario.services.iter().find(|s| s.slug == slug) {
            Some(s) => service = Some(s.id),
            None => fail("service", ReportError::UnknownService(slug)),
        },
    }

    let window = check_window(draft.from, draft.to, f, rules, &mut fail);

    let technique = draft.technique.trim().to_owned();
    if technique.is_empty() {
        fail("technique", ReportError::Missing("technique"));
    } else if technique.chars().count() > MAX_TECHNIQUE_CHARS {
        fail("technique", ReportError::TooLong { field: "technique", max: MAX_TECHNIQUE_CHARS });
    }
    let attack_id = match given(&draft.attack_id) {
        None => None,
        Some(id) => match TechniqueId::parse(&id) {
            Ok(id) => Some(id),
            Err(e) => {
                fail("attack_id", e);
                None
            }
        },
    };
    let description = draft.description.trim().to_owned();
    if description.is_empty() {
        fail("description", ReportError::Missing("description"));
    } else if description.chars().count() > MAX_DESCRIPTION_CHARS {
        fail("description", ReportError::TooLong { field: "description", max: MAX_DESCRIPTION_CHARS });
    }
    let evidence = draft.evidence.clone().unwrap_or_default();
    if evidence.chars().count() > MAX_EVIDENCE_TEXT_CHARS {
        fail("evidence", ReportError::TooLong { field: "evidence", max: MAX_EVIDENCE_TEXT_CHARS });
    }

    let mut traced_address = None;
    let mut traced_team = None;
    let traced = [("traced_address", given(&draft.traced_address)), ("traced_team", given(&draft.traced_team))];
    if kind == Some(ReportKind::Attack) {
        for (field, value) in &traced {
            if value.is_some() {
                fail(field, ReportError::NotForKind { field, kind: ReportKind::Defence });
            }
        }
    } else {
        if let Some(addr) = &traced[0].1 {
            match addr.parse::<IpAddr>() {
                Ok(ip) => traced_address = Some(ip),
                Err(_) => fail("traced_address", ReportError::BadAddress(addr.clone())),
            }
        }
        if let Some(slug) = &traced[1].1 {
            match team_by_slug(slug) {
                None => fail("traced_team", ReportError::UnknownTeam(slug.clone())),
                Some(t) if t.id == f.filer => fail("traced_team", ReportError::OwnTeam("traced_team")),
                Some(t) if !t.role.attacks() => fail("traced_team", ReportError::TracedNotAttacking(slug.clone())),
                Some(t) => traced_team = Some(t.id),
            }
        }
    }

    match (kind, service, window) {
        (Some(kind), Some(service), Some(window)) if problems.is_empty() => Ok(CheckedReport {
            kind,
            target_team: target,
            service,
            window,
            technique,
            attack_id,
            description,
            evidence,
            traced_address,
            traced_team,
        }),
        _ => Err(problems),
    }
}

/// The time rules: the window is ordered, not in the future, within the drill and not too
/// long; and filing is still open.
fn check_window(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    f: &Filing<'_>,
    rules: &ReportRules,
    fail: &mut impl FnMut(&'static str, ReportError),
) -> Option<TimeWindow> {
    let Some(started) = f.started else {
        fail("", ReportError::NotStarted);
        return None;
    };
    let deadline = add(drill_end(f.scenario, started, f.extended), rules.filing_grace);
    if f.now > deadline {
        fail("", ReportError::FilingClosed { deadline });
    }
    let (from, to) = match (from, to) {
        (Some(from), Some(to)) => (from, to),
        (from, to) => {
            if from.is_none() {
                fail("from", ReportError::Missing("from"));
            }
            if to.is_none() {
                fail("to", ReportError::Missing("to"));
            }
            return None;
        }
    };
    let mut ok = true;
    if to < from {
        fail("to", ReportError::WindowReversed { from, to });
        ok = false;
    }
    if to > add(f.now, CLOCK_SKEW) {
        fail("to", ReportError::WindowInFuture { to, now: f.now });
        ok = false;
    }
    if from < started {
        fail("from", ReportError::WindowBeforeStart { from, start: started });
        ok = false;
    }
    if let Ok(length) = (to - from).to_std()
        && length > rules.max_window
    {
        fail("to", ReportError::WindowTooLong { length, max: rules.max_window });
        ok = false;
    }
    ok.then_some(TimeWindow { from, to })
}

crate::named_enum! {
    /// Which ruling of a report: the first, or the one on its single appeal (by another judge).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum RulingStage {
        First = "first",
        Appeal = "appeal",
    }
}

crate::named_enum! {
    /// Where a report is in its life: filed → (disputed →) ruled → (appealed → final).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum ReportStatus {
        /// Filed, waiting for a judge (with two judges, until both have scored it).
        Pending = "pending",
        /// Two judges scored it blind and disagree: a third judge, who scored neither, decides.
        Disputed = "disputed",
        /// Ruled once; the team may still appeal until the scenario's appeal window closes.
        Ruled = "ruled",
        /// Appealed, waiting for a second judge.
        Appealed = "appealed",
        /// The appeal was ruled: nothing can change any more.
        Final = "final",
    }
}

crate::named_enum! {
    /// A judge's reason for a ruling, from a fixed list (each has an English and a Hong Kong
    /// Chinese label on the judges' workbench), stored with the ruling beside its free text.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum ReasonCode {
        /// The platform's captures back the report.
        ConfirmedByCapture = "confirmed-by-capture",
        /// The service's logs back the report.
        ConfirmedByLogs = "confirmed-by-logs",
        /// The evidence the team sent shows it.
        ConfirmedByEvidence = "confirmed-by-evidence",
        /// Another report already has it.
        Duplicate = "duplicate",
        /// Not a target, service or kind of finding the drill's rules count.
        OutOfScope = "out-of-scope",
        /// The evidence does not show what the report says.
        InsufficientEvidence = "insufficient-evidence",
        /// Nothing the platform recorded matches the report's window.
        NoMatchingEvent = "no-matching-event",
        /// Outside the report's stated window or the drill's hours.
        OutsideWindow = "outside-window",
    }
}

/// A judge's decision on a report or an appeal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub valid: bool,
    /// Points awarded; 0 for an invalid report.
    #[serde(default)]
    pub points: u32,
    /// Why, shown to the filing team.
    #[serde(default)]
    pub reason: String,
    /// Why, from the fixed list; optional, so clients that send none keep working.
    #[serde(default)]
    pub reason_codes: Vec<ReasonCode>,
    /// What was found, by the rule-based preset's tables: with `scoring = "rules"` a valid
    /// ruling records one and its points come from the tables; otherwise there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<Finding>,
}

/// What judges record with a valid ruling under the rule-based preset (`scoring = "rules"`).
/// The unit attacked, the stated time and the filing order come from the report itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    Attack {
        /// The slug of its attack type (`[[reports.attack_type]]`).
        attack_type: String,
        /// Which weakness it is, the judges' key for repeats in one unit (compared exactly,
        /// after trimming).
        weakness: String,
    },
    Defence {
        /// The attack it answers: a ruled attack result on the filing team, or a recorded
        /// capture of one of its flags.
        link: LinkedEvent,
        /// The share on each criterion of the rubric, in percent; criteria left out score 0.
        #[serde(default)]
        rubric: BTreeMap<String, u32>,
        #[serde(default)]
        bonus: u32,
    },
}

impl Finding {
    pub fn kind(&self) -> ReportKind {
        match self {
            Finding::Attack { .. } => ReportKind::Attack,
            Finding::Defence { .. } => ReportKind::Defence,
        }
    }
}

/// The longest weakness key a judge may record.
pub const MAX_WEAKNESS_CHARS: usize = 200;

/// Checks a finding against the preset's tables. What the link points at is the store's to check.
fn check_finding(kind: ReportKind, f: &Finding, preset: &RulePreset) -> Result<(), ReportError> {
    if f.kind() != kind {
        return Err(ReportError::FindingKind { kind });
    }
    match f {
        Finding::Attack { attack_type, weakness } => {
            if preset.attack_type(attack_type).is_none() {
                let known = preset.attack_types.iter().map(|t| t.slug.as_str()).collect::<Vec<_>>().join(", ");
                return Err(ReportError::UnknownAttackType { got: attack_type.clone(), known });
            }
            if weakness.trim().is_empty() {
                return Err(ReportError::Missing("weakness"));
            }
            if weakness.chars().count() > MAX_WEAKNESS_CHARS {
                return Err(ReportError::TooLong { field: "weakness", max: MAX_WEAKNESS_CHARS });
            }
        }
        Finding::Defence { rubric, bonus, .. } => {
            for (criterion, &share) in rubric {
                let Some(c) = preset.criterion(criterion) else {
                    let known = preset.rubric.iter().map(|c| c.slug.as_str()).collect::<Vec<_>>().join(", ");
                    return Err(ReportError::UnknownCriterion { got: criterion.clone(), known });
                };
                if share > c.max_share {
                    return Err(ReportError::ShareAboveMax { criterion: criterion.clone(), share, max: c.max_share });
                }
            }
            if *bonus > preset.max_bonus {
                return Err(ReportError::BonusAboveMax { bonus: *bonus, max: preset.max_bonus });
            }
        }
    }
    Ok(())
}

/// Checks a decision against the scenario's maximum for the report's kind, and under the
/// rule-based preset its finding against the preset's tables.
pub fn check_decision(kind: ReportKind, d: &Decision, rules: &ReportRules) -> Result<(), ReportError> {
    match (rules.rule_preset(), &d.finding) {
        (None, Some(_)) => return Err(ReportError::FindingWithoutRules),
        (None, None) => {}
        (Some(_), _) if d.points != 0 => return Err(ReportError::PointsUnderRules),
        (Some(_), Some(_)) if !d.valid => return Err(ReportError::FindingForInvalid),
        (Some(_), None) if d.valid => return Err(ReportError::FindingRequired { kind }),
        (Some(_), None) => {}
        (Some(preset), Some(f)) => check_finding(kind, f, preset)?,
    }
    let max = kind.max_points(rules);
    if !d.valid && d.points != 0 {
        return Err(ReportError::PointsForInvalid);
    }
    if d.points > max {
        return Err(ReportError::PointsAboveMax { points: d.points, max, kind });
    }
    if !d.valid && d.reason.trim().is_empty() {
        return Err(ReportError::ReasonRequired);
    }
    if d.reason.chars().count() > MAX_REASON_CHARS {
        return Err(ReportError::TooLong { field: "reason", max: MAX_REASON_CHARS });
    }
    Ok(())
}

/// Checks that an appeal of a ruling made at `ruled_at` is still open at `now`.
pub fn check_appeal(
    ruled_at: DateTime<Utc>,
    now: DateTime<Utc>,
    reason: &str,
    rules: &ReportRules,
) -> Result<(), ReportError> {
    let deadline = add(ruled_at, rules.appeal_window);
    if now > deadline {
        return Err(ReportError::AppealClosed { deadline });
    }
    if reason.trim().is_empty() {
        return Err(ReportError::Missing("reason"));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ReportError::TooLong { field: "reason", max: MAX_REASON_CHARS });
    }
    Ok(())
}

/// What two judges' blind scores of one report come to. Under the rule-based preset they also
/// agree only when their findings do (see [`combine_scores`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PanelOutcome {
    /// They agree: this is the ruling.
    Agreed(Decision),
    /// They disagree: a third judge decides.
    Disputed,
}

/// Two blind scores agree when both are valid, or both invalid, with points at most
/// `max_difference` apart. Their ruling then awards the mean of their points, rounded down,
/// with both reasons (once when the same) and every reason code either gave. Under the
/// rule-based preset both must record the same attack type and weakness, or a defence of the
/// same attack (whose rubric shares and bonus are then each their mean, rounded down).
pub fn combine_scores(a: &Decision, b: &Decision, max_difference: u32) -> PanelOutcome {
    if a.valid != b.valid || a.points.abs_diff(b.points) > max_difference {
        return PanelOutcome::Disputed;
    }
    let Some(finding) = combine_findings(a.finding.as_ref(), b.finding.as_ref()) else {
        return PanelOutcome::Disputed;
    };
    let (ra, rb) = (a.reason.trim(), b.reason.trim());
    let reason = match (ra.is_empty(), rb.is_empty()) {
        (_, true) => ra.to_owned(),
        (true, false) => rb.to_owned(),
        (false, false) if ra == rb => ra.to_owned(),
        (false, false) => format!("{ra}\n\n{rb}"),
    };
    let mut reason_codes: Vec<ReasonCode> = a.reason_codes.iter().chain(&b.reason_codes).copied().collect();
    reason_codes.sort();
    reason_codes.dedup();
    let points = u32::try_from((u64::from(a.points) + u64::from(b.points)) / 2).unwrap_or(u32::MAX);
    PanelOutcome::Agreed(Decision { valid: a.valid, points, reason, reason_codes, finding })
}

/// Two judges' findings, if they agree: the same attack type and weakness, or a defence of the
/// same attack (its rubric shares and bonus are then each the mean, rounded down). `None` when
/// they differ.
fn combine_findings(a: Option<&Finding>, b: Option<&Finding>) -> Option<Option<Finding>> {
    let mean = |x: u32, y: u32| u32::try_from((u64::from(x) + u64::from(y)) / 2).unwrap_or(u32::MAX);
    match (a, b) {
        (None, None) => Some(None),
        (
            Some(Finding::Attack { attack_type: ta, weakness: wa }),
            Some(Finding::Attack { attack_type: tb, weakness: wb }),
        ) => (ta == tb && wa.trim() == wb.trim())
            .then(|| Some(Finding::Attack { attack_type: ta.clone(), weakness: wa.trim().to_owned() })),
        (
            Some(Finding::Defence { link: la, rubric: ra, bonus: ba }),
            Some(Finding::Defence { link: lb, rubric: rb, bonus: bb }),
        ) if la == lb => {
            let rubric = ra
                .keys()
                .chain(rb.keys())
                .map(|c| (c.clone(), mean(ra.get(c).copied().unwrap_or(0), rb.get(c).copied().unwrap_or(0))))
                .collect();
            Some(Some(Finding::Defence { link: *la, rubric, bonus: mean(*ba, *bb) }))
        }
        _ => None,
    }
}

/// When an appeal of a ruling made at `ruled_at` closes.
pub fn appeal_deadline(ruled_at: DateTime<Utc>, rules: &ReportRules) -> DateTime<Utc> {
    add(ruled_at, rules.appeal_window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn technique_ids() {
        assert_eq!(TechniqueId::parse("T1190").unwrap().as_str(), "T1190");
        assert_eq!(TechniqueId::parse(" T1110.001 ").unwrap().technique(), "T1110");
        assert_eq!(TechniqueId::parse("t1190"), Err(ReportError::TechniqueSyntax("t1190".into())));
        assert_eq!(TechniqueId::parse("T119"), Err(ReportError::TechniqueSyntax("T119".into())));
        assert_eq!(TechniqueId::parse("T1190.1"), Err(ReportError::TechniqueSyntax("T1190.1".into())));
        assert_eq!(TechniqueId::parse("T1190.0011"), Err(ReportError::TechniqueSyntax("T1190.0011".into())));
        assert_eq!(
            TechniqueId::parse("T9999"),
            Err(ReportError::UnknownTechnique { id: "T9999".into(), parent: None })
        );
        let e = TechniqueId::parse("T1110.099").unwrap_err();
        assert_eq!(e, ReportError::UnknownTechnique { id: "T1110.099".into(), parent: Some("T1110".into()) });
        assert!(e.to_string().contains("use its technique T1110"), "{e}");
    }

    #[test]
    fn the_list_is_well_formed() {
        let ids = known_techniques();
        assert!(ids.len() >= 200, "{} ids", ids.len());
        for id in ids {
            assert!(technique_syntax_ok(id), "bad id {id:?} in the list");
            if let Some((parent, _)) = id.split_once('.') {
                assert!(ids.binary_search(&parent).is_ok(), "{id} is listed without its technique {parent}");
            }
        }
    }

    #[test]
    fn kinds_follow_roles() {
        assert!(ReportKind::Attack.allowed_for(Role::Attacker) && ReportKind::Attack.allowed_for(Role::Both));
        assert!(!ReportKind::Attack.allowed_for(Role::Defender));
        assert!(ReportKind::Defence.allowed_for(Role::Defender) && !ReportKind::Defence.allowed_for(Role::Attacker));
        assert_eq!(ReportKind::from_name("defense"), Some(ReportKind::Defence));
    }

    #[test]
    fn decisions_are_bounded() {
        let rules = ReportRules { attack_max_points: 50, ..ReportRules::default() };
        let d = |valid, points, reason: &str| Decision {
            valid,
            points,
            reason: reason.into(),
            reason_codes: Vec::new(),
            finding: None,
        };
        assert_eq!(check_decision(ReportKind::Attack, &d(true, 50, ""), &rules), Ok(()));
        assert_eq!(
            check_decision(ReportKind::Attack, &d(true, 51, ""), &rules),
            Err(ReportError::PointsAboveMax { points: 51, max: 50, kind: ReportKind::Attack })
        );
        assert_eq!(check_decision(ReportKind::Attack, &d(false, 5, "no"), &rules), Err(ReportError::PointsForInvalid));
        assert_eq!(check_decision(ReportKind::Attack, &d(false, 0, " "), &rules), Err(ReportError::ReasonRequired));
    }

    #[test]
    fn two_blind_scores_agree_only_within_the_threshold() {
        let d = |valid, points, reason: &str, codes: &[ReasonCode]| Decision {
            valid,
            points,
            reason: reason.into(),
            reason_codes: codes.to_vec(),
            finding: None,
        };
        let capture = [ReasonCode::ConfirmedByCapture];
        let logs = [ReasonCode::ConfirmedByLogs, ReasonCode::ConfirmedByCapture];
        assert_eq!(
            combine_scores(&d(true, 40, "seen", &capture), &d(true, 61, "in the logs", &logs), 21),
            PanelOutcome::Agreed(d(
                true,
                50,
                "seen\n\nin the logs",
                &[ReasonCode::ConfirmedByCapture, ReasonCode::ConfirmedByLogs]
            ))
        );
        assert_eq!(combine_scores(&d(true, 40, "", &[]), &d(true, 61, "", &[]), 20), PanelOutcome::Disputed);
        assert_eq!(combine_scores(&d(true, 0, "", &[]), &d(false, 0, "no", &[]), 100), PanelOutcome::Disputed);
        assert_eq!(
            combine_scores(&d(false, 0, "no", &[]), &d(false, 0, " no ", &[]), 0),
            PanelOutcome::Agreed(d(false, 0, "no", &[]))
        );
        // The mean of two large awards does not overflow.
        assert_eq!(
            combine_scores(&d(true, u32::MAX, "", &[]), &d(true, u32::MAX - 1, "", &[]), 1),
            PanelOutcome::Agreed(d(true, u32::MAX - 1, "", &[]))
        );
    }

    #[test]
    fn durations_read_like_the_scenario() {
        assert_eq!(hm(Duration::from_secs(6 * 3600)), "6h");
        assert_eq!(hm(Duration::from_secs(5400)), "1h30m");
        assert_eq!(hm(Duration::from_secs(600)), "10m");
    }
}
