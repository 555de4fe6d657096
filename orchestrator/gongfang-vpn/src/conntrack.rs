//! The gateway's translation log at its source: new TCP connections from the VPN range into the
//! game networks, read from the kernel's connection tracking (`conntrack -E`) as they are made,
//! with the address the service saw when the gateway masqueraded them.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use ipnet::Ipv4Net;

use crate::Error;
use crate::gateway::find_program;

/// Longest event line read; a longer one is no event of ours (a line of the TCP events asked
/// for is about 150 bytes) and is skipped whole.
pub const MAX_LINE: usize = 4096;
/// How many translations wait in the channel by default before new ones are dropped.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// How long `conntrack` is given to fail at start (no permission, no event support in the
/// kernel) before the watcher counts it as running.
const START_GRACE: Duration = Duration::from_millis(300);
/// How much of `conntrack`'s error output is kept to explain why it stopped.
const MAX_STDERR: u64 = 4096;

/// One connection the gateway let through from a peer to a service, as the kernel tracked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// When the watcher read the event (a few milliseconds after the connection's first packet).
    pub at: SystemTime,
    /// The peer's tunnel address: who really connected.
    pub peer: Ipv4Addr,
    /// The service connected to.
    pub target: SocketAddrV4,
    /// The source address the service saw: the gateway's when the connection was masqueraded,
    /// the peer's own otherwise.
    pub seen_as: Ipv4Addr,
}

/// What to watch, and where.
#[derive(Debug, Clone)]
pub struct WatcherConfig {
    /// The VPN range: connections from elsewhere (checkers, the platform) are not logged.
    pub vpn_range: Ipv4Net,
    /// The teams' service networks: a peer's connections to anything else are not logged.
    pub game_networks: Vec<Ipv4Net>,
    /// A network namespace (`ip netns`) whose connections to watch; the host's when `None`.
    pub namespace: Option<String>,
    /// The `conntrack` program, by name on `PATH` or by path.
    pub conntrack: PathBuf,
    /// The `ip` program, to enter `namespace`.
    pub ip: PathBuf,
    /// How many translations may wait in the channel; more are dropped and counted.
    pub capacity: usize,
}

impl WatcherConfig {
    pub fn new(vpn_range: Ipv4Net, game_networks: Vec<Ipv4Net>) -> WatcherConfig {
        WatcherConfig {
            vpn_range,
            game_networks,
            namespace: None,
            conntrack: "conntrack".into(),
            ip: "ip".into(),
            capacity: DEFAULT_CAPACITY,
        }
    }

    fn wanted(&self, peer: Ipv4Addr, target: Ipv4Addr) -> bool {
        self.vpn_range.contains(&peer) && self.game_networks.iter().any(|n| n.contains(&target))
    }
}

/// A running `conntrack -E` and the thread reading it. Dropping it kills `conntrack` and joins
/// the thread; the receiver then sees the channel closed.
#[derive(Debug)]
pub struct TranslationWatcher {
    child: Child,
    reader: Option<JoinHandle<()>>,
    dropped: Arc<AtomicU64>,
    /// Set by the reader when `conntrack` stopped on its own, with why.
    ended: Arc<Mutex<Option<String>>>,
}

