//! `GET /api/connections` against a real listening server: every team of the scenario with
//! what the binary's last poll of the WireGuard gateway said, following the watch channel
//! without touching the store, `404 no_vpn` on a drill without a VPN, and the page's
//! "Teams connected" section.

mod common;

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use common::*;
use gongfang_test_support::http::get;
use gongfang_web::WebSettings;
use serde_json::{Value, json};
use tokio::sync::watch;

fn entry<'a>(answer: &'a Value, slug: &str) -> &'a Value {
    answer["teams"].as_array().unwrap().iter().find(|t| t["slug"] == slug).unwrap_or_else(|| panic!("no team {slug}"))
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_list_every_team_as_the_gateway_was_last_seen() -> Result<()> {
    let now = Utc::now().trunc_subsecs(0);
    let (_gateway, connections) = watch::channel(gateway_poll(now));
    let app = App::start_at(not_started(now + chrono::Duration::hours(1)), Some(connections)).await?;

    let answer = get(app.addr, "/api/connections").await?;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    let body = answer.json()?;

    let slugs: Vec<&str> = body["teams"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["ddb", "crd", "nop", "red"], "every team of the scenario, in its order");
    let server_now = DateTime::parse_from_rfc3339(body["now"].as_str().context("no `now`")?)?;

    let ddb = entry(&body, "ddb");
    assert_eq!(ddb["id"], 1);
    assert_eq!(ddb["name"], "Digital Development Bureau");
    assert_eq!(ddb["name_zh"], "數字發展局");
    assert_eq!((ddb["peers_issued"].as_u64(), ddb["peers_connected"].as_u64()), (Some(2), Some(2)));
    let handshake = ddb["last_handshake"].as_str().context("ddb has a handshake")?;
    assert_eq!(handshake, rfc3339(now - chrono::Duration::seconds(30)));
    let ago = ddb["seconds_ago"].as_u64().context("ddb's seconds_ago is a number")?;
    let expected = (server_now - DateTime::parse_from_rfc3339(handshake)?).num_seconds();
    assert_eq!(i64::try_from(ago)?, expected, "counted from the answer's `now`");
    assert!((30..40).contains(&ago), "the handshake was 30 s ago, not {ago}");

    let crd = entry(&body, "crd");
    assert!((600..610).contains(&crd["seconds_ago"].as_u64().unwrap()), "{crd}");

    let red = entry(&body, "red");
    assert_eq!(red["peers_issued"], 3);
    assert_eq!(red["peers_connected"], 0);
    assert_eq!(red["last_handshake"], Value::Null);
    assert_eq!(red["seconds_ago"], Value::Null);

    let nop = entry(&body, "nop");
    assert_eq!(nop["name_zh"], "NOP 隊伍");
    assert_eq!((&nop["peers_issued"], &nop["peers_connected"]), (&json!(0), &json!(0)), "no configs issued");
    assert_eq!(nop["last_handshake"], Value::Null);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_follow_the_gateway_without_reading_the_store() -> Result<()> {
    let now = Utc::now().trunc_subsecs(0);
    let (gateway, connections) = watch::channel(gateway_poll(now));
    let app = App::start_at(not_started(now + chrono::Duration::hours(1)), Some(connections)).await?;
    assert_eq!(entry(&get(app.addr, "/api/connections").await?.json()?, "red")["last_handshake"], Value::Null);

    // The red team's first peer shakes hands; the binary's next poll publishes it.
    let mut next = gateway_poll(now);
    next[2].peers_connected = 1;
    next[2].last_handshake = Some(now);
    gateway.send_replace(next);
    // With the database gone, only the watch can answer.
    app.store.clone().close().await?;

    let answer = get(app.addr, "/api/connections").await?;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let red = entry(&answer.json()?, "red").clone();
    assert_eq!(red["peers_connected"], 1);
    assert_eq!(red["last_handshake"], rfc3339(now));
    assert!(red["seconds_ago"].as_u64().is_some_and(|s| s < 10), "{red}");

    // The gateway stops: the binary publishes no peers at all, and every team shows none.
    gateway.send_replace(Vec::new());
    let body = get(app.addr, "/api/connections").await?.json()?;
    assert_eq!(body["teams"].as_array().unwrap().len(), 4);
    assert!(body["teams"].as_array().unwrap().iter().all(|t| t["peers_issued"] == 0 && t["last_handshake"].is_null()));
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_vpn_connections_are_not_found() -> Result<()> {
    let app = App::start(64, WebSettings::default()).await?;
    let answer = get(app.addr, "/api/connections").await?;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.code(), "no_vpn");
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    let message = answer.json()?["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("no VPN") && message.contains("[vpn]"), "the error says why and how to fix it: {message}");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_has_a_hidden_teams_connected_section_its_script_fills() -> Result<()> {
    let app = App::start(64, WebSettings::default()).await?;
    let page = get(app.addr, "/").await?.text();
    let section = page
        .split("<section id=\"connections\"")
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .context("the page has no connections section")?;
    assert!(section.contains("hidden>"), "hidden until the script knows the drill has a VPN: {section}");
    assert!(section.contains("Teams connected") && section.contains("已連線隊伍"), "{section}");
    assert!(section.contains("id=\"connections-list\"") && section.contains("aria-live=\"polite\""));

    let script = get(app.addr, "/static/app.js").await?.text();
    for needle in ["'/api/connections'", "never connected", "未曾連線"] {
        assert!(script.contains(needle), "app.js lacks {needle}");
    }
    app.stop().await
}
