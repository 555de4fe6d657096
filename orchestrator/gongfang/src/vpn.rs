//! `gongfang vpn config|status`: teams' WireGuard configs, and who is connected.
//!
//! `config` makes a key pair per peer, stores the public keys and addresses, and writes one
//! `wg-quick` file per peer (`DIR/TEAM-N.conf`, readable by its owner only). The private keys
//! are only in those files: shown once, like tokens, never stored, logged or audited. Running
//! it again is refused unless `--rotate`, which issues new key pairs in place of the old ones;
//! a gateway of the drill running on this machine takes the new keys at once.
//! `status` lists every team's peers and, when the drill's gateway runs on this machine, each
//! peer's last handshake. `up` and `serve` run the gateway ([`start_gateway`]) while the
//! platform runs; `down` removes one a killed platform left behind ([`remove_leftover_gateway`]).

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use gongfang_core::scenario::{Ipv4Net, Scenario, VpnRules};
use gongfang_store::{NewVpnPeer, Store, StoreError, VpnIssue, VpnPeer};
use gongfang_vpn::{
    AddressPlan, BackendChoice, Gateway, GatewayConfig, GatewayPeer, KEEPALIVE_SECONDS, PeerConfig, PeerStatus,
    PrivateKey, Programs, TeamPeers,
};
use serde_json::json;

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
fn address_plan(scenario: &Scenario, vpn: &VpnRules) -> anyhow::Result<AddressPlan> {
    let teams: Vec<TeamPeers> =
        scenario.teams.iter().map(|t| TeamPeers { team: t.slug.clone(), peers: vpn.peers_per_team }).collect();
    Ok(AddressPlan::allocate(ipnet(vpn.range)?, vpn.gateway, &teams)?)
}

/// What a team's tunnel carries: the networks of the teams that run services.
fn game_networks(scenario: &Scenario) -> anyhow::Result<Vec<gongfang_vpn::ipnet::Ipv4Net>> {
    scenario.defenders().map(|t| ipnet(t.network)).collect()
}

/// The config file of peer `n` of `team`.
fn file_name(team: &str, n: u32) -> String {
    format!("{team}-{n}.conf")
}

async fn config(args: ConfigArgs) -> anyhow::Result<ExitCode> {
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
    for (n, address) in (1..).zip(&addresses.peers) {
        let key = PrivateKey::generate();
        let text = PeerConfig {
            title: format!("drill {}, team {}, peer {n}", scenario.drill.slug, team.slug),
            private_key: key.clone(),
            address: *address,
            gateway_public_key: gateway_key.public_key(),
            preshared_key: None,
            endpoint: vpn.endpoint(),
            game_networks: networks.clone(),
            gateway_address: vpn.gateway,
            keepalive_seconds: Some(KEEPALIVE_SECONDS),
        }
        .render()?;
        peers.push(NewVpnPeer { peer: n, public_key: key.public_key().to_base64(), address: *address });
        files.push((args.out.join(file_name(&team.slug, n)), text));
    }

    make_private_dir(&args.out)?;
    // Written under temporary names first, so a refusal by the store leaves no key behind and
    // configs of an earlier issue are replaced only once the new keys are stored.
    let mut pending = Vec::new();
    for (path, text) in &files {
        let temporary = path.with_extension("conf.new");
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

    let verb = if issued.is_empty() { "issued" } else { "rotated (the old configs no longer work)" };
    println!("{} WireGuard configs for team {} {verb}:", files.len(), team.slug);
    for ((path, _), peer) in files.iter().zip(&stored) {
        println!("  {}  address {}", path.display(), peer.address);
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
fn make_private_dir(dir: &Path) -> anyhow::Result<()> {
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

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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

/// Stops the gateway: its interface is removed and `wireguard-go` ends.
pub async fn stop_gateway(gateway: Gateway) {
    let interface = gateway.interface().to_owned();
    match tokio::task::spawn_blocking(move || gateway.stop()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%interface, "stopping the WireGuard gateway: {error}"),
        Err(error) => tracing::warn!(%interface, "stopping the WireGuard gateway: {error}"),
    }
}

/// Removes the drill's gateway interface if a platform that was killed left it behind; whether
/// there was one.
pub fn remove_leftover_gateway(drill_slug: &str) -> anyhow::Result<bool> {
    let interface = gongfang_vpn::interface_name(drill_slug);
    match gongfang_vpn::remove_interface(&interface, None, &Programs::default()) {
        Ok(removed) => Ok(removed),
        // Without iproute2 this machine runs no gateway.
        Err(gongfang_vpn::Error::ProgramMissing { .. }) => Ok(false),
        Err(error) => Err(error).with_context(|| format!("removing the drill's WireGuard gateway {interface}")),
    }
}
