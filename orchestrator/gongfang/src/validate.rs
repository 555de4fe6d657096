//! `gongfang validate FILE`: check a scenario and report every problem in it at once.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::scenario_file::{self, LoadError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario file (TOML).
    pub file: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match scenario_file::load(&args.file) {
        Ok(s) => {
            let defenders = s.defenders().count();
            println!(
                "{}: ok — \"{}\" ({}), {} teams ({} defending), {} services, tick {}s, flags live {} ticks",
                args.file.display(),
                s.drill.name.en,
                s.drill.name.zh,
                s.teams.len(),
                defenders,
                s.services.len(),
                s.drill.tick.as_secs(),
                s.drill.flag_lifetime,
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(LoadError::Invalid(problems)) => {
            eprintln!("{problems}");
            Ok(ExitCode::FAILURE)
        }
        Err(e @ LoadError::Read { .. }) => Err(e.into()),
    }
}
