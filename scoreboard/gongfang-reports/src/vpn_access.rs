//! A team's VPN configs from its portal. Private keys are never stored, so a lost config
//! cannot be sent again: the team asks for a fresh one for a peer (`POST /api/portal/vpn`),
//! which makes new keys for that peer, stores its public key in place of the old one, and
//! tells the running gateway, so the old config stops working at once. The binary says how,
//! through a [`VpnAccess`] over the drill's gateway; a drill without `[vpn]` has none.

use std::future::Future;
use std::pin::Pin;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use gongfang_core::Secret;
use gongfang_core::scenario::Team;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth;
use crate::error::ReportsError;
use crate::state::ReportsState;

/// A file with a private key in it, made for a team and never kept: a peer's `wg-quick`
/// config or the SSH key made with it.
#[derive(Debug)]
pub struct SecretFile {
    pub file_name: String,
    pub text: Secret<String>,
}

/// A peer's fresh config, and the fresh shell key made with it when one was asked for.
#[derive(Debug)]
pub struct Reissued {
    pub config: SecretFile,
    pub shell_key: Option<SecretFile>,
}

/// What a [`VpnAccess`] call answers: the fresh files, or why there are none.
pub type VpnFuture<'a> = Pin<Box<dyn Future<Output = Result<Reissued, VpnRefusal>> + Send + 'a>>;

/// Why a fresh config was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VpnRefusal {
    /// The team has no issued peer with this number.
    UnknownPeer(u32),
    /// The drill has no VPN.
    NoVpn,
    /// Keys could not be made, stored, or given to the gateway; says which.
    Failed(String),
}

/// Issues fresh configs for teams' peers on the running drill's gateway.
pub trait VpnAccess: Send + Sync + 'static {
    /// New keys for peer `peer` of `team`: stored (the old key replaced; a peer the team was
    /// never issued, up to the scenario's peers per team, is issued now), given to the
    /// gateway, and returned in a config that is never kept. With `shell_key`, a new SSH key
    /// for the team's shell entry too, replacing the one made with the peer before.
    fn reissue<'a>(&'a self, team: &'a Team, peer: u32, shell_key: bool) -> VpnFuture<'a>;
}

/// A drill without a VPN.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoVpnAccess;

impl VpnAccess for NoVpnAccess {
    fn reissue<'a>(&'a self, _team: &'a Team, _peer: u32, _shell_key: bool) -> VpnFuture<'a> {
        Box::pin(async { Err(VpnRefusal::NoVpn) })
    }
}

/// One of the team's peers as its portal lists it (never a key).
#[derive(Debug, Serialize)]
pub(crate) struct PeerView {
    peer: u32,
    address: String,
    issued_at: DateTime<Utc>,
    rotated_at: Option<DateTime<Utc>>,
}

/// The team's peers, when the drill has a VPN.
pub(crate) async fn peers_of(state: &ReportsState, team: gongfang_core::TeamId) -> Result<Vec<PeerView>, ReportsError> {
    if state.scenario().vpn.is_none() {
        return Ok(Vec::new());
    }
    Ok(state
        .store()
        .vpn_peers_of(team)
        .await?
        .into_iter()
        .map(|p| PeerView {
            peer: p.peer,
            address: p.address.to_string(),
            issued_at: p.issued_at,
            rotated_at: p.rotated_at,
        })
        .collect())
}

/// Which peer gets fresh keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReissueBody {
    peer: u32,
}

/// `POST /api/portal/vpn`: a fresh config for one of the team's peers, as a download
/// (`text/plain`, `attachment; filename=…`). The peer's old config stops working at once.
/// Audited under the team (`vpn.config.reissue`), without any key.
pub(crate) async fn reissue(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ReportsError> {
    let team = auth::team(&state, &headers).await?;
    let ReissueBody { peer } = crate::upload::json_body(&headers, body, crate::admin::MAX_BODY).await?;
    let Some(spec) = state.scenario().team(team) else { return Err(ReportsError::NotInScenario(team.0)) };
    let fresh = state.vpn_access().reissue(spec, peer, false).await.map_err(|refusal| match refusal {
        VpnRefusal::UnknownPeer(n) => ReportsError::BadRequest(format!(
            "your team has no VPN peer {n}; the portal lists your peers: ask the organisers if one is missing"
        )),
        VpnRefusal::NoVpn => ReportsError::BadRequest(
            "this drill has no VPN: your services are reached on the drill's own network".to_owned(),
        ),
        VpnRefusal::Failed(why) => ReportsError::VpnFailed(why),
    })?;
    // The old key is gone from the gateway by now: the team gets its config even if the audit
    // log cannot be written, or it would be left with none that works.
    let detail = json!({ "peer": peer });
    if let Err(error) =
        state.store().append_audit(state.now(), &state.team_actor(team), "vpn.config.reissue", &detail).await
    {
        tracing::error!(team = team.0, peer, %error, "a team's fresh VPN config was not audited");
    }
    let SecretFile { file_name, text } = fresh.config;
    Ok(crate::pack::attachment(text.into_inner(), "text/plain; charset=utf-8", &file_name))
}
