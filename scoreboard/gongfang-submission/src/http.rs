//! The HTTP front end: `PUT /flags` as ForcAD and HackerDom serve it and DestructiveFarm
//! submits to it. Request errors are JSON `{"error": …}` with the status from one table.
//!
//! Wrong tokens count in the drill's failure back-off by the peer's address, which the server
//! puts in each request's extensions (`ConnectInfo<SocketAddr>`); without it, every request
//! counts against one shared "unknown" source.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Extension, Router};
use gongfang_core::wire::{CSRF_HEADER, SESSION_COOKIE, TEAM_TOKEN_HEADER, cookie};
use serde::Serialize;

use crate::answer::Answer;
use crate::auth::TokenCheck;
use crate::state::{SubmissionState, Verdict};

/// The routes of flag submission, to be merged into the web application. `/flags/` is the
/// same route: farms are configured with a URL typed by hand, and a trailing slash must not
/// turn every submission into a 404.
pub fn router(state: SubmissionState) -> Router {
    Router::new()
        .route("/flags", put(put_flags))
        .route("/flags/", put(put_flags))
        .layer(axum::middleware::map_response(nosniff))
        .with_state(state)
}

/// Every answer says `nosniff`: it echoes the flags a client sent, and no browser may take
/// that for a page.
async fn nosniff(mut response: Response) -> Response {
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Why a whole request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RequestError {
    MissingToken,
    /// A portal session's cookie without its CSRF token.
    MissingCsrf,
    BadToken,
    /// The token of a team taken out of the drill.
    TeamDisabled,
    /// Too many wrong tokens from this address lately: this one was not checked.
    BackedOff {
        retry_after_secs: u64,
    },
    TooLarge(usize),
    BadJson(String),
    TooManyFlags {
        got: usize,
        max: usize,
    },
    RateLimited {
        retry_after_secs: u64,
    },
    Unavailable,
}

impl RequestError {
    /// The table: status and message of each refusal.
    fn parts(&self) -> (StatusCode, String) {
        match self {
            RequestError::MissingToken => {
                (StatusCode::UNAUTHORIZED, format!("missing {TEAM_TOKEN_HEADER} header with your team token"))
            }
            RequestError::MissingCsrf => (
                StatusCode::FORBIDDEN,
                format!(
                    "this request carries a portal session cookie but not the session's CSRF token ({CSRF_HEADER}); \
                     reload the portal and try again, or send your team token in {TEAM_TOKEN_HEADER}"
                ),
            ),
            RequestError::BadToken => (StatusCode::UNAUTHORIZED, "invalid team token".to_owned()),
            RequestError::TeamDisabled => {
                (StatusCode::FORBIDDEN, "your team was taken out of the drill by the organisers".to_owned())
            }
            RequestError::BackedOff { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many wrong team tokens from your address; the token was not checked; try again in \
                     {retry_after_secs} s"
                ),
            ),
            RequestError::TooLarge(max) => {
                (StatusCode::PAYLOAD_TOO_LARGE, format!("request body larger than {max} bytes"))
            }
            RequestError::BadJson(why) => {
                (StatusCode::BAD_REQUEST, format!("body must be a JSON array of flag strings: {why}"))
            }
            RequestError::TooManyFlags { got, max } => {
                (StatusCode::PAYLOAD_TOO_LARGE, format!("{got} flags in one request; at most {max}"))
            }
            RequestError::RateLimited { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("rate limit exceeded, try again later (in {retry_after_secs} s)"),
            ),
            RequestError::Unavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "internal error, try again later".to_owned())
            }
        }
    }
}

impl IntoResponse for RequestError {
    fn into_response(self) -> Response {
        let (status, error) = self.parts();
        let mut response = (status, axum::Json(serde_json::json!({ "error": error }))).into_response();
        if let RequestError::RateLimited { retry_after_secs } | RequestError::BackedOff { retry_after_secs } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

/// One item of the answer.
#[derive(Debug, Serialize)]
struct FlagAnswer {
    flag: String,
    msg: &'static str,
}

async fn put_flags(
    State(state): State<SubmissionState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ip = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    match submit(&state, ip, &headers, body).await {
        Ok(answers) => axum::Json(answers).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn submit(
    state: &SubmissionState,
    ip: Option<IpAddr>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<FlagAnswer>, RequestError> {
    let token = headers.get(TEAM_TOKEN_HEADER).and_then(|v| v.to_str().ok()).map(str::trim).filter(|t| !t.is_empty());
    let check = match token {
        Some(token) => state.check_token(Some(token), ip).await,
        // The team's portal: its session cookie, with the session's CSRF token.
        None => {
            let session = headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|v| cookie(v, SESSION_COOKIE))
                .ok_or(RequestError::MissingToken)?;
            let csrf = headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .ok_or(RequestError::MissingCsrf)?;
            state.check_session(session, csrf, ip).await
        }
    };
    let team = match check {
        Ok(TokenCheck::Team(team)) => team,
        Ok(TokenCheck::Wrong) => return Err(RequestError::BadToken),
        Ok(TokenCheck::Disabled(_)) => return Err(RequestError::TeamDisabled),
        Ok(TokenCheck::BackedOff(wait)) => {
            return Err(RequestError::BackedOff { retry_after_secs: gongfang_core::throttle::retry_after_secs(wait) });
        }
        Err(error) => {
            tracing::error!(%error, "token verification failed");
            return Err(RequestError::Unavailable);
        }
    };
    let max_body = state.settings().http_max_body;
    let bytes = axum::body::to_bytes(body, max_body).await.map_err(|_| RequestError::TooLarge(max_body))?;
    let flags: Vec<String> = serde_json::from_slice(&bytes).map_err(|e| RequestError::BadJson(e.to_string()))?;
    let max = state.settings().http_max_flags;
    if flags.len() > max {
        return Err(RequestError::TooManyFlags { got: flags.len(), max });
    }
    if let Err(wait) = state.inner.rate.charge(team, flags.len(), Instant::now()) {
        return Err(RequestError::RateLimited { retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64 });
    }
    let clock = state.clock();
    let received = chrono::Utc::now();
    let deadline = tokio::time::Instant::now() + state.settings().answer_within;
    let mut verdicts = Vec::with_capacity(flags.len());
    for flag in &flags {
        verdicts.push(state.submit(team, flag.trim().as_bytes(), clock, received).await);
    }
    let mut answers = Vec::with_capacity(flags.len());
    for (flag, verdict) in flags.into_iter().zip(verdicts) {
        let answer: Answer = match verdict {
            Verdict::Now(a) => a,
            later => tokio::time::timeout_at(deadline, later.resolve()).await.unwrap_or(Answer::Busy),
        };
        crate::metrics::answered(answer);
        answers.push(FlagAnswer { flag, msg: answer.reply().http });
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_errors_map_to_client_statuses() {
        assert_eq!(RequestError::BadToken.parts().0, StatusCode::UNAUTHORIZED);
        assert_eq!(RequestError::TooLarge(1).parts().0, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(RequestError::BadJson(String::new()).parts().0, StatusCode::BAD_REQUEST);
        assert_eq!(RequestError::RateLimited { retry_after_secs: 1 }.parts().0, StatusCode::TOO_MANY_REQUESTS);
        assert!(RequestError::RateLimited { retry_after_secs: 1 }.parts().1.contains("try again later"));
        let backed_off = RequestError::BackedOff { retry_after_secs: 7 }.into_response();
        assert_eq!(backed_off.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(backed_off.headers()[header::RETRY_AFTER], "7");
    }
}
