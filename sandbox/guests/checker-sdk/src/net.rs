//! A TCP client with timeouts on every step, speaking lines or raw bytes.
//!
//! Built directly on `wasi:sockets` and `wasi:io/poll`, so every wait has a deadline: a
//! service that accepts and never answers is `down`, not a hung checker. Errors come back as
//! [`Failure`]s that blame the service the right way: cannot connect, reset or timed out is
//! `down`; an answer that is not what the protocol says is `mumble`.

use std::net::SocketAddr;
use std::time::Duration;

use wasip2::clocks::monotonic_clock;
use wasip2::io::poll::{Pollable, poll};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress};
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::tcp_create_socket::create_tcp_socket;

use crate::outcome::unexpected;
use crate::{Ctx, Failure, Outcome};

/// How long one connect, read or write may wait unless changed with [`TcpConn::set_timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest line [`TcpConn::read_line`] accepts before calling the answer garbage.
pub const MAX_LINE: usize = 64 * 1024;

/// An open TCP connection to the target.
#[derive(Debug)]
pub struct TcpConn {
    // Field order is drop order: the streams are children of the socket and must go first.
    input: InputStream,
    output: OutputStream,
    _socket: TcpSocket,
    buf: Vec<u8>,
    timeout: Duration,
    peer: SocketAddr,
}

/// A point on the monotonic clock, in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Deadline(u64);

impl Deadline {
    fn after(timeout: Duration) -> Deadline {
        Deadline(monotonic_clock::now().saturating_add(timeout.as_nanos().min(u64::MAX as u128) as u64))
    }

    /// Waits until `pollable` is ready; false when the deadline passed first.
    fn wait(self, pollable: &Pollable) -> bool {
        let now = monotonic_clock::now();
        if now >= self.0 {
            return pollable.ready();
        }
        let timer = monotonic_clock::subscribe_duration(self.0 - now);
        poll(&[pollable, &timer]).contains(&0)
    }
}

