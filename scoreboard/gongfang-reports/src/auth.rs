//! Who is asking: a team (its `X-Team-Token`) or a judge (HTTP basic, or a bearer token from
//! a login). Passwords and tokens are checked by the store with argon2 on blocking threads and
//! never logged.

use axum::http::{HeaderMap, header};
use base64::Engine;
use gongfang_core::wire::TEAM_TOKEN_HEADER;
use gongfang_core::{AccountRole, TeamId};
use gongfang_store::Account;

use crate::error::ReportsError;
use crate::state::ReportsState;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    Team(TeamId),
    Judge(Account),
}

/// Authenticates whoever sent `headers`. Judge credentials win when both are sent.
pub(crate) async fn caller(state: &ReportsState, headers: &HeaderMap) -> Result<Caller, ReportsError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ReportsError::BadCredentials)?.trim();
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let account = if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or(ReportsError::BadCredentials)?;
            let (name, password) = decoded.split_once(':').ok_or(ReportsError::BadCredentials)?;
            state.store().verify_account(name, password).await?.ok_or(ReportsError::BadCredentials)?
        } else if scheme.eq_ignore_ascii_case("bearer") {
            state.inner.sessions.get(rest.trim(), state.now()).ok_or(ReportsError::BadCredentials)?
        } else {
            return Err(ReportsError::BadCredentials);
        };
        if account.role != AccountRole::Judge {
            return Err(ReportsError::JudgesOnly);
        }
        return Ok(Caller::Judge(account));
    }
    let token = headers.get(TEAM_TOKEN_HEADER).and_then(|v| v.to_str().ok()).map(str::trim).filter(|t| !t.is_empty());
    match token {
        Some(token) => match state.store().verify_token(token).await? {
            Some(team) => Ok(Caller::Team(team)),
            None => Err(ReportsError::BadToken),
        },
        None => Err(ReportsError::Unauthenticated),
    }
}

/// The calling team; judges are refused.
pub(crate) async fn team(state: &ReportsState, headers: &HeaderMap) -> Result<TeamId, ReportsError> {
    match caller(state, headers).await? {
        Caller::Team(t) => Ok(t),
        Caller::Judge(_) => Err(ReportsError::TeamsOnly),
    }
}

/// The calling judge; teams are refused.
pub(crate) async fn judge(state: &ReportsState, headers: &HeaderMap) -> Result<Account, ReportsError> {
    match caller(state, headers).await {
        Ok(Caller::Judge(a)) => Ok(a),
        Ok(Caller::Team(_)) => Err(ReportsError::JudgesOnly),
        Err(ReportsError::Unauthenticated) => Err(ReportsError::NoJudgeCredentials),
        Err(e) => Err(e),
    }
}
