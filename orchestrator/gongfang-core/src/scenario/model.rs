//! The scenario as the rest of Gongfang sees it: validated, typed, no TOML left.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ServiceId, TeamId};
use crate::secret::Secret;

/// A whole drill: who plays, what is attacked, how time and points work.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub drill: Drill,
    pub submission: Submission,
    pub teams: Vec<Team>,
    pub services: Vec<Service>,
    /// Attack and defence reports and their judging (`[reports]`; off when absent).
    pub reports: ReportRules,
    /// How much of the service containers' output is kept (`[logs]`; defaults when absent).
    pub logs: LogRules,
    /// WireGuard access for teams (`[vpn]`; none when absent).
    pub vpn: Option<VpnRules>,
    /// Submitted patches and how patching counts (`[patches]`; defaults when absent).
    pub patches: PatchRules,
}

/// Names, timing, flags and scoring of the drill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drill {
    /// A short machine name; labels containers and names the database file.
    pub slug: String,
    pub name: Names,
    /// When tick 0 starts; `None` means when an organiser starts the drill.
    pub start: Option<DateTime<Utc>>,
    /// How long the drill runs.
    pub duration: Duration,
    /// Length of one tick.
    pub tick: Duration,
    /// Longest a single checker action may take.
    pub checker_timeout: Duration,
    /// How many ticks a flag stays valid for submission (and is read back by `get`).
    pub flag_lifetime: u32,
    pub flag_prefix: String,
    #[serde(skip)]
    pub secret: SecretSource,
    pub scoring: ScoringFormula,
    /// A demo drill (`demo = true`): it may keep its secret inline and short.
    #[serde(skip)]
    pub demo: bool,
    /// Whether a team's after-action report names the other teams in its comparison with the
    /// field (`debrief_names = true`); by default they appear only as a median and a best.
    pub debrief_names: bool,
}

impl Drill {
    /// Fewest bytes this drill's flag secret may have.
    pub fn min_secret_len(&self) -> usize {
        min_secret_len(self.demo)
    }
}

/// Fewest bytes a flag secret may have: [`MIN_SECRET_LEN`], or [`MIN_DEMO_SECRET_LEN`] in a demo.
pub fn min_secret_len(demo: bool) -> usize {
    if demo { MIN_DEMO_SECRET_LEN } else { MIN_SECRET_LEN }
}

/// Fewest bytes of a real drill's flag secret: anyone who guesses it can mint flags.
pub const MIN_SECRET_LEN: usize = 32;
/// Fewest bytes of a demo's flag secret.
pub const MIN_DEMO_SECRET_LEN: usize = 16;

/// A name in English and in Traditional Chinese.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Names {
    pub en: String,
    pub zh: String,
}

/// Where the scenario's secret comes from. Inline secrets are for demos (`demo = true`) only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Inline(Secret),
    Env(String),
    File(PathBuf),
}

crate::named_enum! {
    /// How points are computed from captures, losses and SLA.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ScoringFormula {
        /// FAUST CTF's formula (the default).
        Faust = "faust",
        /// ForcAD's Elo-like formula.
        Forcad = "forcad",
        /// saarCTF's formula.
        Saarctf = "saarctf",
    }
}

/// How flags are submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Submission {
    /// How the TCP server tells teams apart.
    pub identify: Identify,
    /// Most flags per second one team may submit over HTTP (`None`: unlimited).
    pub rate_limit: Option<u32>,
    /// Most concurrent TCP connections one team may hold.
    pub max_connections: u32,
}

crate::named_enum! {
    /// How a TCP submission connection is attributed to a team.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Identify {
        /// By the source address, matched against the teams' networks.
        Address = "address",
        /// By a token line sent before the flags.
        Token = "token",
    }
}

crate::named_enum! {
    /// What a team does in the drill.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Role {
        /// Red team: attacks, has no services of its own.
        Attacker = "attacker",
        /// Blue team: defends its services, submits no flags.
        Defender = "defender",
        /// Symmetric attack-defence: both.
        Both = "both",
    }
}

impl Role {
    /// Whether the team has service instances (and so flags of its own).
    pub fn defends(self) -> bool {
        matches!(self, Role::Defender | Role::Both)
    }

    /// Whether the team may submit flags.
    pub fn attacks(self) -> bool {
        matches!(self, Role::Attacker | Role::Both)
    }
}

