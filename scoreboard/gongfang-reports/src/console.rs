//! The organisers' console's own API: the start-of-drill checklist (`GET /api/admin/checklist`:
//! every defending team's services in the latest tick, up or not, checker passing or not), the
//! audit log with filters (`GET /api/admin/audit`), what a checker did and logged against a
//! team's service in a tick (`GET /api/admin/checker-log`), and results marked defective
//! (`/api/admin/defective`: a checker's or the platform's fault that must not cost a team).
//! Organisers and observers read them; organisers mark; the console's other changes go
//! through the live admin API ([`crate::admin`]).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use gongfang_core::{AccountRole, ServiceId, TeamId, Tick, Verdict};
use gongfang_store::{Account, AuditFilter};
use serde::{Deserialize, Serialize};

use crate::admin;
use crate::error::ReportsError;
use crate::portal::Names;
use crate::state::ReportsState;

type Reply<T> = Result<T, ReportsError>;

/// Audit entries per page unless `?limit=` says otherwise, and the most it may say.
const DEFAULT_AUDIT_PAGE: u64 = 100;
const MAX_AUDIT_PAGE: u64 = 500;
/// Longest actor or action filter, in bytes.
const MAX_FILTER_LEN: usize = 200;

/// The calling organiser or observer (both read the console).
pub(crate) async fn reader(state: &ReportsState, headers: &HeaderMap) -> Reply<Account> {
    let account = admin::account(state, headers).await?;
    if !matches!(account.role, AccountRole::Organiser | AccountRole::Observer) {
        return Err(ReportsError::OrganisersOnly { role: account.role.as_str() });
    }
    Ok(account)
}

/// Whether the drill is ready: one row per defending team and service.
#[derive(Debug, Serialize)]
pub(crate) struct Checklist {
    /// The tick the rows are of (`null` before the first tick has results).
    tick: Option<Tick>,
    rows: Vec<ChecklistRow>,
    /// Rows whose service is up (`ok`) with its checker passing.
    ready: usize,
    /// Rows of teams in the drill: the services of a team organisers took out are recorded
    /// down on purpose and count in neither `ready` nor `playing`.
    playing: usize,
    /// Whether teams connect over the drill's VPN (then `GET /api/connections` lists them).
    vpn: bool,
}

#[derive(Debug, Serialize)]
struct ChecklistRow {
    team: TeamId,
    team_slug: String,
    team_name: Names,
    service: ServiceId,
    service_slug: String,
    service_name: Names,
    /// The worst verdict of the tick (`null`: no result yet).
    verdict: Option<Verdict>,
    /// The service answers (its verdict is neither `down` nor missing).
    up: bool,
    /// The checker ran without an error of its own.
    checker_passing: bool,
    /// The team was taken out of the drill by the organisers.
    out_of_drill: bool,
}

/// `GET /api/admin/checklist`.
pub(crate) async fn checklist(State(state): State<ReportsState>, headers: HeaderMap) -> Reply<Json<Checklist>> {
    reader(&state, &headers).await?;
    let scenario = state.scenario();
    // The latest tick with results: a closed one (ticks played while paused have none).
    let tick = state.store().latest_checked_tick().await?;
    let mut verdicts: BTreeMap<(TeamId, ServiceId), Verdict> = BTreeMap::new();
    if let Some(tick) = tick {
        for r in state.store().check_results(tick, None).await? {
            verdicts.entry((r.team, r.service)).and_modify(|v| *v = v.worst(r.verdict)).or_insert(r.verdict);
        }
    }
    let out = state.store().disabled_teams().await?;
    let mut rows = Vec::new();
    for team in scenario.teams.iter().filter(|t| t.role.defends()) {
        for service in &scenario.services {
            let verdict = verdicts.get(&(team.id, service.id)).copied();
            rows.push(ChecklistRow {
                team: team.id,
                team_slug: team.slug.clone(),
                team_name: (&team.name).into(),
                service: service.id,
                service_slug: service.slug.clone(),
                service_name: (&service.name).into(),
                verdict,
                up: verdict.is_some_and(|v| v != Verdict::Down),
                checker_passing: verdict.is_some_and(|v| v != Verdict::CheckerError),
                out_of_drill: out.contains(&team.id),
            });
        }
    }
    let playing = rows.iter().filter(|r| !r.out_of_drill);
    let ready = playing.clone().filter(|r| r.verdict == Some(Verdict::Ok)).count();
    let playing = playing.count();
    Ok(Json(Checklist { tick, rows, ready, playing, vpn: scenario.vpn.is_some() }))
}

