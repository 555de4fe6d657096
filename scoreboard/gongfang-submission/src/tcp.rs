//! The TCP front end: FAUST CTF / ENOWARS line protocol, with ForcAD's token greeting when the
//! scenario identifies teams by token.
//!
//! One task per connection reads lines, classifies each at once, and answers strictly in
//! submission order: verdicts that need no database are written immediately when nothing is
//! waiting before them; otherwise they queue behind the pending commits. Bounded everywhere:
//! line length, flags in flight per connection, idle time, connections per team, per source
//! address and in all; and a connection holds only a small buffer until its team is known.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use gongfang_core::TeamId;
use gongfang_core::admission::{Admission, Admitted, Refusal};
use gongfang_core::scenario::Identify;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::answer::Answer;
use crate::auth::TokenCheck;
use crate::error::SubmissionError;
use crate::state::{SubmissionState, Verdict};

/// The last banner line FAUST-style clients wait for (followed by an empty line).
pub const BANNER_LAST_LINE: &str = "One flag per line please!";
/// ForcAD's greeting in token mode.
pub const TOKEN_GREETING: &str = "Welcome! Please, enter your team token:";
/// ForcAD's invitation after a valid token.
pub const TOKEN_ACCEPTED: &str = "Now enter your flags, one in a line:";
/// The answer to the token of a team the organisers took out of the drill, before closing.
pub const DISABLED_TEAM: &str = "Your team was taken out of the drill by the organisers, goodbye\n";

/// Read buffer size; a line longer than the limit is discarded as it streams, so one
/// connection never holds more than this.
const READ_BUFFER: usize = 64 * 1024;
/// Read buffer size until the team is known: enough for a token line, so a connection that
/// never identifies costs a few hundred bytes, not [`READ_BUFFER`].
const GREETING_BUFFER: usize = 512;
/// How much of an over-long or binary line is echoed back.
const ECHO_MAX: usize = 64;

/// Serves submissions on `listener` until `shutdown` resolves; then stops accepting, lets every
/// connection answer what it has read, and returns when all are closed.
pub async fn serve(
    listener: TcpListener,
    state: SubmissionState,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), SubmissionError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let settings = state.settings();
    let admission = Admission::new(settings.max_connections, settings.max_connections_per_address);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match admission.try_admit(peer.ip()) {
                    Ok(admitted) => {
                        connections.spawn(connection(state.clone(), stream, peer, stop_rx.clone(), admitted));
                    }
                    Err(refusal) => refuse(stream, peer, refusal),
                },
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accepting a submission connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

async fn connection(
    state: SubmissionState,
    stream: TcpStream,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
    admitted: Admitted,
) {
    let _ = stream.set_nodelay(true);
    match session(&state, stream, peer, stop, admitted).await {
        Ok(()) => tracing::debug!(%peer, "submission connection closed"),
        Err(error) => tracing::debug!(%peer, %error, "submission connection ended"),
    }
}

/// Refuses a connection over a cap: one line, written without waiting (a fresh socket's send
/// buffer always has room for it), then closed. No task, no buffer, no timer: a flood of
/// refused connections costs the accept loop only.
fn refuse(stream: TcpStream, peer: SocketAddr, refusal: Refusal) {
    let line = match refusal {
        Refusal::Address(max) => format!("Too many connections from your address (at most {max}), goodbye\n"),
        Refusal::Total(max) => format!("Too many connections to the server (at most {max}), try again later\n"),
    };
    let _ = stream.try_write(line.as_bytes());
    tracing::debug!(%peer, ?refusal, "submission connection refused");
}

/// One item read from the client.
enum Item {
    /// A complete line, without its line ending, as a range of the read buffer.
    Line(Range<usize>),
    /// A line over the limit; carries the echo of its start.
    TooLong(Vec<u8>),
}

/// Line framing over the read half, with a hard cap on line length.
struct Lines {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    max: usize,
    /// Inside an over-long line: bytes are dropped until its newline. Holds its echo.
    discarding: Option<Vec<u8>>,
    eof: bool,
}

impl Lines {
    /// Framing with a small buffer, enough for lines up to `max` (a token); [`Lines::grow`]
    /// makes it full size once the connection is admitted.
    fn new(max: usize) -> Lines {
        let max = max.clamp(1, READ_BUFFER / 2);
        Lines {
            // A complete line and its line ending always fit, so framing works the same.
            buf: vec![0; (max + 2).clamp(GREETING_BUFFER, READ_BUFFER)].into_boxed_slice(),
            start: 0,
            end: 0,
            max,
            discarding: None,
            eof: false,
        }
    }