/// A team and where its machines live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Team {
    pub id: TeamId,
    pub slug: String,
    pub name: Names,
    pub role: Role,
    /// The team's network; its service instances get addresses in it, and TCP submissions
    /// from it are attributed to the team.
    pub network: Ipv4Net,
    /// The NOP team: a defender that never attacks, whose flags prove a service exploitable.
    pub nop: bool,
}

/// A vulnerable service every defending team runs a copy of.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    pub id: ServiceId,
    pub slug: String,
    pub name: Names,
    pub source: ImageSource,
    /// Ports attackers and the checker may reach.
    pub ports: Vec<u16>,
    /// The checker component, resolved against the scenario's folder.
    pub checker: PathBuf,
    pub flag_stores: u8,
    pub limits: Limits,
    pub patch_mode: PatchMode,
    /// The folder in the container holding the service's code (`code`): on a volume of the
    /// team's own, made from the image's copy, that its defenders edit over their shell and that
    /// a restart keeps. Vulnbox mode only.
    pub code: Option<String>,
    /// The folder in the container holding the service's data (`data`): on a volume of the
    /// team's own that restarts keep.
    pub data: Option<String>,
    /// Files and folders of the build folder a submitted patch may not touch (`fixed`), as
    /// paths relative to it; the Dockerfile is always fixed.
    pub fixed: Vec<String>,
}

impl Service {
    /// The folders this service keeps on volumes of each team's own, with the volume's kind
    /// (`code`, `data`), in that order.
    pub fn volumes(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [("code", self.code.as_deref()), ("data", self.data.as_deref())]
            .into_iter()
            .filter_map(|(kind, path)| path.map(|p| (kind, p)))
    }
}

/// Where a service's container image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageSource {
    /// A local image, by name.
    Image(String),
    /// A build context folder, resolved against the scenario's folder.
    Build(PathBuf),
}

/// Resource limits of one service instance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Limits {
    pub cpus: f64,
    pub memory_bytes: u64,
    pub pids: u32,
}

crate::named_enum! {
    /// How defenders patch their service.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum PatchMode {
        /// Teams get a shell in their own containers and patch live.
        Vulnbox = "vulnbox",
        /// Teams upload a patched image or overlay, verified before deployment.
        Submit = "submit",
    }
}

/// Submitted patches (`patch_mode = "submit"`): how large one may be, how its image is built
/// and checked before it reaches a team's live service, and how patching counts in the score
/// (in both patch modes: the exploit replay sees live patches too). The scenario's `[patches]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PatchRules {
    /// Most bytes of one submitted patch (a diff or a tar archive, as sent).
    pub max_size: u64,
    /// Most bytes of the patched build folder, all files together, once unpacked.
    pub max_source: u64,
    /// Most files in the patched build folder.
    pub max_files: u32,
    /// Longest one image build may take.
    pub build_timeout: Duration,
    /// Memory of one build's containers.
    pub build_memory: u64,
    /// CPUs of one build's containers.
    pub build_cpus: f64,
    /// How many patches are built and checked at once, all teams together; each team has at
    /// most one at a time.
    pub max_builds: u32,
    /// Most patches of one team waiting in the queue.
    pub max_queued: u32,
    /// Most patches (and rollbacks) one team may send over the whole drill: each one is a
    /// stored archive, and a built image until `down`.
    pub max_per_team: u32,
    /// How many rounds of `put`, `get` and `check` a staged patch must pass.
    pub rounds: u32,
    /// How long a staged instance has to start answering on its first port.
    pub start_timeout: Duration,
    /// How patching counts.
    pub scoring: PatchScoring,
    /// Points per defended tick (`scoring = "defended-ticks"`).
    pub points: f64,
}

impl Default for PatchRules {
    fn default() -> PatchRules {
        PatchRules {
            max_size: 1 << 20,
            max_source: 16 << 20,
            max_files: 2000,
            build_timeout: Duration::from_secs(300),
            build_memory: 1 << 30,
            build_cpus: 1.0,
            max_builds: 1,
            max_queued: 4,
            max_per_team: 100,
            rounds: 3,
            start_timeout: Duration::from_secs(30),
            scoring: PatchScoring::None,
            points: 1.0,
        }
    }
}

