//! The judges' workbench's API beside the page (`/judge`): a filtered, paginated queue, a
//! report's recorded context on its own, and evidence shown safely, an image inline only when
//! its bytes are a PNG or a JPEG.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use chrono::Duration;
use gongfang_core::report::{ReasonCode, ReportKind, ReportStatus};
use gongfang_core::scenario::{JudgePanel, Names, RulePreset};
use gongfang_store::reports::ReportFilter;
use serde::{Deserialize, Serialize};

use crate::api::{PageQuery, paged, parse_id};
use crate::auth;
use crate::error::ReportsError;
use crate::matching::{Context, context};
use crate::state::ReportsState;
use crate::view::{Audience, ReportView, Worth, report_view};

type Reply<T> = Result<T, ReportsError>;

/// The queue's filters: `status` (`open`, the default: pending and appealed; or `pending`,
/// `ruled`, `appealed`, `final`, `all`), `team` (the filing team's slug), `kind` (`attack` or
/// `defence`), and age in minutes since filing: `filed_within` (newer than) and `older_than`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueueQuery {
    status: Option<String>,
    team: Option<String>,
    kind: Option<String>,
    filed_within: Option<String>,
    older_than: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// Ages are bounded by a year: more is a typo, not a drill.
const MAX_AGE_MINUTES: i64 = 366 * 24 * 60;

fn minutes(name: &str, raw: Option<&str>) -> Reply<Option<Duration>> {
    match raw {
        None | Some("") => Ok(None),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=MAX_AGE_MINUTES).contains(n))
            .map(|n| Some(Duration::minutes(n)))
            .ok_or_else(|| {
                ReportsError::BadRequest(format!(
                    "`{name}={raw}` is not an age; use minutes from 0 to {MAX_AGE_MINUTES}"
                ))
            }),
    }
}

/// `GET /api/judge/workbench/queue`: one page of the reports the filters select, oldest first,
/// without their context (opening one fetches it), so a page costs a few queries however
/// busy the drill.
pub(crate) async fn queue(
    State(state): State<ReportsState>,
    Query(q): Query<QueueQuery>,
    headers: HeaderMap,
) -> Reply<Response> {
    let judge = auth::judge(&state, &headers).await?;
    let (after, limit) = PageQuery { limit: q.limit.clone(), after: q.after.clone() }.parse()?;
    let s = state.scenario();
    let mut extra = String::new();
    let statuses = match q.status.as_deref() {
        None | Some("") | Some("open") => vec![ReportStatus::Pending, ReportStatus::Disputed, ReportStatus::Appealed],
        Some("all") => Vec::new(),
        Some(raw) => vec![ReportStatus::from_name(raw).ok_or_else(|| {
            ReportsError::BadRequest(format!(
                "unknown status `{raw}`; use open, pending, disputed, ruled, appealed, final or all"
            ))
        })?],
    };
    if let Some(raw) = q.status.as_deref().filter(|r| !r.is_empty()) {
        extra.push_str(&format!("status={raw}&"));
    }
    let team = match q.team.as_deref() {
        None | Some("") => None,
        Some(slug) => {
            let team =
                s.teams.iter().find(|t| t.slug == slug).ok_or_else(|| ReportsError::UnknownTeam(slug.to_owned()))?;
            extra.push_str(&format!("team={slug}&"));
            Some(team.id)
        }
    };
    let kind = match q.kind.as_deref() {
        None | Some("") => None,
        Some(raw) => {
            let kind = ReportKind::from_name(raw)
                .ok_or_else(|| ReportsError::BadRequest(format!("unknown kind `{raw}`; use attack or defence")))?;
            extra.push_str(&format!("kind={}&", kind.as_str()));
            Some(kind)
        }
    };
    let now = state.now();
    let within = minutes("filed_within", q.filed_within.as_deref())?;
    let older = minutes("older_than", q.older_than.as_deref())?;
    if let Some(w) = within {
        extra.push_str(&format!("filed_within={}&", w.num_minutes()));
    }
    if let Some(o) = older {
        extra.push_str(&format!("older_than={}&", o.num_minutes()));
    }
    let filter =
        ReportFilter { statuses, team, kind, filed_from: within.map(|w| now - w), filed_until: older.map(|o| now - o) };
    let page = state.store().filtered_reports_page(&filter, after, limit).await?;
    let worth = Worth::read(state.store(), state.scenario()).await?;
    let list: Vec<ReportView> =
        page.reports.iter().map(|r| report_view(s, r, &worth, now, Audience::Judge(judge.id))).collect();
    Ok(paged("/api/judge/workbench/queue", &extra, list, page.next, limit))
}

/// What the workbench's page needs of the scenario: the teams and services (for the filters
/// and names), the reason codes, and the most points a ruling may give per kind.
#[derive(Debug, Serialize)]
pub(crate) struct Setup {
    teams: Vec<Named>,
    services: Vec<Named>,
    reason_codes: &'static [&'static str],
    max_points: MaxPoints,
    /// `1`, or `2` when two judges score each report blind.
    judges: u8,
    /// With two judges: how far apart two valid scores may be and still agree.
    #[serde(skip_serializing_if = "Option::is_none")]
    disagreement_points: Option<u32>,
    /// The logged-in judge's account name.
    judge: String,
    /// Under the rule-based preset (`scoring = "rules"`), its tables: a valid ruling records a
    /// finding (an attack type and weakness, or the attack a defence answers, its rubric shares
    /// and bonus) in place of points.
    #[serde(skip_serializing_if = "Option::is_none")]
    rules: Option<RulePreset>,
}

