//! A real drill under hostile load, for the hostile-load tests and the abuse benchmark: the
//! `gongfang serve` binary as a child process, its health read from `/proc`, a legitimate team
//! that keeps submitting flags from its own loopback address, and the attackers' requests from
//! others. Everything talks to loopback only, and every loop is bounded in count or time.
//!
//! Source addresses are aliases in 127.0.0.0/8, which Linux routes to the loopback interface
//! without configuration: the legitimate team submits from [`LEGIT`], the scoreboard poller
//! reads from [`SPECTATOR`], attackers come from [`attacker`] addresses (127.0.0.10 and up).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use gongfang_core::{FlagCodec, FlagInfo, ServiceId, StoreIdx, TeamId, Tick};
use gongfang_store::Store;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The legitimate team's source address.
pub const LEGIT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// Where the legitimate team's scoreboard poller reads the clock from.
pub const SPECTATOR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
/// The bound on the server's peak resident memory.
pub const MAX_PEAK_RSS: u64 = 256 * 1024 * 1024;
/// How long the legitimate team waits for any one answer before it counts as unanswered.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Attacker address number `i`: 127.0.0.10 to 127.0.0.250, round robin.
pub fn attacker(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 10 + u8::try_from(i % 241).expect("below 241"))
}

/// A TCP connection to `to` from the loopback alias `from`.
pub async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from.into(), 0))?;
    socket.connect(to).await
}

/// The organisers' binary: `GONGFANG_BIN` if set (to measure another build), else `gongfang`
/// beside the test's own target folder (`cargo build -p gongfang` makes it).
pub fn gongfang_binary() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("GONGFANG_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe()?;
    let profile_dir = exe.parent().and_then(Path::parent).context("the test binary has no target folder")?;
    let binary = profile_dir.join("gongfang");
    ensure!(binary.is_file(), "{} is missing: build it first with `cargo build -p gongfang`", binary.display());
    Ok(binary)
}

/// Raises this process's soft open-file limit to its hard limit: the attackers hold thousands
/// of sockets, and the server inherits the limit it starts with.
pub fn raise_open_file_limit(needed: u64) -> anyhow::Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    ensure!(hard >= needed, "the open-file limit is {hard}; this test needs {needed}: raise it with `ulimit -n`");
    Ok(())
}

/// What a drill to start is made of.
#[derive(Debug, Clone)]
pub struct DrillSpec {
    /// The scenario file's text.
    pub scenario: String,
    /// The scenario's flag prefix and inline secret, to mint flags as the drill does.
    pub flag_prefix: String,
    pub secret: String,
    /// Where compiled checkers are cached between drills.
    pub checker_cache: PathBuf,
    /// More arguments for `gongfang serve` (`--tls-cert FILE`, …).
    pub extra_args: Vec<String>,
}

/// A running `gongfang serve`, killed when dropped.
pub struct DrillProcess {
    child: KillOnDrop,
    pub pid: u32,
    pub web: SocketAddr,
    pub submit: SocketAddr,
    /// Team slug -> token, as the server issued them.
    pub tokens: BTreeMap<String, String>,
    pub database_url: String,
    /// The drill's flag codec, built from the secret and the database's drill id.
    pub codec: FlagCodec,
    binary: PathBuf,
    /// The server's last log lines, and how many it wrote.
    log: Arc<Log>,
}

impl std::fmt::Debug for DrillProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrillProcess").field("pid", &self.pid).field("web", &self.web).finish_non_exhaustive()
    }
}