    /// Moves to the full-size buffer, keeping what is buffered (flags a client sent right
    /// after its token).
    fn grow(&mut self) {
        if self.buf.len() >= READ_BUFFER {
            return;
        }
        let mut buf = vec![0; READ_BUFFER].into_boxed_slice();
        let kept = self.end - self.start;
        buf[..kept].copy_from_slice(&self.buf[self.start..self.end]);
        (self.buf, self.start, self.end) = (buf, 0, kept);
    }

    fn line(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// The next complete line already buffered.
    fn next(&mut self) -> Option<Item> {
        let window = &self.buf[self.start..self.end];
        if let Some(i) = window.iter().position(|&b| b == b'\n') {
            let line_start = self.start;
            self.start += i + 1;
            if let Some(echo) = self.discarding.take() {
                return Some(Item::TooLong(echo));
            }
            return Some(self.item(line_start..line_start + i));
        }
        if self.discarding.is_none() && self.end - self.start > self.max + 1 {
            self.discarding = Some(echo(&self.buf[self.start..self.start + ECHO_MAX.min(self.max)]).into_owned());
        }
        if self.discarding.is_some() {
            self.start = self.end;
            if self.eof {
                return self.discarding.take().map(Item::TooLong);
            }
            return None;
        }
        if self.eof && self.start < self.end {
            // The client closed after a last line without a newline: still a submission.
            let range = self.start..self.end;
            self.start = self.end;
            return Some(self.item(range));
        }
        None
    }

    fn item(&self, mut range: Range<usize>) -> Item {
        if range.end > range.start && self.buf[range.end - 1] == b'\r' {
            range.end -= 1;
        }
        if range.len() > self.max {
            Item::TooLong(echo(&self.buf[range.start..range.start + ECHO_MAX.min(self.max)]).into_owned())
        } else {
            Item::Line(range)
        }
    }

    /// Reads more bytes; `Ok(false)` at end of stream.
    async fn fill(&mut self, rd: &mut OwnedReadHalf) -> io::Result<bool> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = rd.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    /// The next line, reading as needed; `None` at end of stream.
    async fn read_item(&mut self, rd: &mut OwnedReadHalf) -> io::Result<Option<Item>> {
        loop {
            if let Some(item) = self.next() {
                return Ok(Some(item));
            }
            if self.eof {
                return Ok(None);
            }
            self.fill(rd).await?;
        }
    }
}

/// What is echoed before the code: the flag itself for anything flag-like; bytes that are not
/// printable ASCII become `?`, so binary input never reaches a client's terminal.
fn echo(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if line.iter().all(|b| (0x20..0x7f).contains(b)) {
        std::borrow::Cow::Borrowed(line)
    } else {
        std::borrow::Cow::Owned(line.iter().map(|&b| if (0x20..0x7f).contains(&b) { b } else { b'?' }).collect())
    }
}

fn write_answer(out: &mut Vec<u8>, echo: &[u8], answer: Answer) {
    crate::metrics::answered(answer);
    let reply = answer.reply();
    out.extend_from_slice(echo);
    out.push(b' ');
    out.extend_from_slice(reply.code.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reply.tcp.as_bytes());
    out.push(b'\n');
}

async fn send(wr: &mut OwnedWriteHalf, bytes: &[u8], state: &SubmissionState) -> io::Result<()> {
    match tokio::time::timeout(state.settings().idle_timeout, wr.write_all(bytes)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "client does not read its answers")),
    }
}

