//! A team's machine in tests: a network namespace joined to the host by a veth pair, which
//! brings its WireGuard tunnel up with `wg-quick` on an unmodified config file, as a team
//! would, and connects from inside. Everything it made goes when it is dropped, also after a
//! failed assertion.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, ensure};
use nix::sched::{CloneFlags, setns};

/// Set to `1` to make a missing prerequisite (root, `wireguard-go`, `wg-quick`, `ip`) a
/// failure instead of a skip, as CI does.
pub const REQUIRE_VPN_VAR: &str = "GONGFANG_REQUIRE_VPN";

/// Why WireGuard tests cannot run here, if they cannot.
pub fn missing_prerequisite() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false);
    if !root {
        return Some("not root: network namespaces and interfaces need root".to_owned());
    }
    for (program, package) in [
        ("wireguard-go", "wireguard-go"),
        ("wg", "wireguard-tools"),
        ("wg-quick", "wireguard-tools"),
        ("ip", "iproute2"),
        ("iptables", "iptables"),
    ] {
        let path = std::env::var_os("PATH").unwrap_or_default();
        if !std::env::split_paths(&path).any(|dir| dir.join(program).is_file()) {
            return Some(format!("{program} not found: install Debian's {package}"));
        }
    }
    None
}

/// Whether WireGuard tests can run; prints why not when they are skipped. Panics when they
/// cannot but [`REQUIRE_VPN_VAR`] is `1`.
pub fn vpn_ready() -> bool {
    match missing_prerequisite() {
        None => true,
        Some(reason) if std::env::var(REQUIRE_VPN_VAR).is_ok_and(|v| v == "1") => {
            panic!("{REQUIRE_VPN_VAR}=1 but {reason}")
        }
        Some(reason) => {
            eprintln!("skipped: {reason} (set {REQUIRE_VPN_VAR}=1 to make this a failure)");
            false
        }
    }
}

/// Runs a command to its end; an error names it and says what it printed.
pub fn run_ok(program: &str, args: &[&str]) -> anyhow::Result<Output> {
    let output = Command::new(program).args(args).output().with_context(|| format!("running {program}"))?;
    ensure!(
        output.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(output)
}

/// A team's machine: the namespace `name`, joined to the host by the veth pair
/// `HOST_VETH`/`eth0` on a /24 where the host has `.1` and the machine `.2`.
#[derive(Debug)]
pub struct TeamMachine {
    pub namespace: String,
    pub host_veth: String,
    pub host_address: Ipv4Addr,
    pub address: Ipv4Addr,
    tunnels: Vec<PathBuf>,
    children: Vec<Child>,
}

impl TeamMachine {
    /// Makes the machine on `lan` (e.g. `[172, 30, 1]`), replacing one a killed test left.
    pub fn new(namespace: &str, host_veth: &str, lan: [u8; 3]) -> anyhow::Result<TeamMachine> {
        let _ = Command::new("ip").args(["netns", "delete", namespace]).output();
        let _ = Command::new("ip").args(["link", "delete", host_veth]).output();
        let [a, b, c] = lan;
        let machine = TeamMachine {
            namespace: namespace.to_owned(),
            host_veth: host_veth.to_owned(),
            host_address: Ipv4Addr::new(a, b, c, 1),
            address: Ipv4Addr::new(a, b, c, 2),
            tunnels: Vec::new(),
            children: Vec::new(),
        };
        let temporary = format!("{host_veth}x");
        run_ok("ip", &["netns", "add", namespace])?;
        run_ok("ip", &["link", "add", host_veth, "type", "veth", "peer", "name", &temporary])?;
        run_ok("ip", &["link", "set", &temporary, "netns", namespace, "name", "eth0"])?;
        run_ok("ip", &["address", "add", &format!("{}/24", machine.host_address), "dev", host_veth])?;
        run_ok("ip", &["link", "set", host_veth, "up"])?;
        run_ok("ip", &["-n", namespace, "address", "add", &format!("{}/24", machine.address), "dev", "eth0"])?;
        run_ok("ip", &["-n", namespace, "link", "set", "eth0", "up"])?;
        run_ok("ip", &["-n", namespace, "link", "set", "lo", "up"])?;
        Ok(machine)
    }

    /// Routes `destination` (an address or network) from the machine through its link to the
    /// host, e.g. the drill host's public address on another team's link.
    pub fn route_via_host(&self, destination: &str) -> anyhow::Result<()> {
        let via = self.host_address.to_string();
        run_ok("ip", &["-n", &self.namespace, "route", "replace", destination, "via", &via])?;
        Ok(())
    }

    /// A command run inside the machine.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.namespace, program]);
        command
    }

    /// `wg-quick up FILE` with `wireguard-go`, as a team without kernel WireGuard runs it; the
    /// tunnel is named after the file and taken down on drop.
    pub fn tunnel_up(&mut self, config: &Path) -> anyhow::Result<()> {
        self.wg_quick("up", config)?;
        self.tunnels.push(config.to_owned());
        Ok(())
    }

    /// `wg-quick down FILE` of a tunnel [`TeamMachine::tunnel_up`] brought up.
    pub fn tunnel_down(&mut self, config: &Path) -> anyhow::Result<()> {
        self.wg_quick("down", config)?;
        self.tunnels.retain(|up| up != config);
        Ok(())
    }

    fn wg_quick(&self, verb: &str, config: &Path) -> anyhow::Result<()> {
        let output = self
            .command("env")
            .args(["WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go", "wg-quick", verb])
            .arg(config)
            .output()?;
        ensure!(
            output.status.success(),
            "wg-quick {verb} {} failed: {}",
            config.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(())
    }

    /// Starts a program inside the machine that runs until the machine is dropped.
    pub fn spawn(&mut self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let child = self.command(program).args(args).stdin(Stdio::null()).stdout(Stdio::null()).spawn()?;
        self.children.push(child);
        Ok(())
    }

    /// Whether a TCP connection from the machine to `target` is accepted within `timeout`.
    pub fn connects(&self, target: SocketAddr, timeout: Duration) -> bool {
        let Ok(namespace) = File::open(format!("/run/netns/{}", self.namespace)) else { return false };
        std::thread::spawn(move || {
            // Only this thread enters the team's machine.
            setns(&namespace, CloneFlags::CLONE_NEWNET).is_ok() && TcpStream::connect_timeout(&target, timeout).is_ok()
        })
        .join()
        .unwrap_or(false)
    }
}

impl Drop for TeamMachine {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for config in &self.tunnels {
            let _ = self
                .command("env")
                .args(["WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go", "wg-quick", "down"])
                .arg(config)
                .output();
        }
        let _ = Command::new("ip").args(["netns", "delete", &self.namespace]).output();
        let _ = Command::new("ip").args(["link", "delete", &self.host_veth]).output();
    }
}
