//! Hostile load against a real running drill: the `gongfang serve` binary on loopback, with a
//! legitimate team submitting valid flags of the current tick from 127.0.0.2 (over HTTP and
//! TCP) all through each attack, and the attackers coming from other loopback addresses.
//! Each attack is one test with a drill of its own; they run one at a time. After each the
//! test asserts that every legitimate flag was answered, that every `OK` is stored, that the
//! server's peak RSS stayed under 256 MiB and its open files under its limit, and prints the
//! legitimate team's latency (p50, p99), which is reported, not asserted.
//!
//! - 2,000 wrong credentials within 20 s: team tokens over HTTP and TCP, judge logins;
//! - 2,000 idle TCP connections, 500 slowloris HTTP requests, 500 websocket clients that
//!   never read, held together;
//! - a checker that knocks on forbidden addresses and opens sockets in a loop, in every action;
//! - a team filing reports with the scenario's maximum evidence as fast as it can;
//! - a defending team's service writing 1 GiB to stdout as fast as it can, in a real container
//!   under small `[logs]` limits, while a judge reads a report on it with its logs: every
//!   reading is answered with at most the bounded number of lines, and the container's log on
//!   disk stays within the limits.
//!
//! Only the last needs the Docker engine: without one it is skipped with a notice, unless
//! `GONGFANG_REQUIRE_DOCKER=1`; its container, network and image carry the drill's labels and
//! are removed at its end, also when it fails. Otherwise services are absent in this suite:
//! the checkers here never reach one (the trivial checker answers `ok` without the network).
//!
//! Needs the `gongfang` binary (`cargo build -p gongfang`; `GONGFANG_BIN` names another).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::{SecondsFormat, Utc};
use gongfang_core::scenario::{AssumeEverythingExists, Identify, ImageSource, Ipv4Net, LogRules, parse};
use gongfang_core::{ServiceId, TeamId, Tick, Verdict};
use gongfang_docker::{MAX_LINE_BYTES, Orchestrator, Runtime, ServiceExtras, Settings};
use gongfang_e2e::hostile::{
    DrillProcess, DrillSpec, Legit, LegitSpec, Refused, Tally, attacker, connect_from, gongfang_binary, http_exchange,
    http_refusal, put_flags_request, raise_open_file_limit, tcp_wrong_token, wrong_token,
};
use gongfang_e2e::hostile::{Health, HealthWatch};
use gongfang_e2e::loud;
use gongfang_test_programs::components;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// One drill at a time: they share two cores.
static ONE_DRILL_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SECRET: &str = "hostile-load-test-secret-0123456789abcdef";
const PREFIX: &str = "GONGFANG";
/// The legitimate team; teams 2 to 11 defend and are its victims; team 12 files reports.
const LEGIT_TEAM: TeamId = TeamId(1);
const VICTIMS: std::ops::RangeInclusive<u16> = 2..=11;
const REPORTER: u16 = 12;
/// Quiet services (1 to 3), whose checker answers `ok` at once: 30 flags of other teams a tick.
const QUIET_SERVICES: u8 = 3;
/// The service of the socket-storm checker, when there is one.
const FLOOD: ServiceId = ServiceId(QUIET_SERVICES + 1);
/// Largest evidence per report in these drills.
const MAX_EVIDENCE: usize = 4 * 1024 * 1024;
const JUDGE: &str = "judge";
const JUDGE_PASSWORD: &str = "correct horse battery staple";
/// The loud service's container log limits (`[logs]`): files of 1 MiB, two kept.
const LOG_MAX_SIZE: u64 = 1 << 20;
const LOG_MAX_FILES: u32 = 2;

/// What a drill has beyond its quiet services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// Nothing more.
    Quiet,
    /// A service whose checker is the socket-storm fixture.
    StormingChecker,
    /// Small container log limits (`[logs]`): a loud service's container is made outside.
    SmallLogs,
}