impl DrillProcess {
    /// Starts `gongfang serve` in `dir` on ports the system picks, and waits until it listens.
    pub async fn start(binary: &Path, dir: &Path, spec: &DrillSpec) -> anyhow::Result<DrillProcess> {
        let scenario = dir.join("scenario.toml");
        std::fs::write(&scenario, &spec.scenario)?;
        let database_url = format!("sqlite://{}?mode=rwc", dir.join("drill.db").display());
        let summary = dir.join("serve.json");
        // A summary left by an earlier server in this folder would pass for this one's.
        let _ = std::fs::remove_file(&summary);
        let child = Command::new(binary)
            .current_dir(dir)
            .arg("serve")
            .arg(&scenario)
            .args(["--database-url", &database_url, "--web", "127.0.0.1:0", "--submit", "127.0.0.1:0"])
            .arg("--summary")
            .arg(&summary)
            .arg("--tokens-file")
            .arg(dir.join("tokens.json"))
            .arg("--checker-cache")
            .arg(&spec.checker_cache)
            .args(&spec.extra_args)
            .env("GONGFANG_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut child = KillOnDrop(child);
        let log = Arc::new(Mutex::new((VecDeque::new(), 0)));
        for pipe in [child.0.stdout.take().map(Pipe::Out), child.0.stderr.take().map(Pipe::Err)].into_iter().flatten() {
            let log = log.clone();
            std::thread::spawn(move || pipe.drain(&log));
        }
        let deadline = Instant::now() + Duration::from_secs(180);
        while !summary.is_file() {
            if let Some(status) = child.0.try_wait()? {
                bail!("gongfang serve exited with {status} before it listened:\n{}", tail(&log));
            }
            ensure!(Instant::now() < deadline, "gongfang serve did not listen within 180 s:\n{}", tail(&log));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary)?)?;
        let tokens_file = s["tokens_file"].as_str().context("tokens_file")?;
        let tokens: Value = serde_json::from_str(&std::fs::read_to_string(tokens_file)?)?;
        let tokens = tokens["tokens"]
            .as_object()
            .context("tokens")?
            .iter()
            .map(|(slug, token)| Ok((slug.clone(), token.as_str().context("a token")?.to_owned())))
            .collect::<anyhow::Result<_>>()?;
        let store = Store::connect(&database_url).await?;
        let drill_id = store.drill_id().await?;
        store.close().await?;
        let slug = slug_of(&spec.scenario)?;
        Ok(DrillProcess {
            pid: child.0.id(),
            child,
            web: s["web"].as_str().context("web")?.parse()?,
            submit: s["submit_tcp"].as_str().context("submit_tcp")?.parse()?,
            tokens,
            database_url,
            codec: FlagCodec::for_drill(&spec.flag_prefix, spec.secret.as_bytes(), &slug, drill_id),
            binary: binary.to_owned(),
            log,
        })
    }

    /// Creates a judge account with the organisers' command.
    pub fn add_judge(&self, name: &str, password: &str) -> anyhow::Result<()> {
        let out = Command::new(&self.binary)
            .args(["judge", "--database-url", &self.database_url, "add", "--name", name])
            .env("GONGFANG_JUDGE_PASSWORD", password)
            .stdin(Stdio::null())
            .output()?;
        ensure!(out.status.success(), "gongfang judge add failed: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    }

    /// The token of team `slug`.
    pub fn token(&self, slug: &str) -> anyhow::Result<String> {
        self.tokens.get(slug).cloned().with_context(|| format!("no token issued to {slug}"))
    }

    /// The server's last log lines, for a failure's reader.
    pub fn last_log(&self) -> String {
        tail(&self.log)
    }

    /// How many lines the server has written to its standard output and error.
    pub fn log_lines(&self) -> u64 {
        self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1
    }

    /// Whether the server is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.0.try_wait(), Ok(None))
    }

    /// Opens the drill's database to read what the server stored.
    pub async fn store(&self) -> anyhow::Result<Store> {
        Ok(Store::connect(&self.database_url).await?)
    }
}

/// The server process, killed when dropped: also when a test fails or panics.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type Log = Mutex<(VecDeque<String>, u64)>;

fn tail(log: &Log) -> String {
    let log = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    log.0.iter().cloned().collect::<Vec<_>>().join("\n")
}

enum Pipe {
    Out(std::process::ChildStdout),
    Err(std::process::ChildStderr),
}

impl Pipe {
    /// Keeps the last lines the server writes (it must never block on a full pipe).
    fn drain(self, log: &Log) {
        let reader: Box<dyn std::io::Read> = match self {
            Pipe::Out(out) => Box::new(out),
            Pipe::Err(err) => Box::new(err),
        };
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            let mut log = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            log.1 += 1;
            log.0.push_back(line);
            if log.0.len() > 40 {
                log.0.pop_front();
            }
        }
    }
}

