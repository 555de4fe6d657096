//! `gongfang team list|add|token|import`: the teams in the database and their submission
//! tokens, and teams added to a scenario from a CSV file (`team_import`).
//!
//! Teams normally come from the scenario (`--scenario FILE` loads them); `add` is for ad-hoc
//! teams. Every change is written to the audit log with the organiser who made it; tokens are
//! printed once and never logged or audited.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::Utc;
use gongfang_core::TeamId;
use gongfang_core::scenario::{Ipv4Net, Names, Role, Team};
use gongfang_store::{Store, StoreError};
use serde_json::json;

use crate::migrate::DatabaseArgs;
use crate::scenario_file;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: TeamCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TeamCommand {
    /// List teams with their role, network and whether they have a token.
    List(ListArgs),
    /// Add an ad-hoc team that is not in the scenario.
    Add(AddArgs),
    /// Issue a new submission token to a team, replacing its old one. Shown once.
    Token(TokenArgs),
    /// Add teams to a scenario file from a CSV file (slug, name, name_zh, role, network, id,
    /// nop), before the drill: every row is checked and nothing is written on a problem.
    Import(crate::team_import::ImportArgs),
    /// Write each team's credential pack to hand over: a new token, fresh WireGuard configs and
    /// shell keys when the drill has a VPN, and a one-page how-to in English and Chinese.
    Pack(crate::team_pack::PackArgs),
}

/// Options shared by every `team` subcommand.
#[derive(Debug, clap::Args)]
pub struct Common {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Load (or update) the scenario's teams and services into the database first.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Who is doing this, for the audit log (default: the `USER` environment variable).
    #[arg(long)]
    pub actor: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub common: Common,
    /// The team's short machine name: lowercase letters, digits and `-`.
    #[arg(long)]
    pub slug: String,
    /// The team's number (1–65535); it appears in flags and addresses.
    #[arg(long)]
    pub id: u32,
    /// The team's name in English.
    #[arg(long)]
    pub name_en: String,
    /// The team's name in Traditional Chinese (default: the English name).
    #[arg(long)]
    pub name_zh: Option<String>,
    /// attacker, defender or both.
    #[arg(long)]
    pub role: String,
    /// The team's network in CIDR notation, e.g. 10.60.7.0/24.
    #[arg(long)]
    pub network: String,
    /// Mark the team as the NOP team (a defender that never attacks).
    #[arg(long)]
    pub nop: bool,
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub common: Common,
    /// The team's slug.
    pub slug: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = || tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    match args.command {
        TeamCommand::List(a) => runtime()?.block_on(list(a)),
        TeamCommand::Add(a) => runtime()?.block_on(add(a)),
        TeamCommand::Token(a) => runtime()?.block_on(token(a)),
        TeamCommand::Import(a) => crate::team_import::run(a),
        TeamCommand::Pack(a) => crate::team_pack::run(a),
    }
}

impl Common {
    fn actor(&self) -> String {
        self.actor
            .clone()
            .filter(|a| !a.trim().is_empty())
            .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "unknown".to_owned())
    }

    /// Opens the database and, if asked, syncs the scenario's teams into it. Without a
    /// scenario, a command that reads the drill's teams (`needs_drill`) refuses a database
    /// that holds none; `add` may start one.
    async fn open(&self, needs_drill: bool) -> anyhow::Result<Store> {
        let scenario = match &self.scenario {
            Some(path) => Some(scenario_file::load(path)?),
            None => None,
        };
        let store =
            if scenario.is_none() && needs_drill { self.db.open_drill().await? } else { self.db.open().await? };
        if let Some(scenario) = scenario {
            let report = store.sync_scenario(&scenario).await?;
            if report != Default::default() {
                store
                    .append_audit(
                        Utc::now(),
                        &self.actor(),
                        "scenario.sync",
                        &json!({
                            "scenario": self.scenario.as_ref().map(|p| p.display().to_string()),
                            "teams_added": report.teams_added,
                            "teams_updated": report.teams_updated,
                            "services_added": report.services_added,
                            "services_updated": report.services_updated,
                        }),
                    )
                    .await?;
                eprintln!(
                    "scenario loaded: {} teams added, {} updated; {} services added, {} updated",
                    report.teams_added, report.teams_updated, report.services_added, report.services_updated
                );
            }
        }
        Ok(store)
    }
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let store = args.common.open(true).await?;
    let teams = store.list_teams().await?;
    if teams.is_empty() {
        eprintln!("no teams in the database; load them with `gongfang team list --scenario FILE`");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:>5}  {:<20} {:<9} {:<18} {:<3} {:<5} NAME", "ID", "SLUG", "ROLE", "NETWORK", "NOP", "TOKEN");
    for t in &teams {
        let team = &t.team;
        println!(
            "{:>5}  {:<20} {:<9} {:<18} {:<3} {:<5} {} / {}",
            team.id.0,
            team.slug,
            team.role.as_str(),
            team.network.to_string(),
            if team.nop { "yes" } else { "no" },
            if t.has_token { "yes" } else { "no" },
            team.name.en,
            team.name.zh,
        );
    }
    store.close().await?;
    Ok(ExitCode::SUCCESS)
}

