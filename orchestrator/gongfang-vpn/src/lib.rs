//! WireGuard access for teams: their keys, their addresses, their `wg-quick` configs, and the
//! drill's gateway they connect to.
//!
//! # What a team receives
//!
//! One `wg-quick` config per peer (a team may have several, e.g. one per player's machine),
//! rendered by [`PeerConfig::render`]:
//!
//! ```text
//! # drill demo, team team1, peer 1
//! [Interface]
//! PrivateKey = <the peer's private key>
//! Address = 10.80.0.4/32
//!
//! [Peer]
//! PublicKey = <the gateway's public key>
//! PresharedKey = <a key only this peer and the gateway know>
//! Endpoint = <the gateway's public address>:51820
//! AllowedIPs = 10.60.0.0/16, 10.80.0.1/32
//! PersistentKeepalive = 25
//! ```
//!
//! - The private key is made on the platform ([`PrivateKey::generate`], X25519 as `wg genkey`
//!   makes it) and leaves it only inside this file; in memory it is a
//!   [`gongfang_core::Secret`], and it is never on a command line or in a log.
//! - `Address` is the peer's own tunnel address, a /32 from the [`AddressPlan`].
//! - `AllowedIPs` is what the tunnel carries: the game networks (every team's services) and
//!   the gateway's tunnel address (the platform's submission, web and portal ports), nothing
//!   else. A config never routes `0.0.0.0/0`, nor a network holding its own endpoint, and
//!   has no `DNS` line, so the team's other traffic and name resolution are left alone.
//! - `PersistentKeepalive` keeps a NAT in front of the team open.
//!
//! # How a team connects
//!
//! The file's name is the interface's name (e.g. `gf0.conf`), and on Linux:
//!
//! ```text
//! wg-quick up ./gf0.conf
//! ```
//!
//! On a machine without kernel WireGuard, `WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go
//! wg-quick up ./gf0.conf` runs Debian's `wireguard-go` instead. The file works unmodified in
//! any WireGuard client that reads `wg-quick` files.
//!
//! # Addresses
//!
//! [`AddressPlan::allocate`] takes the VPN range (e.g. `10.80.0.0/16`), the gateway's address
//! in it and each team's peer count. Every team gets an aligned block of the same size (the
//! largest count rounded up to a power of two), in the order the teams are given, skipping
//! blocks holding the range's first or last address or the gateway; peer *n* has its block's
//! *n*-th address. So one prefix per team matches all its peers ([`AddressPlan::team_of`]),
//! and the plan is a pure function of its input. A range too small is refused, naming a range
//! that would fit. IPv4 only.
//!
//! # The translation log
//!
//! With `anonymise`, a service sees every peer as the gateway; [`TranslationWatcher`] reads the
//! kernel's connection tracking (`conntrack -E`, Debian's `conntrack` package) and tells each
//! new TCP connection from the VPN range into the game networks as a [`Translation`]: the peer,
//! the service, and the address the service saw. It runs `conntrack` as a child process that
//! ends when the watcher is dropped, and hands translations over a bounded channel.
//!
//! # The gateway
//!
//! [`Gateway::start`] creates one WireGuard interface on the host, or in a network namespace,
//! gives it its private key (through `wg`'s stdin), its listen port (UDP, every address of
//! the host) and its address with the range's prefix, and brings it up. It uses the kernel's
//! WireGuard when `ip link add … type wireguard` works and otherwise runs `wireguard-go` in
//! the foreground as its own child process; [`Gateway::backend`] says which. Peers are added,
//! removed and rotated (old key out, new key in, in one `wg set`) while it runs;
//! [`Gateway::peers`] reads each peer's endpoint, last handshake and byte counts from
//! `wg show … dump`. [`Gateway::stop`] removes the interface and ends `wireguard-go`;
//! dropping the gateway does the same.
//!
//! A drill's gateway interface is named by [`interface_name`] from the drill's slug, so another
//! command finds it; [`read_interface`] reads its peers' status without having started it,
//! [`update_interface`] changes its peers when keys are issued or rotated, and
//! [`remove_interface`] removes one left behind by a platform that was killed.
//!
//! It needs root (or `CAP_NET_ADMIN`) and Debian's `wireguard-tools` and `iproute2`, and
//! `wireguard-go` where the kernel has no WireGuard; an error says which is missing.
//!
//! The gateway's calls block while `wg` and `ip` run (a few milliseconds each): call them
//! from a blocking thread in async code.
//!
//! # What peers may reach
//!
//! A tunnel carries the game networks and the gateway's address, and [`PeerFirewall`] decides
//! what a peer reaches there, with iptables rules on the host (or in a namespace):
//!
//! - on the host, only the platform's TCP ports on the gateway's tunnel address: no UDP, no
//!   other port, none of the host's other addresses (the bridges' gateways among them);
//! - through the host, its own team's services (their addresses and ports) at any time, and
//!   every defending team's services while attacks are open
//!   ([`PeerFirewall::set_attacks_open`]); never another team's peer, nor the internet;
//! - with `anonymise`, its connections to the game networks leave with the host's address, so
//!   a service cannot tell attackers from the checkers.
//!
//! Four chains named after the drill ([`PeerChains`]): `GF-VIN-<tag>` first in `INPUT`,
//! `GF-VFW-<tag>` first in Docker's `DOCKER-USER` (or `FORWARD` without Docker) and accepting
//! what it allows there, since Docker's rules after it would drop a new connection from the
//! tunnel into a bridge, `GF-VAT-<tag>` holding the attack rules, and `GF-VNAT-<tag>` first in
//! the nat table's `POSTROUTING`. They are filled in one `iptables-restore --noflush` batch
//! ([`PeerFirewall::ruleset`] shows it) before they are hooked, so no other rule is touched.
//! [`remove_leftover_firewall`] removes them for a drill whose platform was killed. IPv4 only:
//! the gateway gives its peers IPv4 addresses alone, and WireGuard drops any packet whose
//! source is not a peer's allowed address.

