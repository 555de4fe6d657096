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
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use gongfang_core::event::GameEvent;
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

/// `GET /ws`. Organisers and judges (by their session cookie or API token) get the live feed
/// even while the public board is frozen; everyone else the public one.
pub(crate) async fn upgrade(State(state): State<WebState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let limit = state.inner.settings.max_connections;
    let Ok(permit) = state.inner.connections.clone().try_acquire_owned() else {
        return WebError::TooManyConnections { limit }.into_response();
    };
    let view = if state.sees_live(&headers).await { View::Live } else { View::Public };
    ws.max_message_size(MAX_INCOMING).max_frame_size(MAX_INCOMING).on_upgrade(move |socket| async move {
        serve(socket, state, view).await;
        drop(permit);
    })
}

/// Which feed a connection gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    /// Every event, and the live board's snapshots.
    Live,
    /// The public board's snapshots; while it is frozen, only the events that tell nothing
    /// about the game after the freeze.
    Public,
}

/// Whether a spectator of a frozen board is sent `event`: the clock, the drill's state and
/// announcements go out; verdicts, captures, scores, adjustments and rulings wait for the freeze
/// to lift.
fn shown_while_frozen(event: &GameEvent) -> bool {
    match event {
        GameEvent::TickOpened { .. }
        | GameEvent::TickClosed { .. }
        | GameEvent::Paused
        | GameEvent::Resumed
        | GameEvent::Extended { .. }
        | GameEvent::Announcement { .. }
        | GameEvent::BoardFrozen { .. } => true,
        GameEvent::VerdictChanged { .. }
        | GameEvent::FlagCaptured { .. }
        | GameEvent::FirstBlood { .. }
        | GameEvent::ScoresUpdated { .. }
        | GameEvent::Rescored { .. }
        | GameEvent::ScoreAdjusted { .. }
        | GameEvent::ReportRuled { .. } => false,
    }
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

async fn serve(mut socket: WebSocket, state: WebState, view: View) {
    let end = feed(&mut socket, &state, view).await;
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

async fn feed(socket: &mut WebSocket, state: &WebState, view: View) -> End {
    // Subscribe before reading the snapshot, so nothing that happens in between is missed.
    let mut events = state.inner.events.subscribe();
    let mut clock = state.inner.clock.clone();
    clock.mark_unchanged();
    let mut clock_live = true;
    let mut closing = state.inner.closing.subscribe();
    if *closing.borrow_and_update() {
        return End::Closing;
    }

    let mut frozen = match send_snapshot(socket, state, view).await {
        Ok(frozen) => frozen,
        Err(end) => return end,
    };
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let message = tokio::select! {
            event = events.recv() => match event {
                Ok(event) => {
                    state.note(&event);
                    if frozen && !shown_while_frozen(&event) {
                        continue;
                    }
                    let text = match serde_json::to_string(&event) {
                        Ok(text) => text,
                        Err(e) => return End::Failed(e.into()),
                    };
                    if let GameEvent::BoardFrozen { .. } = event {
                        // The event, then the board as this connection now sees it.
                        if let Err(end) = send(socket, state, Message::Text(text.into())).await {
                            return end;
                        }
                        frozen = match send_snapshot(socket, state, view).await {
                            Ok(frozen) => frozen,
                            Err(end) => return end,
                        };
                        continue;
                    }
                    Message::Text(text.into())
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "spectator fell behind; sending a fresh snapshot");
                    // What is still queued is older than the snapshot: skip it.
                    events = events.resubscribe();
                    frozen = match send_snapshot(socket, state, view).await {
                        Ok(frozen) => frozen,
                        Err(end) => return end,
                    };
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

/// Sends the connection's board; whether it is a frozen one.
async fn send_snapshot(socket: &mut WebSocket, state: &WebState, view: View) -> Result<bool, End> {
    let board = match view {
        View::Live => state.live_board().await,
        View::Public => state.board().await,
    }
    .map_err(End::Failed)?;
    let frozen = board.freeze.as_ref().is_some_and(|f| !f.live);
    let snapshot = Snapshot {
        kind: "snapshot",
        scoreboard: Scoreboard { board: &board, clock: ClockView::of(&state.clock(), Utc::now()) },
    };
    let text = serde_json::to_string(&snapshot).map_err(|e| End::Failed(e.into()))?;
    send(socket, state, Message::Text(text.into())).await?;
    Ok(frozen)
}

async fn send(socket: &mut WebSocket, state: &WebState, message: Message) -> Result<(), End> {
    match tokio::time::timeout(state.inner.settings.send_timeout, socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => Err(End::TooSlow),
    }
}