crate::named_enum! {
    /// How patching counts in a team's score.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum PatchScoring {
        /// Not at all: the exploit replay is shown, not scored.
        None = "none",
        /// `points` for every tick a service's checker found `ok` while the replay of its
        /// reference exploit captured nothing, in every flag store it tried.
        DefendedTicks = "defended-ticks",
    }
}

/// Attack and defence reports: whether teams file them, what a valid one may earn, the time
/// rules, and how report points combine with flag points. The scenario's `[reports]` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRules {
    /// Whether teams may file reports at all. `false` when the scenario has no `[reports]`.
    pub enabled: bool,
    /// Most points a judge may award one valid attack report (0: attack reports are refused).
    pub attack_max_points: u32,
    /// Most points a judge may award one valid defence report (0: defence reports are refused).
    pub defence_max_points: u32,
    /// How report points combine with the points of the drill's flag formula.
    pub scoring: ReportScoring,
    /// Report points are multiplied by this before they are added to a team's total.
    pub weight: f64,
    /// Longest time window one report may state.
    pub max_window: Duration,
    /// How long after the drill's end teams may still file reports.
    pub filing_grace: Duration,
    /// How long after a ruling the filing team may appeal it (once).
    pub appeal_window: Duration,
    /// Most bytes of evidence files one report may carry, all files together.
    pub max_evidence_bytes: u64,
    /// Most reports one team may file over the whole drill: a filing limit that keeps a team
    /// from flooding the judges and the disk, not a scoring cap.
    pub max_reports_per_team: u32,
    /// Most bytes of evidence files one team may store over the whole drill, all its reports
    /// together.
    pub max_evidence_bytes_per_team: u64,
    /// Most filings with evidence one team may upload at the same time.
    pub max_concurrent_uploads: u32,
    /// The rule-based preset's tables: `Some` exactly when `scoring = "rules"`.
    pub preset: Option<RulePreset>,
    /// Who rules a report: one judge, or two scoring blind with a third deciding when they
    /// disagree (`judges`, `disagreement_points`).
    pub panel: JudgePanel,
}

/// How many judges a report's first ruling takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "judges", rename_all = "kebab-case")]
pub enum JudgePanel {
    /// One judge rules (`judges = 1`).
    One,
    /// Two judges score each report without seeing each other's score (`judges = 2`). When
    /// both rule it valid, or both invalid, with points at most `max_difference` apart, the
    /// ruling is theirs together; otherwise a third judge, who scored neither, decides.
    BlindPair { max_difference: u32 },
}

impl Default for ReportRules {
    /// Reports off; the values a `[reports]` table starts from.
    fn default() -> ReportRules {
        ReportRules {
            enabled: false,
            attack_max_points: 100,
            defence_max_points: 100,
            scoring: ReportScoring::Formula,
            weight: 1.0,
            max_window: Duration::from_secs(6 * 3600),
            filing_grace: Duration::from_secs(2 * 3600),
            appeal_window: Duration::from_secs(2 * 3600),
            max_evidence_bytes: 16 << 20,
            max_reports_per_team: 200,
            max_evidence_bytes_per_team: 512 << 20,
            max_concurrent_uploads: 2,
            preset: None,
            panel: JudgePanel::One,
        }
    }
}

crate::named_enum! {
    /// How ruled-valid report points combine with flag points.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ReportScoring {
        /// The drill's flag formula in full (attack, defence and SLA) plus weighted report
        /// points: a symmetric attack-defence drill where reports are a bonus.
        Formula = "formula",
        /// A red-team / blue-team drill: the same total (captures, flags lost, availability and
        /// weighted report points), with red teams ranked among red teams and blue teams among
        /// blue teams.
        RedBlue = "red-blue",
        /// A red-team / blue-team drill under the rule-based preset of published drill rules
        /// ([`RulePreset`]): typed attack results capped per defending unit, key units weighted,
        /// repeats of a weakness worth less each time; defence results scored on a rubric as a
        /// share of what the attack they answer cost. Ranked like `red-blue`.
        Rules = "rules",
    }
}

impl ReportRules {
    /// The rule-based preset's tables when the drill scores reports by them
    /// (`scoring = "rules"`): then a valid ruling records a finding and its points come from them.
    pub fn rule_preset(&self) -> Option<&RulePreset> {
        match self.scoring {
            ReportScoring::Rules if self.enabled => self.preset.as_ref(),
            _ => None,
        }
    }
}

