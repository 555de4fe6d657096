//! `gongfang vpn config|status|log|shell-key`: teams' WireGuard configs (with an SSH key per
//! peer for the team's shells), who is connected, whom the gateway's anonymised connections came
//! from (`log`, in [`crate::vpn_log`]), and the SSH keys registered for teams' shells.
//!
//! `config` makes a key pair per peer, stores the public keys and addresses, and writes one
//! `wg-quick` file per peer (`DIR/TEAM-N.conf`, readable by its owner only). The private keys
//! are only in those files: shown once, like tokens, never stored, logged or audited. Running
//! it again is refused unless `--rotate`, which issues new key pairs in place of the old ones;
//! a gateway of the drill running on this machine takes the new keys at once.
//! `status` lists every team's peers and, when the drill's gateway runs on this machine, each
//! peer's last handshake. `up` and `serve` run the gateway ([`start_gateway`]) while the
//! platform runs, with the firewall rules of what its peers may reach ([`guard_gateway`]); `down`
//! removes what a killed platform left behind ([`remove_leftover_gateway`]).

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use gongfang::drill::{Addresses, VpnAccess};
use gongfang_core::scenario::{Ipv4Net, Scenario, VpnRules};
use gongfang_core::{TeamConnection, TeamId};
use gongfang_reports::{Reissued, SecretFile, VpnFuture, VpnRefusal};
use gongfang_store::{NewVpnPeer, Store, StoreError, VpnIssue, VpnPeer};
use gongfang_vpn::{
    AddressPlan, BackendChoice, DefendingTeam, Gateway, GatewayConfig, GatewayPeer, KEEPALIVE_SECONDS, PeerConfig,
    PeerFirewall, PeerFirewallConfig, PeerStatus, PrivateKey, Programs, TeamPeers,
};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::migrate::DatabaseArgs;
use crate::scenario_file;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: VpnCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum VpnCommand {
    /// Write a team's WireGuard configs, one wg-quick file per peer. The private keys are only
    /// in these files: hand them to the team; they cannot be shown again.
    Config(ConfigArgs),
    /// List each team's peers with their addresses and, when the drill's gateway runs on this
    /// machine, their last handshake.
    Status(StatusArgs),
    /// Print the gateway's translation log: which team's peer made each connection into the
    /// game networks, and the address the service saw.
    Log(crate::vpn_log::LogArgs),
    /// Register, list or remove the SSH keys that open a team's shells, besides the ones
    /// `config` generates with each peer.
    ShellKey(ShellKeyArgs),
}

#[derive(Debug, clap::Args)]
pub struct ShellKeyArgs {
    #[command(subcommand)]
    pub action: ShellKeyAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum ShellKeyAction {
    /// Register a team's public key (the one line of its `.pub` file; Ed25519 or ECDSA).
    Add {
        #[command(flatten)]
        common: Common,
        /// The team's slug.
        team: String,
        /// The public key file, e.g. ~/.ssh/id_ed25519.pub.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// What the key is, for people (default: the key's comment, else the file's name).
        #[arg(long)]
        label: Option<String>,
    },
    /// List a team's keys: generated with its peers, and registered.
    List {
        #[command(flatten)]
        common: Common,
        /// The team's slug.
        team: String,
    },
    /// Remove a registered key by its number in `list`.
    Remove {
        #[command(flatten)]
        common: Common,
        /// The team's slug.
        team: String,
        /// The key's number, as `list` shows it.
        id: i64,
    },
}

/// Options shared by every `vpn` subcommand.
#[derive(Debug, clap::Args)]
pub struct Common {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The drill's scenario, with its `[vpn]` table; its teams are loaded into the database.
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// Who is doing this, for the audit log (default: the `USER` environment variable).
    #[arg(long)]
    pub actor: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub common: Common,
    /// The team's slug.
    pub team: String,
    /// The folder to write the configs to (created, readable by its owner only).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Issue new key pairs in place of configs already issued: the old configs stop working.
    #[arg(long)]
    pub rotate: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: Common,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        match args.command {
            VpnCommand::Config(a) => config(a).await,
            VpnCommand::Status(a) => status(a).await,
            VpnCommand::Log(a) => crate::vpn_log::log(a).await,
            VpnCommand::ShellKey(a) => shell_key(a).await,
        }
    })
}

impl Common {
    fn actor(&self) -> String {
        self.actor
            .clone()
            .filter(|a| !a.trim().is_empty())
            .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "unknown".to_owned())
    }

    /// The scenario and its `[vpn]` table, and the database with the scenario's teams in it.
    async fn open(&self) -> anyhow::Result<(Scenario, VpnRules, Store)> {
        let scenario = scenario_file::load(&self.scenario)?;
        let Some(vpn) = scenario.vpn.clone() else {
            bail!(
                "the scenario {} has no [vpn] table: add one (listen, range) to give teams WireGuard access; \
                 see docs/scenario.md",
                self.scenario.display()
            );
        };
        let store = self.db.open().await?;
        let report = store.sync_scenario(&scenario).await?;
        if report != Default::default() {
            store
                .append_audit(
                    Utc::now(),
                    &self.actor(),
                    "scenario.sync",
                    &json!({
                        "scenario": self.scenario.display().to_string(),
                        "teams_added": report.teams_added,
                        "teams_updated": report.teams_updated,
                        "services_added": report.services_added,
                        "services_updated": report.services_updated,
                    }),
                )
                .await?;
        }
        Ok((scenario, vpn, store))
    }
}

