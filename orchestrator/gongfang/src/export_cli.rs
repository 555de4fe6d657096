//! `gongfang export --scenario S --format json|csv|ctftime --out PATH`: the drill's final
//! standings and its whole event log, read from its database (`gongfang::export`).

use std::path::PathBuf;
use std::process::ExitCode;

use gongfang::export::{self, Format};

use crate::migrate::DatabaseArgs;
use crate::scenario_file;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The drill's scenario (its teams, services and scoring).
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// `json`: one document with the standings and every event (docs/export.md);
    /// `csv`: a folder of CSV files, one per table; `ctftime`: CTFtime's scoreboard feed.
    #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
    pub format: ExportFormat,
    /// The file to write (a new folder for `csv`); nothing is replaced.
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Json,
    Csv,
    Ctftime,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let scenario = scenario_file::load(&args.scenario)?;
        let store = args.db.open_drill().await?;
        let export = export::build(&store, &scenario).await?;
        let format = match args.format {
            ExportFormat::Json => Format::Json,
            ExportFormat::Csv => Format::Csv,
            ExportFormat::Ctftime => Format::Ctftime,
        };
        for path in export::write(&export, format, &args.out)? {
            println!("{}", path.display());
        }
        eprintln!(
            "exported {} scored ticks, {} teams, {} rulings, {} adjustments",
            export.ticks.len(),
            export.teams.len(),
            export.rulings.len(),
            export.adjustments.len()
        );
        Ok(ExitCode::SUCCESS)
    })
}
