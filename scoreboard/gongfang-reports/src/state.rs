//! What the report routes share: the store, the scenario, the event channel, the clock, the
//! log source, the failure back-off and the limits. Judges' sessions live in the store.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gongfang_core::event::GameEvent;
use gongfang_core::scenario::Scenario;
use gongfang_core::throttle::Backoff;
use gongfang_store::Store;
use tokio::sync::broadcast;

use crate::logs::{LogSource, NoLogs};

/// The time of day, injected so tests can say when "now" is.
pub trait Now: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemNow;

impl Now for SystemNow {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Content types accepted for evidence files unless [`Settings::evidence_types`] says otherwise.
pub const DEFAULT_EVIDENCE_TYPES: &[&str] = &[
    "text/plain",
    "text/csv",
    "application/json",
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/zip",
    "application/gzip",
    "application/vnd.tcpdump.pcap",
    "application/x-pcapng",
];

/// Limits and tuning of the report routes; the scenario's `[reports]` table gives the rest.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest JSON request body (a report without files, a ruling, an appeal).
    pub max_json_body: usize,
    /// Room for the multipart framing and the `report` part, on top of the evidence limit.
    pub multipart_overhead: u64,
    /// Most evidence files per report.
    pub max_files: usize,
    /// Evidence content types accepted (lowercase, without parameters).
    pub evidence_types: Vec<String>,
    /// How long a login session (a judge's, a team's portal, an organiser's console) lasts.
    pub session_ttl: Duration,
    /// Whether session cookies say `Secure` (sent over HTTPS only): set it when the drill
    /// serves HTTPS itself or behind a proxy that does.
    pub secure_cookies: bool,
    /// Records searched around a report's window: this many ticks on either side.
    pub match_margin_ticks: u32,
    /// Most container log lines shown beside one report.
    pub max_log_lines: usize,
    /// A host name of its own for evidence images (`--evidence-origin`): the workbench loads
    /// them from short-lived signed addresses there; `None` serves them from the drill's own
    /// origin under a CSP sandbox.
    pub evidence_origin: Option<crate::evidence_origin::EvidenceOrigin>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_json_body: 1 << 20,
            multipart_overhead: 1 << 20,
            max_files: 20,
            evidence_types: DEFAULT_EVIDENCE_TYPES.iter().map(|s| (*s).to_owned()).collect(),
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            match_margin_ticks: 1,
            max_log_lines: 200,
            evidence_origin: None,
        }
    }
}

/// Everything the report routes share. Cheap to clone.
#[derive(Clone)]
pub struct ReportsState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Store,
    pub scenario: Arc<Scenario>,
    pub events: broadcast::Sender<GameEvent>,
    pub now: Arc<dyn Now>,
    pub logs: Arc<dyn LogSource>,
    pub control: Arc<dyn crate::control::ServiceControl>,
    pub vpn: Arc<dyn crate::vpn_access::VpnAccess>,
    pub admission: Arc<dyn crate::admission::TeamAdmission>,
    pub settings: Settings,
    pub backoff: Arc<Backoff>,
    pub uploads: crate::upload::Uploads,
    /// Whether the drill builds submitted patches (it runs on a container engine).
    pub patch_builds: bool,
    /// After-action reports are written one at a time: each reads the whole drill.
    pub after_actions: Arc<tokio::sync::Semaphore>,
    /// Signs evidence addresses on the evidence origin; drawn when the process starts, so a
    /// restart makes every earlier address useless.
    pub evidence_key: [u8; 32],
}

impl std::fmt::Debug for ReportsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportsState").field("drill", &self.inner.scenario.drill.slug).finish_non_exhaustive()
    }
}

impl ReportsState {
    /// State for the report routes: rulings are published on `events`; the clock is the
    /// system's and no container logs are shown until [`ReportsState::with_logs`] says where
    /// they come from.
    pub fn new(store: Store, scenario: Arc<Scenario>, events: broadcast::Sender<GameEvent>) -> ReportsState {
        ReportsState {
            inner: Arc::new(Inner {
                store,
                scenario,
                events,
                now: Arc::new(SystemNow),
                logs: Arc::new(NoLogs),
                control: Arc::new(crate::control::NoServiceControl),
                vpn: Arc::new(crate::vpn_access::NoVpnAccess),
                admission: Arc::new(crate::admission::NoTeamAdmission),
                settings: Settings::default(),
                backoff: Arc::new(Backoff::default()),
                uploads: Default::default(),
                patch_builds: false,
                after_actions: Arc::new(tokio::sync::Semaphore::new(1)),
                evidence_key: rand::random(),
            }),
        }
    }