fn slug_of(scenario: &str) -> anyhow::Result<String> {
    let line = scenario.lines().find(|l| l.starts_with("slug = ")).context("the scenario has a slug")?;
    Ok(line.trim_start_matches("slug = ").trim_matches('"').to_owned())
}

/// One reading of a process's `/proc` files.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    /// Peak resident set size (`VmHWM`), bytes.
    pub peak_rss: u64,
    /// Open file descriptors.
    pub open_files: u64,
    /// The soft open-file limit ("Max open files").
    pub max_open_files: u64,
    /// User plus system CPU time.
    pub cpu: Duration,
}

impl ProcStats {
    pub fn read(pid: u32) -> anyhow::Result<ProcStats> {
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let status = std::fs::read_to_string(proc.join("status"))?;
        let kib = |key: &str| -> anyhow::Result<u64> {
            let line = status.lines().find(|l| l.starts_with(key)).with_context(|| format!("no {key}"))?;
            Ok(line.split_whitespace().nth(1).context("a value")?.parse::<u64>()? * 1024)
        };
        let peak_rss = kib("VmHWM:")?;
        let open_files = u64::try_from(std::fs::read_dir(proc.join("fd"))?.count())?;
        let limits = std::fs::read_to_string(proc.join("limits"))?;
        let line = limits.lines().find(|l| l.starts_with("Max open files")).context("no Max open files")?;
        let max_open_files = line["Max open files".len()..].split_whitespace().next().context("a limit")?.parse()?;
        let stat = std::fs::read_to_string(proc.join("stat"))?;
        let fields: Vec<&str> = stat.rsplit_once(')').context("a stat line")?.1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        let cpu = Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64);
        Ok(ProcStats { peak_rss, open_files, max_open_files, cpu })
    }
}

/// Clock ticks per second of `/proc/PID/stat`'s times.
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// The server's health over a phase: sampled every 100 ms until [`HealthWatch::finish`].
#[derive(Debug)]
pub struct HealthWatch {
    stop: watch::Sender<bool>,
    task: JoinHandle<Health>,
}

/// What [`HealthWatch`] saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct Health {
    pub peak_rss: u64,
    pub max_open_files_seen: u64,
    pub max_open_files: u64,
    pub samples: u64,
    /// The process could not be read any more: it died.
    pub gone: bool,
}

impl HealthWatch {
    pub fn start(pid: u32) -> HealthWatch {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut health = Health::default();
            loop {
                match ProcStats::read(pid) {
                    Ok(s) => {
                        health.peak_rss = health.peak_rss.max(s.peak_rss);
                        health.max_open_files_seen = health.max_open_files_seen.max(s.open_files);
                        health.max_open_files = s.max_open_files;
                        health.samples += 1;
                    }
                    Err(_) => {
                        health.gone = true;
                        return health;
                    }
                }
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => return health,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        });
        HealthWatch { stop, task }
    }

    pub async fn finish(self) -> Health {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or(Health { gone: true, ..Health::default() })
    }
}

impl Health {
    /// The bounds: alive, peak RSS under 256 MiB, open files under the limit.
    pub fn check(&self) -> anyhow::Result<()> {
        ensure!(!self.gone && self.samples > 0, "the server died: {self:?}");
        ensure!(
            self.peak_rss < MAX_PEAK_RSS,
            "the server's peak RSS is {:.1} MiB, over 256 MiB",
            self.peak_rss as f64 / 1048576.0
        );
        ensure!(
            self.max_open_files_seen < self.max_open_files,
            "the server had {} files open, its limit is {}",
            self.max_open_files_seen,
            self.max_open_files
        );
        Ok(())
    }

