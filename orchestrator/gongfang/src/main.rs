//! `gongfang`: the organisers' command. Parses arguments, starts tracing, and hands each
//! subcommand to its module; the work itself lives in the library crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod scenario_file;
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
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
