//! The judges' workbench: its API over real HTTP with the real store (SQLite, and PostgreSQL
//! when configured) — a report's recorded context with the suggested capture marked, evidence
//! shown inline only when its bytes are a PNG or JPEG, reason codes stored, listed and
//! audited, a filtered and bounded queue — and the page in headless Chromium in both
//! languages: a judge logs in, opens a report, sees the suggested capture beside it and rules;
//! screenshots under `target/screenshots/`.
//!
//! Without Chromium the browser test is skipped with a notice, unless
//! `GONGFANG_REQUIRE_BROWSER=1`.

mod common;

use anyhow::{Context as _, ensure};
use gongfang_core::NewSubmission;
use gongfang_core::scoring::Capture;
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick};
use gongfang_test_support::TestDb;
use gongfang_test_support::browser::{Browser, Cdp, PAGE_READY, chromium_or_skip, click, fill, submit};
use gongfang_test_support::http::Response;
use serde_json::{Value, json};

use common::*;

gongfang_test_support::backend_tests!(
    setup = common::spawn;
    the_context_marks_the_suggested_capture,
    only_png_and_jpeg_bytes_are_shown_inline,
    reason_codes_are_stored_listed_and_audited,
    the_queue_filters_and_stays_bounded,
);

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn attack(target: &str, from: i64, to: i64) -> Value {
    json!({
        "kind": "attack",
        "target_team": target,
        "service": "opendata",
        "from": at(from),
        "to": at(to),
        "technique": "default admin password on the registry",
        "attack_id": "T1078.001",
        "description": "Logged in as admin/admin and read every key.",
        "evidence": "$ nc 10.60.11.2 7000\nGET admin\n",
    })
}

fn capture(attacker: TeamId, victim: TeamId, flag: &str, minutes: i64) -> NewSubmission {
    NewSubmission {
        capture: Capture {
            attacker,
            victim,
            service: ServiceId(1),
            store: StoreIdx(0),
            planted: Tick(20),
            submitted: Tick(20),
        },
        flag: flag.into(),
        submitted_at: at(minutes),
    }
}

async fn file(app: &App, team: TeamId, report: &Value) -> anyhow::Result<i64> {
    let auth = team_auth(app, team);
    let r = app.request("POST", "/api/reports", &[(auth.0, &auth.1), JSON], report.to_string().as_bytes()).await;
    ensure!(r.status == 201, "{}", r.text());
    r.json()?["id"].as_i64().context("an id")
}

async fn get(app: &App, judge: &(&str, String), path: &str) -> Response {
    app.request("GET", path, &[(judge.0, &judge.1)], b"").await
}

async fn the_context_marks_the_suggested_capture(app: App) -> anyhow::Result<()> {
    // red-firm captured ddb's flag inside its report's window (minute 41) and once more in the
    // margin after it (minute 47); red-academy's capture of ddb is not red-firm's.
    app.store
        .insert_submissions(&[
            capture(RED_FIRM, DDB, "GONGFANG{a}", 41),
            capture(RED_FIRM, DDB, "GONGFANG{b}", 47),
            capture(RED_ACADEMY, DDB, "GONGFANG{c}", 42),
        ])
        .await?;
    let id = file(&app, RED_FIRM, &attack("ddb", 35, 45)).await?;
    let judge = judge_auth(&app, ANA).await;
    let c = get(&app, &judge, &format!("/api/judge/reports/{id}/context")).await;
    ensure!(c.status == 200, "{}", c.text());
    let c = c.json()?;
    let caps = c["captures"].as_array().context("captures")?;
    ensure!(caps.len() == 2, "only red-firm's captures of ddb, margin included: {c}");
    ensure!(caps.iter().all(|x| x["attacker"] == "red-firm" && x["victim"] == "ddb"), "{c}");
    ensure!(caps[0]["suggested"] == true && caps[1]["suggested"] == false, "the one in the window is suggested: {c}");
    ensure!(c["suggestion"]["strength"] == "strong", "{c}");
    ensure!(c.get("captures_truncated").is_none(), "two captures are not many: {c}");
    // The same context as the report's own page gives.
    let full = get(&app, &judge, &format!("/api/judge/reports/{id}")).await.json()?;
    ensure!(full["context"]["captures"] == c["captures"], "{full}");
    // Teams cannot read it; an unknown report is 404.
    let team = team_auth(&app, RED_FIRM);
    let as_team = app.request("GET", &format!("/api/judge/reports/{id}/context"), &[(team.0, &team.1)], b"").await;
    ensure!(as_team.status == 403, "{}", as_team.text());
    ensure!(get(&app, &judge, "/api/judge/reports/999/context").await.code() == "unknown_report");
    app.stop().await;
    Ok(())
}

