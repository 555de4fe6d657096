//! `gongfang pause`, `resume`, `extend` and `announce`: an organiser acts on the running drill through
//! its organisers' API (`/api/admin/…`) with the account's own API token, so a pause takes
//! effect before the engine dispatches its next checker action and is audited under that
//! account. Only when no drill answers at the server's address does the command act on the
//! drill's database instead (the token is checked there the same way); the engine then sees a
//! pause at its next tick start, and an announcement shows on the next page load. `extend`
//! needs the running drill, which knows when it ends.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use gongfang_core::{AccountRole, Secret};
use gongfang_reports::admin::checked_announcement;
use gongfang_store::{Account, AnnouncementText, Store};
use serde_json::{Value, json};

use crate::migrate::DatabaseArgs;

/// How long the command waits for the drill's answer.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read.
const MAX_ANSWER: u64 = 1 << 20;

/// Where the drill answers and who is asking.
#[derive(clap::Args)]
pub struct Access {
    /// The running drill's web address (where `gongfang up` serves the scoreboard).
    #[arg(long, env = "GONGFANG_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Your account's API token (`gongfang account token --name NAME` issues one).
    #[arg(long, env = "GONGFANG_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Over HTTPS, trust the certificate authority in this PEM file (the drill's own) instead of
    /// the web's public roots.
    #[arg(long, value_name = "FILE", env = "GONGFANG_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// The drill's database, used only when no drill answers at --server.
    #[command(flatten)]
    pub db: DatabaseArgs,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Access").field("server", &self.server).finish_non_exhaustive()
    }
}

