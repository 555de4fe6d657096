//! `gongfang backup --out FILE`: a consistent copy of a drill's SQLite database, taken while
//! the drill runs (the store does the copying); a drill on PostgreSQL is pointed to its own
//! tools in `docs/operations.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use gongfang_store::{Backend, Store, StoreError, redact_url};

use crate::migrate::{DatabaseArgs, sqlite_file};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The new file to write the copy to. It must not exist: a backup never replaces a file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The drill's database; the drill may be running.
    #[command(flatten)]
    pub db: DatabaseArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let url = &args.db.database_url;
    let shown = redact_url(url);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        bail!(
            "gongfang backup copies SQLite drills only, and {shown} is PostgreSQL: back it up with \
             `pg_dump -Fc` and restore it with `pg_restore`, or take a base backup; \
             docs/operations.md (\"Backup and restore\") says how"
        );
    }
    let Some(file) = sqlite_file(url) else {
        if url.starts_with("sqlite:") {
            bail!("{shown} is an in-memory database, which lives only in its process: there is no file to copy");
        }
        return Err(StoreError::UnsupportedUrl(shown).into());
    };
    if !file.exists() {
        bail!(
            "database {shown} holds no drill (the file {} does not exist). Name the drill's database \
             with --database-url URL or GONGFANG_DATABASE_URL, or run this command in the folder where \
             `gongfang up` runs",
            file.display()
        );
    }
    if args.out.symlink_metadata().is_ok() {
        bail!(
            "{} already exists: a backup never replaces a file. Name a new file with --out, or move the old one away first",
            args.out.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        // Opened as it is: a backup never migrates the database under a running drill.
        let store = Store::connect(url).await?;
        debug_assert_eq!(store.backend(), Backend::Sqlite);
        let holds_a_drill = store.list_teams().await.is_ok_and(|teams| !teams.is_empty());
        if !holds_a_drill {
            let _ = store.close().await;
            bail!("database {shown} holds no drill (no scenario was ever loaded into it); there is nothing to back up");
        }
        let copied = store.backup_to(&args.out).await;
        store.close().await?;
        let summary = copied?;
        let through = match summary.latest_closed_tick {
            Some(tick) => format!("through tick {} (the latest closed one)", tick.0),
            None => "before the first tick closed".to_owned(),
        };
        println!(
            "backup of {shown} written to {}: {} bytes, {} pages, {through}. To restore: stop the drill, \
             copy this file over its database, start it again (docs/operations.md)",
            args.out.display(),
            summary.bytes,
            summary.pages,
        );
        Ok(ExitCode::SUCCESS)
    })
}
