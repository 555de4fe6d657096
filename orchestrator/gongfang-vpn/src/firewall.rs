//! The gateway's peer firewall: what a team's VPN peers may reach through the drill's WireGuard
//! interface (the platform's ports, their own services, other teams' services while attacks
//! are open), enforced with iptables on the host or in a network namespace.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use ipnet::Ipv4Net;

use crate::Error;
use crate::gateway::{check_name, find_program, interface_name};

/// The chain Docker has every forwarded packet go through before its own rules.
const DOCKER_USER: &str = "DOCKER-USER";
/// How long an iptables command waits for another one holding the xtables lock, in seconds.
const LOCK_WAIT: &str = "5";

/// A team as the peer firewall sees it: the VPN block all its peers' addresses are in, the
/// services it defends (address, TCP ports; an attack-only team has none), and the port of its
/// own shell entry on the gateway's address, which only its block may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefendingTeam {
    pub slug: String,
    pub block: Ipv4Net,
    pub services: Vec<(Ipv4Addr, Vec<u16>)>,
    pub shell_port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerFirewallConfig {
    pub drill_slug: String,
    /// The gateway's WireGuard interface, e.g. [`interface_name`] of the drill.
    pub interface: String,
    /// The gateway's tunnel address, where the platform's ports are.
    pub gateway: Ipv4Addr,
    pub vpn_range: Ipv4Net,
    /// The TCP ports every peer may reach on the gateway's address (web, submission); each
    /// team's shell entry is [`DefendingTeam::shell_port`].
    pub platform_ports: Vec<u16>,
    /// The networks the teams' services are in; with `anonymise`, traffic from the VPN to
    /// them leaves with the host's address.
    pub game_networks: Vec<Ipv4Net>,
    /// Every team with a VPN block.
    pub teams: Vec<DefendingTeam>,
    /// Whether services see the host's address instead of the peer's, as they see checkers.
    pub anonymise: bool,
    /// Whether peers may reach other teams' services now.
    pub attacks_open: bool,
    /// The chain the forward rules are hooked into; `None`: `DOCKER-USER` where it exists,
    /// else `FORWARD`.
    pub forward_parent: Option<String>,
    /// A network namespace (`ip netns`) whose firewall to change; the host's when `None`.
    pub namespace: Option<String>,
}

/// The names of a drill's peer firewall chains, derived from its slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerChains {
    /// Hooked into `INPUT`: what peers may reach on the host.
    pub input: String,
    /// Hooked into the forward parent: what peers may reach through the host.
    pub forward: String,
    /// Called from the forward chain: other teams' services, filled only while attacks are open.
    pub attack: String,
    /// Hooked into the nat table's `POSTROUTING`, with `anonymise` only.
    pub nat: String,
}

impl PeerChains {
    /// The chain names of `drill_slug`: at most 20 characters, within iptables' 28, and the
    /// same tag as the drill's interface name so one can be told from the other.
    pub fn of(drill_slug: &str) -> PeerChains {
        let interface = interface_name(drill_slug);
        let tag = interface.strip_prefix("gf-").unwrap_or(&interface);
        PeerChains {
            input: format!("GF-VIN-{tag}"),
            forward: format!("GF-VFW-{tag}"),
            attack: format!("GF-VAT-{tag}"),
            nat: format!("GF-VNAT-{tag}"),
        }
    }

    fn filter(&self) -> [&str; 3] {
        [&self.input, &self.forward, &self.attack]
    }
}

/// A drill's peer firewall, checked and ready to install.
#[derive(Debug)]
pub struct PeerFirewall {
    config: PeerFirewallConfig,
    chains: PeerChains,
    attacks_open: AtomicBool,
    /// The teams organisers took out of the drill: nothing of theirs is forwarded, and their
    /// shell entries are closed.
    out_of_drill: Mutex<BTreeSet<String>>,
}

impl PeerFirewall {
    /// Checks the configuration; nothing is changed on the host yet.
    pub fn new(mut config: PeerFirewallConfig) -> Result<PeerFirewall, Error> {
        check(&mut config)?;
        Ok(PeerFirewall {
            chains: PeerChains::of(&config.drill_slug),
            attacks_open: AtomicBool::new(config.attacks_open),
            out_of_drill: Mutex::new(BTreeSet::new()),
            config,
        })
    }

    /// The chains this firewall fills, named after its drill.
    pub fn chains(&self) -> &PeerChains {
        &self.chains
    }

