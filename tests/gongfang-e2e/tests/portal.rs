//! The team portal and the organisers' console in a real browser on a running drill
//! (`gongfang serve`, real checkers, real SQLite, headless Chromium), in English and in Hong
//! Kong Chinese. A team logs in with its token, sees its services with the checker's message,
//! submits a flag through the form and files a report; an organiser logs in with a password,
//! posts a bilingual announcement that the team's portal shows without a reload, pauses the
//! drill (no check is dispatched after the answer), marks a result defective and sees the
//! team's score for that tick rise, freezes the public scoreboard (the public API stands
//! still while the console's browser sees the live board), and finds each change in the audit
//! log under the account; its session reads `/metrics`, where the flag submission counted the
//! form's answers. Screenshots of each page in both languages are written under
//! `target/`.
//!
//! Without Chromium the test is skipped with a notice, unless `GONGFANG_REQUIRE_BROWSER=1`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, ensure};
use gongfang_core::flag::FlagInfo;
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick, Verdict};
use gongfang_e2e::hostile::{DrillProcess, DrillSpec, gongfang_binary};
use gongfang_store::Store;
use gongfang_test_programs::components;
use gongfang_test_support::browser::{Browser, Cdp, PAGE_READY, chromium_or_skip, click, fill, submit, target_dir};
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};
use serde_json::json;

const SECRET: &str = "portal-drill-test-secret-0123456789abcdef";
const PREFIX: &str = "GONGFANG";
const PASSWORD: &str = "a long passphrase for olga";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Sets an input's value and tells the page, as typing would.
/// Checker results stored so far, over every tick.
async fn results_stored(store: &Store) -> anyhow::Result<usize> {
    let Some(latest) = store.latest_tick().await? else { return Ok(0) };
    let mut n = 0;
    for tick in 0..=latest.tick.0 {
        n += store.check_results(Tick(tick), None).await?.len();
    }
    Ok(n)
}

/// The latest closed tick in which the team's service failed its checks by the service's
/// fault (not the checker's), with a put and a check at least: a tick that costs the team SLA.
async fn costly_tick(store: &Store) -> anyhow::Result<Tick> {
    let latest = store.latest_checked_tick().await?.context("a tick ran checks")?;
    for tick in (0..=latest.0).rev() {
        let results = store.check_results(Tick(tick), Some(TeamId(1))).await?;
        let failed = results.iter().any(|r| !matches!(r.verdict, Verdict::Ok | Verdict::CheckerError));
        let checker_failed = results.iter().any(|r| r.verdict == Verdict::CheckerError);
        if results.len() >= 2 && failed && !checker_failed {
            return Ok(Tick(tick));
        }
    }
    anyhow::bail!("no tick up to {} failed the team's checks by the service's fault", latest.0)
}

/// The team's own after-action report, asked for with its token.
async fn own_report(drill: &DrillProcess, token: &str) -> anyhow::Result<gongfang_test_support::http::Response> {
    gongfang_test_support::http::request(drill.web, "GET", "/api/portal/after-action", &[("X-Team-Token", token)], b"")
        .await
}