mod config;
mod conntrack;
mod firewall;
mod gateway;
mod keys;
mod plan;

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

pub use config::{KEEPALIVE_SECONDS, PeerConfig};
pub use conntrack::{MAX_LINE, Translation, TranslationWatcher, WatcherConfig};
pub use firewall::{DefendingTeam, PeerChains, PeerFirewall, PeerFirewallConfig, remove_leftover_firewall};
pub use gateway::{
    Backend, BackendChoice, Gateway, GatewayConfig, GatewayPeer, PeerStatus, Programs, interface_name, read_interface,
    remove_interface, update_interface,
};
pub use ipnet;
pub use keys::{PresharedKey, PrivateKey, PublicKey};
pub use plan::{AddressPlan, TeamAddresses, TeamPeers};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("malformed {kind} key: expected 44 characters of base64, as `wg genkey` writes them")]
    Key { kind: &'static str },
    #[error(
        "the gateway's address {gateway} is not a host of the VPN range {range}: pick an address inside it, \
         neither its first nor its last"
    )]
    GatewayOutsideRange { gateway: Ipv4Addr, range: Ipv4Net },
    #[error(
        "the VPN range {range} is too small for {teams} teams of up to {peers_per_team} peer(s) each{}",
        suggestion.map_or_else(String::new, |s| format!(": use a larger one, e.g. {s}"))
    )]
    RangeTooSmall { range: Ipv4Net, teams: usize, peers_per_team: u32, suggestion: Option<Ipv4Net> },
    #[error("peer config: {0}")]
    Config(String),
    #[error("{name:?} is not a usable {what} name: {why}")]
    Name { what: &'static str, name: String, why: &'static str },
    #[error("{program} not found: install Debian's {package} package (apt-get install {package})")]
    ProgramMissing { program: String, package: &'static str },
    #[error("could not run {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("`{command}` failed ({status}): {stderr}{hint}")]
    Command { command: String, status: String, stderr: String, hint: &'static str },
    #[error("network interface {0} already exists: choose another name, or remove it with `ip link del {0}`")]
    InterfaceExists(String),
    #[error("wireguard-go exited before interface {interface} came up ({status}): {stderr}")]
    Exited { interface: String, status: String, stderr: String },
    #[error("wireguard-go did not create interface {interface} within {seconds} s")]
    Timeout { interface: String, seconds: u64 },
    #[error("unexpected output from `wg show {interface} dump`: {why}")]
    Status { interface: String, why: String },
    #[error("peer firewall: {0}")]
    Firewall(String),
    #[error("the peer firewall of drill {drill} is not installed (chain {chain} is missing): apply it first")]
    FirewallNotInstalled { drill: String, chain: String },
}
