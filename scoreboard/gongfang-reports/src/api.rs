//! The routes: teams file, list, read and appeal their own reports; judges log in (and out),
//! work the queue (each report beside what the platform recorded), and rule. Every ruling is
//! audited by the store and published as a [`GameEvent::ReportRuled`] carrying only the fact and points.

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use gongfang_core::Secret;
use gongfang_core::event::GameEvent;
use gongfang_core::report::{Decision, Filing, ReportStatus, RulingStage, check_report};
use gongfang_store::reports::ReportRecord;
use serde::{Deserialize, Serialize};

use crate::auth::{self, Caller};
use crate::error::ReportsError;
use crate::matching::{Context, context};
use crate::state::ReportsState;
use crate::upload::{self, json_body};
use crate::view::{Audience, ReportView, Worth, report_view};

/// The report and judging routes, to be merged into the web application.
pub fn router(state: ReportsState) -> Router {
    let filing_limit = usize::try_from(upload::filing_limit(&state)).unwrap_or(usize::MAX);
    let patch_limit = usize::try_from(state.scenario().patches.max_size).unwrap_or(usize::MAX);
    Router::new()
        .route("/api/reports", post(file).get(list_own).layer(DefaultBodyLimit::max(filing_limit)))
        .route("/api/reports/{id}", get(read))
        .route("/api/reports/{id}/evidence/{evidence}", get(evidence))
        .route("/api/reports/{id}/appeal", post(appeal))
        .route(
            "/api/shell-keys",
            get(crate::shell_keys::list)
                .post(crate::shell_keys::add)
                .layer(DefaultBodyLimit::max(crate::shell_keys::MAX_BODY)),
        )
        .route("/api/shell-keys/{id}", axum::routing::delete(crate::shell_keys::remove))
        .route(
            "/api/patches",
            post(crate::patches::submit).get(crate::patches::list).layer(DefaultBodyLimit::max(patch_limit)),
        )
        .route("/api/patches/source", get(crate::patches::source))
        .route("/api/patches/rollback", post(crate::patches::rollback))
        .route("/api/patches/{id}", get(crate::patches::read))
        .route("/api/admin/drill", get(crate::admin::drill))
        .route("/api/admin/pause", post(crate::admin::pause))
        .route("/api/admin/resume", post(crate::admin::resume))
        .route("/api/admin/extend", post(crate::admin::extend))
        .route("/api/admin/freeze", post(crate::admin::freeze))
        .route("/api/admin/adjustments", get(crate::adjust::list).post(crate::adjust::adjust))
        .route("/api/admin/teams", get(crate::teams::list))
        .route("/api/admin/teams/token", post(crate::teams::rotate_token))
        .route("/api/admin/teams/disable", post(crate::teams::disable))
        .route("/api/admin/teams/pack", post(crate::pack::pack))
        .route("/api/admin/teams/after-action", get(crate::after_action::console_download))
        .route(
            "/api/admin/teams/import",
            post(crate::admission::import).layer(DefaultBodyLimit::max(crate::admission::MAX_IMPORT_BYTES)),
        )
        .route("/api/admin/announce", post(crate::admin::announce).layer(DefaultBodyLimit::max(crate::admin::MAX_BODY)))
        .route("/api/admin/checklist", get(crate::console::checklist))
        .route("/api/admin/report-stats", get(crate::stats::stats))
        .route("/api/admin/injects", get(crate::injects::progress).post(crate::injects::post))
        .route("/api/admin/audit", get(crate::console::audit))
        .route("/api/admin/service", post(crate::control::control))
        .route("/api/admin/checker-log", get(crate::console::checker_log))
        .route("/api/admin/defective", get(crate::console::defects).post(crate::console::mark_defect))
        .route(
            crate::session::LOGIN_PATH,
            post(crate::session::login).get(crate::session::current).delete(crate::session::logout),
        )
        .route("/api/portal", get(crate::portal::portal))
        .route("/api/portal/vpn", post(crate::vpn_access::reissue))
        .route("/api/portal/token", post(crate::portal::rotate_token))
        .route("/api/portal/after-action", get(crate::after_action::portal_download))
        .route("/api/portal/injects", get(crate::injects::team_list))
        .route("/api/portal/injects/{id}/answer", post(crate::injects::answer))
        .route("/portal", get(crate::pages::portal))
        .route("/console", get(crate::pages::console))
        .route("/static/pages/{name}", get(crate::pages::file))
        .route("/static/pages/i18n/{name}", get(crate::pages::catalogue_file))
        .route("/api/judge/login", post(login))
        .route("/api/judge/logout", post(logout))
        .route("/api/judge/queue", get(queue))
        .route("/api/judge/reports", get(list_all))
        .route("/api/judge/reports/{id}", get(judge_read))
        .route("/api/judge/reports/{id}/context", get(crate::workbench::report_context))
        .route("/api/judge/reports/{id}/evidence/{evidence}/view", get(crate::workbench::evidence_view))
        .route("/evidence/{report}/{evidence}/{expires}/{signature}", get(crate::evidence_origin::serve))
        .route("/api/judge/workbench", get(crate::workbench::setup))
        .route("/api/judge/workbench/queue", get(crate::workbench::queue))
        .route("/judge", get(crate::pages::judge))
        .route("/api/judge/reports/{id}/ruling", post(rule))
        .route("/api/judge/reports/{id}/appeal-ruling", post(rule_appeal))
        .route("/api/judge/translations", get(crate::translations::translations))
        .route("/api/judge/injects", get(crate::injects::judge_list))
        .route("/api/judge/injects/{id}/grade", post(crate::injects::grade))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::session::csrf_guard))
        .layer(axum::middleware::map_response(nosniff))
        .layer(axum::middleware::from_fn(auth::with_peer))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::evidence_origin::only_evidence))
        .with_state(state)
}

