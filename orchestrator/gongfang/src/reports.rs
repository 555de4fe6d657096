//! `gongfang judge add` and `gongfang report list|show`: the organisers' side of attack and
//! defence reports. Teams file reports and judges rule on them over the HTTP API (`docs/reports.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use gongfang::scenario_file;
use gongfang_reports::cli::{JudgeCommand, ReportCommand, run_judge, run_report};

use crate::migrate::DatabaseArgs;

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
        let store = args.db.open().await?;
        println!("{}", run_judge(args.command, &store, &args.actor).await?);
        store.close().await?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let scenario = scenario_file::load(&args.scenario)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = args.db.open().await?;
        println!("{}", run_report(args.command, &store, &scenario).await?);
        store.close().await?;
        Ok(ExitCode::SUCCESS)
    })
}