async fn only_png_and_jpeg_bytes_are_shown_inline(app: App) -> anyhow::Result<()> {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-a-screenshot".to_vec();
    let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'].to_vec();
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>"#.to_vec();
    let html = b"<!doctype html><script>fetch('/api/judge/queue')</script>".to_vec();
    let report = attack("ddb", 35, 45).to_string();
    let (ct, body) = multipart(&[
        ("report", None, "application/json", report.as_bytes()),
        ("evidence", Some("shot.png"), "image/png", &png),
        ("evidence", Some("photo.jpg"), "image/jpeg", &jpeg),
        // Named like images, but text: the platform took them as text, and never shows them.
        ("evidence", Some("logo.png"), "text/plain", &svg),
        ("evidence", Some("page.jpg"), "text/plain", &html),
    ]);
    let auth = team_auth(&app, RED_FIRM);
    let filed = app.request("POST", "/api/reports", &[(auth.0, &auth.1), ("Content-Type", &ct)], &body).await;
    ensure!(filed.status == 201, "{}", filed.text());
    let id = filed.json()?["id"].as_i64().unwrap();
    let judge = judge_auth(&app, ANA).await;
    let report = get(&app, &judge, &format!("/api/judge/reports/{id}")).await.json()?;
    let files = report["report"]["evidence"].as_array().context("evidence")?.clone();
    ensure!(files.len() == 4, "{report}");
    for (file, bytes, inline) in [(&files[0], &png, Some("image/png")), (&files[1], &jpeg, Some("image/jpeg"))]
        .into_iter()
        .chain([(&files[2], &svg, None), (&files[3], &html, None)])
    {
        let url = file["view_url"].as_str().context("judges get a view_url")?;
        let got = get(&app, &judge, url).await;
        ensure!(got.status == 200 && got.body == *bytes, "{url} came back changed");
        ensure!(got.header("content-security-policy") == Some("sandbox; default-src 'none'"), "{url}");
        ensure!(got.header("x-content-type-options") == Some("nosniff"), "{url}");
        let disposition = got.header("content-disposition").unwrap_or_default().to_owned();
        match inline {
            Some(kind) => {
                ensure!(got.header("content-type") == Some(kind), "{url}: {:?}", got.header("content-type"));
                ensure!(disposition.starts_with("inline"), "{url}: {disposition}");
            }
            None => {
                ensure!(got.header("content-type") == Some("application/octet-stream"), "{url} is not an image");
                ensure!(disposition.starts_with("attachment"), "{url} is a download: {disposition}");
            }
        }
    }
    // Teams see no view_url, and cannot use one.
    let own = app.request("GET", &format!("/api/reports/{id}"), &[(auth.0, &auth.1)], b"").await.json()?;
    ensure!(own["evidence"][0].get("view_url").is_none(), "{own}");
    let url = files[0]["view_url"].as_str().unwrap();
    ensure!(app.request("GET", url, &[(auth.0, &auth.1)], b"").await.status == 403);
    app.stop().await;
    Ok(())
}

