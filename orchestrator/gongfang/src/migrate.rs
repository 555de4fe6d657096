//! `gongfang migrate`: create or update the database schema; also the database options every
//! subcommand that opens the database shares.

use std::process::ExitCode;

use gongfang_store::{Store, redact_url};

/// The database used when none is named: a SQLite file in the current folder.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://gongfang.db?mode=rwc";

/// Where the drill's database is.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://PATH?mode=rwc` (created if missing) or
    /// `postgres://USER:PASSWORD@HOST:PORT/DB`.
    #[arg(long, env = "GONGFANG_DATABASE_URL", hide_env_values = true, default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

impl DatabaseArgs {
    /// Opens the database and brings its schema up to date.
    pub async fn open(&self) -> anyhow::Result<Store> {
        // The store's errors already name the database (without its password).
        Ok(Store::connect_and_migrate(&self.database_url).await?)
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub db: DatabaseArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let url = redact_url(&args.db.database_url);
        let store = Store::connect(&args.db.database_url).await?;
        // Before the first migration there is no bookkeeping table to read.
        let before = store.applied_migrations().await.map(|m| m.len()).unwrap_or(0);
        store.migrate().await?;
        let after = store.applied_migrations().await?;
        let new = after.len().saturating_sub(before);
        if new == 0 {
            println!("database {url} is up to date ({} migrations applied)", after.len());
        } else {
            println!("database {url} migrated: {new} new, {} applied in all", after.len());
        }
        store.close().await?;
        Ok(ExitCode::SUCCESS)
    })
}
