//! The scoreboard page in a real browser: headless Chromium, driven over the Chrome DevTools
//! Protocol, renders the ranking and the status grid, then updates after a tick closes without
//! reloading. A screenshot is written to the workspace's `target/gongfang-web-scoreboard.png`.
//! The drill's past: the score graph and each total's change since the last tick, the replay
//! slider stepping back to tick 0 and live again, and one team's status over the drill
//! (screenshots `gongfang-web-scoreboard-replay.png`, `…-team-history.png`).
//! Before the first tick the page lists the teams' VPN connections, refreshes them, and hides
//! the list once the drill runs, or never shows it on a drill without a VPN.
//!
//! Without Chromium the test is skipped with a notice, unless `GONGFANG_REQUIRE_BROWSER=1`.

mod common;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use chrono::Utc;
use common::*;
use gongfang_core::Tick;
use gongfang_core::clock::DrillClock;
use gongfang_core::event::GameEvent;
use gongfang_store::AnnouncementText;
use gongfang_test_support::browser::{Browser, Cdp, chromium_or_skip, target_dir};
use gongfang_web::WebSettings;
use serde_json::{Value, json};

/// What the test reads off the rendered page.
const READ_PAGE: &str = r#"(() => {
  if (!document.getElementById('ranking-body')) return { ready: false }; // still about:blank
  const rows = [...document.querySelectorAll('#ranking-body tr')];
  const cell = (team, service) =>
    document.querySelector(`td.status[data-team="${team}"][data-service="${service}"]`);
  const total = (team) => document.querySelector(`tr[data-team="${team}"] td[data-score="total"]`).firstChild.textContent;
  const change = (team) => {
    const delta = document.querySelector(`tr[data-team="${team}"] td[data-score="total"] .delta`);
    return delta ? delta.dataset.change : null;
  };
  return {
    ready: !!(window.__gongfang && window.__gongfang.ready && window.__gongfang.connected),
    snapshots: window.__gongfang ? window.__gongfang.snapshots : 0,
    teams: rows.map((r) => r.dataset.team),
    blue: [...document.querySelectorAll('#ranking-blue-body tr')].map((r) => [r.dataset.team, r.dataset.rank]),
    two_rankings: !document.getElementById('blue-wrap').hidden && !document.getElementById('red-title').hidden,
    names: rows.map((r) => r.querySelector('.team-name').firstChild.textContent),
    zh: rows.map((r) => (r.querySelector('.team-name .zh') || {}).textContent || null),
    services: [...document.querySelectorAll('#ranking-head th.service')].map((th) => th.dataset.service),
    ddb_total: rows.length ? total('ddb') : null,
    ddb_change: rows.length ? change('ddb') : null,
    graph_lines: [...document.querySelectorAll('#graph polyline')].map((p) => p.dataset.team),
    graph_legend: [...document.querySelectorAll('#graph-legend li')].map((li) => li.dataset.team),
    graph_marker: (document.querySelector('#graph line.marker') || { dataset: {} }).dataset.tick || null,
    replay: window.__gongfang ? window.__gongfang.replay : null,
    replay_max: document.getElementById('replay').max,
    replay_notice: document.getElementById('replay-notice').hidden ? null
      : document.getElementById('replay-notice').textContent,
    ddb_opendata: rows.length ? { verdict: cell('ddb', 'opendata').dataset.verdict,
                                 title: cell('ddb', 'opendata').title,
                                 text: cell('ddb', 'opendata').textContent } : null,
    ddb_kv: rows.length ? cell('ddb', 'kv').dataset.verdict : null,
    crd_kv: rows.length ? cell('crd', 'kv').dataset.verdict : null,
    tick: document.getElementById('tick').textContent,
    scored: document.getElementById('scored-tick').textContent,
    countdown: document.getElementById('countdown').textContent,
    first_bloods: [...document.querySelectorAll('#first-bloods li[data-service]')].map((li) => li.dataset.service),
    marker: window.__marker === undefined ? null : window.__marker,
    contrast: [...document.querySelectorAll('td.status[data-verdict]')].map((td) => {
      const rgb = (c) => c.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
      const lum = (c) => {
        const [r, g, b] = rgb(c).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
      };
      const style = getComputedStyle(td);
      const [a, b] = [lum(style.color), lum(style.backgroundColor)].sort((x, y) => y - x);
      return [td.dataset.verdict, Math.round(((a + 0.05) / (b + 0.05)) * 100) / 100];
    }),
    connections_hidden: document.getElementById('connections').hidden,
    announcement: document.getElementById('announcement').hidden ? null
      : document.getElementById('announcement').textContent,
  };
})()"#;

