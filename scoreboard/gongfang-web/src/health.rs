//! `GET /healthz` and `GET /readyz` for load balancers and orchestrators: the first says the
//! process answers; the second that it can serve the drill (its database answers, and it is
//! not shutting down), `503` with the reason otherwise. Both are public and cheap to ask: the
//! database is asked at most once a second, whatever the number of callers.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::WebState;

/// How long one answer of the database stands for all callers.
const RECHECK: Duration = Duration::from_secs(1);

/// The database's last answer, and when it was asked.
#[derive(Debug, Default)]
pub(crate) struct Readiness {
    last: Mutex<Option<(Instant, Result<(), String>)>>,
    /// One check at a time: callers meanwhile wait for its answer rather than ask again.
    checking: tokio::sync::Mutex<()>,
}

fn plain(status: StatusCode, text: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], text)
        .into_response()
}

/// `GET /healthz`: `200 ok` while the process answers at all.
pub(crate) async fn healthz() -> Response {
    plain(StatusCode::OK, "ok\n".to_owned())
}

/// `GET /readyz`: `200 ready` when the database answers and the server is not shutting down;
/// `503` saying which is not so.
pub(crate) async fn readyz(State(state): State<WebState>) -> Response {
    if *state.inner.closing.borrow() {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".to_owned());
    }
    match state.inner.readiness.database(&state).await {
        Ok(()) => plain(StatusCode::OK, "ready\n".to_owned()),
        Err(why) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("the database does not answer: {why}\n")),
    }
}

impl Readiness {
    fn recent(&self) -> Option<Result<(), String>> {
        let last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        last.as_ref().filter(|(at, _)| at.elapsed() < RECHECK).map(|(_, answer)| answer.clone())
    }

    /// The database's answer, asked again when the last is older than [`RECHECK`].
    async fn database(&self, state: &WebState) -> Result<(), String> {
        if let Some(answer) = self.recent() {
            return answer;
        }
        let _one = self.checking.lock().await;
        if let Some(answer) = self.recent() {
            return answer;
        }
        let answer = match tokio::time::timeout(RECHECK, state.inner.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {} ms", RECHECK.as_millis())),
        };
        *self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Instant::now(), answer.clone()));
        answer
    }
}
