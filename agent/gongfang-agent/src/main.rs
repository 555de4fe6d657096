//! `gongfang-agent`: the teams' command. Submits captured flags, files attack and defence
//! reports with evidence over the drill's HTTP API, shows the team's reports and rulings,
//! registers the SSH keys that open the team's shells, and sends patches of the team's
//! services.
//! It talks HTTP or HTTPS (rustls) to the scoreboard server and links no server crate.

use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use gongfang_core::Secret;
use gongfang_core::wire::{MAX_FLAGS_PER_PUT, TEAM_TOKEN_HEADER};
use serde_json::{Value, json};

mod http;
mod patch;

use http::Server;

/// Gongfang's team agent: submit flags, file reports, follow rulings.
#[derive(Debug, Parser)]
#[command(name = "gongfang-agent", version, about)]
struct Cli {
    /// The drill's scoreboard server, as http://HOST:PORT or https://HOST.
    #[arg(long, env = "GONGFANG_SERVER")]
    server: String,
    /// Over HTTPS, trust the server's certificate when it chains to this certificate authority
    /// (a PEM file the organisers hand out), instead of the web's public ones.
    #[arg(long, env = "GONGFANG_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Your team's token (as printed by the organisers). It may begin with `-`.
    #[arg(long, env = "GONGFANG_TOKEN", hide_env_values = true, allow_hyphen_values = true)]
    token: Secret,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Submit flags: the arguments, or one per line on standard input (e.g. from an exploit).
    Submit { flags: Vec<String> },
    /// File and follow attack and defence reports.
    #[command(subcommand)]
    Report(ReportCommand),
    /// The SSH keys that open your team's shells in its own services (drills with a VPN).
    #[command(subcommand)]
    ShellKey(ShellKeyCommand),
    /// Patches of your team's services (drills where services take submitted patches).
    #[command(subcommand)]
    Patch(patch::PatchCommand),
}

#[derive(Debug, Subcommand)]
enum ShellKeyCommand {
    /// Register a public key (a `.pub` file, Ed25519 or ECDSA): it opens your team's shells.
    Add {
        /// The public key file, e.g. ~/.ssh/id_ed25519.pub.
        file: PathBuf,
        /// What the key is, for your team (default: the key's comment).
        #[arg(long)]
        label: Option<String>,
    },
    /// Your team's keys: generated with your VPN configs, and registered.
    List,
    /// Remove a registered key by its number in `list`.
    Remove { id: i64 },
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// File a report. Attack reports name a target team; defence reports name your service.
    File(Box<FileArgs>),
    /// Your team's reports with their rulings, newest first.
    List,
    /// One of your reports in full.
    Show { id: i64 },
    /// Appeal a ruling (once per report, within the scenario's appeal window).
    Appeal {
        id: i64,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, clap::Args)]
