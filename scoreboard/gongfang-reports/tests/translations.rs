//! The judges' read of the VPN gateway's translation log, over real HTTP with the real store
//! (SQLite always, PostgreSQL when `GONGFANG_TEST_POSTGRES_URL` is set): filtered by team,
//! target and time, newest first, judges only, and every bad parameter told.

mod common;

use std::net::Ipv4Addr;

use anyhow::ensure;
use gongfang_core::TeamId;
use gongfang_store::NewVpnTranslation;
use serde_json::{Value, json};

use common::*;

gongfang_test_support::backend_tests!(
    setup = common::spawn;
    judges_read_who_really_connected,
    bad_parameters_are_told_and_teams_are_refused,
);

fn slug(app: &App, team: TeamId) -> String {
    app.scenario.team(team).unwrap().slug.clone()
}

fn translation(minute: i64, team: TeamId, peer: u8, target: [u8; 4], port: u16) -> NewVpnTranslation {
    NewVpnTranslation {
        at: at(minute),
        team,
        peer: Ipv4Addr::new(10, 80, 0, peer),
        target: Ipv4Addr::from(target),
        port,
        seen_as: Ipv4Addr::new(10, 60, 12, 1),
    }
}

async fn read(app: &App, query: &str) -> anyhow::Result<Value> {
    let judge = judge_auth(app, ANA).await;
    let answer = app.request("GET", &format!("/api/judge/translations{query}"), &[(judge.0, &judge.1)], b"").await;
    ensure!(answer.status == 200, "{query}: {}", answer.text());
    answer.json()
}

async fn judges_read_who_really_connected(app: App) -> anyhow::Result<()> {
    app.store
        .record_vpn_translations(&[
            translation(10, RED_FIRM, 4, [10, 60, 12, 2], 7000),
            translation(20, RED_ACADEMY, 8, [10, 60, 12, 2], 7000),
            translation(30, RED_FIRM, 5, [10, 60, 13, 2], 443),
        ])
        .await?;

    let all = read(&app, "").await?;
    let first = &all["translations"][0];
    ensure!(
        *first
            == json!({
                "at": "2026-11-21T01:30:00Z",
                "team": { "id": RED_FIRM.0, "slug": slug(&app, RED_FIRM) },
                "peer": "10.80.0.5",
                "target": "10.60.13.2",
                "port": 443,
                "seen_as": "10.60.12.1",
            }),
        "{first}"
    );
    let peers = |v: &Value| -> Vec<String> {
        v["translations"].as_array().unwrap().iter().map(|t| t["peer"].as_str().unwrap().to_owned()).collect()
    };
    ensure!(peers(&all) == ["10.80.0.5", "10.80.0.8", "10.80.0.4"], "newest first: {all}");

    let firm = read(&app, &format!("?team={}", slug(&app, RED_FIRM))).await?;
    ensure!(peers(&firm) == ["10.80.0.5", "10.80.0.4"], "{firm}");
    let to_crd = read(&app, "?target=10.60.12.2").await?;
    ensure!(peers(&to_crd) == ["10.80.0.8", "10.80.0.4"], "{to_crd}");
    let window = read(&app, "?since=2026-11-21T01:15:00Z&until=2026-11-21T01:30:00Z").await?;
    ensure!(peers(&window) == ["10.80.0.8"], "since inclusive, until exclusive: {window}");
    let offset = read(&app, "?since=2026-11-21T09:20:00%2B08:00").await?;
    ensure!(peers(&offset) == ["10.80.0.5", "10.80.0.8"], "an offset is honoured: {offset}");
    let newest = read(&app, &format!("?team={}&limit=1", slug(&app, RED_FIRM))).await?;
    ensure!(peers(&newest) == ["10.80.0.5"], "{newest}");
    let none = read(&app, "?target=10.60.99.9").await?;
    ensure!(none == json!({ "translations": [] }), "{none}");
    app.stop().await;
    Ok(())
}

async fn bad_parameters_are_told_and_teams_are_refused(app: App) -> anyhow::Result<()> {
    app.store.record_vpn_translations(&[translation(10, RED_FIRM, 4, [10, 60, 12, 2], 7000)]).await?;
    let judge = judge_auth(&app, ANA).await;
    for (query, code, says) in [
        ("?team=nobody", "unknown_team", "nobody"),
        ("?target=10.60.12", "bad_request", "IPv4"),
        ("?since=yesterday", "bad_request", "RFC 3339"),
        ("?until=2026-11-21", "bad_request", "RFC 3339"),
        ("?since=2026-11-21T02:00:00Z&until=2026-11-21T01:00:00Z", "bad_request", "before"),
        ("?limit=0", "bad_request", "1 to 1000"),
        ("?limit=1001", "bad_request", "1 to 1000"),
        ("?limit=many", "bad_request", "1 to 1000"),
        ("?teams=x", "bad_request", "unknown parameter `teams`"),
        ("?limit=1&limit=2", "bad_request", "twice"),
    ] {
        let answer = app.request("GET", &format!("/api/judge/translations{query}"), &[(judge.0, &judge.1)], b"").await;
        ensure!(answer.status == 400 && answer.code() == code, "{query}: {} {}", answer.status, answer.text());
        let message = answer.json()?["error"]["message"].as_str().unwrap_or_default().to_owned();
        ensure!(message.contains(says), "{query}: {message}");
    }

    // Teams never read it, not even their own: it names other teams' peers.
    let team = team_auth(&app, RED_FIRM);
    let refused = app.request("GET", "/api/judge/translations", &[(team.0, &team.1)], b"").await;
    ensure!(refused.status == 403 && refused.code() == "judges_only", "{}", refused.text());
    ensure!(!refused.text().contains("10.80.0.4"));
    let anonymous = app.request("GET", "/api/judge/translations", &[], b"").await;
    ensure!(anonymous.status == 401, "{}", anonymous.text());
    app.stop().await;
    Ok(())
}