fn ipnet(net: Ipv4Net) -> anyhow::Result<gongfang_vpn::ipnet::Ipv4Net> {
    Ok(gongfang_vpn::ipnet::Ipv4Net::new(net.addr, net.prefix)?)
}

/// Every team's addresses: each team of the scenario, in order, with `peers_per_team` peers.
pub(crate) fn address_plan(scenario: &Scenario, vpn: &VpnRules) -> anyhow::Result<AddressPlan> {
    let teams: Vec<TeamPeers> =
        scenario.teams.iter().map(|t| TeamPeers { team: t.slug.clone(), peers: vpn.peers_per_team }).collect();
    Ok(AddressPlan::allocate(ipnet(vpn.range)?, vpn.gateway, &teams)?)
}

/// What a team's tunnel carries: the networks of the teams that run services.
fn game_networks(scenario: &Scenario) -> anyhow::Result<Vec<gongfang_vpn::ipnet::Ipv4Net>> {
    scenario.defenders().map(|t| ipnet(t.network)).collect()
}

/// The `wg-quick` config of peer `n` of team `slug`, with its private key.
#[allow(clippy::too_many_arguments)]
fn peer_config(
    scenario: &Scenario,
    vpn: &VpnRules,
    slug: &str,
    n: u32,
    key: &PrivateKey,
    address: std::net::Ipv4Addr,
    gateway_key: &PrivateKey,
    networks: &[gongfang_vpn::ipnet::Ipv4Net],
) -> Result<gongfang_core::Secret<String>, gongfang_vpn::Error> {
    PeerConfig {
        title: format!("drill {}, team {slug}, peer {n}", scenario.drill.slug),
        private_key: key.clone(),
        address,
        gateway_public_key: gateway_key.public_key(),
        preshared_key: None,
        endpoint: vpn.endpoint(),
        game_networks: networks.to_vec(),
        gateway_address: vpn.gateway,
        keepalive_seconds: Some(KEEPALIVE_SECONDS),
    }
    .render()
}

