//! Gongfang's public scoreboard web: the page spectators watch, the JSON teams' scripts read,
//! and a websocket that streams the game as it happens.
//!
//! | path | what |
//! |---|---|
//! | `GET /` | the scoreboard page (HTML, script and style embedded in the binary) |
//! | `GET /static/i18n/{en,zh-HK}.json` | the message catalogues the page (and the portal and console) speak |
//! | `GET /api/scoreboard` | ranking, status grid, first bloods and clock as JSON; `?tick=N` the board as it stood after tick N |
//! | `GET /api/history` | every team's total after each scored tick (at most 300 points) |
//! | `GET /api/history/{team}` | one team's verdict per service for every closed tick |
//! | `GET /api/attack-info`, `GET /attack.json` | targets, addresses, status and flag ids |
//! | `GET /api/connections` | each team's WireGuard peers and latest handshake (drills with a VPN) |
//! | `GET /api/announcements` | the organisers' latest announcements, in English and Chinese |
//! | `GET /ws` | a snapshot, then every [`GameEvent`](gongfang_core::event::GameEvent) as JSON |
//! | `GET /metrics` | the drill's numbers in Prometheus' text format, for organisers only |
//! | `GET /healthz`, `GET /readyz` | the process answers; it can serve the drill (its database answers) |
//!
//! The web only reads the store. It learns that something changed from the game's event
//! channel, caches the scoreboard between changes, and serves every spectator from that one
//! cache and that one channel. The formats are described in `docs/scoreboard.md`. With a
//! certificate ([`WebState::with_tls`]) the port speaks HTTPS only.

mod api;
mod assets;
mod board;
mod clock;
mod connections;
mod error;
mod health;
mod history;
mod metrics;
mod serve;
mod state;
mod tls;
mod ws;

use std::future::Future;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

pub use error::WebError;
pub use serve::SHUTDOWN_GRACE;
pub use state::{MoreMetrics, ServiceEndpoint, WebSettings, WebState};
pub use tls::Tls;

/// The scoreboard's routes, ready to serve or to merge into a larger router.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/static/app.js", get(assets::script))
        .route("/static/app.css", get(assets::style))
        .route("/static/i18n/{name}", get(assets::catalogue))
        .route("/api/scoreboard", get(api::scoreboard))
        .route("/api/announcements", get(api::announcements))
        .route("/api/history", get(api::history))
        .route("/api/history/{team}", get(api::team_history))
        .route("/api/attack-info", get(api::attack_info))
        .route("/attack.json", get(api::attack_info))
        .route("/api/connections", get(connections::connections))
        .route("/ws", get(ws::upgrade))
        .route("/metrics", get(metrics::metrics))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(not_found)
        .layer(axum::middleware::map_response(nosniff))
        .with_state(state)
}

/// Every answer says `nosniff`: the JSON carries names teams chose, and no browser may take it
/// for a page or a script.
async fn nosniff(mut response: axum::response::Response) -> axum::response::Response {
    response
        .headers_mut()
        .insert(axum::http::header::X_CONTENT_TYPE_OPTIONS, axum::http::HeaderValue::from_static("nosniff"));
    response
}

/// Serves the scoreboard on `listener` until `shutdown` resolves; live connections are then
/// closed with "going away", so browsers reconnect to the next server.
pub async fn serve(
    listener: TcpListener,
    state: WebState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    serve_with(listener, state, Router::new(), shutdown).await
}

/// [`serve`] with more routes on the same port: a running drill adds `PUT /flags` there.
/// `extra` must not set a fallback of its own.
///
/// Connections are capped in all and per source address, and their heads, bodies and idle
/// spells are timed, as [`WebSettings`] says; every request carries
/// [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo) in its extensions.
pub async fn serve_with(
    listener: TcpListener,
    state: WebState,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    let closing = state.inner.closing.clone();
    let settings = state.inner.settings;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(
            %addr,
            max_connections = settings.max_http_connections,
            per_address = settings.max_connections_per_address,
            websockets = settings.max_connections,
            "scoreboard listening"
        );
    }
    let tls = state.tls();
    serve::serve(listener, router(state).merge(extra), settings, closing, tls, shutdown).await?;
    Ok(())
}

async fn not_found(uri: axum::http::Uri) -> WebError {
    WebError::NotFound(uri.path().to_owned())
}
