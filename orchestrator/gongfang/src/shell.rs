//! Defenders' shells: each team's SSH entry point on the WireGuard gateway's address, which
//! opens a shell (or runs one command) inside that team's own service containers, as the
//! service's user, and restarts them.
//!
//! A team's entry listens on its own port ([`VpnRules::shell_port_of`]); the gateway's firewall
//! lets only the team's block of tunnel addresses reach it, and the entry itself refuses every
//! other source. The SSH user names the service (`ssh -p PORT opendata@GATEWAY`); keys are the
//! ones `gongfang vpn config` generated with the team's peers or that were registered for the
//! team, read from the store at every login so a rotation or removal takes effect at once. The
//! command `restart` restarts the service's container (its code and data volumes stay); any
//! other command runs with `/bin/sh -c`, and no command opens `/bin/sh`. Every session is
//! audited when it opens and when it ends (team, key, source, service, container, command); what
//! is typed into a shell is not. The host key is derived from the gateway's private key, so it
//! stays the same across restarts of the platform.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use futures::StreamExt as _;
use gongfang_core::scenario::{Ipv4Net, PatchMode, Scenario, VpnRules};
use gongfang_core::{Secret, TeamId};
use gongfang_docker::{Engine, ExecOutput, ExecRequest, Runtime as _};
use gongfang_store::Store;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, Handler, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelMsg, MethodKind, MethodSet};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Connections one team's entry holds at once; more are refused at accept.
pub const MAX_CONNECTIONS_PER_TEAM: usize = 16;
/// How long a connection may take to log in.
pub const LOGIN_GRACE: Duration = Duration::from_secs(30);
/// How long a session may stay silent both ways before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The longest command text kept in the audit log.
const AUDITED_COMMAND_CHARS: usize = 200;

/// One service container a team's shell opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellTarget {
    pub container: String,
    /// The service's user (`uid[:gid]`): the shell has no more rights than the service.
    pub user: String,
}

/// A team's shell entry: where it listens and what it opens.
#[derive(Debug)]
pub struct TeamEntry {
    pub team: TeamId,
    pub slug: String,
    /// The team's tunnel addresses: a connection from anywhere else is refused.
    pub block: Ipv4Net,
    pub listener: TcpListener,
    /// By service slug: the team's own service containers in vulnbox mode.
    pub targets: BTreeMap<String, ShellTarget>,
}

/// The drill's SSH host key: an Ed25519 key derived from the gateway's private key, so teams'
/// `known_hosts` stay valid while the drill's database lives.
pub fn host_key(gateway_key: &Secret<[u8; 32]>) -> PrivateKey {
    let mut hash = Sha256::new();
    hash.update(b"gongfang shell host key\0");
    hash.update(gateway_key.expose());
    let seed: [u8; 32] = hash.finalize().into();
    PrivateKey::new(KeypairData::Ed25519(Ed25519Keypair::from_seed(&seed)), "gongfang").expect("an Ed25519 key")
}

/// A fresh Ed25519 key pair for a team's shell: the private key in OpenSSH's format (for the
/// team's file only) and the public key as the store keeps it
/// ([`gongfang_core::shell_key::ShellPublicKey::line`]).
pub fn generate_key(comment: &str) -> anyhow::Result<(Secret<String>, String)> {
    let seed: [u8; 32] = rand::random();
    let key = PrivateKey::new(KeypairData::Ed25519(Ed25519Keypair::from_seed(&seed)), comment)?;
    let private = key.to_openssh(russh::keys::ssh_key::LineEnding::LF)?;
    Ok((Secret::new(private.to_string()), public_line(key.public_key())?))
}

/// `key` as the store keeps it: `ALGORITHM BASE64`.
fn public_line(key: &PublicKey) -> anyhow::Result<String> {
    let mut key = key.clone();
    key.set_comment("");
    Ok(key.to_openssh()?.trim().to_owned())
}