impl ReportScoring {
    /// Whether red teams are ranked among red teams and blue teams among blue teams.
    pub fn ranks_sides(self) -> bool {
        match self {
            ReportScoring::Formula => false,
            ReportScoring::RedBlue | ReportScoring::Rules => true,
        }
    }
}

/// The tables of the rule-based preset (`scoring = "rules"`), read from `[reports]`; what each
/// value means for points is [`crate::scoring::score_rules`]'s to say. Every number is a whole
/// number of points or percent, so scores are exact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulePreset {
    /// The kinds of attack result, each with its points and its cap per defending unit
    /// (`[[reports.attack_type]]`).
    pub attack_types: Vec<AttackType>,
    /// Units (defending teams) whose findings and caps are weighted, in team id order
    /// (`[reports.key_units]`); any other unit counts 100 %.
    pub key_units: Vec<KeyUnit>,
    /// What the first, second, … valid finding of one weakness in one unit scores, in percent
    /// of its type's points; later ones score nothing.
    pub repeat_factors: Vec<u32>,
    /// The most points ruled attacks can take from one defending unit, all types and red teams
    /// together (before its multiplier). A unit whose points are exhausted yields nothing more.
    pub unit_points: u32,
    /// The criteria a defence result is scored on, each with its largest share in percent of
    /// the points the attack it answers cost (`[[reports.rubric]]`).
    pub rubric: Vec<Criterion>,
    /// The largest share, in percent, of one attack's points that one team's defence results on
    /// it may earn together.
    pub max_defence_share: u32,
    /// How many of one team's defence results score: a scoring cap, apart from the filing limit
    /// `max_reports_per_team`.
    pub max_counted_defences: u32,
    /// The most bonus points one team's defence results may earn together.
    pub max_bonus: u32,
    /// What a recorded capture counts as having cost its victim (before the victim's
    /// multiplier), when a defence result answers it rather than a ruled attack result.
    pub capture_points: u32,
}

/// A kind of attack result (`[[reports.attack_type]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackType {
    pub slug: String,
    pub name: Names,
    /// What a first finding of this type scores, before the unit's multiplier.
    pub points: u32,
    /// The most points findings of this type can take from one unit, all red teams together
    /// (before the unit's multiplier).
    pub max_per_unit: u32,
}

/// A defending team weighted by a multiplier (`[reports.key_units]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUnit {
    pub team: TeamId,
    /// In percent: 150 makes the unit's findings, and its caps, worth one and a half times.
    pub multiplier: u32,
}

/// One criterion of the defence rubric (`[[reports.rubric]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Criterion {
    pub slug: String,
    pub name: Names,
    /// The largest share, in percent of the attack's points, judges may give on it.
    pub max_share: u32,
}

impl RulePreset {
    /// The attack type named `slug`.
    pub fn attack_type(&self, slug: &str) -> Option<&AttackType> {
        self.attack_types.iter().find(|t| t.slug == slug)
    }

    /// The rubric's criterion named `slug`.
    pub fn criterion(&self, slug: &str) -> Option<&Criterion> {
        self.rubric.iter().find(|c| c.slug == slug)
    }

    /// A unit's multiplier in percent: 100 unless it is a key unit.
    pub fn multiplier(&self, team: TeamId) -> u32 {
        self.key_units.iter().find(|k| k.team == team).map_or(100, |k| k.multiplier)
    }

    /// The factor in percent of the `repeat`th valid finding (from 1) of one weakness in one
    /// unit: 0 past the list.
    pub fn repeat_factor(&self, repeat: u32) -> u32 {
        let index = repeat.checked_sub(1).and_then(|i| usize::try_from(i).ok());
        index.and_then(|i| self.repeat_factors.get(i)).copied().unwrap_or(0)
    }
}

