//! Reports cannot fill the disk or stall flags: per-team limits on reports filed, evidence
//! bytes and concurrent uploads; evidence streamed into the store chunk by chunk while flag
//! submissions go on; the judges' queue in pages. Over real HTTP on 127.0.0.1, with uploads held
//! open by the test (never timed), on SQLite and, when `GONGFANG_TEST_POSTGRES_URL` is set,
//! PostgreSQL.

mod common;

use std::collections::HashSet;

use anyhow::{Context as _, ensure};
use chrono::Duration;
use gongfang_core::report::{CheckedReport, ReportKind, TimeWindow};
use gongfang_core::scoring::Capture;
use gongfang_core::{NewSubmission, ServiceId, StoreIdx, TeamId, Tick};
use gongfang_store::SubmissionOutcome;
use gongfang_test_support::http::{Response, read_response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use common::*;

const MIB: u64 = 1 << 20;
const BOUNDARY: &str = "gongfang-limits-boundary-5e2a";

/// Small limits: three reports per team, 2 MiB of evidence per report and 3 MiB per team.
async fn spawn_small(db: gongfang_test_support::TestDb) -> App {
    spawn_with(db, |s| {
        s.reports.max_reports_per_team = 3;
        s.reports.max_evidence_bytes = 2 * MIB;
        s.reports.max_evidence_bytes_per_team = 3 * MIB;
        s.reports.max_concurrent_uploads = 2;
    })
    .await
}

/// Room for big evidence: 32 MiB per report, 256 MiB per team, two uploads at once.
async fn spawn_roomy(db: gongfang_test_support::TestDb) -> App {
    spawn_with(db, |s| {
        s.reports.max_evidence_bytes = 32 * MIB;
        s.reports.max_evidence_bytes_per_team = 256 * MIB;
        s.reports.max_concurrent_uploads = 2;
    })
    .await
}

mod small {
    use super::*;
    gongfang_test_support::backend_tests!(
        setup = spawn_small;
        the_report_after_the_last_allowed_is_refused_while_another_team_files,
        evidence_over_the_team_budget_is_refused_and_nothing_of_it_is_stored,
    );
}

mod roomy {
    use super::*;
    gongfang_test_support::backend_tests!(
        setup = spawn_roomy;
        a_third_concurrent_upload_is_refused_while_two_stream,
        big_evidence_round_trips_while_flags_are_stored,
        the_queue_comes_in_pages_without_gaps_or_repeats,
        an_upload_cut_off_leaves_nothing_and_leftovers_of_a_crash_are_swept,
    );
}

fn attack(target: &str) -> Value {
    json!({
        "kind": "attack",
        "target_team": target,
        "service": "opendata",
        "from": at(30),
        "to": at(40),
        "technique": "default admin password on the registry",
        "attack_id": "T1078.001",
        "description": "Logged in as admin/admin and read every key.",
        "evidence": "$ nc 10.60.11.2 7000\nGET admin\n",
    })
}

async fn file_json(app: &App, team: TeamId) -> Response {
    let auth = team_auth(app, team);
    let report = attack("ddb").to_string();
    app.request("POST", "/api/reports", &[(auth.0, &auth.1), ("Content-Type", "application/json")], report.as_bytes())
        .await
}

/// Files a report with one text evidence file of `size` bytes in one request.
async fn file_text(app: &App, team: TeamId, size: u64) -> Response {
    let auth = team_auth(app, team);
    let data = vec![b'a'; usize::try_from(size).unwrap()];
    let report = attack("ddb").to_string();
    let (ct, body) = multipart(&[
        ("report", None, "application/json", report.as_bytes()),
        ("evidence", Some("log.txt"), "text/plain", &data),
    ]);
    app.request("POST", "/api/reports", &[(auth.0, &auth.1), ("Content-Type", &ct)], &body).await
}

/// A filing sent a piece at a time over its own connection (chunked transfer encoding): the
/// test decides when the body ends.
struct HeldUpload {
    write: OwnedWriteHalf,
    read: OwnedReadHalf,
}

impl HeldUpload {
    /// Sends the head, the report part and the opening of one evidence file.
    async fn open(app: &App, team: TeamId, file: &str, content_type: &str) -> anyhow::Result<HeldUpload> {
        let auth = team_auth(app, team);
        let stream = TcpStream::connect(app.addr).await?;
        let (read, mut write) = stream.into_split();
        let head = format!(
            "POST /api/reports HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{}: {}\r\n\
             Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\n\r\n",
            auth.0, auth.1
        );
        write.write_all(head.as_bytes()).await?;
        let mut held = HeldUpload { write, read };
        let opening = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"report\"\r\nContent-Type: application/json\r\n\r\n\
             {}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"evidence\"; filename=\"{file}\"\r\n\
             Content-Type: {content_type}\r\n\r\n",
            attack("ddb")
        );
        held.send(opening.as_bytes()).await?;
        Ok(held)
    }

    async fn send(&mut self, data: &[u8]) -> anyhow::Result<()> {
        for piece in data.chunks(256 << 10) {
            let mut frame = format!("{:x}\r\n", piece.len()).into_bytes();
            frame.extend_from_slice(piece);
            frame.extend_from_slice(b"\r\n");
            self.write.write_all(&frame).await?;
        }
        Ok(())
    }

    /// Ends the evidence file and the body, and reads the answer.
    async fn finish(mut self) -> anyhow::Result<Response> {
        self.send(format!("\r\n--{BOUNDARY}--\r\n").as_bytes()).await?;
        self.write.write_all(b"0\r\n\r\n").await?;
        read_response(&mut self.read).await
    }
}

