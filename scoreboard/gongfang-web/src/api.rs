//! The JSON endpoints: `/api/scoreboard` (now or after any tick), `/api/history`,
//! `/api/history/TEAM` and `/api/announcements` for spectators, `/api/attack-info` (and the
//! same body at `/attack.json`) for the teams' exploit scripts.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use gongfang_core::{ServiceId, TeamId, Tick, Verdict};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::board::{Board, Scoreboard, ServiceView};
use crate::clock::ClockView;
use crate::error::WebError;
use crate::history::{Encoded, View};
use crate::state::WebState;

/// `/api/scoreboard`'s query.
#[derive(Debug, Deserialize)]
pub(crate) struct BoardQuery {
    /// A scored tick: the board as it stood after it.
    tick: Option<String>,
}

/// `GET /api/scoreboard`: while the board is frozen, spectators get it as it stood at the
/// freeze, organisers and judges the live one. With `?tick=N`, the board as it stood after
/// tick N (without a clock, and with `"replay": N`), up to what the asker's board shows.
pub(crate) async fn scoreboard(
    State(state): State<WebState>,
    headers: HeaderMap,
    query: Result<Query<BoardQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let Query(query) = query.map_err(|_| WebError::BadTick)?;
    let board = board_for(&state, &headers).await?;
    let Some(tick) = query.tick else {
        let body = Scoreboard { board: &board, clock: ClockView::of(&state.clock(), Utc::now()) };
        return Ok(no_store(Json(body)));
    };
    let tick = tick.trim().parse::<u32>().map(Tick).map_err(|_| WebError::BadTick)?;
    // A first blood is the earliest capture of its service: the live board's are every past one's.
    let live = state.live_board().await?;
    let inner = &state.inner;
    let body = state
        .history()
        .past_board(&inner.store, &inner.scenario, tick, View::of(&board), &live.first_bloods, state.changes())
        .await?;
    encoded_json(&headers, body)
}

/// `GET /api/history`: every team's total after each scored tick (sampled evenly in a long
/// drill), up to what the asker's board shows.
pub(crate) async fn history(State(state): State<WebState>, headers: HeaderMap) -> Result<Response, WebError> {
    let board = board_for(&state, &headers).await?;
    let inner = &state.inner;
    let body = state
        .history()
        .series(&inner.store, &inner.scenario, View::of(&board), state.changes(), state.rescores(), state.max_age())
        .await?;
    encoded_json(&headers, body)
}

/// `GET /api/history/TEAM`: one defending team's verdict per service for every closed tick,
/// up to what the asker's board shows.
pub(crate) async fn team_history(
    State(state): State<WebState>,
    Path(team): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let board = board_for(&state, &headers).await?;
    let inner = &state.inner;
    let body = state.history().team(&inner.store, &inner.scenario, &team, View::of(&board)).await?;
    encoded_json(&headers, body)
}

/// The board the asker gets: while the public board is frozen, the live one for organisers and
/// judges, the frozen one for everyone else.
async fn board_for(state: &WebState, headers: &HeaderMap) -> Result<Arc<Board>, WebError> {
    let board = state.board().await?;
    if board.freeze.is_some() && state.sees_live(headers).await {
        return state.live_board().await;
    }
    Ok(board)
}

/// Most announcements `GET /api/announcements` answers.
pub const ANNOUNCEMENTS_SHOWN: u64 = 50;

/// `GET /api/announcements`: the latest organisers' announcements, newest first, in English
/// and (when given) Hong Kong Chinese. The author's account stays in the audit log.
pub(crate) async fn announcements(State(state): State<WebState>) -> Result<Response, WebError> {
    let list = state.inner.store.list_announcements(ANNOUNCEMENTS_SHOWN).await?;
    let body: Vec<serde_json::Value> = list
        .into_iter()
        .map(|a| {
            serde_json::json!({
                "id": a.id,
                "title": a.text.title,
                "body": a.text.body,
                "title_zh": a.text.title_zh,
                "body_zh": a.text.body_zh,
                "posted_at": a.posted_at,
            })
        })
        .collect();
    Ok(no_store(Json(body)))
}

/// `GET /api/attack-info` and `GET /attack.json`: the same bytes for every request until
/// something they show changes (see [`WebState::attack_info`]).
pub(crate) async fn attack_info(State(state): State<WebState>) -> Result<Response, WebError> {
    Ok(json(state.attack_info().await?))
}

/// An answer of the drill's past, gzipped for a client that takes gzip (`Accept-Encoding`).
fn encoded_json(headers: &HeaderMap, body: Encoded) -> Result<Response, WebError> {
    let gzip = accepts_gzip(headers);
    let mut response = if gzip { json(body.gzip) } else { json(body.plain()?) };
    let headers = response.headers_mut();
    headers.insert(header::VARY, header::HeaderValue::from_static("accept-encoding"));
    if gzip {
        headers.insert(header::CONTENT_ENCODING, header::HeaderValue::from_static("gzip"));
    }
    Ok(response)
}