impl Default for RulePreset {
    /// The tables a `[reports]` table with `scoring = "rules"` gets for those it leaves out.
    fn default() -> RulePreset {
        let names = |en: &str, zh: &str| Names { en: en.to_owned(), zh: zh.to_owned() };
        let kind = |slug: &str, en: &str, zh: &str, points, max_per_unit| AttackType {
            slug: slug.to_owned(),
            name: names(en, zh),
            points,
            max_per_unit,
        };
        let criterion = |slug: &str, en: &str, zh: &str, max_share| Criterion {
            slug: slug.to_owned(),
            name: names(en, zh),
            max_share,
        };
        RulePreset {
            attack_types: vec![
                kind("perimeter-breach", "Perimeter breach", "邊界突破", 100, 200),
                kind("target-control", "Control of a target system", "取得目標系統控制權", 300, 600),
                kind("data-access", "Access to data", "存取數據", 200, 400),
                kind("attack-path", "Attack path", "攻擊路徑", 150, 300),
                kind("other-system", "Other systems", "其他系統", 50, 200),
            ],
            key_units: Vec::new(),
            repeat_factors: vec![100, 70, 40],
            unit_points: 1000,
            rubric: vec![
                criterion("detection-timeliness", "Detection: timeliness", "偵測：及時性", 10),
                criterion("detection-tooling", "Detection: tooling", "偵測：工具", 10),
                criterion("detection-coverage", "Detection: coverage", "偵測：覆蓋範圍", 10),
                criterion("detection-effectiveness", "Detection: effectiveness", "偵測：成效", 10),
                criterion("analysis", "Analysis", "分析", 10),
                criterion("response", "Response", "應變處理", 15),
                criterion("notification", "Notification", "通報", 10),
                criterion("coordination", "Coordination", "協調", 10),
                criterion("tracing", "Tracing the attacker", "追蹤攻擊者", 15),
            ],
            max_defence_share: 80,
            max_counted_defences: 20,
            max_bonus: 100,
            capture_points: 100,
        }
    }
}

/// How much of each service container's output Docker keeps, the scenario's `[logs]` table: the
/// log is rotated into files of at most `max_size_bytes`, of which the newest `max_files` are
/// kept, so one container's log never holds more than their product on the host's disk, however
/// much the service writes. The defaults keep 512 MiB per container: a busy service's whole
/// drill, yet a bounded share of the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LogRules {
    /// Largest size of one log file before Docker starts the next.
    pub max_size_bytes: u64,
    /// How many log files Docker keeps per container, the one being written included.
    pub max_files: u32,
}

impl Default for LogRules {
    fn default() -> LogRules {
        LogRules { max_size_bytes: 64 << 20, max_files: 8 }
    }
}

impl LogRules {
    /// Most bytes of log one container keeps on disk.
    pub fn max_total_bytes(&self) -> u64 {
        self.max_size_bytes.saturating_mul(u64::from(self.max_files))
    }
}

/// The UDP port the drill's WireGuard gateway listens on when `[vpn] listen` names none.
pub const DEFAULT_VPN_PORT: u16 = 51820;
/// The first team's shell entry on the gateway's address when `[vpn] shell_port` names none.
pub const DEFAULT_SHELL_PORT: u16 = 2201;

/// WireGuard access for teams, the scenario's `[vpn]` table: where teams reach the gateway, the
/// tunnel addresses it hands out, and whether the gateway hides who a connection comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VpnRules {
    /// The address or host name teams reach the gateway at (their configs' `Endpoint`).
    pub listen_host: String,
    /// The UDP port the gateway listens on.
    pub listen_port: u16,
    /// The tunnel addresses: the gateway's and every team's peers'.
    pub range: Ipv4Net,
    /// The gateway's address inside the tunnel (the platform's ports, as teams reach them).
    pub gateway: Ipv4Addr,
    /// How many configs (peers) each team gets.
    pub peers_per_team: u32,
    /// Whether checkers and every peer reach a team's services from one source address.
    pub anonymise: bool,
    /// The TCP port of the first team's shell entry on the gateway's address; the team at
    /// position `i` of the scenario has `shell_port + i`.
    pub shell_port: u16,
}

impl VpnRules {
    /// `host:port`, as a team's config names the gateway.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.listen_host, self.listen_port)
    }

    /// The shell entry's port of the team at `position` in the scenario's team list, `None`
    /// past the last port.
    pub fn shell_port_of(&self, position: usize) -> Option<u16> {
        u16::try_from(usize::from(self.shell_port).checked_add(position)?).ok()
    }
}

