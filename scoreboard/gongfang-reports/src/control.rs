//! Organisers restart or reset a team's service from the console (`POST /api/admin/service`):
//! a restart runs its containers again as they are; a reset replaces them with fresh copies of
//! the scenario's image, the team's changes and data gone. The binary says how, through a
//! [`ServiceControl`] over the container engine; a drill without containers has none.

use std::future::Future;
use std::pin::Pin;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use gongfang_core::scenario::{PatchMode, Service, Team};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::admin;
use crate::error::ReportsError;
use crate::state::ReportsState;

/// What a [`ServiceControl`] call answers: the containers it acted on, or why it could not.
pub type ControlFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<String>, String>> + Send + 'a>>;

/// Restarts and resets teams' services.
pub trait ServiceControl: Send + Sync + 'static {
    /// Runs the team's service again as it is.
    fn restart<'a>(&'a self, team: &'a Team, service: &'a Service) -> ControlFuture<'a>;
    /// Replaces the team's service with a fresh copy of its image.
    fn reset<'a>(&'a self, team: &'a Team, service: &'a Service) -> ControlFuture<'a>;
}

/// A drill without containers (`gongfang serve`): nothing to restart or reset.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoServiceControl;

const NO_CONTAINERS: &str =
    "this drill runs no containers (it was started with `gongfang serve`): restart the team's service where it runs";

impl ServiceControl for NoServiceControl {
    fn restart<'a>(&'a self, _team: &'a Team, _service: &'a Service) -> ControlFuture<'a> {
        Box::pin(async { Err(NO_CONTAINERS.to_owned()) })
    }

    fn reset<'a>(&'a self, _team: &'a Team, _service: &'a Service) -> ControlFuture<'a> {
        Box::pin(async { Err(NO_CONTAINERS.to_owned()) })
    }
}

/// Restart or reset, and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControlBody {
    team: String,
    service: String,
    /// `restart` or `reset`.
    action: String,
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct ControlAnswer {
    action: &'static str,
    team: String,
    service: String,
    /// The containers acted on.
    containers: Vec<String>,
}

/// `POST /api/admin/service`: an organiser restarts or resets a defending team's service.
/// Audited under the account before the engine is asked (`service.restart`, `service.reset`),
/// and again when it failed (`service.reset.failed`, with the engine's reason).
pub(crate) async fn control(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<ControlAnswer>, ReportsError> {
    let account = admin::organiser(&state, &headers).await?;
    let ControlBody { team, service, action, reason } =
        crate::upload::json_body(&headers, body, admin::MAX_BODY).await?;
    let action: &'static str = match action.trim() {
        "restart" => "restart",
        "reset" => "reset",
        other => {
            return Err(ReportsError::BadRequest(format!("`action` is `restart` or `reset`, not `{other}`")));
        }
    };
    let scenario = state.scenario();
    let Some(team) = scenario.teams.iter().find(|t| t.slug == team.trim() && t.role.defends()) else {
        return Err(ReportsError::BadRequest(format!(
            "`{team}` is not a defending team of this drill; use a team's slug as the board shows it"
        )));
    };
    let Some(service) = scenario.services.iter().find(|s| s.slug == service.trim()) else {
        return Err(ReportsError::BadRequest(format!("`{service}` is not a service of this drill; use its slug")));
    };
    if action == "reset" && service.patch_mode == PatchMode::Submit {
        return Err(ReportsError::BadRequest(format!(
            "`{}` takes submitted patches: a reset would undo the version the team deployed; restart it, or roll \
             back through its patches",
            service.slug
        )));
    }
    let reason = admin::bounded("reason", reason.trim(), admin::MAX_REASON_CHARS)?;
    // Audited before the engine is asked: the attempt is on record even if the caller hangs up
    // while the containers are replaced.
    let detail = json!({ "team": team.slug, "service": service.slug, "reason": reason });
    state.store().append_audit(state.now(), &account.actor(), &format!("service.{action}"), &detail).await?;
    let control = state.service_control();
    let outcome = match action {
        "restart" => control.restart(team, service).await,
        _ => control.reset(team, service).await,
    };
    match outcome {
        Ok(containers) => {
            Ok(Json(ControlAnswer { action, team: team.slug.clone(), service: service.slug.clone(), containers }))
        }
        Err(why) => {
            let detail = json!({ "team": team.slug, "service": service.slug, "error": why });
            let action = format!("service.{action}.failed");
            state.store().append_audit(state.now(), &account.actor(), &action, &detail).await?;
            Err(ReportsError::ServiceControl(why))
        }
    }
}