/// `?actor=`, `?action=`, `?before=` and `?limit=` of the audit log.
#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

/// One audit entry as the console shows it.
#[derive(Debug, Serialize)]
struct AuditView {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    detail: serde_json::Value,
}

#[derive(Debug, Serialize)]
pub(crate) struct AuditPage {
    entries: Vec<AuditView>,
    /// Pass as `?before=` for the next (older) page; `null` on the last page.
    next_before: Option<i64>,
}

fn filter_text(field: &str, value: Option<String>) -> Reply<Option<String>> {
    let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else { return Ok(None) };
    if value.len() > MAX_FILTER_LEN {
        return Err(ReportsError::BadRequest(format!("`{field}` is longer than {MAX_FILTER_LEN} bytes; shorten it")));
    }
    Ok(Some(value))
}

/// `GET /api/admin/audit`: the audit log newest first, filtered.
pub(crate) async fn audit(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
) -> Reply<Json<AuditPage>> {
    let account = reader(&state, &headers).await?;
    let before = match query.before.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        None => None,
        Some(raw) => Some(crate::api::parse_id(raw, "audit entry")?),
    };
    let limit = match query.limit.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
        None => DEFAULT_AUDIT_PAGE,
        Some(raw) => raw.parse::<u64>().ok().filter(|l| (1..=MAX_AUDIT_PAGE).contains(l)).ok_or_else(|| {
            ReportsError::BadRequest(format!("`limit` must be a whole number from 1 to {MAX_AUDIT_PAGE}; got `{raw}`"))
        })?,
    };
    let filter = AuditFilter {
        actor: filter_text("actor", query.actor)?,
        action: filter_text("action", query.action)?,
        before,
        // Observers read the reports' anonymised counts, not who filed or ruled what.
        without_reports: account.role == AccountRole::Observer,
    };
    let entries = state.store().search_audit(&filter, limit).await?;
    let next_before = if entries.len() as u64 == limit { entries.last().map(|e| e.id) } else { None };
    Ok(Json(AuditPage {
        entries: entries
            .into_iter()
            .map(|e| AuditView { id: e.id, at: e.at, actor: e.actor, action: e.action, detail: e.detail })
            .collect(),
        next_before,
    }))
}

/// Longest reason for marking a result defective, in characters.
pub const MAX_DEFECT_REASON_CHARS: usize = 500;

/// A result to mark defective: a tick of one team's service, and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefectBody {
    tick: u32,
    team: String,
    service: String,
    reason: String,
}

/// One result marked defective, as the console lists it.
#[derive(Debug, Serialize)]
pub(crate) struct DefectView {
    tick: Tick,
    team: String,
    service: String,
    reason: String,
    marked_by: String,
    marked_at: DateTime<Utc>,
}

/// What marking did.
#[derive(Debug, Serialize)]
pub(crate) struct DefectAnswer {
    /// `false` when the result was marked before (the first mark stays).
    marked: bool,
    defect: DefectView,
}

fn defect_view(state: &ReportsState, d: gongfang_store::DefectiveResult) -> DefectView {
    let service = state.scenario().service(d.service).map_or_else(|| d.service.to_string(), |s| s.slug.clone());
    DefectView {
        tick: d.tick,
        team: state.team_slug(d.team),
        service,
        reason: d.reason,
        marked_by: d.marked_by,
        marked_at: d.marked_at,
    }
}

/// `GET /api/admin/defective`: every result marked defective, oldest first.
pub(crate) async fn defects(State(state): State<ReportsState>, headers: HeaderMap) -> Reply<Json<Vec<DefectView>>> {
    reader(&state, &headers).await?;
    let marks = state.store().defective_results().await?;
    Ok(Json(marks.into_iter().map(|d| defect_view(&state, d)).collect()))
}

