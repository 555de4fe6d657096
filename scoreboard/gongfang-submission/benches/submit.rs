//! Submission benchmark over loopback with several TCP clients, on SQLite and PostgreSQL:
//! valid flags accepted and durably committed per second (group commit) beside a
//! one-commit-per-flag baseline in the same run, invalid flags rejected per second, and verdict
//! latency at a steady 20k flags/s.
//!
//! `cargo bench -p gongfang-submission --bench submit`; PostgreSQL when
//! `GONGFANG_TEST_POSTGRES_URL` is set. Pin to two cores with `taskset -c 0,1`.
#![allow(clippy::print_stdout)]

#[path = "../tests/common/fixture.rs"]
mod fixture;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gongfang_core::Tick;
use gongfang_core::scenario::Identify;
use gongfang_store::Store;
use gongfang_submission::{GameClock, Settings, SubmissionState};
use sea_orm::ConnectionTrait;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, oneshot, watch};

const NOW: u32 = 999;
const LIFETIME: u32 = 1_000;
const CLIENTS: usize = 4;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A fresh database of a backend.
struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

async fn fresh_db(backend: &str, n: usize) -> Db {
    if backend == "sqlite" {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
        return Db { url, _dir: Some(dir) };
    }
    let base = std::env::var("GONGFANG_TEST_POSTGRES_URL").unwrap();
    let name = format!("gf_sub_bench_{}_{n}", std::process::id());
    let admin = sea_orm::Database::connect(&base).await.unwrap();
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
    admin.close().await.unwrap();
    let (scheme, rest) = base.split_once("://").unwrap();
    let authority = rest.split('/').next().unwrap();
    Db { url: format!("{scheme}://{authority}/{name}"), _dir: None }
}

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    store: Store,
    _db: Db,
}

async fn server(db: Db, settings: Settings) -> Server {
    let scenario = fixture::scenario(Identify::Address, LIFETIME, 1_000, None);
    let store = Store::connect_and_migrate(&db.url).await.unwrap();
    store.sync_scenario(&scenario).await.unwrap();
    let (_clock_tx, clock) = watch::channel(GameClock::running(Tick(NOW)));
    // Keep the clock alive for the server's lifetime.
    std::mem::forget(_clock_tx);
    let (events, _) = broadcast::channel(16);
    let (state, _) =
        SubmissionState::start(&scenario, fixture::codec(), Arc::new(store.clone()), clock, events, settings)
            .await
            .unwrap();
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
    Server { addr, stop, task, store, _db: db }
}

impl Server {
    async fn stop(self) -> Store {
        let _ = self.stop.send(());
        self.task.await.unwrap();
        self.store
    }
}

async fn connect(addr: SocketAddr) -> (BufReader<tokio::net::tcp::OwnedReadHalf>, tokio::net::tcp::OwnedWriteHalf) {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (r, w) = stream.into_split();
    let mut r = BufReader::with_capacity(1 << 16, r);
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).await.unwrap();
        if line == "\n" {
            break;
        }
    }
    (r, w)
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
            let mut line = Vec::with_capacity(128);
            for _ in 0..lines_per_client {
                line.clear();
                r.read_until(b'\n', &mut line).await.unwrap();
                if line.ends_with(expect) {
                    matched += 1;
                }
            }
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

fn valid_payloads(total: usize) -> Vec<Vec<u8>> {
    let codec = fixture::codec();
    let per = total / CLIENTS;
    (0..CLIENTS)
        .map(|k| {
            let mut bytes = Vec::with_capacity(per * 48);
            for n in k * per..(k + 1) * per {
                bytes.extend_from_slice(fixture::nth_flag(&codec, n as u64, 0).as_bytes());
                bytes.push(b'\n');
            }
            bytes
        })
        .collect()
}

/// Valid flags per second, committed; checks the rows are really there.
async fn valid_rate(backend: &str, n: usize, total: usize, settings: Settings) -> f64 {
    let s = server(fresh_db(backend, n).await, settings).await;
    let rate = blast(s.addr, valid_payloads(total), total / CLIENTS, b" OK Accepted\n").await;
    let store = s.stop().await;
    assert_eq!(store.count_submissions().await.unwrap() as usize, total / CLIENTS * CLIENTS);
    rate
}

async fn invalid_rate(total: usize) -> f64 {
    let s = server(fresh_db("sqlite", 0).await, Settings::default()).await;
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
async fn latency(backend: &str, n: usize, rate: usize, seconds: u64) -> (Duration, Duration, Duration, f64) {
    let s = server(fresh_db(backend, n).await, Settings::default()).await;
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
            let mut line = Vec::new();
            let mut ok = 0;
            for _ in 0..expected {
                line.clear();
                r.read_until(b'\n', &mut line).await.unwrap();
                let at = sent.lock().unwrap().pop_front().unwrap();
                samples.push(at.elapsed());
                ok += usize::from(line.ends_with(b" OK Accepted\n"));
            }
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
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (pct(0.5), pct(0.99), *all.last().unwrap(), achieved)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let valid = env_usize("GONGFANG_BENCH_VALID", 200_000);
        let baseline = env_usize("GONGFANG_BENCH_BASELINE", 4_000);
        let invalid = env_usize("GONGFANG_BENCH_INVALID", 2_000_000);
        let mut backends = vec!["sqlite"];
        if std::env::var("GONGFANG_TEST_POSTGRES_URL").is_ok() {
            backends.push("postgres");
        } else {
            println!("(PostgreSQL skipped: set GONGFANG_TEST_POSTGRES_URL to include it)");
        }
        println!("cores available: {}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
        println!("{CLIENTS} TCP clients over loopback, server and clients on one 2-thread runtime\n");
        let rate = invalid_rate(invalid).await;
        println!("invalid flags rejected: {rate:>12.0} flags/s  ({invalid} lines, half bad tag, half malformed)");
        for (i, backend) in backends.iter().enumerate() {
            let group = valid_rate(backend, 10 * i + 1, valid, Settings::default()).await;
            let one_by_one = Settings { max_batch: 1, linger: Duration::ZERO, ..Settings::default() };
            let single = valid_rate(backend, 10 * i + 2, baseline, one_by_one).await;
            println!(
                "{backend:>8}: valid flags committed: group commit {group:>10.0} flags/s ({valid} flags) | one commit per flag {single:>8.0} flags/s ({baseline} flags) | ratio {:.1}x",
                group / single
            );
            let (p50, p99, max, achieved) = latency(backend, 10 * i + 3, 20_000, 5).await;
            println!(
                "{backend:>8}: verdict latency at a steady 20k flags/s (achieved {achieved:.0}/s, 5 s): p50 {} p99 {} max {}",
                ms(p50),
                ms(p99),
                ms(max)
            );
        }
    });
}