impl TranslationWatcher {
    /// Starts `conntrack -E -e NEW -p tcp` (in the namespace when one is given) and a thread
    /// that sends each wanted connection into the returned channel. Fails when `conntrack` (or
    /// `ip`) is missing, or when it stops at once (no permission, no event support).
    pub fn start(config: WatcherConfig) -> Result<(TranslationWatcher, Receiver<Translation>), Error> {
        if config.capacity == 0 {
            return Err(Error::Config("the translation watcher's capacity must be at least 1".to_owned()));
        }
        let conntrack = find_program(&config.conntrack, "conntrack")?;
        let mut command = match &config.namespace {
            Some(namespace) => {
                let ip = find_program(&config.ip, "iproute2")?;
                let mut command = Command::new(ip);
                command.args(["netns", "exec", namespace]).arg(&conntrack);
                command
            }
            None => Command::new(&conntrack),
        };
        command.args(EVENT_ARGS).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child =
            command.spawn().map_err(|source| Error::Spawn { program: conntrack.display().to_string(), source })?;
        let started = Instant::now();
        while started.elapsed() < START_GRACE {
            if let Some(status) =
                child.try_wait().map_err(|source| Error::Spawn { program: conntrack.display().to_string(), source })?
            {
                return Err(stopped(&conntrack, status, &stderr_of(&mut child)));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Config("conntrack's output was not captured".to_owned()));
        };
        let (sender, receiver) = std::sync::mpsc::sync_channel(config.capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let ended = Arc::new(Mutex::new(None));
        // Its complaints (e.g. events lost when the kernel's buffer overflowed) are read as they
        // come: a full pipe would stop `conntrack` itself.
        let complaints = child.stderr.take().map(|stderr| {
            std::thread::Builder::new().name("gf-conntrack-err".to_owned()).spawn(move || read_complaints(stderr))
        });
        let complaints = match complaints.transpose() {
            Ok(complaints) => complaints,
            Err(source) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Spawn { program: "the conntrack reader thread".to_owned(), source });
            }
        };
        let reader = {
            let (dropped, ended) = (dropped.clone(), ended.clone());
            std::thread::Builder::new()
                .name("gf-conntrack".to_owned())
                .spawn(move || read_events(stdout, complaints, &config, &sender, &dropped, &ended))
                .map_err(|source| Error::Spawn { program: "the conntrack reader thread".to_owned(), source })
        };
        let reader = match reader {
            Ok(reader) => reader,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        tracing::info!(program = %conntrack.display(), "watching new connections from the VPN into the game networks");
        Ok((TranslationWatcher { child, reader: Some(reader), dropped, ended }, receiver))
    }

    /// How many translations were dropped because the channel was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Why `conntrack` stopped on its own, once it has (the channel is then closed).
    pub fn ended(&self) -> Option<String> {
        self.ended.lock().map(|e| e.clone()).unwrap_or(None)
    }

    /// Stops `conntrack` and the reader: what dropping does.
    pub fn stop(self) {}
}

impl Drop for TranslationWatcher {
    fn drop(&mut self) {
        // Killed, its output closes and the reader ends on it.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// New TCP connections only: a flow is logged once, when it starts.
const EVENT_ARGS: [&str; 5] = ["-E", "-e", "NEW", "-p", "tcp"];

fn read_events(
    stdout: ChildStdout,
    complaints: Option<JoinHandle<String>>,
    config: &WatcherConfig,
    sender: &SyncSender<Translation>,
    dropped: &AtomicU64,
    ended: &Mutex<Option<String>>,
) {
    let mut lines = BoundedLines::new(BufReader::new(stdout));
    let mut stopped = true;
    loop {
        let line = match lines.next_line() {
            Ok(Some(Line::Text(line))) => line,
            Ok(Some(Line::TooLong)) => {
                tracing::warn!(limit = MAX_LINE, "a conntrack event line longer than the limit was skipped");
                continue;
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "reading conntrack's events failed");
                break;
            }
        };
        let Some(translation) = translation(&line, config, SystemTime::now()) else { continue };
        match sender.try_send(translation) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let count = dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // Counted on every drop, said at powers of two so a flood does not flood the log.
                if count.is_power_of_two() {
                    tracing::warn!(dropped = count, "translation log behind: connections dropped from it");
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                // Nobody listens: the watcher is being dropped, which ends `conntrack`.
                stopped = false;
                break;
            }
        }
    }
    // `conntrack` has exited (or is being ended), so its error output is closed too.
    let last = complaints.and_then(|c| c.join().ok()).unwrap_or_default();
    if stopped && let Ok(mut ended) = ended.lock() {
        *ended = Some(if last.is_empty() { "conntrack's output ended".to_owned() } else { last });
    }
}

/// Logs what `conntrack` says on its error output, line by line; answers the last line once
/// the output closes.
fn read_complaints(stderr: std::process::ChildStderr) -> String {
    let mut lines = BoundedLines::new(BufReader::new(stderr));
    let mut last = String::new();
    while let Ok(Some(line)) = lines.next_line() {
        let Line::Text(line) = line else { continue };
        let line = line.trim();
        if !line.is_empty() {
            tracing::warn!(output = line, "conntrack complained");
            last = line.to_owned();
        }
    }
    last
}

enum Line {
    Text(String),
    TooLong,
}

/// Lines of at most [`MAX_LINE`] bytes; the rest of a longer one is read past, never held.
struct BoundedLines<R> {
    inner: R,
}

impl<R: BufRead> BoundedLines<R> {
    fn new(inner: R) -> Self {
        BoundedLines { inner }
    }

    fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        let mut line = Vec::new();
        let mut too_long = false;
        loop {
            let buffer = self.inner.fill_buf()?;
            if buffer.is_empty() {
                return Ok(if line.is_empty() && !too_long { None } else { Some(finish(line, too_long)) });
            }
            let (chunk, done) = match buffer.iter().position(|b| *b == b'\n') {
                Some(end) => (&buffer[..end], end + 1),
                None => (buffer, buffer.len()),
            };
            let newline = done > chunk.len();
            if !too_long && line.len() + chunk.len() <= MAX_LINE {
                line.extend_from_slice(chunk);
            } else {
                too_long = true;
                line = Vec::new();
            }
            self.inner.consume(done);
            if newline {
                return Ok(Some(finish(line, too_long)));
            }
        }
    }
}

fn finish(line: Vec<u8>, too_long: bool) -> Line {
    if too_long { Line::TooLong } else { Line::Text(String::from_utf8_lossy(&line).into_owned()) }
}

/// One new connection as `conntrack -E` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Event {
    source: Ipv4Addr,
    target: SocketAddrV4,
    /// The reply tuple's destination: where the service's answers go, the source it saw.
    reply_to: Ipv4Addr,
}

/// Reads an event line such as
/// `[NEW] tcp 6 120 SYN_SENT src=A dst=B sport=P dport=Q [UNREPLIED] src=B dst=C sport=Q dport=P`:
/// the first `src`/`dst`/`dport` are the original direction, the `dst` after the second `src`
/// is the reply's. Anything else (another event type or protocol, IPv6, a malformed line) is
/// `None`.
fn parse_event(line: &str) -> Option<Event> {
    let mut words = line.split_whitespace();
    if words.next()? != "[NEW]" || words.next()? != "tcp" {
        return None;
    }
    let (mut source, mut target, mut port, mut reply_to) = (None, None, None, None);
    let mut in_reply = false;
    for word in words {
        let Some((key, value)) = word.split_once('=') else { continue };
        match (key, in_reply) {
            ("src", false) if source.is_none() => source = Some(value.parse::<Ipv4Addr>().ok()?),
            ("src", false) => in_reply = true,
            ("dst", false) => target = target.or(Some(value.parse::<Ipv4Addr>().ok()?)),
            ("dport", false) => port = port.or(Some(value.parse::<u16>().ok()?)),
            ("dst", true) => {
                reply_to = Some(value.parse::<Ipv4Addr>().ok()?);
                break;
            }
            _ => {}
        }
    }
    Some(Event { source: source?, target: SocketAddrV4::new(target?, port?), reply_to: reply_to? })
}

/// The translation a line shows, when it is a connection from the VPN range into a game network.
fn translation(line: &str, config: &WatcherConfig, at: SystemTime) -> Option<Translation> {
    let event = parse_event(line)?;
    config.wanted(event.source, *event.target.ip()).then_some(Translation {
        at,
        peer: event.source,
        target: event.target,
        seen_as: event.reply_to,
    })
}