async fn shot(cdp: &mut Cdp, name: &str) -> anyhow::Result<PathBuf> {
    let file = cdp.screenshot(&target_dir().join("screenshots").join(format!("{name}.png"))).await?;
    eprintln!("screenshot: {}", file.display());
    Ok(file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_and_an_organiser_run_the_drill_from_the_browser_in_both_languages() -> anyhow::Result<()> {
    let Some(chromium) = chromium_or_skip()? else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let scenario = ScenarioBuilder::new("portal-drill")
        .name("Portal drill", "專頁演練")
        .duration("1h")
        // Room for a checker on a loaded two-core CI machine: a timed-out check is a checker
        // error, which costs nothing, so marking it defective would change nothing.
        .tick("3s")
        .checker_timeout("2s")
        .flag_prefix(PREFIX)
        .secret(SECRET)
        .reports(&[("attack_max_points", "100"), ("defence_max_points", "60")])
        // No container runs: the services' addresses are on loopback, where nothing listens, so
        // every check is refused at once and the test sends nothing off this machine.
        .team(team(1, "kowloon-cyber").name("Kowloon Cyber Unit", "九龍網絡安全組").network("127.60.1.0/24"))
        .team(team(2, "harbour-data").name("Harbour Data Office", "海港數據辦公室").network("127.60.2.0/24"))
        .service(
            service("kv")
                .name("Key registry", "鍵值登記冊")
                .image("kv:latest")
                .ports(&[7000])
                .checker(components::GOOD),
        )
        .toml();
    let spec = DrillSpec {
        scenario,
        flag_prefix: PREFIX.to_owned(),
        secret: SECRET.to_owned(),
        checker_cache: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("portal-checker-cache"),
        extra_args: Vec::new(),
    };
    let binary = gongfang_binary()?;
    let drill = DrillProcess::start(&binary, dir.path(), &spec).await?;
    let out = Command::new(&binary)
        .args(["account", "add", "--name", "olga", "--role", "organiser"])
        .env("GONGFANG_DATABASE_URL", &drill.database_url)
        .env("GONGFANG_ACCOUNT_PASSWORD", PASSWORD)
        .output()?;
    ensure!(out.status.success(), "account add: {}", text(&out.stderr));

    let mut browser = Browser::launch(&chromium).await?;
    let outcome = drive(&mut browser.cdp, &drill).await;
    let problems = std::mem::take(&mut browser.cdp.problems);
    browser.close().await?;
    outcome.with_context(|| format!("the drill's log:\n{}", drill.last_log()))?;
    ensure!(problems.is_empty(), "the pages reported problems: {problems:#?}");
    Ok(())
}

async fn drive(cdp: &mut Cdp, drill: &DrillProcess) -> anyhow::Result<()> {
    let base = format!("http://{}", drill.web);
    let store = drill.store().await?;

    // ---- the team's portal, in English ----
    let portal = cdp.open_page().await?;
    cdp.navigate(&format!("{base}/portal?lang=en")).await?;
    cdp.wait_for("the portal's login form", PAGE_READY).await?;
    cdp.eval(&fill("login-token", &drill.token("kowloon-cyber")?)).await?;
    cdp.eval(&submit("login-form")).await?;
    let entered = cdp
        .wait_for(
            "the portal after the login",
            "!document.getElementById('app').hidden ? 'in' : document.getElementById('login-error').textContent",
        )
        .await?;
    ensure!(entered == "in", "the login failed: {entered}");
    let team = cdp.eval("document.getElementById('team-name').textContent").await?;
    ensure!(team == "Kowloon Cyber Unit", "the team's English name: {team}");
    // The checker has run: a tick row with its verdict and what the checker said.
    let message = cdp
        .wait_for(
            "a tick with the checker's message",
            "(() => { const r = document.querySelector('#services tbody tr td:nth-child(3)'); \
             return r && r.textContent !== '—' && r.textContent.length > 1 ? r.textContent : null; })()",
        )
        .await?;
    eprintln!("the checker said: {message}");
    // A marker that survives only if the page is never reloaded.
    cdp.eval("window.__kept = 1").await?;

    // A flag of the other team, through the form.
    let played = store.latest_tick().await?.context("a tick has opened")?.tick;
    let flag = drill.codec.mint(FlagInfo { tick: played, team: TeamId(2), service: ServiceId(1), store: StoreIdx(0) });
    cdp.eval(&fill("flags", &format!("{flag}\nnot-a-flag"))).await?;
    cdp.eval(&submit("flags-form")).await?;
    let answers = cdp
        .wait_for(
            "the flags' answers",
            "(() => { const rows = [...document.querySelectorAll('#flag-answers tr')]; \
             return rows.length === 2 ? rows.map((r) => r.children[1].textContent) : null; })()",
        )
        .await?;
    ensure!(answers == json!(["Accepted", "Not a valid flag"]), "the answers, in English: {answers}");
    // The same session cookie without the page's CSRF token, or with another, submits nothing.
    let refused = cdp
        .eval(
            "Promise.all([{}, {'X-CSRF-Token': '0'.repeat(64)}].map((h) => fetch('/flags', { method: 'PUT', \
             headers: { 'Content-Type': 'application/json', ...h }, body: JSON.stringify(['x']) }).then((r) => r.status)))",
        )
        .await?;
    ensure!(refused == json!([403, 401]), "PUT /flags with the cookie alone: {refused}");
    // Chromium logs those two refusals as failed loads; they were the point.
    cdp.problems.retain(|p| !p.contains("/flags"));

    // A defence report, through the form.
    cdp.eval(&fill("report-kind", "defence")).await?;
    // The window: from a second after the drill started to now, in Hong Kong time as the form takes it.
    let hk = chrono::FixedOffset::east_opt(8 * 3600).context("UTC+8")?;
    let started = store.drill_state().await?.started_at.context("the drill has started")?;
    let from = (started + chrono::Duration::seconds(1)).with_timezone(&hk).format("%Y-%m-%dT%H:%M:%S").to_string();
    let to = chrono::Utc::now().with_timezone(&hk).format("%Y-%m-%dT%H:%M:%S").to_string();
    cdp.eval(&fill("report-from", &from)).await?;
    cdp.eval(&fill("report-to", &to)).await?;
    cdp.eval(&fill("report-technique", "port scan seen in the registry's log")).await?;
    cdp.eval(&fill("report-description", "A burst of connections to the key registry from the other team.")).await?;
    cdp.eval(&submit("report-form")).await?;
    let filed = cdp
        .wait_for(
            "the filed report in the list",
            "(() => { const h = document.querySelector('#reports li h3'); return h ? h.textContent : \
             (document.getElementById('report-error').textContent || null); })()",
        )
        .await?;
    ensure!(filed.as_str().is_some_and(|f| f.starts_with('#') && f.contains("Defence")), "the report list: {filed}");
    shot(cdp, "portal-en").await?;

    // ---- the organisers' console, in another browser (its own cookies) ----
    let console = cdp.open_isolated_page().await?;
    cdp.navigate(&format!("{base}/console?lang=en")).await?;
    cdp.wait_for("the console's login form", PAGE_READY).await?;
    cdp.eval(&fill("login-name", "olga")).await?;
    cdp.eval(&fill("login-password", PASSWORD)).await?;
    cdp.eval(&submit("login-form")).await?;
    cdp.wait_for("the console after the login", "document.getElementById('drill-state')?.textContent === 'Running'")
        .await?;
    // The organiser's session reads `/metrics`: the flag submission counted the form's answers
    // (this process has answered no other flag) and its commit.
    let metrics = cdp.eval("fetch('/metrics').then((r) => r.text())").await?;
    let metrics = metrics.as_str().context("the metrics' text")?;
    let value = |series: &str| -> Option<f64> {
        metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    };
    ensure!(
        value("gongfang_flag_answers_total{answer=\"accepted\",code=\"OK\"}") == Some(1.0)
            && value("gongfang_flag_answers_total{answer=\"invalid\",code=\"INV\"}") == Some(1.0),
        "the form's two answers are counted: {metrics}"
    );
    ensure!(
        value("gongfang_submission_commit_seconds_count").is_some_and(|n| n >= 1.0)
            && value("gongfang_submission_committed_flags_total") == Some(1.0),
        "the accepted flag's commit is counted: {metrics}"
    );
    cdp.eval(&fill("announce-title", "Lunch at noon")).await?;
    cdp.eval(&fill("announce-title-zh", "中午午膳")).await?;
    cdp.eval(&fill("announce-body", "Services keep running.")).await?;
    cdp.eval(&submit("announce-form")).await?;
    cdp.wait_for(
        "the posted announcement",
        "document.querySelector('#announcements li')?.textContent.includes('Lunch at noon')",
    )
    .await?;

    // The team's portal shows it without a reload.
    cdp.session = Some(portal.clone());
    let shown = cdp
        .wait_for("the announcement in the portal", "document.querySelector('#announcements li strong')?.textContent")
        .await?;
    ensure!(shown == "Lunch at noon", "the portal shows the new announcement: {shown}");
    ensure!(cdp.eval("window.__kept").await? == 1, "the portal was not reloaded");

    // An inject from the console: the team sees it within a tick and answers it on time.
    cdp.session = Some(console.clone());
    cdp.eval(&fill("inject-title", "Incident notification")).await?;
    cdp.eval(&fill("inject-body", "File your notification of the scan on the key registry.")).await?;
    cdp.eval(&fill("inject-minutes", "30")).await?;
    cdp.eval(&fill("inject-rubric", "timeliness | 10 | 時效\ncompleteness | 20")).await?;
    cdp.eval(&submit("inject-form")).await?;
    let asked = cdp
        .wait_for(
            "the posted inject in the console",
            "(() => { const r = document.querySelector('#injects tr'); return r ? r.children[2].textContent : \
             (document.getElementById('inject-error').textContent || null); })()",
        )
        .await?;
    ensure!(asked == "0 / 2", "both teams are asked, none has answered: {asked}");
    cdp.session = Some(portal.clone());
    let task =
        cdp.wait_for("the inject in the portal", "document.querySelector('#injects li h3')?.textContent").await?;
    ensure!(task == "Incident notification", "the portal shows the task: {task}");
    let id = cdp.eval("document.querySelector('#injects li').dataset.inject").await?;
    let id = id.as_str().context("the inject's id")?.to_owned();
    cdp.eval(&fill(&format!("inject-text-{id}"), "Notified the office of the scan at 10:02.")).await?;
    cdp.eval("document.querySelector('#injects li form').requestSubmit() || true").await?;
    let noted = cdp
        .wait_for(
            "the answer in the portal",
            "(() => { const n = document.querySelector('#injects li [data-late]'); return n ? n.dataset.late : null; })()",
        )
        .await?;
    ensure!(noted == "false", "answered before the deadline: not late ({noted})");
    let answers = store.inject_answers(Some(TeamId(1))).await?;
    ensure!(answers.len() == 1 && !answers[0].late && answers[0].text.contains("10:02"), "{answers:?}");

    // Pause from the console: a destructive button asks for a second press.
    cdp.session = Some(console.clone());
    cdp.eval(&fill("pause-reason", "typhoon signal 8")).await?;
    cdp.eval(&click("#pause")).await?;
    ensure!(cdp.eval("document.getElementById('drill-state').textContent").await? == "Running", "one press only asks");
    cdp.eval(&click("#pause")).await?;
    cdp.wait_for("the paused state", "document.getElementById('drill-state').textContent === 'Paused'").await?;
    ensure!(store.drill_state().await?.paused, "the pause is stored");
    // In-flight actions may still land; after that, nothing more is dispatched.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = results_stored(&store).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    ensure!(results_stored(&store).await? == settled, "checks were dispatched while the drill was paused");

    // Mark a checked tick of the team's service defective: its failed checks stop costing SLA.
    let checked = costly_tick(&store).await?;
    let team_sla = |rows: Vec<gongfang_core::ScoreRow>| {
        rows.iter().find(|r| r.team == TeamId(1)).map(|r| r.score.sla).unwrap_or_default()
    };
    let before = team_sla(store.scores_for_tick(checked).await?);
    cdp.eval(&fill("defect-team", "kowloon-cyber")).await?;
    cdp.eval(&fill("defect-service", "kv")).await?;
    cdp.eval(&fill("defect-tick", &checked.0.to_string())).await?;
    cdp.eval(&fill("defect-reason", "the checker stored into a read-only key")).await?;
    cdp.eval(&click("#defect-mark")).await?;
    cdp.eval(&click("#defect-mark")).await?;
    cdp.wait_for(
        "the mark in the console",
        "document.querySelector('#defects tr td:nth-child(2)')?.textContent === 'kowloon-cyber'",
    )
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let after = loop {
        let after = team_sla(store.scores_for_tick(checked).await?);
        if after != before || tokio::time::Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    ensure!(after > before, "the score of tick {} changes once the result is marked: {before} -> {after}", checked.0);

    // The team's own after-action report, with its token; the organisers' of any team.
    let token = drill.token("kowloon-cyber")?;
    let own = own_report(drill, &token).await?;
    ensure!(
        own.status == 200 && own.header("content-type") == Some("text/html; charset=utf-8"),
        "{} {}",
        own.status,
        own.text()
    );
    ensure!(own.text().contains("After-action report") && own.text().contains("Kowloon Cyber Unit"), "{}", own.text());
    let zh = "fetch('/api/admin/teams/after-action?team=kowloon-cyber&lang=zh-HK').then(async (r) => \
              [r.status, r.headers.get('content-disposition'), await r.text()])";
    let zh = cdp.eval(zh).await?;
    ensure!(zh[0] == 200 && zh[1] == "attachment; filename=\"kowloon-cyber-after-action-zh-HK.html\"", "{}", zh[1]);
    ensure!(zh[2].as_str().is_some_and(|t| t.contains("事後檢討報告") && t.contains("九龍網絡安全組")), "{}", zh[2]);

    // Freeze the public scoreboard: the public API stands still, the console's session sees it live.
    cdp.eval(&fill("freeze-reason", "the last hour")).await?;
    cdp.eval(&click("#freeze")).await?;
    cdp.eval(&click("#freeze")).await?;
    cdp.wait_for(
        "the frozen board in the console",
        "document.getElementById('board-freeze').dataset.frozen === 'true'",
    )
    .await?;
    let public = gongfang_test_support::http::get(drill.web, "/api/scoreboard").await?.json()?;
    ensure!(public["freeze"]["live"] == false, "the public board is frozen: {}", public["freeze"]);
    let seen = cdp.eval("fetch('/api/scoreboard').then((r) => r.json()).then((b) => b.freeze.live)").await?;
    ensure!(seen == true, "the organiser's browser gets the live board: {seen}");
    let frozen = own_report(drill, &token).await?;
    ensure!(
        frozen.status == 409 && frozen.code() == "wrong_state",
        "a team's report waits for the final scores: {}",
        frozen.text()
    );

    // Take a team out of the drill and bring it back: a reason, two presses each.
    cdp.eval(&fill("team-token-team", "harbour-data")).await?;
    cdp.eval(&fill("team-token-reason", "scanned the platform's own hosts")).await?;
    cdp.eval(&click("#team-disable")).await?;
    cdp.eval(&click("#team-disable")).await?;
    let out = "[...document.querySelectorAll('#teams tr')].some((r) => \
               r.textContent.includes('harbour-data') && r.textContent.includes('taken out at'))";
    cdp.wait_for("the team out of the drill in the console", out).await?;
    ensure!(store.disabled_teams().await? == [TeamId(2)], "stored as out of the drill");
    cdp.eval(&click("#team-enable")).await?;
    cdp.eval(&click("#team-enable")).await?;
    cdp.wait_for("the team back in the drill", &format!("!{out}")).await?;
    ensure!(store.disabled_teams().await?.is_empty(), "stored as back");

    // The checker's log of that tick, which only organisers and observers see.
    cdp.eval(&fill("logs-team", "kowloon-cyber")).await?;
    cdp.eval(&fill("logs-service", "kv")).await?;
    cdp.eval(&fill("logs-tick", &checked.0.to_string())).await?;
    cdp.eval(&submit("logs-form")).await?;
    let actions = cdp.wait_for("the checker's actions", "document.querySelectorAll('#logs tr').length || null").await?;
    ensure!(actions.as_u64().is_some_and(|n| n >= 2), "put and check at least: {actions}");

    cdp.eval(&fill("audit-actor", "account olga")).await?;
    cdp.eval(&submit("audit-form")).await?;
    let actions = cdp
        .wait_for(
            "the audit log's entries",
            "(() => { const a = [...document.querySelectorAll('#audit tr')].map((r) => \
             [r.children[1].textContent, r.children[2].textContent]); \
             return a.some((x) => x[1] === 'drill.pause') ? a : null; })()",
        )
        .await?;
    for action in [
        "drill.pause",
        "announcement.post",
        "session.login",
        "result.defective",
        "board.freeze",
        "team.disable",
        "team.enable",
    ] {
        ensure!(
            actions.as_array().is_some_and(|a| a.contains(&json!(["account olga", action]))),
            "{action} under account olga in the audit table: {actions}"
        );
    }
    // The checklist shows the last tick that ran checks, and the tick the drill is at.
    let summary = cdp.eval("document.getElementById('checklist-summary').textContent").await?;
    ensure!(summary.as_str().is_some_and(|s| s.starts_with("0 of 2 services")), "the checklist: {summary}");
    let tick = cdp.eval("document.getElementById('drill-tick').textContent").await?;
    ensure!(tick.as_str().is_some_and(|t| t.parse::<u32>().is_ok()), "the current tick: {tick}");
    shot(cdp, "console-en").await?;

    // ---- both pages in Hong Kong Chinese ----
    cdp.eval(&click("[data-lang='zh-HK']")).await?;
    cdp.wait_for(
        "the console in Chinese",
        "document.documentElement.lang === 'zh-HK' && document.querySelector('h1 span').textContent === '主辦控制台'",
    )
    .await?;
    ensure!(cdp.eval("document.getElementById('drill-state').textContent").await? == "已暫停", "the state in Chinese");
    shot(cdp, "console-zh-HK").await?;

    cdp.session = Some(portal);
    cdp.eval(&click("[data-lang='zh-HK']")).await?;
    cdp.wait_for("the portal in Chinese", "document.documentElement.lang === 'zh-HK' && document.getElementById('team-name').textContent === '九龍網絡安全組'").await?;
    let heading = cdp.eval("document.getElementById('services-heading').textContent").await?;
    ensure!(heading == "你的服務", "the services heading in Chinese: {heading}");
    let shown = cdp.eval("document.querySelector('#announcements li strong').textContent").await?;
    ensure!(shown == "中午午膳", "the announcement's Chinese title: {shown}");
    shot(cdp, "portal-zh-HK").await?;
    // The choice is remembered: a reload comes back in Chinese, still logged in.
    cdp.navigate(&format!("{base}/portal")).await?;
    cdp.wait_for("the reloaded portal", PAGE_READY).await?;
    let reloaded = cdp.eval("[document.documentElement.lang, document.getElementById('app').hidden]").await?;
    ensure!(reloaded == json!(["zh-HK", false]), "Chinese and still logged in after a reload: {reloaded}");

    // The public board, in the same browser, speaks the language chosen in the portal.
    cdp.navigate(&format!("{base}/")).await?;
    let board = cdp
        .wait_for(
            "the board in the remembered language",
            "window.__gongfang && window.__gongfang.ready ? [document.documentElement.lang, \
             document.querySelector('#ranking-title span').textContent] : null",
        )
        .await?;
    ensure!(board == json!(["zh-HK", "排名"]), "the board in Chinese: {board}");
    shot(cdp, "board-zh-HK").await?;

    let captured = store.submissions_planted_since(Tick(0)).await?;
    ensure!(captured.iter().any(|s| s.submission.flag == flag), "the flag submitted through the form is stored");
    Ok(())
}