/// Teams' fresh configs (from their portal, or in a credential pack from the console), on the
/// gateway running in this process: new keys for one peer, its public key stored in place of
/// the old one, the gateway told to swap them. The peer keeps its number and address, and its
/// shell key unless a new one is asked for; a peer the team was never issued (a team added
/// during the drill) gets the address the plan gives it.
pub struct GatewayConfigs {
    scenario: Arc<Scenario>,
    store: Store,
    /// Held from storing a new key until the gateway has it: two downloads at once (the same
    /// peer twice, say) would otherwise tell the gateway in the other order than they stored.
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl GatewayConfigs {
    pub fn new(scenario: Arc<Scenario>, store: Store) -> GatewayConfigs {
        GatewayConfigs { scenario, store, one_at_a_time: tokio::sync::Mutex::new(()) }
    }

    async fn reissue(
        &self,
        team: &gongfang_core::scenario::Team,
        peer: u32,
        shell_key: bool,
    ) -> Result<Reissued, VpnRefusal> {
        let failed = |what: &str, error: &dyn std::fmt::Display| VpnRefusal::Failed(format!("{what}: {error}"));
        let _one = self.one_at_a_time.lock().await;
        let Some(vpn) = &self.scenario.vpn else { return Err(VpnRefusal::NoVpn) };
        let issued = self.store.vpn_peers_of(team.id).await.map_err(|e| failed("reading the team's peers", &e))?;
        let current = issued.iter().find(|p| p.peer == peer);
        // A peer never issued (a team added during the drill) gets the address the plan gives
        // it, within the scenario's peers per team.
        let address = match current {
            Some(current) => current.address,
            None => {
                let plan = address_plan(&self.scenario, vpn).map_err(|e| failed("the address plan", &e))?;
                let planned =
                    plan.team(&team.slug).and_then(|t| t.peers.get(usize::try_from(peer).ok()?.checked_sub(1)?));
                *planned.ok_or(VpnRefusal::UnknownPeer(peer))?
            }
        };
        let gateway_key = self.store.vpn_gateway_key().await.map_err(|e| failed("reading the gateway's key", &e))?;
        let gateway_key = PrivateKey::from_bytes(*gateway_key.expose());
        let networks = game_networks(&self.scenario).map_err(|e| failed("the game networks", &e))?;
        let key = PrivateKey::generate();
        let text = peer_config(&self.scenario, vpn, &team.slug, peer, &key, address, &gateway_key, &networks)
            .map_err(|e| failed("writing the config", &e))?;
        let public_key = key.public_key().to_base64();
        let stored = match current {
            Some(_) => self
                .store
                .rotate_vpn_peer(team.id, peer, &public_key, Utc::now())
                .await
                .map(|r| r.map(|(old, new)| (Some(old), new))),
            None => {
                let first = NewVpnPeer { peer, public_key: public_key.clone(), address, shell_key: None };
                self.store.add_vpn_peer(team.id, &first, Utc::now()).await.map(|r| r.map(|new| (None, new)))
            }
        };
        let Some((old, new)) = stored.map_err(|e| failed("storing the new key", &e))? else {
            // Removed, or issued, meanwhile by another hand: nothing here changed.
            return Err(VpnRefusal::Failed("the team's peers changed meanwhile; ask again".to_owned()));
        };
        let parse = |text: &str| text.parse::<gongfang_vpn::PublicKey>();
        let removed: Vec<_> = old.iter().filter_map(|old| parse(&old.public_key).ok()).collect();
        let added = GatewayPeer {
            public_key: parse(&new.public_key).map_err(|e| failed("the new key", &e))?,
            preshared_key: None,
            addresses: vec![new.address],
        };
        let interface = gongfang_vpn::interface_name(&self.scenario.drill.slug);
        let told = tokio::task::spawn_blocking(move || {
            gongfang_vpn::update_interface(&interface, None, &Programs::default(), &removed, &[added])
        })
        .await
        .map_err(|e| failed("telling the gateway", &e))?;
        let refused = match told {
            Ok(true) => None,
            Ok(false) => Some("the drill's gateway is not running on this machine".to_owned()),
            Err(error) => Some(format!("the gateway did not take the new key: {error}")),
        };
        if let Some(why) = refused {
            // The gateway still takes the old key (or none): the store says so again, so the
            // team's old config keeps working, now and after a restart.
            let undone = match &old {
                Some(old) => self.store.restore_vpn_peer(old, &new.public_key).await,
                None => self.store.withdraw_vpn_peer(team.id, peer, &new.public_key).await,
            };
            if let Err(error) = undone {
                tracing::error!(team = %team.slug, peer, %error, "could not restore a peer's key the gateway kept");
            }
            return Err(VpnRefusal::Failed(why));
        }
        tracing::info!(team = %team.slug, peer, "a team's VPN peer got fresh keys");
        let config = SecretFile { file_name: file_name(&team.slug, peer), text };
        if !shell_key {
            return Ok(Reissued { config, shell_key: None });
        }
        // Made once the gateway has the new key: a refused config leaves the peer's shell key.
        let comment = format!("{} {} peer {peer}", self.scenario.drill.slug, team.slug);
        let (private, public) =
            gongfang::shell::generate_key(&comment).map_err(|e| failed("making a shell key", &e))?;
        self.store.replace_peer_shell_key(team.id, peer, &public, Utc::now()).await.map_err(|e| {
            failed("storing the new shell key (the new config is in place, the old one no longer works)", &e)
        })?;
        let shell_key = SecretFile { file_name: shell_key_file_name(&team.slug, peer), text: private };
        Ok(Reissued { config, shell_key: Some(shell_key) })
    }
}

impl gongfang_reports::VpnAccess for GatewayConfigs {
    fn reissue<'a>(&'a self, team: &'a gongfang_core::scenario::Team, peer: u32, shell_key: bool) -> VpnFuture<'a> {
        Box::pin(GatewayConfigs::reissue(self, team, peer, shell_key))
    }
}

/// The config file of peer `n` of `team`.
fn file_name(team: &str, n: u32) -> String {
    format!("{team}-{n}.conf")
}

/// The SSH private key generated with peer `n` of `team`, for its shell entry.
fn shell_key_file_name(team: &str, n: u32) -> String {
    format!("{team}-{n}.ssh")
}

/// Where a file is written before it is moved into place.
fn temporary_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    path.with_file_name(name)
}

/// The team's position in the scenario, which numbers its shell entry's port.
pub(crate) fn team_position(scenario: &Scenario, slug: &str) -> Option<usize> {
    scenario.teams.iter().position(|t| t.slug == slug)
}