    pub fn summary(&self) -> String {
        format!(
            "server peak RSS {:.1} MiB, at most {} files open of {}",
            self.peak_rss as f64 / 1048576.0,
            self.max_open_files_seen,
            self.max_open_files
        )
    }
}

/// A minimal HTTP/1.1 exchange on a connection the caller keeps (keep-alive) or not: writes
/// `request` and reads one answer by its `Content-Length`.
pub async fn http_exchange<S>(stream: &mut AsyncBufReader<S>, request: &[u8]) -> anyhow::Result<(u16, Vec<u8>)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // A server may answer (413, 429) before it reads a large body, and close: its answer is
    // what counts, so a failed write is reported only when there is no answer to read.
    let written = stream.get_mut().write_all(request).await;
    let mut status_line = String::new();
    let read = stream.read_line(&mut status_line).await;
    if let Err(e) = written
        && !matches!(read, Ok(n) if n > 0)
    {
        return Err(e.into());
    }
    ensure!(read? > 0, "connection closed before an answer");
    let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).context("a status")?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        ensure!(stream.read_line(&mut line).await? > 0, "connection closed inside the answer's head");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse()?;
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    Ok((status, body))
}

/// `PUT /flags` with `token` and a JSON list of `flags`.
pub fn put_flags_request(host: SocketAddr, token: &str, flags: &[String], keep_alive: bool) -> Vec<u8> {
    let body = serde_json::to_vec(flags).expect("strings serialize");
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut request = format!(
        "PUT /flags HTTP/1.1\r\nHost: {host}\r\nConnection: {connection}\r\nX-Team-Token: {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

/// A wrong team token that looks like a real one: 43 URL-safe characters, different each time.
pub fn wrong_token(i: u64) -> String {
    static SALT: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let mut x = SALT.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed) ^ i.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..43)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            alphabet[(x % 64) as usize] as char
        })
        .collect()
}

/// How an attacker's request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refused {
    /// An HTTP status (401, 429, 503 …).
    Status(u16),
    /// The TCP server's "Invalid team token" line.
    InvalidToken,
    /// Another line from the TCP server (a cap, a back-off).
    OtherLine,
    /// The server closed or reset the connection without an answer.
    Closed,
    /// No answer within the attacker's patience.
    TimedOut,
    /// The wrong credential was accepted: never right.
    Accepted,
}

/// One wrong token over TCP in token mode: connect from `from`, read the greeting, send the
/// token, read what comes back.
pub async fn tcp_wrong_token(submit: SocketAddr, from: Ipv4Addr, token: &str) -> Refused {
    let attempt = async {
        let Ok(stream) = connect_from(from, submit).await else { return Refused::Closed };
        let mut stream = AsyncBufReader::new(stream);
        let mut greeting = String::new();
        if stream.read_line(&mut greeting).await.unwrap_or(0) == 0 {
            return Refused::Closed;
        }
        // Anything but the greeting is a refusal in one line (a cap, a back-off).
        if !greeting.contains("enter your team token") {
            return Refused::OtherLine;
        }
        if stream.get_mut().write_all(format!("{token}\n").as_bytes()).await.is_err() {
            return Refused::Closed;
        }
        let mut answer = String::new();
        match stream.read_line(&mut answer).await {
            Ok(0) | Err(_) => Refused::Closed,
            Ok(_) if answer.contains("Invalid team token") => Refused::InvalidToken,
            Ok(_) if answer.contains("flags") || answer.contains("flag per line") => Refused::Accepted,
            Ok(_) => Refused::OtherLine,
        }
    };
    tokio::time::timeout(Duration::from_secs(15), attempt).await.unwrap_or(Refused::TimedOut)
}

/// Classifies an HTTP attacker's answer.
pub fn http_refusal(answer: anyhow::Result<(u16, Vec<u8>)>) -> Refused {
    match answer {
        Ok((200 | 201, _)) => Refused::Accepted,
        Ok((status, _)) => Refused::Status(status),
        Err(_) => Refused::Closed,
    }
}

