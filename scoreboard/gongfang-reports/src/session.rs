//! Browser sessions for the team portal and the organisers' console: log in (a team with its
//! token, an account with its name and password), ask who is logged in, log out.
//!
//! The session travels in an HttpOnly, `SameSite=Strict` cookie (`Secure` when the drill
//! serves HTTPS, [`Settings::secure_cookies`](crate::Settings)), never in a page's script.
//! A page learns the session's CSRF token from `GET /api/session` and sends it back in the
//! `X-CSRF-Token` header with every change; [`csrf_guard`] refuses a change made with the
//! cookie alone. Requests that carry a team token or a bearer token are not browser sessions
//! and need no CSRF token.
//!
//! Logins count in the drill's shared back-off like every other credential: twenty wrong ones
//! from an address, or five wrong passwords for one account, within a minute, and the next
//! are answered 429 unchecked.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use gongfang_core::wire::{CSRF_HEADER, SESSION_COOKIE, TEAM_TOKEN_HEADER, cookie};
use gongfang_core::{Secret, TeamId};
use gongfang_store::SessionHolder;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth;
use crate::error::ReportsError;
use crate::state::ReportsState;
use crate::upload::json_body;

type Reply<T> = Result<T, ReportsError>;

/// Largest login body.
const MAX_LOGIN_BODY: usize = 4 << 10;

/// A `Set-Cookie` value that makes a browser forget its session cookie.
pub(crate) const CLEAR_COOKIE: &str = "gongfang_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0";

/// The path of logins, which [`csrf_guard`] lets through (there is no session yet).
pub(crate) const LOGIN_PATH: &str = "/api/session";

/// The session token in the request's cookie, if it sent one.
pub(crate) fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookie(v, SESSION_COOKIE))
        .filter(|t| !t.is_empty())
}

/// Whether the request authenticates with a browser session: a cookie, and no team token or
/// `Authorization` header (those win when sent).
pub(crate) fn uses_cookie(headers: &HeaderMap) -> Option<&str> {
    if headers.contains_key(header::AUTHORIZATION) || headers.contains_key(TEAM_TOKEN_HEADER) {
        return None;
    }
    cookie_token(headers)
}

/// Whose session the request's cookie is, under the back-off; a cookie that is no (longer a)
/// session is answered 401 and counted. `None`: the request has no session cookie.
pub(crate) async fn holder(state: &ReportsState, headers: &HeaderMap) -> Reply<Option<SessionHolder>> {
    let Some(token) = uses_cookie(headers) else { return Ok(None) };
    let ip = auth::peer();
    auth::not_backed_off(state, ip, None)?;
    match state.store().session(token, state.now()).await? {
        Some(holder) => Ok(Some(holder)),
        None => {
            state.backoff().failed(ip, None, Instant::now());
            Err(ReportsError::BadSession)
        }
    }
}

/// Middleware: a change (any method but GET, HEAD and OPTIONS) made with a session cookie must
/// carry that session's CSRF token in `X-CSRF-Token`, or it is refused before its handler runs.
pub(crate) async fn csrf_guard(State(state): State<ReportsState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || (req.method() == Method::POST && req.uri().path() == LOGIN_PATH) {
        return next.run(req).await;
    }
    if let Some(token) = uses_cookie(req.headers()) {
        let presented = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).map(str::trim);
        let verdict = match presented {
            None | Some("") => Err(ReportsError::CsrfMissing),
            Some(presented) => match state.store().csrf_matches(token, presented).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(ReportsError::CsrfMismatch),
                Err(e) => Err(e.into()),
            },
        };
        if let Err(e) = verdict {
            return e.into_response();
        }
    }
    next.run(req).await
}

/// A login: a team's token, or an account's name and password.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    team_token: Option<Secret>,
    name: Option<String>,
    password: Option<Secret>,
}

/// Who is logged in, and the CSRF token their page sends back with each change.
#[derive(Debug, Serialize)]
pub(crate) struct SessionView {
    /// `team`, `organiser`, `judge` or `observer`.
    role: &'static str,
    /// The account's name, or the team's slug.
    name: String,
    /// The team's id (teams only).
    team: Option<TeamId>,
    #[serde(serialize_with = "gongfang_core::secret::serialize_exposed")]
    csrf: Secret,
    /// When the session ends (only at the login; later, the cookie knows).
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
}

async fn view(state: &ReportsState, token: &str, holder: &SessionHolder) -> Reply<SessionView> {
    let csrf = state.store().csrf_token(token).await?;
    Ok(match holder {
        SessionHolder::Account(account) => {
            SessionView { role: account.role.as_str(), name: account.name.clone(), team: None, csrf, expires_at: None }
        }
        SessionHolder::Team(team) => {
            SessionView { role: "team", name: state.team_slug(*team), team: Some(*team), csrf, expires_at: None }
        }
    })
}