/// Every answer says `nosniff`, so no browser takes a report's JSON (text a team wrote) for a
/// page or a script.
async fn nosniff(mut response: Response) -> Response {
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

type Reply<T> = Result<T, ReportsError>;

pub(crate) fn parse_id(raw: &str, what: &str) -> Reply<i64> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ReportsError::BadRequest(format!("`{raw}` is not a {what} id; ids are positive integers")))
}

async fn file(State(state): State<ReportsState>, req: Request) -> Reply<(StatusCode, axum::Json<ReportView>)> {
    let team = auth::team(&state, req.headers()).await?;
    let s = state.scenario();
    if !s.reports.enabled {
        return Err(ReportsError::ReportsOff);
    }
    if s.team(team).is_none() {
        return Err(ReportsError::NotInScenario(team.0));
    }
    // The team's filing limits, before a byte of the body is read; checked again when the
    // report is stored, for filings racing each other.
    let rules = &s.reports;
    let used = state.store().filing_usage(team).await?;
    if used.reports >= u64::from(rules.max_reports_per_team) {
        return Err(ReportsError::ReportLimit { limit: rules.max_reports_per_team });
    }
    let budget = upload::Budget { team, limit: rules.max_evidence_bytes_per_team, filed: used.evidence_bytes };
    let mut staged = upload::Staged::new(state.store().clone());
    let now = state.now();
    let filed = async {
        let draft = upload::read_filing(&state, &budget, req, &mut staged).await?;
        let started = state.started().await?;
        let extended = state.store().drill_extension().await?;
        let checked = check_report(&draft, &Filing { scenario: s, filer: team, now, started, extended })
            .map_err(|problems| ReportsError::InvalidReport { problems })?;
        Ok::<_, ReportsError>(state.store().file_staged_report(team, &checked, staged.files(), rules, now).await?)
    }
    .await;
    match filed {
        Ok(record) => {
            staged.filed();
            // A report just filed is pending: worth nothing yet, whatever counts.
            Ok((StatusCode::CREATED, axum::Json(report_view(s, &record, &Worth::Judged, now, Audience::Team))))
        }
        Err(e) => {
            // Refused: what the filing wrote is deleted before the answer says so.
            staged.discard().await;
            Err(e)
        }
    }
}

async fn list_own(State(state): State<ReportsState>, headers: HeaderMap) -> Reply<axum::Json<Vec<ReportView>>> {
    let team = auth::team(&state, &headers).await?;
    let now = state.now();
    let list = state.store().reports_of_team(team).await?;
    let worth = Worth::read(state.store(), state.scenario()).await?;
    Ok(axum::Json(list.iter().map(|r| report_view(state.scenario(), r, &worth, now, Audience::Team)).collect()))
}

/// A report its filing team (or a judge) may see.
async fn visible(state: &ReportsState, caller: &Caller, id: i64) -> Reply<ReportRecord> {
    match caller {
        Caller::Team(team) => Ok(state.store().team_report(*team, id).await?),
        Caller::Judge(_) => state.store().report(id).await?.ok_or(ReportsError::UnknownReport(id)),
    }
}

fn audience(caller: &Caller) -> Audience {
    match caller {
        Caller::Team(_) => Audience::Team,
        Caller::Judge(account) => Audience::Judge(account.id),
    }
}

