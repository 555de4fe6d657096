//! The cost of abuse, on the real `gongfang serve` binary over loopback: wrong team tokens
//! refused per second over keep-alive HTTP and over TCP from 64 distinct loopback sources, the
//! server's CPU seconds per 1,000 refusals, and a legitimate team's submission latency during
//! each flood; then the legitimate team's p99 during a tick of about 20,000 checker actions
//! against its p99 at rest. Load generator and server share the machine.
//!
//! Run with `cargo build --release -p gongfang && cargo bench -p gongfang-e2e --bench abuse`.
//! `GONGFANG_BIN` names the server binary to measure (default: `gongfang` in the bench's own
//! target folder); with `GONGFANG_BIN_BEFORE` naming an older build as well, the floods run
//! against both in the same run and the ratios are printed.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gongfang_core::scenario::Identify;
use gongfang_core::{ServiceId, TeamId, Tick};
use gongfang_e2e::hostile::{
    DrillProcess, DrillSpec, Legit, LegitReport, LegitSpec, ProcStats, Refused, Tally, attacker, connect_from,
    gongfang_binary, http_exchange, http_refusal, put_flags_request, raise_open_file_limit, tcp_wrong_token,
    wrong_token,
};
use gongfang_test_programs::components;
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};
use tokio::io::BufReader;
use tokio::task::JoinSet;

const SECRET: &str = "abuse-benchmark-secret-0123456789abcdef";
const PREFIX: &str = "GONGFANG";
/// Attackers' source addresses, one client each.
const SOURCES: usize = 64;
/// How long each flood lasts.
const FLOOD: Duration = Duration::from_secs(10);
/// How long the legitimate team is measured at rest.
const REST: Duration = Duration::from_secs(10);
/// The big tick: teams × services of the trivial checker (one flag store). From tick 2 on,
/// each team × service gets one `put`, two `get`s (the newest flag and an older one) and one
/// `check`: 500 × 10 × 4 = 20,000 actions.
const BIG_TEAMS: u16 = 500;
const BIG_SERVICES: u8 = 10;
/// The drill of the floods: 12 teams × 3 services.
const SMALL_TEAMS: u16 = 12;
const SMALL_SERVICES: u8 = 3;

fn scenario(slug: &str, teams: u16, services: u8, tick: &str) -> String {
    let mut drill = ScenarioBuilder::new(slug)
        .duration("1h")
        .tick(tick)
        .checker_timeout("2s")
        .flag_lifetime(30)
        .flag_prefix(PREFIX)
        .secret(SECRET)
        .submission(Identify::Token, None, 16);
    for id in 1..=teams {
        drill = drill.team(team(id, &format!("t{id}")).network(&format!("10.{}.{}.0/24", 100 + id / 250, id % 250)));
    }
    for s in 1..=services {
        drill = drill.service(service(&format!("s{s}")).image("kv:latest").ports(&[7000]).checker(components::TRIVIAL));
    }
    drill.toml()
}

async fn start(binary: &Path, dir: &Path, scenario: String) -> anyhow::Result<DrillProcess> {
    let spec = DrillSpec {
        scenario,
        flag_prefix: PREFIX.to_owned(),
        secret: SECRET.to_owned(),
        checker_cache: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("abuse-bench-checker-cache"),
        extra_args: Vec::new(),
    };
    DrillProcess::start(binary, dir, &spec).await
}

async fn legit(drill: &DrillProcess, teams: u16, services: u8) -> anyhow::Result<Legit> {
    Legit::start(LegitSpec {
        web: drill.web,
        submit: drill.submit,
        token: drill.token("t1")?,
        victims: (2..=teams).map(TeamId).collect(),
        services: (1..=services).map(|s| (ServiceId(s), 1)).collect(),
        codec: drill.codec.clone(),
        interval: Duration::from_millis(20),
    })
    .await
}

/// What one flood did.
#[derive(Debug)]
struct Flood {
    refusals: u64,
    tally: Tally,
    elapsed: Duration,
    cpu: Duration,
    legit: LegitReport,
}

impl Flood {
    fn per_second(&self) -> f64 {
        self.refusals as f64 / self.elapsed.as_secs_f64()
    }

    fn cpu_per_thousand(&self) -> f64 {
        self.cpu.as_secs_f64() * 1000.0 / self.refusals.max(1) as f64
    }

