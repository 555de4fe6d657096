//! `gongfang migrate`: create or update the database schema; also the database options every
//! subcommand that opens the database shares.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use gongfang_store::{Store, redact_url};

/// The database every command uses when none is named: `gongfang.db` (SQLite) in the current
/// folder. One default for all commands, so `gongfang pause` finds the drill `gongfang up`
/// started from the same folder.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://gongfang.db?mode=rwc";

/// Where the drill's database is.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://PATH?mode=rwc` (created if missing) or
    /// `postgres://USER:PASSWORD@HOST:PORT/DB`. Every command defaults to `gongfang.db` in the
    /// current folder.
    #[arg(long, env = "GONGFANG_DATABASE_URL", hide_env_values = true, default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

impl DatabaseArgs {
    /// Opens the database and brings its schema up to date.
    pub async fn open(&self) -> anyhow::Result<Store> {
        // The store's errors already name the database (without its password).
        Ok(Store::connect_and_migrate(&self.database_url).await?)
    }

    /// Opens the database of a drill for a command that acts on one, and refuses a database
    /// that holds none (a missing SQLite file is not created): acting on an empty database
    /// would report success while the running drill never sees it.
    pub async fn open_drill(&self) -> anyhow::Result<Store> {
        if let Some(path) = sqlite_file(&self.database_url).filter(|p| !p.exists()) {
            bail!("{}", no_drill(&self.database_url, &format!("the file {} does not exist", path.display())));
        }
        let store = self.open().await?;
        if store.list_teams().await?.is_empty() {
            let _ = store.close().await;
            bail!("{}", no_drill(&self.database_url, "no scenario was ever loaded into it"));
        }
        Ok(store)
    }
}

/// The refusal of a database without a drill: which database, why, and how to pick another.
fn no_drill(url: &str, why: &str) -> String {
    format!(
        "database {} holds no drill ({why}). Run this command in the folder where `gongfang up` \
         runs (its default database is ./gongfang.db), or name the drill's database with \
         --database-url URL or GONGFANG_DATABASE_URL",
        redact_url(url)
    )
}

/// The file of a SQLite URL (`sqlite://PATH?…` or `sqlite:PATH`); `None` for other databases
/// and for in-memory ones.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    let in_memory = path.is_empty() || path == ":memory:" || url.contains("mode=memory");
    (!in_memory).then(|| PathBuf::from(path))
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
