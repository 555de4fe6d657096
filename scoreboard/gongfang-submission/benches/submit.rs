//! Submission benchmark over loopback with several TCP clients, on SQLite and PostgreSQL:
//! valid flags accepted and durably committed per second (group commit) beside a
//! one-commit-per-flag baseline in the same run, invalid flags rejected per second, and verdict
//! latency at a steady 20k flags/s, and answer latency of a 20,000-flag burst, also while
//! another process holds SQLite's write lock for 3 s (`sqlite3` shell needed). Two breakdown phases say where the time of a valid flag
//! goes: the server with a sink that stores nothing (TCP, classify, queues, writer), and the
//! store's batch insert called directly (statement, binds, database, commit).
//!
//! `cargo bench -p gongfang-submission --bench submit`; PostgreSQL when
//! `GONGFANG_TEST_POSTGRES_URL` is set. `GONGFANG_BENCH_ONLY=invalid,pipeline,store,valid,burst,latency`
//! runs a subset (for profiling); `GONGFANG_BENCH_VALID`, `_BASELINE`, `_INVALID` set the sizes;
//! `RUST_LOG=gongfang_submission=trace` logs every batch's size and commit time to stderr;
//! `GONGFANG_BENCH_COMMITS_IN_FLIGHT=N` overrides how many batches commit at once and
//! `GONGFANG_BENCH_MAX_BATCH=N` the largest batch.
#![allow(clippy::print_stdout)]

#[path = "../tests/common/fixture.rs"]
mod fixture;

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gongfang_core::NewSubmission;
use gongfang_core::clock::DrillClock;
use gongfang_core::scenario::Identify;
use gongfang_core::scoring::Capture;
use gongfang_core::{ServiceId, TeamId, Tick};
use gongfang_store::{Store, SubmissionOutcome};
use gongfang_submission::{Settings, SinkFuture, SubmissionSink, SubmissionState};
use gongfang_test_support::{Backend, POSTGRES_URL_VAR, TestDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, oneshot, watch};

const NOW: u32 = 999;
const LIFETIME: u32 = 1_000;
const CLIENTS: usize = 4;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A fresh, migrated database of `backend`, removed when dropped.
async fn fresh(backend: &str) -> TestDb {
    let backend = if backend == "sqlite" { Backend::Sqlite } else { Backend::Postgres };
    TestDb::new(backend).await.expect("PostgreSQL configured")
}

/// A sink that stores nothing and says every row is new: the pipeline without a database.
struct NullSink;

impl SubmissionSink for NullSink {
    fn insert_batch<'a>(&'a self, batch: &'a [NewSubmission], _: bool) -> SinkFuture<'a, Vec<SubmissionOutcome>> {
        Box::pin(async move { Ok(vec![SubmissionOutcome::New; batch.len()]) })
    }
    fn verify_token<'a>(&'a self, _: &'a str) -> SinkFuture<'a, Option<TeamId>> {
        Box::pin(async { Ok(None) })
    }
    fn captured_services(&self) -> SinkFuture<'_, HashSet<ServiceId>> {
        Box::pin(async { Ok(HashSet::new()) })
    }
    fn submissions_planted_since(&self, _: Tick) -> SinkFuture<'_, Vec<NewSubmission>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    _clock: watch::Sender<DrillClock>,
}

async fn server(sink: Arc<dyn SubmissionSink>, settings: Settings) -> Server {
    let scenario = fixture::scenario(Identify::Address, LIFETIME, 1_000, None);
    let (clock_tx, clock) = watch::channel(DrillClock::running(Tick(NOW), Duration::from_secs(60)));
    let (events, _) = broadcast::channel(16);
    let (state, _) = SubmissionState::start(&scenario, fixture::codec(), sink, clock, events, settings).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        gongfang_submission::tcp::serve(listener, state, async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
    });
    Server { addr, stop, task, _clock: clock_tx }
}

async fn store_on(db: &TestDb) -> Store {
    let scenario = fixture::scenario(Identify::Address, LIFETIME, 1_000, None);
    let store = db.store.clone();
    store.sync_scenario(&scenario).await.unwrap();
    store
}