async fn identify(
    state: &SubmissionState,
    lines: &mut Lines,
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    peer: SocketAddr,
) -> io::Result<Option<TeamId>> {
    match state.inner.identify {
        Identify::Address => {
            let ip = match peer.ip() {
                IpAddr::V4(ip) => Some(ip),
                IpAddr::V6(ip) => ip.to_ipv4_mapped(),
            };
            match ip.and_then(|ip| state.team_by_address(ip)) {
                Some(team) => Ok(Some(team)),
                None => {
                    let msg = format!("Your address {} is in no team's network, goodbye\n", peer.ip());
                    send(wr, msg.as_bytes(), state).await?;
                    Ok(None)
                }
            }
        }
        Identify::Token => {
            // A backed-off address is refused before it may send a token.
            if let Some(wait) = state.backed_off(Some(peer.ip())) {
                let secs = gongfang_core::throttle::retry_after_secs(wait);
                let msg = format!("Too many wrong team tokens from your address, try again in {secs} s, goodbye\n");
                send(wr, msg.as_bytes(), state).await?;
                return Ok(None);
            }
            send(wr, format!("{TOKEN_GREETING}\n").as_bytes(), state).await?;
            let token = loop {
                let read = tokio::time::timeout(state.settings().token_timeout, lines.read_item(rd)).await;
                match read {
                    Err(_) => {
                        send(wr, b"Timed out waiting for the team token, goodbye\n", state).await?;
                        return Ok(None);
                    }
                    Ok(Ok(None)) => return Ok(None),
                    Ok(Ok(Some(Item::TooLong(_)))) => break None,
                    Ok(Ok(Some(Item::Line(r)))) => {
                        let line = lines.line(r);
                        if line.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        break std::str::from_utf8(line).ok().map(|t| t.trim().to_owned());
                    }
                    Ok(Err(e)) => return Err(e),
                }
            };
            // One token per connection: a wrong one closes it, and counts in the back-off.
            let team = match state.check_token(token.as_deref(), Some(peer.ip())).await {
                Ok(TokenCheck::Team(team)) => Some(team),
                Ok(TokenCheck::Wrong) => {
                    tracing::info!(%peer, "submission with an invalid team token");
                    send(wr, b"Invalid team token, goodbye\n", state).await?;
                    None
                }
                Ok(TokenCheck::Disabled(team)) => {
                    tracing::info!(%peer, team = team.0, "submission by a team taken out of the drill");
                    send(wr, DISABLED_TEAM.as_bytes(), state).await?;
                    None
                }
                Ok(TokenCheck::BackedOff(wait)) => {
                    let secs = gongfang_core::throttle::retry_after_secs(wait);
                    let msg = format!("Too many wrong team tokens from your address, try again in {secs} s, goodbye\n");
                    send(wr, msg.as_bytes(), state).await?;
                    None
                }
                Err(error) => {
                    tracing::error!(%error, "token verification failed");
                    send(wr, b"Internal error, try again later\n", state).await?;
                    None
                }
            };
            Ok(team)
        }
    }
}

async fn session(
    state: &SubmissionState,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
    admitted: Admitted,
) -> io::Result<()> {
    let settings = state.settings();
    let (mut rd, mut wr) = stream.into_split();
    let mut lines = Lines::new(settings.max_line);
    // Slots are given back before the client sees the close, so it may reconnect at once.
    let Some(team) = identify(state, &mut lines, &mut rd, &mut wr, peer).await? else {
        drop(admitted);
        let _ = wr.shutdown().await;
        return Ok(());
    };
    let Some(slot) = state.inner.connections.try_open(team) else {
        let msg = format!("Too many connections for your team (at most {}), goodbye\n", state.inner.connections.max());
        send(&mut wr, msg.as_bytes(), state).await?;
        drop(admitted);
        let _ = wr.shutdown().await;
        return Ok(());
    };
    // The team is known and within its cap: now the connection may hold a full buffer.
    lines.grow();
    let banner = match state.inner.identify {
        Identify::Address => format!("{}\n{BANNER_LAST_LINE}\n\n", settings.banner),
        Identify::Token => format!("{TOKEN_ACCEPTED}\n{BANNER_LAST_LINE}\n\n"),
    };
    send(&mut wr, banner.as_bytes(), state).await?;
    tracing::debug!(%peer, %team, "submission connection open");

    let window = settings.pipeline_window.max(1);
    let mut out: Vec<u8> = Vec::with_capacity(READ_BUFFER);
    let mut pending = Pending::default();
    let mut stopping = false;
    loop {
        // Classify everything already read, as far as the window allows. Lines of one read
        // share its clock reading and receive time.
        let clock = state.clock();
        let received = chrono::Utc::now();
        let deadline = tokio::time::Instant::now() + settings.answer_within;
        while pending.len() < window {
            let Some(item) = lines.next() else { break };
            let (echo_bytes, verdict) = match item {
                Item::Line(range) => {
                    let line = lines.line(range);
                    // Empty lines are keep-alives of some clients: no answer.
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let verdict = state.submit(team, line, clock, received).await;
                    (echo(line), verdict)
                }
                Item::TooLong(echo_bytes) => (echo_bytes.into(), Verdict::Now(Answer::TooLong)),
            };
            match verdict {
                Verdict::Now(answer) if pending.is_empty() => write_answer(&mut out, &echo_bytes, answer),
                verdict => pending.push(&echo_bytes, verdict, deadline),
            }
            if out.len() >= READ_BUFFER {
                send(&mut wr, &out, state).await?;
                out.clear();
            }
        }
        // Answer, in order, whatever is decided at the head of the queue.
        let now = tokio::time::Instant::now();
        while let Some((verdict, deadline)) = pending.front_mut() {
            let answer = match verdict {
                Verdict::Now(answer) => *answer,
                Verdict::Later(rx) => match rx.try_recv() {
                    Ok(answer) => answer,
                    Err(tokio::sync::oneshot::error::TryRecvError::Empty) if now >= deadline => Answer::Busy,
                    Err(tokio::sync::oneshot::error::TryRecvError::Empty) => break,
                    Err(tokio::sync::oneshot::error::TryRecvError::Closed) => Answer::Unavailable,
                },
            };
            pending.pop_front(&mut out, answer);
        }
        if !out.is_empty() {
            send(&mut wr, &out, state).await?;
            out.clear();
        }
        if (lines.eof || stopping) && pending.is_empty() {
            break;
        }
        let can_read = !lines.eof && !stopping && pending.len() < window;
        let idle = pending.is_empty();
        tokio::select! {
            answer = pending.head() => pending.pop_front(&mut out, answer),
            read = lines.fill(&mut rd), if can_read => { read?; }
            changed = stop.changed(), if !stopping => {
                // Also when the server is gone: finish what was read, then close.
                let _ = changed;
                stopping = true;
            }
            () = tokio::time::sleep(settings.idle_timeout), if idle => {
                tracing::debug!(%peer, "closing idle submission connection");
                break;
            }
        }
    }
    // The slot is free before the client sees the close, so a client that reconnects as soon
    // as it does is admitted.
    drop(slot);
    drop(admitted);
    let _ = wr.shutdown().await;
    Ok(())
}