    /// Whether the attack chain holds its rules, as last applied or switched.
    pub fn attacks_open(&self) -> bool {
        self.attacks_open.load(Ordering::SeqCst)
    }

    /// The teams taken out of the drill, as last set.
    pub fn out_of_drill(&self) -> BTreeSet<String> {
        self.out_of_drill.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The `iptables-restore --noflush` batch that fills the chains (pure, for review and
    /// tests): the filter table's three chains, and the nat chain with `anonymise` only.
    pub fn ruleset(&self) -> String {
        let c = &self.config;
        let out = self.out_of_drill();
        let playing = |team: &&DefendingTeam| !out.contains(&team.slug);
        let (input, forward) = (&self.chains.input, &self.chains.forward);
        let wg = &c.interface;
        let mut r = String::from("*filter\n");
        for chain in self.chains.filter() {
            r.push_str(&format!("-F {chain}\n"));
        }
        // The host: replies to what it opened, and the platform's ports on the gateway's
        // address; not its other addresses (the bridges' gateways), not UDP.
        r.push_str(&format!("-A {input} -i {wg} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"));
        for port in sorted(&c.platform_ports) {
            r.push_str(&format!("-A {input} -i {wg} -d {}/32 -p tcp --dport {port} -j ACCEPT\n", c.gateway));
        }
        for team in c.teams.iter().filter(playing) {
            if let Some(port) = team.shell_port {
                r.push_str(&format!(
                    "-A {input} -i {wg} -s {} -d {}/32 -p tcp --dport {port} -m comment --comment \"{} shell\" -j ACCEPT\n",
                    team.block,
                    c.gateway,
                    comment(&team.slug)
                ));
            }
        }
        r.push_str(&format!("-A {input} -i {wg} -j DROP\n"));
        // Through the host: nothing from a team out of the drill, not even a connection it
        // opened before; then ACCEPT here, because Docker's own rules after DOCKER-USER would
        // drop a new connection from the tunnel into a bridge.
        for team in c.teams.iter().filter(|t| out.contains(&t.slug)) {
            r.push_str(&format!(
                "-A {forward} -i {wg} -s {} -m comment --comment \"{} out of the drill\" -j DROP\n",
                team.block,
                comment(&team.slug)
            ));
        }
        r.push_str(&format!("-A {forward} -i {wg} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"));
        for team in c.teams.iter().filter(playing) {
            for (address, ports) in &team.services {
                for port in sorted(ports) {
                    r.push_str(&format!(
                        "-A {forward} -i {wg} -s {} -d {address}/32 -p tcp --dport {port} \
                         -m comment --comment \"{} own\" -j ACCEPT\n",
                        team.block,
                        comment(&team.slug)
                    ));
                }
            }
        }
        r.push_str(&format!("-A {forward} -i {wg} -j {}\n", self.chains.attack));
        // Other teams' peers (in and out of the tunnel), the internet, everything else.
        r.push_str(&format!("-A {forward} -i {wg} -j DROP\n"));
        r.push_str(&self.attack_rules(self.attacks_open()));
        r.push_str("COMMIT\n");
        if c.anonymise {
            r.push_str(&format!("*nat\n-F {}\n", self.chains.nat));
            for network in &c.game_networks {
                r.push_str(&format!("-A {} -s {} -d {network} -j MASQUERADE\n", self.chains.nat, c.vpn_range));
            }
            r.push_str("COMMIT\n");
        }
        r
    }

    /// The attack chain's rules: every peer of the range to every defended service port.
    fn attack_rules(&self, open: bool) -> String {
        let mut r = String::new();
        if !open {
            return r;
        }
        for team in &self.config.teams {
            for (address, ports) in &team.services {
                for port in sorted(ports) {
                    r.push_str(&format!(
                        "-A {} -s {} -d {address}/32 -p tcp --dport {port} -m comment --comment \"attack {}\" -j ACCEPT\n",
                        self.chains.attack,
                        self.config.vpn_range,
                        comment(&team.slug)
                    ));
                }
            }
        }
        r
    }

    /// Installs the rules, or replaces them: chains are created where missing and filled in
    /// one batch before they are hooked first into their parents, so no packet meets a hooked
    /// chain still empty. Running it again changes nothing but the rules.
    pub fn apply(&self) -> Result<(), Error> {
        let ns = self.config.namespace.as_deref();
        require(ns)?;
        let filter = listing(ns, "filter")?;
        let parent = match &self.config.forward_parent {
            Some(parent) if !chain_exists(&filter, parent) => {
                return Err(Error::Firewall(format!(
                    "the forward parent chain {parent} does not exist in the filter table{}: name an existing \
                     chain (FORWARD, or DOCKER-USER once Docker runs), or none to pick one",
                    shown_namespace(ns)
                )));
            }
            Some(parent) => parent.clone(),
            None if chain_exists(&filter, DOCKER_USER) => DOCKER_USER.to_owned(),
            None => "FORWARD".to_owned(),
        };
        for chain in self.chains.filter() {
            if !chain_exists(&filter, chain) {
                iptables_ok(ns, &["-t", "filter", "-N", chain])?;
            }
        }
        if self.config.anonymise && !chain_exists(&listing(ns, "nat")?, &self.chains.nat) {
            iptables_ok(ns, &["-t", "nat", "-N", &self.chains.nat])?;
        }
        restore(ns, &self.ruleset())?;
        hook(ns, "filter", "INPUT", &self.chains.input)?;
        hook(ns, "filter", &parent, &self.chains.forward)?;
        // A hook left in the other candidate parent (Docker started or stopped since).
        for other in [DOCKER_USER, "FORWARD"] {
            if other != parent {
                while iptables(ns, &["-t", "filter", "-D", other, "-j", &self.chains.forward])?.0 {}
            }
        }
        if self.config.anonymise {
            hook(ns, "nat", "POSTROUTING", &self.chains.nat)?;
        } else {
            remove_table(ns, "nat", &[&self.chains.nat])?;
        }
        tracing::info!(
            drill = %self.config.drill_slug,
            interface = %self.config.interface,
            forward_parent = %parent,
            attacks_open = self.attacks_open(),
            anonymise = self.config.anonymise,
            "peer firewall installed"
        );
        Ok(())
    }

    /// Opens or closes attacks: refills the attack chain alone, in one batch.
    pub fn set_attacks_open(&self, open: bool) -> Result<(), Error> {
        let ns = self.config.namespace.as_deref();
        require(ns)?;
        if !chain_exists(&listing(ns, "filter")?, &self.chains.attack) {
            return Err(Error::FirewallNotInstalled {
                drill: self.config.drill_slug.clone(),
                chain: self.chains.attack.clone(),
            });
        }
        let batch = format!("*filter\n-F {}\n{}COMMIT\n", self.chains.attack, self.attack_rules(open));
        restore(ns, &batch)?;
        self.attacks_open.store(open, Ordering::SeqCst);
        let cut = if open { 0 } else { self.cut_connections()? };
        tracing::info!(drill = %self.config.drill_slug, open, cut, "attacks through the VPN switched");
        Ok(())
    }

    /// Takes the teams `slugs` out of the drill (and brings back any other): from now on
    /// nothing of theirs is forwarded, not even a connection opened before, and their shell
    /// entries take no new connection; the connections a newly out team has open through the
    /// gateway are forgotten, so a shell it had open ends too. Refills the chains in one batch.
    /// Returns how many connections were forgotten.
    pub fn set_out_of_drill(&self, slugs: &BTreeSet<String>) -> Result<usize, Error> {
        let ns = self.config.namespace.as_deref();
        require(ns)?;
        if let Some(unknown) = slugs.iter().find(|s| !self.config.teams.iter().any(|t| &t.slug == *s)) {
            return Err(Error::Firewall(format!(
                "no team `{unknown}` has a VPN block in drill {}: name teams of the drill",
                self.config.drill_slug
            )));
        }
        if !chain_exists(&listing(ns, "filter")?, &self.chains.forward) {
            return Err(Error::FirewallNotInstalled {
                drill: self.config.drill_slug.clone(),
                chain: self.chains.forward.clone(),
            });
        }
        let before =
            std::mem::replace(&mut *self.out_of_drill.lock().unwrap_or_else(PoisonError::into_inner), slugs.clone());
        let mut batch = self.ruleset();
        // The nat chain is left as it is: only the filter table changes.
        if let Some(nat) = batch.find("*nat\n") {
            batch.truncate(nat);
        }
        if let Err(error) = restore(ns, &batch) {
            *self.out_of_drill.lock().unwrap_or_else(PoisonError::into_inner) = before;
            return Err(error);
        }
        let mut cut = 0;
        for team in self.config.teams.iter().filter(|t| slugs.contains(&t.slug) && !before.contains(&t.slug)) {
            cut += self.forget(team.block, None)?;
        }
        tracing::info!(drill = %self.config.drill_slug, out = ?slugs, cut, "teams out of the drill cut off at the gateway");
        Ok(cut)
    }

    /// Forgets every connection a peer opened into the game networks, so that closing the
    /// attack paths also stops an attack under way: the rules let tracked connections through,
    /// and a forgotten one must pass them again as new: a team's connection to its own service
    /// does, an attack does not. Connections to the platform's ports are not touched. Returns
    /// how many were forgotten.
    fn cut_connections(&self) -> Result<usize, Error> {
        let mut cut = 0;
        for network in &self.config.game_networks {
            cut += self.forget(self.config.vpn_range, Some(*network))?;
        }
        Ok(cut)
    }

    /// Forgets the tracked connections from `source` (to `destination`, or anywhere); how many.
    /// Without `conntrack` (Debian's `conntrack`) nothing is forgotten and the drill is told so.
    fn forget(&self, source: Ipv4Net, destination: Option<Ipv4Net>) -> Result<usize, Error> {
        let ns = self.config.namespace.as_deref();
        if let Err(error) = find_program(Path::new("conntrack"), "conntrack") {
            tracing::warn!(%error, "connections already open through the gateway stay open until they end");
            return Ok(0);
        }
        let (src, src_mask) = (source.network().to_string(), source.netmask().to_string());
        let mut args = vec!["-D", "-s", &src, "--mask-src", &src_mask];
        let dst = destination.map(|d| (d.network().to_string(), d.netmask().to_string()));
        if let Some((dst, dst_mask)) = &dst {
            args.extend(["-d", dst, "--mask-dst", dst_mask]);
        }
        let output = command(ns, "conntrack")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::Spawn { program: "conntrack".to_owned(), source })?;
        let said = String::from_utf8_lossy(&output.stderr);
        // It exits 1 when it deleted nothing, and says how many it deleted either way.
        let deleted = said
            .split_whitespace()
            .zip(said.split_whitespace().skip(1))
            .find(|(_, next)| *next == "flow")
            .and_then(|(n, _)| n.parse::<usize>().ok());
        deleted.ok_or_else(|| failed(ns, &format!("conntrack {}", args.join(" ")), output.status, &said))
    }

    /// Whether any of the drill's chains exists.
    pub fn installed(&self) -> Result<bool, Error> {
        let ns = self.config.namespace.as_deref();
        require(ns)?;
        installed(ns, &self.chains)
    }

    /// Removes the chains and every jump to them; absent ones are fine.
    pub fn remove(&self) -> Result<(), Error> {
        let ns = self.config.namespace.as_deref();
        require(ns)?;
        if remove_all(ns, &self.chains)? {
            tracing::info!(drill = %self.config.drill_slug, "peer firewall removed");
        }
        Ok(())
    }
}

/// Removes the peer firewall a drill left behind (e.g. its platform was killed), wherever its
/// chains were hooked: `false` when there was none.
pub fn remove_leftover_firewall(drill_slug: &str, namespace: Option<&str>) -> Result<bool, Error> {
    if let Some(namespace) = namespace {
        check_name("network namespace", namespace, 255)?;
    }
    require(namespace)?;
    let removed = remove_all(namespace, &PeerChains::of(drill_slug))?;
    if removed {
        tracing::info!(drill = drill_slug, "leftover peer firewall removed");
    }
    Ok(removed)
}

fn installed(ns: Option<&str>, chains: &PeerChains) -> Result<bool, Error> {
    let filter = listing(ns, "filter")?;
    Ok(chains.filter().iter().any(|c| chain_exists(&filter, c)) || chain_exists(&listing(ns, "nat")?, &chains.nat))
}

fn remove_all(ns: Option<&str>, chains: &PeerChains) -> Result<bool, Error> {
    let filter = remove_table(ns, "filter", &chains.filter())?;
    let nat = remove_table(ns, "nat", &[&chains.nat])?;
    Ok(filter || nat)
}

/// Deletes every jump into `ours` from other chains of `table`, then the chains themselves.
/// `true` when one of them existed.
fn remove_table(ns: Option<&str>, table: &str, ours: &[&str]) -> Result<bool, Error> {
    let listed = listing(ns, table)?;
    for line in listed.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [first, parent, .., jump, target] = words[..] else { continue };
        // A rule of ours (jumping to the attack chain) goes with its chain; a rule with a
        // quoted comment would not split back into its arguments and is never a hook of ours.
        if first != "-A" || jump != "-j" || !ours.contains(&target) || ours.contains(&parent) || line.contains('"') {
            continue;
        }
        let mut args = vec!["-t", table, "-D"];
        args.extend(&words[1..]);
        iptables_ok(ns, &args)?;
    }
    let present: Vec<&str> = ours.iter().copied().filter(|c| chain_exists(&listed, c)).collect();
    // Flushed first: one of them may jump to another.
    for chain in &present {
        iptables_ok(ns, &["-t", table, "-F", chain])?;
    }
    for chain in &present {
        iptables_ok(ns, &["-t", table, "-X", chain])?;
    }
    Ok(!present.is_empty())
}

