//! What opening a report on the judges' workbench costs in a busy drill: the shipped red/blue
//! scenario on SQLite with 1,000 reports and 1,000,000 captures spread over its 60 hours. A
//! judge opens reports one after another over HTTP on loopback (`GET /api/judge/reports/{id}`:
//! the report with its recorded context — captures, checker results, logs — and the suggested
//! match); p50 and p95 over many reports, with the store's (victim, service, submitted_at)
//! index, then, in the same run on the same data, with the (victim, service) index it
//! replaced: the ratio is what the index buys.
//!
//! Run with `cargo bench -p gongfang-reports --bench workbench` (about a minute to fill the
//! store). Needs the `sqlite3` command to fill it fast and to swap the index.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use chrono::{DateTime, TimeZone, Utc};
use gongfang_core::report::{Filing, ReportDraft, check_report};
use gongfang_core::scenario::{self, Scenario};
use gongfang_core::scoring::Capture;
use gongfang_core::{AccountRole, NewSubmission, ServiceId, StoreIdx, TeamId, Tick};
use gongfang_reports::{Now, ReportsState};
use gongfang_store::{DrillState, Store};
use gongfang_test_support::TestDb;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

const REPORTS: usize = 1_000;
const CAPTURES: u64 = 1_000_000;
/// Reports opened per round.
const OPENED: usize = 300;
const JUDGE: (&str, &str) = ("ana", "a bench judge's passphrase");

fn started() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0).unwrap()
}

#[derive(Debug)]
struct Fixed(DateTime<Utc>);