/// The entries of `scenario`'s teams that defend a vulnbox service, each bound to its port on
/// the gateway's address, with the containers of `plan`.
pub async fn bind_entries(
    scenario: &Scenario,
    vpn: &VpnRules,
    blocks: &[(Ipv4Net, TeamId)],
    plan: &gongfang_docker::Plan,
) -> anyhow::Result<Vec<TeamEntry>> {
    let mut entries = Vec::new();
    for (position, team) in scenario.teams.iter().enumerate() {
        let targets: BTreeMap<String, ShellTarget> = plan
            .instances
            .iter()
            .filter(|i| i.team == team.slug && i.component == "main")
            .filter(|i| scenario.services.iter().any(|s| s.slug == i.service && s.patch_mode == PatchMode::Vulnbox))
            .map(|i| (i.service.clone(), ShellTarget { container: i.name.clone(), user: i.hardening.user.clone() }))
            .collect();
        let Some(block) = blocks.iter().find(|(_, id)| *id == team.id).map(|(b, _)| *b) else { continue };
        if targets.is_empty() {
            continue;
        }
        let port = vpn.shell_port_of(position).context("the scenario's validation keeps every shell port in range")?;
        let address = SocketAddr::from((vpn.gateway, port));
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address} for team {}'s shell entry", team.slug))?;
        entries.push(TeamEntry { team: team.id, slug: team.slug.clone(), block, listener, targets });
    }
    Ok(entries)
}

/// Serves every entry until the returned set is aborted (dropped).
pub fn serve(entries: Vec<TeamEntry>, host_key: PrivateKey, store: Store, engine: Engine) -> JoinSet<()> {
    let config = Arc::new(russh::server::Config {
        server_id: russh::SshId::Standard("SSH-2.0-gongfang".into()),
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_secs(1),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        max_auth_attempts: 6,
        inactivity_timeout: Some(IDLE_TIMEOUT),
        keepalive_interval: Some(Duration::from_secs(60)),
        nodelay: true,
        ..Default::default()
    });
    let mut set = JoinSet::new();
    for entry in entries {
        let shared = Arc::new(Shared {
            team: entry.team,
            slug: entry.slug,
            targets: entry.targets,
            store: store.clone(),
            engine: engine.clone(),
        });
        let config = Arc::clone(&config);
        let block = entry.block;
        let listener = entry.listener;
        set.spawn(accept_loop(listener, block, config, shared));
    }
    set
}

struct Shared {
    team: TeamId,
    slug: String,
    targets: BTreeMap<String, ShellTarget>,
    store: Store,
    engine: Engine,
}

async fn accept_loop(listener: TcpListener, block: Ipv4Net, config: Arc<russh::server::Config>, shared: Arc<Shared>) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(team = %shared.slug, %error, "shell entry: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let from_team = match peer.ip() {
            std::net::IpAddr::V4(ip) => in_block(block, ip),
            std::net::IpAddr::V6(_) => false,
        };
        if !from_team {
            tracing::warn!(team = %shared.slug, %peer, "shell entry: refused a connection from outside the team's block");
            continue;
        }
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS_PER_TEAM {
            open.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(team = %shared.slug, %peer, "shell entry: too many connections, refused");
            continue;
        }
        let (config, shared, open) = (Arc::clone(&config), Arc::clone(&shared), Arc::clone(&open));
        tokio::spawn(async move {
            connection(stream, peer, config, shared).await;
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

fn in_block(block: Ipv4Net, ip: Ipv4Addr) -> bool {
    block.contains(ip)
}

async fn connection(stream: TcpStream, peer: SocketAddr, config: Arc<russh::server::Config>, shared: Arc<Shared>) {
    let authenticated = Arc::new(AtomicBool::new(false));
    let handler = Connection { shared, peer, login: None, authenticated: Arc::clone(&authenticated) };
    // The version exchange is bounded too: a client that never says hello is dropped.
    let session = match tokio::time::timeout(LOGIN_GRACE, russh::server::run_stream(config, stream, handler)).await {
        Ok(Ok(session)) => session,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "shell entry: handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "shell entry: no SSH version in time");
            return;
        }
    };
    let handle = session.handle();
    let grace = tokio::spawn(async move {
        tokio::time::sleep(LOGIN_GRACE).await;
        if !authenticated.load(Ordering::SeqCst) {
            let _ = handle.disconnect(russh::Disconnect::ByApplication, "no login in time".into(), "en".into()).await;
        }
    });
    if let Err(error) = session.await {
        tracing::debug!(%peer, %error, "shell entry: session ended with an error");
    }
    grace.abort();
}

/// One SSH connection to a team's entry.
struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    /// The SSH user (the service it wants) and the label of the key it logged in with, once
    /// it has.
    login: Option<(String, String)>,
    authenticated: Arc<AtomicBool>,
}