/// A drill of 3-second ticks with token identification and reports, as `setup` says.
fn scenario(slug: &str, setup: Setup) -> String {
    let mut drill = ScenarioBuilder::new(slug)
        .duration("1h")
        .tick("3s")
        .checker_timeout("2s")
        .flag_lifetime(30)
        .flag_prefix(PREFIX)
        .secret(SECRET)
        .submission(Identify::Token, None, 16)
        .reports(&[("max_evidence", "\"4MiB\"")])
        .team(team(LEGIT_TEAM.0, "legit"));
    for id in VICTIMS {
        drill = drill.team(team(id, &format!("victim{id}")));
    }
    drill = drill.team(team(REPORTER, "reporter"));
    for s in 1..=QUIET_SERVICES {
        drill =
            drill.service(service(&format!("kv{s}")).image("kv:latest").ports(&[7000]).checker(components::TRIVIAL));
    }
    if setup == Setup::StormingChecker {
        drill = drill.service(service("flood").image("kv:latest").ports(&[7000]).checker(components::SOCKET_STORM));
    }
    let mut toml = drill.toml();
    if setup == Setup::SmallLogs {
        toml.push_str(&format!("[logs]\nmax_size = \"{}MiB\"\nmax_files = {LOG_MAX_FILES}\n", LOG_MAX_SIZE >> 20));
    }
    toml
}

fn checker_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hostile-checker-cache")
}

/// Runs `attack` against a fresh drill while the legitimate team submits, then checks the
/// legitimate team's answers and the server's health.
async fn under_attack<F, Fut>(slug: &str, setup: Setup, attack: F) -> anyhow::Result<()>
where
    F: FnOnce(Arc<DrillProcess>) -> Fut,
    Fut: Future<Output = anyhow::Result<String>>,
{
    let _one = ONE_DRILL_AT_A_TIME.lock().await;
    raise_open_file_limit(4096)?;
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let spec = DrillSpec {
        scenario: scenario(slug, setup),
        flag_prefix: PREFIX.to_owned(),
        secret: SECRET.to_owned(),
        checker_cache: checker_cache(),
        extra_args: Vec::new(),
    };
    let drill = Arc::new(DrillProcess::start(&gongfang_binary()?, dir.path(), &spec).await?);
    let health = HealthWatch::start(drill.pid);
    let mut services: Vec<(ServiceId, u8)> = (1..=QUIET_SERVICES).map(|s| (ServiceId(s), 1)).collect();
    if setup == Setup::StormingChecker {
        services.push((FLOOD, 1));
    }
    let legit = Legit::start(LegitSpec {
        web: drill.web,
        submit: drill.submit,
        token: drill.token("legit")?,
        victims: VICTIMS.map(TeamId).collect(),
        services,
        codec: drill.codec.clone(),
        interval: Duration::from_millis(50),
    })
    .await?;
    // The legitimate team's traffic before the attack, to compare with.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attacked = attack(drill.clone()).await;
    // And a little after it, while the server cleans up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = legit.finish().await;
    let health: Health = health.finish().await;
    println!("[{slug}] {}", attacked.as_ref().map_or_else(|e| format!("attack failed: {e:#}"), String::clone));
    println!("[{slug}] {}", report.summary());
    println!("[{slug}] {}", health.summary());
    println!("[{slug}] {:.1} s in all", started.elapsed().as_secs_f64());
    let checked = async {
        let attack_summary = attacked?;
        ensure!(!attack_summary.is_empty());
        report.check(&drill, LEGIT_TEAM).await?;
        health.check()
    };
    let result = checked.await;
    if result.is_err() {
        eprintln!("[{slug}] the server's last log lines:\n{}", drill.last_log());
    }
    result
}

fn tally_line(tally: &Tally) -> String {
    tally.iter().map(|(k, n)| format!("{k:?}: {n}")).collect::<Vec<_>>().join(", ")
}

async fn judge_login(web: SocketAddr, from: std::net::Ipv4Addr, name: &str, password: &str) -> Refused {
    let body = serde_json::json!({ "name": name, "password": password }).to_string();
    let request = format!(
        "POST /api/judge/login HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let stream = connect_from(from, web).await?;
        http_exchange(&mut BufReader::new(stream), request.as_bytes()).await
    };
    match tokio::time::timeout(Duration::from_secs(15), exchange).await {
        Ok(answer) => http_refusal(answer),
        Err(_) => Refused::TimedOut,
    }
}