/// Answers to count, per kind.
pub type Tally = BTreeMap<Refused, u64>;

/// What the legitimate team saw.
#[derive(Debug, Default)]
pub struct LegitReport {
    /// Flags sent.
    pub sent: u64,
    /// Flags answered, by answer code (`OK`, `DUP`, …; HTTP answers mapped to the same codes).
    pub codes: BTreeMap<String, u64>,
    /// Flags that got no answer, with why.
    pub unanswered: Vec<String>,
    /// The flags answered `OK`.
    pub ok: Vec<String>,
    /// One latency per answered request or TCP line.
    pub latencies: Vec<Duration>,
}

impl LegitReport {
    fn merge(&mut self, other: LegitReport) {
        self.sent += other.sent;
        for (code, n) in other.codes {
            *self.codes.entry(code).or_default() += n;
        }
        self.unanswered.extend(other.unanswered);
        self.ok.extend(other.ok);
        self.latencies.extend(other.latencies);
    }

    /// The `q` quantile of the latencies.
    pub fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }

    pub fn summary(&self) -> String {
        format!(
            "legitimate team: {} flags sent, answers {:?}, {} unanswered; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.sent,
            self.codes,
            self.unanswered.len(),
            self.quantile(0.5).as_secs_f64() * 1e3,
            self.quantile(0.99).as_secs_f64() * 1e3,
            self.quantile(1.0).as_secs_f64() * 1e3,
        )
    }

    /// Every flag answered, some accepted, and every `OK` stored as the attacker's capture.
    pub async fn check(&self, drill: &DrillProcess, attacker: TeamId) -> anyhow::Result<()> {
        ensure!(self.sent > 0, "the legitimate team sent nothing");
        ensure!(
            self.unanswered.is_empty(),
            "{} of {} legitimate flags got no answer, e.g. {:?}",
            self.unanswered.len(),
            self.sent,
            &self.unanswered[..self.unanswered.len().min(5)]
        );
        ensure!(!self.ok.is_empty(), "no legitimate flag was accepted: {:?}", self.codes);
        let stored = stored_captures(drill, attacker).await?;
        let missing: Vec<&String> = self.ok.iter().filter(|f| !stored.contains(*f)).collect();
        ensure!(
            missing.is_empty(),
            "{} of {} flags answered OK are not stored, e.g. {:?}",
            missing.len(),
            self.ok.len(),
            &missing[..missing.len().min(3)]
        );
        Ok(())
    }
}

/// The flags `attacker` has stored submissions of.
pub async fn stored_captures(drill: &DrillProcess, attacker: TeamId) -> anyhow::Result<HashSet<String>> {
    let store = drill.store().await?;
    let latest = store.latest_tick().await?.map_or(0, |t| t.tick.0);
    let mut flags = HashSet::new();
    for tick in 0..=latest + 1 {
        for s in store.submissions_in_tick(Tick(tick)).await? {
            if s.submission.capture.attacker == attacker {
                flags.insert(s.submission.flag);
            }
        }
    }
    store.close().await?;
    Ok(flags)
}

/// Who the legitimate team is and what it steals.
#[derive(Debug, Clone)]
pub struct LegitSpec {
    pub web: SocketAddr,
    pub submit: SocketAddr,
    pub token: String,
    /// The defending teams it has flags of, and their services with their flag stores.
    pub victims: Vec<TeamId>,
    pub services: Vec<(ServiceId, u8)>,
    pub codec: FlagCodec,
    /// The pause between two requests of each of its two clients (HTTP and TCP).
    pub interval: Duration,
}

/// Flags of the current tick: each (victim, service, store) once, then again (duplicates).
struct FlagPool {
    spec: LegitSpec,
    tick: Arc<AtomicU32>,
    next: Mutex<(u32, usize)>,
}