/// The engine's clock at `tick`, started `elapsed` seconds ago by the real clock, so the
/// countdown in the screenshot is a real one.
fn live_clock(tick: u32, elapsed: i64) -> DrillClock {
    let started = Utc::now() - chrono::Duration::seconds(elapsed);
    DrillClock {
        tick: Some(Tick(tick)),
        tick_started_at: Some(started),
        drill_starts_at: Some(started - chrono::Duration::seconds(60 * i64::from(tick))),
        drill_ends_at: Some(started + chrono::Duration::hours(8)),
        ..clock_at(tick)
    }
}

fn seconds_left(countdown: &str) -> Option<u32> {
    let (m, s) = countdown.split_once(':')?;
    Some(m.parse::<u32>().ok()? * 60 + s.parse::<u32>().ok()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_renders_and_updates_live_in_chromium() -> Result<()> {
    let Some(chromium) = chromium_or_skip()? else { return Ok(()) };
    let app = App::start(256, WebSettings::default()).await?;
    app.clock.send_replace(live_clock(2, 20));
    let mut browser = Browser::launch(&chromium).await?;
    let outcome = drive(&mut browser.cdp, &app).await;
    let problems = std::mem::take(&mut browser.cdp.problems);
    browser.close().await?;
    app.stop().await?;
    outcome?;
    ensure!(problems.is_empty(), "the page reported problems: {problems:#?}");
    Ok(())
}

async fn drive(cdp: &mut Cdp, app: &App) -> Result<()> {
    // Announced before the page opened: shown from `/api/announcements`, in both languages.
    let welcome = AnnouncementText { title: "Welcome".into(), title_zh: Some("歡迎".into()), ..Default::default() };
    app.store.post_announcement(Utc::now(), "account olga", &welcome).await?;
    cdp.open_page().await?;
    cdp.call("Page.navigate", json!({ "url": app.url("/") })).await?;

    let mut page = Value::Null;
    for _ in 0..200 {
        page = cdp.eval(READ_PAGE).await?;
        // The announcements are fetched beside the board: the page is loaded when both are in.
        if page["ready"] == true && !page["announcement"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(page["ready"] == true, "the page never finished loading: {page}");

    // One red team beside teams that attack and defend: a red/blue drill, ranked per side.
    assert_eq!(page["two_rankings"], true);
    assert_eq!(page["teams"], json!(["ddb", "red", "crd"]), "the teams that attack");
    assert_eq!(page["blue"], json!([["ddb", "1"], ["crd", "2"], ["nop", "3"]]), "the teams that defend");
    assert_eq!(page["names"][0], "Digital Development Bureau");
    assert_eq!(page["zh"][0], "數字發展局");
    assert_eq!(page["services"], json!(["opendata", "kv"]));
    assert_eq!(page["ddb_total"], "8.00");
    assert_eq!(page["ddb_opendata"]["verdict"], "corrupt");
    assert_eq!(page["ddb_opendata"]["text"], "CORRUPT");
    assert!(
        page["ddb_opendata"]["title"].as_str().unwrap().contains("dataset from tick 0 is missing"),
        "the public message is the cell's hover text: {}",
        page["ddb_opendata"]["title"]
    );
    for pair in page["contrast"].as_array().context("contrast list")? {
        let ratio = pair[1].as_f64().context("a ratio")?;
        assert!(ratio >= 4.5, "{} status text has contrast {ratio}:1, under WCAG AA's 4.5:1", pair[0]);
    }
    // The checker's message is reachable without a mouse: focusing the cell shows it.
    let shown = cdp
        .eval("(() => { const td = document.querySelector('td.status[data-team=\"ddb\"][data-service=\"opendata\"]'); td.focus(); return [td.tabIndex, document.getElementById('cell-detail').textContent]; })()")
        .await?;
    assert_eq!(shown[0], 0, "a status cell takes the keyboard's focus");
    assert!(
        shown[1].as_str().is_some_and(|t| t.contains("dataset from tick 0 is missing")),
        "focus shows the message: {shown}"
    );
    assert_eq!(page["crd_kv"], "down");
    assert_eq!(page["ddb_kv"], "ok");
    assert_eq!(page["tick"], "2");
    assert_eq!(page["scored"], "1");
    assert_eq!(page["first_bloods"], json!(["opendata", "kv"]));
    assert_eq!(page["connections_hidden"], true, "a running drill without a VPN lists no connections");
    assert_eq!(page["announcement"], "Announcement: Welcome · 歡迎");
    let left = seconds_left(page["countdown"].as_str().unwrap()).context("countdown is not m:ss")?;
    // The tick began 20 s before the page was opened, by the real clock: what the page shows
    // is what is left of it now, however long the page took to load (a busy machine's does).
    let started = app.clock.borrow().tick_started_at.context("the tick's start")?;
    let since = (Utc::now() - started).num_seconds();
    let due = (60 - since).max(0);
    assert!(
        left <= 40 && (due - 3..=due + 3).contains(&i64::from(left)),
        "{since} s into a 60 s tick, the page says {left} s are left"
    );

    // Mark this page load, then let the engine close tick 2 and move on to tick 3.
    cdp.eval("window.__marker = 1").await?;
    close_tick_two(&app.store).await?;
    app.clock.send_replace(live_clock(3, 0));
    app.events.send(GameEvent::TickClosed { tick: Tick(2) })?;
    app.events.send(GameEvent::ScoresUpdated { tick: Tick(2) })?;
    app.events.send(GameEvent::Announcement { id: 2, title: "Lunch".into(), title_zh: Some("午膳".into()) })?;

    let mut updated = Value::Null;
    for _ in 0..200 {
        updated = cdp.eval(READ_PAGE).await?;
        if updated["scored"] == "2" && updated["tick"] == "3" && updated["announcement"] == "Announcement: Lunch · 午膳"
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(updated["scored"], "2", "the page did not pick up the closed tick: {updated}");
    assert_eq!(updated["tick"], "3");
    assert_eq!(updated["announcement"], "Announcement: Lunch · 午膳", "a new announcement shows without a reload");
    assert_eq!(updated["ddb_total"], "21.00");
    assert_eq!(updated["ddb_kv"], "mumble");
    assert_eq!(updated["crd_kv"], "ok");
    assert_eq!(updated["marker"], 1, "the page was reloaded");
    assert_eq!(updated["snapshots"], 1, "the socket was not reconnected");

    let file = cdp.screenshot(&target_dir().join("gongfang-web-scoreboard.png")).await?;
    eprintln!("screenshot: {}", file.display());

    replay_graph_and_history(cdp).await?;

    // In Hong Kong Chinese, from the one catalogue the portal and console use; remembered.
    cdp.eval("document.querySelector('[data-lang=\"zh-HK\"]').click() || true").await?;
    let chinese = cdp
        .wait_for(
            "the board in Chinese",
            "document.documentElement.lang === 'zh-HK' && document.querySelector('#ranking-title span').textContent === '排名' \
             ? [document.querySelector('#ranking-body tr .team-name').firstChild.textContent, \
                document.querySelector('td.status[data-team=\"ddb\"][data-service=\"kv\"]').firstChild.textContent, \
                document.getElementById('announcement').textContent] : null",
        )
        .await?;
    ensure!(chinese == json!(["數字發展局", "異常", "公告：Lunch · 午膳"]), "names and verdicts in Chinese: {chinese}");
    let file = cdp.screenshot(&target_dir().join("gongfang-web-scoreboard-zh-HK.png")).await?;
    eprintln!("screenshot: {}", file.display());
    cdp.eval("window.__before_reload = 1").await?;
    cdp.call("Page.reload", json!({})).await?;
    let reloaded = cdp
        .wait_for(
            "the reloaded board",
            "!window.__before_reload && window.__gongfang && window.__gongfang.ready ? [document.documentElement.lang, \
             document.querySelector('#ranking-title span').textContent] : null",
        )
        .await?;
    ensure!(reloaded == json!(["zh-HK", "排名"]), "the language is remembered: {reloaded}");
    Ok(())
}

/// Reads the page until `done` holds, for at most `WAIT`.
async fn page_when(cdp: &mut Cdp, what: &str, done: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = cdp.eval(READ_PAGE).await?;
        if done(&page) {
            return Ok(page);
        }
        ensure!(tokio::time::Instant::now() < deadline, "{what}: not seen in {WAIT:?}: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// After tick 2 is scored: the graph and the changes, a replay of tick 0 and back, and ddb's
/// status over the drill.
async fn replay_graph_and_history(cdp: &mut Cdp) -> Result<()> {
    // The graph draws every team but the NOP one, leader first; ddb gained 13 in tick 2.
    let page = page_when(cdp, "the graph and the changes", |p| {
        p["graph_lines"].as_array().is_some_and(|l| l.len() == 3) && !p["ddb_change"].is_null()
    })
    .await?;
    ensure!(page["graph_lines"] == json!(["ddb", "crd", "red"]), "the leading teams' lines: {page}");
    ensure!(page["graph_legend"] == page["graph_lines"], "a legend entry per line: {page}");
    ensure!(page["ddb_change"] == "13.00", "ddb's change since tick 1: {page}");
    ensure!(page["replay_max"] == "2" && page["replay"].is_null(), "the slider reaches the latest scored tick: {page}");

    // The slider back to tick 0: the board as it stood then, and a marker on the graph.
    cdp.eval("(() => { const r = document.getElementById('replay'); r.value = '0'; r.dispatchEvent(new Event('input')); return true; })()").await?;
    let past = page_when(cdp, "the replay of tick 0", |p| p["replay"] == 0).await?;
    ensure!(past["scored"] == "0" && past["ddb_total"] == "4.00" && past["crd_kv"] == "down", "tick 0's board: {past}");
    ensure!(past["first_bloods"] == json!([]), "no first blood yet in tick 0: {past}");
    ensure!(past["graph_marker"] == "0", "the graph marks the replayed tick: {past}");
    let notice = past["replay_notice"].as_str().unwrap_or_default();
    ensure!(notice.contains("after tick 0"), "the page says it is a replay: {past}");
    let file = cdp.screenshot(&target_dir().join("gongfang-web-scoreboard-replay.png")).await?;
    eprintln!("screenshot: {}", file.display());

    // ddb's status over the drill, opened from its row by keyboard-reachable button.
    cdp.eval("document.querySelector('#ranking-blue-body button[data-history=ddb]').click() || true").await?;
    let strips = cdp
        .wait_for(
            "ddb's status over the drill",
            "window.__gongfang.teamHistories > 0 ? [document.getElementById('team-history-title').textContent,              [...document.querySelectorAll('#team-history .strip[data-service=kv] rect')].map((r) => r.dataset.verdict),              document.querySelector('#team-history .strip[data-service=kv] p').textContent,              document.activeElement.id] : null",
        )
        .await?;
    ensure!(strips[0] == "Service status over the drill: Digital Development Bureau", "{strips}");
    ensure!(strips[1] == json!(["ok", "mumble"]), "kv: ok in ticks 0 and 1, mumble in tick 2: {strips}");
    ensure!(strips[2] == "Key-Value Registry, 3 ticks: OK 2 · MUMBLE 1", "the strip in words: {strips}");
    ensure!(strips[3] == "team-history-title", "the focus moves to it: {strips}");
    let file = cdp.screenshot(&target_dir().join("gongfang-web-scoreboard-team-history.png")).await?;
    eprintln!("screenshot: {}", file.display());

    // Back to the live board.
    cdp.eval("document.getElementById('replay-live').click() || true").await?;
    let live = page_when(cdp, "the live board again", |p| p["replay"].is_null() && p["scored"] == "2").await?;
    ensure!(
        live["ddb_total"] == "21.00" && live["replay_notice"].is_null() && live["graph_marker"].is_null(),
        "{live}"
    );
    Ok(())
}

/// What the test reads off the page's "Teams connected" section.
const READ_CONNECTIONS: &str = r#"(() => {
  const section = document.getElementById('connections');
  if (!section || !window.__gongfang) return { ready: false }; // still about:blank
  const rows = [...document.querySelectorAll('#connections-list li')];
  return {
    ready: window.__gongfang.ready && window.__gongfang.connected,
    fetches: window.__gongfang.connectionFetches,
    vpn: window.__gongfang.vpn,
    hidden: section.hidden,
    phase: document.getElementById('phase').dataset.phase,
    summary: document.getElementById('connections-summary').textContent,
    teams: rows.map((r) => r.dataset.team),
    status: Object.fromEntries(rows.map((r) => [r.dataset.team, r.dataset.status])),
    text: Object.fromEntries(rows.map((r) => [r.dataset.team, r.querySelector('.conn-status').textContent])),
    names: rows.map((r) => r.querySelector('.conn-team').textContent),
  };
})()"#;

/// Reads the section until `done` holds, for at most `WAIT`.
async fn connections_when(cdp: &mut Cdp, what: &str, done: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen = cdp.eval(READ_CONNECTIONS).await?;
        if seen["ready"] == true && done(&seen) {
            return Ok(seen);
        }
        ensure!(tokio::time::Instant::now() < deadline, "the page never showed {what}: {seen}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_the_first_tick_the_page_lists_connected_teams_in_chromium() -> Result<()> {
    let Some(chromium) = chromium_or_skip()? else { return Ok(()) };
    let now = Utc::now();
    let (gateway, connections) = tokio::sync::watch::channel(gateway_poll(now));
    let vpn = App::start_at(not_started(now + chrono::Duration::hours(1)), Some(connections)).await?;
    let no_vpn = App::start_at(not_started(now + chrono::Duration::hours(1)), None).await?;
    let mut browser = Browser::launch(&chromium).await?;
    let outcome = drive_pregame(&mut browser.cdp, &vpn, &gateway, &no_vpn).await;
    // The browser logs every 404, the one that tells the page there is no VPN too.
    let expected =
        format!("the server responded with a status of 404 (Not Found)\" ({})", no_vpn.url("/api/connections"));
    let problems: Vec<String> =
        std::mem::take(&mut browser.cdp.problems).into_iter().filter(|p| !p.ends_with(&expected)).collect();
    browser.close().await?;
    vpn.stop().await?;
    no_vpn.stop().await?;
    outcome?;
    ensure!(problems.is_empty(), "the page reported problems: {problems:#?}");
    Ok(())
}

async fn drive_pregame(
    cdp: &mut Cdp,
    vpn: &App,
    gateway: &tokio::sync::watch::Sender<Vec<gongfang_core::TeamConnection>>,
    no_vpn: &App,
) -> Result<()> {
    cdp.open_page().await?;
    cdp.call("Page.navigate", json!({ "url": vpn.url("/") })).await?;
    let page = connections_when(cdp, "the teams' connections", |p| p["hidden"] == false).await?;
    assert_eq!(page["phase"], "not_started");
    assert_eq!(page["teams"], json!(["ddb", "crd", "nop", "red"]));
    assert_eq!(page["names"][0], "Digital Development Bureau數字發展局");
    assert_eq!(page["status"], json!({"ddb": "connected", "crd": "seen", "nop": "never", "red": "never"}));
    assert_eq!(page["text"]["ddb"], "connected已連線");
    assert_eq!(page["text"]["crd"], "seen 10 min ago10 分鐘前曾連線");
    assert_eq!(page["text"]["red"], "never connected未曾連線");
    assert_eq!(page["summary"], "1 of 4 teams connected4 隊中 1 隊已連線");

    // The red team connects: the next round of polling, within 10 s, shows it.
    let mut next = gateway.borrow().clone();
    next[2].peers_connected = 1;
    next[2].last_handshake = Some(Utc::now());
    gateway.send_replace(next);
    let page = connections_when(cdp, "the red team connected", |p| p["status"]["red"] == "connected").await?;
    assert_eq!(page["summary"], "2 of 4 teams connected4 隊中 2 隊已連線");
    assert!(page["fetches"].as_u64().is_some_and(|n| n >= 2), "refreshed by polling: {page}");

    // Tick 0 starts: the live clock hides the list.
    vpn.clock.send_replace(DrillClock { tick_started_at: Some(Utc::now()), ..clock_at(0) });
    let page = connections_when(cdp, "the list hidden once the drill runs", |p| p["hidden"] == true).await?;
    assert_eq!(page["phase"], "running");

    // A drill without a VPN: the server says so, and the page shows no list.
    cdp.call("Page.navigate", json!({ "url": no_vpn.url("/") })).await?;
    let page = connections_when(cdp, "the server's answer that there is no VPN", |p| p["vpn"] == false).await?;
    assert_eq!(page["phase"], "not_started");
    assert_eq!(page["hidden"], true);
    assert_eq!(page["teams"], json!([]));
    Ok(())
}