async fn http_wrong_token(web: SocketAddr, from: std::net::Ipv4Addr, token: &str) -> Refused {
    let request = put_flags_request(web, token, &["GONGFANG{not-a-flag}".to_owned()], false);
    let exchange = async {
        let stream = connect_from(from, web).await?;
        http_exchange(&mut BufReader::new(stream), &request).await
    };
    match tokio::time::timeout(Duration::from_secs(15), exchange).await {
        Ok(answer) => http_refusal(answer),
        Err(_) => Refused::TimedOut,
    }
}

/// 2,000 wrong credentials within 20 s, 100 a second from 40 addresses: 800 team tokens over
/// HTTP, 800 over TCP, 400 judge logins (half for the real judge's name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_over_http_tcp_and_judge_login() -> anyhow::Result<()> {
    under_attack("hostile-tokens", Setup::Quiet, |drill| async move {
        drill.add_judge(JUDGE, JUDGE_PASSWORD)?;
        let started = Instant::now();
        let mut attempts: JoinSet<(&str, Refused)> = JoinSet::new();
        for i in 0..2000u64 {
            tokio::time::sleep_until((started + Duration::from_millis(10 * i)).into()).await;
            let from = attacker(i as usize % 40);
            let (web, submit) = (drill.web, drill.submit);
            match i % 5 {
                0 | 1 => attempts.spawn(async move { ("http", http_wrong_token(web, from, &wrong_token(i)).await) }),
                2 | 3 => attempts.spawn(async move { ("tcp", tcp_wrong_token(submit, from, &wrong_token(i)).await) }),
                _ => attempts.spawn(async move {
                    let name = if i % 2 == 0 { JUDGE.to_owned() } else { format!("nobody{i}") };
                    ("judge", judge_login(web, from, &name, &format!("wrong password {i}")).await)
                }),
            };
        }
        let sent_in = started.elapsed();
        let mut tally = Tally::new();
        let mut accepted = Vec::new();
        while let Some(done) = attempts.join_next().await {
            let (kind, refused) = done?;
            *tally.entry(refused).or_default() += 1;
            if refused == Refused::Accepted {
                accepted.push(kind);
            }
        }
        ensure!(accepted.is_empty(), "wrong credentials were accepted: {accepted:?}");
        ensure!(sent_in < Duration::from_secs(21), "the 2,000 attempts took {sent_in:?} to send");
        Ok(format!(
            "2,000 wrong credentials sent in {:.1} s, all done after {:.1} s: {}",
            sent_in.as_secs_f64(),
            started.elapsed().as_secs_f64(),
            tally_line(&tally)
        ))
    })
    .await
}

/// Opens `count` connections to `to` from `sources` attacker addresses (starting at
/// `first_source`) and sends each `greeting`, 200 at a time; keeps the ones that opened.
async fn hold(to: SocketAddr, count: usize, first_source: usize, sources: usize, greeting: Vec<u8>) -> Vec<TcpStream> {
    let greeting = Arc::new(greeting);
    let mut held = Vec::with_capacity(count);
    for batch in (0..count).collect::<Vec<_>>().chunks(200) {
        let mut opening = JoinSet::new();
        for &i in batch {
            let greeting = greeting.clone();
            opening.spawn(async move {
                let open = async {
                    let mut stream = connect_from(attacker(first_source + i % sources), to).await?;
                    stream.write_all(&greeting).await?;
                    anyhow::Ok(stream)
                };
                tokio::time::timeout(Duration::from_secs(5), open).await.ok().and_then(Result::ok)
            });
        }
        while let Some(opened) = opening.join_next().await {
            held.extend(opened.ok().flatten());
        }
    }
    held
}