    fn rebuild(self, f: impl FnOnce(&mut Inner)) -> ReportsState {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            store: shared.store.clone(),
            scenario: shared.scenario.clone(),
            events: shared.events.clone(),
            now: shared.now.clone(),
            logs: shared.logs.clone(),
            control: shared.control.clone(),
            vpn: shared.vpn.clone(),
            admission: shared.admission.clone(),
            settings: shared.settings.clone(),
            backoff: shared.backoff.clone(),
            uploads: Default::default(),
            patch_builds: shared.patch_builds,
            after_actions: shared.after_actions.clone(),
            evidence_key: shared.evidence_key,
        });
        let mut inner = inner;
        f(&mut inner);
        ReportsState { inner: Arc::new(inner) }
    }

    /// Uses `now` as the clock (tests, replays).
    pub fn with_clock(self, now: Arc<dyn Now>) -> ReportsState {
        self.rebuild(|i| i.now = now)
    }

    /// Shows the target's container logs from `logs` beside each report.
    pub fn with_logs(self, logs: Arc<dyn LogSource>) -> ReportsState {
        self.rebuild(|i| i.logs = logs)
    }

    /// Restarts and resets teams' services through `control` (the container engine).
    pub fn with_service_control(self, control: Arc<dyn crate::control::ServiceControl>) -> ReportsState {
        self.rebuild(|i| i.control = control)
    }

    pub(crate) fn service_control(&self) -> &dyn crate::control::ServiceControl {
        &*self.inner.control
    }

    /// Issues teams' fresh VPN configs through `vpn` (the drill's gateway).
    pub fn with_vpn_access(self, vpn: Arc<dyn crate::vpn_access::VpnAccess>) -> ReportsState {
        self.rebuild(|i| i.vpn = vpn)
    }

    pub(crate) fn vpn_access(&self) -> &dyn crate::vpn_access::VpnAccess {
        &*self.inner.vpn
    }

    /// Adds teams to the running drill through `admission` (the scenario file grown, the
    /// drill started again with it).
    pub fn with_team_admission(self, admission: Arc<dyn crate::admission::TeamAdmission>) -> ReportsState {
        self.rebuild(|i| i.admission = admission)
    }

    pub(crate) fn team_admission(&self) -> &dyn crate::admission::TeamAdmission {
        &*self.inner.admission
    }

    pub fn with_settings(self, settings: Settings) -> ReportsState {
        self.rebuild(|i| i.settings = settings)
    }

    /// Counts wrong credentials in `backoff`, shared with the drill's other servers, instead
    /// of a back-off of its own.
    pub fn with_backoff(self, backoff: Arc<Backoff>) -> ReportsState {
        self.rebuild(|i| i.backoff = backoff)
    }

    /// Takes submitted patches: the drill runs the pipeline that builds them.
    pub fn with_patch_builds(self) -> ReportsState {
        self.rebuild(|i| i.patch_builds = true)
    }

    pub(crate) fn builds_patches(&self) -> bool {
        self.inner.patch_builds
    }

    pub(crate) fn backoff(&self) -> &Backoff {
        &self.inner.backoff
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn scenario(&self) -> &Scenario {
        &self.inner.scenario
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub(crate) fn evidence_key(&self) -> &[u8; 32] {
        &self.inner.evidence_key
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.now.now()
    }

    /// When tick 0 started: the scenario's fixed start, else what the engine stored.
    pub(crate) async fn started(&self) -> Result<Option<DateTime<Utc>>, gongfang_store::StoreError> {
        if let Some(start) = self.inner.scenario.drill.start {
            return Ok(Some(start));
        }
        Ok(self.inner.store.drill_state().await?.started_at)
    }

    /// A team's slug (its id, for a team the scenario no longer has).
    pub(crate) fn team_slug(&self, team: gongfang_core::TeamId) -> String {
        self.inner.scenario.team(team).map_or_else(|| team.to_string(), |t| t.slug.clone())
    }

    /// How the audit log names a team: `team SLUG`.
    pub(crate) fn team_actor(&self, team: gongfang_core::TeamId) -> String {
        format!("team {}", self.team_slug(team))
    }

    /// Publishes a game event; having no subscriber is fine.
    pub(crate) fn publish(&self, event: GameEvent) {
        let _ = self.inner.events.send(event);
    }
}