async fn read(
    State(state): State<ReportsState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Reply<axum::Json<ReportView>> {
    let id = parse_id(&id, "report")?;
    let caller = auth::caller(&state, &headers).await?;
    let record = visible(&state, &caller, id).await?;
    let worth = Worth::read(state.store(), state.scenario()).await?;
    Ok(axum::Json(report_view(state.scenario(), &record, &worth, state.now(), audience(&caller))))
}

async fn evidence(
    State(state): State<ReportsState>,
    Path((id, evidence)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply<Response> {
    let (id, evidence) = (parse_id(&id, "report")?, parse_id(&evidence, "evidence")?);
    let caller = auth::caller(&state, &headers).await?;
    visible(&state, &caller, id).await?;
    let info = state
        .store()
        .evidence_info(id, evidence)
        .await?
        .ok_or(ReportsError::UnknownEvidence { report: id, evidence })?;
    let name: String =
        info.file_name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' }).collect();
    // Sent a stored chunk at a time, so a large file is never in the server's memory whole.
    let store = state.store().clone();
    let chunks = futures::stream::try_unfold(0u32, move |seq| {
        let store = store.clone();
        async move {
            let chunk = store.evidence_chunk(id, evidence, seq).await.map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>(chunk.map(|c| (bytes::Bytes::from(c), seq + 1)))
        }
    });
    let mut response = Response::new(Body::from_stream(chunks));
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(info.size));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&info.content_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    // Evidence is whatever a team uploaded: never let a browser run it.
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    h.insert("Content-Security-Policy", HeaderValue::from_static("sandbox"));
    Ok(response)
}

/// An appeal, as a team sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppealBody {
    reason: String,
}

async fn appeal(
    State(state): State<ReportsState>,
    Path(id): Path<String>,
    req: Request,
) -> Reply<axum::Json<ReportView>> {
    let id = parse_id(&id, "report")?;
    let team = auth::team(&state, req.headers()).await?;
    let (parts, body) = req.into_parts();
    let body: AppealBody = json_body(&parts.headers, body, state.settings().max_json_body).await?;
    let now = state.now();
    let record = state.store().appeal_report(id, team, &body.reason, &state.scenario().reports, now).await?;
    let worth = Worth::read(state.store(), state.scenario()).await?;
    Ok(axum::Json(report_view(state.scenario(), &record, &worth, now, Audience::Team)))
}

/// A judge's login.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    name: String,
    password: Secret,
}

/// A judge's session.
#[derive(Debug, Serialize)]
struct Session {
    /// Send as `Authorization: Bearer <token>`.
    #[serde(serialize_with = "gongfang_core::secret::serialize_exposed")]
    token: Secret,
    expires_at: DateTime<Utc>,
    judge: String,
}

/// A judge logs in with HTTP basic credentials or a JSON body `{"name", "password"}`, and
/// gets a session token, stored (as a keyed hash) in the database.
async fn login(State(state): State<ReportsState>, req: Request) -> Reply<axum::Json<Session>> {
    let (parts, body) = req.into_parts();
    let login = match auth::basic_credentials(&parts.headers)? {
        Some((name, password)) => Login { name, password },
        None => json_body(&parts.headers, body, 16 * 1024).await?,
    };
    let account = auth::login(&state, &login.name, &login.password).await?;
    let now = state.now();
    let ttl = state.settings().session_ttl;
    let expires_at = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12));
    let token = state.store().create_session(&account, ttl, now).await?;
    tracing::info!(judge = %account.name, "judge logged in");
    Ok(axum::Json(Session { token, expires_at, judge: account.name }))
}

/// Ends the session whose token the request carries.
async fn logout(State(state): State<ReportsState>, headers: HeaderMap) -> Reply<StatusCode> {
    let judge = auth::judge(&state, &headers).await?;
    let token = auth::session_token(&headers)?.ok_or(ReportsError::NoJudgeCredentials)?;
    state.store().revoke_session(token).await?;
    tracing::info!(judge = %judge.name, "judge logged out");
    Ok(StatusCode::NO_CONTENT)
}

/// A report beside what the platform recorded around it.
#[derive(Debug, Serialize)]
struct Judged {
    report: ReportView,
    context: Context,
}

/// `?limit=` and `?after=` of a paginated list.
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    pub(crate) limit: Option<String>,
    pub(crate) after: Option<String>,
}

/// Reports per page unless `?limit=` says otherwise, and the most it may say.
const DEFAULT_PAGE: u64 = 50;
const MAX_PAGE: u64 = 200;

impl PageQuery {
    pub(crate) fn parse(&self) -> Reply<(Option<i64>, u64)> {
        let limit = match self.limit.as_deref() {
            None => DEFAULT_PAGE,
            Some(raw) => raw.parse::<u64>().ok().filter(|n| (1..=MAX_PAGE).contains(n)).ok_or_else(|| {
                ReportsError::BadRequest(format!("`limit={raw}` is not a page size; use a number from 1 to {MAX_PAGE}"))
            })?,
        };
        let after = match self.after.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(raw.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ReportsError::BadRequest(format!(
                    "`after={raw}` is not a report id; pass the `next` of the page before, or leave it out for the first page"
                ))
            })?),
        };
        Ok((after, limit))
    }
}