#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    #[command(flatten)]
    pub access: Access,
    /// Why, for the audit log (e.g. "network maintenance").
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Debug, clap::Args)]
pub struct AnnounceArgs {
    #[command(flatten)]
    pub access: Access,
    /// The title, in English.
    #[arg(long)]
    pub title: String,
    /// The text, in English.
    #[arg(long, default_value = "")]
    pub body: String,
    /// The title in Hong Kong Chinese.
    #[arg(long)]
    pub title_zh: Option<String>,
    /// The text in Hong Kong Chinese.
    #[arg(long)]
    pub body_zh: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ExtendArgs {
    #[command(flatten)]
    pub access: Access,
    /// How many minutes later the drill should end (1 to 1440 at a time).
    #[arg(long)]
    pub minutes: u32,
    /// Why, for the audit log.
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// Moves the running drill's end later.
pub fn extend(args: ExtendArgs) -> anyhow::Result<ExitCode> {
    let token = args.access.token()?;
    let body = json!({ "minutes": args.minutes, "reason": args.reason });
    let Some(answer) = call(&args.access, "/api/admin/extend", &token, &body)? else {
        bail!(
            "no drill answers at {}; `gongfang extend` moves the end of a running drill only (name it with --server)",
            args.access.server
        )
    };
    let minutes = answer["extended_secs"].as_u64().unwrap_or(0) / 60;
    match answer["ends_at"].as_str() {
        Some(ends) => {
            println!("the drill now ends at {ends}, {minutes} min after its scenario's end; recorded in the audit log")
        }
        None => println!("the drill will end {minutes} min after its scenario's end; recorded in the audit log"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Pauses (`true`) or resumes the drill.
pub fn pause(args: PauseArgs, paused: bool) -> anyhow::Result<ExitCode> {
    let token = args.access.token()?;
    let word = if paused { "paused" } else { "running" };
    let path = if paused { "/api/admin/pause" } else { "/api/admin/resume" };
    match call(&args.access, path, &token, &json!({ "reason": args.reason }))? {
        Some(answer) => {
            if answer["changed"].as_bool() != Some(true) {
                println!("the drill is already {word}; nothing changed");
            } else if paused {
                println!(
                    "the drill is now paused: no checker action is dispatched from now on; recorded in the audit log"
                );
            } else {
                println!("the drill is now running: checker actions are dispatched again; recorded in the audit log");
            }
        }
        None => offline(&args.access, &token, |store, account| async move {
            let now = Utc::now();
            if !store.set_paused(paused, now).await? {
                println!("the drill is already {word}; nothing changed");
                return Ok(());
            }
            let action = if paused { "drill.pause" } else { "drill.resume" };
            store.append_audit(now, &account.actor(), action, &json!({ "reason": args.reason })).await?;
            println!("the drill is now {word} (from its next tick on); recorded in the audit log");
            Ok(())
        })?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Posts an announcement in English and, when given, Hong Kong Chinese.
pub fn announce(args: AnnounceArgs) -> anyhow::Result<ExitCode> {
    let token = args.access.token()?;
    let sent = AnnouncementText { title: args.title, body: args.body, title_zh: args.title_zh, body_zh: args.body_zh };
    // Checked here first, so a mistake is told the same way online and offline.
    let text = checked_announcement(sent)?;
    let body = json!({ "title": text.title, "body": text.body, "title_zh": text.title_zh, "body_zh": text.body_zh });
    match call(&args.access, "/api/admin/announce", &token, &body)? {
        Some(answer) => println!("announcement {} posted; the board shows it now", answer["id"]),
        None => offline(&args.access, &token, |store, account| async move {
            let now = Utc::now();
            let posted = store.post_announcement(now, &account.actor(), &text).await?;
            store
                .append_audit(
                    now,
                    &account.actor(),
                    "announcement.post",
                    &json!({ "id": posted.id, "title": text.title }),
                )
                .await?;
            println!("announcement {} posted; pages show it when next loaded", posted.id);
            Ok(())
        })?,
    }
    Ok(ExitCode::SUCCESS)
}

impl Access {
    fn token(&self) -> anyhow::Result<Secret> {
        match self.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => Ok(Secret::new(t.to_owned())),
            None => bail!(
                "no API token: pass your account's token as GONGFANG_TOKEN or --token (`gongfang account token \
                 --name NAME` issues one on the drill's machine)"
            ),
        }
    }
}

/// Sends `body` to the drill's organisers' API; `None` when no drill answers at the server.
/// Any other failure (a certificate not trusted, a server that is not a drill) is an error,
/// never a reason to act on the database behind the running drill's back.
fn call(access: &Access, path: &str, token: &Secret, body: &Value) -> anyhow::Result<Option<Value>> {
    let server = access.server.trim_end_matches('/');
    if !(server.starts_with("http://") || server.starts_with("https://")) {
        bail!("--server must be http://HOST:PORT or https://HOST, not `{server}`");
    }
    let agent = client(access.ca_cert.as_deref())?;
    let sent = agent
        .post(&format!("{server}{path}"))
        .header("Authorization", &format!("Bearer {}", token.expose()))
        .header("Content-Type", "application/json")
        .send(body.to_string());
    let mut response = match sent {
        Ok(r) => r,
        Err(ureq::Error::Io(e)) if matches!(e.kind(), ErrorKind::ConnectionRefused) => return Ok(None),
        Err(ureq::Error::ConnectionFailed) => return Ok(None),
        Err(e)
            if matches!(e, ureq::Error::Tls(_) | ureq::Error::Rustls(_)) || e.to_string().contains("certificate") =>
        {
            bail!(
                "the TLS handshake with {server} failed ({e}); if the drill uses its own certificate authority, \
                 give its certificate with --ca-cert FILE"
            )
        }
        Err(e) => bail!("cannot reach the drill at {server}: {e}"),
    };
    let status = response.status();
    let answer: Value = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_json()
        .with_context(|| format!("the server at {server} did not answer as a Gongfang drill (HTTP {status})"))?;
    if !status.is_success() {
        let message = answer["error"]["message"].as_str().unwrap_or("no message");
        bail!("the drill refused ({status}): {message}");
    }
    Ok(Some(answer))
}

/// An HTTP client that trusts the CA in `ca_cert`, or else the web's public roots.
fn client(ca_cert: Option<&Path>) -> anyhow::Result<ureq::Agent> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("cannot read the CA certificate {}", path.display()))?;
        let certificate = ureq::tls::Certificate::from_pem(&pem)
            .with_context(|| format!("{} is not a PEM certificate (-----BEGIN CERTIFICATE-----)", path.display()))?;
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&[certificate]));
    }
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .tls_config(tls.build())
        .build()
        .into())
}

/// Acts on the drill's database, as the token's organiser, when no drill answered.
fn offline<F, Fut>(access: &Access, token: &Secret, act: F) -> anyhow::Result<()>
where
    F: FnOnce(Store, Account) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    eprintln!("no drill answers at {}; acting on its database instead", access.server);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = access.db.open_drill().await?;
        let Some(account) = store.api_token_account(token.expose()).await? else {
            bail!("the API token is not valid in this drill: revoked, replaced or mistyped; issue a new one with `gongfang account token`")
        };
        if account.role != AccountRole::Organiser {
            bail!("only organisers may do this; this token's account is a {}", account.role.as_str());
        }
        act(store.clone(), account).await?;
        store.close().await?;
        Ok(())
    })
}
