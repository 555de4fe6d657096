//! The drill's WireGuard gateway: one interface on the host (or in a network namespace), run by
//! the kernel's WireGuard when it has one and by `wireguard-go` otherwise, configured with `wg`
//! and `ip`; its peers added, removed and rotated, and their last handshakes read.

use std::fmt;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gongfang_core::Secret;
use ipnet::Ipv4Net;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Error;
use crate::keys::{PresharedKey, PrivateKey, PublicKey};

/// Where `wireguard-go` (and `wg`) keep an interface's control socket.
const SOCKET_DIR: &str = "/var/run/wireguard";
/// How long `wireguard-go` may take to create its interface, and to leave after being asked.
const START_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of `wireguard-go`'s error output is kept for an error message.
const STDERR_KEPT: usize = 4096;

/// Which WireGuard runs the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The kernel's module (`ip link add … type wireguard`).
    Kernel,
    /// `wireguard-go`, a process the gateway runs and owns, over a TUN device.
    Userspace,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Kernel => "kernel WireGuard",
            Backend::Userspace => "userspace wireguard-go",
        })
    }
}

/// Which WireGuard to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// The kernel's when `ip link add … type wireguard` works, `wireguard-go` otherwise.
    #[default]
    Auto,
    /// Always `wireguard-go`.
    Userspace,
}

/// The programs the gateway runs, by name on `PATH` or by path.
#[derive(Debug, Clone)]
pub struct Programs {
    pub wireguard_go: PathBuf,
    pub wg: PathBuf,
    pub ip: PathBuf,
}

impl Default for Programs {
    fn default() -> Programs {
        Programs { wireguard_go: "wireguard-go".into(), wg: "wg".into(), ip: "ip".into() }
    }
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The interface's name: at most 15 letters, digits or `_=+.-`.
    pub interface: String,
    /// A network namespace (`ip netns`) to put the interface in; the host's when `None`.
    pub namespace: Option<String>,
    pub private_key: PrivateKey,
    /// The UDP port WireGuard listens on, on every address of the host; 0 picks a free one
    /// (read it back with [`Gateway::listen_port`]).
    pub listen_port: u16,
    /// The gateway's tunnel address with the VPN range's prefix (e.g. `10.80.0.1/16`), so the
    /// host routes the whole range into the tunnel.
    pub address: Ipv4Net,
    pub backend: BackendChoice,
    pub programs: Programs,
}

/// A peer as the gateway knows it: its public key, the tunnel addresses it may use, and the
/// preshared key if it has one.
#[derive(Debug, Clone)]
pub struct GatewayPeer {
    pub public_key: PublicKey,
    pub preshared_key: Option<PresharedKey>,
    pub addresses: Vec<Ipv4Addr>,
}

/// What the gateway knows of a peer now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub public_key: PublicKey,
    /// Where the peer's packets last came from.
    pub endpoint: Option<SocketAddr>,
    pub allowed_ips: Vec<Ipv4Net>,
    /// The last completed handshake; `None` if the peer never connected.
    pub latest_handshake: Option<SystemTime>,
    pub received_bytes: u64,
    pub sent_bytes: u64,
}

/// A running gateway. [`Gateway::stop`] removes its interface and ends its process; dropping
/// it does the same, as a fallback.
#[derive(Debug)]
pub struct Gateway {
    interface: String,
    namespace: Option<String>,
    programs: Programs,
    backend: Backend,
    listen_port: u16,
    process: Option<Child>,
    stderr: Arc<Mutex<String>>,
    stopped: bool,
}