/// Whether `range` holds one block per team: aligned blocks of `peers` addresses rounded up to
/// a power of two, leaving out the blocks that hold the range's first or last address or the
/// gateway (which must be inside the range). This is the capacity `gongfang-vpn`'s address plan
/// gives teams, reckoned without building the plan.
pub fn vpn_range_fits(range: Ipv4Net, gateway: Ipv4Addr, teams: usize, peers: u32) -> bool {
    let Some(block) = peers.max(1).checked_next_power_of_two() else { return false };
    let block_bits = block.trailing_zeros();
    let host_bits = 32 - u32::from(range.prefix.min(32));
    if block_bits > host_bits {
        return false;
    }
    let size = 1u64 << host_bits;
    let start = u64::from(u32::from(range.network()));
    let block_of = |a: u64| (a - start) >> block_bits;
    let mut reserved = [block_of(start), block_of(start + size - 1), block_of(u64::from(u32::from(gateway)))];
    reserved.sort_unstable();
    let reserved = 1 + reserved.windows(2).filter(|w| w[0] != w[1]).count();
    let blocks = size >> block_bits;
    blocks.saturating_sub(reserved as u64) >= teams as u64
}

/// The smallest range with the same start as `range` and a shorter prefix that fits, if any.
pub fn vpn_range_that_fits(range: Ipv4Net, gateway: Ipv4Addr, teams: usize, peers: u32) -> Option<Ipv4Net> {
    (0..range.prefix)
        .rev()
        .map(|prefix| Ipv4Net { addr: Ipv4Net { addr: range.addr, prefix }.network(), prefix })
        .find(|wider| vpn_range_fits(*wider, gateway, teams, peers))
}

/// An IPv4 network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    /// Parses `a.b.c.d/n`; the address must be the network's first address.
    pub fn parse(s: &str) -> Result<Ipv4Net, String> {
        let (addr, prefix) = s.split_once('/').ok_or_else(|| format!("`{s}` has no `/prefix`"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| format!("`{addr}` is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("`/{prefix}` is not a prefix length between 0 and 32"))?;
        let net = Ipv4Net { addr, prefix };
        if net.network() != addr {
            return Err(format!("`{s}` has host bits set; the network is {}/{prefix}", net.network()));
        }
        Ok(net)
    }

    fn mask(self) -> u32 {
        if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) }
    }

    /// The first address of the network.
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    pub fn overlaps(self, other: Ipv4Net) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// The `n`-th address of the network (0 is the network address itself).
    pub fn host(self, n: u32) -> Option<Ipv4Addr> {
        let size = if self.prefix == 0 { u64::from(u32::MAX) + 1 } else { 1u64 << (32 - self.prefix) };
        (u64::from(n) < size).then(|| Ipv4Addr::from(u32::from(self.network()) + n))
    }
}

impl std::fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Scenario {
    pub fn team(&self, id: TeamId) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == id)
    }

    pub fn service(&self, id: ServiceId) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    /// The team whose network holds `ip`, for attributing TCP submissions.
    pub fn team_by_address(&self, ip: Ipv4Addr) -> Option<&Team> {
        self.teams.iter().find(|t| t.network.contains(ip))
    }

    /// Teams that run service instances.
    pub fn defenders(&self) -> impl Iterator<Item = &Team> {
        self.teams.iter().filter(|t| t.role.defends())
    }

    /// A red-team / blue-team drill rather than a symmetric one: some team (NOP teams aside)
    /// only attacks or only defends, or reports are ranked `red-blue` or `rules`.
    pub fn is_red_blue(&self) -> bool {
        is_red_blue(&self.teams, &self.reports)
    }
}

/// See [`Scenario::is_red_blue`].
pub(crate) fn is_red_blue(teams: &[Team], reports: &ReportRules) -> bool {
    (reports.enabled && reports.scoring.ranks_sides()) || teams.iter().any(|t| !t.nop && t.role != Role::Both)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let a = Ipv4Net::parse("10.60.1.0/24").unwrap();
        let b = Ipv4Net::parse("10.60.0.0/16").unwrap();
        let c = Ipv4Net::parse("10.60.2.0/24").unwrap();
        assert!(a.overlaps(b) && b.overlaps(a));
        assert!(!a.overlaps(c));
        assert_eq!(a.host(2), Some(Ipv4Addr::new(10, 60, 1, 2)));
        assert_eq!(a.host(256), None);
        assert!(Ipv4Net::parse("10.60.1.5/24").unwrap_err().contains("host bits"));
        assert!(Ipv4Net::parse("10.60.1.0").is_err());
        assert!(Ipv4Net::parse("10.60.1.0/33").is_err());
    }
}