/// Checks an ad-hoc team's fields, each error saying what to fix.
fn validate_new_team(args: &AddArgs) -> anyhow::Result<Team> {
    let slug = args.slug.trim();
    if slug.is_empty() || slug.len() > 32 {
        bail!("--slug must be 1 to 32 characters long, got {} characters", slug.len());
    }
    if !slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || slug.starts_with('-')
        || slug.ends_with('-')
    {
        bail!("--slug `{slug}` may only hold lowercase letters, digits and inner `-` (e.g. `blue-07`)");
    }
    let id = u16::try_from(args.id).ok().filter(|id| *id > 0).with_context(|| {
        format!("--id {} is not a team number; use a number from 1 to 65535 that no other team has", args.id)
    })?;
    let name_en = args.name_en.trim();
    if name_en.is_empty() {
        bail!("--name-en must not be empty");
    }
    let name_zh = args.name_zh.as_deref().map(str::trim).unwrap_or(name_en);
    if name_zh.is_empty() {
        bail!("--name-zh must not be empty (leave it out to reuse the English name)");
    }
    let role = Role::from_name(args.role.trim())
        .with_context(|| format!("--role `{}` is not a role; use one of {}", args.role, Role::NAMES.join(", ")))?;
    let network = Ipv4Net::parse(args.network.trim())
        .map_err(|e| anyhow::anyhow!("--network: {e}; write it like 10.60.7.0/24"))?;
    if network.prefix < 8 || network.prefix > 30 {
        bail!(
            "--network {network} is too {}; use a prefix between /8 and /30",
            if network.prefix < 8 { "large" } else { "small" }
        );
    }
    if args.nop && !role.defends() {
        bail!("--nop needs a defending team: use --role defender (the NOP team never attacks)");
    }
    if network.contains(Ipv4Addr::LOCALHOST) {
        bail!("--network {network} holds the loopback address; pick the team's own network");
    }
    Ok(Team {
        id: TeamId(id),
        slug: slug.to_owned(),
        name: Names { en: name_en.to_owned(), zh: name_zh.to_owned() },
        role,
        network,
        nop: args.nop,
    })
}

async fn add(args: AddArgs) -> anyhow::Result<ExitCode> {
    let team = validate_new_team(&args)?;
    let store = args.common.open(false).await?;
    if let Some(other) = store.list_teams().await?.into_iter().find(|t| t.team.network.overlaps(team.network)) {
        bail!(
            "--network {} overlaps team `{}`'s network {}; every team needs a network of its own",
            team.network,
            other.team.slug,
            other.team.network
        );
    }
    match store.add_team(&team).await {
        Ok(()) => {}
        Err(StoreError::TeamExists { field, value }) => {
            bail!("a team with {field} `{value}` already exists; choose another --{field} (see `gongfang team list`)")
        }
        Err(e) => return Err(e.into()),
    }
    store
        .append_audit(
            Utc::now(),
            &args.common.actor(),
            "team.add",
            &json!({
                "team": team.slug,
                "id": team.id.0,
                "name_en": team.name.en,
                "name_zh": team.name.zh,
                "role": team.role.as_str(),
                "network": team.network.to_string(),
                "nop": team.nop,
            }),
        )
        .await?;
    println!("added team {} (id {}, {}, {})", team.slug, team.id.0, team.role.as_str(), team.network);
    store.close().await?;
    Ok(ExitCode::SUCCESS)
}

async fn token(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let store = args.common.open(true).await?;
    let issued = match store.issue_token(&args.slug).await {
        Ok(issued) => issued,
        Err(StoreError::UnknownTeam(slug)) => bail!(
            "no team with slug `{slug}`; see `gongfang team list`, or load the scenario's teams with --scenario FILE"
        ),
        Err(e) => return Err(e.into()),
    };
    store
        .append_audit(
            Utc::now(),
            &args.common.actor(),
            "team.token.issue",
            &json!({ "team": args.slug, "id": issued.team.0 }),
        )
        .await?;
    store.close().await?;
    eprintln!("new token for team {} (id {}); any previous token no longer works:", args.slug, issued.team.0);
    println!("{}", issued.token.expose());
    eprintln!("warning: this token is shown only now and cannot be shown again; only its hash is stored.");
    Ok(ExitCode::SUCCESS)
}