/// 2,000 idle TCP connections, 500 slowloris requests and 500 websocket clients that never
/// read, all held for 15 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_slowloris_and_websockets_that_never_read() -> anyhow::Result<()> {
    under_attack("hostile-idle", Setup::Quiet, |drill| async move {
        let started = Instant::now();
        let idle = hold(drill.submit, 2000, 0, 40, Vec::new()).await;
        let half_header = format!("PUT /flags HTTP/1.1\r\nHost: {}\r\nX-Team-To", drill.web).into_bytes();
        let slow = hold(drill.web, 500, 50, 20, half_header).await;
        let upgrade = format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            drill.web
        )
        .into_bytes();
        let sockets = hold(drill.web, 500, 100, 20, upgrade).await;
        let opened = started.elapsed();
        tokio::time::sleep(Duration::from_secs(15)).await;
        let summary = format!(
            "opened in {:.1} s and held for 15 s: {} of 2,000 idle TCP, {} of 500 slowloris, {} of 500 websockets",
            opened.as_secs_f64(),
            idle.len(),
            slow.len(),
            sockets.len()
        );
        drop((idle, slow, sockets));
        Ok(summary)
    })
    .await
}

/// The socket-storm checker on every defending team for four ticks: each of its actions tries
/// forbidden addresses 500 times, then opens sockets in a loop. Every one of its actions is
/// the checker's fault, logged once; the other services' checker is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checker_that_floods_sockets_and_forbidden_addresses() -> anyhow::Result<()> {
    under_attack("hostile-checker", Setup::StormingChecker, |drill| async move {
        let lines_before = drill.log_lines();
        let store = drill.store().await?;
        let first = store.latest_tick().await?.map_or(0, |t| t.tick.0) + 1;
        let last = first + 3;
        let deadline = Instant::now() + Duration::from_secs(60);
        while store.tick(Tick(last)).await?.is_none_or(|t| !t.is_closed()) {
            ensure!(Instant::now() < deadline, "ticks {first} to {last} were not played within 60 s");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let mut flood_results = 0;
        for tick in first..=last {
            let results = store.check_results(Tick(tick), None).await?;
            let flood: Vec<_> = results.iter().filter(|r| r.service == FLOOD).collect();
            let kv: Vec<_> = results.iter().filter(|r| r.service != FLOOD).collect();
            ensure!(!flood.is_empty() && !kv.is_empty(), "tick {tick} has results of both services");
            if let Some(r) = flood.iter().find(|r| r.verdict != Verdict::CheckerError) {
                anyhow::bail!("tick {tick}: a flooding checker's action is not checker-error: {r:?}");
            }
            if let Some(r) = kv.iter().find(|r| r.verdict != Verdict::Ok) {
                anyhow::bail!("tick {tick}: the quiet checker suffered: {r:?}");
            }
            // The storm ran in full (every attempt refused, none ending the action) and is one
            // fault naming the forbidden address.
            let storm_ran =
                |log: &str| log.contains("500 of 500 attempts refused") && log.contains("outside its target");
            if let Some(r) = flood.iter().find(|r| !storm_ran(&r.log)) {
                anyhow::bail!("tick {tick}: a flooding checker's log does not show the storm: {r:?}");
            }
            flood_results += flood.len();
        }
        store.close().await?;
        // Each `get` tries 500 forbidden connects: one log line per action, not per attempt.
        // The bound leaves room for the actions of the ticks around the ones counted.
        let lines = drill.log_lines() - lines_before;
        ensure!(
            lines <= 4 * flood_results as u64,
            "{lines} server log lines for {flood_results} actions of the flooding checker"
        );
        Ok(format!(
            "ticks {first} to {last}: {flood_results} actions of the flooding checker, all checker-error; \
             {lines} server log lines meanwhile"
        ))
    })
    .await
}