impl Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey(&mut self, user: &str, key: VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        let Ok(offered) = public_line(key.public_key) else { return Ok(Auth::reject()) };
        // A team organisers took out of the drill has no shell until they bring it back.
        let keys = match self.shared.store.disabled_teams().await {
            Ok(disabled) if disabled.contains(&self.shared.team) => {
                tracing::info!(team = %self.shared.slug, peer = %self.peer, "shell entry: the team is disabled");
                return Ok(Auth::reject());
            }
            Ok(_) => self.shared.store.shell_keys_of(self.shared.team).await,
            Err(error) => Err(error),
        };
        let keys = match keys {
            Ok(keys) => keys,
            Err(error) => {
                tracing::error!(team = %self.shared.slug, %error, "shell entry: cannot read the team's keys");
                return Ok(Auth::reject());
            }
        };
        match keys.into_iter().find(|k| k.public_key == offered) {
            Some(known) => {
                tracing::info!(team = %self.shared.slug, peer = %self.peer, user, key = %known.label, "shell entry: logged in");
                self.login = Some((user.to_owned(), known.label));
                self.authenticated.store(true, Ordering::SeqCst);
                Ok(Auth::Accept)
            }
            None => Ok(Auth::reject()),
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some((user, key)) = self.login.clone() else {
            return Ok(());
        };
        reply.accept().await;
        let context = SessionContext { shared: Arc::clone(&self.shared), peer: self.peer, key, user };
        tokio::spawn(run_channel(channel, context));
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _columns: u32,
        _rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }
}

struct SessionContext {
    shared: Arc<Shared>,
    peer: SocketAddr,
    key: String,
    user: String,
}

/// What a session asked for.
enum Request {
    Shell,
    Command(String),
}

async fn run_channel(channel: Channel<Msg>, context: SessionContext) {
    let (mut read, write) = channel.split();
    let mut terminal = None;
    let request = loop {
        match read.wait().await {
            Some(ChannelMsg::RequestPty { col_width, row_height, .. }) => {
                terminal = Some((clamp(col_width), clamp(row_height)));
            }
            Some(ChannelMsg::RequestShell { .. }) => break Request::Shell,
            Some(ChannelMsg::Exec { command, .. }) => {
                break Request::Command(String::from_utf8_lossy(&command).into_owned());
            }
            Some(ChannelMsg::Eof) | None => return,
            Some(_) => {}
        }
    };
    let shared = &context.shared;
    let Some(target) = shared.targets.get(&context.user) else {
        let services: Vec<&str> = shared.targets.keys().map(String::as_str).collect();
        let text = format!(
            "gongfang: no service `{}` of team {} opens a shell here; connect as one of its services: {}\r\n\
             e.g. ssh -p PORT {}@GATEWAY\r\n",
            context.user,
            shared.slug,
            services.join(", "),
            services.first().copied().unwrap_or("SERVICE")
        );
        let _ = write.extended_data(1, text.as_bytes()).await;
        finish(&write, 2).await;
        return;
    };
    let started = Instant::now();
    let (kind, command) = match &request {
        Request::Shell => ("shell", None),
        Request::Command(c) if c.trim() == "restart" => ("restart", Some(c.trim().to_owned())),
        Request::Command(c) => ("command", Some(c.chars().take(AUDITED_COMMAND_CHARS).collect::<String>())),
    };
    audit(&context, target, "shell.open", json!({ "kind": kind, "command": command })).await;

    let code = match request {
        Request::Command(c) if c.trim() == "restart" => restart(&context, target, &write).await,
        Request::Command(c) => {
            let argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), c];
            run_in_container(&context, target, argv, terminal, read, &write).await
        }
        Request::Shell => run_in_container(&context, target, vec!["/bin/sh".to_owned()], terminal, read, &write).await,
    };
    finish(&write, code).await;
    audit(
        &context,
        target,
        "shell.close",
        json!({ "kind": kind, "exit_code": code, "seconds": started.elapsed().as_secs() }),
    )
    .await;
}

fn clamp(n: u32) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX).max(1)
}

async fn finish(write: &russh::ChannelWriteHalf<Msg>, code: u32) {
    let _ = write.exit_status(code).await;
    let _ = write.eof().await;
    let _ = write.close().await;
}

async fn audit(context: &SessionContext, target: &ShellTarget, action: &str, extra: serde_json::Value) {
    let mut detail = json!({
        "team": context.shared.slug,
        "service": context.user,
        "container": target.container,
        "key": context.key,
        "from": context.peer.ip().to_string(),
    });
    if let (Some(detail), serde_json::Value::Object(extra)) = (detail.as_object_mut(), extra) {
        detail.extend(extra);
    }
    let actor = format!("team {}", context.shared.slug);
    if let Err(error) = context.shared.store.append_audit(Utc::now(), &actor, action, &detail).await {
        tracing::error!(team = %context.shared.slug, %error, action, "shell entry: cannot audit a session");
    }
}