pub(crate) async fn config(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let (scenario, vpn, store) = args.common.open().await?;
    let Some(team) = scenario.teams.iter().find(|t| t.slug == args.team) else {
        let known: Vec<&str> = scenario.teams.iter().map(|t| t.slug.as_str()).collect();
        bail!("no team `{}` in the scenario; its teams are: {}", args.team, known.join(", "));
    };
    let issued = store.vpn_peers_of(team.id).await?;
    if !issued.is_empty() && !args.rotate {
        bail!("{}", already_issued(&team.slug, &issued));
    }
    let plan = address_plan(&scenario, &vpn)?;
    let addresses = plan.team(&team.slug).context("the address plan has every team of the scenario")?;
    let gateway_key = PrivateKey::from_bytes(*store.vpn_gateway_key().await?.expose());
    let networks = game_networks(&scenario)?;

    // Every file is rendered before anything is stored or written: a config that cannot work
    // (an endpoint inside the tunnel) changes nothing.
    let mut peers = Vec::new();
    let mut files = Vec::new();
    let shell_entry = team_position(&scenario, &team.slug).and_then(|p| vpn.shell_port_of(p));
    for (n, address) in (1..).zip(&addresses.peers) {
        let (shell_private, shell_public) =
            gongfang::shell::generate_key(&format!("{} {} peer {n}", scenario.drill.slug, team.slug))?;
        files.push((args.out.join(shell_key_file_name(&team.slug, n)), shell_private));
        let key = PrivateKey::generate();
        let text = peer_config(&scenario, &vpn, &team.slug, n, &key, *address, &gateway_key, &networks)?;
        peers.push(NewVpnPeer {
            peer: n,
            public_key: key.public_key().to_base64(),
            address: *address,
            shell_key: Some(shell_public),
        });
        files.push((args.out.join(file_name(&team.slug, n)), text));
    }

    make_private_dir(&args.out)?;
    // Written under temporary names first, so a refusal by the store leaves no key behind and
    // configs of an earlier issue are replaced only once the new keys are stored.
    let mut pending = Vec::new();
    for (path, text) in &files {
        let temporary = temporary_name(path);
        write_private(&temporary, text.expose().as_bytes())
            .with_context(|| format!("writing {}", temporary.display()))
            .inspect_err(|_| remove_all(&pending))?;
        pending.push(temporary);
    }
    let now = Utc::now();
    let stored = match store.issue_vpn_peers(&team.slug, &peers, args.rotate, now).await {
        Ok(VpnIssue::Issued(stored)) => stored,
        Ok(VpnIssue::AlreadyIssued(issued)) => {
            remove_all(&pending);
            bail!("{}", already_issued(&team.slug, &issued));
        }
        Err(StoreError::UnknownTeam(slug)) => {
            remove_all(&pending);
            bail!("no team with slug `{slug}` in the database");
        }
        Err(error) => {
            remove_all(&pending);
            return Err(error.into());
        }
    };
    for ((path, _), temporary) in files.iter().zip(&pending) {
        std::fs::rename(temporary, path)
            .with_context(|| format!("moving the config into place at {}", path.display()))?;
    }
    let action = if issued.is_empty() { "vpn.config.issue" } else { "vpn.config.rotate" };
    store
        .append_audit(
            now,
            &args.common.actor(),
            action,
            &json!({
                "team": team.slug,
                "id": team.id.0,
                "peers": stored.iter().map(|p| json!({ "peer": p.peer, "address": p.address.to_string() })).collect::<Vec<_>>(),
            }),
        )
        .await?;
    store.close().await?;

    // A gateway running on this machine takes the new keys now and refuses the old ones.
    let interface = gongfang_vpn::interface_name(&scenario.drill.slug);
    let removed: Vec<gongfang_vpn::PublicKey> = issued.iter().filter_map(|p| p.public_key.parse().ok()).collect();
    let added = stored
        .iter()
        .map(|p| Ok(GatewayPeer { public_key: p.public_key.parse()?, preshared_key: None, addresses: vec![p.address] }))
        .collect::<Result<Vec<_>, gongfang_vpn::Error>>()?;
    let running = {
        let interface = interface.clone();
        tokio::task::spawn_blocking(move || {
            gongfang_vpn::update_interface(&interface, None, &Programs::default(), &removed, &added)
        })
        .await?
    };
    match running {
        Ok(true) => println!("the drill's running gateway ({interface}) took the new keys"),
        Ok(false) | Err(gongfang_vpn::Error::ProgramMissing { .. }) => {}
        Err(error) => eprintln!(
            "warning: the drill's gateway ({interface}) runs here but did not take the new keys: {error}; \
             restart `gongfang up` so that it does{}",
            if issued.is_empty() { "" } else { " (until then it still accepts the old ones)" }
        ),
    }

    let verb = if issued.is_empty() { "issued" } else { "rotated (the old configs and shell keys no longer work)" };
    println!("{} WireGuard configs for team {} {verb}:", stored.len(), team.slug);
    for peer in &stored {
        println!(
            "  {}  address {}; shell key {}",
            args.out.join(file_name(&team.slug, peer.peer)).display(),
            peer.address,
            args.out.join(shell_key_file_name(&team.slug, peer.peer)).display()
        );
    }
    if let Some(port) = shell_entry {
        println!(
            "  shells in the team's own services: ssh -i {} -p {port} SERVICE@{}",
            args.out.join(shell_key_file_name(&team.slug, 1)).display(),
            vpn.gateway
        );
    }
    if file_name(&team.slug, vpn.peers_per_team).len() > "123456789012345.conf".len() {
        eprintln!(
            "note: wg-quick names the interface after the file, at most 15 characters: \
             rename the files (e.g. gf1.conf) before `wg-quick up`"
        );
    }
    eprintln!(
        "warning: the private keys are only in these files (readable by their owner only) and cannot be shown \
         again; hand each file to one machine of the team."
    );
    Ok(ExitCode::SUCCESS)
}

