//! Gongfang's storage: the only crate that talks SQL.
//!
//! [`Store`] wraps a connection pool to SQLite (the default, one file per drill) or PostgreSQL
//! (production) and offers a repository that speaks `gongfang-core`'s domain types. sea-orm
//! types never leave this crate; the schema itself lives in `gongfang-migration`.

mod adjustments;
mod backup;
mod databases;
mod defective;
mod entity;
mod error;
mod game;
pub mod injects;
pub mod lease;
mod ops;
mod patches;
mod replay;
pub mod reports;
mod rows;
mod scorer_snapshot;
mod secret;
mod sessions;
mod shell;
mod submission_insert;
mod teams;
mod vpn;

use std::time::Duration;

use gongfang_migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, DatabaseConnection, DatabaseTransaction, TransactionOptions, TransactionTrait};

pub use adjustments::ScoreAdjustment;
pub use backup::BackupSummary;
pub use databases::database_url;
pub use defective::{DefectiveCells, DefectiveResult};
pub use error::{DatabaseError, Result, StoreError, database_errors};
pub use game::{FlagIdHint, StoredSubmission, TickRecord};
pub use ops::{
    Account, AccountSummary, Announcement, AnnouncementText, AuditEntry, AuditFilter, BoardFreeze, DrillState,
};
pub use patches::{PatchOutcome, PatchRefused};
pub use scorer_snapshot::{ScorerSnapshot, marks_digest};
pub use secret::{ARGON2_WAIT, TOKEN_LEN, argon2_runs, generate_token};
pub use sessions::SessionHolder;
pub use shell::{ShellKey, ShellKeyAdded};
pub use submission_insert::SubmissionOutcome;
pub use teams::{IssuedToken, SyncReport, TeamRecord, TokenOwner};
pub use vpn::{MAX_TRANSLATIONS, NewVpnPeer, NewVpnTranslation, TranslationFilter, VpnIssue, VpnPeer, VpnTranslation};

/// How long a SQLite writer waits for another writer's lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on Gongfang's database. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    backend: Backend,
    /// The server key tokens are hashed under, read from the database on first use.
    token_key: std::sync::Arc<tokio::sync::OnceCell<secret::TokenKey>>,
    /// The drill's paused flag as this process knows it.
    pause: std::sync::Arc<ops::PauseCell>,
    /// How many results this process marked defective (the engine scores again on a change).
    defective: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// How many times this process took a team out of the drill or brought one back (the
    /// VPN gateway's firewall follows it).
    disabled: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH?mode=rwc` or `postgres://...`).
    ///
    /// SQLite runs in WAL mode (readers do not block the writer) with a busy timeout, full
    /// fsync on commit (an accepted flag survives a crash) and foreign keys on.
    pub async fn connect(url: &str) -> Result<Store> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        let mut options = ConnectOptions::new(url.to_owned());
        options.sqlx_logging(false).acquire_timeout(Duration::from_secs(30));
        if backend == Backend::Sqlite {
            // Every connection to an in-memory database is a database of its own.
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            options.max_connections(if in_memory { 1 } else { 8 });
            options.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
            });
        } else {
            options.max_connections(16);
        }
        let db = sea_orm::Database::connect(options)
            .await
            .map_err(|e| StoreError::Connect { url: redact_url(url), source: DatabaseError::new(e) })?;
        tracing::debug!(url = %redact_url(url), ?backend, "database opened");
        Ok(Store {
            db,
            backend,
            token_key: Default::default(),
            pause: Default::default(),
            defective: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
            disabled: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
        })
    }

    /// Opens the database and brings its schema up to date: what servers do on start.
    pub async fn connect_and_migrate(url: &str) -> Result<Store> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies every pending migration; a no-op when the schema is current.
    pub async fn migrate(&self) -> Result<()> {
        Migrator::up(&self.db, None).await.map_err(|e| StoreError::Migrate(DatabaseError::new(e)))
    }

    /// Names of the migrations already applied, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<String>> {
        let applied =
            Migrator::get_applied_migrations(&self.db).await.map_err(|e| StoreError::Migrate(DatabaseError::new(e)))?;
        Ok(applied.iter().map(|m| m.name().to_owned()).collect())
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers: one round trip on a pooled connection (readiness checks).
    pub async fn ping(&self) -> Result<()> {
        self.db.ping().await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(self) -> Result<()> {
        self.db.close().await?;
        Ok(())
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front (`BEGIN
    /// IMMEDIATE`), so two writers queue on the busy timeout instead of one failing when it
    /// upgrades a read lock.
    pub(crate) async fn write_txn(&self) -> Result<DatabaseTransaction> {
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.backend == Backend::Sqlite)
                .then_some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        Ok(self.db.begin_with_options(options).await?)
    }
}

/// `url` with any password replaced by `***`, fit for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = rest.split_once('/').map_or((rest, None), |(a, t)| (a, Some(t)));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    match tail {
        Some(t) => format!("{scheme}://{authority}/{t}"),
        None => format!("{scheme}://{authority}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(redact_url("postgres://gf:hunter2@db:5432/gf"), "postgres://gf:***@db:5432/gf");
        assert_eq!(redact_url("postgres://gf@db/gf"), "postgres://gf@db/gf");
        assert_eq!(redact_url("sqlite://drill.db?mode=rwc"), "sqlite://drill.db?mode=rwc");
    }
}