/// Hooks `chain` first into `parent`, unless a jump is already there.
fn hook(ns: Option<&str>, table: &str, parent: &str, chain: &str) -> Result<(), Error> {
    if !iptables(ns, &["-t", table, "-C", parent, "-j", chain])?.0 {
        iptables_ok(ns, &["-t", table, "-I", parent, "1", "-j", chain])?;
    }
    Ok(())
}

/// `iptables -S` of one table: every chain (`-N`, `-P`) and rule (`-A`).
fn listing(ns: Option<&str>, table: &str) -> Result<String, Error> {
    iptables_ok(ns, &["-t", table, "-S"])
}

fn chain_exists(listing: &str, chain: &str) -> bool {
    listing.lines().any(|l| {
        let mut words = l.split_whitespace();
        matches!(words.next(), Some("-N" | "-P")) && words.next() == Some(chain)
    })
}

fn sorted(ports: &[u16]) -> BTreeSet<u16> {
    ports.iter().copied().collect()
}

/// A team's slug as a rule comment: nothing that could end the quoted argument.
fn comment(slug: &str) -> String {
    slug.chars().take(200).map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect()
}

fn shown_namespace(ns: Option<&str>) -> String {
    ns.map_or_else(String::new, |ns| format!(" of network namespace {ns}"))
}

