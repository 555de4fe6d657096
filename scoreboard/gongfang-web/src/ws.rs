//! `GET /ws`: the live feed. A snapshot first, then every game event as it happens.
//!
//! Each connection subscribes to the one broadcast channel the engine and the submission
//! servers publish on, so a publisher never waits for a spectator. The channel's per-receiver
//! buffer is the connection's queue: a connection that falls behind by more than the channel's
//! capacity gets `Lagged`, skips what is queued and sends a fresh snapshot instead. A socket
//! that does not take a message within the send timeout is dropped. A quiet connection is
//! pinged every 30 seconds so proxies do not close it.

use std::future::pending;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use crate::board::{Scoreboard, Snapshot};
use crate::clock::ClockView;
use crate::error::WebError;
use crate::state::WebState;

/// Spectators send nothing but pings and close frames.
const MAX_INCOMING: usize = 4 << 10;

/// How often an otherwise quiet connection is pinged, so proxies do not close it as idle
/// during a long tick.
const KEEPALIVE: Duration = Duration::from_secs(30);

/// `GET /ws`.
pub(crate) async fn upgrade(State(state): State<WebState>, ws: WebSocketUpgrade) -> Response {
    let limit = state.inner.settings.max_connections;
    let Ok(permit) = state.inner.connections.clone().try_acquire_owned() else {
        return WebError::TooManyConnections { limit }.into_response();
    };
    ws.max_message_size(MAX_INCOMING).max_frame_size(MAX_INCOMING).on_upgrade(move |socket| async move {
        serve(socket, state).await;
        drop(permit);
    })
}

/// Why a connection ends.
enum End {
    /// The client closed or the socket broke; nothing more to send.
    Gone,
    /// The client did not take a message in time.
    TooSlow,
    /// The server is shutting down.
    Closing,
    /// A snapshot could not be built.
    Failed(WebError),
}

#[derive(Serialize)]
struct ClockMessage {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    clock: ClockView,
}

#[derive(Serialize)]
struct ErrorMessage {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'static str,
    message: String,
}

async fn serve(mut socket: WebSocket, state: WebState) {
    let end = feed(&mut socket, &state).await;
    let goodbye = match &end {
        End::Gone => None,
        End::TooSlow => {
            tracing::debug!("dropping a spectator whose socket stopped taking messages");
            None
        }
        End::Closing => Some(CloseFrame { code: close_code::AWAY, reason: "server shutting down".into() }),
        End::Failed(error) => {
            let (code, _) = error.code_and_status();
            tracing::warn!(%error, "live feed could not send a snapshot");
            let message =
                ErrorMessage { kind: "error", code, message: "scoreboard data unavailable; reconnect".into() };
            if let Ok(text) = serde_json::to_string(&message) {
                let _ = send(&mut socket, &state, Message::Text(text.into())).await;
            }
            Some(CloseFrame { code: close_code::ERROR, reason: code.into() })
        }
    };
    if let Some(frame) = goodbye {
        let timeout = state.inner.settings.send_timeout;
        let _ = tokio::time::timeout(timeout, socket.send(Message::Close(Some(frame)))).await;
    }
}

async fn feed(socket: &mut WebSocket, state: &WebState) -> End {
    // Subscribe before reading the snapshot, so nothing that happens in between is missed.
    let mut events = state.inner.events.subscribe();
    let mut clock = state.inner.clock.clone();
    clock.mark_unchanged();
    let mut clock_live = true;
    let mut closing = state.inner.closing.subscribe();
    if *closing.borrow_and_update() {
        return End::Closing;
    }

    if let Err(end) = send_snapshot(socket, state).await {
        return end;
    }
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let message = tokio::select! {
            event = events.recv() => match event {
                Ok(event) => {
                    state.note(&event);
                    match serde_json::to_string(&event) {
                        Ok(text) => Message::Text(text.into()),
                        Err(e) => return End::Failed(e.into()),
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "spectator fell behind; sending a fresh snapshot");
                    // What is still queued is older than the snapshot: skip it.
                    events = events.resubscribe();
                    if let Err(end) = send_snapshot(socket, state).await {
                        return end;
                    }
                    continue;
                }
                Err(RecvError::Closed) => return End::Closing,
            },
            changed = async { if clock_live { clock.changed().await } else { pending().await } } => {
                if changed.is_err() {
                    // The engine is gone; the clock will not move again.
                    clock_live = false;
                    continue;
                }
                let view = ClockView::of(&clock.borrow_and_update(), Utc::now());
                match serde_json::to_string(&ClockMessage { kind: "clock", clock: view }) {
                    Ok(text) => Message::Text(text.into()),
                    Err(e) => return End::Failed(e.into()),
                }
            }
            _ = keepalive.tick() => Message::Ping(Default::default()),
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return End::Gone,
                // Pings are answered by the socket itself; anything else is ignored.
                Some(Ok(_)) => continue,
            },
            _ = closing.changed() => return End::Closing,
        };
        if let Err(end) = send(socket, state, message).await {
            return end;
        }
        keepalive.reset();
    }
}

async fn send_snapshot(socket: &mut WebSocket, state: &WebState) -> Result<(), End> {
    let board = state.board().await.map_err(End::Failed)?;
    let snapshot = Snapshot {
        kind: "snapshot",
        scoreboard: Scoreboard { board: &board, clock: ClockView::of(&state.clock(), Utc::now()) },
    };
    let text = serde_json::to_string(&snapshot).map_err(|e| End::Failed(e.into()))?;
    send(socket, state, Message::Text(text.into())).await
}

async fn send(socket: &mut WebSocket, state: &WebState, message: Message) -> Result<(), End> {
    match tokio::time::timeout(state.inner.settings.send_timeout, socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => Err(End::TooSlow),
    }
}
