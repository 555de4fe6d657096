//! Team management from the console: every team of the drill as organisers see it; a new
//! token for a team that lost its own (the team's portal sessions end at once, and the old
//! token stops working, for flag submission within a minute), shown to the organiser once to
//! hand over; and a team taken out of the running drill, or brought back.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use gongfang_core::Secret;
use gongfang_core::scenario::{Role, Team};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::admin;
use crate::error::ReportsError;
use crate::state::ReportsState;

type Reply<T> = Result<T, ReportsError>;

/// A team as the console lists it.
#[derive(Debug, Serialize)]
pub(crate) struct TeamView {
    id: u16,
    slug: String,
    name: String,
    name_zh: String,
    role: Role,
    nop: bool,
    network: String,
    /// When organisers took the team out of the drill; absent while it plays.
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_at: Option<DateTime<Utc>>,
}

impl TeamView {
    fn of(team: &Team, disabled_at: Option<DateTime<Utc>>) -> TeamView {
        TeamView {
            id: team.id.0,
            slug: team.slug.clone(),
            name: team.name.en.clone(),
            name_zh: team.name.zh.clone(),
            role: team.role,
            nop: team.nop,
            network: team.network.to_string(),
            disabled_at,
        }
    }
}

/// `GET /api/admin/teams`: every team of the drill (organisers and observers).
pub(crate) async fn list(State(state): State<ReportsState>, headers: HeaderMap) -> Reply<Json<Vec<TeamView>>> {
    crate::console::reader(&state, &headers).await?;
    let disabled: HashMap<u16, DateTime<Utc>> = state
        .store()
        .list_teams()
        .await?
        .into_iter()
        .filter_map(|record| Some((record.team.id.0, record.disabled_at?)))
        .collect();
    let teams = state.scenario().teams.iter().map(|t| TeamView::of(t, disabled.get(&t.id.0).copied())).collect();
    Ok(Json(teams))
}

/// Which team gets a new token, and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenBody {
    team: String,
    #[serde(default)]
    reason: String,
}

/// A team's new token, shown this once.
#[derive(Debug, Serialize)]
pub(crate) struct IssuedToken {
    team: String,
    #[serde(serialize_with = "gongfang_core::secret::serialize_exposed")]
    token: Secret,
    note: &'static str,
}

/// `POST /api/admin/teams/token`: a new token for a team; the old one stops working (the flag
/// submission's cache forgets it within a minute) and the team's portal sessions end. Audited
/// under the organiser (`team.token.rotate`), without the token.
pub(crate) async fn rotate_token(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Reply<Json<IssuedToken>> {
    let account = admin::organiser(&state, &headers).await?;
    let TokenBody { team, reason } = crate::upload::json_body(&headers, body, admin::MAX_BODY).await?;
    let team = admin::team_of_drill(&state, &team)?;
    let reason = admin::bounded("reason", reason.trim(), admin::MAX_REASON_CHARS)?;
    let issued = state.store().issue_token(&team.slug).await?;
    let detail = json!({ "team": team.slug, "reason": reason });
    state.store().append_audit(state.now(), &account.actor(), "team.token.rotate", &detail).await?;
    Ok(Json(IssuedToken {
        team: team.slug.clone(),
        token: issued.token,
        note: "the team's portal sessions have ended and its old token no longer works (for flag submission, \
               within a minute); hand this one over in person",
    }))
}

/// Which team leaves the drill or comes back, and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DisableBody {
    team: String,
    disabled: bool,
    #[serde(default)]
    reason: String,
}

/// `POST /api/admin/teams/disable`: takes a team out of the running drill (`disabled: true`,
/// with a reason) or brings it back. From the next tick the engine records a disabled team's
/// services as down, with why, instead of checking them (no SLA points meanwhile; its history
/// and score so far stay); its portal sessions end, and its token is refused (for flag
/// submission, within a minute). Audited under the organiser (`team.disable` / `team.enable`).
pub(crate) async fn disable(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Reply<Json<TeamView>> {
    let account = admin::organiser(&state, &headers).await?;
    let DisableBody { team, disabled, reason } = crate::upload::json_body(&headers, body, admin::MAX_BODY).await?;
    let team = admin::team_of_drill(&state, &team)?;
    let reason = admin::bounded("reason", reason.trim(), admin::MAX_REASON_CHARS)?;
    if disabled && reason.is_empty() {
        return Err(ReportsError::BadRequest(
            "say why the team leaves the drill (`reason`): the team will ask, and the audit log keeps it".to_owned(),
        ));
    }
    let now = state.now();
    let (stored, changed) = state.store().set_team_disabled(&team.slug, disabled, now).await?;
    // Asking again for the state the team is in changes nothing, and is not a second action.
    if changed {
        let action = if disabled { "team.disable" } else { "team.enable" };
        let detail = json!({ "team": team.slug, "reason": reason });
        state.store().append_audit(now, &account.actor(), action, &detail).await?;
    }
    Ok(Json(TeamView::of(team, stored.disabled_at)))
}