async fn shell_key(args: ShellKeyArgs) -> anyhow::Result<ExitCode> {
    let common = match &args.action {
        ShellKeyAction::Add { common, .. }
        | ShellKeyAction::List { common, .. }
        | ShellKeyAction::Remove { common, .. } => common,
    };
    let (scenario, _vpn, store) = common.open().await?;
    let team_named = |slug: &str| {
        scenario.teams.iter().find(|t| t.slug == slug).cloned().with_context(|| {
            let known: Vec<&str> = scenario.teams.iter().map(|t| t.slug.as_str()).collect();
            format!("no team `{slug}` in the scenario; its teams are: {}", known.join(", "))
        })
    };
    match &args.action {
        ShellKeyAction::Add { team, key, label, .. } => {
            let team = team_named(team)?;
            let text = std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
            let public = gongfang_core::shell_key::parse_public_key(&text)
                .with_context(|| format!("the key in {}", key.display()))?;
            let label = label
                .clone()
                .or(public.comment)
                .unwrap_or_else(|| key.file_name().unwrap_or_default().to_string_lossy().into_owned());
            let public = public.line;
            match store.register_shell_key(&team.slug, &public, &label, Utc::now()).await? {
                gongfang_store::ShellKeyAdded::Added(added) => {
                    store
                        .append_audit(
                            Utc::now(),
                            &common.actor(),
                            "shell.key.add",
                            &json!({ "team": team.slug, "key": added.id, "label": added.label }),
                        )
                        .await?;
                    println!(
                        "registered key {} ({}) for team {}: it opens the team's shells now",
                        added.id, added.label, team.slug
                    );
                }
                gongfang_store::ShellKeyAdded::Taken(owner) if owner == team.id => {
                    bail!(
                        "team {} has this key already; `gongfang vpn shell-key list {}` shows it",
                        team.slug,
                        team.slug
                    )
                }
                gongfang_store::ShellKeyAdded::Taken(_) => {
                    bail!("this key belongs to another team; every team needs keys of its own (ssh-keygen -t ed25519)")
                }
            }
        }
        ShellKeyAction::List { team, .. } => {
            let team = team_named(team)?;
            let keys = store.shell_keys_of(team.id).await?;
            if keys.is_empty() {
                println!("team {} has no shell keys: `gongfang vpn config` generates one per peer", team.slug);
            }
            for key in keys {
                let origin = match key.peer {
                    Some(peer) => format!("generated with peer {peer}"),
                    None => "registered".to_owned(),
                };
                println!(
                    "{:>4}  {:<24} {origin}, {}  {}",
                    key.id,
                    key.label,
                    key.added_at.format("%Y-%m-%d %H:%M UTC"),
                    key.public_key
                );
            }
        }
        ShellKeyAction::Remove { team, id, .. } => {
            let team = team_named(team)?;
            if !store.remove_shell_key(&team.slug, *id).await? {
                bail!(
                    "team {} has no registered key {id} (keys generated with a peer go when its config is rotated); \
                     `gongfang vpn shell-key list {}` shows its keys",
                    team.slug,
                    team.slug
                );
            }
            store
                .append_audit(Utc::now(), &common.actor(), "shell.key.remove", &json!({ "team": team.slug, "key": id }))
                .await?;
            println!("removed key {id} of team {}: it opens no shell from now on", team.slug);
        }
    }
    store.close().await?;
    Ok(ExitCode::SUCCESS)
}

/// The refusal of a second issue without `--rotate`.
fn already_issued(team: &str, issued: &[VpnPeer]) -> String {
    let first = issued.iter().map(|p| p.issued_at).min().map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string());
    format!(
        "team {team} already has {} WireGuard configs (issued {}); their private keys were shown only then. \
         To issue new ones, run again with --rotate: the old configs stop working",
        issued.len(),
        first.unwrap_or_default()
    )
}

/// Creates `dir` (and missing parents) readable by its owner only; an existing folder is kept
/// as it is, but one others can read is refused.
pub(crate) fn make_private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let meta = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("--out {} is not a folder", dir.display());
    }
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "--out {} can be read by other users (mode {:o}): use a new folder, or `chmod 700` it first",
            dir.display(),
            meta.permissions().mode() & 0o777
        );
    }
    Ok(())
}

pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // An earlier file of the same name keeps its mode through `open`: set it again.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn remove_all(paths: &[PathBuf]) {
    for path in paths {
        let _ = std::fs::remove_file(path);
    }
}