impl Now for Fixed {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

fn sqlite3(db: &Path, sql: &str) -> Result<String> {
    let out = Command::new("sqlite3").arg(db).arg(sql).output().context("run sqlite3 (apt-get install sqlite3)")?;
    ensure!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Opens `OPENED` reports (a fixed spread over all of them) and answers the sorted times.
async fn open_reports(addr: SocketAddr, bearer: &str, ids: &[i64]) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(OPENED);
    for k in 0..OPENED {
        let id = ids[(k * 7919) % ids.len()];
        let t = Instant::now();
        let r = gongfang_test_support::http::request(
            addr,
            "GET",
            &format!("/api/judge/reports/{id}"),
            &[("Authorization", bearer)],
            b"",
        )
        .await?;
        times.push(t.elapsed());
        ensure!(r.status == 200, "report {id}: {}", r.text());
    }
    times.sort();
    Ok(times)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let db = TestDb::sqlite().await;
    let file = PathBuf::from(db.url.trim_start_matches("sqlite://").split('?').next().context("a path")?);
    let store: Store = db.store.clone();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../challenges/redblue/scenario.toml");
    let mut s: Scenario = scenario::parse(&std::fs::read_to_string(&path)?, &path, &scenario::AssumeEverythingExists)
        .map_err(|p| anyhow::anyhow!("{p}"))?;
    s.reports.max_reports_per_team = 10_000;
    let s = Arc::new(s);
    store.sync_scenario(&s).await?;
    store.create_account(JUDGE.0, AccountRole::Judge, JUDGE.1).await?;
    store
        .set_drill_state(DrillState { paused: false, current_tick: None, started_at: Some(started()) }, started())
        .await?;
    let span = chrono::Duration::from_std(s.drill.duration)?;
    let now = started() + span;

    // The captures: every attacker × defender × service, one every few seconds over the drill.
    let attackers: Vec<TeamId> = s.teams.iter().filter(|t| t.role.as_str() == "attacker").map(|t| t.id).collect();
    let defenders: Vec<TeamId> = s.teams.iter().filter(|t| t.role.as_str() == "defender").map(|t| t.id).collect();
    let services: Vec<ServiceId> = s.services.iter().map(|x| x.id).collect();
    // One through the store, to learn how it writes a time; the rest by SQL, in bulk.
    store
        .insert_submissions(&[NewSubmission {
            capture: Capture {
                attacker: attackers[0],
                victim: defenders[0],
                service: services[0],
                store: StoreIdx(0),
                planted: Tick(0),
                submitted: Tick(0),
            },
            flag: "GONGFANG{first}".into(),
            submitted_at: started(),
        }])
        .await?;
    let sample = sqlite3(&file, "SELECT submitted_at FROM submissions LIMIT 1")?;
    let format = match (sample.contains('T'), sample.ends_with("+00:00"), sample.contains('.')) {
        (true, true, false) => "%Y-%m-%dT%H:%M:%S+00:00",
        (false, true, false) => "%Y-%m-%d %H:%M:%S+00:00",
        _ => anyhow::bail!("the store wrote a time as `{sample}`; teach the bench that format"),
    };
    let list = |ids: &[i64]| ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let (a, v, sv) = (
        list(&attackers.iter().map(|t| i64::from(t.0)).collect::<Vec<_>>()),
        list(&defenders.iter().map(|t| i64::from(t.0)).collect::<Vec<_>>()),
        list(&services.iter().map(|x| i64::from(x.0)).collect::<Vec<_>>()),
    );
    let tick = s.drill.tick.as_secs() as i64;
    let step = span.num_seconds() as f64 / CAPTURES as f64;
    let filling = Instant::now();
    sqlite3(
        &file,
        &format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;
             CREATE TEMP TABLE a(k INTEGER PRIMARY KEY, id INTEGER); CREATE TEMP TABLE v(k INTEGER PRIMARY KEY, id INTEGER);
             CREATE TEMP TABLE s(k INTEGER PRIMARY KEY, id INTEGER);
             INSERT INTO a(id) SELECT value FROM json_each('[{a}]'); INSERT INTO v(id) SELECT value FROM json_each('[{v}]');
             INSERT INTO s(id) SELECT value FROM json_each('[{sv}]');
             BEGIN;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {CAPTURES})
             INSERT INTO submissions (attacker, flag, victim, service, store, tick_planted, tick_submitted, submitted_at)
             SELECT (SELECT id FROM a WHERE k = 1 + i % (SELECT count(*) FROM a)),
                    'GONGFANG{{' || i || '}}',
                    (SELECT id FROM v WHERE k = 1 + (i / 7) % (SELECT count(*) FROM v)),
                    (SELECT id FROM s WHERE k = 1 + (i / 13) % (SELECT count(*) FROM s)),
                    0, CAST(i * {step} / {tick} AS INTEGER), CAST(i * {step} / {tick} AS INTEGER),
                    strftime('{format}', {start} + CAST(i * {step} AS INTEGER), 'unixepoch')
             FROM n;
             COMMIT; ANALYZE;",
            start = started().timestamp(),
        ),
    )?;
    let count = sqlite3(&file, "SELECT count(*) FROM submissions")?;
    println!("filled {count} captures in {:.1} s", filling.elapsed().as_secs_f64());

    // The reports: attacks by every attacker on every defender, ten-minute windows spread over
    // the drill.
    let filing_started = Instant::now();
    let mut ids = Vec::with_capacity(REPORTS);
    for k in 0..REPORTS {
        let attacker = attackers[k % attackers.len()];
        let victim = &s.teams.iter().find(|t| t.id == defenders[(k / 2) % defenders.len()]).context("a defender")?.slug;
        let service = &s.services[(k / 3) % s.services.len()].slug;
        let from = started() + chrono::Duration::seconds((span.num_seconds() - 3600) * k as i64 / REPORTS as i64 + 600);
        let draft: ReportDraft = serde_json::from_value(serde_json::json!({
            "kind": "attack",
            "target_team": victim,
            "service": service,
            "from": from,
            "to": from + chrono::Duration::minutes(10),
            "technique": "default admin password",
            "description": "Logged in as admin/admin.",
        }))?;
        let filing = Filing {
            scenario: &s,
            filer: attacker,
            now,
            started: Some(started()),
            extended: std::time::Duration::ZERO,
        };
        let checked = check_report(&draft, &filing).map_err(|p| anyhow::anyhow!("{p:?}"))?;
        ids.push(store.file_staged_report(attacker, &checked, &[], &s.reports, now).await?.id);
    }
    println!("filed {REPORTS} reports in {:.1} s", filing_started.elapsed().as_secs_f64());

    let (tx, _rx) = broadcast::channel(16);
    let state = ReportsState::new(store.clone(), s.clone(), tx).with_clock(Arc::new(Fixed(now)));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let app = gongfang_reports::router(state);
        let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
    });
    let login = gongfang_test_support::http::request(
        addr,
        "POST",
        "/api/judge/login",
        &[("Content-Type", "application/json")],
        serde_json::json!({ "name": JUDGE.0, "password": JUDGE.1 }).to_string().as_bytes(),
    )
    .await?;
    ensure!(login.status == 200, "{}", login.text());
    let bearer = format!("Bearer {}", login.json()?["token"].as_str().context("a token")?);
    // The data is what the bench says: a report's context holds captures.
    let one = gongfang_test_support::http::request(
        addr,
        "GET",
        &format!("/api/judge/reports/{}", ids[REPORTS / 2]),
        &[("Authorization", &bearer)],
        b"",
    )
    .await?
    .json()?;
    let shown = one["context"]["captures"].as_array().map_or(0, Vec::len);
    ensure!(shown > 0 && one["context"]["suggestion"]["strength"] == "strong", "no captures beside a report: {one}");
    println!("a report's context shows {shown} captures (at most {})", gongfang_reports::MAX_CAPTURES);

    // Warm up, then measure with the index; then with the index it replaced.
    open_reports(addr, &bearer, &ids).await?;
    let with = open_reports(addr, &bearer, &ids).await?;
    sqlite3(
        &file,
        "CREATE INDEX idx_submissions_victim_service ON submissions (victim, service);
         DROP INDEX idx_submissions_victim_service_time; ANALYZE;",
    )?;
    open_reports(addr, &bearer, &ids[..10]).await?;
    let without = open_reports(addr, &bearer, &ids).await?;

    let (p50, p95) = (percentile(&with, 0.5), percentile(&with, 0.95));
    let (q50, q95) = (percentile(&without, 0.5), percentile(&without, 0.95));
    println!(
        "opening a report with its context, {OPENED} reports, {REPORTS} reports and {count} captures in the drill:"
    );
    println!("  with the (victim, service, submitted_at) index: p50 {:.2} ms, p95 {:.2} ms", ms(p50), ms(p95));
    println!("  with the (victim, service) index it replaced:   p50 {:.2} ms, p95 {:.2} ms", ms(q50), ms(q95));
    println!("  ratio: {:.1}x at p50, {:.1}x at p95 (target: p95 <= 100 ms)", ms(q50) / ms(p50), ms(q95) / ms(p95));
    drop(db);
    Ok(())
}