#[derive(Debug, Serialize)]
struct Named {
    slug: String,
    name: Names,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct MaxPoints {
    attack: u32,
    defence: u32,
}

/// `GET /api/judge/workbench`.
pub(crate) async fn setup(State(state): State<ReportsState>, headers: HeaderMap) -> Reply<axum::Json<Setup>> {
    let judge = auth::judge(&state, &headers).await?;
    let s = state.scenario();
    let (judges, disagreement_points) = match s.reports.panel {
        JudgePanel::One => (1, None),
        JudgePanel::BlindPair { max_difference } => (2, Some(max_difference)),
    };
    Ok(axum::Json(Setup {
        teams: s
            .teams
            .iter()
            .map(|t| Named { slug: t.slug.clone(), name: t.name.clone(), role: Some(t.role.as_str()) })
            .collect(),
        services: s.services.iter().map(|x| Named { slug: x.slug.clone(), name: x.name.clone(), role: None }).collect(),
        reason_codes: ReasonCode::NAMES,
        max_points: MaxPoints {
            attack: ReportKind::Attack.max_points(&s.reports),
            defence: ReportKind::Defence.max_points(&s.reports),
        },
        judges,
        disagreement_points,
        judge: judge.name,
        rules: s.reports.rule_preset().cloned(),
    }))
}

/// `GET /api/judge/reports/{id}/context`: what the platform recorded around the report's
/// window, with the suggested matches marked.
pub(crate) async fn report_context(
    State(state): State<ReportsState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Reply<axum::Json<Context>> {
    let id = parse_id(&id, "report")?;
    auth::judge(&state, &headers).await?;
    let record = state.store().report(id).await?.ok_or(ReportsError::UnknownReport(id))?;
    Ok(axum::Json(context(&state, &record).await?))
}

/// An image type a browser may show inline, by the file's first bytes: PNG and JPEG only.
/// Everything else (SVG and HTML above all, whatever the team called them) is a download.
pub fn sniff_image(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else {
        None
    }
}

/// `GET /api/judge/reports/{id}/evidence/{file}/view`: one evidence file for the workbench.
/// A PNG or JPEG (by its bytes) comes inline with the sniffed type; anything else as an
/// `application/octet-stream` attachment. Either way under a CSP sandbox with no sources, so
/// even a file a browser misread could run nothing and load nothing. With an evidence origin
/// configured, a redirect to the file's short-lived signed address there instead.
pub(crate) async fn evidence_view(
    State(state): State<ReportsState>,
    Path((id, evidence)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply<Response> {
    let (id, evidence) = (parse_id(&id, "report")?, parse_id(&evidence, "evidence")?);
    auth::judge(&state, &headers).await?;
    if let Some(origin) = &state.settings().evidence_origin {
        state
            .store()
            .evidence_info(id, evidence)
            .await?
            .ok_or(ReportsError::UnknownEvidence { report: id, evidence })?;
        let to = crate::evidence_origin::signed_url(&state, origin, id, evidence);
        let mut response = Response::new(Body::empty());
        *response.status_mut() = axum::http::StatusCode::SEE_OTHER;
        let h = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&to) {
            h.insert(header::LOCATION, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
        return Ok(response);
    }
    image(&state, id, evidence, "same-origin").await
}

/// One evidence file as an image when its bytes are a PNG or a JPEG, else as an attachment,
/// sandboxed; `resource_policy` is its `Cross-Origin-Resource-Policy`.
pub(crate) async fn image(
    state: &ReportsState,
    id: i64,
    evidence: i64,
    resource_policy: &'static str,
) -> Reply<Response> {
    let info = state
        .store()
        .evidence_info(id, evidence)
        .await?
        .ok_or(ReportsError::UnknownEvidence { report: id, evidence })?;
    let first = state.store().evidence_chunk(id, evidence, 0).await?.unwrap_or_default();
    let image = sniff_image(&first);
    let name: String =
        info.file_name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' }).collect();
    let store = state.store().clone();
    // The first chunk is already read; the rest follow a stored chunk at a time.
    let rest = futures::stream::try_unfold(1u32, move |seq| {
        let store = store.clone();
        async move {
            let chunk = store.evidence_chunk(id, evidence, seq).await.map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>(chunk.map(|c| (bytes::Bytes::from(c), seq + 1)))
        }
    });
    let head = futures::stream::once(async move { Ok::<_, std::io::Error>(bytes::Bytes::from(first)) });
    let mut response = Response::new(Body::from_stream(futures::StreamExt::chain(head, rest)));
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(info.size));
    let (content_type, disposition) = match image {
        Some(t) => (t, "inline"),
        None => ("application/octet-stream", "attachment"),
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("{disposition}; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    h.insert("Content-Security-Policy", HeaderValue::from_static("sandbox; default-src 'none'"));
    h.insert("Cross-Origin-Resource-Policy", HeaderValue::from_static(resource_policy));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::sniff_image;

    #[test]
    fn only_png_and_jpeg_bytes_are_images() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]), Some("image/jpeg"));
        assert_eq!(sniff_image(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"), None);
        assert_eq!(sniff_image(b"<!doctype html><script>alert(1)</script>"), None);
        assert_eq!(sniff_image(b"GIF89a"), None);
        assert_eq!(sniff_image(b""), None);
    }
}