async fn reason_codes_are_stored_listed_and_audited(app: App) -> anyhow::Result<()> {
    let first = file(&app, RED_FIRM, &attack("ddb", 35, 45)).await?;
    let second = file(&app, RED_FIRM, &attack("crd", 35, 45)).await?;
    let judge = judge_auth(&app, ANA).await;
    let rule = |id: i64, body: Value| {
        let judge = judge.clone();
        let app = &app;
        async move {
            app.request(
                "POST",
                &format!("/api/judge/reports/{id}/ruling"),
                &[(judge.0, &judge.1), JSON],
                body.to_string().as_bytes(),
            )
            .await
        }
    };
    let bad = rule(first, json!({ "valid": true, "points": 10, "reason_codes": ["looked-fine"] })).await;
    ensure!(bad.status == 400 && bad.text().contains("duplicate"), "an unknown code names the list: {}", bad.text());
    let ruled = rule(
        first,
        json!({ "valid": true, "points": 30, "reason": "capture at 01:41",
                "reason_codes": ["confirmed-by-logs", "confirmed-by-capture", "confirmed-by-logs"] }),
    )
    .await;
    ensure!(ruled.status == 200, "{}", ruled.text());
    ensure!(
        ruled.json()?["rulings"][0]["reason_codes"] == json!(["confirmed-by-capture", "confirmed-by-logs"]),
        "each code once, in the list's order: {}",
        ruled.text()
    );
    // An old client sends no codes.
    let old = rule(second, json!({ "valid": false, "reason": "nothing there" })).await;
    ensure!(old.status == 200 && old.json()?["rulings"][0]["reason_codes"] == json!([]), "{}", old.text());
    // Listed to judges and to the filing team, after a restart of nothing but a fresh read.
    let listed = get(&app, &judge, "/api/judge/reports?status=ruled").await.json()?;
    let mine = listed.as_array().unwrap().iter().find(|r| r["id"] == first).cloned().context("listed")?;
    ensure!(mine["rulings"][0]["reason_codes"] == json!(["confirmed-by-capture", "confirmed-by-logs"]), "{mine}");
    let team = team_auth(&app, RED_FIRM);
    let own = app.request("GET", "/api/reports", &[(team.0, &team.1)], b"").await.json()?;
    let own = own.as_array().unwrap().iter().find(|r| r["id"] == first).cloned().context("own")?;
    ensure!(own["rulings"][0]["reason_codes"] == json!(["confirmed-by-capture", "confirmed-by-logs"]), "{own}");
    // Audited under the judge's account.
    let audit = app.store.list_audit(None, 50).await?;
    let entry = audit
        .iter()
        .find(|e| e.action == "report.rule" && e.detail["report"] == first)
        .context("the ruling is audited")?;
    ensure!(entry.actor.contains("ana"), "{entry:?}");
    ensure!(entry.detail["reason_codes"] == json!(["confirmed-by-capture", "confirmed-by-logs"]), "{entry:?}");
    app.stop().await;
    Ok(())
}

async fn the_queue_filters_and_stays_bounded(app: App) -> anyhow::Result<()> {
    let a = file(&app, RED_FIRM, &attack("ddb", 35, 45)).await?;
    let b = file(&app, RED_ACADEMY, &attack("crd", 35, 45)).await?;
    app.set_now(at(200));
    let c = file(&app, RED_FIRM, &attack("chra", 35, 45)).await?;
    let judge = judge_auth(&app, BO).await;
    let ids = |v: Value| -> Vec<i64> { v.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect() };
    let q = |p: &str| format!("/api/judge/workbench/queue?{p}");
    ensure!(ids(get(&app, &judge, &q("")).await.json()?) == vec![a, b, c]);
    ensure!(ids(get(&app, &judge, &q("team=red-firm")).await.json()?) == vec![a, c]);
    ensure!(ids(get(&app, &judge, &q("kind=defence")).await.json()?).is_empty());
    ensure!(ids(get(&app, &judge, &q("kind=attack&team=red-academy")).await.json()?) == vec![b]);
    // Filed at minute 60 and 200; it is minute 200 now.
    ensure!(ids(get(&app, &judge, &q("filed_within=60")).await.json()?) == vec![c]);
    ensure!(ids(get(&app, &judge, &q("older_than=60")).await.json()?) == vec![a, b]);
    let rule = app
        .request(
            "POST",
            &format!("/api/judge/reports/{a}/ruling"),
            &[(judge.0, &judge.1), JSON],
            json!({ "valid": true, "points": 5 }).to_string().as_bytes(),
        )
        .await;
    ensure!(rule.status == 200, "{}", rule.text());
    ensure!(ids(get(&app, &judge, &q("status=ruled")).await.json()?) == vec![a]);
    ensure!(ids(get(&app, &judge, &q("status=pending")).await.json()?) == vec![b, c]);
    ensure!(ids(get(&app, &judge, &q("status=all")).await.json()?) == vec![a, b, c]);
    // One page at a time, never more than 200.
    let page = get(&app, &judge, &q("status=all&limit=2")).await;
    ensure!(ids(page.json()?) == vec![a, b]);
    let next = page.header("link").context("a next page")?.to_owned();
    ensure!(next.contains("status=all") && next.contains(&format!("after={b}")), "{next}");
    ensure!(get(&app, &judge, &q("limit=201")).await.code() == "bad_request");
    ensure!(get(&app, &judge, &q("team=nobody")).await.code() == "unknown_team");
    ensure!(get(&app, &judge, &q("kind=sideways")).await.code() == "bad_request");
    ensure!(get(&app, &judge, &q("older_than=-5")).await.code() == "bad_request");
    ensure!(get(&app, &judge, &q("colour=red")).await.status == 400, "unknown parameters are refused");
    // The page's setup: reason codes, maxima and teams.
    let setup = get(&app, &judge, "/api/judge/workbench").await.json()?;
    ensure!(setup["reason_codes"].as_array().unwrap().iter().any(|c| c == "out-of-scope"), "{setup}");
    ensure!(setup["max_points"]["attack"].as_u64().unwrap() > 0, "{setup}");
    app.stop().await;
    Ok(())
}

