//! `gongfang judge add` and `gongfang report list|show`: the organisers' side of attack and
//! defence reports. Teams file reports and judges rule on them over the HTTP API (`docs/reports.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use gongfang::scenario_file;
use gongfang_reports::after_action::Lang;
use gongfang_reports::commands::{add_judge, list_reports, show_report};

use crate::migrate::DatabaseArgs;

/// `gongfang judge …`
#[derive(clap::Subcommand)]
pub enum JudgeCommand {
    /// Create a judge account. The password comes from GONGFANG_JUDGE_PASSWORD, or else the
    /// first line of standard input; it is stored as an argon2id hash only.
    Add {
        /// The judge's login name.
        #[arg(long)]
        name: String,
        #[arg(long, env = "GONGFANG_JUDGE_PASSWORD", hide_env_values = true, hide = true)]
        password: Option<String>,
    },
}

impl std::fmt::Debug for JudgeCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        match self {
            JudgeCommand::Add { name, .. } => f.debug_struct("Add").field("name", name).finish_non_exhaustive(),
        }
    }
}

/// `gongfang report …`
#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// List reports, oldest first.
    List {
        /// Only reports in this state: pending, disputed, ruled, appealed or final.
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one report with its evidence, rulings and appeal.
    Show {
        /// The report's id.
        id: i64,
    },
    /// A team's after-action report: what happened to it over the drill, with recommendations.
    AfterAction {
        /// The team, by slug.
        #[arg(long)]
        team: String,
        /// The file to write (new): PDF when it ends in `.pdf` (printed by headless Chromium),
        /// else HTML.
        #[arg(long)]
        out: PathBuf,
        /// `en` or `zh-HK` (Hong Kong Chinese).
        #[arg(long, default_value = "en")]
        lang: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct JudgeArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Who is doing this, for the audit log (default: the `USER` environment variable).
    #[arg(long, env = "USER", default_value = "organiser")]
    pub actor: String,
    #[command(subcommand)]
    pub command: JudgeCommand,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The drill's scenario, for team and service names.
    #[arg(long)]
    pub scenario: PathBuf,
    #[command(subcommand)]
    pub command: ReportCommand,
}

pub fn judge(args: JudgeArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        // Refuse a database without a drill before asking for a password.
        let store = args.db.open_drill().await?;
        let JudgeCommand::Add { name, password } = args.command;
        let password = crate::account::password_or_stdin(password)?;
        println!("{}", add_judge(&store, &name, &password, &args.actor).await?);
        store.close().await?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let scenario = scenario_file::load(&args.scenario)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = args.db.open_drill().await?;
        let text = match args.command {
            ReportCommand::List { status } => list_reports(&store, &scenario, status.as_deref()).await?,
            ReportCommand::Show { id } => show_report(&store, &scenario, id).await?,
            ReportCommand::AfterAction { team, out, lang } => {
                let Some(lang) = Lang::parse(&lang) else {
                    anyhow::bail!("--lang {lang:?}: write `en` or `zh-HK`");
                };
                if !scenario.teams.iter().any(|t| t.slug == team) {
                    let known: Vec<&str> = scenario.teams.iter().map(|t| t.slug.as_str()).collect();
                    anyhow::bail!("no team `{team}` in the scenario; its teams are: {}", known.join(", "));
                }
                let export = gongfang_reports::export::build(&store, &scenario).await?;
                let report = gongfang_reports::after_action::build(&store, &scenario, &export, &team).await?;
                gongfang::after_action::write(&report, lang, &out)?;
                out.display().to_string()
            }
        };
        println!("{text}");
        store.close().await?;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_judge_password_stays_out_of_debug() {
        let cmd = JudgeCommand::Add { name: "ana".into(), password: Some("correct horse battery".into()) };
        let shown = format!("{cmd:?}");
        assert!(shown.contains("ana") && !shown.contains("horse"), "{shown}");
    }
}
