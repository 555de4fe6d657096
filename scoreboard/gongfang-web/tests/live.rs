//! The websocket feed with real clients (tokio-tungstenite): snapshot first, then events and
//! clock changes; a client that falls behind gets a fresh snapshot, a stalled one is dropped,
//! and neither disturbs anyone else.

mod common;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use common::*;
use futures::{SinkExt, StreamExt};
use gongfang_core::event::GameEvent;
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick};
use gongfang_test_support::http::get;
use gongfang_web::WebSettings;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

async fn connect(app: &App) -> Result<Client> {
    let (socket, _) = tokio::time::timeout(WAIT, connect_async(app.ws_url())).await.context("connect timed out")??;
    Ok(socket)
}

/// An announcement big enough that a few hundred of them overflow any socket buffer.
fn big_announcement(id: i64) -> GameEvent {
    GameEvent::Announcement { id, title: format!("{id}:{}", "x".repeat(256 << 10)), title_zh: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gets_a_snapshot_then_events_then_clock_changes() -> Result<()> {
    let app = App::start(64, WebSettings::default()).await?;
    let mut client = connect(&app).await?;

    let snapshot = next_json(&mut client).await?;
    assert_eq!(snapshot["type"], "snapshot");
    let mut body = without_now(snapshot);
    body.as_object_mut().unwrap().remove("type");
    let api = without_now(get(app.addr, "/api/scoreboard").await?.json()?);
    assert_eq!(body, api, "the snapshot is /api/scoreboard's body");

    let capture = GameEvent::FlagCaptured {
        tick: Tick(2),
        attacker: TeamId(1),
        victim: TeamId(2),
        service: ServiceId(1),
        store: StoreIdx(1),
        planted: Tick(1),
    };
    app.events.send(capture.clone())?;
    let got = next_json(&mut client).await?;
    assert_eq!(got, serde_json::to_value(&capture)?);
    assert_eq!(got["type"], "flag_captured");

    app.clock.send_replace(clock_at(3));
    let clock = next_json(&mut client).await?;
    assert_eq!(clock["type"], "clock");
    assert_eq!(clock["tick"], 3);
    assert_eq!(clock["next_tick_at"], "2026-11-21T01:04:00Z");

    // After the engine closes a tick, a new client's snapshot already shows it.
    close_tick_two(&app.store).await?;
    app.events.send(GameEvent::TickClosed { tick: Tick(2) })?;
    app.events.send(GameEvent::ScoresUpdated { tick: Tick(2) })?;
    assert_eq!(next_json(&mut client).await?["type"], "tick_closed");
    assert_eq!(next_json(&mut client).await?["type"], "scores_updated");
    let mut late = connect(&app).await?;
    let fresh = next_json(&mut late).await?;
    assert_eq!(fresh["tick"], 2);
    assert_eq!(fresh["teams"][0]["total"], 21.0);

    client.close(None).await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_client_gets_a_fresh_snapshot_and_the_others_miss_nothing() -> Result<()> {
    const CAPACITY: usize = 16;
    const EVENTS: i64 = 200;
    // Long enough that the slow client is kept, so it lags instead of being dropped.
    let settings = WebSettings { send_timeout: Duration::from_secs(60), ..WebSettings::default() };
    let app = App::start(CAPACITY, settings).await?;
    let mut healthy = connect(&app).await?;
    let mut slow = connect(&app).await?;
    assert_eq!(next_json(&mut healthy).await?["type"], "snapshot");
    assert_eq!(next_json(&mut slow).await?["type"], "snapshot");

    // The slow client reads nothing while the healthy one takes every event as it comes:
    // the slow one's socket fills up, its connection stops draining the channel, and it
    // falls more than CAPACITY events behind.
    for id in 0..EVENTS {
        app.events.send(big_announcement(id))?;
        let got = next_json(&mut healthy).await?;
        assert_eq!(got["type"], "announcement");
        assert_eq!(got["id"], id, "the healthy client gets every event, in order");
    }
    // Then it catches up: whatever its socket held, then a snapshot in place of what it lost.
    let mut seen = Vec::new();
    let resync = loop {
        let msg = next_json(&mut slow).await?;
        match msg["type"].as_str() {
            Some("announcement") => seen.push(msg["id"].as_i64().unwrap()),
            Some("snapshot") => break msg,
            other => bail!("unexpected message {other:?}"),
        }
    };
    assert!(seen.len() < EVENTS as usize, "the slow client cannot have received everything: {}", seen.len());
    assert!(seen.windows(2).all(|w| w[0] + 1 == w[1]), "what it got before the snapshot is in order");
    assert_eq!(resync["tick"], 1);
    assert!(resync["teams"].as_array().is_some_and(|t| t.len() == 4));

    // Both are live afterwards; the healthy one never saw a second snapshot.
    app.events.send(GameEvent::Paused)?;
    assert_eq!(next_json(&mut healthy).await?["type"], "paused");
    let after = loop {
        let msg = next_json(&mut slow).await?;
        if msg["type"] != "announcement" {
            break msg;
        }
    };
    assert_eq!(after["type"], "paused");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_dropped_without_slowing_the_others() -> Result<()> {
    const EVENTS: i64 = 200;
    let settings = WebSettings { send_timeout: Duration::from_millis(300), ..WebSettings::default() };
    let app = App::start(1024, settings).await?;
    let mut healthy = connect(&app).await?;
    let mut stalled = connect(&app).await?;
    assert_eq!(next_json(&mut healthy).await?["type"], "snapshot");
    assert_eq!(next_json(&mut stalled).await?["type"], "snapshot");

    for id in 0..EVENTS {
        app.events.send(big_announcement(id))?;
        assert_eq!(next_json(&mut healthy).await?["id"], id);
    }
    // Give the stalled connection's write time to time out.
    tokio::time::sleep(Duration::from_millis(600)).await;

    // The stalled client finds some events in its buffers, then the end of the connection.
    let mut received = 0;
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match stalled.next().await {
                Some(Ok(Message::Text(_))) => received += 1,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stalled client was not disconnected");
    assert!(received < EVENTS, "a dropped client cannot have received everything");

    // The healthy client is still served.
    app.events.send(GameEvent::Resumed)?;
    assert_eq!(next_json(&mut healthy).await?["type"], "resumed");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_refused_with_503() -> Result<()> {
    let settings = WebSettings { max_connections: 1, ..WebSettings::default() };
    let app = App::start(16, settings).await?;
    let mut first = connect(&app).await?;
    assert_eq!(next_json(&mut first).await?["type"], "snapshot");
    match tokio::time::timeout(WAIT, connect_async(app.ws_url())).await? {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => bail!("a second connection should be refused, got {other:?}"),
    }
    // A place frees up when the first one leaves.
    first.close(None).await?;
    drop(first);
    let mut again = eventually("a free connection slot", || async {
        Ok(tokio::time::timeout(WAIT, connect_async(app.ws_url())).await?.ok().map(|(s, _)| s))
    })
    .await?;
    assert_eq!(next_json(&mut again).await?["type"], "snapshot");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_says_going_away() -> Result<()> {
    let app = App::start(16, WebSettings::default()).await?;
    let mut client = connect(&app).await?;
    assert_eq!(next_json(&mut client).await?["type"], "snapshot");
    let stopping = tokio::spawn(app.stop());
    let frame = loop {
        match tokio::time::timeout(WAIT, client.next()).await?.context("socket ended without a close frame")?? {
            Message::Close(frame) => break frame,
            _ => continue,
        }
    };
    assert_eq!(frame.map(|f| f.code), Some(CloseCode::Away));
    let _ = client.send(Message::Close(None)).await;
    stopping.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_spectators_share_one_broadcast() -> Result<()> {
    const SPECTATORS: usize = 1000;
    // All from one loopback address: above the default per-address cap.
    let app = App::start(64, WebSettings { max_connections_per_address: SPECTATORS, ..WebSettings::default() }).await?;
    let mut clients = Vec::with_capacity(SPECTATORS);
    // In waves, so the listen backlog never overflows.
    for _ in 0..SPECTATORS / 100 {
        let wave = futures::future::join_all((0..100).map(|_| async {
            let mut client = connect(&app).await?;
            let snapshot = next_json(&mut client).await?;
            anyhow::ensure!(snapshot["type"] == "snapshot" && snapshot["tick"] == 1, "bad snapshot {snapshot}");
            Ok::<_, anyhow::Error>(client)
        }))
        .await;
        for client in wave {
            clients.push(client?);
        }
    }
    let event = GameEvent::FirstBlood { tick: Tick(2), attacker: TeamId(4), victim: TeamId(1), service: ServiceId(1) };
    app.events.send(event.clone())?;
    let expected = serde_json::to_value(&event)?;
    let got = futures::future::join_all(clients.iter_mut().map(next_json)).await;
    let delivered = got.into_iter().filter(|g| g.as_ref().is_ok_and(|v| *v == expected)).count();
    assert_eq!(delivered, SPECTATORS, "every spectator gets the event");
    app.stop().await
}