struct FileArgs {
    /// `attack` (red teams) or `defence` (blue teams).
    #[arg(long, value_parser = ["attack", "defence"])]
    kind: String,
    /// Attack reports: the team you broke into (its slug).
    #[arg(long)]
    target_team: Option<String>,
    /// The service concerned (its slug).
    #[arg(long)]
    service: Option<String>,
    /// Start of what you report, RFC 3339 (e.g. 2026-11-21T09:30:00Z).
    #[arg(long)]
    from: String,
    /// End of what you report, RFC 3339; not in the future.
    #[arg(long)]
    to: String,
    /// What was done, in a few words.
    #[arg(long)]
    technique: String,
    /// The MITRE ATT&CK technique id, e.g. T1078 or T1078.001.
    #[arg(long)]
    attack_id: Option<String>,
    /// What happened, step by step.
    #[arg(long)]
    description: String,
    /// Evidence as text (commands and their output, log lines).
    #[arg(long)]
    evidence: Option<String>,
    /// Evidence files (screenshots, captures, logs); may be given several times.
    #[arg(long = "file")]
    files: Vec<PathBuf>,
    /// Defence reports: the address the attack came from, if traced.
    #[arg(long)]
    traced_address: Option<String>,
    /// Defence reports: the attacking team's slug, if traced.
    #[arg(long)]
    traced_team: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let server = Server::parse(&cli.server, cli.ca_cert.as_deref())?;
    let token = cli.token.expose().as_str();
    match cli.command {
        Command::Submit { flags } => submit(&server, token, flags),
        Command::Report(ReportCommand::File(args)) => file(&server, token, *args),
        Command::Report(ReportCommand::List) => {
            let reports = server.request("GET", "/api/reports", &[(TEAM_TOKEN_HEADER, token)], b"")?.json()?;
            for r in reports.as_array().context("a list of reports")? {
                println!("{}", summary(r));
            }
            Ok(())
        }
        Command::Report(ReportCommand::Show { id }) => {
            let report =
                server.request("GET", &format!("/api/reports/{id}"), &[(TEAM_TOKEN_HEADER, token)], b"")?.json()?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::ShellKey(command) => shell_key(&server, token, command),
        Command::Patch(command) => patch::run(&server, token, command),
        Command::Report(ReportCommand::Appeal { id, reason }) => {
            let body = serde_json::to_vec(&json!({ "reason": reason }))?;
            let headers = [(TEAM_TOKEN_HEADER, token), ("Content-Type", "application/json")];
            let report = server.request("POST", &format!("/api/reports/{id}/appeal"), &headers, &body)?.json()?;
            println!("appealed: {}", summary(&report));
            Ok(())
        }
    }
}

fn shell_key(server: &Server, token: &str, command: ShellKeyCommand) -> anyhow::Result<()> {
    match command {
        ShellKeyCommand::Add { file, label } => {
            let key = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let body = serde_json::to_vec(&json!({ "key": key, "label": label }))?;
            let headers = [(TEAM_TOKEN_HEADER, token), ("Content-Type", "application/json")];
            let added = server.request("POST", "/api/shell-keys", &headers, &body)?.json()?;
            println!(
                "registered key {} ({}): it opens your team's shells now",
                added["id"],
                added["label"].as_str().unwrap_or_default()
            );
        }
        ShellKeyCommand::List => {
            let keys = server.request("GET", "/api/shell-keys", &[(TEAM_TOKEN_HEADER, token)], b"")?.json()?;
            for key in keys.as_array().context("a list of keys")? {
                let origin = match key["peer"].as_u64() {
                    Some(peer) => format!("generated with VPN config {peer}"),
                    None => "registered".to_owned(),
                };
                println!(
                    "{:>4}  {:<24} {origin}  {}",
                    key["id"],
                    key["label"].as_str().unwrap_or_default(),
                    key["public_key"].as_str().unwrap_or_default()
                );
            }
        }
        ShellKeyCommand::Remove { id } => {
            let answer =
                server.request("DELETE", &format!("/api/shell-keys/{id}"), &[(TEAM_TOKEN_HEADER, token)], b"")?;
            if answer.status != 204 {
                answer.json()?;
            }
            println!("removed key {id}: it opens no shell from now on");
        }
    }
    Ok(())
}

/// One line about a report: id, kind, status and points.
fn summary(r: &Value) -> String {
    let show = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    format!(
        "#{} {} {} {} points {}",
        show(&r["id"]),
        show(&r["kind"]),
        show(&r["status"]),
        show(&r["service"]),
        show(&r["points"])
    )
}

fn submit(server: &Server, token: &str, mut flags: Vec<String>) -> anyhow::Result<()> {
    if flags.is_empty() {
        for line in std::io::stdin().lock().lines() {
            let line = line?;
            let flag = line.trim();
            if !flag.is_empty() {
                flags.push(flag.to_owned());
            }
        }
    }
    if flags.is_empty() {
        bail!("no flags given: pass them as arguments or one per line on standard input");
    }
    let headers = [(TEAM_TOKEN_HEADER, token), ("Content-Type", "application/json")];
    let mut accepted = 0;
    for chunk in flags.chunks(MAX_FLAGS_PER_PUT) {
        let answers = server.request("PUT", "/flags", &headers, &serde_json::to_vec(chunk)?)?.json()?;
        for a in answers.as_array().context("a list of answers")? {
            let msg = a["msg"].as_str().unwrap_or_default();
            accepted += usize::from(msg.contains("Accepted"));
            println!("{} {msg}", a["flag"].as_str().unwrap_or_default());
        }
    }
    eprintln!("{accepted} of {} flags accepted", flags.len());
    Ok(())
}

fn file(server: &Server, token: &str, args: FileArgs) -> anyhow::Result<()> {
    let mut report = json!({
        "kind": args.kind,
        "from": args.from,
        "to": args.to,
        "technique": args.technique,
        "description": args.description,
    });
    let optional = [
        ("target_team", args.target_team),
        ("service", args.service),
        ("attack_id", args.attack_id),
        ("evidence", args.evidence),
        ("traced_address", args.traced_address),
        ("traced_team", args.traced_team),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            report[key] = Value::String(value);
        }
    }
    let report_json = serde_json::to_vec(&report)?;
    let answer = if args.files.is_empty() {
        let headers = [(TEAM_TOKEN_HEADER, token), ("Content-Type", "application/json")];
        server.request("POST", "/api/reports", &headers, &report_json)?
    } else {
        let boundary = format!("gongfang-agent-{:x}-{:x}", std::process::id(), nanos());
        let mut body = Vec::new();
        part(&mut body, &boundary, "report", None, "application/json", &report_json);
        for path in &args.files {
            let mut data = Vec::new();
            std::fs::File::open(path)
                .and_then(|mut f| f.read_to_end(&mut data))
                .with_context(|| format!("cannot read evidence file {}", path.display()))?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "evidence".into());
            part(&mut body, &boundary, "evidence", Some(&name), content_type(path), &data);
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        server.request("POST", "/api/reports", &[(TEAM_TOKEN_HEADER, token), ("Content-Type", &content_type)], &body)?
    };
    let filed = answer.json()?;
    println!("filed: {}", summary(&filed));
    Ok(())
}

/// Appends one multipart part.
fn part(body: &mut Vec<u8>, boundary: &str, name: &str, filename: Option<&str>, content_type: &str, data: &[u8]) {
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes());
    if let Some(filename) = filename {
        let safe: String = filename.chars().map(|c| if c == '"' || c.is_control() { '_' } else { c }).collect();
        body.extend_from_slice(format!("; filename=\"{safe}\"").as_bytes());
    }
    body.extend_from_slice(format!("\r\nContent-Type: {content_type}\r\n\r\n").as_bytes());
    body.extend_from_slice(data);
    body.extend_from_slice(b"\r\n");
}

/// The content type the server expects for an evidence file, by its extension.
fn content_type(path: &std::path::Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("txt" | "log") => "text/plain",
        Some("json") => "application/json",
        Some("pdf") => "application/pdf",
        Some("pcap") => "application/vnd.tcpdump.pcap",
        _ => "application/octet-stream",
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Team tokens are drawn from an alphabet with `-` in it, so one in 64 begins with it.
    #[test]
    fn a_token_that_begins_with_a_dash_is_the_token() {
        let cli = Cli::try_parse_from([
            "gongfang-agent",
            "--server",
            "http://x",
            "--token",
            "-yVaN9zyEZAFHzOm",
            "submit",
            "FLAG",
        ])
        .unwrap();
        assert_eq!(cli.token.expose(), "-yVaN9zyEZAFHzOm");
        assert!(matches!(cli.command, Command::Submit { .. }));
    }
}
