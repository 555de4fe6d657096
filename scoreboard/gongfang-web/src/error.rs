//! The one error type of the scoreboard web, and the one table mapping it to HTTP answers.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why the scoreboard could not answer.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The database failed or is unreachable; the page retries on its own.
    #[error("the scoreboard's database is unavailable: {0}")]
    Store(#[from] gongfang_store::StoreError),
    /// So many spectators are connected that this one is turned away.
    #[error("too many live connections ({limit}); try again in a minute")]
    TooManyConnections { limit: usize },
    /// No page or endpoint at this path.
    #[error(
        "no such page: {0}; the scoreboard serves /, /api/scoreboard, /api/attack-info, /attack.json, \
         /api/connections, /api/announcements, /api/history, /api/history/TEAM, /ws and /metrics"
    )]
    NotFound(String),
    /// `/api/connections` on a drill without WireGuard access for teams.
    #[error(
        "this drill has no VPN, so there are no team connections to show; an organiser gives teams \
         WireGuard access with the scenario's [vpn] table"
    )]
    NoVpn,
    /// `/metrics` without an account's credential.
    #[error(
        "the drill's metrics need an organiser's credential: send `Authorization: Bearer` with an \
         organiser account's API token (`gongfang account token`)"
    )]
    MetricsUnauthenticated,
    /// `/metrics` with the credential of an account that is not an organiser.
    #[error("the drill's metrics are for organisers only; this account is not one")]
    MetricsForbidden,
    /// `?tick=N` names a tick the board cannot show (yet).
    #[error("{0}")]
    NoSuchTick(String),
    /// `?tick=` is not a tick number.
    #[error(
        "`tick` must be a tick number (0, 1, 2 …), as in /api/scoreboard?tick=12; leave it out for the \
         board now"
    )]
    BadTick,
    /// `/api/history/TEAM` names no team that defends.
    #[error("{0}")]
    NoSuchTeam(String),
    /// The stored rulings cannot be scored (edited by hand, or a bug).
    #[error("the stored report rulings are inconsistent: {0}")]
    Inconsistent(String),
    /// Building a JSON answer failed (a bug, never the client's fault).
    #[error("could not encode the answer: {0}")]
    Encode(#[from] serde_json::Error),
    /// The certificate or key for HTTPS cannot be used.
    #[error("{0}")]
    Tls(String),
    /// The listener failed while serving.
    #[error("serving the scoreboard failed: {0}")]
    Io(#[from] std::io::Error),
}

impl WebError {
    /// The stable error code and HTTP status of each error: the one table clients rely on.
    ///
    /// | code | status | when |
    /// |---|---|---|
    /// | `store_unavailable` | 503 | the database failed; retry shortly |
    /// | `too_many_connections` | 503 | the live-connection limit is reached |
    /// | `not_found` | 404 | unknown path |
    /// | `no_vpn` | 404 | `/api/connections` on a drill without a VPN |
    /// | `no_such_tick` | 404 | `?tick=N` beyond the latest scored tick (or, while the public board is frozen, beyond the freeze) |
    /// | `bad_tick` | 400 | `?tick=` is not a tick number |
    /// | `no_such_team` | 404 | `/api/history/TEAM` names no team with services |
    /// | `unauthenticated` | 401 | `/metrics` without an account's credential |
    /// | `organisers_only` | 403 | `/metrics` with an account that is not an organiser |
    /// | `internal` | 500 | a bug in the scoreboard |
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        match self {
            WebError::Store(_) => ("store_unavailable", StatusCode::SERVICE_UNAVAILABLE),
            WebError::TooManyConnections { .. } => ("too_many_connections", StatusCode::SERVICE_UNAVAILABLE),
            WebError::NotFound(_) => ("not_found", StatusCode::NOT_FOUND),
            WebError::NoVpn => ("no_vpn", StatusCode::NOT_FOUND),
            WebError::NoSuchTick(_) => ("no_such_tick", StatusCode::NOT_FOUND),
            WebError::BadTick => ("bad_tick", StatusCode::BAD_REQUEST),
            WebError::NoSuchTeam(_) => ("no_such_team", StatusCode::NOT_FOUND),
            WebError::MetricsUnauthenticated => ("unauthenticated", StatusCode::UNAUTHORIZED),
            WebError::MetricsForbidden => ("organisers_only", StatusCode::FORBIDDEN),
            WebError::Inconsistent(_) | WebError::Encode(_) | WebError::Io(_) | WebError::Tls(_) => {
                ("internal", StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (code, status) = self.code_and_status();
        if status.is_server_error() {
            tracing::warn!(error = %self, code, "scoreboard request failed");
        }
        // A store error's text may carry SQL details; spectators get a plain sentence.
        let message = match &self {
            WebError::Store(_) => "the scoreboard's database is unavailable; try again in a few seconds".to_owned(),
            WebError::Inconsistent(_) | WebError::Encode(_) | WebError::Io(_) | WebError::Tls(_) => {
                "internal error; the organisers have been told".to_owned()
            }
            other => other.to_string(),
        };
        (status, Json(ErrorBody { error: ErrorDetail { code, message } })).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let cases = [
            (WebError::Store(gongfang_store::StoreError::UnknownTeam("x".into())), "store_unavailable", 503),
            (WebError::TooManyConnections { limit: 3 }, "too_many_connections", 503),
            (WebError::NotFound("/x".into()), "not_found", 404),
            (WebError::NoVpn, "no_vpn", 404),
            (WebError::NoSuchTick("x".into()), "no_such_tick", 404),
            (WebError::BadTick, "bad_tick", 400),
            (WebError::NoSuchTeam("x".into()), "no_such_team", 404),
            (WebError::MetricsUnauthenticated, "unauthenticated", 401),
            (WebError::MetricsForbidden, "organisers_only", 403),
        ];
        for (error, code, status) in cases {
            assert_eq!(error.code_and_status(), (code, StatusCode::from_u16(status).unwrap()));
        }
    }
}