/// Verdicts not answered yet, in submission order, with their echoes kept back to back in
/// one buffer: no allocation per flag.
#[derive(Default)]
struct Pending {
    echoes: Vec<u8>,
    /// Where the echo of the front entry starts.
    start: usize,
    /// Each entry's echo length, verdict, and when it is answered `Busy` if still undecided.
    entries: VecDeque<(usize, Verdict, tokio::time::Instant)>,
}

impl Pending {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn push(&mut self, echo: &[u8], verdict: Verdict, deadline: tokio::time::Instant) {
        self.echoes.extend_from_slice(echo);
        self.entries.push_back((echo.len(), verdict, deadline));
    }

    fn front_mut(&mut self) -> Option<(&mut Verdict, tokio::time::Instant)> {
        self.entries.front_mut().map(|(_, v, deadline)| (v, *deadline))
    }

    /// Writes the front entry's answer line to `out` and drops the entry.
    fn pop_front(&mut self, out: &mut Vec<u8>, answer: Answer) {
        let Some((len, _, _)) = self.entries.pop_front() else { return };
        write_answer(out, &self.echoes[self.start..self.start + len], answer);
        self.start += len;
        if self.entries.is_empty() {
            self.echoes.clear();
            self.start = 0;
        } else if self.start >= READ_BUFFER && self.start * 2 >= self.echoes.len() {
            // Under steady pipelining the queue never empties: reclaim the answered part.
            self.echoes.drain(..self.start);
            self.start = 0;
        }
    }

    /// Resolves with the answer of the front entry once its commit is done, or with
    /// [`Answer::Busy`] at its deadline: a farm stops waiting soon after.
    async fn head(&mut self) -> Answer {
        match self.entries.front_mut() {
            Some((_, Verdict::Later(rx), deadline)) => match tokio::time::timeout_at(*deadline, rx).await {
                Ok(answer) => answer.unwrap_or(Answer::Unavailable),
                Err(_) => Answer::Busy,
            },
            Some((_, Verdict::Now(answer), _)) => *answer,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_start_small_and_keep_what_is_buffered_when_grown() {
        let mut lines = Lines::new(256);
        assert_eq!(lines.buf.len(), GREETING_BUFFER);
        lines.buf[..11].copy_from_slice(b"token\nflag\n");
        lines.end = 11;
        let Some(Item::Line(token)) = lines.next() else { panic!("a line") };
        assert_eq!(lines.line(token), b"token");
        lines.grow();
        assert_eq!(lines.buf.len(), READ_BUFFER);
        let Some(Item::Line(flag)) = lines.next() else { panic!("a line") };
        assert_eq!(lines.line(flag), b"flag");
    }

    #[test]
    fn echo_keeps_flags_and_masks_binary() {
        assert_eq!(&*echo(b"GONGFANG{abc-_}"), b"GONGFANG{abc-_}");
        assert_eq!(&*echo(b"a\0b\xffc"), b"a?b?c");
    }
}