/// In English and in Hong Kong Chinese: a judge logs in, opens a report, sees the suggested
/// capture highlighted beside it, scores it with reason codes, and the ruling is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_judge_rules_a_report_from_the_workbench_in_both_languages() -> anyhow::Result<()> {
    let Some(chromium) = chromium_or_skip()? else { return Ok(()) };
    let app = spawn(TestDb::sqlite().await).await;
    app.store
        .insert_submissions(&[capture(RED_FIRM, DDB, "GONGFANG{a}", 41), capture(RED_FIRM, CRD, "GONGFANG{b}", 40)])
        .await?;
    let english = file(&app, RED_FIRM, &attack("ddb", 35, 45)).await?;
    let chinese = file(&app, RED_FIRM, &attack("crd", 35, 45)).await?;
    let mut browser = Browser::launch(&chromium).await?;
    let mut outcome = Ok(());
    for (lang, id, points) in [("en", english, 30), ("zh-HK", chinese, 25)] {
        outcome = drive(&mut browser.cdp, &app, lang, id, points).await.with_context(|| format!("in {lang}"));
        if outcome.is_err() {
            break;
        }
    }
    let problems = std::mem::take(&mut browser.cdp.problems);
    browser.close().await?;
    outcome?;
    ensure!(problems.is_empty(), "the page reported problems: {problems:#?}");
    for (id, points) in [(english, 30), (chinese, 25)] {
        let stored = app.store.report(id).await?.context("stored")?;
        let ruling = stored.rulings.first().context("the ruling is stored")?;
        ensure!(ruling.decision.valid && ruling.decision.points == points && ruling.judge == "ana", "{ruling:?}");
        ensure!(
            ruling.decision.reason_codes == vec![gongfang_core::report::ReasonCode::ConfirmedByCapture],
            "{ruling:?}"
        );
    }
    app.stop().await;
    Ok(())
}

async fn drive(cdp: &mut Cdp, app: &App, lang: &str, id: i64, points: u32) -> anyhow::Result<()> {
    cdp.open_isolated_page().await?;
    cdp.navigate(&format!("http://{}/judge?lang={lang}", app.addr)).await?;
    cdp.wait_for("the page is ready", PAGE_READY).await?;
    let title = cdp.eval("document.querySelector('h1').textContent").await?;
    let expected = if lang == "en" { "Judges' workbench" } else { "評審工作台" };
    ensure!(title == json!(expected), "the title in {lang}: {title}");
    cdp.eval(&fill("login-name", ANA.0)).await?;
    cdp.eval(&fill("login-password", ANA.1)).await?;
    cdp.eval(&submit("login-form")).await?;
    let row = format!("document.querySelector('[data-queue] tr[data-report=\"{id}\"]')");
    cdp.wait_for("the report in the queue", &format!("!!{row}")).await?;
    cdp.eval(&click(&format!("button[data-open=\"{id}\"]"))).await?;
    cdp.wait_for(
        "the suggested capture beside the report",
        &format!(
            "document.getElementById('report-area').dataset.report === '{id}' && \
             document.querySelectorAll('[data-captures] tr[data-capture=\"suggested\"].suggested').length === 1"
        ),
    )
    .await?;
    let strength = cdp.eval("document.querySelector('[data-suggestion]').dataset.strength").await?;
    ensure!(strength == json!("strong"), "{strength}");
    let label = cdp.eval("document.querySelector('[data-captures] tr.suggested td:last-child').textContent").await?;
    let expected = if lang == "en" { "Suggested match" } else { "建議配對" };
    ensure!(label == json!(expected), "{label}");
    shot(cdp, &format!("workbench-report-{lang}")).await?;

    cdp.eval(&click("#rule-valid")).await?;
    cdp.eval(&fill("rule-points", &points.to_string())).await?;
    cdp.eval(&click("input[data-code=\"confirmed-by-capture\"]")).await?;
    cdp.eval(&fill("rule-reason", "the capture backs it")).await?;
    cdp.eval(&submit("ruling-form")).await?;
    cdp.wait_for("the ruling shown", "!!document.querySelector('[data-ruling=\"first\"]')").await?;
    shot(cdp, &format!("workbench-ruled-{lang}")).await?;
    let _ = app;
    Ok(())
}