async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let (scenario, _vpn, store) = args.common.open().await?;
    let peers = store.vpn_peers().await?;
    store.close().await?;
    let interface = gongfang_vpn::interface_name(&scenario.drill.slug);
    let live: Option<Vec<PeerStatus>> =
        match tokio::task::spawn_blocking(move || gongfang_vpn::read_interface(&interface, None, &Programs::default()))
            .await?
        {
            Ok(Some(live)) => Some(live),
            Ok(None) => {
                eprintln!(
                    "the drill's gateway ({}) is not running on this machine: no handshakes to show",
                    gongfang_vpn::interface_name(&scenario.drill.slug)
                );
                None
            }
            Err(error) => {
                eprintln!("cannot read the drill's gateway: {error}");
                None
            }
        };
    let now = SystemTime::now();
    println!("{:<20} {:>4}  {:<15} {:<44}  {:<20} LAST HANDSHAKE", "TEAM", "PEER", "ADDRESS", "PUBLIC KEY", "ISSUED");
    for team in &scenario.teams {
        let mine: Vec<&VpnPeer> = peers.iter().filter(|p| p.team == team.id).collect();
        if mine.is_empty() {
            println!("{:<20} {:>4}  no configs issued (gongfang vpn config {} --out DIR)", team.slug, "-", team.slug);
            continue;
        }
        for peer in mine {
            let handshake = match &live {
                None => "-".to_owned(),
                Some(live) => match live.iter().find(|s| s.public_key.to_base64() == peer.public_key) {
                    None => "not on the gateway".to_owned(),
                    Some(PeerStatus { latest_handshake: None, .. }) => "never".to_owned(),
                    Some(PeerStatus { latest_handshake: Some(at), .. }) => {
                        let ago = now.duration_since(*at).map(|d| d.as_secs()).unwrap_or(0);
                        format!("{} ({ago} s ago)", DateTime::<Utc>::from(*at).format("%Y-%m-%d %H:%M:%S UTC"))
                    }
                },
            };
            let issued = peer.rotated_at.unwrap_or(peer.issued_at).format("%Y-%m-%d %H:%M UTC").to_string();
            println!(
                "{:<20} {:>4}  {:<15} {:<44}  {:<20} {handshake}",
                team.slug,
                peer.peer,
                peer.address.to_string(),
                peer.public_key,
                issued
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts the drill's WireGuard gateway when the scenario has `[vpn]`, with the database's key
/// and every issued peer; `None` without `[vpn]`. What `up` and `serve` run; stop it with
/// [`stop_gateway`] (dropping it removes it too).
pub async fn start_gateway(scenario: &Scenario, store: &Store) -> anyhow::Result<Option<Gateway>> {
    let Some(vpn) = &scenario.vpn else { return Ok(None) };
    let config = GatewayConfig {
        interface: gongfang_vpn::interface_name(&scenario.drill.slug),
        namespace: None,
        private_key: PrivateKey::from_bytes(*store.vpn_gateway_key().await?.expose()),
        listen_port: vpn.listen_port,
        address: gongfang_vpn::ipnet::Ipv4Net::new(vpn.gateway, vpn.range.prefix)?,
        backend: BackendChoice::Auto,
        programs: Programs::default(),
    };
    let peers = store.vpn_peers().await?;
    let gateway = tokio::task::spawn_blocking(move || -> anyhow::Result<Gateway> {
        // The interface is named after this drill: one there now is this drill's, left by a
        // platform that was killed.
        if gongfang_vpn::remove_interface(&config.interface, None, &config.programs)? {
            tracing::warn!(interface = %config.interface, "removed the gateway a killed platform left behind");
        }
        let gateway = Gateway::start(config)?;
        for peer in &peers {
            let public_key = peer.public_key.parse().with_context(|| format!("the stored key of {}", peer.address))?;
            gateway.add_peer(&GatewayPeer { public_key, preshared_key: None, addresses: vec![peer.address] })?;
        }
        Ok(gateway)
    })
    .await?
    .context("starting the drill's WireGuard gateway (the scenario's [vpn] table)")?;
    Ok(Some(gateway))
}

/// What the running drill needs for teams on the VPN: the scoreboard's and the TCP
/// submission's ports also on the gateway's tunnel address (unless the platform already
/// listens on every address), each team's block of tunnel addresses, the connections as the
/// gateway shows them, and the switch that opens and closes the attack paths (its receiver is
/// returned beside, for the firewall).
pub async fn access(
    scenario: &Scenario,
    store: &Store,
    web: SocketAddr,
    submit: SocketAddr,
) -> anyhow::Result<(VpnAccess, watch::Receiver<bool>)> {
    let vpn = scenario.vpn.as_ref().context("the drill's gateway runs only with a [vpn] table")?;
    let plan = address_plan(scenario, vpn)?;
    let blocks = plan
        .teams
        .iter()
        .filter_map(|t| {
            let team = scenario.teams.iter().find(|s| s.slug == t.team)?;
            Some((Ipv4Net { addr: t.block.network(), prefix: t.block.prefix_len() }, team.id))
        })
        .collect();
    let on_gateway = |main: SocketAddr, what: &'static str| async move {
        if main.ip().is_unspecified() {
            return Ok(None);
        }
        let address = SocketAddr::from((vpn.gateway, main.port()));
        TcpListener::bind(address)
            .await
            .map(Some)
            .with_context(|| format!("cannot listen on {address} (the WireGuard gateway's address) for {what}"))
    };
    let (attacks_open, attacks) = watch::channel(false);
    let access = VpnAccess {
        web: on_gateway(web, "the scoreboard").await?,
        submit_tcp: on_gateway(submit, "flag submission").await?,
        blocks,
        connections: watch_connections(scenario, store.clone()),
        attacks_open,
    };
    Ok((access, attacks))
}

/// The gateway's firewall while the drill runs, following the attack switch.
#[derive(Debug)]
pub struct PeerRules {
    firewall: Arc<PeerFirewall>,
    follower: tokio::task::JoinHandle<()>,
}

/// Installs what the drill's peers may reach (docs/network.md): the platform's `ports` on the
/// gateway's address, each team's own shell entry and services at any time, and every defending team's
/// services while `attacks` says they are open, which the rules follow from then on; nothing
/// but the platform's ports for the teams organisers took out of the drill, which the rules
/// follow too (the store says when they change).
pub async fn guard_gateway(
    scenario: &Scenario,
    addresses: &Addresses,
    ports: Vec<u16>,
    mut attacks: watch::Receiver<bool>,
    store: &Store,
) -> anyhow::Result<PeerRules> {
    let vpn = scenario.vpn.as_ref().context("the drill's gateway runs only with a [vpn] table")?;
    let plan = address_plan(scenario, vpn)?;
    let teams = plan
        .teams
        .iter()
        .map(|planned| {
            let id = scenario.teams.iter().find(|t| t.slug == planned.team).map(|t| t.id);
            let services: Vec<_> = addresses
                .iter()
                .filter(|((team, _), _)| Some(*team) == id)
                .filter_map(|(_, target)| match target.address {
                    std::net::IpAddr::V4(address) => Some((address, target.ports.clone())),
                    std::net::IpAddr::V6(_) => None,
                })
                .collect();
            // Its shell entry, when it defends a service it patches in place.
            let shell_port = (!services.is_empty()
                && scenario.services.iter().any(|s| s.patch_mode == gongfang_core::scenario::PatchMode::Vulnbox))
            .then(|| team_position(scenario, &planned.team).and_then(|p| vpn.shell_port_of(p)))
            .flatten();
            DefendingTeam { slug: planned.team.clone(), block: planned.block, services, shell_port }
        })
        .collect();
    let firewall = PeerFirewall::new(PeerFirewallConfig {
        drill_slug: scenario.drill.slug.clone(),
        interface: gongfang_vpn::interface_name(&scenario.drill.slug),
        gateway: vpn.gateway,
        vpn_range: ipnet(vpn.range)?,
        platform_ports: ports,
        game_networks: game_networks(scenario)?,
        teams,
        anonymise: vpn.anonymise,
        attacks_open: *attacks.borrow_and_update(),
        forward_parent: None,
        namespace: None,
    })?;
    let firewall = Arc::new(firewall);
    {
        let firewall = Arc::clone(&firewall);
        tokio::task::spawn_blocking(move || firewall.apply())
            .await?
            .context("installing the WireGuard gateway's firewall rules")?;
    }
    let mut disabled = store.disabled_watch();
    disabled.mark_changed();
    // One task follows both, so the two kinds of change never refill the chains at once.
    let follower = {
        let (firewall, store, scenario) = (Arc::clone(&firewall), store.clone(), scenario.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = attacks.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let open = *attacks.borrow_and_update();
                        let firewall = Arc::clone(&firewall);
                        match tokio::task::spawn_blocking(move || firewall.set_attacks_open(open)).await {
                            Ok(Ok(())) => tracing::info!(open, "attack paths through the WireGuard gateway switched"),
                            Ok(Err(error)) => tracing::error!(open, %error, "cannot switch the attack paths"),
                            Err(error) => tracing::error!(open, %error, "cannot switch the attack paths"),
                        }
                    }
                    Ok(()) = disabled.changed() => {
                        disabled.borrow_and_update();
                        cut_out_of_drill(&firewall, &store, &scenario).await;
                    }
                }
            }
        })
    };
    Ok(PeerRules { firewall, follower })
}