fn stopped(program: &Path, status: ExitStatus, stderr: &str) -> Error {
    let hint = if stderr.contains("Operation not permitted") || stderr.contains("Permission denied") {
        " (reading connection events needs root or CAP_NET_ADMIN)"
    } else if stderr.contains("not supported") || stderr.contains("No such file") {
        " (the kernel must have connection tracking with netlink events: modprobe nf_conntrack_netlink)"
    } else {
        ""
    };
    Error::Command {
        command: format!("{} {}", program.display(), EVENT_ARGS.join(" ")),
        status: match status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_owned(),
        },
        stderr: stderr.trim().to_owned(),
        hint,
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(stderr) = child.stderr.take() {
        let _ = stderr.take(MAX_STDERR).read_to_string(&mut text);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as `conntrack -E -e NEW` printed them on Linux 6.18 (conntrack-tools 1.4.7).
    const MASQUERADED: &str = "    [NEW] tcp      6 120 SYN_SENT src=10.99.0.5 dst=10.98.0.7 sport=54994 dport=8080 \
                               [UNREPLIED] src=10.98.0.7 dst=10.98.0.1 sport=8080 dport=54994";
    const NOT_NATED: &str = "    [NEW] tcp      6 120 SYN_SENT src=10.99.0.5 dst=10.99.0.1 sport=37560 dport=22 \
                             [UNREPLIED] src=10.99.0.1 dst=10.99.0.5 sport=22 dport=37560";
    const UDP: &str = "    [NEW] udp      17 30 src=10.99.0.5 dst=10.98.0.7 sport=59917 dport=53 [UNREPLIED] \
                       src=10.98.0.7 dst=10.98.0.1 sport=53 dport=59917";
    const IPV6: &str = "    [NEW] tcp      6 120 SYN_SENT src=fd00:99::5 dst=fd00:99::1 sport=54018 dport=22 \
                        [UNREPLIED] src=fd00:99::1 dst=fd00:99::5 sport=22 dport=54018";

    fn config() -> WatcherConfig {
        WatcherConfig::new("10.99.0.0/16".parse().unwrap(), vec!["10.98.0.0/24".parse().unwrap()])
    }

    fn addr(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    #[test]
    fn a_masqueraded_connection_names_the_peer_the_service_and_the_address_it_saw() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let t = translation(MASQUERADED, &config(), at).expect("a wanted connection");
        assert_eq!(t.peer, addr("10.99.0.5"));
        assert_eq!(t.target, SocketAddrV4::new(addr("10.98.0.7"), 8080));
        assert_eq!(t.seen_as, addr("10.98.0.1"));
        assert_eq!(t.at, at);
    }

    #[test]
    fn without_nat_the_service_saw_the_peer_itself() {
        let event = parse_event(NOT_NATED).unwrap();
        assert_eq!(event.source, event.reply_to);
        let mut wide = config();
        wide.game_networks.push("10.99.0.0/24".parse().unwrap());
        let t = translation(NOT_NATED, &wide, SystemTime::now()).unwrap();
        assert_eq!((t.peer, t.seen_as, t.target.port()), (addr("10.99.0.5"), addr("10.99.0.5"), 22));
        assert_eq!(translation(NOT_NATED, &config(), SystemTime::now()), None, "not into a game network");
    }

    #[test]
    fn udp_ipv6_and_other_sources_are_not_logged() {
        assert_eq!(parse_event(UDP), None);
        assert_eq!(parse_event(IPV6), None);
        let mut narrow = config();
        narrow.vpn_range = "10.80.0.0/16".parse().unwrap();
        assert_eq!(translation(MASQUERADED, &narrow, SystemTime::now()), None, "a source outside the VPN range");
    }

    #[test]
    fn other_events_and_garbage_are_not_events() {
        for line in [
            "",
            "garbage",
            "[NEW]",
            "[NEW] tcp",
            &MASQUERADED.replace("[NEW]", "[DESTROY]"),
            &MASQUERADED.replace("[NEW]", "[UPDATE]"),
            &MASQUERADED.replace("dport=8080", "dport=80800"),
            &MASQUERADED.replace("src=10.99.0.5", "src=10.99.0.500"),
            &MASQUERADED.replace("dst=10.98.0.1", "dst=x"),
            "    [NEW] tcp      6 120 SYN_SENT src=10.99.0.5 dst=10.98.0.7 sport=54994 dport=8080",
            "conntrack v1.4.7 (conntrack-tools): 1 flow events have been shown.",
        ] {
            assert_eq!(parse_event(line), None, "{line:?}");
        }
        // Fields a kernel may add (marks, zones, flags) change nothing.
        let extra = MASQUERADED.replace("[UNREPLIED]", "[UNREPLIED] mark=0 zone=3") + " [ASSURED] use=1";
        assert_eq!(parse_event(&extra), parse_event(MASQUERADED));
        assert!(parse_event(MASQUERADED).is_some());
    }

    #[test]
    fn a_line_over_the_limit_is_skipped_and_the_next_one_read() {
        let long = "x".repeat(MAX_LINE * 3);
        let input = format!("{MASQUERADED}\n{long}\n{UDP}\nlast without newline");
        let mut lines = BoundedLines::new(BufReader::with_capacity(64, input.as_bytes()));
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            seen.push(match line {
                Line::Text(text) => text,
                Line::TooLong => "<too long>".to_owned(),
            });
        }
        assert_eq!(seen, [MASQUERADED, "<too long>", UDP, "last without newline"]);
    }

    #[test]
    fn a_missing_conntrack_says_what_to_install() {
        let mut config = config();
        config.conntrack = "/nonexistent/conntrack".into();
        let error = TranslationWatcher::start(config).unwrap_err();
        assert!(matches!(error, Error::ProgramMissing { package: "conntrack", .. }), "{error:?}");
        assert!(error.to_string().contains("apt-get install conntrack"), "{error}");
    }
}