/// `POST /api/admin/defective`: an organiser marks a scored tick of a defending team's service
/// defective. Scoring then counts it as `checker-error` (it costs the team nothing): the
/// engine scores every tick again before it plays the next. Audited under the account.
pub(crate) async fn mark_defect(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Reply<Json<DefectAnswer>> {
    let account = admin::organiser(&state, &headers).await?;
    let DefectBody { tick, team, service, reason } = crate::upload::json_body(&headers, body, admin::MAX_BODY).await?;
    let scenario = state.scenario();
    let Some(team) = scenario.teams.iter().find(|t| t.slug == team.trim() && t.role.defends()) else {
        return Err(ReportsError::BadRequest(format!(
            "`{team}` is not a defending team of this drill; use a team's slug as the board shows it"
        )));
    };
    let Some(service) = scenario.services.iter().find(|s| s.slug == service.trim()) else {
        return Err(ReportsError::BadRequest(format!("`{service}` is not a service of this drill; use its slug")));
    };
    let reason = admin::bounded("reason", reason.trim(), MAX_DEFECT_REASON_CHARS)?;
    if reason.is_empty() {
        return Err(ReportsError::BadRequest(
            "say why the result is defective (`reason`): it is kept in the audit log".to_owned(),
        ));
    }
    let scored = state.store().tick(Tick(tick)).await?.is_some_and(|t| t.is_scored());
    if !scored {
        return Err(ReportsError::BadRequest(format!(
            "tick {tick} has not been scored yet; mark a tick once it has closed"
        )));
    }
    let now = state.now();
    let marked = state.store().mark_defective(Tick(tick), team.id, service.id, &reason, &account.actor(), now).await?;
    let mark = state
        .store()
        .defective_results()
        .await?
        .into_iter()
        .find(|d| d.tick == Tick(tick) && d.team == team.id && d.service == service.id)
        .ok_or_else(|| ReportsError::NotFound(format!("the mark of tick {tick}")))?;
    Ok(Json(DefectAnswer { marked, defect: defect_view(&state, mark) }))
}

/// `?team=`, `?service=` and `?tick=` of the checker log.
#[derive(Debug, Deserialize)]
pub(crate) struct CheckerLogQuery {
    team: Option<String>,
    service: Option<String>,
    tick: Option<String>,
}

/// One checker action of a tick, with the log only organisers see.
#[derive(Debug, Serialize)]
struct ActionLog {
    action: &'static str,
    /// The flag store acted on (`put` and `get`).
    store: Option<u8>,
    verdict: Verdict,
    /// What the team was told.
    message: String,
    /// What the checker logged: for organisers only.
    log: String,
    duration_ms: u64,
    recorded_at: DateTime<Utc>,
    /// For a `checker-error`: `timeout`, `crash`, `limit` or `platform`.
    fault: Option<gongfang_core::FaultKind>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CheckerLog {
    tick: Option<Tick>,
    team: String,
    service: String,
    actions: Vec<ActionLog>,
}

/// `GET /api/admin/checker-log`: what the checker did and logged against one team's service in
/// one tick (by default the latest closed tick with results), for organisers and observers.
pub(crate) async fn checker_log(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    Query(query): Query<CheckerLogQuery>,
) -> Reply<Json<CheckerLog>> {
    reader(&state, &headers).await?;
    let scenario = state.scenario();
    let wanted = |field: &str, value: Option<String>| {
        value
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ReportsError::BadRequest(format!("say which {field} (`?{field}=SLUG`)")))
    };
    let team_slug = wanted("team", query.team)?;
    let service_slug = wanted("service", query.service)?;
    let Some(team) = scenario.teams.iter().find(|t| t.slug == team_slug && t.role.defends()) else {
        return Err(ReportsError::BadRequest(format!("`{team_slug}` is not a defending team of this drill")));
    };
    let Some(service) = scenario.services.iter().find(|s| s.slug == service_slug) else {
        return Err(ReportsError::BadRequest(format!("`{service_slug}` is not a service of this drill")));
    };
    let tick = match query.tick.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(raw) => Some(Tick(
            raw.parse::<u32>()
                .map_err(|_| ReportsError::BadRequest(format!("`tick` is a tick number (0 or more), not `{raw}`")))?,
        )),
        None => state.store().latest_checked_tick().await?,
    };
    let actions = match tick {
        Some(tick) => state
            .store()
            .check_results(tick, Some(team.id))
            .await?
            .into_iter()
            .filter(|r| r.service == service.id)
            .map(|r| ActionLog {
                action: r.action.as_str(),
                store: r.store.map(|s| s.0),
                verdict: r.verdict,
                message: r.message,
                log: r.log,
                duration_ms: r.duration_ms,
                recorded_at: r.recorded_at,
                fault: r.fault,
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(Json(CheckerLog { tick, team: team.slug.clone(), service: service.slug.clone(), actions }))
}
