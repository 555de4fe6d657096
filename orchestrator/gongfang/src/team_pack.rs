//! `gongfang team pack --scenario S --out DIR --web URL`: a credential pack per team for the
//! organisers to hand over: a fresh team token, the team's WireGuard configs and shell keys
//! (fresh keys; the drill's gateway takes them) when the drill has a VPN, and a one-page how-to
//! in English and Hong Kong Chinese that says how to use each (`gongfang_reports::pack`, which
//! the console's packs share). Issuing a pack replaces what the team had before; every pack is
//! audited (never its secrets).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::Utc;
use gongfang_core::scenario::Team;
use gongfang_reports::pack::{PackFiles, how_to, submission_address, web_address};
use serde_json::json;

use crate::migrate::DatabaseArgs;
use crate::scenario_file;

#[derive(Debug, clap::Args)]
pub struct PackArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The drill's scenario; its teams are loaded into the database.
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// The folder the packs go in, one folder per team (made, readable by its owner only).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Where teams reach the drill's web (portal, scoreboard, `PUT /flags`), e.g.
    /// https://drill.example.hk.
    #[arg(long, value_name = "URL")]
    pub web: String,
    /// Where teams submit flags over TCP (the FAUST protocol), e.g. drill.example.hk:31337;
    /// left out of the how-to when not given.
    #[arg(long, value_name = "HOST:PORT")]
    pub submission: Option<String>,
    /// Only these teams (by slug; repeat the option); every team without it.
    #[arg(long = "team", value_name = "SLUG")]
    pub teams: Vec<String>,
    /// Who is doing this, for the audit log (default: the `USER` environment variable).
    #[arg(long)]
    pub actor: Option<String>,
}

pub fn run(args: PackArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(pack(args))
}

async fn pack(args: PackArgs) -> anyhow::Result<ExitCode> {
    let web = web_address(&args.web).map_err(|why| anyhow::anyhow!("--web {why}"))?;
    if let Some(submission) = &args.submission {
        submission_address(submission).map_err(|why| anyhow::anyhow!("--submission {why}"))?;
    }
    let scenario = scenario_file::load(&args.scenario)?;
    let teams: Vec<&Team> = if args.teams.is_empty() {
        scenario.teams.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for slug in &args.teams {
            let Some(team) = scenario.teams.iter().find(|t| t.slug == *slug) else {
                let known: Vec<&str> = scenario.teams.iter().map(|t| t.slug.as_str()).collect();
                bail!("no team `{slug}` in the scenario; its teams are: {}", known.join(", "));
            };
            chosen.push(team);
        }
        chosen
    };
    for team in &teams {
        let dir = args.out.join(&team.slug);
        if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
            bail!("{} already holds a pack; move it away or choose another --out", dir.display());
        }
    }
    let actor = args
        .actor
        .clone()
        .filter(|a| !a.trim().is_empty())
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned());
    let store = args.db.open().await?;
    store.sync_scenario(&scenario).await?;
    crate::vpn::make_private_dir(&args.out)?;

    for team in &teams {
        let dir = args.out.join(&team.slug);
        crate::vpn::make_private_dir(&dir)?;
        let issued = store.issue_token(&team.slug).await?;
        crate::vpn::write_private(&dir.join("token.txt"), format!("{}\n", issued.token.expose()).as_bytes())
            .with_context(|| format!("writing {}", dir.join("token.txt").display()))?;
        if scenario.vpn.is_some() {
            let config = crate::vpn::ConfigArgs {
                common: crate::vpn::Common {
                    db: DatabaseArgs { database_url: args.db.database_url.clone() },
                    scenario: args.scenario.clone(),
                    actor: Some(actor.clone()),
                },
                team: team.slug.clone(),
                out: dir.clone(),
                rotate: true,
            };
            crate::vpn::config(config).await?;
        }
        let names = PackFiles { configs: files(&dir, ".conf")?, shell_keys: files(&dir, ".ssh")? };
        let howto = how_to(&scenario, team, &names, &web, args.submission.as_deref(), issued.token.expose());
        crate::vpn::write_private(&dir.join("how-to.html"), howto.as_bytes())
            .with_context(|| format!("writing {}", dir.join("how-to.html").display()))?;
        store
            .append_audit(
                Utc::now(),
                &actor,
                "team.pack",
                &json!({ "team": team.slug, "vpn": scenario.vpn.is_some(), "web": web }),
            )
            .await?;
        println!("{}: pack written to {}", team.slug, dir.display());
    }
    store.close().await?;
    eprintln!(
        "each team's earlier token{} no longer works; the packs hold secrets: hand each folder to its team only",
        if scenario.vpn.is_some() { ", configs and shell keys" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

/// The files of `dir` whose names end in `ending`, sorted.
fn files(dir: &Path, ending: &str) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(ending))
        .collect();
    names.sort();
    Ok(names)
}