/// Has the firewall cut off the teams the store says are out of the drill, and only those.
async fn cut_out_of_drill(firewall: &Arc<PeerFirewall>, store: &Store, scenario: &Scenario) {
    let out: std::collections::BTreeSet<String> = match store.disabled_teams().await {
        Ok(ids) => ids.iter().filter_map(|id| scenario.team(*id)).map(|t| t.slug.clone()).collect(),
        Err(error) => {
            tracing::error!(%error, "cannot read the teams out of the drill; the gateway's rules stay as they are");
            return;
        }
    };
    if out == firewall.out_of_drill() {
        return;
    }
    let firewall = Arc::clone(firewall);
    let shown = out.clone();
    match tokio::task::spawn_blocking(move || firewall.set_out_of_drill(&out)).await {
        Ok(Ok(cut)) => tracing::info!(out = ?shown, cut, "teams out of the drill cut off at the WireGuard gateway"),
        Ok(Err(error)) => tracing::error!(out = ?shown, %error, "cannot cut off the teams out of the drill"),
        Err(error) => tracing::error!(out = ?shown, %error, "cannot cut off the teams out of the drill"),
    }
}

impl PeerRules {
    /// Removes the rules: nothing reaches through the gateway any more.
    pub async fn remove(self) {
        self.follower.abort();
        let _ = self.follower.await;
        match tokio::task::spawn_blocking(move || self.firewall.remove()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "removing the WireGuard gateway's firewall rules"),
            Err(error) => tracing::warn!(%error, "removing the WireGuard gateway's firewall rules"),
        }
    }
}

/// Stops the gateway: its interface is removed and `wireguard-go` ends.
pub async fn stop_gateway(gateway: Gateway) {
    let interface = gateway.interface().to_owned();
    match tokio::task::spawn_blocking(move || gateway.stop()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%interface, "stopping the WireGuard gateway: {error}"),
        Err(error) => tracing::warn!(%interface, "stopping the WireGuard gateway: {error}"),
    }
}

/// Removes the drill's gateway interface and its firewall rules if a platform that was killed
/// left them behind; whether there were any.
pub fn remove_leftover_gateway(drill_slug: &str) -> anyhow::Result<bool> {
    let interface = gongfang_vpn::interface_name(drill_slug);
    let rules = match gongfang_vpn::remove_leftover_firewall(drill_slug, None) {
        Ok(removed) => removed,
        // Without iptables this machine runs no gateway.
        Err(gongfang_vpn::Error::ProgramMissing { .. }) => false,
        Err(error) => return Err(error).context("removing the drill's WireGuard firewall rules"),
    };
    let link = match gongfang_vpn::remove_interface(&interface, None, &Programs::default()) {
        Ok(removed) => removed,
        Err(gongfang_vpn::Error::ProgramMissing { .. }) => false,
        Err(error) => return Err(error).with_context(|| format!("removing the drill's WireGuard gateway {interface}")),
    };
    Ok(rules || link)
}