/// One report with `MAX_EVIDENCE` bytes of evidence, as multipart.
fn report_request(web: SocketAddr, token: &str, from: &str, to: &str) -> Vec<u8> {
    let boundary = "hostile-boundary-7MA4YWxkTrZu0gW";
    let report = serde_json::json!({
        "kind": "attack",
        "target_team": "victim2",
        "service": "kv1",
        "from": from,
        "to": to,
        "technique": "evidence as large as the drill allows",
        "description": "Filed again and again, as fast as the team can.",
    });
    let mut body = Vec::with_capacity(MAX_EVIDENCE + 1024);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"report\"\r\nContent-Type: application/json\r\n\r\n{report}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"evidence\"; filename=\"log.txt\"\r\n\
             Content-Type: text/plain\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend(std::iter::repeat_n(b'a', MAX_EVIDENCE - 1));
    body.push(b'\n');
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut request = format!(
        "POST /api/reports HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\nX-Team-Token: {token}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

/// A team files attack reports with the maximum evidence (4 MiB) as fast as it can, four
/// uploads at a time, for 15 s or 300 attempts. Every report the server says it filed is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_filing_reports_with_maximum_evidence() -> anyhow::Result<()> {
    under_attack("hostile-reports", Setup::Quiet, |drill| async move {
        let store = drill.store().await?;
        let drill_start = store.drill_state().await?.started_at.context("the drill has started")?;
        let from = (drill_start + chrono::Duration::seconds(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
        let to = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let request = Arc::new(report_request(drill.web, &drill.token("reporter")?, &from, &to));
        let started = Instant::now();
        let budget = Arc::new(std::sync::atomic::AtomicU32::new(300));
        let mut uploaders = JoinSet::new();
        for u in 0..4 {
            let (request, budget, web) = (request.clone(), budget.clone(), drill.web);
            uploaders.spawn(async move {
                let mut tally = Tally::new();
                while started.elapsed() < Duration::from_secs(15)
                    && budget
                        .fetch_update(std::sync::atomic::Ordering::Relaxed, std::sync::atomic::Ordering::Relaxed, |b| {
                            b.checked_sub(1)
                        })
                        .is_ok()
                {
                    let exchange = async {
                        let stream = connect_from(attacker(220 + u), web).await?;
                        http_exchange(&mut BufReader::new(stream), &request).await
                    };
                    let answer = match tokio::time::timeout(Duration::from_secs(30), exchange).await {
                        Ok(answer) => http_refusal(answer),
                        Err(_) => Refused::TimedOut,
                    };
                    *tally.entry(answer).or_default() += 1;
                }
                tally
            });
        }
        let mut tally = Tally::new();
        while let Some(done) = uploaders.join_next().await {
            for (k, n) in done? {
                *tally.entry(k).or_default() += n;
            }
        }
        let filed = tally.get(&Refused::Accepted).copied().unwrap_or(0);
        let stored = store.reports_of_team(TeamId(REPORTER)).await?;
        store.close().await?;
        ensure!(stored.len() as u64 == filed, "the server answered 201 to {filed} reports and stored {}", stored.len());
        Ok(format!(
            "{} reports of 4 MiB tried in {:.1} s ({:.0} MiB offered): {} (Accepted = 201; {} stored)",
            tally.values().sum::<u64>(),
            started.elapsed().as_secs_f64(),
            tally.values().sum::<u64>() as f64 * 4.0,
            tally_line(&tally),
            stored.len()
        ))
    })
    .await
}

/// A JSON exchange with the server from `from`: `method path` with `headers` and `body`.
async fn http_json(
    web: SocketAddr,
    from: std::net::Ipv4Addr,
    method: &str,
    path: &str,
    headers: &str,
    body: &serde_json::Value,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let body = body.to_string();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n{headers}Content-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let stream = connect_from(from, web).await?;
        http_exchange(&mut BufReader::new(stream), request.as_bytes()).await
    };
    let (status, answer) =
        tokio::time::timeout(Duration::from_secs(30), exchange).await.context("no answer within 30 s")??;
    let value = if answer.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&answer)? };
    Ok((status, value))
}

/// The most container log lines a judge is shown beside one report (the reports' default).
const MAX_LOG_LINES: usize = 200;
/// The defending team and service whose container floods its stdout.
const LOUD_TEAM: &str = "victim2";
const LOUD_SERVICE: &str = "kv1";
/// Where the judge reads from.
const JUDGE_ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 4);

