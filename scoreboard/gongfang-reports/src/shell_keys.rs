//! A team's SSH keys for its shells (docs/network.md), with its token: `GET /api/shell-keys`
//! lists them (those generated with its VPN peers and those it registered), `POST` registers one
//! (`{"key": "ssh-ed25519 AAAA… name", "label": "…"}`), `DELETE /api/shell-keys/ID` removes a
//! registered one. Changes are audited under the team. Only public keys cross.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use gongfang_core::TeamId;
use gongfang_core::scenario::Team;
use gongfang_core::shell_key::{MAX_LABEL, parse_public_key};
use gongfang_store::{ShellKey, ShellKeyAdded};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth;
use crate::error::ReportsError;
use crate::state::ReportsState;
use crate::upload::json_body;

/// Largest request body: a key line and a label.
pub(crate) const MAX_BODY: usize = 4096;

/// A key as the team sees it.
#[derive(Debug, Serialize)]
pub(crate) struct KeyView {
    id: i64,
    label: String,
    public_key: String,
    /// The VPN peer it was generated with (its private key is in `TEAM-N.ssh`); `null` for a
    /// registered key.
    peer: Option<u32>,
    added_at: DateTime<Utc>,
}

impl From<ShellKey> for KeyView {
    fn from(k: ShellKey) -> KeyView {
        KeyView { id: k.id, label: k.label, public_key: k.public_key, peer: k.peer, added_at: k.added_at }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    key: String,
    label: Option<String>,
}

/// The calling team, in a drill whose teams have shells.
async fn team_with_shells(state: &ReportsState, headers: &HeaderMap) -> Result<(TeamId, Team), ReportsError> {
    let team = auth::team(state, headers).await?;
    if state.scenario().vpn.is_none() {
        return Err(ReportsError::NoShells);
    }
    let found = state.scenario().team(team).cloned().ok_or(ReportsError::NotInScenario(team.0))?;
    Ok((team, found))
}

pub(crate) async fn list(
    State(state): State<ReportsState>,
    req: Request,
) -> Result<axum::Json<Vec<KeyView>>, ReportsError> {
    let (team, _) = team_with_shells(&state, req.headers()).await?;
    let keys = state.store().shell_keys_of(team).await?;
    Ok(axum::Json(keys.into_iter().map(KeyView::from).collect()))
}

pub(crate) async fn add(
    State(state): State<ReportsState>,
    req: Request,
) -> Result<(StatusCode, axum::Json<KeyView>), ReportsError> {
    let (team, found) = team_with_shells(&state, req.headers()).await?;
    let (parts, body) = req.into_parts();
    let body: NewKey = json_body(&parts.headers, body, MAX_BODY).await?;
    let key = parse_public_key(&body.key).map_err(ReportsError::ShellKey)?;
    let label = body.label.or(key.comment).unwrap_or_else(|| "registered".to_owned());
    let label = label.trim();
    if label.is_empty() || label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
        return Err(ReportsError::BadRequest(format!(
            "`label` must be 1 to {MAX_LABEL} characters on one line, e.g. \"laptop of the duty officer\""
        )));
    }
    let now = state.now();
    match state.store().register_shell_key(&found.slug, &key.line, label, now).await? {
        ShellKeyAdded::Added(added) => {
            state
                .store()
                .append_audit(
                    now,
                    &format!("team {}", found.slug),
                    "shell.key.add",
                    &json!({ "team": found.slug, "key": added.id, "label": added.label }),
                )
                .await?;
            Ok((StatusCode::CREATED, axum::Json(added.into())))
        }
        ShellKeyAdded::Taken(owner) => Err(ReportsError::ShellKeyTaken { own: owner == team }),
    }
}

pub(crate) async fn remove(
    State(state): State<ReportsState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<StatusCode, ReportsError> {
    let id = crate::api::parse_id(&id, "key")?;
    let (_, found) = team_with_shells(&state, req.headers()).await?;
    if !state.store().remove_shell_key(&found.slug, id).await? {
        return Err(ReportsError::UnknownShellKey(id));
    }
    state
        .store()
        .append_audit(
            state.now(),
            &format!("team {}", found.slug),
            "shell.key.remove",
            &json!({ "team": found.slug, "key": id }),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
