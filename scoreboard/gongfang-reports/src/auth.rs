//! Who is asking: a team (its `X-Team-Token`, or its portal session's cookie) or a judge (a
//! bearer session token from `POST /api/judge/login`, or a browser session's cookie). HTTP
//! basic authentication is accepted at the judges' login only.
//!
//! Team tokens and session tokens are checked by keyed hash (cheap); passwords by argon2id,
//! at the login only. Every wrong credential counts in the drill's shared [`Backoff`]: too many
//! from one address, or for one judge's name, and the next ones are answered `429` with
//! `Retry-After` without being checked. Nothing here logs a credential.
//!
//! The peer's address comes from the `ConnectInfo<SocketAddr>` the server puts in each
//! request's extensions; a request without it (a server that does not provide it) counts
//! against one shared "unknown" source.
//!
//! [`Backoff`]: gongfang_core::throttle::Backoff

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use gongfang_core::wire::TEAM_TOKEN_HEADER;
use gongfang_core::{AccountRole, Secret, TeamId};
use gongfang_store::{Account, SessionHolder};

use crate::error::ReportsError;
use crate::state::ReportsState;

tokio::task_local! {
    /// The address of the peer whose request the current task serves.
    static PEER: Option<IpAddr>;
}

/// Middleware: makes the request's peer address known to the checks below for as long as its
/// handler runs, so every handler need not pass it along.
pub(crate) async fn with_peer(req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
    PEER.scope(peer, next.run(req)).await
}

/// The address of the peer being served, if the server said.
pub(crate) fn peer() -> Option<IpAddr> {
    PEER.try_with(|p| *p).ok().flatten()
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    Team(TeamId),
    Judge(Account),
}

/// Refuses the request if its address is backed off.
pub(crate) fn not_backed_off(
    state: &ReportsState,
    ip: Option<IpAddr>,
    account: Option<&str>,
) -> Result<(), ReportsError> {
    state
        .backoff()
        .check(ip, account, Instant::now())
        .map_err(|wait| ReportsError::BackedOff { retry_after_secs: gongfang_core::throttle::retry_after_secs(wait) })
}

/// The bearer token of an `Authorization` header, or why there is none to use.
fn bearer(value: &str) -> Result<&str, ReportsError> {
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        Ok(rest.trim())
    } else if scheme.eq_ignore_ascii_case("basic") {
        Err(ReportsError::LoginFirst)
    } else {
        Err(ReportsError::BadSession)
    }
}

/// The session token sent with a request (`Authorization: Bearer …`), if any.
pub(crate) fn session_token(headers: &HeaderMap) -> Result<Option<&str>, ReportsError> {
    match headers.get(header::AUTHORIZATION) {
        None => Ok(None),
        Some(value) => bearer(value.to_str().map_err(|_| ReportsError::BadSession)?.trim()).map(Some),
    }
}

/// Authenticates whoever sent `headers`. A judge's session wins when both are sent.
pub(crate) async fn caller(state: &ReportsState, headers: &HeaderMap) -> Result<Caller, ReportsError> {
    let ip = peer();
    if let Some(token) = session_token(headers)? {
        not_backed_off(state, ip, None)?;
        let Some(account) = state.store().session_account(token, state.now()).await? else {
            state.backoff().failed(ip, None, Instant::now());
            return Err(ReportsError::BadSession);
        };
        if account.role != AccountRole::Judge {
            return Err(ReportsError::JudgesOnly);
        }
        return Ok(Caller::Judge(account));
    }
    let token = headers.get(TEAM_TOKEN_HEADER).and_then(|v| v.to_str().ok()).map(str::trim).filter(|t| !t.is_empty());
    let Some(token) = token else {
        return match crate::session::holder(state, headers).await? {
            Some(SessionHolder::Team(team)) => Ok(Caller::Team(team)),
            Some(SessionHolder::Account(account)) if account.role == AccountRole::Judge => Ok(Caller::Judge(account)),
            Some(SessionHolder::Account(_)) => Err(ReportsError::JudgesOnly),
            None => Err(ReportsError::Unauthenticated),
        };
    };
    not_backed_off(state, ip, None)?;
    match state.store().token_owner(token).await? {
        Some(owner) if owner.disabled => Err(ReportsError::TeamDisabled),
        Some(owner) => Ok(Caller::Team(owner.team)),
        None => {
            state.backoff().failed(ip, None, Instant::now());
            Err(ReportsError::BadToken)
        }
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

/// A judge's name and password from HTTP basic credentials, if the request sent them.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, Secret)>, ReportsError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| ReportsError::BadCredentials)?.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ReportsError::BadRequest(
            "log in with HTTP basic authentication or a JSON body {\"name\", \"password\"}, not a token".to_owned(),
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(ReportsError::BadCredentials)?;
    let (name, password) = decoded.split_once(':').ok_or(ReportsError::BadCredentials)?;
    Ok(Some((name.to_owned(), Secret::new(password.to_owned()))))
}

/// Checks an account's name and password (argon2id, one of the process's slots), under the
/// back-off: five wrong passwords for one name, or twenty wrong credentials from one address,
/// within a minute, and the next attempts are refused unchecked for a while.
pub(crate) async fn check_password(
    state: &ReportsState,
    name: &str,
    password: &Secret,
) -> Result<Account, ReportsError> {
    let ip = peer();
    not_backed_off(state, ip, Some(name))?;
    let Some(account) = state.store().verify_account(name, password.expose()).await? else {
        state.backoff().failed(ip, Some(name), Instant::now());
        return Err(ReportsError::WrongPassword);
    };
    state.backoff().succeeded(ip, Some(name), Instant::now());
    Ok(account)
}

/// A judge's login ([`check_password`]); a wrong password asks for basic credentials again,
/// and accounts of other roles are refused.
pub(crate) async fn login(state: &ReportsState, name: &str, password: &Secret) -> Result<Account, ReportsError> {
    let account = match check_password(state, name, password).await {
        Err(ReportsError::WrongPassword) => return Err(ReportsError::BadCredentials),
        other => other?,
    };
    if account.role != AccountRole::Judge {
        return Err(ReportsError::JudgesOnly);
    }
    Ok(account)
}
