//! A team's submitted patches (`patch_mode = "submit"`), with its token:
//! - `POST /api/patches?service=SLUG[&kind=diff|tar]`: the body is a unified diff against the
//!   build folder the service runs now, or a tar archive (plain or gzip) overlaying it; the
//!   kind is told by `kind`, else by the bytes. Answered `202` with the patch and its place in
//!   the queue; the verdict follows (`GET`).
//! - `GET /api/patches[?service=SLUG]`: the team's patches, newest first, each with its status,
//!   the verdict's message, the checker's public messages and what the reference exploit did.
//! - `GET /api/patches/ID`: one of them.
//! - `GET /api/patches/source?service=SLUG[&version=N]`: the build folder the service runs now
//!   (or ran as version N), as a tar archive: what a diff is made against.
//! - `POST /api/patches/rollback` (`{"service": "SLUG", "version": N}`): run version N again.
//!
//! Everything is bounded before it is read: the body by `[patches] max_size`, the queue by
//! `max_queued` per team. Storing and auditing happen in one transaction in the store.

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use gongfang_core::patch::{NewPatch, PatchKind, PatchRecord, PatchStatus};
use gongfang_core::scenario::{ImageSource, PatchMode, Service};
use gongfang_core::{Exposure, TeamId};
use gongfang_store::PatchRefused;
use serde::{Deserialize, Serialize};

use crate::auth;
use crate::error::ReportsError;
use crate::state::ReportsState;
use crate::upload::json_body;

/// How many patches a listing shows at most.
const LIST_LIMIT: u64 = 100;

/// A patch as its team sees it.
#[derive(Debug, Serialize)]
pub(crate) struct PatchView {
    id: i64,
    service: String,
    version: u32,
    kind: PatchKind,
    sha256: String,
    size: u64,
    status: PatchStatus,
    message: String,
    checks: Vec<String>,
    exploit: Option<Exposure>,
    submitted_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    /// Queued: 1 when it is the next to start.
    queue_position: Option<u64>,
}