/// Restarts the service's container; its code and data volumes stay.
async fn restart(context: &SessionContext, target: &ShellTarget, write: &russh::ChannelWriteHalf<Msg>) -> u32 {
    match context.shared.engine.restart(&target.container).await {
        Ok(()) => {
            let text = format!("restarted {} ({}): its code and data were kept\n", context.user, target.container);
            let _ = write.data(text.as_bytes()).await;
            0
        }
        Err(error) => {
            tracing::error!(container = %target.container, %error, "shell entry: restart failed");
            let text = format!("gongfang: cannot restart {}: {error}\n", context.user);
            let _ = write.extended_data(1, text.as_bytes()).await;
            1
        }
    }
}

/// Runs `argv` in the container with the channel as its input and output; its exit code.
async fn run_in_container(
    context: &SessionContext,
    target: &ShellTarget,
    argv: Vec<String>,
    terminal: Option<(u16, u16)>,
    mut read: russh::ChannelReadHalf,
    write: &russh::ChannelWriteHalf<Msg>,
) -> u32 {
    let docker = context.shared.engine.docker().clone();
    let request = ExecRequest {
        container: target.container.clone(),
        command: argv,
        user: target.user.clone(),
        terminal,
        env: terminal.map(|_| vec!["TERM=xterm".to_owned()]).unwrap_or_default(),
    };
    let attached = match gongfang_docker::exec::start(&docker, &request).await {
        Ok(attached) => attached,
        Err(error) => {
            let text = format!("gongfang: cannot open {}: {error}\n", context.user);
            let _ = write.extended_data(1, text.as_bytes()).await;
            return 1;
        }
    };
    let gongfang_docker::Attached { id, mut output, mut input } = attached;
    // The team's input, until it ends or the command does.
    let resize_docker = docker.clone();
    let resize_id = id.clone();
    let pump_in = tokio::spawn(async move {
        while let Some(message) = read.wait().await {
            match message {
                ChannelMsg::Data { data } if input.write_all(&data).await.is_err() => break,
                ChannelMsg::Eof => {
                    let _ = input.shutdown().await;
                }
                ChannelMsg::WindowChange { col_width, row_height, .. } => {
                    let _ =
                        gongfang_docker::exec::resize(&resize_docker, &resize_id, clamp(col_width), clamp(row_height))
                            .await;
                }
                _ => {}
            }
        }
    });
    while let Some(item) = output.next().await {
        let sent = match item {
            Ok(ExecOutput::Stdout(bytes)) => write.data(&bytes[..]).await,
            Ok(ExecOutput::Stderr(bytes)) => write.extended_data(1, &bytes[..]).await,
            Err(error) => {
                tracing::warn!(container = %target.container, %error, "shell entry: output broke off");
                break;
            }
        };
        if sent.is_err() {
            break;
        }
    }
    pump_in.abort();
    match gongfang_docker::exec::exit_code(&docker, &id).await {
        Ok(Some(code)) => u32::try_from(code).unwrap_or(1),
        Ok(None) | Err(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_key_is_the_same_for_the_same_gateway_and_differs_between_drills() {
        let a = host_key(&Secret::new([7; 32]));
        let b = host_key(&Secret::new([7; 32]));
        let c = host_key(&Secret::new([8; 32]));
        assert_eq!(a.public_key(), b.public_key());
        assert_ne!(a.public_key(), c.public_key());
    }

    #[test]
    fn a_generated_key_reads_back_as_the_line_the_store_keeps() {
        let (private, public) = generate_key("ddb peer 1").unwrap();
        assert!(private.expose().starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        let parsed = gongfang_core::shell_key::parse_public_key(&format!("{public} ddb@laptop")).unwrap();
        assert_eq!(parsed.line, public);
        let key = PrivateKey::from_openssh(private.expose()).unwrap();
        assert_eq!(public_line(key.public_key()).unwrap(), public);
    }

    #[test]
    fn only_the_team_block_may_connect() {
        let block = Ipv4Net { addr: Ipv4Addr::new(10, 80, 0, 4), prefix: 30 };
        assert!(in_block(block, Ipv4Addr::new(10, 80, 0, 5)));
        assert!(!in_block(block, Ipv4Addr::new(10, 80, 0, 9)));
    }
}