impl Server {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// Reads answer lines in large chunks (the client must cost far less than the server) and
/// calls `each` with every complete line, newline included.
struct Answers {
    rd: OwnedReadHalf,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Answers {
    fn new(rd: OwnedReadHalf) -> Answers {
        Answers { rd, buf: vec![0; 1 << 16], start: 0, end: 0 }
    }

    async fn lines(&mut self, mut n: usize, mut each: impl FnMut(&[u8])) {
        while n > 0 {
            while n > 0 {
                let Some(i) = self.buf[self.start..self.end].iter().position(|&b| b == b'\n') else { break };
                each(&self.buf[self.start..=self.start + i]);
                self.start += i + 1;
                n -= 1;
            }
            if n == 0 {
                break;
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            let read = self.rd.read(&mut self.buf[self.end..]).await.unwrap();
            assert!(read > 0, "server closed with {n} answers missing");
            self.end += read;
        }
    }
}

async fn connect(addr: SocketAddr) -> (Answers, OwnedWriteHalf) {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (r, w) = stream.into_split();
    let mut answers = Answers::new(r);
    // The banner ends with an empty line.
    let mut done = false;
    while !done {
        answers.lines(1, |l| done = l == b"\n").await;
    }
    (answers, w)
}

/// Sends every client's lines as fast as possible and counts answers that end with `expect`.
/// Returns lines per second from the first byte sent to the last answer received.
async fn blast(addr: SocketAddr, per_client: Vec<Vec<u8>>, lines_per_client: usize, expect: &'static [u8]) -> f64 {
    let mut conns = Vec::new();
    for _ in 0..per_client.len() {
        conns.push(connect(addr).await);
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for ((mut r, mut w), payload) in conns.into_iter().zip(per_client) {
        tasks.spawn(async move {
            let sender = tokio::spawn(async move {
                w.write_all(&payload).await.unwrap();
                w
            });
            let mut matched = 0usize;
            r.lines(lines_per_client, |line| matched += usize::from(line.ends_with(expect))).await;
            drop(sender.await.unwrap());
            matched
        });
    }
    let mut matched = 0;
    while let Some(m) = tasks.join_next().await {
        matched += m.unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(matched, lines_per_client * CLIENTS, "every line got the expected answer");
    (lines_per_client * CLIENTS) as f64 / elapsed.as_secs_f64()
}

fn valid_flags(total: usize) -> Vec<String> {
    let codec = fixture::codec();
    (0..total).map(|n| fixture::nth_flag(&codec, n as u64, 0)).collect()
}

fn valid_payloads(total: usize) -> Vec<Vec<u8>> {
    let flags = valid_flags(total);
    let per = total / CLIENTS;
    flags
        .chunks(per)
        .take(CLIENTS)
        .map(|chunk| {
            let mut bytes = Vec::with_capacity(per * 48);
            for f in chunk {
                bytes.extend_from_slice(f.as_bytes());
                bytes.push(b'\n');
            }
            bytes
        })
        .collect()
}

/// Valid flags per second through the whole server into `sink`.
async fn server_rate(sink: Arc<dyn SubmissionSink>, total: usize, settings: Settings) -> f64 {
    let s = server(sink, settings).await;
    let rate = blast(s.addr, valid_payloads(total), total / CLIENTS, b" OK Accepted\n").await;
    s.stop().await;
    rate
}

/// Valid flags per second, committed; checks the rows are really there.
async fn valid_rate(backend: &str, total: usize, settings: Settings) -> f64 {
    let db = fresh(backend).await;
    let store = store_on(&db).await;
    let rate = server_rate(Arc::new(store.clone()), total, settings).await;
    assert_eq!(store.count_submissions().await.unwrap() as usize, total / CLIENTS * CLIENTS);
    store.close().await.unwrap();
    rate
}

/// The store alone: `total` rows in batches of `batch`, one after another, as the writer
/// would hand them over (rows it expects to be new). Rows per second.
async fn store_rate(backend: &str, total: usize, batch: usize) -> f64 {
    let db = fresh(backend).await;
    let store = store_on(&db).await;
    let codec = fixture::codec();
    let rows: Vec<NewSubmission> = (0..total)
        .map(|n| {
            let flag = fixture::nth_flag(&codec, n as u64, 0);
            let info = codec.parse(&flag).unwrap();
            NewSubmission {
                capture: Capture {
                    attacker: fixture::ALPHA,
                    victim: info.team,
                    service: info.service,
                    store: info.store,
                    planted: info.tick,
                    submitted: Tick(NOW),
                },
                flag,
                submitted_at: chrono::Utc::now(),
            }
        })
        .collect();
    let start = Instant::now();
    for chunk in rows.chunks(batch) {
        let outcomes = store.insert_new_submissions(chunk).await.unwrap();
        assert!(outcomes.iter().all(|o| *o == SubmissionOutcome::New));
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    assert_eq!(store.count_submissions().await.unwrap() as usize, total);
    store.close().await.unwrap();
    rate
}

async fn invalid_rate(total: usize) -> f64 {
    let s = server(Arc::new(NullSink), Settings::default()).await;
    let codec = fixture::codec();
    let per = total / CLIENTS;
    let payloads = (0..CLIENTS)
        .map(|k| {
            let mut bytes = Vec::with_capacity(per * 48);
            for n in 0..per {
                // Half well-shaped with a wrong tag (costs an HMAC), half not flags at all.
                if n % 2 == 0 {
                    let mut f = fixture::nth_flag(&codec, (k * per + n) as u64 % 500_000, 0).into_bytes();
                    let i = f.len() - 6;
                    f[i] = if f[i] == b'A' { b'B' } else { b'A' };
                    bytes.extend_from_slice(&f);
                } else {
                    bytes.extend_from_slice(b"GONGFANG{this-is-not-a-flag}");
                }
                bytes.push(b'\n');
            }
            bytes
        })
        .collect();
    let rate = blast(s.addr, payloads, per, b" INV Invalid flag\n").await;
    s.stop().await;
    rate
}

/// Verdict latency of valid flags sent at a steady `rate` per second for `seconds`.
async fn latency(backend: &str, rate: usize, seconds: u64, settings: Settings) -> (Duration, Duration, Duration, f64) {
    let db = fresh(backend).await;
    let store = store_on(&db).await;
    let s = server(Arc::new(store.clone()), settings).await;
    let codec = Arc::new(fixture::codec());
    let per_ms = rate / CLIENTS / 1000;
    let ticks = seconds * 1000;
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..CLIENTS {
        let (mut r, mut w) = connect(s.addr).await;
        let codec = codec.clone();
        let sent: Arc<Mutex<VecDeque<Instant>>> = Arc::default();
        let sent_w = sent.clone();
        let sender = tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(1));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut n = (k as u64) * 10_000_000 / CLIENTS as u64 % 900_000;
            let mut buf = Vec::with_capacity(per_ms * 48);
            for _ in 0..ticks {
                interval.tick().await;
                buf.clear();
                for _ in 0..per_ms {
                    buf.extend_from_slice(fixture::nth_flag(&codec, n, 0).as_bytes());
                    buf.push(b'\n');
                    n += 1;
                }
                let now = Instant::now();
                sent_w.lock().unwrap().extend(std::iter::repeat_n(now, per_ms));
                w.write_all(&buf).await.unwrap();
            }
            w
        });
        let expected = per_ms * ticks as usize;
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(expected);
            let mut ok = 0;
            r.lines(expected, |line| {
                let at = sent.lock().unwrap().pop_front().unwrap();
                samples.push(at.elapsed());
                ok += usize::from(line.ends_with(b" OK Accepted\n"));
            })
            .await;
            drop(sender.await.unwrap());
            assert_eq!(ok, expected);
            samples
        });
    }
    let start = Instant::now();
    let mut all = Vec::new();
    while let Some(samples) = tasks.join_next().await {
        all.extend(samples.unwrap());
    }
    let achieved = all.len() as f64 / start.elapsed().as_secs_f64();
    s.stop().await;
    store.close().await.unwrap();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (pct(0.5), pct(0.99), *all.last().unwrap(), achieved)
}

/// Answer latency of a burst: `total` valid flags pipelined over the clients as fast as the
/// sockets take them, each line timed from before its write to its answer being read. With
/// `lock`, the `sqlite3` shell holds the database's write lock for that long from the start,
/// as a long transaction elsewhere would. Returns p50, p99, max and how many were answered
/// "try again later".
async fn burst(backend: &str, total: usize, lock: Option<Duration>) -> (Duration, Duration, Duration, usize) {
    let db = fresh(backend).await;
    let store = store_on(&db).await;
    let s = server(Arc::new(store.clone()), Settings::default()).await;
    let mut conns = Vec::new();
    for _ in 0..CLIENTS {
        conns.push(connect(s.addr).await);
    }
    let locker = match lock {
        Some(hold) => {
            let path = db.url.trim_start_matches("sqlite://").split('?').next().unwrap_or_default().to_owned();
            let mut child = tokio::process::Command::new("sqlite3")
                .arg(path)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("the locked-store phase needs the sqlite3 shell");
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b".timeout 10000\nBEGIN IMMEDIATE;\nSELECT 'locked';\n").await.unwrap();
            let mut out = vec![0; 7];
            child.stdout.take().unwrap().read_exact(&mut out).await.unwrap();
            assert_eq!(out, b"locked\n");
            Some(tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                stdin.write_all(b"COMMIT;\n.quit\n").await.unwrap();
                drop(stdin);
                child.wait().await.unwrap();
            }))
        }
        None => None,
    };
    let flags = valid_flags(total);
    let mut tasks = tokio::task::JoinSet::new();
    for ((mut r, mut w), chunk) in conns.into_iter().zip(flags.chunks(total / CLIENTS)) {
        let lines: Vec<Vec<u8>> = chunk.iter().map(|f| format!("{f}\n").into_bytes()).collect();
        let n = lines.len();
        let sent: Arc<Mutex<VecDeque<Instant>>> = Arc::default();
        let sent_w = sent.clone();
        let sender = tokio::spawn(async move {
            for line in lines {
                sent_w.lock().unwrap().push_back(Instant::now());
                w.write_all(&line).await.unwrap();
            }
            w
        });
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(n);
            let mut busy = 0;
            r.lines(n, |line| {
                samples.push(sent.lock().unwrap().pop_front().unwrap().elapsed());
                busy += usize::from(line.ends_with(b" try again later\n"));
            })
            .await;
            drop(sender.await.unwrap());
            (samples, busy)
        });
    }
    let mut all = Vec::new();
    let mut busy = 0;
    while let Some(part) = tasks.join_next().await {
        let (samples, b) = part.unwrap();
        all.extend(samples);
        busy += b;
    }
    if let Some(locker) = locker {
        locker.await.unwrap();
    }
    s.stop().await;
    store.close().await.unwrap();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (pct(0.5), pct(0.99), *all.last().unwrap(), busy)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    if let Ok(filter) = std::env::var("RUST_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let valid = env_usize("GONGFANG_BENCH_VALID", 200_000);
        let baseline = env_usize("GONGFANG_BENCH_BASELINE", 4_000);
        let invalid = env_usize("GONGFANG_BENCH_INVALID", 2_000_000);
        let only = std::env::var("GONGFANG_BENCH_ONLY").ok();
        let run = |phase: &str| only.as_deref().is_none_or(|o| o.split(',').any(|p| p.trim() == phase));
        let mut backends = vec!["sqlite"];
        if std::env::var(POSTGRES_URL_VAR).is_ok() {
            backends.push("postgres");
        } else {
            println!("(PostgreSQL skipped: set GONGFANG_TEST_POSTGRES_URL to include it)");
        }
        let defaults = Settings {
            commits_in_flight: std::env::var("GONGFANG_BENCH_COMMITS_IN_FLIGHT").ok().and_then(|v| v.parse().ok()),
            max_batch: env_usize("GONGFANG_BENCH_MAX_BATCH", Settings::default().max_batch),
            ..Settings::default()
        };
        let max_batch = defaults.max_batch;
        println!("cores available: {}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
        println!("{CLIENTS} TCP clients over loopback, server and clients on one 2-thread runtime\n");
        if run("invalid") {
            let rate = invalid_rate(invalid).await;
            println!("invalid flags rejected: {rate:>12.0} flags/s  ({invalid} lines, half bad tag, half malformed)");
        }
        if run("pipeline") {
            let rate = server_rate(Arc::new(NullSink), valid, defaults.clone()).await;
            println!(
                "valid flags through the server, no database (TCP, classify, queues, writer): {rate:>10.0} flags/s ({valid} flags)"
            );
        }
        for backend in &backends {
            if run("store") {
                let rate = store_rate(backend, valid, max_batch).await;
                println!(
                    "{backend:>8}: store alone, insert_new_submissions in batches of {max_batch}: {rate:>10.0} rows/s ({valid} rows)"
                );
            }
            if run("valid") {
                let group = valid_rate(backend, valid, defaults.clone()).await;
                let one_by_one = Settings { max_batch: 1, linger: Duration::ZERO, ..defaults.clone() };
                let single = valid_rate(backend, baseline, one_by_one).await;
                println!(
                    "{backend:>8}: valid flags committed: group commit {group:>10.0} flags/s ({valid} flags) | one commit per flag {single:>8.0} flags/s ({baseline} flags) | ratio {:.1}x",
                    group / single
                );
            }
            if run("burst") {
                let (p50, p99, max, busy) = burst(backend, 20_000, None).await;
                println!(
                    "{backend:>8}: answer latency of a 20,000-flag burst: p50 {} p99 {} max {} ({busy} try again later)",
                    ms(p50),
                    ms(p99),
                    ms(max)
                );
                if *backend == "sqlite" {
                    let (p50, p99, max, busy) = burst(backend, 20_000, Some(Duration::from_secs(3))).await;
                    println!(
                        "{backend:>8}: the same while another process holds the write lock for 3 s: p50 {} p99 {} max {} ({busy} try again later)",
                        ms(p50),
                        ms(p99),
                        ms(max)
                    );
                }
            }
            if run("latency") {
                let (p50, p99, max, achieved) = latency(backend, 20_000, 5, defaults.clone()).await;
                println!(
                    "{backend:>8}: verdict latency at a steady 20k flags/s (achieved {achieved:.0}/s, 5 s): p50 {} p99 {} max {}",
                    ms(p50),
                    ms(p99),
                    ms(max)
                );
            }
        }
    });
}
