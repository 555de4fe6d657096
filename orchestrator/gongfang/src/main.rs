//! `gongfang`: the organisers' command. Parses arguments, starts tracing, and hands each
//! subcommand to its module; the work itself lives in the library crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gongfang::scenario_file;

mod account;
mod backup;
mod checker;
mod down;
mod export_cli;
mod live;
mod migrate;
mod reports;
mod summary;
mod team;
mod team_import;
mod team_pack;
mod up;
mod validate;
mod vpn;
mod vpn_log;

/// Gongfang (攻防): attack-and-defence cyber drills.
#[derive(Debug, Parser)]
#[command(name = "gongfang", version, about)]
struct Cli {
    /// How log lines are written to standard error: `text` for people, `json` (one object per
    /// line) for a log collector. `GONGFANG_LOG` says which (e.g. `debug`, `gongfang=debug`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a drill on this machine: images, containers, engine, flag submission, scoreboard.
    /// Without a scenario, the demo drill.
    Up(up::Args),
    /// Make what a scenario needs before it runs, saying each step: checkers (adding the
    /// wasm32-wasip2 target with rustup when missing), base images, service images. `up` runs
    /// it first. Without a scenario, the demo drill's.
    Prepare(up::PrepareArgs),
    /// Run the platform (engine, flag submission, scoreboard) for services already running.
    Serve(up::Args),
    /// Check a scenario file and report every problem in it.
    Validate(validate::Args),
    /// Create or update the database schema.
    Migrate(migrate::Args),
    /// Copy a drill's SQLite database to a new file while the drill runs (0600: it holds the
    /// drill's keys). A drill started on the copy resumes where the copy was taken.
    Backup(backup::Args),
    /// List teams, add an ad-hoc team, or issue a team's submission token.
    Team(team::Args),
    /// Remove every container, network and volume of a drill.
    Down(down::Args),
    /// Test a checker component against a live service.
    Checker(checker::Args),
    /// Create judge accounts (the judging panel rules on teams' reports).
    Judge(reports::JudgeArgs),
    /// List and read the teams' attack and defence reports.
    Report(reports::ReportArgs),
    /// Accounts of organisers, judges and observers, and their API tokens.
    Account(account::Args),
    /// Pause the running drill: no checker action is dispatched after the answer (audited).
    Pause(live::PauseArgs),
    /// Resume a paused drill (audited).
    Resume(live::PauseArgs),
    /// Move the running drill's end later, by minutes (audited).
    Extend(live::ExtendArgs),
    /// Post an announcement, in English and Hong Kong Chinese, that every board shows (audited).
    Announce(live::AnnounceArgs),
    /// Teams' WireGuard access: write a team's configs, list who is connected.
    Vpn(vpn::Args),
    /// The drill's final standings and whole event log, as JSON, CSV files or CTFtime's feed.
    Export(export_cli::Args),
}

/// Errors capture no backtrace, even when `RUST_BACKTRACE` asks for one on panics: wasmtime
/// builds an error each time it disposes of a checker's store, and a backtrace there would cost
/// every checker action more than the rest of its teardown. Panics keep theirs, and
/// `RUST_LIB_BACKTRACE=1` turns errors' back on.
#[allow(unsafe_code)]
fn errors_without_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: called first thing in `main`, before any other thread exists.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}

fn main() -> ExitCode {
    errors_without_backtraces();
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("GONGFANG_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    // Before any server starts: the connection caps are derived from this limit.
    match gongfang::limits::raise_open_files() {
        Ok(files) if files.now > files.before => {
            tracing::debug!(from = files.before, to = files.now, "open-file limit raised");
        }
        Ok(files) => tracing::debug!(limit = files.now, "open-file limit"),
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open-file limit; connections are capped under the current one")
        }
    }
    let result = match cli.command {
        Command::Up(args) => up::run(args, true),
        Command::Prepare(args) => up::prepare(args),
        Command::Serve(args) => up::run(args, false),
        Command::Validate(args) => validate::run(args),
        Command::Migrate(args) => migrate::run(args),
        Command::Backup(args) => backup::run(args),
        Command::Team(args) => team::run(args),
        Command::Down(args) => down::run(args),
        Command::Checker(args) => checker::run(args),
        Command::Judge(args) => reports::judge(args),
        Command::Report(args) => reports::report(args),
        Command::Account(args) => account::run(args),
        Command::Pause(args) => live::pause(args, true),
        Command::Resume(args) => live::pause(args, false),
        Command::Extend(args) => live::extend(args),
        Command::Announce(args) => live::announce(args),
        Command::Vpn(args) => vpn::run(args),
        Command::Export(args) => export_cli::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