impl FlagPool {
    fn take(&self) -> String {
        let tick = self.tick.load(Ordering::Relaxed);
        let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if next.0 != tick {
            *next = (tick, 0);
        }
        let per_team: Vec<(ServiceId, StoreIdx)> = self
            .spec
            .services
            .iter()
            .flat_map(|&(service, stores)| (0..stores).map(move |s| (service, StoreIdx(s))))
            .collect();
        let all = self.spec.victims.len() * per_team.len();
        let i = next.1 % all;
        next.1 += 1;
        let (service, store) = per_team[i % per_team.len()];
        let team = self.spec.victims[i / per_team.len()];
        self.spec.codec.mint(FlagInfo { tick: Tick(tick), team, service, store })
    }
}

/// The legitimate team at work: an HTTP client (a fresh connection per `PUT /flags`, as a farm
/// does) and a TCP client (one connection in token mode, one flag per line), both from
/// [`LEGIT`], submitting valid flags of the current tick until stopped.
#[derive(Debug)]
pub struct Legit {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<LegitReport>>,
    poller: JoinHandle<()>,
}

impl Legit {
    /// Starts once the drill's clock shows a running tick.
    pub async fn start(spec: LegitSpec) -> anyhow::Result<Legit> {
        let tick = Arc::new(AtomicU32::new(u32::MAX));
        let (stop, stopped) = watch::channel(false);
        let poller = tokio::spawn(poll_tick(spec.web, tick.clone(), stopped.clone()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while tick.load(Ordering::Relaxed) == u32::MAX {
            ensure!(Instant::now() < deadline, "the drill's clock showed no running tick within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let pool = Arc::new(FlagPool { spec: spec.clone(), tick, next: Mutex::new((0, 0)) });
        let tasks =
            vec![tokio::spawn(legit_http(pool.clone(), stopped.clone())), tokio::spawn(legit_tcp(pool, stopped))];
        Ok(Legit { stop, tasks, poller })
    }

    /// Stops both clients after their current exchange and returns what they saw.
    pub async fn finish(self) -> LegitReport {
        let _ = self.stop.send(true);
        let mut report = LegitReport::default();
        for task in self.tasks {
            match task.await {
                Ok(r) => report.merge(r),
                Err(e) => report.unanswered.push(format!("a client task failed: {e}")),
            }
        }
        let _ = self.poller.await;
        report
    }
}

/// Follows `/api/scoreboard`'s clock from [`SPECTATOR`].
async fn poll_tick(web: SocketAddr, tick: Arc<AtomicU32>, mut stop: watch::Receiver<bool>) {
    let request = format!("GET /api/scoreboard HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n");
    loop {
        let read = async {
            let stream = connect_from(SPECTATOR, web).await?;
            let (status, body) = http_exchange(&mut AsyncBufReader::new(stream), request.as_bytes()).await?;
            ensure!(status == 200, "scoreboard answered {status}");
            let board: Value = serde_json::from_slice(&body)?;
            board["clock"]["tick"].as_u64().map(u32::try_from).transpose()?.context("no running tick")
        };
        if let Ok(Ok(t)) = tokio::time::timeout(Duration::from_secs(5), read).await {
            tick.store(t, Ordering::Relaxed);
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

fn http_code(msg: &str) -> &'static str {
    let msg = msg.to_ascii_lowercase();
    if msg.contains("accepted") {
        "OK"
    } else if msg.contains("already submitted") {
        "DUP"
    } else if msg.contains("invalid") {
        "INV"
    } else if msg.contains("too old") {
        "OLD"
    } else if msg.contains("your own") {
        "OWN"
    } else {
        "ERR"
    }
}

async fn legit_http(pool: Arc<FlagPool>, stop: watch::Receiver<bool>) -> LegitReport {
    let mut report = LegitReport::default();
    let web = pool.spec.web;
    while !*stop.borrow() {
        let started = Instant::now();
        let flags = vec![pool.take(), pool.take()];
        report.sent += flags.len() as u64;
        let request = put_flags_request(web, &pool.spec.token, &flags, false);
        let exchange = async {
            let stream = connect_from(LEGIT, web).await?;
            http_exchange(&mut AsyncBufReader::new(stream), &request).await
        };
        match tokio::time::timeout(ANSWER_TIMEOUT, exchange).await {
            Ok(Ok((200, body))) => match serde_json::from_slice::<Vec<Value>>(&body) {
                Ok(answers) if answers.len() == flags.len() => {
                    report.latencies.push(started.elapsed());
                    for (flag, answer) in flags.into_iter().zip(answers) {
                        let code = http_code(answer["msg"].as_str().unwrap_or_default());
                        *report.codes.entry(code.to_owned()).or_default() += 1;
                        if code == "OK" {
                            report.ok.push(flag);
                        }
                    }
                }
                _ => {
                    report.unanswered.push(format!("HTTP: not one answer per flag: {}", String::from_utf8_lossy(&body)))
                }
            },
            Ok(Ok((status, body))) => {
                report.unanswered.push(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
            }
            Ok(Err(e)) => report.unanswered.push(format!("HTTP: {e:#}")),
            Err(_) => report.unanswered.push(format!("HTTP: no answer within {ANSWER_TIMEOUT:?}")),
        }
        tokio::time::sleep(pool.spec.interval.saturating_sub(started.elapsed())).await;
    }
    report
}

/// A token-mode TCP session from [`LEGIT`], ready for flags.
async fn legit_session(spec: &LegitSpec) -> anyhow::Result<AsyncBufReader<TcpStream>> {
    let mut stream = AsyncBufReader::new(connect_from(LEGIT, spec.submit).await?);
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    ensure!(line.contains("token"), "greeting {line:?}");
    stream.get_mut().write_all(format!("{}\n", spec.token).as_bytes()).await?;
    let mut last = String::new();
    loop {
        let mut line = String::new();
        ensure!(stream.read_line(&mut line).await? > 0, "closed after the token; last line {last:?}");
        if line.trim_end().is_empty() && last.contains("One flag per line") {
            return Ok(stream);
        }
        last = line;
    }
}

async fn legit_tcp(pool: Arc<FlagPool>, stop: watch::Receiver<bool>) -> LegitReport {
    let mut report = LegitReport::default();
    let mut session = None;
    while !*stop.borrow() {
        let started = Instant::now();
        if session.is_none() {
            match tokio::time::timeout(ANSWER_TIMEOUT, legit_session(&pool.spec)).await {
                Ok(Ok(s)) => session = Some(s),
                Ok(Err(e)) => report.unanswered.push(format!("TCP: cannot start a session: {e:#}")),
                Err(_) => report.unanswered.push("TCP: no banner within the timeout".to_owned()),
            }
        }
        if let Some(stream) = session.as_mut() {
            let flag = pool.take();
            report.sent += 1;
            let exchange = async {
                stream.get_mut().write_all(format!("{flag}\n").as_bytes()).await?;
                let mut line = String::new();
                ensure!(stream.read_line(&mut line).await? > 0, "the server closed the connection");
                anyhow::Ok(line)
            };
            match tokio::time::timeout(ANSWER_TIMEOUT, exchange).await {
                Ok(Ok(line)) => {
                    report.latencies.push(started.elapsed());
                    let mut words = line.split_whitespace();
                    let (echo, code) = (words.next().unwrap_or_default(), words.next().unwrap_or("?"));
                    if echo != flag {
                        report.unanswered.push(format!("TCP: answer {line:?} to {flag}"));
                        session = None;
                    } else {
                        *report.codes.entry(code.to_owned()).or_default() += 1;
                        if code == "OK" {
                            report.ok.push(flag);
                        }
                    }
                }
                Ok(Err(e)) => {
                    report.unanswered.push(format!("TCP: {e:#}"));
                    session = None;
                }
                Err(_) => {
                    report.unanswered.push(format!("TCP: no answer within {ANSWER_TIMEOUT:?}"));
                    session = None;
                }
            }
        }
        tokio::time::sleep(pool.spec.interval.saturating_sub(started.elapsed())).await;
    }
    report
}