/// A page's answer: the list as the body, and where the next page starts in the `Link`
/// (`rel="next"`) and `X-Next-After` headers, absent on the last page. The body stays a plain
/// list, so a client that reads one page sees what it always saw.
pub(crate) fn paged<T: Serialize>(path: &str, extra: &str, items: Vec<T>, next: Option<i64>, limit: u64) -> Response {
    let mut response = axum::response::IntoResponse::into_response(axum::Json(items));
    if let Some(next) = next {
        let h = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!("<{path}?{extra}after={next}&limit={limit}>; rel=\"next\"")) {
            h.insert(header::LINK, v);
        }
        h.insert("X-Next-After", HeaderValue::from(next));
    }
    response
}

async fn queue(State(state): State<ReportsState>, Query(q): Query<PageQuery>, headers: HeaderMap) -> Reply<Response> {
    let judge = auth::judge(&state, &headers).await?;
    let (after, limit) = q.parse()?;
    let now = state.now();
    let page = state.store().report_queue_page(after, limit).await?;
    let worth = Worth::read(state.store(), state.scenario()).await?;
    let mut out = Vec::with_capacity(page.reports.len());
    for record in &page.reports {
        let context = context(&state, record).await?;
        let report = report_view(state.scenario(), record, &worth, now, Audience::Judge(judge.id));
        out.push(Judged { report, context });
    }
    Ok(paged("/api/judge/queue", "", out, page.next, limit))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

async fn list_all(
    State(state): State<ReportsState>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Reply<Response> {
    let judge = auth::judge(&state, &headers).await?;
    let (after, limit) = q.page.parse()?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(ReportStatus::from_name(s).ok_or_else(|| {
            ReportsError::BadRequest(format!("unknown status `{s}`; use pending, disputed, ruled, appealed or final"))
        })?),
    };
    let now = state.now();
    let page = state.store().list_reports_page(status, after, limit).await?;
    let worth = Worth::read(state.store(), state.scenario()).await?;
    let list: Vec<ReportView> =
        page.reports.iter().map(|r| report_view(state.scenario(), r, &worth, now, Audience::Judge(judge.id))).collect();
    let extra = status.map(|s| format!("status={}&", s.as_str())).unwrap_or_default();
    Ok(paged("/api/judge/reports", &extra, list, page.next, limit))
}

async fn judge_read(
    State(state): State<ReportsState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Reply<axum::Json<Judged>> {
    let id = parse_id(&id, "report")?;
    let judge = auth::judge(&state, &headers).await?;
    let record = state.store().report(id).await?.ok_or(ReportsError::UnknownReport(id))?;
    let context = context(&state, &record).await?;
    let worth = Worth::read(state.store(), state.scenario()).await?;
    let report = report_view(state.scenario(), &record, &worth, state.now(), Audience::Judge(judge.id));
    Ok(axum::Json(Judged { report, context }))
}

async fn rule(state: State<ReportsState>, id: Path<String>, req: Request) -> Reply<axum::Json<ReportView>> {
    ruling(state, id, req, RulingStage::First).await
}

async fn rule_appeal(state: State<ReportsState>, id: Path<String>, req: Request) -> Reply<axum::Json<ReportView>> {
    ruling(state, id, req, RulingStage::Appeal).await
}

async fn ruling(
    State(state): State<ReportsState>,
    Path(id): Path<String>,
    req: Request,
    stage: RulingStage,
) -> Reply<axum::Json<ReportView>> {
    let id = parse_id(&id, "report")?;
    let judge = auth::judge(&state, req.headers()).await?;
    let (parts, body) = req.into_parts();
    let decision: Decision = json_body(&parts.headers, body, state.settings().max_json_body).await?;
    let now = state.now();
    let rules = &state.scenario().reports;
    let record = match stage {
        RulingStage::First => state.store().rule_report(id, &judge, &decision, rules, now).await?,
        RulingStage::Appeal => state.store().rule_appeal(id, &judge, &decision, rules, now).await?,
    };
    let worth = Worth::read(state.store(), state.scenario()).await?;
    let view = report_view(state.scenario(), &record, &worth, now, Audience::Judge(judge.id));
    // In a two-judge drill a first score rules nothing yet, and a second may dispute the report.
    if let Some(ruling) = record.ruling(stage) {
        state.publish(GameEvent::ReportRuled {
            report: record.id,
            team: record.team,
            kind: record.report.kind,
            stage,
            valid: ruling.decision.valid,
            points: view.points,
        });
    }
    Ok(axum::Json(view))
}
