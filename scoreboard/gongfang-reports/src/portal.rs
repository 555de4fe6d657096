//! The team portal's own API: what a team sees of itself (`GET /api/portal`: its services'
//! verdicts and the checkers' public messages, tick by tick) and its token rotation
//! (`POST /api/portal/token`). Everything else the portal shows comes from the routes teams'
//! tools use (reports, patches, shell keys, `PUT /flags`) and the public board's
//! (attack info, announcements, the live feed), with the portal's session cookie.
//!
//! A team sees only its own: the team comes from the session (or the team token), never from
//! the request.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use gongfang_core::{Secret, ServiceId, TeamId, Tick, Verdict};
use serde::Serialize;
use serde_json::json;

use crate::auth;
use crate::error::ReportsError;
use crate::state::ReportsState;

type Reply<T> = Result<T, ReportsError>;

/// How many of the latest ticks the portal shows per service.
pub const HISTORY_TICKS: u32 = 30;

/// Names in both of the drill's languages.
#[derive(Debug, Serialize)]
pub(crate) struct Names {
    en: String,
    zh: String,
}

impl From<&gongfang_core::scenario::Names> for Names {
    fn from(n: &gongfang_core::scenario::Names) -> Names {
        Names { en: n.en.clone(), zh: n.zh.clone() }
    }
}

/// A team's own view of the drill.
#[derive(Debug, Serialize)]
pub(crate) struct PortalView {
    drill: DrillNames,
    team: TeamView,
    /// How many ticks of history each service shows at most.
    history_ticks: u32,
    services: Vec<ServiceView>,
    /// Whether the drill takes reports.
    reports: bool,
    /// The team's VPN peers (numbers and addresses, never keys); empty without a VPN.
    vpn: Vec<crate::vpn_access::PeerView>,
}

#[derive(Debug, Serialize)]
struct DrillNames {
    slug: String,
    name: Names,
}

#[derive(Debug, Serialize)]
struct TeamView {
    id: TeamId,
    slug: String,
    name: Names,
    /// `attacker`, `defender` or `both`.
    role: &'static str,
}

#[derive(Debug, Serialize)]
struct ServiceView {
    id: ServiceId,
    slug: String,
    name: Names,
    /// Whether the team sends patches through the portal (`submit`) or patches live (`vulnbox`).
    patch_mode: &'static str,
    /// The latest ticks, newest first.
    ticks: Vec<TickView>,
}

/// One tick of one service: the worst verdict of its checker's actions and what the checker
/// told the team (public messages only; the checker's log is for organisers).
#[derive(Debug, Serialize)]
struct TickView {
    tick: Tick,
    verdict: Verdict,
    messages: Vec<String>,
}

/// `GET /api/portal`: the calling team's services with their latest verdicts and messages.
pub(crate) async fn portal(State(state): State<ReportsState>, headers: HeaderMap) -> Reply<Json<PortalView>> {
    let team = auth::team(&state, &headers).await?;
    let scenario = state.scenario();
    let Some(spec) = scenario.team(team) else { return Err(ReportsError::NotInScenario(team.0)) };
    let latest = state.store().latest_tick().await?.map(|t| t.tick);
    let from = Tick(latest.map_or(0, |t| t.0.saturating_sub(HISTORY_TICKS - 1)));
    let results = state.store().team_results(team, from).await?;
    let mut cells: BTreeMap<(ServiceId, Tick), (Verdict, Vec<String>)> = BTreeMap::new();
    for r in results {
        let cell = cells.entry((r.service, r.tick)).or_insert((r.verdict, Vec::new()));
        cell.0 = cell.0.worst(r.verdict);
        let message = r.message.trim();
        if !message.is_empty() && !cell.1.iter().any(|m| m == message) {
            cell.1.push(message.to_owned());
        }
    }
    let services = scenario
        .services
        .iter()
        .map(|s| ServiceView {
            id: s.id,
            slug: s.slug.clone(),
            name: (&s.name).into(),
            patch_mode: s.patch_mode.as_str(),
            ticks: cells
                .range((s.id, Tick(0))..=(s.id, Tick(u32::MAX)))
                .rev()
                .map(|(&(_, tick), (verdict, messages))| TickView {
                    tick,
                    verdict: *verdict,
                    messages: messages.clone(),
                })
                .collect(),
        })
        .collect();
    Ok(Json(PortalView {
        drill: DrillNames { slug: scenario.drill.slug.clone(), name: (&scenario.drill.name).into() },
        team: TeamView { id: team, slug: spec.slug.clone(), name: (&spec.name).into(), role: spec.role.as_str() },
        history_ticks: HISTORY_TICKS,
        services,
        reports: scenario.reports.enabled,
        vpn: crate::vpn_access::peers_of(&state, team).await?,
    }))
}

/// A team's new token, shown once.
#[derive(Debug, Serialize)]
pub(crate) struct NewToken {
    #[serde(serialize_with = "gongfang_core::secret::serialize_exposed")]
    token: Secret,
    /// What happened to the old one and to the team's sessions.
    note: &'static str,
}

/// `POST /api/portal/token`: the team replaces its token. The old token stops working at once
/// (the submission servers' cache forgets it within a minute) and every portal session of the
/// team ends, this one included. Audited under the team.
pub(crate) async fn rotate_token(State(state): State<ReportsState>, headers: HeaderMap) -> Reply<Json<NewToken>> {
    let team: TeamId = auth::team(&state, &headers).await?;
    let slug = state.team_slug(team);
    let issued = state.store().issue_token(&slug).await?;
    state.store().append_audit(state.now(), &state.team_actor(team), "team.token.rotate", &json!({})).await?;
    Ok(Json(NewToken {
        token: issued.token,
        note: "the old token no longer works; update your tools, and log in to the portal again with this one",
    }))
}
