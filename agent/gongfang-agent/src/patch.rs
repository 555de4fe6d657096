//! `gongfang-agent patch`: send a patch of one of your team's services (a unified diff, or a
//! tar archive of changed files), follow it to its verdict, list your patches, download the
//! source your service runs now, and roll back to an earlier version.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use gongfang_core::wire::TEAM_TOKEN_HEADER;
use serde_json::{Value, json};

use crate::http::Server;

/// How often `push` asks for its patch's verdict.
const POLL: Duration = Duration::from_secs(2);

#[derive(Debug, Subcommand)]
pub enum PatchCommand {
    /// Send a patch and wait for its verdict: a unified diff (`diff -u`, `git diff`) against the
    /// source your service runs now (`patch source`), or a tar archive (plain or .tar.gz) of
    /// files that replace or add to it.
    Push {
        /// The service's slug.
        service: String,
        /// The diff or the tar archive.
        file: PathBuf,
        /// Say what the file is instead of letting the server tell: `diff` or `tar`.
        #[arg(long, value_parser = ["diff", "tar"])]
        kind: Option<String>,
        /// Return once the patch is queued, without waiting for its verdict.
        #[arg(long)]
        no_wait: bool,
        /// Longest to wait for the verdict, in seconds.
        #[arg(long, default_value_t = 900)]
        wait: u64,
    },
    /// Your team's patches, newest first, with their status and verdict.
    Status {
        /// Only this service's.
        service: Option<String>,
    },
    /// Download the source your service runs now (or ran as VERSION), as a tar archive.
    Source {
        service: String,
        /// Where to write it (default: SERVICE-vN.tar).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        version: Option<u32>,
    },
    /// Run an earlier version of your service again (0: the organisers' own).
    Rollback { service: String, version: u32 },
}

pub fn run(server: &Server, token: &str, command: PatchCommand) -> anyhow::Result<()> {
    match command {
        PatchCommand::Push { service, file, kind, no_wait, wait } => {
            let body = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let mut path = format!("/api/patches?service={}", query(&service));
            if let Some(kind) = &kind {
                path.push_str(&format!("&kind={kind}"));
            }
            let headers = [(TEAM_TOKEN_HEADER, token), ("Content-Type", "application/octet-stream")];
            let patch = server.request("POST", &path, &headers, &body)?.json()?;
            println!(
                "sent patch {} for {service}: version {}, {} bytes, sha256 {}",
                patch["id"],
                patch["version"],
                patch["size"],
                patch["sha256"].as_str().unwrap_or_default()
            );
            if no_wait {
                println!("{}", line(&patch));
                return Ok(());
            }
            follow(server, token, patch["id"].as_i64().context("the patch's id")?, Duration::from_secs(wait))
        }
        PatchCommand::Status { service } => {
            let path = match &service {
                Some(s) => format!("/api/patches?service={}", query(s)),
                None => "/api/patches".to_owned(),
            };
            let patches = server.request("GET", &path, &[(TEAM_TOKEN_HEADER, token)], b"")?.json()?;
            let list = patches.as_array().context("a list of patches")?;
            if list.is_empty() {
                println!("no patches yet");
            }
            for p in list {
                println!("{}", line(p));
            }
            Ok(())
        }
        PatchCommand::Source { service, out, version } => {
            let mut path = format!("/api/patches/source?service={}", query(&service));
            if let Some(v) = version {
                path.push_str(&format!("&version={v}"));
            }
            let answer = server.request("GET", &path, &[(TEAM_TOKEN_HEADER, token)], b"")?;
            if answer.status != 200 {
                answer.json()?;
                bail!("the server answered {}", answer.status);
            }
            let version = version.map_or_else(|| "current".to_owned(), |v| format!("v{v}"));
            let out = out.unwrap_or_else(|| PathBuf::from(format!("{service}-{version}.tar")));
            std::fs::write(&out, &answer.body).with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "wrote {} ({} bytes): unpack it, change it, and send `diff -ru` of it",
                out.display(),
                answer.body.len()
            );
            Ok(())
        }
        PatchCommand::Rollback { service, version } => {
            let body = serde_json::to_vec(&json!({ "service": service, "version": version }))?;
            let headers = [(TEAM_TOKEN_HEADER, token), ("Content-Type", "application/json")];
            let patch = server.request("POST", "/api/patches/rollback", &headers, &body)?.json()?;
            follow(server, token, patch["id"].as_i64().context("the request's id")?, Duration::from_secs(300))
        }
    }
}

/// Prints the patch's progress until it is decided; fails when it was not deployed.
fn follow(server: &Server, token: &str, id: i64, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let patch = server.request("GET", &format!("/api/patches/{id}"), &[(TEAM_TOKEN_HEADER, token)], b"")?.json()?;
        let status = patch["status"].as_str().unwrap_or_default().to_owned();
        let now = progress(&patch);
        if now != last {
            println!("{now}");
            last = now;
        }
        if !matches!(status.as_str(), "queued" | "building" | "staging") {
            for check in patch["checks"].as_array().into_iter().flatten() {
                println!("  checker: {}", check.as_str().unwrap_or_default());
            }
            if status == "deployed" {
                return Ok(());
            }
            bail!("patch {id} was {status}: {}", patch["message"].as_str().unwrap_or_default());
        }
        if started.elapsed() > limit {
            bail!("patch {id} is still {status} after {} s; `gongfang-agent patch status` follows it", limit.as_secs());
        }
        std::thread::sleep(POLL);
    }
}

fn progress(p: &Value) -> String {
    let status = p["status"].as_str().unwrap_or_default();
    match p["queue_position"].as_u64() {
        Some(n) => format!("{status}: number {n} in the queue"),
        None => format!("{status}: {}", p["message"].as_str().unwrap_or_default()),
    }
}

/// One line about a patch.
fn line(p: &Value) -> String {
    let exploit = match p["exploit"].as_str() {
        Some(e) => format!(" exploit {e}"),
        None => String::new(),
    };
    format!(
        "#{} {} v{} {} {}{exploit} - {}",
        p["id"],
        p["service"].as_str().unwrap_or_default(),
        p["version"],
        p["kind"].as_str().unwrap_or_default(),
        p["status"].as_str().unwrap_or_default(),
        progress(p).split_once(": ").map_or("", |(_, m)| m)
    )
}

/// A slug as a query value: slugs are lowercase letters, digits and '-', so anything else is
/// escaped byte by byte.
fn query(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'-' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}