async fn view(state: &ReportsState, p: PatchRecord) -> Result<PatchView, ReportsError> {
    let queue_position = match p.status {
        PatchStatus::Queued => Some(state.store().queue_position(p.id).await?),
        _ => None,
    };
    let service =
        state.scenario().services.iter().find(|s| s.id == p.service).map(|s| s.slug.clone()).unwrap_or_default();
    Ok(PatchView {
        id: p.id,
        service,
        version: p.version,
        kind: p.kind,
        sha256: p.sha256,
        size: p.size,
        status: p.status,
        message: p.message,
        checks: p.checks,
        exploit: p.exploit,
        submitted_at: p.submitted_at,
        decided_at: p.decided_at,
        queue_position,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitQuery {
    service: String,
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    service: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SourceQuery {
    service: String,
    version: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rollback {
    service: String,
    version: u32,
}

/// A service of the scenario that takes submitted patches in this drill.
fn patchable<'a>(state: &'a ReportsState, slug: &str) -> Result<&'a Service, ReportsError> {
    let service = state
        .scenario()
        .services
        .iter()
        .find(|s| s.slug == slug)
        .ok_or_else(|| ReportsError::UnknownService(slug.to_owned()))?;
    if service.patch_mode != PatchMode::Submit || !matches!(service.source, ImageSource::Build(_)) {
        return Err(ReportsError::NotPatchable(slug.to_owned()));
    }
    if !state.builds_patches() {
        return Err(ReportsError::NoPatchBuilds);
    }
    Ok(service)
}

/// The calling team, which must defend.
async fn defender(state: &ReportsState, headers: &axum::http::HeaderMap) -> Result<TeamId, ReportsError> {
    let team = auth::team(state, headers).await?;
    let found = state.scenario().team(team).ok_or(ReportsError::NotInScenario(team.0))?;
    if !found.role.defends() {
        return Err(ReportsError::NotADefender);
    }
    Ok(team)
}

/// The kind a body is: said by `kind`, else a tar archive when it looks like one (gzip, or the
/// `ustar` magic), else a diff.
fn kind_of(said: Option<&str>, body: &[u8]) -> Result<PatchKind, ReportsError> {
    match said {
        Some("diff") => Ok(PatchKind::Diff),
        Some("tar") => Ok(PatchKind::Tar),
        Some(other) => Err(ReportsError::BadRequest(format!("`kind` must be `diff` or `tar`, not `{other}`"))),
        None if body.starts_with(&[0x1f, 0x8b]) || body.get(257..262) == Some(b"ustar") => Ok(PatchKind::Tar),
        None => Ok(PatchKind::Diff),
    }
}

pub(crate) async fn submit(
    State(state): State<ReportsState>,
    Query(query): Query<SubmitQuery>,
    req: Request,
) -> Result<(StatusCode, axum::Json<PatchView>), ReportsError> {
    let team = defender(&state, req.headers()).await?;
    let service = patchable(&state, &query.service)?;
    let max = state.scenario().patches.max_size;
    let too_large = || ReportsError::PatchTooLarge { limit: max };
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(req.into_body(), usize::try_from(max).unwrap_or(usize::MAX))
        .await
        .map_err(|_| too_large())?;
    if body.is_empty() {
        return Err(ReportsError::BadRequest("the body is empty: send the diff or the tar archive".into()));
    }
    let kind = kind_of(query.kind.as_deref(), &body)?;
    let patch = NewPatch { team, service: service.id, kind, body: body.to_vec(), target: None };
    let record = state.store().submit_patch(&patch, &state.scenario().patches, state.now()).await?.map_err(refused)?;
    Ok((StatusCode::ACCEPTED, axum::Json(view(&state, record).await?)))
}

fn refused(r: PatchRefused) -> ReportsError {
    match r {
        PatchRefused::QueueFull(limit) => ReportsError::PatchQueueFull { limit },
        PatchRefused::TeamLimit(limit) => ReportsError::PatchLimit { limit },
        PatchRefused::NoSuchVersion(version) => ReportsError::NoSuchVersion(version),
    }
}

pub(crate) async fn list(
    State(state): State<ReportsState>,
    Query(query): Query<ListQuery>,
    req: Request,
) -> Result<axum::Json<Vec<PatchView>>, ReportsError> {
    let team = defender(&state, req.headers()).await?;
    let service = match &query.service {
        Some(slug) => Some(
            state
                .scenario()
                .services
                .iter()
                .find(|s| &s.slug == slug)
                .ok_or_else(|| ReportsError::UnknownService(slug.clone()))?
                .id,
        ),
        None => None,
    };
    let mut out = Vec::new();
    for p in state.store().patches_of(team, service, LIST_LIMIT).await? {
        out.push(view(&state, p).await?);
    }
    Ok(axum::Json(out))
}

pub(crate) async fn read(
    State(state): State<ReportsState>,
    Path(id): Path<i64>,
    req: Request,
) -> Result<axum::Json<PatchView>, ReportsError> {
    let team = defender(&state, req.headers()).await?;
    // Another team's patch is answered as if it did not exist.
    match state.store().patch(id).await? {
        Some(p) if p.team == team => Ok(axum::Json(view(&state, p).await?)),
        _ => Err(ReportsError::UnknownPatch(id)),
    }
}

pub(crate) async fn source(
    State(state): State<ReportsState>,
    Query(query): Query<SourceQuery>,
    req: Request,
) -> Result<Response, ReportsError> {
    let team = defender(&state, req.headers()).await?;
    let service = patchable(&state, &query.service)?;
    let version = match query.version {
        Some(v) => v,
        None => state.store().deployments_of(team, service.id).await?.last().map_or(0, |d| d.version),
    };
    let sha =
        state.store().version_source(team, service.id, version).await?.ok_or(ReportsError::NoSuchVersion(version))?;
    let archive = state.store().source(service.id, &sha).await?.ok_or(ReportsError::NoSuchVersion(version))?;
    let name = format!("attachment; filename=\"{}-v{version}.tar\"", service.slug);
    let mut response = Response::new(Body::from(archive));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&name).expect("a slug is ASCII"));
    headers.insert("x-gongfang-version", HeaderValue::from(version));
    Ok(response)
}

pub(crate) async fn rollback(
    State(state): State<ReportsState>,
    req: Request,
) -> Result<(StatusCode, axum::Json<PatchView>), ReportsError> {
    let team = defender(&state, req.headers()).await?;
    let (parts, body) = req.into_parts();
    let body: Rollback = json_body(&parts.headers, body, 4096).await?;
    let service = patchable(&state, &body.service)?;
    let patch =
        NewPatch { team, service: service.id, kind: PatchKind::Rollback, body: Vec::new(), target: Some(body.version) };
    let record = state.store().submit_patch(&patch, &state.scenario().patches, state.now()).await?.map_err(refused)?;
    Ok((StatusCode::ACCEPTED, axum::Json(view(&state, record).await?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_is_told_by_the_bytes_unless_said() {
        assert_eq!(kind_of(None, b"--- a/app.py\n").unwrap(), PatchKind::Diff);
        assert_eq!(kind_of(None, &[0x1f, 0x8b, 8, 0]).unwrap(), PatchKind::Tar);
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(kind_of(None, &tar).unwrap(), PatchKind::Tar);
        assert_eq!(kind_of(Some("diff"), &tar).unwrap(), PatchKind::Diff);
        assert!(kind_of(Some("zip"), b"").unwrap_err().to_string().contains("`diff` or `tar`"));
    }
}