/// A handshake older than this means the peer's session has lapsed: WireGuard renews a live
/// session's keys every two minutes and drops one not renewed within three.
const CONNECTED_WITHIN: Duration = Duration::from_secs(180);
/// How often the running platform reads the gateway's handshakes for the scoreboard.
const POLL_EVERY: Duration = Duration::from_secs(5);

/// Each team with configs issued, in `teams`' order: how many peers it has, how many shook
/// hands with the gateway within the last three minutes, and when its latest did.
pub fn team_connections(
    teams: &[TeamId],
    issued: &[VpnPeer],
    live: &[PeerStatus],
    now: SystemTime,
) -> Vec<TeamConnection> {
    teams
        .iter()
        .filter_map(|&team| {
            let mine: Vec<&VpnPeer> = issued.iter().filter(|p| p.team == team).collect();
            if mine.is_empty() {
                return None;
            }
            let handshakes: Vec<SystemTime> = mine
                .iter()
                .filter_map(|p| live.iter().find(|s| s.public_key.to_base64() == p.public_key))
                .filter_map(|s| s.latest_handshake)
                .collect();
            let connected = handshakes
                .iter()
                .filter(|at| now.duration_since(**at).map_or(true, |ago| ago <= CONNECTED_WITHIN))
                .count();
            Some(TeamConnection {
                team,
                peers_issued: u32::try_from(mine.len()).unwrap_or(u32::MAX),
                peers_connected: u32::try_from(connected).unwrap_or(u32::MAX),
                last_handshake: handshakes.iter().max().map(|at| DateTime::<Utc>::from(*at)),
            })
        })
        .collect()
}

/// Reads the drill's gateway every few seconds into a channel the scoreboard shows: the peers
/// come from the database each time, so keys `gongfang vpn config` issues or rotates while the
/// drill runs are counted at once. The task ends when every receiver is gone.
pub fn watch_connections(scenario: &Scenario, store: Store) -> watch::Receiver<Vec<TeamConnection>> {
    let (tx, rx) = watch::channel(Vec::new());
    let teams: Vec<TeamId> = scenario.teams.iter().map(|t| t.id).collect();
    let interface = gongfang_vpn::interface_name(&scenario.drill.slug);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(POLL_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = tx.closed() => return,
                _ = every.tick() => {}
            }
            let issued = match store.vpn_peers().await {
                Ok(issued) => issued,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the issued WireGuard peers; keeping the last connections");
                    continue;
                }
            };
            let name = interface.clone();
            let live =
                tokio::task::spawn_blocking(move || gongfang_vpn::read_interface(&name, None, &Programs::default()))
                    .await;
            let live = match live {
                Ok(Ok(live)) => live.unwrap_or_default(),
                Ok(Err(error)) => {
                    tracing::warn!(%interface, %error, "cannot read the WireGuard gateway's peers");
                    continue;
                }
                Err(_) => continue,
            };
            tx.send_replace(team_connections(&teams, &issued, &live, SystemTime::now()));
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(team: u16, n: u8) -> (VpnPeer, gongfang_vpn::PublicKey) {
        let key = PrivateKey::from_bytes([n; 32]).public_key();
        let peer = VpnPeer {
            team: TeamId(team),
            peer: u32::from(n),
            public_key: key.to_base64(),
            address: std::net::Ipv4Addr::new(10, 80, 0, n),
            issued_at: Utc::now(),
            rotated_at: None,
        };
        (peer, key)
    }

    fn status(key: gongfang_vpn::PublicKey, handshake: Option<SystemTime>) -> PeerStatus {
        PeerStatus {
            public_key: key,
            endpoint: None,
            allowed_ips: Vec::new(),
            latest_handshake: handshake,
            received_bytes: 0,
            sent_bytes: 0,
        }
    }

    #[test]
    fn a_team_is_connected_by_its_recent_handshakes_only() {
        let now = SystemTime::now();
        let (a1, k1) = peer(1, 1);
        let (a2, k2) = peer(1, 2);
        let (b1, k3) = peer(2, 3);
        let (c1, _) = peer(3, 4);
        let live = [
            status(k1, Some(now - Duration::from_secs(30))),
            status(k2, Some(now - Duration::from_secs(600))),
            status(k3, None),
        ];
        let teams = [TeamId(1), TeamId(2), TeamId(3), TeamId(4)];
        let shown = team_connections(&teams, &[a1, a2, b1, c1], &live, now);
        assert_eq!(shown.len(), 3, "team 4 has no configs: {shown:?}");
        assert_eq!((shown[0].peers_issued, shown[0].peers_connected), (2, 1), "a 10-minute-old handshake has lapsed");
        assert_eq!(shown[0].last_handshake, Some(DateTime::<Utc>::from(now - Duration::from_secs(30))));
        assert_eq!((shown[1].peers_connected, shown[1].last_handshake), (0, None), "never shook hands");
        assert_eq!((shown[2].team, shown[2].peers_connected), (TeamId(3), 0), "its key is not on the gateway");
    }
}