/// Waits until the team's unfiled uploads hold at least `bytes`: the server is writing them.
async fn until_staged(app: &App, team: TeamId, bytes: u64) -> anyhow::Result<u64> {
    for _ in 0..3_000 {
        let staged = app.store.filing_usage(team).await?.staged_bytes;
        if staged >= bytes {
            return Ok(staged);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    anyhow::bail!("the uploads of team {team} never held {bytes} bytes in the store")
}

/// A zip file's signature, then `size` pseudo-random bytes.
fn zip_bytes(size: usize) -> Vec<u8> {
    let mut data = b"PK\x03\x04".to_vec();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while data.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(size);
    data
}

fn hex_sha256(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

async fn the_report_after_the_last_allowed_is_refused_while_another_team_files(app: App) -> anyhow::Result<()> {
    for n in 1..=3 {
        let r = file_json(&app, RED_FIRM).await;
        ensure!(r.status == 201, "report {n}: {}", r.text());
    }
    let fourth = file_json(&app, RED_FIRM).await;
    ensure!(fourth.status == 429 && fourth.code() == "report_limit", "{}", fourth.text());
    let message = fourth.json()?["error"]["message"].as_str().unwrap_or_default().to_owned();
    ensure!(message.contains("filed 3 reports") && message.contains("none is left"), "{message}");
    ensure!(app.store.reports_of_team(RED_FIRM).await?.len() == 3, "the refused report was stored");
    // With evidence too: refused before the body is used, and nothing of it kept.
    let with_file = file_text(&app, RED_FIRM, 1024).await;
    ensure!(with_file.code() == "report_limit", "{}", with_file.text());
    ensure!(app.store.filing_usage(RED_FIRM).await?.staged_bytes == 0);

    // The limit is per team: another team still files.
    let other = file_json(&app, RED_ACADEMY).await;
    ensure!(other.status == 201, "{}", other.text());
    app.stop().await;
    Ok(())
}

async fn evidence_over_the_team_budget_is_refused_and_nothing_of_it_is_stored(app: App) -> anyhow::Result<()> {
    // 2 MiB of the team's 3 MiB.
    let first = file_text(&app, RED_FIRM, 2 * MIB).await;
    ensure!(first.status == 201, "{}", first.text());
    // 1.5 MiB more is over the budget, though under the per-report limit.
    let over = file_text(&app, RED_FIRM, 3 * MIB / 2).await;
    ensure!(over.status == 413 && over.code() == "evidence_budget", "{}", over.text());
    let message = over.json()?["error"]["message"].as_str().unwrap_or_default().to_owned();
    ensure!(message.contains(&(3 * MIB).to_string()) && message.contains(&format!("{} are left", MIB)), "{message}");
    let usage = app.store.filing_usage(RED_FIRM).await?;
    ensure!(usage.reports == 1 && usage.evidence_bytes == 2 * MIB, "{usage:?}");
    ensure!(usage.staged_bytes == 0, "the refused evidence was kept: {usage:?}");
    ensure!(app.store.reports_of_team(RED_FIRM).await?.len() == 1);

    // What is left can still be used, to the byte; then not one byte more.
    let rest = file_text(&app, RED_FIRM, MIB).await;
    ensure!(rest.status == 201, "{}", rest.text());
    let full = file_text(&app, RED_FIRM, 1).await;
    ensure!(full.code() == "evidence_budget", "{}", full.text());
    // Reports without evidence are not evidence: the team files its third report.
    let plain = file_json(&app, RED_FIRM).await;
    ensure!(plain.status == 201, "{}", plain.text());
    // Another team has its own budget.
    let other = file_text(&app, RED_ACADEMY, 2 * MIB).await;
    ensure!(other.status == 201, "{}", other.text());
    app.stop().await;
    Ok(())
}

async fn a_third_concurrent_upload_is_refused_while_two_stream(app: App) -> anyhow::Result<()> {
    // Two uploads of one team, each past its first chunk and then held open.
    let mut first = HeldUpload::open(&app, RED_FIRM, "a.zip", "application/zip").await?;
    first.send(&zip_bytes(usize::try_from(MIB + 4096).unwrap())).await?;
    let mut second = HeldUpload::open(&app, RED_FIRM, "b.zip", "application/zip").await?;
    second.send(&zip_bytes(usize::try_from(MIB + 4096).unwrap())).await?;
    until_staged(&app, RED_FIRM, 2 * MIB).await?;

    let third = file_text(&app, RED_FIRM, 10).await;
    ensure!(third.status == 429 && third.code() == "too_many_uploads", "{}", third.text());
    ensure!(
        third.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok()),
        "no Retry-After: {:?}",
        third.headers
    );
    // Another team is not held up by this one.
    let other = file_text(&app, RED_ACADEMY, 10).await;
    ensure!(other.status == 201, "{}", other.text());

    // Once one upload ends, the team may start another.
    let done = first.finish().await?;
    ensure!(done.status == 201, "{}", done.text());
    let again = file_text(&app, RED_FIRM, 10).await;
    ensure!(again.status == 201, "{}", again.text());
    let done = second.finish().await?;
    ensure!(done.status == 201, "{}", done.text());
    ensure!(app.store.filing_usage(RED_FIRM).await?.reports == 3);
    app.stop().await;
    Ok(())
}

async fn big_evidence_round_trips_while_flags_are_stored(app: App) -> anyhow::Result<()> {
    app.store.open_tick(Tick(20), at(40)).await?;
    let data = zip_bytes(20 << 20);
    let (head, tail) = data.split_at(12 << 20);
    let mut upload = HeldUpload::open(&app, RED_FIRM, "capture.zip", "application/zip").await?;
    upload.send(head).await?;
    // The server is writing the evidence to the store, and the upload is still open...
    let staged = until_staged(&app, RED_FIRM, 8 * MIB).await?;
    ensure!(staged < data.len() as u64);
    // ...while a flag submission is stored: no transaction of the upload holds the writer.
    let flag = NewSubmission {
        capture: Capture {
            attacker: RED_ACADEMY,
            victim: DDB,
            service: ServiceId(1),
            store: StoreIdx(0),
            planted: Tick(20),
            submitted: Tick(20),
        },
        flag: "GONGFANG{during-upload}".into(),
        submitted_at: at(41),
    };
    let stored = app.store.insert_submissions(&[flag]).await?;
    ensure!(stored == vec![SubmissionOutcome::New], "{stored:?}");
    ensure!(app.store.reports_of_team(RED_FIRM).await?.is_empty(), "the upload ended before the flag was stored");

    upload.send(tail).await?;
    let filed = upload.finish().await?;
    ensure!(filed.status == 201, "{}", filed.text());
    let r = filed.json()?;
    let evidence = &r["evidence"][0];
    ensure!(evidence["size"] == data.len() && evidence["sha256"] == hex_sha256(&data), "{evidence}");

    let id = r["id"].as_i64().context("no id")?;
    let file = evidence["id"].as_i64().context("no evidence id")?;
    let auth = team_auth(&app, RED_FIRM);
    let got = app.request("GET", &format!("/api/reports/{id}/evidence/{file}"), &[(auth.0, &auth.1)], b"").await;
    ensure!(got.status == 200, "{}", got.status);
    ensure!(got.body.len() == data.len() && got.body == data, "the evidence came back different");
    let stored = app.store.evidence(id, file).await?.context("evidence gone")?;
    ensure!(stored.data == data && stored.info.sha256 == hex_sha256(&data));
    let usage = app.store.filing_usage(RED_FIRM).await?;
    ensure!(usage.evidence_bytes == data.len() as u64 && usage.staged_bytes == 0, "{usage:?}");
    app.stop().await;
    Ok(())
}

/// Waits until the team's unfiled uploads hold nothing.
async fn until_nothing_staged(app: &App, team: TeamId) -> anyhow::Result<()> {
    for _ in 0..3_000 {
        if app.store.filing_usage(team).await?.staged_bytes == 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    anyhow::bail!("the unfiled uploads of team {team} were never deleted")
}

async fn an_upload_cut_off_leaves_nothing_and_leftovers_of_a_crash_are_swept(app: App) -> anyhow::Result<()> {
    // What a server that crashed mid-upload left: an upload no report holds.
    let leftover = app.store.begin_evidence_upload(RED_ACADEMY, at(50)).await?;
    app.store.write_evidence_chunk(leftover, 0, vec![7; 4096]).await?;
    ensure!(app.store.filing_usage(RED_ACADEMY).await?.staged_bytes == 4096);
    // The team's first upload since the start deletes it; its own evidence is kept.
    let filed = file_text(&app, RED_ACADEMY, 100).await;
    ensure!(filed.status == 201, "{}", filed.text());
    let usage = app.store.filing_usage(RED_ACADEMY).await?;
    ensure!(usage.staged_bytes == 0 && usage.evidence_bytes == 100, "{usage:?}");

    // A client that hangs up mid-upload leaves nothing behind either.
    let mut upload = HeldUpload::open(&app, RED_FIRM, "half.zip", "application/zip").await?;
    upload.send(&zip_bytes(usize::try_from(3 * MIB / 2).unwrap())).await?;
    until_staged(&app, RED_FIRM, MIB).await?;
    drop(upload);
    until_nothing_staged(&app, RED_FIRM).await?;
    ensure!(app.store.reports_of_team(RED_FIRM).await?.is_empty());
    // And its slot is free again.
    let again = file_text(&app, RED_FIRM, 10).await;
    ensure!(again.status == 201, "{}", again.text());
    app.stop().await;
    Ok(())
}

fn report_on_ddb(n: i64) -> CheckedReport {
    CheckedReport {
        kind: ReportKind::Attack,
        target_team: Some(DDB),
        service: ServiceId(1),
        window: TimeWindow { from: at(10), to: at(20) },
        technique: format!("attempt {n}"),
        attack_id: None,
        description: "read every key".into(),
        evidence: String::new(),
        traced_address: None,
        traced_team: None,
    }
}

/// A judge's `Authorization` header, from a login.
async fn judge_session(app: &App) -> anyhow::Result<(&'static str, String)> {
    let login = json!({ "name": BO.0, "password": BO.1 }).to_string();
    let r = app.request("POST", "/api/judge/login", &[("Content-Type", "application/json")], login.as_bytes()).await;
    ensure!(r.status == 200, "{}", r.text());
    Ok(("Authorization", format!("Bearer {}", r.json()?["token"].as_str().context("no token")?)))
}

/// Follows a paginated route from its first page: the ids of each page.
async fn pages(app: &App, first: &str) -> anyhow::Result<Vec<Vec<i64>>> {
    let judge = judge_session(app).await?;
    let mut out = Vec::new();
    let mut path = first.to_owned();
    loop {
        let page = app.request("GET", &path, &[(judge.0, &judge.1)], b"").await;
        ensure!(page.status == 200, "{path}: {}", page.text());
        let body = page.json()?;
        let ids = body
            .as_array()
            .context("a page is a list")?
            .iter()
            .map(|e| e.get("report").unwrap_or(e)["id"].as_i64().context("no id"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        out.push(ids);
        ensure!(out.len() <= 50, "the pages never end");
        match page.header("x-next-after") {
            None => {
                ensure!(page.header("link").is_none());
                return Ok(out);
            }
            Some(next) => {
                let link = page.header("link").context("a next page without a Link")?;
                ensure!(link.contains(&format!("after={next}")) && link.ends_with("rel=\"next\""), "{link}");
                let (target, _) = link.strip_prefix('<').and_then(|l| l.split_once('>')).context("bad Link")?;
                path = target.to_owned();
            }
        }
    }
}

async fn the_queue_comes_in_pages_without_gaps_or_repeats(app: App) -> anyhow::Result<()> {
    let mut filed = Vec::new();
    for n in 0..120 {
        let team = if n % 2 == 0 { RED_FIRM } else { RED_ACADEMY };
        filed.push(app.store.file_report(team, &report_on_ddb(n), &[], at(30) + Duration::seconds(n)).await?.id);
    }
    let queue = pages(&app, "/api/judge/queue").await?;
    ensure!(queue.iter().map(Vec::len).collect::<Vec<_>>() == [50, 50, 20], "{queue:?}");
    let flat: Vec<i64> = queue.concat();
    ensure!(flat == filed, "the pages are not every report once, oldest first");
    ensure!(flat.iter().collect::<HashSet<_>>().len() == 120);

    // Other page sizes, and the judges' list with a status filter, page the same way.
    let small = pages(&app, "/api/judge/queue?limit=7").await?;
    ensure!(small.len() == 18 && small.concat() == filed, "{small:?}");
    let list = pages(&app, "/api/judge/reports?status=pending&limit=200").await?;
    ensure!(list == [filed.clone()], "{list:?}");
    let list = pages(&app, "/api/judge/reports?status=pending").await?;
    ensure!(list.iter().map(Vec::len).collect::<Vec<_>>() == [50, 50, 20] && list.concat() == filed, "{list:?}");
    let ruled = pages(&app, "/api/judge/reports?status=ruled").await?;
    ensure!(ruled == [Vec::<i64>::new()], "{ruled:?}");

    let judge = judge_session(&app).await?;
    for bad in ["/api/judge/queue?limit=0", "/api/judge/queue?limit=201", "/api/judge/queue?after=x"] {
        let r = app.request("GET", bad, &[(judge.0, &judge.1)], b"").await;
        ensure!(r.status == 400 && r.code() == "bad_request", "{bad}: {}", r.text());
    }
    app.stop().await;
    Ok(())
}