/// What one judge's reading of the report showed.
#[derive(Debug)]
struct JudgeRead {
    took: Duration,
    lines: usize,
    longest: usize,
    notice: bool,
}

/// `GET /api/judge/reports/{id}` as a judge, and what its logs held.
async fn judge_read(web: SocketAddr, session: &str, id: i64) -> anyhow::Result<JudgeRead> {
    let started = Instant::now();
    let auth = format!("Authorization: Bearer {session}\r\n");
    let path = format!("/api/judge/reports/{id}");
    let (status, judged) = http_json(web, JUDGE_ADDRESS, "GET", &path, &auth, &serde_json::Value::Null).await?;
    let took = started.elapsed();
    ensure!(status == 200, "the judge's reading answered {status}: {judged}");
    let context = &judged["context"];
    ensure!(context["logs_error"].is_null(), "the judge was shown no logs: {}", context["logs_error"]);
    let logs = context["logs"].as_array().context("the context has logs")?;
    let longest = logs.iter().map(|l| l["line"].as_str().map_or(0, str::len)).max().unwrap_or(0);
    Ok(JudgeRead { took, lines: logs.len(), longest, notice: context["logs_notice"].is_string() })
}

/// One defending team's service writes 1 GiB to its stdout as fast as it can, in a real
/// container the running drill's judges read the logs of (made with the drill's labels, under
/// `[logs]` limits of two 1 MiB files), for at most 60 s. Meanwhile a judge reads a report on
/// that service, with its logs, every second: every reading is answered and shows at most the
/// bounded number of lines; afterwards the container's log on disk is within the limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_writing_a_gibibyte_to_stdout() -> anyhow::Result<()> {
    let Some(engine) = loud::docker_engine().await? else { return Ok(()) };
    // A slug of this run's own: the containers are found (and removed) by it.
    let slug = format!("hostile-loud-{}", std::process::id());
    let _teardown = loud::Teardown::new(&slug);
    let build = tempfile::tempdir()?;
    let context = build.path().to_owned();
    tokio::task::spawn_blocking(move || loud::program_context(&context)).await??;

    // The container of one team's service, as `gongfang up` makes it for the drill, on a
    // network no other test uses.
    let mut containers = parse(&scenario(&slug, Setup::SmallLogs), Path::new("scenario.toml"), &AssumeEverythingExists)
        .map_err(|problems| anyhow::anyhow!("the scenario is invalid: {problems}"))?;
    ensure!(containers.logs == LogRules { max_size_bytes: LOG_MAX_SIZE, max_files: LOG_MAX_FILES });
    containers.teams.retain(|t| t.slug == LOUD_TEAM);
    containers.services.retain(|s| s.slug == LOUD_SERVICE);
    ensure!(containers.teams.len() == 1 && containers.services.len() == 1);
    containers.teams[0].network = Ipv4Net { addr: std::net::Ipv4Addr::new(10, 69, 2, 0), prefix: 24 };
    containers.services[0].source = ImageSource::Build(build.path().to_owned());
    // The writer's own speed is not what is tested: let it have a whole core.
    containers.services[0].limits.cpus = 1.0;
    let settings = Settings {
        firewall: false,
        private_pool: Ipv4Net { addr: std::net::Ipv4Addr::new(10, 245, 0, 0), prefix: 16 },
        services: [(
            LOUD_SERVICE.to_owned(),
            ServiceExtras { env: vec![format!("GF_BYTES={}", 1u64 << 30)], ..ServiceExtras::default() },
        )]
        .into(),
        ..Settings::default()
    };
    let orch = Orchestrator::new(engine.clone(), settings);
    let container = orch.plan(&containers)?.instance(LOUD_TEAM, LOUD_SERVICE).context("the plan")?.name.clone();

    under_attack(&slug, Setup::SmallLogs, |drill| async move {
        drill.add_judge(JUDGE, JUDGE_PASSWORD)?;
        let login = serde_json::json!({ "name": JUDGE, "password": JUDGE_PASSWORD });
        let (status, session) = http_json(drill.web, JUDGE_ADDRESS, "POST", "/api/judge/login", "", &login).await?;
        ensure!(status == 200, "the judge's login answered {status}: {session}");
        let session = session["token"].as_str().context("a session token")?.to_owned();

        let from = Utc::now() - chrono::Duration::seconds(1);
        let up = Instant::now();
        orch.up(&containers).await?;
        let (log_path, max_size, max_files) = loud::log_config(&engine, &container).await?;
        ensure!(
            (max_size.as_str(), max_files.as_str()) == (Some("1048576"), Some("2")),
            "the container's log limits: max-size {max_size}, max-file {max_files}"
        );
        // An attack report on the loud service whose window covers the whole flood (a window
        // may end up to a minute ahead, for fast clocks).
        let report = serde_json::json!({
            "kind": "attack",
            "target_team": LOUD_TEAM,
            "service": LOUD_SERVICE,
            "from": from.to_rfc3339_opts(SecondsFormat::Secs, true),
            "to": (Utc::now() + chrono::Duration::seconds(55)).to_rfc3339_opts(SecondsFormat::Secs, true),
            "technique": "made the service write until its disk was full",
            "description": "Its logs show it.",
        });
        let auth = format!("X-Team-Token: {}\r\n", drill.token("reporter")?);
        let (status, filed) = http_json(drill.web, attacker(230), "POST", "/api/reports", &auth, &report).await?;
        ensure!(status == 201, "filing the report answered {status}: {filed}");
        let id = filed["id"].as_i64().context("the report's id")?;

        // Until the gibibyte is written, or 60 s; a judge reads the report every second.
        let mut reads = Vec::new();
        let mut next_read = Instant::now();
        let (written, done) = loop {
            let progress = loud::flood_progress(&log_path).unwrap_or((0, false));
            if progress.1 || up.elapsed() >= Duration::from_secs(60) {
                break progress;
            }
            if Instant::now() >= next_read {
                reads.push(judge_read(drill.web, &session, id).await?);
                next_read += Duration::from_secs(1);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let flooded = up.elapsed();
        engine.stop(&container).await?;
        // One more reading with the flood over.
        reads.push(judge_read(drill.web, &session, id).await?);

        let files = loud::log_files(&log_path)?;
        let kept: u64 = files.iter().map(|(_, n)| n).sum();
        // The engine checks a file's size after writing a message: a file may pass `max-size`
        // by one message (a 16 KiB part and its JSON around it).
        let bound = (LOG_MAX_SIZE + (64 << 10)) * u64::from(LOG_MAX_FILES);
        ensure!(
            written >= 64 << 20,
            "the service wrote only {} MiB in {flooded:?}: too slow to show anything",
            written >> 20
        );
        ensure!(files.len() <= LOG_MAX_FILES as usize, "more log files than max-file: {files:?}");
        ensure!(kept <= bound, "the container keeps {kept} bytes of log, over {bound}: {files:?}");
        ensure!(
            reads.iter().all(|r| r.lines <= MAX_LOG_LINES),
            "a judge was shown over {MAX_LOG_LINES} lines: {reads:?}"
        );
        ensure!(reads.len() >= 3, "the judge read the report only {} times: {reads:?}", reads.len());
        ensure!(reads.iter().any(|r| r.lines > 0), "the judge never saw the service's logs: {reads:?}");
        ensure!(reads.iter().all(|r| r.longest <= MAX_LINE_BYTES), "a line over the bound: {reads:?}");
        let slowest = reads.iter().map(|r| r.took).max().unwrap_or_default();
        Ok(format!(
            "the service wrote {} MiB in {:.1} s ({}); {} judge readings, the slowest {:.0} ms, at most {} lines, \
             {} with the rotation notice; {kept} bytes of log kept on disk in {files:?}",
            written >> 20,
            flooded.as_secs_f64(),
            if done { "all of it" } else { "stopped at 60 s" },
            reads.len(),
            slowest.as_secs_f64() * 1e3,
            reads.iter().map(|r| r.lines).max().unwrap_or(0),
            reads.iter().filter(|r| r.notice).count(),
        ))
    })
    .await
}