fn to_wasi(addr: SocketAddr) -> (IpAddressFamily, IpSocketAddress) {
    match addr {
        SocketAddr::V4(v4) => {
            let [a, b, c, d] = v4.ip().octets();
            (
                IpAddressFamily::Ipv4,
                IpSocketAddress::Ipv4(Ipv4SocketAddress { port: v4.port(), address: (a, b, c, d) }),
            )
        }
        SocketAddr::V6(v6) => {
            let s = v6.ip().segments();
            (
                IpAddressFamily::Ipv6,
                IpSocketAddress::Ipv6(Ipv6SocketAddress {
                    port: v6.port(),
                    flow_info: 0,
                    address: (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
                    scope_id: 0,
                }),
            )
        }
    }
}

fn connect_failure(peer: SocketAddr, code: ErrorCode) -> Failure {
    match code {
        // The sandbox refused: the checker tried to reach something it must not. That is a bug
        // in the checker, never the team's fault.
        ErrorCode::AccessDenied | ErrorCode::NotSupported => {
            panic!("the sandbox does not allow connecting to {peer}: {code:?}")
        }
        ErrorCode::ConnectionRefused => Failure::down(format!("port {} refuses connections", peer.port())),
        ErrorCode::Timeout => Failure::down(format!("connecting to port {} timed out", peer.port())),
        other => Failure::down(format!("cannot connect to port {}", peer.port()))
            .with_private(format!("connect {peer}: {other:?}")),
    }
}

impl TcpConn {
    /// Connects to the target's `port`.
    pub fn connect(ctx: &Ctx, port: u16) -> Outcome<TcpConn> {
        TcpConn::connect_addr(SocketAddr::new(ctx.address, port), DEFAULT_TIMEOUT)
    }

    /// Connects to any address. The sandbox lets only the target's address and the service's
    /// ports through; anything else is a checker bug and ends as `checker-error`.
    pub fn connect_addr(peer: SocketAddr, timeout: Duration) -> Outcome<TcpConn> {
        let (family, remote) = to_wasi(peer);
        let socket = create_tcp_socket(family)
            .unwrap_or_else(|code| panic!("the sandbox gives no TCP socket: {code:?}"));
        let network = instance_network();
        socket.start_connect(&network, remote).map_err(|code| connect_failure(peer, code))?;
        let deadline = Deadline::after(timeout);
        let (input, output) = loop {
            let ready = {
                let pollable = socket.subscribe();
                deadline.wait(&pollable)
            };
            if !ready {
                return Err(Failure::down(format!("connecting to port {} timed out", peer.port())));
            }
            match socket.finish_connect() {
                Ok(streams) => break streams,
                Err(ErrorCode::WouldBlock) => continue,
                Err(code) => return Err(connect_failure(peer, code)),
            }
        };
        Ok(TcpConn { input, output, _socket: socket, buf: Vec::new(), timeout, peer })
    }

    /// Changes how long each later read or write may wait.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The address this connection goes to.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Sends all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) -> Outcome<()> {
        let deadline = Deadline::after(self.timeout);
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = self.writable(deadline)?;
            let n = rest.len().min(room);
            self.output.write(&rest[..n]).map_err(|e| self.io_failure("sending", e))?;
            rest = &rest[n..];
        }
        self.output.flush().map_err(|e| self.io_failure("sending", e))?;
        // Waiting for room again is how a flush completes in wasi:io.
        self.writable(deadline)?;
        Ok(())
    }

    /// Sends `line` followed by a newline.
    pub fn send_line(&mut self, line: &str) -> Outcome<()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.send(&bytes)
    }

    fn writable(&mut self, deadline: Deadline) -> Outcome<usize> {
        loop {
            match self.output.check_write() {
                Ok(0) => {}
                Ok(n) => return Ok(n.min(1 << 20) as usize),
                Err(e) => return Err(self.io_failure("sending", e)),
            }
            let ready = {
                let pollable = self.output.subscribe();
                deadline.wait(&pollable)
            };
            if !ready {
                return Err(Failure::down("the service stopped reading our request"));
            }
        }
    }

    /// Reads more bytes into the buffer. False at end of stream.
    fn fill(&mut self, deadline: Deadline, waiting_for: &str) -> Outcome<bool> {
        loop {
            match self.input.read(64 * 1024) {
                Ok(bytes) if bytes.is_empty() => {}
                Ok(bytes) => {
                    self.buf.extend_from_slice(&bytes);
                    return Ok(true);
                }
                Err(StreamError::Closed) => return Ok(false),
                Err(e) => return Err(self.io_failure(waiting_for, e)),
            }
            let ready = {
                let pollable = self.input.subscribe();
                deadline.wait(&pollable)
            };
            if !ready {
                return Err(Failure::down(format!("timed out waiting for {waiting_for}")));
            }
        }
    }

    fn io_failure(&self, doing: &str, e: StreamError) -> Failure {
        let detail = match &e {
            StreamError::LastOperationFailed(err) => err.to_debug_string(),
            StreamError::Closed => "closed".to_owned(),
        };
        Failure::down(format!("connection lost while {doing}"))
            .with_private(format!("{} while {doing}: {detail}", self.peer))
    }

    /// Reads up to and including `delim`, returning what came before it. Answers longer than
    /// `max` bytes, or a connection closed before `delim`, are `mumble`.
    pub fn read_until(&mut self, delim: &[u8], max: usize, what: &str) -> Outcome<Vec<u8>> {
        let deadline = Deadline::after(self.timeout);
        let mut searched = 0;
        loop {
            if let Some(pos) = find(&self.buf[searched..], delim) {
                let end = searched + pos;
                let mut head: Vec<u8> = self.buf.drain(..end + delim.len()).collect();
                head.truncate(end);
                return Ok(head);
            }
            if self.buf.len() > max {
                return Err(unexpected(what, &self.buf[..200.min(self.buf.len())]).with_private("answer too long"));
            }
            searched = self.buf.len().saturating_sub(delim.len() - 1);
            if !self.fill(deadline, what)? {
                return Err(Failure::mumble(format!("connection closed while waiting for {what}"))
                    .with_private(format!("partial answer: {:?}", String::from_utf8_lossy(&self.buf))));
            }
        }
    }

    /// Reads one line (without its `\n` or `\r\n`).
    pub fn read_line(&mut self) -> Outcome<String> {
        let mut line = self.read_until(b"\n", MAX_LINE, "an answer")?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        String::from_utf8(line).map_err(|e| unexpected("a text line", e.as_bytes()))
    }

    /// Reads a line and fails with `mumble` unless it equals `expected`.
    pub fn expect_line(&mut self, expected: &str) -> Outcome<()> {
        let line = self.read_line()?;
        if line == expected {
            Ok(())
        } else {
            Err(Failure::mumble(format!("expected {expected:?} from the service"))
                .with_private(format!("expected {expected:?}, got {line:?}")))
        }
    }

    /// Reads exactly `n` bytes.
    pub fn read_exact(&mut self, n: usize, what: &str) -> Outcome<Vec<u8>> {
        let deadline = Deadline::after(self.timeout);
        while self.buf.len() < n {
            if !self.fill(deadline, what)? {
                return Err(Failure::mumble(format!("connection closed in the middle of {what}")));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads until the service closes the connection; more than `max` bytes is `mumble`.
    pub fn read_to_end(&mut self, max: usize, what: &str) -> Outcome<Vec<u8>> {
        let deadline = Deadline::after(self.timeout);
        while self.fill(deadline, what)? {
            if self.buf.len() > max {
                return Err(Failure::mumble(format!("{what} is too long")));
            }
        }
        Ok(std::mem::take(&mut self.buf))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The target's address with `port`, for messages and [`TcpConn::connect_addr`].
pub fn target(ctx: &Ctx, port: u16) -> SocketAddr {
    SocketAddr::new(ctx.address, port)
}