fn command(ns: Option<&str>, program: &str) -> Command {
    match ns {
        Some(ns) => {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", ns, program]);
            command
        }
        None => Command::new(program),
    }
}

/// Runs `iptables -w … ARGS`: whether it succeeded, and its output (its errors when it failed).
fn iptables(ns: Option<&str>, args: &[&str]) -> Result<(bool, String), Error> {
    let output = iptables_output(ns, args)?;
    let text = if output.status.success() { &output.stdout } else { &output.stderr };
    Ok((output.status.success(), String::from_utf8_lossy(text).into_owned()))
}

fn iptables_ok(ns: Option<&str>, args: &[&str]) -> Result<String, Error> {
    let output = iptables_output(ns, args)?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let shown = format!("iptables -w {LOCK_WAIT} {}", args.join(" "));
    Err(failed(ns, &shown, output.status, &String::from_utf8_lossy(&output.stderr)))
}

fn iptables_output(ns: Option<&str>, args: &[&str]) -> Result<Output, Error> {
    command(ns, "iptables")
        .args(["-w", LOCK_WAIT])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn { program: "iptables".to_owned(), source })
}

/// Loads a batch with `iptables-restore --noflush`: the tables it names change at once, and
/// chains it does not name are left alone.
fn restore(ns: Option<&str>, batch: &str) -> Result<(), Error> {
    let shown = format!("iptables-restore -w {LOCK_WAIT} --noflush");
    let spawn = |source| Error::Spawn { program: "iptables-restore".to_owned(), source };
    let mut child = command(ns, "iptables-restore")
        .args(["-w", LOCK_WAIT, "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        // One that fails early closes its stdin; its status and stderr say why.
        let _ = stdin.write_all(batch.as_bytes());
    }
    let output = child.wait_with_output().map_err(spawn)?;
    if output.status.success() {
        return Ok(());
    }
    Err(failed(ns, &shown, output.status, &String::from_utf8_lossy(&output.stderr)))
}

fn failed(ns: Option<&str>, command: &str, status: ExitStatus, stderr: &str) -> Error {
    let stderr = stderr.trim().to_owned();
    let hint = if stderr.contains("Permission denied") || stderr.contains("Operation not permitted") {
        " (changing the firewall needs root or CAP_NET_ADMIN)"
    } else {
        ""
    };
    let command = match ns {
        Some(ns) => format!("ip netns exec {ns} {command}"),
        None => command.to_owned(),
    };
    let status = status.code().map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit status {c}"));
    Error::Command { command, status, stderr, hint }
}

/// The programs the firewall runs, found before anything is changed.
fn require(ns: Option<&str>) -> Result<(), Error> {
    let mut needed = vec![("iptables", "iptables"), ("iptables-restore", "iptables")];
    if ns.is_some() {
        needed.push(("ip", "iproute2"));
    }
    for (program, package) in needed {
        find_program(Path::new(program), package)?;
    }
    Ok(())
}

/// Refuses what would make rules that do not say what was meant, naming what to change.
fn check(config: &mut PeerFirewallConfig) -> Result<(), Error> {
    let bad = |why: String| Err(Error::Firewall(why));
    if config.drill_slug.trim().is_empty() {
        return bad("the drill's slug is empty: the chains are named after it".to_owned());
    }
    check_name("interface", &config.interface, 15)?;
    if let Some(namespace) = &config.namespace {
        check_name("network namespace", namespace, 255)?;
    }
    if let Some(parent) = &config.forward_parent {
        check_name("chain", parent, 28)?;
    }
    config.vpn_range = config.vpn_range.trunc();
    let range = config.vpn_range;
    let gateway = config.gateway;
    if !range.contains(&gateway) || gateway == range.network() || gateway == range.broadcast() {
        return Err(Error::GatewayOutsideRange { gateway, range });
    }
    if config.platform_ports.contains(&0) {
        return bad("platform port 0: give the TCP ports the platform listens on (web, submission, shell)".to_owned());
    }
    let mut slugs = BTreeSet::new();
    for (n, team) in config.teams.iter_mut().enumerate() {
        team.block = team.block.trunc();
        let (slug, block) = (&team.slug, team.block);
        if slug.is_empty() {
            return bad(format!("team {} has an empty slug", n + 1));
        }
        if !slugs.insert(slug.clone()) {
            return bad(format!("team {slug} is given twice: give each team once, with all its services"));
        }
        if !range.contains(&block) {
            return bad(format!(
                "team {slug}'s block {block} is not inside the VPN range {range}: use the block the address plan gave it"
            ));
        }
        if block.contains(&gateway) {
            return bad(format!(
                "team {slug}'s block {block} holds the gateway's address {gateway}: use the block the address plan gave it"
            ));
        }
        for (address, ports) in &team.services {
            if !config.game_networks.iter().any(|n| n.contains(address)) {
                return bad(format!(
                    "team {slug}'s service address {address} is in none of the game networks ({}): peers' tunnels \
                     route only those; add its network to the game networks",
                    config.game_networks.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ));
            }
            if ports.is_empty() || ports.contains(&0) {
                return bad(format!(
                    "team {slug}'s service at {address} has {}: give the TCP ports it listens on",
                    if ports.is_empty() { "no ports" } else { "port 0" }
                ));
            }
        }
    }
    for (n, a) in config.teams.iter().enumerate() {
        if let Some(b) = config.teams[n + 1..].iter().find(|b| a.block.contains(&b.block) || b.block.contains(&a.block))
        {
            return bad(format!(
                "teams {} and {} share addresses ({} and {}): each team needs a block of its own",
                a.slug, b.slug, a.block, b.block
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Ipv4Net {
        text.parse().unwrap()
    }

    fn addr(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    fn config() -> PeerFirewallConfig {
        PeerFirewallConfig {
            drill_slug: "demo".to_owned(),
            interface: "gf-demo".to_owned(),
            gateway: addr("10.80.0.1"),
            vpn_range: net("10.80.0.0/16"),
            platform_ports: vec![8080, 31337],
            game_networks: vec![net("10.60.1.0/24"), net("10.60.2.0/24")],
            teams: vec![
                DefendingTeam {
                    slug: "team1".to_owned(),
                    block: net("10.80.0.4/30"),
                    services: vec![(addr("10.60.1.10"), vec![1337, 5000])],
                    shell_port: Some(2201),
                },
                DefendingTeam {
                    slug: "team2".to_owned(),
                    block: net("10.80.0.8/30"),
                    services: vec![(addr("10.60.2.10"), vec![1337])],
                    shell_port: Some(2202),
                },
                DefendingTeam {
                    slug: "red".to_owned(),
                    block: net("10.80.0.12/30"),
                    services: vec![],
                    shell_port: None,
                },
            ],
            anonymise: false,
            attacks_open: false,
            forward_parent: None,
            namespace: None,
        }
    }

    fn rules_of<'a>(ruleset: &'a str, chain: &str) -> Vec<&'a str> {
        let prefix = format!("-A {chain} ");
        ruleset.lines().filter(|l| l.starts_with(&prefix)).collect()
    }

    #[test]
    fn chain_names_fit_iptables_and_stay_apart() {
        let chains = PeerChains::of("demo");
        assert_eq!(
            chains,
            PeerChains {
                input: "GF-VIN-demo".to_owned(),
                forward: "GF-VFW-demo".to_owned(),
                attack: "GF-VAT-demo".to_owned(),
                nat: "GF-VNAT-demo".to_owned(),
            }
        );
        let long = PeerChains::of("national-drill-2026-with-a-long-name");
        let other = PeerChains::of("national-drill-2027-with-a-long-name");
        for name in [&long.input, &long.forward, &long.attack, &long.nat] {
            assert!(name.len() <= 28, "{name}");
        }
        assert_ne!(long.nat, other.nat);
        assert_eq!(long, PeerChains::of("national-drill-2026-with-a-long-name"));
    }

    #[test]
    fn the_batch_names_every_chain_and_closes_the_rest() {
        let fw = PeerFirewall::new(config()).unwrap();
        let r = fw.ruleset();
        assert!(r.starts_with("*filter\n") && r.ends_with("COMMIT\n"), "{r}");
        for chain in ["GF-VIN-demo", "GF-VFW-demo", "GF-VAT-demo"] {
            assert!(r.contains(&format!("-F {chain}\n")), "{r}");
        }
        let input = rules_of(&r, "GF-VIN-demo");
        assert_eq!(
            input,
            [
                "-A GF-VIN-demo -i gf-demo -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                "-A GF-VIN-demo -i gf-demo -d 10.80.0.1/32 -p tcp --dport 8080 -j ACCEPT",
                "-A GF-VIN-demo -i gf-demo -d 10.80.0.1/32 -p tcp --dport 31337 -j ACCEPT",
                "-A GF-VIN-demo -i gf-demo -s 10.80.0.4/30 -d 10.80.0.1/32 -p tcp --dport 2201 -m comment --comment \"team1 shell\" -j ACCEPT",
                "-A GF-VIN-demo -i gf-demo -s 10.80.0.8/30 -d 10.80.0.1/32 -p tcp --dport 2202 -m comment --comment \"team2 shell\" -j ACCEPT",
                "-A GF-VIN-demo -i gf-demo -j DROP",
            ]
        );
        let forward = rules_of(&r, "GF-VFW-demo");
        assert_eq!(forward.len(), 1 + 3 + 2, "{forward:#?}");
        assert!(forward[0].contains("ESTABLISHED,RELATED -j ACCEPT"));
        assert!(forward.contains(
            &"-A GF-VFW-demo -i gf-demo -s 10.80.0.4/30 -d 10.60.1.10/32 -p tcp --dport 5000 -m comment \
              --comment \"team1 own\" -j ACCEPT"
        ));
        assert!(forward.contains(
            &"-A GF-VFW-demo -i gf-demo -s 10.80.0.8/30 -d 10.60.2.10/32 -p tcp --dport 1337 -m comment \
              --comment \"team2 own\" -j ACCEPT"
        ));
        assert!(!forward.iter().any(|l| l.contains("10.80.0.12/30")), "an attack-only team has nothing to defend");
        assert_eq!(forward[4], "-A GF-VFW-demo -i gf-demo -j GF-VAT-demo");
        assert_eq!(forward[5], "-A GF-VFW-demo -i gf-demo -j DROP", "the last rule drops the rest");
        assert!(rules_of(&r, "GF-VAT-demo").is_empty(), "attacks are closed: {r}");
        assert!(!r.contains("*nat") && !r.contains("MASQUERADE"), "{r}");
    }

    #[test]
    fn a_team_out_of_the_drill_has_nothing_forwarded_and_no_shell() {
        let fw = PeerFirewall::new(PeerFirewallConfig { attacks_open: true, ..config() }).unwrap();
        fw.out_of_drill.lock().unwrap().insert("team1".to_owned());
        let r = fw.ruleset();
        let forward = rules_of(&r, "GF-VFW-demo");
        assert_eq!(
            forward[0],
            "-A GF-VFW-demo -i gf-demo -s 10.80.0.4/30 -m comment --comment \"team1 out of the drill\" -j DROP",
            "before the rule that lets established connections through"
        );
        assert!(forward[1].contains("ESTABLISHED,RELATED -j ACCEPT"), "{forward:#?}");
        assert!(!forward.iter().any(|l| l.contains("team1 own")), "{forward:#?}");
        assert!(forward.iter().any(|l| l.contains("team2 own")), "{forward:#?}");
        let input = rules_of(&r, "GF-VIN-demo");
        assert!(!input.iter().any(|l| l.contains("team1 shell")) && input.iter().any(|l| l.contains("team2 shell")));
        assert!(input.iter().any(|l| l.contains("--dport 8080 -j ACCEPT")), "the board stays reachable: {input:#?}");
        assert_eq!(rules_of(&r, "GF-VAT-demo").len(), 3, "the others still attack and are attacked: {r}");
    }

    #[test]
    fn open_attacks_let_every_peer_reach_every_service_port() {
        let fw = PeerFirewall::new(PeerFirewallConfig { attacks_open: true, ..config() }).unwrap();
        let r = fw.ruleset();
        let attack = rules_of(&r, "GF-VAT-demo");
        assert_eq!(
            attack,
            [
                "-A GF-VAT-demo -s 10.80.0.0/16 -d 10.60.1.10/32 -p tcp --dport 1337 -m comment --comment \"attack team1\" -j ACCEPT",
                "-A GF-VAT-demo -s 10.80.0.0/16 -d 10.60.1.10/32 -p tcp --dport 5000 -m comment --comment \"attack team1\" -j ACCEPT",
                "-A GF-VAT-demo -s 10.80.0.0/16 -d 10.60.2.10/32 -p tcp --dport 1337 -m comment --comment \"attack team2\" -j ACCEPT",
            ]
        );
        assert_eq!(fw.attack_rules(false), "");
    }

    #[test]
    fn anonymise_masquerades_the_range_towards_the_game_networks_only() {
        let fw = PeerFirewall::new(PeerFirewallConfig { anonymise: true, ..config() }).unwrap();
        let r = fw.ruleset();
        let nat = &r[r.find("*nat\n").expect("a nat section")..];
        assert_eq!(
            nat,
            "*nat\n-F GF-VNAT-demo\n\
             -A GF-VNAT-demo -s 10.80.0.0/16 -d 10.60.1.0/24 -j MASQUERADE\n\
             -A GF-VNAT-demo -s 10.80.0.0/16 -d 10.60.2.0/24 -j MASQUERADE\nCOMMIT\n"
        );
        assert_eq!(r.matches("COMMIT\n").count(), 2);
    }

    #[test]
    fn bad_configurations_say_what_to_change() {
        let cases: Vec<(PeerFirewallConfig, &str)> = vec![
            (PeerFirewallConfig { drill_slug: " ".into(), ..config() }, "slug is empty"),
            (PeerFirewallConfig { interface: "gf demo".into(), ..config() }, "interface"),
            (PeerFirewallConfig { gateway: addr("10.81.0.1"), ..config() }, "10.81.0.1"),
            (PeerFirewallConfig { platform_ports: vec![0], ..config() }, "platform port 0"),
            (PeerFirewallConfig { forward_parent: Some("-j ACCEPT".into()), ..config() }, "chain"),
            (PeerFirewallConfig { namespace: Some("a/b".into()), ..config() }, "network namespace"),
            (PeerFirewallConfig { game_networks: vec![net("10.60.1.0/24")], ..config() }, "10.60.2.10"),
        ];
        for (bad, expected) in cases {
            let error = PeerFirewall::new(bad).unwrap_err();
            assert!(error.to_string().contains(expected), "{expected}: {error}");
        }
        let mut outside = config();
        outside.teams[0].block = net("10.81.0.4/30");
        assert!(PeerFirewall::new(outside).unwrap_err().to_string().contains("not inside the VPN range"));
        let mut overlapping = config();
        overlapping.teams[1].block = net("10.80.0.6/31");
        let error = PeerFirewall::new(overlapping).unwrap_err().to_string();
        assert!(error.contains("share addresses"), "{error}");
        let mut twice = config();
        twice.teams[1].slug = "team1".into();
        assert!(PeerFirewall::new(twice).unwrap_err().to_string().contains("given twice"));
        let mut no_ports = config();
        no_ports.teams[0].services[0].1.clear();
        assert!(PeerFirewall::new(no_ports).unwrap_err().to_string().contains("no ports"));
    }

    #[test]
    fn hooks_are_found_in_a_listing() {
        let listed = "-P INPUT ACCEPT\n-N GF-VIN-demo\n-A INPUT -j GF-VIN-demo\n";
        assert!(chain_exists(listed, "GF-VIN-demo") && chain_exists(listed, "INPUT"));
        assert!(!chain_exists(listed, "GF-VFW-demo"));
        assert_eq!(comment("team \"1\";"), "team__1__");
    }
}
