//! Team management from the console: every team of the drill as organisers see it, and a new
//! token for a team that lost its own (the team's portal sessions end at once, and the old
//! token stops working, for flag submission within a minute), shown to the organiser once to
//! hand over.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use gongfang_core::Secret;
use gongfang_core::scenario::Role;
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
}

/// `GET /api/admin/teams`: every team of the drill (organisers and observers).
pub(crate) async fn list(State(state): State<ReportsState>, headers: HeaderMap) -> Reply<Json<Vec<TeamView>>> {
    crate::console::reader(&state, &headers).await?;
    let teams = state
        .scenario()
        .teams
        .iter()
        .map(|t| TeamView {
            id: t.id.0,
            slug: t.slug.clone(),
            name: t.name.en.clone(),
            name_zh: t.name.zh.clone(),
            role: t.role,
            nop: t.nop,
            network: t.network.to_string(),
        })
        .collect();
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
    let Some(team) = state.scenario().teams.iter().find(|t| t.slug == team.trim()) else {
        return Err(ReportsError::BadRequest(format!(
            "`{team}` is not a team of this drill; use a team's slug as the console lists it"
        )));
    };
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