/// The `Set-Cookie` value of a session `token` lasting `max_age_secs` (0 ends it).
fn session_cookie(state: &ReportsState, token: &str, max_age_secs: u64) -> HeaderValue {
    let secure = if state.settings().secure_cookies { "; Secure" } else { "" };
    let value = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}");
    HeaderValue::from_str(&value).expect("session tokens are hex digits")
}

/// `POST /api/session`: logs a team or an account in, sets the session cookie, and answers who
/// is logged in with the CSRF token. Audited under whoever logged in.
pub(crate) async fn login(State(state): State<ReportsState>, req: Request) -> Reply<Response> {
    let (parts, body) = req.into_parts();
    let login: Login = json_body(&parts.headers, body, MAX_LOGIN_BODY).await?;
    let now = state.now();
    let ttl = state.settings().session_ttl;
    let ip = auth::peer();
    let (token, holder, actor) = match login {
        Login { team_token: Some(team_token), name: None, password: None } => {
            auth::not_backed_off(&state, ip, None)?;
            let team = match state.store().token_owner(team_token.expose().trim()).await? {
                Some(owner) if owner.disabled => return Err(ReportsError::TeamDisabled),
                Some(owner) => owner.team,
                None => {
                    state.backoff().failed(ip, None, Instant::now());
                    return Err(ReportsError::BadToken);
                }
            };
            let token = state.store().create_team_session(team, ttl, now).await?;
            (token, SessionHolder::Team(team), state.team_actor(team))
        }
        Login { team_token: None, name: Some(name), password: Some(password) } => {
            let account = auth::check_password(&state, name.trim(), &password).await?;
            let token = state.store().create_session(&account, ttl, now).await?;
            let actor = account.actor();
            (token, SessionHolder::Account(account), actor)
        }
        _ => {
            return Err(ReportsError::BadRequest(
                "log in with {\"team_token\": \"…\"} (a team) or {\"name\": \"…\", \"password\": \"…\"} (an \
                 organiser, judge or observer account)"
                    .to_owned(),
            ));
        }
    };
    state
        .store()
        .append_audit(now, &actor, "session.login", &json!({ "address": ip.map(|ip| ip.to_string()) }))
        .await?;
    let mut answer = view(&state, token.expose(), &holder).await?;
    answer.expires_at = Some(now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12)));
    let mut response = axum::Json(answer).into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, token.expose(), ttl.as_secs()));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /api/session`: who the cookie's session belongs to, with its CSRF token; `{"role":
/// null}` when nobody is logged in (no cookie, or one whose session has ended), so a page
/// asking on load is not an error.
pub(crate) async fn current(State(state): State<ReportsState>, headers: HeaderMap) -> Reply<Response> {
    let holder = match holder(&state, &headers).await {
        Ok(Some(holder)) => holder,
        Ok(None) => return Ok(nobody(None)),
        // Expired or logged out elsewhere: the browser is told to forget the cookie, so it
        // stops counting against its address's back-off on every page load.
        Err(ReportsError::BadSession) => return Ok(nobody(Some(HeaderValue::from_static(CLEAR_COOKIE)))),
        Err(e) => return Err(e),
    };
    let token = uses_cookie(&headers).expect("a holder came from the cookie");
    let mut response = axum::Json(view(&state, token, &holder).await?).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The answer when nobody is logged in, clearing a dead cookie when given its removal.
fn nobody(clear: Option<HeaderValue>) -> Response {
    let mut response = ([(header::CACHE_CONTROL, "no-store")], axum::Json(json!({ "role": null }))).into_response();
    if let Some(clear) = clear {
        response.headers_mut().insert(header::SET_COOKIE, clear);
    }
    response
}

/// `DELETE /api/session`: ends the cookie's session and clears the cookie (CSRF-checked like
/// every change).
pub(crate) async fn logout(State(state): State<ReportsState>, headers: HeaderMap) -> Reply<Response> {
    let Some(holder) = holder(&state, &headers).await? else { return Err(ReportsError::NotLoggedIn) };
    let token = uses_cookie(&headers).expect("a holder came from the cookie");
    state.store().revoke_session(token).await?;
    let actor = match &holder {
        SessionHolder::Account(account) => account.actor(),
        SessionHolder::Team(team) => state.team_actor(*team),
    };
    state.store().append_audit(state.now(), &actor, "session.logout", &json!({})).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, "", 0));
    Ok(response)
}
