//! `gongfang`: the organisers' command. Parses arguments, starts tracing, and hands each
//! subcommand to its module; the work itself lives in the library crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod checker;
mod down;
mod migrate;
mod scenario_file;
mod team;
mod validate;

/// Gongfang (攻防): attack-and-defence cyber drills.
#[derive(Debug, Parser)]
#[command(name = "gongfang", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a scenario file and report every problem in it.
    Validate(validate::Args),
    /// Create or update the database schema.
    Migrate(migrate::Args),
    /// List teams, add an ad-hoc team, or issue a team's submission token.
    Team(team::Args),
    /// Remove every container, network and volume of a drill.
    Down(down::Args),
    /// Test a checker component against a live service.
    Checker(checker::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GONGFANG_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Migrate(args) => migrate::run(args),
        Command::Team(args) => team::run(args),
        Command::Down(args) => down::run(args),
        Command::Checker(args) => checker::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