    fn line(&self, what: &str) -> String {
        format!(
            "{what}: {} refusals in {:.1} s = {:.0}/s; server CPU {:.2} s = {:.3} s per 1,000; legitimate p50 {:.1} ms, p99 {:.1} ms, {} unanswered of {}\n    answers: {:?}",
            self.refusals,
            self.elapsed.as_secs_f64(),
            self.per_second(),
            self.cpu.as_secs_f64(),
            self.cpu_per_thousand(),
            self.legit.quantile(0.5).as_secs_f64() * 1e3,
            self.legit.quantile(0.99).as_secs_f64() * 1e3,
            self.legit.unanswered.len(),
            self.legit.sent,
            self.tally,
        )
    }
}

fn is_refusal(r: Refused) -> bool {
    matches!(r, Refused::Status(_) | Refused::InvalidToken | Refused::OtherLine)
}

/// One keep-alive connection per source sending wrong tokens back to back; a connection the
/// server closes is opened again.
async fn http_client(web: SocketAddr, from: Ipv4Addr, until: Instant, seed: u64) -> Tally {
    let mut tally = Tally::new();
    let mut i = seed;
    while Instant::now() < until {
        let Ok(stream) = connect_from(from, web).await else {
            *tally.entry(Refused::Closed).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let mut stream = BufReader::new(stream);
        while Instant::now() < until {
            i += 1;
            let request = put_flags_request(web, &wrong_token(i), &["GONGFANG{x}".to_owned()], true);
            let answer = tokio::time::timeout(Duration::from_secs(15), http_exchange(&mut stream, &request)).await;
            let refused = answer.map_or(Refused::TimedOut, http_refusal);
            *tally.entry(refused).or_default() += 1;
            if !is_refusal(refused) {
                break;
            }
        }
    }
    tally
}

async fn tcp_client(submit: SocketAddr, from: Ipv4Addr, until: Instant, seed: u64) -> Tally {
    let mut tally = Tally::new();
    let mut i = seed;
    while Instant::now() < until {
        i += 1;
        let refused = tcp_wrong_token(submit, from, &wrong_token(i)).await;
        *tally.entry(refused).or_default() += 1;
        if refused == Refused::Closed {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    tally
}

async fn flood(drill: &DrillProcess, tcp: bool) -> anyhow::Result<Flood> {
    let legit = legit(drill, SMALL_TEAMS, SMALL_SERVICES).await?;
    let before = ProcStats::read(drill.pid)?;
    let started = Instant::now();
    let until = started + FLOOD;
    let mut clients = JoinSet::new();
    for s in 0..SOURCES {
        // Each flood has addresses of its own, so neither starts out backed off by the other.
        let from = attacker(if tcp { SOURCES + s } else { s });
        let (web, submit, seed) = (drill.web, drill.submit, s as u64 * 1_000_000);
        if tcp {
            clients.spawn(tcp_client(submit, from, until, seed));
        } else {
            clients.spawn(http_client(web, from, until, seed));
        }
    }
    let mut tally = Tally::new();
    while let Some(done) = clients.join_next().await {
        for (k, n) in done? {
            *tally.entry(k).or_default() += n;
        }
    }
    let elapsed = started.elapsed();
    let after = ProcStats::read(drill.pid)?;
    let legit = legit.finish().await;
    let refusals = tally.iter().filter(|(k, _)| is_refusal(**k)).map(|(_, n)| n).sum();
    Ok(Flood { refusals, tally, elapsed, cpu: after.cpu.saturating_sub(before.cpu), legit })
}

/// The floods against one build: at rest, then HTTP, then TCP.
async fn floods(binary: &Path, label: &str) -> anyhow::Result<(LegitReport, Flood, Flood)> {
    let dir = tempfile::tempdir()?;
    let drill = start(binary, dir.path(), scenario("abuse-flood", SMALL_TEAMS, SMALL_SERVICES, "5s")).await?;
    let rest = legit(&drill, SMALL_TEAMS, SMALL_SERVICES).await?;
    tokio::time::sleep(REST).await;
    let rest = rest.finish().await;
    println!("[{label}] at rest: {}", rest.summary());
    let http = flood(&drill, false).await?;
    println!("[{label}] {}", http.line("wrong tokens over keep-alive HTTP"));
    // Let the server settle between floods.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tcp = flood(&drill, true).await?;
    println!("[{label}] {}", tcp.line("wrong tokens over TCP, a connection each"));
    let peak = ProcStats::read(drill.pid)?;
    println!("[{label}] server peak RSS {:.1} MiB", peak.peak_rss as f64 / 1048576.0);
    Ok((rest, http, tcp))
}

/// The legitimate team during the big drill's ticks 2 and 3.
async fn big_tick(binary: &Path) -> anyhow::Result<(LegitReport, usize, Duration)> {
    let dir = tempfile::tempdir()?;
    let text = scenario("abuse-tick", BIG_TEAMS, BIG_SERVICES, "15s");
    let drill = start(binary, dir.path(), text).await?;
    let store = drill.store().await?;
    // Wait for tick 2 to open, then measure until tick 3 closes.
    let deadline = Instant::now() + Duration::from_secs(120);
    while store.tick(Tick(2)).await?.is_none() {
        anyhow::ensure!(Instant::now() < deadline, "tick 2 did not start within 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let legit = legit(&drill, BIG_TEAMS, BIG_SERVICES).await?;
    while store.tick(Tick(3)).await?.is_none_or(|t| !t.is_closed()) {
        anyhow::ensure!(Instant::now() < deadline, "tick 3 did not close within 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = legit.finish().await;
    let actions = store.check_results(Tick(2), None).await?.len();
    let t2 = store.tick(Tick(2)).await?.and_then(|t| (t.closed_at? - t.opened_at).to_std().ok());
    store.close().await?;
    Ok((report, actions, t2.unwrap_or_default()))
}

fn main() -> anyhow::Result<()> {
    raise_open_file_limit(4096)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let after = gongfang_binary()?;
        let before = std::env::var_os("GONGFANG_BIN_BEFORE").map(PathBuf::from);
        println!("server: {}", after.display());
        let (rest, http, tcp) = floods(&after, "this build").await?;
        let previous = match &before {
            Some(b) => {
                println!("before: {}", b.display());
                Some(floods(b, "before").await?)
            }
            None => None,
        };
        let (tick, actions, tick_time) = big_tick(&after).await?;
        println!();
        println!("wrong-token refusals, {SOURCES} loopback sources, {} s each, load generator on the same 2 cores", FLOOD.as_secs());
        for (what, now, was) in [
            ("keep-alive HTTP", &http, previous.as_ref().map(|p| &p.1)),
            ("TCP", &tcp, previous.as_ref().map(|p| &p.2)),
        ] {
            println!(
                "  {what:<16} {:>9.0}/s  {:.3} CPU s per 1,000  legitimate p99 {:.1} ms",
                now.per_second(),
                now.cpu_per_thousand(),
                now.legit.quantile(0.99).as_secs_f64() * 1e3
            );
            if let Some(was) = was {
                println!(
                    "  {:<16} {:>9.0}/s  {:.3} CPU s per 1,000  legitimate p99 {:.1} ms",
                    "  before",
                    was.per_second(),
                    was.cpu_per_thousand(),
                    was.legit.quantile(0.99).as_secs_f64() * 1e3
                );
                println!(
                    "  {:<16} {:>9.1}x refusals/s, {:.1}x less CPU per refusal",
                    "  after / before",
                    now.per_second() / was.per_second().max(1e-9),
                    was.cpu_per_thousand() / now.cpu_per_thousand().max(1e-9)
                );
            }
        }
        println!(
            "legitimate p99 at rest {:.1} ms (p50 {:.1}); during a tick of {actions} checker actions ({:.1} s) {:.1} ms (p50 {:.1}): ratio {:.2}",
            rest.quantile(0.99).as_secs_f64() * 1e3,
            rest.quantile(0.5).as_secs_f64() * 1e3,
            tick_time.as_secs_f64(),
            tick.quantile(0.99).as_secs_f64() * 1e3,
            tick.quantile(0.5).as_secs_f64() * 1e3,
            tick.quantile(0.99).as_secs_f64() / rest.quantile(0.99).as_secs_f64().max(1e-9)
        );
        println!("  during the tick: {}", tick.summary());
        anyhow::Ok(())
    })?;
    drop(runtime);
    Ok(())
}
