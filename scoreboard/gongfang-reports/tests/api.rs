//! The report API as teams and judges use it, over real HTTP on 127.0.0.1 with the real store
//! (SQLite always, PostgreSQL when `GONGFANG_TEST_POSTGRES_URL` is set), on the shipped
//! red/blue example scenario.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, ensure};
use gongfang_core::Action;
use gongfang_core::CheckResult;
use gongfang_core::NewSubmission;
use gongfang_core::event::GameEvent;
use gongfang_core::report::{ReportKind, RulingStage};
use gongfang_core::scoring::Capture;
use gongfang_core::scoring::{ScoredService, ScoredTeam, Standings, TickEvents, recompute_standings};
use gongfang_core::{ServiceId, StoreIdx, TeamId, Tick, Verdict};
use gongfang_test_support::http::{Response, read_response};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use common::*;

gongfang_test_support::backend_tests!(
    setup = common::spawn;
    lifecycle_filed_ruled_appealed_final,
    teams_see_only_their_own_and_cannot_rule,
    the_queue_suggests_matches_from_the_records,
    json_answers_say_nosniff,
    team_401s_ask_no_browser_for_a_password,
    bad_input_is_refused_and_nothing_is_stored,
    evidence_files_round_trip_and_judges_log_in,
);

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

fn defence(traced: Option<&str>, from: i64, to: i64) -> Value {
    json!({
        "kind": "defence",
        "service": "opendata",
        "from": at(from),
        "to": at(to),
        "technique": "blocked brute force on the admin port",
        "attack_id": "T1110.001",
        "description": "fail2ban banned the address after 20 failed logins.",
        "traced_address": "10.60.1.9",
        "traced_team": traced,
    })
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

async fn file(app: &App, team: TeamId, report: &Value) -> Response {
    let auth = team_auth(app, team);
    app.request("POST", "/api/reports", &[(auth.0, &auth.1), JSON], report.to_string().as_bytes()).await
}

async fn rule(app: &App, judge: (&str, &str), id: i64, stage: &str, decision: Value) -> Response {
    let auth = judge_auth(app, judge).await;
    let path = format!("/api/judge/reports/{id}/{stage}");
    app.request("POST", &path, &[(auth.0, &auth.1), JSON], decision.to_string().as_bytes()).await
}

async fn get_as(app: &App, team: TeamId, path: &str) -> Response {
    let auth = team_auth(app, team);
    app.request("GET", path, &[(auth.0, &auth.1)], b"").await
}

/// The board after every opened tick, from the stored rulings, as the scenario scores it.
/// No flags are captured in these ticks, so a team's total is its weighted report points.
async fn board(app: &App) -> anyhow::Result<Standings> {
    let s = &app.scenario;
    let last = app.store.latest_tick().await?.context("no tick opened")?.tick;
    let ticks: Vec<TickEvents> =
        (0..=last.0).map(|t| TickEvents { tick: Tick(t), verdicts: vec![], captures: vec![] }).collect();
    let teams: Vec<ScoredTeam> = s.teams.iter().map(ScoredTeam::from).collect();
    let services: Vec<ScoredService> = s.services.iter().map(ScoredService::from).collect();
    let awards = app.store.report_awards().await?;
    let all = recompute_standings(s.drill.scoring, &teams, &services, &ticks, &s.reports, &awards, &s.patches, &[])?;
    all.last().cloned().context("no standings")
}

fn total(b: &Standings, team: TeamId) -> f64 {
    b.team(team).map_or(f64::NAN, |t| t.total)
}

async fn lifecycle_filed_ruled_appealed_final(mut app: App) -> anyhow::Result<()> {
    // Two-minute ticks: tick 30 runs at minute 60.
    app.store.open_tick(Tick(30), at(60)).await?;
    let filed = file(&app, RED_FIRM, &attack("ddb", 30, 40)).await;
    ensure!(filed.status == 201, "{}", filed.text());
    let r = filed.json()?;
    let id = r["id"].as_i64().context("no id")?;
    ensure!(r["status"] == "pending" && r["points"] == 0 && r["can_appeal"] == false, "{r}");
    ensure!(r["target_team"] == "ddb" && r["attack_id"] == "T1078.001" && r["team"] == "red-firm", "{r}");
    ensure!(total(&board(&app).await?, RED_FIRM) == 0.0);

    app.set_now(at(70));
    let ruled =
        rule(&app, ANA, id, "ruling", json!({ "valid": true, "points": 40, "reason": "confirmed on the box" })).await;
    ensure!(ruled.status == 200, "{}", ruled.text());
    ensure!(ruled.json()?["rulings"][0]["judge"] == "ana", "judges see who ruled");
    let event = app.events.try_recv()?;
    ensure!(
        event
            == GameEvent::ReportRuled {
                report: id,
                team: RED_FIRM,
                kind: ReportKind::Attack,
                stage: RulingStage::First,
                valid: true,
                points: 40
            },
        "{event:?}"
    );
    ensure!(!serde_json::to_string(&event)?.contains("admin"), "the event carries no report content");
    // red-blue, weight 1: report points count one for one.
    ensure!(total(&board(&app).await?, RED_FIRM) == 40.0);

    let seen = get_as(&app, RED_FIRM, &format!("/api/reports/{id}")).await.json()?;
    ensure!(seen["status"] == "ruled" && seen["points"] == 40 && seen["can_appeal"] == true, "{seen}");
    ensure!(seen["rulings"][0].get("judge").is_none(), "teams do not see the judge's name: {seen}");
    ensure!(seen["rulings"][0]["reason"] == "confirmed on the box");
    ensure!(seen["appeal_deadline"] == json!(at(70 + 120)), "two-hour appeal window: {seen}");

    app.set_now(at(100));
    let auth = team_auth(&app, RED_FIRM);
    let appealed = app
        .request(
            "POST",
            &format!("/api/reports/{id}/appeal"),
            &[(auth.0, &auth.1), JSON],
            br#"{"reason": "root shell too, see pcap"}"#,
        )
        .await;
    ensure!(appealed.status == 200 && appealed.json()?["status"] == "appealed", "{}", appealed.text());
    let again = rule(&app, ANA, id, "appeal-ruling", json!({ "valid": true, "points": 90 })).await;
    ensure!(again.status == 409 && again.code() == "same_judge", "{}", again.text());
    let over = rule(&app, BO, id, "appeal-ruling", json!({ "valid": true, "points": 101 })).await;
    ensure!(over.status == 422 && over.code() == "points_above_max", "{}", over.text());
    ensure!(over.json()?["error"]["message"].as_str().unwrap().contains("at most 100"), "{}", over.text());

    app.set_now(at(110));
    let fin =
        rule(&app, BO, id, "appeal-ruling", json!({ "valid": true, "points": 100, "reason": "root confirmed" })).await;
    ensure!(fin.status == 200, "{}", fin.text());
    ensure!(fin.json()?["status"] == "final" && fin.json()?["points"] == 100, "{}", fin.text());
    let event = app.events.try_recv()?;
    ensure!(matches!(event, GameEvent::ReportRuled { stage: RulingStage::Appeal, points: 100, .. }), "{event:?}");
    ensure!(total(&board(&app).await?, RED_FIRM) == 100.0, "the appeal ruling replaced the first");
    let twice = app
        .request("POST", &format!("/api/reports/{id}/appeal"), &[(auth.0, &auth.1), JSON], br#"{"reason": "more"}"#)
        .await;
    ensure!(twice.status == 409 && twice.code() == "wrong_state", "{}", twice.text());

    // A blue team's defence report, ruled and never appealed: final once the window closes.
    let filed = file(&app, DDB, &defence(Some("red-firm"), 30, 50)).await;
    ensure!(filed.status == 201, "{}", filed.text());
    let did = filed.json()?["id"].as_i64().unwrap();
    let over = rule(&app, ANA, did, "ruling", json!({ "valid": true, "points": 61 })).await;
    ensure!(over.code() == "points_above_max", "defence reports are worth at most 60: {}", over.text());
    let ok = rule(&app, ANA, did, "ruling", json!({ "valid": true, "points": 60 })).await;
    ensure!(ok.status == 200, "{}", ok.text());
    let b = board(&app).await?;
    ensure!((total(&b, RED_FIRM), total(&b, DDB), total(&b, CRD)) == (100.0, 60.0, 0.0));
    app.set_now(at(110 + 121));
    let late = get_as(&app, DDB, &format!("/api/reports/{did}")).await.json()?;
    ensure!(late["status"] == "final" && late["can_appeal"] == false, "{late}");
    let auth = team_auth(&app, DDB);
    let closed = app
        .request("POST", &format!("/api/reports/{did}/appeal"), &[(auth.0, &auth.1), JSON], br#"{"reason": "late"}"#)
        .await;
    ensure!(closed.status == 422 && closed.code() == "appeal_closed", "{}", closed.text());

    // Every ruling and the appeal are in the audit log with who and when.
    let audit = app.store.list_audit(None, 50).await?;
    let lines: Vec<(String, String, chrono::DateTime<chrono::Utc>)> =
        audit.iter().map(|a| (a.actor.clone(), a.action.clone(), a.at)).collect();
    let want = vec![
        ("account ana".to_owned(), "report.rule".to_owned(), at(70)),
        ("team:1".to_owned(), "report.appeal".to_owned(), at(100)),
        ("account bo".to_owned(), "report.rule-appeal".to_owned(), at(110)),
        ("account ana".to_owned(), "report.rule".to_owned(), at(110)),
    ];
    ensure!(lines == want, "audit {lines:?}");
    ensure!(audit[2].detail["points"] == 100 && audit[2].detail["report"] == id, "{}", audit[2].detail);
    app.stop().await;
    Ok(())
}

async fn teams_see_only_their_own_and_cannot_rule(app: App) -> anyhow::Result<()> {
    let (ct, body) = multipart(&[
        ("report", None, "application/json", attack("crd", 30, 40).to_string().as_bytes()),
        ("evidence", Some("log.txt"), "text/plain", b"admin login from 10.60.1.9"),
    ]);
    let auth = team_auth(&app, RED_FIRM);
    let filed = app.request("POST", "/api/reports", &[(auth.0, &auth.1), ("Content-Type", &ct)], &body).await;
    ensure!(filed.status == 201, "{}", filed.text());
    let r = filed.json()?;
    let id = r["id"].as_i64().unwrap();
    let evidence_url = r["evidence"][0]["url"].as_str().context("no evidence url")?.to_owned();

    // Another team's report and its evidence answer exactly as a missing report does, so no
    // team learns which ids others have filed; its own list is empty.
    let missing_id = id + 1_000_000;
    let as_if_missing = |answer: &Response, missing: &Response| -> anyhow::Result<()> {
        ensure!(answer.status == 404 && answer.code() == "unknown_report", "{}", answer.text());
        ensure!(answer.status == missing.status && answer.header("content-type") == missing.header("content-type"));
        let missing = missing.text().replace(&missing_id.to_string(), &id.to_string());
        ensure!(answer.text() == missing, "{} is not {missing}", answer.text());
        Ok(())
    };
    let missing = get_as(&app, RED_ACADEMY, &format!("/api/reports/{missing_id}")).await;
    let other = get_as(&app, RED_ACADEMY, &format!("/api/reports/{id}")).await;
    as_if_missing(&other, &missing)?;
    ensure!(!other.text().contains("admin"), "a refusal leaks nothing");
    let file = get_as(&app, RED_ACADEMY, &evidence_url).await;
    let missing_file =
        get_as(&app, RED_ACADEMY, &evidence_url.replace(&format!("/{id}/"), &format!("/{missing_id}/"))).await;
    as_if_missing(&file, &missing_file)?;
    ensure!(get_as(&app, RED_ACADEMY, "/api/reports").await.json()? == json!([]));
    ensure!(get_as(&app, CRD, &format!("/api/reports/{id}")).await.status == 404, "not even the target");
    ensure!(get_as(&app, RED_FIRM, &evidence_url).await.status == 200, "the filer reads its evidence");

    // A team cannot rule, appeal another's report, or see the queue.
    let auth = team_auth(&app, CRD);
    let ruled = app
        .request(
            "POST",
            &format!("/api/judge/reports/{id}/ruling"),
            &[(auth.0, &auth.1), JSON],
            br#"{"valid": false, "reason": "no"}"#,
        )
        .await;
    ensure!(ruled.status == 403 && ruled.code() == "judges_only", "{}", ruled.text());
    ensure!(get_as(&app, CRD, "/api/judge/queue").await.code() == "judges_only");
    let auth = team_auth(&app, RED_ACADEMY);
    let appeal = app
        .request("POST", &format!("/api/reports/{id}/appeal"), &[(auth.0, &auth.1), JSON], br#"{"reason": "x"}"#)
        .await;
    ensure!(appeal.status == 404 && appeal.code() == "unknown_report", "{}", appeal.text());
    ensure!(app.store.report(id).await?.unwrap().rulings.is_empty(), "nothing was ruled");

    // No or wrong credentials; an organiser is not a judge; a judge does not file.
    let none = app.request("GET", "/api/judge/queue", &[], b"").await;
    ensure!(none.status == 401 && none.code() == "unauthenticated", "{}", none.text());
    ensure!(none.header("www-authenticate").is_some());
    let wrong = basic(ANA.0, "not the password");
    ensure!(app.request("POST", "/api/judge/login", &[(wrong.0, &wrong.1)], b"").await.code() == "bad_credentials");
    let olga = basic("olga", "organiser password");
    ensure!(app.request("POST", "/api/judge/login", &[(olga.0, &olga.1)], b"").await.code() == "judges_only");
    let bad = ("X-Team-Token", "A".repeat(32));
    ensure!(app.request("GET", "/api/reports", &[(bad.0, &bad.1)], b"").await.code() == "bad_token");
    let judge = judge_auth(&app, ANA).await;
    let filing = app
        .request("POST", "/api/reports", &[(judge.0, &judge.1), JSON], attack("crd", 1, 2).to_string().as_bytes())
        .await;
    ensure!(filing.status == 403 && filing.code() == "teams_only", "{}", filing.text());
    // Judges read any report and its evidence.
    ensure!(app.request("GET", &format!("/api/reports/{id}"), &[(judge.0, &judge.1)], b"").await.status == 200);
    ensure!(app.request("GET", &evidence_url, &[(judge.0, &judge.1)], b"").await.status == 200);
    app.stop().await;
    Ok(())
}

async fn json_answers_say_nosniff(app: App) -> anyhow::Result<()> {
    let filed = file(&app, RED_FIRM, &attack("crd", 30, 40)).await;
    ensure!(filed.status == 201, "{}", filed.text());
    let id = filed.json()?["id"].as_i64().context("no id")?;
    let judge = judge_auth(&app, ANA).await;
    let answers = [
        ("filed", filed),
        ("own list", get_as(&app, RED_FIRM, "/api/reports").await),
        ("own report", get_as(&app, RED_FIRM, &format!("/api/reports/{id}")).await),
        ("missing report", get_as(&app, RED_FIRM, "/api/reports/999999").await),
        ("refused report", file(&app, RED_FIRM, &json!({ "kind": "attack" })).await),
        ("no credentials", app.request("GET", "/api/reports", &[], b"").await),
        ("judges' queue", app.request("GET", "/api/judge/queue", &[(judge.0, &judge.1)], b"").await),
    ];
    for (what, answer) in answers {
        ensure!(answer.header("x-content-type-options") == Some("nosniff"), "{what}: {}", answer.status);
    }
    app.stop().await;
    Ok(())
}

async fn team_401s_ask_no_browser_for_a_password(app: App) -> anyhow::Result<()> {
    // A team's script or page gets a plain 401, never a browser's password dialog.
    let bad = ("X-Team-Token", "A".repeat(32));
    let team_401s = [
        ("no credentials", app.request("GET", "/api/reports", &[], b"").await),
        ("no credentials, filing", app.request("POST", "/api/reports", &[JSON], b"{}").await),
        ("no credentials, a report", app.request("GET", "/api/reports/1", &[], b"").await),
        ("a wrong token", app.request("GET", "/api/reports", &[(bad.0, &bad.1)], b"").await),
        ("a wrong token, a report", app.request("GET", "/api/reports/1", &[(bad.0, &bad.1)], b"").await),
    ];
    for (what, answer) in team_401s {
        ensure!(answer.status == 401, "{what}: {}", answer.text());
        ensure!(answer.header("www-authenticate").is_none(), "{what} asks for Basic credentials");
    }
    // Judges' endpoints ask for a session (no password dialog: a password goes to the login
    // only); a wrong password at the login asks for Basic credentials.
    let none = app.request("GET", "/api/judge/queue", &[], b"").await;
    ensure!(none.status == 401 && none.code() == "unauthenticated", "{}", none.text());
    ensure!(none.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer ")));
    let wrong = basic(ANA.0, "not the password");
    let wrong = app.request("POST", "/api/judge/login", &[(wrong.0, &wrong.1)], b"").await;
    ensure!(wrong.status == 401 && wrong.header("www-authenticate").is_some_and(|v| v.starts_with("Basic ")));
    app.stop().await;
    Ok(())
}

async fn the_queue_suggests_matches_from_the_records(app: App) -> anyhow::Result<()> {
    // red-firm captured ddb's tick-20 opendata flag at minute 41 (tick 20 runs 40:00–42:00);
    // red-academy captured chra's flag, but at minute 60, far from its report's window.
    let capture = |attacker: TeamId, victim: TeamId, flag: &str, minutes: i64| NewSubmission {
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
    };
    app.store
        .insert_submissions(&[capture(RED_FIRM, DDB, "GONGFANG{a}", 41), capture(RED_ACADEMY, CHRA, "GONGFANG{b}", 60)])
        .await?;
    // crd's opendata was up in tick 17 and down in tick 20.
    let check = |tick: u32, minutes: i64, verdict: Verdict| CheckResult {
        tick: Tick(tick),
        team: CRD,
        service: ServiceId(1),
        action: Action::Check,
        store: None,
        verdict,
        message: if verdict == Verdict::Ok { String::new() } else { "connection refused".into() },
        log: String::new(),
        duration_ms: 5,
        recorded_at: at(minutes),
        fault: None,
    };
    app.store.record_tick_results(&[], &[check(17, 34, Verdict::Ok), check(20, 40, Verdict::Down)]).await?;

    let ids: Vec<i64> = {
        let mut ids = Vec::new();
        for (team, report) in [
            (RED_FIRM, attack("ddb", 35, 45)),
            (RED_ACADEMY, attack("chra", 35, 45)),
            (RED_ACADEMY, attack("crd", 35, 45)),
            (DDB, defence(Some("red-firm"), 35, 45)),
        ] {
            let r = file(&app, team, &report).await;
            ensure!(r.status == 201, "{}", r.text());
            ids.push(r.json()?["id"].as_i64().unwrap());
        }
        ids
    };
    let judge = judge_auth(&app, BO).await;
    let queue = app.request("GET", "/api/judge/queue", &[(judge.0, &judge.1)], b"").await;
    ensure!(queue.status == 200, "{}", queue.text());
    let queue = queue.json()?;
    let entry = |id: i64| queue.as_array().unwrap().iter().find(|e| e["report"]["id"] == id).cloned().unwrap();

    let hit = entry(ids[0]);
    let caps = hit["context"]["captures"].as_array().unwrap();
    ensure!(caps.len() == 1, "{hit}");
    ensure!(
        caps[0]["attacker"] == "red-firm" && caps[0]["victim"] == "ddb" && caps[0]["service"] == "opendata",
        "{hit}"
    );
    ensure!(caps[0]["submitted_at"] == json!(at(41)) && caps[0]["tick_planted"] == 20, "{hit}");
    ensure!(hit["context"]["suggestion"]["strength"] == "strong", "{hit}");
    ensure!(
        hit["context"]["suggestion"]["summary"]
            .as_str()
            .unwrap()
            .contains("1 capture of ddb's opendata flags by red-firm")
    );

    let miss = entry(ids[1]);
    ensure!(miss["context"]["captures"] == json!([]), "the capture at minute 60 is not near this window: {miss}");
    ensure!(miss["context"]["verdict_changes"] == json!([]), "{miss}");
    ensure!(miss["context"]["suggestion"]["strength"] == "none", "{miss}");

    let down = entry(ids[2]);
    ensure!(down["context"]["captures"] == json!([]), "{down}");
    let changes = down["context"]["verdict_changes"].as_array().unwrap();
    ensure!(
        changes.len() == 1 && changes[0]["from"] == "ok" && changes[0]["to"] == "down" && changes[0]["tick"] == 20,
        "{down}"
    );
    ensure!(down["context"]["suggestion"]["strength"] == "weak", "{down}");

    let blue = entry(ids[3]);
    ensure!(blue["context"]["captures"].as_array().unwrap().len() == 1, "the defence report sees the attack: {blue}");
    ensure!(blue["context"]["suggestion"]["strength"] == "strong", "{blue}");
    ensure!(blue["context"]["logs"] == json!([]), "no log source configured: {blue}");

    // One report on its own, with the same context.
    let one =
        app.request("GET", &format!("/api/judge/reports/{}", ids[0]), &[(judge.0, &judge.1)], b"").await.json()?;
    ensure!(one["context"]["suggestion"]["strength"] == "strong", "{one}");
    app.stop().await;
    Ok(())
}

async fn nothing_stored(app: &App) -> anyhow::Result<()> {
    for team in [RED_FIRM, RED_ACADEMY, DDB] {
        ensure!(app.store.reports_of_team(team).await?.is_empty(), "a refused report was stored");
    }
    Ok(())
}

async fn bad_input_is_refused_and_nothing_is_stored(app: App) -> anyhow::Result<()> {
    let auth = team_auth(&app, RED_FIRM);
    let limit = app.scenario.reports.max_evidence_bytes;

    // 100 MB declared: refused before the body is read.
    let (ct, _) = multipart(&[]);
    let mut stream = tokio::net::TcpStream::connect(app.addr).await?;
    let head = format!(
        "POST /api/reports HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{}: {}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
        auth.0,
        auth.1,
        100u64 << 20
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&[b'x'; 4096]).await?;
    let big = read_response(&mut stream).await?;
    ensure!(big.status == 413 && big.code() == "too_large", "{}", big.text());
    ensure!(big.json()?["error"]["message"].as_str().unwrap().contains(&limit.to_string()), "{}", big.text());

    // 100 MB streamed without a length: cut off once the evidence passes the limit.
    let sent = Arc::new(AtomicU64::new(0));
    let mut stream = tokio::net::TcpStream::connect(app.addr).await?;
    let head = format!(
        "POST /api/reports HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{}: {}\r\nContent-Type: {ct}\r\nTransfer-Encoding: chunked\r\n\r\n",
        auth.0, auth.1
    );
    stream.write_all(head.as_bytes()).await?;
    let (mut rd, mut wr) = stream.into_split();
    let counter = sent.clone();
    let writer = tokio::spawn(async move {
        let (_, start) =
            multipart(&[("evidence", Some("dump.pcap"), "application/vnd.tcpdump.pcap", &[0xD4, 0xC3, 0xB2, 0xA1])]);
        // The opening of one evidence part, then its endless payload.
        let start = &start[..start.len() - b"\r\n--gongfang-test-boundary-7d1c--\r\n".len()];
        let mut chunk = format!("{:x}\r\n", start.len()).into_bytes();
        chunk.extend_from_slice(start);
        chunk.extend_from_slice(b"\r\n");
        if wr.write_all(&chunk).await.is_err() {
            return;
        }
        let payload = vec![0u8; 256 << 10];
        let mut frame = format!("{:x}\r\n", payload.len()).into_bytes();
        frame.extend_from_slice(&payload);
        frame.extend_from_slice(b"\r\n");
        while counter.load(Ordering::Relaxed) < 100 << 20 {
            if wr.write_all(&frame).await.is_err() {
                return;
            }
            counter.fetch_add(payload.len() as u64, Ordering::Relaxed);
        }
    });
    let streamed = read_response(&mut rd).await;
    writer.abort();
    let streamed = streamed?;
    ensure!(streamed.status == 413 && streamed.code() == "too_large", "{}", streamed.text());
    ensure!(sent.load(Ordering::Relaxed) < 100 << 20, "the server read the whole 100 MB");

    // Wrong content types: of the request, and of an evidence file.
    let wrong =
        app.request("POST", "/api/reports", &[(auth.0, &auth.1), ("Content-Type", "text/plain")], b"report").await;
    ensure!(wrong.status == 415 && wrong.code() == "unsupported_media_type", "{}", wrong.text());
    let (ct, body) = multipart(&[
        ("report", None, "application/json", attack("ddb", 30, 40).to_string().as_bytes()),
        ("evidence", Some("tool.exe"), "application/x-msdownload", b"MZ\x90\x00"),
    ]);
    let exe = app.request("POST", "/api/reports", &[(auth.0, &auth.1), ("Content-Type", &ct)], &body).await;
    ensure!(exe.status == 415 && exe.code() == "evidence_type", "{}", exe.text());
    ensure!(exe.text().contains("image/png"), "the message lists what is accepted: {}", exe.text());
    let (ct, body) = multipart(&[
        ("report", None, "application/json", attack("ddb", 30, 40).to_string().as_bytes()),
        ("evidence", Some("shot.png"), "image/png", b"<script>alert(1)</script>"),
    ]);
    let fake = app.request("POST", "/api/reports", &[(auth.0, &auth.1), ("Content-Type", &ct)], &body).await;
    ensure!(fake.status == 415 && fake.code() == "evidence_mismatch", "{}", fake.text());

    // Rule breaks: each a 422 naming the field and the problem.
    let problem = |r: &Response| {
        let first = &r.json().unwrap_or_default()["error"]["problems"][0];
        (r.status, r.code(), first["field"].clone(), first["code"].clone())
    };
    let future = file(&app, RED_FIRM, &attack("ddb", 50, 120)).await;
    ensure!(
        problem(&future) == (422, "invalid_report".into(), json!("to"), json!("window_in_future")),
        "{}",
        future.text()
    );
    let mut unknown = attack("ddb", 30, 40);
    unknown["attack_id"] = json!("T9999");
    let unknown = file(&app, RED_FIRM, &unknown).await;
    ensure!(
        problem(&unknown) == (422, "invalid_report".into(), json!("attack_id"), json!("unknown_technique")),
        "{}",
        unknown.text()
    );
    let nobody = file(&app, RED_FIRM, &attack("ministry-of-magic", 30, 40)).await;
    ensure!(
        problem(&nobody) == (422, "invalid_report".into(), json!("target_team"), json!("unknown_team")),
        "{}",
        nobody.text()
    );
    ensure!(nobody.text().contains("no team `ministry-of-magic`"), "{}", nobody.text());
    // A blue team cannot file attack reports.
    let blue = file(&app, DDB, &attack("crd", 30, 40)).await;
    ensure!(
        problem(&blue) == (422, "invalid_report".into(), json!("kind"), json!("kind_not_for_role")),
        "{}",
        blue.text()
    );
    // Not JSON, and unknown fields.
    let junk = app.request("POST", "/api/reports", &[(auth.0, &auth.1), JSON], b"{not json").await;
    ensure!(junk.status == 400 && junk.code() == "bad_request", "{}", junk.text());
    let mut extra = attack("ddb", 30, 40);
    extra["severity"] = json!("critical");
    let extra = file(&app, RED_FIRM, &extra).await;
    ensure!(extra.status == 400 && extra.text().contains("severity"), "{}", extra.text());

    nothing_stored(&app).await?;
    ensure!(app.store.list_reports(None).await?.is_empty());
    app.stop().await;
    Ok(())
}

async fn evidence_files_round_trip_and_judges_log_in(app: App) -> anyhow::Result<()> {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-not-really-an-image".to_vec();
    let (ct, body) = multipart(&[
        ("report", None, "application/json", defence(None, 20, 30).to_string().as_bytes()),
        ("evidence", Some("../../firewall.png"), "image/png", &png),
        ("evidence", Some("fw.log"), "text/plain; charset=utf-8", b"DROP 10.60.1.9 -> 10.60.11.2:7000"),
    ]);
    let auth = team_auth(&app, CHRA);
    let filed = app.request("POST", "/api/reports", &[(auth.0, &auth.1), ("Content-Type", &ct)], &body).await;
    ensure!(filed.status == 201, "{}", filed.text());
    let r = filed.json()?;
    let files = r["evidence"].as_array().unwrap();
    ensure!(files.len() == 2 && files[0]["file_name"] == "firewall.png" && files[0]["size"] == png.len(), "{r}");
    ensure!(files[1]["content_type"] == "text/plain", "{r}");
    let url = files[0]["url"].as_str().unwrap();
    let got = get_as(&app, CHRA, url).await;
    ensure!(got.status == 200 && got.body == png, "the file came back changed");
    ensure!(got.header("content-type") == Some("image/png"));
    ensure!(got.header("x-content-type-options") == Some("nosniff"));
    ensure!(got.header("content-disposition").is_some_and(|d| d.contains("attachment")));
    ensure!(get_as(&app, CHRA, &format!("{}9", url)).await.status == 404, "an unknown evidence id");

    // A judge logs in and uses the session token.
    let login = app
        .request("POST", "/api/judge/login", &[JSON], json!({ "name": BO.0, "password": BO.1 }).to_string().as_bytes())
        .await;
    ensure!(login.status == 200, "{}", login.text());
    let token = login.json()?["token"].as_str().unwrap().to_owned();
    let bearer = ("Authorization", format!("Bearer {token}"));
    let queue = app.request("GET", "/api/judge/queue", &[(bearer.0, &bearer.1)], b"").await;
    ensure!(queue.status == 200 && queue.json()?.as_array().unwrap().len() == 1, "{}", queue.text());
    let all = app.request("GET", "/api/judge/reports?status=pending", &[(bearer.0, &bearer.1)], b"").await;
    ensure!(all.json()?.as_array().unwrap().len() == 1, "{}", all.text());
    let bad = app.request("GET", "/api/judge/reports?status=lost", &[(bearer.0, &bearer.1)], b"").await;
    ensure!(bad.status == 400, "{}", bad.text());
    let wrong = app
        .request(
            "POST",
            "/api/judge/login",
            &[JSON],
            json!({ "name": BO.0, "password": "guess" }).to_string().as_bytes(),
        )
        .await;
    ensure!(wrong.status == 401 && wrong.code() == "bad_credentials", "{}", wrong.text());
    let forged = ("Authorization", "Bearer 00ff".to_owned());
    ensure!(app.request("GET", "/api/judge/queue", &[(forged.0, &forged.1)], b"").await.status == 401);
    // The session expires.
    app.set_now(at(60 + 13 * 60));
    ensure!(app.request("GET", "/api/judge/queue", &[(bearer.0, &bearer.1)], b"").await.code() == "bad_session");
    app.stop().await;
    Ok(())
}
