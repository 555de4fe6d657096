//! `GET /api/connections`: which teams' WireGuard peers have shaken hands with the drill's
//! gateway, so organisers and teams see who is ready before the first tick.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use gongfang_core::scenario::Scenario;
use gongfang_core::{TeamConnection, TeamId};
use serde::Serialize;

use crate::error::WebError;
use crate::state::WebState;

/// `GET /api/connections`: one entry per team of the scenario, from the binary's last poll
/// of the gateway; `404 no_vpn` when the drill has no VPN.
pub(crate) async fn connections(State(state): State<WebState>) -> Result<Response, WebError> {
    let feed = state.connections().ok_or(WebError::NoVpn)?;
    let now = Utc::now();
    // Built from memory: the scenario's teams and the watch's latest value, no store read.
    let body = Connections::of(&state.inner.scenario, &feed.borrow(), now);
    Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

#[derive(Debug, Serialize)]
struct Connections {
    /// The server's time, which `seconds_ago` counts from.
    now: DateTime<Utc>,
    /// Every team of the scenario, in the scenario's order.
    teams: Vec<TeamView>,
}

#[derive(Debug, Serialize)]
struct TeamView {
    id: TeamId,
    slug: String,
    name: String,
    name_zh: String,
    /// Configs (peers) issued to the team; 0 for a team that has none.
    peers_issued: u32,
    /// Issued peers that have shaken hands with the gateway.
    peers_connected: u32,
    /// The latest handshake of any of the team's peers.
    last_handshake: Option<DateTime<Utc>>,
    /// Whole seconds from `last_handshake` to `now` (0 if the gateway's clock is ahead).
    seconds_ago: Option<u64>,
}

impl Connections {
    fn of(scenario: &Scenario, seen: &[TeamConnection], now: DateTime<Utc>) -> Connections {
        let by_team: HashMap<TeamId, &TeamConnection> = seen.iter().map(|c| (c.team, c)).collect();
        let teams = scenario
            .teams
            .iter()
            .map(|team| {
                let seen = by_team.get(&team.id);
                let last_handshake = seen.and_then(|c| c.last_handshake);
                TeamView {
                    id: team.id,
                    slug: team.slug.clone(),
                    name: team.name.en.clone(),
                    name_zh: team.name.zh.clone(),
                    peers_issued: seen.map_or(0, |c| c.peers_issued),
                    peers_connected: seen.map_or(0, |c| c.peers_connected),
                    last_handshake,
                    seconds_ago: last_handshake.map(|at| u64::try_from((now - at).num_seconds()).unwrap_or(0)),
                }
            })
            .collect();
        Connections { now, teams }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use gongfang_test_support::scenario::{ScenarioBuilder, service, team};

    use super::*;

    #[test]
    fn every_team_is_listed_and_a_handshake_ahead_of_the_clock_is_zero_seconds_ago() {
        let scenario = ScenarioBuilder::new("conn")
            .name("Connections Test Drill", "連線測試演練")
            .duration("8h")
            .secret("connections-test-secret-not-for-drills")
            .team(team(1, "ddb").name("Digital Development Bureau", "數字發展局"))
            .team(team(2, "crd").name("Civic Records Department", "公民紀錄處"))
            .service(
                service("kv").name("Key-Value Registry", "鍵值登記系統").image("gongfang/kv:test").checker("kv.wasm"),
            )
            .build();
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0).unwrap();
        let seen = [TeamConnection {
            team: TeamId(2),
            peers_issued: 2,
            peers_connected: 1,
            last_handshake: Some(now + chrono::Duration::seconds(3)),
        }];
        let view = Connections::of(&scenario, &seen, now);
        assert_eq!(view.teams.len(), 2);
        assert_eq!((view.teams[0].peers_issued, view.teams[0].seconds_ago), (0, None));
        assert_eq!(view.teams[1].slug, "crd");
        assert_eq!(view.teams[1].seconds_ago, Some(0));
    }
}