impl Gateway {
    /// Creates the interface, gives it the private key, port and address, and brings it up.
    /// On any failure, what was already made is removed again.
    pub fn start(config: GatewayConfig) -> Result<Gateway, Error> {
        check_name("interface", &config.interface, 15)?;
        if let Some(namespace) = &config.namespace {
            check_name("network namespace", namespace, 255)?;
        }
        find_program(&config.programs.ip, "iproute2")?;
        find_program(&config.programs.wg, "wireguard-tools")?;
        if config.backend == BackendChoice::Userspace {
            find_program(&config.programs.wireguard_go, "wireguard-go")?;
        }
        let mut gateway = Gateway {
            interface: config.interface.clone(),
            namespace: config.namespace.clone(),
            programs: config.programs.clone(),
            backend: Backend::Userspace,
            listen_port: config.listen_port,
            process: None,
            // Nothing is made yet: dropping the gateway on an early error removes nothing.
            stderr: Arc::new(Mutex::new(String::new())),
            stopped: true,
        };
        if gateway.interface_exists() {
            return Err(Error::InterfaceExists(config.interface));
        }
        gateway.backend = match config.backend {
            BackendChoice::Auto if gateway.try_kernel()? => Backend::Kernel,
            _ => {
                find_program(&config.programs.wireguard_go, "wireguard-go")?;
                Backend::Userspace
            }
        };
        gateway.stopped = false;
        if gateway.backend == Backend::Userspace {
            gateway.spawn_userspace()?;
        }
        let settings = format!(
            "[Interface]\nPrivateKey = {}\nListenPort = {}\n",
            config.private_key.to_base64().expose(),
            config.listen_port
        );
        gateway.wg(&["setconf", &config.interface, "/dev/stdin"], Some(&Secret::new(settings)))?;
        gateway.ip(&["address", "add", &config.address.to_string(), "dev", &config.interface])?;
        gateway.ip(&["link", "set", "dev", &config.interface, "up"])?;
        let port = gateway.wg(&["show", &config.interface, "listen-port"], None)?;
        gateway.listen_port = port.trim().parse().map_err(|_| Error::Status {
            interface: config.interface.clone(),
            why: format!("listen port {:?} is not a number", port.trim()),
        })?;
        tracing::info!(
            interface = %gateway.interface,
            namespace = gateway.namespace.as_deref().unwrap_or("host"),
            backend = %gateway.backend,
            port = gateway.listen_port,
            address = %config.address,
            "WireGuard gateway up"
        );
        Ok(gateway)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The UDP port the gateway listens on.
    pub fn listen_port(&self) -> u16 {
        self.listen_port
    }

    /// Adds a peer, or replaces the addresses and preshared key of one already there.
    pub fn add_peer(&self, peer: &GatewayPeer) -> Result<(), Error> {
        self.set_peers(None, peer)
    }

    /// Removes a peer: its tunnel stops at once. Removing a peer the gateway does not have is
    /// not an error.
    pub fn remove_peer(&self, public_key: &PublicKey) -> Result<(), Error> {
        self.wg(&["set", &self.interface, "peer", &public_key.to_string(), "remove"], None)?;
        Ok(())
    }

    /// Replaces a peer's keys in one step: from then on the old key is refused and the new
    /// one works, with the addresses given.
    pub fn rotate_peer(&self, old: &PublicKey, new: &GatewayPeer) -> Result<(), Error> {
        self.set_peers(Some(old), new)
    }

    /// One `wg set`: the preshared key goes through stdin, and the allowed addresses given
    /// replace the peer's earlier ones.
    fn set_peers(&self, remove: Option<&PublicKey>, peer: &GatewayPeer) -> Result<(), Error> {
        let removed = remove.map(ToString::to_string);
        let public_key = peer.public_key.to_string();
        let addresses = peer.addresses.iter().map(|a| format!("{a}/32")).collect::<Vec<_>>().join(",");
        let mut args = vec!["set", self.interface.as_str()];
        if let Some(removed) = &removed {
            args.extend(["peer", removed.as_str(), "remove"]);
        }
        args.extend(["peer", public_key.as_str(), "allowed-ips", addresses.as_str()]);
        let psk = peer.preshared_key.as_ref().map(PresharedKey::to_base64);
        // An empty file (/dev/null) clears a preshared key the peer had.
        args.extend(["preshared-key", if psk.is_some() { "/dev/stdin" } else { "/dev/null" }]);
        self.wg(&args, psk.as_ref())?;
        Ok(())
    }

    /// Every peer and its last handshake, from `wg show INTERFACE dump`.
    pub fn peers(&self) -> Result<Vec<PeerStatus>, Error> {
        // The dump's first line holds the gateway's private key: keep it out of every log.
        let dump = Secret::new(self.wg(&["show", &self.interface, "dump"], None)?);
        parse_dump(dump.expose()).map_err(|why| Error::Status { interface: self.interface.clone(), why })
    }

    /// Removes the interface and ends the `wireguard-go` process.
    pub fn stop(mut self) -> Result<(), Error> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), Error> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let mut first_error = None;
        if let Some(mut child) = self.process.take() {
            // wireguard-go removes its interface and socket when asked to leave.
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            let deadline = Instant::now() + STOP_TIMEOUT;
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                    _ => {
                        tracing::warn!(interface = %self.interface, "wireguard-go did not leave when asked; killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        if self.interface_exists()
            && let Err(error) = self.ip(&["link", "del", "dev", &self.interface])
        {
            first_error = Some(error);
        }
        if self.backend == Backend::Userspace {
            let socket = Path::new(SOCKET_DIR).join(format!("{}.sock", self.interface));
            let _ = std::fs::remove_file(socket);
        }
        tracing::info!(interface = %self.interface, "WireGuard gateway stopped");
        first_error.map_or(Ok(()), Err)
    }

    fn try_kernel(&self) -> Result<bool, Error> {
        match self.ip(&["link", "add", "dev", &self.interface, "type", "wireguard"]) {
            Ok(_) => Ok(true),
            Err(Error::Command { stderr, .. })
                if stderr.contains("Unknown device type")
                    || stderr.contains("Not supported")
                    || stderr.contains("not supported") =>
            {
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    fn spawn_userspace(&mut self) -> Result<(), Error> {
        let mut command = self.command(&self.programs.wireguard_go.clone());
        command
            .args(["-f", &self.interface])
            .env("WG_PROCESS_FOREGROUND", "1")
            .env("LOG_LEVEL", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|source| spawn_error(&self.programs.wireguard_go, source))?;
        if let Some(stderr) = child.stderr.take() {
            let kept = Arc::clone(&self.stderr);
            let interface = self.interface.clone();
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    tracing::warn!(interface = %interface, "wireguard-go: {line}");
                    if let Ok(mut kept) = kept.lock() {
                        kept.push_str(&line);
                        kept.push('\n');
                        if kept.len() > STDERR_KEPT {
                            let cut = kept.len() - STDERR_KEPT;
                            let cut = (cut..kept.len()).find(|i| kept.is_char_boundary(*i)).unwrap_or(cut);
                            kept.drain(..cut);
                        }
                    }
                }
            });
        }
        self.process = Some(child);
        let socket = Path::new(SOCKET_DIR).join(format!("{}.sock", self.interface));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.process.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.process = None;
                // Let the reader thread take the last lines.
                thread::sleep(Duration::from_millis(50));
                let stderr = self.stderr.lock().map(|s| s.trim().to_owned()).unwrap_or_default();
                return Err(Error::Exited { interface: self.interface.clone(), status: describe(status), stderr });
            }
            if socket.exists() && self.interface_exists() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout { interface: self.interface.clone(), seconds: START_TIMEOUT.as_secs() });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn interface_exists(&self) -> bool {
        self.command(&self.programs.ip)
            .args(["link", "show", "dev", &self.interface])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn wg(&self, args: &[&str], stdin: Option<&Secret<String>>) -> Result<String, Error> {
        run(self.command(&self.programs.wg), &self.programs.wg, args, stdin)
    }

    fn ip(&self, args: &[&str]) -> Result<String, Error> {
        run(self.command(&self.programs.ip), &self.programs.ip, args, None)
    }

    /// A command run in the gateway's namespace.
    fn command(&self, program: &Path) -> Command {
        match &self.namespace {
            Some(namespace) => {
                let mut command = Command::new(&self.programs.ip);
                command.args(["netns", "exec", namespace]).arg(program);
                command
            }
            None => Command::new(program),
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Err(error) = self.shut_down() {
            tracing::warn!(interface = %self.interface, "removing the WireGuard gateway: {error}");
        }
    }
}

/// The name of a drill's gateway interface: `gf-` and the drill's slug when that fits in the 15
/// characters an interface name may have, otherwise `gf-`, the slug's start and a hash of the
/// whole slug, so two drills on one host never share an interface. The same slug always gives
/// the same name, so any command can find the gateway `gongfang up` started.
pub fn interface_name(drill_slug: &str) -> String {
    let clean: String =
        drill_slug.chars().map(|c| if c.is_ascii_alphanumeric() || "_=+.-".contains(c) { c } else { '_' }).collect();
    if clean.len() <= 12 && !clean.is_empty() {
        return format!("gf-{clean}");
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash =
        drill_slug.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let start: String = clean.chars().take(6).collect();
    format!("gf-{start}-{:05x}", hash & 0xf_ffff)
}

/// The peers of a WireGuard interface this process did not start, e.g. a drill's gateway that
/// `gongfang up` runs, read by another command: `None` when the interface does not exist here.
pub fn read_interface(
    interface: &str,
    namespace: Option<&str>,
    programs: &Programs,
) -> Result<Option<Vec<PeerStatus>>, Error> {
    if !foreign_interface_exists(interface, namespace, programs)? {
        return Ok(None);
    }
    find_program(&programs.wg, "wireguard-tools")?;
    let command = in_namespace(namespace, programs, &programs.wg);
    // The dump's first line holds the interface's private key: keep it out of every log.
    let dump = Secret::new(run(command, &programs.wg, &["show", interface, "dump"], None)?);
    parse_dump(dump.expose()).map(Some).map_err(|why| Error::Status { interface: interface.to_owned(), why })
}

/// Changes the peers of a WireGuard interface this process did not start, e.g. a drill's
/// gateway that `gongfang up` runs, when another command issues or rotates keys: the keys in
/// `remove` are refused from then on and the peers in `add` work, in one `wg set` (a preshared
/// key, through stdin, in one more per peer that has one). `false` when the interface does not
/// exist here.
pub fn update_interface(
    interface: &str,
    namespace: Option<&str>,
    programs: &Programs,
    remove: &[PublicKey],
    add: &[GatewayPeer],
) -> Result<bool, Error> {
    if !foreign_interface_exists(interface, namespace, programs)? {
        return Ok(false);
    }
    find_program(&programs.wg, "wireguard-tools")?;
    let mut args: Vec<String> = vec!["set".to_owned(), interface.to_owned()];
    for key in remove {
        args.extend([String::from("peer"), key.to_string(), String::from("remove")]);
    }
    for peer in add {
        let addresses = peer.addresses.iter().map(|a| format!("{a}/32")).collect::<Vec<_>>().join(",");
        args.extend([String::from("peer"), peer.public_key.to_string(), String::from("allowed-ips"), addresses]);
        if peer.preshared_key.is_none() {
            args.extend([String::from("preshared-key"), String::from("/dev/null")]);
        }
    }
    let shown: Vec<&str> = args.iter().map(String::as_str).collect();
    run(in_namespace(namespace, programs, &programs.wg), &programs.wg, &shown, None)?;
    for peer in add {
        if let Some(psk) = &peer.preshared_key {
            let key = peer.public_key.to_string();
            let args = ["set", interface, "peer", key.as_str(), "preshared-key", "/dev/stdin"];
            run(in_namespace(namespace, programs, &programs.wg), &programs.wg, &args, Some(&psk.to_base64()))?;
        }
    }
    Ok(true)
}

/// Removes a WireGuard interface left behind, e.g. by a drill whose platform was killed:
/// deleting the link ends a `wireguard-go` serving it; its control socket goes too. `false`
/// when there was no such interface.
pub fn remove_interface(interface: &str, namespace: Option<&str>, programs: &Programs) -> Result<bool, Error> {
    if !foreign_interface_exists(interface, namespace, programs)? {
        return Ok(false);
    }
    run(in_namespace(namespace, programs, &programs.ip), &programs.ip, &["link", "del", "dev", interface], None)?;
    // wireguard-go leaves once its device is gone and removes its socket; a socket it could
    // not remove (it was killed) is removed here.
    let socket = Path::new(SOCKET_DIR).join(format!("{interface}.sock"));
    let deadline = Instant::now() + STOP_TIMEOUT;
    while socket.exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(&socket);
    tracing::info!(interface, "leftover WireGuard interface removed");
    Ok(true)
}

fn foreign_interface_exists(interface: &str, namespace: Option<&str>, programs: &Programs) -> Result<bool, Error> {
    check_name("interface", interface, 15)?;
    if let Some(namespace) = namespace {
        check_name("network namespace", namespace, 255)?;
    }
    find_program(&programs.ip, "iproute2")?;
    Ok(in_namespace(namespace, programs, &programs.ip)
        .args(["link", "show", "dev", interface])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success()))
}

/// `program` run in `namespace` (with `ip netns exec`), or on the host.
fn in_namespace(namespace: Option<&str>, programs: &Programs, program: &Path) -> Command {
    match namespace {
        Some(namespace) => {
            let mut command = Command::new(&programs.ip);
            command.args(["netns", "exec", namespace]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// Runs one command; secrets go through stdin only, so the command line in an error or a
/// process list never holds one.
fn run(mut command: Command, program: &Path, args: &[&str], stdin: Option<&Secret<String>>) -> Result<String, Error> {
    command.args(args).stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|source| spawn_error(program, source))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A command that fails early closes its stdin; its status and stderr say why.
        let _ = pipe.write_all(text.expose().as_bytes());
    }
    let output = child.wait_with_output().map_err(|source| spawn_error(program, source))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    let hint = if stderr.contains("Operation not permitted") || stderr.contains("Permission denied") {
        " (changing network interfaces needs root or CAP_NET_ADMIN)"
    } else {
        ""
    };
    let shown: Vec<&str> = args.iter().map(|a| if a.is_empty() { "\"\"" } else { a }).collect();
    Err(Error::Command {
        command: format!("{} {}", program.display(), shown.join(" ")),
        status: describe(output.status),
        stderr,
        hint,
    })
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_owned(),
    }
}

fn spawn_error(program: &Path, source: std::io::Error) -> Error {
    Error::Spawn { program: program.display().to_string(), source }
}

/// Finds a program the way `Command` will, so a missing one is told with what installs it.
pub(crate) fn find_program(program: &Path, package: &'static str) -> Result<PathBuf, Error> {
    let missing = || Error::ProgramMissing { program: program.display().to_string(), package };
    if program.components().count() > 1 {
        return if program.is_file() { Ok(program.to_owned()) } else { Err(missing()) };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file()).ok_or_else(missing)
}

pub(crate) fn check_name(what: &'static str, name: &str, longest: usize) -> Result<(), Error> {
    let why = if name.is_empty() || name.len() > longest {
        Some(if longest == 15 { "it must have 1 to 15 characters" } else { "it must not be empty or that long" })
    } else if name == "." || name == ".." {
        Some("it must not be . or ..")
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || "_=+.-".contains(c)) {
        Some("use only letters, digits and _=+.-")
    } else if name.starts_with('-') {
        Some("it must not start with -")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::Name { what, name: name.to_owned(), why }),
        None => Ok(()),
    }
}

/// Reads `wg show INTERFACE dump`: a line for the interface (skipped: it holds the private
/// key), then per peer: public key, preshared key (skipped), endpoint, allowed IPs, latest
/// handshake (Unix seconds, 0 for never), bytes received, bytes sent, keep-alive.
fn parse_dump(dump: &str) -> Result<Vec<PeerStatus>, String> {
    let mut peers = Vec::new();
    for (number, line) in dump.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [public_key, _preshared, endpoint, allowed, handshake, received, sent, _keepalive] = fields[..] else {
            return Err(format!("line {} has {} fields, not 8", number + 1, fields.len()));
        };
        let bad = |what: &str| format!("line {}: unreadable {what}", number + 1);
        let endpoint = match endpoint {
            "(none)" => None,
            text => Some(text.parse().map_err(|_| bad("endpoint"))?),
        };
        let allowed_ips = match allowed {
            "(none)" => Vec::new(),
            text => text
                .split(',')
                .filter_map(|net| {
                    // The gateway routes IPv4 only; an IPv6 route someone added by hand is left out.
                    if net.contains(':') { None } else { Some(net.parse().map_err(|_| bad("allowed IPs"))) }
                })
                .collect::<Result<_, _>>()?,
        };
        let seconds: u64 = handshake.parse().map_err(|_| bad("handshake time"))?;
        peers.push(PeerStatus {
            public_key: public_key.parse().map_err(|_| bad("public key"))?,
            endpoint,
            allowed_ips,
            latest_handshake: (seconds > 0).then(|| UNIX_EPOCH + Duration::from_secs(seconds)),
            received_bytes: received.parse().map_err(|_| bad("byte count"))?,
            sent_bytes: sent.parse().map_err(|_| bad("byte count"))?,
        });
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(programs: Programs) -> GatewayConfig {
        GatewayConfig {
            interface: "gfunit0".to_owned(),
            namespace: None,
            private_key: PrivateKey::generate(),
            listen_port: 0,
            address: "10.80.0.1/16".parse().unwrap(),
            backend: BackendChoice::Userspace,
            programs,
        }
    }

    #[test]
    fn a_missing_wireguard_go_says_what_to_install() {
        let programs = Programs { wireguard_go: "/nonexistent/wireguard-go".into(), ..Programs::default() };
        let mut config = config(programs);
        // Checked before anything else: true on a machine without wg and ip as well.
        config.programs.wg = "/bin/sh".into();
        config.programs.ip = "/bin/sh".into();
        let error = Gateway::start(config).unwrap_err();
        assert_eq!(
            error.to_string(),
            "/nonexistent/wireguard-go not found: install Debian's wireguard-go package (apt-get install wireguard-go)"
        );
    }

    #[test]
    fn interface_names_wg_would_refuse_are_refused_first() {
        for name in ["", "a-name-longer-than-15", "gf 0", "gf/0", "..", "-f"] {
            let mut config = config(Programs::default());
            config.interface = name.to_owned();
            let error = Gateway::start(config).unwrap_err();
            assert!(matches!(error, Error::Name { what: "interface", .. }), "{name:?}: {error}");
        }
    }

    #[test]
    fn interface_names_fit_and_stay_apart() {
        assert_eq!(interface_name("demo"), "gf-demo");
        assert_eq!(interface_name("kv-demo-2026"), "gf-kv-demo-2026", "12 characters still fit whole");
        let long = interface_name("national-drill-2026");
        let other = interface_name("national-drill-2027");
        assert!(long.len() <= 15 && other.len() <= 15, "{long} {other}");
        assert!(long.starts_with("gf-nation"), "{long}");
        assert_ne!(long, other, "two long slugs with the same start share an interface");
        assert_eq!(long, interface_name("national-drill-2026"), "the name is a function of the slug");
        for slug in ["demo", "national-drill-2026", "a"] {
            check_name("interface", &interface_name(slug), 15).unwrap();
        }
    }

    #[test]
    fn reading_an_interface_that_is_not_there_is_none() {
        if find_program(Path::new("ip"), "iproute2").is_err() {
            eprintln!("skipped: ip is not installed (Debian's iproute2)");
            return;
        }
        assert_eq!(read_interface("gfnothere0", None, &Programs::default()).unwrap(), None);
        assert!(!remove_interface("gfnothere0", None, &Programs::default()).unwrap());
        assert!(!update_interface("gfnothere0", None, &Programs::default(), &[], &[]).unwrap());
        let error = read_interface("bad name", None, &Programs::default()).unwrap_err();
        assert!(matches!(error, Error::Name { .. }), "{error}");
    }

    #[test]
    fn reads_peers_from_a_dump_without_keeping_secrets() {
        let a = PrivateKey::from_bytes([7; 32]).public_key();
        let b = PrivateKey::from_bytes([8; 32]).public_key();
        let dump = format!(
            "cHJpdmF0ZWtleXByaXZhdGVrZXlwcml2YXRla2V5eHg=\t{a}\t51820\toff\n\
             {a}\tcHNrcHNrcHNrcHNrcHNrcHNrcHNrcHNrcHNrcHNrcHM=\t192.0.2.2:40000\t10.80.0.4/32,10.80.0.5/32\t1764460800\t1184\t920\t25\n\
             {b}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n"
        );
        let peers = parse_dump(&dump).unwrap();
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0].public_key, a);
        assert_eq!(peers[0].endpoint, Some("192.0.2.2:40000".parse().unwrap()));
        assert_eq!(peers[0].allowed_ips.len(), 2);
        assert_eq!(peers[0].latest_handshake, Some(UNIX_EPOCH + Duration::from_secs(1_764_460_800)));
        assert_eq!((peers[0].received_bytes, peers[0].sent_bytes), (1184, 920));
        assert_eq!(
            peers[1],
            PeerStatus {
                public_key: b,
                endpoint: None,
                allowed_ips: Vec::new(),
                latest_handshake: None,
                received_bytes: 0,
                sent_bytes: 0
            }
        );
        let shown = format!("{peers:?}");
        assert!(!shown.contains("cHJpdmF0ZWtleX") && !shown.contains("cHNrcHNr"));
        assert!(parse_dump("header\nnot\ta\tpeer\n").unwrap_err().contains("line 2"));
    }
}