/// Whether `Accept-Encoding` takes gzip (by name or `*`, without `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts
                .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
                .any(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        },
    )
}

/// A JSON body already serialised, never cached by the browser.
fn json(body: Bytes) -> Response {
    no_store(([(header::CONTENT_TYPE, "application/json")], body))
}

/// The attack info document at the clock's `tick`, serialised: the board's teams, services
/// and verdicts, the addresses, and one query for the flag ids still accepted.
pub(crate) async fn build_attack_info(state: &WebState, tick: Option<Tick>) -> Result<Bytes, WebError> {
    let board = state.board().await?;
    let inner = &state.inner;
    let lifetime = inner.scenario.drill.flag_lifetime;
    let tick = tick.or(board.latest_tick);
    // A flag planted in tick p is accepted while the current tick is below p + lifetime.
    let flag_ticks = tick.map(|t| TickRange { from: Tick(t.0.saturating_sub(lifetime.saturating_sub(1))), to: t });
    let hints = match flag_ticks {
        Some(r) => inner.store.flag_ids(r.from, r.to).await?,
        None => Vec::new(),
    };

    let slugs: BTreeMap<ServiceId, &str> = board.services.iter().map(|s| (s.id, s.slug.as_str())).collect();
    let mut targets: BTreeMap<TeamId, TargetTeam> = BTreeMap::new();
    for team in board.teams.iter().filter(|t| t.role.defends()) {
        let services = board
            .services
            .iter()
            .map(|service| {
                let verdict = team.services.iter().find(|c| c.service == service.id).and_then(|c| c.verdict);
                let endpoint = inner.endpoints.iter().find(|e| e.team == team.id && e.service == service.id);
                let target = TargetService {
                    host: endpoint.map(|e| e.host.clone()),
                    ports: endpoint.map(|e| e.ports.clone()).unwrap_or_default(),
                    addresses: endpoint
                        .map(|e| e.ports.iter().map(|p| address(&e.host, *p)).collect())
                        .unwrap_or_default(),
                    up: verdict == Some(Verdict::Ok),
                    verdict,
                    flag_ids: BTreeMap::new(),
                };
                (service.slug.clone(), target)
            })
            .collect();
        targets.insert(
            team.id,
            TargetTeam {
                id: team.id,
                slug: team.slug.clone(),
                name: team.name.clone(),
                name_zh: team.name_zh.clone(),
                nop: team.nop,
                services,
            },
        );
    }
    for hint in hints {
        let Some(slug) = slugs.get(&hint.service) else { continue };
        let Some(target) = targets.get_mut(&hint.team).and_then(|t| t.services.get_mut(*slug)) else { continue };
        target.flag_ids.entry(hint.tick.0).or_default().insert(hint.store.0, hint.flag_id);
    }

    let body = AttackInfo {
        tick,
        flag_lifetime: lifetime,
        flag_ticks,
        services: &board.services,
        teams: targets.into_values().collect(),
    };
    Ok(Bytes::from(serde_json::to_vec(&body)?))
}

/// `host:port`, with an IPv6 host in brackets.
fn address(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// Live data must never be served from a browser's or proxy's cache.
fn no_store(body: impl IntoResponse) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], body).into_response()
}

#[derive(Debug, Serialize)]
struct AttackInfo<'a> {
    /// The current tick.
    tick: Option<Tick>,
    flag_lifetime: u32,
    /// The ticks whose flags are still accepted, and so whose flag ids are listed.
    flag_ticks: Option<TickRange>,
    services: &'a [ServiceView],
    /// Every defending team, by id.
    teams: Vec<TargetTeam>,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct TickRange {
    from: Tick,
    to: Tick,
}

#[derive(Debug, Serialize)]
struct TargetTeam {
    id: TeamId,
    slug: String,
    name: String,
    name_zh: String,
    /// The NOP team: its flags are worth nothing, but they show a service is exploitable.
    nop: bool,
    /// By service slug.
    services: BTreeMap<String, TargetService>,
}

#[derive(Debug, Serialize)]
struct TargetService {
    host: Option<String>,
    ports: Vec<u16>,
    /// `host:port` for each port.
    addresses: Vec<String>,
    /// Whether the last closed tick's verdict was `ok`.
    up: bool,
    verdict: Option<Verdict>,
    /// Flag ids by planting tick, then by flag store.
    flag_ids: BTreeMap<u32, BTreeMap<u8, String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_taken_when_asked_for_and_not_refused() {
        let asks = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, header::HeaderValue::from_str(value).unwrap());
            accepts_gzip(&headers)
        };
        assert!(asks("gzip, deflate, br"));
        assert!(asks("br;q=1.0, GZIP;q=0.5"));
        assert!(asks("*"));
        assert!(!asks("br, deflate"));
        assert!(!asks("gzip;q=0"));
        assert!(!asks("gzip; q=0.000"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn addresses_bracket_ipv6_hosts() {
        assert_eq!(address("10.60.1.2", 8080), "10.60.1.2:8080");
        assert_eq!(address("fd00::2", 80), "[fd00::2]:80");
    }
}
